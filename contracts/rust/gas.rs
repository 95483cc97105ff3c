//! Gas figures of the registry with realistic reports: what
//! `sealroom bench gas` records and docs/chain.md quotes.
//!
//! Evidence sizes: an SEV-SNP attestation report plus its VCEK certificate
//! is about 2.5 KB; a TDX DCAP quote v4 with its embedded PCK chain about
//! 5 KB. Filler bytes are pseudo-random (keccak chain) so almost every byte
//! is non-zero, the expensive case for calldata.

use alloy_primitives::{keccak256, B256};
use serde::Serialize;

use crate::chain::Chain;
use crate::registry::{Registry, RegistryError};
use sealroom_reports::report::{IntegrityReport, ReportKind};

/// SEV-SNP-sized evidence, bytes.
pub const SEV_SNP_EVIDENCE_BYTES: usize = 2_500;
/// TDX-sized evidence, bytes.
pub const TDX_EVIDENCE_BYTES: usize = 5_000;

/// Deterministic pseudo-random bytes (a keccak chain from `seed`).
pub fn filler(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut h = keccak256(seed.as_bytes());
    while out.len() < len {
        out.extend_from_slice(h.as_slice());
        h = keccak256(h);
    }
    out.truncate(len);
    out
}

/// A report filled the way the trainer fills it (every hash set, GPU-less
/// TDX, no abort reason unless aborted).
pub fn realistic_report(
    session: B256,
    manifest: B256,
    kind: ReportKind,
    prev: B256,
    evidence: &[u8],
) -> IntegrityReport {
    let completed = kind == ReportKind::Completed;
    let w = |s: &str| keccak256(s.as_bytes());
    IntegrityReport {
        version: sealroom_reports::report::REPORT_VERSION,
        kind: kind as u8,
        sessionId: session,
        manifestHash: manifest,
        inputsRoot: w("inputs"),
        prevReportHash: prev,
        nodeKey: w("node-ed25519"),
        nodeHpkeKey: w("node-x25519"),
        evidenceHash: keccak256(evidence),
        teeKind: 2,
        insecureSimulation: false,
        modelHash: if completed { w("model") } else { B256::ZERO },
        sealedModelHash: if completed { w("sealed") } else { B256::ZERO },
        ownerKey: w("owner"),
        trainingSummaryHash: if completed { w("summary") } else { B256::ZERO },
        seed: 42,
        dataOrderCommitment: w("order"),
        inputsWiped: completed,
        abortCode: if kind == ReportKind::Aborted { 7 } else { 0 },
        abortReason: if kind == ReportKind::Aborted {
            "party hospital-b: ciphertext hash mismatch".to_string()
        } else {
            String::new()
        },
        timestamp: 1_760_000_000,
        privacy: Default::default(),
    }
}

/// One measured transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GasRow {
    /// What it was.
    pub step: &'static str,
    /// Receipt `gasUsed`.
    pub gas_used: u64,
    /// Calldata length, bytes.
    pub calldata_bytes: usize,
    /// `zero_bytes * 4 + nonzero_bytes * 16` of the calldata: the `tx_data_gas`
    /// of opBNB's documented L1 data fee formula.
    pub calldata_gas: u64,
}

/// Gas of every registry step, in a fixed order (see [`STEPS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GasFigures {
    /// One row per step.
    pub rows: Vec<GasRow>,
}

/// The measured steps, in order. `replacement_opened_*`: the `opened` of a
/// second node attempt (fail-over), linking the first attempt's `opened`;
/// in practice it carries the replacement node's evidence envelope.
pub const STEPS: [&str; 12] = [
    "deploy",
    "open_session",
    "opened_no_evidence",
    "completed_no_evidence",
    "opened_sev_snp_evidence",
    "opened_tdx_evidence",
    "completed_tdx_evidence",
    "aborted_no_evidence",
    "replacement_opened_no_ev",
    "replacement_opened_tdx_ev",
    "batch_of_10_reports",
    "completed_private_no_ev",
];

/// Reports in the measured batch (the goal is per report at 10).
pub const BATCH_REPORTS: usize = 10;

/// `zero * 4 + nonzero * 16`.
pub fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|b| if *b == 0 { 4 } else { 16 }).sum()
}

impl GasFigures {
    /// Gas of one step (0 when absent).
    pub fn gas(&self, step: &str) -> u64 {
        self.rows
            .iter()
            .find(|r| r.step == step)
            .map(|r| r.gas_used)
            .unwrap_or(0)
    }

    /// Gas per report of the measured batch (`publishBatch` of
    /// [`BATCH_REPORTS`] reports, five sessions' opened and completed).
    pub fn batch_per_report(&self) -> u64 {
        self.gas("batch_of_10_reports") / BATCH_REPORTS as u64
    }

    /// The goal metric: opened + completed, evidence not stored.
    pub fn opened_plus_completed_no_evidence(&self) -> u64 {
        self.gas("opened_no_evidence") + self.gas("completed_no_evidence")
    }

    /// A plain-text table.
    pub fn table(&self, chain: &str) -> String {
        let mut s = format!(
            "gas on {chain}:\n  {:<26} {:>9} {:>9} {:>9}\n",
            "step", "gas", "calldata", "data gas"
        );
        for r in &self.rows {
            s.push_str(&format!(
                "  {:<26} {:>9} {:>9} {:>9}\n",
                r.step, r.gas_used, r.calldata_bytes, r.calldata_gas
            ));
        }
        s.push_str(&format!(
            "  {:<26} {:>9}\n",
            "opened+completed, no ev.",
            self.opened_plus_completed_no_evidence()
        ));
        s
    }
}

/// Deploys a fresh registry on `chain` and measures every step.
pub async fn measure<C: Chain>(chain: &C) -> Result<GasFigures, RegistryError> {
    use alloy_sol_types::SolCall;
    let (registry, deployed) = Registry::deploy(chain, 1).await?;
    let manifest = keccak256(b"manifest");
    let signature = filler("signature", 64);
    let sev = filler("sev-snp evidence", SEV_SNP_EVIDENCE_BYTES);
    let tdx = filler("tdx evidence", TDX_EVIDENCE_BYTES);
    let me = chain.sender();
    let mut rows = Vec::new();
    let init = crate::SessionRegistry::BYTECODE.to_vec();
    rows.push(GasRow {
        step: STEPS[0],
        gas_used: deployed.gas_used,
        calldata_bytes: init.len(),
        calldata_gas: calldata_gas(&init),
    });

    let open_data = |s: B256| {
        crate::SessionRegistry::openSessionCall {
            sessionId: s,
            manifestHash: manifest,
            publisher: me,
        }
        .abi_encode()
    };
    let publish_data = |r: &IntegrityReport, ev: &[u8]| {
        crate::SessionRegistry::publishReportCall {
            sessionId: r.sessionId,
            kind: r.kind,
            report: r.abi_bytes().into(),
            signature: signature.clone().into(),
            evidence: ev.to_vec().into(),
        }
        .abi_encode()
    };
    let row = |step: &'static str, gas_used: u64, data: Vec<u8>| GasRow {
        step,
        gas_used,
        calldata_bytes: data.len(),
        calldata_gas: calldata_gas(&data),
    };

    let s1 = keccak256(b"gas session 1");
    let open = registry.open_session(s1, manifest, me).await?;
    rows.push(row(STEPS[1], open.gas_used, open_data(s1)));
    let o1 = realistic_report(s1, manifest, ReportKind::Opened, B256::ZERO, &tdx);
    let p = registry.publish(&o1, &signature, &[]).await?;
    rows.push(row(STEPS[2], p.gas_used, publish_data(&o1, &[])));
    let c1 = realistic_report(s1, manifest, ReportKind::Completed, o1.report_hash(), &tdx);
    let p = registry.publish(&c1, &signature, &[]).await?;
    rows.push(row(STEPS[3], p.gas_used, publish_data(&c1, &[])));

    let s2 = keccak256(b"gas session 2");
    registry.open_session(s2, manifest, me).await?;
    let o2 = realistic_report(s2, manifest, ReportKind::Opened, B256::ZERO, &sev);
    let p = registry.publish(&o2, &signature, &sev).await?;
    rows.push(row(STEPS[4], p.gas_used, publish_data(&o2, &sev)));

    let s3 = keccak256(b"gas session 3");
    registry.open_session(s3, manifest, me).await?;
    let o3 = realistic_report(s3, manifest, ReportKind::Opened, B256::ZERO, &tdx);
    let p = registry.publish(&o3, &signature, &tdx).await?;
    rows.push(row(STEPS[5], p.gas_used, publish_data(&o3, &tdx)));
    let c3 = realistic_report(s3, manifest, ReportKind::Completed, o3.report_hash(), &tdx);
    let p = registry.publish(&c3, &signature, &tdx).await?;
    rows.push(row(STEPS[6], p.gas_used, publish_data(&c3, &tdx)));

    let s4 = keccak256(b"gas session 4");
    registry.open_session(s4, manifest, me).await?;
    let a4 = realistic_report(s4, manifest, ReportKind::Aborted, B256::ZERO, &tdx);
    let p = registry.publish(&a4, &signature, &[]).await?;
    rows.push(row(STEPS[7], p.gas_used, publish_data(&a4, &[])));

    // Fail-over: a second node attempt's opened replaces the first's.
    for (n, step, ev) in [(5u8, STEPS[8], &[][..]), (6, STEPS[9], &tdx[..])] {
        let s = keccak256([b'g', b'a', b's', n]);
        registry.open_session(s, manifest, me).await?;
        let first = realistic_report(s, manifest, ReportKind::Opened, B256::ZERO, &tdx);
        registry.publish(&first, &signature, ev).await?;
        let mut second =
            realistic_report(s, manifest, ReportKind::Opened, first.report_hash(), &tdx);
        second.timestamp += 600;
        let p = registry.publish(&second, &signature, ev).await?;
        rows.push(row(step, p.gas_used, publish_data(&second, ev)));
    }

    // A batch: five sessions' opened and completed reports, no evidence.
    let mut entries = Vec::new();
    for n in 0..BATCH_REPORTS / 2 {
        let s = keccak256(format!("gas batch session {n}").as_bytes());
        let o = realistic_report(s, manifest, ReportKind::Opened, B256::ZERO, &tdx);
        let c = realistic_report(s, manifest, ReportKind::Completed, o.report_hash(), &tdx);
        entries.push(crate::batch::BatchEntry::new(&o, &signature));
        entries.push(crate::batch::BatchEntry::new(&c, &signature));
    }
    let batch = crate::batch::ReportBatch::new(entries).map_err(|e| RegistryError::Decode {
        what: "report batch".to_string(),
        detail: e.to_string(),
    })?;
    let out = registry.publish_batch(&batch).await?;
    let data = crate::SessionRegistry::publishBatchCall {
        root: batch.root(),
        reportCount: alloy_primitives::U256::from(batch.entries().len()),
        reports: batch.encode(),
    }
    .abi_encode();
    rows.push(row(STEPS[10], out.gas_used, data));

    // A private session's completed report: the DP-SGD account filled in
    // (breast-cancer-dp's values: σ 3.4228, C 1, q 64/456, 240 steps,
    // δ 1e-5, ε 3), so its words are non-zero calldata.
    let s = keccak256(b"gas session private");
    registry.open_session(s, manifest, me).await?;
    let o = realistic_report(s, manifest, ReportKind::Opened, B256::ZERO, &tdx);
    registry.publish(&o, &signature, &[]).await?;
    let mut c = realistic_report(s, manifest, ReportKind::Completed, o.report_hash(), &tdx);
    c.privacy = sealroom_reports::report::PrivacyAccount {
        mechanism: 1,
        noiseMultiplier: 3.4228_f64.to_bits(),
        maxGradNorm: 1.0_f64.to_bits(),
        sampleRate: (64.0_f64 / 456.0).to_bits(),
        steps: 240,
        delta: 1e-5_f64.to_bits(),
        epsilon: 2.9999_f64.to_bits(),
    };
    let p = registry.publish(&c, &signature, &[]).await?;
    rows.push(row(STEPS[11], p.gas_used, publish_data(&c, &[])));

    Ok(GasFigures { rows })
}

/// opBNB's documented fee levels (docs.bnbchain.org, "Gas and Fees"):
/// floor base price 8 wei plus minimum priority price 1001 wei per L2 gas;
/// L1 data fee = `l1_gas_price * (tx_data_gas + 2100) * 1`. The L1 (BSC) gas
/// price is an assumption the caller states.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OpbnbFees {
    /// L2 gas price, wei (floor base 8 + minimum priority 1001).
    pub l2_gas_price_wei: u64,
    /// Assumed BSC gas price for the L1 data fee, wei.
    pub l1_gas_price_wei: u64,
    /// The L1 fee's fixed overhead, gas.
    pub l1_fixed_overhead: u64,
}

impl Default for OpbnbFees {
    fn default() -> Self {
        // 0.1 gwei: BSC's minimum gas price since its 2025 reduction.
        Self {
            l2_gas_price_wei: 8 + 1001,
            l1_gas_price_wei: 100_000_000,
            l1_fixed_overhead: 2100,
        }
    }
}

impl OpbnbFees {
    /// Cost of one transaction in wei: L2 execution + L1 data.
    pub fn cost_wei(&self, row: &GasRow) -> u128 {
        let l2 = u128::from(row.gas_used) * u128::from(self.l2_gas_price_wei);
        let l1 = u128::from(self.l1_gas_price_wei)
            * u128::from(row.calldata_gas + self.l1_fixed_overhead);
        l2 + l1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step on the embedded chain, printed (`--nocapture`): the
    /// figures docs/chain.md quotes, replacement `opened` included
    /// (tests/chain.rs also requires anvil to agree to the unit).
    #[test]
    fn figures_on_the_embedded_chain() {
        let dir = tempfile::tempdir().unwrap();
        let chain = crate::EmbeddedChain::open(dir.path()).unwrap();
        let f = crate::block_on(measure(&chain)).unwrap().unwrap();
        println!("{}", f.table("embedded development chain"));
        let steps: Vec<_> = f.rows.iter().map(|r| r.step).collect();
        assert_eq!(steps, STEPS);
        assert!(f.opened_plus_completed_no_evidence() <= 120_000);
        assert!(f.batch_per_report() <= 30_000, "{}", f.batch_per_report());
        // A replacement's opened writes no fresh slot: it updates the
        // opened slot and the session's counter.
        let replacement = f.gas("replacement_opened_no_ev");
        assert!(replacement > f.gas("opened_no_evidence"), "{replacement}");
        assert!(
            replacement < f.gas("completed_no_evidence"),
            "{replacement}"
        );
    }
}
