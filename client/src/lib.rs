//! blindmatch client library.
//!
//! Empty until the match-service work lands. Voucher creation already lives in
//! [`blindmatch_protocol::ClientTable`]; this crate will add the gRPC
//! transport, table download and caching around it.

pub use blindmatch_protocol as protocol;
