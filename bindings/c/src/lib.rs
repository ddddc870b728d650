//! # blindmatch-ffi
//!
//! The client core ([`blindmatch_client_core`]) behind a C ABI, for C, C++,
//! Go (cgo) and C# (P/Invoke). `include/blindmatch.h` is generated from
//! this file by cbindgen and committed; `tests/header.rs` fails when they
//! drift.
//!
//! Conventions, the same for every function:
//! - Objects are opaque pointers made by a `bm_*_new`/`open`/`verify`/
//!   `finish` function and released by their `bm_*_free` (NULL is fine).
//! - Fallible functions return a [`BmStatus`]; on failure the output
//!   pointer is left untouched and [`bm_last_error`] holds a message for the
//!   calling thread (no item, key or associated data is ever in it).
//! - Buffers are `(pointer, length)`; a NULL pointer with length 0 is an
//!   empty buffer. A function that writes a variable-length result takes a
//!   capacity and returns the length needed, writing only if it fits.
//! - Nothing here panics across the boundary: a panic (a bug) is caught and
//!   reported as `BM_STATUS_INTERNAL` ([`BmStatus::Internal`]).

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use blindmatch_client_core as core;
use blindmatch_protocol::{Item, ItemType};

/// What a call returned: `BM_STATUS_OK`, one status per kind of the core's
/// refusals ([`core::ErrorKind`], the same kinds every binding tells
/// apart), or one of this ABI's own (`NULL`, `BUFFER_TOO_SMALL`,
/// `INTERNAL`). [`bm_last_error`] holds the core's message.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BmStatus {
    /// Success.
    Ok = 0,
    /// The manifest's signature does not verify under the operator key.
    BadSignature = 1,
    /// A version older than one verified before.
    Rollback = 2,
    /// Another table under a version number seen before.
    Equivocation = 3,
    /// The manifest is older than the app allows.
    TooOld = 4,
    /// A chunk, table, delta or statement is not what the manifest says.
    Invalid = 5,
    /// A message is malformed before any cryptography.
    Malformed = 6,
    /// An item, key or associated data given by the app is not usable.
    Input = 7,
    /// A saved history does not verify under the operator key.
    History = 8,
    /// A required pointer was NULL (this ABI's own).
    Null = 9,
    /// An output buffer is too small; the length needed was returned (this
    /// ABI's own).
    BufferTooSmall = 10,
    /// A bug: a panic was caught at the boundary (this ABI's own).
    Internal = 11,
    /// A submission of the wrong mode for the table: the table is in
    /// threshold mode (protocol version 2, SPEC Section 14: make its
    /// vouchers with [`bm_account_submission`]), or it is not, or it was
    /// opened unverified with no manifest to say (make them with
    /// [`bm_table_voucher`]). The message says which. (13, the former
    /// `NOT_THRESHOLD_MODE`, is now this status.)
    Mode = 12,
    /// An account secret given by the app is damaged or its parameters are
    /// out of range.
    Account = 14,
    /// An object was used after the step that finished it (a download or a
    /// delta finished before).
    State = 15,
    /// Fewer of the organisations the app pins co-signed the table than it
    /// requires: not audited by enough of them (the message names who did).
    Quorum = 16,
    /// The manifest is not proved to be in the operator's transparency log
    /// under a checkpoint the app's policy accepts (no proof, a failing one,
    /// too few witnesses), or the log's checkpoint does not extend the one
    /// accepted before (a forked log). The message says which.
    Log = 17,
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn fail(status: BmStatus, message: impl Into<String>) -> BmStatus {
    LAST_ERROR.with(|e| *e.borrow_mut() = message.into());
    status
}

/// The status of each kind of the core's refusals: the one mapping.
fn status(kind: core::ErrorKind) -> BmStatus {
    use core::ErrorKind as K;
    match kind {
        K::BadSignature => BmStatus::BadSignature,
        K::Rollback => BmStatus::Rollback,
        K::Equivocation => BmStatus::Equivocation,
        K::TooOld => BmStatus::TooOld,
        K::Quorum => BmStatus::Quorum,
        K::Log => BmStatus::Log,
        K::Malformed => BmStatus::Malformed,
        K::Input => BmStatus::Input,
        K::History => BmStatus::History,
        K::Mode => BmStatus::Mode,
        K::Account => BmStatus::Account,
        K::State => BmStatus::State,
        // Invalid, and a kind a newer core adds (the test that maps every
        // kind fails until it has its own status).
        _ => BmStatus::Invalid,
    }
}

/// Records the core's refusal as the last error; returns its status.
fn from_core(e: &core::Error) -> BmStatus {
    fail(status(e.kind()), e.to_string())
}

/// Runs `f`, turning its error or a panic into a status.
fn guard(f: impl FnOnce() -> Result<(), BmStatus>) -> BmStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => BmStatus::Ok,
        Ok(Err(status)) => status,
        Err(_) => fail(
            BmStatus::Internal,
            "internal error (a bug): please report it",
        ),
    }
}

/// `(ptr, len)` as a slice.
///
/// # Safety
/// `ptr` is NULL with `len` 0, or valid for reading `len` bytes.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], BmStatus> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(fail(BmStatus::Null, "a buffer pointer is NULL"))
        };
    }
    // SAFETY: the caller's contract, stated in the header.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A shared reference to an object made by this library.
///
/// # Safety
/// `ptr` is NULL or a live object of type `T` from this library.
unsafe fn object<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, BmStatus> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| fail(BmStatus::Null, format!("{what} is NULL")))
}

/// An exclusive reference to an object made by this library.
///
/// # Safety
/// As [`object`], and not used by another thread meanwhile.
unsafe fn object_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, BmStatus> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| fail(BmStatus::Null, format!("{what} is NULL")))
}

/// Writes a new object to `*out`.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
unsafe fn put<T>(out: *mut *mut T, value: T) -> Result<(), BmStatus> {
    if out.is_null() {
        return Err(fail(BmStatus::Null, "the output pointer is NULL"));
    }
    // SAFETY: checked non-NULL; the caller's contract for the rest.
    unsafe { *out = Box::into_raw(Box::new(value)) };
    Ok(())
}

/// Copies `value` to `(out, cap)` if it fits; returns its length.
///
/// # Safety
/// `out` is NULL or valid for writing `cap` bytes.
unsafe fn write_out(value: &[u8], out: *mut u8, cap: usize) -> usize {
    if !out.is_null() && cap >= value.len() {
        // SAFETY: checked non-NULL and large enough; the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), out, value.len()) };
    }
    value.len()
}

/// Frees an object made by this library.
///
/// # Safety
/// `ptr` is NULL or an object from this library not freed before.
unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by Box::into_raw in `put`, freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// The item `(item_type, value)` (SPEC Section 3's type numbers), or the
/// core's refusal.
fn item(item_type: u8, value: &[u8]) -> Result<Item, core::Error> {
    Ok(Item::new(ItemType::from_code(item_type)?, value)?)
}

fn operator_key(bytes: &[u8]) -> Result<core::OperatorVerifyingKey, BmStatus> {
    core::operator_key(bytes).map_err(|e| from_core(&e))
}

/// The message of the last failure on this thread, NUL-terminated, copied
/// to `(out, cap)` if it fits; returns its length with the NUL.
///
/// # Safety
/// `out` is NULL or valid for writing `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_last_error(out: *mut c_char, cap: usize) -> usize {
    LAST_ERROR.with(|e| {
        let mut message = e.borrow().clone().into_bytes();
        message.retain(|&b| b != 0);
        message.push(0);
        // SAFETY: the caller's contract.
        unsafe { write_out(&message, out.cast(), cap) }
    })
}

/// A manifest whose signature verified.
pub struct BmManifest(core::VerifiedManifest);

/// Verifies `signature` over `statement` under the 32-byte operator key and
/// writes the manifest to `*out`.
///
/// # Safety
/// Buffers as the conventions say; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_verify(
    statement: *const u8,
    statement_len: usize,
    signature: *const u8,
    signature_len: usize,
    operator_key_bytes: *const u8,
    operator_key_len: usize,
    out: *mut *mut BmManifest,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract, for each buffer.
        let (statement, signature, key) = unsafe {
            (
                bytes(statement, statement_len)?,
                bytes(signature, signature_len)?,
                bytes(operator_key_bytes, operator_key_len)?,
            )
        };
        let m = core::VerifiedManifest::verify(statement, signature, &operator_key(key)?)
            .map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmManifest(m)) }
    })
}

/// The manifest's version number (0 for NULL).
///
/// # Safety
/// `m` is NULL or a live manifest.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_version(m: *const BmManifest) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { m.as_ref() }.map_or(0, |m| m.0.version())
}

/// The manifest's threshold t (SPEC Section 14.8), or 0 for a version-1
/// manifest (and for NULL). A table in threshold mode takes vouchers made
/// under an account ([`bm_account_submission`]); t = 1 reveals each match
/// at once, as version 1 does, but still takes only those.
///
/// # Safety
/// `m` is NULL or a live manifest.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_threshold(m: *const BmManifest) -> u16 {
    // SAFETY: the caller's contract.
    unsafe { m.as_ref() }
        .and_then(|m| m.0.threshold())
        .map_or(0, |p| p.threshold())
}

/// The manifest's synthetic bound s (SPEC Section 14.3), or 0 for a
/// version-1 manifest (and for NULL). Keep an account's synthetic rate at or
/// below s / 2N for the largest number N of uploads it sends under one
/// threshold (README, "Choosing the synthetic rate").
///
/// # Safety
/// `m` is NULL or a live manifest.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_synthetic_bound(m: *const BmManifest) -> u16 {
    // SAFETY: the caller's contract.
    unsafe { m.as_ref() }
        .and_then(|m| m.0.threshold())
        .map_or(0, |p| p.synthetic_bound())
}

/// Writes the manifest's 32-byte table id to `out`.
///
/// # Safety
/// `m` is NULL or a live manifest; `out` valid for writing 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_table_id(m: *const BmManifest, out: *mut u8) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { object(m, "manifest")? };
        // SAFETY: the caller's contract.
        unsafe { write_out(&m.0.table_id().0, out, 32) };
        Ok(())
    })
}

/// One co-signature of a `GetManifest` response (`Manifest.cosignatures`,
/// SPEC 15.5): the organisation's key, the name it signed under (UTF-8,
/// not NUL-terminated) and the signature, each as a buffer and its length.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BmCoSignature {
    /// The organisation's verifying key (32 bytes).
    pub org_key: *const u8,
    /// Its length.
    pub org_key_len: usize,
    /// The name, UTF-8.
    pub name: *const u8,
    /// Its length in bytes.
    pub name_len: usize,
    /// The signature (64 bytes).
    pub signature: *const u8,
    /// Its length.
    pub signature_len: usize,
}

/// Requires `required` of the `n_orgs` organisations whose keys
/// `org_keys` holds (32 bytes each, one after the other; a key given twice
/// counts once) to have co-signed `m`'s statement (SPEC 15.6);
/// `cosignatures` are the response's. On success `m` now carries its
/// co-signers ([`bm_manifest_cosigners`]); on failure it is unchanged.
/// `BM_STATUS_QUORUM` if too few did (the message says how many and who),
/// `BM_STATUS_INPUT` for a bad key or a `required` out of range.
///
/// # Safety
/// `m` live and not used by another thread meanwhile; `org_keys` valid for
/// `32 * n_orgs` bytes; `cosignatures` NULL with 0, or valid for
/// `n_cosignatures` records whose buffers are valid as their lengths say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_require_quorum(
    m: *mut BmManifest,
    org_keys: *const u8,
    n_orgs: usize,
    required: usize,
    cosignatures: *const BmCoSignature,
    n_cosignatures: usize,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { object_mut(m, "manifest")? };
        let len = n_orgs
            .checked_mul(32)
            .ok_or_else(|| fail(BmStatus::Input, "n_orgs is too large"))?;
        // SAFETY: the caller's contract.
        let keys = unsafe { bytes(org_keys, len)? };
        let orgs = keys
            .chunks_exact(32)
            .map(operator_key)
            .collect::<Result<Vec<_>, _>>()?;
        let quorum = core::quorum(&orgs, required).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        let cosignatures = unsafe { cosignature_records(cosignatures, n_cosignatures)? };
        m.0 =
            m.0.clone()
                .require_quorum(&quorum, &cosignatures)
                .map_err(|e| from_core(&e))?;
        Ok(())
    })
}

/// The co-signatures of `n` records (NULL with 0 for none).
///
/// # Safety
/// `records` NULL with 0, or valid for `n` records whose buffers are valid
/// as their lengths say.
unsafe fn cosignature_records(
    records: *const BmCoSignature,
    n: usize,
) -> Result<Vec<core::CoSignature>, BmStatus> {
    let records: &[BmCoSignature] = if n == 0 {
        &[]
    } else if records.is_null() {
        return Err(fail(BmStatus::Null, "cosignatures is NULL"));
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(records, n) }
    };
    let mut fields = Vec::with_capacity(records.len());
    for r in records {
        // SAFETY: the caller's contract, for each buffer.
        let (key, name, sig) = unsafe {
            (
                bytes(r.org_key, r.org_key_len)?,
                bytes(r.name, r.name_len)?,
                bytes(r.signature, r.signature_len)?,
            )
        };
        // A name that is not UTF-8 cannot be the one signed: left out, as
        // the core leaves out any co-signature that does not decode.
        if let Ok(name) = std::str::from_utf8(name) {
            fields.push((key, name, sig));
        }
    }
    Ok(core::cosignatures(fields))
}

/// The operator's transparency log an app pins (SPEC 16.6).
pub struct BmLogPolicy(core::LogPolicy);

/// Parses a policy file's text (c2sp.org/tlog-policy: `log VKEY`,
/// `witness NAME VKEY`, `group ...`, `quorum ...`; UTF-8, `len` bytes) into
/// `*out` (free it with [`bm_log_policy_free`]). `BM_STATUS_LOG` naming the
/// line that is wrong.
///
/// # Safety
/// `text` valid for `len` bytes; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_log_policy_parse(
    text: *const u8,
    len: usize,
    out: *mut *mut BmLogPolicy,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let text = unsafe { bytes(text, len)? };
        let text = std::str::from_utf8(text)
            .map_err(|_| fail(BmStatus::Input, "the log policy is not UTF-8"))?;
        let policy = core::log_policy(text).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmLogPolicy(policy)) }
    })
}

/// Frees a log policy.
///
/// # Safety
/// `p` is NULL or a policy not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_log_policy_free(p: *mut BmLogPolicy) {
    // SAFETY: the caller's contract.
    unsafe { free(p) }
}

/// Requires `m` to be in the operator's transparency log under a checkpoint
/// `policy` accepts (SPEC 16.6): `proof` is the response's `log_proof`
/// (`proof_len` bytes), `consistency` its `log_consistency` hashes (32
/// bytes each, `n_consistency` of them, one after the other), for the
/// request's `log_size` ([`bm_history_log_size`]); `cosignatures` are the
/// response's. On success `m` carries the checkpoint, which
/// [`bm_history_check`] requires to extend the one accepted before; on
/// failure it is unchanged. `BM_STATUS_LOG`: no proof, a failing one, or
/// too few witnesses (the message says which).
///
/// # Safety
/// `m` live and not used by another thread meanwhile; `policy` live;
/// buffers as their lengths say; `cosignatures` as for
/// [`bm_manifest_require_quorum`].
#[unsafe(no_mangle)]
#[allow(
    clippy::too_many_arguments,
    reason = "a C function takes its buffers one by one"
)]
pub unsafe extern "C" fn bm_manifest_require_logged(
    m: *mut BmManifest,
    policy: *const BmLogPolicy,
    proof: *const u8,
    proof_len: usize,
    consistency: *const u8,
    n_consistency: usize,
    cosignatures: *const BmCoSignature,
    n_cosignatures: usize,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (m, policy) = unsafe { (object_mut(m, "manifest")?, object(policy, "log policy")?) };
        let len = n_consistency
            .checked_mul(32)
            .ok_or_else(|| fail(BmStatus::Input, "n_consistency is too large"))?;
        // SAFETY: the caller's contract, for each buffer.
        let (proof, consistency) = unsafe { (bytes(proof, proof_len)?, bytes(consistency, len)?) };
        let hashes: Vec<Vec<u8>> = consistency.chunks_exact(32).map(<[u8]>::to_vec).collect();
        // SAFETY: the caller's contract.
        let cosignatures = unsafe { cosignature_records(cosignatures, n_cosignatures)? };
        m.0 =
            m.0.clone()
                .require_logged(&policy.0, proof, &hashes, &cosignatures)
                .map_err(|e| from_core(&e))?;
        Ok(())
    })
}

/// The size of the log checkpoint [`bm_manifest_require_logged`] proved
/// `m` in (0 for NULL, or before it was checked).
///
/// # Safety
/// `m` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_log_size(m: *const BmManifest) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { m.as_ref() }
        .and_then(|m| m.0.log_checkpoint())
        .map_or(0, |c| c.checkpoint().size)
}

/// The names of the organisations [`bm_manifest_require_quorum`] counted,
/// one per line (UTF-8, `\n` after each), copied to `(out, cap)` if it
/// fits; returns its length (0 for NULL, or before the quorum was checked).
///
/// # Safety
/// `m` NULL or live; `out` NULL or valid for writing `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_cosigners(
    m: *const BmManifest,
    out: *mut u8,
    cap: usize,
) -> usize {
    // SAFETY: the caller's contract.
    match unsafe { m.as_ref() } {
        Some(m) => {
            let names: String =
                m.0.cosigners()
                    .iter()
                    .map(|(_, n)| format!("{}\n", n.as_str()))
                    .collect();
            // SAFETY: the caller's contract.
            unsafe { write_out(names.as_bytes(), out, cap) }
        }
        None => 0,
    }
}

/// Frees a manifest.
///
/// # Safety
/// `m` is NULL or a manifest not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_manifest_free(m: *mut BmManifest) {
    // SAFETY: the caller's contract.
    unsafe { free(m) }
}

/// The newest manifest verified, against rollback and equivocation.
pub struct BmHistory(core::History);

/// A history pinned to the 32-byte operator key, restored from `saved`
/// (what [`bm_history_encode`] wrote; empty for a new history).
///
/// # Safety
/// Buffers as the conventions say; `out` valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_new(
    operator_key_bytes: *const u8,
    operator_key_len: usize,
    saved: *const u8,
    saved_len: usize,
    out: *mut *mut BmHistory,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract, for each buffer.
        let (key, saved) = unsafe {
            (
                bytes(operator_key_bytes, operator_key_len)?,
                bytes(saved, saved_len)?,
            )
        };
        let h = core::History::restore(operator_key(key)?, saved).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmHistory(h)) }
    })
}

/// The size of the newest log checkpoint `h` accepted (0 for NULL or
/// none): send it as the `GetManifest` request's `log_size`.
///
/// # Safety
/// `h` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_log_size(h: *const BmHistory) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { h.as_ref() }.map_or(0, |h| h.0.log_size())
}

/// A manifest [`bm_history_check`] accepted: what [`bm_history_record`]
/// takes once the table is in hand.
pub struct BmAccepted(core::Accepted);

/// `BM_STATUS_ROLLBACK` or `BM_STATUS_EQUIVOCATION` if `m` must be refused,
/// `BM_STATUS_LOG` if `h` accepted a logged manifest before and `m` is not
/// logged or its checkpoint does not extend that one;
/// otherwise writes to `*out` the token [`bm_history_record`] takes (or
/// [`bm_accepted_free`] frees, if the table never arrives).
///
/// # Safety
/// `h` and `m` are NULL or live objects; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_check(
    h: *const BmHistory,
    m: *const BmManifest,
    out: *mut *mut BmAccepted,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (h, m) = unsafe { (object(h, "history")?, object(m, "manifest")?) };
        let accepted = h.0.check(&m.0).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmAccepted(accepted)) }
    })
}

/// Records the manifest `accepted` stands for as the newest (once its table
/// is in hand), and frees `accepted`.
///
/// # Safety
/// `h` NULL or a live history not used by another thread; `accepted` NULL
/// or a token from [`bm_history_check`] not freed before (it is freed
/// here, whatever the status).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_record(
    h: *mut BmHistory,
    accepted: *mut BmAccepted,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract: a token of ours, not freed before.
        let accepted = (!accepted.is_null()).then(|| unsafe { Box::from_raw(accepted) });
        // SAFETY: the caller's contract.
        let h = unsafe { object_mut(h, "history")? };
        let accepted = accepted.ok_or_else(|| fail(BmStatus::Null, "accepted is NULL"))?;
        h.0.record(accepted.0);
        Ok(())
    })
}

/// Frees a token from [`bm_history_check`] that will not be recorded.
///
/// # Safety
/// `a` is NULL or a token not recorded or freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_accepted_free(a: *mut BmAccepted) {
    // SAFETY: the caller's contract.
    unsafe { free(a) }
}

/// The record to persist, copied to `(out, cap)` if it fits; returns its
/// length (0 for an empty history or NULL).
///
/// # Safety
/// `h` is NULL or a live history; `out` NULL or valid for `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_encode(h: *const BmHistory, out: *mut u8, cap: usize) -> usize {
    // SAFETY: the caller's contract.
    match unsafe { h.as_ref() } {
        // SAFETY: the caller's contract.
        Some(h) => unsafe { write_out(&h.0.encode(), out, cap) },
        None => 0,
    }
}

/// Frees a history.
///
/// # Safety
/// `h` is NULL or a history not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_history_free(h: *mut BmHistory) {
    // SAFETY: the caller's contract.
    unsafe { free(h) }
}

/// A validated table, with the manifest it was checked against (none when
/// opened unverified): the manifest says which vouchers it takes.
pub struct BmTable(core::Table);

/// A saved table (header and slots), checked to be `m`'s table and
/// validated.
///
/// # Safety
/// Buffers as the conventions say; `m` NULL or live; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_open(
    saved: *const u8,
    saved_len: usize,
    m: *const BmManifest,
    out: *mut *mut BmTable,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (saved, m) = unsafe { (bytes(saved, saved_len)?, object(m, "manifest")?) };
        let table = core::open_table(saved, &m.0).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmTable(table)) }
    })
}

/// A table validated slot by slot but checked against no signed manifest:
/// only for test vectors and tables verified some other way (whoever made
/// the table can open vouchers made with it).
///
/// # Safety
/// Buffers as the conventions say; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_open_unverified(
    encoded: *const u8,
    encoded_len: usize,
    out: *mut *mut BmTable,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let encoded = unsafe { bytes(encoded, encoded_len)? };
        let table = core::Table::decode_unverified(encoded).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmTable(table)) }
    })
}

/// Writes the table's 32-byte id to `out`.
///
/// # Safety
/// `t` is NULL or a live table; `out` valid for writing 32 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_id(t: *const BmTable, out: *mut u8) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let t = unsafe { object(t, "table")? };
        // SAFETY: the caller's contract.
        unsafe { write_out(&t.0.id().0, out, 32) };
        Ok(())
    })
}

/// The length of every voucher made for this table (0 for NULL): version
/// 1's, or in threshold mode version 2's for the manifest's s.
///
/// # Safety
/// `t` is NULL or a live table.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_voucher_len(t: *const BmTable) -> usize {
    // SAFETY: the caller's contract.
    unsafe { t.as_ref() }.map_or(0, |t| t.0.voucher_len())
}

/// Makes one voucher for the item `(item_type, value)` (item types: 1 MD5,
/// 2 SHA-1, 3 SHA-256, 4 PDQ, 5 bytes, as SPEC Section 3 numbers them)
/// carrying `ad` (at most 1,024 bytes), into `out`, which must hold
/// [`bm_table_voucher_len`] bytes: a version-1 submission of one item
/// (`BM_STATUS_MODE` for a table in threshold mode). Send a batch of them
/// under one [`bm_submission_id`].
///
/// # Safety
/// `t` NULL or live; buffers as the conventions say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_voucher(
    t: *const BmTable,
    item_type: u8,
    value: *const u8,
    value_len: usize,
    ad: *const u8,
    ad_len: usize,
    out: *mut u8,
    cap: usize,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (t, value, ad) = unsafe {
            (
                object(t, "table")?,
                bytes(value, value_len)?,
                bytes(ad, ad_len)?,
            )
        };
        let item = item(item_type, value).map_err(|e| from_core(&e))?;
        let submission =
            t.0.submission(&[(item, ad.to_vec())], &mut rand::rng())
                .map_err(|e| from_core(&e))?;
        let voucher = submission.vouchers.concat();
        if out.is_null() || cap < voucher.len() {
            return Err(fail(
                BmStatus::BufferTooSmall,
                format!("a voucher needs {} bytes", voucher.len()),
            ));
        }
        // SAFETY: the caller's contract; checked large enough.
        unsafe { write_out(&voucher, out, cap) };
        Ok(())
    })
}

/// Frees a table.
///
/// # Safety
/// `t` is NULL or a table not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_table_free(t: *mut BmTable) {
    // SAFETY: the caller's contract.
    unsafe { free(t) }
}

/// Writes a fresh random 16-byte submission id to `out`: send it with a
/// batch and again with every retry of that batch.
///
/// # Safety
/// `out` valid for writing 16 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_submission_id(out: *mut u8) -> BmStatus {
    guard(|| {
        if out.is_null() {
            return Err(fail(BmStatus::Null, "the output pointer is NULL"));
        }
        let id = core::SubmissionId::random(&mut rand::rng());
        // SAFETY: the caller's contract.
        unsafe { write_out(&id.0, out, 16) };
        Ok(())
    })
}

/// An account's secret for threshold mode (SPEC Section 14.1): the
/// platform's account id, the seed every key is derived from, and the
/// synthetic rate. Keep [`bm_account_encode`]'s bytes as the app keeps its
/// other secrets, sync them between the account's devices (all of them
/// must make shares of one polynomial), and never log them.
pub struct BmAccount(core::AccountSecret);

/// A new secret for `account_id` (1 to 64 bytes, the platform's opaque name
/// for the account) with synthetic rate `synthetic_rate` (the probability,
/// 0 to 1, that a voucher is synthetic; the app keeps it secret).
///
/// # Safety
/// Buffers as the conventions say; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_generate(
    account_id: *const u8,
    account_id_len: usize,
    synthetic_rate: f64,
    out: *mut *mut BmAccount,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let account_id = unsafe { bytes(account_id, account_id_len)? };
        let a = core::generate_account(account_id, synthetic_rate, &mut rand::rng())
            .map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmAccount(a)) }
    })
}

/// A secret saved from [`bm_account_encode`]; `BM_STATUS_ACCOUNT` for a
/// damaged one.
///
/// # Safety
/// Buffers as the conventions say; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_decode(
    saved: *const u8,
    saved_len: usize,
    out: *mut *mut BmAccount,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let saved = unsafe { bytes(saved, saved_len)? };
        let a = core::decode_account(saved).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmAccount(a)) }
    })
}

/// The secret's encoding (SPEC Section 14.1; secret), copied to
/// `(out, cap)` if it fits; returns its length (0 for NULL).
///
/// # Safety
/// `a` NULL or live; `out` NULL or valid for writing `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_encode(a: *const BmAccount, out: *mut u8, cap: usize) -> usize {
    // SAFETY: the caller's contract.
    match unsafe { a.as_ref() } {
        // SAFETY: the caller's contract. The encoding is zeroized on drop.
        Some(a) => unsafe { write_out(&a.0.encode(), out, cap) },
        None => 0,
    }
}

/// The account id, copied to `(out, cap)` if it fits; returns its length
/// (0 for NULL).
///
/// # Safety
/// `a` NULL or live; `out` NULL or valid for writing `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_id(a: *const BmAccount, out: *mut u8, cap: usize) -> usize {
    // SAFETY: the caller's contract.
    match unsafe { a.as_ref() } {
        // SAFETY: the caller's contract.
        Some(a) => unsafe { write_out(a.0.account_id(), out, cap) },
        None => 0,
    }
}

/// Frees (and zeroizes) an account secret.
///
/// # Safety
/// `a` is NULL or an account not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_free(a: *mut BmAccount) {
    // SAFETY: the caller's contract.
    unsafe { free(a) }
}

/// `(ptr, n)` as a slice of `n` values.
///
/// # Safety
/// `ptr` is NULL with `n` 0, or valid for reading `n` values.
unsafe fn values<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], BmStatus> {
    if ptr.is_null() {
        return if n == 0 {
            Ok(&[])
        } else {
            Err(fail(BmStatus::Null, format!("{what} is NULL")))
        };
    }
    // SAFETY: the caller's contract, stated in the header.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// One `SubmitRequest` for a table in threshold mode (SPEC Section 14.5):
/// `n` uploads under account `a`, each a version-2 voucher, real or (at the
/// account's secret rate) synthetic. Upload `i` is `voucher_ids[16 i ..
/// 16 i + 16]` (the platform's 16-byte id for the upload: send the same
/// upload again with the same id, so that it counts once toward t),
/// `item_types[i]`, `(values_in[i], value_lens[i])` and `(ads[i], ad_lens[i])`
/// (`ads` and `ad_lens` may both be NULL: no associated data).
///
/// Writes the vouchers one after the other to `vouchers_out` (which must
/// hold `n` × [`bm_table_voucher_len`] bytes), a fresh submission id to
/// `submission_id_out` (16 bytes), and, if `digest_out` is not NULL, the
/// batch's digest (32 bytes, SPEC Section 14.9; loggable). Send them with
/// the account id ([`bm_account_id`]) as `SubmitRequest`'s `vouchers`,
/// `submission_id` and `account_id`, and the same again on every retry.
/// Split uploads into batches of the manifest response's `max_batch` first.
///
/// `BM_STATUS_MODE` for a version-1 table or one opened unverified.
///
/// # Safety
/// `t`, `a` NULL or live; every array valid for `n` entries (or NULL with
/// `n` 0), each `values_in[i]` for `value_lens[i]` bytes and `ads[i]` for
/// `ad_lens[i]`; outputs as the conventions say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_account_submission(
    t: *const BmTable,
    a: *const BmAccount,
    n: usize,
    voucher_ids: *const u8,
    item_types: *const u8,
    values_in: *const *const u8,
    value_lens: *const usize,
    ads: *const *const u8,
    ad_lens: *const usize,
    vouchers_out: *mut u8,
    vouchers_cap: usize,
    submission_id_out: *mut u8,
    digest_out: *mut u8,
) -> BmStatus {
    guard(|| {
        let ids_len = n
            .checked_mul(core::VOUCHER_ID_LEN)
            .ok_or_else(|| fail(BmStatus::Input, format!("{n} uploads are too many")))?;
        // SAFETY: the caller's contract, for each pointer.
        let (t, a, ids, types, vals, val_lens) = unsafe {
            (
                object(t, "table")?,
                object(a, "account")?,
                values(voucher_ids, ids_len, "voucher_ids")?,
                values(item_types, n, "item_types")?,
                values(values_in, n, "values")?,
                values(value_lens, n, "value_lens")?,
            )
        };
        let (ad_ptrs, ad_sizes) = if ads.is_null() && ad_lens.is_null() {
            (None, None)
        } else {
            // SAFETY: the caller's contract.
            unsafe {
                (
                    Some(values(ads, n, "ads")?),
                    Some(values(ad_lens, n, "ad_lens")?),
                )
            }
        };
        if submission_id_out.is_null() {
            return Err(fail(BmStatus::Null, "submission_id_out is NULL"));
        }
        let mut uploads = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: the caller's contract for entry i.
            let (value, ad) = unsafe {
                (
                    bytes(vals[i], val_lens[i])?,
                    match (ad_ptrs, ad_sizes) {
                        (Some(p), Some(l)) => bytes(p[i], l[i])?,
                        _ => &[],
                    },
                )
            };
            let voucher_id = &ids[i * core::VOUCHER_ID_LEN..][..core::VOUCHER_ID_LEN];
            let upload = item(types[i], value).and_then(|item| {
                core::Upload::new(voucher_id, item, ad.to_vec()).map_err(core::Error::Input)
            });
            uploads.push(upload.map_err(|e| fail(status(e.kind()), format!("upload {i}: {e}")))?);
        }
        let batch =
            t.0.account_submission(&a.0, &uploads, &mut rand::rng())
                .map_err(|e| from_core(&e))?;
        let need: usize = batch.vouchers.iter().map(Vec::len).sum();
        if vouchers_out.is_null() && need > 0 || vouchers_cap < need {
            return Err(fail(
                BmStatus::BufferTooSmall,
                format!("{n} vouchers need {need} bytes"),
            ));
        }
        let mut at = 0;
        for v in &batch.vouchers {
            // SAFETY: the caller's contract; checked large enough.
            unsafe { write_out(v, vouchers_out.add(at), v.len()) };
            at += v.len();
        }
        // SAFETY: the caller's contract; checked non-NULL.
        unsafe { write_out(&batch.id.0, submission_id_out, core::VOUCHER_ID_LEN) };
        if !digest_out.is_null() {
            // SAFETY: the caller's contract.
            unsafe { write_out(&batch.digest, digest_out, 32) };
        }
        Ok(())
    })
}

/// A `DownloadTable` in progress.
pub struct BmDownload(Option<core::TableDownload>);

/// Starts the download of `m`'s table from offset 0.
///
/// # Safety
/// `m` NULL or live; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_download_new(
    m: *const BmManifest,
    out: *mut *mut BmDownload,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let m = unsafe { object(m, "manifest")? };
        let d = BmDownload(Some(core::TableDownload::new(&m.0)));
        // SAFETY: the caller's contract.
        unsafe { put(out, d) }
    })
}

/// The offset to request next (0 for NULL or a finished download).
///
/// # Safety
/// `d` is NULL or a live download.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_download_offset(d: *const BmDownload) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { d.as_ref() }
        .and_then(|d| d.0.as_ref())
        .map_or(0, core::TableDownload::offset)
}

/// Checks and keeps one `TableChunk`: its `offset`, `slots`, and `proof`
/// as its hashes concatenated (32 bytes each).
///
/// # Safety
/// `d` NULL or live, not shared with another thread; buffers as said.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_download_push(
    d: *mut BmDownload,
    offset: u64,
    slots: *const u8,
    slots_len: usize,
    proof: *const u8,
    proof_len: usize,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (d, slots, proof) = unsafe {
            (
                object_mut(d, "download")?,
                bytes(slots, slots_len)?,
                bytes(proof, proof_len)?,
            )
        };
        let d =
            d.0.as_mut()
                .ok_or_else(|| from_core(&core::Error::Finished("download")))?;
        if !proof.len().is_multiple_of(32) {
            return Err(fail(BmStatus::Malformed, "a proof hash is not 32 bytes"));
        }
        let hashes: Vec<&[u8]> = proof.chunks_exact(32).collect();
        d.push(offset, slots, &hashes).map_err(|e| from_core(&e))
    })
}

/// The validated table, once every chunk is in; the download is finished
/// either way (free it still).
///
/// # Safety
/// `d` NULL or live, not shared; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_download_finish(
    d: *mut BmDownload,
    out: *mut *mut BmTable,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let d = unsafe { object_mut(d, "download")? };
        let download =
            d.0.take()
                .ok_or_else(|| from_core(&core::Error::Finished("download")))?;
        let table = download.finish().map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmTable(table)) }
    })
}

/// Frees a download.
///
/// # Safety
/// `d` is NULL or a download not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_download_free(d: *mut BmDownload) {
    // SAFETY: the caller's contract.
    unsafe { free(d) }
}

/// A `DownloadDelta` in progress.
pub struct BmDelta(Option<core::DeltaDownload>);

/// Starts receiving the delta from `held` to `to`'s table.
///
/// # Safety
/// `held`, `to` NULL or live; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_delta_new(
    held: *const BmTable,
    to: *const BmManifest,
    out: *mut *mut BmDelta,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (held, to) = unsafe { (object(held, "table")?, object(to, "manifest")?) };
        // SAFETY: the caller's contract.
        unsafe { put(out, BmDelta(Some(core::DeltaDownload::new(&held.0, &to.0)))) }
    })
}

/// Adds one `DeltaChunk` (`indices`: 4-byte big-endian slot numbers).
///
/// # Safety
/// `d` NULL or live, not shared; buffers as said.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_delta_push(
    d: *mut BmDelta,
    indices: *const u8,
    indices_len: usize,
    slots: *const u8,
    slots_len: usize,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (d, indices, slots) = unsafe {
            (
                object_mut(d, "delta")?,
                bytes(indices, indices_len)?,
                bytes(slots, slots_len)?,
            )
        };
        d.0.as_mut()
            .ok_or_else(|| from_core(&core::Error::Finished("delta")))?
            .push(indices, slots)
            .map_err(|e| from_core(&e))
    })
}

/// The new table: `held` (the table the delta was started from) with the
/// delta applied, checked against the new manifest; the delta is finished
/// either way (free it still).
///
/// # Safety
/// All NULL or live, `d` not shared; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_delta_finish(
    d: *mut BmDelta,
    held: *const BmTable,
    out: *mut *mut BmTable,
) -> BmStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (d, held) = unsafe { (object_mut(d, "delta")?, object(held, "table")?) };
        let d =
            d.0.take()
                .ok_or_else(|| from_core(&core::Error::Finished("delta")))?;
        let table = d.finish(&held.0).map_err(|e| from_core(&e))?;
        // SAFETY: the caller's contract.
        unsafe { put(out, BmTable(table)) }
    })
}

/// Frees a delta.
///
/// # Safety
/// `d` is NULL or a delta not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bm_delta_free(d: *mut BmDelta) {
    // SAFETY: the caller's contract.
    unsafe { free(d) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the core lists has its own status, and the last error is
    /// the core's message.
    #[test]
    fn every_core_error_kind_has_its_own_status_and_the_cores_message() {
        let examples = core::Error::one_of_each_kind();
        let statuses: Vec<BmStatus> = examples.iter().map(from_core).collect();
        let distinct: std::collections::HashSet<i32> = statuses.iter().map(|s| *s as i32).collect();
        assert_eq!(distinct.len(), core::ErrorKind::ALL.len(), "{statuses:?}");
        assert!(!statuses.contains(&BmStatus::Ok));
        let last = examples.last().map(ToString::to_string).unwrap_or_default();
        let mut buf = vec![0u8; 256];
        // SAFETY: a buffer of 256 bytes.
        let n = unsafe { bm_last_error(buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..n - 1], last.as_bytes());
    }
}
