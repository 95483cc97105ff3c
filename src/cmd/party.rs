//! `sealroom party (join|consent|commit|grant|status) --coordinator URL --key FILE --session ID …`:
//! a consortium member's side of a session. Every request is signed with the
//! member's key; `grant` verifies the node's evidence locally first.

use std::path::PathBuf;

use alloy_primitives::B256;
use sealroom_protocol::api::Client;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::ConsentAction;

use crate::exit::{input_err, runtime_err, CmdResult, Failure};
use crate::flows;

/// Arguments shared by every party action.
#[derive(clap::Args)]
pub struct Common {
    /// Coordinator base URL.
    #[arg(long, global = true)]
    coordinator: Option<String>,
    /// The member's identity file.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// Session id (0x-hex).
    #[arg(long, global = true)]
    session: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
}

/// Arguments of `sealroom party`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show the manifest you are asked to sign and your role in it.
    Join,
    /// Sign your consent over the manifest hash (or withdraw it).
    Consent {
        /// Withdraw a consent (allowed until keys are granted; aborts the session).
        #[arg(long)]
        withdraw: bool,
    },
    /// Upload your encrypted blob (from `sealroom commit`).
    Commit {
        /// The blob file.
        #[arg(long)]
        blob: PathBuf,
    },
    /// Verify the node's evidence yourself; only if it passes, grant your data key to it.
    Grant {
        /// Your sealed data key (from `sealroom commit`, `BLOB.datakey`).
        #[arg(long)]
        data_key: PathBuf,
    },
    /// Show the session's state.
    Status,
}

fn ctx(c: &Common) -> Result<(String, Identity, B256), Failure> {
    let url = c
        .coordinator
        .clone()
        .ok_or_else(|| input_err("--coordinator is required"))?;
    let key = c
        .key
        .as_ref()
        .ok_or_else(|| input_err("--key is required"))?;
    let id = Identity::load(key).map_err(|e| input_err(format!("--key: {e}")))?;
    let s = c
        .session
        .as_ref()
        .ok_or_else(|| input_err("--session is required"))?;
    let session = s
        .parse::<B256>()
        .map_err(|_| input_err(format!("--session {s}: not a 32-byte hex id")))?;
    Ok((url, id, session))
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    let (url, me, session) = ctx(&args.common)?;
    let client = Client::new(&url, Some(&me));
    let st = flows::fetch(&client, &session).map_err(runtime_err)?;
    let m = &st.manifest;
    let out = |v: serde_json::Value, human: String| {
        if args.common.json {
            println!("{v}");
        } else {
            println!("{human}");
        }
    };
    match args.action {
        Action::Join => {
            let role = if m.owner.identity.ed25519 == me.public().ed25519 {
                "owner"
            } else {
                "party"
            };
            let input = flows::my_input(m, &me).map_err(input_err)?;
            out(
                serde_json::json!({"session_id": format!("{session:#x}"), "manifest_hash": format!("{:#x}", st.manifest_hash),
                    "role": role, "input": input, "state": st.state.as_str(), "manifest": m}),
                format!(
                    "session {} ({})\n  manifest hash {:#x}\n  you are the {role}{}\n  model {:?}, {} epochs, seed {}\n  policy: kinds {:?}, allow_simulation {}\n  state {}",
                    m.name,
                    m.description,
                    st.manifest_hash,
                    input.map(|i| format!(" bringing `{i}`")).unwrap_or_default(),
                    m.model.kind,
                    m.training.epochs,
                    m.training.seed,
                    m.policy.accepted_kinds,
                    m.policy.allow_simulation,
                    st.state.as_str()
                ),
            );
        }
        Action::Consent { withdraw } => {
            let action = if withdraw {
                ConsentAction::Withdraw
            } else {
                ConsentAction::Consent
            };
            flows::consent(&client, m, &me, action).map_err(runtime_err)?;
            out(
                serde_json::json!({"action": if withdraw {"withdraw"} else {"consent"}, "manifest_hash": format!("{:#x}", st.manifest_hash)}),
                format!(
                    "{} over manifest {:#x}",
                    if withdraw {
                        "withdrew consent"
                    } else {
                        "consented"
                    },
                    st.manifest_hash
                ),
            );
        }
        Action::Commit { blob } => {
            flows::upload_blob(&client, m, &me, &blob).map_err(input_err)?;
            out(
                serde_json::json!({"uploaded": blob.display().to_string()}),
                format!("uploaded {}", blob.display()),
            );
        }
        Action::Grant { data_key } => {
            let verdict = flows::grant(&client, m, &me, &data_key, flows::now())
                .map_err(|e| e.into_failure(""))?;
            out(
                serde_json::json!({"granted": true, "verdict": verdict}),
                format!(
                    "node evidence verified locally ({}{}); data key granted",
                    verdict.kind,
                    if verdict.insecure_simulation {
                        ", INSECURE SIMULATION"
                    } else {
                        ""
                    }
                ),
            );
        }
        Action::Status => {
            out(
                serde_json::to_value(&st).unwrap_or_default(),
                format!(
                    "session {} — {}\n{}",
                    m.name,
                    st.state.as_str(),
                    st.members
                        .iter()
                        .map(|mm| format!(
                            "  {:<24} {:<6} consent {:<3} blob {:<3} grant {}",
                            mm.name,
                            mm.role,
                            if mm.consented { "yes" } else { "no" },
                            mm.blob_uploaded
                                .map(|b| if b { "yes" } else { "no" })
                                .unwrap_or("-"),
                            mm.granted
                                .map(|b| if b { "yes" } else { "no" })
                                .unwrap_or("-")
                        ))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            );
        }
    }
    Ok(())
}
