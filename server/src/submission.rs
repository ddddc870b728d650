//! A submission, decoded once.
//!
//! A `Submit` call's vouchers are decoded for the table version they name
//! into a [`Batch`] that knows its protocol version: version 1's vouchers
//! (SPEC Section 6), or threshold mode's (SPEC 14.7) with the account they
//! are bound to and the manifest's parameters. Everything later asks the
//! batch (its digest, its account, how it is evaluated) instead of deciding
//! the version again, in the way mini-redis parses a frame once into a
//! `Command`. A batch claimed back from the store after a restart is
//! decoded by the same [`Batch::decode`].
//!
//! The walk of one submission, each step in one place:
//!
//! ```text
//! Submit ─▶ Batch::decode ─▶ writer: Store::ingest ─▶ acknowledgement
//!                                   │ (row)
//!                                   ▼
//!                         worker: Batch::evaluate ─▶ Findings
//!                                                      │
//!                               harvest: Store::complete ─▶ match records
//!                                                            (or candidates)
//! ```

use std::sync::Arc;

use blindmatch_protocol::manifest::ThresholdParams;
use blindmatch_protocol::threshold::account::MAX_ACCOUNT_ID_LEN;
use blindmatch_protocol::threshold::{Candidate, ThresholdVoucher};
use blindmatch_protocol::{Matcher, TableId, Voucher};

use crate::generation::Generation;
use crate::store::{Findings, NewCandidate, Receipt};

/// A submission's vouchers, decoded for their table's protocol version.
pub(crate) enum Batch {
    /// Protocol version 1 (SPEC Section 6).
    V1(Vec<Voucher>),
    /// Threshold mode (SPEC 14.7): every voucher bound to `account`, under
    /// the manifest's t and s.
    Threshold {
        /// The account id from `SubmitRequest.account_id`, 1 to 64 bytes.
        account: Vec<u8>,
        /// The signed manifest's parameters.
        params: ThresholdParams,
        /// The vouchers.
        vouchers: Vec<ThresholdVoucher>,
    },
}

/// Why a batch does not decode for its table version. Nothing of it is
/// stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    /// A voucher is malformed for this table (SPEC 7, step 1; 14.7).
    #[error("voucher {index}: {source}")]
    BadVoucher {
        /// Its position in the batch.
        index: usize,
        /// The protocol's reason.
        source: blindmatch_protocol::Error,
    },
    /// Threshold mode needs the account the vouchers are bound to.
    #[error(
        "account_id is {0} bytes: this table is in threshold mode (protocol version 2), which needs the account's id, 1 to 64 bytes"
    )]
    BadAccountId(usize),
    /// Version 1 has no accounts.
    #[error(
        "account_id given, but this table is not in threshold mode (protocol version 1): send no account id"
    )]
    UnexpectedAccountId,
}

impl BatchError {
    /// The metrics label of this refusal.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            BatchError::BadVoucher { .. } => "bad_voucher",
            BatchError::BadAccountId(_) | BatchError::UnexpectedAccountId => "bad_account_id",
        }
    }
}

impl Batch {
    /// Decodes `vouchers`, sent with `account` (empty: none), for
    /// `generation`'s table: its manifest says which protocol version they
    /// must be. Every voucher is validated, its Q among them (all of them
    /// decoded at once: `blindmatch_batchmul::decodes`).
    ///
    /// # Errors
    /// [`BatchError`]: an account id where there must be none or none where
    /// there must be one, or the first voucher that does not decode.
    pub(crate) fn decode(
        generation: &Generation,
        account: Vec<u8>,
        vouchers: &[Vec<u8>],
    ) -> Result<Batch, BatchError> {
        let k = generation.table.header().k;
        let bad = |(index, source)| BatchError::BadVoucher { index, source };
        match generation.manifest.manifest.threshold {
            None if !account.is_empty() => Err(BatchError::UnexpectedAccountId),
            None => Voucher::decode_batch(vouchers, k)
                .map(Batch::V1)
                .map_err(bad),
            Some(params) => {
                if account.is_empty() || account.len() > MAX_ACCOUNT_ID_LEN {
                    return Err(BatchError::BadAccountId(account.len()));
                }
                let s = params.synthetic_bound();
                let vouchers = ThresholdVoucher::decode_batch(vouchers, k, s).map_err(bad)?;
                Ok(Batch::Threshold {
                    account,
                    params,
                    vouchers,
                })
            }
        }
    }

    /// How many vouchers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Batch::V1(v) => v.len(),
            Batch::Threshold { vouchers, .. } => vouchers.len(),
        }
    }

    /// Threshold mode: the account the vouchers are bound to.
    pub(crate) fn account(&self) -> Option<&[u8]> {
        match self {
            Batch::V1(_) => None,
            Batch::Threshold { account, .. } => Some(account),
        }
    }

    /// The digest a client-chosen submission id is remembered with (SPEC
    /// 12.3; 14.9 in threshold mode, which also binds the account).
    pub(crate) fn digest(&self, table: &TableId) -> [u8; 32] {
        match self {
            Batch::V1(v) => blindmatch_protocol::submission_digest(table, v),
            Batch::Threshold {
                account, vouchers, ..
            } => blindmatch_protocol::threshold::submission_digest(table, account, vouchers),
        }
    }

    /// Opens every voucher under `matcher` with the same work whatever it
    /// holds (SPEC 7; 14.6's opening), and returns what the harvest records:
    /// the matches, or in threshold mode the candidates. A voucher that
    /// opens but is not an honest match (only a malicious client makes one)
    /// is passed to `rejected` with its index, and never recorded.
    pub(crate) fn evaluate(
        self,
        matcher: &Matcher,
        mut rejected: impl FnMut(usize, &blindmatch_protocol::Error),
    ) -> Findings {
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        match self {
            Batch::V1(vouchers) => {
                let mut matches = Vec::new();
                for (i, r) in matcher.open_batch(&vouchers).into_iter().enumerate() {
                    match r {
                        Ok(Some(m)) => matches.push((index(i), m)),
                        Ok(None) => {}
                        Err(e) => rejected(i, &e),
                    }
                }
                Findings::Matches(matches)
            }
            Batch::Threshold {
                account,
                params,
                vouchers,
            } => {
                let pairs: Vec<(&[u8], &ThresholdVoucher)> =
                    vouchers.iter().map(|v| (&account[..], v)).collect();
                let opened = matcher.open_threshold_batch(params.synthetic_bound(), &pairs);
                let mut candidates = Vec::new();
                for (i, r) in opened.into_iter().enumerate() {
                    match r {
                        Ok(Some(Candidate { share, position })) => candidates.push(NewCandidate {
                            voucher_index: index(i),
                            x: share.x(),
                            share: share.encode(),
                            position,
                        }),
                        Ok(None) => {}
                        Err(e) => rejected(i, &e),
                    }
                }
                Findings::Candidates {
                    account,
                    t: params.threshold(),
                    candidates,
                }
            }
        }
    }
}

/// A submission on its way from `Submit` to its match records: who sent
/// what, and the version it was made for.
pub(crate) struct Submission {
    /// Who, when, which table: what the store records with it.
    pub(crate) receipt: Receipt,
    /// The vouchers, decoded.
    pub(crate) batch: Batch,
    /// The version the vouchers were made for: evaluated against it even if
    /// it is replaced meanwhile.
    pub(crate) generation: Arc<Generation>,
}

impl Submission {
    /// Opens the batch under its version's key ([`Batch::evaluate`]);
    /// `rejected` hears of each rejected voucher with the receipt.
    pub(crate) fn evaluate(
        self,
        mut rejected: impl FnMut(&Receipt, usize, &blindmatch_protocol::Error),
    ) -> (Receipt, Findings) {
        let Submission {
            receipt,
            batch,
            generation,
        } = self;
        let findings = batch.evaluate(&generation.matcher, |i, e| rejected(&receipt, i, e));
        (receipt, findings)
    }
}
