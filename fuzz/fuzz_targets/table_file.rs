//! The server's table file reader (every section), from memory: truncated,
//! inflated or corrupted files are errors, never a panic or an allocation
//! beyond the file's size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = blindmatch_server::bundle::read_from(
        data,
        data.len() as u64,
        std::path::Path::new("fuzz.bmt"),
        true,
    );
});
