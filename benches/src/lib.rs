//! Benchmarks for blindmatch. The criterion benches live in `benches/`.
