//! `sealroom run SCENARIO [--out DIR] [--chain embedded|anvil|URL] [--contract ADDR] [--json]`:
//! a whole session on one machine. It plays every member of the scenario
//! (each with its own identity), runs the real coordinator and one simulated
//! node as separate OS processes, publishes the reports on the chain, fetches
//! and opens the model as the owner, and finally verifies what landed on the
//! chain as a regulator would.
//!
//! Output directory (see docs/run.md): `bundle.json`, `model.sealed`,
//! `model.bin`, `summary.json`, `keys/`, `parties/<name>/`, `owner/`,
//! `coordinator/` (its database, blobs and log), `chain/` (embedded chain
//! state), `node.log`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use sealroom_protocol::api::{Client, SessionState, SessionStatus};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{validation_input_name, ConsentAction, Manifest};
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::stream::DEFAULT_SEGMENT_SIZE;
use sealroom_reports::verifier::verify_bundle;

use super::commit::{commit_to_files, CommitPaths};
use crate::exit::{input_err, runtime_err, CmdResult, Failure};
use crate::flows;
use sealroom_contracts::bundle::{bundle_from_chain, ReadError, Source};
use sealroom_member::RecordStore;

/// Arguments of `sealroom run`.
#[derive(clap::Args)]
pub struct Args {
    /// The scenario file (see scenarios/README.md).
    scenario: PathBuf,
    /// Output directory [default: runs/NAME-TIMESTAMP]; must not exist or be empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Chain: `embedded` (in-process EVM, default), `anvil` (starts a local anvil), or a JSON-RPC URL
    /// (key from --chain-key-file or SEALROOM_CHAIN_KEY). Overrides the scenario's [chain] target.
    #[arg(long)]
    chain: Option<String>,
    /// Use an already deployed registry at this address.
    #[arg(long)]
    contract: Option<String>,
    /// File holding the chain key (never on the command line).
    #[arg(long)]
    chain_key_file: Option<PathBuf>,
    /// Print one JSON object on stdout and nothing else there.
    #[arg(long)]
    json: bool,
    /// Test hook: flip one byte of this input's blob in the coordinator's blob
    /// store after upload, before the node reads it (the node must abort).
    #[arg(long, hide = true)]
    corrupt_blob_at_rest: Option<String>,
}

/// A child process killed when dropped (unless it already exited).
pub(crate) struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    pub(crate) fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first so the coordinator shuts down gracefully.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.name;
    }
}

fn log_file(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path).map_err(|e| runtime_err(format!("{}: {e}", path.display())))
}

fn status_msg(json: bool, msg: &str) {
    if !json {
        eprintln!("{msg}");
    }
}

/// Starts anvil from the project's pinned npm package on a free port.
fn start_anvil(dir: &Path) -> Result<(ChildGuard, String), Failure> {
    let candidates = [
        PathBuf::from("contracts/node_modules/.bin/anvil"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/node_modules/.bin/anvil"),
    ];
    let bin = candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| input_err("--chain anvil: contracts/node_modules/.bin/anvil not found; run `npm install --prefix contracts --no-save`"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(runtime_err)?;
    let child = Command::new(bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--silent",
        ])
        .stdout(Stdio::null())
        .stderr(log_file(&dir.join("anvil.log"))?)
        .spawn()
        .map_err(|e| runtime_err(format!("starting anvil: {e}")))?;
    let guard = ChildGuard {
        child,
        name: "anvil",
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(runtime_err("anvil did not start within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((guard, url))
}

struct Member {
    name: String,
    identity: Identity,
    input: Option<String>,
    commit_dir: PathBuf,
}

fn wait_for(
    client: &Client<'_>,
    session: &B256,
    timeout: Duration,
    mut done: impl FnMut(&SessionStatus) -> bool,
    node: &mut Option<ChildGuard>,
) -> Result<SessionStatus, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let st = client.status(session).map_err(runtime_err)?;
        if done(&st) {
            return Ok(st);
        }
        if let Some(n) = node.as_mut() {
            if let Ok(Some(code)) = n.child.try_wait() {
                // The node finished; one more look at the state decides.
                let st = client.status(session).map_err(runtime_err)?;
                if done(&st) {
                    return Ok(st);
                }
                if !code.success() && st.state != SessionState::Aborted {
                    return Err(runtime_err(format!(
                        "the node exited ({code}) with the session in state {} (node.log in the run directory says why)",
                        st.state.as_str()
                    )));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(runtime_err(format!(
                "timed out with the session in state {}",
                st.state.as_str()
            )));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    let t_total = Instant::now();
    let mut scenario = Scenario::load(&args.scenario).map_err(input_err)?;
    let chain_target = args
        .chain
        .clone()
        .unwrap_or_else(|| scenario.chain.target.clone());
    sealroom_contracts::ChainTarget::parse(&chain_target)
        .map_err(|e| input_err(format!("--chain {chain_target}: {e}")))?;
    let contract = args
        .contract
        .clone()
        .or_else(|| scenario.chain.contract.clone());
    if let Some(c) = &contract {
        c.parse::<Address>()
            .map_err(|_| input_err(format!("--contract {c}: not an address")))?;
    }
    if let Some(f) = &args.chain_key_file {
        if !f.exists() {
            return Err(input_err(format!(
                "--chain-key-file {}: no such file",
                f.display()
            )));
        }
    }
    // The node is its own binary (the measured image); find it before
    // starting anything, so a missing one is exit 2 saying how to build it.
    let node_exe = super::node::node_exe()?;
    // The manifest records where the reports go: the chain this run really uses.
    scenario.chain.target = chain_target.clone();
    scenario.chain.contract = contract.clone();
    let out = match &args.out {
        Some(d) => d.clone(),
        None => {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from("runs").join(format!("{}-{ts}", scenario.session.name))
        }
    };
    if out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(input_err(format!(
            "--out {}: exists and is not empty",
            out.display()
        )));
    }
    for d in ["keys", "parties", "owner", "coordinator", "chain"] {
        std::fs::create_dir_all(out.join(d))
            .map_err(|e| input_err(format!("--out {}: {e}", out.display())))?;
    }
    let json = args.json;
    status_msg(
        json,
        &format!(
            "sealroom run: {} → {}",
            scenario.session.name,
            out.display()
        ),
    );

    // Identities: from the scenario (secret files) or fresh ones.
    let load_or_make = |name: &str,
                        key: &Option<PathBuf>,
                        field: &str|
     -> Result<Identity, Failure> {
        match key {
            Some(k) => Identity::load(&scenario.resolve(k)).map_err(|e| {
                input_err(format!("{}: {field}: sealroom run acts as every member and needs its secret identity: {e}", args.scenario.display()))
            }),
            None => {
                let id = Identity::generate().map_err(runtime_err)?;
                id.save(&out.join("keys").join(format!("{name}.json"))).map_err(runtime_err)?;
                Ok(id)
            }
        }
    };
    let mut members = Vec::new();
    for (i, p) in scenario.parties.iter().enumerate() {
        members.push(Member {
            name: p.name.clone(),
            identity: load_or_make(&p.name, &p.key, &format!("party[{i}].key"))?,
            input: Some(p.name.clone()),
            commit_dir: out.join("parties").join(&p.name),
        });
    }
    let owner_id = load_or_make(&scenario.owner.name, &scenario.owner.key, "owner.key")?;
    let owner_input = scenario
        .owner
        .validation
        .as_ref()
        .map(|_| validation_input_name(&scenario.owner.name));

    // 1. Every member commits its dataset locally (encrypt + Merkle tree + signed commitment).
    let t_commit = Instant::now();
    let mut commitments = Vec::new();
    for (m, p) in members.iter().zip(&scenario.parties) {
        std::fs::create_dir_all(&m.commit_dir).map_err(runtime_err)?;
        let paths = CommitPaths {
            blob: m.commit_dir.join("dataset.sealed"),
            commitment: m.commit_dir.join("commitment.json"),
            data_key: m.commit_dir.join("dataset.datakey"),
            tree: Some(m.commit_dir.join("tree.json")),
        };
        let c = commit_to_files(
            &scenario.resolve(&p.dataset),
            &m.identity,
            &paths,
            DEFAULT_SEGMENT_SIZE,
            &format!("commit {}", m.name),
        )?;
        commitments.push((m.identity.public(), c.signed.commitment));
    }
    let owner_dir = out.join("owner");
    let owner_validation = match &scenario.owner.validation {
        Some(v) => {
            let paths = CommitPaths {
                blob: owner_dir.join("validation.sealed"),
                commitment: owner_dir.join("validation.commitment.json"),
                data_key: owner_dir.join("validation.datakey"),
                tree: Some(owner_dir.join("validation.tree.json")),
            };
            Some(
                commit_to_files(
                    &scenario.resolve(v),
                    &owner_id,
                    &paths,
                    DEFAULT_SEGMENT_SIZE,
                    "commit validation",
                )?
                .signed
                .commitment,
            )
        }
        None => None,
    };
    let commit_s = t_commit.elapsed().as_secs_f64();
    status_msg(
        json,
        &format!(
            "  committed {} datasets in {commit_s:.2} s",
            commitments.len() + usize::from(owner_validation.is_some())
        ),
    );

    // 2. The chain and the coordinator.
    let mut anvil = None;
    let (coord_chain, chain_env) = match chain_target.as_str() {
        "anvil" => {
            let (g, url) = start_anvil(&out)?;
            anvil = Some(g);
            (url, Some(sealroom_contracts::ANVIL_DEV_KEY.to_string()))
        }
        other => (other.to_string(), None),
    };
    let mut extra: Vec<std::ffi::OsString> = Vec::new();
    if let Some(c) = &contract {
        extra.extend(["--contract".into(), c.into()]);
    }
    if let Some(f) = &args.chain_key_file {
        extra.extend(["--chain-key-file".into(), f.into()]);
    }
    let (mut coordinator, url) =
        spawn_coordinator(&out, &coord_chain, &extra, chain_env.as_deref())?;
    status_msg(json, &format!("  coordinator at {url}"));

    // 3. The owner publishes the manifest; members consent and upload their blobs.
    let mut sid = [0u8; 32];
    getrandom::fill(&mut sid).map_err(runtime_err)?;
    let manifest = Manifest::from_scenario(
        &scenario,
        B256::from(sid),
        flows::now() as u64,
        commitments,
        owner_id.public(),
        owner_validation,
    )
    .map_err(input_err)?;
    let session = manifest.session_id;
    let owner_client = Client::new(&url, Some(&owner_id));
    owner_client
        .create_session(&manifest)
        .map_err(runtime_err)?;
    // Each member keeps its own record of what it signed (DIR/<member>/state).
    let no_progress = |_: &str, _: u64, _: u64| {};
    for m in &members {
        let me = sealroom_member::Member::new(
            &url,
            &m.identity,
            RecordStore::in_dir(m.commit_dir.join("state")),
        );
        let who = format!("{}: ", m.name);
        me.consent(&session, ConsentAction::Consent, Some(manifest.hash()))
            .map_err(|e| flows::member_failure(&who, e))?;
        me.upload(&session, &m.commit_dir.join("dataset.sealed"), &no_progress)
            .map_err(|e| flows::member_failure(&who, e))?;
    }
    let owner_member = sealroom_member::Member::new(
        &url,
        &owner_id,
        RecordStore::in_dir(owner_dir.join("state")),
    );
    owner_member
        .consent(&session, ConsentAction::Consent, Some(manifest.hash()))
        .map_err(|e| flows::member_failure("owner: ", e))?;
    if owner_input.is_some() {
        owner_member
            .upload(&session, &owner_dir.join("validation.sealed"), &no_progress)
            .map_err(|e| flows::member_failure("owner: ", e))?;
    }
    if let Some(target) = &args.corrupt_blob_at_rest {
        let c = manifest
            .grantable_inputs()
            .into_iter()
            .find(|(n, _, _)| n == target)
            .map(|(_, _, c)| c)
            .ok_or_else(|| input_err(format!("--corrupt-blob-at-rest {target}: no such input")))?;
        let path = out
            .join("coordinator")
            .join("blobs")
            .join(hex::encode(c.ciphertext_sha256));
        let mut bytes =
            std::fs::read(&path).map_err(|e| runtime_err(format!("{}: {e}", path.display())))?;
        let i = bytes.len() / 2;
        bytes[i] ^= 0x01;
        std::fs::write(&path, bytes).map_err(runtime_err)?;
        status_msg(
            json,
            &format!("  test hook: flipped one byte of {target}'s blob at rest"),
        );
    }

    // 4. One simulated node, as a separate OS process.
    let t_attest = Instant::now();
    let node_child = Command::new(&node_exe)
        .args([
            "run",
            "--coordinator",
            &url,
            "--tee",
            "sim",
            "--session",
            &format!("{session:#x}"),
        ])
        .stdout(Stdio::null())
        .stderr(log_file(&out.join("node.log"))?)
        .spawn()
        .map_err(|e| runtime_err(format!("starting the node: {e}")))?;
    let mut node = Some(ChildGuard {
        child: node_child,
        name: "node",
    });
    let anon = Client::new(&url, None);
    let st = wait_for(
        &anon,
        &session,
        Duration::from_secs(120),
        |s| s.node.is_some() || s.state == SessionState::Aborted,
        &mut node,
    )?;
    if st.state == SessionState::Aborted {
        return Err(Failure::Verification {
            check: "node-attestation".into(),
            detail: st.abort_reason.unwrap_or_default(),
        });
    }

    // 5. Each member verifies the node's evidence itself, then grants its key.
    let mut local_verdicts = Vec::new();
    for m in &members {
        let me = sealroom_member::Member::new(
            &url,
            &m.identity,
            RecordStore::in_dir(m.commit_dir.join("state")),
        );
        let who = format!("{}: ", m.name);
        let granted = me
            .verify_node(&session, flows::now())
            .and_then(|node| me.grant(node, &m.commit_dir.join("dataset.datakey")))
            .map_err(|e| flows::member_failure(&who, e))?;
        local_verdicts.push((m.name.clone(), granted.verdict));
    }
    if owner_input.is_some() {
        owner_member
            .verify_node(&session, flows::now())
            .and_then(|node| owner_member.grant(node, &owner_dir.join("validation.datakey")))
            .map_err(|e| flows::member_failure("owner: ", e))?;
    }
    let attest_s = t_attest.elapsed().as_secs_f64();
    status_msg(
        json,
        &format!(
            "  node attested ({}) and verified by every member; keys granted",
            local_verdicts
                .first()
                .map(|(_, v)| if v.insecure_simulation {
                    "sim: INSECURE SIMULATION"
                } else {
                    "hardware"
                })
                .unwrap_or("?")
        ),
    );

    // 6. Training: follow the node's progress.
    let t_train = Instant::now();
    let bar = indicatif::ProgressBar::new(u64::from(manifest.training.epochs));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>16} [{bar:30}] epoch {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("training");
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut trained_at = None;
    let st = wait_for(
        &anon,
        &session,
        Duration::from_secs(3600),
        |s| {
            if let Some(e) = s
                .progress
                .as_ref()
                .and_then(|p| p.get("epoch"))
                .and_then(|e| e.as_u64())
            {
                bar.set_position(e);
            }
            if s.state >= SessionState::Completed && trained_at.is_none() {
                trained_at = Some(Instant::now());
                bar.set_message("publishing");
            }
            if s.state == SessionState::InputsVerified && s.progress.is_none() {
                bar.set_message("publishing opened");
            }
            if s.state == SessionState::Training {
                bar.set_message("training");
            }
            matches!(
                s.state,
                SessionState::Published | SessionState::Delivered | SessionState::Aborted
            ) && s.reports.iter().all(|r| r.tx_hash.is_some())
        },
        &mut node,
    )?;
    bar.finish_and_clear();
    let train_s = trained_at
        .map(|t| (t - t_train).as_secs_f64())
        .unwrap_or_else(|| t_train.elapsed().as_secs_f64());
    let publish_s = trained_at.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    if let Some(mut n) = node.take() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while n.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // 7. What landed on the chain (read while the coordinator still runs:
    // the owner compares the completed report with it before accepting the model).
    let t_verify = Instant::now();
    let contract_addr = anon
        .status(&session)
        .map_err(runtime_err)?
        .chain
        .as_ref()
        .and_then(|c| c.get("contract"))
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse::<Address>().ok())
        .ok_or_else(|| runtime_err("the coordinator did not report the registry address"))?;
    let bundle = if coord_chain == "embedded" {
        bundle_from_chain(Source::Embedded(&out.join("chain")), contract_addr, session)
    } else {
        bundle_from_chain(Source::Rpc(&coord_chain), contract_addr, session)
    }
    .map_err(|e| match e {
        ReadError::Access(m) => runtime_err(m),
        ReadError::Inconsistent { check, detail } => Failure::Verification { check, detail },
    })?;
    let mut verify_s = t_verify.elapsed().as_secs_f64();

    // 8. The owner fetches the model, accepting it only under the verified
    // completed report the chain holds, and opens it.
    let mut model_json = serde_json::Value::Null;
    if st.state != SessionState::Aborted {
        let on_chain = sealroom_member::ChainReportHashes::from_bundle(
            &bundle,
            format!("registry {contract_addr:#x}"),
        );
        let fetched = owner_member
            .fetch_model(&session, Some(&on_chain))
            .map_err(|e| flows::member_failure("owner: ", e))?;
        sealroom_protocol::fsutil::write_atomic(&out.join("model.sealed"), &fetched.sealed, false)
            .map_err(runtime_err)?;
        sealroom_protocol::fsutil::write_atomic(
            &out.join("model.bin"),
            &fetched.opened.model,
            true,
        )
        .map_err(runtime_err)?;
        let metrics = &fetched.opened.metrics;
        model_json = serde_json::json!({
            "sealed_path": out.join("model.sealed").display().to_string(),
            "path": out.join("model.bin").display().to_string(),
            "sha256": format!("{:#x}", fetched.model_sha256),
            "verified_by_owner": {
                "completed_report": format!("{:#x}", fetched.report_hash),
                "sealed_sha256": format!("{:#x}", fetched.sealed_sha256),
                "chain": fetched.chain_checked,
            },
            "metrics": {
                "accuracy": metrics.get("final_accuracy"),
                "loss": metrics.get("final_loss"),
                "validation_records": metrics.get("validation_records"),
                "train_records": metrics.get("train_records"),
            },
        });
    }
    let final_status = anon.status(&session).map_err(runtime_err)?;
    coordinator.terminate();
    // anvil (when started) stays up until the regulator's read below.

    // 9. A regulator's verification of what landed on the chain.
    let t_verify = Instant::now();
    let bundle_text = serde_json::to_string_pretty(&bundle).map_err(runtime_err)? + "\n";
    sealroom_protocol::fsutil::write_atomic(
        &out.join("bundle.json"),
        bundle_text.as_bytes(),
        false,
    )
    .map_err(runtime_err)?;
    let verification = verify_bundle(&bundle, None, None);
    let mut parties_json = Vec::new();
    for m in &members {
        let proof = super::report::prove(&bundle, &m.name)?;
        let p = m.commit_dir.join("inclusion-proof.json");
        sealroom_protocol::fsutil::write_atomic(
            &p,
            (serde_json::to_string_pretty(&proof).unwrap_or_default() + "\n").as_bytes(),
            false,
        )
        .map_err(runtime_err)?;
        let root = manifest
            .party(&m.name)
            .map(|p| format!("{:#x}", p.commitment.merkle_root))
            .unwrap_or_default();
        parties_json.push(serde_json::json!({"name": m.name, "dataset_root": root, "proof_path": p.display().to_string(), "input": m.input}));
    }
    verify_s += t_verify.elapsed().as_secs_f64();
    drop(anvil);

    let reports: Vec<serde_json::Value> = final_status
        .reports
        .iter()
        .map(|r| serde_json::json!({"kind": r.kind, "report_hash": format!("{:#x}", r.report_hash), "tx_hash": r.tx_hash, "block": r.block, "gas_used": r.gas_used}))
        .collect();
    let chain_json = final_status.chain.clone().unwrap_or_default();
    let summary = serde_json::json!({
        "session_id": format!("{session:#x}"),
        "manifest_hash": format!("{:#x}", manifest.hash()),
        "tee": bundle.envelope.kind.as_str(),
        "insecure_simulation": verification.insecure_simulation,
        "chain": {
            "kind": if coord_chain == "embedded" { "embedded" } else { "rpc" },
            "chain_id": chain_json.get("chain_id"),
            "contract": format!("{contract_addr:#x}"),
            // Derived from the chain's kind and id, never a free-text label.
            "label": verification.chain.as_ref().map(|c| c.name.clone()),
        },
        "state": final_status.state.as_str(),
        "abort_reason": final_status.abort_reason,
        "reports": reports,
        "model": model_json,
        "parties": parties_json,
        "verification": {"verified": verification.verified, "outcome": verification.outcome, "policy": verification.policy_source, "checks": verification.checks},
        "timings_s": {"commit": commit_s, "attest": attest_s, "train": train_s, "publish": publish_s, "verify": verify_s, "total": t_total.elapsed().as_secs_f64()},
        "out": out.display().to_string(),
    });
    let summary_text = serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n";
    sealroom_protocol::fsutil::write_atomic(
        &out.join("summary.json"),
        summary_text.as_bytes(),
        false,
    )
    .map_err(runtime_err)?;
    if json {
        println!("{summary}");
    } else {
        print_human(&summary, &verification);
    }
    if final_status.state == SessionState::Aborted {
        let reason = final_status.abort_reason.unwrap_or_default();
        let mut parts = reason.splitn(3, ": ");
        let input = parts.next().unwrap_or("");
        let check = parts.next().unwrap_or("");
        return Err(Failure::Verification {
            check: format!("session aborted: {input}: {check}"),
            detail: parts.next().unwrap_or(&reason).to_string(),
        });
    }
    if !verification.verified {
        let f = verification
            .failure
            .unwrap_or_else(|| sealroom_reports::verifier::Check {
                check: "unknown".into(),
                ok: false,
                detail: String::new(),
            });
        return Err(Failure::Verification {
            check: f.check,
            detail: f.detail,
        });
    }
    Ok(())
}

/// Starts `sealroom coordinator serve` on a free loopback port with its data in
/// `DIR/coordinator`, its chain in `DIR/chain` and its log in
/// `DIR/coordinator.log`; returns the guard and the URL it printed.
pub(crate) fn spawn_coordinator(
    out: &Path,
    chain: &str,
    extra: &[std::ffi::OsString],
    chain_key_env: Option<&str>,
) -> Result<(ChildGuard, String), Failure> {
    let exe = std::env::current_exe().map_err(runtime_err)?;
    let mut cmd = Command::new(&exe);
    cmd.args(["coordinator", "serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(out.join("coordinator"))
        .args(["--chain", chain, "--chain-dir"])
        .arg(out.join("chain"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log_file(&out.join("coordinator.log"))?);
    if let Some(k) = chain_key_env {
        cmd.env(sealroom_contracts::CHAIN_KEY_ENV, k);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| runtime_err(format!("starting the coordinator: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| runtime_err("coordinator stdout"))?;
    let guard = ChildGuard {
        child,
        name: "coordinator",
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(runtime_err)?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string)
        .ok_or_else(|| {
            runtime_err(format!(
                "the coordinator did not start (see {})",
                out.join("coordinator.log").display()
            ))
        })?;
    Ok((guard, url))
}

fn print_human(s: &serde_json::Value, v: &sealroom_reports::verifier::Verification) {
    let g = |p: &str| {
        s.pointer(p)
            .map(|x| x.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!();
    println!("session      {}", g("/session_id"));
    println!("manifest     {}", g("/manifest_hash"));
    if v.insecure_simulation {
        println!(
            "tee          sim — INSECURE SIMULATION: no TEE protected this run (development only)"
        );
    } else {
        println!("tee          {}", g("/tee"));
    }
    println!(
        "chain        {}, registry {}",
        g("/chain/label"),
        g("/chain/contract")
    );
    if let Some(reports) = s.get("reports").and_then(|r| r.as_array()) {
        for r in reports {
            println!(
                "report       {:<9} tx {} block {} gas {}",
                r["kind"].as_str().unwrap_or(""),
                r["tx_hash"].as_str().unwrap_or("-"),
                r["block"],
                r["gas_used"]
            );
        }
    }
    if s.get("model").is_some_and(|m| !m.is_null()) {
        println!(
            "model        {} (sha256 {})",
            g("/model/path"),
            g("/model/sha256")
        );
        println!(
            "accuracy     {} on the owner's validation set",
            g("/model/metrics/accuracy")
        );
    } else {
        println!("aborted      {}", g("/abort_reason"));
    }
    println!(
        "verification {}",
        if v.verified {
            format!("VERIFIED from the chain ({})", v.outcome)
        } else {
            "FAILED".into()
        }
    );
    super::report::print_checks(&v.checks);
    println!("timings      {}", s["timings_s"]);
    println!("output       {}", g("/out"));
}
