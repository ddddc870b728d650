//! Benchmarks for blindmatch.
//!
//! - `benches/protocol.rs`: criterion benches of the protocol core and the
//!   primitives it is made of (`cargo bench -p blindmatch-benches`).
//! - `blindmatch-bench` (`src/main.rs`): the whole service. It measures the
//!   physical floor (the primitives each operation must compute) and then the
//!   real thing in the same process run, and reports every figure as a ratio
//!   to its floor, since the host is shared and absolute times drift.
//! - `blindmatch-threshold-bench` (`src/threshold.rs`): the same for
//!   threshold mode (SPEC Section 14), for each synthetic bound s.
//!
//! The modules here are the pieces of `blindmatch-bench`: [`machine`] (CPU,
//! cores, backend, process memory and CPU time), [`floor`] (primitive timings),
//! [`stats`] (percentiles), [`chart`] (the SVG) and [`submit`] (retrying a
//! submission the server refused for memory).

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

pub mod chart;
pub mod floor;
pub mod items;
pub mod machine;
pub mod service;
pub mod stats;
pub mod submit;
