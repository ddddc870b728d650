//! Property tests of the whole protocol: listed items match where they
//! landed, unlisted items never match, tampered vouchers never match and never
//! panic, and hostile bytes never panic a decoder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests fail loudly; test sizes are small"
)]

use std::sync::OnceLock;

use blindmatch_protocol::{
    BlindedTable, ClientTable, Error, Item, ItemType, MAX_AD_LEN, MAX_ITEM_LEN, Matcher, ServerKey,
    TableBuilder, TableHeader, Voucher, voucher_len,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

const LISTED: usize = 1_000;

struct Fixture {
    client: ClientTable,
    matcher: Matcher,
    entries: Vec<Item>,
}

/// The i-th listed item, types cycling.
fn listed(i: usize) -> Item {
    let t = ItemType::ALL[i % ItemType::ALL.len()];
    let d = Sha512::digest(format!("listed {i}"));
    Item::new(t, &d[..t.fixed_len().unwrap_or(1 + i % MAX_ITEM_LEN)]).unwrap()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = ServerKey::from_scalar_bytes(
            Sha512::digest(b"fixture key")[..32]
                .try_into()
                .map(|mut b: [u8; 32]| {
                    b[31] &= 0x0f; // reduce below the group order
                    b
                })
                .unwrap(),
        )
        .unwrap();
        let built = TableBuilder::new([42; 32])
            .build(&key, (0..LISTED).map(listed))
            .unwrap();
        let entries = built.entries.clone();
        let client =
            ClientTable::new(BlindedTable::decode(&built.table.encode()).unwrap()).unwrap();
        let matcher = Matcher::new(&key, &built.table, built.index).unwrap();
        Fixture {
            client,
            matcher,
            entries,
        }
    })
}

fn k() -> u8 {
    fixture().matcher.header().k
}

fn roundtrip(v: &Voucher) -> Voucher {
    Voucher::decode(&v.encode(), k()).unwrap()
}

#[test]
fn every_listed_entry_matches_at_the_position_it_landed() {
    let f = fixture();
    let header = f.matcher.header();
    for (e, item) in f.entries.iter().enumerate() {
        let ad = format!("entry {e}").into_bytes();
        let v = roundtrip(
            &f.client
                .create_voucher(item, &ad, &mut rand::rng())
                .unwrap(),
        );
        let m = f
            .matcher
            .open(&v)
            .unwrap()
            .unwrap_or_else(|| panic!("entry {e} did not match"));
        assert_eq!(m.entry as usize, e);
        assert_eq!(&m.item, item);
        assert_eq!(m.associated_data, ad);
        let slot = f.matcher.index().slot_of(e as u32).unwrap();
        let landed = header
            .positions(item)
            .as_slice()
            .iter()
            .position(|&w| w == slot)
            .unwrap();
        assert_eq!(usize::from(m.position), landed, "entry {e}");
    }
}

#[test]
fn every_position_index_is_exercised() {
    // The test above only means something for every j if entries landed at
    // every j; with 1,000 entries at load 0.85 they do.
    let f = fixture();
    let header = f.matcher.header();
    let mut seen = vec![false; usize::from(header.k)];
    for (e, item) in f.entries.iter().enumerate() {
        let slot = f.matcher.index().slot_of(e as u32).unwrap();
        let j = header
            .positions(item)
            .as_slice()
            .iter()
            .position(|&w| w == slot)
            .unwrap();
        seen[j] = true;
    }
    assert!(seen.iter().all(|&s| s), "{seen:?}");
}

#[test]
fn vouchers_have_one_size_whatever_the_item_and_associated_data() {
    let f = fixture();
    let mut rng = rand::rng();
    let sizes: Vec<usize> = [
        (listed(0), vec![]),
        (listed(1), vec![1; MAX_AD_LEN]),
        (Item::new(ItemType::Bytes, &[1]).unwrap(), vec![]),
        (
            Item::new(ItemType::Bytes, &[1; MAX_ITEM_LEN]).unwrap(),
            vec![7; 100],
        ),
        (Item::new(ItemType::Md5, &[9; 16]).unwrap(), vec![0; 3]),
    ]
    .iter()
    .map(|(item, ad)| {
        f.client
            .create_voucher(item, ad, &mut rng)
            .unwrap()
            .encode()
            .len()
    })
    .collect();
    assert!(sizes.iter().all(|&s| s == voucher_len(k())), "{sizes:?}");
}

#[test]
fn associated_data_over_the_limit_is_refused() {
    let f = fixture();
    let e = f
        .client
        .create_voucher(&listed(0), &[0; MAX_AD_LEN + 1], &mut rand::rng());
    assert_eq!(
        e.err(),
        Some(Error::AssociatedDataTooLong {
            len: MAX_AD_LEN + 1,
            max: MAX_AD_LEN
        })
    );
}

#[test]
fn a_voucher_for_another_table_does_not_match() {
    let f = fixture();
    let key = ServerKey::generate(&mut rand::rng());
    let other = TableBuilder::new([1; 32])
        .build(&key, (0..LISTED).map(listed))
        .unwrap();
    let other_client = ClientTable::new(other.table).unwrap();
    let v = other_client
        .create_voucher(&listed(7), b"", &mut rand::rng())
        .unwrap();
    assert_eq!(f.matcher.open(&roundtrip(&v)), Ok(None));
}

#[test]
fn client_refuses_a_table_with_an_invalid_slot() {
    let f = fixture();
    let header: TableHeader = *f.client.table().header();
    for (bad, what) in [([0u8; 32], "identity"), ([0xff; 32], "non-canonical")] {
        let mut slots = f.client.table().slots().to_vec();
        slots[5 * 32..6 * 32].copy_from_slice(&bad);
        let table = BlindedTable::from_parts(header, slots).unwrap();
        assert_eq!(
            ClientTable::new(table).err(),
            Some(Error::InvalidSlot(5)),
            "{what}"
        );
    }
}

fn any_item() -> impl Strategy<Value = Item> {
    (
        0..ItemType::ALL.len(),
        proptest::collection::vec(any::<u8>(), 1..=MAX_ITEM_LEN),
    )
        .prop_map(|(t, bytes)| {
            let t = ItemType::ALL[t];
            let len = t.fixed_len().unwrap_or(bytes.len());
            let mut v = bytes;
            v.resize(len, 0xa5);
            Item::new(t, &v).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn random_unlisted_items_never_match(item in any_item(), ad in proptest::collection::vec(any::<u8>(), 0..64)) {
        let f = fixture();
        prop_assume!(!f.entries.contains(&item));
        let v = f.client.create_voucher(&item, &ad, &mut rand::rng()).unwrap();
        prop_assert_eq!(f.matcher.open(&roundtrip(&v)), Ok(None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn listed_items_match_with_their_associated_data(e in 0..LISTED, ad in proptest::collection::vec(any::<u8>(), 0..=MAX_AD_LEN)) {
        let f = fixture();
        let v = f.client.create_voucher(&f.entries[e], &ad, &mut rand::rng()).unwrap();
        let m = f.matcher.open(&roundtrip(&v)).unwrap().unwrap();
        prop_assert_eq!(m.entry as usize, e);
        prop_assert_eq!(m.associated_data, ad);
    }

    #[test]
    fn a_flipped_bit_anywhere_never_matches_and_never_panics(e in 0..LISTED, bit in 0..voucher_len(3) * 8) {
        let f = fixture();
        let mut bytes = f.client.create_voucher(&f.entries[e], b"ad", &mut rand::rng()).unwrap().encode();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(v) = Voucher::decode(&bytes, k()) {
            let r = f.matcher.open(&v);
            prop_assert!(!matches!(r, Ok(Some(_))), "tampered voucher matched (bit {bit})");
        }
    }

    #[test]
    fn random_bytes_never_panic_a_voucher_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2 * voucher_len(3)), k in 0u8..10) {
        if let Ok(v) = Voucher::decode(&bytes, k)
            && k == self::k()
        {
            prop_assert!(!matches!(fixture().matcher.open(&v), Ok(Some(_))));
        }
    }

    #[test]
    fn random_bytes_never_panic_a_table_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = BlindedTable::decode(&bytes);
        let _ = TableHeader::decode(&bytes);
    }

    #[test]
    fn hostile_item_text_never_panics(t in "\\PC{0,80}") {
        for ty in ItemType::ALL {
            let _ = Item::parse(ty, &t);
        }
        let _ = t.parse::<ItemType>();
    }
}

/// The list audit (SPEC 15.4) over random lists: an honest bundle passes,
/// and one tampered slot, one proof scalar, one fresh filler's version or
/// one entry's claim is always refused (and never panics).
mod audit {
    use blindmatch_protocol::audit::{AuditBundle, AuditError, AuditList, EntrySlot};
    use blindmatch_protocol::hash_to_group::hash_item;
    use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey};
    use blindmatch_protocol::table::{UpdateOptions, update};
    use blindmatch_protocol::{BlindedTable, Item, ItemType, ServerKey, TableBuilder};
    use proptest::prelude::*;

    fn item(salt: u64, i: usize) -> Item {
        let mut v = [0u8; 32];
        v[..8].copy_from_slice(&salt.to_be_bytes());
        v[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        Item::new(ItemType::Sha256, &v).unwrap()
    }

    /// Refused: a slot or the proof fails, or the bundle breaks its own
    /// rules (an item claimed in two slots).
    fn refused(r: Result<blindmatch_protocol::audit::Audited, AuditError>) -> bool {
        matches!(r, Err(AuditError::Refused { .. } | AuditError::Bundle(_)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn any_tampering_is_refused(
            salt in any::<u64>(),
            n in 1usize..60,
            extra in 0usize..20,
            what in 0u8..5,
            pick in any::<u32>(),
        ) {
            let key = ServerKey::generate(&mut rand::rng());
            let built = TableBuilder::new([salt as u8; 32]).build(&key, (0..n).map(|i| item(salt, i))).unwrap();
            // Version 2 removes one entry and adds one: fresh fillers.
            // (A small table can lack room for the insertion: skipped.)
            let v2 = update(&key, (&built).into(), (1..=n).map(|i| item(salt, i)), &UpdateOptions { decoys: 2, ..UpdateOptions::new(2, 3) });
            prop_assume!(v2.is_ok());
            let v2 = v2.unwrap();
            let manifest = Manifest::for_table(&v2.table, 2, 0, None).sign(&OperatorSigningKey::generate(&mut rand::rng()));
            let list = AuditList::new((0..n + 1 + extra).map(|i| item(salt, i))).unwrap();
            let (bundle, _) = AuditBundle::prove(&key, &manifest, &v2.table, &v2.index, &v2.placement, &list, None, &mut rand::rng()).unwrap();
            prop_assert!(bundle.verify(&v2.table, &list, None).is_ok());
            let n_slots = v2.table.header().n_slots;
            let slot = pick % n_slots;
            match what {
                // One slot replaced by α·H(z), z on no list, in a table the
                // operator signs anew; the bundle otherwise as before.
                0 => {
                    let z = item(salt ^ 0x5555, 7);
                    let mut slots = v2.table.slots().to_vec();
                    let at = slot as usize * 32;
                    slots[at..at + 32].copy_from_slice((hash_item(&z) * key_scalar(&key)).compress().as_bytes());
                    let t = BlindedTable::from_parts(*v2.table.header(), slots).unwrap();
                    let m = Manifest::for_table(&t, 2, 0, None).sign(&OperatorSigningKey::generate(&mut rand::rng()));
                    let b = AuditBundle { manifest: m, ..bundle.clone() };
                    prop_assert!(refused(b.verify(&t, &list, None)));
                }
                // One proof scalar changed.
                1 => {
                    let mut b = bundle.clone();
                    if pick % 2 == 0 { b.proof.c += curve25519_dalek::Scalar::ONE } else { b.proof.s += curve25519_dalek::Scalar::ONE }
                    prop_assert!(refused(b.verify(&v2.table, &list, None)));
                }
                // A fresh filler claimed under another version, or as a first filler.
                2 if !bundle.fresh.is_empty() => {
                    let mut b = bundle.clone();
                    let i = pick as usize % b.fresh.len();
                    if pick % 2 == 0 { b.fresh[i].1 += 1 } else { b.fresh.remove(i); }
                    prop_assert!(refused(b.verify(&v2.table, &list, None)));
                }
                // An entry claimed for another item of the list.
                3 if !bundle.entries.is_empty() && list.items().len() >= 2 => {
                    let mut b = bundle.clone();
                    let i = pick as usize % b.entries.len();
                    let EntrySlot { list_index, .. } = b.entries[i];
                    b.entries[i].list_index = (list_index + 1) % list.items().len() as u32;
                    prop_assert!(refused(b.verify(&v2.table, &list, None)));
                }
                // A filler slot claimed as an entry.
                _ => {
                    let empty = (0..n_slots).map(|s| (s + slot) % n_slots).find(|&s| v2.index.entry_at(s).is_none());
                    if let Some(s) = empty {
                        let mut b = bundle.clone();
                        b.fresh.retain(|&(f, _)| f != s);
                        b.entries.push(EntrySlot { slot: s, list_index: pick % list.items().len() as u32 });
                        b.entries.sort_by_key(|e| e.slot);
                        prop_assert!(refused(b.verify(&v2.table, &list, None)));
                    }
                }
            }
        }
    }

    /// α as a scalar, from the key file's encoding (SPEC 4: bytes 5..37).
    fn key_scalar(key: &ServerKey) -> curve25519_dalek::Scalar {
        let bytes = key.to_bytes();
        curve25519_dalek::Scalar::from_canonical_bytes(bytes[5..37].try_into().unwrap()).unwrap()
    }
}

/// `Voucher::decode_batch` decodes every Q at once, and must still report
/// what decoding one by one reports: the first voucher that fails, for its Q
/// or for anything else, in order.
#[test]
fn batch_decoding_reports_what_one_by_one_decoding_does() {
    let f = fixture();
    let good: Vec<Vec<u8>> = (0..11)
        .map(|i| {
            f.client
                .create_voucher(&listed(i), b"", &mut rand::rng())
                .unwrap()
                .encode()
        })
        .collect();
    let mut bad_q = good[0].clone();
    bad_q[1..33].copy_from_slice(&[0xff; 32]); // not canonical
    let mut identity_q = good[0].clone();
    identity_q[1..33].copy_from_slice(&[0; 32]);
    let short = good[0][..good[0].len() - 1].to_vec();
    let cases: Vec<Vec<Vec<u8>>> = vec![
        good.clone(),
        [&good[..9], std::slice::from_ref(&bad_q), &good[9..]].concat(),
        [
            &good[..3],
            std::slice::from_ref(&bad_q),
            &good[3..5],
            std::slice::from_ref(&short),
        ]
        .concat(),
        [
            &good[..3],
            std::slice::from_ref(&short),
            &good[3..5],
            std::slice::from_ref(&bad_q),
        ]
        .concat(),
        [
            &good[..2],
            std::slice::from_ref(&identity_q),
            std::slice::from_ref(&bad_q),
        ]
        .concat(),
        vec![],
    ];
    for batch in cases {
        let one_by_one: Result<Vec<Voucher>, (usize, String)> = batch
            .iter()
            .enumerate()
            .map(|(i, b)| Voucher::decode(b, k()).map_err(|e| (i, e.to_string())))
            .collect();
        let batched = Voucher::decode_batch(&batch, k()).map_err(|(i, e)| (i, e.to_string()));
        assert_eq!(batched, one_by_one);
    }
}
