//! gRPC service definitions for blindmatch.
//!
//! Empty until the match-service work lands: the `.proto` files and their
//! generated code will live here, built without a system `protoc`.
