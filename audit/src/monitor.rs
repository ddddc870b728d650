//! `blindmatch-audit monitor` (SPEC Section 16.7): reads an operator's
//! whole transparency log from its tiles and reports what no honest log
//! holds: two tables for one version, a version going backwards, an entry
//! whose signatures do not verify or whose co-signatures do not meet a
//! quorum, a checkpoint that does not extend the one seen on the previous
//! run, and files that do not agree with each other.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use blindmatch_protocol::OperatorVerifyingKey;
use blindmatch_protocol::audit::Quorum;
use blindmatch_protocol::manifest::SignedManifest;
use blindmatch_protocol::merkle;
use blindmatch_protocol::tlog::{Checkpoint, LogPolicy, LogVerifyingKey, Note};
use blindmatch_server::tlog::{HttpLog, LogFiles, read_from};

/// What the monitor checks a log against.
pub struct MonitorOptions {
    /// The log: a directory, or the URL prefix it is published under.
    pub log: String,
    /// The log's key (and, with a policy, the witnesses' quorum).
    pub trust: LogTrust,
    /// The operator's key: every entry's statement must be signed by it.
    pub operator: Option<OperatorVerifyingKey>,
    /// Organisations and how many must have co-signed each entry.
    pub quorum: Option<Quorum>,
    /// Where the newest checkpoint checked is kept between runs.
    pub state: Option<PathBuf>,
    /// Each HTTP request's timeout.
    pub timeout: Duration,
}

/// The log's key alone, or a policy (the key, witnesses and a quorum).
pub enum LogTrust {
    /// The log's verifier key.
    Key(LogVerifyingKey),
    /// A policy: the checkpoint must also meet its witness quorum.
    Policy(LogPolicy),
}

impl LogTrust {
    fn key(&self) -> &LogVerifyingKey {
        match self {
            LogTrust::Key(k) => k,
            LogTrust::Policy(p) => p.log(),
        }
    }
}

/// Something no honest log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Two entries for one version with different tables (or terms).
    Equivocation {
        /// The version.
        version: u64,
        /// The entries.
        first: u64,
        /// The later one.
        second: u64,
        /// Their table ids (hex).
        tables: (String, String),
    },
    /// The same statement logged twice (a version is logged once, SPEC
    /// 16.2).
    Twice {
        /// The version.
        version: u64,
        /// The entries.
        first: u64,
        /// The later one.
        second: u64,
    },
    /// An entry whose version is not above every version before it.
    Backwards {
        /// The entry.
        index: u64,
        /// Its version.
        version: u64,
        /// The highest version before it.
        previous: u64,
    },
    /// An entry whose statement the operator's key did not sign.
    OperatorSignature {
        /// The entry.
        index: u64,
        /// Its version.
        version: u64,
    },
    /// A co-signature in an entry that does not verify over its statement.
    BadCoSignature {
        /// The entry.
        index: u64,
        /// Its version.
        version: u64,
        /// The name it carries.
        org: String,
    },
    /// An entry whose co-signatures do not meet the quorum given.
    BelowQuorum {
        /// The entry.
        index: u64,
        /// Its version.
        version: u64,
        /// Pinned organisations that co-signed.
        found: usize,
        /// How many the quorum requires.
        required: usize,
    },
    /// The log's checkpoint does not extend the one the previous run saw.
    Inconsistent {
        /// The size seen before.
        old: u64,
        /// The size now.
        new: u64,
    },
    /// The log's files do not agree with each other or with its checkpoint.
    Files(String),
    /// The checkpoint does not meet the policy's witness quorum.
    Witnesses(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Equivocation {
                version,
                first,
                second,
                tables,
            } => write!(
                f,
                "EQUIVOCATION: version {version} is logged twice, as entries {first} and {second}, with tables {} and {}",
                tables.0, tables.1
            ),
            Finding::Twice {
                version,
                first,
                second,
            } => write!(
                f,
                "version {version} is logged twice with one statement, as entries {first} and {second} (a version is logged once)"
            ),
            Finding::Backwards {
                index,
                version,
                previous,
            } => write!(
                f,
                "entry {index}: version {version} after version {previous} (versions must only grow)"
            ),
            Finding::OperatorSignature { index, version } => write!(
                f,
                "entry {index} (version {version}): the statement is not signed by the operator key given"
            ),
            Finding::BadCoSignature {
                index,
                version,
                org,
            } => write!(
                f,
                "entry {index} (version {version}): the co-signature of {org} does not verify over its statement"
            ),
            Finding::BelowQuorum {
                index,
                version,
                found,
                required,
            } => write!(
                f,
                "entry {index} (version {version}): {found} of the pinned organisations co-signed, {required} required"
            ),
            Finding::Inconsistent { old, new } => write!(
                f,
                "FORK: the log's checkpoint of size {new} does not extend the checkpoint of size {old} this monitor saw before"
            ),
            Finding::Files(why) => write!(f, "the log's files do not agree: {why}"),
            Finding::Witnesses(why) => write!(f, "witnesses: {why}"),
        }
    }
}

/// What a run found.
#[derive(Debug)]
pub struct MonitorReport {
    /// The log's origin.
    pub origin: String,
    /// Entries read (0 if the files could not be).
    pub size: u64,
    /// The size the previous run saw, if any.
    pub previous: Option<u64>,
    /// The lowest and highest version logged.
    pub versions: Option<(u64, u64)>,
    /// The policy's witnesses that cosigned, with a policy.
    pub witnesses: Option<Vec<String>>,
    /// What no honest log holds; empty if nothing.
    pub findings: Vec<Finding>,
}

impl fmt::Display for MonitorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log {}: {} entries", self.origin, self.size)?;
        if let Some((lo, hi)) = self.versions {
            write!(f, " (table versions {lo} to {hi})")?;
        }
        if let Some(p) = self.previous {
            write!(
                f,
                "; {} new since the last run (size {p})",
                self.size.saturating_sub(p)
            )?;
        }
        if let Some(w) = &self.witnesses {
            write!(
                f,
                "; cosigned by {}",
                if w.is_empty() {
                    "no pinned witness".to_owned()
                } else {
                    w.join(", ")
                }
            )?;
        }
        writeln!(f)?;
        if self.findings.is_empty() {
            writeln!(f, "nothing found")
        } else {
            for x in &self.findings {
                writeln!(f, "  {x}")?;
            }
            writeln!(f, "{} finding(s)", self.findings.len())
        }
    }
}

/// Reads the whole log and checks it.
///
/// # Errors
/// If the log's checkpoint cannot be fetched, or the state file cannot be
/// read or written. What the log holds is reported as findings, not errors.
pub fn monitor(options: &MonitorOptions) -> anyhow::Result<MonitorReport> {
    let key = options.trust.key();
    let files: Box<dyn LogFiles> =
        if options.log.starts_with("http://") || options.log.starts_with("https://") {
            Box::new(HttpLog::new(&options.log, options.timeout)?)
        } else {
            Box::new(PathBufFiles(PathBuf::from(&options.log)))
        };
    // The checkpoint first: if it cannot be fetched, that is an error, not
    // a finding about the log.
    files
        .get("checkpoint")
        .with_context(|| format!("the log's checkpoint at {}", files.describe("checkpoint")))?;
    let previous = match &options.state {
        Some(p) if p.exists() => Some(read_state(p)?),
        _ => None,
    };
    let mut report = MonitorReport {
        origin: key.name().to_owned(),
        size: 0,
        previous: previous.as_ref().map(|c| c.size),
        versions: None,
        witnesses: None,
        findings: Vec::new(),
    };
    let state = match read_from(files.as_ref(), key) {
        Ok(s) => s,
        Err(e) => {
            report.findings.push(Finding::Files(format!("{e:#}")));
            return Ok(report);
        }
    };
    report.size = state.checkpoint.size;
    if let LogTrust::Policy(policy) = &options.trust {
        match policy.verify_checkpoint(&state.note) {
            Ok(v) => report.witnesses = Some(v.witnesses().to_vec()),
            Err(e) => report.findings.push(Finding::Witnesses(e.to_string())),
        }
    }

    // Consistency with the previous run: this monitor holds the whole tree,
    // so the old root is recomputed from the first `old` leaves.
    let mut consistent = true;
    if let Some(old) = &previous {
        let extends = usize::try_from(old.size)
            .ok()
            .filter(|&m| m <= state.leaves.len())
            .is_some_and(|m| merkle::root(&state.leaves[..m]) == old.root);
        if !extends {
            consistent = false;
            report.findings.push(Finding::Inconsistent {
                old: old.size,
                new: state.checkpoint.size,
            });
        }
    }

    let mut seen: Vec<(u64, u64, &SignedManifest)> = Vec::new();
    let mut highest: Option<u64> = None;
    for (i, entry) in state.entries.iter().enumerate() {
        let index = i as u64;
        let version = entry.version();
        let statement = entry.manifest.manifest.encode();
        if let Some((_, first, other)) = seen.iter().find(|(v, _, _)| *v == version) {
            if **other == entry.manifest {
                report.findings.push(Finding::Twice {
                    version,
                    first: *first,
                    second: index,
                });
            } else {
                report.findings.push(Finding::Equivocation {
                    version,
                    first: *first,
                    second: index,
                    tables: (
                        hex::encode(other.manifest.table_id.0),
                        hex::encode(entry.manifest.manifest.table_id.0),
                    ),
                });
            }
        } else if let Some(h) = highest.filter(|h| version < *h) {
            report.findings.push(Finding::Backwards {
                index,
                version,
                previous: h,
            });
        }
        seen.push((version, index, &entry.manifest));
        highest = highest.max(Some(version));
        if let Some(op) = &options.operator
            && SignedManifest::verify(&statement, &entry.manifest.signature, op).is_err()
        {
            report
                .findings
                .push(Finding::OperatorSignature { index, version });
        }
        for c in entry.cosignatures() {
            if !c.verifies(&statement) {
                report.findings.push(Finding::BadCoSignature {
                    index,
                    version,
                    org: c.name.to_string(),
                });
            }
        }
        if let Some(q) = &options.quorum {
            let count = q.count(&statement, entry.cosignatures());
            if !q.reached(&count) {
                report.findings.push(Finding::BelowQuorum {
                    index,
                    version,
                    found: count.counted.len(),
                    required: q.required(),
                });
            }
        }
    }
    let versions: Vec<u64> = state.entries.iter().map(|e| e.version()).collect();
    report.versions = versions
        .iter()
        .min()
        .zip(versions.iter().max())
        .map(|(a, b)| (*a, *b));
    // The newest consistent checkpoint is kept: after a fork the one seen
    // before stays, as evidence, and every later run reports the fork.
    if let Some(p) = &options.state
        && consistent
    {
        write_state(p, &state.note)?;
    }
    Ok(report)
}

struct PathBufFiles(PathBuf);

impl LogFiles for PathBufFiles {
    fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.0.as_path().get(path)
    }

    fn describe(&self, path: &str) -> String {
        self.0.as_path().describe(path)
    }
}

fn read_state(path: &Path) -> anyhow::Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("monitor state {}", path.display()))?;
    let note = Note::parse(&bytes).with_context(|| format!("monitor state {}", path.display()))?;
    Checkpoint::parse(note.text()).with_context(|| format!("monitor state {}", path.display()))
}

fn write_state(path: &Path, note: &Note) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("monitor state {}", path.display()))?;
    std::fs::write(tmp.path(), note.encode())
        .with_context(|| format!("monitor state {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("monitor state {}", path.display()))?;
    Ok(())
}
