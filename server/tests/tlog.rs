//! The transparency log (SPEC Section 16) through the real binaries
//! (`blindmatch-server log init|append|witness`, `serve --log`), with two
//! real witnesses as separate processes (`scripts/witnesses.sh`), and the
//! real client library checking what it is served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/witnesses.rs"]
mod witnesses;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use blindmatch_client::{Client, ClientError, TableCache};
use blindmatch_client_core::Error as CoreError;
use blindmatch_protocol::merkle;
use blindmatch_protocol::tlog::{LogEntry, LogError, LogPolicy};
use fixture::{Fixture, build_options, spawn};
use witnesses::Witnesses;

const ORIGIN: &str = "blindmatch.test/log";

fn server(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected a refusal; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An operator with a log: the fixture's table and key, a log directory
/// and its key.
struct Logged {
    fx: Fixture,
    log: PathBuf,
    log_key: PathBuf,
    vkey: String,
    /// The fixture's list, which every version holds.
    base_list: PathBuf,
    /// The entries added since.
    list: PathBuf,
    tables: Vec<PathBuf>,
}

impl Logged {
    fn new() -> Self {
        let fx = Fixture::new();
        let log = fx.dir.path().join("log");
        let log_key = fx.dir.path().join("log.key");
        let out = ok(&server(&[
            "log".as_ref(),
            "init".as_ref(),
            "--dir".as_ref(),
            log.as_os_str(),
            "--origin".as_ref(),
            ORIGIN.as_ref(),
            "--key-out".as_ref(),
            log_key.as_os_str(),
        ]));
        let vkey = std::fs::read_to_string(fx.dir.path().join("log.key.pub"))
            .unwrap()
            .trim()
            .to_owned();
        assert!(out.contains(&vkey), "{out}");
        let list = fx.dir.path().join("log-list.txt");
        std::fs::write(&list, "").unwrap();
        let tables = vec![fx.table.clone()];
        Logged {
            base_list: fx.dir.path().join("list.txt"),
            fx,
            log,
            log_key,
            vkey,
            list,
            tables,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.fx.dir.path().join(name)
    }

    /// The next version of the newest table, with one more entry (`tag`).
    fn next_version(&mut self, tag: &str) -> PathBuf {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.list)
            .unwrap();
        writeln!(f, "{}", hex::encode(sha2::Sha256::digest(tag.as_bytes()))).unwrap();
        drop(f);
        // The fixture's list plus the additions so far.
        let full = self.path("full-list.txt");
        let mut text = std::fs::read_to_string(&self.base_list).unwrap();
        text.push_str(&std::fs::read_to_string(&self.list).unwrap());
        std::fs::write(&full, text).unwrap();
        let base = self.tables.last().unwrap().clone();
        let out = self.path(&format!("table-{}.bmt", self.tables.len() + 1));
        blindmatch_server::build(
            &full,
            &self.fx.key,
            &out,
            &build_options(&self.fx.signing_key, Some(base)),
        )
        .unwrap();
        self.tables.push(out.clone());
        out
    }

    fn append(&self, dir: &Path, table: &Path) -> Output {
        server(&[
            "log".as_ref(),
            "append".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--key".as_ref(),
            self.log_key.as_os_str(),
            "--table".as_ref(),
            table.as_os_str(),
        ])
    }

    fn witness(&self, dir: &Path, policy: &Path) -> Output {
        server(&[
            "log".as_ref(),
            "witness".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--policy".as_ref(),
            policy.as_os_str(),
            "--attempts".as_ref(),
            "1".as_ref(),
            "--timeout".as_ref(),
            "5s".as_ref(),
        ])
    }

    fn write_policy(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `serve --log` on `log` with `policy`, serving `table`.
    fn serve(
        &self,
        table: &Path,
        log: &Path,
        policy: &Path,
        data: &str,
    ) -> (std::process::Child, String) {
        spawn(self.serve_command(table, log, policy, data))
    }

    /// The same `serve`, run to its end: one that must refuse to start.
    fn serve_refused(&self, table: &Path, log: &Path, policy: &Path, data: &str) -> String {
        refused(
            &self
                .serve_command(table, log, policy, data)
                .output()
                .unwrap(),
        )
    }

    fn serve_command(&self, table: &Path, log: &Path, policy: &Path, data: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_blindmatch-server"));
        cmd.args(["serve", "--plaintext", "--listen", "127.0.0.1:0"])
            .arg("--table")
            .arg(table)
            .arg("--key")
            .arg(&self.fx.key)
            .arg("--data")
            .arg(self.path(data))
            .arg("--log")
            .arg(log)
            .arg("--log-policy")
            .arg(policy);
        cmd
    }

    async fn client(&self, url: &str, policy: Option<&str>, cache: &TableCache) -> Client {
        let mut c = Client::connect(url, self.fx.operator).await.unwrap();
        c.set_log_policy(policy.map(|p| LogPolicy::parse(p).unwrap()), cache)
            .unwrap();
        c
    }
}

use sha2::Digest as _;

fn log_error(e: ClientError) -> LogError {
    match e {
        ClientError::Refused(CoreError::Log(e)) => e,
        other => panic!("expected a log refusal, got {other}"),
    }
}

fn stop(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Every version logged, cosigned by both real witnesses, served with its
/// proof, and checked by a client across versions (consistency each time);
/// a witness that is down leaves the quorum to decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_logged_witnessed_served_and_checked() {
    let mut op = Logged::new();
    let Some(w) = Witnesses::start(
        "versions_are_logged_witnessed_served_and_checked",
        &op.path("w"),
        ORIGIN,
        &op.vkey,
    ) else {
        return;
    };
    let both_text = w.policy(&op.vkey, "group both all lite omni\n", "both");
    let any_text = w.policy(&op.vkey, "group any any lite omni\n", "any");
    let both = op.write_policy("both.policy", &both_text);
    let any = op.write_policy("any.policy", &any_text);

    let v1 = op.tables[0].clone();
    assert!(ok(&op.append(&op.log, &v1)).contains("logged table version 1 as entry 0"));
    let report = ok(&op.witness(&op.log, &both));
    assert!(
        report.contains("lite") && report.contains("omni") && report.contains("met"),
        "{report}"
    );
    assert!(!report.contains("did not cosign"), "{report}");

    let cache = TableCache::new(op.path("cache"));
    let (child, url) = op.serve(&v1, &op.log, &both, "data1");
    let mut client = op.client(&url, Some(&both_text), &cache).await;
    let m = client.manifest().await.unwrap();
    let c = m.verified().log_checkpoint().unwrap();
    assert_eq!(
        (c.checkpoint().size, c.witnesses()),
        (1, &["lite".to_owned(), "omni".to_owned()][..])
    );
    client.table(&m, &cache).await.unwrap();
    stop(child);

    // Three more versions, each logged and witnessed; a restarted server
    // serves each, and the client's checkpoint grows with consistency
    // proofs from the one it holds.
    for v in 2..=4u64 {
        let t = op.next_version(&format!("v{v}"));
        ok(&op.append(&op.log, &t));
        ok(&op.witness(&op.log, &both));
        let (child, url) = op.serve(&t, &op.log, &both, "data1");
        let mut client = op.client(&url, Some(&both_text), &cache).await;
        let m = client.manifest().await.unwrap();
        assert_eq!(m.version(), v);
        assert_eq!(m.verified().log_checkpoint().unwrap().checkpoint().size, v);
        client.table(&m, &cache).await.unwrap();
        // A client that checks no log is served as before; one pinning
        // another log's key refuses.
        let mut plain = Client::connect(&url, op.fx.operator).await.unwrap();
        assert_eq!(plain.manifest().await.unwrap().version(), v);
        let another_key = blindmatch_protocol::tlog::LogSigningKey::from_seed(ORIGIN, [9; 32])
            .unwrap()
            .verifying_key()
            .to_string();
        let other = both_text.replace(&op.vkey, &another_key);
        let mut stranger = op
            .client(
                &url,
                Some(&other),
                &TableCache::new(op.path("cache-stranger")),
            )
            .await;
        let e = log_error(stranger.manifest().await.unwrap_err());
        assert!(matches!(e, LogError::LogSignature(_)), "{e}");
        stop(child);
    }

    // omniwitness goes down: the checkpoint of version 5 gets lite's
    // cosignature only. A policy of both is not met (and `log witness`
    // says so and exits non-zero); one of any is.
    w.kill("omni");
    let v5 = op.next_version("v5");
    ok(&op.append(&op.log, &v5));
    let report = refused(&op.witness(&op.log, &both));
    assert!(
        report.contains("omni") && report.contains("did not cosign") && report.contains("NOT met"),
        "{report}"
    );
    let report = ok(&op.witness(&op.log, &any));
    assert!(report.contains("quorum 1 of (lite, omni): met"), "{report}");
    // A server pinned to both refuses to start on it; one pinned to any serves.
    let e = op.serve_refused(&v5, &op.log, &both, "data1");
    assert!(
        e.contains("witness quorum not met") && e.contains("lite"),
        "{e}"
    );
    let (child, url) = op.serve(&v5, &op.log, &any, "data1");
    // A client requiring both refuses, naming who cosigned; one requiring
    // any accepts.
    let mut strict = op.client(&url, Some(&both_text), &cache).await;
    match log_error(strict.manifest().await.unwrap_err()) {
        LogError::Quorum {
            found, pinned: 2, ..
        } => assert_eq!(found, ["lite"]),
        e => panic!("{e}"),
    }
    let mut lenient = op.client(&url, Some(&any_text), &cache).await;
    let m = lenient.manifest().await.unwrap();
    lenient.table(&m, &cache).await.unwrap();
    stop(child);

    // A version is logged once: the same table again changes nothing;
    // another table for a logged version is refused.
    assert!(ok(&op.append(&op.log, &v5)).contains("already logged, as entry 4"));
    let mut fork = Logged {
        tables: vec![op.tables[3].clone()],
        ..clone_operator(&op)
    };
    let other5 = fork.next_version("another v5");
    let e = refused(&op.append(&op.log, &other5));
    assert!(
        e.contains("already logged (entry 4) with another table"),
        "{e}"
    );
}

/// A second handle on the same operator's files (for a second table line).
fn clone_operator(op: &Logged) -> Logged {
    let list = op.path("fork-list.txt");
    std::fs::copy(&op.list, &list).unwrap();
    Logged {
        fx: Fixture {
            dir: tempfile::TempDir::new_in(op.fx.dir.path()).unwrap(),
            table: op.fx.table.clone(),
            key: op.fx.key.clone(),
            signing_key: op.fx.signing_key.clone(),
            operator: op.fx.operator,
            data: op.fx.data.clone(),
        },
        log: op.log.clone(),
        log_key: op.log_key.clone(),
        vkey: op.vkey.clone(),
        base_list: op.base_list.clone(),
        list,
        tables: op.tables.clone(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Two logs that share a prefix: the witnesses that cosigned one refuse
/// the other, and a client that accepted a checkpoint of one refuses the
/// other's, however it is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_log_is_caught_by_the_witnesses_and_by_a_client() {
    let mut op = Logged::new();
    let Some(w) = Witnesses::start(
        "a_forked_log_is_caught_by_the_witnesses_and_by_a_client",
        &op.path("w"),
        ORIGIN,
        &op.vkey,
    ) else {
        return;
    };
    let both_text = w.policy(&op.vkey, "group both all lite omni\n", "both");
    let both = op.write_policy("both.policy", &both_text);
    let none_text = format!("log {}\nquorum none\n", op.vkey);
    let none = op.write_policy("none.policy", &none_text);
    let v1 = op.tables[0].clone();
    ok(&op.append(&op.log, &v1));
    for v in 2..=3 {
        let t = op.next_version(&format!("v{v}"));
        ok(&op.append(&op.log, &t));
    }
    ok(&op.witness(&op.log, &both));
    let forked = op.path("forked-log");
    copy_dir(&op.log, &forked);
    let mut other = clone_operator(&op);

    let v4 = op.next_version("v4");
    ok(&op.append(&op.log, &v4));
    ok(&op.witness(&op.log, &both));
    let v4b = other.next_version("v4, another");
    ok(&other.append(&forked, &v4b));
    let v5b = other.next_version("v5, another");
    ok(&other.append(&forked, &v5b));

    // Both witnesses saw size 4 of the real log: the fork's size 5 does not
    // extend it, and they refuse it.
    let report = refused(&op.witness(&forked, &both));
    assert_eq!(report.matches("422").count(), 2, "{report}");

    // Without witnesses a client still catches it, from the checkpoint it
    // accepted: size 4 of the real log does not lead to the fork's 5.
    let cache = TableCache::new(op.path("cache"));
    let (real, url) = op.serve(&v4, &op.log, &none, "data-real");
    let mut client = op.client(&url, Some(&none_text), &cache).await;
    let m = client.manifest().await.unwrap();
    client.table(&m, &cache).await.unwrap();
    stop(real);
    let (fake, url) = op.serve(&v5b, &forked, &none, "data-fork");
    let mut client = op.client(&url, Some(&none_text), &cache).await;
    let m = client.manifest().await.unwrap();
    let e = log_error(client.table(&m, &cache).await.unwrap_err());
    assert_eq!(e, LogError::Inconsistent { old: 4, new: 5 });
    stop(fake);
}

/// A log directory whose files do not agree is refused by `log append` and
/// by `serve`, naming the file.
#[test]
fn a_tampered_log_is_refused_naming_the_file() {
    let op = Logged::new();
    let v1 = op.tables[0].clone();
    ok(&op.append(&op.log, &v1));
    let none = op.write_policy("none.policy", &format!("log {}\nquorum none\n", op.vkey));
    let tile = op.log.join("tile/0/000.p/1");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    let e = refused(&op.append(&op.log, &v1));
    assert!(e.contains("tile") && e.contains("000.p/1"), "{e}");
    assert!(
        op.serve_refused(&v1, &op.log, &none, "data")
            .contains("000.p/1")
    );
    bytes[0] ^= 1;
    std::fs::write(&tile, &bytes).unwrap();
    // A checkpoint altered after signing.
    let checkpoint = op.log.join("checkpoint");
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    std::fs::write(&checkpoint, text.replacen("\n1\n", "\n2\n", 1)).unwrap();
    let e = refused(&op.append(&op.log, &v1));
    assert!(e.contains("checkpoint"), "{e}");
}

/// Hundreds of entries, past the first full tile: the witnesses check the
/// consistency proof of every step, and every entry's inclusion proof and
/// every earlier size's consistency proof verify under the last checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_of_every_size_up_to_past_a_full_tile() {
    let mut op = Logged::new();
    let Some(w) = Witnesses::start(
        "proofs_of_every_size_up_to_past_a_full_tile",
        &op.path("w"),
        ORIGIN,
        &op.vkey,
    ) else {
        return;
    };
    let text = w.policy(&op.vkey, "group both all lite omni\n", "both");
    let policy = LogPolicy::parse(&text).unwrap();
    let key = blindmatch_server::keyfile::read_log_key(&op.log_key).unwrap();
    let options = blindmatch_server::tlog::WitnessOptions {
        attempts: 1,
        timeout: Duration::from_secs(5),
    };
    let first = op.tables[0].clone();
    blindmatch_server::tlog::append(&op.log, &key, &first).unwrap();
    const N: u64 = 260;
    for v in 2..=N {
        let t = op.next_version(&format!("v{v}"));
        blindmatch_server::tlog::append(&op.log, &key, &t).unwrap();
        // Every step up to 20, then every 16th and the tile's edges: each a
        // consistency proof the witnesses check.
        if v <= 20 || v % 16 == 0 || (255..=258).contains(&v) || v == N {
            let r = blindmatch_server::tlog::witness(&op.log, &policy, options)
                .await
                .unwrap();
            assert!(r.quorum_met, "size {v}: {r}");
        }
        // Only the newest table is kept (the next one's base).
        let older = op.tables[op.tables.len() - 2].clone();
        std::fs::remove_file(older).ok();
    }
    let state = blindmatch_server::tlog::read(&op.log, policy.log()).unwrap();
    assert!(op.log.join("tile/0/000").exists() && op.log.join("tile/1/000.p/1").exists());
    let checkpoint = policy.verify_checkpoint(&state.note).unwrap();
    assert_eq!(checkpoint.checkpoint().size, N);
    for (i, e) in state.entries.iter().enumerate() {
        let proof = blindmatch_protocol::tlog::TlogProof {
            extra: None,
            index: i as u64,
            path: merkle::inclusion_proof(&state.leaves, i),
            checkpoint: state.note.clone(),
        };
        policy.verify_inclusion(&proof, e).unwrap();
        assert_eq!(&LogEntry::decode(&e.encode()).unwrap(), e);
    }
    for m in 1..usize::try_from(N).unwrap() {
        let old = merkle::root(&state.leaves[..m]);
        assert!(merkle::verify_consistency(
            m as u64,
            N,
            &old,
            &checkpoint.checkpoint().root,
            &merkle::consistency_proof(&state.leaves, m)
        ));
    }
}
