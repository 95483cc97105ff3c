//! `sealroom node run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID]`:
//! runs the TEE node, which is a binary of its own (`sealroom-node`, crate
//! `node/`). The measured image must not carry this command's server,
//! database, chain client and TUI, so `sealroom` only finds `sealroom-node`
//! beside its own executable and hands it the arguments unchanged; the
//! node's exit code (0 / 1 naming the check / 2 bad input) is this command's.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

#[cfg(not(unix))]
use crate::exit::runtime_err;
use crate::exit::{input_err, CmdResult, Failure};

/// Arguments of `sealroom node`: passed through to `sealroom-node`
/// (`run --coordinator URL --tee sim …`; `sealroom node run --help` prints
/// the node's own usage).
#[derive(clap::Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
pub struct Args {
    /// `run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID] [--collateral FILE] [--timeout-s N]`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        num_args = 0..,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Runs the command: executes `sealroom-node ARGS…`.
pub fn run(args: Args) -> CmdResult {
    let node = sealroom_node::beside_current_exe().map_err(input_err)?;
    exec(&node, &args.args)
}

/// Replaces this process with the node (Unix): the node keeps this
/// process's id, so a caller that stops `sealroom node run` stops the node
/// itself, and its exit code is the caller's to read. Returns only on
/// failure to start it.
#[cfg(unix)]
fn exec(node: &Path, args: &[OsString]) -> CmdResult {
    use std::os::unix::process::CommandExt;
    let e = Command::new(node).args(args).exec();
    Err(input_err(format!(
        "{}: cannot execute: {e}",
        node.display()
    )))
}

/// Elsewhere: runs the node as a child and exits with its code.
#[cfg(not(unix))]
fn exec(node: &Path, args: &[OsString]) -> CmdResult {
    let status = Command::new(node)
        .args(args)
        .status()
        .map_err(|e| input_err(format!("{}: cannot execute: {e}", node.display())))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => Err(runtime_err(format!("{}: killed", node.display()))),
    }
}

/// The node binary `sealroom run` starts: beside this executable, or exit 2
/// saying how to build it.
pub fn node_exe() -> Result<std::path::PathBuf, Failure> {
    sealroom_node::beside_current_exe().map_err(input_err)
}
