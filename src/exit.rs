//! Exit codes of the `sealroom` command (DESIGN §7): 0 success or verified,
//! 1 verification failed (the message names the check), 2 bad input or usage
//! (the message names the file, field or flag). The type is the node's own
//! (`sealroom node run` passes the node's exit codes through), so the two
//! binaries cannot drift apart.

pub use sealroom_node::exit::{input_err, runtime_err, Failure};

/// Result type of subcommands.
pub type CmdResult = Result<(), Failure>;
