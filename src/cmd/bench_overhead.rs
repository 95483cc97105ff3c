//! `sealroom bench overhead --scenario FILE [--runs N] [--json]`: the same
//! training run (same seed, data, model) once plain — Burn alone on the
//! plaintext, in process — and once through the trusted loader (verify every
//! signature and hash, decrypt, recompute commitments, train, seal, sign).
//! The ratio sealed/plain is the figure.

use std::path::PathBuf;
use std::time::Instant;

use sealroom_protocol::scenario::Scenario;
use sealroom_trainer::local::prepare;
use sealroom_trainer::ml::{self, Dataset};

use super::bench::median;
use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom bench overhead`.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario to train.
    #[arg(long)]
    scenario: PathBuf,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    let s = Scenario::load(&args.scenario).map_err(input_err)?;
    if args.runs == 0 {
        return Err(input_err("--runs: must be at least 1"));
    }
    let read = |p: &std::path::Path| -> Result<Dataset, crate::exit::Failure> {
        let bytes = std::fs::read(p).map_err(|e| input_err(format!("{}: {e}", p.display())))?;
        Dataset::from_csv(&bytes, &s.schema).map_err(|e| input_err(format!("{}: {e}", p.display())))
    };
    let prepared = prepare(&s).map_err(runtime_err)?;
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    let (mut plain_hash, mut sealed_hash) = (String::new(), String::new());
    for _ in 0..args.runs {
        // Plain: parse the plaintext shards and train.
        let t = Instant::now();
        let parts: Vec<Dataset> = s
            .parties
            .iter()
            .map(|p| read(&s.resolve(&p.dataset)))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&Dataset> = parts.iter().collect();
        let pooled = Dataset::concat(&refs).map_err(runtime_err)?;
        let validation = s
            .owner
            .validation
            .as_ref()
            .map(|v| read(&s.resolve(v)))
            .transpose()?;
        let trained = ml::train(
            &s.model,
            &s.training,
            &s.schema,
            &pooled,
            validation.as_ref(),
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .map_err(runtime_err)?;
        plain.push(t.elapsed().as_secs_f64());
        plain_hash = hex::encode(sealroom_protocol::hash::sha256(&trained.model_bytes));

        // Sealed: node start (keys, evidence), every check, decrypt, train, seal, sign.
        let t = Instant::now();
        let out = prepared.run().map_err(runtime_err)?;
        sealed.push(t.elapsed().as_secs_f64());
        if let Some(a) = out.abort {
            return Err(runtime_err(format!("the loader aborted: {}", a.text())));
        }
        sealed_hash = out
            .summary
            .as_ref()
            .and_then(|s| s.get("model_sha256"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
    }
    let (p, q) = (median(plain), median(sealed));
    let same_model = plain_hash == sealed_hash;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"plain_s": p, "sealed_s": q, "ratio": q / p, "runs": args.runs, "same_model": same_model})
        );
    } else {
        println!(
            "bench overhead: {} ({} run(s), medians)",
            s.session.name, args.runs
        );
        println!("  plain (Burn alone)      {p:8.3} s");
        println!("  through the loader      {q:8.3} s");
        println!("  ratio                   {:8.3}x", q / p);
        println!("  identical model bytes   {same_model}");
    }
    Ok(())
}
