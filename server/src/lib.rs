//! blindmatch match server: what a list operator runs.
//!
//! The cryptography lives in [`blindmatch_protocol`]; this crate turns it
//! into an operator's tools and a service. `src/main.rs` parses flags,
//! calls these, and prints what they return; nothing here prints.
//!
//! The operator's tools ([`cli`] declares their flags):
//!
//! - [`keyfile`]: the server's blinding key and the operator's Ed25519
//!   signing key, in files of mode 0600 that are never overwritten.
//! - [`mod@build`]: hash lists ([`lists`]: NCMEC's XML, StopNCII's and
//!   TCAP's JSON, a ThreatExchange CSV, or blindmatch's own text) into a
//!   table file ([`bundle`]): the public blinded table, the private entry
//!   index, the signed manifest and, for a version built from the previous
//!   one, the changes since; with a report of what each list gave and what
//!   was left out.
//! - [`audit`]: the list audit (SPEC Section 15): an organisation's audit
//!   bundle, and the organisations' co-signatures attached to a table file.
//! - [`tlog`]: the transparency log (SPEC Section 16): a directory of
//!   static tiles, appended to once per version and cosigned by witnesses.
//!
//! The service, started by [`serve::start`] from a [`ServeConfig`] that
//! [`config`] resolves from flags, environment and a file:
//!
//! - `service`: the gRPC services. `GetManifest`, `DownloadTable` and
//!   `DownloadDelta` stream the current version ([`wire`] builds their
//!   messages); `Submit` decodes a batch once (`submission`) and hands it
//!   to the pipeline, and acknowledges it once it is stored.
//! - `admission`, `connections`, `limits`: what one client can make the
//!   server hold (memory, connections, streams, time), refused before the
//!   work.
//! - `pipeline`: a writer thread that owns the store and match workers
//!   that open the vouchers; results are recorded on a timer of their own.
//! - [`store`]: one interface, two backends: SQLite in a data directory (the
//!   default) or PostgreSQL shared by replicas.
//! - `generation`: the versions held (the current one, and the replaced
//!   ones during their grace period) for hot swaps and key rotation.
//! - [`metrics`]: Prometheus metrics on the admin listener.
//! - [`feed`]: acting on matches: `matches --follow` and the webhook
//!   (`serve --webhook`), both reading the store's match feed from a cursor.

mod admission;
pub mod audit;
pub mod build;
pub mod bundle;
pub mod cli;
pub mod config;
mod connections;
pub mod feed;
mod generation;
pub mod keyfile;
mod limits;
/// List files in every format, as `build` and the audit read them.
pub use blindmatch_lists as lists;
/// The protocol's text list parser (the `text` format of [`lists`]).
pub use blindmatch_protocol::list;
pub mod metrics;
mod pipeline;
pub mod serve;
mod service;
pub mod store;
mod submission;
pub mod tlog;
pub mod wire;

pub use blindmatch_protocol as protocol;
pub use build::{BuildKind, BuildOptions, BuildReport, build, build_from, sign_version};
pub use connections::ConnectionLimits;
pub use generation::Swap;
pub use pipeline::Retention;
pub use serve::{Limits, ServeConfig, ServerHandle, TlsFiles};
