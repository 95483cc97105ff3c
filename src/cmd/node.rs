//! `sealroom node run --coordinator URL --tee sim|sev-snp|tdx [--gpu nvidia] [--session ID]`:
//! the TEE node process. It generates its keys in memory, registers with
//! evidence bound to them and the session's manifest, waits for the parties'
//! grants, then runs the trusted loader and trainer and uploads the signed
//! reports and the sealed model. It trusts nothing the coordinator says: the
//! loader re-checks every signature and hash itself.

use std::io::Read;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use sealroom_protocol::api::{Client, NodeRegistration, Progress, ReportUpload, SessionState};
use sealroom_protocol::policy::TeeKind;
use sealroom_trainer::node::{
    engine_measurement, BlobSource, Collector, Node, NodeEvent, SessionInputs, SimCollector,
};

use crate::exit::{input_err, runtime_err, CmdResult, Failure};

/// Arguments of `sealroom node`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Serve one session as a node.
    Run(RunArgs),
}

/// Arguments of `sealroom node run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Coordinator base URL.
    #[arg(long)]
    coordinator: String,
    /// TEE kind to collect evidence from.
    #[arg(long, value_parser = ["sim", "sev-snp", "tdx"])]
    tee: String,
    /// GPU evidence to compose in (only `nvidia`; needs the `nvidia` collector feature).
    #[arg(long, value_parser = ["nvidia"])]
    gpu: Option<String>,
    /// The session to serve (default: the only open session waiting for a node).
    #[arg(long)]
    session: Option<String>,
    /// TDX collateral (JSON from Intel PCS/PCCS) to present with the evidence.
    #[arg(long)]
    collateral: Option<std::path::PathBuf>,
    /// Give up waiting for grants after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_s: u64,
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    match args.action {
        Action::Run(a) => run_node(a),
    }
}

fn collector(
    tee: &str,
    measurement: [u8; 32],
    collateral: Option<Vec<u8>>,
) -> Result<Box<dyn Collector>, Failure> {
    match tee {
        "sim" => Ok(Box::new(SimCollector { measurement })),
        #[cfg(feature = "tee")]
        "sev-snp" | "tdx" => {
            let kind = TeeKind::parse(tee).unwrap_or(TeeKind::Sim);
            Ok(Box::new(sealroom_trainer::node::ConfigfsCollector {
                kind,
                collateral,
            }))
        }
        other => {
            let _ = collateral;
            Err(input_err(format!(
                "--tee {other}: this build has no hardware collector; rebuild with `--features tee` \
                 (configfs-tsm) on the confidential VM, or use --tee sim on a machine without a TEE"
            )))
        }
    }
}

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

fn run_node(args: RunArgs) -> CmdResult {
    if args.gpu.is_some() {
        return Err(input_err(
            "--gpu nvidia: composite GPU evidence needs the NVIDIA collector on an H100 in CC mode; not available in this build",
        ));
    }
    let anon = Client::new(&args.coordinator, None);
    let session = match &args.session {
        Some(s) => s
            .parse::<B256>()
            .map_err(|_| input_err(format!("--session {s}: not a 32-byte hex session id")))?,
        None => {
            let open: Vec<_> = anon
                .list_sessions()
                .map_err(runtime_err)?
                .into_iter()
                .filter(|s| s.state == SessionState::Open)
                .collect();
            match open.as_slice() {
                [one] => one.session_id,
                [] => {
                    return Err(input_err(
                        "--session: no open session is waiting for a node",
                    ))
                }
                _ => return Err(input_err("--session: several open sessions; name one")),
            }
        }
    };
    let status = anon.status(&session).map_err(runtime_err)?;
    let manifest = status.manifest;
    manifest
        .validate()
        .map_err(|e| runtime_err(format!("the coordinator's manifest is invalid: {e}")))?;
    let measurement = engine_measurement().map_err(runtime_err)?;
    let collateral = args
        .collateral
        .as_ref()
        .map(|p| {
            std::fs::read(p).map_err(|e| input_err(format!("--collateral {}: {e}", p.display())))
        })
        .transpose()?;
    let coll = collector(&args.tee, measurement, collateral)?;
    let node = Node::start(manifest.hash(), coll.as_ref()).map_err(runtime_err)?;
    let kind = node.evidence().kind;
    if kind == TeeKind::Sim {
        eprintln!("node: INSECURE SIMULATION — no TEE protects this process; evidence is labelled insecure-simulation");
    }
    eprintln!(
        "node: key {} for session {session:#x}",
        hex::encode(node.signing_key())
    );
    let reg = NodeRegistration {
        node_key: node.signing_key(),
        hpke_key: node.hpke_key(),
        kind,
        evidence: node.evidence().evidence.clone(),
        certs: node
            .evidence()
            .certs
            .iter()
            .map(|c| hex::encode(&c.0))
            .collect(),
        collateral: node
            .evidence()
            .collateral
            .as_ref()
            .map(|c| hex::encode(&c.0)),
        // What the evidence attests, never a self-computed value: members,
        // the coordinator and the node itself compare the two.
        engine_measurement: hex::encode(node.measurement()),
    };
    // The node's request identity is its report key: the coordinator knows it from registration.
    let work = {
        let client = Client::new(&args.coordinator, Some(node.request_identity()));
        client.register_node(&session, &reg).map_err(runtime_err)?;
        eprintln!("node: registered; waiting for the parties' grants");
        let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
        loop {
            let st = client.status(&session).map_err(runtime_err)?;
            match st.state {
                SessionState::KeysGranted => break,
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
        client.work(&session).map_err(runtime_err)?
    };
    let client = Client::new(&args.coordinator, Some(node.request_identity()));
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
            NodeEvent::Report(r) => {
                let kind = r.report().map(|x| x.kind).unwrap_or(0);
                // `opened` goes out at once; `completed` and `aborted` after the sealed model.
                if kind == 1 {
                    client.report(&session, &upload_of(&r)).map(|_| ())
                } else {
                    Ok(())
                }
            }
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
            sealroom_trainer::node::abort_code::MANIFEST,
            "manifest",
            "manifest-hash",
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
        .filter(|r| r.report().map(|x| x.kind != 1).unwrap_or(true))
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

/// The upload body of a signed report.
fn upload_of(r: &sealroom_trainer::node::SignedReport) -> ReportUpload {
    ReportUpload {
        report_abi: hex::encode(&r.report_abi),
        signature: hex::encode(r.signature),
    }
}
