//! The list's life (issue 7): versions built in place, deltas, signed and
//! pinned manifests, hot swap under load, key rotation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs,
    unreachable_pub
)]

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use blindmatch_client::core::Error as CoreError;
use blindmatch_client::{Client, ClientError, Fetched};
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::table_service_server::{TableService, TableServiceServer};
use blindmatch_proto::v1::{
    DeltaChunk, DownloadDeltaRequest, DownloadTableRequest, GetManifestRequest, Manifest,
    TableChunk,
};
use blindmatch_protocol::{Item, ItemType};
use blindmatch_server::{BuildKind, BuildOptions, Swap};
use sha2::{Digest, Sha256};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/postgres.rs"]
mod postgres;
use fixture::*;

fn bulk(i: usize) -> Item {
    Item::new(ItemType::Sha256, &Sha256::digest(format!("bulk {i}"))).unwrap()
}

/// Writes a list: bulk entries `bulk`, then `extra`.
fn write_list(path: &Path, bulk_range: std::ops::Range<usize>, extra: &[Item]) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in bulk_range {
        writeln!(f, "{}", bulk(i).to_hex()).unwrap();
    }
    for item in extra {
        writeln!(f, "{} {}", item.item_type(), item.to_hex()).unwrap();
    }
}

/// Builds the next version of the fixture's table from `list`, with
/// `key` (the fixture's unless rotating), into `out`.
fn build_next(fx: &Fixture, list: &Path, key: &Path, out: &Path) -> blindmatch_server::BuildReport {
    blindmatch_server::build(
        list,
        key,
        out,
        &build_options(&fx.signing_key, Some(fx.table.clone())),
    )
    .unwrap()
}

/// Replaces a file the way an operator publishes one: a rename over it.
fn publish(from: &Path, to: &Path) {
    std::fs::rename(from, to).unwrap();
}

fn new_items(tag: &str, n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(format!("{tag} {i}"))).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_arrives_as_a_delta_that_equals_the_full_download() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut client = client_for(&fx, &server).await;
    let v1 = client.manifest().await.unwrap();
    assert_eq!(v1.version(), 1);
    let (_, how) = client.fetch_table(&v1, &fx.cache("a")).await.unwrap();
    assert!(
        matches!(
            how,
            Fetched::Full {
                delta_refused: None,
                ..
            }
        ),
        "{how:?}"
    );
    // A second client stays at version 1 for a while.
    client.fetch_table(&v1, &fx.cache("c")).await.unwrap();
    // An app keeps its validated table in memory.
    let held = client.table(&v1, &fx.cache("e")).await.unwrap();

    // Version 2: 50 bulk entries removed, 60 added, the listed ones kept.
    let added = new_items("added in v2", 60);
    let list = fx.dir.path().join("list-v2.txt");
    let mut extra = listed();
    extra.extend(added.iter().cloned());
    write_list(&list, 50..2000, &extra);
    let next = fx.dir.path().join("v2.bmt");
    let report = build_next(&fx, &list, &fx.key, &next);
    let BuildKind::Update {
        kept,
        added: a,
        removed,
        changed,
    } = report.kind
    else {
        panic!("{:?}", report.kind)
    };
    assert_eq!((kept, a, removed), (1950 + listed().len(), 60, 50));
    assert!((110..400).contains(&changed), "{changed} slots changed");
    publish(&next, &fx.table);
    let swap = server.reload().await.unwrap();
    assert_eq!(
        swap,
        Swap::Swapped {
            from: 1,
            to: 2,
            rotated: false
        }
    );
    assert_eq!(
        server.reload().await.unwrap(),
        Swap::Unchanged { version: 2 }
    );

    let v2 = client.manifest().await.unwrap();
    assert_eq!(v2.version(), 2);
    let (by_delta, how) = client.fetch_table(&v2, &fx.cache("a")).await.unwrap();
    let Fetched::Delta {
        from: 1,
        slots,
        bytes,
    } = how
    else {
        panic!("{how:?}")
    };
    assert_eq!(slots, changed);
    let (full, how) = client.fetch_table(&v2, &fx.cache("b")).await.unwrap();
    let Fetched::Full {
        bytes: full_bytes, ..
    } = how
    else {
        panic!("{how:?}")
    };
    assert_eq!(
        by_delta.encode(),
        full.encode(),
        "delta result differs from the full download"
    );
    let (refreshed, how) = client.refresh(&held, &v2, &fx.cache("e")).await.unwrap();
    assert!(matches!(how, Fetched::Delta { from: 1, .. }), "{how:?}");
    assert_eq!(refreshed.client_table().table().encode(), full.encode());
    let (same, how) = client
        .refresh(&refreshed, &v2, &fx.cache("e"))
        .await
        .unwrap();
    assert_eq!(
        (same.client_table().table().id(), how),
        (v2.table_id(), Fetched::Cached)
    );
    assert!(
        bytes * 10 < full_bytes,
        "delta {bytes} B, full {full_bytes} B"
    );
    // The client keeps one version: v1's table is gone from its cache.
    assert!(
        !fx.dir
            .path()
            .join("a")
            .join(format!("{}.table", hex::encode(v1.table_id().0)))
            .exists()
    );

    // Matches against v2: an added item and a kept listed one; a removed
    // bulk entry no longer matches.
    let table = client.table(&v2, &fx.cache("a")).await.unwrap();
    let items = vec![
        (added[7].clone(), b"added".to_vec()),
        (listed()[0].clone(), b"kept".to_vec()),
        (bulk(3), b"removed".to_vec()),
    ];
    client.check(&v2, &table, &items).await.unwrap();
    assert!(server.wait_processed(3, Duration::from_secs(10)).await);
    let ads: Vec<Vec<u8>> = recorded(&fx.data).into_iter().map(|r| r.2).collect();
    assert_eq!(ads, vec![b"added".to_vec(), b"kept".to_vec()]);

    // Version 3, a client two versions behind still gets a delta.
    write_list(&list, 100..2000, &extra);
    let next = fx.dir.path().join("v3.bmt");
    build_next(&fx, &list, &fx.key, &next);
    publish(&next, &fx.table);
    server.reload().await.unwrap();
    let v3 = client.manifest().await.unwrap();
    assert_eq!(v3.version(), 3);
    let (by_delta, how) = client.fetch_table(&v3, &fx.cache("c")).await.unwrap();
    assert!(matches!(how, Fetched::Delta { from: 1, .. }), "{how:?}");
    let (full, _) = client.fetch_table(&v3, &fx.cache("d")).await.unwrap();
    assert_eq!(by_delta.encode(), full.encode());
    server.shutdown().await.unwrap();
}

/// What the tampering proxy changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tamper {
    Nothing,
    /// One byte of the signed statement.
    Statement,
    /// A field outside the statement that must agree with it.
    Field,
    /// One byte of the second chunk's slots.
    Chunk,
    /// One byte of a proof hash of the second chunk.
    Proof,
    /// One byte of the delta's slots.
    Delta,
    /// The delta's last slot dropped.
    DeltaShort,
}

/// A TableService in front of the real one that tampers with what it
/// relays, as a hostile network or server would.
struct Proxy {
    upstream: TableServiceClient<tonic::transport::Channel>,
    tamper: Arc<std::sync::Mutex<Tamper>>,
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl TableService for Proxy {
    async fn get_manifest(
        &self,
        r: Request<GetManifestRequest>,
    ) -> Result<Response<Manifest>, Status> {
        let mut m = self
            .upstream
            .clone()
            .get_manifest(r.into_inner())
            .await?
            .into_inner();
        match *self.tamper.lock().unwrap() {
            Tamper::Statement => m.statement[30] ^= 1,
            Tamper::Field => m.n_slots += 1,
            _ => {}
        }
        Ok(Response::new(m))
    }

    type DownloadTableStream = Streamed<TableChunk>;

    async fn download_table(
        &self,
        r: Request<DownloadTableRequest>,
    ) -> Result<Response<Self::DownloadTableStream>, Status> {
        let tamper = *self.tamper.lock().unwrap();
        let s = self
            .upstream
            .clone()
            .download_table(r.into_inner())
            .await?
            .into_inner();
        Ok(Response::new(Box::pin(s.map(move |c| {
            let mut c = c?;
            if c.offset > 0 && c.offset < 2 * blindmatch_protocol::table::CHUNK_LEN as u64 {
                match tamper {
                    Tamper::Chunk => c.slots[100] ^= 1,
                    Tamper::Proof => c.proof[0][3] ^= 1,
                    _ => {}
                }
            }
            Ok(c)
        }))))
    }

    type DownloadDeltaStream = Streamed<DeltaChunk>;

    async fn download_delta(
        &self,
        r: Request<DownloadDeltaRequest>,
    ) -> Result<Response<Self::DownloadDeltaStream>, Status> {
        let tamper = *self.tamper.lock().unwrap();
        let s = self
            .upstream
            .clone()
            .download_delta(r.into_inner())
            .await?
            .into_inner();
        Ok(Response::new(Box::pin(s.map(move |c| {
            let mut c = c?;
            match tamper {
                Tamper::Delta => c.slots[40] ^= 1,
                Tamper::DeltaShort => {
                    c.indices.truncate(c.indices.len() - 4);
                    c.slots.truncate(c.slots.len() - 32);
                }
                _ => {}
            }
            Ok(c)
        }))))
    }
}

/// Starts a proxy to `upstream_url`; returns its URL and its tamper switch.
async fn proxy(upstream_url: String) -> (String, Arc<std::sync::Mutex<Tamper>>) {
    let tamper = Arc::new(std::sync::Mutex::new(Tamper::Nothing));
    let upstream = TableServiceClient::connect(upstream_url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = TableServiceServer::new(Proxy {
        upstream,
        tamper: Arc::clone(&tamper),
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (format!("http://{addr}"), tamper)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_manifest_chunk_or_delta_is_refused() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let (url, tamper) = proxy(server.url()).await;
    let set = |t| *tamper.lock().unwrap() = t;
    let mut client = Client::connect(&url, fx.operator).await.unwrap();

    // Manifests.
    set(Tamper::Statement);
    let err = client.manifest().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(CoreError::BadSignature)),
        "{err}"
    );
    set(Tamper::Field);
    let err = client.manifest().await.unwrap_err();
    assert!(matches!(&err, ClientError::BadManifest(_)), "{err}");
    set(Tamper::Nothing);
    let other = blindmatch_protocol::OperatorSigningKey::generate(&mut rand::rng()).verifying_key();
    let err = Client::connect(&url, other)
        .await
        .unwrap()
        .manifest()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(CoreError::BadSignature)),
        "another operator's key: {err}"
    );

    // Chunks: the bad chunk is refused, the good one before it kept.
    let v1 = client.manifest().await.unwrap();
    for t in [Tamper::Chunk, Tamper::Proof] {
        set(t);
        let err = client
            .table(&v1, &fx.cache(&format!("{t:?}")))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(
                &err,
                ClientError::Refused(CoreError::Invalid {
                    what: "table chunk",
                    source: blindmatch_protocol::Error::DigestMismatch
                })
            ),
            "{t:?}: {err}"
        );
        let partial = fx
            .dir
            .path()
            .join(format!("{t:?}"))
            .join(format!("{}.partial", hex::encode(v1.table_id().0)));
        assert_eq!(
            std::fs::metadata(&partial).unwrap().len(),
            blindmatch_protocol::table::CHUNK_LEN as u64
        );
    }
    // Resumed through an honest path, it completes from the kept chunk.
    set(Tamper::Nothing);
    let (_, how) = client.fetch_table(&v1, &fx.cache("Chunk")).await.unwrap();
    assert!(matches!(how, Fetched::Full { .. }), "{how:?}");

    // Deltas: a tampered one is refused, and the client falls back to the
    // (verified) full download.
    client.fetch_table(&v1, &fx.cache("d1")).await.unwrap();
    client.fetch_table(&v1, &fx.cache("d2")).await.unwrap();
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..1990, &listed());
    let next = fx.dir.path().join("v2.bmt");
    build_next(&fx, &list, &fx.key, &next);
    publish(&next, &fx.table);
    server.reload().await.unwrap();
    let v2 = client.manifest().await.unwrap();
    for (t, cache) in [(Tamper::Delta, "d1"), (Tamper::DeltaShort, "d2")] {
        set(t);
        let (table, how) = client.fetch_table(&v2, &fx.cache(cache)).await.unwrap();
        let Fetched::Full {
            delta_refused: Some(why),
            ..
        } = how
        else {
            panic!("{t:?}: {how:?}")
        };
        assert!(why.contains("delta"), "{t:?}: {why}");
        assert_eq!(table.id(), v2.table_id());
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_or_a_second_table_under_one_version_is_refused() {
    let fx = Fixture::new();
    // A second table signed as version 1 by the same operator: what a
    // server would serve one user to single them out.
    let other = fx.dir.path().join("other.bmt");
    let list = fx.dir.path().join("other.txt");
    write_list(&list, 0..10, &[]);
    blindmatch_server::build(
        &list,
        &fx.key,
        &other,
        &build_options(&fx.signing_key, None),
    )
    .unwrap();
    let v1_file = fx.dir.path().join("v1.bmt");
    std::fs::copy(&fx.table, &v1_file).unwrap();

    fetch_served(&fx, &fx.table).await.unwrap();
    let err = fetch_served(&fx, &other).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused(CoreError::Equivocation { version: 1, .. })
        ),
        "{err}"
    );

    // Version 2, then the server goes back to version 1.
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..1999, &listed());
    let v2_file = fx.dir.path().join("v2.bmt");
    build_next(&fx, &list, &fx.key, &v2_file);
    fetch_served(&fx, &v2_file).await.unwrap();
    let err = fetch_served(&fx, &v1_file).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Refused(CoreError::Rollback {
                offered: 1,
                seen: 2
            })
        ),
        "{err}"
    );
    // A swap to an older version is refused by the server too.
    std::fs::copy(&v2_file, &fx.table).unwrap();
    let server2 = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            store: blindmatch_server::store::Location::Sqlite(fx.dir.path().join("data2")),
            ..c
        })
        .await
        .unwrap();
    std::fs::copy(&v1_file, &fx.table).unwrap();
    let e = server2.reload().await.unwrap_err();
    assert!(format!("{e:#}").contains("not newer"), "{e:#}");
    server2.shutdown().await.unwrap();
}

/// Serves `table` and has the client with cache "c" fetch it.
async fn fetch_served(fx: &Fixture, table: &Path) -> Result<(), ClientError> {
    let server = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            table: table.to_path_buf(),
            ..c
        })
        .await
        .unwrap();
    let mut client = client_for(fx, &server).await;
    let manifest = client.manifest().await.unwrap();
    let fetched = client.table(&manifest, &fx.cache("c")).await.map(|_| ());
    server.shutdown().await.unwrap();
    fetched
}

/// The acknowledged listed vouchers of one load client, by associated data.
#[derive(Default)]
struct Tally {
    acked_listed: Vec<Vec<u8>>,
    batches: usize,
    errors: Vec<String>,
}

/// The table a load client submits against, and the listed items it uses.
type Target = (
    blindmatch_client::Manifest,
    Arc<blindmatch_client::Table>,
    Vec<Item>,
);

/// Submits batches of 8 (4 listed, 4 not, each with unique associated data)
/// against whatever table `current` holds, until `stop`.
async fn load_client(
    url: String,
    operator: blindmatch_protocol::OperatorVerifyingKey,
    current: Arc<std::sync::RwLock<Target>>,
    stop: Arc<AtomicBool>,
    name: String,
) -> Tally {
    let mut client = Client::connect(&url, operator).await.unwrap();
    client.set_retries(1, Duration::ZERO);
    let mut tally = Tally::default();
    let unlisted = new_items(&format!("unlisted {name}"), 4000);
    while !stop.load(Ordering::Acquire) {
        let (m, table, listed) = current.read().unwrap().clone();
        let b = tally.batches;
        let mut items = Vec::new();
        let mut listed_ads = Vec::new();
        for i in 0..4 {
            let ad = format!("{name} b{b} v{} listed {i}", m.version()).into_bytes();
            items.push((listed[(b * 4 + i) % listed.len()].clone(), ad.clone()));
            listed_ads.push(ad);
            items.push((
                unlisted[(b * 4 + i) % unlisted.len()].clone(),
                format!("{name} b{b} unlisted {i}").into_bytes(),
            ));
        }
        match client.check(&m, &table, &items).await {
            Ok(8) => tally.acked_listed.extend(listed_ads),
            Ok(n) => tally.errors.push(format!("acknowledged {n} of 8")),
            Err(e) => tally.errors.push(e.to_string()),
        }
        tally.batches += 1;
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_continuous_load_refuses_and_loses_nothing() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut client = client_for(&fx, &server).await;
    let v1 = client.manifest().await.unwrap();
    let t1 = Arc::new(client.table(&v1, &fx.cache("v1")).await.unwrap());
    let old = Arc::new(std::sync::RwLock::new((
        v1.clone(),
        Arc::clone(&t1),
        listed(),
    )));
    let switching = Arc::new(std::sync::RwLock::new((v1.clone(), t1, listed())));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (c, current) in [(0, &old), (1, &old), (2, &switching)] {
        tasks.push(tokio::spawn(load_client(
            server.url(),
            fx.operator,
            Arc::clone(current),
            Arc::clone(&stop),
            format!("c{c}"),
        )));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Version 2 adds items; one client moves to it (by delta), two stay.
    let added = new_items("listed in v2", 40);
    let mut extra = listed();
    extra.extend(added.iter().cloned());
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..2000, &extra);
    let next = fx.dir.path().join("v2.bmt");
    let report = tokio::task::spawn_blocking({
        let (list, key, next, sk, base) = (
            list.clone(),
            fx.key.clone(),
            next.clone(),
            fx.signing_key.clone(),
            fx.table.clone(),
        );
        move || {
            blindmatch_server::build(&list, &key, &next, &build_options(&sk, Some(base))).unwrap()
        }
    })
    .await
    .unwrap();
    assert!(matches!(
        report.kind,
        BuildKind::Update {
            added: 40,
            removed: 0,
            ..
        }
    ));
    publish(&next, &fx.table);
    let processed_before = server.processed();
    assert!(matches!(
        server.reload().await.unwrap(),
        Swap::Swapped { from: 1, to: 2, .. }
    ));
    let v2 = client.manifest().await.unwrap();
    // The client holding version 1 refreshes it: only the changed slots
    // are fetched and validated.
    let held = switching.read().unwrap().1.clone();
    let (t2, how) = client.refresh(&held, &v2, &fx.cache("v1")).await.unwrap();
    assert!(matches!(how, Fetched::Delta { from: 1, .. }), "{how:?}");
    let t2 = Arc::new(t2);
    *switching.write().unwrap() = (v2, t2, added);
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Release);

    let mut acked = Vec::new();
    let mut batches = Vec::new();
    for t in tasks {
        let tally = t.await.unwrap();
        assert!(
            tally.errors.is_empty(),
            "{} batches refused during the swap, the first: {:?}",
            tally.errors.len(),
            tally.errors.first()
        );
        batches.push(tally.batches);
        acked.extend(tally.acked_listed);
    }
    let total: usize = batches.iter().sum();
    assert!(
        server
            .wait_processed(total as u64 * 8, Duration::from_secs(60))
            .await
    );
    assert!(
        server.processed() > processed_before,
        "nothing was submitted after the swap"
    );
    let recorded: Vec<Vec<u8>> = recorded(&fx.data).into_iter().map(|r| r.2).collect();
    let unique: HashSet<&Vec<u8>> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "a match was recorded twice");
    let acked_set: HashSet<&Vec<u8>> = acked.iter().collect();
    assert_eq!(
        unique, acked_set,
        "recorded matches differ from the acknowledged listed vouchers"
    );
    let after_swap = acked
        .iter()
        .filter(|a| String::from_utf8_lossy(a).contains(" v2 "))
        .count();
    let before_swap_table = acked
        .iter()
        .filter(|a| String::from_utf8_lossy(a).contains(" v1 "))
        .count();
    assert!(
        after_swap > 0 && before_swap_table > 0,
        "v1 {before_swap_table}, v2 {after_swap}"
    );
    eprintln!(
        "swap under load: {batches:?} batches, {} listed acknowledged and recorded ({before_swap_table} for v1, {after_swap} for v2)",
        acked.len()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_old_and_new_vouchers_match_during_grace_and_only_new_after() {
    let fx = Fixture::new();
    let grace = Duration::from_secs(3);
    let server = fx
        .start_with(|c| blindmatch_server::ServeConfig { grace, ..c })
        .await
        .unwrap();
    let mut client = client_for(&fx, &server).await;
    let v1 = client.manifest().await.unwrap();
    let t1 = client.table(&v1, &fx.cache("c")).await.unwrap();

    // A new blinding key: a new table (new id and header), version 2.
    let key2 = fx.dir.path().join("server2.key");
    blindmatch_server::keyfile::write_new(&key2).unwrap();
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..2000, &listed());
    let next = fx.dir.path().join("v2.bmt");
    let report = build_next(&fx, &list, &key2, &next);
    let BuildKind::Rebuilt(why) = &report.kind else {
        panic!("{:?}", report.kind)
    };
    assert!(why.contains("key"), "{why}");
    publish(&key2, &fx.key);
    publish(&next, &fx.table);
    let swap = server.reload().await.unwrap();
    assert_eq!(
        swap,
        Swap::Swapped {
            from: 1,
            to: 2,
            rotated: true
        }
    );
    let v2 = client.manifest().await.unwrap();
    assert_ne!(v2.header().public_key, v1.header().public_key);
    let (_, how) = client.fetch_table(&v2, &fx.cache("c")).await.unwrap();
    assert!(
        matches!(
            how,
            Fetched::Full {
                delta_refused: None,
                ..
            }
        ),
        "a new key means a full download: {how:?}"
    );
    let t2 = client.table(&v2, &fx.cache("c")).await.unwrap();

    let item = listed()[2].clone();
    let send = |m: &blindmatch_client::Manifest, t: &blindmatch_client::Table, ad: &str| {
        let vouchers = vouchers_for(t, &[(item.clone(), ad.as_bytes().to_vec())]);
        (*m.table_id(), vouchers)
    };
    let (id1, during_old) = send(&v1, &t1, "old key, during grace");
    let (id2, during_new) = send(&v2, &t2, "new key, during grace");
    assert_eq!(
        client.submit(&submission(&id1, during_old)).await.unwrap(),
        1
    );
    assert_eq!(
        client.submit(&submission(&id2, during_new)).await.unwrap(),
        1
    );
    assert!(server.wait_processed(2, Duration::from_secs(10)).await);

    // After the grace period the old version, and its key, are gone.
    let old_id = hex::encode(v1.table_id().0);
    let deadline = std::time::Instant::now() + grace + Duration::from_secs(5);
    while server.metrics().render().contains(&old_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the old version was not retired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, after_old) = send(&v1, &t1, "old key, after grace");
    let err = client
        .submit(&submission(&id1, after_old))
        .await
        .unwrap_err();
    let ClientError::Status { status, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{err}");
    let (_, after_new) = send(&v2, &t2, "new key, after grace");
    assert_eq!(
        client.submit(&submission(&id2, after_new)).await.unwrap(),
        1
    );
    assert!(server.wait_processed(3, Duration::from_secs(10)).await);

    let mut ads: Vec<String> = recorded(&fx.data)
        .into_iter()
        .map(|r| String::from_utf8(r.2).unwrap())
        .collect();
    ads.sort();
    assert_eq!(
        ads,
        [
            "new key, after grace",
            "new key, during grace",
            "old key, during grace"
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_real_binary_and_manifest_json_matches_what_clients_see() {
    let fx = Fixture::new();
    let (mut child, url) = spawn_server(&fx);
    let mut client = Client::connect(&url, fx.operator).await.unwrap();
    let v1 = client.manifest().await.unwrap();

    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 5..2000, &listed());
    let next = fx.dir.path().join("v2.bmt");
    build_next(&fx, &list, &fx.key, &next);
    publish(&next, &fx.table);
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v2 = loop {
        let m = client.manifest().await.unwrap();
        if m.version() == 2 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not swap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(v2.table_id(), v1.table_id());

    // What the operator publishes equals what the client verified.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
        .args(["manifest", "--json", "--table"])
        .arg(&fx.table)
        .output()
        .unwrap();
    assert!(out.status.success());
    let published: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        published,
        blindmatch_client::core::manifest_json(v2.signed())
    );
    assert_eq!(published["version"], 2);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Stores a submission for `table_id` as acknowledged and not yet evaluated,
/// as a server killed right after acknowledging it leaves it.
fn leave_pending(data: &Path, table_id: &blindmatch_protocol::TableId, vouchers: Vec<Vec<u8>>) {
    use blindmatch_server::store::Store as _;
    let mut store = blindmatch_server::store::SqliteStore::open(
        data,
        None,
        blindmatch_server::store::Replica::new(blindmatch_server::store::DEFAULT_LEASE),
    )
    .unwrap();
    let receipt = blindmatch_server::store::Receipt {
        submission_id: "0123456789abcdef0123456789abcdef".into(),
        received_at_ms: blindmatch_server::store::now_ms(),
        table_id: hex::encode(table_id.0),
    };
    let out = store
        .ingest(&[blindmatch_server::store::NewSubmission {
            receipt: &receipt,
            account: None,
            vouchers: &vouchers,
            digest: None,
        }])
        .unwrap();
    assert_eq!(out.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_grace_period_evaluates_the_previous_versions_pending_work() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let mut client = client_for(&fx, &server).await;
    let v1 = client.manifest().await.unwrap();
    let t1 = client.table(&v1, &fx.cache("c")).await.unwrap();
    server.shutdown().await.unwrap();
    let v1_table = fx.dir.path().join("v1.bmt");
    let v1_key = fx.dir.path().join("v1.key");
    std::fs::copy(&fx.table, &v1_table).unwrap();
    std::fs::copy(&fx.key, &v1_key).unwrap();

    // Rotated to version 2 (new key) while a v1 submission was pending.
    let vouchers = vouchers_for(&t1, &[(listed()[0].clone(), b"pending for v1".to_vec())]);
    leave_pending(&fx.data, v1.table_id(), vouchers);
    let key2 = fx.dir.path().join("server2.key");
    blindmatch_server::keyfile::write_new(&key2).unwrap();
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..2000, &listed());
    let next = fx.dir.path().join("v2.bmt");
    build_next(&fx, &list, &key2, &next);
    publish(&key2, &fx.key);
    publish(&next, &fx.table);

    // Without the previous version the submission stays pending, unevaluated.
    let server = fx.start().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.processed(), 0);
    server.shutdown().await.unwrap();
    assert_eq!(
        blindmatch_server::store::stats(&fx.data).unwrap().pending,
        1
    );
    assert!(recorded(&fx.data).is_empty());

    // With it, the submission is evaluated under the old key.
    let server = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            previous: Some((v1_table.clone(), v1_key.clone())),
            ..c
        })
        .await
        .unwrap();
    assert!(server.wait_processed(1, Duration::from_secs(10)).await);
    let mut client = client_for(&fx, &server).await;
    assert_eq!(client.manifest().await.unwrap().version(), 2);
    server.shutdown().await.unwrap();
    assert_eq!(
        blindmatch_server::store::stats(&fx.data).unwrap().pending,
        0
    );
    let ads: Vec<Vec<u8>> = recorded(&fx.data).into_iter().map(|r| r.2).collect();
    assert_eq!(ads, vec![b"pending for v1".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_given_the_operator_key_refuses_a_table_the_operator_did_not_sign() {
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            operator_key: Some(fx.operator),
            ..c
        })
        .await
        .unwrap();
    // Version 2 signed with another key: clients would refuse it, so the
    // server refuses to swap to it and keeps serving version 1.
    let other = fx.dir.path().join("other.sign");
    blindmatch_server::keyfile::write_new_signing(&other).unwrap();
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..1999, &listed());
    let next = fx.dir.path().join("v2.bmt");
    blindmatch_server::build(
        &list,
        &fx.key,
        &next,
        &build_options(&other, Some(fx.table.clone())),
    )
    .unwrap();
    publish(&next, &fx.table);
    let err = server.reload().await.unwrap_err();
    assert!(
        format!("{err:#}").contains("not signed by the operator key"),
        "{err:#}"
    );
    let mut client = client_for(&fx, &server).await;
    let m = client.manifest().await.unwrap();
    assert_eq!(m.version(), 1);
    server.shutdown().await.unwrap();
}

/// Two replicas on one PostgreSQL store: one reloads a new version and
/// records it; the other, whose files are still the old version, reports
/// not ready (so a load balancer sends clients to the one that serves the
/// new version, instead of showing them a rollback) until its files hold it,
/// then follows on its own, without a reload. Both accept the old version's
/// vouchers during the grace period, and match records from both land in
/// the one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_the_stores_version_is_not_ready_until_it_follows() {
    let Some(url) = postgres::fresh_database("follow") else {
        return;
    };
    let fx = Fixture::new();
    let store = blindmatch_server::store::Location::parse(&url, None).unwrap();
    // Replica B reads copies of the files: an operator who has not copied
    // the new version to its host yet.
    let (b_table, b_key) = (fx.dir.path().join("b.bmt"), fx.dir.path().join("b.key"));
    std::fs::copy(&fx.table, &b_table).unwrap();
    std::fs::copy(&fx.key, &b_key).unwrap();
    let a = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            store: store.clone(),
            ..c
        })
        .await
        .unwrap();
    let b = fx
        .start_with(|c| blindmatch_server::ServeConfig {
            store: store.clone(),
            table: b_table.clone(),
            key: b_key.clone(),
            ..c
        })
        .await
        .unwrap();
    let (mut client_b, v1, t1) = connected(&fx, &b).await;
    assert!(a.metrics().is_ready() && b.metrics().is_ready());

    // Version 2 under a new key, published on A's host and reloaded there.
    let key2 = fx.dir.path().join("server2.key");
    blindmatch_server::keyfile::write_new(&key2).unwrap();
    let list = fx.dir.path().join("v2.txt");
    write_list(&list, 0..2000, &listed());
    let next = fx.dir.path().join("v2.bmt");
    build_next(&fx, &list, &key2, &next);
    std::fs::copy(&key2, &fx.key).unwrap();
    std::fs::copy(&next, &fx.table).unwrap();
    assert!(matches!(
        a.reload().await.unwrap(),
        Swap::Swapped { to: 2, .. }
    ));

    // B notices within a few seconds and, unable to load it, goes unready.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while b.metrics().is_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "B stayed ready behind the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still serving version 1 meanwhile, and A still accepts version 1.
    assert_eq!(client_b.manifest().await.unwrap().version(), 1);
    let ad = |tag: &str| with_ad(&listed()[..1], tag);
    let mut client_a = Client::connect(&a.url(), fx.operator).await.unwrap();
    client_a
        .submit(&submission(
            v1.table_id(),
            vouchers_for(&t1, &ad("v1 at A")),
        ))
        .await
        .unwrap();

    // The files arrive on B's host: B follows without being told.
    std::fs::copy(&key2, &b_key).unwrap();
    std::fs::copy(&next, &b_table).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !b.metrics().is_ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "B never followed the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v2 = client_b.manifest().await.unwrap();
    assert_eq!(v2.version(), 2);
    // B accepts version 1 in its grace period too (it was replaced on B
    // just now, but its grace is counted from when A published version 2).
    client_b
        .submit(&submission(
            v1.table_id(),
            vouchers_for(&t1, &ad("v1 at B")),
        ))
        .await
        .unwrap();
    let t2 = client_b.table(&v2, &fx.cache("v2")).await.unwrap();
    client_b
        .submit(&submission(
            v2.table_id(),
            vouchers_for(&t2, &ad("v2 at B")),
        ))
        .await
        .unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let records =
        tokio::task::spawn_blocking(move || blindmatch_server::store::read_matches(&store))
            .await
            .unwrap()
            .unwrap();
    let mut ads: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.associated_data).into_owned())
        .collect();
    ads.sort();
    assert_eq!(ads.len(), 3, "{ads:?}");
    assert!(
        ads[0].starts_with("v1 at A")
            && ads[1].starts_with("v1 at B")
            && ads[2].starts_with("v2 at B"),
        "{ads:?}"
    );
}

/// Every version has a table id of its own (SPEC 13.1): built from a list
/// that did not change, or changing only the mode (threshold mode on), the
/// next version gets one decoy, so the server swaps to it and its
/// statement's parameters are bound to a table nobody signed otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_of_an_unchanged_list_or_only_a_new_mode_has_a_table_id_of_its_own() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let list = fx.dir.path().join("list.txt");
    let base_id = *blindmatch_server::bundle::read(&fx.table, false)
        .unwrap()
        .table
        .id();
    let next = fx.dir.path().join("same.bmt");
    let report = build_next(&fx, &list, &fx.key, &next);
    let BuildKind::Update {
        added,
        removed,
        changed,
        ..
    } = report.kind
    else {
        panic!("{:?}", report.kind)
    };
    assert_eq!((added, removed, changed), (0, 0, 1), "one decoy");
    let same_list_id = *report.bundle.table.id();
    assert_ne!(same_list_id, base_id);
    publish(&next, &fx.table);
    assert!(matches!(
        server.reload().await.unwrap(),
        Swap::Swapped { from: 1, to: 2, .. }
    ));
    // Only the mode changes: threshold mode on, the same list.
    let next = fx.dir.path().join("mode.bmt");
    let report = blindmatch_server::build(
        &list,
        &fx.key,
        &next,
        &BuildOptions {
            threshold: Some((3, 2)),
            ..build_options(&fx.signing_key, Some(fx.table.clone()))
        },
    )
    .unwrap();
    assert!(report.bundle.manifest.manifest.threshold.is_some());
    assert_ne!(*report.bundle.table.id(), same_list_id);
    publish(&next, &fx.table);
    assert!(matches!(
        server.reload().await.unwrap(),
        Swap::Swapped { from: 2, to: 3, .. }
    ));
    server.shutdown().await.unwrap();
}

/// Co-signatures (SPEC 15.5, 15.6): attached to the table file with
/// `cosign` (each checked, a bad one named), served in `GetManifest`, and
/// counted by a client's quorum: distinct pinned organisations only, and a
/// client below its quorum refuses the table, saying who co-signed.
#[tokio::test]
async fn a_client_requires_its_quorum_of_organisations_co_signatures() {
    use blindmatch_protocol::audit::{CoSignature, OrgName, Quorum};
    use blindmatch_protocol::manifest::OperatorSigningKey;
    let fx = Fixture::new();
    let statement = blindmatch_server::bundle::read(&fx.table, false)
        .unwrap()
        .manifest
        .manifest
        .encode();
    let orgs: Vec<OperatorSigningKey> = (0..3)
        .map(|_| OperatorSigningKey::generate(&mut rand::rng()))
        .collect();
    let file = |i: usize, name: &str, over: &[u8]| {
        let path = fx.dir.path().join(format!("{name}.cosig"));
        let c = CoSignature::sign(&orgs[i], OrgName::new(name).unwrap(), over);
        std::fs::write(&path, c.encode()).unwrap();
        path
    };
    // One over another statement is refused, naming the organisation.
    let wrong = file(2, "Hotline C", b"another statement");
    let e = blindmatch_server::audit::attach(&fx.table, &[wrong]).unwrap_err();
    assert!(format!("{e:#}").contains("Hotline C"), "{e:#}");
    let attached = blindmatch_server::audit::attach(
        &fx.table,
        &[
            file(0, "Hotline A", &statement),
            file(1, "Hotline B", &statement),
        ],
    )
    .unwrap();
    assert_eq!(attached.now.len(), 2);

    let server = fx.start().await;
    let keys: Vec<_> = orgs.iter().map(OperatorSigningKey::verifying_key).collect();
    let mut client = Client::connect(&server.url(), fx.operator).await.unwrap();
    // Pinning nobody: co-signatures are ignored.
    assert!(client.manifest().await.unwrap().cosigners().is_empty());
    client.set_quorum(Some(Quorum::new(&keys[..2], 2).unwrap()));
    let m = client.manifest().await.unwrap();
    let names: Vec<&str> = m.cosigners().iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["Hotline A", "Hotline B"]);
    // C never co-signed: 2 of A, B, C is met, 3 is not.
    client.set_quorum(Some(Quorum::new(&keys, 2).unwrap()));
    client.manifest().await.unwrap();
    client.set_quorum(Some(Quorum::new(&keys, 3).unwrap()));
    let e = client.manifest().await.unwrap_err();
    match &e {
        ClientError::Refused(CoreError::BelowQuorum {
            found,
            required,
            cosigners,
            ..
        }) => {
            assert_eq!((*found, *required), (2, 3));
            assert_eq!(cosigners, "Hotline A, Hotline B");
        }
        other => panic!("not refused for the quorum: {other}"),
    }
    assert!(e.to_string().contains("3 required"), "{e}");
    // A client pinning only C refuses, whatever A and B signed.
    client.set_quorum(Some(Quorum::new(&keys[2..], 1).unwrap()));
    assert!(matches!(
        client.manifest().await,
        Err(ClientError::Refused(CoreError::BelowQuorum {
            found: 0,
            ..
        }))
    ));
}

/// Co-signatures attached to the table file being served are served after
/// a reload (SIGHUP or `POST /reload`), with the same table.
#[tokio::test]
async fn co_signatures_attached_while_serving_are_served_after_a_reload() {
    use blindmatch_protocol::audit::{CoSignature, OrgName, Quorum};
    use blindmatch_protocol::manifest::OperatorSigningKey;
    let fx = Fixture::new();
    let server = fx.start().await;
    let org = OperatorSigningKey::generate(&mut rand::rng());
    let mut client = Client::connect(&server.url(), fx.operator).await.unwrap();
    client.set_quorum(Some(Quorum::new(&[org.verifying_key()], 1).unwrap()));
    assert!(matches!(
        client.manifest().await,
        Err(ClientError::Refused(CoreError::BelowQuorum {
            found: 0,
            ..
        }))
    ));
    let statement = blindmatch_server::bundle::read(&fx.table, false)
        .unwrap()
        .manifest
        .manifest
        .encode();
    let path = fx.dir.path().join("late.cosig");
    let c = CoSignature::sign(&org, OrgName::new("Late Hotline").unwrap(), &statement);
    std::fs::write(&path, c.encode()).unwrap();
    blindmatch_server::audit::attach(&fx.table, &[path]).unwrap();
    let swap = server.reload().await.unwrap();
    assert!(
        matches!(
            swap,
            Swap::CoSigned {
                version: 1,
                cosignatures: 1
            }
        ),
        "{swap}"
    );
    let m = client.manifest().await.unwrap();
    assert_eq!(m.cosigners()[0].1.as_str(), "Late Hotline");
    // Reloading again changes nothing.
    assert!(matches!(
        server.reload().await.unwrap(),
        Swap::Unchanged { version: 1 }
    ));
}
