//! What a client does with a table it downloaded: decode the header and the
//! slots, validate every slot, and make a voucher against it. Nothing may
//! panic, whatever the server sent.
#![no_main]

use blindmatch_protocol::{BlindedTable, ClientTable, Item, ItemType, TableHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TableHeader::decode(data);
    if let Ok(table) = BlindedTable::decode(data) {
        if let Ok(client) = ClientTable::new(table) {
            let item = Item::new(ItemType::Sha256, &[7; 32]).unwrap();
            let _ = client.create_voucher(&item, b"fuzz", &mut rand::rng());
        }
    }
});
