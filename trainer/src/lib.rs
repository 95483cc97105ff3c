//! The sealroom trainer node: the code that runs inside the TEE.
//!
//! - [`ml`]: the training engine (Burn models, preprocessing, the
//!   deterministic training loop, metrics, evaluation, model bytes).
//! - [`node`]: the trusted loader: keys, evidence, input checks, reports,
//!   sealing and wipe.
#![forbid(unsafe_code)]

pub mod local;
pub mod ml;
pub mod node;
