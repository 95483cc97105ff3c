//! The coordinator is the adversary (docs/security.md, threat table).
//!
//! A real coordinator (axum + SQLite + blob store, in-process) sits behind a
//! proxy that can rewrite any HTTP response between any two steps of a
//! session; its database and blob store are also edited on disk between
//! restarts. Members act through the member library (`sealroom-member`, the
//! code the CLI and the TUI run) or through the real `sealroom` binary; the
//! node is the real `sealroom node run` process. Table-driven rows walk the
//! steps × the fields the coordinator can change and assert four invariants:
//!
//! 1. no member grants a key to a node that is not bound to the manifest it
//!    consented to or that fails its own verification;
//! 2. the node decrypts nothing unless every input matches the consented
//!    manifest (it aborts with a pre-decryption check);
//! 3. the owner accepts no model but the one a verified `completed` report names;
//! 4. the verifier rejects every altered bundle (or lists the field as not
//!    checked offline).
//!
//! Every refusal names its check.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_primitives::{keccak256, B256};
use sealroom_coordinator::{Background, ChainSpec, Config};
use sealroom_member::datakey::SelfSealedDataKey;
use sealroom_member::{ChainReportHashes, Member, MemberError, RecordStore};
use sealroom_protocol::api::{Client, NodeRegistration, SessionState, SessionStatus};
use sealroom_protocol::dataset::{commit_stream, DatasetCommitment};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{
    engine_spec_hash, party_digest, ConsentAction, Grant, Manifest, PartyEntry, PartyList,
};
use sealroom_protocol::merkle::{leaf_hash, process_proof, uint_word};
use sealroom_protocol::policy::TeeKind;
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::stream::{DataKey, DEFAULT_SEGMENT_SIZE};
use sealroom_reports::attest::simulate::simulate_gpu_at;
use sealroom_reports::attest::simulate::{sim_default_measurement, simulate};
use sealroom_reports::binding::{evidence_hash, expected_report_data, gpu_nonce_for};
use sealroom_reports::report::IntegrityReport;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sealroom");

// ---------------------------------------------------------------------------
// The tampering proxy: forwards every request to the real coordinator and
// lets a test rewrite the response.

/// A response on its way back to the caller.
struct Resp {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

type Tamper = Arc<dyn Fn(&str, &str, &mut Resp) + Send + Sync>;

struct Proxy {
    url: String,
    tamper: Arc<Mutex<Option<Tamper>>>,
    upstream: Arc<Mutex<String>>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let tamper: Arc<Mutex<Option<Tamper>>> = Arc::new(Mutex::new(None));
        let up = Arc::new(Mutex::new(upstream.to_string()));
        let (t, u) = (Arc::clone(&tamper), Arc::clone(&up));
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (t, u) = (Arc::clone(&t), Arc::clone(&u));
                std::thread::spawn(move || {
                    let _ = forward(s, &t, &u);
                });
            }
        });
        Self {
            url,
            tamper,
            upstream: up,
        }
    }

    fn set(&self, f: impl Fn(&str, &str, &mut Resp) + Send + Sync + 'static) {
        *self.tamper.lock().unwrap() = Some(Arc::new(f));
    }

    fn clear(&self) {
        *self.tamper.lock().unwrap() = None;
    }

    fn retarget(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_string();
    }
}

fn forward(
    s: TcpStream,
    tamper: &Mutex<Option<Tamper>>,
    upstream: &Mutex<String>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(s.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent();
    let url = format!("{}{path}", upstream.lock().unwrap());
    let pass: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-sealroom-") || k == "content-type" || k == "accept")
        .cloned()
        .collect();
    let result = match method.as_str() {
        "GET" => {
            let mut b = agent.get(&url);
            for (k, v) in &pass {
                b = b.header(k, v);
            }
            b.call()
        }
        m => {
            let mut b = match m {
                "PUT" => agent.put(&url),
                _ => agent.post(&url),
            };
            for (k, v) in &pass {
                b = b.header(k, v);
            }
            b.send(&body[..])
        }
    };
    let mut resp = match result {
        Ok(mut up) => Resp {
            status: up.status().as_u16(),
            content_type: up
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string(),
            body: up
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .unwrap_or_default(),
        },
        Err(e) => Resp {
            status: 502,
            content_type: "text/plain".into(),
            body: e.to_string().into_bytes(),
        },
    };
    let t = tamper.lock().unwrap().clone();
    if let Some(t) = t {
        t(&method, &path, &mut resp);
    }
    let mut w = s;
    write!(
        w,
        "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        resp.status,
        resp.content_type,
        resp.body.len()
    )?;
    w.write_all(&resp.body)?;
    w.flush()
}

/// Rewrites a JSON response body.
fn json_edit(resp: &mut Resp, f: impl FnOnce(&mut Value)) {
    if let Ok(mut v) = serde_json::from_slice::<Value>(&resp.body) {
        f(&mut v);
        resp.body = serde_json::to_vec(&v).unwrap();
    }
}

/// Rewrites the manifest in a status or work body the way a careful
/// adversary would: edited, its spec hash recomputed, and (for status) the
/// claimed manifest hash updated to match.
fn rewrite_manifest(v: &mut Value, edit: &dyn Fn(&mut Manifest), update_hash: bool) {
    if v["manifest"].get("header").is_some() {
        // A member's view: the same edit on its header (the party list
        // commitment kept), the claimed hash updated to the new header's.
        // The member's own entry stands in for the list; an edited entry
        // gets the root its old proof path now leads to, as a careful
        // adversary holding the whole list would serve.
        let mut head = v["manifest"]["header"].clone();
        let mut list: PartyList = serde_json::from_value(head["parties"].take()).unwrap();
        let mut entry: Option<PartyEntry> = v["manifest"]
            .get("entry")
            .map(|e| serde_json::from_value(e.clone()).unwrap());
        head["parties"] =
            serde_json::to_value(entry.iter().map(|e| &e.party).collect::<Vec<_>>()).unwrap();
        let mut m: Manifest = serde_json::from_value(head).unwrap();
        edit(&mut m);
        m.engine.spec_hash = engine_spec_hash(&m.schema, &m.model, &m.training);
        if let Some(e) = &mut entry {
            e.party = m.parties[0].clone();
            let leaf = leaf_hash(&uint_word(e.index), &party_digest(&e.party));
            list.root = process_proof(leaf, &e.proof);
            v["manifest"]["entry"] = serde_json::to_value(&*e).unwrap();
        }
        let header = m.header_with(&list);
        if update_hash {
            v["manifest_hash"] = serde_json::to_value(header.hash()).unwrap();
        }
        v["manifest"]["header"] = serde_json::to_value(&header).unwrap();
        return;
    }
    let mut m: Manifest = serde_json::from_value(v["manifest"].clone()).unwrap();
    edit(&mut m);
    m.engine.spec_hash = engine_spec_hash(&m.schema, &m.model, &m.training);
    if update_hash && v.get("manifest_hash").is_some() {
        v["manifest_hash"] = serde_json::to_value(m.hash()).unwrap();
    }
    v["manifest"] = serde_json::to_value(&m).unwrap();
}

// ---------------------------------------------------------------------------
// A consortium: the breast-cancer scenario's members with real commitments.

struct Who {
    name: String,
    id: Identity,
    key_file: PathBuf,
    commitment: DatasetCommitment,
    blob: PathBuf,
    datakey: PathBuf,
    state: PathBuf,
}

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
    coordinator: Option<Background>,
    proxy: Proxy,
    scenario: Scenario,
    parties: Vec<Who>,
    owner: Who,
}

fn commit_member(dir: &Path, name: &str, csv: &Path) -> Who {
    let id = Identity::generate().unwrap();
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let key_file = d.join("identity.json");
    id.save(&key_file).unwrap();
    let key = DataKey::generate().unwrap();
    let out = commit_stream(
        std::fs::File::open(csv).unwrap(),
        &key,
        DEFAULT_SEGMENT_SIZE,
        Vec::new(),
        |_| {},
    )
    .unwrap();
    let blob = d.join("dataset.sealed");
    std::fs::write(&blob, &out.blob).unwrap();
    let datakey = d.join("dataset.datakey");
    let sealed = SelfSealedDataKey::seal(&id, out.commitment.digest(), &key).unwrap();
    std::fs::write(&datakey, serde_json::to_vec(&sealed).unwrap()).unwrap();
    Who {
        name: name.to_string(),
        id,
        key_file,
        commitment: out.commitment,
        blob,
        datakey,
        state: d.join("state"),
    }
}

fn coordinator_config(data: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data: data.to_path_buf(),
        chain: ChainSpec::Embedded(data.join("chain")),
        chain_key: None,
        confirmations: None,
        contract: None,
        lease_s: sealroom_coordinator::service::DEFAULT_LEASE_S,
    }
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let scenario = Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/breast-cancer-3-hospitals.toml"),
        )
        .unwrap();
        let parties = scenario
            .parties
            .iter()
            .map(|p| commit_member(&dir, &p.name, &scenario.resolve(&p.dataset)))
            .collect();
        let validation = scenario.owner.validation.clone().unwrap();
        let owner = commit_member(&dir, "owner", &scenario.resolve(&validation));
        let data = dir.join("coordinator");
        let coordinator = Background::start(coordinator_config(&data)).unwrap();
        let proxy = Proxy::start(&coordinator.url());
        Self {
            _dir: tmp,
            dir,
            data,
            coordinator: Some(coordinator),
            proxy,
            scenario,
            parties,
            owner,
        }
    }

    fn upstream(&self) -> String {
        self.coordinator.as_ref().unwrap().url()
    }

    /// Stops the coordinator, lets `edit` change its stored state, restarts it.
    fn restart_with(&mut self, edit: impl FnOnce(&Path)) {
        self.coordinator.take().unwrap().stop().unwrap();
        edit(&self.data);
        let c = Background::start(coordinator_config(&self.data)).unwrap();
        self.proxy.retarget(&c.url());
        self.coordinator = Some(c);
    }

    fn members(&self) -> impl Iterator<Item = &Who> {
        self.parties.iter().chain([&self.owner])
    }

    /// A new session (policy edited by `policy`), created by the owner.
    fn session(&self, policy: impl Fn(&mut sealroom_protocol::policy::Policy)) -> B256 {
        self.session_with(|s| policy(&mut s.policy)).session_id
    }

    /// A new manifest (scenario edited by `edit`, fresh session id), not yet
    /// sent anywhere.
    fn manifest_with(&self, edit: impl Fn(&mut Scenario)) -> Manifest {
        let mut s = self.scenario.clone();
        edit(&mut s);
        let mut sid = [0u8; 32];
        getrandom::fill(&mut sid).unwrap();
        Manifest::from_scenario(
            &s,
            B256::from(sid),
            1_700_000_000,
            self.parties
                .iter()
                .map(|p| (p.id.public(), p.commitment.clone()))
                .collect(),
            self.owner.id.public(),
            Some(self.owner.commitment.clone()),
        )
        .unwrap()
    }

    /// A new session (scenario edited by `edit`), created by the owner.
    fn session_with(&self, edit: impl Fn(&mut Scenario)) -> Manifest {
        let m = self.manifest_with(edit);
        Client::new(&self.upstream(), Some(&self.owner.id))
            .create_session(&m)
            .unwrap();
        m
    }

    /// The member library for `who`, through the proxy.
    fn member<'a>(&self, who: &'a Who) -> Member<'a> {
        Member::new(&self.proxy.url, &who.id, RecordStore::in_dir(&who.state))
    }

    fn consent_and_upload_all(&self, sid: &B256) {
        for w in self.members() {
            let m = self.member(w);
            m.consent(sid, ConsentAction::Consent, None).unwrap();
            m.upload(sid, &w.blob, &|_, _, _| {}).unwrap();
        }
    }

    fn grant_all(&self, sid: &B256) {
        for w in self.members() {
            let m = self.member(w);
            let node = m.verify_node(sid, sealroom_member::now()).unwrap();
            m.grant(node, &w.datakey).unwrap();
        }
    }

    fn status(&self, sid: &B256) -> SessionStatus {
        Client::new(&self.upstream(), None).status(sid).unwrap()
    }

    /// Starts the real node binary against the proxy.
    fn spawn_node(&self, sid: &B256, log: &str) -> Child {
        Command::new(BIN)
            .args([
                "node",
                "run",
                "--coordinator",
                &self.proxy.url,
                "--tee",
                "sim",
                "--session",
                &format!("{sid:#x}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(log)).unwrap())
            .spawn()
            .unwrap()
    }

    /// An honest session run to the end by the real node binary (reports on chain).
    fn completed_session(&self) -> (B256, SessionStatus) {
        let sid = self.session(|_| {});
        self.consent_and_upload_all(&sid);
        let node = self.spawn_node(&sid, "node.log");
        self.wait(&sid, |s| s.node.is_some());
        self.grant_all(&sid);
        let st = self.wait(&sid, |s| {
            s.state >= SessionState::Published && s.reports.iter().all(|r| r.tx_hash.is_some())
        });
        kill(node);
        (sid, st)
    }

    fn wait(&self, sid: &B256, done: impl Fn(&SessionStatus) -> bool) -> SessionStatus {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let st = self.status(sid);
            if done(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "timed out in state {}",
                st.state.as_str()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn kill(mut c: Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// The check a member-side refusal names.
fn check_of(e: &MemberError) -> String {
    e.check().unwrap_or_else(|| format!("(no check) {e}"))
}

/// A node the coordinator runs itself: keys it knows, sim evidence bound to `mh`.
fn coordinator_node(mh: &B256, debug: bool) -> (Identity, NodeRegistration) {
    let id = Identity::generate().unwrap();
    let n = id.public();
    let rd = expected_report_data(&n.ed25519, &n.x25519, &mh.0);
    let reg = NodeRegistration {
        node_key: n.ed25519,
        hpke_key: n.x25519,
        kind: TeeKind::Sim,
        evidence: simulate(&rd, &sim_default_measurement(), debug),
        certs: vec![],
        collateral: None,
        engine_measurement: hex::encode(sim_default_measurement()),
        gpu: None,
    };
    (id, reg)
}

fn status_path(sid: &B256) -> String {
    format!("/v1/sessions/{sid:#x}")
}

/// Whether `path` serves a session's state to members: the public status
/// or a member's own view (what the member library reads).
fn is_status(path: &str, sid: &B256) -> bool {
    let s = status_path(sid);
    path == s || path == format!("{s}/member")
}

// ---------------------------------------------------------------------------
// Invariant 1: members.

type StatusEdit = Arc<dyn Fn(&mut Value) + Send + Sync>;

fn se(f: impl Fn(&mut Value) + Send + Sync + 'static) -> StatusEdit {
    Arc::new(f)
}

fn manifest_edit(edit: fn(&mut Manifest), update_hash: bool) -> StatusEdit {
    Arc::new(move |v: &mut Value| rewrite_manifest(v, &edit, update_hash))
}

#[test]
fn members_never_grant_to_a_node_outside_the_consented_manifest() {
    let w = World::new();
    let sid = w.session(|_| {});
    // Between review and consent the coordinator swaps the manifest: nothing
    // is signed, nothing recorded; a consented member never signs another.
    let reviewed = w.status(&sid).manifest_hash;
    w.proxy.set(move |m, p, r| {
        if m == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| {
                rewrite_manifest(
                    v,
                    &|m| m.policy.allow_simulation = !m.policy.allow_simulation,
                    true,
                )
            });
        }
    });
    let who = &w.parties[1];
    let err = w
        .member(who)
        .consent(&sid, ConsentAction::Consent, Some(reviewed))
        .unwrap_err();
    assert_eq!(check_of(&err), "manifest.changed", "{err}");
    assert!(
        w.member(who).record(&sid).unwrap().is_none(),
        "a record was written"
    );
    assert!(
        !w.status(&sid).members.iter().any(|m| m.consented),
        "a consent reached the coordinator"
    );
    w.proxy.clear();
    w.consent_and_upload_all(&sid);
    w.proxy.set(move |m, p, r| {
        if m == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| {
                rewrite_manifest(v, &|m| m.training.epochs += 1, true)
            });
        }
    });
    let err = w
        .member(who)
        .consent(&sid, ConsentAction::Consent, None)
        .unwrap_err();
    assert_eq!(check_of(&err), "manifest.changed", "{err}");
    w.proxy.clear();
    let consented = w.status(&sid).manifest_hash;
    assert_eq!(consented, reviewed);
    // The honest node registers (in-process node; the binary is exercised below).
    let node = sealroom_trainer::node::Node::start(
        consented,
        &sealroom_trainer::node::SimCollector {
            measurement: sim_default_measurement(),
        },
    )
    .unwrap();
    let reg = NodeRegistration {
        node_key: node.signing_key(),
        hpke_key: node.hpke_key(),
        kind: TeeKind::Sim,
        evidence: node.evidence().evidence.clone(),
        certs: vec![],
        collateral: None,
        engine_measurement: hex::encode(node.measurement()),
        gpu: None,
    };
    Client::new(&w.upstream(), Some(node.request_identity()))
        .register_node(&sid, &reg)
        .unwrap();
    let (_, rogue) = coordinator_node(&consented, false);
    let (_, rogue_debug) = coordinator_node(&consented, true);
    let rogue_json = serde_json::to_value(&rogue).unwrap();
    let debug_json = serde_json::to_value(&rogue_debug).unwrap();

    let node_edit =
        |f: fn(&mut Value)| -> StatusEdit { se(move |v: &mut Value| f(&mut v["node"])) };
    let rows: Vec<(&str, &str, StatusEdit, &str)> = vec![
        // (row, step, what the coordinator serves, the check that refuses)
        (
            "policy allows simulation",
            "grant",
            manifest_edit(
                |m| m.policy.allow_simulation = !m.policy.allow_simulation,
                true,
            ),
            "manifest.changed",
        ),
        (
            "policy accepts another kind",
            "grant",
            manifest_edit(|m| m.policy.accepted_kinds.push(TeeKind::Tdx), true),
            "manifest.changed",
        ),
        (
            "owner key redirected",
            "grant",
            manifest_edit(|m| m.owner.identity.x25519 = [9; 32], true),
            "manifest.changed",
        ),
        (
            "commitment swapped",
            "grant",
            manifest_edit(
                |m| m.parties[0].commitment.merkle_root = B256::repeat_byte(1),
                true,
            ),
            "manifest.changed",
        ),
        (
            // The list grows by a party the member never sees: its count
            // and record total change the header, so the hash changes.
            "a party added to the committed list",
            "grant",
            se(|v: &mut Value| {
                if v["manifest"].get("header").is_some() {
                    let list = &mut v["manifest"]["header"]["parties"];
                    list["count"] = (list["count"].as_u64().unwrap() + 1).into();
                    list["records"] = (list["records"].as_u64().unwrap() + 50).into();
                    let head: sealroom_protocol::manifest::ManifestHeader =
                        serde_json::from_value(v["manifest"]["header"].clone()).unwrap();
                    v["manifest_hash"] = serde_json::to_value(head.hash()).unwrap();
                }
            }),
            "manifest.changed",
        ),
        (
            "max_blob_bytes raised",
            "grant",
            manifest_edit(|m| m.max_blob_bytes += 1, true),
            "manifest.changed",
        ),
        (
            "epochs changed",
            "grant",
            manifest_edit(|m| m.training.epochs += 1, true),
            "manifest.changed",
        ),
        (
            "engine allowlist replaced",
            "grant",
            manifest_edit(
                |m| m.engine.trainer_measurements = vec![hex::encode([1u8; 32])],
                true,
            ),
            "manifest.changed",
        ),
        (
            "chain target changed",
            "grant",
            manifest_edit(|m| m.chain.target = "opbnb-mainnet".into(), true),
            "manifest.changed",
        ),
        (
            "manifest edited, hash kept",
            "grant",
            manifest_edit(|m| m.description.push('!'), false),
            "manifest.served",
        ),
        (
            "upload after rewrite",
            "upload",
            manifest_edit(
                |m| m.policy.allow_simulation = !m.policy.allow_simulation,
                true,
            ),
            "manifest.changed",
        ),
        (
            "evidence byte flipped",
            "grant",
            node_edit(|n| {
                let mut e = hex::decode(n["evidence"].as_str().unwrap()).unwrap();
                e[100] ^= 1;
                n["evidence"] = hex::encode(e).into();
            }),
            "node-evidence",
        ),
        (
            "node signing key swapped",
            "grant",
            node_edit(|n| n["node_key"] = hex::encode([5u8; 32]).into()),
            "node-evidence",
        ),
        (
            "node hpke key swapped",
            "grant",
            node_edit(|n| {
                n["hpke_key"] = hex::encode(Identity::generate().unwrap().public().x25519).into()
            }),
            "node-evidence",
        ),
        (
            "self-reported measurement",
            "grant",
            node_edit(|n| n["engine_measurement"] = hex::encode([7u8; 32]).into()),
            "node-evidence: engine.measurement",
        ),
        (
            "no node",
            "grant",
            node_edit(|n| *n = Value::Null),
            "node.registered",
        ),
        (
            "coordinator's own debug node",
            "grant",
            se(move |v: &mut Value| v["node"] = debug_json.clone()),
            "node-evidence",
        ),
    ];
    let who = &w.parties[0];
    let member = w.member(who);
    for (row, step, edit, expected) in &rows {
        let (sid2, edit) = (sid, Arc::clone(edit));
        w.proxy.set(move |m, p, r| {
            if m == "GET" && is_status(p, &sid2) && r.status == 200 {
                json_edit(r, |v| edit(v));
            }
        });
        let err = match *step {
            "upload" => member.upload(&sid, &who.blob, &|_, _, _| {}).map(|_| ()),
            _ => member
                .verify_node(&sid, sealroom_member::now())
                .and_then(|n| member.grant(n, &who.datakey))
                .map(|_| ()),
        }
        .expect_err(row);
        w.proxy.clear();
        let check = check_of(&err);
        assert!(
            check.starts_with(expected),
            "{row}: refused by `{check}` ({err}), expected `{expected}`"
        );
        if *expected == "manifest.changed" {
            assert!(
                err.to_string().contains(&format!("{consented:#x}")),
                "{row}: {err} must print the consented hash"
            );
        }
        let st = w.status(&sid);
        let me = st.members.iter().find(|m| m.name == who.name).unwrap();
        assert_ne!(
            me.granted,
            Some(true),
            "{row}: a grant reached the coordinator"
        );
        let rec = w.member(who).record(&sid).unwrap().unwrap();
        assert!(
            rec.grant.is_none(),
            "{row}: the record says a grant was made"
        );
        assert_eq!(rec.manifest_hash, consented, "{row}: the record moved");
    }
    // A coordinator-run node bound to the consented manifest is still only a
    // node the policy accepts: the shipped policy allows simulation, so the
    // member's verification passes; it is the consented policy that decides
    // (a hardware-only policy refuses it: see the CLI test below).
    w.proxy.set(move |m, p, r| {
        if m == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| v["node"] = rogue_json.clone());
        }
    });
    let rogue_verdict = member.verify_node(&sid, sealroom_member::now()).unwrap();
    assert!(rogue_verdict.verdict().insecure_simulation);
    w.proxy.clear();
    // The honest path still works, and the record names the node granted to.
    w.grant_all(&sid);
    assert_eq!(w.status(&sid).state, SessionState::KeysGranted);
    let rec = w.member(who).record(&sid).unwrap().unwrap();
    assert_eq!(rec.grant.unwrap().node_key, node.signing_key());
    // The grant the coordinator holds is bound to the manifest and evidence.
    let g = grant_of(&w, &sid, &node);
    assert_eq!(g.manifest_hash, consented);
    assert_eq!(g.evidence_hash, evidence_hash(&reg.evidence));
}

/// A node whose attested measurement the consented manifest does not pin:
/// even a coordinator that registers it anyway gets no grant (the member's
/// own `engine.allowlist`), whatever the node claims about itself.
#[test]
fn members_refuse_a_node_outside_the_engine_allowlist() {
    let w = World::new();
    let m = w.session_with(|s| s.engine.trainer_measurements = vec![hex::encode([0x42u8; 32])]);
    let sid = m.session_id;
    w.consent_and_upload_all(&sid);
    // The coordinator (honest here) refuses the registration itself…
    let (node_id, mut reg) = coordinator_node(&m.hash(), false);
    let err = Client::new(&w.upstream(), Some(&node_id))
        .register_node(&sid, &reg)
        .unwrap_err();
    assert!(err.to_string().contains("engine.allowlist"), "{err}");
    // …so a dishonest one serves it anyway, even claiming the pinned value.
    reg.engine_measurement = hex::encode([0x42u8; 32]);
    for (claim, expected) in [
        (
            hex::encode([0x42u8; 32]),
            "node-evidence: engine.measurement",
        ),
        (
            hex::encode(sim_default_measurement()),
            "node-evidence: engine.allowlist",
        ),
    ] {
        let mut served = reg.clone();
        served.engine_measurement = claim;
        let served = serde_json::to_value(&served).unwrap();
        w.proxy.set(move |m, p, r| {
            if m == "GET" && is_status(p, &sid) && r.status == 200 {
                let served = served.clone();
                json_edit(r, move |v| v["node"] = served);
            }
        });
        let who = &w.parties[0];
        let err = w
            .member(who)
            .verify_node(&sid, sealroom_member::now())
            .unwrap_err();
        w.proxy.clear();
        assert_eq!(check_of(&err), expected, "{err}");
    }
}

/// A policy demanding a GPU TEE is never met by a node without GPU
/// evidence, nor by GPU evidence bound to another node: the coordinator
/// refuses to register it and every member refuses to grant, naming
/// `policy.gpu-required` or `nvidia.nonce-binding`.
#[test]
fn a_policy_requiring_a_gpu_refuses_a_node_without_gpu_evidence() {
    let w = World::new();
    let sid = w.session(|p| p.require_gpu = true);
    w.consent_and_upload_all(&sid);
    let st = w.status(&sid);
    let (node_id, reg) = coordinator_node(&st.manifest_hash, false);
    let err = Client::new(&w.upstream(), Some(&node_id))
        .register_node(&sid, &reg)
        .unwrap_err();
    assert!(err.to_string().contains("policy.gpu-required"), "{err}");
    // A coordinator that serves the node anyway gets no grant.
    serve_node_and_expect_refusal(&w, sid, &reg, "node-evidence: policy.gpu-required");

    // GPU evidence whose nonce is bound to another node's report_data (a
    // GPU report lent from elsewhere): the coordinator refuses it, and when
    // it serves it anyway every member refuses, through the library and
    // through the real `sealroom party grant`, naming the binding check.
    let now = sealroom_member::now();
    let gpu_for = |rd: &[u8; 64]| sealroom_protocol::api::GpuRegistration {
        kind: TeeKind::Sim,
        evidence: simulate_gpu_at(&gpu_nonce_for(rd), now),
        certs: vec![],
    };
    let mut misbound = reg.clone();
    misbound.gpu = Some(gpu_for(&expected_report_data(
        &[9; 32],
        &[9; 32],
        &st.manifest_hash.0,
    )));
    let err = Client::new(&w.upstream(), Some(&node_id))
        .register_node(&sid, &misbound)
        .unwrap_err();
    assert!(err.to_string().contains("nvidia.nonce-binding"), "{err}");
    serve_node_and_expect_refusal(&w, sid, &misbound, "node-evidence: nvidia.nonce-binding");
    let o = cli_grant(&w, &w.parties[0], &format!("{sid:#x}"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nvidia.nonce-binding"), "{stderr}");
    w.proxy.clear();

    // The same node with its GPU evidence bound to its own report_data is
    // registered and verified by every member: the refusals above are the
    // binding's, not the GPU's.
    let mut bound = reg.clone();
    bound.gpu = Some(gpu_for(&expected_report_data(
        &reg.node_key,
        &reg.hpke_key,
        &st.manifest_hash.0,
    )));
    Client::new(&w.upstream(), Some(&node_id))
        .register_node(&sid, &bound)
        .unwrap();
    for who in w.members() {
        w.member(who)
            .verify_node(&sid, sealroom_member::now())
            .unwrap();
    }
}

/// The proxy serves `reg` as the session's node; every member's own
/// verification refuses it, naming `check`. The proxy keeps serving it.
fn serve_node_and_expect_refusal(w: &World, sid: B256, reg: &NodeRegistration, check: &str) {
    let served = serde_json::to_value(reg).unwrap();
    w.proxy.set(move |m, p, r| {
        if m == "GET" && is_status(p, &sid) && r.status == 200 {
            let served = served.clone();
            json_edit(r, move |v| v["node"] = served);
        }
    });
    for who in w.members() {
        let err = w
            .member(who)
            .verify_node(&sid, sealroom_member::now())
            .unwrap_err();
        assert_eq!(check_of(&err), check, "{err}");
    }
}

fn grant_of(w: &World, sid: &B256, node: &sealroom_trainer::node::Node) -> Grant {
    let work = Client::new(&w.upstream(), Some(node.request_identity()))
        .work(sid)
        .unwrap();
    work.grants.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------
// Invariant 2: the node.

type Edit = Arc<dyn Fn(&str, &mut Resp) + Send + Sync>;

fn ed(f: impl Fn(&str, &mut Resp) + Send + Sync + 'static) -> Edit {
    Arc::new(f)
}

/// Checks the node runs before it opens any grant or decrypts any byte.
const PRE_DECRYPTION: &[&str] = &[
    "manifest",
    "manifest-hash",
    "engine.allowlist",
    "consent",
    "grant-signature",
    "grant-node",
    "grant-manifest",
    "grant-evidence",
    "ciphertext-hash",
    "blob",
];

#[test]
fn the_node_decrypts_nothing_that_does_not_match_the_consented_manifest() {
    let w = World::new();
    let work = |f: fn(&mut Value)| -> Edit {
        ed(move |p: &str, r: &mut Resp| {
            if p.ends_with("/work") && r.status == 200 {
                json_edit(r, f)
            }
        })
    };
    let other_blob = std::fs::read(&w.parties[1].blob).unwrap();
    let rows: Vec<(&str, Edit, &[&str])> = vec![
        (
            "work: owner key redirected",
            work(|v| rewrite_manifest(v, &|m| m.owner.identity.x25519 = [9; 32], false)),
            &["manifest-hash"],
        ),
        (
            "work: policy rewritten",
            work(|v| {
                rewrite_manifest(
                    v,
                    &|m| m.policy.allow_simulation = !m.policy.allow_simulation,
                    false,
                )
            }),
            &["manifest-hash"],
        ),
        (
            "work: commitment swapped",
            work(|v| rewrite_manifest(v, &|m| m.parties.swap(0, 1), false)),
            &["manifest-hash"],
        ),
        (
            "work: grant's evidence hash",
            work(|v| {
                v["grants"][0]["evidence_hash"] =
                    serde_json::to_value(B256::repeat_byte(1)).unwrap()
            }),
            &["grant-evidence", "grant-signature"],
        ),
        (
            "work: grant's manifest hash",
            work(|v| {
                v["grants"][0]["manifest_hash"] =
                    serde_json::to_value(B256::repeat_byte(1)).unwrap()
            }),
            &["grant-manifest", "grant-signature"],
        ),
        (
            "work: grant's sealed key",
            work(|v| {
                let mut c =
                    hex::decode(v["grants"][0]["sealed"]["ciphertext"].as_str().unwrap()).unwrap();
                c[0] ^= 1;
                v["grants"][0]["sealed"]["ciphertext"] = hex::encode(c).into();
            }),
            &["grant-signature"],
        ),
        (
            "work: grant dropped",
            work(|v| {
                v["grants"].as_array_mut().unwrap().remove(0);
            }),
            &["grant-signature"],
        ),
        (
            "work: consent dropped",
            work(|v| {
                v["consents"].as_array_mut().unwrap().pop();
            }),
            &["consent"],
        ),
        (
            "work: consent for another manifest",
            work(|v| {
                v["consents"][0]["manifest_hash"] =
                    serde_json::to_value(B256::repeat_byte(2)).unwrap()
            }),
            &["consent"],
        ),
        (
            "blob: one byte flipped",
            ed(|p: &str, r: &mut Resp| {
                if p.contains("/blobs/") && r.status == 200 {
                    let i = r.body.len() / 2;
                    r.body[i] ^= 1;
                }
            }),
            &["ciphertext-hash"],
        ),
        (
            "blob: another party's blob",
            ed(move |p: &str, r: &mut Resp| {
                if p.contains("/blobs/hospital-a") && r.status == 200 {
                    r.body = other_blob.clone();
                }
            }),
            &["ciphertext-hash"],
        ),
    ];
    for (row, edit, expected) in rows {
        let sid = w.session(|_| {});
        w.consent_and_upload_all(&sid);
        w.proxy.set(move |m, p, r| {
            if m == "GET" {
                edit(p, r)
            }
        });
        let node = w.spawn_node(&sid, "node.log");
        w.wait(&sid, |s| {
            s.node.is_some() || s.state == SessionState::Aborted
        });
        w.grant_all(&sid);
        let st = w.wait(&sid, |s| s.state >= SessionState::Completed);
        kill(node);
        w.proxy.clear();
        assert_eq!(st.state, SessionState::Aborted, "{row}: the node went on");
        let reason = st.abort_reason.clone().unwrap_or_default();
        // "node aborted (code N): INPUT: CHECK: detail"
        let rest = reason.split_once("): ").map(|x| x.1).unwrap_or(&reason);
        let check = rest.split(": ").nth(1).unwrap_or("");
        assert!(
            expected.contains(&check),
            "{row}: aborted by `{check}` ({reason}), expected one of {expected:?}"
        );
        assert!(
            PRE_DECRYPTION.contains(&check),
            "{row}: `{check}` is not a pre-decryption check"
        );
        assert!(
            st.reports.iter().all(|r| r.kind == "aborted"),
            "{row}: the node signed more than an aborted report"
        );
        assert!(
            st.reports.iter().any(|r| r.kind == "aborted"),
            "{row}: no signed aborted report"
        );
    }
}

// ---------------------------------------------------------------------------
// Invariant 3: the owner.

#[test]
fn the_owner_accepts_only_the_model_the_verified_completed_report_names() {
    let mut w = World::new();
    let (sid, st) = w.completed_session();
    assert_ne!(st.state, SessionState::Aborted, "{:?}", st.abort_reason);
    let owner_pub = w.owner.id.public();
    let mh = st.manifest_hash;
    // A model the coordinator sealed itself to the owner's public key.
    let forged = sealroom_protocol::sealed_model::seal_model(
        sid,
        mh,
        owner_pub.x25519,
        b"not the trained model",
        &serde_json::json!({"final_accuracy": 1.0}),
    )
    .unwrap();
    let completed_abi = st
        .reports
        .iter()
        .find(|r| r.kind == "completed")
        .unwrap()
        .report_abi
        .clone();
    let (_, rogue) = coordinator_node(&mh, false);
    let rogue_json = serde_json::to_value(&rogue).unwrap();

    type BytesEdit = Arc<dyn Fn(&mut Vec<u8>) + Send + Sync>;
    let sealed = |f: BytesEdit| -> Edit {
        Arc::new(move |p: &str, r: &mut Resp| {
            if p.ends_with("/sealed-model") && r.status == 200 {
                f(&mut r.body)
            }
        })
    };
    let status = |f: StatusEdit, sid: B256| -> Edit {
        Arc::new(move |p: &str, r: &mut Resp| {
            if is_status(p, &sid) && r.status == 200 {
                json_edit(r, |v| f(v))
            }
        })
    };
    let forged2 = forged.clone();
    let rows: Vec<(&str, Edit, &str)> = vec![
        (
            "sealed model re-sealed by the coordinator",
            sealed(Arc::new(move |b| *b = forged2.clone())),
            "model.sealed-hash",
        ),
        (
            "sealed model byte flipped",
            sealed(Arc::new(|b| {
                let i = b.len() - 5;
                b[i] ^= 1;
            })),
            "model.sealed-hash",
        ),
        (
            "completed report's model hash edited",
            status(
                Arc::new(move |v| {
                    for r in v["reports"].as_array_mut().unwrap() {
                        if r["kind"] == "completed" {
                            let bytes = hex::decode(
                                r["report_abi"].as_str().unwrap().trim_start_matches("0x"),
                            )
                            .unwrap();
                            let mut rep = IntegrityReport::from_abi_bytes(&bytes).unwrap();
                            rep.modelHash = B256::repeat_byte(3);
                            r["report_abi"] = hex::encode(rep.abi_bytes()).into();
                        }
                    }
                }),
                sid,
            ),
            "model.report-signature",
        ),
        (
            "completed report with trailing bytes",
            status(
                Arc::new(move |v| {
                    for r in v["reports"].as_array_mut().unwrap() {
                        if r["kind"] == "completed" {
                            r["report_abi"] =
                                format!("{}{}", r["report_abi"].as_str().unwrap(), "00".repeat(32))
                                    .into();
                        }
                    }
                }),
                sid,
            ),
            "model.report",
        ),
        (
            "completed report dropped",
            status(
                Arc::new(|v| {
                    v["reports"]
                        .as_array_mut()
                        .unwrap()
                        .retain(|r| r["kind"] != "completed")
                }),
                sid,
            ),
            "model.report",
        ),
        (
            "completed report duplicated",
            status(
                Arc::new(move |v| {
                    let c = v["reports"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| r["kind"] == "completed")
                        .cloned()
                        .unwrap();
                    v["reports"].as_array_mut().unwrap().push(c);
                }),
                sid,
            ),
            "model.report",
        ),
        (
            "node registration swapped for the coordinator's",
            status(Arc::new(move |v| v["node"] = rogue_json.clone()), sid),
            "model.node",
        ),
        (
            "manifest rewritten",
            status(
                Arc::new(|v| rewrite_manifest(v, &|m| m.owner.name.push('x'), true)),
                sid,
            ),
            "manifest.changed",
        ),
    ];
    let owner = w.member(&w.owner);
    for (row, edit, expected) in rows {
        w.proxy.set(move |m, p, r| {
            if m == "GET" {
                edit(p, r)
            }
        });
        let err = owner.fetch_model(&sid, None).map(|_| ()).expect_err(row);
        w.proxy.clear();
        let check = check_of(&err);
        assert!(
            check.starts_with(expected),
            "{row}: refused by `{check}` ({err}), expected `{expected}`"
        );
        let rec = owner.record(&sid).unwrap().unwrap();
        assert!(rec.model.is_none(), "{row}: the record accepted a model");
    }
    // The chain disagrees with the coordinator's completed report.
    let wrong_chain = ChainReportHashes {
        stored: vec![(
            sealroom_reports::report::ReportKind::Completed,
            B256::repeat_byte(4),
        )],
        source: "test registry".into(),
    };
    let err = owner
        .fetch_model(&sid, Some(&wrong_chain))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(check_of(&err), "model.chain", "{err}");
    // The honest model, with the chain's stored hash.
    let right_chain = ChainReportHashes {
        stored: vec![(
            sealroom_reports::report::ReportKind::Completed,
            keccak256(hex::decode(completed_abi.trim_start_matches("0x")).unwrap()),
        )],
        source: "test registry".into(),
    };
    let fetched = owner.fetch_model(&sid, Some(&right_chain)).unwrap();
    assert_eq!(fetched.chain_checked.as_deref(), Some("test registry"));
    assert_eq!(fetched.model_sha256, fetched.report.modelHash);
    let records = RecordStore::in_dir(&w.owner.state);
    // open-model: the accepted file opens; a file the coordinator sealed does not.
    let good = w.dir.join("model.sealed");
    std::fs::write(&good, &fetched.sealed).unwrap();
    let (opened, _) = sealroom_member::open_model_file(&good, &w.owner.id, &records).unwrap();
    assert_eq!(&opened.model[..], &fetched.opened.model[..]);
    let bad = w.dir.join("forged.sealed");
    std::fs::write(&bad, &forged).unwrap();
    let err = sealroom_member::open_model_file(&bad, &w.owner.id, &records)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(check_of(&err), "model.sealed-hash", "{err}");

    // The honest model through the binary, compared with the registry in the
    // embedded chain: it says what it verified, the chain included.
    let contract = st.chain.as_ref().unwrap()["contract"]
        .as_str()
        .unwrap()
        .to_string();
    let honest_out = w.dir.join("model-honest.bin");
    let o = Command::new(BIN)
        .args([
            "owner",
            "fetch-model",
            "--coordinator",
            &w.proxy.url,
            "--session",
            &format!("{sid:#x}"),
            "--contract",
            &contract,
        ])
        .arg("--chain-dir")
        .arg(w.data.join("chain"))
        .arg("--key")
        .arg(&w.owner.key_file)
        .arg("--state")
        .arg(&w.owner.state)
        .arg("--out")
        .arg(&honest_out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("the registry stores this completed report"),
        "{stdout}"
    );
    // How good the model is, from the sealed metrics, without --json.
    assert!(
        stdout.contains("quality      accuracy 0.")
            && stdout.contains("correct) on the owner's validation set")
            && stdout.contains("confusion    rows: true class")
            && stdout.contains("training     "),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(&honest_out).unwrap(),
        &fetched.opened.model[..]
    );
    // open-model through the binary: the coordinator's file is refused.
    let o = Command::new(BIN)
        .args(["owner", "open-model"])
        .arg(&bad)
        .arg("--key")
        .arg(&w.owner.key_file)
        .arg("--state")
        .arg(&w.owner.state)
        .arg("--out")
        .arg(w.dir.join("opened-forged.bin"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("model.sealed-hash"));
    assert!(!w.dir.join("opened-forged.bin").exists());

    // Attack 2 of the issue, through the real binary: the coordinator
    // overwrites the sealed model in its own blob store (content address and
    // database row updated, so it serves it without complaint).
    let forged_sha = hex::encode(sealroom_protocol::hash::sha256(&forged));
    let forged_len = forged.len();
    w.restart_with(|data| {
        std::fs::write(data.join("blobs").join(&forged_sha), &forged).unwrap();
        let db = rusqlite::Connection::open(data.join("coordinator.sqlite")).unwrap();
        let n = db
            .execute(
                "UPDATE sessions SET sealed_sha = ?1, sealed_len = ?2 WHERE id = ?3",
                rusqlite::params![forged_sha, forged_len as i64, format!("{sid:#x}")],
            )
            .unwrap();
        assert_eq!(n, 1, "the session row was not found");
    });
    // The stored row really serves the forged bytes now.
    let served = Client::new(&w.upstream(), Some(&w.owner.id))
        .sealed_model(&sid)
        .unwrap();
    assert_eq!(served, forged);
    let out = w.dir.join("model-from-cli.bin");
    let o = Command::new(BIN)
        .args([
            "owner",
            "fetch-model",
            "--coordinator",
            &w.proxy.url,
            "--session",
            &format!("{sid:#x}"),
        ])
        .arg("--key")
        .arg(&w.owner.key_file)
        .arg("--state")
        .arg(&w.owner.state)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("model.sealed-hash"), "{stderr}");
    assert!(!out.exists(), "fetch-model wrote the forged model");
}

// ---------------------------------------------------------------------------
// Attack 1 of the issue, through the real binary.

fn cli(args: &[&str], key: &Path, state: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--key")
        .arg(key)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap()
}

/// `sealroom party grant` for `who`, through the proxy.
fn cli_grant(w: &World, who: &Who, session: &str) -> std::process::Output {
    cli(
        &[
            "party",
            "grant",
            "--coordinator",
            &w.proxy.url,
            "--session",
            session,
            "--data-key",
            who.datakey.to_str().unwrap(),
        ],
        &who.key_file,
        &who.state,
    )
}

#[test]
fn a_member_reviews_the_whole_party_list_only_under_its_own_hash() {
    let w = World::new();
    let sid = w.session(|_| {});
    let s = format!("{sid:#x}");
    let who = &w.parties[0];
    let join = || {
        cli(
            &[
                "party",
                "join",
                "--all-parties",
                "--json",
                "--coordinator",
                &w.proxy.url,
                "--session",
                &s,
            ],
            &who.key_file,
            &who.state,
        )
    };
    let o = join();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&who.name.as_str()));
    // The coordinator serves the whole list with a party swapped for a
    // forged one (its own key and commitment), keeping the member's view:
    // the list no longer hashes to the member's hash.
    let sid2 = sid;
    w.proxy.set(move |m, p, r| {
        if m == "GET" && p == status_path(&sid2) && r.status == 200 {
            json_edit(r, |v| {
                rewrite_manifest(
                    v,
                    &|m| {
                        let last = m.parties.len() - 1;
                        m.parties[last].identity = Identity::generate().unwrap().public();
                    },
                    true,
                )
            });
        }
    });
    let o = join();
    w.proxy.clear();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("manifest.served"), "{err}");
}

#[test]
fn a_manifest_rewritten_after_consent_leaks_nothing() {
    let mut w = World::new();
    // Hardware only: what every member consents to.
    let sid = w.session(|p| {
        p.accepted_kinds = vec![TeeKind::SevSnp];
        p.allow_simulation = false;
    });
    let s = format!("{sid:#x}");
    for who in w.members() {
        for args in [
            vec!["party", "consent"],
            vec!["party", "commit", "--blob", who.blob.to_str().unwrap()],
        ] {
            let mut a = args.clone();
            a.extend(["--coordinator", &w.proxy.url, "--session", &s]);
            let o = cli(&a, &who.key_file, &who.state);
            assert!(
                o.status.success(),
                "{}: {}",
                who.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let consented = w.status(&sid).manifest_hash;
    // The coordinator stops, rewrites the stored manifest to accept
    // simulation (and its hash), restarts, and registers its own node.
    let mut rewritten_hash = B256::ZERO;
    w.restart_with(|data| {
        let db = rusqlite::Connection::open(data.join("coordinator.sqlite")).unwrap();
        let text: String = db
            .query_row(
                "SELECT manifest FROM manifests WHERE session = ?1",
                [&s],
                |r| r.get(0),
            )
            .unwrap();
        let mut m: Manifest = serde_json::from_str(&text).unwrap();
        m.policy.accepted_kinds.push(TeeKind::Sim);
        m.policy.allow_simulation = true;
        rewritten_hash = m.hash();
        db.execute(
            "UPDATE manifests SET manifest = ?1 WHERE session = ?2",
            rusqlite::params![serde_json::to_string(&m).unwrap(), s],
        )
        .unwrap();
        db.execute(
            "UPDATE sessions SET manifest_hash = ?1 WHERE id = ?2",
            rusqlite::params![format!("{rewritten_hash:#x}"), s],
        )
        .unwrap();
    });
    assert_eq!(
        w.status(&sid).manifest_hash,
        rewritten_hash,
        "the rewrite did not take"
    );
    let (rogue_id, rogue) = coordinator_node(&rewritten_hash, false);
    Client::new(&w.upstream(), Some(&rogue_id))
        .register_node(&sid, &rogue)
        .unwrap();
    for who in w.members() {
        let o = cli_grant(&w, who, &s);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {stderr}", who.name);
        assert!(stderr.contains("manifest.changed"), "{stderr}");
        assert!(
            stderr.contains(&format!("{consented:#x}"))
                && stderr.contains(&format!("{rewritten_hash:#x}")),
            "both hashes: {stderr}"
        );
    }
    // The coordinator puts the consented manifest back but keeps its own sim
    // node, now bound to the consented manifest: the consented policy refuses it.
    w.restart_with(|data| {
        let db = rusqlite::Connection::open(data.join("coordinator.sqlite")).unwrap();
        let text: String = db
            .query_row(
                "SELECT manifest FROM manifests WHERE session = ?1",
                [&s],
                |r| r.get(0),
            )
            .unwrap();
        let mut m: Manifest = serde_json::from_str(&text).unwrap();
        m.policy.accepted_kinds = vec![TeeKind::SevSnp];
        m.policy.allow_simulation = false;
        assert_eq!(m.hash(), consented);
        let (_, reg) = coordinator_node(&consented, false);
        db.execute(
            "UPDATE manifests SET manifest = ?1 WHERE session = ?2",
            rusqlite::params![serde_json::to_string(&m).unwrap(), s],
        )
        .unwrap();
        db.execute(
            "UPDATE sessions SET manifest_hash = ?1, node = ?2 WHERE id = ?3",
            rusqlite::params![
                format!("{consented:#x}"),
                serde_json::to_string(&reg).unwrap(),
                s
            ],
        )
        .unwrap();
    });
    let who = &w.parties[0];
    let o = cli_grant(&w, who, &s);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("node-evidence"), "{stderr}");
    // No grant was ever stored.
    let db = rusqlite::Connection::open(w.data.join("coordinator.sqlite")).unwrap();
    let grants: i64 = db
        .query_row("SELECT COUNT(*) FROM grants", [], |r| r.get(0))
        .unwrap();
    assert_eq!(grants, 0);
}

// ---------------------------------------------------------------------------
// Invariant 4: the verifier.

/// How the verifier answered an altered bundle.
enum Verdict4 {
    /// Refused as a bundle (bad input): the field named.
    Unreadable(String),
    /// Read, verified false: the failed check.
    Failed(String),
    /// Verified, with these fields listed as not checked offline.
    Unchecked(Vec<String>),
}

fn verify_text(text: &str) -> Verdict4 {
    match sealroom_reports::verifier::Bundle::from_json(text) {
        Err(e) => Verdict4::Unreadable(e.to_string()),
        Ok(b) => {
            let v = sealroom_reports::verifier::verify_bundle(&b, None, None);
            if v.verified {
                Verdict4::Unchecked(v.not_checked.into_iter().map(|n| n.field).collect())
            } else {
                Verdict4::Failed(v.failure.map(|f| f.check).unwrap_or_default())
            }
        }
    }
}

#[test]
fn the_verifier_rejects_every_altered_bundle_or_lists_what_it_cannot_check() {
    let w = World::new();
    let (_, st) = w.completed_session();
    let bundle = sealroom_tui::worker::bundle_from_status(&st).unwrap();
    let honest = serde_json::to_value(&bundle).unwrap();
    match verify_text(&honest.to_string()) {
        Verdict4::Unchecked(f) => assert!(
            f.iter().any(|x| x.contains("tx_hash")),
            "offline, transaction hashes are listed as not checked: {f:?}"
        ),
        Verdict4::Failed(c) => panic!("the honest bundle fails `{c}`"),
        Verdict4::Unreadable(e) => panic!("the honest bundle is unreadable: {e}"),
    }
    let abi = |v: &mut Value, i: usize, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = hex::decode(
            v["reports"][i]["report_abi"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
        )
        .unwrap();
        f(&mut b);
        v["reports"][i]["report_abi"] = hex::encode(b).into();
    };
    type Alter = Box<dyn Fn(&mut Value)>;
    let rows: Vec<(&str, Alter)> = vec![
        (
            "report with trailing zero bytes",
            Box::new(move |v| abi(v, 0, &|b| b.extend([0u8; 32]))),
        ),
        (
            "dirty ABI padding",
            Box::new(move |v| abi(v, 0, &|b| b[40] ^= 0x10)),
        ),
        (
            "report byte changed",
            Box::new(move |v| {
                abi(v, 1, &|b| {
                    let i = b.len() - 40;
                    b[i] ^= 1;
                })
            }),
        ),
        (
            "opened report duplicated",
            Box::new(|v| {
                let o = v["reports"][0].clone();
                v["reports"].as_array_mut().unwrap().insert(1, o);
            }),
        ),
        (
            "reports reordered",
            Box::new(|v| v["reports"].as_array_mut().unwrap().swap(0, 1)),
        ),
        (
            "signature changed",
            Box::new(|v| {
                let mut s = hex::decode(
                    v["reports"][0]["signature"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("0x"),
                )
                .unwrap();
                s[10] ^= 1;
                v["reports"][0]["signature"] = hex::encode(s).into();
            }),
        ),
        (
            "stored hash changed",
            Box::new(|v| {
                v["reports"][1]["stored_hash"] = serde_json::to_value(B256::repeat_byte(1)).unwrap()
            }),
        ),
        (
            "evidence changed",
            Box::new(|v| {
                let e = &mut v["envelope"]["evidence"];
                let mut b = hex::decode(e.as_str().unwrap().trim_start_matches("0x")).unwrap();
                b[100] ^= 1;
                *e = hex::encode(b).into();
            }),
        ),
        (
            "manifest policy changed",
            Box::new(|v| {
                rewrite_manifest(
                    &mut v["envelope"],
                    &|m| m.policy.allow_simulation = !m.policy.allow_simulation,
                    false,
                )
            }),
        ),
        (
            "owner key in the manifest changed",
            Box::new(|v| {
                rewrite_manifest(
                    &mut v["envelope"],
                    &|m| m.owner.identity.x25519 = [9; 32],
                    false,
                )
            }),
        ),
        (
            "unknown field",
            Box::new(|v| v["reports"][0]["note"] = "trust me".into()),
        ),
        (
            "unknown format tag",
            Box::new(|v| v["format"] = "sealroom-bundle/9".into()),
        ),
        (
            "session id changed",
            Box::new(|v| v["session_id"] = serde_json::to_value(B256::repeat_byte(2)).unwrap()),
        ),
    ];
    for (row, alter) in rows {
        let mut v = honest.clone();
        alter(&mut v);
        match verify_text(&v.to_string()) {
            Verdict4::Unreadable(e) => assert!(!e.is_empty(), "{row}"),
            Verdict4::Failed(check) => assert!(!check.is_empty(), "{row}: unnamed check"),
            Verdict4::Unchecked(f) => panic!("{row}: VERIFIED (unchecked: {f:?})"),
        }
    }
    // What offline verification cannot check is listed, never passed off as checked.
    let lies: Vec<(&str, Alter, &str)> = vec![
        (
            "tx hash edited",
            Box::new(|v| v["reports"][0]["tx_hash"] = format!("0x{}", "ab".repeat(32)).into()),
            "tx_hash",
        ),
        (
            "block edited",
            Box::new(|v| v["reports"][0]["block"] = 999_999.into()),
            "block",
        ),
        (
            "chain label edited",
            Box::new(|v| v["chain"]["label"] = "opBNB mainnet".into()),
            "label",
        ),
    ];
    for (row, alter, field) in lies {
        let mut v = honest.clone();
        alter(&mut v);
        match verify_text(&v.to_string()) {
            Verdict4::Unchecked(f) => assert!(
                f.iter().any(|x| x.contains(field)),
                "{row}: `{field}` not listed in {f:?}"
            ),
            Verdict4::Failed(c) => panic!("{row}: failed `{c}` (an offline verifier cannot know)"),
            Verdict4::Unreadable(e) => panic!("{row}: unreadable: {e}"),
        }
    }
}

/// An unattended member (`party agent`'s library) whose coordinator serves
/// another manifest after it consented: it signs nothing for it, grants
/// nothing, withdraws over its own record, and ends the session aborted at
/// the real coordinator, naming `manifest.changed`.
#[test]
fn an_agent_withdraws_when_the_manifest_is_swapped_after_its_consent() {
    use sealroom_member::agent::{AgentEnd, AgentOptions};
    let w = World::new();
    let sid = w.session(|_| {});
    let who = &w.parties[0];
    let member = w.member(who);
    let mh = w.status(&sid).manifest_hash;
    member
        .consent(&sid, ConsentAction::Consent, Some(mh))
        .unwrap();
    let edit = manifest_edit(
        |m| m.policy.allow_simulation = !m.policy.allow_simulation,
        true,
    );
    w.proxy.set(move |m, p, r| {
        if m == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| edit(v));
        }
    });
    let opts = AgentOptions {
        session: sid,
        data_key: Some(who.datakey.clone()),
        blob: Some(who.blob.clone()),
        local_policy: None,
        accept_manifest: Some(mh),
        poll: Duration::from_millis(50),
        deadline: None,
    };
    let mut lines = vec![];
    let end = member.agent(&opts, &mut |v| lines.push(v)).unwrap();
    w.proxy.clear();
    match end {
        AgentEnd::Aborted(r) => assert!(r.starts_with("manifest.changed"), "{r}"),
        other => panic!("{other:?}"),
    }
    assert!(lines
        .iter()
        .any(|l| l["step"] == "manifest" && l["outcome"] == "changed"));
    assert!(!lines
        .iter()
        .any(|l| l["step"] == "upload" || l["step"] == "grant"));
    let st = w.status(&sid);
    assert_eq!(st.state, SessionState::Aborted);
    let me = st
        .members
        .iter()
        .find(|m| m.key == who.id.public().ed25519)
        .unwrap();
    assert!(me.withdrawn && me.blob_uploaded == Some(false));
}

// ---------------------------------------------------------------------------
// The member's own record decides: the owner's created manifest, a
// withdrawal, the trainings a private consent allows.

/// `owner create` pins the manifest the owner built (`Member::pin_created`,
/// what the CLI runs): a coordinator answering the creation with another
/// session or manifest is refused (`manifest.changed`, nothing recorded),
/// and once pinned, the owner's first consent refuses a manifest served in
/// its place, although the owner's view carries no party list to compare
/// and the owner passes no reviewed hash.
#[test]
fn the_owner_pins_the_manifest_it_created_and_consents_to_no_other() {
    let w = World::new();
    let build = || w.manifest_with(|_| {});
    let owner = w.member(&w.owner);
    let through_proxy = Client::new(&w.proxy.url, Some(&w.owner.id));

    // The creation's answer names another manifest.
    let m = build();
    w.proxy.set(move |meth, p, r| {
        if meth == "POST" && p == "/v1/sessions" && r.status < 300 {
            json_edit(r, |v| {
                v["manifest_hash"] = serde_json::to_value(B256::repeat_byte(7)).unwrap()
            });
        }
    });
    let answered = through_proxy.create_session(&m).unwrap();
    let err = owner.pin_created(&m, &answered).unwrap_err();
    assert_eq!(check_of(&err), "manifest.changed", "{err}");
    assert!(owner.record(&m.session_id).unwrap().is_none());
    w.proxy.clear();

    // Honest creation: pinned, consent not yet signed.
    let m = build();
    let sid = m.session_id;
    let answered = through_proxy.create_session(&m).unwrap();
    owner.pin_created(&m, &answered).unwrap();
    let rec = owner.record(&sid).unwrap().unwrap();
    assert_eq!(rec.manifest_hash, m.hash());
    assert!(rec.consent.is_none());
    // Pinning again is idempotent.
    owner.pin_created(&m, &answered).unwrap();

    // The coordinator serves the owner another manifest, consistently
    // hashed; the owner consents without a reviewed hash.
    w.proxy.set(move |meth, p, r| {
        if meth == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| {
                rewrite_manifest(v, &|m| m.training.epochs += 1, true)
            });
        }
    });
    let err = owner
        .consent(&sid, ConsentAction::Consent, None)
        .unwrap_err();
    assert_eq!(check_of(&err), "manifest.changed", "{err}");
    assert!(
        !w.status(&sid).members.iter().any(|m| m.consented),
        "a consent reached the coordinator"
    );
    w.proxy.clear();
    owner.consent(&sid, ConsentAction::Consent, None).unwrap();
}

/// A withdrawal is final whatever the coordinator serves after it: the
/// member signs no consent again and verifies, so grants to, no node
/// (check `withdrawal`), and an agent sharing its records stops with
/// nothing sent; a member that did not withdraw verifies the same served
/// node, so the refusal is the record's, not the edit's.
#[test]
fn a_member_that_withdrew_never_consents_again_nor_grants_whatever_is_served() {
    let w = World::new();
    let sid = w.session(|_| {});
    w.consent_and_upload_all(&sid);
    let mh = w.status(&sid).manifest_hash;
    let (_, node) = coordinator_node(&mh, false);
    let who = &w.parties[0];
    let m = w.member(who);
    m.consent(&sid, ConsentAction::Withdraw, None).unwrap();
    assert_eq!(w.status(&sid).state, SessionState::Aborted);

    // The coordinator hides the withdrawal: the session attested, a node
    // registered, this member shown as not consented.
    let node_json = serde_json::to_value(&node).unwrap();
    w.proxy.set(move |meth, p, r| {
        if meth == "GET" && is_status(p, &sid) && r.status == 200 {
            json_edit(r, |v| {
                v["state"] = "node-attested".into();
                v["abort_reason"] = Value::Null;
                v["node"] = node_json.clone();
                if v.get("member").is_some() {
                    v["member"]["consented"] = false.into();
                    v["member"]["withdrawn"] = false.into();
                    v["member"]["granted"] = false.into();
                }
            });
        }
    });
    let err = m.consent(&sid, ConsentAction::Consent, None).unwrap_err();
    assert_eq!(check_of(&err), "withdrawal", "{err}");
    let err = m.verify_node(&sid, sealroom_member::now()).unwrap_err();
    assert_eq!(check_of(&err), "withdrawal", "{err}");
    let rec = m.record(&sid).unwrap().unwrap();
    assert!(matches!(
        rec.consent.map(|c| c.action),
        Some(ConsentAction::Withdraw)
    ));
    assert!(rec.grant.is_none());
    w.member(&w.parties[1])
        .verify_node(&sid, sealroom_member::now())
        .unwrap();

    let mut lines = Vec::new();
    let end = m
        .agent(
            &sealroom_member::agent::AgentOptions {
                session: sid,
                data_key: Some(who.datakey.clone()),
                blob: Some(who.blob.clone()),
                local_policy: None,
                accept_manifest: None,
                poll: Duration::from_millis(50),
                deadline: None,
            },
            &mut |v| lines.push(v),
        )
        .unwrap();
    assert!(
        matches!(&end, sealroom_member::agent::AgentEnd::Aborted(r) if r.contains("withdrew")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["step"] == "consent" || l["step"] == "grant"),
        "{lines:#?}"
    );
    w.proxy.clear();
    let st = w.status(&sid);
    let mine = st.members.iter().find(|x| x.name == who.name).unwrap();
    assert!(!mine.consented && mine.granted != Some(true));
}

/// In a private session (noise keyed in the TEE), a replacement node is a
/// second, independently noised training the coordinator could have let
/// finish: a member grants to it only when its own `max_epsilon` covers
/// every node granted to, times ε (check `privacy` otherwise, nothing
/// granted); the same node again, and a session without `[privacy]`, fail
/// over as before.
#[test]
fn a_replacement_node_in_a_private_session_needs_the_members_own_budget_for_two_trainings() {
    let w = World::new();
    let privacy: sealroom_protocol::privacy::PrivacySpec = serde_json::from_value(
        serde_json::json!({"mechanism": "dp-sgd", "noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5}),
    )
    .unwrap();
    let local = |max: f64| {
        sealroom_protocol::policy::Policy::from_toml(&format!(
            "accepted_kinds = [\"sim\"]\nallow_simulation = true\nmax_epsilon = {max}\n"
        ))
        .unwrap()
    };
    for private in [true, false] {
        let m = w.session_with(|s| {
            if private {
                s.privacy = Some(privacy.clone());
            }
        });
        let (sid, mh) = (m.session_id, m.hash());
        w.consent_and_upload_all(&sid);
        // The first node registers and is granted to.
        let (first_id, first) = coordinator_node(&mh, false);
        Client::new(&w.upstream(), Some(&first_id))
            .register_node(&sid, &first)
            .unwrap();
        let who = &w.parties[0];
        let member = w.member(who);
        let v = member.verify_node(&sid, sealroom_member::now()).unwrap();
        member.grant(v, &who.datakey).unwrap();
        // The same node again (a resend) is not a second training.
        member.verify_node(&sid, sealroom_member::now()).unwrap();

        // The coordinator declares it lost and serves a replacement.
        let (_, second) = coordinator_node(&mh, false);
        let second_json = serde_json::to_value(&second).unwrap();
        w.proxy.set(move |meth, p, r| {
            if meth == "GET" && is_status(p, &sid) && r.status == 200 {
                json_edit(r, |v| {
                    v["state"] = "node-attested".into();
                    v["node"] = second_json.clone();
                    if v.get("member").is_some() {
                        v["member"]["granted"] = false.into();
                    }
                });
            }
        });
        let now = sealroom_member::now();
        if !private {
            member.verify_node(&sid, now).unwrap();
            w.proxy.clear();
            continue;
        }
        let epsilon = m.privacy_spent().unwrap().epsilon;
        let err = member.verify_node(&sid, now).unwrap_err();
        assert_eq!(check_of(&err), "privacy", "{err}");
        assert!(err.to_string().contains("2 × ε"), "{err}");
        let err = member
            .verify_node_with(&sid, now, Some(&local(1.5 * epsilon)))
            .unwrap_err();
        assert_eq!(check_of(&err), "privacy", "{err}");
        let rec = member.record(&sid).unwrap().unwrap();
        assert_eq!(rec.grant.unwrap().node_key, first.node_key);
        let v = member
            .verify_node_with(&sid, now, Some(&local(2.5 * epsilon)))
            .unwrap();
        assert_eq!(v.registration().node_key, second.node_key);
        w.proxy.clear();
    }
}
