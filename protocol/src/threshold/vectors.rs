//! Threshold mode's test vectors (SPEC Section 14): one account, its keys at
//! t = 3 and s = 2, six vouchers (three real ids, one of them made twice,
//! and two synthetic), and the server's detection and reconstruction; the
//! version-2 outer layer and manifest for the table of `blindmatch-v1.json`;
//! submission digests (14.9); other lists of shares (an inconsistent window,
//! a tampered share at |R| = t); share encodings the decoder refuses (14.3)
//! and a voucher that carries one; vouchers at a server of the other version.
//! SPEC 14.11 documents every field.
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

/// SPEC 14.6's outcome for `shares`, as `server[]` and `reveal_cases[]`
/// give it.
fn outcome_json(t: u16, shares: &[Share]) -> Result<Value, Error> {
    let n = shares.len();
    Ok(match reveal(t, shares)? {
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
}

/// The i-th candidate voucher id: SHA-256 of a label, first 16 bytes.
fn voucher_id(i: u32) -> [u8; VOUCHER_ID_LEN] {
    let mut id = [0u8; VOUCHER_ID_LEN];
    id.copy_from_slice(&label(&format!("blindmatch-v2 test vector voucher id {i}"))[..16]);
    id
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
        let id = voucher_id(i);
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

    // After each share arrives: below until the third distinct real id.
    let server: Vec<Value> = (1..=shares.len())
        .map(|n| outcome_json(t, &shares[..n]))
        .collect::<Result<_, _>>()?;

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
    let mut outer_vouchers = Vec::new();
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
        let sender = super::VoucherAccount {
            keys: &keys,
            account_id: secret.account_id(),
            weights: &weights,
        };
        let upload = super::Upload::new(&id, item.clone(), ad.to_vec())?;
        let v = client.create_threshold_voucher_with(&sender, &upload, &r)?;
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
        outer_vouchers.push(v);
    }

    // SPEC 14.9: the version-2 submission digest of batches of `outer`.
    let digest_case = |what: &str, account_id: &[u8], n: usize| {
        json!({
            "what": what,
            "account_id": h(account_id),
            "outer": (0..n).collect::<Vec<_>>(),
            "digest": h(super::submission_digest(built.table.id(), account_id, &outer_vouchers[..n])),
        })
    };
    let submission_digests = vec![
        digest_case(
            "every outer voucher, in order, under the account's id",
            secret.account_id(),
            outer_vouchers.len(),
        ),
        digest_case(
            "the same batch under another account id: other content",
            b"account-0002",
            outer_vouchers.len(),
        ),
        digest_case(
            "outer[0..2] under the account's id: the batch of blindmatch-wire.json's threshold Submit request",
            secret.account_id(),
            2,
        ),
    ];

    // SPEC 7 step 1 and 14.7: a voucher of one version at a server of the
    // other is refused for its length, checked before the version byte.
    let kind = |r: Result<(), Error>| match r {
        Ok(()) => "ok",
        Err(Error::Length { .. }) => "length",
        Err(Error::UnsupportedVersion { .. }) => "unsupported_version",
        Err(_) => "other",
    };
    let v1_case0 = crate::voucher::Voucher::decode(
        &{
            // blindmatch-v1.json cases[0]: the first listed md5 entry, no
            // associated data, with that file's fixed randomness.
            let secrets = crate::voucher::VoucherSecrets::from_bytes(
                crate::vectors::label_scalar("blindmatch-v1 test vectors: beta 0").to_bytes(),
                crate::vectors::label_scalar("blindmatch-v1 test vectors: gamma 0").to_bytes(),
                crate::vectors::label_bytes("blindmatch-v1 test vectors: payload key 0"),
            )?;
            client
                .seal(&built.entries[0], b"", &secrets, None)?
                .encode()
        },
        k,
    )?
    .encode();
    let mut relabelled = outer_vouchers[0].encode();
    relabelled[0] = 1;
    let cross_version = vec![
        json!({
            "what": "outer[0] (version 2) decoded by a version-1 server (SPEC 7 step 1)",
            "voucher": h(outer_vouchers[0].encode()),
            "result": kind(crate::voucher::Voucher::decode(&outer_vouchers[0].encode(), k).map(|_| ())),
        }),
        json!({
            "what": "blindmatch-v1.json cases[0].voucher (version 1) decoded by a version-2 server (SPEC 14.7)",
            "voucher": h(&v1_case0),
            "result": kind(super::ThresholdVoucher::decode(&v1_case0, k, s).map(|_| ())),
        }),
        json!({
            "what": "outer[0] with its first byte set to 1 (the right length for version 2, the wrong version byte)",
            "voucher": h(&relabelled),
            "result": kind(super::ThresholdVoucher::decode(&relabelled, k, s).map(|_| ())),
        }),
    ];

    let reveal_cases = reveal_cases(&keys, t, &shares, &real_ids)?;
    let share_decoding = share_decoding(&shares[0], s);
    let malformed_voucher = malformed_voucher(
        &server_key,
        &built,
        &matcher,
        secret.account_id(),
        &shares[0],
        s,
    )?;

    // The version-2 manifest of that table (SPEC 14.8), signed with the
    // operator key of blindmatch-v1.json.
    let operator_seed = crate::vectors::label_bytes("blindmatch-v1 test vectors: operator key");
    let operator = crate::manifest::OperatorSigningKey::from_seed(operator_seed);
    let threshold = crate::manifest::ThresholdParams::new(t, s, &weights)?;
    let manifest =
        crate::manifest::Manifest::for_table(&built.table, 1, 1_790_000_000, Some(threshold));
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
        "submission_digests": submission_digests,
        "reveal_cases": reveal_cases,
        "share_decoding": share_decoding,
        "malformed_voucher": malformed_voucher,
        "cross_version": cross_version,
        "note": "vouchers in the order received; server[i] is the outcome after the first i + 1",
    }))
}

/// A share with its share value plus 1 (mod ℓ): on no polynomial of the
/// account's, with the x, tag and inner layer of the original.
fn tampered(share: &Share) -> Share {
    let value = curve25519_dalek::scalar::Scalar::from_canonical_bytes(share.share)
        .unwrap_or(curve25519_dalek::scalar::Scalar::ZERO);
    Share {
        x: share.x,
        share: (value + curve25519_dalek::scalar::Scalar::ONE).to_bytes(),
        tag: share.tag.clone(),
        inner: share.inner.clone(),
    }
}

/// SPEC 14.6 on lists of shares other than `vouchers`' prefixes: an
/// inconsistent window, and exactly t shares of which one is tampered.
fn reveal_cases(
    keys: &super::AccountKeys,
    t: u16,
    shares: &[Share],
    real_ids: &[[u8; VOUCHER_ID_LEN]],
) -> Result<Value, Error> {
    // A fourth real voucher id: the next one after `real_ids`.
    let id = (0u32..)
        .map(voucher_id)
        .filter(|id| !keys.choose(id).synthetic)
        .nth(real_ids.len())
        .unwrap_or([0; VOUCHER_ID_LEN]);
    let item = Item::new(ItemType::Sha256, &label("blindmatch-v2 test vector item 3"))?;
    let ad = b"upload 3";
    let nonce: [u8; INNER_NONCE_LEN] = label("blindmatch-v2 test vector inner nonce 6")[..16]
        .try_into()
        .unwrap_or([0; 16]);
    let fourth = Share::real_with(keys, &id, &item, ad, nonce)?;
    let fourth_json = json!({
        "voucher_id": h(id),
        "x": fourth.x,
        "synthetic": false,
        "type": "sha256",
        "value": h(item.value()),
        "associated_data": h(ad),
        "inner_nonce": h(nonce),
    });
    let plus_one = |mut v: Value| {
        v["add_to_share"] = json!(1);
        v
    };
    let cases: Vec<(&str, Vec<Value>, Vec<Share>)> = vec![
        (
            "inconsistent: four real shares (a short window: 4 distinct shares, fewer than t + s), the fourth with its share value plus 1; detection finds all four, the polynomial through the first three misses the fourth",
            vec![
                json!({"voucher": 0}),
                json!({"voucher": 2}),
                json!({"voucher": 5}),
                plus_one(fourth_json.clone()),
            ],
            vec![
                shares[0].clone(),
                shares[2].clone(),
                shares[5].clone(),
                tampered(&fourth),
            ],
        ),
        (
            "exactly t real shares, the first with its share value plus 1: detection finds the t, the polynomial through them is not the account's, every inner layer is malformed",
            vec![
                plus_one(json!({"voucher": 0})),
                json!({"voucher": 2}),
                json!({"voucher": 5}),
            ],
            vec![tampered(&shares[0]), shares[2].clone(), shares[5].clone()],
        ),
        (
            "the six vouchers with the first one's share value plus 1: |R| = t again; the shares on the wrong polynomial (the resubmitted one included) are malformed, the synthetic ones synthetic",
            (0..shares.len())
                .map(|i| {
                    let v = json!({ "voucher": i });
                    if i == 0 { plus_one(v) } else { v }
                })
                .collect(),
            shares
                .iter()
                .enumerate()
                .map(|(i, s)| if i == 0 { tampered(s) } else { s.clone() })
                .collect(),
        ),
    ];
    let mut out = Vec::new();
    for (what, made, list) in cases {
        out.push(json!({
            "what": what,
            "shares": made,
            "share_encodings": list.iter().map(|s| h(s.encode())).collect::<Vec<_>>(),
            "outcome": outcome_json(t, &list)?,
        }));
    }
    Ok(Value::Array(out))
}

/// The result word of SPEC 14.3's share decoding.
fn share_result(bytes: &[u8], s: u16) -> &'static str {
    match Share::decode(bytes, s) {
        Ok(_) => "ok",
        Err(Error::Length { .. }) => "length",
        Err(Error::MalformedPayload("share x-coordinate")) => "x_out_of_range",
        Err(Error::MalformedPayload("share is not a canonical scalar")) => "share_not_canonical",
        Err(Error::MalformedPayload("tag element not below 2^61 - 1")) => "tag_not_below_p",
        Err(_) => "other",
    }
}

/// Share encodings, each `vouchers[0]`'s altered, and what decoding them
/// gives (SPEC 14.3).
fn share_decoding(base: &Share, s: u16) -> Value {
    let p = super::field::DETECTION_PRIME;
    let ell = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
        .unwrap_or_default();
    let enc = base.encode();
    let alter = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = enc.clone();
        f(&mut b);
        b
    };
    let tag_at = |j: usize| 40 + 8 * (j - 1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("vouchers[0]'s share encoding", enc.clone()),
        ("one byte short", enc[..enc.len() - 1].to_vec()),
        ("one byte long", alter(&|b| b.push(0))),
        ("x = 0", alter(&|b| b[..8].fill(0))),
        (
            "x = p",
            alter(&|b| b[..8].copy_from_slice(&p.to_be_bytes())),
        ),
        ("x = 2^64 - 1", alter(&|b| b[..8].fill(0xff))),
        (
            "x = p - 1 (the largest x)",
            alter(&|b| b[..8].copy_from_slice(&(p - 1).to_be_bytes())),
        ),
        (
            "share = l (not canonical)",
            alter(&|b| b[8..40].copy_from_slice(&ell)),
        ),
        ("share = 2^256 - 1", alter(&|b| b[8..40].fill(0xff))),
        (
            "share = 0 (a valid scalar: P(x) may be 0)",
            alter(&|b| b[8..40].fill(0)),
        ),
        (
            "tag_1 = p",
            alter(&|b| b[tag_at(1)..tag_at(1) + 8].copy_from_slice(&p.to_be_bytes())),
        ),
        (
            "tag_2 = 2^64 - 1",
            alter(&|b| b[tag_at(2)..tag_at(2) + 8].fill(0xff)),
        ),
        (
            "tag_1 = p - 1",
            alter(&|b| b[tag_at(1)..tag_at(1) + 8].copy_from_slice(&(p - 1).to_be_bytes())),
        ),
        (
            "x = 0 and share = l: x is checked first",
            alter(&|b| {
                b[..8].fill(0);
                b[8..40].copy_from_slice(&ell);
            }),
        ),
        (
            "share = l and tag_1 = p: the share is checked before the tag",
            alter(&|b| {
                b[8..40].copy_from_slice(&ell);
                b[tag_at(1)..tag_at(1) + 8].copy_from_slice(&p.to_be_bytes());
            }),
        ),
        (
            "the inner layer is not checked: 1124 zero bytes",
            alter(&|b| {
                let n = b.len();
                b[n - INNER_LEN..].fill(0);
            }),
        ),
    ];
    Value::Array(
        cases
            .into_iter()
            .map(|(what, bytes)| {
                json!({ "what": what, "share_encoding": h(&bytes), "result": share_result(&bytes, s) })
            })
            .collect(),
    )
}

/// A version-2 voucher whose outer layer opens (made as a synthetic one,
/// SPEC 14.7 step 3, with a chosen box) around a share encoding with
/// x = 0: the server's opening refuses it as malformed.
fn malformed_voucher(
    server_key: &crate::key::ServerKey,
    built: &crate::table::BuiltTable,
    matcher: &crate::matcher::Matcher,
    account_id: &[u8],
    base: &Share,
    s: u16,
) -> Result<Value, Error> {
    use crate::kdf::{SharedSecret, seal};
    use crate::voucher::{PositionBox, outer_prefix};
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;

    let l = |what: &str| label(&format!("blindmatch-v2 test vector malformed {what}"));
    let gamma = {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&l("gamma"));
        wide[32..].copy_from_slice(&l("gamma high"));
        curve25519_dalek::scalar::Scalar::from_bytes_mod_order_wide(&wide)
    };
    let payload_key = l("payload key");
    let position = 1u8;
    let k = built.table.header().k;
    let table_id = built.table.id().0;
    let q = (&gamma * RISTRETTO_BASEPOINT_TABLE).compress().to_bytes();
    let shared = (gamma * server_key.public_key().point())
        .compress()
        .to_bytes();
    let keys = SharedSecret::extract(&shared).expand(&table_id, &q, position);
    let mut fake_boxes = Vec::new();
    let mut boxes = Vec::new();
    for j in 0..k {
        let bytes = [
            l(&format!("fake box {j} a")),
            l(&format!("fake box {j} b")),
            l(&format!("fake box {j} c")),
        ]
        .concat();
        let fake = PositionBox {
            confirm: bytes[..32].try_into().unwrap_or([0; 32]),
            wrapped: bytes[32..80].try_into().unwrap_or([0; 48]),
        };
        fake_boxes.push(h(&bytes[..80]));
        if j == position {
            let mut wrapped = [0u8; 48];
            wrapped[..32].copy_from_slice(&payload_key);
            let tag = seal(&keys.wrap_key, &[], &mut wrapped[..32]);
            wrapped[32..].copy_from_slice(&tag);
            boxes.push(PositionBox {
                confirm: keys.confirm,
                wrapped,
            });
        } else {
            boxes.push(fake);
        }
    }
    let mut share = base.encode();
    share[..8].fill(0);
    let prefix = outer_prefix(super::THRESHOLD_VERSION, &q, &boxes);
    let aad = [
        &table_id[..],
        &[u8::try_from(account_id.len()).unwrap_or(0)],
        account_id,
        &prefix,
    ]
    .concat();
    let mut body = share.clone();
    let tag = seal(&payload_key, &aad, &mut body);
    let wire = [&prefix[..], &body, &tag].concat();
    let v = super::ThresholdVoucher::decode(&wire, k, s)?;
    let result = match matcher
        .open_threshold_batch(s, &[(account_id, &v)])
        .pop()
        .unwrap_or(Ok(None))
    {
        Ok(Some(_)) => "candidate",
        Ok(None) => "no_match",
        Err(Error::MalformedPayload(_)) => "malformed",
        Err(_) => "other",
    };
    Ok(json!({
        "what": "a voucher made as a synthetic one (Q = gamma*G, box `position` opens) around vouchers[0]'s share encoding with x = 0",
        "account_id": h(account_id),
        "gamma": h(gamma.to_bytes()),
        "payload_key": h(payload_key),
        "position": position,
        "fake_boxes": fake_boxes,
        "share_encoding": h(&share),
        "share_result": share_result(&share, s),
        "voucher": h(&wire),
        "server": { "opened_position": position, "result": result },
    }))
}
