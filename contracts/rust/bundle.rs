//! Builds an offline [`Bundle`] from what a registry holds on chain: every
//! report in chain order (one `opened` per node attempt, then the terminal
//! report), signatures and each node attempt's evidence envelope from
//! calldata, and the hashes the registry stored (checked by the reader),
//! then checks each publishing transaction's receipt (`chain.receipt`).
//!
//! Before reading, the address is probed: an address where no registry
//! answers `sessionOf` is bad input ("no registry at ADDR", exit 2), not a
//! decoding failure.

use std::path::Path;

use crate::ChainTarget;
use crate::{
    block_on, read_session, AnyChain, Chain, ChainError, EmbeddedChain, PublishedReport,
    ReadOptions, RegistryError, RpcChain, RpcOptions, SessionRegistry,
};
use alloy_primitives::{Address, B256};
use alloy_sol_types::{SolCall, SolEvent};
use sealroom_reports::verifier::{
    Bundle, BundledReport, Check, EvidenceEnvelope, Provenance, BUNDLE_FORMAT,
};

/// Where to read from.
pub enum Source<'a> {
    /// A JSON-RPC endpoint (read-only use; any key signs nothing here).
    Rpc(&'a str),
    /// An embedded development chain's state directory.
    Embedded(&'a Path),
}

/// Why a bundle could not be built.
#[derive(Debug)]
pub enum ReadError {
    /// The chain or registry could not be read (bad input: exit 2).
    Access(String),
    /// What the chain holds is inconsistent (verification failure: exit 1).
    Inconsistent {
        /// Named check.
        check: String,
        /// Detail.
        detail: String,
    },
}

/// Reads a session's reports and builds a bundle (the receipts are
/// checked; see [`read_from_chain`]).
pub fn bundle_from_chain(
    source: Source<'_>,
    contract: Address,
    session: B256,
) -> Result<Bundle, ReadError> {
    read_from_chain(source, contract, session).map(|(b, _)| b)
}

/// Reads a session's reports, builds a bundle, and checks every publishing
/// transaction against its receipt. Returns the bundle and the
/// [`Provenance`] to verify it with (the chain checks that passed).
pub fn read_from_chain(
    source: Source<'_>,
    contract: Address,
    session: B256,
) -> Result<(Bundle, Provenance), ReadError> {
    let res = block_on(async move {
        let chain: AnyChain = match source {
            Source::Embedded(dir) => EmbeddedChain::open_snapshot(dir)
                .map_err(|e| ReadError::Access(e.to_string()))?
                .into(),
            Source::Rpc(url) => {
                // A verifier signs nothing: read-only connection, chain id checked for presets.
                let preset = match ChainTarget::parse(url)
                    .map_err(|e| ReadError::Access(format!("--rpc: {e}")))?
                {
                    ChainTarget::Preset(p) => Some(p),
                    ChainTarget::Url(_) => None,
                    ChainTarget::Embedded => return Err(ReadError::Access(
                        "--rpc embedded: read an embedded development chain with --chain-dir DIR"
                            .into(),
                    )),
                };
                let endpoint = preset.map(|p| p.default_url()).unwrap_or(url);
                RpcChain::connect_read_only(
                    endpoint,
                    preset.map(|p| p.chain_id()),
                    RpcOptions::default(),
                )
                .await
                .map_err(|e| ReadError::Access(e.to_string()))?
                .into()
            }
        };
        probe_registry(&chain, contract, session).await?;
        let kind = chain.kind();
        let chain_id = chain.chain_id();
        let label = chain.label();
        let record = read_session(&chain, contract, session, &ReadOptions::default())
            .await
            .map_err(|e| match e {
                RegistryError::HashMismatch { .. }
                | RegistryError::BrokenLink { .. }
                | RegistryError::UnexpectedEvents { .. } => ReadError::Inconsistent {
                    check: "chain.stored-hash".into(),
                    detail: e.to_string(),
                },
                RegistryError::Decode { .. }
                | RegistryError::NotDirectCall(_)
                | RegistryError::MissingEvent { .. } => ReadError::Inconsistent {
                    check: "chain.calldata".into(),
                    detail: e.to_string(),
                },
                other => ReadError::Access(other.to_string()),
            })?;
        let receipt = check_receipts(
            &chain,
            contract,
            session,
            &record.info.publisher,
            &record.reports,
        )
        .await?;
        Ok::<_, ReadError>((record, kind, chain_id, label, receipt))
    })
    .map_err(|e| ReadError::Access(e.to_string()))?;
    let (record, kind, chain_id, label, receipt) = res?;
    // Each node attempt's first report carries its envelope: the session's
    // first report the bundle's top-level one, a replacement node's first
    // report its own (`reports[i].envelope`).
    let mut envelopes = Vec::with_capacity(record.reports.len());
    for r in &record.reports {
        if r.evidence.is_empty() {
            envelopes.push(None);
            continue;
        }
        let e = EvidenceEnvelope::from_bytes(&r.evidence).map_err(|detail| {
            ReadError::Inconsistent {
                check: "chain.evidence".into(),
                detail: format!(
                    "{} report of tx {:#x}: {detail}",
                    r.kind.as_str(),
                    r.tx_hash
                ),
            }
        })?;
        if e.manifest.hash() != record.info.manifest_hash {
            return Err(ReadError::Inconsistent {
                check: "manifest".into(),
                detail: format!(
                    "the manifest in the calldata of the {} report of tx {:#x} does not hash to the manifest hash the session was registered with",
                    r.kind.as_str(),
                    r.tx_hash
                ),
            });
        }
        envelopes.push(Some(e));
    }
    let envelope = envelopes
        .first_mut()
        .and_then(Option::take)
        .ok_or_else(|| ReadError::Inconsistent {
            check: "chain.evidence".into(),
            detail: match record.reports.first() {
                Some(r) => format!(
                    "the session's first report ({}, tx {:#x}) carries no evidence envelope",
                    r.kind.as_str(),
                    r.tx_hash
                ),
                None => "the session has no report on chain".into(),
            },
        })?;
    let bundle = Bundle {
        format: BUNDLE_FORMAT.into(),
        session_id: session,
        chain: serde_json::json!({
            "kind": kind.as_str(),
            "chain_id": chain_id,
            "contract": format!("{contract:#x}"),
            "label": label,
        }),
        reports: record
            .reports
            .iter()
            .zip(envelopes)
            .map(|(r, envelope)| BundledReport {
                kind: r.kind.as_str().into(),
                report_abi: hex::encode(&r.report_bytes),
                signature: hex::encode(&r.signature),
                stored_hash: r.report_hash,
                tx_hash: Some(format!("{:#x}", r.tx_hash)),
                block: Some(r.block_number),
                envelope,
            })
            .collect(),
        envelope,
    };
    Ok((bundle, Provenance::Chain(vec![receipt])))
}

fn no_registry(contract: Address, why: impl std::fmt::Display) -> ReadError {
    ReadError::Access(format!("no registry at {contract:#x} (--contract): {why}"))
}

/// Asks the address for `sessionOf(session)`: anything but a well-formed
/// answer (no code, a revert, other bytes) means no sealroom registry is
/// there. Transport failures stay transport failures.
async fn probe_registry(
    chain: &AnyChain,
    contract: Address,
    session: B256,
) -> Result<(), ReadError> {
    let call = SessionRegistry::sessionOfCall { sessionId: session };
    match chain.call(contract, call.abi_encode().into()).await {
        Ok(out) if out.is_empty() => Err(no_registry(contract, "no contract code answers there")),
        Ok(out) => SessionRegistry::sessionOfCall::abi_decode_returns(&out)
            .map(|_| ())
            .map_err(|_| {
                no_registry(
                    contract,
                    "the contract there does not answer as a sealroom registry",
                )
            }),
        Err(ChainError::Reverted { reason, .. }) => Err(no_registry(
            contract,
            format!("the contract there reverts sessionOf ({reason})"),
        )),
        Err(e) => Err(ReadError::Access(e.to_string())),
    }
}

/// For every report: the publishing transaction has a successful receipt,
/// in the block the event was found in, sent by the session's publisher,
/// whose logs hold the registry's `ReportPublished(session, kind)` event
/// carrying the report's hash and previous-report hash.
async fn check_receipts(
    chain: &AnyChain,
    contract: Address,
    session: B256,
    publisher: &Address,
    reports: &[PublishedReport],
) -> Result<Check, ReadError> {
    let fail = |detail: String| ReadError::Inconsistent {
        check: "chain.receipt".into(),
        detail,
    };
    for r in reports {
        let kind = r.kind.as_str();
        let receipt = chain
            .receipt(r.tx_hash)
            .await
            .map_err(|e| ReadError::Access(e.to_string()))?
            .ok_or_else(|| {
                fail(format!(
                    "{kind} report: transaction {:#x} has no successful receipt",
                    r.tx_hash
                ))
            })?;
        if receipt.block_number != r.block_number {
            return Err(fail(format!(
                "{kind} report: transaction {:#x} is in block {} by its receipt, not {}",
                r.tx_hash, receipt.block_number, r.block_number
            )));
        }
        if &r.sender != publisher {
            return Err(fail(format!(
                "{kind} report: transaction {:#x} was sent by {:#x}, not the session's publisher {publisher:#x}",
                r.tx_hash, r.sender
            )));
        }
        let kind_topic = B256::left_padding_from(&[r.kind as u8]);
        let found = receipt.logs.iter().any(|l| {
            l.address == contract
                && l.topics.first() == Some(&SessionRegistry::ReportPublished::SIGNATURE_HASH)
                && l.topics.get(1) == Some(&session)
                && l.topics.get(2) == Some(&kind_topic)
                && SessionRegistry::ReportPublished::decode_raw_log(
                    l.topics.iter().copied(),
                    &l.data,
                )
                .is_ok_and(|e| {
                    e.reportHash == r.report_hash && e.prevReportHash == r.prev_report_hash
                })
        });
        if !found {
            return Err(fail(format!(
                "{kind} report: the receipt of transaction {:#x} holds no ReportPublished event of the registry for this session and report hash",
                r.tx_hash
            )));
        }
    }
    Ok(Check {
        check: "chain.receipt".into(),
        ok: true,
        detail: format!(
            "{} transaction(s) checked against their receipts: successful, in the block given, sent by the session's publisher {publisher:#x}, each emitting ReportPublished for this session with the report's hash",
            reports.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gas::filler;
    use crate::Registry;
    use alloy_primitives::keccak256;
    use sealroom_protocol::identity::Identity;
    use sealroom_protocol::manifest::Manifest;
    use sealroom_reports::attest::simulate::{sim_default_measurement, simulate_at};
    use sealroom_reports::binding::expected_report_data;
    use sealroom_reports::report::{signing_message, IntegrityReport, ReportKind};
    use sealroom_reports::verifier::{verify_bundle_from, AttemptResult, ENVELOPE_FORMAT};
    use sealroom_reports::TeeKind;

    const T0: u64 = 1_760_000_000;

    fn manifest() -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let s = sealroom_protocol::scenario::Scenario::load(&path).unwrap();
        let c = |n: u8| sealroom_protocol::dataset::DatasetCommitment {
            merkle_root: B256::repeat_byte(n),
            record_count: 10,
            schema_hash: B256::repeat_byte(9),
            ciphertext_sha256: B256::repeat_byte(n + 1),
            ciphertext_len: 100,
        };
        let parties = (0..3)
            .map(|i| (Identity::generate().unwrap().public(), c(i * 2)))
            .collect();
        let owner = Identity::generate().unwrap().public();
        Manifest::from_scenario(&s, B256::repeat_byte(7), 1, parties, owner, Some(c(40))).unwrap()
    }

    /// A simulated node: fresh keys, evidence binding them, its envelope.
    fn node(m: &Manifest, t: u64) -> (Identity, EvidenceEnvelope) {
        let id = Identity::generate().unwrap();
        let p = id.public();
        let rd = expected_report_data(&p.ed25519, &p.x25519, &m.hash().0);
        let evidence = simulate_at(&rd, &sim_default_measurement(), false, t as i64);
        let env = EvidenceEnvelope {
            format: ENVELOPE_FORMAT.into(),
            kind: TeeKind::Sim,
            evidence,
            certs: vec![],
            collateral: None,
            manifest: m.clone(),
            gpu: None,
        };
        (id, env)
    }

    fn report(
        (id, env): &(Identity, EvidenceEnvelope),
        m: &Manifest,
        kind: ReportKind,
        prev: B256,
        t: u64,
    ) -> (IntegrityReport, [u8; 64]) {
        let completed = kind == ReportKind::Completed;
        let r = IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: kind as u8,
            sessionId: m.session_id,
            manifestHash: m.hash(),
            inputsRoot: m.inputs_tree().unwrap().root(),
            prevReportHash: prev,
            nodeKey: id.public().ed25519.into(),
            nodeHpkeKey: id.public().x25519.into(),
            evidenceHash: keccak256(&env.evidence),
            teeKind: 3,
            insecureSimulation: true,
            modelHash: if completed {
                B256::repeat_byte(1)
            } else {
                B256::ZERO
            },
            sealedModelHash: if completed {
                B256::repeat_byte(2)
            } else {
                B256::ZERO
            },
            ownerKey: m.owner.identity.x25519.into(),
            trainingSummaryHash: B256::ZERO,
            seed: 42,
            dataOrderCommitment: B256::repeat_byte(3),
            inputsWiped: completed,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: t,
            privacy: Default::default(),
        };
        let sig = id.sign(&signing_message(&r.report_hash()));
        (r, sig)
    }

    /// Node 1 opens and is lost; node 2 opens (linking node 1's opened,
    /// carrying its own envelope) and completes. The bundle read from the
    /// chain holds both attempts' evidence and verifies, attempts explained.
    #[test]
    fn a_failed_over_session_reads_back_with_each_attempts_evidence_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest();
        let (n1, n2) = (node(&m, T0), node(&m, T0 + 600));
        let (o1, s1) = report(&n1, &m, ReportKind::Opened, B256::ZERO, T0);
        let (o2, s2) = report(&n2, &m, ReportKind::Opened, o1.report_hash(), T0 + 600);
        let (c2, sc) = report(&n2, &m, ReportKind::Completed, o2.report_hash(), T0 + 900);
        let contract = block_on(async {
            let chain = EmbeddedChain::open(dir.path()).unwrap();
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            reg.open_session(m.session_id, m.hash(), chain.sender())
                .await
                .unwrap();
            reg.publish(&o1, &s1, &n1.1.to_bytes()).await.unwrap();
            reg.publish(&o2, &s2, &n2.1.to_bytes()).await.unwrap();
            reg.publish(&c2, &sc, &[]).await.unwrap();
            reg.address()
        })
        .unwrap();
        let (bundle, provenance) =
            read_from_chain(Source::Embedded(dir.path()), contract, m.session_id).unwrap();
        assert_eq!(bundle.format, BUNDLE_FORMAT);
        let kinds: Vec<_> = bundle.reports.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "opened", "completed"]);
        assert_eq!(bundle.envelope, n1.1);
        assert_eq!(bundle.reports[0].envelope, None, "the top-level envelope");
        assert_eq!(bundle.reports[1].envelope.as_ref(), Some(&n2.1));
        assert_eq!(bundle.reports[2].envelope, None);
        assert_eq!(bundle.reports[0].stored_hash, o1.report_hash());
        let v = verify_bundle_from(&bundle, None, None, &provenance);
        assert!(v.verified, "{:?}", v.failure);
        assert_eq!(v.outcome, "completed");
        let outcomes: Vec<_> = v.attempts.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [AttemptResult::Lost, AttemptResult::Completed]);
        assert_eq!(v.attempts[1].opened_tx_hash, bundle.reports[1].tx_hash);
        // The bundle file round-trips through the strict reader.
        let text = serde_json::to_string_pretty(&bundle).unwrap();
        assert_eq!(Bundle::from_json(&text).unwrap(), bundle);

        // A replacement whose first report carries no envelope cannot be
        // verified: the reader keeps it absent and the verifier names it.
        let dir = tempfile::tempdir().unwrap();
        let contract = block_on(async {
            let chain = EmbeddedChain::open(dir.path()).unwrap();
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            reg.open_session(m.session_id, m.hash(), chain.sender())
                .await
                .unwrap();
            reg.publish(&o1, &s1, &n1.1.to_bytes()).await.unwrap();
            reg.publish(&o2, &s2, &[]).await.unwrap();
            reg.address()
        })
        .unwrap();
        let (bundle, provenance) =
            read_from_chain(Source::Embedded(dir.path()), contract, m.session_id).unwrap();
        let v = verify_bundle_from(&bundle, None, None, &provenance);
        assert_eq!(v.failure.unwrap().check, "report.attempts");

        // Evidence calldata that is not an envelope: inconsistent.
        let dir = tempfile::tempdir().unwrap();
        let contract = block_on(async {
            let chain = EmbeddedChain::open(dir.path()).unwrap();
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            reg.open_session(m.session_id, m.hash(), chain.sender())
                .await
                .unwrap();
            reg.publish(&o1, &s1, &n1.1.to_bytes()).await.unwrap();
            reg.publish(&o2, &s2, &filler("junk", 40)).await.unwrap();
            reg.address()
        })
        .unwrap();
        match read_from_chain(Source::Embedded(dir.path()), contract, m.session_id) {
            Err(ReadError::Inconsistent { check, detail }) => {
                assert_eq!(check, "chain.evidence");
                assert!(detail.starts_with("opened report of tx"), "{detail}");
            }
            Err(ReadError::Access(e)) => panic!("{e}"),
            Ok(_) => panic!("junk evidence accepted"),
        }
    }
}
