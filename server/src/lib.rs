//! blindmatch match server.
//!
//! Empty until the match-service work lands. Table building and voucher
//! matching already live in [`blindmatch_protocol`]; this crate will add the
//! gRPC service, the match store and the operator CLI around them.

pub use blindmatch_protocol as protocol;
