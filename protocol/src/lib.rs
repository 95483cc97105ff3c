//! The sealroom wire: identities, dataset commitments (OpenZeppelin Merkle
//! trees), the streaming dataset cipher, HPKE sealing, policies and scenario
//! files. This crate depends on no other sealroom crate; everything that
//! crosses a trust boundary is defined here once.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
#[cfg(feature = "client")]
mod client;
pub mod dataset;
pub mod dp;
pub mod fsutil;
pub mod hash;
pub mod identity;
pub mod manifest;
pub mod merkle;
pub mod policy;
pub mod privacy;
pub mod scenario;
pub mod seal;
pub mod sealed_model;
pub mod stream;
