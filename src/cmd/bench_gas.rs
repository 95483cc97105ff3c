//! `sealroom bench gas [--chain embedded|anvil|URL] [--l1-gas-price-gwei G] [--json]`:
//! gas of every registry step with a realistic report and SEV-SNP-sized
//! (≈2.5 KB) and TDX-sized (≈5 KB) evidence, and its cost on opBNB at the
//! documented fee levels (docs/chain.md).

use std::path::PathBuf;

use sealroom_contracts::gas::{measure, GasFigures, OpbnbFees};
use sealroom_contracts::{block_on, Chain as _, EmbeddedChain};

use crate::exit::{input_err, runtime_err, CmdResult, Failure};

/// The goal for opened + completed without evidence in storage.
const GOAL: u64 = 120_000;
/// The goal per report in a batch of ten.
const BATCH_GOAL: u64 = 30_000;

/// Arguments of `sealroom bench gas`.
#[derive(clap::Args)]
pub struct Args {
    /// embedded (default: a fresh embedded development chain in a temporary
    /// directory), anvil, or a JSON-RPC URL (spends real gas there).
    #[arg(long, default_value = "embedded")]
    chain: String,
    /// Key for --chain anvil|URL (hex in FILE; default $SEALROOM_CHAIN_KEY).
    #[arg(long, value_name = "FILE")]
    chain_key_file: Option<PathBuf>,
    /// Assumed BSC (L1) gas price in gwei for opBNB's L1 data fee.
    #[arg(long, default_value_t = 0.1)]
    l1_gas_price_gwei: f64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    if !(args.l1_gas_price_gwei.is_finite() && args.l1_gas_price_gwei >= 0.0) {
        return Err(input_err(
            "--l1-gas-price-gwei: must be a non-negative number",
        ));
    }
    let fees = OpbnbFees {
        l1_gas_price_wei: (args.l1_gas_price_gwei * 1e9).round() as u64,
        ..OpbnbFees::default()
    };
    let (label, kind, chain_id, figures) = block_on(async {
        let target = sealroom_contracts::ChainTarget::parse(&args.chain)
            .map_err(|e| input_err(format!("--chain: {e}")))?;
        if target == sealroom_contracts::ChainTarget::Embedded {
            let dir = tempfile::tempdir().map_err(runtime_err)?;
            let chain = EmbeddedChain::open(dir.path()).map_err(runtime_err)?;
            let f = measure(&chain).await.map_err(runtime_err)?;
            Ok::<_, Failure>((chain.label(), chain.kind(), chain.chain_id(), f))
        } else {
            let (chain, _) =
                super::chain::connect_rpc(&args.chain, args.chain_key_file.as_deref()).await?;
            let f = measure(&chain).await.map_err(runtime_err)?;
            Ok((chain.label(), chain.kind(), chain.chain_id(), f))
        }
    })
    .map_err(runtime_err)??;
    print(&args, &fees, &label, kind.as_str(), chain_id, &figures);
    Ok(())
}

fn bnb(wei: u128) -> f64 {
    wei as f64 / 1e18
}

fn print(args: &Args, fees: &OpbnbFees, label: &str, kind: &str, chain_id: u64, f: &GasFigures) {
    let total = f.opened_plus_completed_no_evidence();
    if args.json {
        let rows: Vec<_> = f
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "step": r.step,
                    "gas_used": r.gas_used,
                    "calldata_bytes": r.calldata_bytes,
                    "calldata_gas": r.calldata_gas,
                    "opbnb_cost_wei": fees.cost_wei(r).to_string(),
                    "opbnb_cost_bnb": bnb(fees.cost_wei(r)),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "bench": "gas",
                "chain": {"kind": kind, "label": label, "chain_id": chain_id},
                "rows": rows,
                "opened_plus_completed_no_evidence": total,
                "goal": GOAL,
                "goal_met": total <= GOAL,
                "batch_per_report": f.batch_per_report(),
                "batch_goal": BATCH_GOAL,
                "batch_goal_met": f.batch_per_report() <= BATCH_GOAL,
                "opbnb_fees": fees,
            })
        );
        return;
    }
    println!("bench gas on {label}");
    println!(
        "  {:<26} {:>9} {:>9} {:>9} {:>14}",
        "step", "gas", "calldata", "data gas", "opBNB BNB"
    );
    for r in &f.rows {
        println!(
            "  {:<26} {:>9} {:>9} {:>9} {:>14.9}",
            r.step,
            r.gas_used,
            r.calldata_bytes,
            r.calldata_gas,
            bnb(fees.cost_wei(r))
        );
    }
    println!(
        "  opened + completed without evidence: {total} gas (goal {GOAL}: {})",
        if total <= GOAL {
            "met"
        } else {
            "missed, see docs/chain.md"
        }
    );
    println!(
        "  batch of {} reports under one root: {} gas per report (goal {BATCH_GOAL}: {})",
        sealroom_contracts::gas::BATCH_REPORTS,
        f.batch_per_report(),
        if f.batch_per_report() <= BATCH_GOAL {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "  opBNB cost: L2 {} wei/gas (floor base 8 + min priority 1001), L1 data fee at an assumed {} gwei BSC gas price",
        fees.l2_gas_price_wei, args.l1_gas_price_gwei
    );
}
