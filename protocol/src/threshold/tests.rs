//! Threshold mode end to end at the inner layer: shares made by
//! [`Share::real`] and [`Share::synthetic`], revealed by [`reveal`].

use super::*;
use crate::item::ItemType;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn item(i: u32) -> Item {
    Item::new(
        ItemType::Sha256,
        &[&i.to_be_bytes()[..], &[7u8; 28]].concat(),
    )
    .unwrap()
}

fn id(i: u32) -> [u8; VOUCHER_ID_LEN] {
    let mut v = [0u8; VOUCHER_ID_LEN];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v
}

fn account(rng: &mut StdRng, t: u16, s: u16) -> AccountKeys {
    AccountSecret::generate(b"account-1", SyntheticRate::NONE, rng)
        .unwrap()
        .keys(t, s)
        .unwrap()
}

/// `real` real and `synthetic` synthetic shares, shuffled; returns them and
/// which are real.
fn shares(
    rng: &mut StdRng,
    keys: &AccountKeys,
    real: u32,
    synthetic: u32,
) -> (Vec<Share>, Vec<bool>) {
    let mut out: Vec<(Share, bool)> = Vec::new();
    for i in 0..real {
        out.push((
            Share::real(keys, &id(i), &item(i), &i.to_be_bytes(), rng).unwrap(),
            true,
        ));
    }
    for i in 0..synthetic {
        out.push((Share::synthetic(keys, &id(1_000_000 + i), rng), false));
    }
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    out.into_iter().unzip()
}

fn revealed(outcome: Outcome) -> Revealed {
    match outcome {
        Outcome::Revealed(r) => r,
        other => panic!("expected a reveal, got {other:?}"),
    }
}

#[test]
fn t_real_shares_reveal_every_real_one_and_name_the_synthetic_ones() {
    let mut rng = StdRng::seed_from_u64(10);
    let keys = account(&mut rng, 30, 90);
    let (all, truth) = shares(&mut rng, &keys, 30, 90);
    let r = revealed(reveal(30, &all).unwrap());
    assert_eq!(r.real.len(), 30);
    assert_eq!(r.synthetic.len(), 90);
    for o in &r.real {
        let Opened::Item {
            index,
            item: got,
            associated_data,
        } = o
        else {
            panic!("{o:?}")
        };
        assert!(truth[*index]);
        let i = u32::from_be_bytes(associated_data[..4].try_into().unwrap());
        assert_eq!(got, &item(i));
    }
    assert!(r.synthetic.iter().all(|&i| !truth[i]));
}

#[test]
fn t_minus_one_real_shares_with_up_to_s_synthetic_reveal_nothing() {
    let mut rng = StdRng::seed_from_u64(11);
    let keys = account(&mut rng, 30, 90);
    for synthetic in [0, 1, 45, 90] {
        let (all, _) = shares(&mut rng, &keys, 29, synthetic);
        assert!(
            matches!(reveal(30, &all).unwrap(), Outcome::Below),
            "{synthetic} synthetic"
        );
    }
}

#[test]
fn a_voucher_made_again_for_one_id_counts_once() {
    let mut rng = StdRng::seed_from_u64(12);
    let keys = account(&mut rng, 5, 4);
    let mut all: Vec<Share> = (0..4)
        .map(|i| Share::real(&keys, &id(i), &item(i), b"", &mut rng).unwrap())
        .collect();
    // Id 3 again, with other associated data and a fresh inner nonce.
    all.push(Share::real(&keys, &id(3), &item(3), b"again", &mut rng).unwrap());
    assert_eq!(all[3].x(), all[4].x());
    assert!(matches!(reveal(5, &all).unwrap(), Outcome::Below));
    all.push(Share::real(&keys, &id(4), &item(4), b"", &mut rng).unwrap());
    let r = revealed(reveal(5, &all).unwrap());
    // Both copies of id 3 are real and open; the threshold counted it once.
    assert_eq!(r.real.len(), 6);
}

#[test]
fn a_synthetic_voucher_made_again_is_the_same_share() {
    let mut rng = StdRng::seed_from_u64(13);
    let keys = account(&mut rng, 5, 4);
    let a = Share::synthetic(&keys, &id(9), &mut rng);
    let b = Share::synthetic(&keys, &id(9), &mut rng);
    assert_eq!((a.x, a.share, &a.tag), (b.x, b.share, &b.tag));
    assert_ne!(a.inner, b.inner);
}

#[test]
fn two_accounts_shares_do_not_combine() {
    let mut rng = StdRng::seed_from_u64(14);
    let a = account(&mut rng, 4, 2);
    let b = account(&mut rng, 4, 2);
    let mut all: Vec<Share> = (0..3)
        .map(|i| Share::real(&a, &id(i), &item(i), b"", &mut rng).unwrap())
        .collect();
    all.extend((10..13).map(|i| Share::real(&b, &id(i), &item(i), b"", &mut rng).unwrap()));
    // Six columns in five dimensions are dependent, but not as one
    // polynomial's: detection finds them inconsistent, and nothing opens.
    assert!(!matches!(reveal(4, &all).unwrap(), Outcome::Revealed(_)));
    assert!(matches!(reveal(4, &all[..5]).unwrap(), Outcome::Below));
}

#[test]
fn thresholds_give_independent_polynomials() {
    let mut rng = StdRng::seed_from_u64(15);
    let secret = AccountSecret::generate(b"acct", SyntheticRate::NONE, &mut rng).unwrap();
    let (k3, k4) = (secret.keys(3, 2).unwrap(), secret.keys(4, 2).unwrap());
    assert_ne!(k3.key_scalar(), k4.key_scalar());
    // Two devices with one file derive the same keys.
    let copy = AccountSecret::decode(&secret.encode()).unwrap();
    assert_eq!(copy.keys(3, 2).unwrap().key_scalar(), k3.key_scalar());
    // 2 shares under t = 3 and 2 under t = 4 are 4 points of no single
    // cubic: nothing.
    let mut all: Vec<Share> = (0..2)
        .map(|i| Share::real(&k3, &id(i), &item(i), b"", &mut rng).unwrap())
        .collect();
    all.extend((2..4).map(|i| Share::real(&k4, &id(i), &item(i), b"", &mut rng).unwrap()));
    assert!(!matches!(reveal(4, &all).unwrap(), Outcome::Revealed(_)));
    assert!(!matches!(reveal(3, &all).unwrap(), Outcome::Revealed(_)));
}

#[test]
fn threshold_one_reveals_each_real_share() {
    let mut rng = StdRng::seed_from_u64(16);
    let keys = account(&mut rng, 1, 3);
    let one = Share::real(&keys, &id(1), &item(1), b"ad", &mut rng).unwrap();
    let r = revealed(reveal(1, std::slice::from_ref(&one)).unwrap());
    assert!(matches!(&r.real[..], [Opened::Item { item: i, .. }] if *i == item(1)));
    let syn = Share::synthetic(&keys, &id(2), &mut rng);
    assert!(matches!(
        reveal(1, std::slice::from_ref(&syn)).unwrap(),
        Outcome::Below
    ));
    let r = revealed(reveal(1, &[syn, one]).unwrap());
    assert_eq!((r.real.len(), r.synthetic), (1, vec![0]));
}

#[test]
fn a_real_share_with_a_bad_inner_layer_is_malformed_not_a_match() {
    let mut rng = StdRng::seed_from_u64(17);
    let keys = account(&mut rng, 3, 1);
    let mut all: Vec<Share> = (0..3)
        .map(|i| Share::real(&keys, &id(i), &item(i), b"", &mut rng).unwrap())
        .collect();
    all[1].inner[100] ^= 1;
    let r = revealed(reveal(3, &all).unwrap());
    assert!(matches!(r.real[1], Opened::Malformed { index: 1, .. }));
    assert!(matches!(r.real[0], Opened::Item { .. }));
}

#[test]
fn shares_round_trip_and_hostile_encodings_are_refused() {
    let mut rng = StdRng::seed_from_u64(18);
    let keys = account(&mut rng, 3, 2);
    let s = Share::real(&keys, &id(1), &item(1), b"x", &mut rng).unwrap();
    let bytes = s.encode();
    assert_eq!(bytes.len(), share_len(2));
    assert_eq!(Share::decode(&bytes, 2).unwrap(), s);
    assert!(matches!(
        Share::decode(&bytes, 3),
        Err(Error::Length { .. })
    ));
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        Share::decode(&b, 2),
        Err(Error::MalformedPayload(_))
    ));
    b[..8].copy_from_slice(&field::DETECTION_PRIME.to_be_bytes());
    assert!(matches!(
        Share::decode(&b, 2),
        Err(Error::MalformedPayload(_))
    ));
    let mut b = bytes.clone();
    b[8..40].copy_from_slice(&[0xff; 32]);
    assert!(matches!(
        Share::decode(&b, 2),
        Err(Error::MalformedPayload(_))
    ));
    let mut b = bytes.clone();
    b[40..48].copy_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        Share::decode(&b, 2),
        Err(Error::MalformedPayload(_))
    ));
}

#[test]
fn account_files_round_trip_and_bad_ones_are_refused() {
    let mut rng = StdRng::seed_from_u64(19);
    let a = AccountSecret::generate(b"user-42", SyntheticRate(12345), &mut rng).unwrap();
    let f = a.encode();
    assert_eq!(f.len(), account::ACCOUNT_FILE_LEN);
    let b = AccountSecret::decode(&f).unwrap();
    assert_eq!(
        (b.account_id(), b.rate()),
        (&b"user-42"[..], SyntheticRate(12345))
    );
    assert!(format!("{b:?}").find("user-42").is_none());
    let mut bad = f.to_vec();
    bad[0] = b'X';
    assert!(matches!(
        AccountSecret::decode(&bad),
        Err(Error::BadMagic(_))
    ));
    let mut bad = f.to_vec();
    bad[4] = 2;
    assert!(matches!(
        AccountSecret::decode(&bad),
        Err(Error::UnsupportedVersion { .. })
    ));
    for len in [0u8, 65, 255] {
        let mut bad = f.to_vec();
        bad[5] = len;
        assert!(
            matches!(
                AccountSecret::decode(&bad),
                Err(Error::InvalidParameter { .. })
            ),
            "{len}"
        );
    }
    let mut bad = f.to_vec();
    bad[6 + 7] = 1; // padding after the 7-byte id
    assert!(matches!(
        AccountSecret::decode(&bad),
        Err(Error::MalformedAccount(_))
    ));
    assert!(matches!(
        AccountSecret::decode(&f[1..]),
        Err(Error::Length { .. })
    ));
    assert!(AccountSecret::generate(b"", SyntheticRate::NONE, &mut rng).is_err());
    assert!(AccountSecret::generate(&[1; 65], SyntheticRate::NONE, &mut rng).is_err());
    assert!(a.keys(0, 0).is_err() && a.keys(257, 0).is_err() && a.keys(2, 257).is_err());
}

#[test]
fn the_synthetic_coin_has_the_accounts_rate() {
    let mut rng = StdRng::seed_from_u64(20);
    for p in [0.0, 0.05, 0.5] {
        let keys = AccountSecret::generate(b"a", SyntheticRate::from_probability(p), &mut rng)
            .unwrap()
            .keys(2, 1)
            .unwrap();
        let n = 20_000u32;
        let k = (0..n).filter(|&i| keys.choose(&id(i)).synthetic).count();
        let rate = f64::from(u32::try_from(k).unwrap()) / f64::from(n);
        assert!(
            (rate - p).abs() < 4.0 * (p * (1.0 - p) / f64::from(n)).sqrt() + 1e-9,
            "{rate} vs {p}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random t, s and counts: t or more real shares with at most s
    /// synthetic ones always reveal exactly the real ones; fewer never do.
    #[test]
    fn reveal_happens_exactly_at_the_threshold(
        seed in any::<u64>(),
        t in 1u16..12,
        s in 0u16..12,
        extra in 0u32..4,
        below in any::<bool>(),
        synthetic_frac in 0.0f64..=1.0,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys = account(&mut rng, t, s);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let synthetic = (f64::from(s) * synthetic_frac) as u32;
        let real = if below { u32::from(t) - 1 } else { u32::from(t) + extra };
        let (all, truth) = shares(&mut rng, &keys, real, synthetic);
        match reveal(t, &all).unwrap() {
            Outcome::Revealed(r) => {
                prop_assert!(!below);
                prop_assert_eq!(r.real.len(), real as usize);
                for o in &r.real {
                    let ok = matches!(o, Opened::Item { index, .. } if truth[*index]);
                    prop_assert!(ok);
                }
                prop_assert!(r.synthetic.iter().all(|&i| !truth[i]));
            }
            Outcome::Below => prop_assert!(below),
            Outcome::Inconsistent => prop_assert!(false, "inconsistent"),
        }
    }
}
