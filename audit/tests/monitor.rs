//! `blindmatch-audit monitor` through the real binary, on logs made by the
//! operator's real tools, and on logs forced by hand into what `log
//! append` refuses (two tables for one version, a rewritten history).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use blindmatch_protocol::ItemType;
use blindmatch_protocol::tlog::LogEntry;
use blindmatch_server::BuildOptions;

struct Operator {
    dir: tempfile::TempDir,
    key: PathBuf,
    signing: PathBuf,
    operator_pub: String,
    log: PathBuf,
    log_key: PathBuf,
    vkey: String,
}

impl Operator {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("server.key");
        blindmatch_server::keyfile::write_new(&key).unwrap();
        let signing = dir.path().join("operator.sign");
        let operator_pub = hex::encode(
            blindmatch_server::keyfile::write_new_signing(&signing)
                .unwrap()
                .verifying_key()
                .to_bytes(),
        );
        let log = dir.path().join("log");
        let log_key = dir.path().join("log.key");
        let vkey = blindmatch_server::tlog::init(&log, "monitor.test/log", &log_key)
            .unwrap()
            .vkey
            .to_string();
        Operator {
            dir,
            key,
            signing,
            operator_pub,
            log,
            log_key,
            vkey,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Version `n` (built from version n − 1 if `n` > 1), its list the
    /// numbers below `n * 10` plus `extra`.
    fn build(&self, n: u32, extra: u32, name: &str) -> PathBuf {
        let list = self.path(&format!("{name}.txt"));
        let text: String = (0..n * 10)
            .chain(std::iter::once(extra))
            .map(|i| format!("{:064x}\n", u64::from(i) + 1))
            .collect();
        std::fs::write(&list, text).unwrap();
        let out = self.path(&format!("{name}.bmt"));
        let base = (n > 1).then(|| self.path(&format!("v{}.bmt", n - 1)));
        blindmatch_server::build(
            &list,
            &self.key,
            &out,
            &BuildOptions {
                default_type: Some(ItemType::Sha256),
                k: None,
                load_factor: None,
                progress: false,
                signing_key: self.signing.clone(),
                base,
                decoys: 1,
                threshold: None,
            },
        )
        .unwrap();
        out
    }

    fn append(&self, table: &Path) {
        let key = blindmatch_server::keyfile::read_log_key(&self.log_key).unwrap();
        blindmatch_server::tlog::append(&self.log, &key, table).unwrap();
    }

    /// Appends `entry` as `log append` would, without its refusals: what
    /// an operator (or an attacker with the log's key) can do by hand.
    fn force(&self, entry: &LogEntry) {
        let key = blindmatch_server::keyfile::read_log_key(&self.log_key).unwrap();
        let state = blindmatch_server::tlog::read(&self.log, &key.verifying_key()).unwrap();
        let mut raw: Vec<Vec<u8>> = state.entries.iter().map(LogEntry::encode).collect();
        raw.push(entry.encode());
        blindmatch_server::tlog::write_log(&self.log, &key, &raw, 0).unwrap();
    }
}

fn monitor(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blindmatch-audit"))
        .arg("monitor")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_honest_log_passes_and_a_forced_equivocation_is_found() {
    let op = Operator::new();
    for n in 1..=3 {
        let t = op.build(n, 0, &format!("v{n}"));
        op.append(&t);
    }
    let state = op.path("monitor.state");
    let (code, out) = monitor(&[
        "--log",
        s(&op.log),
        "--log-key",
        &op.vkey,
        "--operator-key",
        &op.operator_pub,
        "--state",
        s(&state),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 entries (table versions 1 to 3)") && out.contains("nothing found"),
        "{out}"
    );

    // A second table for version 3, forced into the log (append refuses it).
    let other = op.build(3, 9999, "v3-other");
    let file = blindmatch_server::bundle::read(&other, false).unwrap();
    op.force(&LogEntry::new(file.manifest, Vec::new()).unwrap());
    let (code, out) = monitor(&[
        "--log",
        s(&op.log),
        "--log-key",
        &op.vkey,
        "--state",
        s(&state),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("EQUIVOCATION: version 3 is logged twice, as entries 2 and 3"),
        "{out}"
    );
    assert!(out.contains("1 new since the last run (size 3)"), "{out}");

    // An organisation quorum nobody met: every entry is named.
    let org = op.path("org.sign");
    let org_pub = hex::encode(
        blindmatch_server::keyfile::write_new_signing(&org)
            .unwrap()
            .verifying_key()
            .to_bytes(),
    );
    let (code, out) = monitor(&[
        "--log",
        s(&op.log),
        "--log-key",
        &op.vkey,
        "--org-key",
        &org_pub,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        out.matches("of the pinned organisations co-signed, 1 required")
            .count(),
        4,
        "{out}"
    );

    // Another operator key: no entry is signed by it.
    let (code, out) = monitor(&[
        "--log",
        s(&op.log),
        "--log-key",
        &op.vkey,
        "--operator-key",
        &org_pub,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        out.matches("not signed by the operator key given").count(),
        4,
        "{out}"
    );
}

#[test]
fn a_rewritten_history_is_found_against_the_state_and_a_tampered_tile_is_named() {
    let op = Operator::new();
    for n in 1..=3 {
        let t = op.build(n, 0, &format!("v{n}"));
        op.append(&t);
    }
    let state = op.path("monitor.state");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--log",
            s(&op.log),
            "--log-key",
            &op.vkey,
            "--state",
            s(&state),
        ];
        a.extend_from_slice(extra);
        monitor(&a)
    };
    assert_eq!(args(&[]).0, 0);

    // The log is rewritten: entries 0 and 1 kept, another version 3, then
    // version 4. Signed by the log's key, consistent in itself, but not an
    // extension of the size-3 checkpoint the monitor saw.
    let key = blindmatch_server::keyfile::read_log_key(&op.log_key).unwrap();
    let before = blindmatch_server::tlog::read(&op.log, &key.verifying_key()).unwrap();
    std::fs::remove_dir_all(&op.log).unwrap();
    std::fs::create_dir_all(op.log.join("tile")).unwrap();
    blindmatch_server::tlog::write_log(&op.log, &key, &[], 0).unwrap();
    op.force(&before.entries[0]);
    op.force(&before.entries[1]);
    let other3 = op.build(3, 777, "v3-rewritten");
    let m = blindmatch_server::bundle::read(&other3, false)
        .unwrap()
        .manifest;
    op.force(&LogEntry::new(m, Vec::new()).unwrap());
    let v4 = op.build(4, 0, "v4");
    let m = blindmatch_server::bundle::read(&v4, false)
        .unwrap()
        .manifest;
    op.force(&LogEntry::new(m, Vec::new()).unwrap());
    let (code, out) = args(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "FORK: the log's checkpoint of size 4 does not extend the checkpoint of size 3"
        ),
        "{out}"
    );
    // The state keeps the old checkpoint: the next run reports it again.
    assert_eq!(args(&[]).0, 1);

    // A tile that does not agree with the entries.
    let tile = op.log.join("tile/0/000.p/4");
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&tile, bytes).unwrap();
    let (code, out) = monitor(&["--log", s(&op.log), "--log-key", &op.vkey]);
    assert_eq!(code, 1);
    assert!(
        out.contains("files do not agree") && out.contains("000.p/4"),
        "{out}"
    );

    // No log there at all: an error (2), not a finding.
    let (code, out) = monitor(&["--log", s(&op.path("nowhere")), "--log-key", &op.vkey]);
    assert_eq!(code, 2, "{out}");
}

/// Over HTTP, from a server's admin listener (`serve --log`).
#[test]
fn the_log_is_read_over_http_from_the_servers_admin_listener() {
    let op = Operator::new();
    let t = op.build(1, 0, "v1");
    op.append(&t);
    let policy = op.path("none.policy");
    std::fs::write(&policy, format!("log {}\nquorum none\n", op.vkey)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = blindmatch_server::ServeConfig::new(
        t.clone(),
        op.key.clone(),
        op.path("data"),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config.log = Some(blindmatch_server::tlog::LogSettings {
        dir: op.log.clone(),
        policy: blindmatch_server::tlog::read_policy(&policy).unwrap(),
    });
    let server = rt
        .block_on(blindmatch_server::serve::start(config))
        .unwrap();
    let url = format!("http://{}/log", server.admin_addr().unwrap());
    let (code, out) = monitor(&[
        "--log",
        &url,
        "--log-policy",
        s(&policy),
        "--operator-key",
        &op.operator_pub,
    ]);
    // The files are served read-only, and nothing else is.
    let (code_bad, _) = monitor(&[
        "--log",
        &format!("http://{}/metrics", server.admin_addr().unwrap()),
        "--log-key",
        &op.vkey,
    ]);
    rt.block_on(server.shutdown()).unwrap();
    assert_eq!(code_bad, 2);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 entries (table versions 1 to 1)"), "{out}");
}
