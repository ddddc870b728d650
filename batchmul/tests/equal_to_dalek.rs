//! The kernel against curve25519-dalek, byte for byte: RFC 9496's vectors,
//! its invalid encodings, edge cases and random inputs, on every backend
//! this machine runs, and on the portable lanes (the kernel's arithmetic
//! without the instructions) everywhere.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test")]

use blindmatch_batchmul::{Backend, BatchMul, decodes, decodes_portable, mul_encoded_portable};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use rand::RngExt;
use serde_json::Value;
use std::io::Write;
use std::sync::Once;

/// What curve25519-dalek says, one at a time.
fn dalek(scalar: &Scalar, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
    encodings
        .iter()
        .map(|e| {
            CompressedRistretto(*e)
                .decompress()
                .map(|p| (scalar * p).compress().to_bytes())
        })
        .collect()
}

/// The backends `check` compares, and whether each has been reported yet.
const BACKENDS: [Backend; 2] = [Backend::Dalek, Backend::Avx512Ifma8];
static REPORTED: [Once; 2] = [const { Once::new() }; 2];

/// Once per backend and process, which backends this run really compared
/// with dalek: `tested: avx512ifma-8way` after its first agreement on a
/// non-empty batch, or `NOT TESTED HERE: ...`. Written to stderr itself
/// rather than through `eprintln!`, which the test harness captures, so that
/// it shows in every run; `batchmul/emulate-ifma.sh` looks for it.
fn report(reported: &Once, line: impl FnOnce() -> String) {
    reported.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{}", line());
    });
}

/// Every way this machine can compute it must agree with dalek.
fn check(scalar: &Scalar, encodings: &[[u8; 32]]) {
    let want = dalek(scalar, encodings);
    assert_eq!(
        mul_encoded_portable(scalar, encodings),
        want,
        "portable lanes"
    );
    for (backend, reported) in BACKENDS.into_iter().zip(&REPORTED) {
        match BatchMul::with_backend(scalar, backend) {
            Ok(m) => {
                assert_eq!(m.mul_encoded(encodings), want, "{backend}");
                if !encodings.is_empty() {
                    report(reported, || format!("tested: {backend}"));
                }
            }
            Err(e) => report(reported, || {
                format!("NOT TESTED HERE: {e} (the portable lanes were)")
            }),
        }
    }
    assert_eq!(
        BatchMul::new(scalar).mul_encoded(encodings),
        want,
        "default"
    );
    let valid: Vec<bool> = want.iter().map(Option::is_some).collect();
    assert_eq!(
        decodes_portable(encodings),
        valid,
        "decodes, portable lanes"
    );
    assert_eq!(decodes(encodings), valid, "decodes");
}

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/tests/data/rfc9496_ristretto255.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn encoding(v: &Value) -> [u8; 32] {
    hex::decode(v["encoding"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn random_point(rng: &mut impl RngExt) -> [u8; 32] {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    (Scalar::from_bytes_mod_order_wide(&wide) * RISTRETTO_BASEPOINT_POINT)
        .compress()
        .to_bytes()
}

#[test]
fn rfc9496_generator_multiples() {
    // k·B from B, for every k the RFC lists: the kernel's own answer set
    // against the RFC's, not only against dalek's.
    let v = vectors();
    let multiples: Vec<(u64, [u8; 32])> = v["generator_multiples"]["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["k"].as_u64().unwrap(), encoding(m)))
        .collect();
    assert_eq!(multiples.len(), 16);
    let b = multiples[1].1;
    for &(k, want) in &multiples {
        let s = Scalar::from(k);
        assert_eq!(mul_encoded_portable(&s, &[b; 9])[8], Some(want), "{k}·B");
        check(&s, &[b; 9]);
    }
    // And every multiple times a random scalar, in one batch of 16.
    let encodings: Vec<[u8; 32]> = multiples.iter().map(|m| m.1).collect();
    check(&Scalar::from(0x1234_5678_9abc_def1u64), &encodings);
}

#[test]
fn rfc9496_invalid_encodings_are_refused() {
    let v = vectors();
    let bad: Vec<[u8; 32]> = v["invalid_encodings"]["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(encoding)
        .collect();
    assert_eq!(bad.len(), 29);
    let scalar = Scalar::from(7u8);
    assert!(
        mul_encoded_portable(&scalar, &bad)
            .iter()
            .all(Option::is_none)
    );
    // Mixed with valid ones, so that each group of eight has both.
    let mut rng = rand::rng();
    let mixed: Vec<[u8; 32]> = bad
        .iter()
        .flat_map(|b| [*b, random_point(&mut rng)])
        .collect();
    check(&scalar, &mixed);
}

#[test]
fn edge_cases() {
    let mut rng = rand::rng();
    let p = random_point(&mut rng);
    let mut high_bit = p;
    high_bit[31] |= 0x80;
    let mut field_p = [0xffu8; 32];
    field_p[0] = 0xed;
    field_p[31] = 0x7f;
    let mut one = [0u8; 32];
    one[0] = 1; // s = 1: negative (odd), refused
    let mut two = [0u8; 32];
    two[0] = 2;
    let cases = [
        [0u8; 32], // the identity
        p,
        high_bit,
        field_p,
        [0xff; 32],
        one,
        two,
        RISTRETTO_BASEPOINT_POINT.compress().to_bytes(),
        [0x55; 32],
    ];
    let l_minus_one = -Scalar::ONE;
    for s in [
        Scalar::ZERO,
        Scalar::ONE,
        l_minus_one,
        Scalar::from(2u8).invert(),
    ] {
        check(&s, &cases);
    }
}

#[test]
fn batch_lengths_around_the_group_size() {
    let mut rng = rand::rng();
    let scalar = Scalar::from(0xfeed_beefu64);
    for n in [0, 1, 7, 8, 9, 16, 17] {
        let e: Vec<[u8; 32]> = (0..n).map(|_| random_point(&mut rng)).collect();
        check(&scalar, &e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_points_scalars_and_bytes(
        scalar in proptest::array::uniform32(any::<u8>()),
        points in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 1..12),
        noise in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 0..6),
    ) {
        let scalar = Scalar::from_bytes_mod_order(scalar);
        // Valid points from the random bytes, and the random bytes themselves
        // (almost never valid), interleaved.
        let mut encodings: Vec<[u8; 32]> = points
            .iter()
            .map(|b| (Scalar::from_bytes_mod_order(*b) * RISTRETTO_BASEPOINT_POINT).compress().to_bytes())
            .collect();
        for (i, n) in noise.iter().enumerate() {
            encodings.insert((i * 3) % (encodings.len() + 1), *n);
        }
        check(&scalar, &encodings);
    }
}
