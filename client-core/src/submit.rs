//! Submissions: a batch of vouchers under an id the client sends again with
//! every retry, and the rule for when to retry.

use core::time::Duration;

use blindmatch_protocol::manifest::ThresholdParams;
pub use blindmatch_protocol::threshold::Upload;
use blindmatch_protocol::threshold::{self, AccountSecret, ThresholdVoucher, VoucherAccount};
use blindmatch_protocol::{ClientTable, Item, TableId, Voucher, submission_digest};
use rand_core::CryptoRng;

use crate::Error;

/// Names one batch of vouchers: 16 random bytes the client picks and sends
/// again with every retry of that batch, so the server stores it once
/// (SPEC Section 12.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubmissionId(pub [u8; 16]);

impl SubmissionId {
    /// A fresh random id.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        SubmissionId(id)
    }
}

impl core::fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl core::fmt::Debug for SubmissionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SubmissionId({self})")
    }
}

/// One `SubmitRequest`: send `table_id`, `vouchers`, `id` and `account_id`
/// as they are, and the same again on every retry.
#[derive(Clone, Debug)]
pub struct Submission {
    /// `SubmitRequest.submission_id`.
    pub id: SubmissionId,
    /// `SubmitRequest.table_id`: the table the vouchers are bound to.
    pub table_id: TableId,
    /// `SubmitRequest.account_id`: empty in protocol version 1, the
    /// account's id in threshold mode (SPEC Section 14).
    pub account_id: Vec<u8>,
    /// `SubmitRequest.vouchers`, encoded, all of one length whatever they
    /// hold ([`blindmatch_protocol::voucher_len`] in version 1,
    /// [`threshold::threshold_voucher_len`] in threshold mode).
    pub vouchers: Vec<Vec<u8>>,
    /// The digest the server keys its dedup on (SPEC Section 12.3): an app
    /// can log it to tell two batches apart without logging their content.
    pub digest: [u8; 32],
}

impl Submission {
    /// Version 1 (SPEC Section 6): one voucher per `(item, associated
    /// data)` under a fresh id, with the batch's digest (SPEC 12.3).
    pub(crate) fn v1<R: CryptoRng + ?Sized>(
        table: &ClientTable,
        items: &[(Item, Vec<u8>)],
        rng: &mut R,
    ) -> Result<Self, Error> {
        let vouchers = items
            .iter()
            .map(|(item, ad)| table.create_voucher(item, ad, rng))
            .collect::<Result<Vec<Voucher>, _>>()
            .map_err(Error::Input)?;
        let table_id = *table.table().id();
        Ok(Submission {
            id: SubmissionId::random(rng),
            digest: submission_digest(&table_id, &vouchers),
            table_id,
            account_id: Vec::new(),
            vouchers: vouchers.iter().map(Voucher::encode).collect(),
        })
    }

    /// Threshold mode (SPEC Section 14.5): one version-2 voucher per upload
    /// under `account`'s keys for `params`, bound to the account id, with
    /// the batch's digest (SPEC 14.9).
    pub(crate) fn threshold<R: CryptoRng + ?Sized>(
        table: &ClientTable,
        params: &ThresholdParams,
        account: &AccountSecret,
        uploads: &[Upload],
        rng: &mut R,
    ) -> Result<Self, Error> {
        let keys = account
            .keys(params.threshold(), params.synthetic_bound())
            .map_err(Error::Account)?;
        let sender = VoucherAccount {
            keys: &keys,
            account_id: account.account_id(),
            weights: params.weights(),
        };
        let vouchers = uploads
            .iter()
            .map(|u| table.create_threshold_voucher(&sender, u, rng))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Input)?;
        let table_id = *table.table().id();
        Ok(Submission {
            id: SubmissionId::random(rng),
            digest: threshold::submission_digest(&table_id, account.account_id(), &vouchers),
            table_id,
            account_id: account.account_id().to_vec(),
            vouchers: vouchers.iter().map(ThresholdVoucher::encode).collect(),
        })
    }
}

/// The gRPC status codes the retry rule looks at
/// (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrpcCode {
    /// 1: cancelled; the reference server's request timeout answers this.
    Cancelled,
    /// 2: unknown; a broken connection in some stacks.
    Unknown,
    /// 4: the deadline passed.
    DeadlineExceeded,
    /// 8: the server is out of a resource: retryable only with its hint.
    ResourceExhausted,
    /// 14: the server is starting, stopping or cannot write.
    Unavailable,
    /// Any other code: final.
    Other(u32),
}

impl From<u32> for GrpcCode {
    fn from(code: u32) -> Self {
        match code {
            1 => GrpcCode::Cancelled,
            2 => GrpcCode::Unknown,
            4 => GrpcCode::DeadlineExceeded,
            8 => GrpcCode::ResourceExhausted,
            14 => GrpcCode::Unavailable,
            other => GrpcCode::Other(other),
        }
    }
}

/// Whether, and after how long, a failed call may be sent again unchanged
/// (with a `Submit`: the same [`Submission`], so it is stored once).
///
/// A call is tried at most `attempts` times. It is retried after
/// UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED or UNKNOWN (transient: a
/// server loading its table, a connection lost), and after
/// RESOURCE_EXHAUSTED only when the server sent `grpc-retry-pushback-ms`
/// (gRFC A6: its memory budget is full); a refusal without the hint (a
/// batch over the limit, a full store) is final. The wait is the hint, or
/// the delay doubling from one try to the next, whichever is longer, plus
/// up to a quarter more at random so that many clients refused together do
/// not come back together.
#[derive(Clone, Debug)]
pub struct Backoff {
    attempt: u32,
    attempts: u32,
    delay: Duration,
}

impl Backoff {
    /// At most `attempts` tries in all (1: no retry), `first_delay` before
    /// the second. The Rust client's default is 5 from 200 ms: about 3 s,
    /// enough for a server that has just started to load a table of a few
    /// million entries.
    pub fn new(attempts: u32, first_delay: Duration) -> Self {
        Backoff {
            attempt: 1,
            attempts: attempts.max(1),
            delay: first_delay,
        }
    }

    /// After a failed try with status `code` and the value of the
    /// `grpc-retry-pushback-ms` trailer, if any: how long to wait before the
    /// next, or `None` to give up and report the failure.
    pub fn retry<R: CryptoRng + ?Sized>(
        &mut self,
        code: GrpcCode,
        pushback_ms: Option<&str>,
        rng: &mut R,
    ) -> Option<Duration> {
        if self.attempt >= self.attempts {
            return None;
        }
        let hint = match code {
            GrpcCode::ResourceExhausted => Some(Duration::from_millis(
                pushback_ms?.trim().parse::<u64>().ok()?,
            )),
            GrpcCode::Unavailable
            | GrpcCode::DeadlineExceeded
            | GrpcCode::Unknown
            | GrpcCode::Cancelled => None,
            GrpcCode::Other(_) => return None,
        };
        let wait = hint.map_or(self.delay, |h| h.max(self.delay));
        self.attempt += 1;
        self.delay = self.delay.saturating_mul(2);
        let quarter = u64::try_from(wait.as_millis() / 4).unwrap_or(u64::MAX);
        // The modulo's bias (< 2^-40 for these ranges) does not matter for
        // spreading retries.
        let jitter = rng.next_u64() % quarter.saturating_add(1);
        Some(wait + Duration::from_millis(jitter))
    }

    /// How many tries have been made.
    pub fn attempts_made(&self) -> u32 {
        self.attempt
    }
}
