//! A client applying a delta it received: any indices and slots, against a
//! small table, must be refused with an error (or produce the table the
//! manifest names), never panic.
#![no_main]

use std::sync::OnceLock;

use blindmatch_protocol::manifest::Manifest;
use blindmatch_protocol::{ClientTable, Item, ItemType, ServerKey, TableBuilder, TableDelta};
use libfuzzer_sys::fuzz_target;

fn base() -> &'static (ClientTable, Manifest) {
    static BASE: OnceLock<(ClientTable, Manifest)> = OnceLock::new();
    BASE.get_or_init(|| {
        // Seeded: a crash replays on the same table.
        let key =
            ServerKey::generate(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7));
        let items: Vec<Item> = (0u8..40)
            .map(|i| Item::new(ItemType::Sha256, &[i; 32]).expect("item"))
            .collect();
        let t = TableBuilder::new([1; 32])
            .build(&key, items)
            .expect("table")
            .table;
        let m = Manifest::for_table(&t, 2, 0, None);
        (ClientTable::new(t).expect("a valid table"), m)
    })
}

fuzz_target!(|data: &[u8]| {
    let (client, manifest) = base();
    let table = client.table();
    let n = data.first().map_or(0, |&b| usize::from(b) % 8);
    let rest = data.get(1..).unwrap_or_default();
    let (idx, slots) = rest.split_at((n * 4).min(rest.len()));
    let delta = TableDelta {
        base: *table.id(),
        indices: idx
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        slots: slots.to_vec(),
    };
    if let Ok(t) = delta.apply(table, manifest) {
        assert_eq!(t.id(), &manifest.table_id);
    }
    // The client's path: apply, check, validate the changed slots.
    if let Ok(c) = client.updated(&delta, manifest) {
        assert_eq!(c.table().id(), &manifest.table_id);
    }
});
