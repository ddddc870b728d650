//! The versions of the table a server holds: the current one, which new
//! clients get, and the ones it replaced, still accepted for a grace period
//! so that vouchers made against them are evaluated against them (hot swap
//! and key rotation, SPEC Section 13.5).
//!
//! Each version owns its matcher, and with it the blinding key it was built
//! under. When a retired version's grace period ends it is dropped here;
//! submissions already accepted for it hold their own reference until they
//! are evaluated, and then the last reference goes and the key is zeroized.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_protocol::audit::CoSignature;
use blindmatch_protocol::manifest::{OperatorVerifyingKey, SignedManifest};
use blindmatch_protocol::merkle::MerkleTree;
use blindmatch_protocol::{BlindedTable, Matcher};

use crate::bundle::History;

/// One loaded version of the table.
pub(crate) struct Generation {
    pub(crate) table: Arc<BlindedTable>,
    pub(crate) tree: MerkleTree,
    pub(crate) manifest: SignedManifest,
    /// Organisations' co-signatures of the manifest, verified on load
    /// (with a log, the ones logged: see [`Generation::cosignatures`]).
    cosignatures: Vec<CoSignature>,
    /// With a transparency log: the version's entry, its proof, and the
    /// log's leaves for consistency proofs.
    pub(crate) log: Option<crate::tlog::Snapshot>,
    pub(crate) history: History,
    pub(crate) matcher: Arc<Matcher>,
    /// The table id in hex, as the store records it.
    pub(crate) id_hex: String,
}

impl Generation {
    /// Reads a table file and its key and checks they belong together, and,
    /// given the operator's verifying key, that the operator signed the
    /// table's manifest (a table clients would refuse is never served).
    ///
    /// With a transparency log, the version must be logged with this exact
    /// statement, and the log's checkpoint must meet the policy's quorum;
    /// the co-signatures served are the ones logged.
    pub(crate) fn load(
        table: &Path,
        key: &Path,
        operator: Option<&OperatorVerifyingKey>,
        log: Option<&crate::tlog::LogSettings>,
    ) -> anyhow::Result<Self> {
        let key_value = crate::keyfile::read(key)?;
        let (bundle, tree) = crate::bundle::read_with_tree(table, false)?;
        if let Some(op) = operator {
            SignedManifest::verify_encoded(&bundle.manifest.encode(), op).with_context(|| {
                format!(
                    "table file {}: its manifest is not signed by the operator key given (--operator-key); clients pinned to that key would refuse it",
                    table.display()
                )
            })?;
        }
        let mut cosignatures = bundle.cosignatures;
        let log = match log {
            None => None,
            Some(l) => {
                let version = bundle.manifest.manifest.version;
                let snapshot = crate::tlog::Snapshot::load(&l.dir, &l.policy, version)?;
                if snapshot.entry.manifest != bundle.manifest {
                    anyhow::bail!(
                        "table file {}: the log's entry for version {version} is another signed statement (another table, or re-signed): not the version logged",
                        table.display()
                    );
                }
                if snapshot.entry.cosignatures() != cosignatures.as_slice() {
                    tracing::warn!(
                        version,
                        logged = snapshot.entry.cosignatures().len(),
                        in_file = cosignatures.len(),
                        "the table file's co-signatures differ from the ones logged: serving the logged ones (a version is logged once)"
                    );
                    cosignatures = snapshot.entry.cosignatures().to_vec();
                }
                Some(snapshot)
            }
        };
        let matcher = Matcher::new(&key_value, &bundle.table, bundle.index)
            .with_context(|| format!("table {} and key {}", table.display(), key.display()))?;
        drop(key_value);
        Ok(Generation {
            id_hex: hex::encode(bundle.table.id().0),
            table: Arc::new(bundle.table),
            tree,
            manifest: bundle.manifest,
            cosignatures,
            log,
            history: bundle.history,
            matcher: Arc::new(matcher),
        })
    }

    pub(crate) fn version(&self) -> u64 {
        self.manifest.manifest.version
    }

    /// The co-signatures served.
    pub(crate) fn cosignatures(&self) -> &[CoSignature] {
        &self.cosignatures
    }

    /// The log's checkpoint note, if logged (what a reload compares).
    fn log_note(&self) -> Option<&blindmatch_protocol::tlog::Note> {
        self.log.as_ref().map(|l| l.checkpoint.note())
    }
}

struct State {
    current: Arc<Generation>,
    /// Replaced versions and when their grace period ends.
    retiring: Vec<(Arc<Generation>, Instant)>,
}

/// What a swap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The files hold the version already served.
    Unchanged {
        /// Its version number.
        version: u64,
    },
    /// The files hold the version already served with other co-signatures
    /// (`cosign --add`): served from now on.
    CoSigned {
        /// Its version number.
        version: u64,
        /// How many organisations co-signed it now.
        cosignatures: usize,
    },
    /// The files hold the version already served, and the transparency
    /// log a newer checkpoint (more entries, or new cosignatures): its
    /// proofs are served from now on.
    LogUpdated {
        /// Its version number.
        version: u64,
        /// The log's size now.
        log_size: u64,
    },
    /// A new version is current; the previous one is accepted until its
    /// grace period ends.
    Swapped {
        /// The version replaced.
        from: u64,
        /// The new version.
        to: u64,
        /// Whether the blinding key changed (a rotation).
        rotated: bool,
    },
}

/// The versions held, behind one lock taken briefly per request.
pub(crate) struct Generations {
    state: RwLock<State>,
}

impl Generations {
    pub(crate) fn new(current: Generation) -> Self {
        Generations {
            state: RwLock::new(State {
                current: Arc::new(current),
                retiring: Vec::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-written
        // (every write is a single assignment or push), so poison is ignored.
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.read().current)
    }

    /// The version with table id `id` that still accepts vouchers.
    pub(crate) fn accepting(&self, id: &[u8]) -> Option<Arc<Generation>> {
        let now = Instant::now();
        let s = self.read();
        if s.current.table.id().0[..] == *id {
            return Some(Arc::clone(&s.current));
        }
        s.retiring
            .iter()
            .find(|(g, until)| g.table.id().0[..] == *id && *until > now)
            .map(|(g, _)| Arc::clone(g))
    }

    /// Any version held with this id (hex), current or retiring, for
    /// evaluating stored submissions.
    pub(crate) fn by_hex(&self, id_hex: &str) -> Option<Arc<Generation>> {
        let s = self.read();
        std::iter::once(&s.current)
            .chain(s.retiring.iter().map(|(g, _)| g))
            .find(|g| g.id_hex == id_hex)
            .map(Arc::clone)
    }

    /// Every version held, current first: whose pending work this replica
    /// can evaluate.
    pub(crate) fn held(&self) -> Vec<Arc<Generation>> {
        let s = self.read();
        std::iter::once(&s.current)
            .chain(s.retiring.iter().map(|(g, _)| g))
            .map(Arc::clone)
            .collect()
    }

    /// Makes `next` current; the version it replaces is accepted for `grace`.
    ///
    /// # Errors
    /// If `next` is an older version than the current one.
    pub(crate) fn install(&self, next: Generation, grace: Duration) -> anyhow::Result<Swap> {
        let mut s = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.id_hex == s.current.id_hex {
            let version = s.current.version();
            if next.manifest != s.current.manifest {
                anyhow::bail!(
                    "the table file holds the table served (version {version}) under another signed statement: not swapped (a new version needs a table id of its own, SPEC 13.1)"
                );
            }
            if next.cosignatures == s.current.cosignatures {
                if next.log_note() == s.current.log_note() {
                    return Ok(Swap::Unchanged { version });
                }
                let log_size = next
                    .log
                    .as_ref()
                    .map_or(0, |l| l.checkpoint.checkpoint().size);
                s.current = Arc::new(next);
                return Ok(Swap::LogUpdated { version, log_size });
            }
            // The same table and key: only the co-signatures differ, and
            // submissions evaluated against either copy are alike.
            let cosignatures = next.cosignatures.len();
            s.current = Arc::new(next);
            return Ok(Swap::CoSigned {
                version,
                cosignatures,
            });
        }
        if next.version() <= s.current.version() {
            anyhow::bail!(
                "the table file holds version {}, not newer than the version {} served: not swapped",
                next.version(),
                s.current.version()
            );
        }
        let rotated = next.table.header().public_key != s.current.table.header().public_key;
        let swap = Swap::Swapped {
            from: s.current.version(),
            to: next.version(),
            rotated,
        };
        let old = std::mem::replace(&mut s.current, Arc::new(next));
        s.retiring.push((old, Instant::now() + grace));
        Ok(swap)
    }

    /// Drops retired versions whose grace period has ended; returns them
    /// (the caller's references are the last but those of submissions
    /// still being evaluated).
    pub(crate) fn expire(&self) -> Vec<Arc<Generation>> {
        let now = Instant::now();
        let mut s = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut gone = Vec::new();
        s.retiring.retain(|(g, until)| {
            let keep = *until > now;
            if !keep {
                gone.push(Arc::clone(g));
            }
            keep
        });
        gone
    }

    /// When the next retired version expires.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.read().retiring.iter().map(|(_, until)| *until).min()
    }
}
