//! # blindmatch-client-core
//!
//! The blindmatch client without I/O: everything a client decides, and none
//! of how it talks. No network, no files, no clock, no threads of its own
//! (unless the `parallel` feature validates tables on all cores). The app
//! keeps its own gRPC stack (tonic, grpc-kotlin, grpc-swift, grpcio, Connect
//! or gRPC-Web) and hands this crate the bytes it received; this crate says
//! whether to trust them and what to send next. The Rust client
//! (`blindmatch-client`) is this crate over tonic, and every language
//! binding under `bindings/` is a thin layer over it, so that they all
//! refuse the same things for the same reasons.
//!
//! The flow, with the RPC of `proto/blindmatch/v1/blindmatch.proto` each step
//! answers:
//!
//! 1. `GetManifest` → [`VerifiedManifest::verify`] checks the operator's
//!    signature over the statement (SPEC Section 13.3); every other field
//!    of the response is a convenience copy and is not used. [`History::check`]
//!    then refuses a rollback or a second table under one version number,
//!    and returns the [`Accepted`] token that [`History::record`] takes once
//!    the table is in hand; the app persists [`History::encode`] between
//!    runs. An app that pins list organisations first calls
//!    [`VerifiedManifest::require_quorum`] (SPEC 15.6); one that pins the
//!    operator's transparency log calls [`VerifiedManifest::require_logged`]
//!    (SPEC 16.6) with the response's proofs, having sent
//!    [`History::log_size`] in the request.
//! 2. `DownloadTable` → [`TableDownload`] checks each chunk against the
//!    signed digest as it arrives (SPEC Section 13.2) and resumes from what
//!    an interrupted download kept. Or `DownloadDelta` → [`DeltaDownload`]
//!    brings the table held up to the new version (SPEC Section 13.4).
//!    Either gives a [`Table`]: the validated table and its manifest.
//! 3. `Submit` ← [`Table::submission`] makes one voucher per item (SPEC
//!    Section 6) under a fresh [`SubmissionId`], with the batch's digest
//!    (SPEC Section 12.3); in threshold mode (a manifest with
//!    [`VerifiedManifest::threshold`]) [`Table::account_submission`] makes
//!    them under the account's [`AccountSecret`] (SPEC Section 14). Each
//!    refuses the other mode's table. [`Backoff`] says whether and when a
//!    failed call may be sent again, unchanged.
//!
//! Every refusal is an [`Error`] whose [`Error::kind`] is one of the flat
//! [`ErrorKind`]s each binding maps one to one, with this crate's message.
//!
//! ```
//! # use blindmatch_protocol::{ServerKey, TableBuilder, OperatorSigningKey, Manifest};
//! # use blindmatch_protocol::merkle::MerkleTree;
//! use blindmatch_client_core::{History, TableDownload, VerifiedManifest};
//! use blindmatch_protocol::{Item, ItemType};
//! # let key = ServerKey::generate(&mut rand::rng());
//! # let operator = OperatorSigningKey::generate(&mut rand::rng());
//! # let item = Item::parse(ItemType::Sha256, &"ab".repeat(32))?;
//! # let built = TableBuilder::new([7u8; 32]).build(&key, vec![item.clone()])?;
//! # let tree = MerkleTree::new(built.table.slots());
//! # let signed = Manifest::for_table(&built.table, 1, 0, None).sign(&operator);
//! # let (statement, signature) = (signed.manifest.encode(), signed.signature);
//! # let chunks = vec![(0u64, built.table.slots().to_vec(), tree.proof(0).unwrap().to_vec())];
//! let operator_key = operator.verifying_key(); // pinned in the app
//! let mut history = History::new(operator_key);
//!
//! // GetManifest: trust only the signed statement.
//! let manifest = VerifiedManifest::verify(&statement, &signature, history.operator())?;
//! let accepted = history.check(&manifest)?;
//!
//! // DownloadTable: every chunk is checked as it arrives.
//! let mut download = TableDownload::new(&manifest);
//! for (offset, slots, proof) in chunks {
//!     download.push(offset, &slots, &proof)?;
//! }
//! let table = download.finish()?;
//! history.record(accepted);
//!
//! // Submit: one voucher per item, the same size whatever it holds.
//! let batch = table.submission(&[(item, b"upload 42".to_vec())], &mut rand::rng())?;
//! assert_eq!(batch.vouchers.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cosign;
mod download;
mod error;
mod history;
#[cfg(feature = "json")]
mod json;
mod keys;
mod log;
mod submit;
mod table;

pub use blindmatch_protocol as protocol;
pub use blindmatch_protocol::audit::{CoSignature, OrgName, Quorum};
pub use blindmatch_protocol::threshold::{AccountSecret, SyntheticRate, VOUCHER_ID_LEN};
pub use blindmatch_protocol::tlog::{LogError, LogPolicy, VerifiedCheckpoint};
pub use blindmatch_protocol::{ClientTable, Item, ItemType, OperatorVerifyingKey, TableId};
pub use cosign::{cosignatures, quorum};
pub use download::{DeltaDownload, TableDownload, open_table, table_id_of, validate_table};
pub use error::{Error, ErrorKind};
pub use history::{Accepted, History, VerifiedManifest};
#[cfg(feature = "json")]
pub use json::manifest_json;
pub use keys::{decode_account, generate_account, operator_key, operator_key_from_hex};
pub use log::{log_policy, log_policy_from_keys};
pub use submit::{Backoff, GrpcCode, Submission, SubmissionId, Upload};
pub use table::Table;
