//! `sealroom bench overhead --scenario FILE [--runs N] [--json]`: the same
//! training run (same seed, data, model) once plain — Burn alone on the
//! plaintext, in process — and once through the trusted loader (verify every
//! signature and hash, decrypt, recompute commitments, train, seal, sign).
//! The ratio sealed/plain is the figure. A scenario with `[privacy]` is
//! also trained plain *with* DP-SGD, so `dp_ratio` = DP ÷ non-DP training
//! on the same data, spec and seed (the loader's run is the DP one).

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

/// The scenario's party CSVs parsed and pooled (in scenario order) and the
/// owner's validation set, read in the clear: the plain side of the
/// benchmarks.
pub fn plain_datasets(s: &Scenario) -> Result<(Dataset, Option<Dataset>), crate::exit::Failure> {
    let read = |p: &std::path::Path| -> Result<Dataset, crate::exit::Failure> {
        let bytes = std::fs::read(p).map_err(|e| input_err(format!("{}: {e}", p.display())))?;
        Dataset::from_csv(&bytes, &s.schema).map_err(|e| input_err(format!("{}: {e}", p.display())))
    };
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
    Ok((pooled, validation))
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    let s = Scenario::load(&args.scenario).map_err(input_err)?;
    if args.runs == 0 {
        return Err(input_err("--runs: must be at least 1"));
    }
    let prepared = prepare(&s).map_err(runtime_err)?;
    let (mut plain, mut sealed, mut private) = (Vec::new(), Vec::new(), Vec::new());
    // Training alone (no parsing), the baseline of DP-SGD's cost.
    let mut plain_train = Vec::new();
    let (mut plain_hash, mut sealed_hash) = (String::new(), String::new());
    for _ in 0..args.runs {
        // Plain: parse the plaintext shards and train.
        let t = Instant::now();
        let (pooled, validation) = plain_datasets(&s)?;
        let t_train = Instant::now();
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
        plain_train.push(t_train.elapsed().as_secs_f64());
        plain_hash = hex::encode(sealroom_protocol::hash::sha256(&trained.model_bytes));

        // DP-SGD on the same data and seed, in process, as the node runs it.
        if let Some(spec) = &s.privacy {
            // The manifest's own rule (owner's set, or the seeded split).
            let plan = sealroom_protocol::manifest::training_schedule(
                pooled.n as u64,
                validation.is_some(),
                &s.training,
            )
            .ok_or_else(|| runtime_err("no training records"))?;
            let spec = spec.committed(&plan).map_err(input_err)?;
            // Timed from here: σ is solved when the manifest is made, not
            // by the node.
            let t = Instant::now();
            let dp = ml::DpSgd::new(&spec, s.training.seed).map_err(runtime_err)?;
            ml::train_private_on(
                ml::Compute::for_training(&s.training).map_err(input_err)?,
                &s.model,
                &s.training,
                &s.schema,
                Some(&dp),
                &pooled,
                validation.as_ref(),
                &mut |_| std::ops::ControlFlow::Continue(()),
            )
            .map_err(runtime_err)?;
            private.push(t.elapsed().as_secs_f64());
        }

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
    // A DP run draws its noise afresh (noise_source = "tee"): its model is
    // not the non-DP one, and not comparable.
    let same_model = s.privacy.is_none() && plain_hash == sealed_hash;
    let dp = (!private.is_empty()).then(|| median(private));
    let pt = median(plain_train);
    if args.json {
        let mut v = serde_json::json!({"plain_s": p, "sealed_s": q, "ratio": q / p, "runs": args.runs, "same_model": same_model, "train_s": pt});
        if let (Some(d), Some(o)) = (dp, v.as_object_mut()) {
            o.insert("dp_train_s".into(), serde_json::json!(d));
            o.insert("dp_ratio".into(), serde_json::json!(d / pt));
            o.insert("dp_sealed_ratio".into(), serde_json::json!(q / d));
        }
        println!("{v}");
    } else {
        println!(
            "bench overhead: {} ({} run(s), medians)",
            s.session.name, args.runs
        );
        println!("  plain (Burn alone)      {p:8.3} s (of which training {pt:.3} s, the rest reading and parsing)");
        println!("  through the loader      {q:8.3} s");
        println!("  ratio                   {:8.3}x", q / p);
        if let Some(d) = dp {
            println!("  training alone, non-DP  {pt:8.3} s (the plain run's training)");
            println!("  training alone, DP-SGD  {d:8.3} s");
            println!("  DP ÷ non-DP training    {:8.3}x", d / pt);
            println!("  loader ÷ DP training    {:8.3}x", q / d);
        } else {
            println!("  identical model bytes   {same_model}");
        }
    }
    Ok(())
}
