//! sealroom reports: the integrity report format, evidence binding,
//! attestation verification and the public verifier a regulator runs.
//!
//! This crate must stay small enough to audit: it depends on `protocol` only,
//! never on the coordinator, the trainer or Burn.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attest;
pub mod audit;
pub mod binding;
pub mod check;
/// The DP accountant (in `sealroom-protocol`, which manifests need to
/// solve σ; re-exported here as the verifier's own).
pub use sealroom_protocol::dp;
pub mod node_check;
pub mod policy_eval;
pub mod report;
pub mod verifier;

pub use sealroom_protocol::policy::{Policy, PolicyError, TeeKind};
