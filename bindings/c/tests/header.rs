//! `include/blindmatch.h` is exactly what cbindgen generates from
//! `src/lib.rs` now. `BLINDMATCH_BLESS=1` rewrites it.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a test fails loudly")]

#[test]
fn header_matches_the_source() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .unwrap()
        .write(&mut fresh);
    let path = format!("{dir}/include/blindmatch.h");
    if std::env::var_os("BLINDMATCH_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{path} is not what cbindgen generates from src/lib.rs: regenerate with \
         BLINDMATCH_BLESS=1 cargo test --release -p blindmatch-ffi --test header"
    );
}
