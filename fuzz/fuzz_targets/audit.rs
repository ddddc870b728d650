//! The list audit's parsers (SPEC Section 15): an audit bundle, an audit
//! state, a co-signature and a placement from any bytes; and a bundle that
//! decodes, checked against a small fixed table and list (its structure
//! checks and every slot's check run on hostile claims).
#![no_main]

use std::sync::OnceLock;

use blindmatch_protocol::audit::{AuditBundle, AuditList, AuditState, CoSignature};
use blindmatch_protocol::table::Placement;
use blindmatch_protocol::{BuiltTable, Item, ItemType, ServerKey, TableBuilder};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static (BuiltTable, AuditList) {
    static FIXTURE: OnceLock<(BuiltTable, AuditList)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = ServerKey::from_scalar_bytes([7; 32]).expect("a valid scalar");
        let items: Vec<Item> = (0..20u8)
            .map(|i| Item::new(ItemType::Sha256, &[i; 32]).expect("32 bytes"))
            .collect();
        let built = TableBuilder::new([1; 32])
            .build(&key, items.clone())
            .expect("a small table");
        (built, AuditList::new(items).expect("a small list"))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = AuditState::decode(data);
    let _ = CoSignature::decode(data);
    let _ = Placement::decode(data);
    if let Ok(bundle) = AuditBundle::decode(data) {
        let (built, list) = fixture();
        let _ = bundle.verify(&built.table, list, None);
        assert_eq!(AuditBundle::decode(&bundle.encode()).ok().as_ref(), Some(&bundle));
    }
});
