//! `sealroom`: the command-line entry point (DESIGN §7).
#![forbid(unsafe_code)]

mod cmd;
mod exit;

use clap::{Parser, Subcommand};

/// Train one model on several parties' private data inside a TEE, with
/// signed integrity reports anyone can verify.
#[derive(Parser)]
#[command(name = "sealroom", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an identity (ed25519 signing key + X25519 receiving key).
    Keygen(cmd::keygen::Args),
    /// Commit a dataset: Merkle root over its records, encrypted blob, ciphertext hash.
    Commit(cmd::commit::Args),
    /// Scenario files: validate one and print what the session would be.
    Scenario(cmd::scenario::Args),
    /// Attestation: verify TEE evidence offline against a policy, or simulate it.
    #[command(subcommand)]
    Attest(cmd::attest::Attest),
    /// The on-chain session registry: deploy it to opBNB, anvil or any JSON-RPC node.
    #[command(subcommand)]
    Chain(cmd::chain::ChainCmd),
    /// Benchmarks (criterion-style medians, ratios against a baseline run alongside).
    #[command(subcommand)]
    Bench(cmd::bench::Bench),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Commit(a) => cmd::commit::run(a),
        Command::Scenario(a) => cmd::scenario::run(a),
        Command::Attest(a) => cmd::attest::run(a),
        Command::Chain(c) => cmd::chain::run(c),
        Command::Bench(b) => cmd::bench::run(b),
    };
    if let Err(failure) = result {
        eprintln!("error: {failure}");
        std::process::exit(failure.code());
    }
}
