//! sealroom's on-chain side (DESIGN §5): the Solidity session registry's
//! committed artefacts and alloy bindings, two [`Chain`]s that run them (an
//! in-process [`EmbeddedChain`] and any JSON-RPC node through [`RpcChain`]),
//! the idempotent [`Registry::publish`] and the calldata [`read_session`].
//!
//! The registry stores one hash per (session, kind); the report, its
//! signature and the TEE evidence travel in calldata, so the chain alone
//! holds everything a verifier needs. `docs/chain.md` explains the layout
//! and the gas figures.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod artifact;
pub mod batch;
pub mod bindings;
pub mod bundle;
pub mod chain;
pub mod embedded;
pub mod gas;
pub mod registry;
pub mod rpc;

pub use alloy_primitives;
pub use alloy_sol_types;
pub use artifact::{Artifact, ARTIFACT_JSON};
pub use batch::{BatchEntry, ReportBatch};
pub use bindings::{decode_revert, SessionRegistry};
pub use chain::{AnyChain, Chain, ChainError, ChainKind, ChainLog, LogQuery, TxOutcome, TxRecord};
pub use embedded::{EmbeddedChain, EMBEDDED_CHAIN_ID, EMBEDDED_LABEL};
pub use registry::{
    read_session, BatchPublished, OpenedSession, Published, PublishedReport, ReadOptions, Registry,
    RegistryError, SessionInfo, SessionRecord,
};
pub use rpc::{
    load_chain_key, ChainKey, ChainTarget, Preset, RpcChain, RpcOptions, ANVIL_DEV_KEY,
    CHAIN_KEY_ENV,
};
pub use sealroom_reports::report::{IntegrityReport, ReportKind};

/// Runs a future to completion on a fresh current-thread tokio runtime, for
/// synchronous callers (the `sealroom chain` and `bench gas` commands,
/// tests). Do not call it from inside a tokio runtime: await the future there.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, ChainError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError::Config(format!("cannot start an async runtime: {e}")))?;
    Ok(rt.block_on(future))
}
