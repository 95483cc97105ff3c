//! The [`Chain`] trait: the few operations the registry needs from an EVM
//! chain, implemented by the in-process [`EmbeddedChain`](crate::EmbeddedChain)
//! and by [`RpcChain`](crate::RpcChain) (any JSON-RPC node).
//!
//! The trait speaks raw calldata and logs, not registry calls, so the
//! registry logic (idempotency, decoding, checks) is written once in
//! [`crate::registry`] and runs unchanged on both chains.

use std::future::Future;
use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, B256};
use serde::Serialize;

use crate::bindings::decode_revert;
use crate::{EmbeddedChain, RpcChain};

/// Which implementation a chain is; printed in outputs so an embedded
/// development chain is never mistaken for a public one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// The in-process revm chain ("embedded development chain").
    Embedded,
    /// A JSON-RPC node (opBNB, anvil, any other).
    Rpc,
}

impl ChainKind {
    /// `embedded` or `rpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Rpc => "rpc",
        }
    }
}

/// A mined, successful transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxOutcome {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block it was included in.
    pub block_number: u64,
    /// Gas the transaction used (the receipt's `gasUsed`).
    pub gas_used: u64,
    /// The created contract, for deployments.
    pub contract_address: Option<Address>,
    /// Logs it emitted.
    pub logs: Vec<ChainLog>,
}

/// One event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainLog {
    /// Emitting contract.
    pub address: Address,
    /// Topics (topic 0 is the event signature hash).
    pub topics: Vec<B256>,
    /// Non-indexed data.
    pub data: Bytes,
    /// Transaction that emitted it.
    pub tx_hash: B256,
    /// Block it is in.
    pub block_number: u64,
}

/// A log filter: one contract, one event, optionally one first indexed topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// Emitting contract.
    pub address: Address,
    /// Event signature hash.
    pub topic0: B256,
    /// First indexed argument (the session id for the registry's events).
    pub topic1: Option<B256>,
    /// First block to search (inclusive).
    pub from_block: u64,
    /// Last block to search (inclusive); `None` means the latest.
    pub to_block: Option<u64>,
}

/// A transaction as the chain recorded it: enough to re-read its calldata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Sender.
    pub from: Address,
    /// Recipient (`None` for a deployment).
    pub to: Option<Address>,
    /// Calldata.
    pub input: Bytes,
    /// Block, once mined.
    pub block_number: Option<u64>,
}

/// Chain failures. [`ChainError::is_transient`] says which ones a retry may cure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The EVM reverted the call or transaction; `reason` is the decoded
    /// custom error (or `Error(string)`), `data` the raw revert data.
    #[error("reverted: {reason}")]
    Reverted {
        /// Decoded reason.
        reason: String,
        /// Raw revert data (empty when the node gave none).
        data: Bytes,
    },
    /// The transport failed (connection refused, timeout, HTTP 5xx, rate
    /// limit): the request may never have reached the node. Retryable.
    #[error("transport error talking to {endpoint}: {detail}")]
    Transport {
        /// The endpoint (URL without credentials).
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The node answered with an error that is not a revert.
    #[error("node error: {0}")]
    Node(String),
    /// The node's chain id is not the one the preset or caller expects.
    #[error("chain id mismatch: expected {expected}, the node reports {actual}")]
    ChainIdMismatch {
        /// Expected chain id.
        expected: u64,
        /// What the node says.
        actual: u64,
    },
    /// Waiting for the transaction's confirmations failed or timed out.
    #[error("transaction {tx_hash} not confirmed: {detail}")]
    Unconfirmed {
        /// The sent transaction.
        tx_hash: B256,
        /// Why.
        detail: String,
    },
    /// A mined transaction failed (status 0).
    #[error("transaction {tx_hash} failed on chain (status 0, gas used {gas_used}): {reason}")]
    FailedOnChain {
        /// The transaction.
        tx_hash: B256,
        /// Gas it burnt.
        gas_used: u64,
        /// The revert reason, re-derived by replaying the call when possible.
        reason: String,
    },
    /// Reading or writing the embedded chain's state directory failed.
    #[error("embedded chain state {path}: {detail}")]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The EVM refused the transaction itself (bad nonce, gas, ...).
    #[error("EVM error: {0}")]
    Evm(String),
    /// A chain key could not be read or parsed (the key itself is never printed).
    #[error("chain key: {0}")]
    Key(String),
    /// A bad endpoint, preset or option.
    #[error("invalid chain configuration: {0}")]
    Config(String),
}

impl ChainError {
    /// A revert from raw revert data, decoded against the registry's errors.
    pub fn reverted(data: Bytes) -> Self {
        Self::Reverted {
            reason: decode_revert(&data),
            data,
        }
    }

    /// True for failures a retry may cure (transport errors only: a revert
    /// or a node error will be the same next time).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport { .. })
    }
}

/// An EVM chain the registry can live on.
///
/// Futures are `Send` so a tokio server (the coordinator) can publish from
/// its tasks. Transactions are sent from [`Chain::sender`].
pub trait Chain: Send + Sync {
    /// Which implementation this is.
    fn kind(&self) -> ChainKind;
    /// The chain id (31337 for the embedded chain, 204 / 5611 for opBNB).
    fn chain_id(&self) -> u64;
    /// A human label for outputs, e.g. `embedded development chain (chain id
    /// 31337, state in DIR)` or `opbnb-testnet (chain id 5611) at URL`.
    fn label(&self) -> String;
    /// The account transactions are sent from.
    fn sender(&self) -> Address;

    /// Deploys `init_code`; waits for `confirmations` blocks.
    fn deploy(
        &self,
        init_code: Bytes,
        confirmations: u64,
    ) -> impl Future<Output = Result<TxOutcome, ChainError>> + Send;

    /// Sends a transaction to `to` with `input`; waits for `confirmations`
    /// blocks. A transaction that would revert is not sent: the revert
    /// comes back as [`ChainError::Reverted`].
    fn send(
        &self,
        to: Address,
        input: Bytes,
        confirmations: u64,
    ) -> impl Future<Output = Result<TxOutcome, ChainError>> + Send;

    /// Executes a read-only call against the latest state.
    fn call(
        &self,
        to: Address,
        input: Bytes,
    ) -> impl Future<Output = Result<Bytes, ChainError>> + Send;

    /// The latest block number.
    fn block_number(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;

    /// Logs matching `query`, in chain order.
    fn logs(
        &self,
        query: &LogQuery,
    ) -> impl Future<Output = Result<Vec<ChainLog>, ChainError>> + Send;

    /// A transaction by hash (`None` when the chain does not know it).
    fn transaction(
        &self,
        tx_hash: B256,
    ) -> impl Future<Output = Result<Option<TxRecord>, ChainError>> + Send;

    /// The receipt of a mined transaction (`None` when unknown or pending).
    fn receipt(
        &self,
        tx_hash: B256,
    ) -> impl Future<Output = Result<Option<TxOutcome>, ChainError>> + Send;
}

/// Either chain, chosen at run time (`--chain embedded|anvil|URL`). The
/// trait's `impl Future` methods are not object-safe, so callers that pick a
/// chain from a flag hold this enum instead of a `Box<dyn Chain>`.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyChain {
    /// The in-process chain.
    Embedded(EmbeddedChain),
    /// A JSON-RPC node.
    Rpc(RpcChain),
}

impl From<EmbeddedChain> for AnyChain {
    fn from(c: EmbeddedChain) -> Self {
        Self::Embedded(c)
    }
}

impl From<RpcChain> for AnyChain {
    fn from(c: RpcChain) -> Self {
        Self::Rpc(c)
    }
}

macro_rules! delegate {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            AnyChain::Embedded($c) => $e,
            AnyChain::Rpc($c) => $e,
        }
    };
}

impl Chain for AnyChain {
    fn kind(&self) -> ChainKind {
        delegate!(self, c => c.kind())
    }
    fn chain_id(&self) -> u64 {
        delegate!(self, c => c.chain_id())
    }
    fn label(&self) -> String {
        delegate!(self, c => c.label())
    }
    fn sender(&self) -> Address {
        delegate!(self, c => c.sender())
    }
    async fn deploy(&self, init_code: Bytes, confirmations: u64) -> Result<TxOutcome, ChainError> {
        delegate!(self, c => c.deploy(init_code, confirmations).await)
    }
    async fn send(
        &self,
        to: Address,
        input: Bytes,
        confirmations: u64,
    ) -> Result<TxOutcome, ChainError> {
        delegate!(self, c => c.send(to, input, confirmations).await)
    }
    async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
        delegate!(self, c => c.call(to, input).await)
    }
    async fn block_number(&self) -> Result<u64, ChainError> {
        delegate!(self, c => c.block_number().await)
    }
    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>, ChainError> {
        delegate!(self, c => c.logs(query).await)
    }
    async fn transaction(&self, tx_hash: B256) -> Result<Option<TxRecord>, ChainError> {
        delegate!(self, c => c.transaction(tx_hash).await)
    }
    async fn receipt(&self, tx_hash: B256) -> Result<Option<TxOutcome>, ChainError> {
        delegate!(self, c => c.receipt(tx_hash).await)
    }
}

/// Forwards every method to the pointee, so a [`Registry`](crate::Registry)
/// can borrow a chain (`&chain`) or share it (`Arc<chain>`).
macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<T: Chain> Chain for $ty {
            fn kind(&self) -> ChainKind {
                (**self).kind()
            }
            fn chain_id(&self) -> u64 {
                (**self).chain_id()
            }
            fn label(&self) -> String {
                (**self).label()
            }
            fn sender(&self) -> Address {
                (**self).sender()
            }
            async fn deploy(&self, init_code: Bytes, confirmations: u64) -> Result<TxOutcome, ChainError> {
                (**self).deploy(init_code, confirmations).await
            }
            async fn send(&self, to: Address, input: Bytes, confirmations: u64) -> Result<TxOutcome, ChainError> {
                (**self).send(to, input, confirmations).await
            }
            async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
                (**self).call(to, input).await
            }
            async fn block_number(&self) -> Result<u64, ChainError> {
                (**self).block_number().await
            }
            async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>, ChainError> {
                (**self).logs(query).await
            }
            async fn transaction(&self, tx_hash: B256) -> Result<Option<TxRecord>, ChainError> {
                (**self).transaction(tx_hash).await
            }
            async fn receipt(&self, tx_hash: B256) -> Result<Option<TxOutcome>, ChainError> {
                (**self).receipt(tx_hash).await
            }
        }
    )*};
}

forward!(&T, std::sync::Arc<T>);

impl AnyChain {
    /// Opens the chain a `--chain` flag names: `embedded` (state in
    /// `embedded_dir`), a preset (`opbnb-mainnet`, `opbnb-testnet`,
    /// `anvil`) or an `http(s)://` URL (key required). Returns the chain and
    /// the confirmations to wait for by default (1, or 3 on opBNB).
    pub async fn from_spec(
        spec: &str,
        embedded_dir: &std::path::Path,
        key: Option<crate::ChainKey>,
        options: crate::RpcOptions,
    ) -> Result<(Self, u64), ChainError> {
        let spec = match crate::ChainTarget::parse(spec).map_err(ChainError::Config)? {
            crate::ChainTarget::Embedded => {
                return Ok((EmbeddedChain::open(embedded_dir)?.into(), 1))
            }
            crate::ChainTarget::Preset(preset) => {
                let chain = RpcChain::from_preset(preset, None, key, options).await?;
                return Ok((chain.into(), preset.default_confirmations()));
            }
            crate::ChainTarget::Url(url) => url,
        };
        let spec = spec.as_str();
        let key = key.ok_or_else(|| {
            ChainError::Key(format!(
                "{spec} needs a funded key: --chain-key-file FILE or {}",
                crate::CHAIN_KEY_ENV
            ))
        })?;
        Ok((
            RpcChain::connect(spec, key, None, "json-rpc", options)
                .await?
                .into(),
            1,
        ))
    }
}
