//! The interop test vectors: every input, intermediate and output of a small
//! table and a set of vouchers, as JSON.
//!
//! Regenerate with
//! `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json`;
//! `tests/interop_vectors.rs` fails on any byte of difference.
//!
//! Everything is derived from fixed labels, so the file is a pure function of
//! this code: α, β, γ and the payload keys are `SHA-512(label) mod ℓ` or
//! `SHA-256(label)`, and the list is made of hashes of fixed strings.

#![allow(
    clippy::cast_possible_truncation,
    reason = "the vector table is tiny; every index fits"
)]

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::error::Error;
use crate::hash_to_group::{item_dst, item_uniform_bytes};
use crate::item::{Item, ItemType};
use crate::kdf::VOUCHER_KDF_SALT;
use crate::key::ServerKey;
use crate::matcher::Matcher;
use crate::table::{BuiltTable, TableBuilder};
use crate::voucher::{ClientTable, MAX_AD_LEN, PAYLOAD_LEN, Voucher, VoucherSecrets, VoucherTrace};

pub(crate) fn label_scalar(label: &str) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&Sha512::digest(label.as_bytes()).into())
}

pub(crate) fn label_bytes(label: &str) -> [u8; 32] {
    Sha256::digest(label.as_bytes()).into()
}

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

/// The i-th candidate list entry: types cycle through every [`ItemType`].
fn candidate(i: usize) -> Item {
    let t = ItemType::ALL[i % ItemType::ALL.len()];
    let digest = Sha512::digest(format!("blindmatch-v1 test vector entry {i}").as_bytes());
    let len = t.fixed_len().unwrap_or(8 + i % 40);
    Item::new(t, &digest[..len]).unwrap_or_else(|e| unreachable!("{e}"))
}

/// Which of its positions an entry landed at.
fn landed_at(built: &BuiltTable, entry: u32) -> Option<u8> {
    let item = &built.entries[entry as usize];
    let slot = built.index.slot_of(entry)?;
    let pos = built.table.header().positions(item);
    pos.as_slice()
        .iter()
        .position(|&w| w == slot)
        .and_then(|j| u8::try_from(j).ok())
}

/// The vectors' server key and table (also threshold mode's, SPEC 14.11).
pub(crate) fn vector_table() -> Result<(ServerKey, BuiltTable), Error> {
    let key = ServerKey::from_scalar(label_scalar("blindmatch-v1 test vectors: alpha"));
    let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
    let builder = TableBuilder::new(seed);

    // Grow the list until some entry sits at every position j < k.
    let mut n = ItemType::ALL.len();
    loop {
        let built = builder.build(&key, (0..n).map(candidate))?;
        let k = built.table.header().k;
        let covered = (0..k).all(|j| (0..n as u32).any(|e| landed_at(&built, e) == Some(j)));
        if covered {
            return Ok((key, built));
        }
        n += 1;
    }
}

/// Generates the vector file's text.
///
/// # Errors
/// Only if the fixed inputs were somehow invalid (a bug).
pub fn generate() -> Result<String, Error> {
    let (key, built) = vector_table()?;
    let header = *built.table.header();
    let client = ClientTable::new(built.table.clone())?;
    let matcher = Matcher::new(&key, &built.table, built.index.clone())?;

    let entries: Vec<Value> = built
        .entries
        .iter()
        .enumerate()
        .map(|(e, item)| {
            let e32 = e as u32;
            json!({
                "entry": e,
                "type": item.item_type().name(),
                "value": h(item.value()),
                "slot": built.index.slot_of(e32),
                "position": landed_at(&built, e32),
                "positions": header.positions(item).as_slice(),
            })
        })
        .collect();

    // The cases: one listed entry of every type, one entry at every position,
    // and non-matches (unlisted items; a listed value under another type).
    let max_ad: Vec<u8> = (0..MAX_AD_LEN).map(|i| (i % 251) as u8).collect();
    let mut cases: Vec<(String, Item, Vec<u8>)> = Vec::new();
    for (ti, t) in ItemType::ALL.into_iter().enumerate() {
        let (e, item) = built
            .entries
            .iter()
            .enumerate()
            .find(|(_, i)| i.item_type() == t)
            .ok_or(Error::TooManyEntries(0))?;
        let ad = match ti {
            0 => Vec::new(),
            2 => max_ad.clone(),
            _ => format!("upload {ti}").into_bytes(),
        };
        cases.push((format!("match {t} (entry {e})"), item.clone(), ad));
    }
    for j in 0..header.k {
        let e = (0..built.entries.len() as u32)
            .find(|&e| landed_at(&built, e) == Some(j))
            .ok_or(Error::TooManyEntries(0))?;
        let item = built.entries[e as usize].clone();
        cases.push((
            format!("match at position {j} (entry {e})"),
            item,
            b"position case".to_vec(),
        ));
    }
    let unlisted = Item::new(
        ItemType::Sha256,
        &label_bytes("blindmatch-v1 test vectors: unlisted"),
    )?;
    cases.push(("no match: unlisted sha256".into(), unlisted, max_ad.clone()));
    let unlisted_md5 = Item::new(
        ItemType::Md5,
        &label_bytes("blindmatch-v1 test vectors: unlisted md5")[..16],
    )?;
    cases.push((
        "no match: unlisted md5, empty associated data".into(),
        unlisted_md5,
        Vec::new(),
    ));
    let listed_sha256 = built
        .entries
        .iter()
        .find(|i| i.item_type() == ItemType::Sha256)
        .ok_or(Error::TooManyEntries(0))?;
    let as_pdq = Item::new(ItemType::Pdq, listed_sha256.value())?;
    cases.push((
        "no match: a listed sha256 value submitted as pdq".into(),
        as_pdq,
        b"domain separation".to_vec(),
    ));

    let mut out_cases = Vec::new();
    let mut all_wire = Vec::new();
    for (ci, (name, item, ad)) in cases.into_iter().enumerate() {
        let beta = label_scalar(&format!("blindmatch-v1 test vectors: beta {ci}"));
        let gamma = label_scalar(&format!("blindmatch-v1 test vectors: gamma {ci}"));
        let payload_key = label_bytes(&format!("blindmatch-v1 test vectors: payload key {ci}"));
        let secrets = VoucherSecrets::from_bytes(beta.to_bytes(), gamma.to_bytes(), payload_key)?;
        let mut trace = VoucherTrace::default();
        let voucher = client.seal(&item, &ad, &secrets, Some(&mut trace))?;
        let wire = voucher.encode();
        all_wire.push(wire.clone());
        let decoded = Voucher::decode(&wire, header.k)?;

        let q_point = CompressedRistretto(*decoded.q())
            .decompress()
            .ok_or(Error::InvalidPoint("voucher Q"))?;
        let server_shared = (key.scalar() * q_point).compress().to_bytes();
        let result = matcher.open(&decoded)?;
        let prks: Vec<Value> = trace
            .shared
            .iter()
            .map(|s| h(Hkdf::<Sha256>::extract(Some(VOUCHER_KDF_SALT), s).0))
            .collect();
        let mut item_encoding = Vec::new();
        item.encode_into(&mut item_encoding);
        out_cases.push(json!({
            "name": name,
            "input": {
                "type": item.item_type().name(),
                "value": h(item.value()),
                "associated_data": h(&ad),
                "beta": h(beta.to_bytes()),
                "gamma": h(gamma.to_bytes()),
                "payload_key": h(payload_key),
            },
            "client": {
                "item_encoding": h(&item_encoding),
                "hash_to_group_dst": String::from_utf8_lossy(&item_dst(item.item_type())),
                "uniform_bytes": h(item_uniform_bytes(&item)),
                "H": h(trace.h),
                "positions": trace.positions,
                "table_slots": trace.slots.iter().map(h).collect::<Vec<_>>(),
                "Q": h(voucher.q()),
                "S": trace.shared.iter().map(h).collect::<Vec<_>>(),
                "prk": prks,
                "wrap_keys": trace.wrap_keys.iter().map(h).collect::<Vec<_>>(),
                "confirms": voucher.boxes.iter().map(|b| h(b.confirm)).collect::<Vec<_>>(),
                "wrapped_payload_keys": voucher.boxes.iter().map(|b| h(b.wrapped)).collect::<Vec<_>>(),
                "payload_plaintext": h(&trace.payload_plain),
                "payload_aad": h(voucher.payload_aad(&built.table.id().0)),
                "payload_ciphertext": h(&voucher.payload[..]),
            },
            "voucher": h(&wire),
            "server": {
                "S_prime": h(server_shared),
                "opened_position": result.as_ref().map(|m| m.position),
                "decrypted_payload": result.as_ref().map(|_| h(&trace.payload_plain[..PAYLOAD_LEN])),
                "match": result.as_ref().map(|m| json!({
                    "entry": m.entry,
                    "type": m.item.item_type().name(),
                    "value": h(m.item.value()),
                    "associated_data": h(&m.associated_data),
                })),
            },
        }));
    }

    let n = built.entries.len();
    let lifecycle = lifecycle(&key, &built, n)?;
    let chunked = chunked_table(&key)?;
    let extra = extra_vectors(&key, &built, &matcher, &all_wire)?;

    let doc = json!({
        "description": "blindmatch-v1 interop vectors: see papers/SPEC.md. All byte strings are lower-case hex; scalars are 32-byte little-endian; elements are 32-byte ristretto255 encodings (RFC 9496 Section 4.3.2).",
        "generator": "cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json",
        "server_key": {
            "alpha": h(key.scalar().to_bytes()),
            "public_key": h(key.public_key().to_bytes()),
            "key_file": h(&key.to_bytes()[..]),
        },
        "table": {
            "k": header.k,
            "seed": h(header.seed),
            "n_slots": header.n_slots,
            "header": h(header.encode()),
            "slots": built.table.slots().chunks(32).map(h).collect::<Vec<_>>(),
            "table_id": h(built.table.id().0),
            "entries": entries,
        },
        "cases": out_cases,
        "lifecycle": lifecycle,
        "chunked_table": chunked,
        "submission_digest": extra["submission_digest"],
        "entry_fingerprints": extra["entry_fingerprints"],
        "negative": extra["negative"],
        "negative_operator": extra["negative_operator"],
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    Ok(text)
}

/// SPEC Section 13: the next version of the vector table (entry 0 removed,
/// one entry added), its delta, its Merkle digest and signed manifest; and
/// a Merkle tree over several chunks with audit paths.
fn lifecycle(key: &ServerKey, v1: &BuiltTable, n: usize) -> Result<Value, Error> {
    use crate::manifest::Manifest;
    use crate::merkle::{CHUNK_SLOTS, MerkleTree, leaf_count, leaves};
    use crate::table::{UpdateOptions, update};

    let attempt = |extra: usize| {
        let added: Vec<Item> = (n..n + extra).map(candidate).collect();
        let list: Vec<Item> = v1.entries[1..].iter().chain(&added).cloned().collect();
        let opts = UpdateOptions {
            version: 2,
            max_load: 0.95,
            decoys: 0,
        };
        update(key, v1.into(), list, &opts).map(|v2| (added, v2))
    };
    // Prefer a delta that shows a fresh filler and a moved entry, then one
    // with a fresh filler.
    let score = |v2: &crate::table::UpdatedTable| {
        let filler = v2.changed.iter().any(|&s| v2.index.entry_at(s).is_none());
        let moved = v2
            .changed
            .iter()
            .any(|&s| v2.index.entry_at(s).is_some_and(|e| (e as usize) < n));
        u8::from(filler) + 2 * u8::from(moved)
    };
    let mut chosen = attempt(1)?;
    for extra in 2..=6 {
        if let Ok(next) = attempt(extra)
            && score(&next.1) > score(&chosen.1)
        {
            chosen = next;
        }
    }
    let (added, v2) = chosen;
    let changed: Vec<Value> = v2
        .changed
        .iter()
        .map(|&s| {
            let occupant = v2.index.entry_at(s).map(|e| {
                // Entry numbers: base entries keep theirs, added ones follow.
                let item = match (e as usize).checked_sub(n) {
                    Some(a) => &added[a],
                    None => &v1.entries[e as usize],
                };
                json!({"entry": e, "type": item.item_type().name(), "value": h(item.value())})
            });
            json!({
                "slot": s,
                "before": h(v1.table.slot(s)),
                "after": h(v2.table.slot(s)),
                "occupant": occupant,
            })
        })
        .collect();

    let operator = vector_operator();
    let manifest = Manifest::for_table(&v2.table, 2, 1_790_000_000, None);
    let signed = manifest.sign(&operator);

    // A slot array of five chunks and a bit: slot i = SHA-256(label || I2OSP(i, 4)).
    let n_slots = 5 * CHUNK_SLOTS + 7;
    let slots: Vec<u8> = (0..n_slots)
        .flat_map(|i| {
            Sha256::new()
                .chain_update(b"blindmatch-v1 merkle vector")
                .chain_update(i.to_be_bytes())
                .finalize()
        })
        .collect();
    let tree = MerkleTree::new(&slots);
    let size = leaf_count(slots.len() as u64);
    let paths: Vec<Value> = (0..size)
        .map(|i| json!({"leaf": i, "path": tree.proof(i).unwrap_or_default().iter().map(h).collect::<Vec<_>>()}))
        .collect();

    Ok(json!({
        "description": "SPEC Section 13. `update`: version 2 of the table above, built in place from the list without entry 0 and with the entries `added`; `delta` is every slot that changed (a freed slot holds a fresh filler for version 2, SPEC 5.4). `manifest`: its signed statement. `merkle`: a tree over n_slots slots, slot i = SHA-256(\"blindmatch-v1 merkle vector\" || I2OSP(i, 4)).",
        "update": {
            "version": 2,
            "removed": {"entry": 0, "type": v1.entries[0].item_type().name(), "value": h(v1.entries[0].value())},
            "added": added.iter().enumerate().map(|(a, item)| json!({"entry": n + a, "type": item.item_type().name(), "value": h(item.value())})).collect::<Vec<_>>(),
            "delta": changed,
            "table_id": h(v2.table.id().0),
            "digest": h(manifest.digest),
        },
        "manifest": {
            "signing_key_seed": h(label_bytes("blindmatch-v1 test vectors: operator key")),
            "verifying_key": h(operator.verifying_key().to_bytes()),
            "version": manifest.version,
            "created": manifest.created,
            "statement": h(manifest.encode()),
            "signed_message_prefix": "blindmatch-v1/manifest",
            "signature": h(signed.signature),
        },
        "merkle": {
            "chunk_slots": CHUNK_SLOTS,
            "n_slots": n_slots,
            "leaf_hashes": leaves(&slots).iter().map(h).collect::<Vec<_>>(),
            "root": h(tree.root()),
            "audit_paths": paths,
        },
    }))
}

/// The created time of the chunked table's manifest (a day before the
/// lifecycle's).
pub(crate) const CHUNKED_CREATED: u64 = 1_789_913_600;

/// The vectors' operator key (SPEC 13.3).
pub(crate) fn vector_operator() -> crate::manifest::OperatorSigningKey {
    crate::manifest::OperatorSigningKey::from_seed(label_bytes(
        "blindmatch-v1 test vectors: operator key",
    ))
}

/// A table of three chunks (SPEC 13.2) as a first build, version 1: its 40
/// entries, every slot, the digest, each chunk's audit path, its signed
/// manifest, and a voucher for an entry in each chunk.
///
/// The load factor is far below a real one, so that a small list spans
/// several chunks; nothing in the protocol depends on the load factor.
pub(crate) fn chunked_built(key: &ServerKey) -> Result<BuiltTable, Error> {
    use crate::merkle::CHUNK_SLOTS;
    let n = 40;
    let n_slots = 2 * CHUNK_SLOTS + 100;
    let builder = TableBuilder::new(label_bytes("blindmatch-v1 test vectors: chunked seed"))
        .load_factor(f64::from(n) / f64::from(n_slots))?;
    builder.build(key, (0..n as usize).map(|i| candidate(1000 + i)))
}

fn chunked_table(key: &ServerKey) -> Result<Value, Error> {
    use crate::manifest::Manifest;
    use crate::merkle::{CHUNK_SLOTS, MerkleTree, leaf_count};

    let built = chunked_built(key)?;
    let header = *built.table.header();
    let tree = MerkleTree::new(built.table.slots());
    let leaf_hashes = crate::merkle::leaves(built.table.slots());
    let manifest = Manifest::for_table(&built.table, 1, CHUNKED_CREATED, None);
    let operator = vector_operator();
    let signed = manifest.sign(&operator);
    let entries: Vec<Value> = built
        .entries
        .iter()
        .enumerate()
        .map(|(e, item)| {
            json!({
                "entry": e,
                "type": item.item_type().name(),
                "value": h(item.value()),
                "slot": built.index.slot_of(e as u32),
            })
        })
        .collect();

    // One voucher for the first entry placed in each chunk.
    let client = ClientTable::new(built.table.clone())?;
    let matcher = Matcher::new(key, &built.table, built.index.clone())?;
    let mut vouchers = Vec::new();
    for chunk in 0..leaf_count(built.table.slots().len() as u64) as u32 {
        let range = chunk * CHUNK_SLOTS..(chunk + 1) * CHUNK_SLOTS;
        let e = (0..built.entries.len() as u32)
            .filter(|&e| built.index.slot_of(e).is_some_and(|s| range.contains(&s)))
            .min()
            .ok_or(Error::TooManyEntries(0))?;
        let item = &built.entries[e as usize];
        let label = |what: &str| format!("blindmatch-v1 test vectors: chunked {what} {chunk}");
        let secrets = VoucherSecrets::from_bytes(
            label_scalar(&label("beta")).to_bytes(),
            label_scalar(&label("gamma")).to_bytes(),
            label_bytes(&label("payload key")),
        )?;
        let ad = format!("chunk {chunk}").into_bytes();
        let voucher = client.seal(item, &ad, &secrets, None)?;
        let wire = voucher.encode();
        let opened = matcher
            .open(&Voucher::decode(&wire, header.k)?)?
            .ok_or(Error::TooManyEntries(0))?;
        vouchers.push(json!({
            "chunk": chunk,
            "input": {
                "type": item.item_type().name(),
                "value": h(item.value()),
                "associated_data": h(&ad),
                "beta": h(label_scalar(&label("beta")).to_bytes()),
                "gamma": h(label_scalar(&label("gamma")).to_bytes()),
                "payload_key": h(label_bytes(&label("payload key"))),
            },
            "voucher": h(&wire),
            "match": {"entry": opened.entry, "position": opened.position, "slot": built.index.slot_of(opened.entry)},
        }));
    }

    Ok(json!({
        "description": "SPEC 13.2 and 13.3: a first build (version 1) of 40 entries in 2 x 2048 + 100 slots, three chunks, under the vectors' server key; every slot not holding an entry is a first-build filler (SPEC 5.4). `chunks` gives each chunk's offset (bytes), leaf hash and audit path; `manifest` its signed statement under the lifecycle's operator key; `vouchers` one voucher for an entry in each chunk, with the entry it opens to.",
        "k": header.k,
        "seed": h(header.seed),
        "n_slots": header.n_slots,
        "header": h(header.encode()),
        "slots": built.table.slots().chunks(32).map(h).collect::<Vec<_>>(),
        "table_id": h(built.table.id().0),
        "digest": h(tree.root()),
        "entries": entries,
        "chunks": (0..leaf_count(built.table.slots().len() as u64)).map(|i| json!({
            "leaf": i,
            "offset": i * u64::from(CHUNK_SLOTS) * 32,
            "leaf_hash": h(leaf_hashes[i as usize]),
            "path": tree.proof(i).unwrap_or_default().iter().map(h).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "manifest": {
            "version": manifest.version,
            "created": manifest.created,
            "statement": h(manifest.encode()),
            "signature": h(signed.signature),
        },
        "vouchers": vouchers,
    }))
}

/// A short, stable name for each error a negative vector expects.
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Length { .. } => "length",
        Error::InvalidPoint(_) => "invalid_point",
        Error::IdentityPoint(_) => "identity_point",
        Error::InvalidScalar(_) => "invalid_scalar",
        Error::ZeroScalar(_) => "zero_scalar",
        Error::BadMagic(_) => "bad_magic",
        Error::UnsupportedVersion { .. } => "unsupported_version",
        Error::KeyMismatch => "key_mismatch",
        Error::MalformedPayload(_) => "malformed",
        Error::ForgedMatch => "forged",
        Error::BadSignature => "bad_signature",
        Error::InvalidOperatorKey(_) => "invalid_operator_key",
        _ => "other",
    }
}

/// The submission digest of all cases' vouchers as one batch (SPEC 12.3),
/// every entry's keyed fingerprint (SPEC 7, informative), and negative
/// vectors: inputs every implementation must refuse, each with the result
/// this implementation gives (SPEC 10).
fn extra_vectors(
    key: &ServerKey,
    built: &BuiltTable,
    matcher: &Matcher,
    wires: &[Vec<u8>],
) -> Result<Value, Error> {
    use crate::manifest::{Manifest, OperatorSigningKey, OperatorVerifyingKey, SignedManifest};
    let k = built.table.header().k;
    let vouchers: Vec<Voucher> = wires
        .iter()
        .map(|w| Voucher::decode(w, k))
        .collect::<Result<_, _>>()?;
    let digest = crate::voucher::submission_digest(built.table.id(), &vouchers);
    let fp = crate::table::Fingerprinter::new(key);
    let fingerprints: Vec<Value> = built.entries.iter().map(|i| h(fp.fingerprint(i))).collect();

    let mut negative = Vec::new();
    // Vouchers: the first case (a match), altered.
    let base = &wires[0];
    let outcome = |bytes: &[u8]| -> String {
        match Voucher::decode(bytes, k) {
            Err(e) => error_kind(&e).to_string(),
            Ok(v) => match matcher.open(&v) {
                Ok(Some(_)) => "match".into(),
                Ok(None) => "no_match".into(),
                Err(e) => error_kind(&e).to_string(),
            },
        }
    };
    let opened = matcher
        .open(&vouchers[0])?
        .map_or(0, |m| usize::from(m.position));
    let box_at = 33 + 80 * opened;
    let alter = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("voucher one byte short", base[..base.len() - 1].to_vec()),
        ("voucher version 2", alter(&|b| b[0] = 2)),
        (
            "voucher Q not canonical (all 0xff)",
            alter(&|b| b[1..33].fill(0xff)),
        ),
        ("voucher Q the identity", alter(&|b| b[1..33].fill(0))),
        (
            "voucher confirm of the opened box changed",
            alter(&|b| b[box_at] ^= 1),
        ),
        (
            "voucher wrapped key of the opened box changed",
            alter(&|b| b[box_at + 40] ^= 1),
        ),
        (
            "voucher closed box changed",
            alter(&|b| b[33 + 80 * ((opened + 1) % usize::from(k)) + 50] ^= 1),
        ),
        (
            "voucher payload changed",
            alter(&|b| b[33 + 80 * usize::from(k) + 3] ^= 1),
        ),
        (
            "voucher payload tag changed",
            alter(&|b| {
                let n = b.len();
                b[n - 1] ^= 1
            }),
        ),
    ];
    for (what, bytes) in cases {
        negative.push(json!({ "what": what, "kind": "voucher", "input": h(&bytes), "result": outcome(&bytes) }));
    }

    // Key files.
    let file = key.to_bytes();
    let key_case = |bytes: &[u8]| match ServerKey::from_bytes(bytes) {
        Ok(_) => "ok".to_string(),
        Err(e) => error_kind(&e).to_string(),
    };
    let ell: [u8; 32] = {
        let mut l = [0u8; 32];
        l.copy_from_slice(
            &hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
                .unwrap_or_default(),
        );
        l
    };
    let alt = |f: &dyn Fn(&mut [u8])| {
        let mut b = file.to_vec();
        f(&mut b);
        b
    };
    let key_cases: Vec<(&str, Vec<u8>)> = vec![
        ("key file wrong magic", alt(&|b| b[0] = b'X')),
        ("key file version 2", alt(&|b| b[4] = 2)),
        (
            "key file alpha = l (not canonical)",
            alt(&|b| b[5..37].copy_from_slice(&ell)),
        ),
        ("key file alpha = 0", alt(&|b| b[5..37].fill(0))),
        (
            "key file public key of another scalar",
            alt(&|b| {
                b[37..69].copy_from_slice(
                    &crate::encoding::PublicKey::from_point(
                        curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT,
                    )
                    .to_bytes(),
                )
            }),
        ),
        ("key file one byte short", file[..68].to_vec()),
    ];
    for (what, bytes) in key_cases {
        negative.push(json!({ "what": what, "kind": "key_file", "input": h(&bytes), "result": key_case(&bytes) }));
    }

    // Manifest signatures and operator keys (SPEC 13.3).
    let op = OperatorSigningKey::from_seed(label_bytes(
        "blindmatch-v1 test vectors: negative operator key",
    ));
    let vk = op.verifying_key();
    let statement = Manifest::for_table(&built.table, 1, 1_764_633_600, None);
    let signed = statement.sign(&op);
    let st = statement.encode();
    let sig = signed.signature;
    let verify = |key: &[u8], sig: &[u8]| -> String {
        match OperatorVerifyingKey::from_bytes(key) {
            Err(e) => error_kind(&e).to_string(),
            Ok(k) => match SignedManifest::verify(&st, sig, &k) {
                Ok(_) => "ok".into(),
                Err(e) => error_kind(&e).to_string(),
            },
        }
    };
    // S + ℓ, little-endian (S < ℓ < 2^253, so no overflow).
    let s_plus_l = {
        let mut out = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(ell[i]) + carry;
            out[32 + i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        out
    };
    let mut identity = [0u8; 32];
    identity[0] = 1; // Ed25519's identity (x = 0, y = 1): small order
    let with_r = |r: [u8; 32]| {
        let mut out = sig;
        out[..32].copy_from_slice(&r);
        out
    };
    let flipped = |i: usize| {
        let mut out = sig;
        out[i] ^= 1;
        out
    };
    let vkb = vk.to_bytes();
    // A non-canonical encoding of a regular point: y = p + y0 for the
    // first y0 in 2..19 on the curve and not of small order.
    let noncanonical_key = (2u8..19)
        .map(|y0| {
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y0;
            b[31] = 0x7f;
            b
        })
        .find(|b| {
            curve25519_dalek::edwards::CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| !p.is_small_order())
        })
        .unwrap_or([0; 32]);
    let sig_cases: Vec<(&str, [u8; 32], [u8; 64])> = vec![
        ("the valid signature", vkb, sig),
        ("S + l (S not canonical)", vkb, s_plus_l),
        ("R of small order (the identity)", vkb, with_r(identity)),
        ("a bit of R flipped", vkb, flipped(0)),
        ("a bit of S flipped", vkb, flipped(40)),
        ("key of small order (the identity)", identity, sig),
        ("key not a canonical encoding", noncanonical_key, sig),
    ];
    for (what, key_bytes, sig_bytes) in sig_cases {
        negative.push(json!({
            "what": what,
            "kind": "manifest_signature",
            "statement": h(&st),
            "verifying_key": h(key_bytes),
            "signature": h(sig_bytes),
            "result": verify(&key_bytes, &sig_bytes),
        }));
    }
    // Forged vouchers (SPEC 7 step 8 and 8): Q = gamma*G, so that the
    // client knows alpha*Q = gamma*L and every box opens; appended after the
    // cases above so that their places in `negative` stay as they were.
    let l_point = *key.public_key().point();
    let forged_gamma = label_scalar("blindmatch-v1 test vectors: forged gamma");
    let forged_key = label_bytes("blindmatch-v1 test vectors: forged payload key");
    let forge = |item: &Item, ad: &[u8]| -> Vec<u8> {
        forged_voucher(built, &l_point, &forged_gamma, &forged_key, item, ad)
    };
    let unlisted = Item::new(
        ItemType::Sha256,
        &label_bytes("blindmatch-v1 test vectors: unlisted"),
    )?;
    // Box 0 opens first; a listed entry not placed at its position 0.
    let elsewhere = built
        .entries
        .iter()
        .enumerate()
        .find(|&(e, _)| landed_at(built, e as u32) != Some(0))
        .map(|(_, item)| item.clone())
        .ok_or(Error::TooManyEntries(0))?;
    for (what, item) in [
        (
            "voucher forged (Q = gamma*G, every box opens) for an unlisted item",
            &unlisted,
        ),
        (
            "voucher forged (Q = gamma*G, every box opens) for a listed item not placed at position 0",
            &elsewhere,
        ),
    ] {
        let bytes = forge(item, b"forged");
        negative.push(json!({
            "what": what,
            "kind": "voucher",
            "input": h(&bytes),
            "result": outcome(&bytes),
            "forged": {
                "gamma": h(forged_gamma.to_bytes()),
                "payload_key": h(forged_key),
                "type": item.item_type().name(),
                "value": h(item.value()),
                "associated_data": h(b"forged"),
            },
        }));
    }

    Ok(json!({
        "submission_digest": { "vouchers": "every case's voucher, in order", "digest": h(digest) },
        "entry_fingerprints": fingerprints,
        "negative": negative,
        "negative_operator": {
            "signing_key_seed": h(label_bytes("blindmatch-v1 test vectors: negative operator key")),
            "verifying_key": h(vk.to_bytes()),
            "version": statement.version,
            "created": statement.created,
            "digest": h(statement.digest),
        },
    }))
}

/// A version-1 voucher with Q = gamma*G: the forger knows S = gamma*L, so
/// every box j opens and wraps `payload_key`, and the payload carries any
/// item it likes (SPEC 8).
fn forged_voucher(
    built: &BuiltTable,
    l: &curve25519_dalek::ristretto::RistrettoPoint,
    gamma: &Scalar,
    payload_key: &[u8; 32],
    item: &Item,
    ad: &[u8],
) -> Vec<u8> {
    use crate::kdf::{SharedSecret, seal};
    use crate::voucher::{PositionBox, outer_prefix};
    let table_id = built.table.id().0;
    let q = (gamma * curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE)
        .compress()
        .to_bytes();
    let shared = SharedSecret::extract(&(gamma * l).compress().to_bytes());
    let boxes: Vec<PositionBox> = (0..built.table.header().k)
        .map(|j| {
            let keys = shared.expand(&table_id, &q, j);
            let mut wrapped = [0u8; 48];
            wrapped[..32].copy_from_slice(payload_key);
            let tag = seal(&keys.wrap_key, &[], &mut wrapped[..32]);
            wrapped[32..].copy_from_slice(&tag);
            PositionBox {
                confirm: keys.confirm,
                wrapped,
            }
        })
        .collect();
    let prefix = outer_prefix(crate::table::PROTOCOL_VERSION, &q, &boxes);
    let mut payload = vec![0u8; PAYLOAD_LEN];
    crate::voucher::encode_payload(item, ad, &mut payload);
    let aad = [&table_id[..], &prefix].concat();
    let tag = seal(payload_key, &aad, &mut payload);
    [&prefix[..], &payload, &tag].concat()
}
