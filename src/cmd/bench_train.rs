//! `sealroom bench train --scenario FILE [--runs N] [--json]`: the same
//! training (data, spec, seed) on each CPU backend Burn builds offline —
//! `ndarray` (the baseline) and `flex` — in one process. Reports the median
//! training time per backend, the ratio to ndarray, whether each backend's
//! model bytes are identical run to run (replay must hold) and the model's
//! quality, so the default backend is chosen by measurement.

use std::path::PathBuf;
use std::time::Instant;

use sealroom_protocol::scenario::Scenario;
use sealroom_trainer::ml::{self, Compute};

use super::bench::median;
use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom bench train`.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario to train (its parties' CSVs pooled, its owner's
    /// validation set or split).
    #[arg(long)]
    scenario: PathBuf,
    /// Trainings per backend (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// One backend's figures.
struct Figures {
    backend: &'static str,
    median_s: f64,
    deterministic: bool,
    model_sha256: String,
    quality: String,
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    let s = Scenario::load(&args.scenario).map_err(input_err)?;
    if args.runs == 0 {
        return Err(input_err("--runs: must be at least 1"));
    }
    let (pooled, validation) = super::bench_overhead::plain_datasets(&s)?;
    let mut all = Vec::new();
    for compute in [Compute::Ndarray, Compute::Cpu] {
        let mut times = Vec::new();
        let mut hashes = Vec::new();
        let mut quality = String::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let trained = ml::train_on(
                compute,
                &s.model,
                &s.training,
                &s.schema,
                &pooled,
                validation.as_ref(),
                &mut |_| std::ops::ControlFlow::Continue(()),
            )
            .map_err(|e| runtime_err(format!("{}: {e}", compute.name())))?;
            times.push(t.elapsed().as_secs_f64());
            hashes.push(hex::encode(sealroom_protocol::hash::sha256(
                &trained.model_bytes,
            )));
            quality = match (trained.final_accuracy, trained.final_r2) {
                (Some(a), _) => format!("accuracy {a:.4}"),
                (None, Some(r2)) => format!("R² {r2:.4}"),
                _ => format!("loss {:.4}", trained.final_loss),
            };
        }
        all.push(Figures {
            backend: compute.name(),
            median_s: median(times),
            deterministic: hashes.windows(2).all(|w| w[0] == w[1]),
            model_sha256: hashes.pop().unwrap_or_default(),
            quality,
        });
    }
    let base = all[0].median_s;
    if args.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|f| {
                serde_json::json!({
                    "backend": f.backend,
                    "median_s": f.median_s,
                    "ratio_to_ndarray": f.median_s / base,
                    "deterministic": f.deterministic,
                    "model_sha256": f.model_sha256,
                    "quality": f.quality,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"scenario": s.session.name, "runs": args.runs, "records": pooled.n, "backends": rows})
        );
    } else {
        println!(
            "bench train: {} ({} records, {} run(s) per backend, medians)",
            s.session.name, pooled.n, args.runs
        );
        for f in &all {
            println!(
                "  {:<20} {:8.3} s  {:6.3}x ndarray  deterministic {}  {}  model {}…",
                f.backend,
                f.median_s,
                f.median_s / base,
                f.deterministic,
                f.quality,
                &f.model_sha256[..16.min(f.model_sha256.len())]
            );
        }
    }
    Ok(())
}
