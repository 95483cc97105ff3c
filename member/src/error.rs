//! Why a member-side step stopped.

use alloy_primitives::B256;
use sealroom_protocol::api::ClientError;
use sealroom_reports::attest::Failure;
use sealroom_reports::check::Check;

/// Why a member-side step stopped. Every refusal that comes from a check
/// names the check ([`MemberError::check`]), so the CLI exits 1 with it and
/// the TUI shows it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// The manifest the coordinator serves now is not the one this member
    /// consented to (check `manifest.changed`). Nothing is sent.
    #[error("manifest.changed: the coordinator serves manifest {served:#x}, but you consented to {consented:#x}; refusing")]
    ManifestChanged {
        /// The hash in the member's own record.
        consented: B256,
        /// The hash the coordinator serves.
        served: B256,
    },
    /// At consent: the coordinator serves another manifest than the one the
    /// member reviewed (check `manifest.changed`). Nothing is signed.
    #[error("manifest.changed: the coordinator now serves manifest {served:#x}, not {reviewed:#x} that you reviewed; nothing was signed")]
    NotReviewed {
        /// The hash the member reviewed and asked to sign.
        reviewed: B256,
        /// The hash the coordinator serves.
        served: B256,
    },
    /// The coordinator's manifest does not hash to the hash it claims, or is
    /// structurally invalid (check `manifest.served`).
    #[error("manifest.served: {0}")]
    ServedManifest(String),
    /// The member has no record of consenting to this session, so there is
    /// nothing to check the served manifest against.
    #[error("no record of your consent to session {session:#x} in {dir}: consent first (`sealroom party consent`), with the same --state")]
    NotConsented {
        /// The session.
        session: B256,
        /// Where the records were looked for.
        dir: String,
    },
    /// The member's own verification of the node failed (the failed check).
    #[error("node-evidence: {}: {}", .0.check, .0.detail)]
    NodeRejected(Failure),
    /// Another verification failed; `check` names it (`model.sealed-hash`,
    /// `model.report-signature`, …).
    #[error("{check}: {detail}")]
    Check {
        /// The check.
        check: Check,
        /// What differed.
        detail: String,
    },
    /// A file or argument the member supplied is unusable; `what` names it.
    #[error("{what}: {detail}")]
    Input {
        /// The file or flag.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The member's own record could not be read or written.
    #[error("member record {path}: {detail}")]
    Record {
        /// The record file.
        path: String,
        /// The cause.
        detail: String,
    },
    /// The coordinator refused or could not be reached.
    #[error(transparent)]
    Coordinator(#[from] ClientError),
}

impl MemberError {
    /// The name of the failed check, for verification failures (exit 1).
    pub fn check(&self) -> Option<String> {
        match self {
            Self::ManifestChanged { .. } | Self::NotReviewed { .. } => {
                Some(Check::ManifestChanged.into())
            }
            Self::ServedManifest(_) => Some(Check::ManifestServed.into()),
            Self::NodeRejected(f) => Some(format!("node-evidence: {}", f.check)),
            Self::Check { check, .. } => Some(check.as_str().into()),
            _ => None,
        }
    }

    /// Whether the member's own input is at fault (exit 2).
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Input { .. } | Self::NotConsented { .. })
    }

    /// The detail without the check name (for printers that show the check separately).
    pub fn detail(&self) -> String {
        match self {
            Self::ManifestChanged { consented, served } => format!(
                "the coordinator serves manifest {served:#x}, but you consented to {consented:#x}; refusing"
            ),
            Self::NotReviewed { reviewed, served } => format!(
                "the coordinator now serves manifest {served:#x}, not {reviewed:#x} that you reviewed; nothing was signed"
            ),
            Self::ServedManifest(d) => d.clone(),
            Self::NodeRejected(f) => f.detail.clone(),
            Self::Check { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    pub(crate) fn check_failed(check: Check, detail: impl Into<String>) -> Self {
        Self::Check {
            check,
            detail: detail.into(),
        }
    }

    pub(crate) fn input(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Self::Input {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
