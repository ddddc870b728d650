//! # blindmatch-wasm
//!
//! The blindmatch client core ([`blindmatch_client_core`]) for JavaScript
//! and TypeScript, in WebAssembly through wasm-bindgen, for browsers and
//! Node. The same objects as the Kotlin, Swift and Python bindings, with
//! JavaScript names; bytes are `Uint8Array`s, versions and offsets are
//! numbers (exact: both stay far below 2^53).
//!
//! A refusal is thrown as an `Error` whose `name` is `"BlindmatchError"`,
//! whose `kind` is one of the core's [`core::ErrorKind`]s (`"BadSignature"`,
//! `"Rollback"` with `offered` and `seen`, `"Equivocation"` with `version`,
//! `"TooOld"` with `version`, `ageSeconds` and `maxSeconds`, `"Invalid"`,
//! `"Malformed"`, `"Input"`, `"History"`, `"Mode"` with `threshold` when
//! the table is in threshold mode, `"Account"`, `"State"`), and whose
//! message is the core's. It never holds an item, a key or associated data.
//!
//! Randomness: rand's thread-local generator (ChaCha12), seeded from
//! `crypto.getRandomValues` through getrandom.

use blindmatch_client_core as core;
use blindmatch_protocol::{Item, ItemType};
use js_sys::{Array, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

/// What a thrown `BlindmatchError` carries: its kind (the core's name),
/// the core's message, and the kind's fields as numbers. Pure, so that it
/// is tested natively for every kind.
fn describe(e: &core::Error) -> (&'static str, String, Vec<(&'static str, f64)>) {
    let fields = match e {
        core::Error::Rollback { offered, seen } => {
            vec![("offered", num(*offered)), ("seen", num(*seen))]
        }
        core::Error::Equivocation { version, .. } => vec![("version", num(*version))],
        core::Error::TooOld {
            version,
            age_seconds,
            max_seconds,
        } => vec![
            ("version", num(*version)),
            ("ageSeconds", num(*age_seconds)),
            ("maxSeconds", num(*max_seconds)),
        ],
        core::Error::ThresholdMode { t } => vec![("threshold", f64::from(*t))],
        core::Error::Log(core::LogError::Inconsistent { old, new }) => {
            vec![("oldSize", num(*old)), ("newSize", num(*new))]
        }
        core::Error::BelowQuorum {
            found, required, ..
        } => vec![
            ("found", num(u64::try_from(*found).unwrap_or(u64::MAX))),
            (
                "required",
                num(u64::try_from(*required).unwrap_or(u64::MAX)),
            ),
        ],
        _ => Vec::new(),
    };
    (e.kind().name(), e.to_string(), fields)
}

/// The JavaScript `Error` for a core refusal: named `BlindmatchError`, with
/// `kind` and the kind's fields.
fn from_core(e: core::Error) -> JsValue {
    let (kind, message, fields) = describe(&e);
    let error = js_sys::Error::new(&message);
    error.set_name("BlindmatchError");
    let obj: &JsValue = error.as_ref();
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(obj, &"kind".into(), &kind.into());
    for (k, v) in fields {
        let _ = Reflect::set(obj, &k.into(), &v.into());
    }
    error.into()
}

#[allow(
    clippy::cast_precision_loss,
    reason = "versions and offsets stay below 2^53"
)]
fn num(v: u64) -> f64 {
    v as f64
}

fn finished(what: &'static str) -> JsValue {
    from_core(core::Error::Finished(what))
}

/// An item type named by JavaScript: `"sha256"`, ...; `Input` otherwise.
fn item_type_arg(name: &str) -> Result<ItemType, JsValue> {
    name.parse()
        .map_err(|e: blindmatch_protocol::ItemError| from_core(e.into()))
}

/// `offset` from JavaScript: a whole number from 0.
fn offset_arg(offset: f64) -> Result<u64, JsValue> {
    if offset.is_finite() && offset >= 0.0 && offset.fract() == 0.0 && offset < 9.0e15 {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked"
        )]
        Ok(offset as u64)
    } else {
        Err(from_core(core::Error::Malformed(
            "a chunk offset is not a whole number",
        )))
    }
}

/// The operator's Ed25519 verifying key, pinned in the app.
#[wasm_bindgen]
pub struct OperatorKey(blindmatch_protocol::OperatorVerifyingKey);

#[wasm_bindgen]
impl OperatorKey {
    /// From 64 hex digits, as `blindmatch-server keygen --signing` prints it.
    #[wasm_bindgen(js_name = fromHex)]
    pub fn from_hex(hex: &str) -> Result<OperatorKey, JsValue> {
        core::operator_key_from_hex(hex)
            .map(OperatorKey)
            .map_err(from_core)
    }

    /// From its 32 bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<OperatorKey, JsValue> {
        core::operator_key(bytes)
            .map(OperatorKey)
            .map_err(from_core)
    }

    /// Its 32 bytes, in hex.
    #[wasm_bindgen(js_name = toHex)]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
}

/// The list organisations an app pins and how many of them must have
/// co-signed a table (SPEC 15.6).
#[wasm_bindgen]
pub struct Quorum(core::Quorum);

#[wasm_bindgen]
impl Quorum {
    /// At least `required` of the organisations whose verifying keys
    /// `orgKeysHex` holds (64 hex digits each; a key given twice counts
    /// once). Throws `Input` for a bad key, or unless 1 ≤ `required` ≤ the
    /// number of distinct keys.
    #[wasm_bindgen(constructor)]
    pub fn new(org_keys_hex: Vec<String>, required: u32) -> Result<Quorum, JsValue> {
        let keys = org_keys_hex
            .iter()
            .map(|h| core::operator_key_from_hex(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(from_core)?;
        let required = usize::try_from(required).unwrap_or(usize::MAX);
        core::quorum(&keys, required).map(Quorum).map_err(from_core)
    }
}

/// The operator's transparency log an app pins (SPEC 16.6): the log's key,
/// the witnesses' keys and the quorum of them that must have cosigned.
#[wasm_bindgen]
pub struct LogPolicy(core::LogPolicy);

#[wasm_bindgen]
impl LogPolicy {
    /// A policy file's text (c2sp.org/tlog-policy: `log VKEY`, `witness
    /// NAME VKEY`, `group ...`, `quorum ...`). Throws `Log` naming the line
    /// that is wrong.
    pub fn parse(text: &str) -> Result<LogPolicy, JsValue> {
        core::log_policy(text).map(LogPolicy).map_err(from_core)
    }

    /// The log `logKey` (`origin+keyid+key`) with `quorum` of the witnesses
    /// `witnessKeys` (`name+keyid+key`) required. Throws `Log` for a key
    /// that does not parse or a quorum out of range.
    #[wasm_bindgen(js_name = fromKeys)]
    pub fn from_keys(
        log_key: &str,
        witness_keys: Vec<String>,
        quorum: u32,
    ) -> Result<LogPolicy, JsValue> {
        let keys: Vec<&str> = witness_keys.iter().map(String::as_str).collect();
        let quorum = usize::try_from(quorum).unwrap_or(usize::MAX);
        core::log_policy_from_keys(log_key, &keys, quorum)
            .map(LogPolicy)
            .map_err(from_core)
    }
}

/// The co-signatures of a response's `cosignatures` array (objects with
/// `orgKey`, `name`, `signature`).
fn cosignatures_of(cosignatures: &Array) -> Vec<core::CoSignature> {
    let fields: Vec<(Vec<u8>, String, Vec<u8>)> = cosignatures
        .iter()
        .take(blindmatch_protocol::audit::cosign::MAX_COSIGNATURES)
        .map(|c| {
            let name = Reflect::get(&c, &"name".into())
                .ok()
                .and_then(|n| n.as_string())
                .unwrap_or_default();
            (
                bytes_field(&c, "orgKey"),
                name,
                bytes_field(&c, "signature"),
            )
        })
        .collect();
    core::cosignatures(fields.iter().map(|(k, n, s)| (&k[..], n.as_str(), &s[..])))
}

/// The bytes field `name` of a JavaScript object, or empty.
fn bytes_field(obj: &JsValue, name: &str) -> Vec<u8> {
    Reflect::get(obj, &name.into())
        .ok()
        .filter(|v| v.is_instance_of::<Uint8Array>())
        .map(|v| Uint8Array::from(v).to_vec())
        .unwrap_or_default()
}

/// A manifest whose signature verified; only the signed statement is used.
#[wasm_bindgen]
pub struct Manifest(core::VerifiedManifest);

#[wasm_bindgen]
impl Manifest {
    /// Verifies `signature` over `statement` (a `GetManifest` response's
    /// fields). Throws `BadSignature`, or `Invalid` for a bad statement.
    pub fn verify(
        statement: &[u8],
        signature: &[u8],
        operator: &OperatorKey,
    ) -> Result<Manifest, JsValue> {
        core::VerifiedManifest::verify(statement, signature, &operator.0)
            .map(Manifest)
            .map_err(from_core)
    }

    /// Requires `quorum` of the organisations it pins to have co-signed
    /// this exact statement (SPEC 15.6); `cosignatures` is the response's
    /// `cosignatures` array (objects with `orgKey`, `name`, `signature`).
    /// Returns the manifest with its co-signers (`cosigners`); use it from
    /// here on. Throws `Quorum`, saying how many co-signed and who.
    #[wasm_bindgen(js_name = requireQuorum)]
    pub fn require_quorum(
        &self,
        quorum: &Quorum,
        cosignatures: Array,
    ) -> Result<Manifest, JsValue> {
        self.0
            .clone()
            .require_quorum(&quorum.0, &cosignatures_of(&cosignatures))
            .map(Manifest)
            .map_err(from_core)
    }

    /// Requires the manifest to be in the operator's transparency log under
    /// a checkpoint `policy` accepts (SPEC 16.6): `logProof` and
    /// `logConsistency` (an array of 32-byte `Uint8Array`s) are the
    /// response's, for the request's `logSize` (`History.logSize`);
    /// `cosignatures` its co-signatures as served. Returns the manifest to
    /// use from here on; `History.check` then requires its checkpoint to
    /// extend the one accepted before. Throws `Log`: no proof, one that
    /// fails, or too few witnesses.
    #[wasm_bindgen(js_name = requireLogged)]
    pub fn require_logged(
        &self,
        policy: &LogPolicy,
        log_proof: &str,
        log_consistency: Array,
        cosignatures: Array,
    ) -> Result<Manifest, JsValue> {
        let consistency: Vec<Vec<u8>> = log_consistency
            .iter()
            .take(blindmatch_protocol::tlog::proof::MAX_PROOF_HASHES + 1)
            .map(|h| {
                if h.is_instance_of::<Uint8Array>() {
                    Uint8Array::from(h).to_vec()
                } else {
                    Vec::new()
                }
            })
            .collect();
        self.0
            .clone()
            .require_logged(
                &policy.0,
                log_proof.as_bytes(),
                &consistency,
                &cosignatures_of(&cosignatures),
            )
            .map(Manifest)
            .map_err(from_core)
    }

    /// The size of the log checkpoint `requireLogged` proved this manifest
    /// in, or undefined.
    #[wasm_bindgen(getter, js_name = logSize)]
    pub fn log_size(&self) -> Option<f64> {
        self.0.log_checkpoint().map(|c| num(c.checkpoint().size))
    }

    /// The witnesses whose cosignatures of that checkpoint verified, by
    /// their names in the policy.
    #[wasm_bindgen(getter, js_name = logWitnesses)]
    pub fn log_witnesses(&self) -> Vec<String> {
        self.0
            .log_checkpoint()
            .map(|c| c.witnesses().to_vec())
            .unwrap_or_default()
    }

    /// The names of the organisations `requireQuorum` counted: who audited
    /// this table.
    #[wasm_bindgen(getter)]
    pub fn cosigners(&self) -> Vec<String> {
        self.0
            .cosigners()
            .iter()
            .map(|(_, n)| n.as_str().to_owned())
            .collect()
    }

    /// Threshold mode's t (SPEC Section 14), or undefined for a table in
    /// protocol version 1. With a t, submit through `accountSubmission`.
    #[wasm_bindgen(getter)]
    pub fn threshold(&self) -> Option<u16> {
        self.0.threshold().map(|p| p.threshold())
    }

    /// Threshold mode's synthetic bound s (SPEC Section 14.3), or undefined
    /// for a table in protocol version 1. Keep an account's synthetic rate
    /// at or below s / 2N for the largest number N of uploads it sends under
    /// one threshold (README, "Choosing the synthetic rate").
    #[wasm_bindgen(getter, js_name = syntheticBound)]
    pub fn synthetic_bound(&self) -> Option<u16> {
        self.0.threshold().map(|p| p.synthetic_bound())
    }

    /// The version number.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        num(self.0.version())
    }

    /// When the table was built (seconds since the Unix epoch).
    #[wasm_bindgen(getter)]
    pub fn created(&self) -> f64 {
        num(self.0.created())
    }

    /// The table id (32 bytes).
    #[wasm_bindgen(getter, js_name = tableId)]
    pub fn table_id(&self) -> Vec<u8> {
        self.0.table_id().0.to_vec()
    }

    /// The Merkle root over the table's chunks.
    #[wasm_bindgen(getter)]
    pub fn digest(&self) -> Vec<u8> {
        self.0.digest().to_vec()
    }

    /// Positions per item (k).
    #[wasm_bindgen(getter)]
    pub fn k(&self) -> u8 {
        self.0.header().k
    }

    /// Slots in the table.
    #[wasm_bindgen(getter, js_name = nSlots)]
    pub fn n_slots(&self) -> u32 {
        self.0.header().n_slots
    }

    /// The signed statement.
    #[wasm_bindgen(getter)]
    pub fn statement(&self) -> Vec<u8> {
        self.0.statement_bytes()
    }

    /// The signature.
    #[wasm_bindgen(getter)]
    pub fn signature(&self) -> Vec<u8> {
        self.0.signature().to_vec()
    }

    /// Throws `TooOld` if the table was built more than `maxAgeSeconds`
    /// before `nowSeconds` (`Date.now() / 1000`).
    #[wasm_bindgen(js_name = checkAge)]
    pub fn check_age(&self, max_age_seconds: f64, now_seconds: f64) -> Result<(), JsValue> {
        let whole = |s: f64| offset_arg(s.floor().max(0.0));
        self.0
            .check_age(whole(max_age_seconds)?, whole(now_seconds)?)
            .map_err(from_core)
    }
}

/// The newest manifest verified: refuses rollbacks and equivocation.
/// Persist `encode()` (in IndexedDB, say) and `restore` it.
#[wasm_bindgen]
pub struct History(core::History);

#[wasm_bindgen]
impl History {
    /// An empty history pinned to `operator`.
    #[wasm_bindgen(constructor)]
    pub fn new(operator: &OperatorKey) -> History {
        History(core::History::new(operator.0))
    }

    /// A history saved with `encode()`; throws `History` if it does not
    /// verify under `operator`.
    pub fn restore(operator: &OperatorKey, saved: &[u8]) -> Result<History, JsValue> {
        core::History::restore(operator.0, saved)
            .map(History)
            .map_err(from_core)
    }

    /// The record to persist (nothing secret in it).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// The operator key this history is pinned to.
    pub fn operator(&self) -> OperatorKey {
        OperatorKey(*self.0.operator())
    }

    /// The size of the newest log checkpoint accepted (0 if none): send it
    /// as the `GetManifest` request's `logSize`.
    #[wasm_bindgen(getter, js_name = logSize)]
    pub fn log_size(&self) -> f64 {
        num(self.0.log_size())
    }

    /// Throws `Rollback` or `Equivocation` if `manifest` must be refused, or
    /// `Log` if this history accepted a logged manifest before and this one
    /// is not logged or its checkpoint does not extend that one; otherwise
    /// returns what `record` takes once its table is in hand.
    pub fn check(&self, manifest: &Manifest) -> Result<Accepted, JsValue> {
        self.0.check(&manifest.0).map(Accepted).map_err(from_core)
    }

    /// Records the manifest `check` accepted as the newest (once its table
    /// is in hand).
    pub fn record(&mut self, accepted: &Accepted) {
        self.0.record(accepted.0.clone());
    }

    /// The newest version recorded, or undefined.
    #[wasm_bindgen(getter, js_name = newestVersion)]
    pub fn newest_version(&self) -> Option<f64> {
        self.0.newest().map(|m| num(m.version()))
    }

    /// The newest manifest recorded, or undefined: after a restart, what
    /// opens the saved table (`Table.open`) that a delta brings up to date.
    #[wasm_bindgen(getter)]
    pub fn newest(&self) -> Option<Manifest> {
        self.0.newest().map(Manifest)
    }
}

/// A manifest `History.check` accepted: the only thing `History.record`
/// takes, so a manifest is never recorded without having been checked.
#[wasm_bindgen]
pub struct Accepted(core::Accepted);

#[wasm_bindgen]
impl Accepted {
    /// The manifest accepted.
    #[wasm_bindgen(getter)]
    pub fn manifest(&self) -> Manifest {
        Manifest(self.0.manifest().clone())
    }
}

/// One account's secret in threshold mode (SPEC Section 14.1): an id, a
/// 32-byte seed every key is derived from, and the synthetic rate. Keep
/// `encode()` where the app keeps the account's other secrets (never in
/// `localStorage` in clear) and give the same secret to every device of
/// the account. Never log it.
#[wasm_bindgen]
pub struct Account(core::AccountSecret);

#[wasm_bindgen]
impl Account {
    /// A new secret for `accountId` (1 to 64 bytes, the platform's opaque
    /// name for the account) with `syntheticRate`, the probability (0 to 1)
    /// that a voucher is synthetic, kept secret. Throws `Account`.
    pub fn generate(account_id: &[u8], synthetic_rate: f64) -> Result<Account, JsValue> {
        core::generate_account(account_id, synthetic_rate, &mut rand::rng())
            .map(Account)
            .map_err(from_core)
    }

    /// A secret saved with `encode()`. Throws `Account` for a damaged one.
    pub fn decode(saved: &[u8]) -> Result<Account, JsValue> {
        core::decode_account(saved).map(Account).map_err(from_core)
    }

    /// The 106 bytes to keep (secret).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode().to_vec()
    }

    /// The account id.
    #[wasm_bindgen(getter, js_name = accountId)]
    pub fn account_id(&self) -> Vec<u8> {
        self.0.account_id().to_vec()
    }
}

/// A validated table, ready to make vouchers, with the manifest it was
/// checked against (none for `openUnverified`), which says whether the
/// table is in threshold mode.
#[wasm_bindgen]
pub struct Table(core::Table);

#[wasm_bindgen]
impl Table {
    /// A table saved with `encode()`, checked to be `manifest`'s table and
    /// validated. Throws `Invalid` for a damaged or stale copy.
    pub fn open(saved: &[u8], manifest: &Manifest) -> Result<Table, JsValue> {
        core::open_table(saved, &manifest.0)
            .map(Table)
            .map_err(from_core)
    }

    /// A table validated but checked against no signed manifest: only for
    /// test vectors and tables verified some other way (whoever made the
    /// table can open vouchers made with it); version-1 submissions only.
    #[wasm_bindgen(js_name = openUnverified)]
    pub fn open_unverified(encoded: &[u8]) -> Result<Table, JsValue> {
        core::Table::decode_unverified(encoded)
            .map(Table)
            .map_err(from_core)
    }

    /// The encoding to save (header and slots; public).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// The table id.
    #[wasm_bindgen(getter, js_name = tableId)]
    pub fn table_id(&self) -> Vec<u8> {
        self.0.id().0.to_vec()
    }

    /// The length of every voucher this table's submissions hold (version
    /// 1's, or in threshold mode version 2's).
    #[wasm_bindgen(getter, js_name = voucherLen)]
    pub fn voucher_len(&self) -> usize {
        self.0.voucher_len()
    }

    /// A new batch of items to submit together.
    pub fn batch(&self) -> Batch {
        Batch { items: Vec::new() }
    }

    /// One voucher per item of `batch`, under a fresh submission id. Throws
    /// `Input` for associated data over 1 KiB, `Mode` for a table in
    /// threshold mode.
    pub fn submission(&self, batch: &Batch) -> Result<Submission, JsValue> {
        self.0
            .submission(&batch.items, &mut rand::rng())
            .map(Submission)
            .map_err(from_core)
    }

    /// A new batch of uploads to submit together in threshold mode.
    #[wasm_bindgen(js_name = accountBatch)]
    pub fn account_batch(&self) -> AccountBatch {
        AccountBatch {
            uploads: Vec::new(),
        }
    }

    /// Threshold mode: one voucher per upload of `batch` under `account`,
    /// real or (at the account's secret rate) synthetic, bound to the
    /// account id. The server learns nothing of the account's matches until
    /// t of them are in. Throws `Input` for associated data over 1 KiB,
    /// `Mode` for a version-1 table or one opened without its manifest.
    #[wasm_bindgen(js_name = accountSubmission)]
    pub fn account_submission(
        &self,
        account: &Account,
        batch: &AccountBatch,
    ) -> Result<Submission, JsValue> {
        self.0
            .account_submission(&account.0, &batch.uploads, &mut rand::rng())
            .map(Submission)
            .map_err(from_core)
    }
}

/// Uploads to submit in one `SubmitRequest` in threshold mode.
#[wasm_bindgen]
pub struct AccountBatch {
    uploads: Vec<core::Upload>,
}

#[wasm_bindgen]
impl AccountBatch {
    /// Adds an upload: its 16-byte voucher id (the app's name for it, the
    /// same on every retry, so it counts once toward t), the item's type and
    /// hash value, and associated data (at most 1,024 bytes, sealed under
    /// the account key). Throws `Input`.
    pub fn add(
        &mut self,
        voucher_id: &[u8],
        item_type: &str,
        value: &[u8],
        associated_data: &[u8],
    ) -> Result<(), JsValue> {
        let item = Item::new(item_type_arg(item_type)?, value).map_err(|e| from_core(e.into()))?;
        let upload = core::Upload::new(voucher_id, item, associated_data.to_vec())
            .map_err(|e| from_core(core::Error::Input(e)))?;
        self.uploads.push(upload);
        Ok(())
    }

    /// How many uploads it holds.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.uploads.len()
    }
}

/// Items to submit in one `SubmitRequest` (at most the manifest response's
/// `maxBatch`).
#[wasm_bindgen]
pub struct Batch {
    items: Vec<(Item, Vec<u8>)>,
}

#[wasm_bindgen]
impl Batch {
    /// Adds an item: its type (`"md5"`, `"sha1"`, `"sha256"`, `"pdq"`,
    /// `"bytes"`), its hash value, and associated data (at most 1,024 bytes;
    /// the server sees it only on a match). Throws `Input`.
    pub fn add(
        &mut self,
        item_type: &str,
        value: &[u8],
        associated_data: &[u8],
    ) -> Result<(), JsValue> {
        let item = Item::new(item_type_arg(item_type)?, value).map_err(|e| from_core(e.into()))?;
        self.items.push((item, associated_data.to_vec()));
        Ok(())
    }

    /// How many items it holds.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.items.len()
    }
}

/// One `SubmitRequest`: send its fields as they are, and the same again on
/// every retry, so the server stores the batch once.
#[wasm_bindgen]
pub struct Submission(core::Submission);

#[wasm_bindgen]
impl Submission {
    /// `submission_id`: 16 random bytes.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Vec<u8> {
        self.0.id.0.to_vec()
    }

    /// `table_id`.
    #[wasm_bindgen(getter, js_name = tableId)]
    pub fn table_id(&self) -> Vec<u8> {
        self.0.table_id.0.to_vec()
    }

    /// `account_id`: empty in protocol version 1.
    #[wasm_bindgen(getter, js_name = accountId)]
    pub fn account_id(&self) -> Vec<u8> {
        self.0.account_id.clone()
    }

    /// `vouchers`: an array of `Uint8Array`s, all of one length.
    #[wasm_bindgen(getter)]
    pub fn vouchers(&self) -> Array {
        self.0
            .vouchers
            .iter()
            .map(|v| JsValue::from(Uint8Array::from(v.as_slice())))
            .collect()
    }

    /// The batch's digest (SPEC 12.3), to log instead of its content.
    #[wasm_bindgen(getter)]
    pub fn digest(&self) -> Vec<u8> {
        self.0.digest.to_vec()
    }
}

/// A `DownloadTable` in progress: each chunk checked as it arrives.
#[wasm_bindgen]
pub struct TableDownload(Option<core::TableDownload>);

#[wasm_bindgen]
impl TableDownload {
    /// Starts the download of `manifest`'s table from offset 0.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest: &Manifest) -> TableDownload {
        TableDownload(Some(core::TableDownload::new(&manifest.0)))
    }

    /// Resumes from the slots of the chunks accepted before.
    pub fn resume(manifest: &Manifest, kept: Vec<u8>) -> Result<TableDownload, JsValue> {
        core::TableDownload::resume(&manifest.0, kept)
            .map(|d| TableDownload(Some(d)))
            .map_err(from_core)
    }

    /// The offset to request next.
    #[wasm_bindgen(getter)]
    pub fn offset(&self) -> Result<f64, JsValue> {
        self.0
            .as_ref()
            .map(|d| num(d.offset()))
            .ok_or_else(|| finished("download"))
    }

    /// Checks and keeps one `TableChunk` (`proof`: an array of 32-byte
    /// `Uint8Array`s). Throws `Invalid` (nothing kept) or `Malformed`.
    pub fn push(&mut self, offset: f64, slots: &[u8], proof: Array) -> Result<(), JsValue> {
        let d = self.0.as_mut().ok_or_else(|| finished("download"))?;
        let proof: Vec<Vec<u8>> = proof.iter().map(|h| Uint8Array::new(&h).to_vec()).collect();
        d.push(offset_arg(offset)?, slots, &proof)
            .map_err(from_core)
    }

    /// The validated table, once every chunk is in. Throws `Invalid`.
    pub fn finish(&mut self) -> Result<Table, JsValue> {
        let d = self.0.take().ok_or_else(|| finished("download"))?;
        d.finish().map(Table).map_err(from_core)
    }
}

/// A `DownloadDelta` in progress: the slots changed from a table held.
#[wasm_bindgen]
pub struct DeltaDownload(Option<core::DeltaDownload>);

#[wasm_bindgen]
impl DeltaDownload {
    /// Starts receiving the delta from `held` to `to`'s table.
    #[wasm_bindgen(constructor)]
    pub fn new(held: &Table, to: &Manifest) -> DeltaDownload {
        DeltaDownload(Some(core::DeltaDownload::new(&held.0, &to.0)))
    }

    /// Adds one `DeltaChunk`. Throws `Malformed`.
    pub fn push(&mut self, indices: &[u8], slots: &[u8]) -> Result<(), JsValue> {
        self.0
            .as_mut()
            .ok_or_else(|| finished("delta"))?
            .push(indices, slots)
            .map_err(from_core)
    }

    /// The new table: `held` (the table the delta was started from) with
    /// the delta applied, checked against the new manifest. Throws
    /// `Invalid`: keep the table held and download in full instead.
    pub fn finish(&mut self, held: &Table) -> Result<Table, JsValue> {
        let d = self.0.take().ok_or_else(|| finished("delta"))?;
        d.finish(&held.0).map(Table).map_err(from_core)
    }
}

/// When to send a failed call again, unchanged.
#[wasm_bindgen]
pub struct Backoff(core::Backoff);

#[wasm_bindgen]
impl Backoff {
    /// At most `attempts` tries, waiting `firstDelayMs` before the second.
    #[wasm_bindgen(constructor)]
    pub fn new(attempts: u32, first_delay_ms: u32) -> Backoff {
        Backoff(core::Backoff::new(
            attempts,
            std::time::Duration::from_millis(u64::from(first_delay_ms)),
        ))
    }

    /// After a failure with gRPC status `code` and the server's
    /// `grpc-retry-pushback-ms` value (or undefined): milliseconds to wait,
    /// or undefined to give up.
    pub fn retry(&mut self, code: u32, pushback_ms: Option<String>) -> Option<f64> {
        self.0
            .retry(code.into(), pushback_ms.as_deref(), &mut rand::rng())
            .map(|d| num(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// Parses a hash given as hex; throws `Input`.
#[wasm_bindgen(js_name = itemFromHex)]
pub fn item_from_hex(item_type: &str, hex: &str) -> Result<Vec<u8>, JsValue> {
    Item::parse(item_type_arg(item_type)?, hex)
        .map(|i| i.value().to_vec())
        .map_err(|e| from_core(e.into()))
}

/// The table id of an encoded table, without validating it.
#[wasm_bindgen(js_name = tableIdOf)]
pub fn table_id_of(encoded: &[u8]) -> Result<Vec<u8>, JsValue> {
    core::table_id_of(encoded)
        .map(|id| id.0.to_vec())
        .map_err(from_core)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the core lists is thrown under its own name, with the
    /// core's message and (for the kinds that have them) its fields.
    #[test]
    fn every_core_error_kind_is_thrown_by_its_name_with_the_cores_message() {
        let examples = core::Error::one_of_each_kind();
        let names: Vec<&str> = examples.iter().map(|e| describe(e).0).collect();
        let expected: Vec<&str> = core::ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, expected);
        for e in &examples {
            let (_, message, fields) = describe(e);
            assert_eq!(message, e.to_string());
            if let core::Error::Rollback { .. } = e {
                assert_eq!(fields, [("offered", 1.0), ("seen", 2.0)]);
            }
        }
    }
}
