//! `sealroom bench verify [--json]`: median verification latency per TEE kind
//! on the real samples (reports/testdata), at a fixed instant inside each
//! sample's validity window, with the default policy.
//!
//! Each run is a full verification (parse, certificate chain, signatures,
//! collateral, policy). What stays warm across runs: the bundled AMD roots
//! (their own chain is checked once per process), the parsed Intel root, and
//! for the GPU the chain links already verified. Two more GPU figures:
//! `new_device_median_ms`, a GPU this process has not seen (its own two
//! links verified, NVIDIA's vendor links remembered), and `cold_median_ms`,
//! all four links re-verified every run.
//!
//! The baseline run alongside: one P-384 signature (the H100 report's, under
//! its leaf key) verified by the build's signature backend
//! (`certs::SIGNATURE_BACKEND`: AWS-LC in the `sealroom` command) and by
//! ring, the portable implementation the node image and the browser page
//! use; `p384_ratio` = backend ÷ ring.

use std::time::Instant;

use sealroom_reports::attest::{self, Inputs};
use sealroom_reports::{Policy, TeeKind};

use crate::exit::{runtime_err, CmdResult};

const SNP_REPORT: &[u8] =
    include_bytes!("../../reports/testdata/sev-snp/trustee_az_genoa_snp_report.bin");
const SNP_VCEK: &[u8] = include_bytes!("../../reports/testdata/sev-snp/trustee_az_vcek-genoa.pem");
const TDX_QUOTE: &[u8] = include_bytes!("../../reports/testdata/tdx/dcapqvl_tdx_quote");
const TDX_COLLATERAL: &[u8] =
    include_bytes!("../../reports/testdata/tdx/dcapqvl_tdx_quote_collateral.json");
const NV_REPORT: &[u8] =
    include_bytes!("../../reports/testdata/nvidia/trustee_hopperAttestationReport.txt");
const NV_CHAIN: &[u8] =
    include_bytes!("../../reports/testdata/nvidia/trustee_hopper_cert_chain_case1.txt");

/// Arguments of `sealroom bench verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Runs per kind (the median is reported).
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn at(s: &str) -> Result<i64, crate::exit::Failure> {
    attest::parse_rfc3339(s).map_err(runtime_err)
}

/// What the GPU verifier remembers before each timed run.
#[derive(Clone, Copy, PartialEq)]
enum Warmth {
    /// Everything verified before (the same GPU again).
    Warm,
    /// The vendor links only (a GPU this process has not seen).
    NewDevice,
    /// Nothing (the first verification in a fresh process).
    Cold,
}

fn median_ms(
    kind: TeeKind,
    inputs: &Inputs,
    runs: usize,
    warmth: Warmth,
) -> Result<f64, crate::exit::Failure> {
    let policy = Policy::default();
    let first = attest::verify(kind, inputs, &policy);
    if !first.verified {
        return Err(runtime_err(format!(
            "{kind} sample does not verify: {:?}",
            first.failure
        )));
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        match warmth {
            Warmth::Warm => {}
            Warmth::NewDevice => attest::nvidia::clear_device_links(),
            Warmth::Cold => attest::nvidia::clear_chain_cache(),
        }
        let t = Instant::now();
        let v = attest::verify(kind, inputs, &policy);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if !v.verified {
            return Err(runtime_err(format!("{kind} sample stopped verifying")));
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Median milliseconds of one P-384/SHA-384 verification of the H100
/// sample report's signature: `(this build's backend, ring)`.
fn p384_ms(runs: usize) -> Result<(f64, f64), crate::exit::Failure> {
    let evidence = attest::decode_evidence(NV_REPORT);
    let rep = attest::nvidia::SpdmReport::parse(&evidence).map_err(runtime_err)?;
    let signed = &evidence[..rep.signed_len];
    let ders = attest::certs::load_certs(NV_CHAIN).map_err(runtime_err)?;
    let certs = attest::certs::parse_all(&ders).map_err(runtime_err)?;
    let key = certs
        .iter()
        .filter_map(|c| c.p384_key())
        .find(|k| attest::certs::verify_p384_fixed(k, signed, &rep.signature))
        .ok_or_else(|| {
            runtime_err("no certificate of the H100 sample chain verifies its report")
        })?;
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, key);
    if ring_key.verify(signed, &rep.signature).is_err() {
        return Err(runtime_err(
            "ring refuses the H100 sample report's signature",
        ));
    }
    let time = |f: &dyn Fn() -> bool| {
        let mut t: Vec<f64> = (0..runs.max(1))
            .map(|_| {
                let s = Instant::now();
                std::hint::black_box(f());
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let ours = time(&|| attest::certs::verify_p384_fixed(key, signed, &rep.signature));
    let ring = time(&|| ring_key.verify(signed, &rep.signature).is_ok());
    Ok((ours, ring))
}

/// Runs the benchmark.
pub fn run(a: Args) -> CmdResult {
    let certs = |b: &[u8]| attest::certs::load_certs(b).map_err(runtime_err);
    let snp = Inputs {
        evidence: SNP_REPORT.to_vec(),
        certs: certs(SNP_VCEK)?,
        at: at("2025-06-01T00:00:00Z")?,
        ..Default::default()
    };
    let tdx = Inputs {
        evidence: TDX_QUOTE.to_vec(),
        collateral: Some(TDX_COLLATERAL.to_vec()),
        at: at("2025-06-20T00:00:00Z")?,
        ..Default::default()
    };
    let gpu = Inputs {
        evidence: attest::decode_evidence(NV_REPORT),
        certs: certs(NV_CHAIN)?,
        at: at("2026-01-01T00:00:00Z")?,
        ..Default::default()
    };
    let gpu_cold = median_ms(TeeKind::NvidiaGpu, &gpu, a.runs, Warmth::Cold)?;
    let gpu_new = median_ms(TeeKind::NvidiaGpu, &gpu, a.runs, Warmth::NewDevice)?;
    let results = [
        (
            TeeKind::SevSnp,
            median_ms(TeeKind::SevSnp, &snp, a.runs, Warmth::Warm)?,
        ),
        (
            TeeKind::Tdx,
            median_ms(TeeKind::Tdx, &tdx, a.runs, Warmth::Warm)?,
        ),
        (
            TeeKind::NvidiaGpu,
            median_ms(TeeKind::NvidiaGpu, &gpu, a.runs, Warmth::Warm)?,
        ),
    ];
    let (p384, p384_ring) = p384_ms(a.runs)?;
    let backend = attest::certs::SIGNATURE_BACKEND;
    let r3 = |ms: f64| (ms * 1000.0).round() / 1000.0;
    if a.json {
        let mut obj = serde_json::Map::new();
        obj.insert(
            "p384".into(),
            serde_json::json!({
                "backend": backend,
                "median_ms": r3(p384),
                "ring_median_ms": r3(p384_ring),
                "p384_ratio": p384 / p384_ring,
                "runs": a.runs,
            }),
        );
        for (k, ms) in results {
            let mut entry = serde_json::json!({ "median_ms": r3(ms), "runs": a.runs });
            if k == TeeKind::NvidiaGpu {
                // The headline figure re-verifies the report of a GPU whose chain
                // this process already verified; cold re-checks the chain too.
                entry["cold_median_ms"] = serde_json::json!(r3(gpu_cold));
                entry["new_device_median_ms"] = serde_json::json!(r3(gpu_new));
            }
            obj.insert(k.as_str().into(), entry);
        }
        println!("{}", serde_json::Value::Object(obj));
    } else {
        for (k, ms) in results {
            println!(
                "{:<11} median {:>7.3} ms over {} runs",
                k.as_str(),
                ms,
                a.runs
            );
        }
        println!("nvidia-gpu  median {gpu_new:>7.3} ms for a GPU not seen before (its leaf and GSP BROM links verified; vendor links remembered)");
        println!("nvidia-gpu  median {gpu_cold:>7.3} ms cold (all four chain links re-verified every run)");
        println!(
            "p384        median {p384:>7.3} ms per signature with {backend}, {p384_ring:.3} ms with ring ({:.2}x)",
            p384 / p384_ring
        );
    }
    Ok(())
}
