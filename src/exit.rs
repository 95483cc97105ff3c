//! Exit codes of the `sealroom` command (DESIGN §7): 0 success or verified,
//! 1 verification failed (the message names the check), 2 bad input or usage
//! (the message names the file, field or flag). The type is the node's own
//! (`sealroom node run` passes the node's exit codes through), so the two
//! binaries cannot drift apart.

pub use sealroom_node::exit::{input_err, runtime_err, Failure};

/// Result type of subcommands.
pub type CmdResult = Result<(), Failure>;

/// Refuses a command line where two of the files it names are one file
/// (exit 2, naming both flags): an output written over an input, or over
/// another output, would destroy it. `None` entries (flags not given) are
/// skipped.
pub fn distinct_files(named: &[(&str, Option<&std::path::Path>)]) -> CmdResult {
    let given: Vec<(&str, &std::path::Path)> = named
        .iter()
        .filter_map(|(label, path)| path.map(|p| (*label, p)))
        .collect();
    sealroom_member::commit::refuse_same_files(&given).map_err(input_err)
}
