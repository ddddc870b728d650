//! The list audit's test vectors (SPEC Section 15.7): an organisation's
//! list and its digest; a first build and the full bundle for that list,
//! with every value of the batched proof; version 2 built in place and its
//! delta bundle with fresh fillers; co-signatures and quorum cases; and
//! bundles that must be refused, each with the refusal.
//!
//! Regenerate with `cargo run -p blindmatch-protocol --features
//! test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json
//! protocol/vectors/blindmatch-v2-threshold.json protocol/vectors/blindmatch-audit.json`;
//! `tests/interop_vectors.rs` fails on any byte of difference.

use curve25519_dalek::{RistrettoPoint, Scalar};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use super::bundle::entry_pairs;
use super::dleq::Suite;
use super::{
    AuditBundle, AuditError, AuditList, AuditState, CoSignature, EntrySlot, OrgName, Quorum,
    SlotFailure,
};
use crate::error::Error;
use crate::hash_to_group::hash_item;
use crate::item::{Item, ItemType};
use crate::key::ServerKey;
use crate::manifest::{Manifest, OperatorSigningKey, SignedManifest};
use crate::table::{BlindedTable, BuiltTable, SLOT_LEN, TableBuilder, UpdateOptions, update};
use crate::vectors::{label_bytes, label_scalar};

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn p(point: &RistrettoPoint) -> Value {
    h(point.compress().as_bytes())
}

/// The i-th item: SHA-256 values from a label.
fn item(i: usize) -> Item {
    let d = Sha512::digest(format!("blindmatch-audit test vector item {i}").as_bytes());
    Item::new(ItemType::Sha256, &d[..32]).unwrap_or_else(|e| unreachable!("{e}"))
}

const CREATED: u64 = 1_790_000_000;

/// The vectors as pretty-printed JSON, ending in a newline.
///
/// # Errors
/// Only if this code is wrong (an invalid fixed input).
pub fn generate() -> Result<String, Error> {
    let v = audit_vectors().map_err(|e| match e {
        AuditError::Bundle(e) => e,
        other => unreachable!("the vectors' fixed inputs pass: {other}"),
    })?;
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&v).unwrap_or_default()
    ))
}

fn table_json(table: &BlindedTable, manifest: &SignedManifest) -> Value {
    json!({
        "header": h(table.header().encode()),
        "slots": table.slots().chunks(SLOT_LEN).map(h).collect::<Vec<_>>(),
        "table_id": h(table.id().0),
        "manifest": {
            "statement": h(manifest.manifest.encode()),
            "signature": h(manifest.signature),
        },
    })
}

/// A bundle with its proof remade from the fixed `r`, and every value of
/// that proof (SPEC 15.3).
fn proved(
    key: &ServerKey,
    table: &BlindedTable,
    list: &AuditList,
    mut bundle: AuditBundle,
    r_label: &str,
) -> Result<(AuditBundle, Value), AuditError> {
    let r = label_scalar(r_label);
    let pairs = entry_pairs(table, list, &bundle.entries);
    let suite = Suite::AUDIT;
    let l = RistrettoPoint::mul_base(key.scalar());
    let weights = suite.weights(&l, &pairs).map_err(AuditError::Bundle)?;
    let proving = suite
        .prove_with(key.scalar(), &pairs, &r)
        .map_err(AuditError::Bundle)?;
    bundle.proof = proving.proof;
    let entries: Vec<Value> = bundle
        .entries
        .iter()
        .zip(&pairs)
        .zip(&weights)
        .map(|((e, pair), d)| {
            json!({
                "slot": e.slot, "list_index": e.list_index,
                "C": h(pair.c_bytes), "D": h(pair.d_bytes), "d": h(d.as_bytes()),
            })
        })
        .collect();
    let detail = json!({
        "encoding": h(bundle.encode()),
        "base": bundle.base.map(|b| h(b.0)),
        "filler_key": h(bundle.filler_key),
        "entries": entries,
        "fresh": bundle.fresh.iter().map(|(s, v)| json!({"slot": s, "version": v})).collect::<Vec<_>>(),
        "proof": {
            "seed": h(suite.seed(&l, &pairs)),
            "M": p(&proving.composite_m),
            "Z": p(&proving.composite_z),
            "r": h(r.as_bytes()),
            "t2": p(&proving.t2),
            "t3": p(&proving.t3),
            "c": h(proving.proof.c.as_bytes()),
            "s": h(proving.proof.s.as_bytes()),
        },
    });
    Ok((bundle, detail))
}

/// What verifying `bundle` gives, as the vectors write it.
fn result(outcome: &Result<super::Audited, AuditError>) -> Value {
    match outcome {
        Ok(a) => {
            json!({ "result": "pass", "entries_proved": a.entries_proved, "fillers_recomputed": a.fillers_recomputed })
        }
        Err(AuditError::Refused {
            slots,
            proof_failed,
        }) => json!({
            "result": "refused",
            "proof_failed": proof_failed,
            "slots": slots.iter().map(|f| json!({
                "slot": f.slot(),
                "failure": match f {
                    SlotFailure::NotAFiller { .. } => "not_a_filler",
                    SlotFailure::Misplaced { .. } => "misplaced",
                    SlotFailure::NotAnElement { .. } => "not_an_element",
                    SlotFailure::NoLongerListed { .. } => "no_longer_listed",
                },
            })).collect::<Vec<_>>(),
        }),
        Err(e) => json!({ "result": "mismatch", "why": e.to_string() }),
    }
}

fn sign(table: &BlindedTable, version: u64, op: &OperatorSigningKey) -> SignedManifest {
    Manifest::for_table(table, version, CREATED + version, None).sign(op)
}

#[allow(clippy::too_many_lines, reason = "one vector file, section by section")]
fn audit_vectors() -> Result<Value, AuditError> {
    let key = ServerKey::from_scalar(label_scalar("blindmatch-audit test vectors: alpha"));
    let op = OperatorSigningKey::from_seed(label_bytes("blindmatch-audit test vectors: operator"));
    let bad = |e: Error| AuditError::Bundle(e);

    // The table holds items 0..12; the organisation lists 0..16 in another
    // order, with item 3 twice (kept once, at its first place).
    let built: BuiltTable = TableBuilder::new(label_bytes("blindmatch-audit test vectors: seed"))
        .build(&key, (0..12).map(item))
        .map_err(bad)?;
    let order = [5, 3, 0, 14, 1, 2, 3, 4, 6, 15, 7, 8, 9, 10, 11, 12, 13];
    let lines: Vec<String> = order
        .iter()
        .map(|&i| format!("sha256 {}", item(i).to_hex()))
        .collect();
    let list = AuditList::new(order.iter().map(|&i| item(i))).map_err(bad)?;
    let m1 = sign(&built.table, 1, &op);
    let (b1, _) = AuditBundle::prove_with_r(
        &key,
        &m1,
        &built.table,
        &built.index,
        &built.placement,
        &list,
        None,
        &label_scalar("blindmatch-audit test vectors: r v1"),
    )?;
    let (b1, b1_json) = proved(
        &key,
        &built.table,
        &list,
        b1,
        "blindmatch-audit test vectors: r v1",
    )?;
    let audited_v1 = b1.verify(&built.table, &list, None);
    let state_v1: AuditState = match &audited_v1 {
        Ok(a) => a.state.clone(),
        Err(e) => unreachable!("the vectors' first bundle passes: {e}"),
    };

    // Version 2 in place: items 0 and 1 removed, 12 and 13 added, one
    // decoy; its delta bundle from version 1 names fresh fillers.
    let v2 = update(
        &key,
        (&built).into(),
        (2..14).map(item),
        &UpdateOptions {
            decoys: 1,
            ..UpdateOptions::new(2, 3)
        },
    )
    .map_err(bad)?;
    let m2 = sign(&v2.table, 2, &op);
    let (b2, _) = AuditBundle::prove_with_r(
        &key,
        &m2,
        &v2.table,
        &v2.index,
        &v2.placement,
        &list,
        Some(&built.table),
        &label_scalar("blindmatch-audit test vectors: r v2"),
    )?;
    let (b2, b2_json) = proved(
        &key,
        &v2.table,
        &list,
        b2,
        "blindmatch-audit test vectors: r v2",
    )?;
    let audited_v2 = b2.verify(&v2.table, &list, Some(&state_v1));

    // Refusals. (1) A filler slot swapped for α·H(z), z on no list, in a
    // table the operator signs anew; the honest bundle claims a filler
    // there. (2) The same slot claimed as an entry of the list. (3) The
    // first bundle with s + 1. (4) The first bundle without one of its
    // entries (a filler claimed for it), proved anew over the rest.
    let swapped = (0..built.table.header().n_slots)
        .find(|&s| built.index.entry_at(s).is_none())
        .unwrap_or(0);
    let z = item(99);
    let mut slots = built.table.slots().to_vec();
    let at = swapped as usize * SLOT_LEN;
    slots[at..at + SLOT_LEN].copy_from_slice((key.scalar() * hash_item(&z)).compress().as_bytes());
    let tampered = BlindedTable::from_parts(*built.table.header(), slots).map_err(bad)?;
    let mt = sign(&tampered, 1, &op);
    let honest = AuditBundle {
        manifest: mt,
        ..b1.clone()
    };
    let (honest, _) = proved(
        &key,
        &tampered,
        &list,
        honest,
        "blindmatch-audit test vectors: r tampered",
    )?;
    let claimed_for = list
        .items()
        .iter()
        .position(|y| {
            built
                .table
                .header()
                .positions(y)
                .as_slice()
                .contains(&swapped)
                && !b1
                    .entries
                    .iter()
                    .any(|e| list.items()[e.list_index as usize] == *y)
        })
        .unwrap_or(0);
    let mut lying = honest.clone();
    lying.entries.push(EntrySlot {
        slot: swapped,
        list_index: u32::try_from(claimed_for).unwrap_or(0),
    });
    lying.entries.sort_by_key(|e| e.slot);
    let (lying, _) = proved(
        &key,
        &tampered,
        &list,
        lying,
        "blindmatch-audit test vectors: r lying",
    )?;
    let mut bad_proof = b1.clone();
    bad_proof.proof.s += Scalar::ONE;
    let mut dropped = b1.clone();
    let gone = dropped.entries.remove(0);
    let (dropped, _) = proved(
        &key,
        &built.table,
        &list,
        dropped,
        "blindmatch-audit test vectors: r dropped",
    )?;
    let negative = vec![
        json!({
            "what": "a filler slot of the first build swapped for α·H(z), z on no list (the table signed anew); the bundle claims a filler there",
            "table": { "from": "v1", "slot": swapped, "value": h(&tampered.slots()[at..at + SLOT_LEN]), "table_id": h(tampered.id().0) },
            "bundle": h(honest.encode()),
            "expect": result(&honest.verify(&tampered, &list, None)),
        }),
        json!({
            "what": "the same table; the bundle claims that slot as the entry of list item list_index",
            "table": { "from": "v1", "slot": swapped, "value": h(&tampered.slots()[at..at + SLOT_LEN]), "table_id": h(tampered.id().0) },
            "list_index": claimed_for,
            "bundle": h(lying.encode()),
            "expect": result(&lying.verify(&tampered, &list, None)),
        }),
        json!({
            "what": "v1's bundle with s + 1 (mod ℓ)",
            "table": { "from": "v1" },
            "bundle": h(bad_proof.encode()),
            "expect": result(&bad_proof.verify(&built.table, &list, None)),
        }),
        json!({
            "what": "v1's bundle without its first entry (claimed as a filler), proved anew over the others",
            "table": { "from": "v1" },
            "slot": gone.slot,
            "bundle": h(dropped.encode()),
            "expect": result(&dropped.verify(&built.table, &list, None)),
        }),
    ];

    // Co-signatures of v1's statement; quorum cases.
    let orgs: Vec<OperatorSigningKey> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            OperatorSigningKey::from_seed(label_bytes(&format!(
                "blindmatch-audit test vectors: organisation {n}"
            )))
        })
        .collect();
    let statement = m1.manifest.encode();
    let name = |n: &str| OrgName::new(n).unwrap_or_else(|e| unreachable!("{e}"));
    let ca = CoSignature::sign(&orgs[0], name("Hotline A"), &statement);
    let cb = CoSignature::sign(&orgs[1], name("Hotline B"), &statement);
    let cc_other = CoSignature::sign(&orgs[2], name("Hotline C"), &m2.manifest.encode());
    let ca_again = CoSignature::sign(&orgs[0], name("Hotline A, again"), &statement);
    let keys: Vec<_> = orgs.iter().map(OperatorSigningKey::verifying_key).collect();
    let case = |what: &str,
                pinned: &[usize],
                q: usize,
                cosigs: &[&CoSignature]|
     -> Result<Value, AuditError> {
        let pinned_keys: Vec<_> = pinned.iter().map(|&i| keys[i]).collect();
        let quorum = Quorum::new(&pinned_keys, q).map_err(bad)?;
        let owned: Vec<CoSignature> = cosigs.iter().map(|&c| c.clone()).collect();
        let n = quorum.count(&statement, &owned);
        Ok(json!({
            "what": what,
            "pinned": pinned_keys.iter().map(|k| h(k.to_bytes())).collect::<Vec<_>>(),
            "required": q,
            "cosignatures": owned.iter().map(|c| h(c.encode())).collect::<Vec<_>>(),
            "counted": n.counted.len(),
            "result": if quorum.reached(&n) { "accepted" } else { "refused" },
        }))
    };
    let quorum_cases = vec![
        case(
            "A and B co-signed; 2 of A, B required",
            &[0, 1],
            2,
            &[&ca, &cb],
        )?,
        case(
            "C co-signed v2's statement, not v1's: 3 of A, B, C required",
            &[0, 1, 2],
            3,
            &[&ca, &cb, &cc_other],
        )?,
        case(
            "A co-signed twice (two names): counted once, 2 of A, B, C required",
            &[0, 1, 2],
            2,
            &[&ca, &ca_again],
        )?,
        case(
            "A pinned twice: counted once; 1 required",
            &[0, 0],
            1,
            &[&ca],
        )?,
        case(
            "B's co-signature, B not pinned (revoked): 1 of A required",
            &[0],
            1,
            &[&cb],
        )?,
    ];

    Ok(json!({
        "note": "SPEC Section 15.7 documents every field; papers/interop/blindmatch_audit.py recomputes them",
        "alpha": h(key.scalar().as_bytes()),
        "L": h(key.public_key().to_bytes()),
        "operator_verifying_key": h(op.verifying_key().to_bytes()),
        "list": { "lines": lines, "items": list.items().len(), "digest": h(list.digest()) },
        "v1": {
            "table": table_json(&built.table, &m1),
            "bundle": b1_json,
            "expect": result(&audited_v1),
        },
        "v2": {
            "removed": [0, 1],
            "added": [12, 13],
            "table": table_json(&v2.table, &m2),
            "changed": v2.changed,
            "bundle": b2_json,
            "expect": result(&audited_v2),
        },
        "negative": negative,
        "cosignature": {
            "org_seed": h(label_bytes("blindmatch-audit test vectors: organisation a")),
            "org_key": h(ca.org_key.to_bytes()),
            "name": ca.name.as_str(),
            "statement": h(&statement),
            "signature": h(ca.signature),
            "encoding": h(ca.encode()),
        },
        "quorum": quorum_cases,
    }))
}
