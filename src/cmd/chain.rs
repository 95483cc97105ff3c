//! `sealroom chain deploy --chain opbnb-testnet|opbnb-mainnet|anvil|URL
//! [--chain-key-file FILE] [--confirmations N] [--json]`: deploys the
//! committed SessionRegistry bytecode.
//!
//! `sealroom chain publish-batch BUNDLE… --contract ADDR (--chain SPEC |
//! --chain-dir DIR) --out PROOFS [--json]`: verifies each session bundle
//! offline, then publishes all their reports in one transaction under one
//! Merkle root (`publishBatch`, docs/chain.md) and writes each report's
//! inclusion proof. `sealroom chain check-batch PROOFS --contract ADDR
//! (--chain SPEC | --chain-dir DIR)` checks every proof offline and in the
//! EVM (`batchBlock`, `verifyInclusion`) and the published calldata against
//! the root.
//!
//! The key comes from `--chain-key-file` or `SEALROOM_CHAIN_KEY`, never from
//! argv (visible to every local user, kept in shell history).

use std::path::{Path, PathBuf};

use sealroom_contracts::{
    block_on, load_chain_key, Artifact, Chain as _, ChainError, ChainTarget, Registry, RpcChain,
    RpcOptions, CHAIN_KEY_ENV,
};

use crate::exit::{input_err, runtime_err, CmdResult, Failure};

/// `sealroom chain …`.
#[derive(clap::Subcommand)]
pub enum ChainCmd {
    /// Deploy the session registry (committed bytecode) to a chain.
    Deploy(DeployArgs),
    /// Publish the reports of verified session bundles in one transaction
    /// under one Merkle root, and write each report's inclusion proof.
    PublishBatch(BatchArgs),
    /// Check a batch's proofs file offline and against the chain.
    CheckBatch(CheckBatchArgs),
}

/// Where a batch goes (or is read from).
#[derive(clap::Args)]
pub struct BatchChain {
    /// The registry's address.
    #[arg(long)]
    pub contract: String,
    /// opbnb-testnet, opbnb-mainnet, anvil or a JSON-RPC URL.
    #[arg(
        long,
        conflicts_with = "chain_dir",
        required_unless_present = "chain_dir"
    )]
    pub chain: Option<String>,
    /// An embedded development chain's directory instead (e.g. `OUT/chain` of `sealroom run`).
    #[arg(long, value_name = "DIR")]
    pub chain_dir: Option<PathBuf>,
    /// File holding the publisher's secp256k1 private key (hex). Default: $SEALROOM_CHAIN_KEY.
    #[arg(long, value_name = "FILE")]
    pub chain_key_file: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sealroom chain publish-batch`.
#[derive(clap::Args)]
pub struct BatchArgs {
    /// Session bundles (`sealroom run`'s OUT/bundle.json, `report bundle`).
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// Where to write the proofs file (root, transaction, one proof per report).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub to: BatchChain,
}

/// Arguments of `sealroom chain check-batch`.
#[derive(clap::Args)]
pub struct CheckBatchArgs {
    /// The proofs file `publish-batch` wrote.
    pub proofs: PathBuf,
    #[command(flatten)]
    pub on: BatchChain,
}

/// Arguments of `sealroom chain deploy`.
#[derive(clap::Args)]
pub struct DeployArgs {
    /// opbnb-testnet (5611), opbnb-mainnet (204), anvil (127.0.0.1:8545, dev key by default) or a JSON-RPC URL.
    #[arg(long)]
    pub chain: String,
    /// File holding the deployer's secp256k1 private key (hex). Default: $SEALROOM_CHAIN_KEY.
    #[arg(long, value_name = "FILE")]
    pub chain_key_file: Option<PathBuf>,
    /// Blocks to wait for (default: 3 on opBNB, 1 elsewhere).
    #[arg(long)]
    pub confirmations: Option<u64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sealroom chain …`.
pub fn run(cmd: ChainCmd) -> CmdResult {
    match cmd {
        ChainCmd::Deploy(a) => deploy(a),
        ChainCmd::PublishBatch(a) => super::chain_batch::publish(a),
        ChainCmd::CheckBatch(a) => super::chain_batch::check(a),
    }
}

/// Maps chain errors to exit codes: configuration, key and chain-id
/// problems are bad input (2); the rest are runtime failures (1).
pub fn chain_failure(flag: &str, e: ChainError) -> Failure {
    match e {
        ChainError::Key(_) => input_err(format!("--chain-key-file / {CHAIN_KEY_ENV}: {e}")),
        ChainError::Config(_) | ChainError::ChainIdMismatch { .. } => {
            input_err(format!("{flag}: {e}"))
        }
        other => runtime_err(other),
    }
}

/// Connects to `--chain SPEC` (a preset name or a URL) with the key from
/// `key_file` / `SEALROOM_CHAIN_KEY`; returns the chain and its default
/// confirmations.
pub async fn connect_rpc(spec: &str, key_file: Option<&Path>) -> Result<(RpcChain, u64), Failure> {
    let key = load_chain_key(key_file).map_err(|e| chain_failure("--chain-key-file", e))?;
    match ChainTarget::parse(spec).map_err(|e| input_err(format!("--chain: {e}")))? {
        ChainTarget::Preset(preset) => {
            let chain = RpcChain::from_preset(preset, None, key, RpcOptions::default())
                .await
                .map_err(|e| chain_failure("--chain", e))?;
            return Ok((chain, preset.default_confirmations()));
        }
        ChainTarget::Embedded => {
            return Err(input_err(
                "--chain embedded: this command needs a JSON-RPC chain (anvil, opbnb-testnet, opbnb-mainnet or an http(s) URL)",
            ))
        }
        ChainTarget::Url(_) => {}
    }
    let key = key.ok_or_else(|| {
        input_err(format!(
            "--chain {spec} needs a funded key: --chain-key-file FILE or {CHAIN_KEY_ENV}"
        ))
    })?;
    let chain = RpcChain::connect(spec, key, None, "json-rpc", RpcOptions::default())
        .await
        .map_err(|e| chain_failure("--chain", e))?;
    Ok((chain, 1))
}

fn deploy(args: DeployArgs) -> CmdResult {
    let artifact = Artifact::committed().map_err(runtime_err)?;
    block_on(async {
        let (chain, default_conf) = connect_rpc(&args.chain, args.chain_key_file.as_deref()).await?;
        let confirmations = args.confirmations.unwrap_or(default_conf).max(1);
        if !args.json {
            eprintln!(
                "deploying SessionRegistry ({}) to {} from {}, waiting for {confirmations} confirmation(s)…",
                artifact.compiler.version,
                chain.label(),
                chain.sender()
            );
        }
        let (registry, out) =
            Registry::deploy(&chain, confirmations).await.map_err(|e| runtime_err(format!("deploy: {e}")))?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "contract": registry.address().to_string(),
                    "chain": {
                        "kind": chain.kind().as_str(),
                        "name": args.chain,
                        "chain_id": chain.chain_id(),
                        "endpoint": chain.endpoint(),
                    },
                    "deployer": chain.sender().to_string(),
                    "tx_hash": out.tx_hash.to_string(),
                    "block": out.block_number,
                    "gas_used": out.gas_used,
                    "confirmations": confirmations,
                    "compiler": artifact.compiler.version,
                })
            );
        } else {
            println!("SessionRegistry deployed at {}", registry.address());
            println!("  chain    {}", chain.label());
            println!("  tx       {} (block {}, {} gas)", out.tx_hash, out.block_number, out.gas_used);
            println!("  compiler {}", artifact.compiler.version);
            println!("use it with: --chain {} --contract {}", args.chain, registry.address());
        }
        Ok(())
    })
    .map_err(runtime_err)?
}
