//! The kernel's arithmetic is constant-time in the scalar and in every
//! point, checked the way ctgrind does (Langley, 2010): memcheck is told
//! that the scalar's bytes and the points are undefined, and then reports
//! every branch and every memory address that depends on them, as it would
//! for uninitialised memory.
//!
//! Run normally, the client requests are no-ops and this only checks the
//! result. CI runs it under valgrind (`.ci/run`, `batchmul/ct-check.sh`):
//!
//! ```sh
//! valgrind --error-exitcode=1 target/release/deps/constant_time-<hash>
//! ```
//!
//! Valgrind cannot execute AVX-512, so what it checks is the kernel's
//! arithmetic on the portable lanes: the same generic code, instantiated on
//! plain `u64`s. The AVX-512 instantiation is the same code on vector
//! instructions, which have no data-dependent timing.

#![allow(unsafe_code, reason = "valgrind's client requests are inline assembly")]

use blindmatch_batchmul::{mul_encoded_x8_portable, uniform_x8_portable};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

/// memcheck's requests (valgrind/memcheck.h: `VG_USERREQ_TOOL_BASE('M','C')`).
const MAKE_MEM_UNDEFINED: u64 = 0x4d43_0000 + 1;
const MAKE_MEM_DEFINED: u64 = 0x4d43_0000 + 2;

/// A valgrind client request (valgrind/valgrind.h,
/// `VALGRIND_DO_CLIENT_REQUEST_EXPR` for amd64): a no-op outside valgrind.
/// Written out here because the crates that wrap it need nightly
/// (`valgrind_request`) or libclang at build time (`crabgrind`).
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64, addr: *const u8, len: usize) {
    let args: [u64; 6] = [request, addr as u64, len as u64, 0, 0, 0];
    let mut result: u64 = 0;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi is
    // unchanged) and `xchg rbx, rbx` changes nothing: outside valgrind the
    // sequence has no effect. Under valgrind it reads `args` (rax points to
    // it) and writes its answer to rdx.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            out("rdi") _,
            options(nostack),
        );
    }
    let _ = result;
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_: u64, _: *const u8, _: usize) {}

fn secret<T>(value: &T) {
    client_request(
        MAKE_MEM_UNDEFINED,
        (value as *const T).cast(),
        size_of::<T>(),
    );
}

fn public<T>(value: &T) {
    client_request(MAKE_MEM_DEFINED, (value as *const T).cast(), size_of::<T>());
}

#[test]
fn no_branch_or_address_depends_on_the_scalar_or_the_points() {
    let scalar = Scalar::from_bytes_mod_order([0x3c; 32]);
    let mut points = [[0u8; 32]; 8];
    for (i, p) in points.iter_mut().enumerate() {
        *p = (Scalar::from(1000 + i as u64) * RISTRETTO_BASEPOINT_POINT)
            .compress()
            .to_bytes();
    }
    // An invalid encoding too: refusing it must not branch either.
    points[5] = [0xff; 32];
    let scalar_bytes = scalar.to_bytes();

    secret(&scalar_bytes);
    secret(&points);
    let (out, valid) = mul_encoded_x8_portable(&scalar_bytes, &points);
    public(&scalar_bytes);
    public(&points);
    public(&out);
    public(&valid);

    for l in 0..8 {
        let want = CompressedRistretto(points[l])
            .decompress()
            .map(|p| (scalar * p).compress().to_bytes());
        assert_eq!(valid[l].then_some(out[l]), want, "lane {l}");
    }
}

#[test]
fn no_branch_or_address_depends_on_the_hashed_items() {
    // The table builder's path: Elligator twice, an addition, the
    // multiplication (or a doubling) and the encoding, with the 64-byte
    // strings (hashes of the confidential list's items) and the scalar
    // secret.
    let scalar = Scalar::from_bytes_mod_order([0xa5; 32]);
    let mut uniform = [[0u8; 64]; 8];
    for (i, u) in uniform.iter_mut().enumerate() {
        for (j, b) in u.iter_mut().enumerate() {
            *b = u8::try_from((i * 64 + j) * 97 % 251).unwrap_or(0);
        }
    }
    let scalar_bytes = scalar.to_bytes();

    secret(&scalar_bytes);
    secret(&uniform);
    let (products, doubles) = uniform_x8_portable(&scalar_bytes, &uniform);
    public(&scalar_bytes);
    public(&uniform);
    public(&products);
    public(&doubles);

    for l in 0..8 {
        let p = RistrettoPoint::from_uniform_bytes(&uniform[l]);
        assert_eq!(products[l], (scalar * p).compress().to_bytes(), "lane {l}");
        assert_eq!(doubles[l], (p + p).compress().to_bytes(), "lane {l}");
    }
}
