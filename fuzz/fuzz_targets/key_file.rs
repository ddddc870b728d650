//! The server key file's decoder (SPEC Section 4): anything but a valid
//! 69-byte key is an error, and a valid key encodes back to the same bytes.
#![no_main]

use blindmatch_protocol::ServerKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = ServerKey::from_bytes(data) {
        assert_eq!(&key.to_bytes()[..], data);
    }
});
