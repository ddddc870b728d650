//! Threshold mode's decoders (SPEC Sections 14.1 to 14.6): the version-2
//! voucher a client sends, the share its outer layer releases, the account
//! file an app restores, and detection over shares a hostile client chose.
//! The first byte picks which, and s, k and t; nothing may panic, and what
//! a decoder accepts must encode to the same bytes (the encodings are
//! canonical, so a voucher has one digest and a share one x).
#![no_main]

use blindmatch_protocol::threshold::{AccountSecret, Share, ThresholdVoucher, reveal, share_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let s = u16::from(pick & 3);
    match pick >> 6 {
        0 => {
            let k = 2 + (pick >> 2) % 7;
            if let Ok(v) = ThresholdVoucher::decode(rest, k, s) {
                assert_eq!(v.encode(), rest);
            }
        }
        1 => {
            if let Ok(share) = Share::decode(rest, s) {
                assert_eq!(share.encode(), rest);
            }
        }
        2 => {
            if let Ok(a) = AccountSecret::decode(rest) {
                assert_eq!(&a.encode()[..], rest);
            }
        }
        _ => {
            let t = 1 + u16::from((pick >> 2) & 3);
            let shares: Vec<Share> = rest
                .chunks_exact(share_len(s))
                .filter_map(|c| Share::decode(c, s).ok())
                .collect();
            let _ = reveal(t, &shares);
        }
    }
});
