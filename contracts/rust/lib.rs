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
pub mod bindings;
pub mod chain;
pub mod embedded;
pub mod registry;
pub mod rpc;

pub use artifact::{Artifact, ARTIFACT_JSON};
pub use bindings::{decode_revert, SessionRegistry};
pub use chain::{AnyChain, Chain, ChainError, ChainKind, ChainLog, LogQuery, TxOutcome, TxRecord};
pub use embedded::{EmbeddedChain, EMBEDDED_CHAIN_ID, EMBEDDED_LABEL};
pub use registry::{
    read_session, OpenedSession, Published, PublishedReport, ReadOptions, Registry, RegistryError,
    SessionInfo, SessionRecord,
};
pub use rpc::{load_chain_key, ChainKey, Preset, RpcChain, RpcOptions, ANVIL_DEV_KEY, CHAIN_KEY_ENV};
pub use sealroom_reports::report::{IntegrityReport, ReportKind};
