//! # blindmatch-uniffi
//!
//! The blindmatch client core ([`blindmatch_client_core`]) for Kotlin, Swift
//! and Python, through uniffi's proc macros: one interface, three
//! languages. This layer only adapts types: bytes in and out, objects for
//! state, one error enum. Every decision is the core's, so a Kotlin app and
//! a Python script refuse the same manifest for the same reason.
//!
//! Objects are shared (`Arc`) across the boundary, so the ones with state
//! that a step consumes ([`TableDownload`], [`DeltaDownload`]) keep it behind
//! a mutex and answer [`BlindmatchError::State`] when used after finishing.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use blindmatch_client_core as core;

uniffi::setup_scaffolding!("blindmatch");

/// Why a call was refused: one variant per [`core::ErrorKind`], each with
/// the core's message in `reason` (the same words as every other binding)
/// and, where the kind has them, its fields. Each variant is an exception
/// class (Python), a subclass of the sealed `BlindmatchException` (Kotlin)
/// or an enum case (Swift). Messages never contain an item, a key or
/// associated data.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum BlindmatchError {
    /// The manifest's signature does not verify under the pinned operator key.
    #[error("{reason}")]
    BadSignature {
        /// The core's message.
        reason: String,
    },
    /// A version older than one verified before (a rollback).
    #[error("{reason}")]
    Rollback {
        /// The core's message.
        reason: String,
        /// The version offered.
        offered: u64,
        /// The newest version seen.
        seen: u64,
    },
    /// Another signed statement under a version number seen before, or a
    /// table seen before under other terms (equivocation).
    #[error("{reason}")]
    Equivocation {
        /// The core's message.
        reason: String,
        /// The version number.
        version: u64,
        /// The table id offered (hex).
        offered: String,
        /// The table id seen before (hex).
        seen: String,
    },
    /// The manifest is older than the app allows.
    #[error("{reason}")]
    TooOld {
        /// The core's message.
        reason: String,
        /// Its version.
        version: u64,
        /// Its age.
        age_seconds: u64,
        /// The bound.
        max_seconds: u64,
    },
    /// Fewer of the organisations the app pins co-signed the table than
    /// it requires (the manifest's quorum check, `require_quorum` in Python,
    /// `requireQuorum` in Kotlin and Swift): not audited by enough of
    /// them.
    #[error("{reason}")]
    Quorum {
        /// The core's message: who co-signed, and what was not counted.
        reason: String,
        /// Distinct pinned organisations whose co-signature verified.
        found: u64,
        /// How many are required.
        required: u64,
    },
    /// The manifest is not proved to be in the operator's transparency log
    /// under a checkpoint the app's `LogPolicy` accepts (no proof, a proof
    /// that fails, too few witnesses), or the log's checkpoint does not
    /// extend the one accepted before (a forked log). The table held stays.
    #[error("{reason}")]
    Log {
        /// The core's message: what was missing or failed.
        reason: String,
    },
    /// A chunk, table, delta or statement is not what the signed manifest
    /// describes; nothing of it was kept.
    #[error("{reason}")]
    Invalid {
        /// The core's message: what was checked and why it failed.
        reason: String,
    },
    /// A message is malformed (a proof hash not 32 bytes, a cut delta index,
    /// a delta larger than the table).
    #[error("{reason}")]
    Malformed {
        /// The core's message.
        reason: String,
    },
    /// An item, an operator key, a voucher id or associated data the app
    /// gave is not usable (bad hex, wrong length, associated data over 1 KiB).
    #[error("{reason}")]
    Input {
        /// The core's message.
        reason: String,
    },
    /// The saved history does not verify under the operator key.
    #[error("{reason}")]
    History {
        /// The core's message.
        reason: String,
    },
    /// A submission of the wrong mode for the table: version-1 items for a
    /// table in threshold mode (submit under an account: `account_submission`
    /// in Python, `accountSubmission` in Kotlin and Swift), or an
    /// account submission for a version-1 table or one opened without its
    /// manifest.
    #[error("{reason}")]
    Mode {
        /// The core's message.
        reason: String,
    },
    /// An account secret the app restored is damaged, or the parameters
    /// for a new one are out of range.
    #[error("{reason}")]
    Account {
        /// The core's message.
        reason: String,
    },
    /// An object was used after the step that consumes it (a download
    /// finished twice).
    #[error("{reason}")]
    State {
        /// The core's message.
        reason: String,
    },
}

impl From<core::Error> for BlindmatchError {
    /// The one conversion: the kind picks the variant, the message is the
    /// core's.
    fn from(e: core::Error) -> Self {
        use core::ErrorKind as K;
        let reason = e.to_string();
        match e {
            core::Error::Rollback { offered, seen } => BlindmatchError::Rollback {
                reason,
                offered,
                seen,
            },
            core::Error::Equivocation {
                version,
                offered,
                seen,
            } => BlindmatchError::Equivocation {
                reason,
                version,
                offered,
                seen,
            },
            core::Error::TooOld {
                version,
                age_seconds,
                max_seconds,
            } => BlindmatchError::TooOld {
                reason,
                version,
                age_seconds,
                max_seconds,
            },
            core::Error::BelowQuorum {
                found, required, ..
            } => BlindmatchError::Quorum {
                reason,
                found: u64::try_from(found).unwrap_or(u64::MAX),
                required: u64::try_from(required).unwrap_or(u64::MAX),
            },
            e => match e.kind() {
                K::BadSignature => BlindmatchError::BadSignature { reason },
                K::Log => BlindmatchError::Log { reason },
                K::Malformed => BlindmatchError::Malformed { reason },
                K::Input => BlindmatchError::Input { reason },
                K::History => BlindmatchError::History { reason },
                K::Mode => BlindmatchError::Mode { reason },
                K::Account => BlindmatchError::Account { reason },
                K::State => BlindmatchError::State { reason },
                // Invalid, and a kind a newer core adds (the test that
                // maps every kind fails until it has its own variant).
                _ => BlindmatchError::Invalid { reason },
            },
        }
    }
}

impl From<blindmatch_protocol::ItemError> for BlindmatchError {
    fn from(e: blindmatch_protocol::ItemError) -> Self {
        core::Error::from(e).into()
    }
}

impl BlindmatchError {
    /// The [`core::ErrorKind`] name of this variant.
    pub fn kind(&self) -> &'static str {
        match self {
            BlindmatchError::BadSignature { .. } => "BadSignature",
            BlindmatchError::Rollback { .. } => "Rollback",
            BlindmatchError::Equivocation { .. } => "Equivocation",
            BlindmatchError::TooOld { .. } => "TooOld",
            BlindmatchError::Quorum { .. } => "Quorum",
            BlindmatchError::Log { .. } => "Log",
            BlindmatchError::Invalid { .. } => "Invalid",
            BlindmatchError::Malformed { .. } => "Malformed",
            BlindmatchError::Input { .. } => "Input",
            BlindmatchError::History { .. } => "History",
            BlindmatchError::Mode { .. } => "Mode",
            BlindmatchError::Account { .. } => "Account",
            BlindmatchError::State { .. } => "State",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot happen while the lock is held (the core does not
    // panic), and a poisoned state would still be consistent: take it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn finished(what: &'static str) -> BlindmatchError {
    core::Error::Finished(what).into()
}

/// The kinds of hash an item can be (SPEC Section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ItemType {
    /// MD5, 16 bytes.
    Md5,
    /// SHA-1, 20 bytes.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
    /// PDQ, 32 bytes, matched exactly.
    Pdq,
    /// 1 to 64 opaque bytes: any other hash.
    Bytes,
}

impl From<ItemType> for core::ItemType {
    fn from(t: ItemType) -> Self {
        match t {
            ItemType::Md5 => core::ItemType::Md5,
            ItemType::Sha1 => core::ItemType::Sha1,
            ItemType::Sha256 => core::ItemType::Sha256,
            ItemType::Pdq => core::ItemType::Pdq,
            ItemType::Bytes => core::ItemType::Bytes,
        }
    }
}

/// One item to check: its hash and what the server records with it if it
/// is on the list (at most 1 KiB; the server sees it only on a match).
#[derive(Clone, Debug, uniffi::Record)]
pub struct ItemToCheck {
    /// The kind of hash.
    pub item_type: ItemType,
    /// The hash value.
    pub value: Vec<u8>,
    /// Associated data, at most 1,024 bytes.
    pub associated_data: Vec<u8>,
}

/// One upload in threshold mode: the platform's 16-byte name for it (the
/// same on every retry, so it counts once toward t), its hash and its
/// associated data (sealed under the account key: the server reads it only
/// once the account holds t matches).
#[derive(Clone, Debug, uniffi::Record)]
pub struct Upload {
    /// 16 bytes naming the upload among the account's uploads (the first
    /// 16 bytes of a hash of the app's asset id, say).
    pub voucher_id: Vec<u8>,
    /// The kind of hash.
    pub item_type: ItemType,
    /// The hash value.
    pub value: Vec<u8>,
    /// Associated data, at most 1,024 bytes.
    pub associated_data: Vec<u8>,
}

/// One `SubmitRequest`: send these fields as they are, and the same again
/// on every retry, so the server stores the batch once.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Submission {
    /// `submission_id`: 16 random bytes.
    pub id: Vec<u8>,
    /// `table_id`: the table the vouchers are bound to.
    pub table_id: Vec<u8>,
    /// `account_id`: empty in protocol version 1, the account's id in
    /// threshold mode.
    pub account_id: Vec<u8>,
    /// `vouchers`, each of the same length.
    pub vouchers: Vec<Vec<u8>>,
    /// The batch's digest (SPEC 12.3), to log instead of its content.
    pub digest: Vec<u8>,
}

/// The operator's Ed25519 verifying key, pinned in the app.
#[derive(uniffi::Object)]
pub struct OperatorKey(blindmatch_protocol::OperatorVerifyingKey);

#[uniffi::export]
impl OperatorKey {
    /// From 64 hex digits, as `blindmatch-server keygen --signing` prints it.
    #[uniffi::constructor]
    pub fn from_hex(hex: String) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(OperatorKey(core::operator_key_from_hex(&hex)?)))
    }

    /// From its 32 bytes.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(OperatorKey(core::operator_key(&bytes)?)))
    }

    /// Its 32 bytes, in hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
}

/// A list organisation's co-signature of a manifest's statement, as a
/// `GetManifest` response carries it (`Manifest.cosignatures`, SPEC 15.5).
#[derive(uniffi::Record)]
pub struct CoSignature {
    /// The organisation's verifying key (32 bytes).
    pub org_key: Vec<u8>,
    /// The name it signed under.
    pub name: String,
    /// The signature (64 bytes).
    pub signature: Vec<u8>,
}

/// The list organisations an app pins and how many of them must have
/// co-signed a table (SPEC 15.6).
#[derive(uniffi::Object)]
pub struct Quorum(core::Quorum);

#[uniffi::export]
impl Quorum {
    /// At least `required` of `orgs` (a key given twice counts once).
    ///
    /// Raises `Input` unless 1 ≤ `required` ≤ the number of distinct keys.
    #[uniffi::constructor]
    pub fn new(orgs: Vec<Arc<OperatorKey>>, required: u32) -> Result<Arc<Self>, BlindmatchError> {
        let keys: Vec<_> = orgs.iter().map(|k| k.0).collect();
        let required = usize::try_from(required).unwrap_or(usize::MAX);
        Ok(Arc::new(Quorum(core::quorum(&keys, required)?)))
    }
}

/// The operator's transparency log an app pins (SPEC 16.6): the log's key,
/// the witnesses' keys and the quorum of them that must have cosigned.
#[derive(uniffi::Object)]
pub struct LogPolicy(core::LogPolicy);

#[uniffi::export]
impl LogPolicy {
    /// A policy file's text (c2sp.org/tlog-policy: `log VKEY`, `witness
    /// NAME VKEY`, `group ...`, `quorum ...`).
    ///
    /// Raises `Log` naming the line that is wrong.
    #[uniffi::constructor]
    pub fn parse(text: String) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(LogPolicy(core::log_policy(&text)?)))
    }

    /// The log `log_key` (`origin+keyid+key`) with `quorum` of the
    /// witnesses `witness_keys` (`name+keyid+key`) required.
    ///
    /// Raises `Log` for a key that does not parse or a quorum out of range.
    #[uniffi::constructor]
    pub fn from_keys(
        log_key: String,
        witness_keys: Vec<String>,
        quorum: u32,
    ) -> Result<Arc<Self>, BlindmatchError> {
        let keys: Vec<&str> = witness_keys.iter().map(String::as_str).collect();
        let quorum = usize::try_from(quorum).unwrap_or(usize::MAX);
        Ok(Arc::new(LogPolicy(core::log_policy_from_keys(
            &log_key, &keys, quorum,
        )?)))
    }
}

/// A manifest whose signature verified under the operator key. Only the
/// signed statement is used: the other fields of a `GetManifest` response
/// are copies nobody signed.
#[derive(uniffi::Object)]
pub struct Manifest(core::VerifiedManifest);

#[uniffi::export]
impl Manifest {
    /// Verifies `Manifest.signature` over `Manifest.statement`.
    ///
    /// Raises `BadSignature`, or `Invalid` for a malformed statement.
    #[uniffi::constructor]
    pub fn verify(
        statement: Vec<u8>,
        signature: Vec<u8>,
        operator: Arc<OperatorKey>,
    ) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(Manifest(core::VerifiedManifest::verify(
            &statement,
            &signature,
            &operator.0,
        )?)))
    }

    /// Requires `quorum` of the organisations it pins to have co-signed
    /// this exact statement; `cosignatures` are the response's
    /// (`Manifest.cosignatures`). Returns the manifest with its co-signers
    /// (`cosigners()`); use it from here on.
    ///
    /// Raises `Quorum`, saying how many co-signed and who.
    pub fn require_quorum(
        &self,
        quorum: Arc<Quorum>,
        cosignatures: Vec<CoSignature>,
    ) -> Result<Arc<Manifest>, BlindmatchError> {
        let cosignatures = core::cosignatures(
            cosignatures
                .iter()
                .map(|c| (&c.org_key[..], c.name.as_str(), &c.signature[..])),
        );
        Ok(Arc::new(Manifest(
            self.0.clone().require_quorum(&quorum.0, &cosignatures)?,
        )))
    }

    /// Requires the manifest to be in the operator's transparency log under
    /// a checkpoint `policy` accepts: `log_proof` and `log_consistency` are
    /// the response's (`Manifest.log_proof`, `Manifest.log_consistency`,
    /// for the request's `log_size`, the history's log size), `cosignatures`
    /// its co-signatures as served. Returns the manifest to use from here
    /// on; `History.check` then requires its checkpoint to extend the one
    /// accepted before.
    ///
    /// Raises `Log`: no proof, one that fails, or too few witnesses.
    pub fn require_logged(
        &self,
        policy: Arc<LogPolicy>,
        log_proof: String,
        log_consistency: Vec<Vec<u8>>,
        cosignatures: Vec<CoSignature>,
    ) -> Result<Arc<Manifest>, BlindmatchError> {
        let cosignatures = core::cosignatures(
            cosignatures
                .iter()
                .map(|c| (&c.org_key[..], c.name.as_str(), &c.signature[..])),
        );
        Ok(Arc::new(Manifest(self.0.clone().require_logged(
            &policy.0,
            log_proof.as_bytes(),
            &log_consistency,
            &cosignatures,
        )?)))
    }

    /// The size of the log checkpoint `require_logged` proved this
    /// manifest in (none before `require_logged`).
    pub fn log_size(&self) -> Option<u64> {
        self.0.log_checkpoint().map(|c| c.checkpoint().size)
    }

    /// The witnesses whose cosignatures of that checkpoint verified, by
    /// their names in the policy.
    pub fn log_witnesses(&self) -> Vec<String> {
        self.0
            .log_checkpoint()
            .map(|c| c.witnesses().to_vec())
            .unwrap_or_default()
    }

    /// The names of the organisations `require_quorum` counted: who
    /// audited this table (empty before `require_quorum`).
    pub fn cosigners(&self) -> Vec<String> {
        self.0
            .cosigners()
            .iter()
            .map(|(_, name)| name.as_str().to_owned())
            .collect()
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.0.version()
    }

    /// Threshold mode's t (SPEC Section 14), or none for a table in
    /// protocol version 1. With a t, make submissions under an `Account`
    /// (the table's account submission).
    pub fn threshold(&self) -> Option<u16> {
        self.0.threshold().map(|p| p.threshold())
    }

    /// Threshold mode's synthetic bound s (SPEC Section 14.3), or none for
    /// a table in protocol version 1. An account's synthetic rate should
    /// stay at or below s / 2N for the largest number N of uploads it sends
    /// under one threshold (README, "Choosing the synthetic rate").
    pub fn synthetic_bound(&self) -> Option<u16> {
        self.0.threshold().map(|p| p.synthetic_bound())
    }

    /// When the table was built (seconds since the Unix epoch).
    pub fn created(&self) -> u64 {
        self.0.created()
    }

    /// The table id (32 bytes): `DownloadTableRequest.table_id`.
    pub fn table_id(&self) -> Vec<u8> {
        self.0.table_id().0.to_vec()
    }

    /// The Merkle root over the table's chunks.
    pub fn digest(&self) -> Vec<u8> {
        self.0.digest().to_vec()
    }

    /// Positions per item (k).
    pub fn k(&self) -> u8 {
        self.0.header().k
    }

    /// Slots in the table.
    pub fn n_slots(&self) -> u32 {
        self.0.header().n_slots
    }

    /// Bytes of slots to download.
    pub fn table_len(&self) -> u64 {
        self.0.header().slots_len()
    }

    /// The signed statement.
    pub fn statement(&self) -> Vec<u8> {
        self.0.statement_bytes()
    }

    /// The signature.
    pub fn signature(&self) -> Vec<u8> {
        self.0.signature().to_vec()
    }

    /// Raises `TooOld` if the table was built more than `max_age_seconds`
    /// before `now_unix_seconds`.
    pub fn check_age(
        &self,
        max_age_seconds: u64,
        now_unix_seconds: u64,
    ) -> Result<(), BlindmatchError> {
        Ok(self.0.check_age(max_age_seconds, now_unix_seconds)?)
    }
}

/// The newest manifest verified: refuses rollbacks and equivocation.
/// Persist [`History::encode`] and restore it at the next start.
#[derive(uniffi::Object)]
pub struct History(Mutex<core::History>);

#[uniffi::export]
impl History {
    /// An empty history pinned to `operator`.
    #[uniffi::constructor]
    pub fn new(operator: Arc<OperatorKey>) -> Arc<Self> {
        Arc::new(History(Mutex::new(core::History::new(operator.0))))
    }

    /// A history saved with `encode()` (empty bytes: an empty history).
    /// Raises `History` if it does not verify under `operator`.
    #[uniffi::constructor]
    pub fn restore(
        operator: Arc<OperatorKey>,
        saved: Vec<u8>,
    ) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(History(Mutex::new(core::History::restore(
            operator.0, &saved,
        )?))))
    }

    /// The record to persist (nothing secret in it).
    pub fn encode(&self) -> Vec<u8> {
        lock(&self.0).encode()
    }

    /// The size of the newest log checkpoint accepted (0 if none): send it
    /// as `GetManifestRequest.log_size`.
    pub fn log_size(&self) -> u64 {
        lock(&self.0).log_size()
    }

    /// The operator key this history is pinned to.
    pub fn operator(&self) -> Arc<OperatorKey> {
        Arc::new(OperatorKey(*lock(&self.0).operator()))
    }

    /// Raises `Rollback` or `Equivocation` if `manifest` must be refused, or
    /// `Log` if this history accepted a logged manifest before and this one
    /// is not logged, or its checkpoint does not extend that one; otherwise
    /// returns what `record` takes once its table is in hand.
    pub fn check(&self, manifest: Arc<Manifest>) -> Result<Arc<Accepted>, BlindmatchError> {
        Ok(Arc::new(Accepted(lock(&self.0).check(&manifest.0)?)))
    }

    /// Records the manifest `check` accepted as the newest (once its table
    /// is in hand).
    pub fn record(&self, accepted: Arc<Accepted>) {
        lock(&self.0).record(accepted.0.clone());
    }

    /// The newest manifest recorded, if any.
    pub fn newest(&self) -> Option<Arc<Manifest>> {
        lock(&self.0).newest().map(|m| Arc::new(Manifest(m)))
    }
}

/// A manifest `History.check` accepted: the only thing `History.record`
/// takes, so a manifest is never recorded without having been checked.
#[derive(uniffi::Object)]
pub struct Accepted(core::Accepted);

#[uniffi::export]
impl Accepted {
    /// The manifest accepted.
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::new(Manifest(self.0.manifest().clone()))
    }
}

/// One account's secret in threshold mode (SPEC Section 14.1): an id, a
/// 32-byte seed every key is derived from, and the synthetic rate. Keep
/// `encode()` as the app keeps the account's other secrets (the Keychain,
/// the Android Keystore) and sync it between the account's devices: all of
/// them must make shares of one polynomial. Never log it.
#[derive(uniffi::Object)]
pub struct Account(core::AccountSecret);

#[uniffi::export]
impl Account {
    /// A new secret for `account_id` (1 to 64 bytes, the platform's opaque
    /// name for the account) with synthetic rate `synthetic_rate` (the
    /// probability, 0 to 1, that a voucher is synthetic; kept secret).
    #[uniffi::constructor]
    pub fn generate(
        account_id: Vec<u8>,
        synthetic_rate: f64,
    ) -> Result<Arc<Self>, BlindmatchError> {
        let secret = core::generate_account(&account_id, synthetic_rate, &mut rand::rng())?;
        Ok(Arc::new(Account(secret)))
    }

    /// A secret saved with `encode()`. Raises `Account` for a damaged one.
    #[uniffi::constructor]
    pub fn decode(saved: Vec<u8>) -> Result<Arc<Self>, BlindmatchError> {
        let saved = zeroize::Zeroizing::new(saved);
        Ok(Arc::new(Account(core::decode_account(&saved)?)))
    }

    /// The 106 bytes to keep (secret).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode().to_vec()
    }

    /// The account id.
    pub fn account_id(&self) -> Vec<u8> {
        self.0.account_id().to_vec()
    }
}

/// A validated table, ready to make vouchers, with the manifest it was
/// checked against (none for `openUnverified`): the manifest says whether
/// the table is in threshold mode.
#[derive(uniffi::Object)]
pub struct Table(core::Table);

fn submission(s: core::Submission) -> Submission {
    Submission {
        id: s.id.0.to_vec(),
        table_id: s.table_id.0.to_vec(),
        account_id: s.account_id,
        vouchers: s.vouchers,
        digest: s.digest.to_vec(),
    }
}

#[uniffi::export]
impl Table {
    /// A table the app saved with `encode()`, checked to be `manifest`'s
    /// table and validated. Raises `Invalid` for a damaged or stale copy.
    #[uniffi::constructor]
    pub fn open(saved: Vec<u8>, manifest: Arc<Manifest>) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(Table(core::open_table(&saved, &manifest.0)?)))
    }

    /// A table validated slot by slot but checked against no signed
    /// manifest: vouchers made with it are only as safe as where its bytes
    /// came from (whoever made the table can open them), and it makes
    /// version-1 submissions only. For test vectors, and tables the app
    /// verified some other way; an app uses `TableDownload`,
    /// `DeltaDownload` or `open`.
    #[uniffi::constructor]
    pub fn open_unverified(encoded: Vec<u8>) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(Table(core::Table::decode_unverified(&encoded)?)))
    }

    /// The encoding to save (header and slots; public).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// The table id.
    pub fn table_id(&self) -> Vec<u8> {
        self.0.id().0.to_vec()
    }

    /// The length of every voucher this table's submissions hold (version
    /// 1's, or in threshold mode version 2's).
    pub fn voucher_len(&self) -> u32 {
        u32::try_from(self.0.voucher_len()).unwrap_or(u32::MAX)
    }

    /// One voucher per item, under a fresh submission id. Split items into
    /// batches of the manifest response's `max_batch` first. Raises `Input`
    /// for a hash of the wrong length or associated data over 1 KiB, `Mode`
    /// for a table in threshold mode.
    pub fn submission(&self, items: Vec<ItemToCheck>) -> Result<Submission, BlindmatchError> {
        let items = items
            .into_iter()
            .map(|i| {
                Ok((
                    core::Item::new(i.item_type.into(), &i.value)?,
                    i.associated_data,
                ))
            })
            .collect::<Result<Vec<_>, BlindmatchError>>()?;
        Ok(submission(self.0.submission(&items, &mut rand::rng())?))
    }

    /// Threshold mode: one voucher per upload under `account`, real or (at
    /// the account's secret rate) synthetic, in one batch bound to the
    /// account id. The server learns nothing of the account's matches until
    /// t of them are in. Raises `Input` for a voucher id that is not 16
    /// bytes, a hash of the wrong length or associated data over 1 KiB, and
    /// `Mode` for a version-1 table or one opened without its manifest.
    pub fn account_submission(
        &self,
        account: Arc<Account>,
        uploads: Vec<Upload>,
    ) -> Result<Submission, BlindmatchError> {
        let uploads = uploads
            .into_iter()
            .map(|u| {
                let item = core::Item::new(u.item_type.into(), &u.value)?;
                core::Upload::new(&u.voucher_id, item, u.associated_data)
                    .map_err(|e| core::Error::Input(e).into())
            })
            .collect::<Result<Vec<_>, BlindmatchError>>()?;
        Ok(submission(self.0.account_submission(
            &account.0,
            &uploads,
            &mut rand::rng(),
        )?))
    }
}

/// A `DownloadTable` in progress: each chunk checked as it arrives.
#[derive(uniffi::Object)]
pub struct TableDownload(Mutex<Option<core::TableDownload>>);

#[uniffi::export]
impl TableDownload {
    /// Starts the download of `manifest`'s table from offset 0.
    #[uniffi::constructor]
    pub fn new(manifest: Arc<Manifest>) -> Arc<Self> {
        Arc::new(TableDownload(Mutex::new(Some(core::TableDownload::new(
            &manifest.0,
        )))))
    }

    /// Resumes from the slots of the chunks accepted before (whole chunks
    /// are kept, the rest dropped).
    #[uniffi::constructor]
    pub fn resume(manifest: Arc<Manifest>, kept: Vec<u8>) -> Result<Arc<Self>, BlindmatchError> {
        Ok(Arc::new(TableDownload(Mutex::new(Some(
            core::TableDownload::resume(&manifest.0, kept)?,
        )))))
    }

    /// The offset to request next.
    pub fn offset(&self) -> Result<u64, BlindmatchError> {
        let d = lock(&self.0);
        d.as_ref()
            .map(core::TableDownload::offset)
            .ok_or_else(|| finished("download"))
    }

    /// Checks and keeps one `TableChunk`. Raises `Invalid` (nothing kept;
    /// request again from `offset()`) or `Malformed`.
    pub fn push(
        &self,
        offset: u64,
        slots: Vec<u8>,
        proof: Vec<Vec<u8>>,
    ) -> Result<(), BlindmatchError> {
        let mut d = lock(&self.0);
        let d = d.as_mut().ok_or_else(|| finished("download"))?;
        Ok(d.push(offset, &slots, &proof)?)
    }

    /// The validated table, once every chunk is in. Raises `Invalid`.
    pub fn finish(&self) -> Result<Arc<Table>, BlindmatchError> {
        let download = lock(&self.0).take().ok_or_else(|| finished("download"))?;
        Ok(Arc::new(Table(download.finish()?)))
    }
}

/// A `DownloadDelta` in progress: the slots that changed from a table held.
#[derive(uniffi::Object)]
pub struct DeltaDownload {
    held: Arc<Table>,
    delta: Mutex<Option<core::DeltaDownload>>,
}

#[uniffi::export]
impl DeltaDownload {
    /// Starts receiving the delta from `held` to `to`'s table: request it
    /// with `from_table_id = held.table_id()`, `to_table_id = to.table_id()`.
    #[uniffi::constructor]
    pub fn new(held: Arc<Table>, to: Arc<Manifest>) -> Arc<Self> {
        let delta = core::DeltaDownload::new(&held.0, &to.0);
        Arc::new(DeltaDownload {
            held,
            delta: Mutex::new(Some(delta)),
        })
    }

    /// Adds one `DeltaChunk`. Raises `Malformed`.
    pub fn push(&self, indices: Vec<u8>, slots: Vec<u8>) -> Result<(), BlindmatchError> {
        let mut d = lock(&self.delta);
        let d = d.as_mut().ok_or_else(|| finished("delta"))?;
        Ok(d.push(&indices, &slots)?)
    }

    /// The new table, checked against the new manifest. Raises `Invalid`
    /// (keep the table held, download in full instead).
    pub fn finish(&self) -> Result<Arc<Table>, BlindmatchError> {
        let d = lock(&self.delta).take().ok_or_else(|| finished("delta"))?;
        Ok(Arc::new(Table(d.finish(&self.held.0)?)))
    }
}

/// When to send a failed call again, unchanged (the core's rule: transient
/// codes, and RESOURCE_EXHAUSTED only with `grpc-retry-pushback-ms`).
#[derive(uniffi::Object)]
pub struct Backoff(Mutex<core::Backoff>);

#[uniffi::export]
impl Backoff {
    /// At most `attempts` tries, waiting `first_delay_ms` before the second.
    #[uniffi::constructor]
    pub fn new(attempts: u32, first_delay_ms: u64) -> Arc<Self> {
        Arc::new(Backoff(Mutex::new(core::Backoff::new(
            attempts,
            Duration::from_millis(first_delay_ms),
        ))))
    }

    /// After a failure with gRPC status `code` and the server's
    /// `grpc-retry-pushback-ms` value: milliseconds to wait, or none to
    /// give up.
    pub fn retry(&self, code: u32, pushback_ms: Option<String>) -> Option<u64> {
        lock(&self.0)
            .retry(code.into(), pushback_ms.as_deref(), &mut rand::rng())
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Parses a hash given as hex (`md5`, `sha1`, `sha256`, `pdq`, `bytes`),
/// for apps that hold hashes as text. Raises `Input`.
#[uniffi::export]
pub fn item_from_hex(item_type: ItemType, hex: String) -> Result<Vec<u8>, BlindmatchError> {
    Ok(core::Item::parse(item_type.into(), &hex)?.value().to_vec())
}

/// The table id of an encoded table (header and slots), without validating
/// it: for checking a saved copy or a test vector.
#[uniffi::export]
pub fn table_id_of(encoded: Vec<u8>) -> Result<Vec<u8>, BlindmatchError> {
    Ok(core::table_id_of(&encoded)?.0.to_vec())
}

/// The protocol version this library speaks (`Manifest.protocol_version`).
#[uniffi::export]
pub fn protocol_version() -> u32 {
    u32::from(blindmatch_protocol::PROTOCOL_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the core lists has its own variant, named as the core
    /// names it, with the core's message.
    #[test]
    fn every_core_error_kind_maps_to_its_own_variant_with_the_cores_message() {
        let examples = core::Error::one_of_each_kind();
        assert_eq!(examples.len(), core::ErrorKind::ALL.len());
        for e in examples {
            let (kind, message) = (e.kind(), e.to_string());
            let mapped = BlindmatchError::from(e);
            assert_eq!(mapped.kind(), kind.name(), "{message}");
            assert_eq!(mapped.to_string(), message);
        }
    }
}
