//! Exit codes of `sealroom-node`, the same as the `sealroom` command's
//! (DESIGN §7), because `sealroom node run` passes them through: 0 success,
//! 1 a check failed (the message names it) or the run failed, 2 bad input or
//! usage (the message names the flag or file).

use std::fmt;

/// A failure that decides the process exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or usage: exit 2.
    Input(anyhow::Error),
    /// A check failed: exit 1. `check` names it (`input: check`).
    Verification {
        /// The failed check's name.
        check: String,
        /// What was found.
        detail: String,
    },
    /// Anything else (the coordinator unreachable, an upload refused): exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        match self {
            Failure::Input(_) => 2,
            Failure::Verification { .. } | Failure::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input(e) => write!(f, "{e:#}"),
            Failure::Verification { check, detail } => {
                write!(f, "verification failed: {check}: {detail}")
            }
            Failure::Runtime(e) => write!(f, "{e:#}"),
        }
    }
}

/// Shorthand: a bad-input failure from anything printable.
pub fn input_err(msg: impl fmt::Display) -> Failure {
    Failure::Input(anyhow::anyhow!("{msg}"))
}

/// Shorthand: a runtime failure from anything printable.
pub fn runtime_err(msg: impl fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("{msg}"))
}
