//! What an auditor reads before the checklist: the session in plain
//! language, the policy, the measurements and whether the policy pins them,
//! every input with its dataset root and record count, and every report
//! with its UTC time and transaction. Built from the same bundle the checks
//! ran on, so the words never say more than the checks proved: each fact
//! says whether it was checked, and the summary is part of `--json` too.

use alloy_primitives::B256;
use sealroom_protocol::manifest::Manifest;
use sealroom_protocol::policy::{Policy, TeeKind};
use serde::{Deserialize, Serialize};

use crate::attest::Verdict;
use crate::report::IntegrityReport;
use crate::verifier::{AttemptResult, AttemptSummary, Bundle};

/// The auditor's summary of a verification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    /// Plain-language sentences: who took part, what was trained, where it
    /// ran, whether it was simulated, what was verified and what was not.
    pub plain: Vec<String>,
    /// The session.
    pub session: AuditSession,
    /// Every input: each party's dataset, then the owner's validation set.
    pub inputs: Vec<AuditInput>,
    /// The model and how it was trained, in the manifest's own words.
    pub model: serde_json::Value,
    /// The policy that was applied, whole.
    pub policy: Policy,
    /// Each node attempt's attested launch measurement, and whether the
    /// policy pins it.
    pub measurements: Vec<AuditMeasurement>,
    /// Every report, in order.
    pub reports: Vec<AuditReport>,
}

/// The session's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSession {
    /// Session id.
    pub id: B256,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// When the owner created the manifest (UTC).
    pub created_utc: String,
    /// The manifest hash every member signed.
    pub manifest_hash: B256,
}

/// One input of the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditInput {
    /// Party name, or `OWNER/validation`.
    pub name: String,
    /// `party` or `owner`.
    pub role: String,
    /// Merkle root of its records (what `report prove` proves inclusion in).
    pub dataset_root: B256,
    /// Records committed.
    pub record_count: u64,
}

/// A node's launch measurement against the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditMeasurement {
    /// The node attempt.
    pub attempt: u32,
    /// Its TEE kind.
    pub tee_kind: Option<TeeKind>,
    /// The measurement its evidence attests (hex), when it verified.
    pub measurement: Option<String>,
    /// The values the policy pins for that kind (empty: none pinned).
    pub pinned_values: Vec<String>,
    /// True when the policy pins measurements for the kind (and the
    /// evidence verified, so the attested one is among them).
    pub pinned: bool,
}

/// One report as an auditor reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// `opened`, `completed` or `aborted`.
    pub kind: String,
    /// keccak256 of the report.
    pub report_hash: Option<B256>,
    /// When the node signed it (UTC), from the report.
    pub signed_utc: Option<String>,
    /// The node that signed it (hex).
    pub node_key: Option<String>,
    /// The publishing transaction, as the bundle gives it.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block: Option<u64>,
    /// Whether the transaction and block were read from the chain just now
    /// (false: what the bundle claims, not checked offline).
    pub tx_checked: bool,
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ts} (not a valid time)"))
}

/// A TEE kind in words.
fn tee_words(kind: TeeKind) -> &'static str {
    match kind {
        TeeKind::SevSnp => "an AMD SEV-SNP confidential VM",
        TeeKind::Tdx => "an Intel TDX confidential VM",
        TeeKind::Sim => "a SIMULATED node (no hardware protected the data)",
        TeeKind::NvidiaGpu => "an NVIDIA GPU in confidential-computing mode",
    }
}

fn words<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// Everything the summary needs from the verification.
pub(crate) struct Facts<'a> {
    pub bundle: &'a Bundle,
    pub manifest: &'a Manifest,
    pub policy: &'a Policy,
    pub policy_source: &'a str,
    /// Each bundle report, decoded when it decoded.
    pub reports: Vec<(Option<IntegrityReport>, Option<B256>)>,
    pub attempts: &'a [AttemptSummary],
    pub verdicts: &'a [Option<Verdict>],
    pub from_chain: bool,
    pub verified: bool,
    pub failed_check: Option<(&'a str, &'a str)>,
    pub checks: usize,
    pub not_checked: usize,
}

/// Builds the summary.
pub(crate) fn summarize(f: Facts<'_>) -> AuditSummary {
    let m = f.manifest;
    // One party-tree build for the hash and the privacy line.
    let header = m.header();
    let mut inputs: Vec<AuditInput> = m
        .parties
        .iter()
        .map(|p| AuditInput {
            name: p.name.clone(),
            role: "party".into(),
            dataset_root: p.commitment.merkle_root,
            record_count: p.commitment.record_count,
        })
        .collect();
    if let Some(v) = &m.owner.validation {
        inputs.push(AuditInput {
            name: sealroom_protocol::manifest::validation_input_name(&m.owner.name),
            role: "owner".into(),
            dataset_root: v.merkle_root,
            record_count: v.record_count,
        });
    }
    let measurements: Vec<AuditMeasurement> = f
        .attempts
        .iter()
        .zip(f.verdicts)
        .map(|(a, v)| {
            let pinned_values = a
                .tee_kind
                .and_then(|k| f.policy.measurements.get(&k).cloned())
                .unwrap_or_default();
            let verified = v.as_ref().is_some_and(|v| v.verified);
            AuditMeasurement {
                attempt: a.number,
                tee_kind: a.tee_kind,
                measurement: v.as_ref().and_then(|v| v.measurement.clone()),
                pinned: verified && !pinned_values.is_empty(),
                pinned_values,
            }
        })
        .collect();
    let reports: Vec<AuditReport> = f
        .bundle
        .reports
        .iter()
        .zip(&f.reports)
        .map(|(b, (r, h))| AuditReport {
            kind: b.kind.clone(),
            report_hash: *h,
            signed_utc: r.as_ref().map(|r| utc(r.timestamp as i64)),
            node_key: r.as_ref().map(|r| hex::encode(r.nodeKey)),
            tx_hash: b.tx_hash.clone(),
            block: b.block,
            tx_checked: f.from_chain,
        })
        .collect();

    // The plain-language summary.
    let mut plain = vec![];
    let parties: Vec<&str> = m.parties.iter().map(|p| p.name.as_str()).collect();
    let pooled: u64 = m.parties.iter().map(|p| p.commitment.record_count).sum();
    plain.push(format!(
        "{} part{} ({}) pooled {pooled} records to train a {} model{}{} for `{}`, {} epochs from seed {}.",
        parties.len(),
        if parties.len() == 1 { "y" } else { "ies" },
        parties.join(", "),
        words(&m.model.kind),
        if m.model.hidden.is_empty() {
            String::new()
        } else {
            format!(
                " (hidden layers {})",
                m.model
                    .hidden
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("×")
            )
        },
        match m.schema.task {
            sealroom_protocol::scenario::Task::Regression =>
                format!(" that predicts the number `{}` (regression)", m.schema.label),
            sealroom_protocol::scenario::Task::Classification =>
                format!(" that predicts the class `{}`", m.schema.label),
        },
        m.owner.name,
        m.training.epochs,
        m.training.seed,
    ));
    if m.training.compute == sealroom_protocol::scenario::TrainingCompute::Cuda {
        plain.push("The manifest requires training on the node's GPU (Burn's CUDA backend): the signed reports commit to that manifest, and a node without it refuses the session.".into());
    }
    plain.push(match &m.owner.validation {
        Some(v) => format!(
            "The owner measured the model on a validation set of its own ({} records); no party saw another's data.",
            v.record_count
        ),
        None => "The model was measured on a held-out split of the pooled data; no party saw another's data.".into(),
    });
    let last = f.attempts.last();
    match last.and_then(|a| a.tee_kind) {
        Some(k) => plain.push(format!("It ran on {}.", tee_words(k))),
        None => plain.push("No node evidence names where it ran.".into()),
    }
    // The GPU evidence of the node the outcome comes from (the latest
    // envelope in the bundle).
    let latest_envelope = f
        .bundle
        .reports
        .iter()
        .rev()
        .find_map(|r| r.envelope.as_ref())
        .unwrap_or(&f.bundle.envelope);
    plain.push(match latest_envelope.gpu.as_ref().map(|g| g.kind) {
        None => "The node presented no GPU evidence.".into(),
        Some(TeeKind::Sim) => "The node presented SIMULATED GPU evidence (no GPU hardware was attested), bound to its CPU evidence by its nonce.".into(),
        Some(k) => format!("The node presented {k} GPU evidence, bound to its CPU evidence by its nonce."),
    });
    if latest_envelope.gpu.is_some() || f.policy.require_gpu {
        plain.push(if f.policy.gpu_reference.is_empty() {
            "The policy pins no GPU measurement: any GPU firmware in confidential-computing mode would have been accepted.".to_string()
        } else {
            format!(
                "The GPU's measurements had to match the policy's reference ({}).",
                crate::policy_eval::gpu_pin_words(f.policy)
            )
        });
    }
    if f.attempts.len() > 1 {
        let lost = f
            .attempts
            .iter()
            .filter(|a| a.outcome == AttemptResult::Lost)
            .count();
        plain.push(format!(
            "{} nodes held the session in turn: {lost} was lost and replaced; the result comes from the last, and every node's evidence was checked.",
            f.attempts.len()
        ));
    }
    let outcome = f
        .reports
        .iter()
        .filter_map(|(r, _)| r.as_ref())
        .find(|r| r.kind != 1);
    plain.push(match outcome {
        Some(r) if r.kind == 2 => format!(
            "Training completed: the model (sha256 {:#x}) was sealed to the owner's key{}.",
            r.modelHash,
            if r.inputsWiped {
                " and the node wiped every input"
            } else {
                ", but the node did NOT report its inputs wiped"
            }
        ),
        Some(r) => format!("The session stopped before a model: {}.", r.abortReason),
        None => "The session has not ended: no completed or aborted report.".into(),
    });
    plain.push(format!(
        "Privacy of the records against the model: {}.",
        privacy_words(&header)
    ));
    let pinned: Vec<&AuditMeasurement> = measurements.iter().filter(|x| x.pinned).collect();
    plain.push(if !measurements.is_empty() && pinned.len() == measurements.len() {
        "The code that ran is one the policy pins by its launch measurement.".into()
    } else {
        "The policy pins no launch measurement for the node's kind: the evidence proves which code ran (its measurement is below), but any code would have been accepted.".into()
    });
    if !m.engine.trainer_measurements.is_empty() {
        plain.push(format!(
            "The manifest allows {} trainer build(s) (engine allowlist), checked against the attested measurement.",
            m.engine.trainer_measurements.len()
        ));
    }
    plain.push(match (f.verified, f.failed_check) {
        (true, _) => format!(
            "All {} checks passed against {}.",
            f.checks,
            if f.policy_source == "manifest" {
                "the policy the parties signed".to_string()
            } else {
                format!("the policy in {}", f.policy_source)
            }
        ),
        (false, Some((c, d))) => format!("NOT verified: the check `{c}` failed ({d})."),
        (false, None) => "NOT verified.".into(),
    });
    plain.push(if f.from_chain {
        "The reports were read from the chain just now: the registry holds exactly these.".into()
    } else {
        format!(
            "This is an offline bundle: {} field(s) only the chain can confirm (transactions, blocks, the registry's stored hashes) were not checked; verify from the chain to confirm them.",
            f.not_checked
        )
    });

    AuditSummary {
        plain,
        session: AuditSession {
            id: m.session_id,
            name: m.name.clone(),
            description: m.description.clone(),
            created_utc: utc(i64::try_from(m.created_at).unwrap_or(i64::MAX)),
            manifest_hash: header.hash(),
        },
        inputs,
        model: serde_json::json!({
            "kind": words(&m.model.kind),
            "hidden": m.model.hidden,
            "epochs": m.training.epochs,
            "batch_size": m.training.batch_size,
            "optimizer": words(&m.training.optimizer),
            "learning_rate": m.training.learning_rate,
            "seed": m.training.seed,
            "validation_split": m.training.validation_split,
            "compute": m.training.compute.as_str(),
            "features": m.schema.features.len(),
            "label": m.schema.label,
            "task": m.schema.task.as_str(),
            "label_classes": m.schema.label_classes,
        }),
        policy: f.policy.clone(),
        measurements,
        reports,
    }
}

/// The manifest's differential privacy in a line: ε recomputed from the
/// committed DP-SGD parameters, or that the training is not private.
pub fn privacy_words(m: &sealroom_protocol::manifest::ManifestHeader) -> String {
    use sealroom_protocol::privacy::NoiseSource;
    let Some(p) = &m.privacy else {
        return "not differentially private (no [privacy]): the model may reveal whether a record was in the data".into();
    };
    match (m.privacy_spent(), m.privacy_schedule()) {
        (Ok(spent), Some(plan)) => format!(
            "DP-SGD, ε = {:.4} at δ = {} per record (σ {:.4}, C {}, Poisson q {:.4}, {} steps); {}",
            spent.epsilon,
            p.delta,
            p.noise_multiplier.unwrap_or(f64::NAN),
            p.max_grad_norm,
            plan.sample_rate,
            plan.steps,
            match p.noise_source {
                NoiseSource::Tee => "noise keyed inside the TEE",
                NoiseSource::Seed =>
                    "noise derived from the seed: no guarantee against anyone who knows it (every member)",
            }
        ),
        (Err(e), _) => format!("DP-SGD, ε not computable: {e}"),
        (_, None) => "DP-SGD, but no training records to sample".into(),
    }
}

/// The policy in a line an auditor can read.
pub fn policy_words(p: &Policy) -> String {
    let kinds: Vec<String> = p.accepted_kinds.iter().map(|k| k.to_string()).collect();
    let pins = if p.measurements.values().all(Vec::is_empty) {
        "no measurement pinned (any code accepted)".to_string()
    } else {
        p.measurements
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k} pinned to {}", v.join(" or ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "accepts {}; simulation {}; debug {}; evidence at most {} s old; GPU {}{}; {pins}",
        kinds.join(", "),
        if p.allow_simulation {
            "ALLOWED"
        } else {
            "refused"
        },
        if p.allow_debug { "allowed" } else { "refused" },
        p.max_evidence_age_s,
        if p.require_gpu {
            "required"
        } else {
            "not required"
        },
        if p.require_gpu || !p.gpu_reference.is_empty() {
            format!(" ({})", crate::policy_eval::gpu_pin_words(p))
        } else {
            String::new()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_and_policy_words() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_144_426), "2026-12-01 17:00:26 UTC");
        let pin = "ab".repeat(48);
        let p = Policy::from_toml(&format!(
            "accepted_kinds = [\"tdx\", \"sim\"]\nallow_simulation = true\n[measurements]\ntdx = [\"{pin}\"]"
        ))
        .unwrap();
        let w = policy_words(&p);
        assert!(
            w.contains("accepts tdx, sim") && w.contains("simulation ALLOWED"),
            "{w}"
        );
        assert!(w.contains(&format!("tdx pinned to {pin}")), "{w}");
        let w = policy_words(&Policy::default());
        assert!(w.contains("no measurement pinned"), "{w}");
    }
}
