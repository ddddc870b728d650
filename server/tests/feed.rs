//! Acting on matches, end to end: `matches --follow` as the real binary,
//! and the webhook posting to a real receiver in another process
//! (`support/webhook_receiver.py`, Python's standard library, which checks
//! each signature with HMAC code of its own), on SQLite and on PostgreSQL.
//!
//! - The follower prints each record once, as JSON lines; restarted with
//!   its cursor file it resumes after the last line it wrote; `--after`
//!   and `--from-now` start where they say; a threshold crossing's records
//!   come with their kind and account.
//! - The receiver is SIGKILLed while matches keep coming, and the server is
//!   restarted while records wait: once the receiver is back every record
//!   is delivered, each with a valid signature, none lost.
//! - With two replicas on PostgreSQL one delivers; when it stops, the
//!   other takes over.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/postgres.rs"]
mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use blindmatch_server::ServeConfig;
use blindmatch_server::feed::webhook::WebhookSettings;
use blindmatch_server::store::{self, Location, MatchRecord};
use fixture::*;

/// Where the tests keep their matches.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The store for `fx`, or `None` when PostgreSQL is not there (said).
    fn location(self, fx: &Fixture, test: &str) -> Option<Location> {
        match self {
            Backend::Sqlite => Some(Location::Sqlite(fx.data.clone())),
            Backend::Postgres => {
                let url = postgres::fresh_database(test)?;
                Some(Location::parse(&url, None).unwrap())
            }
        }
    }
}

/// `--data DIR` or `--store URL`.
fn store_args(location: &Location) -> Vec<String> {
    match location {
        Location::Sqlite(dir) => vec!["--data".into(), dir.display().to_string()],
        Location::Postgres { url, .. } => vec!["--store".into(), url.clone()],
    }
}

fn records(location: &Location) -> Vec<MatchRecord> {
    store::read_matches(location).unwrap()
}

/// Waits for `done`, up to 30 s, checking every 50 ms.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to `child`, which must then exit 0.
fn terminate(child: &mut Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "did not exit at SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- matches --follow ---

/// `matches --follow` as the real binary, its lines read by a thread.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Follower {
    fn start(location: &Location, extra: &[&str]) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
            .arg("matches")
            .args(store_args(location))
            .args(["--follow", "--poll", "100ms"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next `n` lines.
    fn next(&self, n: usize) -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(Duration::from_secs(30))
                    .unwrap_or_else(|e| panic!("line {i} of {n} did not come: {e}"))
            })
            .collect()
    }

    fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The record ids of `lines`.
fn ids(lines: &[serde_json::Value]) -> Vec<i64> {
    lines.iter().map(|l| l["id"].as_i64().unwrap()).collect()
}

/// Each line is its record as the store holds it, with its kind and cursor.
fn check_lines(lines: &[serde_json::Value], location: &Location) {
    let by_id: BTreeMap<i64, MatchRecord> =
        records(location).into_iter().map(|r| (r.id, r)).collect();
    for line in lines {
        let record = &by_id[&line["id"].as_i64().unwrap()];
        let mut want = serde_json::to_value(record).unwrap();
        want["kind"] = if record.account_hex.is_some() {
            "threshold".into()
        } else {
            "match".into()
        };
        want["cursor"] = line["cursor"].clone();
        assert_eq!(line, &want);
        let cursor: store::Cursor = line["cursor"].as_str().unwrap().parse().unwrap();
        assert_eq!(cursor.id, record.id);
    }
}

/// Submits `n` listed items (tagged `tag`) and waits until the server has
/// recorded them.
async fn matches_for(fx: &Fixture, server: &blindmatch_server::ServerHandle, tag: &str, n: usize) {
    let (mut client, manifest, table) = connected(fx, server).await;
    let listed = listed();
    let items: Vec<_> = (0..n)
        .map(|i| {
            (
                listed[i % listed.len()].clone(),
                format!("{tag} {i}").into_bytes(),
            )
        })
        .collect();
    let before = server.processed();
    assert_eq!(client.check(&manifest, &table, &items).await.unwrap(), n);
    assert!(
        server
            .wait_processed(before + n as u64, Duration::from_secs(30))
            .await
    );
}

async fn follow_resumes_from_its_cursor_file(backend: Backend) {
    let fx = Fixture::new();
    let Some(location) = backend.location(&fx, "follow") else {
        return;
    };
    let store = location.clone();
    let server = fx
        .start_with(move |c| ServeConfig { store, ..c })
        .await
        .unwrap();
    let cursor = fx.dir.path().join("follow.cursor");
    let cursor_arg = cursor.to_str().unwrap();
    matches_for(&fx, &server, "one", 2).await;

    // From the beginning: what is there, then what comes.
    let follower = Follower::start(&location, &["--cursor", cursor_arg]);
    let mut lines = follower.next(2);
    matches_for(&fx, &server, "two", 1).await;
    lines.extend(follower.next(1));
    follower.stop();
    let all = records(&location);
    assert_eq!(ids(&lines), all.iter().map(|r| r.id).collect::<Vec<_>>());
    check_lines(&lines, &location);
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap().trim(),
        lines[2]["cursor"].as_str().unwrap(),
        "the cursor file holds the last line's cursor"
    );

    // Stopped while two more were recorded: a restart gives exactly those.
    matches_for(&fx, &server, "three", 2).await;
    let follower = Follower::start(&location, &["--cursor", cursor_arg]);
    let resumed = follower.next(2);
    let all = records(&location);
    assert_eq!(ids(&resumed), [all[3].id, all[4].id], "no repeat, no gap");
    check_lines(&resumed, &location);
    follower.stop();

    // --after a record's id, or a line's cursor: what follows it.
    for after in [
        all[1].id.to_string(),
        lines[1]["cursor"].as_str().unwrap().to_owned(),
    ] {
        let follower = Follower::start(&location, &["--after", &after]);
        assert_eq!(ids(&follower.next(3)), [all[2].id, all[3].id, all[4].id]);
        follower.stop();
    }

    // --from-now with a new cursor file: saved at once, then only what is
    // recorded after.
    let fresh = fx.dir.path().join("from-now.cursor");
    let follower = Follower::start(
        &location,
        &["--from-now", "--cursor", fresh.to_str().unwrap()],
    );
    eventually("the --from-now cursor file", || fresh.exists()).await;
    matches_for(&fx, &server, "four", 1).await;
    let newest = records(&location).last().unwrap().id;
    assert_eq!(ids(&follower.next(1)), [newest]);
    follower.stop();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_resumes_from_its_cursor_file_on_sqlite() {
    follow_resumes_from_its_cursor_file(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_resumes_from_its_cursor_file_on_postgres() {
    follow_resumes_from_its_cursor_file(Backend::Postgres).await;
}

/// A threshold crossing comes as the account's revealed records, `kind`
/// `threshold`, with the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_crossing_is_followed() {
    use blindmatch_client::Upload;
    use blindmatch_protocol::threshold::{AccountSecret, SyntheticRate};
    const T: u16 = 2;
    let fx = Fixture::with_threshold(Some((T, 2)));
    let server = fx.start().await;
    let location = Location::Sqlite(fx.data.clone());
    let (mut client, manifest, table) = connected(&fx, &server).await;
    let account = AccountSecret::generate(
        b"carol",
        SyntheticRate::from_probability(0.0),
        &mut rand::rng(),
    )
    .unwrap();
    let uploads: Vec<Upload> = listed()[..2]
        .iter()
        .enumerate()
        .map(|(i, item)| Upload {
            voucher_id: [u8::try_from(i).unwrap() + 1; 16],
            item: item.clone(),
            associated_data: format!("carol {i}").into_bytes(),
        })
        .collect();
    let follower = Follower::start(&location, &[]);
    // Below t nothing is printed; the second listed upload crosses it.
    for u in &uploads {
        let before = server.processed();
        client
            .check_account(&manifest, &table, &account, std::slice::from_ref(u))
            .await
            .unwrap();
        assert!(
            server
                .wait_processed(before + 1, Duration::from_secs(30))
                .await
        );
    }
    let lines = follower.next(2);
    follower.stop();
    let account_hex = hex::encode(account.account_id());
    for line in &lines {
        assert_eq!(line["kind"], "threshold");
        assert_eq!(line["account_hex"], account_hex.as_str());
    }
    let ads: BTreeSet<&str> = lines
        .iter()
        .map(|l| l["associated_data"].as_str().unwrap())
        .collect();
    assert_eq!(ads, BTreeSet::from(["carol 0", "carol 1"]));
    check_lines(&lines, &location);
    server.shutdown().await.unwrap();
}

// --- The webhook ---

/// `python3`, or `None` (after saying so) if there is none; under CI its
/// absence fails the test, as PostgreSQL's does.
fn python() -> Option<&'static str> {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 is missing under CI: the webhook receiver needs it"
    );
    eprintln!("SKIPPED: no python3 for the webhook receiver");
    None
}

/// A free port on loopback (the receiver is restarted on the same one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A signing secret as an operator makes one, in a file of mode 0600.
fn secret_file(dir: &Path) -> PathBuf {
    use base64::Engine as _;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("webhook.secret");
    let secret: [u8; 32] = rand::random();
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        format!(
            "whsec_{}\n",
            base64::engine::general_purpose::STANDARD.encode(secret)
        )
        .as_bytes(),
    )
    .unwrap();
    path
}

/// The receiver process.
struct Receiver {
    child: Option<Child>,
    port: u16,
    secret: PathBuf,
    out: PathBuf,
}

impl Receiver {
    fn new(port: u16, secret: PathBuf, out: PathBuf) -> Receiver {
        let mut r = Receiver {
            child: None,
            port,
            secret,
            out,
        };
        r.start();
        r
    }

    fn start(&mut self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.secret)
            .arg(&self.out)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("listening {}", self.port));
        self.child = Some(child);
    }

    /// SIGKILL: no goodbye, connections cut.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Every verified delivery so far: its `webhook-id` and body.
    fn delivered(&self) -> Vec<(String, serde_json::Value)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let body = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
                (v["id"].as_str().unwrap().to_owned(), body)
            })
            .collect()
    }

    /// Requests that failed the receiver's check.
    fn refused(&self) -> Vec<String> {
        let bad = format!("{}.bad", self.out.display());
        std::fs::read_to_string(bad)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The distinct record ids delivered.
    fn ids(&self) -> BTreeSet<i64> {
        self.delivered()
            .iter()
            .map(|(id, _)| id.parse().unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn webhook_config(
    location: &Location,
    port: u16,
    secret: &Path,
) -> impl Fn(ServeConfig) -> ServeConfig + Clone + use<> {
    let (location, secret) = (location.clone(), secret.to_owned());
    move |c| ServeConfig {
        store: location.clone(),
        webhook: Some(WebhookSettings {
            url: format!("http://127.0.0.1:{port}/hooks/blindmatch")
                .parse()
                .unwrap(),
            secret_file: secret.clone(),
            // Retries every 0.5 to 1 s: the test waits seconds, not minutes.
            max_backoff: Duration::from_secs(1),
        }),
        ..c
    }
}

/// Every record in the store was delivered, each body its record's line.
fn check_deliveries(receiver: &Receiver, location: &Location) {
    let by_id: BTreeMap<i64, MatchRecord> =
        records(location).into_iter().map(|r| (r.id, r)).collect();
    let delivered = receiver.delivered();
    for (id, body) in &delivered {
        let record = &by_id[&id.parse::<i64>().unwrap()];
        assert_eq!(body["type"], "match.recorded");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
        let data = &body["data"];
        assert_eq!(data["id"].as_i64(), Some(record.id));
        assert_eq!(data["kind"], "match");
        let mut want = serde_json::to_value(record).unwrap();
        want["kind"] = "match".into();
        want["cursor"] = data["cursor"].clone();
        assert_eq!(data, &want);
    }
    let ids: BTreeSet<i64> = by_id.keys().copied().collect();
    assert_eq!(receiver.ids(), ids, "every record delivered");
    assert!(receiver.refused().is_empty(), "{:?}", receiver.refused());
}

async fn the_webhook_loses_nothing_while_its_receiver_is_down(backend: Backend) {
    if python().is_none() {
        return;
    }
    let fx = Fixture::new();
    let Some(location) = backend.location(&fx, "webhook") else {
        return;
    };
    let port = free_port();
    let secret = secret_file(fx.dir.path());
    let mut receiver = Receiver::new(port, secret.clone(), fx.dir.path().join("delivered"));
    let config = webhook_config(&location, port, &secret);
    let server = fx.start_with(config.clone()).await.unwrap();

    matches_for(&fx, &server, "up", 3).await;
    eventually("three deliveries", || {
        receiver.ids().len() == 3 && server.metrics().webhook_delivered.get() == 3
    })
    .await;
    assert_eq!(server.metrics().webhook_deliverer.get(), 1);
    check_deliveries(&receiver, &location);

    // The receiver dies; matches keep coming and wait in the store.
    receiver.kill();
    matches_for(&fx, &server, "down", 2).await;
    eventually("failed attempts", || {
        server
            .metrics()
            .render()
            .contains("webhook_failed_attempts_total{kind=\"unreachable\"}")
    })
    .await;
    eventually("a backlog of two", || {
        server.metrics().webhook_backlog.get() == 2
    })
    .await;
    // The server restarts with records still waiting, and more come.
    server.shutdown().await.unwrap();
    let server = fx.start_with(config).await.unwrap();
    matches_for(&fx, &server, "restarted", 2).await;
    assert_eq!(receiver.ids().len(), 3, "delivered to a dead receiver?");

    // Back: every record arrives, signed, none lost.
    receiver.start();
    let all = records(&location).len();
    assert_eq!(all, 7);
    eventually("every record delivered", || receiver.ids().len() == all).await;
    check_deliveries(&receiver, &location);
    // At least once: a delivery cut by a kill may come again, at most once
    // per interruption here (the kill, the restart).
    let repeats = receiver.delivered().len() - all;
    assert!(repeats <= 2, "{repeats} repeated deliveries");
    eventually("an empty backlog", || {
        server.metrics().webhook_backlog.get() == 0
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_loses_nothing_while_its_receiver_is_down_on_sqlite() {
    the_webhook_loses_nothing_while_its_receiver_is_down(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_loses_nothing_while_its_receiver_is_down_on_postgres() {
    the_webhook_loses_nothing_while_its_receiver_is_down(Backend::Postgres).await;
}

/// Two replicas with the same webhook: one delivers; stopped, the other
/// takes over, from where the first left off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_delivers_and_another_takes_over() {
    if python().is_none() {
        return;
    }
    let fx = Fixture::new();
    let Some(location) = Backend::Postgres.location(&fx, "takeover") else {
        return;
    };
    let port = free_port();
    let secret = secret_file(fx.dir.path());
    let receiver = Receiver::new(port, secret.clone(), fx.dir.path().join("delivered"));
    let config = webhook_config(&location, port, &secret);
    let a = fx.start_with(config.clone()).await.unwrap();
    let b = fx.start_with(config).await.unwrap();
    matches_for(&fx, &a, "via a", 2).await;
    matches_for(&fx, &b, "via b", 2).await;
    eventually("four deliveries", || receiver.ids().len() == 4).await;
    let leaders = |servers: &[&blindmatch_server::ServerHandle]| -> Vec<i64> {
        servers
            .iter()
            .map(|s| s.metrics().webhook_deliverer.get())
            .collect()
    };
    eventually("one deliverer", || {
        let mut l = leaders(&[&a, &b]);
        l.sort_unstable();
        l == [0, 1]
    })
    .await;
    assert_eq!(
        a.metrics().webhook_delivered.get() + b.metrics().webhook_delivered.get(),
        4,
        "both delivered"
    );
    let (leader, other) = if leaders(&[&a, &b]) == [1, 0] {
        (a, b)
    } else {
        (b, a)
    };
    // Its last cursor saved (the backlog drops after each save): stopped
    // now, nothing is left for the other to send again.
    eventually("the leader's cursor saved", || {
        leader.metrics().webhook_backlog.get() == 0
    })
    .await;
    leader.shutdown().await.unwrap();
    matches_for(&fx, &other, "after", 2).await;
    eventually("the other replica delivers", || {
        other.metrics().webhook_deliverer.get() == 1
    })
    .await;
    eventually("six deliveries", || receiver.ids().len() == 6).await;
    check_deliveries(&receiver, &location);
    assert_eq!(receiver.delivered().len(), 6, "nothing delivered twice");
    other.shutdown().await.unwrap();
}
