//! `sealroom owner (create|fetch-model|open-model)`: the model owner's side.

use std::path::PathBuf;

use alloy_primitives::B256;
use sealroom_protocol::api::Client;
use sealroom_protocol::fsutil::write_atomic;
use sealroom_protocol::identity::{Identity, PublicIdentity};
use sealroom_protocol::manifest::Manifest;
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::sealed_model::open_model;

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
    /// Create a session from a scenario and the parties' signed commitments.
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
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Fetch the sealed model (owner-signed request) and open it.
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
    },
    /// Open a sealed model file with the owner's identity.
    OpenModel {
        /// The sealed model.
        sealed: PathBuf,
        /// The owner's identity file.
        #[arg(long)]
        key: PathBuf,
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
            json,
        } => {
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let s = Scenario::load(&scenario).map_err(input_err)?;
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
                if let Some(k) = &p.key {
                    let expected = PublicIdentity::load(&s.resolve(k)).map_err(input_err)?;
                    if expected.ed25519 != sc.party {
                        return Err(input_err(format!(
                            "--commitment {}: signed by a key other than party[{}].key",
                            p.name, p.name
                        )));
                    }
                }
                // The X25519 half is not in a commitment: parties must name their public identity.
                let id = match &p.key {
                    Some(k) => PublicIdentity::load(&s.resolve(k)).map_err(input_err)?,
                    None => {
                        return Err(input_err(format!(
                        "scenario party `{}` needs `key` (its public identity) to create a session",
                        p.name
                    )))
                    }
                };
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
            if json {
                println!(
                    "{}",
                    serde_json::json!({"session_id": format!("{:#x}", st.session_id), "manifest_hash": format!("{:#x}", st.manifest_hash)})
                );
            } else {
                println!(
                    "created session {:#x} (manifest {:#x})",
                    st.session_id, st.manifest_hash
                );
            }
            Ok(())
        }
        Action::FetchModel {
            coordinator,
            session,
            key,
            out,
            sealed_out,
        } => {
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let sid = session
                .parse::<B256>()
                .map_err(|_| input_err(format!("--session {session}: not a 32-byte hex id")))?;
            let client = Client::new(&coordinator, Some(&owner));
            let (sealed, opened) =
                flows::fetch_model(&client, &sid, &owner).map_err(runtime_err)?;
            if let Some(p) = sealed_out {
                write_atomic(&p, &sealed, false)
                    .map_err(|e| input_err(format!("--sealed-out {}: {e}", p.display())))?;
            }
            write_model(&out, &opened.model)
        }
        Action::OpenModel { sealed, key, out } => {
            let owner = Identity::load(&key).map_err(|e| input_err(format!("--key: {e}")))?;
            let bytes = std::fs::read(&sealed)
                .map_err(|e| input_err(format!("{}: {e}", sealed.display())))?;
            let opened = open_model(&bytes, &owner)
                .map_err(|e| input_err(format!("{}: {e}", sealed.display())))?;
            write_model(&out, &opened.model)
        }
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
