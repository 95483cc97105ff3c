//! Errors of the training engine.

/// Why a dataset could not be read, a model could not be trained, or model
/// bytes could not be used.
///
/// Messages name the line, column or field at fault, but never contain a
/// data value beyond the offending field (the loader may log them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlError {
    /// A CSV dataset is malformed: `line` is 1-based (the header is line 1).
    #[error("line {line}{}: {message}", column.as_ref().map(|c| format!(", column `{c}`")).unwrap_or_default())]
    Csv {
        /// 1-based line number.
        line: usize,
        /// The column at fault, when there is one.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A dataset (or the result of a split) has no records.
    #[error("{0}: no records")]
    Empty(&'static str),
    /// Datasets to pool, or a dataset and a model, disagree on the feature count.
    #[error("feature count mismatch: expected {expected}, found {found}")]
    FeatureCount {
        /// What the schema or first dataset has.
        expected: usize,
        /// What was found.
        found: usize,
    },
    /// A model, training or schema field cannot be used as given.
    #[error("{field}: {message}")]
    Spec {
        /// Dotted field name, as in the scenario file (`training.batch_size`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Training produced a non-finite loss (diverged); nothing is returned
    /// rather than a garbage model.
    #[error("training diverged: non-finite loss in epoch {epoch}")]
    Diverged {
        /// 1-based epoch.
        epoch: u32,
    },
    /// The caller asked training to stop (its progress callback answered
    /// `Break`) after this 1-based epoch.
    #[error("training stopped on request after epoch {epoch}")]
    Stopped {
        /// 1-based epoch.
        epoch: u32,
    },
    /// Model bytes are malformed or were made for another architecture.
    #[error("model bytes: {0}")]
    ModelBytes(String),
    /// Writing an export format failed (or the build has no writer for it).
    #[error("export: {0}")]
    Export(String),
    /// The tensor backend failed (reading results back, an unavailable device).
    #[error("backend: {0}")]
    Backend(String),
}
