//! `sealroom-node`: the measured TEE node image (DESIGN §6, amended
//! 2026-12-01).
//!
//! What a party trusts is the code inside the TEE, and what it pins is that
//! code's measurement. This crate is that code's outer shell: the session
//! loop (register with evidence, wait for the grants, fetch the work, run the
//! trusted loader and trainer, upload the signed reports and the sealed
//! model) around `sealroom_trainer::node`. It links the trainer, the evidence
//! collectors and the protocol's client, and nothing else: no HTTP server, no
//! database, no chain client, no TUI — a test in `tests/cli.rs` checks the
//! dependency tree. Keeping it a separate binary means a TUI or coordinator
//! change no longer changes the measurement the parties pinned.
//!
//! The `sealroom` command reaches it only as a process (`sealroom node …`
//! executes the `sealroom-node` beside it); it links this library for the
//! two facts it must agree on with the node: where the binary lives and how
//! it is measured.
#![forbid(unsafe_code)]

pub mod exit;
pub mod session;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The node binary's file name (without the platform's executable suffix).
pub const BIN_NAME: &str = "sealroom-node";

/// How to build the node binary, for messages when it is missing.
pub const BUILD_HINT: &str = "cargo build --release -p sealroom-node";

/// The measurement of an executable: the SHA-256 of its bytes.
///
/// The simulated platform reports exactly this value for the running node
/// ([`engine_measurement`]), and `sealroom engine measure PATH` prints it for
/// a node binary on disk, so both go through this one function.
pub fn measure_file(path: &Path) -> Result<[u8; 32], String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// The measurement of the running node: the SHA-256 of its own executable.
pub fn engine_measurement() -> Result<[u8; 32], String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the node executable: {e}"))?;
    measure_file(&exe)
}

/// The node binary's path in `dir` (`dir/sealroom-node`, with the
/// platform's executable suffix).
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(format!("{BIN_NAME}{}", std::env::consts::EXE_SUFFIX))
}

/// The node binary beside the running executable (`sealroom` and
/// `sealroom-node` are built into, and installed in, the same directory).
/// Errors say where it was looked for and how to build it.
pub fn beside_current_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the running executable: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| format!("{}: the running executable has no directory", exe.display()))?;
    let node = path_in(dir);
    if node.is_file() {
        Ok(node)
    } else {
        Err(format!(
            "{} not found beside {}: the node is its own binary; build it with `{BUILD_HINT}` \
             (or `cargo build -p sealroom-node` for a debug `sealroom`) so it sits in the same directory",
            node.display(),
            exe.display()
        ))
    }
}
