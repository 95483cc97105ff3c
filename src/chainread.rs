//! Builds an offline [`Bundle`] from what a registry holds on chain: the
//! reports, signatures and evidence envelope from calldata, and the hashes
//! the registry stored (checked by the reader).

use std::path::Path;

use alloy_primitives::{Address, B256};
use sealroom_contracts::Preset;
use sealroom_contracts::{
    block_on, read_session, AnyChain, Chain, EmbeddedChain, ReadOptions, RegistryError, RpcChain,
    RpcOptions,
};
use sealroom_reports::verifier::{Bundle, BundledReport, EvidenceEnvelope, BUNDLE_FORMAT};

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

/// Reads a session's reports and builds a bundle.
pub fn bundle_from_chain(
    source: Source<'_>,
    contract: Address,
    session: B256,
) -> Result<Bundle, ReadError> {
    let res = block_on(async move {
        let chain: AnyChain = match source {
            Source::Embedded(dir) => EmbeddedChain::open_snapshot(dir)
                .map_err(|e| ReadError::Access(e.to_string()))?
                .into(),
            Source::Rpc(url) => {
                // A verifier signs nothing: read-only connection, chain id checked for presets.
                let preset = Preset::from_name(url);
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
        let kind = chain.kind();
        let chain_id = chain.chain_id();
        let label = chain.label();
        let record = read_session(chain, contract, session, &ReadOptions::default())
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
        Ok::<_, ReadError>((record, kind, chain_id, label))
    })
    .map_err(|e| ReadError::Access(e.to_string()))?;
    let (record, kind, chain_id, label) = res?;
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
    Ok(Bundle {
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
    })
}
