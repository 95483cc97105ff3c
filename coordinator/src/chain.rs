//! The chain side: which chain reports go to, the registry (deployed on
//! first use unless given), and the publisher that puts every accepted report
//! on chain.
//!
//! Publication is driven by the database, not by requests: a report is first
//! stored as pending, then published; after a crash the pending ones are
//! published on restart. The chain crate's publication is idempotent, so a
//! report whose transaction landed just before a crash is found, not sent
//! twice.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
use sealroom_contracts::{
    AnyChain, Chain, ChainKey, EmbeddedChain, IntegrityReport, Preset, Registry, RpcChain,
    RpcOptions,
};

use crate::error::CoordinatorError;

/// Which chain to use (`--chain`).
#[derive(Clone, Debug)]
pub enum ChainSpec {
    /// The in-process development chain, state in the directory.
    Embedded(PathBuf),
    /// A preset (`anvil`, `opbnb-testnet`, `opbnb-mainnet`).
    Preset(String),
    /// A JSON-RPC URL.
    Url(String),
}

impl ChainSpec {
    /// Parses `--chain` (`embedded_dir` is where an embedded chain keeps its state).
    pub fn parse(spec: &str, embedded_dir: PathBuf) -> Result<Self, CoordinatorError> {
        match sealroom_contracts::ChainTarget::parse(spec)
            .map_err(|e| CoordinatorError::Config(format!("--chain: {e}")))?
        {
            sealroom_contracts::ChainTarget::Embedded => Ok(Self::Embedded(embedded_dir)),
            sealroom_contracts::ChainTarget::Preset(p) => Ok(Self::Preset(p.name().to_string())),
            sealroom_contracts::ChainTarget::Url(u) => Ok(Self::Url(u)),
        }
    }
}

/// The chain, its registry and the publication settings.
pub struct ChainCtx {
    chain: Arc<AnyChain>,
    confirmations: u64,
    contract: std::sync::Mutex<Option<Address>>,
    /// The registry was given (`--contract`): never replaced by a deployment.
    fixed: bool,
    /// Serialises publications (one sender account, ordered reports).
    pub(crate) publish_lock: tokio::sync::Mutex<()>,
    name: String,
}

impl std::fmt::Debug for ChainCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCtx")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ChainCtx {
    /// Opens the chain. `key` is the sender's key for RPC chains (anvil's
    /// development key by default for `anvil`); `confirmations` defaults to
    /// the preset's.
    pub async fn open(
        spec: &ChainSpec,
        key: Option<ChainKey>,
        confirmations: Option<u64>,
        contract: Option<Address>,
    ) -> Result<Self, CoordinatorError> {
        let err = |e: sealroom_contracts::ChainError| CoordinatorError::Chain(e.to_string());
        let (chain, default_conf, name): (AnyChain, u64, String) = match spec {
            ChainSpec::Embedded(dir) => (
                EmbeddedChain::open(dir).map_err(err)?.into(),
                1,
                "embedded".into(),
            ),
            ChainSpec::Preset(p) => {
                let preset = Preset::from_name(p)
                    .ok_or_else(|| CoordinatorError::Config(format!("--chain {p}")))?;
                let c = RpcChain::from_preset(preset, None, key, RpcOptions::default())
                    .await
                    .map_err(err)?;
                (c.into(), preset.default_confirmations(), p.clone())
            }
            ChainSpec::Url(url) => {
                let key = key.ok_or_else(|| {
                    CoordinatorError::Config(format!(
                        "--chain {url} needs a funded key: --chain-key-file FILE or {}",
                        sealroom_contracts::CHAIN_KEY_ENV
                    ))
                })?;
                let c = RpcChain::connect(url, key, None, "json-rpc", RpcOptions::default())
                    .await
                    .map_err(err)?;
                (c.into(), 1, "json-rpc".into())
            }
        };
        Ok(Self {
            chain: Arc::new(chain),
            confirmations: confirmations.unwrap_or(default_conf).max(1),
            contract: std::sync::Mutex::new(contract),
            fixed: contract.is_some(),
            publish_lock: tokio::sync::Mutex::new(()),
            name,
        })
    }

    /// The chain's human label (says "embedded development chain" for the embedded one).
    pub fn label(&self) -> String {
        self.chain.label()
    }

    /// The registry address, once known.
    pub fn contract(&self) -> Option<Address> {
        self.contract.lock().map(|c| *c).unwrap_or(None)
    }

    fn set_contract(&self, a: Address) {
        if let Ok(mut c) = self.contract.lock() {
            *c = Some(a);
        }
    }

    /// The database key remembering the registry deployed on this chain.
    pub(crate) fn meta_key(&self) -> String {
        format!("registry:{}:{}", self.name, self.chain.chain_id())
    }

    /// `SessionStatus.chain`: `{kind, chain_id, contract, label}`.
    pub fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.name,
            "chain_id": self.chain.chain_id(),
            "contract": self.contract().map(|a| a.to_string()),
            "label": self.label(),
        })
    }

    /// Adopts a remembered registry address unless one was given.
    pub(crate) fn adopt_remembered(&self, remembered: Option<&str>) {
        if self.contract().is_none() {
            if let Some(a) = remembered.and_then(|s| Address::from_str(s).ok()) {
                self.set_contract(a);
            }
        }
    }

    /// The registry, deploying it when none is known (or the remembered one
    /// is gone, e.g. a fresh embedded chain). Returns whether it deployed.
    pub(crate) async fn registry(&self) -> Result<(Registry<Arc<AnyChain>>, bool), String> {
        if let Some(a) = self.contract() {
            let r = Registry::at(self.chain.clone(), a).with_confirmations(self.confirmations);
            match r.session(B256::ZERO).await {
                Ok(_) => return Ok((r, false)),
                // No registry code there (a remembered address on a fresh
                // embedded chain): deploy anew, unless the operator named it.
                Err(sealroom_contracts::RegistryError::Decode { .. }) if !self.fixed => {
                    tracing::warn!(contract = %a, "no registry at the remembered address; deploying a new one");
                }
                // Transport trouble must not cost a second deployment: retry later.
                Err(e) => return Err(format!("registry at {a}: {e}")),
            }
        }
        let (r, out) = Registry::deploy(self.chain.clone(), self.confirmations)
            .await
            .map_err(|e| format!("deploying the registry: {e}"))?;
        tracing::info!(contract = %r.address(), tx = %out.tx_hash, chain = %self.label(), "registry deployed");
        self.set_contract(r.address());
        Ok((r, true))
    }

    /// Registers the session on chain (idempotent); returns the tx hash.
    pub(crate) async fn open_session(
        &self,
        registry: &Registry<Arc<AnyChain>>,
        session_id: B256,
        manifest_hash: B256,
    ) -> Result<String, String> {
        let out = registry
            .open_session(session_id, manifest_hash, self.chain.sender())
            .await
            .map_err(|e| format!("openSession: {e}"))?;
        Ok(out.tx_hash.to_string())
    }

    /// Publishes one report (idempotent); returns (tx hash, block, gas).
    pub(crate) async fn publish(
        &self,
        registry: &Registry<Arc<AnyChain>>,
        report: &IntegrityReport,
        signature: &[u8],
        evidence: &[u8],
    ) -> Result<(String, u64, u64), String> {
        // `evidence` is an envelope (evidence + manifest); publish it only when
        // its evidence is the one the report names.
        let matches = sealroom_reports::verifier::EvidenceEnvelope::from_bytes(evidence)
            .map(|env| {
                sealroom_reports::binding::node_evidence_hash(
                    &env.evidence,
                    env.gpu.as_ref().map(|g| g.evidence.as_slice()),
                ) == report.evidenceHash
            })
            .unwrap_or(false);
        let evidence: &[u8] = if !evidence.is_empty() && matches {
            evidence
        } else {
            &[]
        };
        let p = registry
            .publish(report, signature, evidence)
            .await
            .map_err(|e| format!("publishReport: {e}"))?;
        Ok((p.tx_hash.to_string(), p.block_number, p.gas_used))
    }
}
