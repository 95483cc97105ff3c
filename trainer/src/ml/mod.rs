//! The training engine: Burn models, preprocessing, the deterministic
//! training loop, metrics, evaluation and model bytes.
//!
//! The trusted loader calls this module once every input has been checked
//! and decrypted; nothing here reads files, talks to the network or keeps
//! state between calls.
//!
//! # API
//!
//! ```text
//! Dataset::from_csv(bytes, &schema) -> Result<Dataset>    one party's CSV, in schema feature order
//! Dataset::concat(&[&a, &b, ..])   -> Result<Dataset>     pool the parties (in manifest order)
//! train(&model, &training, &schema, &train, validation, &mut progress) -> Result<TrainedModel>
//! train_on(Compute::Cpu (flex) | Ndarray | Cuda{..}, ...)  same, on a chosen backend
//! evaluate(&model, &schema, &model_bytes, &data) -> Result<f64>   accuracy of stored model bytes
//! evaluate_metrics(...) -> Result<Evaluation>              accuracy and loss
//! LoadedModel::from_bytes(&model_bytes) -> Result<LoadedModel>   a model on its own (see [`export`])
//!   .predict(&data) / .score(&data) / .tensors() / .card(..)    outside the node: CLI eval, predict, export
//! ```
//!
//! - [`Dataset`] holds plaintext records and zeroizes them on drop.
//! - [`train`] standardises (or min-max scales) with statistics of the pooled
//!   *training* rows only, trains for `training.epochs` epochs, reports
//!   [`EpochMetrics`] after each epoch through `progress`, and returns the
//!   final model as [`TrainedModel::model_bytes`] (format in [`model_bytes`](self::model_bytes)):
//!   the preprocessing statistics plus Burn's record of the network, so
//!   [`evaluate`] needs only the bytes and the model/schema specs.
//! - Validation: the owner's set when given, otherwise a split of the pooled
//!   data by `training.validation_split`, drawn from the seed.
//! - The final model is the one after the last epoch (no early stopping: the
//!   result then depends on nothing but the inputs and the seed).
//!
//! # Determinism
//!
//! Same inputs, spec, seed and backend → bit-identical `model_bytes`:
//! - initial weights come from our own seeded PRNG ([`rng`]), not from
//!   Burn's global backend RNG (which concurrent sessions in one process
//!   would share), and parameter ids (which Burn stores in the record and
//!   normally draws at random) are numbered 1, 2, 3, ...;
//! - the per-epoch data order is a Fisher–Yates permutation from the same
//!   PRNG, and [`TrainedModel::data_order_commitment`] hashes every
//!   permutation so an auditor can replay it (see [`rng::data_order_commitment`]);
//! - the CPU backend is Burn's `ndarray` backend *without* its
//!   `multi-threads` feature: matrix products and reductions run on one
//!   thread, so results do not depend on the machine's core count.
//!   Bit-identity holds for the same binary on the same CPU type; the CUDA
//!   backend is not claimed to be bit-identical across runs.

pub mod data;
pub mod dp;
mod error;
pub mod export;
pub mod model_bytes;
mod net;
mod prep;
pub mod rng;
mod train;

pub use data::Dataset;
pub use dp::DpSgd;
pub use error::MlError;
pub use export::{LoadedModel, NamedTensor, Predictions, Scored};
pub use net::Arch;
pub use prep::Stats;
pub use train::{
    evaluate, evaluate_metrics, train, train_on, train_private_on, Compute, DpRun, EpochMetrics,
    Evaluation, TrainedModel,
};

#[cfg(test)]
mod tests;
