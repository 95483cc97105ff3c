//! `sealroom bench …`: throughput and latency measured against a baseline run
//! alongside in the same process, so the figure that matters is a ratio.

/// The benchmarks.
#[derive(clap::Subcommand)]
pub enum Bench {
    /// commit+encrypt throughput vs a plain SHA-256 pass over the same bytes.
    Commit(super::bench_commit::Args),
    /// Median attestation verification latency per TEE kind on the real samples.
    Verify(super::bench_verify::Args),
    /// The same training plain vs through the trusted loader (verify, decrypt, train, seal, sign).
    Overhead(super::bench_overhead::Args),
    /// How a session through the loader scales with the number of parties.
    Parties(super::bench_parties::Args),
    /// The same training on each CPU backend (ndarray, flex): time, determinism, quality.
    Train(super::bench_train::Args),
    /// Gas of the registry's transactions (realistic report, SEV-SNP/TDX-sized evidence) and their opBNB cost.
    Gas(super::bench_gas::Args),
}

/// Runs a benchmark.
pub fn run(b: Bench) -> crate::exit::CmdResult {
    match b {
        Bench::Commit(a) => super::bench_commit::run(a),
        Bench::Verify(a) => super::bench_verify::run(a),
        Bench::Gas(a) => super::bench_gas::run(a),
        Bench::Overhead(a) => super::bench_overhead::run(a),
        Bench::Parties(a) => super::bench_parties::run(a),
        Bench::Train(a) => super::bench_train::run(a),
    }
}

/// Median of a non-empty sample.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
