//! `sealroom node run|serve --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] …`:
//! runs the TEE node, which is a binary of its own (`sealroom-node`, crate
//! `node/`). The measured image must not carry this command's server,
//! database, chain client and TUI, so `sealroom` only finds `sealroom-node`
//! beside its own executable and hands it the arguments unchanged; the
//! node's exit code (0 / 1 naming the check / 2 bad input) is this command's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
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
    /// `run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID] [--collateral FILE] [--timeout-s N]`,
    /// or `serve --coordinator URL --tee … [--max-sessions N] [--poll-s S]`
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
    let node = node_exe()?;
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

/// The node binary `sealroom node` and `sealroom run` start: beside this
/// executable, or exit 2 saying how to build it.
///
/// One exception keeps `cargo run --release -- run SCENARIO` (the README's
/// first command) working on a fresh clone: `cargo run` builds only
/// `sealroom`, so when this process was started by cargo (`CARGO` and
/// `CARGO_MANIFEST_DIR` set, the manifest directory holding `node/`) and
/// the node is missing, it builds it once, into the same target directory
/// and profile, saying so on stderr. An installed `sealroom` never builds
/// anything.
pub fn node_exe() -> Result<PathBuf, Failure> {
    match sealroom_node::beside_current_exe() {
        Ok(p) => Ok(p),
        Err(missing) => match build_under_cargo() {
            Some(Ok(())) => sealroom_node::beside_current_exe().map_err(input_err),
            Some(Err(e)) => Err(input_err(format!("{missing}\n{e}"))),
            None => Err(input_err(missing)),
        },
    }
}

/// `cargo build -p sealroom-node` for the profile and target directory of
/// the running executable, when cargo started this process (`None`
/// otherwise).
fn build_under_cargo() -> Option<Result<(), String>> {
    let cargo = std::env::var_os("CARGO")?;
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    if !manifest_dir.join("node").join("Cargo.toml").is_file() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let out_dir = exe.parent()?;
    let target_dir = out_dir.parent()?;
    // target/debug holds the `dev` profile; every other profile its own name.
    let profile = match out_dir.file_name()?.to_str()? {
        "debug" => "dev",
        other => other,
    }
    .to_string();
    eprintln!(
        "sealroom: {} is not built yet; building it (cargo build --profile {profile} -p sealroom-node)",
        sealroom_node::BIN_NAME
    );
    let status = Command::new(cargo)
        .args([
            "build",
            "--profile",
            &profile,
            "-p",
            "sealroom-node",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(std::process::Stdio::null())
        .status();
    Some(match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("cargo build -p sealroom-node failed ({s})")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    })
}
