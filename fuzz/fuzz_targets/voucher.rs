//! Voucher decoding and opening, on the server, against the interop
//! vectors' table and key (so a mutated valid voucher reaches every step of
//! SPEC Section 7). Nothing may panic; a voucher that opens must be a listed
//! item.
#![no_main]

use std::sync::OnceLock;

use blindmatch_protocol::{Item, ItemType, Matcher, ServerKey, TableBuilder, Voucher};
use libfuzzer_sys::fuzz_target;

fn matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../protocol/vectors/blindmatch-v1.json"))
                .unwrap();
        let hexv = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
        let key = ServerKey::from_bytes(&hexv(&v["server_key"]["key_file"])).unwrap();
        let seed: [u8; 32] = hexv(&v["table"]["seed"]).try_into().unwrap();
        let entries: Vec<Item> = v["table"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let t: ItemType = e["type"].as_str().unwrap().parse().unwrap();
                Item::new(t, &hexv(&e["value"])).unwrap()
            })
            .collect();
        let built = TableBuilder::new(seed).build(&key, entries).unwrap();
        assert_eq!(
            built.table.id().0.to_vec(),
            hexv(&v["table"]["table_id"]),
            "vectors' table rebuilt"
        );
        Matcher::new(&key, &built.table, built.index).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let m = matcher();
    if let Ok(v) = Voucher::decode(data, m.header().k) {
        let _ = m.open(&v);
        let _ = m.open_batch(&[v]);
    }
});
