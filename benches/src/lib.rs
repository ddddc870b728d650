//! Benchmarks for blindmatch.
//!
//! - `benches/protocol.rs`: criterion benches of the protocol core and the
//!   primitives it is made of (`cargo bench -p blindmatch-benches`).
//!
//! The binaries run the real thing; all but `blindmatch-bindings-bench`
//! start the real `blindmatch-server` (found next to them) as a child
//! process on loopback:
//!
//! - `blindmatch-bench` (`src/main.rs`): the whole service. It measures the
//!   physical floor (the primitives each operation must compute) and then the
//!   real thing in the same process run, and reports every figure as a ratio
//!   to its floor, since the host is shared and absolute times drift.
//! - `blindmatch-threshold-bench` (`src/threshold.rs`): the same for
//!   threshold mode (SPEC Section 14), for each synthetic bound s.
//! - `blindmatch-timing` (`src/timing.rs`): whether the server's response
//!   time tells a client that its vouchers matched (a Kolmogorov–Smirnov
//!   test of all-matching against all-non-matching batches).
//! - `blindmatch-delta` (`src/delta.rs`): the bytes a client receives for a
//!   table update, delta against full download, against the changed slots'
//!   own size.
//! - `blindmatch-flood` (`src/flood.rs`): whether the server stays up,
//!   bounded and fair while one source floods it (maximal submissions, slow
//!   senders, idle connections) and an honest client measures.
//! - `blindmatch-store-bench` (`src/store.rs`): the store's cost per voucher,
//!   SQLite against PostgreSQL, and what replicas on one PostgreSQL carry.
//! - `blindmatch-audit-bench` (`src/audit.rs`) and `blindmatch-log-bench`
//!   (`src/log.rs`): the list audit and the transparency log.
//! - `blindmatch-scale` (`src/scale.rs`): an operator's whole path at 10^7
//!   entries with the real binaries (build, the next version, start-up,
//!   memory, match load) and a client's (`blindmatch fetch`, WebAssembly
//!   validation in Node), each child's peak memory from `wait4(2)`.
//! - `blindmatch-bindings-bench` (`src/bindings.rs`): the native side of the
//!   bindings benchmark (`bindings/bench.sh`); it starts no server.
//!
//! The modules here are their shared pieces: [`args`] (the flags they
//! share), [`machine`] (CPU, cores, backend, process memory and CPU time),
//! [`floor`] (primitive timings), [`items`] (generated entries and probes),
//! [`service`] (the server as a child process, and its table), [`load`]
//! (one load window: C streams from S loopback source addresses for D
//! seconds, then until the server is idle), [`submit`] (retrying a
//! submission the server refused for memory),
//! [`stats`] (percentiles and the Kolmogorov–Smirnov test), [`report`]
//! (printing a report) and [`chart`] (the SVG).

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

pub mod args;
pub mod chart;
pub mod floor;
pub mod items;
pub mod load;
pub mod machine;
pub mod report;
pub mod service;
pub mod stats;
pub mod submit;
