//! Builds an offline [`Bundle`] from what a registry holds on chain: the
//! reports, signatures and evidence envelope from calldata, and the hashes
//! the registry stored (checked by the reader), then checks each publishing
//! transaction's receipt (`chain.receipt`).
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
                RegistryError::HashMismatch { .. } => ReadError::Inconsistent {
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
    let envelope_bytes = record
        .reports
        .iter()
        .map(|r| &r.evidence)
        .find(|e| !e.is_empty())
        .ok_or_else(|| ReadError::Inconsistent {
            check: "chain.evidence".into(),
            detail: "no report carries the evidence envelope".into(),
        })?;
    let envelope =
        EvidenceEnvelope::from_bytes(envelope_bytes).map_err(|detail| ReadError::Inconsistent {
            check: "chain.evidence".into(),
            detail,
        })?;
    if envelope.manifest.hash() != record.info.manifest_hash {
        return Err(ReadError::Inconsistent {
            check: "manifest".into(),
            detail: "the manifest in calldata does not hash to the manifest hash the session was registered with".into(),
        });
    }
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
            .map(|r| BundledReport {
                kind: r.kind.as_str().into(),
                report_abi: hex::encode(&r.report_bytes),
                signature: hex::encode(&r.signature),
                stored_hash: r.report_hash,
                tx_hash: Some(format!("{:#x}", r.tx_hash)),
                block: Some(r.block_number),
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
