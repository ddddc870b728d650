//! The transparency log's test vectors (SPEC Section 16.8): the log's and
//! two witnesses' keys, five entries, checkpoints signed and cosigned,
//! inclusion and consistency proofs, the tiles of a tree past a full tile,
//! and what a client must refuse.
//!
//! Regenerate with `cargo run -p blindmatch-protocol --features
//! test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json
//! protocol/vectors/blindmatch-v2-threshold.json protocol/vectors/blindmatch-audit.json
//! protocol/vectors/blindmatch-log.json`; `tests/interop_vectors.rs` fails on
//! any byte of difference.

use serde_json::{Value, json};

use super::note::{LogSigningKey, cosign_for_vectors};
use super::policy::verify_consistency;
use super::{Checkpoint, CosignerKey, Hash, LogEntry, LogError, LogPolicy, Note, TlogProof, tiles};
use crate::audit::{CoSignature, OrgName};
use crate::error::Error;
use crate::item::{Item, ItemType};
use crate::key::ServerKey;
use crate::manifest::{Manifest, OperatorSigningKey};
use crate::merkle;
use crate::table::TableBuilder;

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

const ORIGIN: &str = "blindmatch.example/log";
const LOG_SEED: [u8; 32] = [0x11; 32];
const WITNESSES: [(&str, [u8; 32]); 2] = [
    ("witness-a.example", [0x21; 32]),
    ("witness-b.example", [0x22; 32]),
];
const TIMESTAMP: u64 = 1_790_000_000;
const CREATED: u64 = 1_790_000_000;

/// The vectors as pretty-printed JSON, ending in a newline.
///
/// # Errors
/// Only if this code is wrong (an invalid fixed input).
pub fn generate() -> Result<String, LogError> {
    let v = log_vectors()?;
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&v).unwrap_or_default()
    ))
}

fn entries() -> Result<Vec<LogEntry>, LogError> {
    let bad = |e: Error| super::malformed("vector fixture", e.to_string());
    let key = ServerKey::from_scalar_bytes([9; 32]).map_err(bad)?;
    let items = (0u8..4)
        .map(|i| Item::new(ItemType::Sha256, &[i; 32]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| super::malformed("vector fixture", e.to_string()))?;
    let table = TableBuilder::new([3; 32])
        .build(&key, items)
        .map_err(bad)?
        .table;
    let operator = OperatorSigningKey::from_seed([5; 32]);
    let org = OperatorSigningKey::from_seed([6; 32]);
    (1..=5u64)
        .map(|v| {
            let m = Manifest::for_table(&table, v, CREATED + v, None).sign(&operator);
            // Entries 2 and 4 carry a co-signature, the others none.
            let cosignatures = if v % 2 == 0 {
                vec![CoSignature::sign(
                    &org,
                    OrgName::new("Hotline A").map_err(bad)?,
                    &m.manifest.encode(),
                )]
            } else {
                Vec::new()
            };
            LogEntry::new(m, cosignatures)
        })
        .collect()
}

fn checkpoint_note(
    log: &LogSigningKey,
    leaves: &[Hash],
    witnesses: &[usize],
) -> Result<Note, LogError> {
    let c = Checkpoint {
        origin: log.name().to_owned(),
        size: leaves.len() as u64,
        root: merkle::root(leaves),
        extensions: Vec::new(),
    };
    let mut note = Note::new(&c.text())?;
    log.sign(&mut note);
    for &w in witnesses {
        let (name, seed) = WITNESSES[w];
        cosign_for_vectors(name, seed, TIMESTAMP, &mut note)?;
    }
    Ok(note)
}

fn log_vectors() -> Result<Value, LogError> {
    let log = LogSigningKey::from_seed(ORIGIN, LOG_SEED)?;
    let vkey = log.verifying_key();
    let mut witness_keys = Vec::new();
    let mut witnesses = Vec::new();
    for (name, seed) in WITNESSES {
        let pk = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let key = CosignerKey::new(name, &pk)?;
        let text = key.to_string();
        witnesses.push(json!({
            "name": name,
            "seed": h(seed),
            "public_key": h(pk),
            "key_id": text.split('+').nth(1),
            "vkey": text,
        }));
        witness_keys.push(key);
    }
    let policy = LogPolicy::new(vkey.clone(), &witness_keys, 2)?;

    let entries = entries()?;
    let leaves: Vec<Hash> = entries.iter().map(LogEntry::leaf_hash).collect();
    let entries_json: Vec<Value> = entries
        .iter()
        .zip(&leaves)
        .map(|(e, l)| {
            json!({
                "version": e.version(),
                "cosignatures": e.cosignatures().len(),
                "encoding": h(e.encode()),
                "leaf_hash": h(l),
            })
        })
        .collect();

    let mut checkpoints = Vec::new();
    for n in 1..=leaves.len() {
        let note = checkpoint_note(&log, &leaves[..n], &[0, 1])?;
        policy.verify_checkpoint(&note)?;
        let lines: Vec<String> = note.signatures().iter().map(|s| s.line()).collect();
        checkpoints.push(json!({
            "size": n,
            "root": h(merkle::root(&leaves[..n])),
            "text": note.text(),
            "timestamp": TIMESTAMP,
            "signature": lines[0],
            "cosignatures": &lines[1..],
            "note": note.encode(),
        }));
    }

    let full = checkpoint_note(&log, &leaves, &[0, 1])?;
    let mut inclusion = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let proof = TlogProof {
            extra: None,
            index: i as u64,
            path: merkle::inclusion_proof(&leaves, i),
            checkpoint: full.clone(),
        };
        policy.verify_inclusion(&proof, e)?;
        inclusion.push(json!({
            "index": i,
            "size": leaves.len(),
            "path": proof.path.iter().map(h).collect::<Vec<_>>(),
            "tlog_proof": proof.encode(),
        }));
    }

    let mut consistency = Vec::new();
    for old in 1..leaves.len() {
        let new = leaves.len();
        let proof = merkle::consistency_proof(&leaves, old);
        if !merkle::verify_consistency(
            old as u64,
            new as u64,
            &merkle::root(&leaves[..old]),
            &merkle::root(&leaves),
            &proof,
        ) {
            return Err(super::malformed(
                "vector fixture",
                "a consistency proof fails",
            ));
        }
        consistency.push(json!({
            "old": old,
            "new": new,
            "proof": proof.iter().map(h).collect::<Vec<_>>(),
        }));
    }

    // A tree of 300 leaf hashes (numbers, not entries): past a full tile.
    let many: Vec<Hash> = (0u32..300)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let tiles_json: Vec<Value> = tiles::tiles(&many)
        .iter()
        .map(|(id, bytes)| json!({"path": id.path(), "hashes": h(bytes)}))
        .collect();

    // What a client must refuse.
    let mut negative = Vec::new();
    let refusal = |r: Result<(), LogError>| -> &'static str {
        match r {
            Ok(_) => "accepted",
            Err(LogError::LogSignature(_)) => "log_signature",
            Err(LogError::BadCosignature(_)) => "bad_cosignature",
            Err(LogError::Quorum { .. }) => "quorum",
            Err(LogError::Inclusion { .. }) => "inclusion",
            Err(LogError::Inconsistent { .. }) => "inconsistent",
            Err(_) => "malformed",
        }
    };
    let other = LogSigningKey::from_seed(ORIGIN, [0x12; 32])?;
    let note = checkpoint_note(&other, &leaves, &[0, 1])?;
    negative.push(json!({
        "what": "a checkpoint signed by another key under the log's name",
        "note": note.encode(),
        "refusal": refusal(policy.verify_checkpoint(&note).map(|_| ())),
    }));
    let mut tampered = full.clone();
    let mut sig = tampered.signatures()[1].clone();
    sig.signature[20] ^= 1;
    tampered = {
        let mut n = Note::new(tampered.text())?;
        n.add_signature(full.signatures()[0].clone());
        n.add_signature(sig);
        n.add_signature(full.signatures()[2].clone());
        n
    };
    negative.push(json!({
        "what": "witness a's cosignature with one byte altered",
        "note": tampered.encode(),
        "refusal": refusal(policy.verify_checkpoint(&tampered).map(|_| ())),
    }));
    let one = checkpoint_note(&log, &leaves, &[1])?;
    negative.push(json!({
        "what": "one witness's cosignature where the quorum is two",
        "note": one.encode(),
        "refusal": refusal(policy.verify_checkpoint(&one).map(|_| ())),
    }));
    let wrong = TlogProof {
        extra: None,
        index: 2,
        path: merkle::inclusion_proof(&leaves, 2),
        checkpoint: full.clone(),
    };
    negative.push(json!({
        "what": "entry 1 with the proof of index 2",
        "entry": h(entries[1].encode()),
        "tlog_proof": wrong.encode(),
        "refusal": refusal(policy.verify_inclusion(&wrong, &entries[1]).map(|_| ())),
    }));
    let mut forked = leaves.clone();
    forked[1] = merkle::leaf_hash(b"another table for version 2");
    let fork_proof = merkle::consistency_proof(&forked, 3);
    let old = Checkpoint::parse(
        &Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 3,
            root: merkle::root(&leaves[..3]),
            extensions: Vec::new(),
        }
        .text(),
    )?;
    let new = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 5,
        root: merkle::root(&forked),
        extensions: Vec::new(),
    };
    negative.push(json!({
        "what": "a consistency proof to a forked tree of size 5 from the real size 3",
        "old": {"size": 3, "root": h(old.root)},
        "new": {"size": 5, "root": h(new.root)},
        "proof": fork_proof.iter().map(h).collect::<Vec<_>>(),
        "refusal": refusal(verify_consistency(&old, &new, &fork_proof)),
    }));

    Ok(json!({
        "description": "blindmatch transparency log (SPEC Section 16)",
        "log": {
            "origin": ORIGIN,
            "seed": h(LOG_SEED),
            "key_id": vkey.to_string().split('+').nth(1),
            "vkey": vkey.to_string(),
        },
        "operator_verifying_key": h(OperatorSigningKey::from_seed([5; 32]).verifying_key().to_bytes()),
        "witnesses": witnesses,
        "quorum": 2,
        "entries": entries_json,
        "checkpoints": checkpoints,
        "inclusion": inclusion,
        "consistency": consistency,
        "tiles": {"size": many.len(), "leaves": "SHA-256(0x00 || I2OSP(i, 4)) for i in 0..size", "tiles": tiles_json},
        "negative": negative,
    }))
}
