//! `sealroom-node run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID]`:
//! one session served by a TEE node; `sealroom-node serve … [--max-sessions N]`:
//! sessions one after another, each with fresh keys and evidence. While it
//! holds a session the node heartbeats from a thread of its own (every
//! quarter of the coordinator's lease), and stops — wiping, signing
//! `aborted` — when a member withdraws. The node generates its keys in memory,
//! registers with evidence bound to them and the session's manifest, waits
//! for the parties' grants, then runs the trusted loader and trainer and
//! uploads the signed reports and the sealed model. It trusts nothing the
//! coordinator says: the loader re-checks every signature and hash itself,
//! and a coordinator that serves another manifest than the one the evidence
//! is bound to gets a signed refusal, not a run.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use sealroom_protocol::api::{
    Client, ClientError, NodeRegistration, Progress, ReportUpload, SessionState,
};
use sealroom_protocol::manifest::Manifest;
use sealroom_protocol::policy::TeeKind;
use sealroom_reports::report::ReportKind;
use sealroom_trainer::node::{
    abort_code, BlobSource, Collector, Node, NodeEvent, SessionInputs, SignedReport, SimCollector,
};

use crate::exit::{input_err, runtime_err, Failure};

/// The TEE kinds a node collects evidence from (`--tee`). A closed set: an
/// unknown value is a usage error naming the flag (exit 2), never a silent
/// fallback to simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tee {
    /// Simulation: no TEE; evidence is labelled `insecure-simulation`.
    Sim,
    /// AMD SEV-SNP through configfs-tsm (needs `--features tee`).
    SevSnp,
    /// Intel TDX through configfs-tsm (needs `--features tee`).
    Tdx,
}

impl Tee {
    /// The protocol's kind for this flag value.
    pub fn kind(self) -> TeeKind {
        match self {
            Tee::Sim => TeeKind::Sim,
            Tee::SevSnp => TeeKind::SevSnp,
            Tee::Tdx => TeeKind::Tdx,
        }
    }

    /// The flag value as typed (for the message of a build without hardware collectors).
    #[cfg(not(feature = "tee"))]
    fn flag(self) -> &'static str {
        match self {
            Tee::Sim => "sim",
            Tee::SevSnp => "sev-snp",
            Tee::Tdx => "tdx",
        }
    }
}

/// GPU evidence to compose in (`--gpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Gpu {
    /// NVIDIA H100 in confidential-compute mode.
    Nvidia,
    /// Simulated GPU evidence (development and tests; labelled insecure
    /// simulation, accepted only where the policy allows simulation).
    Sim,
}

/// The flags `run` and `serve` share: where the coordinator is and how the
/// node proves what it is.
#[derive(Debug, clap::Args)]
pub struct NodeFlags {
    /// Coordinator base URL.
    #[arg(long)]
    pub coordinator: String,
    /// TEE kind to collect evidence from.
    #[arg(long, value_enum)]
    pub tee: Tee,
    /// GPU evidence to compose in: `sim` (simulated, for development), or
    /// `nvidia` (needs the NVIDIA collector on an H100 in CC mode).
    #[arg(long, value_enum)]
    pub gpu: Option<Gpu>,
    /// TDX collateral (JSON from Intel PCS/PCCS) to present with the evidence.
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// Give up a session whose grants do not arrive within this many seconds
    /// (the lease then runs out and another node may take it). At most 30
    /// days: a longer wait is a mistake, and would overflow the clock.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub timeout_s: u64,
}

/// Arguments of `sealroom-node run` (and so of `sealroom node run`).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub node: NodeFlags,
    /// The session to serve (default: the only open session waiting for a node).
    #[arg(long)]
    pub session: Option<String>,
}

/// The evidence collector for `--tee`. Hardware kinds need the `tee`
/// feature; without it they are a usage error that says how to rebuild.
fn collector(
    tee: Tee,
    measurement: [u8; 32],
    collateral: Option<Vec<u8>>,
) -> Result<Box<dyn Collector>, Failure> {
    match tee {
        Tee::Sim => Ok(Box::new(SimCollector { measurement })),
        #[cfg(feature = "tee")]
        Tee::SevSnp | Tee::Tdx => Ok(Box::new(sealroom_trainer::node::ConfigfsCollector {
            kind: tee.kind(),
            collateral,
        })),
        #[cfg(not(feature = "tee"))]
        Tee::SevSnp | Tee::Tdx => {
            let _ = collateral;
            Err(input_err(format!(
                "--tee {}: this build has no hardware collector; on the confidential VM build the node \
                 with `cargo build --release -p sealroom-node --features tee` (configfs-tsm), or use \
                 --tee sim on a machine without a TEE",
                tee.flag()
            )))
        }
    }
}

/// Blobs streamed from the coordinator (the loader checks each one's length
/// and hash against the signed commitment before decrypting).
struct CoordinatorBlobs<'a> {
    client: &'a Client<'a>,
    session: B256,
}

impl BlobSource for CoordinatorBlobs<'_> {
    fn open(&self, input: &str) -> std::io::Result<Box<dyn Read + '_>> {
        self.client
            .blob(&self.session, input)
            .map(|r| r as Box<dyn Read>)
            .map_err(std::io::Error::other)
    }
}

/// The kind of a signed report, read from its own bytes (`None` when they
/// do not decode: such a report is uploaded at the end and the coordinator
/// judges it).
fn kind_of(r: &SignedReport) -> Option<ReportKind> {
    r.report().ok().and_then(|x| ReportKind::from_code(x.kind))
}

/// `--session`, parsed.
fn parse_session(s: &str) -> Result<B256, Failure> {
    s.parse::<B256>()
        .map_err(|_| input_err(format!("--session {s}: not a 32-byte hex session id")))
}

/// States in which a session waits for a node: its first, or a replacement
/// after the previous one was declared lost.
fn wants_node(state: SessionState) -> bool {
    matches!(state, SessionState::Open | SessionState::NodeLost)
}

/// The session named by `--session`, or else the only session waiting for a node.
fn pick_session(anon: &Client<'_>, named: Option<B256>) -> Result<B256, Failure> {
    if let Some(s) = named {
        return Ok(s);
    }
    let open: Vec<_> = anon
        .list_sessions()
        .map_err(runtime_err)?
        .into_iter()
        .filter(|s| wants_node(s.state))
        .collect();
    match open.as_slice() {
        [one] => Ok(one.session_id),
        [] => Err(input_err(
            "--session: no session is waiting for a node (open or node-lost)",
        )),
        _ => Err(input_err(
            "--session: several sessions wait for a node; name one",
        )),
    }
}

/// What a node brings to every session: where the coordinator is, how to
/// collect evidence, and its measurement.
struct NodeSetup {
    coordinator: String,
    /// GPU evidence to compose in (`--gpu`).
    gpu: Option<Gpu>,
    collector: Box<dyn Collector>,
    grant_timeout: Duration,
}

impl NodeSetup {
    fn new(flags: &NodeFlags) -> Result<Self, Failure> {
        // Local inputs first: a bad flag or file is exit 2 before any network call.
        #[cfg(not(feature = "nvidia"))]
        if flags.gpu == Some(Gpu::Nvidia) {
            return Err(input_err(
                "--gpu nvidia: this node was built without the `nvidia` feature (NVML collector for an H100 in confidential-compute mode); rebuild with `cargo build -p sealroom-node --features nvidia` on the GPU TEE host",
            ));
        }
        let collateral = flags
            .collateral
            .as_ref()
            .map(|p| {
                std::fs::read(p)
                    .map_err(|e| input_err(format!("--collateral {}: {e}", p.display())))
            })
            .transpose()?;
        let measurement = engine_measurement()?;
        Ok(Self {
            coordinator: flags.coordinator.clone(),
            gpu: flags.gpu,
            collector: collector(flags.tee, measurement, collateral)?,
            grant_timeout: Duration::from_secs(flags.timeout_s),
        })
    }
}

/// Collects the H100's attestation report for this node's GPU nonce (derived
/// from its CPU `report_data`) through NVML and composes it in. Confidential
/// compute must be on: the collector refuses otherwise, since GPU evidence
/// from a GPU outside CC mode would prove nothing.
#[cfg(feature = "nvidia")]
fn compose_nvidia_gpu(node: &mut Node) -> Result<(), Failure> {
    let nonce = node.gpu_nonce();
    let got = sealroom_reports::attest::collect::nvidia::collect(0, &nonce)
        .map_err(|e| runtime_err(format!("--gpu nvidia: {e}")))?;
    node.compose_gpu(sealroom_protocol::api::GpuRegistration {
        kind: TeeKind::NvidiaGpu,
        evidence: got.evidence,
        certs: got.certs.iter().map(hex::encode).collect(),
    });
    Ok(())
}

/// Without the `nvidia` feature `NodeSetup::new` refuses `--gpu nvidia`
/// before any network call; this is never reached.
#[cfg(not(feature = "nvidia"))]
fn compose_nvidia_gpu(_: &mut Node) -> Result<(), Failure> {
    Err(input_err(
        "--gpu nvidia: this node was built without the `nvidia` feature",
    ))
}

/// Why one session ended without a completed model.
enum SessionEnd {
    /// The coordinator would not give this node the session (another node
    /// holds it, or the policy refused the evidence): nothing was trusted
    /// to this node.
    NotGiven(Failure),
    /// The node held the session and it ended otherwise than completed.
    Failed(Failure),
}

/// Serves one session; the error decides the exit code.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    let setup = NodeSetup::new(&args.node)?;
    let named = args.session.as_deref().map(parse_session).transpose()?;
    let anon = Client::new(&setup.coordinator, None);
    let session = pick_session(&anon, named)?;
    match serve_session(&setup, session) {
        Ok(_) => Ok(()),
        Err(SessionEnd::NotGiven(f) | SessionEnd::Failed(f)) => Err(f),
    }
}

/// Arguments of `sealroom-node serve` (and so of `sealroom node serve`).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub node: NodeFlags,
    /// Stop after holding this many sessions (default: serve until stopped).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: Option<u32>,
    /// Seconds between looks for a session that waits for a node.
    #[arg(long, default_value_t = 2.0)]
    pub poll_s: f64,
}

/// A session the coordinator would not give this node is tried again only
/// after this long (another node holds it, or the policy refuses this node).
const NOT_GIVEN_BACKOFF: Duration = Duration::from_secs(30);

/// Serves sessions one after another, at most one at a time, each with fresh
/// keys and fresh evidence bound to its manifest, until `--max-sessions`
/// sessions were held (or forever). One line of JSON per session on stdout.
pub fn serve(args: ServeArgs) -> Result<(), Failure> {
    if !(args.poll_s.is_finite() && (0.05..=3600.0).contains(&args.poll_s)) {
        return Err(input_err(format!(
            "--poll-s {}: must be a number of seconds from 0.05 to 3600",
            args.poll_s
        )));
    }
    let setup = NodeSetup::new(&args.node)?;
    let anon = Client::new(&setup.coordinator, None);
    let poll = Duration::from_secs_f64(args.poll_s);
    let mut held = 0u32;
    let mut not_given: std::collections::HashMap<B256, Instant> = Default::default();
    eprintln!(
        "node: serving sessions from {} (at most one at a time{})",
        setup.coordinator,
        args.max_sessions
            .map(|n| format!(", {n} in all"))
            .unwrap_or_default()
    );
    while args.max_sessions.is_none_or(|max| held < max) {
        let waiting = match anon.list_sessions() {
            Ok(list) => list
                .into_iter()
                .filter(|s| wants_node(s.state))
                .map(|s| s.session_id)
                .filter(|id| {
                    not_given
                        .get(id)
                        .is_none_or(|t| t.elapsed() > NOT_GIVEN_BACKOFF)
                })
                .collect::<Vec<_>>(),
            Err(e) => {
                eprintln!("node: coordinator unavailable ({e}); retrying");
                Vec::new()
            }
        };
        for session in waiting {
            let started = Instant::now();
            let (outcome, detail) = match serve_session(&setup, session) {
                Ok(node_key) => {
                    held += 1;
                    ("completed", hex::encode(node_key))
                }
                Err(SessionEnd::NotGiven(f)) => {
                    eprintln!("node: session {session:#x} not taken: {f}");
                    not_given.insert(session, Instant::now());
                    continue;
                }
                Err(SessionEnd::Failed(f)) => {
                    held += 1;
                    ("failed", f.to_string())
                }
            };
            println!(
                "{}",
                serde_json::json!({
                    "session": format!("{session:#x}"),
                    "outcome": outcome,
                    "detail": detail,
                    "seconds": started.elapsed().as_secs_f64(),
                    "sessions_held": held,
                })
            );
            break;
        }
        if args.max_sessions.is_none_or(|max| held < max) {
            std::thread::sleep(poll);
        }
    }
    Ok(())
}

/// What the heartbeat thread learned: why the node must stop, if it must.
#[derive(Default)]
struct Stop {
    reason: std::sync::Mutex<Option<String>>,
}

impl Stop {
    fn set(&self, why: String) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(why);
        }
    }
    fn get(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
}

/// Heartbeats every quarter lease until `done`, recording in `stop` a
/// member's withdrawal (the session shows `aborted`) or this node being
/// declared lost.
fn heartbeat_loop(
    client: &Client<'_>,
    session: B256,
    lease_s: u64,
    done: &std::sync::atomic::AtomicBool,
    stop: &Stop,
) {
    use std::sync::atomic::Ordering;
    // A quarter lease, at most 10 s: the heartbeat also carries a member's
    // withdrawal to a node whose epochs are long.
    let every = Duration::from_millis((lease_s.max(1) * 1000 / 4).clamp(200, 10_000));
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        match client.heartbeat(&session) {
            Ok(l) if l.state == SessionState::Aborted => stop.set(format!(
                "the session was aborted: {}",
                l.abort_reason.unwrap_or_else(|| "no reason given".into())
            )),
            Ok(_) => {}
            Err(ClientError::Api {
                status: 409,
                message,
                ..
            }) if message.starts_with("node-lost") => stop.set(format!(
                "this node was declared lost by the coordinator: {message}"
            )),
            // A coordinator restart or a network blip: keep trying; the lease
            // is renewed at the coordinator's startup.
            Err(e) => eprintln!("node: heartbeat failed: {e}"),
        }
    }
}

/// Serves `session` with fresh keys: register, wait for the grants, run the
/// trusted loader and trainer, upload reports and the sealed model. Returns
/// the node key on completion.
fn serve_session(setup: &NodeSetup, session: B256) -> Result<[u8; 32], SessionEnd> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let not_given = SessionEnd::NotGiven;
    let failed = SessionEnd::Failed;
    let anon = Client::new(&setup.coordinator, None);
    let status = anon
        .status(&session)
        .map_err(|e| not_given(runtime_err(e)))?;
    let manifest = status.manifest;
    let manifest_hash = manifest.validate_and_hash().map_err(|e| {
        not_given(runtime_err(format!(
            "the coordinator's manifest is invalid: {e}"
        )))
    })?;
    // A manifest that requires a backend this build lacks: refuse before
    // registering, so the session stays open for a node that has it.
    sealroom_trainer::ml::Compute::for_training(&manifest.training)
        .map_err(|e| not_given(runtime_err(format!("the manifest's {e}"))))?;
    let mut node = Node::start(manifest_hash, setup.collector.as_ref())
        .map_err(|e| not_given(runtime_err(e)))?;
    match setup.gpu {
        None => {}
        Some(Gpu::Sim) => node.compose_sim_gpu(),
        Some(Gpu::Nvidia) => {
            compose_nvidia_gpu(&mut node).map_err(not_given)?;
        }
    }
    let kind = node.evidence().kind;
    if kind == TeeKind::Sim {
        eprintln!("node: INSECURE SIMULATION — no TEE protects this process; evidence is labelled insecure-simulation");
    }
    eprintln!(
        "node: key {} for session {session:#x}; engine measurement {}",
        hex::encode(node.signing_key()),
        hex::encode(node.measurement())
    );
    let reg = registration(&node);
    // The node's request identity is its report key: the coordinator knows it from registration.
    let client = Client::new(&setup.coordinator, Some(node.request_identity()));
    if let Err(e) = client.register_node(&session, &reg) {
        return Err(not_given(registration_refused(&manifest, &node, e)));
    }
    eprintln!("node: registered; waiting for the parties' grants");
    let lease_s = status.lease_s.unwrap_or(30);
    let done = AtomicBool::new(false);
    let stop = Stop::default();
    std::thread::scope(|scope| {
        let hb_client = Client::new(&setup.coordinator, Some(node.request_identity()));
        let (done_ref, stop_ref) = (&done, &stop);
        scope.spawn(move || heartbeat_loop(&hb_client, session, lease_s, done_ref, stop_ref));
        let result = held_session(
            &client,
            &node,
            &manifest,
            session,
            setup.grant_timeout,
            &stop,
        );
        done.store(true, Ordering::Relaxed);
        result.map(|()| node.signing_key()).map_err(failed)
    })
}

/// The part of a session during which the node holds it (and heartbeats).
fn held_session(
    client: &Client<'_>,
    node: &Node,
    manifest: &Manifest,
    session: B256,
    grant_timeout: Duration,
    stop: &Stop,
) -> Result<(), Failure> {
    wait_for_grants(client, &session, grant_timeout, stop)?;
    let work = client.work(&session).map_err(runtime_err)?;

    let blobs = CoordinatorBlobs { client, session };
    let mut upload_error: Option<String> = None;
    let epochs = manifest.training.epochs;
    let public_metrics = manifest.training.public_metrics;
    let mut on_event = |ev: NodeEvent| {
        let res = match ev {
            NodeEvent::Checked { input, check } => {
                eprintln!("node: {input}: {check} ok");
                Ok(())
            }
            NodeEvent::TrainingStarted { records, epochs } => {
                eprintln!("node: training on {records} records, {epochs} epochs");
                client.progress(
                    &session,
                    &Progress {
                        phase: "training".into(),
                        epoch: Some(0),
                        epochs: Some(epochs),
                        metrics: None,
                    },
                )
            }
            NodeEvent::Epoch(m) => client.progress(
                &session,
                &Progress {
                    phase: "training".into(),
                    epoch: Some(m.epoch),
                    epochs: Some(epochs),
                    metrics: if public_metrics {
                        serde_json::to_value(&m).ok()
                    } else {
                        None
                    },
                },
            ),
            // `opened` goes out at once (it is published before training);
            // `completed` and `aborted` after the sealed model.
            NodeEvent::Report(r) => match kind_of(&r) {
                Some(ReportKind::Opened) => client.report(&session, &upload_of(&r)).map(|_| ()),
                Some(ReportKind::Completed | ReportKind::Aborted) | None => Ok(()),
            },
        };
        if let Err(e) = res {
            // A withdrawal shows first here, at the next epoch's progress:
            // stop at once rather than at the next heartbeat.
            if let ClientError::Api {
                status: 409,
                message,
                ..
            } = &e
            {
                if message.starts_with("session aborted") {
                    stop.set(format!("the session was aborted: {message}"));
                }
            }
            upload_error.get_or_insert(e.to_string());
        }
    };
    let stop_check = || stop.get();
    // The manifest the evidence is bound to is the only one this node runs:
    // a coordinator serving another now gets a signed refusal, not a run.
    let (served_hash, manifest_hash) = (work.manifest.hash(), node.manifest_hash());
    let outcome = if served_hash != manifest_hash {
        node.refuse(
            manifest,
            abort_code::MANIFEST,
            "manifest",
            sealroom_reports::check::Check::ManifestHash,
            format!(
                "the coordinator now serves manifest {served_hash:#x}; this node's evidence is bound to {manifest_hash:#x}"
            ),
        )
    } else {
        node.run(
            SessionInputs {
                manifest: &work.manifest,
                consents: &work.consents,
                grants: &work.grants,
                blobs: &blobs,
                prev_report_hash: work.prev_report_hash,
                stop: &stop_check,
            },
            &mut on_event,
        )
    };
    if let Some(e) = upload_error {
        eprintln!("node: warning: an upload failed during the run: {e}");
    }
    if let Some(sealed) = &outcome.sealed_model {
        client
            .upload_sealed_model(&session, sealed)
            .map_err(runtime_err)?;
    }
    for r in outcome
        .reports
        .iter()
        .filter(|r| kind_of(r) != Some(ReportKind::Opened))
    {
        if let Err(e) = client.report(&session, &upload_of(r)) {
            // A node declared lost has no say any more: its reports are
            // refused and the replacement's count.
            if let Some(why) = stop.get() {
                return Err(runtime_err(format!("{why}; report not accepted: {e}")));
            }
            return Err(runtime_err(e));
        }
    }
    match outcome.abort {
        None => {
            eprintln!("node: completed; inputs wiped; sealed model delivered to the coordinator");
            Ok(())
        }
        Some(a) => Err(Failure::Verification {
            check: format!("{}: {}", a.input, a.check),
            detail: a.detail,
        }),
    }
}

/// The measurement the simulated platform reports: this executable's SHA-256.
fn engine_measurement() -> Result<[u8; 32], Failure> {
    crate::engine_measurement().map_err(runtime_err)
}

/// The registration: keys, evidence, and the measurement the evidence attests.
fn registration(node: &Node) -> NodeRegistration {
    let ev = node.evidence();
    NodeRegistration {
        node_key: node.signing_key(),
        hpke_key: node.hpke_key(),
        kind: ev.kind,
        evidence: ev.evidence.clone(),
        certs: ev.certs.iter().map(|c| hex::encode(&c.0)).collect(),
        collateral: ev.collateral.as_ref().map(|c| hex::encode(&c.0)),
        // What the evidence attests, never a self-computed value: members,
        // the coordinator and the node itself compare the two.
        engine_measurement: hex::encode(node.measurement()),
        gpu: node.gpu().cloned(),
    }
}

/// A refused registration. When the node's own engine check fails too
/// (this build's measurement is not in the manifest's
/// `engine.trainer_measurements`), the failure names the node's own check,
/// `engine: engine.allowlist` (the loader's input and check names), with the
/// coordinator's words beside it: the node does not take the coordinator's
/// refusal as its reason.
fn registration_refused(manifest: &Manifest, node: &Node, e: ClientError) -> Failure {
    let attested = hex::encode(node.measurement());
    match sealroom_reports::node_check::engine_allowed(&manifest.engine, &attested) {
        Err(f) => Failure::Verification {
            check: format!("engine: {}", f.check),
            detail: format!(
                "{}; the coordinator refused the registration too ({e})",
                f.detail
            ),
        },
        Ok(()) => runtime_err(format!("registration refused: {e}")),
    }
}

/// Polls the session until every grant is in (or it is aborted, or the
/// deadline passes).
fn wait_for_grants(
    client: &Client<'_>,
    session: &B256,
    timeout: Duration,
    stop: &Stop,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(why) = stop.get() {
            return Err(runtime_err(format!("stopped before training: {why}")));
        }
        let st = client.status(session).map_err(runtime_err)?;
        match st.state {
            SessionState::KeysGranted => return Ok(()),
            SessionState::Aborted => {
                return Err(runtime_err(format!(
                    "session aborted before training: {}",
                    st.abort_reason.unwrap_or_default()
                )))
            }
            SessionState::NodeLost | SessionState::Open => {
                return Err(runtime_err(
                    "the coordinator no longer counts this node as the session's node (lease lost)",
                ))
            }
            _ if Instant::now() > deadline => {
                return Err(runtime_err("timed out waiting for grants"))
            }
            _ => std::thread::sleep(Duration::from_millis(150)),
        }
    }
}

/// The upload body of a signed report.
fn upload_of(r: &SignedReport) -> ReportUpload {
    ReportUpload {
        report_abi: hex::encode(&r.report_abi),
        signature: hex::encode(r.signature),
    }
}
