//! Manifests: the operator's signed statement of a table version, and the
//! client's memory of the newest one it verified (SPEC Section 13.3).

use blindmatch_protocol::audit::{CoSignature, OrgName, Quorum};
use blindmatch_protocol::manifest::{
    Manifest as Statement, OperatorVerifyingKey, SIGNATURE_LEN, SignedManifest,
};
use blindmatch_protocol::tlog::policy::verify_consistency;
use blindmatch_protocol::tlog::{
    Checkpoint, Hash, LogEntry, LogError, LogPolicy, Note, TlogProof, VerifiedCheckpoint,
};
use blindmatch_protocol::{TableHeader, TableId};

use crate::Error;

/// A manifest whose signature verified under the pinned operator key.
///
/// Only the signed statement is trusted: a `GetManifest` response repeats
/// its fields (k, seed, table id, ...) for convenience, and a client that
/// used those copies would trust what nobody signed. Everything here comes
/// from the statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedManifest {
    signed: SignedManifest,
    /// The organisations whose co-signatures [`VerifiedManifest::require_quorum`]
    /// counted (empty until then).
    cosigners: Vec<(OperatorVerifyingKey, OrgName)>,
    /// The log checkpoint [`VerifiedManifest::require_logged`] proved the
    /// manifest's entry in, and the consistency proof the server sent from
    /// the checkpoint the client held.
    logged: Option<(VerifiedCheckpoint, Vec<Hash>)>,
}

impl VerifiedManifest {
    /// Verifies the Ed25519 signature over `statement` under `operator`
    /// (SPEC Section 13.3) and decodes it.
    ///
    /// # Errors
    /// [`Error::BadSignature`], or [`Error::Invalid`] for a statement that
    /// is signed but malformed (wrong length, magic or version).
    pub fn verify(
        statement: &[u8],
        signature: &[u8],
        operator: &OperatorVerifyingKey,
    ) -> Result<Self, Error> {
        SignedManifest::verify(statement, signature, operator)
            .map(VerifiedManifest::from_signed)
            .map_err(|e| match e {
                blindmatch_protocol::Error::BadSignature => Error::BadSignature,
                e => Error::Invalid {
                    what: "manifest",
                    source: e,
                },
            })
    }

    /// Threshold mode's parameters (t, s and the placement weights), for a
    /// version-2 statement (SPEC Section 14.8); `None` in version 1.
    pub fn threshold(&self) -> Option<&blindmatch_protocol::manifest::ThresholdParams> {
        self.signed.manifest.threshold.as_ref()
    }

    /// A manifest this crate verified before (a [`History`]'s record,
    /// verified when it was restored). Never public: a `VerifiedManifest`
    /// is made only by checking a signature.
    pub(crate) fn from_signed(signed: SignedManifest) -> Self {
        VerifiedManifest {
            signed,
            cosigners: Vec::new(),
            logged: None,
        }
    }

    /// Requires the manifest to be in the operator's transparency log
    /// (SPEC Section 16.6): `log_proof` (a `GetManifest` response's, a
    /// c2sp.org/tlog-proof) proves the entry of this statement with
    /// `cosignatures` (the response's, as served) under a checkpoint signed
    /// by the policy's log and cosigned by its quorum of witnesses.
    /// `log_consistency` is the response's consistency proof from the
    /// checkpoint this client holds ([`History::log_size`], sent in the
    /// request), which [`History::check`] verifies. A client with no log
    /// policy skips this step.
    ///
    /// # Errors
    /// [`Error::Log`]: no proof, a malformed or failing one, or a quorum not
    /// met (naming the witnesses that cosigned).
    pub fn require_logged(
        mut self,
        policy: &LogPolicy,
        log_proof: &[u8],
        log_consistency: &[Vec<u8>],
        cosignatures: &[CoSignature],
    ) -> Result<Self, Error> {
        if log_proof.is_empty() {
            return Err(Error::Log(LogError::Missing(
                "the server sent none for this manifest (it keeps no log, or an old server)",
            )));
        }
        let proof = TlogProof::parse(log_proof).map_err(Error::Log)?;
        let entry = LogEntry::new(self.signed, cosignatures.to_vec()).map_err(Error::Log)?;
        let checkpoint = policy
            .verify_inclusion(&proof, &entry)
            .map_err(Error::Log)?;
        let consistency = log_consistency
            .iter()
            .map(|h| <Hash>::try_from(h.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Malformed("a log consistency hash is not 32 bytes"))?;
        self.logged = Some((checkpoint, consistency));
        Ok(self)
    }

    /// The log checkpoint [`VerifiedManifest::require_logged`] proved this
    /// manifest in: its size, and which witnesses cosigned it.
    pub fn log_checkpoint(&self) -> Option<&VerifiedCheckpoint> {
        self.logged.as_ref().map(|(c, _)| c)
    }

    /// Requires at least `quorum.required()` of the organisations it pins
    /// to have co-signed this exact statement (SPEC Section 15.6), each
    /// counted once; `cosignatures` are the manifest's (a `GetManifest`
    /// response's). Returns the manifest with its co-signers
    /// ([`VerifiedManifest::cosigners`]). A client pinning no organisation
    /// skips this step.
    ///
    /// # Errors
    /// [`Error::BelowQuorum`], naming who co-signed and what was not
    /// counted.
    pub fn require_quorum(
        mut self,
        quorum: &Quorum,
        cosignatures: &[CoSignature],
    ) -> Result<Self, Error> {
        let count = quorum.count(&self.statement_bytes(), cosignatures);
        if !quorum.reached(&count) {
            let invalid: Vec<&str> = count.invalid.iter().map(OrgName::as_str).collect();
            return Err(Error::BelowQuorum {
                version: self.version(),
                found: count.counted.len(),
                required: quorum.required(),
                cosigners: count.names(),
                unpinned: count.unpinned,
                invalid: invalid.join(", "),
            });
        }
        self.cosigners = count.counted;
        Ok(self)
    }

    /// The pinned organisations whose co-signatures
    /// [`VerifiedManifest::require_quorum`] counted, with the names they
    /// signed under: who audited this table.
    pub fn cosigners(&self) -> &[(OperatorVerifyingKey, OrgName)] {
        &self.cosigners
    }

    /// The statement and signature.
    pub fn signed(&self) -> &SignedManifest {
        &self.signed
    }

    /// The decoded statement.
    pub fn statement(&self) -> &Statement {
        &self.signed.manifest
    }

    /// The version number (1 for a first build, +1 for each update).
    pub fn version(&self) -> u64 {
        self.signed.manifest.version
    }

    /// When the table was built, in seconds since the Unix epoch.
    pub fn created(&self) -> u64 {
        self.signed.manifest.created
    }

    /// The table id: what vouchers are bound to.
    pub fn table_id(&self) -> &TableId {
        &self.signed.manifest.table_id
    }

    /// The Merkle root over the table's chunks.
    pub fn digest(&self) -> &[u8; 32] {
        &self.signed.manifest.digest
    }

    /// The table's public parameters.
    pub fn header(&self) -> &TableHeader {
        &self.signed.manifest.header
    }

    /// The encoded statement, as signed.
    pub fn statement_bytes(&self) -> Vec<u8> {
        self.signed.manifest.encode().to_vec()
    }

    /// The signature.
    pub fn signature(&self) -> [u8; SIGNATURE_LEN] {
        self.signed.signature
    }

    /// Refuses a manifest built more than `max_age_seconds` before
    /// `now_unix_seconds` (the app reads its own clock). A server may keep
    /// serving an old version, never one older than the client has seen;
    /// this bounds how old. Set it above the operator's update interval. A
    /// clock behind the builder's is not an error.
    ///
    /// # Errors
    /// [`Error::TooOld`].
    pub fn check_age(&self, max_age_seconds: u64, now_unix_seconds: u64) -> Result<(), Error> {
        let age = now_unix_seconds.saturating_sub(self.created());
        if age > max_age_seconds {
            return Err(Error::TooOld {
                version: self.version(),
                age_seconds: age,
                max_seconds: max_age_seconds,
            });
        }
        Ok(())
    }
}

/// The newest manifest a client verified under one operator key: what
/// refuses a rollback and an equivocation (SPEC Section 13.3), and the base
/// for the next delta. The app persists [`History::encode`] where it keeps
/// its state and, if it can, syncs it between one user's devices.
#[derive(Clone, Debug)]
pub struct History {
    operator: OperatorVerifyingKey,
    newest: Option<SignedManifest>,
    /// The newest log checkpoint accepted (SPEC 16.6): every later one
    /// must extend it.
    log: Option<Note>,
}

/// Marks the log checkpoint in a saved history, after the manifest.
const LOG_RECORD: &[u8; 4] = b"BMHL";

impl History {
    /// An empty history pinned to `operator`.
    pub fn new(operator: OperatorVerifyingKey) -> Self {
        History {
            operator,
            newest: None,
            log: None,
        }
    }

    /// A history saved by [`History::encode`]. An empty record is an empty
    /// history.
    ///
    /// # Errors
    /// [`Error::History`] if the record does not verify under `operator`
    /// (damaged, or another operator's).
    pub fn restore(operator: OperatorVerifyingKey, saved: &[u8]) -> Result<Self, Error> {
        if saved.is_empty() {
            return Ok(Self::new(operator));
        }
        // The manifest, then (if the client checks a log) the checkpoint.
        let manifest_len = Statement::statement_len(saved)
            .map_or(saved.len(), |n| (n + SIGNATURE_LEN).min(saved.len()));
        let (manifest, rest) = saved.split_at(manifest_len);
        let newest = SignedManifest::verify_encoded(manifest, &operator).map_err(Error::History)?;
        let log = match rest {
            [] => None,
            [m0, m1, m2, m3, note @ ..] if [*m0, *m1, *m2, *m3] == *LOG_RECORD => {
                let note = Note::parse(note).map_err(|_| {
                    Error::History(blindmatch_protocol::Error::InvalidParameter {
                        name: "saved log checkpoint",
                        value: note.len() as u64,
                        allowed: "a signed checkpoint",
                    })
                })?;
                Some(note)
            }
            _ => {
                return Err(Error::History(blindmatch_protocol::Error::Length {
                    what: "saved history",
                    expected: manifest_len,
                    got: saved.len(),
                }));
            }
        };
        Ok(History {
            operator,
            newest: Some(newest),
            log,
        })
    }

    /// The record to persist: the newest manifest's statement and
    /// signature (empty if none), then the newest log checkpoint accepted
    /// if any. It holds nothing secret.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self
            .newest
            .as_ref()
            .map_or_else(Vec::new, SignedManifest::encode);
        if let (false, Some(note)) = (out.is_empty(), &self.log) {
            out.extend_from_slice(LOG_RECORD);
            out.extend_from_slice(note.encode().as_bytes());
        }
        out
    }

    /// The size of the newest log checkpoint accepted, 0 if none: what a
    /// `GetManifestRequest` sends as `log_size`, so that the server answers
    /// with a consistency proof from it.
    pub fn log_size(&self) -> u64 {
        self.log
            .as_ref()
            .and_then(|n| Checkpoint::parse(n.text()).ok())
            .map_or(0, |c| c.size)
    }

    /// The operator key this history is pinned to.
    pub fn operator(&self) -> &OperatorVerifyingKey {
        &self.operator
    }

    /// The newest manifest recorded.
    pub fn newest(&self) -> Option<VerifiedManifest> {
        self.newest.map(VerifiedManifest::from_signed)
    }

    /// Refuses `offered` if it is older than the newest manifest recorded,
    /// another statement under the same version number, or the same table
    /// under other parameters (mode, t, s, weights); otherwise returns the
    /// token that [`History::record`] takes once the table is in hand.
    ///
    /// Once this history has accepted a logged manifest (SPEC 16.6), every
    /// later one must be logged too ([`VerifiedManifest::require_logged`])
    /// under a checkpoint that extends the one accepted: its consistency
    /// proof must verify, so this client's view of the log only grows.
    ///
    /// # Errors
    /// [`Error::Rollback`], [`Error::Equivocation`], or [`Error::Log`] for
    /// a manifest not logged, a checkpoint behind the one accepted, or one
    /// that does not extend it (a forked log).
    pub fn check(&self, offered: &VerifiedManifest) -> Result<Accepted, Error> {
        if let Some(held) = &self.log {
            let Some((checkpoint, consistency)) = &offered.logged else {
                return Err(Error::Log(LogError::Missing(
                    "this client accepted logged versions before; check the log (require_logged) for every manifest",
                )));
            };
            let old = Checkpoint::parse(held.text()).map_err(Error::Log)?;
            let new = checkpoint.checkpoint();
            // Another log (the app pins a new one): nothing to be
            // consistent with. A server cannot get here: the checkpoint
            // passed the pinned policy, which names one log.
            let same_log = old.origin == new.origin;
            if same_log && new.size < old.size {
                return Err(Error::Log(LogError::Behind {
                    offered: new.size,
                    seen: old.size,
                }));
            }
            if same_log {
                verify_consistency(&old, new, consistency).map_err(Error::Log)?;
            }
        }
        if let Some(seen) = &self.newest {
            let seen = &seen.manifest;
            if offered.version() < seen.version {
                return Err(Error::Rollback {
                    offered: offered.version(),
                    seen: seen.version,
                });
            }
            // One statement per version, and one set of parameters per
            // table (SPEC 13.3 rule 4): a server that signs a second
            // statement for a version, or signs a table again in another
            // mode, could give one user a list (or a threshold) nobody
            // else has.
            let another_statement =
                offered.version() == seen.version && offered.statement() != seen;
            let other_parameters = *offered.table_id() == seen.table_id
                && offered.threshold() != seen.threshold.as_ref();
            if another_statement || other_parameters {
                return Err(Error::Equivocation {
                    version: offered.version(),
                    offered: hex::encode(offered.table_id().0),
                    seen: hex::encode(seen.table_id.0),
                });
            }
        }
        Ok(Accepted {
            manifest: offered.clone(),
            checked_against: self.log.clone(),
        })
    }

    /// Records the manifest [`History::check`] accepted as the newest, once
    /// its table is in hand, unless a newer one was recorded meanwhile. If
    /// the log checkpoint held changed since the check (another manifest
    /// recorded in between), nothing is recorded: this one was proved
    /// consistent with a checkpoint no longer held, and two checks against
    /// one checkpoint must not both land (they could be two forks). Check
    /// it again.
    pub fn record(&mut self, accepted: Accepted) {
        if accepted.checked_against != self.log {
            return;
        }
        let manifest = accepted.manifest;
        if let Some((checkpoint, _)) = &manifest.logged
            && checkpoint.checkpoint().size >= self.log_size()
        {
            self.log = Some(checkpoint.note().clone());
        }
        if self
            .newest
            .as_ref()
            .is_none_or(|n| n.manifest.version <= manifest.version())
        {
            self.newest = Some(manifest.signed);
        }
    }
}

/// A manifest a [`History`] checked and did not refuse: the only thing
/// [`History::record`] takes, so a manifest cannot be recorded without
/// having been checked against the history first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "record it with History::record once the table is in hand"]
pub struct Accepted {
    manifest: VerifiedManifest,
    /// The log checkpoint held when it was checked.
    checked_against: Option<Note>,
}

impl Accepted {
    /// The manifest accepted.
    pub fn manifest(&self) -> &VerifiedManifest {
        &self.manifest
    }
}
