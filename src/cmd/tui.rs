//! `sealroom tui --coordinator URL --key FILE`: the terminal UI for
//! consortium partners (crate `sealroom-tui`). Kept thin: the TUI crate
//! owns its behaviour so it can be tested without this binary.

use std::path::PathBuf;

use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom tui`.
#[derive(clap::Args)]
pub struct Args {
    /// Coordinator base URL.
    #[arg(long)]
    coordinator: String,
    /// The member's identity file (signs every request and action).
    #[arg(long)]
    key: PathBuf,
    /// Where this member keeps its records of what it signed [default: KEYFILE.sessions/]
    /// (shared with `sealroom party|owner`).
    #[arg(long)]
    state: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    sealroom_tui::run(&args.coordinator, &args.key, args.state.as_deref()).map_err(|e| match e {
        sealroom_tui::TuiError::Key { .. } | sealroom_tui::TuiError::Url(_) => input_err(e),
        other => runtime_err(other),
    })
}
