//! Two real witnesses (torchwood's litewitness and transparency-dev's
//! omniwitness), started by `scripts/witnesses.sh` for one log, as separate
//! processes: nothing in the tests plays a witness.
//!
//! Without them (`scripts/witnesses.sh install` not run) a test says so on
//! stderr and passes as skipped; under CI (`CI` set) it fails instead.

#![allow(dead_code, reason = "each test crate uses a part")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/witnesses.sh")
}

/// The witnesses of one log; stopped when dropped.
pub(crate) struct Witnesses {
    dir: PathBuf,
    /// The policy lines `witness NAME VKEY URL`, one per witness.
    pub(crate) lines: Vec<String>,
}

impl Witnesses {
    /// Starts both for the log `origin` with verifier key `vkey`, state in
    /// `dir`; `None` (after saying so) if they are not built.
    pub(crate) fn start(test: &str, dir: &Path, origin: &str, vkey: &str) -> Option<Self> {
        let built = Command::new(script()).arg("bin").output().unwrap();
        if !built.status.success() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: the witnesses are not built under CI: .ci/run runs scripts/witnesses.sh install"
            );
            eprintln!(
                "SKIPPED {test}: no witnesses (litewitness, omniwitness). Run: scripts/witnesses.sh install"
            );
            return None;
        }
        let out = Command::new(script())
            .args([
                "start".as_ref(),
                dir.as_os_str(),
                origin.as_ref(),
                vkey.as_ref(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "starting the witnesses: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("witness "))
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(lines.len(), 2, "two witnesses");
        Some(Witnesses {
            dir: dir.to_owned(),
            lines,
        })
    }

    /// Stops one witness (`lite` or `omni`), as if it went down.
    pub(crate) fn kill(&self, name: &str) {
        let status = Command::new(script())
            .args(["kill".as_ref(), self.dir.as_os_str(), name.as_ref()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A policy for `log_vkey` with both witnesses and `quorum` (a policy
    /// line's argument: `none`, a name, or a group defined in `groups`).
    pub(crate) fn policy(&self, log_vkey: &str, groups: &str, quorum: &str) -> String {
        format!(
            "log {log_vkey}\n{}\n{groups}quorum {quorum}\n",
            self.lines.join("\n")
        )
    }
}

impl Drop for Witnesses {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop".as_ref(), self.dir.as_os_str()])
            .status();
    }
}
