//! Conformance of the primitives blindmatch is built from, against published
//! vectors kept verbatim in `tests/data/` (model: voprf `src/tests/cfrg_vectors.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests fail loudly; test sizes are small"
)]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use blindmatch_protocol::PublicKey;
use blindmatch_protocol::hash_to_group::{expand_message_xmd_sha512, hash_to_ristretto255};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use serde_json::Value;
use sha2::Sha256;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hx(v).try_into().unwrap()
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap()
}

#[test]
fn rfc9380_k3_expand_message_xmd_sha512() {
    let file = load("rfc9380_expand_message_xmd_sha512.json");
    let dst = file["DST"].as_str().unwrap().as_bytes();
    let tests = list(&file["tests"]);
    assert!(tests.len() >= 10);
    for t in tests {
        let len = usize::from_str_radix(
            t["len_in_bytes"].as_str().unwrap().trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let mut out = vec![0u8; len];
        expand_message_xmd_sha512(&[t["msg"].as_str().unwrap().as_bytes()], dst, &mut out).unwrap();
        assert_eq!(out, hx(&t["uniform_bytes"]), "msg {:?} len {len}", t["msg"]);
    }
}

#[test]
fn rfc9496_a1_generator_multiples() {
    let file = load("rfc9496_ristretto255.json");
    let mut p = RistrettoPoint::default();
    for (k, v) in list(&file["generator_multiples"]["vectors"])
        .iter()
        .enumerate()
    {
        assert_eq!(v["k"].as_u64().unwrap() as usize, k);
        assert_eq!(p.compress().to_bytes(), arr::<32>(&v["encoding"]), "{k}·G");
        if k > 0 {
            // Non-identity multiples decode through our checked decoder.
            assert_eq!(
                PublicKey::decode(&hx(&v["encoding"])).unwrap().to_bytes(),
                arr::<32>(&v["encoding"])
            );
        } else {
            assert!(
                PublicKey::decode(&hx(&v["encoding"])).is_err(),
                "identity accepted"
            );
        }
        p += RISTRETTO_BASEPOINT_POINT;
    }
}

#[test]
fn rfc9496_a2_invalid_encodings_are_rejected() {
    let file = load("rfc9496_ristretto255.json");
    let vectors = list(&file["invalid_encodings"]["vectors"]);
    assert!(vectors.len() >= 20);
    for v in vectors {
        let bytes = arr::<32>(&v["encoding"]);
        assert!(CompressedRistretto(bytes).decompress().is_none());
        assert!(
            PublicKey::decode(&bytes).is_err(),
            "{} accepted",
            v["encoding"]
        );
    }
}

#[test]
fn rfc9496_a3_element_derivation() {
    let file = load("rfc9496_ristretto255.json");
    for v in list(&file["element_derivation"]["vectors"]) {
        let p = RistrettoPoint::from_uniform_bytes(&arr::<64>(&v["input"]));
        assert_eq!(p.compress().to_bytes(), arr::<32>(&v["output"]));
    }
}

#[test]
fn rfc9497_hash_to_group_is_rfc9380_not_hash_from_bytes() {
    let file = load("rfc9497_derived_hash_to_group.json");
    for v in list(&file["vectors"]) {
        let dst = hx(&v["DST_hex"]);
        let msg = hx(&v["msg"]);
        let mut uniform = [0u8; 64];
        expand_message_xmd_sha512(&[&msg], &dst, &mut uniform).unwrap();
        assert_eq!(uniform, arr::<64>(&v["uniform_bytes"]));
        let p = hash_to_ristretto255(&[&msg], &dst).compress().to_bytes();
        assert_eq!(p, arr::<32>(&v["element"]));
        assert_ne!(p, arr::<32>(&v["NOT_this__dalek_hash_from_bytes_Sha512"]));
    }
}

#[test]
fn rfc9497_a111_oprf_blind_evaluate() {
    // BlindedElement = Blind·HashToGroup(Input); EvaluationElement = skS·BlindedElement.
    let file = load("rfc9497_oprf_ristretto255_sha512.json");
    let dst = hx(&file["dst"]["HashToGroup"]["hex"]);
    let sk = Scalar::from_canonical_bytes(arr::<32>(&file["skSm"])).unwrap();
    for v in list(&file["vectors"]) {
        let blind = Scalar::from_canonical_bytes(arr::<32>(&v["Blind"])).unwrap();
        let blinded = blind * hash_to_ristretto255(&[&hx(&v["Input"])], &dst);
        assert_eq!(
            blinded.compress().to_bytes(),
            arr::<32>(&v["BlindedElement"])
        );
        assert_eq!(
            (sk * blinded).compress().to_bytes(),
            arr::<32>(&v["EvaluationElement"])
        );
    }
}

#[test]
fn rfc5869_hkdf_sha256() {
    let file = load("extras_kdf_aead.json");
    for v in list(&file["hkdf"]) {
        assert_eq!(v["hash"], "sha256");
        let salt = hx(&v["salt"]);
        let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &hx(&v["IKM"]));
        assert_eq!(prk.as_slice(), hx(&v["PRK"]).as_slice());
        let mut okm = vec![0u8; v["L"].as_u64().unwrap() as usize];
        hk.expand(&hx(&v["info"]), &mut okm).unwrap();
        assert_eq!(okm, hx(&v["OKM"]));
    }
}

#[test]
fn gcm_aes256_known_answers() {
    let file = load("extras_kdf_aead.json");
    for v in list(&file["aes256gcm"]) {
        let cipher = Aes256Gcm::new_from_slice(&hx(&v["key"])).unwrap();
        let nonce = Nonce::try_from(hx(&v["nonce"]).as_slice()).unwrap();
        let mut buf = hx(&v["plaintext"]);
        let tag = cipher
            .encrypt_inout_detached(&nonce, &hx(&v["aad"]), buf.as_mut_slice().into())
            .unwrap();
        assert_eq!(buf, hx(&v["ciphertext"]));
        assert_eq!(tag.as_slice(), hx(&v["tag"]).as_slice());
        let tag = Tag::try_from(hx(&v["tag"]).as_slice()).unwrap();
        cipher
            .decrypt_inout_detached(&nonce, &hx(&v["aad"]), buf.as_mut_slice().into(), &tag)
            .unwrap();
        assert_eq!(buf, hx(&v["plaintext"]));
    }
}

/// RFC 9497's batched DLEQ proof (Section 2.2), which the list audit uses
/// with its own context string and index width: every VOPRF and POPRF
/// vector of Appendix A.1.2 and A.1.3 (batches of 1 and 2), proved from
/// the vector's `ProofRandomScalar` and verified; one changed element or
/// proof byte fails.
#[test]
fn rfc9497_a1_batched_dleq_proofs() {
    use blindmatch_protocol::audit::dleq::{Pair, Proof, Suite};
    let file = load("rfc9497_voprf_poprf_ristretto255_sha512.json");
    let mut checked = 0;
    for (mode, context) in [
        ("VOPRF", &b"OPRFV1-\x01-ristretto255-SHA512"[..]),
        ("POPRF", &b"OPRFV1-\x02-ristretto255-SHA512"[..]),
    ] {
        let m = &file[mode];
        assert_eq!(hx(&m["contextString_hex"]), context);
        // The suites are constants: a context string of the test's own.
        let suite = Suite::rfc9497(Box::leak(context.to_vec().into_boxed_slice()));
        if mode == "VOPRF" {
            assert_eq!(suite.context(), Suite::RFC9497_VOPRF.context());
        }
        let sk = Scalar::from_canonical_bytes(arr(&m["skSm"])).unwrap();
        for v in list(&m["vectors"]) {
            let split = |f: &str| -> Vec<[u8; 32]> {
                v[f].as_str()
                    .unwrap()
                    .split(',')
                    .map(|h| hex::decode(h).unwrap().try_into().unwrap())
                    .collect()
            };
            let point = |b: &[u8; 32]| CompressedRistretto(*b).decompress().unwrap();
            let (blinded, evaluated) = (split("BlindedElement"), split("EvaluationElement"));
            // VOPRF proves evaluated = sk·blinded; POPRF proves blinded =
            // t·evaluated with t = sk + HashToScalar("Info" || len || info).
            let (k, cs, ds) = if mode == "VOPRF" {
                (sk, blinded, evaluated)
            } else {
                let info = hx(&v["Info"]);
                let len = u16::try_from(info.len()).unwrap().to_be_bytes();
                let t = sk + suite.hash_to_scalar(&[b"Info", &len, &info]);
                (t, evaluated, blinded)
            };
            let pairs: Vec<Pair> = cs
                .iter()
                .zip(&ds)
                .map(|(c, d)| Pair::new(point(c), point(d), *d))
                .collect();
            let r = Scalar::from_canonical_bytes(arr(&v["ProofRandomScalar"])).unwrap();
            let proving = suite.prove_with(&k, &pairs, &r).unwrap();
            assert_eq!(
                proving.proof.encode().to_vec(),
                hx(&v["Proof"]),
                "{mode} {}",
                v["name"]
            );
            let b = RistrettoPoint::mul_base(&k);
            let proof = Proof::decode(&hx(&v["Proof"])).unwrap();
            assert!(suite.verify(&b, &pairs, &proof).unwrap());
            let mut bad = pairs.clone();
            let last = bad.len() - 1;
            bad[last] = Pair::new(bad[last].c, bad[last].c, bad[last].c_bytes);
            assert!(!suite.verify(&b, &bad, &proof).unwrap());
            let mut tampered = proof.encode();
            tampered[40] ^= 1;
            if let Ok(t) = Proof::decode(&tampered) {
                assert!(!suite.verify(&b, &pairs, &t).unwrap());
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
