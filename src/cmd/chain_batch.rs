//! `sealroom chain publish-batch` and `sealroom chain check-batch` (see
//! `chain.rs` for the usage line): many sessions' reports in one
//! transaction under one Merkle root, and the check of a report's inclusion
//! offline and in the EVM.

use alloy_primitives::{Address, B256};
use sealroom_contracts::batch::{BatchEntry, ReportBatch};
use sealroom_contracts::{block_on, AnyChain, Chain as _, EmbeddedChain, Registry};
use sealroom_reports::verifier::{verify_bundle, Bundle};
use serde::{Deserialize, Serialize};

use super::chain::{chain_failure, connect_rpc, BatchArgs, BatchChain, CheckBatchArgs};
use crate::exit::{input_err, runtime_err, CmdResult, Failure};

/// Format tag of proofs files.
const PROOFS_FORMAT: &str = "sealroom-batch-proofs/1";

/// What `publish-batch` writes: enough to prove each report's inclusion
/// offline and to find the transaction that carries every byte.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Proofs {
    format: String,
    root: B256,
    contract: String,
    chain_id: u64,
    tx_hash: B256,
    block: u64,
    gas_used: u64,
    reports: Vec<ProvedReport>,
}

/// One report of the batch.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvedReport {
    /// The bundle it came from.
    bundle: String,
    session_id: B256,
    kind: String,
    report_hash: B256,
    /// `abi.encode(report)` hex.
    report_abi: String,
    /// The node's signature hex.
    signature: String,
    /// Position in the batch.
    index: usize,
    proof: Vec<B256>,
}

fn contract_of(c: &str) -> Result<Address, Failure> {
    c.parse::<Address>()
        .map_err(|_| input_err(format!("--contract {c}: not an address")))
}

/// The chain `--chain SPEC` (signing, RPC) or `--chain-dir DIR` (embedded) names.
async fn open_chain(on: &BatchChain) -> Result<(AnyChain, u64), Failure> {
    match (&on.chain, &on.chain_dir) {
        (Some(spec), None) => {
            let (c, conf) = connect_rpc(spec, on.chain_key_file.as_deref()).await?;
            Ok((c.into(), conf))
        }
        (None, Some(dir)) => {
            let c = EmbeddedChain::open(dir)
                .map_err(|e| input_err(format!("--chain-dir {}: {e}", dir.display())))?;
            Ok((c.into(), 1))
        }
        _ => Err(input_err("give --chain SPEC or --chain-dir DIR")),
    }
}

fn hex_bytes(field: &str, h: &str) -> Result<Vec<u8>, String> {
    hex::decode(h.trim_start_matches("0x")).map_err(|_| format!("{field}: not hex"))
}

/// Runs `sealroom chain publish-batch`.
pub fn publish(args: BatchArgs) -> CmdResult {
    for bundle in &args.bundles {
        crate::exit::distinct_files(&[
            ("BUNDLES", Some(bundle)),
            ("--chain-key-file", args.to.chain_key_file.as_deref()),
            ("--out", Some(&args.out)),
        ])?;
    }
    let contract = contract_of(&args.to.contract)?;
    // Every bundle is read and verified offline first: a publisher anchors
    // only reports that verify.
    let mut entries = Vec::new();
    let mut meta = Vec::new();
    for path in &args.bundles {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| input_err(format!("{shown}: {e}")))?;
        let bundle = Bundle::from_json(&text)
            .map_err(|e| input_err(format!("{shown}: not a sealroom bundle: {e}")))?;
        let v = verify_bundle(&bundle, None, None);
        if !v.verified {
            let f = v.failure.as_ref();
            return Err(Failure::Verification {
                check: f
                    .map(|c| c.check.to_string())
                    .unwrap_or_else(|| "bundle".into()),
                detail: format!(
                    "{shown}: not published: {}",
                    f.map(|c| c.detail.clone()).unwrap_or_default()
                ),
            });
        }
        for (i, r) in bundle.reports.iter().enumerate() {
            let report = hex_bytes(&format!("{shown}: reports[{i}].report_abi"), &r.report_abi)
                .map_err(input_err)?;
            let signature = hex_bytes(&format!("{shown}: reports[{i}].signature"), &r.signature)
                .map_err(input_err)?;
            entries.push(BatchEntry { report, signature });
            meta.push((shown.clone(), r.kind.clone()));
        }
    }
    let batch = ReportBatch::new(entries).map_err(|e| input_err(format!("BUNDLE: {e}")))?;
    // Nothing half-written: the proofs file is written only after the
    // transaction, and atomically; but its place is taken before anything is
    // sent, so an unwritable --out is an input mistake (exit 2) found before
    // the transaction, not after it.
    let mut proofs_file = sealroom_protocol::fsutil::AtomicFile::create(&args.out, false)
        .map_err(|e| input_err(format!("--out {}: {e}", args.out.display())))?;
    let out = block_on(async {
        let (chain, confirmations) = open_chain(&args.to).await?;
        let registry = Registry::at(&chain, contract).with_confirmations(confirmations);
        // Idempotent: a rerun (e.g. after a crash before the proofs file
        // was written) sends nothing and finds the original transaction.
        let tx = registry
            .publish_batch(&batch)
            .await
            .map_err(|e| runtime_err(format!("publishBatch: {e}")))?;
        Ok::<_, Failure>((tx, chain.chain_id()))
    })
    .map_err(|e| chain_failure("--chain", e))??;
    let (tx, chain_id) = out;
    let reports = batch
        .entries()
        .iter()
        .zip(meta)
        .enumerate()
        .map(|(index, (e, (bundle, kind)))| {
            Ok(ProvedReport {
                bundle,
                session_id: e.session_id(),
                kind,
                report_hash: e.report_hash(),
                report_abi: hex::encode(&e.report),
                signature: hex::encode(&e.signature),
                index,
                proof: batch.proof(index).map_err(runtime_err)?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let proofs = Proofs {
        format: PROOFS_FORMAT.into(),
        root: batch.root(),
        contract: contract.to_string(),
        chain_id,
        tx_hash: tx.tx_hash,
        block: tx.block_number,
        gas_used: tx.gas_used,
        reports,
    };
    let text = serde_json::to_vec_pretty(&proofs).map_err(runtime_err)?;
    std::io::Write::write_all(&mut proofs_file, &text)
        .and_then(|()| proofs_file.commit())
        .map_err(|e| runtime_err(format!("--out {}: {e}", args.out.display())))?;
    let n = proofs.reports.len();
    if args.to.json {
        println!(
            "{}",
            serde_json::json!({"root": proofs.root, "reports": n, "tx_hash": proofs.tx_hash,
                "already_published": tx.already_published,
                "block": proofs.block, "gas_used": proofs.gas_used,
                "gas_per_report": proofs.gas_used / n as u64, "proofs": args.out.display().to_string()})
        );
    } else {
        println!(
            "{} {n} reports under root {} in {} (block {}, {} gas, {} per report); proofs in {}",
            if tx.already_published {
                "already published:"
            } else {
                "published"
            },
            proofs.root,
            proofs.tx_hash,
            proofs.block,
            proofs.gas_used,
            proofs.gas_used / n as u64,
            args.out.display()
        );
    }
    Ok(())
}

fn fail(check: &str, detail: String) -> Failure {
    Failure::Verification {
        check: check.into(),
        detail,
    }
}

/// Runs `sealroom chain check-batch`.
pub fn check(args: CheckBatchArgs) -> CmdResult {
    let contract = contract_of(&args.on.contract)?;
    let shown = args.proofs.display().to_string();
    let text =
        std::fs::read_to_string(&args.proofs).map_err(|e| input_err(format!("{shown}: {e}")))?;
    let proofs: Proofs = serde_json::from_str(&text)
        .map_err(|e| input_err(format!("{shown}: not a proofs file: {e}")))?;
    if proofs.format != PROOFS_FORMAT {
        return Err(input_err(format!(
            "{shown}: format: `{}` is not {PROOFS_FORMAT}",
            proofs.format
        )));
    }
    // Offline: each report's bytes hash to its claimed hash, name its
    // session, and prove under the root.
    let mut entries = Vec::new();
    for r in &proofs.reports {
        let at = format!("{shown}: reports[{}]", r.index);
        let e = BatchEntry {
            report: hex_bytes(&format!("{at}.report_abi"), &r.report_abi).map_err(input_err)?,
            signature: hex_bytes(&format!("{at}.signature"), &r.signature).map_err(input_err)?,
        };
        if e.report_hash() != r.report_hash || e.session_id() != r.session_id {
            return Err(fail(
                "batch.report",
                format!(
                    "{at}: the report bytes do not hash to report_hash or name another session"
                ),
            ));
        }
        if !ReportBatch::proves(proofs.root, &e, &r.proof) {
            return Err(fail(
                "batch.proof",
                format!("{at}: the proof does not lead to root {}", proofs.root),
            ));
        }
        entries.push((e, r));
    }
    block_on(async {
        let (chain, _) = open_chain(&args.on).await?;
        let registry = Registry::at(&chain, contract);
        let block = registry
            .batch_block(proofs.root)
            .await
            .map_err(|e| runtime_err(format!("batchBlock: {e}")))?
            .ok_or_else(|| {
                fail(
                    "batch.root",
                    format!("root {} was never published on this registry", proofs.root),
                )
            })?;
        for (e, r) in &entries {
            let ok = registry
                .verify_inclusion(proofs.root, e.leaf(), &r.proof)
                .await
                .map_err(|e| runtime_err(format!("verifyInclusion: {e}")))?;
            if !ok {
                return Err(fail(
                    "batch.proof",
                    format!("report {}: verifyInclusion in the EVM returned false", r.index),
                ));
            }
        }
        // The transaction's calldata rebuilds the same root: the chain
        // holds every report byte.
        let tx = chain
            .transaction(proofs.tx_hash)
            .await
            .map_err(|e| runtime_err(format!("transaction {}: {e}", proofs.tx_hash)))?
            .ok_or_else(|| fail("batch.calldata", format!("no transaction {}", proofs.tx_hash)))?;
        let call = <sealroom_contracts::SessionRegistry::publishBatchCall as sealroom_contracts::alloy_sol_types::SolCall>::abi_decode(&tx.input)
            .map_err(|e| fail("batch.calldata", format!("{}: not a publishBatch call: {e}", proofs.tx_hash)))?;
        let onchain = ReportBatch::decode(&call.reports)
            .map_err(|e| fail("batch.calldata", e.to_string()))?;
        if call.root != proofs.root || onchain.root() != proofs.root || tx.to != Some(contract) {
            return Err(fail(
                "batch.calldata",
                format!("transaction {} does not publish root {} to {contract}", proofs.tx_hash, proofs.root),
            ));
        }
        if args.on.json {
            println!(
                "{}",
                serde_json::json!({"verified": true, "root": proofs.root, "block": block, "reports": entries.len()})
            );
        } else {
            println!(
                "VERIFIED: {} reports under root {} (published in block {block}; each proof checked offline and by verifyInclusion; the calldata rebuilds the root)",
                entries.len(),
                proofs.root
            );
        }
        Ok::<_, Failure>(())
    })
    .map_err(|e| chain_failure("--chain", e))?
}
