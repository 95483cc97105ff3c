//! `sealroom coordinator serve --listen ADDR --data DIR [--chain …]`: the
//! session service (crate `sealroom-coordinator`).
//!
//! Prints `listening on http://ADDR` as one stdout line once it accepts
//! requests (`sealroom run` parses it), logs to stderr, and stops cleanly on
//! SIGTERM or SIGINT. The chain key comes from `--chain-key-file` or
//! `SEALROOM_CHAIN_KEY`, never from argv.

use std::io::Write;
use std::path::PathBuf;

use sealroom_contracts::{alloy_primitives::Address, load_chain_key, CHAIN_KEY_ENV};
use sealroom_coordinator::{ChainSpec, Config, CoordinatorError};

use crate::exit::{input_err, runtime_err, CmdResult};

/// `sealroom coordinator …`.
#[derive(clap::Subcommand)]
pub enum CoordinatorCmd {
    /// Run the coordinator's HTTP API.
    Serve(ServeArgs),
}

/// Arguments of `sealroom coordinator serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: String,
    /// Data directory (database, blobs, embedded chain state).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// embedded (default), anvil, opbnb-testnet, opbnb-mainnet or a JSON-RPC URL.
    #[arg(long, default_value = "embedded")]
    chain: String,
    /// Embedded chain state directory (default: DATA/chain).
    #[arg(long, value_name = "DIR")]
    chain_dir: Option<PathBuf>,
    /// A registry already deployed (default: deploy on first use and remember it).
    #[arg(long, value_name = "ADDR")]
    contract: Option<String>,
    /// Blocks each transaction waits for (default: 3 on opBNB, 1 elsewhere).
    #[arg(long)]
    confirmations: Option<u64>,
    /// File holding the publisher's secp256k1 key (hex). Default: $SEALROOM_CHAIN_KEY (anvil: its first dev key).
    #[arg(long, value_name = "FILE")]
    chain_key_file: Option<PathBuf>,
    /// Seconds a node may go without a heartbeat while it holds a session
    /// before it is declared lost (nodes heartbeat every quarter lease).
    #[arg(long, default_value_t = sealroom_coordinator::service::DEFAULT_LEASE_S, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease_s: u64,
}

/// Runs `sealroom coordinator …`.
pub fn run(cmd: CoordinatorCmd) -> CmdResult {
    match cmd {
        CoordinatorCmd::Serve(a) => serve(a),
    }
}

fn serve(a: ServeArgs) -> CmdResult {
    let chain_dir = a.chain_dir.clone().unwrap_or_else(|| a.data.join("chain"));
    let chain = ChainSpec::parse(&a.chain, chain_dir).map_err(input_err)?;
    let contract = a
        .contract
        .as_deref()
        .map(|c| {
            c.parse::<Address>()
                .map_err(|e| input_err(format!("--contract {c}: {e}")))
        })
        .transpose()?;
    let chain_key = match chain {
        ChainSpec::Embedded(_) => None,
        _ => load_chain_key(a.chain_key_file.as_deref())
            .map_err(|e| input_err(format!("--chain-key-file / {CHAIN_KEY_ENV}: {e}")))?,
    };
    sealroom_coordinator::init_logging();
    let config = Config {
        listen: a.listen,
        data: a.data,
        chain,
        chain_key,
        confirmations: a.confirmations,
        contract,
        lease_s: a.lease_s,
    };
    sealroom_coordinator::run(config, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    })
    .map_err(|e| match e {
        CoordinatorError::Config(_) | CoordinatorError::Listen { .. } => input_err(e),
        other => runtime_err(other),
    })
}
