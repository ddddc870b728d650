//! The client core against the interop vectors and against a real table,
//! matcher and signing key: what every binding relies on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "tests fail loudly; test sizes are small"
)]

use std::time::Duration;

use blindmatch_client_core::{
    AccountSecret, Backoff, DeltaDownload, Error, ErrorKind, GrpcCode, History, SyntheticRate,
    Table, TableDownload, Upload, VerifiedManifest, generate_account, open_table,
    operator_key_from_hex,
};
use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey, ThresholdParams};
use blindmatch_protocol::merkle::MerkleTree;
use blindmatch_protocol::table::CHUNK_LEN;
use blindmatch_protocol::threshold::{
    Opened, Outcome, ThresholdVoucher, placement_weights, reveal, threshold_voucher_len,
};
use blindmatch_protocol::{
    BlindedTable, BuiltTable, ClientTable, Item, ItemType, Matcher, ServerKey, TableBuilder,
    TableHeader, Voucher,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/vectors/blindmatch-v1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// The vectors' version-1 table, and version 2's manifest (SPEC 13).
fn vector_tables(v: &Value) -> (Table, VerifiedManifest, History) {
    let t = &v["table"];
    let mut encoded = unhex(&t["header"]);
    for s in t["slots"].as_array().unwrap() {
        encoded.extend(unhex(s));
    }
    let table = BlindedTable::decode(&encoded).unwrap();
    assert_eq!(table.id().0.to_vec(), unhex(&t["table_id"]), "table id");
    let m = &v["lifecycle"]["manifest"];
    let key =
        blindmatch_protocol::OperatorVerifyingKey::from_bytes(&unhex(&m["verifying_key"])).unwrap();
    let manifest =
        VerifiedManifest::verify(&unhex(&m["statement"]), &unhex(&m["signature"]), &key).unwrap();
    (
        Table::unverified(ClientTable::new(table).unwrap()),
        manifest,
        History::new(key),
    )
}

#[test]
fn the_vectors_manifest_verifies_and_says_what_it_signed() {
    let v = vectors();
    let (_, manifest, history) = vector_tables(&v);
    let update = &v["lifecycle"]["update"];
    assert_eq!(manifest.version(), 2);
    assert_eq!(manifest.created(), 1_790_000_000);
    assert_eq!(manifest.table_id().0.to_vec(), unhex(&update["table_id"]));
    assert_eq!(manifest.digest().to_vec(), unhex(&update["digest"]));
    assert_eq!(
        manifest.statement_bytes(),
        unhex(&v["lifecycle"]["manifest"]["statement"])
    );

    let m = &v["lifecycle"]["manifest"];
    let (statement, signature) = (unhex(&m["statement"]), unhex(&m["signature"]));
    let mut tampered = statement.clone();
    tampered[12] ^= 1; // the version number
    assert_eq!(
        VerifiedManifest::verify(&tampered, &signature, history.operator()),
        Err(Error::BadSignature)
    );
    let other = OperatorSigningKey::generate(&mut rand::rng()).verifying_key();
    assert_eq!(
        VerifiedManifest::verify(&statement, &signature, &other),
        Err(Error::BadSignature)
    );
    assert!(matches!(
        VerifiedManifest::verify(&statement, &signature[..63], history.operator()),
        Err(Error::Invalid {
            what: "manifest",
            ..
        })
    ));
}

#[test]
fn the_vectors_delta_gives_version_two() {
    let v = vectors();
    let (v1, manifest, _) = vector_tables(&v);
    let mut delta = DeltaDownload::new(&v1, &manifest);
    for d in v["lifecycle"]["update"]["delta"].as_array().unwrap() {
        let slot = d["slot"].as_u64().unwrap() as u32;
        let at = slot as usize * 32;
        assert_eq!(
            v1.client_table().table().slots()[at..at + 32].to_vec(),
            unhex(&d["before"])
        );
        delta
            .push(&slot.to_be_bytes(), &unhex(&d["after"]))
            .unwrap();
    }
    let v2 = delta.finish(&v1).unwrap();
    assert_eq!(v2.id(), manifest.table_id());
    assert_eq!(v2.manifest(), Some(&manifest));

    // Any other slot content is refused, and the table held is unchanged.
    let mut bad = DeltaDownload::new(&v1, &manifest);
    let d = &v["lifecycle"]["update"]["delta"][0];
    let mut after = unhex(&d["after"]);
    after[0] ^= 2;
    let slot = d["slot"].as_u64().unwrap() as u32;
    bad.push(&slot.to_be_bytes(), &after).unwrap();
    assert!(matches!(
        bad.finish(&v1),
        Err(Error::Invalid { what: "delta", .. })
    ));
    let mut cut = DeltaDownload::new(&v1, &manifest);
    assert_eq!(
        cut.push(&[0, 0, 1], &[]),
        Err(Error::Malformed("a delta chunk has a partial slot index"))
    );
    let mut huge = DeltaDownload::new(&v1, &manifest);
    assert!(matches!(
        huge.push(&[], &vec![0; 33 * 32]),
        Err(Error::Malformed(_))
    ));
}

struct Fixture {
    key: ServerKey,
    operator: OperatorSigningKey,
    built: BuiltTable,
    listed: Vec<Item>,
}

fn item(i: u32) -> Item {
    Item::new(ItemType::Sha256, &Sha256::digest(i.to_be_bytes())).unwrap()
}

/// A table of several Merkle chunks.
fn fixture() -> Fixture {
    let key = ServerKey::generate(&mut rand::rng());
    let listed: Vec<Item> = (0..5000).map(item).collect();
    let built = TableBuilder::new([9; 32])
        .build(&key, listed.clone())
        .unwrap();
    assert!(built.table.slots().len() > 2 * CHUNK_LEN);
    Fixture {
        key,
        operator: OperatorSigningKey::generate(&mut rand::rng()),
        built,
        listed,
    }
}

fn sign(f: &Fixture, version: u64, table: &BlindedTable) -> VerifiedManifest {
    sign_with(f, version, table, None)
}

fn sign_with(
    f: &Fixture,
    version: u64,
    table: &BlindedTable,
    threshold: Option<ThresholdParams>,
) -> VerifiedManifest {
    let signed = Manifest::for_table(table, version, 1_800_000_000, threshold).sign(&f.operator);
    VerifiedManifest::verify(
        &signed.manifest.encode(),
        &signed.signature,
        &f.operator.verifying_key(),
    )
    .unwrap()
}

/// `(offset, slots, proof)` of every chunk, as `DownloadTable` streams them.
fn chunks(table: &BlindedTable) -> Vec<(u64, Vec<u8>, Vec<Vec<u8>>)> {
    let tree = MerkleTree::new(table.slots());
    table
        .slots()
        .chunks(CHUNK_LEN)
        .enumerate()
        .map(|(i, c)| {
            let proof = tree.proof(i as u64).unwrap().iter().map(|h| h.to_vec());
            ((i * CHUNK_LEN) as u64, c.to_vec(), proof.collect())
        })
        .collect()
}

#[test]
fn a_download_checks_every_chunk_and_resumes_from_the_last_good_one() {
    let f = fixture();
    let manifest = sign(&f, 1, &f.built.table);
    let chunks = chunks(&f.built.table);
    let mut download = TableDownload::new(&manifest);
    let mut kept = Vec::new();
    let (o, s, p) = &chunks[0];
    download.push(*o, s, p).unwrap();
    kept.extend_from_slice(s);

    // A flipped byte, a wrong proof, a chunk out of place, a short hash.
    let (o, s, p) = &chunks[1];
    let mut flipped = s.clone();
    flipped[100] ^= 1;
    for (offset, slots, proof) in [
        (*o, flipped, p.clone()),
        (*o, s.clone(), chunks[2].2.clone()),
        (*o + 32, s.clone(), p.clone()),
    ] {
        assert!(
            matches!(
                download.push(offset, &slots, &proof),
                Err(Error::Invalid {
                    what: "table chunk",
                    ..
                })
            ),
            "offset {offset}"
        );
        assert_eq!(
            download.offset(),
            CHUNK_LEN as u64,
            "nothing refused is kept"
        );
    }
    assert_eq!(
        download.push(*o, s, &[vec![0u8; 31]]),
        Err(Error::Malformed("a proof hash is not 32 bytes"))
    );
    assert!(!download.is_complete());
    assert!(matches!(
        TableDownload::resume(&manifest, kept.clone())
            .unwrap()
            .finish(),
        Err(Error::Invalid {
            what: "table download",
            ..
        })
    ));

    // Resume after a restart from what was kept (and half a chunk more).
    kept.extend_from_slice(&s[..100]);
    let mut resumed = TableDownload::resume(&manifest, kept).unwrap();
    assert_eq!(resumed.offset(), CHUNK_LEN as u64);
    for (o, s, p) in &chunks[1..] {
        resumed.push(*o, s, p).unwrap();
    }
    assert!(resumed.is_complete());
    let table = resumed.finish().unwrap();
    assert_eq!(table.id(), f.built.table.id());
    assert_eq!(table.manifest(), Some(&manifest));

    // A saved copy opens only as its own table.
    let saved = table.encode();
    assert!(open_table(&saved, &manifest).is_ok());
    let mut damaged = saved.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert!(open_table(&damaged, &manifest).is_err());
    assert!(TableDownload::resume(&manifest, vec![0; saved.len()]).is_err());
}

#[test]
fn history_refuses_rollback_and_equivocation_and_survives_a_restart() {
    let f = fixture();
    let v1 = sign(&f, 1, &f.built.table);
    let other = TableBuilder::new([10; 32])
        .build(&f.key, f.listed[..10].to_vec())
        .unwrap();
    let v1_other = sign(&f, 1, &other.table);
    let v2 = sign(&f, 2, &other.table);

    let mut history = History::new(f.operator.verifying_key());
    assert!(history.newest().is_none());
    assert!(history.encode().is_empty());
    let accepted_v1 = history.check(&v1).unwrap();
    assert_eq!(accepted_v1.manifest(), &v1);
    history.record(accepted_v1.clone());
    assert!(matches!(
        history.check(&v1_other),
        Err(Error::Equivocation { version: 1, .. })
    ));
    let accepted_v2 = history.check(&v2).unwrap();
    history.record(accepted_v2);
    // An older one accepted before never replaces the newest.
    history.record(accepted_v1);
    assert_eq!(
        history.check(&v1),
        Err(Error::Rollback {
            offered: 1,
            seen: 2
        })
    );

    // Version 2 signed again (here in threshold mode), and the same table
    // under other parameters in a later version: equivocation too.
    let params = ThresholdParams::new(3, 2, &placement_weights(&other)).unwrap();
    let v2_again = sign_with(&f, 2, &other.table, Some(params));
    assert!(matches!(
        history.check(&v2_again),
        Err(Error::Equivocation { version: 2, .. })
    ));
    let v3_same_table = sign_with(&f, 3, &other.table, Some(params));
    assert!(matches!(
        history.check(&v3_same_table),
        Err(Error::Equivocation { version: 3, .. })
    ));
    // The same statement again is no equivocation.
    assert!(history.check(&v2).is_ok());

    let saved = history.encode();
    let restored = History::restore(f.operator.verifying_key(), &saved).unwrap();
    assert_eq!(restored.newest(), Some(v2.clone()));
    assert!(restored.check(&v1).is_err());
    assert!(
        History::restore(f.operator.verifying_key(), &[])
            .unwrap()
            .newest()
            .is_none()
    );
    let mut damaged = saved.clone();
    damaged[20] ^= 1;
    assert!(matches!(
        History::restore(f.operator.verifying_key(), &damaged),
        Err(Error::History(_))
    ));
    let stranger = OperatorSigningKey::generate(&mut rand::rng()).verifying_key();
    assert!(History::restore(stranger, &saved).is_err());

    assert!(v2.check_age(86_400, 1_800_000_000 + 86_400).is_ok());
    assert!(v2.check_age(86_400, 1_700_000_000).is_ok());
    assert!(matches!(
        v2.check_age(86_400, 1_800_000_000 + 86_401),
        Err(Error::TooOld {
            version: 2,
            age_seconds: 86_401,
            max_seconds: 86_400
        })
    ));
}

#[test]
fn a_submission_opens_on_the_server_and_carries_its_digest() {
    let f = fixture();
    let table = Table::unverified(ClientTable::new(f.built.table.clone()).unwrap());
    let unlisted = item(1_000_000);
    let items = vec![
        (f.listed[17].clone(), b"upload 17".to_vec()),
        (unlisted, b"upload x".to_vec()),
        (f.listed[4999].clone(), Vec::new()),
    ];
    let batch = table.submission(&items, &mut rand::rng()).unwrap();
    assert_eq!(batch.table_id, *f.built.table.id());
    let again = table.submission(&items, &mut rand::rng()).unwrap();
    assert_ne!(batch.id, again.id, "a fresh id per batch");
    assert_ne!(batch.vouchers, again.vouchers, "fresh blinds per voucher");

    // SPEC 12.3, computed here independently.
    let mut h = Sha256::new();
    h.update(b"blindmatch-v1/submission-digest");
    h.update(batch.table_id.0);
    h.update(3u32.to_be_bytes());
    for v in &batch.vouchers {
        h.update(&v[1..33]);
    }
    assert_eq!(batch.digest, <[u8; 32]>::from(h.finalize()));

    let header: &TableHeader = f.built.table.header();
    let len = blindmatch_protocol::voucher_len(header.k);
    assert_eq!(table.voucher_len(), len);
    assert!(batch.vouchers.iter().all(|v| v.len() == len));
    let matcher = Matcher::new(&f.key, &f.built.table, f.built.index.clone()).unwrap();
    let opened: Vec<_> = batch
        .vouchers
        .iter()
        .map(|v| {
            matcher
                .open(&Voucher::decode(v, header.k).unwrap())
                .unwrap()
        })
        .collect();
    let first = opened[0].as_ref().expect("listed item matches");
    assert_eq!(
        (first.entry, &first.associated_data[..]),
        (17, &b"upload 17"[..])
    );
    assert!(opened[1].is_none(), "an unlisted item never matches");
    assert_eq!(opened[2].as_ref().map(|m| m.entry), Some(4999));

    let too_long = vec![(f.listed[0].clone(), vec![0u8; 1025])];
    assert!(matches!(
        table.submission(&too_long, &mut rand::rng()),
        Err(Error::Input(_))
    ));
}

#[test]
fn an_account_submission_reveals_at_t_and_refuses_the_wrong_mode() {
    let f = fixture();
    let (t, s) = (3u16, 2u16);
    let params = ThresholdParams::new(t, s, &placement_weights(&f.built)).unwrap();
    let v2 = sign_with(&f, 1, &f.built.table, Some(params));
    let v1 = sign(&f, 1, &f.built.table);
    let saved = f.built.table.encode();
    let table = open_table(&saved, &v2).unwrap();
    assert_eq!(v2.threshold().map(ThresholdParams::threshold), Some(3));
    let account =
        AccountSecret::generate(b"user-7", SyntheticRate::NONE, &mut rand::rng()).unwrap();
    let upload = |i: u32, listed: bool| {
        let item = if listed {
            f.listed[i as usize].clone()
        } else {
            item(1_000_000 + i)
        };
        let voucher_id = [u8::try_from(i).unwrap(); 16];
        Upload::new(&voucher_id, item, format!("upload {i}").into_bytes()).unwrap()
    };
    let uploads: Vec<Upload> = vec![
        upload(1, true),
        upload(2, false),
        upload(3, true),
        upload(4, true),
    ];
    let batch = table
        .account_submission(&account, &uploads, &mut rand::rng())
        .unwrap();
    assert_eq!(batch.account_id, b"user-7");
    let len = threshold_voucher_len(f.built.table.header().k, s);
    assert_eq!(table.voucher_len(), len);
    assert!(batch.vouchers.iter().all(|v| v.len() == len));

    // The server's side: open, then reveal over the account's shares.
    let header = f.built.table.header();
    let matcher = Matcher::new(&f.key, &f.built.table, f.built.index.clone()).unwrap();
    let decoded: Vec<ThresholdVoucher> = batch
        .vouchers
        .iter()
        .map(|v| ThresholdVoucher::decode(v, header.k, s).unwrap())
        .collect();
    let refs: Vec<(&[u8], &ThresholdVoucher)> =
        decoded.iter().map(|v| (&batch.account_id[..], v)).collect();
    let candidates: Vec<_> = matcher
        .open_threshold_batch(s, &refs)
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(
        candidates.len(),
        3,
        "the three listed items open the outer layer"
    );
    let shares: Vec<_> = candidates.iter().map(|c| c.share.clone()).collect();
    let below = reveal(t, &shares[..2]).unwrap();
    assert!(
        matches!(below, Outcome::Below),
        "t - 1 real shares reveal nothing"
    );
    let Outcome::Revealed(r) = reveal(t, &shares).unwrap() else {
        panic!("t real shares reveal");
    };
    let mut data: Vec<Vec<u8>> = r
        .real
        .iter()
        .map(|o| match o {
            Opened::Item {
                associated_data, ..
            } => associated_data.clone(),
            Opened::Malformed { error, .. } => panic!("{error}"),
        })
        .collect();
    data.sort();
    assert_eq!(
        data,
        [
            b"upload 1".to_vec(),
            b"upload 3".to_vec(),
            b"upload 4".to_vec()
        ]
    );

    // SPEC 14.9's digest binds the account id.
    assert_eq!(
        batch.digest,
        blindmatch_protocol::threshold::submission_digest(&batch.table_id, b"user-7", &decoded)
    );
    // Each mode refuses the other's submission; an account submission
    // needs the manifest that says which mode the table is in.
    assert_eq!(
        table
            .submission(&[(f.listed[0].clone(), vec![])], &mut rand::rng())
            .unwrap_err(),
        Error::ThresholdMode { t: 3 }
    );
    let v1_table = open_table(&saved, &v1).unwrap();
    assert_eq!(
        v1_table
            .account_submission(&account, &uploads, &mut rand::rng())
            .unwrap_err(),
        Error::NotThresholdMode
    );
    let unverified = Table::decode_unverified(&saved).unwrap();
    assert_eq!(
        unverified
            .account_submission(&account, &uploads, &mut rand::rng())
            .unwrap_err(),
        Error::NoManifest
    );
    let mut too_long = upload(9, true);
    too_long.associated_data = vec![0; 1025];
    assert!(matches!(
        table.account_submission(&account, &[too_long], &mut rand::rng()),
        Err(Error::Input(_))
    ));
    assert!(matches!(
        Upload::new(&[0; 15], item(1), Vec::new()),
        Err(blindmatch_protocol::Error::Length {
            what: "voucher id",
            expected: 16,
            got: 15
        })
    ));
}

/// The list every binding maps: each kind once, in `ErrorKind::ALL`, with
/// one error of each; every message says what is wrong, once.
#[test]
fn every_error_kind_is_listed_and_every_message_reads_once() {
    let examples = Error::one_of_each_kind();
    let kinds: Vec<ErrorKind> = examples.iter().map(Error::kind).collect();
    assert_eq!(kinds, ErrorKind::ALL, "one example per kind, in order");
    let names: std::collections::HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), ErrorKind::ALL.len(), "names are distinct");

    // Real refusals from the core, beside the examples.
    let mut errors = examples;
    errors.push(operator_key_from_hex("zz").unwrap_err());
    errors.push(operator_key_from_hex(&"00".repeat(32)).unwrap_err());
    errors.push(generate_account(b"", 0.1, &mut rand::rng()).unwrap_err());
    errors.push(generate_account(b"u", 1.5, &mut rand::rng()).unwrap_err());
    errors.push(generate_account(b"u", f64::NAN, &mut rand::rng()).unwrap_err());
    let f = fixture();
    let manifest = sign(&f, 1, &f.built.table);
    let chunks = chunks(&f.built.table);
    let mut download = TableDownload::new(&manifest);
    let (o, s, p) = &chunks[0];
    errors.push(download.push(*o, &s[..100], p).unwrap_err());
    errors.push(download.push(*o + 32, s, p).unwrap_err());
    errors.push(TableDownload::new(&manifest).finish().unwrap_err());
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.kind() == ErrorKind::Account)
            .count(),
        4
    );
    for e in &errors {
        let message = e.to_string();
        assert!(!message.is_empty(), "{e:?}");
        // "table chunk: table chunk: ..." says one thing twice.
        let words: Vec<&str> = message.split(": ").collect();
        assert!(
            words.windows(2).all(|w| !w[1].starts_with(w[0])),
            "{message}"
        );
    }
}

#[test]
fn backoff_retries_what_may_pass_and_stops() {
    let rng = &mut rand::rng();
    let mut b = Backoff::new(3, Duration::from_millis(100));
    let first = b.retry(GrpcCode::Unavailable, None, rng).unwrap();
    assert!((100..=125).contains(&first.as_millis()), "{first:?}");
    let second = b.retry(GrpcCode::from(4), None, rng).unwrap();
    assert!((200..=250).contains(&second.as_millis()), "{second:?}");
    assert_eq!(
        b.retry(GrpcCode::Unavailable, None, rng),
        None,
        "3 tries in all"
    );

    let mut b = Backoff::new(5, Duration::from_millis(100));
    assert_eq!(
        b.retry(GrpcCode::ResourceExhausted, None, rng),
        None,
        "no hint: final"
    );
    assert_eq!(
        b.retry(GrpcCode::ResourceExhausted, Some("soon"), rng),
        None
    );
    let hinted = b
        .retry(GrpcCode::ResourceExhausted, Some("700"), rng)
        .unwrap();
    assert!((700..=875).contains(&hinted.as_millis()), "{hinted:?}");
    for final_code in [0, 3, 5, 6, 7, 9, 13, 16] {
        assert_eq!(b.retry(GrpcCode::from(final_code), None, rng), None);
    }
    assert_eq!(
        Backoff::new(1, Duration::ZERO).retry(GrpcCode::Unavailable, None, rng),
        None
    );
}

/// SPEC 16.6 on the log vectors (SPEC 16.8): a client accepts version 2 at
/// the checkpoint of size 3, keeps it across a restart, accepts version 5
/// at size 5 only with the consistency proof from 3, and refuses a proof
/// from elsewhere (a fork), a smaller checkpoint (a server behind), and a
/// manifest with no log proof.
#[test]
fn a_logged_history_grows_only_by_consistency_proofs_and_survives_a_restart() {
    use blindmatch_protocol::audit::CoSignature;
    use blindmatch_protocol::merkle;
    use blindmatch_protocol::tlog::{LogEntry, LogError, LogPolicy, Note, TlogProof};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/vectors/blindmatch-log.json"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let operator = operator_key_from_hex(v["operator_verifying_key"].as_str().unwrap()).unwrap();
    let mut text = format!("log {}\n", v["log"]["vkey"].as_str().unwrap());
    for w in v["witnesses"].as_array().unwrap() {
        text.push_str(&format!(
            "witness {} {}\n",
            w["name"].as_str().unwrap(),
            w["vkey"].as_str().unwrap()
        ));
    }
    text.push_str("group both all witness-a.example witness-b.example\nquorum both\n");
    let policy = LogPolicy::parse(&text).unwrap();
    let entries: Vec<LogEntry> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| LogEntry::decode(&unhex(&e["encoding"])).unwrap())
        .collect();
    let leaves: Vec<[u8; 32]> = entries.iter().map(LogEntry::leaf_hash).collect();
    let note = |size: usize| {
        Note::parse(
            v["checkpoints"][size - 1]["note"]
                .as_str()
                .unwrap()
                .as_bytes(),
        )
        .unwrap()
    };
    // Version `i + 1` proved at checkpoint `size`, with `consistency`.
    let logged = |i: usize, size: usize, consistency: &[[u8; 32]]| {
        let e = &entries[i];
        let m = VerifiedManifest::verify(
            &e.manifest.manifest.encode(),
            &e.manifest.signature,
            &operator,
        )
        .unwrap();
        let proof = TlogProof {
            extra: None,
            index: i as u64,
            path: merkle::inclusion_proof(&leaves[..size], i),
            checkpoint: note(size),
        };
        let cosignatures: Vec<CoSignature> = e.cosignatures().to_vec();
        let hashes: Vec<Vec<u8>> = consistency.iter().map(|h| h.to_vec()).collect();
        (
            m.clone(),
            m.require_logged(&policy, proof.encode().as_bytes(), &hashes, &cosignatures),
        )
    };

    let mut history = History::new(operator);
    let (_, v2) = logged(1, 3, &[]);
    let v2 = v2.unwrap();
    assert_eq!(
        v2.log_checkpoint().unwrap().witnesses(),
        ["witness-a.example", "witness-b.example"]
    );
    history.record(history.check(&v2).unwrap());
    assert_eq!(history.log_size(), 3);
    let mut history = History::restore(operator, &history.encode()).unwrap();
    assert_eq!(history.log_size(), 3);

    // Size 5 from 3: the consistency proof of the vectors.
    let proof_3_5 = merkle::consistency_proof(&leaves, 3);
    let (plain_v5, v5) = logged(4, 5, &proof_3_5);
    let v5 = v5.unwrap();
    // Two manifests checked against the same held checkpoint: the first
    // recorded moves the history on, and the second is then not recorded
    // (it was proved against a checkpoint no longer held).
    {
        let mut h = history.clone();
        let (_, v4) = logged(3, 4, &merkle::consistency_proof(&leaves[..4], 3));
        let first = h.check(&v5).unwrap();
        let second = h.check(&v4.unwrap()).unwrap();
        h.record(first);
        h.record(second);
        assert_eq!((h.log_size(), h.newest().unwrap().version()), (5, 5));
    }
    // A proof from another size is a fork as far as this client knows.
    let (_, forked) = logged(4, 5, &merkle::consistency_proof(&leaves, 2));
    assert!(matches!(
        history.check(&forked.unwrap()),
        Err(Error::Log(LogError::Inconsistent { old: 3, new: 5 }))
    ));
    // Unlogged, once a logged version was accepted: refused.
    assert!(matches!(
        history.check(&plain_v5),
        Err(Error::Log(LogError::Missing(_)))
    ));
    history.record(history.check(&v5).unwrap());
    assert_eq!(history.log_size(), 5);
    // A server behind: the checkpoint of size 4.
    let (_, v4) = logged(3, 4, &[]);
    assert!(matches!(
        history.check(&v4.unwrap()),
        Err(Error::Log(LogError::Behind {
            offered: 4,
            seen: 5
        }))
    ));
    // A damaged saved record is refused, not half-read.
    let mut saved = history.encode();
    saved.truncate(saved.len() - 5);
    assert!(matches!(
        History::restore(operator, &saved),
        Err(Error::History(_))
    ));
}
