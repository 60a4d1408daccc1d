//! authsync's benchmarks that span crates, and the profiling aids used to find where
//! time went (`cargo run --release -p authsync-bench --example NAME`; see
//! `bench/README.md`). Nothing here ships.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
