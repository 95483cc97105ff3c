//! `sealroom scenario check FILE [--json]`: validate a scenario file, its
//! datasets and key files, and print what the session would be.

use std::path::PathBuf;

use sealroom_protocol::scenario::Scenario;

use crate::exit::{input_err, CmdResult};

/// Arguments of `sealroom scenario`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Validate a scenario (exit 2 with every problem as file:line: field: message).
    Check {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    match args.action {
        Action::Check { file, json } => {
            let s = Scenario::load(&file).map_err(input_err)?;
            if json {
                let v = serde_json::json!({
                    "valid": true,
                    "session": s.session.name,
                    "parties": s.parties.iter().map(|p| serde_json::json!({
                        "name": p.name,
                        "dataset": s.resolve(&p.dataset).display().to_string(),
                    })).collect::<Vec<_>>(),
                    "owner": s.owner.name,
                    "model": s.model,
                    "training": s.training,
                    "policy": s.policy,
                    "chain": s.chain,
                });
                println!("{v}");
            } else {
                println!("{}: valid", file.display());
                println!("  session   {}", s.session.name);
                println!(
                    "  parties   {}",
                    s.parties
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("  owner     {}", s.owner.name);
                println!("  model     {:?} hidden={:?}", s.model.kind, s.model.hidden);
                println!(
                    "  training  {} epochs, batch {}, {:?} lr {}, seed {}",
                    s.training.epochs,
                    s.training.batch_size,
                    s.training.optimizer,
                    s.training.learning_rate,
                    s.training.seed
                );
                println!(
                    "  policy    kinds {:?}, allow_simulation {}",
                    s.policy.accepted_kinds, s.policy.allow_simulation
                );
                println!("  chain     {}", s.chain.target);
            }
            Ok(())
        }
    }
}
