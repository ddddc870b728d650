//! Threshold mode through the C ABI, called from Rust as a C program would
//! call it: vouchers made with `bm_account_submission` are opened and
//! revealed by the server's side of the protocol crate, and every misuse
//! gets its status.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    unsafe_code,
    reason = "tests fail loudly; a C ABI is called through raw pointers"
)]

use std::ptr::{null, null_mut};

use blindmatch::{
    BmAccount, BmManifest, BmStatus, BmTable, bm_account_decode, bm_account_encode,
    bm_account_free, bm_account_generate, bm_account_id, bm_account_submission, bm_last_error,
    bm_manifest_free, bm_manifest_threshold, bm_manifest_verify, bm_table_free, bm_table_open,
    bm_table_open_unverified, bm_table_voucher, bm_table_voucher_len,
};
use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey, ThresholdParams};

use blindmatch_protocol::threshold::{
    Opened, Outcome, ThresholdVoucher, placement_weights, reveal, submission_digest,
    threshold_voucher_len,
};
use blindmatch_protocol::{Item, ItemType, Matcher, ServerKey, TableBuilder};

fn last_error() -> String {
    let mut buf = vec![0u8; 512];
    let n = unsafe { bm_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.saturating_sub(1)]).into_owned()
}

fn value(i: u32) -> [u8; 32] {
    let mut v = [0u8; 32];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v[31] = 0x5a;
    v
}

#[test]
fn account_submissions_open_and_reveal_at_t_on_the_server() {
    // The operator's side: a table of 40 SHA-256 values, in threshold
    // mode with t = 3 and s = 2.
    let key = ServerKey::generate(&mut rand::rng());
    let listed: Vec<Item> = (0..40)
        .map(|i| Item::new(ItemType::Sha256, &value(i)).unwrap())
        .collect();
    let built = TableBuilder::new([3; 32]).build(&key, listed).unwrap();
    let (t, s) = (3u16, 2u16);
    let params = ThresholdParams::new(t, s, &placement_weights(&built)).unwrap();
    let operator = OperatorSigningKey::generate(&mut rand::rng());
    let signed = Manifest::for_table(&built.table, 1, 1_800_000_000, Some(params)).sign(&operator);
    let statement = signed.manifest.encode();
    let verifying = operator.verifying_key().to_bytes();

    // The app's side, through the C ABI.
    let mut m: *mut BmManifest = null_mut();
    let status = unsafe {
        bm_manifest_verify(
            statement.as_ptr(),
            statement.len(),
            signed.signature.as_ptr(),
            64,
            verifying.as_ptr(),
            32,
            &mut m,
        )
    };
    assert_eq!(status, BmStatus::Ok, "{}", last_error());
    assert_eq!(unsafe { bm_manifest_threshold(m) }, 3);
    let encoded = built.table.encode();
    let mut table: *mut BmTable = null_mut();
    assert_eq!(
        unsafe { bm_table_open(encoded.as_ptr(), encoded.len(), m, &mut table) },
        BmStatus::Ok
    );
    let len = unsafe { bm_table_voucher_len(table) };
    assert_eq!(len, threshold_voucher_len(3, s));

    // A version-1 voucher for a threshold table is refused by name.
    let mut one = vec![0u8; len];
    let v = value(1);
    let status =
        unsafe { bm_table_voucher(table, 3, v.as_ptr(), 32, null(), 0, one.as_mut_ptr(), len) };
    assert_eq!(status, BmStatus::Mode);
    assert!(last_error().contains("threshold mode"), "{}", last_error());

    // An account, saved and restored.
    let mut account: *mut BmAccount = null_mut();
    assert_eq!(
        unsafe { bm_account_generate(b"user-7".as_ptr(), 6, 0.0, &mut account) },
        BmStatus::Ok
    );
    let saved_len = unsafe { bm_account_encode(account, null_mut(), 0) };
    let mut saved = vec![0u8; saved_len];
    assert_eq!(
        unsafe { bm_account_encode(account, saved.as_mut_ptr(), saved.len()) },
        saved_len
    );
    let mut restored: *mut BmAccount = null_mut();
    assert_eq!(
        unsafe { bm_account_decode(saved.as_ptr(), saved.len(), &mut restored) },
        BmStatus::Ok
    );
    let mut id = [0u8; 64];
    let id_len = unsafe { bm_account_id(restored, id.as_mut_ptr(), id.len()) };
    assert_eq!(&id[..id_len], b"user-7");
    saved[3] ^= 0xff;
    let mut damaged: *mut BmAccount = null_mut();
    assert_eq!(
        unsafe { bm_account_decode(saved.as_ptr(), saved.len(), &mut damaged) },
        BmStatus::Account
    );
    assert!(damaged.is_null());
    let mut bad_rate: *mut BmAccount = null_mut();
    assert_eq!(
        unsafe { bm_account_generate(b"u".as_ptr(), 1, 1.5, &mut bad_rate) },
        BmStatus::Account
    );

    // Four uploads: three listed, one not, each with its associated data.
    let values: Vec<[u8; 32]> = vec![value(1), value(1000), value(2), value(3)];
    let ads: Vec<Vec<u8>> = (0..4).map(|i| format!("upload {i}").into_bytes()).collect();
    let ids: Vec<u8> = (0..4u8).flat_map(|i| [i + 1; 16]).collect();
    let types = [3u8; 4];
    let value_ptrs: Vec<*const u8> = values.iter().map(|v| v.as_ptr()).collect();
    let value_lens = [32usize; 4];
    let ad_ptrs: Vec<*const u8> = ads.iter().map(|a| a.as_ptr()).collect();
    let ad_lens: Vec<usize> = ads.iter().map(Vec::len).collect();
    let mut out = vec![0u8; 4 * len];
    let submit = |account: *const BmAccount, out: &mut [u8], n: usize, types: &[u8]| unsafe {
        let (mut submission_id, mut digest) = ([0u8; 16], [0u8; 32]);
        let status = bm_account_submission(
            table,
            account,
            n,
            ids.as_ptr(),
            types.as_ptr(),
            value_ptrs.as_ptr(),
            value_lens.as_ptr(),
            ad_ptrs.as_ptr(),
            ad_lens.as_ptr(),
            out.as_mut_ptr(),
            out.len(),
            submission_id.as_mut_ptr(),
            digest.as_mut_ptr(),
        );
        (status, submission_id, digest)
    };
    let (status, submission_id, digest) = submit(restored, &mut out, 4, &types);
    assert_eq!(status, BmStatus::Ok, "{}", last_error());
    assert_ne!(submission_id, [0; 16]);

    // The server's side: open the outer layer, then reveal over the shares.
    let decoded: Vec<ThresholdVoucher> = out
        .chunks(len)
        .map(|v| ThresholdVoucher::decode(v, 3, s).unwrap())
        .collect();
    assert_eq!(
        digest,
        submission_digest(built.table.id(), b"user-7", &decoded),
        "the digest is the one the server dedups on"
    );
    let matcher = Matcher::new(&key, &built.table, built.index.clone()).unwrap();
    let refs: Vec<(&[u8], &ThresholdVoucher)> =
        decoded.iter().map(|v| (&b"user-7"[..], v)).collect();
    let candidates: Vec<_> = matcher
        .open_threshold_batch(s, &refs)
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(candidates.len(), 3, "the three listed items open");
    let shares: Vec<_> = candidates.iter().map(|c| c.share.clone()).collect();
    assert!(matches!(reveal(t, &shares[..2]).unwrap(), Outcome::Below));
    let Outcome::Revealed(r) = reveal(t, &shares).unwrap() else {
        panic!("t real shares reveal");
    };
    let mut revealed: Vec<Vec<u8>> = r
        .real
        .iter()
        .map(|o| match o {
            Opened::Item {
                associated_data, ..
            } => associated_data.clone(),
            Opened::Malformed { error, .. } => panic!("{error}"),
        })
        .collect();
    revealed.sort();
    assert_eq!(
        revealed,
        vec![
            b"upload 0".to_vec(),
            b"upload 2".to_vec(),
            b"upload 3".to_vec()
        ]
    );

    // Misuse: a short buffer, a bad item, a NULL id output, a v1 table.
    let mut short = vec![0u8; 4 * len - 1];
    assert_eq!(
        submit(restored, &mut short, 4, &types).0,
        BmStatus::BufferTooSmall
    );
    assert_eq!(
        submit(restored, &mut out, 4, &[3, 3, 9, 3]).0,
        BmStatus::Input
    );
    assert!(last_error().starts_with("upload 2:"), "{}", last_error());
    assert_eq!(submit(null(), &mut out, 4, &types).0, BmStatus::Null);
    let mut submission_id = [0u8; 16];
    let mut unverified: *mut BmTable = null_mut();
    assert_eq!(
        unsafe { bm_table_open_unverified(encoded.as_ptr(), encoded.len(), &mut unverified) },
        BmStatus::Ok
    );
    let status = unsafe {
        bm_account_submission(
            unverified,
            restored,
            0,
            null(),
            null(),
            null(),
            null(),
            null(),
            null(),
            null_mut(),
            0,
            submission_id.as_mut_ptr(),
            null_mut(),
        )
    };
    assert_eq!(status, BmStatus::Mode);

    unsafe {
        bm_table_free(unverified);
        bm_table_free(table);
        bm_account_free(account);
        bm_account_free(restored);
        bm_manifest_free(m);
    }
}

/// SPEC 15.6 through the ABI: two organisations co-signed the statement,
/// a third did not; the quorum counts the pinned ones that did, once each.
#[test]
fn a_quorum_counts_the_pinned_organisations_that_co_signed() {
    use blindmatch::{BmCoSignature, bm_manifest_cosigners, bm_manifest_require_quorum};
    use blindmatch_protocol::audit::{CoSignature, OrgName};
    let key = ServerKey::generate(&mut rand::rng());
    let built = TableBuilder::new([2; 32])
        .build(&key, vec![Item::new(ItemType::Sha256, &value(1)).unwrap()])
        .unwrap();
    let op = OperatorSigningKey::generate(&mut rand::rng());
    let signed = Manifest::for_table(&built.table, 1, 0, None).sign(&op);
    let statement = signed.manifest.encode();
    let orgs: Vec<OperatorSigningKey> = (0..3)
        .map(|_| OperatorSigningKey::generate(&mut rand::rng()))
        .collect();
    let sigs: Vec<CoSignature> = [(0, "A"), (1, "B"), (0, "A again")]
        .iter()
        .map(|&(i, n)| CoSignature::sign(&orgs[i], OrgName::new(n).unwrap(), &statement))
        .collect();
    let records: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = sigs
        .iter()
        .map(|c| {
            (
                c.org_key.to_bytes().to_vec(),
                c.name.as_str().as_bytes().to_vec(),
                c.signature.to_vec(),
            )
        })
        .collect();
    let abi: Vec<BmCoSignature> = records
        .iter()
        .map(|(k, n, s)| BmCoSignature {
            org_key: k.as_ptr(),
            org_key_len: k.len(),
            name: n.as_ptr(),
            name_len: n.len(),
            signature: s.as_ptr(),
            signature_len: s.len(),
        })
        .collect();
    let keys: Vec<u8> = orgs
        .iter()
        .flat_map(|o| o.verifying_key().to_bytes())
        .collect();
    let mut m: *mut BmManifest = null_mut();
    let op_key = op.verifying_key().to_bytes();
    assert_eq!(
        unsafe {
            bm_manifest_verify(
                statement.as_ptr(),
                statement.len(),
                signed.signature.as_ptr(),
                64,
                op_key.as_ptr(),
                32,
                &raw mut m,
            )
        },
        BmStatus::Ok
    );
    // All three pinned, 3 required: A (once) and B are 2.
    let st = unsafe { bm_manifest_require_quorum(m, keys.as_ptr(), 3, 3, abi.as_ptr(), abi.len()) };
    assert_eq!(st, BmStatus::Quorum);
    assert!(
        last_error().contains("2 valid co-signature(s)"),
        "{}",
        last_error()
    );
    assert_eq!(unsafe { bm_manifest_cosigners(m, null_mut(), 0) }, 0);
    let st = unsafe { bm_manifest_require_quorum(m, keys.as_ptr(), 3, 2, abi.as_ptr(), abi.len()) };
    assert_eq!(st, BmStatus::Ok, "{}", last_error());
    let mut names = vec![0u8; 64];
    let n = unsafe { bm_manifest_cosigners(m, names.as_mut_ptr(), names.len()) };
    assert_eq!(&names[..n], b"A\nB\n");
    assert_eq!(
        unsafe { bm_manifest_require_quorum(m, keys.as_ptr(), 3, 1, null(), 1) },
        BmStatus::Null
    );
    unsafe { bm_manifest_free(m) };
}
