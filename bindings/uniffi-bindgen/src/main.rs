//! `blindmatch-uniffi-bindgen`: uniffi's generator, built from the same
//! uniffi version as `blindmatch-uniffi` (the generator must match the
//! scaffolding exactly).
//!
//! `cargo run -p blindmatch-uniffi-bindgen -- generate --library
//! target/release/libblindmatch_uniffi.so --language python --out-dir DIR`

fn main() {
    uniffi::uniffi_bindgen_main();
}
