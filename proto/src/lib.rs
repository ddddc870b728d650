//! gRPC service definitions for blindmatch, generated at build time from
//! `proto/blindmatch/v1/blindmatch.proto` with protox (no system `protoc`).
//!
//! The messages carry the byte encodings of `papers/SPEC.md` unchanged; all
//! decoding and validation happens in `blindmatch-protocol`.

#![allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    reason = "generated code"
)]

/// Version 1 of the API.
pub mod v1 {
    tonic::include_proto!("blindmatch.v1");

    /// The encoded `FileDescriptorSet`, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("blindmatch_descriptor");
}
