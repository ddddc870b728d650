//! The client's check of a manifest: any protobuf bytes, decoded as the
//! server's answer to GetManifest, then checked against a pinned operator
//! key; and the signed statement's parser on its own (a forged signature
//! almost never verifies, so the parser is reached directly too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = blindmatch_protocol::manifest::Manifest::decode(data);
    let _ = blindmatch_protocol::manifest::SignedManifest::decode_unverified(data);
    if let Ok(m) = blindmatch_proto::v1::Manifest::decode(data) {
        let key = blindmatch_protocol::OperatorVerifyingKey::from_bytes(&[
            0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b,
            0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1,
            0x2a, 0xf4, 0x66, 0x0c,
        ])
        .expect("RFC 8032 test 1 public key");
        let _ = blindmatch_client::Manifest::verify(&m, &key);
    }
});
