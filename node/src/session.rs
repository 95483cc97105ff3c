//! `sealroom-node run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID]`:
//! one session served by a TEE node. The node generates its keys in memory,
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
}

/// Arguments of `sealroom-node run` (and so of `sealroom node run`).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Coordinator base URL.
    #[arg(long)]
    pub coordinator: String,
    /// TEE kind to collect evidence from.
    #[arg(long, value_enum)]
    pub tee: Tee,
    /// GPU evidence to compose in (only `nvidia`; needs the NVIDIA collector).
    #[arg(long, value_enum)]
    pub gpu: Option<Gpu>,
    /// The session to serve (default: the only open session waiting for a node).
    #[arg(long)]
    pub session: Option<String>,
    /// TDX collateral (JSON from Intel PCS/PCCS) to present with the evidence.
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// Give up waiting for grants after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
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

/// The session named by `--session`, or else the only open session.
fn pick_session(anon: &Client<'_>, named: Option<B256>) -> Result<B256, Failure> {
    if let Some(s) = named {
        return Ok(s);
    }
    let open: Vec<_> = anon
        .list_sessions()
        .map_err(runtime_err)?
        .into_iter()
        .filter(|s| s.state == SessionState::Open)
        .collect();
    match open.as_slice() {
        [one] => Ok(one.session_id),
        [] => Err(input_err(
            "--session: no open session is waiting for a node",
        )),
        _ => Err(input_err("--session: several open sessions; name one")),
    }
}

/// Serves one session; the error decides the exit code.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    // Local inputs first: a bad flag or file is exit 2 before any network call.
    if args.gpu.is_some() {
        return Err(input_err(
            "--gpu nvidia: composite GPU evidence needs the NVIDIA collector on an H100 in CC mode; not available in this build",
        ));
    }
    let collateral = args
        .collateral
        .as_ref()
        .map(|p| {
            std::fs::read(p).map_err(|e| input_err(format!("--collateral {}: {e}", p.display())))
        })
        .transpose()?;
    let measurement = engine_measurement()?;
    let coll = collector(args.tee, measurement, collateral)?;
    let named = args.session.as_deref().map(parse_session).transpose()?;

    let anon = Client::new(&args.coordinator, None);
    let session = pick_session(&anon, named)?;
    let status = anon.status(&session).map_err(runtime_err)?;
    let manifest = status.manifest;
    manifest
        .validate()
        .map_err(|e| runtime_err(format!("the coordinator's manifest is invalid: {e}")))?;
    let node = Node::start(manifest.hash(), coll.as_ref()).map_err(runtime_err)?;
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
    let client = Client::new(&args.coordinator, Some(node.request_identity()));
    if let Err(e) = client.register_node(&session, &reg) {
        return Err(registration_refused(&manifest, &node, e));
    }
    eprintln!("node: registered; waiting for the parties' grants");
    wait_for_grants(&client, &session, Duration::from_secs(args.timeout_s))?;
    let work = client.work(&session).map_err(runtime_err)?;

    let blobs = CoordinatorBlobs {
        client: &client,
        session,
    };
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
            upload_error.get_or_insert(e.to_string());
        }
    };
    // The manifest the evidence is bound to is the only one this node runs:
    // a coordinator serving another now gets a signed refusal, not a run.
    let outcome = if work.manifest.hash() != manifest.hash() {
        node.refuse(
            &manifest,
            abort_code::MANIFEST,
            "manifest",
            sealroom_reports::check::Check::ManifestHash,
            format!(
                "the coordinator now serves manifest {:#x}; this node's evidence is bound to {:#x}",
                work.manifest.hash(),
                manifest.hash()
            ),
        )
    } else {
        node.run(
            SessionInputs {
                manifest: &work.manifest,
                consents: &work.consents,
                grants: &work.grants,
                blobs: &blobs,
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
        client
            .report(&session, &upload_of(r))
            .map_err(runtime_err)?;
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
    match sealroom_reports::node_check::engine_allowed(manifest, &attested) {
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
fn wait_for_grants(client: &Client<'_>, session: &B256, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let st = client.status(session).map_err(runtime_err)?;
        match st.state {
            SessionState::KeysGranted => return Ok(()),
            SessionState::Aborted => {
                return Err(runtime_err(format!(
                    "session aborted before training: {}",
                    st.abort_reason.unwrap_or_default()
                )))
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
