//! Writes the interop test vectors (papers/SPEC.md) to the path given, or to
//! standard output.
//!
//! `cargo run -p blindmatch-protocol --features test-vectors --example generate-vectors -- protocol/vectors/blindmatch-v1.json`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = blindmatch_protocol::vectors::generate()?;
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?,
        None => print!("{text}"),
    }
    Ok(())
}
