//! Threshold mode's test vectors (SPEC Section 14): one account, its keys at
//! t = 3 and s = 2, six vouchers (three real ids, one of them made twice,
//! and two synthetic), and the server's detection and reconstruction.
//!
//! Regenerate with
//! `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json protocol/vectors/blindmatch-v2-threshold.json`;
//! `tests/interop_vectors.rs` fails on any byte of difference, and
//! `papers/interop/blindmatch_v2.py` recomputes every value from SPEC.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::field::Fp61;
use super::{
    AccountSecret, INNER_LEN, INNER_NONCE_LEN, Opened, Outcome, Share, SyntheticRate,
    VOUCHER_ID_LEN, inner_key, reveal,
};
use crate::error::Error;
use crate::item::{Item, ItemType};
use crate::voucher::{PAYLOAD_LEN, encode_payload};

fn h(bytes: impl AsRef<[u8]>) -> Value {
    Value::String(hex::encode(bytes))
}

fn label(l: &str) -> [u8; 32] {
    Sha256::digest(l.as_bytes()).into()
}

fn tag_json(tag: &[u64]) -> Value {
    Value::Array(tag.iter().map(|&e| json!(e)).collect())
}

/// The vectors as pretty-printed JSON, ending in a newline.
///
/// # Errors
/// Only if this code is wrong (an invalid fixed input).
pub fn generate() -> Result<String, Error> {
    let v = threshold_vectors()?;
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&v).unwrap_or_default()
    ))
}

fn threshold_vectors() -> Result<Value, Error> {
    let (t, s) = (3u16, 2u16);
    let seed = label("blindmatch-v2 test vector account seed");
    // Rate 1/2, so that a few fixed ids give both kinds.
    let secret = AccountSecret::from_parts(b"account-0001", seed, SyntheticRate(1 << 31))?;
    let keys = secret.keys(t, s)?;
    let (prk, coefficients, detection, _) = keys.trace(&[0; VOUCHER_ID_LEN]);

    // The first ids (SHA-256 of a label, first 16 bytes) whose coin says
    // real, three of them, and synthetic, two.
    let mut real_ids = Vec::new();
    let mut synthetic_ids = Vec::new();
    for i in 0u32.. {
        if real_ids.len() == 3 && synthetic_ids.len() == 2 {
            break;
        }
        let mut id = [0u8; VOUCHER_ID_LEN];
        id.copy_from_slice(&label(&format!("blindmatch-v2 test vector voucher id {i}"))[..16]);
        let c = keys.choose(&id);
        if c.synthetic && synthetic_ids.len() < 2 {
            synthetic_ids.push(id);
        } else if !c.synthetic && real_ids.len() < 3 {
            real_ids.push(id);
        }
    }
    let item_of = |i: usize| -> Result<Item, Error> {
        Item::new(
            ItemType::Sha256,
            &label(&format!("blindmatch-v2 test vector item {i}")),
        )
        .map_err(Error::from)
    };

    // Order received: real 0, synthetic 0, real 1, real 1 again, synthetic 1, real 2.
    let plan: [(bool, usize, &[u8]); 6] = [
        (true, 0, b"upload 0"),
        (false, 0, b""),
        (true, 1, b"upload 1"),
        (true, 1, b"upload 1, sent again"),
        (false, 1, b""),
        (true, 2, b"upload 2"),
    ];
    let mut shares = Vec::new();
    let mut cases = Vec::new();
    for (n, &(real, i, ad)) in plan.iter().enumerate() {
        let id = if real { real_ids[i] } else { synthetic_ids[i] };
        let (_, _, _, r) = keys.trace(&id);
        let choice = keys.choose(&id);
        let mut case = json!({
            "voucher_id": h(id),
            "choice_bytes": h(r),
            "x": choice.x,
            "synthetic": choice.synthetic,
        });
        let share = if real {
            let nonce: [u8; INNER_NONCE_LEN] =
                label(&format!("blindmatch-v2 test vector inner nonce {n}"))[..16]
                    .try_into()
                    .unwrap_or([0; 16]);
            let item = item_of(i)?;
            let mut payload = vec![0u8; PAYLOAD_LEN];
            encode_payload(&item, ad, &mut payload);
            case["type"] = json!("sha256");
            case["value"] = h(item.value());
            case["associated_data"] = h(ad);
            case["inner_nonce"] = h(nonce);
            case["inner_key"] = h(*inner_key(&keys.key_scalar(), &nonce));
            case["payload_plaintext"] = h(&payload);
            Share::real_with(&keys, &id, &item, ad, nonce)?
        } else {
            // Stands in for the random bytes: SHA-256 of a label, repeated.
            let base = label(&format!("blindmatch-v2 test vector synthetic inner {n}"));
            let inner: Vec<u8> = (0..INNER_LEN).map(|b| base[b % 32]).collect();
            case["synthetic_expand"] = h({
                let mut out = vec![0u8; 64 + 8 * usize::from(s)];
                let hk = hkdf::Hkdf::<Sha256>::from_prk(&prk).map_err(|_| Error::KeyMismatch)?;
                hk.expand_multi_info(
                    &[b"blindmatch-v2/synthetic", &t.to_be_bytes(), &id],
                    &mut out,
                )
                .map_err(|_| Error::KeyMismatch)?;
                out
            });
            case["inner"] = h(&inner);
            Share::synthetic_with(&keys, &id, inner)
        };
        case["share"] = h(share.share);
        case["tag"] = tag_json(&share.tag);
        case["share_encoding"] = h(share.encode());
        cases.push(case);
        shares.push(share);
    }

    let outcome = |n: usize| -> Result<Value, Error> {
        Ok(match reveal(t, &shares[..n])? {
            Outcome::Below => json!({ "shares": n, "outcome": "below" }),
            Outcome::Inconsistent => json!({ "shares": n, "outcome": "inconsistent" }),
            Outcome::Revealed(r) => json!({
                "shares": n,
                "outcome": "revealed",
                "real": r.real.iter().map(|o| match o {
                    Opened::Item { index, item, associated_data } => json!({
                        "index": index, "type": item.item_type().name(),
                        "value": h(item.value()), "associated_data": h(associated_data),
                    }),
                    Opened::Malformed { index, .. } => json!({ "index": index, "malformed": true }),
                }).collect::<Vec<_>>(),
                "synthetic": r.synthetic,
            }),
        })
    };
    // After each share arrives: below until the third distinct real id.
    let server: Vec<Value> = (1..=shares.len()).map(outcome).collect::<Result<_, _>>()?;

    // Version-2 vouchers (SPEC 14.7) for the table of blindmatch-v1.json:
    // a listed item under a real id, an unlisted item under a synthetic id,
    // and an unlisted item under a real id.
    let (server_key, built) = crate::vectors::vector_table()?;
    let client = crate::voucher::ClientTable::new(built.table.clone())?;
    let matcher = crate::matcher::Matcher::new(&server_key, &built.table, built.index.clone())?;
    let weights = super::placement_weights(&built);
    let k = built.table.header().k;
    let listed = built.entries[0].clone();
    let unlisted = item_of(100)?;
    let mut outer = Vec::new();
    for (n, (id, item, ad)) in [
        (real_ids[0], &listed, &b"listed, real id"[..]),
        (synthetic_ids[0], &unlisted, &b"unlisted, synthetic id"[..]),
        (real_ids[1], &unlisted, &b"unlisted, real id"[..]),
    ]
    .into_iter()
    .enumerate()
    {
        let l = |what: &str| label(&format!("blindmatch-v2 test vector outer {n} {what}"));
        let scalar = |what: &str| {
            let mut wide = [0u8; 64];
            wide[..32].copy_from_slice(&l(what));
            wide[32..].copy_from_slice(&l(&format!("{what} high")));
            curve25519_dalek::scalar::Scalar::from_bytes_mod_order_wide(&wide).to_bytes()
        };
        let (beta, gamma, payload_key) = (scalar("beta"), scalar("gamma"), l("payload key"));
        let draw = u64::from_be_bytes(l("draw")[..8].try_into().unwrap_or([0; 8]));
        let fake_boxes: Vec<crate::voucher::PositionBox> = (0..k)
            .map(|j| {
                let bytes = [
                    l(&format!("fake box {j} a")),
                    l(&format!("fake box {j} b")),
                    l(&format!("fake box {j} c")),
                ]
                .concat();
                crate::voucher::PositionBox {
                    confirm: bytes[..32].try_into().unwrap_or([0; 32]),
                    wrapped: bytes[32..80].try_into().unwrap_or([0; 48]),
                }
            })
            .collect();
        let nonce: [u8; INNER_NONCE_LEN] = l("inner nonce")[..16].try_into().unwrap_or([0; 16]);
        let synthetic_inner: Vec<u8> = (0..INNER_LEN)
            .map(|b| l("synthetic inner")[b % 32])
            .collect();
        let r = super::voucher::VoucherRandomness {
            secrets: crate::voucher::VoucherSecrets::from_bytes(beta, gamma, payload_key)?,
            draw,
            fake_boxes: fake_boxes.clone(),
            nonce,
            synthetic_inner: synthetic_inner.clone(),
        };
        let v = client.create_threshold_voucher_with(
            &keys,
            secret.account_id(),
            &id,
            item,
            ad,
            &weights,
            &r,
        )?;
        let opened = matcher
            .open_threshold_batch(s, &[(secret.account_id(), &v)])
            .pop()
            .unwrap_or(Ok(None))?;
        outer.push(json!({
            "voucher_id": h(id),
            "synthetic": keys.choose(&id).synthetic,
            "type": item.item_type().name(),
            "value": h(item.value()),
            "associated_data": h(ad),
            "beta": h(beta),
            "gamma": h(gamma),
            "payload_key": h(payload_key),
            "draw": draw,
            "fake_boxes": fake_boxes.iter().map(|b| h([&b.confirm[..], &b.wrapped[..]].concat())).collect::<Vec<_>>(),
            "inner_nonce": h(nonce),
            "synthetic_inner": h(&synthetic_inner),
            "voucher": h(v.encode()),
            "server": match opened {
                Some(c) => json!({ "opened_position": c.position, "share_encoding": h(c.share.encode()) }),
                None => json!({ "opened_position": null }),
            },
        }));
    }

    // The version-2 manifest of that table (SPEC 14.8), signed with the
    // operator key of blindmatch-v1.json.
    let operator_seed = crate::vectors::label_bytes("blindmatch-v1 test vectors: operator key");
    let operator = crate::manifest::OperatorSigningKey::from_seed(operator_seed);
    let manifest = crate::manifest::Manifest {
        version: 1,
        created: 1_790_000_000,
        table_id: *built.table.id(),
        digest: *crate::merkle::MerkleTree::new(built.table.slots()).root(),
        chunk_slots: crate::merkle::CHUNK_SLOTS,
        header: *built.table.header(),
        threshold: Some(crate::manifest::ThresholdParams::new(t, s, &weights)?),
    };
    let signed = manifest.sign(&operator);

    Ok(json!({
        "table_id": h(built.table.id().0),
        "placement_weights": weights,
        "manifest": {
            "signing_key_seed": h(operator_seed),
            "verifying_key": h(operator.verifying_key().to_bytes()),
            "version": manifest.version,
            "created": manifest.created,
            "digest": h(manifest.digest),
            "statement": h(manifest.encode()),
            "signed_message_prefix": "blindmatch-v1/manifest",
            "signature": h(signed.signature),
        },
        "outer": outer,
        "t": t,
        "s": s,
        "account": {
            "account_id": h(secret.account_id()),
            "seed": h(seed),
            "rate": secret.rate().0,
            "file": h(&*secret.encode()),
            "prk": h(prk),
            "coefficients": coefficients.iter().map(|c| h(c.to_bytes())).collect::<Vec<_>>(),
            "key_scalar": h(coefficients[0].to_bytes()),
            "detection": detection.iter()
                .map(|d| Value::Array(d.iter().map(|e: &Fp61| json!(e.value())).collect()))
                .collect::<Vec<_>>(),
        },
        "vouchers": cases,
        "server": server,
        "note": "vouchers in the order received; server[i] is the outcome after the first i + 1",
    }))
}
