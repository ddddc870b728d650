//! The kernel against curve25519-dalek, byte for byte: RFC 9496's vectors,
//! its invalid encodings, edge cases and random inputs, on every backend
//! this machine runs, and on the portable lanes (the kernel's arithmetic
//! without the instructions) everywhere.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test")]

use blindmatch_batchmul::{
    Backend, BatchMul, Unavailable, decodes, decodes_portable, double_uniform,
    double_uniform_portable, mul_encoded_portable, mul_uniform_portable,
    portable_passes_known_answers,
};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
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

/// The backends the tests compare, and whether each has been reported yet.
const BACKENDS: [Backend; 2] = [Backend::Dalek, Backend::Avx512Ifma8];
static REPORTED: [Once; 2] = [const { Once::new() }; 2];

/// Once per backend and process, which backends this run really compared
/// with dalek: `tested: avx512ifma-8way` after its first agreement on a
/// non-empty batch, or `NOT TESTED HERE: ...`. Written to stderr itself
/// rather than through `eprintln!`, which the test harness captures, so that
/// it shows in every run; `batchmul/emulate-ifma.sh` looks for it.
fn report(backend: Backend, line: impl FnOnce() -> String) {
    let i = BACKENDS.iter().position(|b| *b == backend).unwrap();
    REPORTED[i].call_once(|| {
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
    for backend in BACKENDS {
        if let Some(m) = on(scalar, backend) {
            assert_eq!(m.mul_encoded(encodings), want, "{backend}");
            if !encodings.is_empty() {
                report(backend, || format!("tested: {backend}"));
            }
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

/// A multiplier on `backend`, or `None` (said loudly) where this machine
/// does not have the instructions. A kernel that is there but failed its
/// known-answer test fails the test: that is a wrong result, not a
/// missing CPU feature.
fn on(scalar: &Scalar, backend: Backend) -> Option<BatchMul> {
    match BatchMul::with_backend(scalar, backend) {
        Ok(m) => Some(m),
        Err(e @ Unavailable::NoInstructions(_)) => {
            report(backend, || {
                format!("NOT TESTED HERE: {e} (the portable lanes were)")
            });
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// The same for the table builder's two computations on 64-byte strings.
fn check_uniform(scalar: &Scalar, uniform: &[[u8; 64]]) {
    let points: Vec<RistrettoPoint> = uniform
        .iter()
        .map(RistrettoPoint::from_uniform_bytes)
        .collect();
    let products: Vec<[u8; 32]> = points
        .iter()
        .map(|p| (scalar * p).compress().to_bytes())
        .collect();
    let doubles: Vec<[u8; 32]> = points
        .iter()
        .map(|p| (p + p).compress().to_bytes())
        .collect();
    assert_eq!(mul_uniform_portable(scalar, uniform), products, "portable");
    assert_eq!(double_uniform_portable(uniform), doubles, "portable");
    for backend in BACKENDS {
        if let Some(m) = on(scalar, backend) {
            assert_eq!(m.mul_uniform(uniform), products, "{backend}");
            if !uniform.is_empty() {
                report(backend, || format!("tested: {backend}"));
            }
        }
    }
    assert_eq!(double_uniform(uniform), doubles, "default");
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

#[test]
fn rfc9496_element_derivation() {
    // RFC 9496, Appendix A.3: the one-way map of Section 4.3.4, against the
    // RFC's own outputs (the scalar 1 leaves them as they are).
    let v = vectors();
    let cases: Vec<([u8; 64], [u8; 32])> = v["element_derivation"]["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                hex::decode(c["input"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
                hex::decode(c["output"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        })
        .collect();
    assert!(cases.len() >= 5, "{} vectors", cases.len());
    let inputs: Vec<[u8; 64]> = cases.iter().map(|c| c.0).collect();
    let outputs: Vec<[u8; 32]> = cases.iter().map(|c| c.1).collect();
    assert_eq!(mul_uniform_portable(&Scalar::ONE, &inputs), outputs);
    check_uniform(&Scalar::ONE, &inputs);
    check_uniform(&Scalar::from(0x0123_4567_89ab_cdefu64), &inputs);
}

#[test]
fn uniform_edge_cases_and_batch_lengths() {
    // All zeros (each half maps to the identity's neighbourhood), all ones
    // (each half ≥ p and with bit 255 set, which the map ignores), p itself
    // in each half, and random strings, in every length around eight.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_twice = [0u8; 64];
    p_twice[..32].copy_from_slice(&p);
    p_twice[32..].copy_from_slice(&p);
    let mut rng = rand::rng();
    let mut uniform = vec![[0u8; 64], [0xff; 64], p_twice];
    for n in 0..14 {
        let mut u = [0u8; 64];
        rng.fill_bytes(&mut u);
        uniform.push(u);
        check_uniform(&-Scalar::ONE, &uniform[..n + 3]);
    }
    check_uniform(&Scalar::ZERO, &uniform);
    check_uniform(&Scalar::from(2u8).invert(), &uniform[..0]);
}

#[test]
fn the_known_answer_test_passes_a_correct_kernel_and_the_machine_says_what_it_runs() {
    // The test that decides whether the kernel is used must pass the
    // kernel's arithmetic (here on the portable lanes); and on a CPU with
    // the instructions, the kernel must have passed it.
    assert!(portable_passes_known_answers());
    match Backend::Avx512Ifma8.availability() {
        Ok(()) => {}
        Err(e @ Unavailable::NoInstructions(_)) => {
            report(Backend::Avx512Ifma8, || format!("NOT TESTED HERE: {e}"));
        }
        Err(e) => panic!("{e}"),
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

    #[test]
    fn random_uniform_strings(
        scalar in proptest::array::uniform32(any::<u8>()),
        uniform in proptest::collection::vec(proptest::array::uniform32(any::<u8>()), 2..24),
    ) {
        let scalar = Scalar::from_bytes_mod_order(scalar);
        let uniform: Vec<[u8; 64]> = uniform
            .chunks_exact(2)
            .map(|h| {
                let mut u = [0u8; 64];
                u[..32].copy_from_slice(&h[0]);
                u[32..].copy_from_slice(&h[1]);
                u
            })
            .collect();
        check_uniform(&scalar, &uniform);
    }
}
