//! `sealroom engine measure [PATH] [--json]`: the measurement to pin in a
//! scenario's `[engine] trainer_measurements` (and, for simulated nodes, a
//! policy's `measurements.sim`): the SHA-256 of the `sealroom-node` binary at
//! PATH, by default the one beside `sealroom` — the one `sealroom node run`
//! and `sealroom run` execute. The simulated platform reports exactly this
//! value, computed by the same function (`sealroom_node::measure_file`);
//! docs/trainer.md says how it relates to a confidential VM's launch
//! measurement.

use std::path::PathBuf;

use crate::exit::{input_err, CmdResult};

/// `sealroom engine …`.
#[derive(clap::Subcommand)]
pub enum EngineCmd {
    /// Print the measurement of a sealroom-node binary, to pin in `[engine] trainer_measurements`.
    Measure(MeasureArgs),
}

/// Arguments of `sealroom engine measure`.
#[derive(clap::Args)]
pub struct MeasureArgs {
    /// The sealroom-node binary (default: the one beside this `sealroom`).
    path: Option<PathBuf>,
    /// Print one JSON object: {measurement, path, bytes}.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(cmd: EngineCmd) -> CmdResult {
    match cmd {
        EngineCmd::Measure(a) => measure(a),
    }
}

fn measure(a: MeasureArgs) -> CmdResult {
    let path = match a.path {
        Some(p) => p,
        None => sealroom_node::beside_current_exe().map_err(input_err)?,
    };
    let shown = path.display().to_string();
    let bytes = std::fs::metadata(&path)
        .map_err(|e| input_err(format!("{shown}: {e}")))?
        .len();
    let m = hex::encode(sealroom_node::measure_file(&path).map_err(input_err)?);
    if a.json {
        let v = serde_json::json!({ "measurement": m, "path": shown, "bytes": bytes });
        println!("{v}");
    } else {
        println!("{m}");
        eprintln!("SHA-256 of {shown} ({bytes} bytes); pin it in the scenario:");
        eprintln!("  [engine]\n  trainer_measurements = [\"{m}\"]");
    }
    Ok(())
}
