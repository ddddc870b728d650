//! The payload parser (SPEC Section 7, step 7). A forged voucher lets a
//! hostile client make the server decrypt any 1,092 bytes it likes, so the
//! parser gets arbitrary bytes here; whatever it accepts must re-encode to
//! the same bytes (the encoding is canonical).
#![no_main]

use blindmatch_protocol::{PAYLOAD_LEN, fuzz_decode_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = [0u8; PAYLOAD_LEN];
    let n = data.len().min(PAYLOAD_LEN);
    p[..n].copy_from_slice(&data[..n]);
    if let Ok((item, ad)) = fuzz_decode_payload(&p) {
        assert_eq!(item.item_type().code(), p[0]);
        assert_eq!(usize::from(p[1]), item.value().len());
        assert_eq!(&p[2..2 + item.value().len()], item.value());
        assert!(ad.len() <= 1024);
    }
});
