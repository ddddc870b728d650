//! The client's check of a manifest: any protobuf bytes, decoded as the
//! server's answer to GetManifest, then checked field by field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = blindmatch_proto::v1::Manifest::decode(data) {
        let _ = blindmatch_client::Manifest::try_from(m);
    }
});
