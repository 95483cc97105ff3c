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
    /// `(kind, keccak256(report bytes))` as the registry stored them.
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
    /// signed `opened` report, and naming exactly the sealed bytes received
    /// and the model they open to. With `chain`, the report must be the one
    /// the registry stored. Nothing is written here; the caller writes the
    /// model after this returns.
    pub fn fetch_model(
        &self,
        session: &B256,
        chain: Option<&ChainReportHashes>,
    ) -> Result<FetchedModel, MemberError> {
        let (st, mut rec) = self.checked(session)?;
        let m = &rec.manifest;
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
        let opened = one("opened")?
            .ok_or_else(|| fail(Check::ModelReport, "the session has no opened report"))?;
        let (c_bytes, c, c_sig) = decode_report(completed)?;
        let (o_bytes, o, o_sig) = decode_report(opened)?;
        if c.kind != ReportKind::Completed as u8 || o.kind != ReportKind::Opened as u8 {
            return Err(fail(
                Check::ModelReport,
                "report kinds do not match their labels",
            ));
        }
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
        if c.prevReportHash != keccak256(&o_bytes) {
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
        if sealroom_reports::binding::evidence_hash(&reg.evidence) != c.evidenceHash {
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
        verify_report_signature(&o, &reg.node_key, &o_sig)
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
