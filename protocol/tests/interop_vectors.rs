//! The interop vectors in `protocol/vectors/blindmatch-v1.json` are exactly
//! what the generator produces today: any change to an encoding, a DST, the
//! key schedule or the table layout shows up here as a byte difference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests fail loudly; test sizes are small"
)]

#[test]
fn vector_file_is_exactly_what_the_generator_produces() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/blindmatch-v1.json");
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fresh = blindmatch_protocol::vectors::generate().unwrap();
    if on_disk != fresh {
        let line = on_disk
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "{path} differs from the generator output at {line}; if the change is intended, regenerate with \
             `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json`"
        );
    }
}

#[test]
fn threshold_vector_file_is_exactly_what_the_generator_produces() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vectors/blindmatch-v2-threshold.json"
    );
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fresh = blindmatch_protocol::threshold::vectors::generate().unwrap();
    assert!(
        on_disk == fresh,
        "{path} differs from the generator output; if the change is intended, regenerate with \
         `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- \
         protocol/vectors/blindmatch-v1.json protocol/vectors/blindmatch-v2-threshold.json`"
    );
}

#[test]
fn audit_vector_file_is_exactly_what_the_generator_produces() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/blindmatch-audit.json");
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fresh = blindmatch_protocol::audit::vectors::generate().unwrap();
    assert!(
        on_disk == fresh,
        "{path} differs from the generator output; if the change is intended, regenerate with \
         `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- \
         protocol/vectors/blindmatch-v1.json protocol/vectors/blindmatch-v2-threshold.json \
         protocol/vectors/blindmatch-audit.json`"
    );
}

#[test]
fn log_vector_file_is_exactly_what_the_generator_produces() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/blindmatch-log.json");
    let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fresh = blindmatch_protocol::tlog::vectors::generate().unwrap();
    assert!(
        on_disk == fresh,
        "{path} differs from the generator output; if the change is intended, regenerate with \
         `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- \
         protocol/vectors/blindmatch-v1.json protocol/vectors/blindmatch-v2-threshold.json \
         protocol/vectors/blindmatch-audit.json protocol/vectors/blindmatch-log.json`"
    );
}
