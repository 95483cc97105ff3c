//! `sealroom bench parties --scenario FILE [--counts 1,2,4,8] [--json]`: how a
//! session through the trusted loader scales with the number of parties
//! holding the same pooled data. The scenario's parties' rows are pooled and
//! dealt round-robin into k shards; each k runs the whole loader (evidence,
//! per-party consent, grant, hash and commitment checks, decryption,
//! training, sealing, signing). The baseline is k = 1 in the same run.

use std::path::PathBuf;
use std::time::Instant;

use sealroom_protocol::scenario::{PartySpec, Scenario};
use sealroom_trainer::local::prepare;

use super::bench::median;
use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom bench parties`.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario whose data is re-dealt.
    #[arg(long)]
    scenario: PathBuf,
    /// Party counts to measure (the first is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    counts: Vec<usize>,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    let base = Scenario::load(&args.scenario).map_err(input_err)?;
    if args.counts.is_empty() || args.counts.contains(&0) || args.runs == 0 {
        return Err(input_err(
            "--counts: positive party counts are needed; --runs: at least 1",
        ));
    }
    // Pool the parties' rows (header from the first party).
    let mut header = None;
    let mut rows: Vec<String> = Vec::new();
    for p in &base.parties {
        let path = base.resolve(&p.dataset);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| input_err(format!("{}: {e}", path.display())))?;
        let mut lines = text.lines();
        let h = lines.next().unwrap_or_default().to_string();
        if header.get_or_insert_with(|| h.clone()) != &h {
            return Err(input_err(format!(
                "{}: header differs from the first party's",
                path.display()
            )));
        }
        rows.extend(lines.filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    let header = header.unwrap_or_default();
    let dir = tempfile::tempdir().map_err(runtime_err)?;
    let mut results = Vec::new();
    let mut baseline = None;
    for &k in &args.counts {
        if k > rows.len() {
            return Err(input_err(format!(
                "--counts: {k} parties for {} rows",
                rows.len()
            )));
        }
        let mut s = base.clone();
        s.parties = (0..k)
            .map(|i| -> Result<PartySpec, crate::exit::Failure> {
                let path = dir.path().join(format!("k{k}-party{i}.csv"));
                let mut text = header.clone() + "\n";
                for r in rows.iter().skip(i).step_by(k) {
                    text.push_str(r);
                    text.push('\n');
                }
                std::fs::write(&path, text).map_err(runtime_err)?;
                Ok(PartySpec {
                    name: format!("party-{i}"),
                    dataset: path,
                    key: None,
                })
            })
            .collect::<Result<_, _>>()?;
        let prepared = prepare(&s).map_err(runtime_err)?;
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let out = prepared.run().map_err(runtime_err)?;
            times.push(t.elapsed().as_secs_f64());
            if let Some(a) = out.abort {
                return Err(runtime_err(format!(
                    "k = {k}: the loader aborted: {}",
                    a.text()
                )));
            }
        }
        let t = median(times);
        let b = *baseline.get_or_insert(t);
        results.push(serde_json::json!({"parties": k, "sealed_s": t, "ratio": t / b}));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"scenario": base.session.name, "runs": args.runs, "results": results})
        );
    } else {
        println!(
            "bench parties: {} ({} run(s), medians; ratio against {} part{})",
            base.session.name,
            args.runs,
            args.counts[0],
            if args.counts[0] == 1 { "y" } else { "ies" }
        );
        for r in &results {
            println!(
                "  {:>3} parties  {:8.3} s  {:6.3}x",
                r["parties"],
                r["sealed_s"].as_f64().unwrap_or(0.0),
                r["ratio"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
