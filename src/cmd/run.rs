//! `sealroom run SCENARIO [--out DIR] [--chain embedded|anvil|URL] [--contract ADDR] [--json]`:
//! wiring for `sealroom-runner` (which plays every member, runs the
//! coordinator and the node, publishes and verifies): arguments in, the
//! summary out, the exit code from the outcome.

use std::path::PathBuf;

use sealroom_protocol::api::SessionState;
use sealroom_runner::RunOptions;

use crate::exit::{CmdResult, Failure};

/// Arguments of `sealroom run`.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario file (see scenarios/README.md).
    scenario: PathBuf,
    /// Output directory [default: runs/NAME-TIMESTAMP, or NAME-TIMESTAMP-2, -3 … for runs started in the same second]; must not exist or be empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Chain: `embedded` (in-process EVM, default), `anvil` (starts a local anvil), or a JSON-RPC URL
    /// (key from --chain-key-file or SEALROOM_CHAIN_KEY). Overrides the scenario's [chain] target.
    #[arg(long)]
    chain: Option<String>,
    /// Use an already deployed registry at this address.
    #[arg(long)]
    contract: Option<String>,
    /// File holding the chain key (never on the command line).
    #[arg(long)]
    chain_key_file: Option<PathBuf>,
    /// Print one JSON object on stdout and nothing else there.
    #[arg(long)]
    json: bool,
    /// Test hook: flip one byte of this input's blob in the coordinator's blob
    /// store after upload, before the node reads it (the node must abort).
    #[arg(long, hide = true)]
    corrupt_blob_at_rest: Option<String>,
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    // The node is its own binary (the measured image); find it before
    // starting anything, so a missing one is exit 2 saying how to build it.
    let node_exe = super::node::node_exe()?;
    let opts = RunOptions {
        scenario: args.scenario,
        out: args.out,
        chain: args.chain,
        contract: args.contract,
        chain_key_file: args.chain_key_file,
        json: args.json,
        corrupt_blob_at_rest: args.corrupt_blob_at_rest,
        node_exe,
    };
    let report = sealroom_runner::run(&opts).map_err(crate::flows::run_failure)?;
    if opts.json {
        println!("{}", report.summary);
    } else {
        print_human(&report.summary, &report.verification);
    }
    if report.state == SessionState::Aborted {
        let reason = report.abort_reason.unwrap_or_default();
        let mut parts = reason.splitn(3, ": ");
        let input = parts.next().unwrap_or("");
        let check = parts.next().unwrap_or("");
        return Err(Failure::Verification {
            check: format!("session aborted: {input}: {check}"),
            detail: parts.next().unwrap_or(&reason).to_string(),
        });
    }
    if !report.verification.verified {
        let f = report
            .verification
            .failure
            .unwrap_or_else(|| sealroom_reports::verifier::Check {
                check: "unknown".into(),
                ok: false,
                detail: String::new(),
            });
        return Err(Failure::Verification {
            check: f.check,
            detail: f.detail,
        });
    }
    Ok(())
}

fn print_human(s: &serde_json::Value, v: &sealroom_reports::verifier::Verification) {
    let g = |p: &str| {
        s.pointer(p)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!();
    println!("session      {}", g("/session_id"));
    println!("manifest     {}", g("/manifest_hash"));
    if v.insecure_simulation {
        println!(
            "tee          sim — INSECURE SIMULATION: no TEE protected this run (development only)"
        );
    } else {
        println!("tee          {}", g("/tee"));
    }
    println!(
        "chain        {}, registry {}",
        g("/chain/label"),
        g("/chain/contract")
    );
    if let Some(reports) = s.get("reports").and_then(|r| r.as_array()) {
        for r in reports {
            println!(
                "report       {:<9} tx {} block {} gas {}",
                r["kind"].as_str().unwrap_or(""),
                r["tx_hash"].as_str().unwrap_or("-"),
                r["block"],
                r["gas_used"]
            );
        }
    }
    if s.get("model").is_some_and(|m| !m.is_null()) {
        println!(
            "model        {} (sha256 {})",
            g("/model/path"),
            g("/model/sha256")
        );
        let m = &s["model"]["metrics"];
        if let (Some(r2), Some(rmse)) = (m["r2"].as_f64(), m["rmse"].as_f64()) {
            println!("R²           {r2:.3}, RMSE {rmse:.3}{}", validated_on(m));
        } else {
            println!("accuracy     {}", accuracy_line(m));
        }
    } else {
        println!("aborted      {}", g("/abort_reason"));
    }
    println!(
        "verification {}",
        if v.verified {
            format!("VERIFIED from the chain ({})", v.outcome)
        } else {
            "FAILED".into()
        }
    );
    super::report::print_checks(&v.checks);
    println!("timings      {}", timings_line(&s["timings_s"]));
    for w in s["warnings"].as_array().into_iter().flatten() {
        println!(
            "{:<13}{}: {}",
            w["severity"].as_str().unwrap_or("warning"),
            w["field"].as_str().unwrap_or(""),
            w["message"].as_str().unwrap_or("")
        );
    }
    println!("output       {}", g("/out"));
}

/// `0.917 (33/36 correct) on …`, naming the set the accuracy was measured
/// on: the owner's validation set, or the split held out of the pooled data.
/// (The summary JSON keeps the full-precision value.)
fn accuracy_line(m: &serde_json::Value) -> String {
    let Some(acc) = m["accuracy"].as_f64() else {
        return "not reported".into();
    };
    let mut s = format!("{acc:.3}");
    if let Some(n) = m["validation_records"].as_u64().filter(|n| *n > 0) {
        let correct = (acc * n as f64).round() as u64;
        s.push_str(&format!(" ({correct}/{n} correct)"));
    }
    s.push_str(&validated_on(m));
    s
}

/// ` on the owner's validation set`, ` on the held-out split …`: where a
/// metric was measured.
fn validated_on(m: &serde_json::Value) -> String {
    match m["validated_on"].as_str() {
        Some("held-out-split") => {
            let mut s = " on the held-out split of the pooled data".to_string();
            if let Some(f) = m["validation_split"].as_f64() {
                s.push_str(&format!(" (validation_split {f})"));
            }
            s
        }
        Some(_) => " on the owner's validation set".into(),
        None => String::new(),
    }
}

/// Each phase's seconds with two decimals (the summary JSON keeps them exact).
fn timings_line(t: &serde_json::Value) -> String {
    ["commit", "attest", "train", "publish", "verify", "total"]
        .iter()
        .filter_map(|k| t[*k].as_f64().map(|v| format!("{k} {v:.2} s")))
        .collect::<Vec<_>>()
        .join(", ")
}
