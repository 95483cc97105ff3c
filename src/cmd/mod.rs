//! One module per subcommand.

pub mod attest;
pub mod bench;
pub mod bench_commit;
pub mod bench_gas;
pub mod bench_overhead;
pub mod bench_parties;
pub mod bench_train;
pub mod bench_verify;
pub mod chain;
pub mod chain_batch;
pub mod commit;
pub mod coordinator;
pub mod dp;
pub mod engine;
pub mod keygen;
pub mod model;
pub mod node;
pub mod owner;
pub mod party;
pub mod report;
pub mod run;
pub mod scenario;
pub mod tui;
