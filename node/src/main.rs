//! `sealroom-node`: the TEE node, a binary of its own so that what parties
//! pin (its SHA-256 in simulation, the image holding it on a confidential VM)
//! changes only when the node's code does. `sealroom node …` runs it.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

/// The sealroom TEE node: registers with evidence, waits for the parties'
/// grants, checks every input, trains, seals the model to the owner and
/// uploads the signed reports.
#[derive(Parser)]
#[command(name = "sealroom-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one session as a node (`run --coordinator URL --tee sim`).
    Run(sealroom_node::session::RunArgs),
    /// Serve sessions one after another, each with fresh keys and evidence
    /// (`serve --coordinator URL --tee sim [--max-sessions N]`).
    Serve(sealroom_node::session::ServeArgs),
}

fn main() {
    // clap exits 2 on a usage error (an unknown --tee value names the flag).
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => sealroom_node::session::run(a),
        Command::Serve(a) => sealroom_node::session::serve(a),
    };
    if let Err(failure) = result {
        eprintln!("error: {failure}");
        std::process::exit(failure.code());
    }
}
