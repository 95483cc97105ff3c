//! `sealroom attest verify|simulate`: verify TEE evidence offline against a
//! policy, or produce insecure-simulation evidence.
//!
//! Exit codes (DESIGN §7): 0 accepted, 1 rejected (including evidence that
//! does not parse; the message names the check), 2 usage or unreadable file
//! (the message names the flag or file).

use std::path::{Path, PathBuf};

use sealroom_reports::attest::{self, GpuReference, Inputs, Verdict};
use sealroom_reports::{Policy, TeeKind};

use crate::exit::{input_err, CmdResult, Failure};

/// `sealroom attest …`.
#[derive(clap::Subcommand)]
pub enum Attest {
    /// Verify evidence (SEV-SNP report, TDX quote, H100 SPDM report, sim) offline.
    Verify(VerifyArgs),
    /// Produce insecure-simulation evidence (no hardware; labelled everywhere).
    Simulate(SimulateArgs),
}

/// Arguments of `sealroom attest verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Evidence file: native binary or hex text (detected).
    evidence: PathBuf,
    /// Kind of evidence.
    #[arg(long, value_parser = ["sev-snp", "tdx", "nvidia-gpu", "sim"])]
    kind: String,
    /// Certificates (DER, PEM or PEM bundles), repeatable, any order. Vendor roots are bundled.
    #[arg(long)]
    certs: Vec<PathBuf>,
    /// TDX collateral (dcap-qvl QuoteCollateralV3 JSON).
    #[arg(long)]
    collateral: Option<PathBuf>,
    /// Policy file (TOML). Without it the default policy applies (no simulation, no debug).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Verify at this instant (RFC 3339). Without it the current time is used, and the output says so.
    #[arg(long)]
    at: Option<String>,
    /// Expected 64-byte report_data (hex); all 64 bytes are compared.
    #[arg(long)]
    report_data: Option<String>,
    /// Expected 32-byte GPU nonce (hex), for --kind nvidia-gpu.
    #[arg(long)]
    nonce: Option<String>,
    /// GPU reference measurements (TOML: [measurements] "1" = ["hex", …]).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sealroom attest simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The 64-byte report_data to bind (hex).
    #[arg(long)]
    report_data: String,
    /// Evidence file to write.
    #[arg(long)]
    out: PathBuf,
    /// 32-byte measurement (hex); default: the fixed sim measurement.
    #[arg(long)]
    measurement: Option<String>,
    /// Mark the simulated guest as debuggable (to exercise `policy.debug`).
    #[arg(long)]
    debug: bool,
}

/// Runs the command.
pub fn run(a: Attest) -> CmdResult {
    match a {
        Attest::Verify(v) => verify(v),
        Attest::Simulate(s) => simulate(s),
    }
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| input_err(format!("{flag} {}: {e}", path.display())))
}

fn hex_array<const N: usize>(flag: &str, text: &str) -> Result<[u8; N], Failure> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = hex::decode(t).map_err(|_| input_err(format!("{flag}: not hex")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        input_err(format!(
            "{flag}: {} bytes, expected exactly {N}",
            bytes.len()
        ))
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn verify(a: VerifyArgs) -> CmdResult {
    let kind = TeeKind::parse(&a.kind)
        .ok_or_else(|| input_err(format!("--kind: unknown kind `{}`", a.kind)))?;
    let evidence = attest::decode_evidence(&read("EVIDENCE", &a.evidence)?);
    let mut certs = Vec::new();
    for path in &a.certs {
        let bytes = read("--certs", path)?;
        let mut found = attest::certs::load_certs(&bytes)
            .map_err(|e| input_err(format!("--certs {}: {e}", path.display())))?;
        certs.append(&mut found);
    }
    let collateral = match &a.collateral {
        Some(p) => {
            let bytes = read("--collateral", p)?;
            attest::tdx::parse_collateral(&bytes)
                .map_err(|e| input_err(format!("--collateral {}: {e}", p.display())))?;
            Some(bytes)
        }
        None if kind == TeeKind::Tdx => {
            return Err(input_err(
                "--collateral FILE is required for --kind tdx (verification is offline)",
            ))
        }
        None => None,
    };
    let policy = match &a.policy {
        Some(p) => {
            let text = String::from_utf8(read("--policy", p)?)
                .map_err(|_| input_err(format!("--policy {}: not UTF-8 text", p.display())))?;
            Policy::from_toml(&text)
                .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))?
        }
        None => Policy::default(),
    };
    let (at, time_source) = match &a.at {
        Some(s) => (
            attest::parse_rfc3339(s).map_err(|e| input_err(format!("--at: {e}")))?,
            "--at",
        ),
        None => (now_secs(), "current time (no --at given)"),
    };
    let expected_report_data = a
        .report_data
        .as_deref()
        .map(|h| hex_array::<64>("--report-data", h))
        .transpose()?;
    let mut expected_nonce = a
        .nonce
        .as_deref()
        .map(|h| hex_array::<32>("--nonce", h))
        .transpose()?;
    if kind == TeeKind::NvidiaGpu && expected_nonce.is_none() {
        // GPU nonce derived from the CPU evidence's report_data (DESIGN §4).
        expected_nonce = expected_report_data.map(|rd| attest::nvidia::gpu_nonce_for(&rd));
    }
    let gpu_reference = match &a.reference {
        Some(p) => {
            let text = String::from_utf8(read("--reference", p)?)
                .map_err(|_| input_err(format!("--reference {}: not UTF-8 text", p.display())))?;
            Some(
                GpuReference::from_toml(&text)
                    .map_err(|e| input_err(format!("--reference {}: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let inputs = Inputs {
        evidence,
        certs,
        collateral,
        at,
        expected_report_data,
        expected_nonce,
        gpu_reference,
    };
    let mut verdict = attest::verify(kind, &inputs, &policy);
    if let serde_json::Value::Object(claims) = &mut verdict.claims {
        claims.insert("time_source".into(), time_source.into());
        claims.insert(
            "policy".into(),
            a.policy
                .as_ref()
                .map_or("default".to_string(), |p| p.display().to_string())
                .into(),
        );
    }
    if a.json {
        let line = serde_json::to_string(&verdict).map_err(crate::exit::runtime_err)?;
        println!("{line}");
    } else {
        print_human(&verdict, time_source, at);
    }
    match verdict.failure {
        None => Ok(()),
        Some(f) => Err(Failure::Verification {
            check: f.check,
            detail: f.detail,
        }),
    }
}

fn print_human(v: &Verdict, time_source: &str, at: i64) {
    if v.insecure_simulation {
        println!("INSECURE SIMULATION: this evidence proves nothing about any hardware (insecure-simulation)");
    }
    println!("kind:         {}", v.kind);
    println!("verified:     {}", if v.verified { "yes" } else { "NO" });
    let when = attest::certs::fmt_time(at);
    if time_source == "--at" {
        println!("verified at:  {when} (--at)");
    } else {
        println!("verified at:  {when} — NOTE: no --at given, the current time was used");
    }
    if let Some(m) = &v.measurement {
        println!("measurement:  {m}");
    }
    if let Some(r) = &v.report_data {
        println!("report_data:  {r}");
    }
    if v.tcb.as_object().is_some_and(|o| !o.is_empty()) {
        println!("tcb:          {}", v.tcb);
    }
    if let Some(note) = v.claims.get("measurement_note").and_then(|n| n.as_str()) {
        println!("note:         {note}");
    }
    if let Some(f) = &v.failure {
        println!("failed check: {}", f.check);
        println!("detail:       {}", f.detail);
    }
}

fn simulate(a: SimulateArgs) -> CmdResult {
    let report_data = hex_array::<64>("--report-data", &a.report_data)?;
    let measurement = match &a.measurement {
        Some(m) => hex_array::<32>("--measurement", m)?,
        None => attest::simulate::sim_default_measurement(),
    };
    let evidence = attest::simulate::simulate(&report_data, &measurement, a.debug);
    sealroom_protocol::fsutil::write_atomic(&a.out, &evidence, false)
        .map_err(|e| input_err(format!("--out {}: {e}", a.out.display())))?;
    eprintln!(
        "wrote insecure-simulation evidence ({} bytes) to {}; it is accepted only by a policy with allow_simulation = true",
        evidence.len(),
        a.out.display()
    );
    Ok(())
}
