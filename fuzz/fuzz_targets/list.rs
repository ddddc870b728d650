//! The operator's hash list parser (`build --list`), with and without a
//! default type: every line is an item or a reported bad line, never a panic.
#![no_main]

use blindmatch_protocol::ItemType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for default in [None, Some(ItemType::Sha256), Some(ItemType::Bytes)] {
        if let Ok(list) = blindmatch_server::list::parse(data, default) {
            assert!(list.items.len() + list.bad.len() <= data.split(|&b| b == b'\n').count());
        }
    }
});
