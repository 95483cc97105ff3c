//! Attestation: one [`Verifier`] per TEE kind behind one trait (DESIGN §4).
//!
//! Verification is offline and deterministic: roots are bundled, collateral
//! and certificates are supplied, and the instant to verify at is an input
//! ([`Inputs::at`]), never read from the clock here. Every rejection carries a
//! [`Failure`] whose `check` is a short stable name (`sev-snp.signature`,
//! `tdx.collateral-expired`, `policy.debug`, …) that tools and tests match on.
//!
//! The flow is two stages so that the vendor-specific part stays small:
//! a [`Verifier`] checks the evidence itself (signatures, certificate chains,
//! collateral) and returns [`Attested`] facts; [`crate::policy_eval`] then
//! checks the binding (`report_data`/nonce) and the session [`Policy`], and
//! builds the [`Verdict`]. [`verify`] runs both.

pub mod certs;
pub mod collect;
#[cfg(feature = "verify-nvidia")]
pub mod nvidia;
#[cfg(feature = "verify-sev-snp")]
pub mod sev_snp;
pub mod sim;
pub mod simulate;
#[cfg(feature = "verify-tdx")]
pub mod tdx;

use std::collections::BTreeMap;

use crate::check::Check;
use serde::{Deserialize, Serialize};

pub use sealroom_protocol::policy::{Policy, TeeKind};

/// Why evidence was rejected: a stable check name and a human detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{check}: {detail}")]
pub struct Failure {
    /// Short stable name of the failed check, e.g. `sev-snp.vcek-chain`.
    pub check: String,
    /// What was found, for people.
    pub detail: String,
}

impl Failure {
    /// A failure of `check`.
    pub fn new(check: Check, detail: impl Into<String>) -> Self {
        Self {
            check: check.as_str().to_string(),
            detail: detail.into(),
        }
    }
}

/// Reference values for GPU measurements: per measurement-block index, the
/// accepted values (hex). A block not listed is not compared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuReference {
    /// Measurement index (1-based, as in SPDM) to accepted digests (hex).
    pub measurements: BTreeMap<String, Vec<String>>,
}

impl GpuReference {
    /// Parses a reference file (TOML: `[measurements]` then `"1" = ["hex", …]`).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let r: GpuReference = toml::from_str(text).map_err(|e| e.to_string())?;
        for (k, vals) in &r.measurements {
            k.parse::<u8>()
                .map_err(|_| format!("measurement index `{k}` is not a number 1..=255"))?;
            for v in vals {
                hex::decode(v.strip_prefix("0x").unwrap_or(v))
                    .map_err(|_| format!("measurement {k}: `{v}` is not hex"))?;
            }
        }
        Ok(r)
    }
}

/// Everything a verifier may need besides the evidence bytes.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The evidence in its native binary form (see [`decode_evidence`] for hex text).
    pub evidence: Vec<u8>,
    /// Supplied certificates (DER), in any order. Vendor roots are bundled.
    pub certs: Vec<Vec<u8>>,
    /// Collateral (TDX: dcap-qvl `QuoteCollateralV3` JSON).
    pub collateral: Option<Vec<u8>>,
    /// The instant to verify at, Unix seconds. Callers decide; nothing here reads a clock.
    pub at: i64,
    /// The 64-byte `report_data` the evidence must carry (DESIGN §3), all 64 bytes compared.
    pub expected_report_data: Option<[u8; 64]>,
    /// The 32-byte nonce GPU evidence must carry.
    pub expected_nonce: Option<[u8; 32]>,
    /// GPU reference measurements, when supplied.
    pub gpu_reference: Option<GpuReference>,
}

/// Facts established by a [`Verifier`] from genuine evidence, before policy.
#[derive(Clone, Debug, Default)]
pub struct Attested {
    /// The launch measurement (SNP MEASUREMENT, TDX MRTD, sim measurement,
    /// GPU: SHA-384 of the signed measurement record).
    pub measurement: Vec<u8>,
    /// The bound data: 64-byte `report_data` (SNP, TDX, sim) or the 32-byte GPU nonce.
    pub report_data: Vec<u8>,
    /// Whether the guest is debuggable (SNP policy bit 19, TDX TD attribute DEBUG, sim flag).
    pub debug: bool,
    /// SNP: whether a migration agent may be associated (policy bit 18).
    pub migrate_ma: bool,
    /// SNP reported TCB (bootloader, tee, snp, microcode).
    pub snp_tcb: Option<[u8; 4]>,
    /// TDX TCB status as named by Intel (e.g. `UpToDate`).
    pub tdx_status: Option<String>,
    /// TDX RTMR0..3.
    pub rtmrs: Option<[Vec<u8>; 4]>,
    /// GPU measurement blocks by index.
    pub gpu_measurements: Option<BTreeMap<u8, Vec<u8>>>,
    /// Sim evidence creation time (Unix seconds).
    pub timestamp: Option<i64>,
    /// TCB facts for the verdict.
    pub tcb: serde_json::Map<String, serde_json::Value>,
    /// Other claims for the verdict.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// The outcome of verifying evidence, printed by `sealroom attest verify --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the evidence is accepted.
    pub verified: bool,
    /// The kind of evidence.
    pub kind: TeeKind,
    /// True for `sim` evidence, always: it proves nothing about hardware.
    pub insecure_simulation: bool,
    /// The launch measurement, hex (null when the evidence did not verify that far).
    pub measurement: Option<String>,
    /// The bound `report_data` (GPU: nonce), hex.
    pub report_data: Option<String>,
    /// TCB facts (object).
    pub tcb: serde_json::Value,
    /// Other claims (object).
    pub claims: serde_json::Value,
    /// Why it was rejected, or null.
    pub failure: Option<Failure>,
}

impl Verdict {
    /// A rejection before any fact could be established.
    pub fn rejected(kind: TeeKind, failure: Failure) -> Self {
        Self {
            verified: false,
            kind,
            insecure_simulation: kind == TeeKind::Sim,
            measurement: None,
            report_data: None,
            tcb: serde_json::Value::Object(Default::default()),
            claims: serde_json::Value::Object(Default::default()),
            failure: Some(failure),
        }
    }
}

/// Checks one kind of evidence itself: signatures, chains to bundled roots,
/// collateral, validity at [`Inputs::at`]. Policy and binding are not its job.
pub trait Verifier: Send + Sync {
    /// The kind this verifier handles.
    fn kind(&self) -> TeeKind;
    /// Verifies the evidence and returns what it proves, or the failed check.
    fn verify_evidence(&self, inputs: &Inputs) -> Result<Attested, Failure>;
}

/// The verifier for a kind. A kind whose verifier this build leaves out
/// (its cargo feature is off) gets one that refuses every piece of evidence
/// with `verifier.missing`, naming the feature — never a silent pass.
pub fn verifier_for(kind: TeeKind) -> Box<dyn Verifier> {
    match kind {
        #[cfg(feature = "verify-sev-snp")]
        TeeKind::SevSnp => Box::new(sev_snp::SevSnpVerifier),
        #[cfg(feature = "verify-tdx")]
        TeeKind::Tdx => Box::new(tdx::TdxVerifier),
        #[cfg(feature = "verify-nvidia")]
        TeeKind::NvidiaGpu => Box::new(nvidia::NvidiaVerifier),
        TeeKind::Sim => Box::new(sim::SimVerifier),
        #[allow(unreachable_patterns)]
        other => Box::new(MissingVerifier(other)),
    }
}

/// The cargo feature that compiles in `kind`'s verifier.
pub fn verifier_feature(kind: TeeKind) -> &'static str {
    match kind {
        TeeKind::SevSnp => "verify-sev-snp",
        TeeKind::Tdx => "verify-tdx",
        TeeKind::NvidiaGpu => "verify-nvidia",
        TeeKind::Sim => "(always built)",
    }
}

/// Stands in for a verifier this build does not contain.
struct MissingVerifier(TeeKind);

impl MissingVerifier {
    fn failure(&self) -> Failure {
        Failure::new(
            Check::VerifierMissing,
            format!(
                "this build has no {} verifier: rebuild sealroom-reports with the cargo feature `{}`",
                self.0,
                verifier_feature(self.0)
            ),
        )
    }
}

impl Verifier for MissingVerifier {
    fn kind(&self) -> TeeKind {
        self.0
    }

    fn verify_evidence(&self, _inputs: &Inputs) -> Result<Attested, Failure> {
        Err(self.failure())
    }
}

/// Verifies evidence of `kind` and evaluates it against `policy` and the
/// expected binding. The one call the node, coordinator and parties use.
pub fn verify(kind: TeeKind, inputs: &Inputs, policy: &Policy) -> Verdict {
    match verifier_for(kind).verify_evidence(inputs) {
        Ok(att) => crate::policy_eval::evaluate(kind, att, inputs, policy),
        Err(f) => Verdict::rejected(kind, f),
    }
}

/// The launch measurement a piece of evidence carries, read without verifying
/// anything (the node reads its own; verifiers get it from [`verify`]'s
/// verdict instead). SEV-SNP: `MEASUREMENT` (48 bytes); TDX: `MRTD` (48
/// bytes); sim: its 32-byte measurement. GPU evidence has no launch
/// measurement of the engine.
pub fn evidence_measurement(kind: TeeKind, evidence: &[u8]) -> Result<Vec<u8>, Failure> {
    match kind {
        TeeKind::Sim => sim::SimEvidence::parse(evidence)
            .map(|e| e.measurement.to_vec())
            .map_err(|e| Failure::new(Check::SimParse, e)),
        #[cfg(feature = "verify-sev-snp")]
        TeeKind::SevSnp => sev_snp::SnpReport::parse(evidence)
            .map(|r| r.measurement.to_vec())
            .map_err(|e| Failure::new(Check::SevSnpParse, e)),
        #[cfg(feature = "verify-tdx")]
        TeeKind::Tdx => {
            let layout =
                tdx::parse_layout(evidence).map_err(|e| Failure::new(Check::TdxParse, e))?;
            // TD report body: TEE_TCB_SVN(16) MRSEAM(48) MRSIGNERSEAM(48)
            // SEAMATTRIBUTES(8) TDATTRIBUTES(8) XFAM(8), then MRTD(48).
            let at = layout.body_offset + 136;
            evidence
                .get(at..at + 48)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Failure::new(Check::TdxParse, "quote too short for MRTD"))
        }
        TeeKind::NvidiaGpu => Err(Failure::new(
            Check::EvidenceKind,
            "GPU evidence carries no engine launch measurement",
        )),
        #[allow(unreachable_patterns)]
        other => Err(MissingVerifier(other).failure()),
    }
}

/// Evidence files may be native binary or hex text: hex text (optionally
/// `0x`-prefixed, whitespace ignored) is decoded, anything else is kept as is.
pub fn decode_evidence(bytes: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let t = text.strip_prefix(b"0x").unwrap_or(&text);
    if !t.is_empty() && t.len().is_multiple_of(2) && t.iter().all(u8::is_ascii_hexdigit) {
        if let Ok(d) = hex::decode(t) {
            return d;
        }
    }
    bytes.to_vec()
}

/// Parses an RFC 3339 instant to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time: {e}"))
}

/// Hex of bytes, for claims.
pub(crate) fn hx(b: &[u8]) -> serde_json::Value {
    serde_json::Value::String(hex::encode(b))
}

#[cfg(test)]
pub(crate) mod testdata {
    //! The real samples (see `reports/testdata/NOTICE`).
    pub const SNP_VIRTEE_MILAN_REPORT: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_report_milan.bin");
    pub const SNP_VIRTEE_MILAN_REPORT_HEX: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_report_milan.hex");
    pub const SNP_VIRTEE_MILAN_VCEK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_vcek_milan.der");
    pub const SNP_VIRTEE_MILAN_ASK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_builtin_milan_ask.pem");
    pub const SNP_VIRTEE_MILAN_ARK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_builtin_milan_ark.pem");
    pub const SNP_VIRTEE_GENOA_ARK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_builtin_genoa_ark.pem");
    pub const SNP_VIRTEE_GENOA_ASK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_builtin_genoa_ask.pem");
    pub const SNP_TRUSTEE_REPORT: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_test-report.bin");
    pub const SNP_TRUSTEE_VCEK: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_test-vcek.der");
    pub const SNP_TRUSTEE_MILAN_BUNDLE: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_milan_ask_ark_asvk.pem");
    pub const SNP_TRUSTEE_GENOA_BUNDLE: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_genoa_ask_ark_asvk.pem");
    pub const SNP_AZ_GENOA_REPORT: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_az_genoa_snp_report.bin");
    pub const SNP_AZ_GENOA_VCEK: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_az_vcek-genoa.pem");
    pub const SNP_VLEK_REPORT: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_test-vlek-report.bin");
    pub const SNP_VLEK: &[u8] = include_bytes!("../../testdata/sev-snp/trustee_test-vlek.der");
    pub const SNP_VCEK_INVALID_LEGACY: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_test-vcek-invalid-legacy.der");
    pub const SNP_VCEK_INVALID_NEW: &[u8] =
        include_bytes!("../../testdata/sev-snp/trustee_test-vcek-invalid-new.der");
    pub const SNP_TURIN_VCEK: &[u8] =
        include_bytes!("../../testdata/sev-snp/virtee_vcek_turin.der");

    pub const TDX_QUOTE: &[u8] = include_bytes!("../../testdata/tdx/dcapqvl_tdx_quote");
    pub const TDX_COLLATERAL: &[u8] =
        include_bytes!("../../testdata/tdx/dcapqvl_tdx_quote_collateral.json");
    pub const TDX_QUOTE_OUTDATED: &[u8] =
        include_bytes!("../../testdata/tdx/dcapqvl_tdx_quote_outdated");
    pub const TDX_COLLATERAL_OUTDATED: &[u8] =
        include_bytes!("../../testdata/tdx/dcapqvl_tdx_quote_outdated_collateral.json");
    pub const TDX_QUOTE_FROM_HEX: &[u8] =
        include_bytes!("../../testdata/tdx/dcapqvl_tdx-quote_from_hex.bin");
    pub const TDX_QUOTE_HEX: &[u8] = include_bytes!("../../testdata/tdx/dcapqvl_tdx-quote.hex");

    pub const NV_REPORT: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopperAttestationReport.txt");
    pub const NV_CHAIN1: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_cert_chain_case1.txt");
    pub const NV_CHAIN2: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_cert_chain_case2.txt");
    pub const NV_CHAIN3: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_cert_chain_case3.txt");
    pub const NV_CHAIN4: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_cert_chain_case4.txt");
    pub const NV_COCO_REPORT: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_coco_report1.txt");
    pub const NV_COCO_CERTS: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_hopper_coco_certs1.txt");
    pub const NV_ROOT: &[u8] =
        include_bytes!("../../testdata/nvidia/trustee_nvidia_device_root.pem");

    /// Unix seconds of an RFC 3339 instant.
    pub fn t(s: &str) -> i64 {
        super::parse_rfc3339(s).unwrap()
    }

    /// The failed check's name, or `ok`.
    pub fn check(r: Result<super::Attested, super::Failure>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(f) => f.check,
        }
    }

    /// All certificates of these files, DER.
    pub fn certs(files: &[&[u8]]) -> Vec<Vec<u8>> {
        files
            .iter()
            .flat_map(|f| super::certs::load_certs(f).unwrap())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_left_out_of_the_build_refuses_naming_its_feature() {
        let inputs = Inputs {
            evidence: vec![1, 2, 3],
            certs: vec![],
            collateral: None,
            at: 0,
            expected_report_data: None,
            expected_nonce: None,
            gpu_reference: None,
        };
        for kind in [TeeKind::SevSnp, TeeKind::Tdx, TeeKind::NvidiaGpu] {
            let f = MissingVerifier(kind).verify_evidence(&inputs).unwrap_err();
            assert_eq!(f.check, Check::VerifierMissing.as_str());
            assert!(f.detail.contains(verifier_feature(kind)), "{}", f.detail);
        }
    }

    #[test]
    fn hex_and_binary_evidence_are_detected() {
        assert_eq!(
            decode_evidence(testdata::SNP_VIRTEE_MILAN_REPORT_HEX),
            testdata::SNP_VIRTEE_MILAN_REPORT
        );
        assert_eq!(
            decode_evidence(testdata::SNP_VIRTEE_MILAN_REPORT),
            testdata::SNP_VIRTEE_MILAN_REPORT
        );
        assert_eq!(
            decode_evidence(testdata::TDX_QUOTE_HEX),
            testdata::TDX_QUOTE_FROM_HEX
        );
        assert_eq!(decode_evidence(b"0xab cd\n"), vec![0xab, 0xcd]);
        assert_eq!(decode_evidence(b"abc"), b"abc".to_vec());
    }

    #[test]
    fn gpu_reference_file_is_checked() {
        assert!(GpuReference::from_toml("[measurements]\n\"1\" = [\"00ff\"]").is_ok());
        assert!(GpuReference::from_toml("[measurements]\nx = [\"00\"]").is_err());
        assert!(GpuReference::from_toml("[measurements]\n\"1\" = [\"zz\"]").is_err());
        assert!(GpuReference::from_toml("other = 1").is_err());
    }
}
