//! `sealroom run`: a whole session on one machine. It plays every member of
//! the scenario (each with its own identity and its own record, through
//! `sealroom-member`), runs the real coordinator and the measured node
//! (`sealroom-node`) as separate OS processes, publishes the reports on the
//! chain, fetches the model as the owner (accepting it only under the
//! verified `completed` report the chain holds), and verifies what landed on
//! the chain as a regulator would. The CLI (`src/cmd/run.rs`) parses the
//! arguments and prints; everything else is here.
//!
//! Output directory (see docs/run.md): `bundle.json`, `model.sealed`,
//! `model.bin`, `summary.json`, `keys/`, `parties/<name>/`, `owner/`,
//! `coordinator/` (its database, blobs and log), `chain/` (embedded chain
//! state), `node.log`.

#![forbid(unsafe_code)]

pub mod progress;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256};
use sealroom_contracts::bundle::{read_from_chain, ReadError, Source};
use sealroom_member::commit::{CommitError, CommitPaths, Committed};
use sealroom_member::{MemberError, RecordStore};
use sealroom_protocol::api::{Client, SessionState, SessionStatus};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{validation_input_name, ConsentAction, Manifest};
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::stream::DEFAULT_SEGMENT_SIZE;
use sealroom_reports::verifier::{verify_bundle_from, Verification};

/// What to run (the flags of `sealroom run`).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Output directory (default `runs/NAME-TIMESTAMP`, `-2`, `-3` … when runs start in the same second); must not exist or be empty.
    pub out: Option<PathBuf>,
    /// Chain override (`embedded`, `anvil`, a preset or a URL).
    pub chain: Option<String>,
    /// An already deployed registry.
    pub contract: Option<String>,
    /// File holding the chain key.
    pub chain_key_file: Option<PathBuf>,
    /// Quiet progress (the caller prints one JSON object).
    pub json: bool,
    /// Test hook: flip one byte of this input's blob at rest.
    pub corrupt_blob_at_rest: Option<String>,
    /// The `sealroom-node` executable to run as the node.
    pub node_exe: PathBuf,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The summary (also in `OUT/summary.json`).
    pub summary: serde_json::Value,
    /// The regulator-style verification of what landed on the chain.
    pub verification: Verification,
    /// The session's final state.
    pub state: SessionState,
    /// Why it was aborted, when it was.
    pub abort_reason: Option<String>,
}

/// Why a run stopped before producing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Bad input: the message names the file, field or flag (exit 2).
    #[error("{0}")]
    Input(String),
    /// A verification failed: `check` names it (exit 1).
    #[error("verification failed: {check}: {detail}")]
    Verification {
        /// The failed check.
        check: String,
        /// What was found.
        detail: String,
    },
    /// Anything else (exit 1).
    #[error("{0}")]
    Runtime(String),
}

fn input_err(msg: impl std::fmt::Display) -> RunError {
    RunError::Input(msg.to_string())
}

fn runtime_err(msg: impl std::fmt::Display) -> RunError {
    RunError::Runtime(msg.to_string())
}

/// A member-side refusal as a run error: a named check is a verification
/// failure, the member's own bad input is bad input.
pub fn member_failure(who: &str, e: MemberError) -> RunError {
    if let Some(check) = e.check() {
        return RunError::Verification {
            check,
            detail: format!("{who}{}", e.detail()),
        };
    }
    if e.is_input() {
        return input_err(format!("{who}{e}"));
    }
    runtime_err(format!("{who}{e}"))
}

/// Commits with a byte progress bar (hidden off a terminal); `sealroom
/// commit` uses it too.
pub fn commit_with_bar(
    dataset: &Path,
    party: &Identity,
    paths: &CommitPaths,
    segment_size: u32,
    label: &str,
) -> Result<Committed, RunError> {
    let size = std::fs::metadata(dataset).map(|m| m.len()).unwrap_or(0);
    let bar = progress::bytes_bar(size, label);
    let done =
        sealroom_member::commit::commit_to_files(dataset, party, paths, segment_size, &|n| {
            bar.set_position(n)
        });
    bar.finish_and_clear();
    done.map_err(|e| match e {
        CommitError::Internal(m) => runtime_err(m),
        other => input_err(other),
    })
}

/// The `sealroom` executable (it runs `coordinator serve`): the one running
/// this code, or the `sealroom` beside it when the caller is another binary.
fn sealroom_exe() -> Result<PathBuf, RunError> {
    let me = std::env::current_exe().map_err(runtime_err)?;
    if me.file_stem().and_then(|s| s.to_str()) == Some("sealroom") {
        return Ok(me);
    }
    let beside = me.with_file_name("sealroom");
    if beside.exists() {
        Ok(beside)
    } else {
        Err(runtime_err(format!(
            "no sealroom executable beside {}",
            me.display()
        )))
    }
}

/// A child process killed when dropped (unless it already exited).
pub struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    pub fn terminate(&mut self) {
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

fn log_file(path: &Path) -> Result<std::fs::File, RunError> {
    std::fs::File::create(path).map_err(|e| runtime_err(format!("{}: {e}", path.display())))
}

fn status_msg(json: bool, msg: &str) {
    if !json {
        eprintln!("{msg}");
    }
}

/// Finds anvil: the project's pinned npm package first, then `anvil` on PATH.
fn find_anvil() -> Result<PathBuf, RunError> {
    let pinned = [
        PathBuf::from("contracts/node_modules/.bin/anvil"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/node_modules/.bin/anvil"),
    ];
    find_anvil_in(&pinned, std::env::var_os("PATH"))
}

/// The first of `pinned`, then of `anvil` in each directory of `path`,
/// that is a file; or the error naming both places and how to get one.
fn find_anvil_in(
    pinned: &[PathBuf],
    path: Option<std::ffi::OsString>,
) -> Result<PathBuf, RunError> {
    let on_path = path
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("anvil"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    pinned
        .iter()
        .cloned()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            input_err(
                "--chain anvil: no anvil found (neither contracts/node_modules/.bin/anvil nor `anvil` on PATH); run `npm install --prefix contracts --no-save` or install Foundry",
            )
        })
}

fn start_anvil(bin: &Path, dir: &Path) -> Result<(ChildGuard, String), RunError> {
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
    node_log: &Path,
) -> Result<SessionStatus, RunError> {
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
                    // The node's own words first: they name the check it failed.
                    let why = node_reason(node_log)
                        .map(|r| {
                            // A node binary left over from older sources
                            // (e.g. target/ after a pull) knows an older
                            // manifest format: say how to bring it up to date.
                            let stale = if r.contains("unknown manifest format") {
                                "; the sealroom-node binary may be older than this sealroom: rebuild it \
                                 (cargo build --release -p sealroom-node)"
                            } else {
                                ""
                            };
                            format!("the node stopped: {r}{stale}")
                        })
                        .unwrap_or_else(|| "the node stopped and wrote no reason".into());
                    let exit = code
                        .code()
                        .map(|c| format!("exit code {c}"))
                        .unwrap_or_else(|| code.to_string());
                    return Err(runtime_err(format!(
                        "{why} (node {exit}, session left in state {}; {} has the whole log)",
                        st.state.as_str(),
                        node_log.display()
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

/// Creates and returns a fresh run directory under `parent`, named after
/// the session and the time; runs started in the same second (scripts,
/// parallel jobs) get `-2`, `-3`, … instead of refusing each other. The
/// directory is claimed with one `create_dir`, so two processes never
/// share one.
fn claim_run_dir(parent: &Path, session: &str) -> Result<PathBuf, RunError> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::fs::create_dir_all(parent)
        .map_err(|e| input_err(format!("--out: {}: {e}", parent.display())))?;
    for n in 1..=1000u32 {
        let name = if n == 1 {
            format!("{session}-{ts}")
        } else {
            format!("{session}-{ts}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(input_err(format!("--out: {}: {e}", dir.display()))),
        }
    }
    Err(input_err(format!(
        "--out: {}: a thousand runs of `{session}` in this second; pass --out DIR",
        parent.display()
    )))
}

/// Runs a whole session of `opts.scenario` (see the crate docs). The
/// summary is written to `OUT/summary.json` and returned with the
/// regulator-style verification; an aborted or unverified session is an
/// `Ok` report whose state and verification say so (the caller decides the
/// exit code after printing it).
pub fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let args = opts;
    let t_total = Instant::now();
    let mut scenario = Scenario::load(&args.scenario).map_err(input_err)?;
    let chain_target = args
        .chain
        .clone()
        .unwrap_or_else(|| scenario.chain.target.clone());
    let target = sealroom_contracts::ChainTarget::parse(&chain_target)
        .map_err(|e| input_err(format!("--chain {chain_target}: {e}")))?;
    // Before any work: a missing anvil is bad input now, not after committing.
    if target == sealroom_contracts::ChainTarget::Preset(sealroom_contracts::Preset::Anvil) {
        find_anvil()?;
    }
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
    // A missing or malformed operator key is bad input now, not a
    // coordinator that fails to start after the datasets were committed.
    if target.needs_operator_key() {
        let key =
            sealroom_contracts::load_chain_key(args.chain_key_file.as_deref()).map_err(|e| {
                // The error names the environment variable it read; a file
                // is named with its flag.
                match &args.chain_key_file {
                    Some(_) => input_err(format!("--chain-key-file: {e}")),
                    None => input_err(e.to_string()),
                }
            })?;
        if key.is_none() {
            return Err(input_err(format!(
                "chain target {chain_target} ({}: [chain] target, or --chain) publishes with a funded key: \
                 pass --chain-key-file FILE or set {}",
                args.scenario.display(),
                sealroom_contracts::CHAIN_KEY_ENV
            )));
        }
    }
    // `run` has one node, simulated: a policy that refuses it would only
    // fail later, at registration, with the reason in node.log.
    refuse_policy_a_sim_node_cannot_meet(&args.scenario, &scenario)?;
    // Warnings (an unused class) do not stop a run, but they are said.
    for w in &scenario.warnings {
        status_msg(args.json, &w.display(&args.scenario));
    }
    // The node is its own binary (the measured image); find it before
    // starting anything, so a missing one is exit 2 saying how to build it.
    let node_exe = opts.node_exe.clone();
    // The manifest records where the reports go: the chain this run really uses.
    scenario.chain.target = chain_target.clone();
    scenario.chain.contract = contract.clone();
    // Identities the scenario names are loaded before the run directory is
    // made: one that is not a secret identity is bad input, and leaves
    // nothing behind.
    let load_given = |key: &Option<PathBuf>, field: &str| -> Result<Option<Identity>, RunError> {
        key.as_ref()
            .map(|k| {
                Identity::load(&scenario.resolve(k)).map_err(|e| {
                    input_err(format!("{}: {field}: sealroom run acts as every member and needs its secret identity: {e}", args.scenario.display()))
                })
            })
            .transpose()
    };
    let given_party_ids = scenario
        .parties
        .iter()
        .enumerate()
        .map(|(i, p)| load_given(&p.key, &format!("party[{i}].key")))
        .collect::<Result<Vec<_>, _>>()?;
    let given_owner_id = load_given(&scenario.owner.key, "owner.key")?;
    let out = match &args.out {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(d)
                    .map(|mut e| e.next().is_some())
                    .unwrap_or(true)
            {
                return Err(input_err(format!(
                    "--out {}: exists and is not empty",
                    d.display()
                )));
            }
            d.clone()
        }
        None => claim_run_dir(Path::new("runs"), &scenario.session.name)?,
    };
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

    // Identities: from the scenario (secret files, loaded above) or fresh ones.
    let given_or_made = |name: &str, given: Option<Identity>| -> Result<Identity, RunError> {
        match given {
            Some(id) => Ok(id),
            None => {
                let id = Identity::generate().map_err(runtime_err)?;
                id.save(&out.join("keys").join(format!("{name}.json")))
                    .map_err(runtime_err)?;
                Ok(id)
            }
        }
    };
    let mut members = Vec::new();
    for (p, given) in scenario.parties.iter().zip(given_party_ids) {
        members.push(Member {
            name: p.name.clone(),
            identity: given_or_made(&p.name, given)?,
            input: Some(p.name.clone()),
            commit_dir: out.join("parties").join(&p.name),
        });
    }
    let owner_id = given_or_made(&scenario.owner.name, given_owner_id)?;
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
        let c = commit_with_bar(
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
                commit_with_bar(
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
            let (g, url) = start_anvil(&find_anvil()?, &out)?;
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
        sealroom_member::now() as u64,
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
            .map_err(|e| member_failure(&who, e))?;
        me.upload(&session, &m.commit_dir.join("dataset.sealed"), &no_progress)
            .map_err(|e| member_failure(&who, e))?;
    }
    let owner_member = sealroom_member::Member::new(
        &url,
        &owner_id,
        RecordStore::in_dir(owner_dir.join("state")),
    );
    owner_member
        .consent(&session, ConsentAction::Consent, Some(manifest.hash()))
        .map_err(|e| member_failure("owner: ", e))?;
    if owner_input.is_some() {
        owner_member
            .upload(&session, &owner_dir.join("validation.sealed"), &no_progress)
            .map_err(|e| member_failure("owner: ", e))?;
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
    // A policy that requires a GPU and allows simulation gets a simulated
    // GPU composed in (labelled insecure simulation like the CPU evidence).
    let gpu_args: &[&str] = if scenario.policy.require_gpu && scenario.policy.allow_simulation {
        &["--gpu", "sim"]
    } else {
        &[]
    };
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
        .args(gpu_args)
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
        &out.join("node.log"),
    )?;
    if st.state == SessionState::Aborted {
        return Err(RunError::Verification {
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
            .verify_node(&session, sealroom_member::now())
            .and_then(|node| me.grant(node, &m.commit_dir.join("dataset.datakey")))
            .map_err(|e| member_failure(&who, e))?;
        local_verdicts.push((m.name.clone(), granted.verdict));
    }
    if owner_input.is_some() {
        owner_member
            .verify_node(&session, sealroom_member::now())
            .and_then(|node| owner_member.grant(node, &owner_dir.join("validation.datakey")))
            .map_err(|e| member_failure("owner: ", e))?;
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
        &out.join("node.log"),
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
    let (bundle, provenance) = if coord_chain == "embedded" {
        read_from_chain(Source::Embedded(&out.join("chain")), contract_addr, session)
    } else {
        read_from_chain(Source::Rpc(&coord_chain), contract_addr, session)
    }
    .map_err(|e| match e {
        ReadError::Access(m) => runtime_err(m),
        ReadError::Inconsistent { check, detail } => RunError::Verification { check, detail },
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
            .map_err(|e| member_failure("owner: ", e))?;
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
                "task": scenario.schema.task.as_str(),
                "accuracy": metrics.get("final_accuracy"),
                "r2": metrics.get("final_r2"),
                "rmse": metrics.get("final_rmse"),
                "loss": metrics.get("final_loss"),
                "validation_records": metrics.get("validation_records"),
                "train_records": metrics.get("train_records"),
                // What the accuracy was measured on.
                "validated_on": if owner_input.is_some() { "owner-validation-set" } else { "held-out-split" },
                "validation_split": scenario.training.validation_split,
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
    // Read from the chain just now (stored hashes and receipts checked by the
    // reader): nothing is left "not checked offline".
    let verification = verify_bundle_from(&bundle, None, None, &provenance);
    let mut parties_json = Vec::new();
    for m in &members {
        let proof =
            sealroom_reports::verifier::inclusion_proof(&bundle, &m.name).map_err(input_err)?;
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
        "warnings": scenario.warnings.iter().map(|w| serde_json::json!({
            "file": args.scenario.display().to_string(),
            "line": w.line,
            "field": w.field,
            "message": w.message,
            "severity": w.severity,
        })).collect::<Vec<_>>(),
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
    Ok(RunReport {
        summary,
        verification,
        state: final_status.state,
        abort_reason: final_status.abort_reason,
    })
}

/// Starts `sealroom coordinator serve` on a free loopback port with its data in
/// `DIR/coordinator`, its chain in `DIR/chain` and its log in
/// `DIR/coordinator.log`; returns the guard and the URL it printed.
pub fn spawn_coordinator(
    out: &Path,
    chain: &str,
    extra: &[std::ffi::OsString],
    chain_key_env: Option<&str>,
) -> Result<(ChildGuard, String), RunError> {
    let exe = sealroom_exe()?;
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

/// `sealroom run` runs a simulated node (there is no TEE here): a scenario
/// whose policy refuses simulated evidence, or demands GPU evidence (which
/// no node carries yet, docs/attestation.md), is bad input for it, named by
/// file and field, before any work.
fn refuse_policy_a_sim_node_cannot_meet(path: &Path, scenario: &Scenario) -> Result<(), RunError> {
    // The same rule `sealroom scenario check` notes (with the field's line).
    match sealroom_protocol::scenario::sim_node_refusal(&scenario.policy) {
        None => Ok(()),
        Some((field, what)) => {
            let at = match scenario
                .warnings
                .iter()
                .find(|p| p.field == field)
                .and_then(|p| p.line)
            {
                Some(line) => format!("{}:{line}", path.display()),
                None => path.display().to_string(),
            };
            Err(input_err(format!(
                "{at}: {field} {what}: `sealroom run` runs a simulated node, which this policy refuses; \
                 run the session over the network with a node it accepts (docs/run.md, \"Members over the network\")"
            )))
        }
    }
}

/// Why the node stopped, from its log: the last `error:` line it wrote
/// (the node prints its failure there and exits), else its last line.
fn node_reason(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error:").map(str::trim))
        .or_else(|| lines.last().copied())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of one scenario started in the same second each get their own
    /// directory (they used to refuse each other: "exists and is not empty").
    #[test]
    fn run_directories_started_together_are_distinct() {
        let base = std::env::temp_dir().join(format!("sealroom-runs-{}", std::process::id()));
        let runs = base.join("runs");
        let dirs: Vec<PathBuf> = (0..3).map(|_| claim_run_dir(&runs, "s").unwrap()).collect();
        for (i, d) in dirs.iter().enumerate() {
            assert!(d.is_dir(), "{}", d.display());
            assert!(
                dirs[..i].iter().all(|earlier| earlier != d),
                "{dirs:?} repeats a directory"
            );
        }
        // Threads racing for the same names still get one each.
        let raced: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| claim_run_dir(&runs, "race").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<&PathBuf> = raced.iter().collect();
        assert_eq!(distinct.len(), raced.len(), "{raced:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// `--chain anvil` takes the pinned npm copy first, then `anvil` on
    /// PATH, and without either fails as bad input naming both places
    /// (checked before any work, see `run`).
    #[test]
    fn anvil_is_found_in_the_npm_copy_then_on_path() {
        let base = std::env::temp_dir().join(format!("sealroom-anvil-{}", std::process::id()));
        let (npm, bin, empty) = (base.join("npm"), base.join("bin"), base.join("empty"));
        for d in [&npm, &bin, &empty] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(bin.join("anvil"), b"#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([&empty, &bin]).ok();
        let missing = npm.join("anvil");
        assert_eq!(
            find_anvil_in(std::slice::from_ref(&missing), path.clone()).unwrap(),
            bin.join("anvil")
        );
        std::fs::write(&missing, b"#!/bin/sh\n").unwrap();
        assert_eq!(
            find_anvil_in(std::slice::from_ref(&missing), path).unwrap(),
            missing
        );
        let none = find_anvil_in(&[empty.join("anvil")], std::env::join_paths([&empty]).ok());
        match none {
            Err(RunError::Input(m)) => assert!(
                m.starts_with("--chain anvil: no anvil found") && m.contains("on PATH"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
