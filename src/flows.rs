//! Wiring between the member library (`sealroom-member`) and the command's
//! exit codes, plus the few helpers the `owner`, `run` and bench commands
//! share. Every member-side check lives in `sealroom-member`, once.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use sealroom_member::MemberError;
use sealroom_protocol::dataset::SignedCommitment;
use sealroom_runner::RunError;

use crate::exit::{input_err, runtime_err, Failure};

/// The command's failure for a member-side error: a failed check is a
/// verification failure (exit 1) naming the check, the member's own bad
/// input is exit 2, anything else exit 1. `who` prefixes the detail.
pub fn member_failure(who: &str, e: MemberError) -> Failure {
    run_failure(sealroom_runner::member_failure(who, e))
}

/// The command's failure for a runner error (same three outcomes).
pub fn run_failure(e: RunError) -> Failure {
    match e {
        RunError::Input(m) => input_err(m),
        RunError::Verification { check, detail } => Failure::Verification { check, detail },
        other => runtime_err(other),
    }
}

/// Loads a signed commitment file and checks its signature.
pub fn load_commitment(path: &Path) -> Result<SignedCommitment> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let sc: SignedCommitment = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a signed commitment", path.display()))?;
    sc.verify()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(sc)
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    sealroom_member::now()
}
