//! blindmatch match server.
//!
//! Table building and voucher matching live in [`blindmatch_protocol`]; this
//! crate wraps them for the operator. For now it carries the `demo` command,
//! which runs the whole protocol in one process; the gRPC service, the match
//! store and the `keygen`/`build`/`serve`/`matches` commands come with the
//! match-service work.

pub mod demo;

pub use blindmatch_protocol as protocol;
