//! The replica fault harness: three real `blindmatch-server` processes on
//! one PostgreSQL store, clients spreading random batches over them as a
//! load balancer would (and retrying a refused or unanswered batch on
//! another replica, under the same id), random replicas SIGKILLed at random
//! moments and restarted, PostgreSQL itself restarted mid-run (fast and
//! immediate shutdowns, alternately), and halfway a key rotation rolled out
//! by reloading one replica (the others follow the store). At the end: no
//! acknowledged match lost, none recorded twice, no batch stored in part,
//! nothing pending.
//!
//! Short here; the long run is `scripts/replica-harness.sh` (README). It
//! needs the test cluster (`support/postgres.rs`); the PostgreSQL restarts
//! need it to be the one `scripts/pg-test-cluster.sh` started.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/postgres.rs"]
mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use blindmatch_client::Table;
use blindmatch_client::{Client, SubmissionId};
use blindmatch_protocol::{Item, OperatorVerifyingKey, TableId};
use fixture::*;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

/// One batch a client sent.
struct Sent {
    id: SubmissionId,
    table_id: TableId,
    vouchers: Vec<Vec<u8>>,
    /// Associated data of its listed vouchers (each unique in the run).
    listed: Vec<Vec<u8>>,
    acknowledged: bool,
}

#[derive(Default)]
struct Ledger {
    batches: Vec<Sent>,
    /// Sends of a batch after its first (another replica, same id).
    retries: usize,
    /// Sends refused or unanswered (a replica or the database down).
    failed_sends: usize,
}

/// The replicas' addresses as a load balancer sees them: `None` while one
/// is down.
type Pool = Arc<RwLock<Vec<Option<String>>>>;

/// The table versions clients make vouchers for.
type Tables = Arc<RwLock<Vec<(Arc<Table>, TableId)>>>;

struct Replicas {
    children: Vec<Option<Child>>,
    pool: Pool,
    table: PathBuf,
    key: PathBuf,
    store: String,
    previous: Option<(PathBuf, PathBuf)>,
}

impl Replicas {
    /// Starts replica `i`, retrying while the database is down.
    fn start(&mut self, i: usize) {
        use std::io::BufRead;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_blindmatch-server"));
            cmd.args([
                "serve",
                "--plaintext",
                "--listen",
                "127.0.0.1:0",
                "--max-batch",
                "64",
                "--lease",
                "2s",
            ])
            .arg("--table")
            .arg(&self.table)
            .arg("--key")
            .arg(&self.key)
            .arg("--store")
            .arg(&self.store)
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::piped());
            if let Some((t, k)) = &self.previous {
                cmd.arg("--previous-table")
                    .arg(t)
                    .arg("--previous-key")
                    .arg(k);
            }
            let mut child = cmd.spawn().unwrap();
            let mut line = String::new();
            let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if let Some(url) = line.trim().strip_prefix("blindmatch-server listening on ") {
                self.pool.write().unwrap()[i] = Some(url.to_owned());
                self.children[i] = Some(child);
                return;
            }
            // It could not start (the database is restarting): again.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "replica {i} never started");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL.
    fn kill(&mut self, i: usize) {
        self.pool.write().unwrap()[i] = None;
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn hangup(&self, i: usize) {
        let pid = self.children[i].as_ref().unwrap().id();
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Restarts (or stops and later starts) the test cluster through its script.
struct Cluster {
    script: PathBuf,
    port: String,
}

impl Cluster {
    /// The cluster `scripts/pg-test-cluster.sh` runs at `url`'s port, if that
    /// is where `url` points.
    fn of(url: &str) -> Option<Self> {
        let port = url.rsplit_once(':')?.1.split('/').next()?.to_owned();
        let tmp = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
        Path::new(&tmp)
            .join(format!("blindmatch-pg-{port}/data"))
            .is_dir()
            .then(|| Cluster {
                script: Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-cluster.sh"),
                port,
            })
    }

    fn run(&self, args: &[&str]) {
        let ok = Command::new(&self.script)
            .args(args)
            .env("BLINDMATCH_PG_PORT", &self.port)
            .status()
            .unwrap();
        assert!(ok.success(), "pg-test-cluster.sh {args:?} failed");
    }
}

fn pick(pool: &Pool, rng: &mut impl rand::Rng) -> Option<String> {
    let live: Vec<String> = pool.read().unwrap().iter().flatten().cloned().collect();
    if live.is_empty() {
        return None;
    }
    Some(live[rng.random_range(0..live.len())].clone())
}

/// Sends one batch to a live replica; true if acknowledged.
async fn send(
    pool: &Pool,
    operator: OperatorVerifyingKey,
    rng: &mut impl rand::Rng,
    b: &Sent,
) -> bool {
    let Some(url) = pick(pool, rng) else {
        return false;
    };
    let attempt = async {
        let mut client = Client::connect(&url, operator).await.ok()?;
        client
            .submit_once(&with_id(submission(&b.table_id, b.vouchers.clone()), b.id))
            .await
            .ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(20), attempt).await,
        Ok(Some(_))
    )
}

/// One client: random batches (1 to 64 vouchers, about a fifth listed),
/// each sent to a random live replica and, if refused or unanswered, sent
/// again (same id) to another up to three more times, then left in doubt.
async fn client(
    pool: Pool,
    operator: OperatorVerifyingKey,
    tables: Tables,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    name: String,
    seed: u64,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (listed, unlisted) = (listed(), unlisted());
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let (table, table_id) = {
            let t = tables.read().unwrap();
            // After the rotation, clients use either version.
            t[rng.random_range(0..t.len())].clone()
        };
        let size = rng.random_range(1..=64usize);
        let items: Vec<(Item, Vec<u8>)> = (0..size)
            .map(|i| {
                let item = if rng.random_bool(0.2) {
                    &listed[rng.random_range(0..listed.len())]
                } else {
                    &unlisted[rng.random_range(0..unlisted.len())]
                };
                (
                    item.clone(),
                    format!("{name} batch {n} voucher {i}").into_bytes(),
                )
            })
            .collect();
        n += 1;
        let listed_ads = items
            .iter()
            .filter(|(it, _)| listed.contains(it))
            .map(|(_, ad)| ad.clone())
            .collect();
        let sent = Sent {
            id: SubmissionId::random(&mut rand::rng()),
            table_id,
            vouchers: vouchers_for(&table, &items),
            listed: listed_ads,
            acknowledged: false,
        };
        let mut acknowledged = false;
        for attempt in 0..4 {
            if attempt > 0 {
                ledger.lock().unwrap().retries += 1;
            }
            if send(&pool, operator, &mut rng, &sent).await {
                acknowledged = true;
                break;
            }
            ledger.lock().unwrap().failed_sends += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        }
        let mut l = ledger.lock().unwrap();
        l.batches.push(Sent {
            acknowledged,
            ..sent
        });
    }
}

/// Builds version 2 of the fixture's table under a new key and puts it in
/// place of the files the replicas read; returns where version 1 went.
fn rotate(fx: &Fixture) -> (PathBuf, PathBuf) {
    let (v1_table, v1_key) = (fx.dir.path().join("v1.bmt"), fx.dir.path().join("v1.key"));
    std::fs::copy(&fx.table, &v1_table).unwrap();
    std::fs::copy(&fx.key, &v1_key).unwrap();
    let key2 = fx.dir.path().join("server2.key");
    blindmatch_server::keyfile::write_new(&key2).unwrap();
    let list = fx.dir.path().join("v2.txt");
    let mut text = String::new();
    for i in 0..2100 {
        text.push_str(&format!(
            "sha256 {}\n",
            hex::encode(Sha256::digest(format!("bulk {i}")))
        ));
    }
    for item in listed() {
        text.push_str(&format!("{} {}\n", item.item_type(), item.to_hex()));
    }
    std::fs::write(&list, text).unwrap();
    let next = fx.dir.path().join("v2.bmt");
    blindmatch_server::build(
        &list,
        &key2,
        &next,
        &build_options(&fx.signing_key, Some(fx.table.clone())),
    )
    .unwrap();
    // The key first: a replica that reads the new table with the old key
    // refuses it (they do not belong together) and tries again later.
    std::fs::rename(&key2, &fx.key).unwrap();
    std::fs::rename(&next, &fx.table).unwrap();
    (v1_table, v1_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_and_a_restarted_database_lose_no_match_and_record_none_twice() {
    let Some(store) = postgres::fresh_database("replicas") else {
        return;
    };
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("BLINDMATCH_REPLICA_ROUNDS", 6);
    let clients = env("BLINDMATCH_REPLICA_CLIENTS", 4);
    let seed = env("BLINDMATCH_REPLICA_SEED", rand::random());
    eprintln!("replica harness: seed {seed} (BLINDMATCH_REPLICA_SEED replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cluster = Cluster::of(&store);
    if cluster.is_none() {
        eprintln!(
            "replica harness: WARNING: {} is not a cluster of scripts/pg-test-cluster.sh: PostgreSQL is not restarted in this run",
            postgres::VAR
        );
    }

    let fx = Fixture::new();
    let pool: Pool = Arc::new(RwLock::new(vec![None; 3]));
    let mut replicas = Replicas {
        children: (0..3).map(|_| None).collect(),
        pool: Arc::clone(&pool),
        table: fx.table.clone(),
        key: fx.key.clone(),
        store: store.clone(),
        previous: None,
    };
    for i in 0..3 {
        replicas.start(i);
    }
    let first = pick(&pool, &mut rng).unwrap();
    let mut c = Client::connect(&first, fx.operator).await.unwrap();
    let manifest = c.manifest().await.unwrap();
    let t1 = c.table(&manifest, &fx.cache("v1")).await.unwrap();
    let tables: Tables = Arc::new(RwLock::new(vec![(Arc::new(t1), *manifest.table_id())]));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            tokio::spawn(client(
                Arc::clone(&pool),
                fx.operator,
                Arc::clone(&tables),
                Arc::clone(&ledger),
                Arc::clone(&stop),
                format!("client {i}"),
                rng.random(),
            ))
        })
        .collect();

    let (mut kills, mut pg_restarts, mut pg_modes) = (0, 0, Vec::new());
    let swap_round = rounds / 2;
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..700))).await;
        if round == swap_round {
            // The rollout: new files, one replica reloaded; the others see
            // the store's newer version and reload too. Replicas started
            // from now on also hold version 1 for its grace period.
            let (t, k) = tokio::task::block_in_place(|| rotate(&fx));
            replicas.previous = Some((t, k));
            let i = (0..3).find(|&i| replicas.children[i].is_some()).unwrap();
            replicas.hangup(i);
            let url = pool.read().unwrap()[i].clone().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let v2 = loop {
                let mut c = Client::connect(&url, fx.operator).await.unwrap();
                let m = c.manifest().await.unwrap();
                if m.version() == 2 {
                    let t = c.table(&m, &fx.cache("v2")).await.unwrap();
                    break (Arc::new(t), *m.table_id());
                }
                assert!(
                    Instant::now() < deadline,
                    "the reloaded replica never served version 2"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            tables.write().unwrap().push(v2);
        }
        if let Some(cluster) = &cluster
            && round % 3 == 2
        {
            // The database goes away for a moment, mid-load.
            let mode = if pg_restarts % 2 == 0 {
                "fast"
            } else {
                "immediate"
            };
            tokio::task::block_in_place(|| {
                cluster.run(&["stop-only", mode]);
                std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
                cluster.run(&["start-only"]);
            });
            pg_restarts += 1;
            pg_modes.push(mode);
            continue;
        }
        // Kill one replica, sometimes two; bring them back after a moment.
        let victims: Vec<usize> = if rng.random_bool(0.25) {
            vec![0, 1, 2]
                .into_iter()
                .filter(|_| rng.random_bool(0.67))
                .take(2)
                .collect()
        } else {
            vec![rng.random_range(0..3)]
        };
        tokio::task::block_in_place(|| {
            for &v in &victims {
                replicas.kill(v);
                kills += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        tokio::task::block_in_place(|| {
            for &v in &victims {
                replicas.start(v);
            }
        });
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    // Half of the batches still in doubt are sent again (same id) until
    // acknowledged; the others stay in doubt for good.
    let in_doubt: Vec<usize> = {
        let l = ledger.lock().unwrap();
        (0..l.batches.len())
            .filter(|&i| !l.batches[i].acknowledged)
            .collect()
    };
    for i in in_doubt {
        if !rng.random_bool(0.5) {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = {
                let l = ledger.lock().unwrap();
                let b = &l.batches[i];
                Sent {
                    id: b.id,
                    table_id: b.table_id,
                    vouchers: b.vouchers.clone(),
                    listed: Vec::new(),
                    acknowledged: false,
                }
            };
            if send(&pool, fx.operator, &mut rng, &ok).await {
                let mut l = ledger.lock().unwrap();
                l.batches[i].acknowledged = true;
                l.retries += 1;
                break;
            }
            assert!(Instant::now() < deadline, "a retry was never acknowledged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Everything acknowledged is evaluated, by whichever replica holds it.
    let location = blindmatch_server::store::Location::parse(&store, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = location.clone();
        let pending = tokio::task::spawn_blocking(move || blindmatch_server::store::read_stats(&l))
            .await
            .unwrap()
            .unwrap()
            .pending;
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} submissions never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(replicas);

    let records =
        tokio::task::spawn_blocking(move || blindmatch_server::store::read_matches(&location))
            .await
            .unwrap()
            .unwrap();
    let l = ledger.lock().unwrap();
    let mut recorded: std::collections::HashMap<&[u8], usize> = Default::default();
    for r in &records {
        *recorded.entry(&r.associated_data[..]).or_default() += 1;
    }
    let duplicates = recorded.values().filter(|&&n| n > 1).count();
    let (mut lost, mut partial, mut doubtful, mut doubtful_stored) = (0, 0, 0, 0);
    let (mut acked, mut acked_listed, mut acked_vouchers) = (0, 0, 0);
    for b in &l.batches {
        let here = b
            .listed
            .iter()
            .filter(|ad| recorded.contains_key(&ad[..]))
            .count();
        if b.acknowledged {
            acked += 1;
            acked_vouchers += b.vouchers.len();
            acked_listed += b.listed.len();
            lost += b.listed.len() - here;
        } else {
            doubtful += 1;
            if here != 0 && here == b.listed.len() {
                doubtful_stored += 1;
            } else if here != 0 {
                partial += 1;
            }
        }
    }
    let sent: std::collections::HashSet<&[u8]> = l
        .batches
        .iter()
        .flat_map(|b| b.listed.iter().map(|ad| &ad[..]))
        .collect();
    let strangers = recorded.keys().filter(|ad| !sent.contains(*ad)).count();
    eprintln!(
        "replica harness: {rounds} rounds, 3 replicas, {clients} clients; {kills} replica SIGKILLs, \
         {pg_restarts} PostgreSQL restarts ({pg_modes:?}), a key rotation rolled out at round {swap_round}; \
         {} batches sent, {acked} acknowledged ({acked_vouchers} vouchers, {acked_listed} of them listed), \
         {} sends refused or unanswered, {} resent, {doubtful} never acknowledged ({doubtful_stored} of them stored whole); \
         {} matches recorded; lost {lost}, duplicated {duplicates}, partial {partial}, unexpected {strangers}, pending 0",
        l.batches.len(),
        l.failed_sends,
        l.retries,
        records.len(),
    );
    assert_eq!(lost, 0, "acknowledged matches lost");
    assert_eq!(duplicates, 0, "matches recorded twice");
    assert_eq!(partial, 0, "an unacknowledged batch was stored in part");
    assert_eq!(strangers, 0, "recorded a match never sent");
    assert!(
        acked_listed > 0 && kills > 0,
        "too little happened to mean anything"
    );
}
