//! Day 5 of the demo: the transparency log (SPEC Section 16). The operator
//! creates a log, logs version 4 and then version 5, and two real witnesses
//! (litewitness and omniwitness, separate processes started by
//! `scripts/witnesses.sh`) cosign each checkpoint; a client pinned to the
//! log and both witnesses verifies that the version it is served is in the
//! log. Then the operator misbehaves twice: it serves that client a table
//! that is not in the log (refused: no proof), and it tries to log a second
//! table under version 5 (refused by `log append`; forced into the log by
//! hand, it is found by `blindmatch-audit monitor`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use blindmatch_client::{Client, TableCache};
use blindmatch_protocol::OperatorVerifyingKey;
use blindmatch_protocol::tlog::{LogEntry, LogPolicy};
use blindmatch_server::tlog::{self, LogSettings, WitnessOptions};
use blindmatch_server::{BuildOptions, ServeConfig, keyfile};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/witnesses.sh")
}

/// The witnesses, stopped when dropped.
struct Witnesses(PathBuf);

impl Drop for Witnesses {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.0).status();
    }
}

/// What the operator of the demo holds.
pub(crate) struct Operator<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) key: &'a Path,
    pub(crate) operator: OperatorVerifyingKey,
    pub(crate) list: &'a Path,
    /// The table file of the version served now (version 4).
    pub(crate) table: &'a Path,
}

/// Runs day 5; `None` if the witnesses are not built (said loudly; under
/// CI, `CI` set, an error instead).
pub(crate) async fn day5(op: &Operator<'_>) -> anyhow::Result<Option<bool>> {
    let built = Command::new(script()).arg("bin").output();
    if !built.as_ref().is_ok_and(|o| o.status.success()) {
        if std::env::var_os("CI").is_some() {
            bail!("day 5: the witnesses are not built under CI (scripts/witnesses.sh install)");
        }
        println!(
            "!! day 5 (the transparency log) SKIPPED: the witnesses are not built. Run scripts/witnesses.sh install \
             (litewitness and omniwitness from the Go module proxy, about 90 s), then the demo again."
        );
        return Ok(None);
    }
    let dir = op.dir;
    let (log, log_key) = (dir.join("log"), dir.join("log.key"));
    let origin = "demo.blindmatch.example/log";
    let init = tlog::init(&log, origin, &log_key)?;
    let vkey = init.vkey.to_string();
    let wdir = dir.join("witnesses");
    let started = Command::new(script())
        .arg("start")
        .arg(&wdir)
        .arg(origin)
        .arg(&vkey)
        .output()
        .context("starting the witnesses")?;
    let _witnesses = Witnesses(wdir.clone());
    if !started.status.success() {
        bail!(
            "starting the witnesses: {}",
            String::from_utf8_lossy(&started.stderr)
        );
    }
    let lines = String::from_utf8(started.stdout)?;
    let policy_text = format!("log {vkey}\n{lines}group both all lite omni\nquorum both\n");
    let policy = LogPolicy::parse(&policy_text)?;
    std::fs::write(dir.join("log.policy"), &policy_text)?;
    let key = keyfile::read_log_key(&log_key)?;
    let options = WitnessOptions {
        attempts: 2,
        timeout: std::time::Duration::from_secs(10),
    };

    // Version 4 (served now) and version 5, each logged and witnessed.
    let v4 = dir.join("log-v4.bmt");
    std::fs::copy(op.table, &v4)?;
    let v5 = build_next(op, &v4, "log-v5.bmt", "logged on day 5").await?;
    let mut witnessed = Vec::new();
    for t in [&v4, &v5] {
        let appended = tlog::append(&log, &key, t)?;
        let report = tlog::witness(&log, &policy, options).await?;
        println!("== log: {appended}");
        println!(
            "== log: witnesses: {}",
            report.to_string().replace('\n', "\n           ")
        );
        witnessed.push(report.quorum_met);
    }

    // A server that checks its log serves version 5 with its proof; a
    // client pinned to the log and both witnesses accepts it.
    let logged = blindmatch_server::serve::start(ServeConfig {
        log: Some(LogSettings {
            dir: log.clone(),
            policy: policy.clone(),
        }),
        ..ServeConfig::new(
            v5.clone(),
            op.key.to_owned(),
            dir.join("data-logged"),
            "127.0.0.1:0".parse()?,
        )
    })
    .await?;
    let cache = TableCache::new(dir.join("log-client-cache"));
    let mut client = Client::connect(&logged.url(), op.operator).await?;
    client.set_log_policy(Some(policy.clone()), &cache)?;
    let m5 = client.manifest().await?;
    client.table(&m5, &cache).await?;
    let c = m5
        .verified()
        .log_checkpoint()
        .context("a logged manifest")?;
    println!(
        "== client (pinned to the log, lite and omni): version {} is entry {} of the log, whose checkpoint of size {} {} cosigned: accepted",
        m5.version(),
        c.checkpoint().size - 1,
        c.checkpoint().size,
        c.witnesses().join(" and ")
    );
    logged.shutdown().await?;

    // The operator serves this client a version 6 nobody else sees: not
    // logged, so it has no proof.
    let v6 = build_next(op, &v5, "secret-v6.bmt", "for one user only").await?;
    let secret = blindmatch_server::serve::start(ServeConfig::new(
        v6,
        op.key.to_owned(),
        dir.join("data-secret"),
        "127.0.0.1:0".parse()?,
    ))
    .await?;
    let mut targeted = Client::connect(&secret.url(), op.operator).await?;
    targeted.set_log_policy(Some(policy.clone()), &cache)?;
    let refused = targeted.manifest().await;
    secret.shutdown().await?;
    let secret_refused = matches!(
        &refused,
        Err(blindmatch_client::ClientError::Refused(
            blindmatch_client::core::Error::Log(_)
        ))
    );
    match &refused {
        Err(e) => {
            println!("== client: a version 6 served to it alone, not in the log: refused: {e}")
        }
        Ok(m) => println!("== client: version {} not in the log ACCEPTED", m.version()),
    }

    // A second table for version 5: `log append` refuses it ...
    let other5 = build_next(op, &v4, "other-v5.bmt", "a second version 5").await?;
    let append_refused = match tlog::append(&log, &key, &other5) {
        Err(e) => {
            println!("== log: a second table for version 5: refused: {e:#}");
            true
        }
        Ok(a) => {
            println!("== log: a second table for version 5 ACCEPTED: {a}");
            false
        }
    };
    // ... forced into the log by hand (the operator holds the log's key),
    // the monitor finds it.
    let state = tlog::read(&log, &key.verifying_key())?;
    let mut raw: Vec<Vec<u8>> = state.entries.iter().map(LogEntry::encode).collect();
    let forged = blindmatch_server::bundle::read(&other5, false)?;
    raw.push(LogEntry::new(forged.manifest, forged.cosignatures)?.encode());
    tlog::write_log(&log, &key, &raw, 0)?;
    let report = blindmatch_audit::monitor::monitor(&blindmatch_audit::monitor::MonitorOptions {
        log: log.display().to_string(),
        trust: blindmatch_audit::monitor::LogTrust::Key(key.verifying_key()),
        operator: Some(op.operator),
        quorum: None,
        state: None,
        timeout: std::time::Duration::from_secs(10),
    })?;
    let found = report.findings.iter().any(|f| {
        matches!(
            f,
            blindmatch_audit::monitor::Finding::Equivocation { version: 5, .. }
        )
    });
    println!(
        "== monitor: {}",
        report
            .to_string()
            .trim_end()
            .replace('\n', "\n             ")
    );
    Ok(Some(
        witnessed.iter().all(|w| *w) && secret_refused && append_refused && found,
    ))
}

/// The next version of `base` with one more entry (`label`'s SHA-256).
async fn build_next(
    op: &Operator<'_>,
    base: &Path,
    name: &str,
    label: &str,
) -> anyhow::Result<PathBuf> {
    use sha2::Digest as _;
    let list = op.dir.join(format!("{name}.list"));
    let mut text = std::fs::read_to_string(op.list)?;
    text.push_str(&format!(
        "sha256 {}\n",
        hex::encode(sha2::Sha256::digest(label.as_bytes()))
    ));
    std::fs::write(&list, text)?;
    let out = op.dir.join(name);
    let opts = BuildOptions {
        default_type: None,
        k: None,
        load_factor: None,
        progress: false,
        signing_key: op.dir.join("operator.sign"),
        base: Some(base.to_owned()),
        decoys: 1,
        threshold: None,
    };
    let (l, k, o) = (list, op.key.to_owned(), out.clone());
    tokio::task::spawn_blocking(move || blindmatch_server::build(&l, &k, &o, &opts)).await??;
    Ok(out)
}
