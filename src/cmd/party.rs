//! `sealroom party (join|consent|commit|grant|status) --coordinator URL --key FILE --session ID …`:
//! a consortium member's side of a session. Every request is signed with the
//! member's key; every step is checked against the member's own record of the
//! manifest it consented to (`sealroom-member`); `grant` verifies the node's
//! evidence itself, against that manifest's policy, first.

use std::path::PathBuf;

use alloy_primitives::B256;
use sealroom_member::{Member, RecordStore};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::ConsentAction;

use crate::exit::{input_err, CmdResult, Failure};
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
    /// Where this member keeps its records of what it signed [default: KEYFILE.sessions/].
    #[arg(long, global = true)]
    state: Option<PathBuf>,
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
    Join {
        /// Also fetch the whole party list (O(n)) and check it hashes to the
        /// manifest hash your own view was checked against; list every party.
        #[arg(long)]
        all_parties: bool,
    },
    /// Sign your consent over the manifest hash (or withdraw it).
    Consent {
        /// Withdraw your consent: aborts the session in any state before
        /// `completed` (a node that is training stops, wipes and signs `aborted`).
        #[arg(long)]
        withdraw: bool,
        /// The manifest hash you reviewed (from `party join`): refuse to sign
        /// if the coordinator now serves another.
        #[arg(long, value_name = "HASH")]
        manifest_hash: Option<String>,
        /// Your own policy (TOML, as a scenario's `[policy]`): with
        /// `max_epsilon`, refuse to consent (exit 1, check `privacy`) to a
        /// manifest whose training spends more.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
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
    /// Act for this member unattended until the session ends: consent to
    /// the accepted manifest only, upload, verify every node and grant to
    /// those that pass, re-grant after a node loss. One JSON line per
    /// decision; exit 0 completed, 1 aborted, 2 bad input.
    Agent {
        /// Your sealed data key (from `sealroom commit`, `BLOB.datakey`); not
        /// needed by an owner without a validation set.
        #[arg(long)]
        data_key: Option<PathBuf>,
        /// Your encrypted blob (from `sealroom commit`).
        #[arg(long)]
        blob: Option<PathBuf>,
        /// Your own policy (TOML, as a scenario's `[policy]`): a node must
        /// pass it as well as the manifest's, so it can only be stricter.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// The only manifest hash to consent to. Without it the agent prints
        /// the served manifest's hash and summary and waits.
        #[arg(long, value_name = "HASH")]
        accept_manifest: Option<String>,
        /// Seconds between two looks at the session.
        #[arg(long, default_value_t = 1.0)]
        poll_s: f64,
        /// Withdraw (aborting the session) when it has not completed this
        /// many seconds after the agent started.
        #[arg(long, value_name = "SECONDS")]
        deadline_s: Option<u64>,
    },
}

/// The member's record store: `--state DIR`, or beside the identity file.
pub fn records(state: Option<&PathBuf>, key: &std::path::Path) -> RecordStore {
    match state {
        Some(d) => RecordStore::in_dir(d),
        None => RecordStore::beside_identity(key),
    }
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

/// The member's own `--policy FILE`, validated (exit 2 naming it).
fn read_policy(
    policy: &Option<PathBuf>,
) -> Result<Option<sealroom_protocol::policy::Policy>, Failure> {
    policy
        .as_ref()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))?;
            sealroom_protocol::policy::Policy::from_toml(&text)
                .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))
        })
        .transpose()
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    let (url, me, session) = ctx(&args.common)?;
    let key_path = args.common.key.clone().unwrap_or_default();
    let member = Member::new(&url, &me, records(args.common.state.as_ref(), &key_path));
    let fail = |e| flows::member_failure("", e);
    if let Action::Agent {
        data_key,
        blob,
        policy,
        accept_manifest,
        poll_s,
        deadline_s,
    } = &args.action
    {
        return agent(
            &member,
            session,
            data_key,
            blob,
            policy,
            accept_manifest,
            *poll_s,
            *deadline_s,
        );
    }
    let st = member.served(&session).map_err(fail)?;
    if matches!(args.action, Action::Join { .. } | Action::Status) {
        // What the member sees must be what it consented to, once it has.
        if let Some(rec) = member.record(&session).map_err(fail)? {
            if rec.manifest_hash != st.manifest_hash {
                return Err(fail(sealroom_member::MemberError::ManifestChanged {
                    consented: rec.manifest_hash,
                    served: st.manifest_hash,
                }));
            }
        }
    }
    let view = &st.manifest;
    let m = &view.header;
    let out = |v: serde_json::Value, human: String| {
        if args.common.json {
            println!("{v}");
        } else {
            println!("{human}");
        }
    };
    match args.action {
        Action::Join { all_parties } => {
            let parties = if all_parties {
                Some(
                    member
                        .all_parties(&session, &st.manifest_hash)
                        .map_err(fail)?,
                )
            } else {
                None
            };
            let role = if m.owner.identity.ed25519 == me.public().ed25519 {
                "owner"
            } else {
                "party"
            };
            if view.member_name(&me.public().ed25519).is_none() {
                return Err(input_err(format!(
                    "--key: this identity ({}) is not a member of the session",
                    me.public().fingerprint()
                )));
            }
            let input = sealroom_member::my_input(view, &me.public().ed25519);
            out(
                serde_json::json!({"session_id": format!("{session:#x}"), "manifest_hash": format!("{:#x}", st.manifest_hash),
                    "role": role, "input": input, "state": st.state.as_str(), "manifest": view,
                    "parties": parties.as_ref().map(|ps| ps.iter().map(|p| serde_json::json!({
                        "name": p.name, "records": p.commitment.record_count,
                        "dataset_root": p.commitment.merkle_root,
                        "ed25519": hex::encode(p.identity.ed25519)})).collect::<Vec<_>>())}),
                format!(
                    "session {} ({})\n  manifest hash {:#x}\n  you are the {role}{}\n  parties {} with {} records (the list is committed by root {:#x}; your entry is proven under it)\n  model {}, {} epochs, seed {}\n  privacy {}\n  policy: {}\n  state {}",
                    m.name,
                    m.description,
                    st.manifest_hash,
                    input.map(|i| format!(" bringing `{i}`")).unwrap_or_default(),
                    m.parties.count,
                    m.parties.records,
                    m.parties.root,
                    m.model.describe(),
                    m.training.epochs,
                    m.training.seed,
                    sealroom_reports::audit::privacy_words(m),
                    sealroom_reports::audit::policy_words(&m.policy),
                    st.state.as_str()
                ) + &parties
                    .iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "\n  party {:<24} {:>9} records, dataset root {:#x}",
                            p.name, p.commitment.record_count, p.commitment.merkle_root
                        )
                    })
                    .collect::<String>(),
            );
        }
        Action::Consent {
            withdraw,
            manifest_hash,
            policy,
        } => {
            let local = read_policy(&policy)?;
            let reviewed = manifest_hash
                .as_deref()
                .map(|h| {
                    h.parse::<B256>().map_err(|_| {
                        input_err(format!("--manifest-hash {h}: not a 32-byte hex hash"))
                    })
                })
                .transpose()?;
            let action = if withdraw {
                ConsentAction::Withdraw
            } else {
                ConsentAction::Consent
            };
            let done = member
                .consent_under(&session, action, reviewed, local.as_ref())
                .map_err(fail)?;
            out(
                serde_json::json!({"action": if withdraw {"withdraw"} else {"consent"}, "manifest_hash": format!("{:#x}", done.manifest_hash), "record": done.record}),
                format!(
                    "{} over manifest {:#x} (recorded in {})",
                    if withdraw {
                        "withdrew consent"
                    } else {
                        "consented"
                    },
                    done.manifest_hash,
                    done.record
                ),
            );
        }
        Action::Commit { blob } => {
            let up = member
                .upload(&session, &blob, &|_, _, _| {})
                .map_err(fail)?;
            out(
                serde_json::json!({"uploaded": blob.display().to_string(), "input": up.input, "bytes": up.bytes, "sha256": format!("{:#x}", up.sha256)}),
                format!(
                    "uploaded {} ({} bytes) as {}",
                    blob.display(),
                    up.bytes,
                    up.input
                ),
            );
        }
        Action::Grant { data_key } => {
            let node = member.verify_node(&session, flows::now()).map_err(fail)?;
            let granted = member.grant(node, &data_key).map_err(fail)?;
            let verdict = granted.verdict;
            out(
                serde_json::json!({"granted": true, "input": granted.input, "node_key": hex::encode(granted.node_key), "verdict": verdict}),
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
                    "session {} — {}\n{}\n  all members: {} of {} consented, {} of {} inputs uploaded, {} granted to the node",
                    m.name,
                    st.state.as_str(),
                    {
                        let mm = &st.member;
                        format!(
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
                        )
                    },
                    st.counts.consented,
                    m.parties.count + 1,
                    st.counts.uploaded,
                    st.counts.inputs,
                    st.counts.granted,
                ) + &st
                    .attempts
                    .iter()
                    .map(|a| {
                        format!(
                            "\n  node attempt {}: {} {}{}",
                            a.number,
                            hex::encode(a.node.node_key),
                            a.outcome.as_str(),
                            a.lease_expires
                                .map(|t| format!(" (lease until {t})"))
                                .or_else(|| a.lost_at.map(|t| format!(" (declared lost at {t})")))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<String>(),
            );
        }
        // Handled before the session is fetched.
        Action::Agent { .. } => {}
    }
    Ok(())
}

/// `party agent`: checks its flags and files (exit 2), then runs
/// [`Member::agent`], printing each decision as one JSON line.
#[allow(clippy::too_many_arguments)]
fn agent(
    member: &Member<'_>,
    session: B256,
    data_key: &Option<PathBuf>,
    blob: &Option<PathBuf>,
    policy: &Option<PathBuf>,
    accept_manifest: &Option<String>,
    poll_s: f64,
    deadline_s: Option<u64>,
) -> CmdResult {
    use std::io::Write;
    if !(poll_s.is_finite() && (0.05..=3600.0).contains(&poll_s)) {
        return Err(input_err(format!(
            "--poll-s {poll_s}: must be a number of seconds from 0.05 to 3600"
        )));
    }
    for (flag, path) in [("--data-key", data_key), ("--blob", blob)] {
        if let Some(p) = path {
            if !p.is_file() {
                return Err(input_err(format!("{flag} {}: no such file", p.display())));
            }
        }
    }
    let local_policy = read_policy(policy)?;
    let accept_manifest = accept_manifest
        .as_deref()
        .map(|h| {
            h.parse::<B256>()
                .map_err(|_| input_err(format!("--accept-manifest {h}: not a 32-byte hex hash")))
        })
        .transpose()?;
    let opts = sealroom_member::agent::AgentOptions {
        session,
        data_key: data_key.clone(),
        blob: blob.clone(),
        local_policy,
        accept_manifest,
        poll: std::time::Duration::from_secs_f64(poll_s),
        deadline: deadline_s.map(std::time::Duration::from_secs),
    };
    let end = member
        .agent(&opts, &mut |v| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        })
        .map_err(|e| flows::member_failure("", e))?;
    match end {
        sealroom_member::agent::AgentEnd::Completed(_) => Ok(()),
        sealroom_member::agent::AgentEnd::Aborted(reason) => Err(Failure::Verification {
            check: "session.aborted".into(),
            detail: reason,
        }),
    }
}
