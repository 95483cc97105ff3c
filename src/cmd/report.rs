//! `sealroom report (verify|bundle|prove|check-proof)`: the regulator's tools.
//! `verify` depends only on the `reports` crate (plus the chain reader to
//! fetch what landed on chain).

use std::path::PathBuf;

use alloy_primitives::{Address, B256};
use sealroom_protocol::fsutil::write_atomic;
use sealroom_protocol::manifest::input_kind;
use sealroom_protocol::merkle::{input_leaf, process_proof};
use sealroom_protocol::policy::Policy;
use sealroom_reports::verifier::{verify_bundle_from, Bundle, Provenance, Verification};

use crate::exit::{input_err, CmdResult, Failure};
use sealroom_contracts::bundle::{read_from_chain, ReadError, Source};

/// Arguments of `sealroom report`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// Where a session's reports come from.
#[derive(clap::Args)]
struct From {
    /// Session id (with --rpc or --chain-dir).
    #[arg(long)]
    session: Option<String>,
    /// JSON-RPC endpoint (or preset name opbnb-testnet, opbnb-mainnet, anvil).
    #[arg(long, conflicts_with = "chain_dir")]
    rpc: Option<String>,
    /// State directory of an embedded development chain (a `sealroom run` output's `chain/`).
    #[arg(long)]
    chain_dir: Option<PathBuf>,
    /// Registry contract address.
    #[arg(long)]
    contract: Option<String>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Verify a session's reports: from an offline bundle, or from the chain alone.
    Verify {
        /// An offline bundle (from `report bundle` or `sealroom run`).
        bundle: Option<PathBuf>,
        #[command(flatten)]
        from: From,
        /// Apply this policy instead of the one the parties signed in the manifest.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Verify the evidence at this instant (RFC 3339) instead of when the node presented it.
        #[arg(long)]
        at: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Also write one self-contained HTML page that re-runs this
        /// verification in the browser (the verifier as WebAssembly,
        /// offline, no network request), for auditors without a terminal.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
    },
    /// Write a self-contained offline bundle of a session read from the chain.
    Bundle {
        #[command(flatten)]
        from: From,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// A party's OpenZeppelin inclusion proof against the session's inputs root.
    Prove {
        /// The bundle.
        #[arg(long)]
        bundle: PathBuf,
        /// Party name (or `OWNER/validation`).
        #[arg(long)]
        party: String,
        /// Write the proof here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check an inclusion proof (from `report prove`) against its root, or a given one.
    CheckProof {
        /// The proof file.
        proof: PathBuf,
        /// Expected inputs root (default: the one in the proof file).
        #[arg(long)]
        root: Option<String>,
    },
}

/// Reads a bundle file strictly (unknown fields, unknown format tags, a
/// malformed `chain` object: exit 2 naming the file and the field).
fn load_bundle(path: &PathBuf) -> Result<Bundle, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| input_err(format!("{}: {e}", path.display())))?;
    Bundle::from_json(&text)
        .map_err(|e| input_err(format!("{}: not a sealroom bundle: {e}", path.display())))
}

fn from_chain(from: &From) -> Result<(Bundle, Provenance), Failure> {
    let s = from
        .session
        .as_ref()
        .ok_or_else(|| input_err("--session is required without a BUNDLE"))?;
    let session = s
        .parse::<B256>()
        .map_err(|_| input_err(format!("--session {s}: not a 32-byte hex id")))?;
    let c = from
        .contract
        .as_ref()
        .ok_or_else(|| input_err("--contract is required without a BUNDLE"))?;
    let contract = c
        .parse::<Address>()
        .map_err(|_| input_err(format!("--contract {c}: not an address")))?;
    let source = match (&from.rpc, &from.chain_dir) {
        (Some(url), None) => Source::Rpc(url),
        (None, Some(dir)) => Source::Embedded(dir),
        _ => return Err(input_err("give a BUNDLE, or --rpc URL or --chain-dir DIR")),
    };
    read_from_chain(source, contract, session).map_err(|e| match e {
        ReadError::Access(m) => input_err(m),
        ReadError::Inconsistent { check, detail } => Failure::Verification { check, detail },
    })
}

/// Prints a verification and turns it into the exit status.
pub fn report_verification(v: &Verification, json: bool) -> Result<(), Failure> {
    if json {
        println!("{}", serde_json::to_string(v).unwrap_or_default());
    } else {
        if let Some(a) = &v.summary {
            print_audit(a);
        }
        println!(
            "policy: {}",
            if v.policy_source == "manifest" {
                "the policy the parties signed in the manifest"
            } else {
                &v.policy_source
            }
        );
        let offline = v.source != "chain";
        println!(
            "source: {}",
            if offline {
                "offline bundle: what only the chain can confirm is listed under \"not checked offline\""
            } else {
                "read from the chain just now"
            }
        );
        // The name is derived from the chain's kind and id, never the bundle's label.
        match &v.chain {
            Some(c) => println!(
                "chain: {} (chain id {}), registry {}{}",
                c.name,
                c.chain_id,
                c.contract.as_deref().unwrap_or("(none given)"),
                if c.checked {
                    ""
                } else {
                    ", as the bundle claims: not checked offline"
                }
            ),
            None => println!("chain: none named in the bundle"),
        }
        if v.insecure_simulation {
            println!("WARNING: insecure-simulation — this session ran without a TEE");
        }
        print_attempts(&v.attempts);
        print_checks(&v.checks);
        if !v.not_checked.is_empty() {
            println!("not checked offline ({} field(s)):", v.not_checked.len());
            for n in &v.not_checked {
                let why = n
                    .reason
                    .strip_prefix("not checked offline: ")
                    .unwrap_or(&n.reason);
                match &n.value {
                    Some(val) => println!("  [ -- ] {:<24} {val} — {why}", n.field),
                    None => println!("  [ -- ] {:<24} {why}", n.field),
                }
            }
        }
        println!(
            "{}",
            match (v.verified, v.not_checked.is_empty()) {
                (true, true) => format!("VERIFIED ({})", v.outcome),
                (true, false) => format!(
                    "VERIFIED ({}) offline; {} field(s) not checked offline (above)",
                    v.outcome,
                    v.not_checked.len()
                ),
                (false, _) => "NOT VERIFIED".to_string(),
            }
        );
    }
    match &v.failure {
        None => Ok(()),
        Some(f) => Err(Failure::Verification {
            check: f.check.clone(),
            detail: f.detail.clone(),
        }),
    }
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    match args.action {
        Action::Verify {
            bundle,
            from,
            policy,
            at,
            json,
            html,
        } => {
            crate::exit::distinct_files(&[
                ("BUNDLE", bundle.as_deref()),
                ("--policy", policy.as_deref()),
                ("--html", html.as_deref()),
            ])?;
            let (b, provenance) = match &bundle {
                Some(p) => (load_bundle(p)?, Provenance::Offline),
                None => from_chain(&from)?,
            };
            let pol = match &policy {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))?;
                    Some((
                        Policy::from_toml(&text)
                            .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))?,
                        p.display().to_string(),
                    ))
                }
                None => None,
            };
            let at = at
                .as_deref()
                .map(|s| {
                    sealroom_reports::attest::parse_rfc3339(s)
                        .map_err(|e| input_err(format!("--at {s}: {e}")))
                })
                .transpose()?;
            let v = verify_bundle_from(
                &b,
                pol.as_ref().map(|(p, s)| (p, s.as_str())),
                at,
                &provenance,
            );
            if let Some(out) = &html {
                // The page carries the bundle's exact text (a file's bytes,
                // or the bundle read from the chain), and verifies it itself.
                let (text, label) = match &bundle {
                    Some(p) => (
                        std::fs::read_to_string(p)
                            .map_err(|e| input_err(format!("{}: {e}", p.display())))?,
                        p.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    None => (
                        serde_json::to_string_pretty(&b).map_err(crate::exit::runtime_err)?,
                        "read from the chain".to_string(),
                    ),
                };
                let params = sealroom_web::page::PageParams {
                    at: at.unwrap_or(0),
                    policy: match &policy {
                        Some(p) => std::fs::read_to_string(p)
                            .map_err(|e| input_err(format!("--policy {}: {e}", p.display())))?,
                        None => String::new(),
                    },
                    policy_name: pol.as_ref().map(|(_, s)| s.clone()).unwrap_or_default(),
                    label,
                };
                let page = sealroom_web::page::render(&text, &params);
                write_atomic(out, page.as_bytes(), false)
                    .map_err(|e| input_err(format!("--html {}: {e}", out.display())))?;
                if !json {
                    eprintln!(
                        "wrote {} ({} bytes): open it in a browser to re-verify offline",
                        out.display(),
                        page.len()
                    );
                }
            }
            report_verification(&v, json)
        }
        Action::Bundle { from, out } => {
            let (b, _) = from_chain(&from)?;
            let text = serde_json::to_string_pretty(&b).map_err(crate::exit::runtime_err)? + "\n";
            write_atomic(&out, text.as_bytes(), false)
                .map_err(|e| input_err(format!("--out {}: {e}", out.display())))?;
            println!("wrote {} ({} reports)", out.display(), b.reports.len());
            Ok(())
        }
        Action::Prove { bundle, party, out } => {
            crate::exit::distinct_files(&[("--bundle", Some(&bundle)), ("--out", out.as_deref())])?;
            let b = load_bundle(&bundle)?;
            let proof = prove(&b, &party)?;
            let text = serde_json::to_string_pretty(&proof).unwrap_or_default() + "\n";
            match out {
                Some(p) => write_atomic(&p, text.as_bytes(), false)
                    .map_err(|e| input_err(format!("--out {}: {e}", p.display())))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Action::CheckProof { proof, root } => {
            let text = std::fs::read_to_string(&proof)
                .map_err(|e| input_err(format!("{}: {e}", proof.display())))?;
            let p: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| input_err(format!("{}: {e}", proof.display())))?;
            check_proof(&p, root.as_deref()).map_err(|f| match f {
                // Input mistakes name the file (or --root), not just "proof".
                Failure::Input(d) if d.to_string().starts_with("--root") => Failure::Input(d),
                Failure::Input(d) => input_err(format!("{}: {d}", proof.display())),
                other => other,
            })
        }
    }
}

/// The inclusion proof of `party`'s dataset (or the owner's validation set) in the session's inputs tree.
pub fn prove(b: &Bundle, party: &str) -> Result<serde_json::Value, Failure> {
    sealroom_reports::verifier::inclusion_proof(b, party).map_err(input_err)
}

/// Verifies a proof object; exit 1 naming `inclusion-proof` when it fails.
pub fn check_proof(p: &serde_json::Value, root: Option<&str>) -> Result<(), Failure> {
    let bad = |m: &str| input_err(format!("proof: {m}"));
    // The flag first: a mistake in it is named before the file's.
    let given_root = root
        .map(|r| {
            r.parse::<B256>()
                .map_err(|_| input_err(format!("--root {r}: not a 32-byte hex hash")))
        })
        .transpose()?;
    let value = p
        .get("value")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("missing `value`"))?;
    let kind: u8 = value
        .first()
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad kind"))?;
    let name = value
        .get(1)
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("bad name"))?;
    let digest = value
        .get(2)
        .and_then(|v| v.as_str())
        .and_then(sealroom_protocol::hash::parse_hex_array::<32>)
        .ok_or_else(|| bad("bad digest"))?;
    let proof: Vec<B256> = p
        .get("proof")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("missing `proof`"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| s.parse::<B256>().ok())
                .ok_or_else(|| bad("bad proof entry"))
        })
        .collect::<Result<_, _>>()?;
    let root = match given_root {
        Some(r) => r,
        None => p
            .get("inputs_root")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no `inputs_root` (or give --root)"))?
            .parse::<B256>()
            .map_err(|_| bad("`inputs_root`: not a 32-byte hex hash"))?,
    };
    let computed = process_proof(input_leaf(kind, name, &digest).hash, &proof);
    if computed == root {
        let what = match kind {
            input_kind::DATASET => "dataset",
            input_kind::VALIDATION => "validation set",
            input_kind::ENGINE => "engine",
            _ => "input",
        };
        println!("inclusion proof valid: {what} `{name}` is an input of the session with inputs root {root:#x}");
        Ok(())
    } else {
        Err(Failure::Verification {
            check: "inclusion-proof".into(),
            detail: format!("proof leads to {computed:#x}, not {root:#x}"),
        })
    }
}

/// Prints the node attempts (one unless a node was lost and replaced):
/// node key, TEE kind, the `opened` report and its transaction, and what
/// became of it, in plain language.
pub fn print_attempts(attempts: &[sealroom_reports::verifier::AttemptSummary]) {
    match attempts.len() {
        0 => return,
        1 => println!("node attempts: 1"),
        n => println!(
            "node attempts: {n} (a node was lost and replaced by a fresh node; every attempt's evidence is checked)"
        ),
    }
    for a in attempts {
        let kind = a.tee_kind.map(|k| k.as_str()).unwrap_or("no evidence");
        println!(
            "  attempt {}: node {}… ({kind}{}{})",
            a.number,
            &a.node_key[..a.node_key.len().min(16)],
            if a.insecure_simulation {
                ", insecure-simulation"
            } else {
                ""
            },
            if a.evidence_verified {
                ", evidence verified"
            } else {
                ", evidence NOT verified"
            }
        );
        match &a.opened_report_hash {
            Some(h) => println!(
                "    opened {h:#x} in tx {}",
                a.opened_tx_hash.as_deref().unwrap_or("(none given)")
            ),
            None => println!("    no opened report"),
        }
        println!("    {}: {}", a.outcome.as_str(), a.explanation);
    }
}

/// Prints checks one per line, `[ ok ]` or `[FAIL]`.
pub fn print_checks(checks: &[sealroom_reports::verifier::Check]) {
    for c in checks {
        println!(
            "  [{}] {:<18} {}",
            if c.ok { " ok " } else { "FAIL" },
            c.check,
            c.detail
        );
    }
}

/// The auditor's part of `report verify`: plain-language summary, then the
/// facts it rests on (session, inputs, model, policy, measurements, reports
/// with UTC times and transactions), before the checklist.
fn print_audit(a: &sealroom_reports::audit::AuditSummary) {
    println!("SUMMARY");
    for s in &a.plain {
        println!("  - {s}");
    }
    println!();
    println!(
        "session   {} ({:#x}), created {}",
        a.session.name, a.session.id, a.session.created_utc
    );
    if !a.session.description.is_empty() {
        println!("          {}", a.session.description);
    }
    println!(
        "manifest  {:#x} (the hash every member signed)",
        a.session.manifest_hash
    );
    println!("inputs    (name, dataset Merkle root, records)");
    for i in &a.inputs {
        println!(
            "  {:<28} {:#x} {:>8}{}",
            i.name,
            i.dataset_root,
            i.record_count,
            if i.role == "owner" {
                "  (owner's validation set)"
            } else {
                ""
            }
        );
    }
    let m = &a.model;
    println!(
        "model     {}{}, {} epochs, batch {}, {} lr {}, seed {}; {} features, label `{}` ({})",
        m["kind"].as_str().unwrap_or("?"),
        m["hidden"]
            .as_array()
            .filter(|h| !h.is_empty())
            .map(|h| format!(
                " hidden {}",
                h.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            ))
            .unwrap_or_default(),
        m["epochs"],
        m["batch_size"],
        m["optimizer"].as_str().unwrap_or("?"),
        m["learning_rate"],
        m["seed"],
        m["features"],
        m["label"].as_str().unwrap_or("?"),
        if m["task"] == "regression" {
            "a number: regression".to_string()
        } else {
            format!("{} classes", m["label_classes"])
        },
    );
    println!(
        "policy    {}",
        sealroom_reports::audit::policy_words(&a.policy)
    );
    for x in &a.measurements {
        println!(
            "node #{:<3} {} measurement {} — {}",
            x.attempt,
            x.tee_kind
                .map(|k| k.to_string())
                .unwrap_or_else(|| "?".into()),
            x.measurement.as_deref().unwrap_or("(not verified)"),
            if x.pinned {
                "pinned by the policy".to_string()
            } else if x.pinned_values.is_empty() {
                "NOT pinned: the policy pins no measurement for this kind".to_string()
            } else {
                format!("NOT among the pinned {}", x.pinned_values.join(", "))
            }
        );
    }
    println!("reports");
    for r in &a.reports {
        println!(
            "  {:<10} {} signed {} by node {}",
            r.kind,
            r.report_hash
                .map(|h| format!("{h:#x}"))
                .unwrap_or_else(|| "(undecodable)".into()),
            r.signed_utc.as_deref().unwrap_or("?"),
            r.node_key
                .as_deref()
                .map(|k| &k[..k.len().min(16)])
                .unwrap_or("?"),
        );
        println!(
            "             tx {} block {}{}",
            r.tx_hash.as_deref().unwrap_or("(none)"),
            r.block.map(|b| b.to_string()).unwrap_or_else(|| "?".into()),
            if r.tx_checked {
                " (read from the chain)"
            } else {
                " (as the bundle claims: not checked offline)"
            }
        );
    }
    println!();
}
