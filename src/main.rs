//! `sealroom`: the command-line entry point (DESIGN §7).
#![forbid(unsafe_code)]

mod cmd;
mod exit;
mod flows;

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
    /// Run a whole session from a scenario: members, coordinator, sim node, chain, owner, regulator.
    Run(cmd::run::Args),
    /// Create an identity (ed25519 signing key + X25519 receiving key).
    Keygen(cmd::keygen::Args),
    /// Verify published reports (bundle or chain), write bundles, prove and check inclusion.
    Report(cmd::report::Args),
    /// Run a TEE node for a session (`node run --coordinator URL --tee sim`): executes the sealroom-node binary beside this one.
    Node(cmd::node::Args),
    /// The trainer engine: print the measurement of a sealroom-node binary, to pin in a scenario.
    #[command(subcommand)]
    Engine(cmd::engine::EngineCmd),
    /// A consortium member's side of a session: join, consent, commit, grant, status.
    Party(cmd::party::Args),
    /// The model owner's side: create a session, fetch and open the model.
    Owner(cmd::owner::Args),
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
    /// The coordinator: session service over HTTP (state machine, persistence, blob store, report publication).
    #[command(subcommand)]
    Coordinator(cmd::coordinator::CoordinatorCmd),
    /// Terminal UI for consortium partners: follow sessions, consent, upload, grant, fetch the model.
    Tui(cmd::tui::Args),
    /// The owner's opened model outside sealroom: evaluate, predict, export (safetensors + model card).
    #[command(subcommand)]
    Model(cmd::model::ModelCmd),
    /// Differential privacy: ε of DP-SGD with the RDP accountant, or the σ for a target ε.
    #[command(subcommand)]
    Dp(cmd::dp::DpCmd),
}

/// A reader that stops early (`sealroom report verify … | head`) closes
/// stdout; `println!` then panics with "failed printing to stdout: Broken
/// pipe". That is not a failure of the command: end quietly with the status
/// a shell gives a process ended by SIGPIPE (128 + 13), as other Unix tools
/// do, instead of printing a panic and a backtrace.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Node(a) => cmd::node::run(a),
        Command::Engine(c) => cmd::engine::run(c),
        Command::Party(a) => cmd::party::run(a),
        Command::Owner(a) => cmd::owner::run(a),
        Command::Commit(a) => cmd::commit::run(a),
        Command::Scenario(a) => cmd::scenario::run(a),
        Command::Attest(a) => cmd::attest::run(a),
        Command::Chain(c) => cmd::chain::run(c),
        Command::Bench(b) => cmd::bench::run(b),
        Command::Coordinator(c) => cmd::coordinator::run(c),
        Command::Tui(a) => cmd::tui::run(a),
        Command::Model(c) => cmd::model::run(c),
        Command::Dp(c) => cmd::dp::run(c),
    };
    if let Err(failure) = result {
        eprintln!("error: {failure}");
        std::process::exit(failure.code());
    }
}
