//! `sealroom dp epsilon|sigma`: the RDP accountant of DP-SGD
//! (`sealroom_reports::dp`), the same code the verifier recomputes ε with.

use crate::exit::{input_err, CmdResult};
use sealroom_reports::dp;

/// What both questions share: how DP-SGD samples, for how long, and δ.
#[derive(clap::Args)]
pub struct Schedule {
    /// q: the probability that a record is in a step's batch.
    #[arg(long, allow_negative_numbers = true)]
    sample_rate: f64,
    /// Training steps (epochs / q).
    #[arg(long)]
    steps: u64,
    /// δ.
    #[arg(long, allow_negative_numbers = true)]
    delta: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `sealroom dp …`.
#[derive(clap::Subcommand)]
pub enum DpCmd {
    /// ε at δ of DP-SGD with Poisson sampling (RDP, orders 2..=256).
    Epsilon {
        /// σ: the Gaussian noise standard deviation over the clipping norm.
        #[arg(long, allow_negative_numbers = true)]
        noise_multiplier: f64,
        #[command(flatten)]
        schedule: Schedule,
    },
    /// The smallest σ whose ε at δ is at most the target.
    Sigma {
        /// The ε to reach.
        #[arg(long, allow_negative_numbers = true)]
        target_epsilon: f64,
        #[command(flatten)]
        schedule: Schedule,
    },
}

/// The flag a parameter came from.
fn flag(e: dp::DpError) -> crate::exit::Failure {
    input_err(format!("--{}: {}", e.field.replace('_', "-"), e.message))
}

/// Runs `sealroom dp …`.
pub fn run(cmd: DpCmd) -> CmdResult {
    match cmd {
        DpCmd::Epsilon {
            noise_multiplier,
            schedule:
                Schedule {
                    sample_rate,
                    steps,
                    delta,
                    json,
                },
        } => {
            let s = dp::epsilon(noise_multiplier, sample_rate, steps, delta).map_err(flag)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"epsilon": s.epsilon, "order": s.order, "accountant": "rdp", "orders": "2..=256", "delta": delta})
                );
            } else {
                println!(
                    "ε = {:.6} at δ = {delta:e} (RDP order {}; σ {noise_multiplier}, q {sample_rate}, {steps} steps, Poisson sampling, add/remove one record)",
                    s.epsilon, s.order
                );
            }
        }
        DpCmd::Sigma {
            target_epsilon,
            schedule:
                Schedule {
                    sample_rate,
                    steps,
                    delta,
                    json,
                },
        } => {
            let (sigma, s) =
                dp::sigma_for(target_epsilon, sample_rate, steps, delta).map_err(flag)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"noise_multiplier": sigma, "epsilon": s.epsilon, "order": s.order, "accountant": "rdp", "orders": "2..=256", "delta": delta})
                );
            } else {
                println!(
                    "σ = {sigma:.6} gives ε = {:.6} ≤ {target_epsilon} at δ = {delta:e} (RDP order {}; q {sample_rate}, {steps} steps)",
                    s.epsilon, s.order
                );
            }
        }
    }
    Ok(())
}
