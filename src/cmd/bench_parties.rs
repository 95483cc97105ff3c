//! `sealroom bench parties`, two measurements of scale:
//!
//! - `--n N [--json]` → `{"parties", "wall_s", "per_party_s"}`: N parties with small
//!   synthetic shards join one session on a real coordinator over HTTP
//!   (create, N signed consents, N blob uploads, a sim node's registration,
//!   N grants after each party's own verification), wall time until the
//!   session reaches KeysGranted.
//! - `--counts 125,250,500,1000 [--json]` (without `--scenario`): the same
//!   for each count, with the per-party cost and the growth ratio
//!   t(last) ÷ t(first) beside the linear one (last ÷ first): a ratio above
//!   the linear one means each party's work grows with the number of parties.
//! - `--scenario FILE [--counts 1,2,4,8]`: how a session through the trusted
//!   loader scales with the number of parties holding the same pooled data
//!   (rows dealt round-robin into k shards; ratio against the first count).

use std::path::PathBuf;
use std::time::Instant;

use sealroom_protocol::scenario::{PartySpec, Scenario};
use sealroom_trainer::local::prepare;

use super::bench::median;
use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom bench parties`.
#[derive(clap::Args)]
pub struct Args {
    /// Parties joining one session over HTTP (coordinator scale).
    #[arg(long, conflicts_with_all = ["scenario", "counts"], required_unless_present_any = ["scenario", "counts"])]
    n: Option<usize>,
    /// The scenario whose data is re-dealt (loader scale).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Party counts to measure (the first is the baseline): with
    /// `--scenario`, loader scale (default 1,2,4,8); without, coordinator
    /// scale over HTTP.
    #[arg(long, value_delimiter = ',')]
    counts: Option<Vec<usize>>,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    if let Some(n) = args.n {
        return http_scale(n, args.json);
    }
    let Some(scenario) = args.scenario.clone() else {
        let counts = args.counts.clone().unwrap_or_default();
        return http_growth(&counts, args.json);
    };
    let counts = args.counts.clone().unwrap_or_else(|| vec![1, 2, 4, 8]);
    let base = Scenario::load(&scenario).map_err(input_err)?;
    if counts.is_empty() || counts.contains(&0) || args.runs == 0 {
        return Err(input_err(
            "--counts: positive party counts are needed; --runs: at least 1",
        ));
    }
    // Pool the parties' rows (header from the first party).
    let mut header = None;
    let mut rows: Vec<String> = Vec::new();
    for p in &base.parties {
        let path = base.resolve(&p.dataset);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| input_err(format!("{}: {e}", path.display())))?;
        let mut lines = text.lines();
        let h = lines.next().unwrap_or_default().to_string();
        if header.get_or_insert_with(|| h.clone()) != &h {
            return Err(input_err(format!(
                "{}: header differs from the first party's",
                path.display()
            )));
        }
        rows.extend(lines.filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    let header = header.unwrap_or_default();
    let dir = tempfile::tempdir().map_err(runtime_err)?;
    let mut results = Vec::new();
    let mut baseline = None;
    for &k in &counts {
        if k > rows.len() {
            return Err(input_err(format!(
                "--counts: {k} parties for {} rows",
                rows.len()
            )));
        }
        let mut s = base.clone();
        s.parties = (0..k)
            .map(|i| -> Result<PartySpec, crate::exit::Failure> {
                let path = dir.path().join(format!("k{k}-party{i}.csv"));
                let mut text = header.clone() + "\n";
                for r in rows.iter().skip(i).step_by(k) {
                    text.push_str(r);
                    text.push('\n');
                }
                std::fs::write(&path, text).map_err(runtime_err)?;
                Ok(PartySpec {
                    name: format!("party-{i}"),
                    dataset: path,
                    key: None,
                })
            })
            .collect::<Result<_, _>>()?;
        let prepared = prepare(&s).map_err(runtime_err)?;
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let t = Instant::now();
            let out = prepared.run().map_err(runtime_err)?;
            times.push(t.elapsed().as_secs_f64());
            if let Some(a) = out.abort {
                return Err(runtime_err(format!(
                    "k = {k}: the loader aborted: {}",
                    a.text()
                )));
            }
        }
        let t = median(times);
        let b = *baseline.get_or_insert(t);
        results.push(serde_json::json!({"parties": k, "sealed_s": t, "ratio": t / b}));
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"scenario": base.session.name, "runs": args.runs, "results": results})
        );
    } else {
        println!(
            "bench parties: {} ({} run(s), medians; ratio against {} part{})",
            base.session.name,
            args.runs,
            counts[0],
            if counts[0] == 1 { "y" } else { "ies" }
        );
        for r in &results {
            println!(
                "  {:>3} parties  {:8.3} s  {:6.3}x",
                r["parties"],
                r["sealed_s"].as_f64().unwrap_or(0.0),
                r["ratio"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// N parties join one session on a real coordinator (child process, embedded chain).
fn http_scale(n: usize, json: bool) -> CmdResult {
    let wall = http_wall(n)?;
    let per = wall / n as f64;
    if json {
        println!(
            "{}",
            serde_json::json!({"parties": n, "wall_s": wall, "per_party_s": per})
        );
    } else {
        println!("bench parties: {n} parties consented, uploaded and granted over HTTP in {wall:.2} s ({:.1} ms per party)", per * 1000.0);
    }
    Ok(())
}

/// [`http_wall`] for each count: per-party cost and how it grows.
fn http_growth(counts: &[usize], json: bool) -> CmdResult {
    if counts.len() < 2 || counts.iter().any(|&k| k == 0 || k > 100_000) {
        return Err(input_err(
            "--counts: at least two party counts of 1..=100000 (e.g. 125,250,500,1000)",
        ));
    }
    let mut rows = Vec::new();
    for &k in counts {
        let wall = http_wall(k)?;
        rows.push((k, wall));
        if !json {
            println!(
                "  {k:>6} parties  {wall:8.2} s  {:7.2} ms per party",
                wall * 1000.0 / k as f64
            );
        }
    }
    let (first_n, first_t) = rows[0];
    let (last_n, last_t) = rows[rows.len() - 1];
    let growth = last_t / first_t;
    let linear = last_n as f64 / first_n as f64;
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(k, w)| {
                serde_json::json!({"parties": k, "wall_s": w, "per_party_s": w / *k as f64,
                    "ratio": w / first_t, "linear_ratio": *k as f64 / first_n as f64})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"counts": rows, "growth_ratio": growth, "linear_ratio": linear, "per_party_growth": growth / linear})
        );
    } else {
        println!(
            "bench parties: t({last_n}) ÷ t({first_n}) = {growth:.2} (linear would be {linear:.2}; per-party cost grew {:.2}×)",
            growth / linear
        );
    }
    Ok(())
}

/// Wall seconds for `n` parties to consent, upload and grant over HTTP.
fn http_wall(n: usize) -> Result<f64, crate::exit::Failure> {
    use sealroom_protocol::api::{Client, NodeRegistration, SessionState};
    use sealroom_protocol::dataset::commit_stream;
    use sealroom_protocol::identity::Identity;
    use sealroom_protocol::manifest::{Consent, ConsentAction, Grant, Manifest};
    use sealroom_protocol::stream::DataKey;
    use sealroom_trainer::node::{Node, SimCollector};

    if n == 0 || n > 100_000 {
        return Err(input_err("--n: 1..=100000 parties"));
    }
    // The breast-cancer scenario supplies schema, model and policy; each
    // party gets its own shard of 3 rows of its data.
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/breast-cancer-3-hospitals.toml");
    let mut s = Scenario::load(&template).map_err(input_err)?;
    let text = std::fs::read_to_string(s.resolve(&s.parties[0].dataset)).map_err(runtime_err)?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    s.owner.validation = None;
    s.training.validation_split = Some(0.2);
    s.parties = (0..n)
        .map(|i| PartySpec {
            name: format!("party-{i:05}"),
            dataset: PathBuf::new(),
            key: None,
        })
        .collect();
    let mut members = Vec::with_capacity(n);
    for i in 0..n {
        // Rows i, i / L and i / L² (mod L, the row count): no two parties
        // commit the same records, which a manifest refuses.
        let mut shard = header.clone() + "\n";
        let mut digits = i;
        for _ in 0..3 {
            shard.push_str(rows[digits % rows.len()]);
            shard.push('\n');
            digits /= rows.len();
        }
        let key = DataKey::generate().map_err(runtime_err)?;
        let out =
            commit_stream(shard.as_bytes(), &key, 4096, Vec::new(), |_| {}).map_err(runtime_err)?;
        members.push((
            Identity::generate().map_err(runtime_err)?,
            key,
            out.commitment,
            out.blob,
        ));
    }
    let owner = Identity::generate().map_err(runtime_err)?;
    let mut sid = [0u8; 32];
    getrandom::fill(&mut sid).map_err(runtime_err)?;
    let parties = members
        .iter()
        .map(|(id, _, c, _)| (id.public(), c.clone()))
        .collect();
    let manifest = Manifest::from_scenario(
        &s,
        alloy_primitives::B256::from(sid),
        0,
        parties,
        owner.public(),
        None,
    )
    .map_err(runtime_err)?;
    let mh = manifest.hash();
    let session = manifest.session_id;

    let dir = tempfile::tempdir().map_err(runtime_err)?;
    let (mut coordinator, url) =
        sealroom_runner::spawn_coordinator(dir.path(), "embedded", &[], None)
            .map_err(runtime_err)?;
    let t = Instant::now();
    let owner_client = Client::new(&url, Some(&owner));
    owner_client
        .create_session(&manifest)
        .map_err(runtime_err)?;
    owner_client
        .consent(&session, &Consent::sign(&owner, ConsentAction::Consent, mh))
        .map_err(runtime_err)?;
    let names: Vec<String> = manifest.parties.iter().map(|p| p.name.clone()).collect();
    // Two client threads: requests overlap the coordinator's fsyncs.
    let work = |range: std::ops::Range<usize>,
                f: &(dyn Fn(usize) -> Result<(), String> + Sync)|
     -> Result<(), String> {
        let mid = range.start + (range.end - range.start) / 2;
        let (lo, hi) = (range.start..mid, mid..range.end);
        std::thread::scope(|sc| {
            let a = sc.spawn(move || lo.clone().try_for_each(f));
            let b = sc.spawn(move || hi.clone().try_for_each(f));
            a.join().map_err(|_| "thread panicked".to_string())??;
            b.join().map_err(|_| "thread panicked".to_string())?
        })
    };
    work(0..n, &|i| {
        let (id, _, _, blob) = &members[i];
        let c = Client::new(&url, Some(id));
        c.consent(&session, &Consent::sign(id, ConsentAction::Consent, mh))
            .map_err(|e| e.to_string())?;
        c.upload_blob(&session, &names[i], blob)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .map_err(runtime_err)?;
    let node = Node::start(
        mh,
        &SimCollector {
            measurement: [7; 32],
        },
    )
    .map_err(runtime_err)?;
    let reg = NodeRegistration {
        node_key: node.signing_key(),
        hpke_key: node.hpke_key(),
        kind: node.evidence().kind,
        evidence: node.evidence().evidence.clone(),
        certs: Vec::new(),
        collateral: None,
        engine_measurement: hex::encode([7u8; 32]),
        gpu: None,
    };
    Client::new(&url, Some(node.request_identity()))
        .register_node(&session, &reg)
        .map_err(runtime_err)?;
    let at = crate::flows::now();
    work(0..n, &|i| {
        let (id, key, c, _) = &members[i];
        // Each party checks its own view (header, its entry and proof) and
        // verifies the node itself against it before granting.
        let me = id.public().ed25519;
        let client = Client::new(&url, Some(id));
        let view = client.member_view(&session).map_err(|e| e.to_string())?;
        let vh = view
            .manifest
            .check_for(&me)
            .map_err(|e| format!("{}: {e}", names[i]))?;
        if vh != mh || view.manifest_hash != mh {
            return Err(format!("{}: the served manifest changed", names[i]));
        }
        let served = view
            .node
            .as_ref()
            .ok_or_else(|| format!("{}: no node served", names[i]))?;
        let v =
            sealroom_reports::node_check::verify_registration(&view.manifest.header, served, at);
        if !v.verified {
            return Err(format!("{}: node rejected: {:?}", names[i], v.failure));
        }
        let g = Grant::create(
            id,
            &session,
            &mh,
            &names[i],
            c,
            served.node_key,
            served.hpke_key,
            sealroom_reports::binding::evidence_hash(&served.evidence),
            key,
        )
        .map_err(|e| e.to_string())?;
        client
            .grant(&session, &g)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .map_err(runtime_err)?;
    let wall = t.elapsed().as_secs_f64();
    let state = Client::new(&url, None)
        .status(&session)
        .map_err(runtime_err)?
        .state;
    coordinator.terminate();
    if state != SessionState::KeysGranted {
        return Err(runtime_err(format!(
            "session ended in {} instead of keys-granted",
            state.as_str()
        )));
    }
    Ok(wall)
}
