//! Writes the interop test vectors (papers/SPEC.md) to the path given, or to
//! standard output, and threshold mode's (SPEC Section 14) to the second
//! path given, the list audit's (SPEC Section 15) to the third, and the
//! transparency log's (SPEC Section 16) to the fourth.
//!
//! `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json protocol/vectors/blindmatch-v2-threshold.json protocol/vectors/blindmatch-audit.json protocol/vectors/blindmatch-log.json`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = blindmatch_protocol::vectors::generate()?;
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?,
        None => print!("{text}"),
    }
    if let Some(path) = std::env::args().nth(2) {
        let text = blindmatch_protocol::threshold::vectors::generate()?;
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = std::env::args().nth(3) {
        let text = blindmatch_protocol::audit::vectors::generate()?;
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = std::env::args().nth(4) {
        let text = blindmatch_protocol::tlog::vectors::generate()?;
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}
