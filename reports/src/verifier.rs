//! The public verifier: what a regulator runs on a session's published
//! reports, from an offline bundle or from the chain alone.
//!
//! Inputs are a [`Bundle`]: the session's reports (ABI bytes + node
//! signatures, as in calldata), what the registry stored for each, the node's
//! evidence, and the manifest. On chain, the manifest and the evidence travel
//! in the `evidence` calldata of the first report as an [`EvidenceEnvelope`],
//! so the chain alone holds everything a verifier needs.
//!
//! Checks, in order (each is reported, named, with its detail):
//! `manifest` · `report.decode` · `report.session` · `report.signature` ·
//! `evidence.hash` · `evidence.verified` (signatures, chain, binding of the
//! node keys and manifest hash in report_data, policy) · `simulation` ·
//! `report.chain` · `inputs.root` · `chain.stored-hash` · `report.outcome`.

use alloy_primitives::{keccak256, B256};
use sealroom_protocol::manifest::Manifest;
use sealroom_protocol::policy::{Policy, TeeKind};
use serde::{Deserialize, Serialize};

use crate::attest::{self, Inputs, Verdict};
use crate::binding::expected_report_data;
use crate::report::{verify_report_signature, IntegrityReport, ReportKind};

/// Format tag of bundles.
pub const BUNDLE_FORMAT: &str = "sealroom-bundle/1";
/// Format tag of evidence envelopes.
pub const ENVELOPE_FORMAT: &str = "sealroom-evidence/1";

/// What the `evidence` calldata of a session's first report holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEnvelope {
    /// Always [`ENVELOPE_FORMAT`].
    pub format: String,
    /// TEE kind.
    pub kind: TeeKind,
    /// Raw evidence (hex); `keccak256` of it is the report's `evidenceHash`.
    #[serde(with = "sealroom_protocol::seal::hex_vec")]
    pub evidence: Vec<u8>,
    /// Certificates (DER hex).
    #[serde(default)]
    pub certs: Vec<String>,
    /// Collateral (hex).
    #[serde(default)]
    pub collateral: Option<String>,
    /// The manifest every member signed (public: names, keys, hashes, spec, policy).
    pub manifest: Manifest,
}

impl EvidenceEnvelope {
    /// Canonical bytes for calldata.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses calldata bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let e: Self = serde_json::from_slice(b).map_err(|e| format!("evidence envelope: {e}"))?;
        if e.format != ENVELOPE_FORMAT {
            return Err(format!("evidence envelope: unknown format `{}`", e.format));
        }
        Ok(e)
    }
}

/// One report as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledReport {
    /// `opened`, `completed` or `aborted`.
    pub kind: String,
    /// `abi.encode(report)` hex.
    pub report_abi: String,
    /// Node signature hex.
    pub signature: String,
    /// The hash the registry stored for (session, kind).
    pub stored_hash: B256,
    /// Publishing transaction.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block: Option<u64>,
}

/// A self-contained, offline-verifiable record of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Session id.
    pub session_id: B256,
    /// Where it was published: `{kind, chain_id, contract, label}`.
    pub chain: serde_json::Value,
    /// Reports, `opened` first.
    pub reports: Vec<BundledReport>,
    /// The node's evidence and the manifest.
    pub envelope: EvidenceEnvelope,
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name.
    pub check: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The verifier's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// All checks passed.
    pub verified: bool,
    /// True when the node's evidence is simulated.
    pub insecure_simulation: bool,
    /// Which policy was applied: `manifest` or the file given.
    pub policy_source: String,
    /// The outcome: `completed`, `aborted`, or `incomplete`.
    pub outcome: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The evidence verdict.
    pub evidence_verdict: Option<Verdict>,
    /// The first failed check, if any.
    pub failure: Option<Check>,
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, check: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.0.push(Check {
            check: check.into(),
            ok,
            detail: detail.into(),
        });
        ok
    }
}

/// Verifies a bundle. `policy`: an override (with its source name) or the
/// manifest's; `at`: the instant to verify evidence at (default: the time in
/// the first report, when the node presented the evidence).
pub fn verify_bundle(
    bundle: &Bundle,
    policy: Option<(&Policy, &str)>,
    at: Option<i64>,
) -> Verification {
    let mut c = Checks(Vec::new());
    let m = &bundle.envelope.manifest;
    let mh = m.hash();
    let (policy, policy_source) = match policy {
        Some((p, src)) => (p.clone(), src.to_string()),
        None => (m.policy.clone(), "manifest".to_string()),
    };
    let mut insecure = bundle.envelope.kind == TeeKind::Sim;
    let mut verdict = None;

    c.push(
        "manifest",
        m.validate().is_ok() && m.session_id == bundle.session_id,
        match m.validate() {
            Err(e) => e.to_string(),
            Ok(()) if m.session_id != bundle.session_id => "manifest is for another session".into(),
            Ok(()) => format!(
                "manifest {mh:#x}, {} parties, owner {}",
                m.parties.len(),
                m.owner.name
            ),
        },
    );

    // Decode reports.
    let mut decoded: Vec<(ReportKind, IntegrityReport, [u8; 64], &BundledReport)> = Vec::new();
    let mut decode_ok = !bundle.reports.is_empty();
    let mut decode_detail = format!("{} report(s)", bundle.reports.len());
    for r in &bundle.reports {
        let abi = hex::decode(r.report_abi.trim_start_matches("0x"));
        let sig = sealroom_protocol::hash::parse_hex_array::<64>(&r.signature);
        match (
            abi.as_ref().map(|a| IntegrityReport::from_abi_bytes(a)),
            sig,
        ) {
            (Ok(Ok(rep)), Some(sig)) => match ReportKind::from_code(rep.kind) {
                Some(k) if k.as_str() == r.kind => decoded.push((k, rep, sig, r)),
                _ => {
                    decode_ok = false;
                    decode_detail = format!("{} report: kind field does not match", r.kind);
                }
            },
            _ => {
                decode_ok = false;
                decode_detail = format!(
                    "{} report: not a valid ABI-encoded report and signature",
                    r.kind
                );
            }
        }
    }
    c.push("report.decode", decode_ok, decode_detail);

    let session_ok = decoded
        .iter()
        .all(|(_, r, _, _)| r.sessionId == bundle.session_id && r.manifestHash == mh);
    c.push(
        "report.session",
        session_ok,
        if session_ok {
            format!(
                "every report names session {:#x} and manifest {mh:#x}",
                bundle.session_id
            )
        } else {
            "a report names another session or manifest".into()
        },
    );

    // Signatures under one node key.
    let node_key = decoded.first().map(|(_, r, _, _)| r.nodeKey.0);
    let node_hpke = decoded.first().map(|(_, r, _, _)| r.nodeHpkeKey.0);
    let mut sig_detail = String::new();
    let mut sig_ok = node_key.is_some();
    for (k, r, sig, _) in &decoded {
        let same = Some(r.nodeKey.0) == node_key;
        let ok = same && node_key.is_some_and(|nk| verify_report_signature(r, &nk, sig).is_ok());
        if !ok {
            sig_ok = false;
            sig_detail = format!(
                "{} report: signature does not verify under the node key",
                k.as_str()
            );
        }
    }
    if sig_ok {
        sig_detail = format!(
            "{} signature(s) valid under node key {}",
            decoded.len(),
            hex::encode(node_key.unwrap_or_default())
        );
    }
    c.push("report.signature", sig_ok, sig_detail);

    // Evidence.
    let ev_hash = keccak256(&bundle.envelope.evidence);
    let ev_ok = !decoded.is_empty() && decoded.iter().all(|(_, r, _, _)| r.evidenceHash == ev_hash);
    c.push(
        "evidence.hash",
        ev_ok,
        if ev_ok {
            format!("evidence keccak256 {ev_hash:#x} matches every report")
        } else {
            "the evidence is not the one the reports name".into()
        },
    );
    if let (Some(nk), Some(hk)) = (node_key, node_hpke) {
        let at = at.unwrap_or_else(|| {
            decoded
                .first()
                .map(|(_, r, _, _)| r.timestamp as i64)
                .unwrap_or(0)
        });
        let decode = |h: &str| hex::decode(h.trim_start_matches("0x")).unwrap_or_default();
        let inputs = Inputs {
            evidence: bundle.envelope.evidence.clone(),
            certs: bundle.envelope.certs.iter().map(|h| decode(h)).collect(),
            collateral: bundle.envelope.collateral.as_deref().map(decode),
            at,
            expected_report_data: Some(expected_report_data(&nk, &hk, &mh.0)),
            expected_nonce: None,
            gpu_reference: None,
        };
        let kind_ok = policy.accepted_kinds.contains(&bundle.envelope.kind);
        let v = if kind_ok {
            attest::verify(bundle.envelope.kind, &inputs, &policy)
        } else {
            Verdict::rejected(
                bundle.envelope.kind,
                attest::Failure::new(
                    "policy.kind",
                    format!(
                        "{} evidence is not accepted by the policy",
                        bundle.envelope.kind
                    ),
                ),
            )
        };
        insecure = v.insecure_simulation;
        let detail = match &v.failure {
            None => format!(
                "{} evidence verified at {at} under the {policy_source} policy; node keys and manifest bound in report_data",
                v.kind
            ),
            Some(f) => format!("{}: {}", f.check, f.detail),
        };
        c.push("evidence.verified", v.verified, detail);
        verdict = Some(v);
    } else {
        c.push("evidence.verified", false, "no report names a node key");
    }
    c.push(
        "simulation",
        !insecure || policy.allow_simulation,
        if insecure {
            "insecure-simulation: no TEE protected this session (the policy allows simulation)"
                .to_string()
        } else {
            "hardware evidence".to_string()
        },
    );

    // Report chain.
    let get = |k: ReportKind| {
        decoded
            .iter()
            .find(|(kk, _, _, _)| *kk == k)
            .map(|(_, r, _, _)| r)
    };
    let opened = get(ReportKind::Opened);
    let completed = get(ReportKind::Completed);
    let aborted = get(ReportKind::Aborted);
    let chain_ok = match (opened, completed, aborted) {
        (Some(o), Some(done), None) => {
            o.prevReportHash == B256::ZERO && done.prevReportHash == o.report_hash()
        }
        (Some(o), None, Some(a)) => {
            o.prevReportHash == B256::ZERO && a.prevReportHash == o.report_hash()
        }
        (None, None, Some(a)) => a.prevReportHash == B256::ZERO,
        (Some(o), None, None) => o.prevReportHash == B256::ZERO,
        _ => false,
    };
    c.push(
        "report.chain",
        chain_ok,
        if chain_ok {
            "reports link: opened → completed/aborted".to_string()
        } else {
            "reports do not link (prevReportHash) or an unexpected set of kinds".to_string()
        },
    );

    let root = m.inputs_tree().map(|t| t.root()).ok();
    let root_ok = root.is_some()
        && decoded
            .iter()
            .all(|(_, r, _, _)| Some(r.inputsRoot) == root);
    c.push(
        "inputs.root",
        root_ok,
        match root {
            Some(r) if root_ok => format!("inputs root {r:#x} recomputed from the manifest"),
            _ => "a report's inputs root differs from the manifest's inputs tree".into(),
        },
    );

    let stored_ok = decoded
        .iter()
        .all(|(_, r, _, b)| r.report_hash() == b.stored_hash);
    c.push(
        "chain.stored-hash",
        stored_ok && !decoded.is_empty(),
        if stored_ok {
            "keccak256(report) equals the hash the registry stored for every report".to_string()
        } else {
            "a report's keccak256 differs from the hash stored on chain".to_string()
        },
    );

    let outcome = if let Some(done) = completed {
        if done.inputsWiped {
            "completed"
        } else {
            "completed-without-wipe"
        }
    } else if aborted.is_some() {
        "aborted"
    } else {
        "incomplete"
    };
    c.push(
        "report.outcome",
        outcome == "completed" || outcome == "aborted",
        match (completed, aborted) {
            (Some(d), _) => format!(
                "completed: model sha256 {:#x}, sealed to owner key {}, inputs wiped: {}",
                d.modelHash,
                hex::encode(d.ownerKey),
                d.inputsWiped
            ),
            (None, Some(a)) => format!("aborted (code {}): {}", a.abortCode, a.abortReason),
            _ => "no completed or aborted report".into(),
        },
    );

    let failure = c.0.iter().find(|x| !x.ok).cloned();
    Verification {
        verified: failure.is_none(),
        insecure_simulation: insecure,
        policy_source,
        outcome: outcome.into(),
        checks: c.0,
        evidence_verdict: verdict,
        failure,
    }
}
