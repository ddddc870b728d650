//! Threshold mode through the service (SPEC Section 14.9): the real
//! server and client library over loopback gRPC, and the real binary
//! SIGKILLed under load.
//!
//! - Below t the server stores candidates and records nothing; the t-th
//!   real listed voucher reveals exactly the account's real listed uploads,
//!   with their associated data, and later ones at once.
//! - A resubmitted upload (same voucher id) counts once; synthetic vouchers
//!   never become match records; other accounts and thresholds never mix.
//! - Candidates survive a restart, a version swap and a key rotation.
//! - SIGKILL at random moments: every crossing is recorded, once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/fixture.rs"]
mod fixture;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use blindmatch_client::{Client, Upload};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::Item;
use blindmatch_protocol::threshold::{AccountSecret, SyntheticRate};
use fixture::*;
use sha2::{Digest, Sha256};

const T: u16 = 3;
const S: u16 = 4;

fn account(name: &str, rate: f64) -> AccountSecret {
    AccountSecret::generate(
        name.as_bytes(),
        SyntheticRate::from_probability(rate),
        &mut rand::rng(),
    )
    .unwrap()
}

fn upload(item: &Item, ad: &str) -> Upload {
    let mut voucher_id = [0u8; 16];
    voucher_id.copy_from_slice(&Sha256::digest(ad.as_bytes())[..16]);
    Upload {
        voucher_id,
        item: item.clone(),
        associated_data: ad.as_bytes().to_vec(),
    }
}

/// The associated data recorded for `account`, as a set (and the count of
/// records, to catch a duplicate).
fn recorded_for(fx: &Fixture, account: &AccountSecret) -> (BTreeSet<Vec<u8>>, usize) {
    let hex_id = hex::encode(account.account_id());
    let records: Vec<_> = blindmatch_server::store::read_all(&fx.data)
        .unwrap()
        .into_iter()
        .filter(|r| r.account_hex.as_deref() == Some(hex_id.as_str()))
        .collect();
    let n = records.len();
    (records.into_iter().map(|r| r.associated_data).collect(), n)
}

fn summary(
    fx: &Fixture,
    account: &AccountSecret,
) -> Option<blindmatch_server::store::AccountSummary> {
    let hex_id = hex::encode(account.account_id());
    blindmatch_server::store::read_accounts(&blindmatch_server::store::Location::Sqlite(
        fx.data.clone(),
    ))
    .unwrap()
    .into_iter()
    .find(|a| a.account_hex == hex_id)
}

fn ads(uploads: &[&Upload]) -> BTreeSet<Vec<u8>> {
    uploads.iter().map(|u| u.associated_data.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_t_only_candidates_and_the_crossing_reveals_exactly_the_listed_uploads() {
    let fx = Fixture::with_threshold(Some((T, S)));
    let server = fx.start().await;
    let (mut client, manifest, table) = connected(&fx, &server).await;
    let p = manifest.threshold().expect("a version-2 manifest");
    assert_eq!((p.threshold(), p.synthetic_bound()), (T, S));
    assert_eq!(
        p.weights().len(),
        usize::from(table.client_table().table().header().k)
    );
    let (listed, unlisted) = (listed(), unlisted());
    let processed = std::cell::Cell::new(0u64);
    let send = async |client: &mut Client, a: &AccountSecret, u: &[Upload]| {
        let n = client.check_account(&manifest, &table, a, u).await.unwrap();
        assert_eq!(n, u.len());
        processed.set(processed.get() + n as u64);
        assert!(
            server
                .wait_processed(processed.get(), Duration::from_secs(20))
                .await
        );
    };

    // Alice, no synthetic vouchers: two listed and three unlisted uploads.
    let alice = account("alice", 0.0);
    let first: Vec<Upload> = [
        upload(&listed[0], "alice 0"),
        upload(&listed[1], "alice 1"),
        upload(&unlisted[0], "alice private 0"),
        upload(&unlisted[1], "alice private 1"),
        upload(&unlisted[2], "alice private 2"),
    ]
    .into();
    send(&mut client, &alice, &first).await;
    assert!(recorded(&fx.data).is_empty(), "below t: no match record");
    let a = summary(&fx, &alice).unwrap();
    assert_eq!(
        (a.t, a.unrevealed, a.real),
        (T, 2, 0),
        "two candidates, no more"
    );

    // The same uploads again (a retry by the app, new submission): their
    // voucher ids give the same shares, which count once.
    send(&mut client, &alice, &first).await;
    assert_eq!(summary(&fx, &alice).unwrap().unrevealed, 2);
    assert!(recorded(&fx.data).is_empty());

    // The version-1 API refuses a threshold manifest, and a Submit without
    // an account id is refused with a reason.
    let e = client
        .check(&manifest, &table, &with_ad(&listed[..1], "v1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("threshold mode"), "{e}");
    let vouchers = table
        .account_submission(&alice, &first[..1], &mut rand::rng())
        .unwrap()
        .vouchers;
    let mut raw = VoucherServiceClient::new(channel(&server).await);
    for (account_id, want) in [
        (Vec::new(), "account_id is 0 bytes"),
        (vec![1u8; 65], "account_id is 65 bytes"),
    ] {
        let e = raw
            .submit(SubmitRequest {
                table_id: manifest.table_id().0.to_vec(),
                vouchers: vouchers.clone(),
                submission_id: Vec::new(),
                account_id,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(want), "{}", e.message());
    }
    // Alice's vouchers submitted under another account id fail the outer
    // layer: nothing opens, no candidate for either.
    raw.submit(SubmitRequest {
        table_id: manifest.table_id().0.to_vec(),
        vouchers,
        submission_id: Vec::new(),
        account_id: b"mallory".to_vec(),
    })
    .await
    .unwrap();
    processed.set(processed.get() + 1);
    assert!(
        server
            .wait_processed(processed.get(), Duration::from_secs(20))
            .await
    );
    assert!(summary(&fx, &account("mallory", 0.0)).is_none());

    // The third listed upload: the crossing reveals the three, with their
    // associated data, and nothing of the unlisted ones.
    let third = [upload(&listed[2], "alice 2")];
    send(&mut client, &alice, &third).await;
    let want = ads(&[&first[0], &first[1], &third[0]]);
    assert_eq!(recorded_for(&fx, &alice), (want.clone(), 3));
    let a = summary(&fx, &alice).unwrap();
    assert_eq!(
        (a.unrevealed, a.real, a.synthetic, a.rejected),
        (0, 3, 0, 0)
    );
    // After the crossing, a new listed upload is revealed at once.
    let fourth = [upload(&listed[3], "alice 3")];
    send(&mut client, &alice, &fourth).await;
    let mut want = want;
    want.insert(b"alice 3".to_vec());
    assert_eq!(recorded_for(&fx, &alice), (want, 4));

    // Bob's vouchers are all synthetic: every one opens and is a
    // candidate, and none is ever a match record, listed item or not.
    let bob = account("bob", 1.0);
    let bobs: Vec<Upload> = (0..8)
        .map(|i| upload(&listed[i % listed.len()], &format!("bob {i}")))
        .collect();
    send(&mut client, &bob, &bobs).await;
    let b = summary(&fx, &bob).unwrap();
    assert_eq!((b.unrevealed, b.real), (8, 0));
    assert_eq!(recorded_for(&fx, &bob).1, 0);

    // Carol mixes both at a rate of one half, with fewer synthetic vouchers
    // than s: her real listed uploads are revealed once she has t, and her
    // synthetic ones are told apart.
    let carol = account("carol", 0.5);
    let keys = carol.keys(T, S).unwrap();
    let mut carols = Vec::new();
    let (mut real, mut synthetic) = (Vec::new(), 0);
    for i in 0.. {
        let u = upload(&listed[i % listed.len()], &format!("carol {i}"));
        if keys.is_synthetic(&u.voucher_id) {
            if synthetic == usize::from(S) {
                continue;
            }
            synthetic += 1;
        } else {
            real.push(u.associated_data.clone());
        }
        carols.push(u);
        if real.len() == usize::from(T) + 1 {
            break;
        }
    }
    send(&mut client, &carol, &carols).await;
    let c = summary(&fx, &carol).unwrap();
    let real: BTreeSet<Vec<u8>> = real.into_iter().collect();
    assert_eq!(recorded_for(&fx, &carol), (real, usize::from(T) + 1));
    assert_eq!(
        (c.real, c.synthetic, c.unrevealed),
        (u64::from(T) + 1, synthetic as u64, 0)
    );

    // Nothing recorded that is not an account's real listed upload.
    assert_eq!(recorded(&fx.data).len(), 4 + usize::from(T) + 1);
    server.shutdown().await.unwrap();
}

/// The longest vouchers (s = 256) in a full batch fit the server's message
/// limit: it is sized for both versions, not version 1's vouchers alone
/// (a batch of 64 at s = 256 is twice version 1's largest message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_of_the_longest_vouchers_is_accepted() {
    let fx = Fixture::with_threshold(Some((T, 256)));
    let server = fx.start().await;
    let (mut client, manifest, table) = connected(&fx, &server).await;
    let erin = account("erin", 0.0);
    let listed = listed();
    let uploads: Vec<Upload> = (0..64)
        .map(|i| upload(&listed[0], &format!("erin {i}")))
        .collect();
    let n = client
        .check_account(&manifest, &table, &erin, &uploads)
        .await
        .unwrap();
    assert_eq!(n, 64);
    assert!(server.wait_processed(64, Duration::from_secs(30)).await);
    // Sixty-four uploads of one listed item under distinct ids: t real
    // shares, revealed.
    assert_eq!(recorded_for(&fx, &erin).1, 64);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_survive_a_restart_a_version_swap_and_a_key_rotation() {
    let fx = Fixture::with_threshold(Some((T, S)));
    let dave = account("dave", 0.0);
    let listed = listed();
    let before = [upload(&listed[0], "dave 0"), upload(&listed[1], "dave 1")];
    let v1_id;
    {
        let server = fx.start().await;
        let (mut client, manifest, table) = connected(&fx, &server).await;
        v1_id = *manifest.table_id();
        client
            .check_account(&manifest, &table, &dave, &before)
            .await
            .unwrap();
        assert!(server.wait_processed(2, Duration::from_secs(20)).await);
        server.shutdown().await.unwrap();
    }
    assert_eq!(summary(&fx, &dave).unwrap().unrevealed, 2);

    // Version 2 under a new key (a rotation), built from the same list
    // plus one entry; the threshold is kept from the base. Version 1 is
    // not loaded any more: its candidates are checked against version 2.
    let list = fx.dir.path().join("v2.txt");
    let mut text = String::new();
    for i in 0..2001 {
        text.push_str(&format!(
            "sha256 {}\n",
            hex::encode(Sha256::digest(format!("bulk {i}")))
        ));
    }
    for item in &listed {
        text.push_str(&format!("{} {}\n", item.item_type(), item.to_hex()));
    }
    std::fs::write(&list, text).unwrap();
    let key2 = fx.dir.path().join("server2.key");
    blindmatch_server::keyfile::write_new(&key2).unwrap();
    let next = fx.dir.path().join("v2.bmt");
    let report = blindmatch_server::build(
        &list,
        &key2,
        &next,
        &build_options(&fx.signing_key, Some(fx.table.clone())),
    )
    .unwrap();
    assert!(matches!(
        report.kind,
        blindmatch_server::BuildKind::Rebuilt(_)
    ));
    assert_eq!(
        report
            .bundle
            .manifest
            .manifest
            .threshold
            .map(|p| p.threshold()),
        Some(T),
        "the base's threshold is kept"
    );
    std::fs::rename(&key2, &fx.key).unwrap();
    std::fs::rename(&next, &fx.table).unwrap();

    let server = fx.start().await;
    let (mut client, manifest, table) = connected(&fx, &server).await;
    assert_ne!(*manifest.table_id(), v1_id);
    let after = [upload(&listed[2], "dave 2")];
    client
        .check_account(&manifest, &table, &dave, &after)
        .await
        .unwrap();
    assert!(server.wait_processed(1, Duration::from_secs(20)).await);
    let want = ads(&[&before[0], &before[1], &after[0]]);
    assert_eq!(recorded_for(&fx, &dave), (want, 3));
    let records = blindmatch_server::store::read_all(&fx.data).unwrap();
    let tables: BTreeSet<&str> = records.iter().map(|r| r.table_id.as_str()).collect();
    assert_eq!(
        tables.len(),
        2,
        "records name the version each voucher was made for"
    );
    server.shutdown().await.unwrap();
}

/// One batch the harness sent: whose, under which id, and what the client
/// knows of each voucher.
struct Sent {
    account: usize,
    id: blindmatch_client::SubmissionId,
    table_id: blindmatch_protocol::TableId,
    vouchers: Vec<Vec<u8>>,
    /// (associated data, listed, synthetic) per voucher.
    uploads: Vec<(Vec<u8>, bool, bool)>,
    acknowledged: bool,
}

/// The real binary SIGKILLed at random moments while clients upload for
/// several accounts each (some with synthetic vouchers), restarted on the
/// same data ROUNDS times; then each account's records are checked against
/// what its client sent: an account with t real listed vouchers
/// acknowledged has every one of them recorded; one that never sent t has
/// none; nothing is recorded twice, and nothing that is not a real listed
/// upload. `BLINDMATCH_KILL_ROUNDS`, `BLINDMATCH_KILL_CLIENTS` and
/// `BLINDMATCH_KILL_SEED` as for the version-1 harness
/// (`scripts/kill-harness.sh` runs both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_threshold_mode_records_every_crossing_once() {
    use rand::{RngExt, SeedableRng};
    use std::sync::{Arc, Mutex};
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("BLINDMATCH_KILL_ROUNDS", 4);
    let clients = usize::try_from(env("BLINDMATCH_KILL_CLIENTS", 3)).unwrap();
    let seed = env("BLINDMATCH_KILL_SEED", rand::random());
    eprintln!("threshold sigkill harness: seed {seed} (BLINDMATCH_KILL_SEED replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Three kinds of account per client: no synthetic vouchers; some; and
    // some with never more than t − 1 real listed uploads (it must stay
    // below). A client skips an upload that would be an account's (s+1)-th
    // synthetic voucher, so that SPEC 14.5's guarantee applies and every
    // outcome is exact.
    let (t, s) = (3u16, 6u16);
    let fx = Fixture::with_threshold(Some((t, s)));
    let kind = |i: usize| i % 3;
    let accounts: Arc<Vec<AccountSecret>> = Arc::new(
        (0..clients * 3)
            .map(|i| account(&format!("acct-{i}"), [0.0, 0.2, 0.3][kind(i)]))
            .collect(),
    );
    let ledger: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut kills_with_pending = 0;
    for round in 0..=rounds {
        let (mut child, url) = spawn_server(&fx);
        let mut client = Client::connect(&url, fx.operator).await.unwrap();
        let manifest = client.manifest().await.unwrap();
        let table = Arc::new(client.table(&manifest, &fx.cache("cache")).await.unwrap());
        // Retry about half of the batches in doubt, with their ids.
        let in_doubt: Vec<usize> = {
            let l = ledger.lock().unwrap();
            (0..l.len()).filter(|&i| !l[i].acknowledged).collect()
        };
        for i in in_doubt {
            if rng.random_bool(0.5) {
                let (id, table_id, vouchers, acct) = {
                    let l = ledger.lock().unwrap();
                    (l[i].id, l[i].table_id, l[i].vouchers.clone(), l[i].account)
                };
                client
                    .submit_once(&with_id(
                        account_submission(&table_id, accounts[acct].account_id(), vouchers),
                        id,
                    ))
                    .await
                    .unwrap();
                ledger.lock().unwrap()[i].acknowledged = true;
            }
        }
        if round == rounds {
            // The last start evaluates and examines what is left, then stops
            // cleanly (SIGTERM): what was never examined is examined.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while blindmatch_server::store::stats(&fx.data).unwrap().pending > 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "pending never drained"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let pid = child.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            child.wait().unwrap();
            break;
        }
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (url, table, manifest) = (url.clone(), Arc::clone(&table), manifest.clone());
                let (ledger, accounts, op) =
                    (Arc::clone(&ledger), Arc::clone(&accounts), fx.operator);
                let seed: u64 = rng.random();
                tokio::spawn(async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                    let Ok(mut client) = Client::connect(&url, op).await else {
                        return;
                    };
                    let (listed, unlisted) = (listed(), unlisted());
                    for n in 0.. {
                        let acct = 3 * c + rng.random_range(0..3usize);
                        let a = &accounts[acct];
                        let keys = a.keys(t, s).unwrap();
                        // What this account sent so far (only this task
                        // writes its accounts' entries).
                        let (mut synthetic, mut real_listed) = {
                            let l = ledger.lock().unwrap();
                            let mine = l
                                .iter()
                                .filter(|b| b.account == acct)
                                .flat_map(|b| &b.uploads);
                            mine.fold((0usize, 0usize), |(s, r), (_, listed, syn)| {
                                (s + usize::from(*syn), r + usize::from(*listed && !*syn))
                            })
                        };
                        let size = rng.random_range(1..=4usize);
                        let mut uploads = Vec::new();
                        let mut known = Vec::new();
                        for i in 0..size {
                            let is_listed = rng.random_bool(0.5);
                            let item = if is_listed {
                                &listed[rng.random_range(0..listed.len())]
                            } else {
                                &unlisted[rng.random_range(0..unlisted.len())]
                            };
                            let ad = format!("round {round} client {c} batch {n} upload {i}");
                            let u = upload(item, &ad);
                            let is_synthetic = keys.is_synthetic(&u.voucher_id);
                            if (is_synthetic && synthetic == usize::from(s))
                                || (kind(acct) == 2
                                    && is_listed
                                    && !is_synthetic
                                    && real_listed + 1 == usize::from(t))
                            {
                                continue;
                            }
                            synthetic += usize::from(is_synthetic);
                            real_listed += usize::from(is_listed && !is_synthetic);
                            known.push((ad.into_bytes(), is_listed, is_synthetic));
                            uploads.push(u);
                        }
                        if uploads.is_empty() {
                            continue;
                        }
                        let vouchers = table
                            .account_submission(a, &uploads, &mut rand::rng())
                            .unwrap()
                            .vouchers;
                        let id = blindmatch_client::SubmissionId::random(&mut rand::rng());
                        let at = {
                            let mut l = ledger.lock().unwrap();
                            l.push(Sent {
                                account: acct,
                                id,
                                table_id: *manifest.table_id(),
                                vouchers: vouchers.clone(),
                                uploads: known,
                                acknowledged: false,
                            });
                            l.len() - 1
                        };
                        match client
                            .submit_once(&with_id(
                                account_submission(manifest.table_id(), a.account_id(), vouchers),
                                id,
                            ))
                            .await
                        {
                            Ok(_) => ledger.lock().unwrap()[at].acknowledged = true,
                            // The server was killed: this batch is in doubt.
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills_with_pending +=
            usize::from(blindmatch_server::store::stats(&fx.data).unwrap().pending > 0);
        for task in tasks {
            task.await.unwrap();
        }
    }

    // Everything stored was examined.
    {
        let mut store = blindmatch_server::store::open(
            &blindmatch_server::store::Location::Sqlite(fx.data.clone()),
            blindmatch_server::store::Replica::new(Duration::from_secs(10)),
            None,
        )
        .unwrap();
        assert!(
            store.unexamined(10).unwrap().is_empty(),
            "candidates never examined"
        );
    }
    let records = blindmatch_server::store::read_all(&fx.data).unwrap();
    let mut per_account: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for r in &records {
        per_account
            .entry(
                r.account_hex
                    .clone()
                    .expect("a threshold record names its account"),
            )
            .or_default()
            .push(r.associated_data.clone());
    }
    let l = ledger.lock().unwrap();
    let (mut crossed, mut below, mut unsure) = (0, 0, 0);
    let mut sent_vouchers = 0;
    for (i, a) in accounts.iter().enumerate() {
        let mine: Vec<&Sent> = l.iter().filter(|b| b.account == i).collect();
        sent_vouchers += mine.iter().map(|b| b.vouchers.len()).sum::<usize>();
        let real_listed = |acked: bool| -> BTreeSet<Vec<u8>> {
            mine.iter()
                .filter(|b| b.acknowledged || !acked)
                .flat_map(|b| b.uploads.iter())
                .filter(|(_, listed, synthetic)| *listed && !*synthetic)
                .map(|(ad, _, _)| ad.clone())
                .collect()
        };
        let (acked, possible) = (real_listed(true), real_listed(false));
        let synthetic = mine
            .iter()
            .flat_map(|b| b.uploads.iter())
            .filter(|(_, _, s)| *s)
            .count();
        let got = per_account
            .remove(&hex::encode(a.account_id()))
            .unwrap_or_default();
        let got_set: BTreeSet<Vec<u8>> = got.iter().cloned().collect();
        assert_eq!(
            got.len(),
            got_set.len(),
            "account {i}: a match recorded twice"
        );
        assert!(
            got_set.is_subset(&possible),
            "account {i}: recorded something that is not a real listed upload it sent"
        );
        assert!(synthetic <= usize::from(s), "the harness keeps within s");
        if acked.len() >= usize::from(t) {
            assert!(
                acked.is_subset(&got_set),
                "account {i}: crossed t with acknowledged vouchers, but {} of {} are not recorded",
                acked.difference(&got_set).count(),
                acked.len()
            );
            crossed += 1;
        } else if possible.len() < usize::from(t) {
            assert!(got.is_empty(), "account {i}: revealed below t");
            below += 1;
        } else {
            unsure += 1;
        }
    }
    assert!(per_account.is_empty(), "records for an account nobody used");
    eprintln!(
        "threshold sigkill harness: {rounds} kills ({kills_with_pending} with work pending), {} accounts, {} batches ({sent_vouchers} vouchers), {} acknowledged; \
         {} matches recorded; {crossed} accounts crossed t, {below} stayed below, {unsure} depend on unacknowledged batches",
        accounts.len(),
        l.len(),
        l.iter().filter(|b| b.acknowledged).count(),
        records.len(),
    );
    assert!(
        crossed > 0 && below > 0,
        "no account on one side of t: the run means nothing"
    );
}
