//! `sealroom owner (create|fetch-model|open-model)`: the model owner's side.

use std::io::Write;
use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use sealroom_member::{ChainReportHashes, Member};
use sealroom_protocol::api::Client;
use sealroom_protocol::fsutil::{write_atomic, AtomicFile};
use sealroom_protocol::identity::{Identity, PublicIdentity};
use sealroom_protocol::manifest::Manifest;
use sealroom_protocol::scenario::Scenario;

use sealroom_contracts::bundle::{bundle_from_chain, ReadError, Source};

use crate::exit::{input_err, runtime_err, CmdResult};
use crate::flows;

/// Arguments of `sealroom owner`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create a session from a scenario, the parties' signed commitments and
    /// their public identities — never their data (the datasets the
    /// scenario names need not exist on the owner's machine).
    Create {
        /// Coordinator base URL.
        #[arg(long)]
        coordinator: String,
        /// The owner's identity file.
        #[arg(long)]
        key: PathBuf,
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// A party's signed commitment: NAME=FILE (one per party; `validation=FILE` for the owner's set).
        #[arg(long = "commitment", value_name = "NAME=FILE")]
        commitments: Vec<String>,
        /// A party's public identity (`sealroom keygen --public`): NAME=FILE;
        /// instead of, or checked against, the scenario's `party.key`.
        #[arg(long = "party-key", value_name = "NAME=FILE")]
        party_keys: Vec<String>,
        /// Where the owner keeps its records [default: KEYFILE.sessions/]:
        /// the manifest created here is recorded there, and the owner's
        /// later steps check what the coordinator serves against it.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fetch the sealed model and accept it only under a verified `completed`
    /// report (node evidence against the consented policy, report signature,
    /// sealed and model hashes; the chain's stored hash with --rpc/--chain-dir).
    FetchModel {
        /// Coordinator base URL.
        #[arg(long)]
        coordinator: String,
        /// Session id.
        #[arg(long)]
        session: String,
        /// The owner's identity file.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the opened model bytes.
        #[arg(long)]
        out: PathBuf,
        /// Also keep the sealed model here.
        #[arg(long)]
        sealed_out: Option<PathBuf>,
        /// Where the owner keeps its records [default: KEYFILE.sessions/].
        #[arg(long)]
        state: Option<PathBuf>,
        /// Compare the completed report with the registry on this JSON-RPC chain (with --contract).
        #[arg(long, requires = "contract")]
        rpc: Option<String>,
        /// Compare with the registry in an embedded development chain's directory (with --contract).
        #[arg(long, requires = "contract", conflicts_with = "rpc")]
        chain_dir: Option<PathBuf>,
        /// The registry address for --rpc/--chain-dir.
        #[arg(long)]
        contract: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Open a sealed model file with the owner's identity — only the model
    /// `fetch-model` accepted (its hashes are in the owner's record).
    OpenModel {
        /// The sealed model.
        sealed: PathBuf,
        /// The owner's identity file.
        #[arg(long)]
        key: PathBuf,
        /// Where the owner keeps its records [default: KEYFILE.sessions/].
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where to write the model bytes.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    match args.action {
        Action::Create {
            coordinator,
            key,
            scenario,
            commitments,
            party_keys,
            state,
            json,
        } => {
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let s = Scenario::load_without_datasets(&scenario).map_err(input_err)?;
            let mut keys_by_name = std::collections::BTreeMap::new();
            for k in &party_keys {
                let (name, file) = k
                    .split_once('=')
                    .ok_or_else(|| input_err(format!("--party-key {k}: expected NAME=FILE")))?;
                if !s.parties.iter().any(|p| p.name == name) {
                    return Err(input_err(format!(
                        "--party-key {name}=…: not a party of the scenario"
                    )));
                }
                let id = PublicIdentity::load(std::path::Path::new(file))
                    .map_err(|e| input_err(format!("--party-key {name}={file}: {e}")))?;
                keys_by_name.insert(name.to_string(), id);
            }
            let mut by_name = std::collections::BTreeMap::new();
            for c in &commitments {
                let (name, file) = c
                    .split_once('=')
                    .ok_or_else(|| input_err(format!("--commitment {c}: expected NAME=FILE")))?;
                let sc = flows::load_commitment(std::path::Path::new(file)).map_err(input_err)?;
                by_name.insert(name.to_string(), sc);
            }
            let mut parties = Vec::new();
            for p in &s.parties {
                let sc = by_name
                    .remove(&p.name)
                    .ok_or_else(|| input_err(format!("--commitment: missing {}=FILE", p.name)))?;
                // The X25519 half is not in a commitment: the party's public
                // identity comes from --party-key or the scenario's `key`.
                let from_scenario = p
                    .key
                    .as_ref()
                    .map(|k| PublicIdentity::load(&s.resolve(k)).map_err(input_err))
                    .transpose()?;
                let id = match (keys_by_name.remove(&p.name), from_scenario) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(input_err(format!(
                            "--party-key {}: differs from party[{}].key in the scenario",
                            p.name, p.name
                        )))
                    }
                    (Some(a), _) => a,
                    (None, Some(b)) => b,
                    (None, None) => {
                        return Err(input_err(format!(
                            "--party-key {}=FILE: party `{}` needs its public identity (or `key` in the scenario)",
                            p.name, p.name
                        )))
                    }
                };
                if id.ed25519 != sc.party {
                    return Err(input_err(format!(
                        "--commitment {}: signed by a key other than {}'s public identity",
                        p.name, p.name
                    )));
                }
                parties.push((id, sc.commitment));
            }
            let validation = match by_name.remove("validation") {
                Some(sc) => Some(sc.commitment),
                None if s.owner.validation.is_some() => {
                    return Err(input_err(
                        "--commitment: missing validation=FILE for owner.validation",
                    ))
                }
                None => None,
            };
            if let Some(extra) = by_name.keys().next() {
                return Err(input_err(format!(
                    "--commitment {extra}=…: not a party of the scenario"
                )));
            }
            let mut sid = [0u8; 32];
            getrandom::fill(&mut sid).map_err(runtime_err)?;
            let m = Manifest::from_scenario(
                &s,
                B256::from(sid),
                flows::now() as u64,
                parties,
                owner.public(),
                validation,
            )
            .map_err(input_err)?;
            let client = Client::new(&coordinator, Some(&owner));
            let st = client.create_session(&m).map_err(runtime_err)?;
            // What is printed (and handed to the parties) is the owner's own
            // manifest, once the coordinator's answer names it; the owner's
            // record pins it for every later step.
            let member = Member::new(
                &coordinator,
                &owner,
                super::party::records(state.as_ref(), &key),
            );
            let record = member
                .pin_created(&m, &st)
                .map_err(|e| flows::member_failure("", e))?;
            let (sid, hash) = (m.session_id, m.hash());
            if json {
                println!(
                    "{}",
                    serde_json::json!({"session_id": format!("{sid:#x}"), "manifest_hash": format!("{hash:#x}"), "record": record})
                );
            } else {
                println!("created session {sid:#x} (manifest {hash:#x}); recorded in {record}");
            }
            Ok(())
        }
        Action::FetchModel {
            coordinator,
            session,
            key,
            out,
            sealed_out,
            state,
            rpc,
            chain_dir,
            contract,
            json,
        } => {
            crate::exit::distinct_files(&[
                ("--key", Some(&key)),
                ("--out", Some(&out)),
                ("--sealed-out", sealed_out.as_deref()),
            ])?;
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let sid = session
                .parse::<B256>()
                .map_err(|_| input_err(format!("--session {session}: not a 32-byte hex id")))?;
            let chain = chain_hashes(
                rpc.as_deref(),
                chain_dir.as_deref(),
                contract.as_deref(),
                sid,
            )?;
            let member = Member::new(
                &coordinator,
                &owner,
                super::party::records(state.as_ref(), &key),
            );
            // Both outputs take their places before the fetch (an unusable
            // path is refused before anything is asked of the coordinator),
            // are written in full, and only then renamed in: a failure
            // leaves neither file.
            let out_err = |flag: &str, p: &Path, e: std::io::Error| {
                input_err(format!("{flag} {}: {e}", p.display()))
            };
            let mut sealed_file = sealed_out
                .as_deref()
                .map(|p| AtomicFile::create(p, false).map_err(|e| out_err("--sealed-out", p, e)))
                .transpose()?;
            let mut model_file =
                AtomicFile::create(&out, true).map_err(|e| out_err("--out", &out, e))?;
            let fetched = member
                .fetch_model(&sid, chain.as_ref())
                .map_err(|e| flows::member_failure("", e))?;
            if let (Some(f), Some(p)) = (sealed_file.as_mut(), sealed_out.as_deref()) {
                f.write_all(&fetched.sealed)
                    .map_err(|e| out_err("--sealed-out", p, e))?;
            }
            model_file
                .write_all(&fetched.opened.model)
                .map_err(|e| out_err("--out", &out, e))?;
            if let (Some(f), Some(p)) = (sealed_file, sealed_out.as_deref()) {
                f.commit().map_err(|e| out_err("--sealed-out", p, e))?;
            }
            model_file.commit().map_err(|e| out_err("--out", &out, e))?;
            let chain_line = match &fetched.chain_checked {
                Some(src) => format!("the registry stores this completed report ({src})"),
                None => "chain NOT checked (give --rpc or --chain-dir with --contract to compare with the registry)".to_string(),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "path": out.display().to_string(),
                        "bytes": fetched.opened.model.len(),
                        "model_sha256": format!("{:#x}", fetched.model_sha256),
                        "sealed_sha256": format!("{:#x}", fetched.sealed_sha256),
                        "completed_report": format!("{:#x}", fetched.report_hash),
                        "node_key": hex::encode(fetched.report.nodeKey),
                        "tee": fetched.node_kind.as_str(),
                        "insecure_simulation": fetched.insecure_simulation,
                        "chain_checked": fetched.chain_checked,
                        "metrics": fetched.opened.metrics,
                    })
                );
            } else {
                println!(
                    "verified: node evidence ({}{}) against the manifest you consented to; completed report {:#x} signed by node {}; sealed model sha256 {:#x} and model sha256 {:#x} as the report names them; {chain_line}",
                    fetched.node_kind.as_str(),
                    if fetched.insecure_simulation { ", INSECURE SIMULATION" } else { "" },
                    fetched.report_hash,
                    hex::encode(&fetched.report.nodeKey[..8]),
                    fetched.sealed_sha256,
                    fetched.model_sha256,
                );
                println!(
                    "model {} bytes, sha256 {} written to {}",
                    fetched.opened.model.len(),
                    hex::encode(fetched.model_sha256),
                    out.display()
                );
                print_quality(&fetched.opened.metrics);
            }
            Ok(())
        }
        Action::OpenModel {
            sealed,
            key,
            state,
            out,
        } => {
            crate::exit::distinct_files(&[
                ("SEALED", Some(&sealed)),
                ("--key", Some(&key)),
                ("--out", Some(&out)),
            ])?;
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let records = super::party::records(state.as_ref(), &key);
            let (opened, _) = sealroom_member::open_model_file(&sealed, &owner, &records)
                .map_err(|e| flows::member_failure("", e))?;
            write_model(&out, &opened.model)?;
            print_quality(&opened.metrics);
            Ok(())
        }
    }
}

/// The registry's stored report hashes for `session`, when the owner named a chain.
fn chain_hashes(
    rpc: Option<&str>,
    chain_dir: Option<&std::path::Path>,
    contract: Option<&str>,
    session: B256,
) -> Result<Option<ChainReportHashes>, crate::exit::Failure> {
    let Some(contract) = contract else {
        return Ok(None);
    };
    let addr = contract
        .parse::<alloy_primitives::Address>()
        .map_err(|_| input_err(format!("--contract {contract}: not an address")))?;
    let (source, label) = match (rpc, chain_dir) {
        (Some(u), _) => (Source::Rpc(u), format!("registry {addr:#x} at {u}")),
        (None, Some(d)) => (
            Source::Embedded(d),
            format!("registry {addr:#x} in {}", d.display()),
        ),
        (None, None) => return Err(input_err("--contract needs --rpc or --chain-dir")),
    };
    let bundle = bundle_from_chain(source, addr, session).map_err(|e| match e {
        ReadError::Access(m) => input_err(m),
        ReadError::Inconsistent { check, detail } => {
            crate::exit::Failure::Verification { check, detail }
        }
    })?;
    Ok(Some(ChainReportHashes::from_bundle(&bundle, label)))
}

fn print_quality(m: &serde_json::Value) {
    for l in sealroom_member::quality_lines(m) {
        println!("{l}");
    }
}

/// Writes the opened model (mode 0600) and says where, with its SHA-256.
fn write_model(out: &std::path::Path, model: &[u8]) -> CmdResult {
    write_atomic(out, model, true)
        .map_err(|e| input_err(format!("--out {}: {e}", out.display())))?;
    println!(
        "model {} bytes, sha256 {} written to {}",
        model.len(),
        hex::encode(sealroom_protocol::hash::sha256(model)),
        out.display()
    );
    Ok(())
}
