//! The owner accepts only the attested model.
//!
//! The sealed model the coordinator serves is worth nothing by itself (HPKE
//! base mode ties it to no sender: anyone can seal a model to the owner's
//! public key). What authenticates it is the `completed` report: signed by
//! the node key that the node's evidence binds, under the consented
//! manifest's policy, naming the sealed bytes' SHA-256 and the model's.
//! [`Member::fetch_model`] verifies that chain of facts before anything is
//! written and records the accepted hashes; [`open_model_file`] opens only a
//! file whose hashes match that record.
//!
//! A session may have several node attempts (a lost node replaced by a fresh
//! one): one `opened` per attempt, each linking the previous attempt's, the
//! `completed` linking the latest. The links are verified back to the first
//! `opened`; the model is accepted from the last attempt's node only.

use std::path::Path;

use alloy_primitives::{keccak256, B256};
use sealroom_protocol::api::{NodeRegistration, ReportRecord};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::sealed_model::{open_model, read_header, OpenedModel};
use sealroom_reports::check::Check;
use sealroom_reports::report::{verify_report_signature, IntegrityReport, ReportKind};
use zeroize::Zeroizing;

use crate::record::ModelEntry;
use crate::{now, verify_registration, Member, MemberError, RecordStore};

/// Report hashes the registry stores for a session, read from the chain by
/// the caller (the member library carries no chain client).
#[derive(Clone, Debug, Default)]
pub struct ChainReportHashes {
    /// `(kind, keccak256(report bytes))` as the registry stored them, in
    /// chain order (one `opened` per node attempt: the last is the one the
    /// registry stores now).
    pub stored: Vec<(ReportKind, B256)>,
    /// Where they were read (shown to the user).
    pub source: String,
}

/// A model the owner accepted: the bytes, and what was verified.
pub struct FetchedModel {
    /// The sealed bytes as received.
    pub sealed: Vec<u8>,
    /// The opened model.
    pub opened: OpenedModel,
    /// The verified `completed` report.
    pub report: IntegrityReport,
    /// keccak256 of the report as supplied.
    pub report_hash: B256,
    /// SHA-256 of the sealed bytes (= the report's `sealedModelHash`).
    pub sealed_sha256: B256,
    /// SHA-256 of the model (= the report's `modelHash`).
    pub model_sha256: B256,
    /// The node's TEE kind and whether it was simulated.
    pub node_kind: sealroom_protocol::policy::TeeKind,
    /// True for simulated evidence.
    pub insecure_simulation: bool,
    /// `Some(source)` when the chain's stored hash was compared; `None` when
    /// no chain was given (the caller must say the chain was not checked).
    pub chain_checked: Option<String>,
}

impl ChainReportHashes {
    /// The stored hashes of a bundle read from the chain (by the chain reader,
    /// which checked them against the registry's storage).
    pub fn from_bundle(bundle: &sealroom_reports::verifier::Bundle, source: String) -> Self {
        let stored = bundle
            .reports
            .iter()
            .filter_map(|r| Some((ReportKind::from_name(&r.kind)?, r.stored_hash)))
            .collect();
        Self { stored, source }
    }
}

fn fail(check: Check, detail: impl Into<String>) -> MemberError {
    MemberError::check_failed(check, detail)
}

fn decode_report(r: &ReportRecord) -> Result<(Vec<u8>, IntegrityReport, [u8; 64]), MemberError> {
    let bytes = hex::decode(r.report_abi.trim_start_matches("0x"))
        .map_err(|_| fail(Check::ModelReport, format!("{} report: not hex", r.kind)))?;
    // Strict: trailing bytes or dirty padding are refused, so the bytes as
    // supplied are exactly what is hashed and signed.
    let report = IntegrityReport::from_abi_bytes(&bytes)
        .map_err(|e| fail(Check::ModelReport, format!("{} report: {e}", r.kind)))?;
    let sig = sealroom_protocol::hash::parse_hex_array::<64>(&r.signature).ok_or_else(|| {
        fail(
            Check::ModelReport,
            format!("{} report: signature not 64 bytes", r.kind),
        )
    })?;
    Ok((bytes, report, sig))
}

impl Member<'_> {
    /// Fetches the sealed model as the owner and accepts it only if a
    /// `completed` report verifies: for this session and the consented
    /// manifest, naming the owner's key, signed by a node whose evidence
    /// verifies against the consented policy and binds that key, linked to a
    /// signed `opened` report of the same node, and naming exactly the sealed
    /// bytes received and the model they open to. After a fail-over the
    /// served `opened` reports (one per node attempt) must form one chain of
    /// links from the `completed` back to the first, each signed by the node
    /// it names. With `chain`, the reports must be the ones the registry
    /// stored. Nothing is written here; the caller writes the model after
    /// this returns.
    pub fn fetch_model(
        &self,
        session: &B256,
        chain: Option<&ChainReportHashes>,
    ) -> Result<FetchedModel, MemberError> {
        let (st, mut rec) = self.checked(session)?;
        let m = &rec.manifest.header;
        if m.owner.identity.ed25519 != self.me.public().ed25519 {
            return Err(MemberError::input(
                "--key",
                "only the session's owner receives the model",
            ));
        }
        let one = |kind: &str| -> Result<Option<&ReportRecord>, MemberError> {
            let mut it = st.reports.iter().filter(|r| r.kind == kind);
            let first = it.next();
            if it.next().is_some() {
                return Err(fail(
                    Check::ModelReport,
                    format!("more than one {kind} report"),
                ));
            }
            Ok(first)
        };
        let completed = one("completed")?
            .ok_or_else(|| fail(Check::ModelReport, "the session has no completed report"))?;
        let (c_bytes, c, c_sig) = decode_report(completed)?;
        let openeds = st
            .reports
            .iter()
            .filter(|r| r.kind == "opened")
            .map(decode_report)
            .collect::<Result<Vec<_>, _>>()?;
        // The attempts, latest first: the completed links the latest opened,
        // each opened the previous attempt's, the first links nothing.
        let attempts = chain_of_openeds(&c, &openeds)?;
        let (o_bytes, o, o_sig) = &openeds[attempts[0]];
        if c.kind != ReportKind::Completed as u8
            || openeds
                .iter()
                .any(|(_, r, _)| r.kind != ReportKind::Opened as u8)
        {
            return Err(fail(
                Check::ModelReport,
                "report kinds do not match their labels",
            ));
        }
        for (i, (_, r, sig)) in openeds.iter().enumerate() {
            if r.sessionId != *session || r.manifestHash != rec.manifest_hash {
                return Err(fail(
                    Check::ModelReport,
                    format!("opened report {i} is for another session or manifest"),
                ));
            }
            // An earlier attempt's node: its own key signed its opened.
            verify_report_signature(r, &r.nodeKey.0, sig).map_err(|e| {
                fail(
                    Check::ModelReportSignature,
                    format!("opened report {i}: {e}"),
                )
            })?;
        }
        let o = o.clone();
        for (name, r) in [("opened", &o), ("completed", &c)] {
            if r.sessionId != *session {
                return Err(fail(
                    Check::ModelReport,
                    format!("{name} report is for another session"),
                ));
            }
            if r.manifestHash != rec.manifest_hash {
                return Err(fail(
                    Check::ModelReport,
                    format!(
                        "{name} report is bound to manifest {:#x}, you consented to {:#x}",
                        r.manifestHash, rec.manifest_hash
                    ),
                ));
            }
        }
        if c.ownerKey.0 != m.owner.identity.x25519 {
            return Err(fail(
                Check::ModelReport,
                "the completed report names another owner key",
            ));
        }
        if c.prevReportHash != keccak256(o_bytes) {
            return Err(fail(
                Check::ModelReport,
                "the completed report does not link the opened report",
            ));
        }
        if o.nodeKey != c.nodeKey || o.evidenceHash != c.evidenceHash {
            return Err(fail(
                Check::ModelReport,
                "opened and completed come from different nodes",
            ));
        }
        // The node: its evidence must verify against the consented policy,
        // at the time it signed, and bind the key that signed the reports.
        let reg: &NodeRegistration = st.node.as_ref().ok_or_else(|| {
            fail(
                Check::ModelNode,
                "the coordinator serves no node registration",
            )
        })?;
        // The owner that brought validation data granted it to one node it
        // verified itself: the model must come from that node.
        if let Some(g) = &rec.grant {
            if g.node_key != c.nodeKey.0 {
                return Err(fail(
                    Check::ModelNode,
                    format!(
                        "the completed report is signed by node {}, but you granted your data to node {}",
                        hex::encode(&c.nodeKey[..8]),
                        hex::encode(&g.node_key[..8])
                    ),
                ));
            }
        }
        if reg.node_key != c.nodeKey.0 || reg.hpke_key != c.nodeHpkeKey.0 {
            return Err(fail(
                Check::ModelNode,
                "the registered node did not sign the reports",
            ));
        }
        if sealroom_reports::binding::registration_evidence_hash(reg) != c.evidenceHash {
            return Err(fail(
                Check::ModelNode,
                "the served evidence is not the evidence the reports name",
            ));
        }
        let at = i64::try_from(o.timestamp).unwrap_or(i64::MAX);
        let verdict = verify_registration(m, reg, at);
        if !verdict.verified {
            let f = verdict.failure.unwrap_or_else(|| {
                sealroom_reports::attest::Failure::new(
                    sealroom_reports::check::Check::EvidenceVerified,
                    "rejected without a named check",
                )
            });
            return Err(MemberError::NodeRejected(f));
        }
        verify_report_signature(&o, &reg.node_key, o_sig)
            .map_err(|e| fail(Check::ModelReportSignature, format!("opened: {e}")))?;
        verify_report_signature(&c, &reg.node_key, &c_sig)
            .map_err(|e| fail(Check::ModelReportSignature, format!("completed: {e}")))?;
        if !c.inputsWiped {
            return Err(fail(
                Check::ModelReport,
                "the completed report does not say inputs were wiped",
            ));
        }
        let report_hash = keccak256(&c_bytes);
        let chain_checked = match chain {
            None => None,
            Some(ch) => {
                let stored = ch
                    .stored
                    .iter()
                    .find(|(k, _)| *k == ReportKind::Completed)
                    .map(|(_, h)| *h)
                    .ok_or_else(|| {
                        fail(
                            Check::ModelChain,
                            format!("{}: no completed report stored", ch.source),
                        )
                    })?;
                if stored != report_hash {
                    return Err(fail(
                        Check::ModelChain,
                        format!(
                            "{}: the registry stores completed report {stored:#x}, the coordinator serves {report_hash:#x}",
                            ch.source
                        ),
                    ));
                }
                // The latest opened the registry holds is the one the
                // completed links (the registry enforced that link).
                let opened_hash = keccak256(o_bytes);
                if let Some((_, h)) = ch
                    .stored
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == ReportKind::Opened)
                {
                    if *h != opened_hash {
                        return Err(fail(
                            Check::ModelChain,
                            format!(
                                "{}: the registry's latest opened report is {h:#x}, the coordinator serves {opened_hash:#x}",
                                ch.source
                            ),
                        ));
                    }
                }
                Some(ch.source.clone())
            }
        };
        // The bytes: exactly those the signed report names.
        let sealed = self.client.sealed_model(session)?;
        let sealed_sha256 = B256::from(sealroom_protocol::hash::sha256(&sealed));
        if sealed_sha256 != c.sealedModelHash {
            return Err(fail(
                Check::ModelSealedHash,
                format!(
                    "the sealed model received hashes to {sealed_sha256:#x}; the signed completed report names {:#x}",
                    c.sealedModelHash
                ),
            ));
        }
        let opened_model =
            open_checked(&sealed, self.me, session, &rec.manifest_hash, &c.modelHash)?;
        rec.model = Some(ModelEntry {
            completed_report_hash: report_hash,
            node_key: reg.node_key,
            sealed_sha256,
            model_sha256: c.modelHash,
            chain_checked: chain_checked.is_some(),
            at: now(),
        });
        self.records.save(&rec)?;
        Ok(FetchedModel {
            sealed,
            opened: opened_model,
            model_sha256: c.modelHash,
            report: c,
            report_hash,
            sealed_sha256,
            node_kind: reg.kind,
            insecure_simulation: verdict.insecure_simulation,
            chain_checked,
        })
    }
}

/// Orders the served `opened` reports into the chain of node attempts the
/// `completed` report links to, latest first (indexes into `openeds`):
/// every served `opened` must be on it, and the first attempt's links zero.
fn chain_of_openeds(
    completed: &IntegrityReport,
    openeds: &[(Vec<u8>, IntegrityReport, [u8; 64])],
) -> Result<Vec<usize>, MemberError> {
    if openeds.is_empty() {
        return Err(fail(Check::ModelReport, "the session has no opened report"));
    }
    let hashes: Vec<B256> = openeds.iter().map(|(b, _, _)| keccak256(b)).collect();
    let mut order = Vec::with_capacity(openeds.len());
    let mut link = completed.prevReportHash;
    let mut what = "the completed report".to_string();
    while link != B256::ZERO {
        let i = hashes.iter().position(|h| *h == link).ok_or_else(|| {
            fail(
                Check::ModelReport,
                format!("{what} links {link:#x}, which is no opened report served"),
            )
        })?;
        if order.contains(&i) {
            return Err(fail(
                Check::ModelReport,
                "the opened reports link in a loop",
            ));
        }
        order.push(i);
        link = openeds[i].1.prevReportHash;
        what = format!("opened report {i}");
    }
    if order.is_empty() {
        return Err(fail(
            Check::ModelReport,
            "the completed report does not link the opened report",
        ));
    }
    if order.len() != openeds.len() {
        return Err(fail(
            Check::ModelReport,
            format!(
                "{} opened reports served, {} on the chain of attempts the completed report links to (more than one opened report per attempt)",
                openeds.len(),
                order.len()
            ),
        ));
    }
    Ok(order)
}

/// Opens sealed bytes and checks the header and the model's hash.
fn open_checked(
    sealed: &[u8],
    me: &Identity,
    session: &B256,
    manifest_hash: &B256,
    model_sha256: &B256,
) -> Result<OpenedModel, MemberError> {
    let opened = open_model(sealed, me).map_err(|e| fail(Check::ModelOpen, e.to_string()))?;
    if opened.header.session_id != *session || opened.header.manifest_hash != *manifest_hash {
        return Err(fail(
            Check::ModelOpen,
            "the sealed model's header names another session or manifest",
        ));
    }
    let found = B256::from(sealroom_protocol::hash::sha256(&opened.model));
    if found != *model_sha256 {
        return Err(fail(
            Check::ModelHash,
            format!("the model hashes to {found:#x}; the signed completed report names {model_sha256:#x}"),
        ));
    }
    Ok(opened)
}

/// Opens a sealed model file as the owner, only if it is the model this
/// owner accepted with `fetch-model` (its record names the sealed bytes'
/// hash and the model hash from the verified `completed` report).
pub fn open_model_file(
    path: &Path,
    me: &Identity,
    records: &RecordStore,
) -> Result<(OpenedModel, B256), MemberError> {
    let what = path.display().to_string();
    let sealed = Zeroizing::new(std::fs::read(path).map_err(|e| MemberError::input(&what, e))?);
    let (header, _) = read_header(&sealed).map_err(|e| MemberError::input(&what, e))?;
    let session = header.session_id;
    let rec = records
        .load(&session, &me.public().ed25519)?
        .ok_or_else(|| MemberError::NotConsented {
            session,
            dir: records.dir().display().to_string(),
        })?;
    let accepted = rec.model.ok_or_else(|| {
        fail(
            Check::ModelUnverified,
            format!(
                "no verified completed report for session {session:#x} in your record: run `sealroom owner fetch-model` first"
            ),
        )
    })?;
    let found = B256::from(sealroom_protocol::hash::sha256(&sealed));
    if found != accepted.sealed_sha256 {
        return Err(fail(
            Check::ModelSealedHash,
            format!(
                "{what} hashes to {found:#x}; the verified completed report names {:#x}",
                accepted.sealed_sha256
            ),
        ));
    }
    let opened = open_checked(
        &sealed,
        me,
        &session,
        &rec.manifest_hash,
        &accepted.model_sha256,
    )?;
    Ok((opened, accepted.model_sha256))
}

/// The model's quality in one phrase (the first of [`quality_lines`], and
/// what the TUI says after a fetch): `accuracy 0.982 (111/113 correct) on
/// the owner's validation set`, or `R² …, RMSE … on … (N records)`.
pub fn quality_summary(m: &serde_json::Value) -> String {
    let on = match m["validation_set"].as_str() {
        Some("split") => "on the held-out split of the pooled data",
        _ => "on the owner's validation set",
    };
    let n = m["validation_records"].as_u64().unwrap_or(0);
    let fixed = |k: &str| m[k].as_f64().map_or("?".into(), |v| format!("{v:.3}"));
    if m["task"].as_str() == Some("regression") {
        format!(
            "R² {}, RMSE {} {on} ({n} records)",
            fixed("final_r2"),
            fixed("final_rmse")
        )
    } else {
        let correct = m["validation_correct"]
            .as_u64()
            .map_or(String::new(), |c| format!(" ({c}/{n} correct)"));
        format!("accuracy {}{correct} {on}", fixed("final_accuracy"))
    }
}

/// The sealed metrics in words, so the owner sees how good the model is
/// without `--json`: accuracy with its count and confusion matrix, or R²
/// and RMSE; the set they were measured on; the epochs with the last
/// validation loss; ε for a private session. The metrics come from inside
/// the sealed package the owner just opened, not from the coordinator.
pub fn quality_lines(m: &serde_json::Value) -> Vec<String> {
    let mut lines = vec![format!("quality      {}", quality_summary(m))];
    if m["task"].as_str() != Some("regression") {
        if let Some(rows) = m["confusion_matrix"].as_array().filter(|r| r.len() <= 12) {
            lines.push("confusion    rows: true class, columns: predicted class".into());
            for (i, row) in rows.iter().enumerate() {
                let cells: Vec<String> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{:>5}", c.as_u64().unwrap_or(0)))
                    .collect();
                lines.push(format!("             {i:>3} |{}", cells.join("")));
            }
        }
    }
    if let Some(epochs) = m["epochs"].as_array() {
        let last = epochs
            .last()
            .and_then(|e| e["val_loss"].as_f64())
            .map_or(String::new(), |l| format!(", last validation loss {l:.4}"));
        lines.push(format!(
            "training     {} epochs on {} records{last} (the per-epoch curve: --json)",
            epochs.len(),
            m["train_records"].as_u64().unwrap_or(0)
        ));
    }
    if let Some(eps) = m["privacy"]["epsilon"].as_f64() {
        lines.push(format!(
            "privacy      DP-SGD, ε = {eps:.3} at δ = {}",
            m["privacy"]["delta"]
                .as_f64()
                .map_or("?".into(), |d| format!("{d:e}"))
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::quality_lines;

    #[test]
    fn the_sealed_metrics_read_as_words_for_each_task() {
        let classifier = serde_json::json!({
            "final_accuracy": 0.9823, "validation_records": 113, "validation_correct": 111,
            "validation_set": "owner", "train_records": 456,
            "confusion_matrix": [[41, 1], [1, 70]],
            "epochs": [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.25}],
        });
        let l = quality_lines(&classifier);
        assert_eq!(
            l[0],
            "quality      accuracy 0.982 (111/113 correct) on the owner's validation set"
        );
        assert_eq!(l[2], "               0 |   41    1");
        assert!(
            l[4].starts_with("training     2 epochs on 456 records, last validation loss 0.2500"),
            "{l:?}"
        );
        let regressor = serde_json::json!({
            "task": "regression", "final_r2": 0.4612, "final_rmse": 50.41,
            "validation_records": 88, "validation_set": "split", "train_records": 354,
            "epochs": [], "privacy": {"epsilon": 4.9991, "delta": 1e-5},
        });
        let l = quality_lines(&regressor);
        assert_eq!(
            l[0],
            "quality      R² 0.461, RMSE 50.410 on the held-out split of the pooled data (88 records)"
        );
        assert_eq!(
            l.last().unwrap(),
            "privacy      DP-SGD, ε = 4.999 at δ = 1e-5"
        );
    }

    use super::*;

    fn report(kind: ReportKind, prev: B256, node: u8) -> IntegrityReport {
        IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: kind as u8,
            sessionId: B256::ZERO,
            manifestHash: B256::ZERO,
            inputsRoot: B256::ZERO,
            prevReportHash: prev,
            nodeKey: B256::repeat_byte(node),
            nodeHpkeKey: B256::ZERO,
            evidenceHash: B256::ZERO,
            teeKind: 3,
            insecureSimulation: true,
            modelHash: B256::ZERO,
            sealedModelHash: B256::ZERO,
            ownerKey: B256::ZERO,
            trainingSummaryHash: B256::ZERO,
            seed: 0,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: false,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: 0,
            privacy: Default::default(),
        }
    }

    fn opened(prev: B256, n: u8) -> (Vec<u8>, IntegrityReport, [u8; 64]) {
        let r = report(ReportKind::Opened, prev, n);
        (r.abi_bytes(), r, [0; 64])
    }

    fn completed(prev: B256) -> IntegrityReport {
        report(ReportKind::Completed, prev, 9)
    }

    fn detail(e: MemberError) -> String {
        e.to_string()
    }

    #[test]
    fn the_attempts_chain_back_from_the_completed_report() {
        let o1 = opened(B256::ZERO, 1);
        let o2 = opened(keccak256(&o1.0), 2);
        let o3 = opened(keccak256(&o2.0), 3);
        let c = completed(keccak256(&o3.0));
        // Served in any order: the links decide, latest first.
        let served = vec![o2.clone(), o3.clone(), o1.clone()];
        assert_eq!(chain_of_openeds(&c, &served).unwrap(), vec![1, 0, 2]);
        assert_eq!(
            chain_of_openeds(&completed(keccak256(&o1.0)), std::slice::from_ref(&o1)).unwrap(),
            vec![0]
        );
        // The completed links an earlier attempt: the latest is left over.
        let stale = completed(keccak256(&o2.0));
        let e = detail(chain_of_openeds(&stale, &served).unwrap_err());
        assert!(e.contains("3 opened reports served, 2 on the chain"), "{e}");
        // A hidden attempt: the chain breaks.
        let e = detail(chain_of_openeds(&c, &[o1.clone(), o3.clone()]).unwrap_err());
        assert!(e.contains("which is no opened report served"), "{e}");
        // No opened, or a completed linking nothing.
        assert!(chain_of_openeds(&c, &[]).is_err());
        let e = detail(chain_of_openeds(&completed(B256::ZERO), &served).unwrap_err());
        assert!(e.contains("does not link the opened report"), "{e}");
        // The same opened twice.
        let e = detail(chain_of_openeds(&c, &[o1.clone(), o2, o3, o1]).unwrap_err());
        assert!(e.contains("4 opened reports served, 3"), "{e}");
    }
}
