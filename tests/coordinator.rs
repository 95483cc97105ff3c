//! The coordinator over real HTTP on 127.0.0.1, driven by the protocol's
//! blocking `Client` (the one parties, owner and node use): a full session,
//! forgeries and replays, withdrawal, SIGKILL and restart of the real
//! `sealroom coordinator serve` process, and a canary scan of everything the
//! coordinator wrote.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{keccak256, B256};
use sealroom_contracts::{EmbeddedChain, ReadOptions};
use sealroom_coordinator::{Background, ChainSpec, Config};
use sealroom_protocol::api::{
    self, Client, ClientError, MemberView, NodeRegistration, Progress, ReportUpload, SessionState,
    SessionStatus,
};
use sealroom_protocol::dataset::{commit_stream, DatasetCommitment};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{validation_input_name, Consent, ConsentAction, Grant, Manifest};
use sealroom_protocol::policy::TeeKind;
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::stream::{DataKey, DEFAULT_SEGMENT_SIZE};
use sealroom_reports::attest::simulate::{sim_default_measurement, simulate};
use sealroom_reports::binding::expected_report_data;
use sealroom_reports::report::{signing_message, IntegrityReport, ReportKind};

/// A member of the session with its key, dataset key, commitment and blob.
struct Member {
    id: Identity,
    input: String,
    key: DataKey,
    commitment: DatasetCommitment,
    blob: Vec<u8>,
}

struct Fixture {
    manifest: Manifest,
    parties: Vec<Member>,
    owner: Identity,
    validation: Member,
    node: Identity,
    canary: String,
    /// Evidence per manifest hash: sim evidence is time-stamped, so a
    /// registration is made once and reused (grants name its hash).
    evidence: std::cell::RefCell<std::collections::HashMap<B256, Vec<u8>>>,
}

fn commit(csv: &str) -> (DataKey, DatasetCommitment, Vec<u8>) {
    let key = DataKey::generate().unwrap();
    let out = commit_stream(
        csv.as_bytes(),
        &key,
        DEFAULT_SEGMENT_SIZE,
        Vec::new(),
        |_| {},
    )
    .unwrap();
    (key, out.commitment, out.blob)
}

fn dataset(seed: usize, canary: Option<&str>) -> String {
    let mut s = String::from("mean_radius,mean_texture,diagnosis\n");
    for i in 0..20 {
        s.push_str(&format!("{}.{},{}.5,{}\n", seed * 10 + i, i, i * 3, i % 2));
    }
    if let Some(c) = canary {
        s.push_str(&format!("{c},1.0,1\n"));
    }
    s
}

fn fixture() -> Fixture {
    let scenario = Scenario::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/breast-cancer-3-hospitals.toml"),
    )
    .unwrap();
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).unwrap();
    let canary = format!("CANARY-{}", hex::encode(nonce));
    let owner = Identity::generate().unwrap();
    let parties: Vec<Member> = scenario
        .parties
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (key, commitment, blob) = commit(&dataset(i, (i == 0).then_some(canary.as_str())));
            Member {
                id: Identity::generate().unwrap(),
                input: p.name.clone(),
                key,
                commitment,
                blob,
            }
        })
        .collect();
    let (vkey, vcommitment, vblob) = commit(&dataset(9, None));
    let mut sid = [0u8; 32];
    getrandom::fill(&mut sid).unwrap();
    let manifest = Manifest::from_scenario(
        &scenario,
        B256::from(sid),
        1_700_000_000,
        parties
            .iter()
            .map(|p| (p.id.public(), p.commitment.clone()))
            .collect(),
        owner.public(),
        Some(vcommitment.clone()),
    )
    .unwrap();
    let validation = Member {
        id: Identity::generate().unwrap(), // unused: the owner signs for this input
        input: validation_input_name(&manifest.owner.name),
        key: vkey,
        commitment: vcommitment,
        blob: vblob,
    };
    Fixture {
        manifest,
        parties,
        owner,
        validation,
        node: Identity::generate().unwrap(),
        canary,
        evidence: Default::default(),
    }
}

impl Fixture {
    fn sid(&self) -> B256 {
        self.manifest.session_id
    }

    fn registration(&self, manifest_hash: B256) -> NodeRegistration {
        let n = self.node.public();
        let rd = expected_report_data(&n.ed25519, &n.x25519, &manifest_hash.0);
        let evidence = self
            .evidence
            .borrow_mut()
            .entry(manifest_hash)
            .or_insert_with(|| simulate(&rd, &sim_default_measurement(), false))
            .clone();
        NodeRegistration {
            node_key: n.ed25519,
            hpke_key: n.x25519,
            kind: TeeKind::Sim,
            evidence,
            certs: vec![],
            collateral: None,
            engine_measurement: hex::encode(sim_default_measurement()),
            gpu: None,
        }
    }

    /// Every (signer, member) pair that owns an input.
    fn inputs(&self) -> Vec<(&Identity, &Member)> {
        let mut v: Vec<_> = self.parties.iter().map(|p| (&p.id, p)).collect();
        v.push((&self.owner, &self.validation));
        v
    }

    fn grant(&self, signer: &Identity, m: &Member) -> Grant {
        let n = self.node.public();
        Grant::create(
            signer,
            &self.manifest.session_id,
            &self.manifest.hash(),
            &m.input,
            &m.commitment,
            n.ed25519,
            n.x25519,
            sealroom_reports::binding::evidence_hash(
                &self.registration(self.manifest.hash()).evidence,
            ),
            &m.key,
        )
        .unwrap()
    }

    fn report(
        &self,
        kind: ReportKind,
        prev: B256,
        sealed: Option<&[u8]>,
        evidence: &[u8],
    ) -> ReportUpload {
        let n = self.node.public();
        let r = IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: kind as u8,
            sessionId: self.sid(),
            manifestHash: self.manifest.hash(),
            inputsRoot: B256::repeat_byte(3),
            prevReportHash: prev,
            nodeKey: B256::from(n.ed25519),
            nodeHpkeKey: B256::from(n.x25519),
            evidenceHash: keccak256(evidence),
            teeKind: 3,
            insecureSimulation: true,
            modelHash: B256::ZERO,
            sealedModelHash: sealed
                .map(|s| B256::from(sealroom_protocol::hash::sha256(s)))
                .unwrap_or_default(),
            ownerKey: B256::from(self.owner.public().ed25519),
            trainingSummaryHash: B256::ZERO,
            seed: 7,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: kind == ReportKind::Completed,
            abortCode: if kind == ReportKind::Aborted { 4 } else { 0 },
            abortReason: if kind == ReportKind::Aborted {
                "test abort".into()
            } else {
                String::new()
            },
            timestamp: 1_700_000_100,
            privacy: Default::default(),
        };
        let sig = self.node.sign(&signing_message(&r.report_hash()));
        ReportUpload {
            report_abi: hex::encode(r.abi_bytes()),
            signature: hex::encode(sig),
        }
    }
}

fn api_status(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api {
            status, message, ..
        } => (status, message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn expect_err<T: std::fmt::Debug>(r: Result<T, ClientError>, status: u16, needle: &str) {
    let (s, m) = api_status(r.expect_err("request must be refused"));
    assert_eq!(s, status, "status for `{m}`");
    assert!(m.contains(needle), "`{m}` should mention `{needle}`");
}

/// A raw HTTP/1.1 request (for replaying exact bytes and forging headers).
fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("content-type: application/json\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

/// Opens the session's event stream; returns a line reader.
fn sse_open(base: &str, sid: &B256) -> BufReader<TcpStream> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /v1/sessions/{sid:#x}/events HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n").unwrap();
    BufReader::new(s)
}

/// Reads SSE lines until an `event: NAME` whose next `data:` line contains
/// `needle`; returns that data line.
fn sse_wait(r: &mut BufReader<TcpStream>, name: &str, needle: &str) -> String {
    let mut current = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "event stream ended before `{name}` with `{needle}`"
        );
        let line = line.trim_end();
        if let Some(ev) = line.strip_prefix("event:") {
            current = ev.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            if current == name && data.contains(needle) {
                return data.to_string();
            }
        }
    }
}

fn signed_headers(
    id: &Identity,
    method: &str,
    path: &str,
    ts: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    let nonce = hex::encode(nonce);
    let sig = id.sign(&api::request_signing_message(
        method, path, ts, &nonce, body,
    ));
    vec![
        (api::HDR_KEY, hex::encode(id.public().ed25519)),
        (api::HDR_TIMESTAMP, ts.to_string()),
        (api::HDR_NONCE, nonce),
        (api::HDR_SIGNATURE, hex::encode(sig)),
    ]
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn start(data: &Path) -> Background {
    Background::start(Config {
        listen: "127.0.0.1:0".into(),
        data: data.to_path_buf(),
        chain: ChainSpec::Embedded(data.join("chain")),
        chain_key: None,
        confirmations: None,
        contract: None,
        lease_s: sealroom_coordinator::service::DEFAULT_LEASE_S,
    })
    .unwrap()
}

fn consent_all(f: &Fixture, url: &str) {
    let mh = f.manifest.hash();
    for id in f.parties.iter().map(|p| &p.id).chain([&f.owner]) {
        Client::new(url, Some(id))
            .consent(&f.sid(), &Consent::sign(id, ConsentAction::Consent, mh))
            .unwrap();
    }
}

fn upload_all(f: &Fixture, url: &str) {
    for (signer, m) in f.inputs() {
        Client::new(url, Some(signer))
            .upload_blob(&f.sid(), &m.input, &m.blob)
            .unwrap();
    }
}

fn grant_all(f: &Fixture, url: &str) -> MemberView {
    let mut last = None;
    for (signer, m) in f.inputs() {
        last = Some(
            Client::new(url, Some(signer))
                .grant(&f.sid(), &f.grant(signer, m))
                .unwrap(),
        );
    }
    last.unwrap()
}

fn report_hash(st: &SessionStatus, kind: &str) -> B256 {
    st.reports
        .iter()
        .find(|r| r.kind == kind)
        .unwrap()
        .report_hash
}

#[test]
fn full_session_with_checks_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let url = server.url();
    let f = fixture();
    let sid = f.sid();
    let mh = f.manifest.hash();
    let owner = Client::new(&url, Some(&f.owner));
    let party0 = Client::new(&url, Some(&f.parties[0].id));
    let node = Client::new(&url, Some(&f.node));
    let anon = Client::new(&url, None);

    // Create: only the manifest's owner.
    expect_err(party0.create_session(&f.manifest), 403, "owner");
    expect_err(anon.create_session(&f.manifest), 401, "x-sealroom-key");
    let st = owner.create_session(&f.manifest).unwrap();
    assert_eq!(st.state, SessionState::Open);
    assert_eq!(st.manifest_hash, mh);
    assert_eq!(
        owner.create_session(&f.manifest).unwrap().state,
        SessionState::Open,
        "idempotent"
    );
    assert_eq!(anon.list_sessions().unwrap().len(), 1);

    // Consent: a non-member, and a consent over another manifest, are refused.
    let eve = Identity::generate().unwrap();
    expect_err(
        Client::new(&url, Some(&eve))
            .consent(&sid, &Consent::sign(&eve, ConsentAction::Consent, mh)),
        403,
        "not a member",
    );
    expect_err(
        party0.consent(
            &sid,
            &Consent::sign(&f.parties[0].id, ConsentAction::Consent, B256::ZERO),
        ),
        400,
        "another manifest",
    );
    expect_err(
        party0.consent(
            &sid,
            &Consent::sign(&f.parties[1].id, ConsentAction::Consent, mh),
        ),
        400,
        "consent",
    );
    // The member view: a stranger gets nothing; a party gets the header and
    // its own entry (proven under the committed root), the owner no entry;
    // both hash to the manifest hash; unsigned requests are refused.
    expect_err(
        Client::new(&url, Some(&eve)).member_view(&sid),
        403,
        "not a member",
    );
    expect_err(anon.member_view(&sid), 401, "x-sealroom-key");
    let p0 = f.parties[0].id.public().ed25519;
    let v = party0.member_view(&sid).unwrap();
    assert_eq!(v.manifest.check_for(&p0).unwrap(), mh);
    assert_eq!(v.manifest_hash, mh);
    let entry = v.manifest.entry.as_ref().unwrap();
    assert_eq!(entry.party, f.manifest.parties[0]);
    assert_eq!(
        v.manifest.header.parties.count,
        f.manifest.parties.len() as u64
    );
    assert_eq!(v.member.name, f.manifest.parties[0].name);
    assert!(!v.member.consented);
    let ov = owner.member_view(&sid).unwrap();
    assert!(ov.manifest.entry.is_none());
    assert_eq!(
        ov.manifest.check_for(&f.owner.public().ed25519).unwrap(),
        mh
    );
    assert_eq!(ov.member.role, "owner");
    consent_all(&f, &url);
    let v = party0.member_view(&sid).unwrap();
    assert!(v.member.consented);
    assert_eq!(v.counts.consented as usize, f.manifest.parties.len() + 1);

    // Blobs: wrong bytes, another member's input, and a non-member are refused.
    let mut wrong = f.parties[0].blob.clone();
    wrong[40] ^= 1;
    expect_err(
        party0.upload_blob(&sid, &f.parties[0].input, &wrong),
        409,
        "does not match its commitment",
    );
    expect_err(
        party0.upload_blob(&sid, &f.parties[0].input, &wrong[..10]),
        409,
        "does not match its commitment",
    );
    let mut long = f.parties[0].blob.clone();
    long.push(0);
    expect_err(
        party0.upload_blob(&sid, &f.parties[0].input, &long),
        413,
        "larger than",
    );
    expect_err(
        party0.upload_blob(&sid, &f.parties[1].input, &f.parties[1].blob),
        403,
        "another member",
    );
    expect_err(
        Client::new(&url, Some(&eve)).upload_blob(&sid, &f.parties[0].input, &f.parties[0].blob),
        403,
        "not a member",
    );
    upload_all(&f, &url);
    let st = anon.status(&sid).unwrap();
    assert!(
        st.members
            .iter()
            .all(|m| m.consented && m.blob_uploaded == Some(true)),
        "{:?}",
        st.members
    );
    // The list counts each step: everyone consented and uploaded, no grant
    // yet, so nobody is `ready` (which needs all three).
    let inputs = f.inputs().len() as u32;
    let listed = &anon.list_sessions().unwrap()[0];
    assert_eq!((listed.ready, listed.total), (0, st.members.len() as u32));
    assert_eq!(
        listed.counts,
        Some(sealroom_protocol::api::MemberCounts {
            consented: listed.total,
            inputs,
            uploaded: inputs,
            granted: 0,
        })
    );

    // Grants before a node: refused.
    expect_err(
        party0.grant(&sid, &f.grant(&f.parties[0].id, &f.parties[0])),
        409,
        "no node",
    );

    // Node: evidence bound to another manifest, a registration signed by
    // someone else, then the real one.
    expect_err(
        node.register_node(&sid, &f.registration(B256::repeat_byte(1))),
        409,
        "evidence refused",
    );
    expect_err(
        party0.register_node(&sid, &f.registration(mh)),
        403,
        "node_key",
    );
    // A registration whose self-reported measurement is not the attested one.
    let mut claims_other = f.registration(mh);
    claims_other.engine_measurement = hex::encode([7u8; 32]);
    expect_err(
        node.register_node(&sid, &claims_other),
        409,
        "engine.measurement",
    );
    let reg = f.registration(mh);
    let st = node.register_node(&sid, &reg).unwrap();
    assert_eq!(st.state, SessionState::NodeAttested);
    let verdict = st.coordinator_verdict.unwrap();
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["insecure_simulation"], true);

    // Grants: for another node, and for another member's input, are refused.
    let other = Identity::generate().unwrap();
    let p0 = &f.parties[0];
    let bad = Grant::create(
        &p0.id,
        &f.manifest.session_id,
        &f.manifest.hash(),
        &p0.input,
        &p0.commitment,
        other.public().ed25519,
        other.public().x25519,
        sealroom_reports::binding::evidence_hash(&reg.evidence),
        &p0.key,
    )
    .unwrap();
    expect_err(party0.grant(&sid, &bad), 409, "another node");
    // A grant to the registered node's keys, made over other evidence.
    let n = f.node.public();
    let other_evidence = Grant::create(
        &p0.id,
        &f.manifest.session_id,
        &f.manifest.hash(),
        &p0.input,
        &p0.commitment,
        n.ed25519,
        n.x25519,
        B256::repeat_byte(0xee),
        &p0.key,
    )
    .unwrap();
    expect_err(
        party0.grant(&sid, &other_evidence),
        409,
        "other than the registered",
    );
    // A grant made for another session (same member, input and node).
    let mut elsewhere = f.manifest.clone();
    elsewhere.session_id = B256::repeat_byte(9);
    let replayed = Grant::create(
        &p0.id,
        &elsewhere.session_id,
        &elsewhere.hash(),
        &p0.input,
        &p0.commitment,
        n.ed25519,
        n.x25519,
        sealroom_reports::binding::evidence_hash(&reg.evidence),
        &p0.key,
    )
    .unwrap();
    expect_err(party0.grant(&sid, &replayed), 400, "grant");
    expect_err(
        party0.grant(&sid, &f.grant(&f.parties[1].id, &f.parties[1])),
        403,
        "another member",
    );
    let st = grant_all(&f, &url);
    assert_eq!(st.state, SessionState::KeysGranted);
    let listed = &anon.list_sessions().unwrap()[0];
    assert_eq!(listed.ready, listed.total);
    assert_eq!(listed.counts.map(|c| c.granted), Some(inputs));
    // A consent after keys are granted: refused (a withdrawal is not: it
    // aborts in any state before `completed`, tested below and in
    // `a_withdrawal_during_training_stops_the_node_and_aborts_on_chain`).
    expect_err(
        Client::new(&url, Some(&f.parties[0].id)).consent(
            &sid,
            &Consent::sign(
                &f.parties[0].id,
                ConsentAction::Consent,
                B256::repeat_byte(9),
            ),
        ),
        400,
        "consent",
    );

    // Node work and blobs: only the node.
    expect_err(party0.work(&sid), 403, "registered node");
    expect_err(
        party0.blob(&sid, &p0.input).map(|_| ()),
        403,
        "registered node",
    );
    let work = node.work(&sid).unwrap();
    assert_eq!(work.consents.len(), 4);
    assert_eq!(work.grants.len(), 4);
    for (_, m) in f.inputs() {
        let mut got = Vec::new();
        node.blob(&sid, &m.input)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, m.blob, "blob of {}", m.input);
    }

    // Reports: a report signed by another key, and one for another session, are refused.
    let opened = f.report(ReportKind::Opened, B256::ZERO, None, &reg.evidence);
    let mut forged = opened.clone();
    forged.signature = hex::encode(other.sign(b"x"));
    expect_err(node.report(&sid, &forged), 400, "signature");
    let st = node.report(&sid, &opened).unwrap();
    assert_eq!(st.state, SessionState::InputsVerified);
    let rec = &st.reports[0];
    assert!(
        rec.tx_hash.is_some() && rec.block.is_some() && rec.gas_used.unwrap() > 0,
        "published: {rec:?}"
    );
    assert_eq!(
        node.report(&sid, &opened).unwrap().reports.len(),
        1,
        "re-post is a no-op"
    );

    node.progress(
        &sid,
        &Progress {
            phase: "training".into(),
            epoch: Some(1),
            epochs: Some(60),
            metrics: Some(serde_json::json!({"loss": 0.5})),
        },
    )
    .unwrap();
    let st = anon.status(&sid).unwrap();
    assert_eq!(st.state, SessionState::Training);
    assert_eq!(st.progress.as_ref().unwrap()["epoch"], 1);
    assert!(
        st.progress.as_ref().unwrap().get("metrics").is_none(),
        "metrics are private unless the manifest says"
    );

    // Completed + sealed model (a mismatching model is refused).
    let sealed = b"sealed model ciphertext".to_vec();
    let completed = f.report(
        ReportKind::Completed,
        report_hash(&st, "opened"),
        Some(&sealed),
        &[],
    );
    let st = node.report(&sid, &completed).unwrap();
    assert_eq!(
        st.state,
        SessionState::Training,
        "waits for the sealed model"
    );
    expect_err(owner.sealed_model(&sid), 409, "no sealed model");
    expect_err(
        node.upload_sealed_model(&sid, b"other bytes"),
        409,
        "sealedModelHash",
    );
    let st = node.upload_sealed_model(&sid, &sealed).unwrap();
    assert_eq!(
        st.state,
        SessionState::Published,
        "both reports are on chain"
    );
    assert!(st.reports.iter().all(|r| r.tx_hash.is_some()));

    // The chain holds both reports, as the coordinator recorded them.
    let contract = st.chain.as_ref().unwrap()["contract"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(st.chain.as_ref().unwrap()["label"]
        .as_str()
        .unwrap()
        .contains("embedded development chain"));
    let chain = EmbeddedChain::open_snapshot(data.join("chain")).unwrap();
    let onchain = sealroom_contracts::block_on(sealroom_contracts::read_session(
        &chain,
        contract,
        sid,
        &ReadOptions::default(),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(onchain.reports.len(), 2);
    assert_eq!(
        onchain.report(ReportKind::Opened).unwrap().report_hash,
        report_hash(&st, "opened")
    );
    // The first report carries the evidence envelope (evidence + manifest).
    let envelope = sealroom_reports::verifier::EvidenceEnvelope::from_bytes(
        &onchain.report(ReportKind::Opened).unwrap().evidence,
    )
    .unwrap();
    assert_eq!(envelope.evidence, reg.evidence);
    assert_eq!(envelope.manifest, f.manifest);
    assert_eq!(
        onchain.report(ReportKind::Completed).unwrap().report_hash,
        report_hash(&st, "completed")
    );

    // The model: not to a party, not to the node, yes to the owner.
    expect_err(party0.sealed_model(&sid), 403, "owner");
    expect_err(node.sealed_model(&sid), 403, "owner");
    assert_eq!(owner.sealed_model(&sid).unwrap(), sealed);
    assert_eq!(anon.status(&sid).unwrap().state, SessionState::Delivered);
    // The model is done: a withdrawal comes too late.
    expect_err(
        party0.consent(&sid, &Consent::sign(&p0.id, ConsentAction::Withdraw, mh)),
        409,
        "already completed",
    );

    // Replays, bad signatures and stale timestamps, on raw HTTP.
    let path = format!("/v1/sessions/{sid:#x}/consent");
    let body = serde_json::to_vec(&Consent::sign(&p0.id, ConsentAction::Consent, mh)).unwrap();
    let h = signed_headers(&p0.id, "POST", &path, now(), &body);
    let (s1, _) = raw_request(&url, "POST", &path, &h, &body);
    assert_eq!(s1, 200, "valid request (a repeated consent is a no-op)");
    let (s2, r2) = raw_request(&url, "POST", &path, &h, &body);
    assert_eq!(s2, 401);
    assert!(r2.contains("replayed"), "{r2}");
    let mut bad = signed_headers(&p0.id, "POST", &path, now(), &body);
    bad[3].1 = hex::encode([1u8; 64]);
    let (s3, r3) = raw_request(&url, "POST", &path, &bad, &body);
    assert_eq!(s3, 401);
    assert!(r3.contains("signature"), "{r3}");
    let stale = signed_headers(&p0.id, "POST", &path, now() - 3600, &body);
    let (s4, r4) = raw_request(&url, "POST", &path, &stale, &body);
    assert!(s4 == 401 && r4.contains("window"), "{r4}");
    let (s5, r5) = raw_request(
        &url,
        "POST",
        &path,
        &signed_headers(&p0.id, "POST", &path, now(), b"{}"),
        &body,
    );
    assert!(s5 == 401 && r5.contains("signature"), "body swapped: {r5}");
    let big = vec![b'x'; (1 << 20) + 10];
    let (s6, r6) = raw_request(
        &url,
        "POST",
        &path,
        &signed_headers(&p0.id, "POST", &path, now(), &big),
        &big,
    );
    assert!(s6 == 413 && r6.contains("too-large"), "{s6}");
    let (s7, r7) = raw_request(
        &url,
        "POST",
        "/v1/sessions",
        &signed_headers(&f.owner, "POST", "/v1/sessions", now(), b"not json"),
        b"not json",
    );
    assert!(s7 == 400 && r7.contains("bad-request"), "{r7}");
    // Malformed paths get JSON errors too.
    let (s8, r8) = raw_request(&url, "GET", "/v1/sessions/%FF%FE", &[], b"");
    assert!(s8 == 400 && r8.contains("bad-request"), "{r8}");
    let (s9, r9) = raw_request(&url, "GET", "/v1/sessions/0x12", &[], b"");
    assert!(s9 == 400 && r9.contains("not 32 bytes"), "{r9}");
    server.stop().unwrap();
}

#[test]
fn withdrawal_before_grants_aborts_cleanly_and_node_abort_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let url = server.url();
    let f = fixture();
    let sid = f.sid();
    let mh = f.manifest.hash();
    Client::new(&url, Some(&f.owner))
        .create_session(&f.manifest)
        .unwrap();
    consent_all(&f, &url);
    upload_all(&f, &url);
    let node = Client::new(&url, Some(&f.node));
    node.register_node(&sid, &f.registration(mh)).unwrap();
    let mut events = sse_open(&url, &sid);
    let first = sse_wait(&mut events, "status", "node-attested");
    assert!(first.contains(&format!("{sid:#x}")), "{first}");
    let p1 = &f.parties[1];
    let st = Client::new(&url, Some(&p1.id))
        .consent(&sid, &Consent::sign(&p1.id, ConsentAction::Withdraw, mh))
        .unwrap();
    assert_eq!(st.state, SessionState::Aborted);
    assert!(
        st.abort_reason.as_deref().unwrap().contains(&p1.input),
        "{:?}",
        st.abort_reason
    );
    let m = &st.member;
    assert_eq!(m.name, p1.input);
    assert!(m.withdrawn && !m.consented);
    sse_wait(&mut events, "member", "withdrawn");
    let aborted = sse_wait(&mut events, "state", "aborted");
    assert!(aborted.contains("consent withdrawn"), "{aborted}");
    // Nothing moves afterwards.
    expect_err(
        Client::new(&url, Some(&f.parties[0].id))
            .grant(&sid, &f.grant(&f.parties[0].id, &f.parties[0])),
        409,
        "aborted",
    );
    expect_err(
        Client::new(&url, Some(&p1.id))
            .consent(&sid, &Consent::sign(&p1.id, ConsentAction::Consent, mh)),
        409,
        "",
    );
    let work = node.work(&sid).unwrap();
    assert!(
        work.consents
            .iter()
            .any(|c| c.action == ConsentAction::Withdraw),
        "the node sees the withdrawal"
    );

    // A second session aborted by its node after opening: the signed
    // aborted report is published, chained to opened.
    let g = fixture();
    let gid = g.sid();
    let gmh = g.manifest.hash();
    Client::new(&url, Some(&g.owner))
        .create_session(&g.manifest)
        .unwrap();
    consent_all(&g, &url);
    upload_all(&g, &url);
    let gnode = Client::new(&url, Some(&g.node));
    let reg = g.registration(gmh);
    gnode.register_node(&gid, &reg).unwrap();
    grant_all(&g, &url);
    let st = gnode
        .report(
            &gid,
            &g.report(ReportKind::Opened, B256::ZERO, None, &reg.evidence),
        )
        .unwrap();
    let opened = report_hash(&st, "opened");
    expect_err(
        gnode.report(&gid, &g.report(ReportKind::Aborted, B256::ZERO, None, &[])),
        409,
        "prevReportHash",
    );
    let st = gnode
        .report(&gid, &g.report(ReportKind::Aborted, opened, None, &[]))
        .unwrap();
    assert_eq!(st.state, SessionState::Aborted);
    assert!(st.abort_reason.as_deref().unwrap().contains("test abort"));
    assert!(
        st.reports.iter().all(|r| r.tx_hash.is_some()),
        "{:?}",
        st.reports
    );
    expect_err(
        Client::new(&url, Some(&g.owner)).sealed_model(&gid),
        409,
        "aborted",
    );
    server.stop().unwrap();
}

/// The real binary as a child process.
struct Proc {
    child: Child,
    url: String,
}

fn spawn(data: &Path) -> Proc {
    std::fs::create_dir_all(data).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("coordinator.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(["coordinator", "serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Proc { child, url }
}

impl Proc {
    fn sigkill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on unix
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_state(url: &str, sid: &B256, want: SessionState) -> SessionStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = Client::new(url, None).status(sid).unwrap();
        if st.state == want {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "state {:?}, waiting for {want:?}",
            st.state
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn sigkill_at_every_stage_resumes_and_the_canary_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let f = fixture();
    let sid = f.sid();
    let mh = f.manifest.hash();

    let p = spawn(&data);
    Client::new(&p.url, Some(&f.owner))
        .create_session(&f.manifest)
        .unwrap();
    consent_all(&f, &p.url);
    upload_all(&f, &p.url);
    // A signed request acknowledged before the kill, replayed after it.
    let path = format!("/v1/sessions/{sid:#x}/consent");
    let body =
        serde_json::to_vec(&Consent::sign(&f.parties[0].id, ConsentAction::Consent, mh)).unwrap();
    let h = signed_headers(&f.parties[0].id, "POST", &path, now(), &body);
    assert_eq!(raw_request(&p.url, "POST", &path, &h, &body).0, 200);
    p.sigkill();

    // After commit: consents and blobs are intact, the replay is refused.
    let p = spawn(&data);
    let st = Client::new(&p.url, None).status(&sid).unwrap();
    assert_eq!(st.state, SessionState::Open);
    assert!(st
        .members
        .iter()
        .all(|m| m.consented && m.blob_uploaded == Some(true)));
    let (s, r) = raw_request(&p.url, "POST", &path, &h, &body);
    assert!(
        s == 401 && r.contains("replayed"),
        "nonce survives a restart: {r}"
    );
    let node = Client::new(&p.url, Some(&f.node));
    let reg = f.registration(mh);
    node.register_node(&sid, &reg).unwrap();
    grant_all(&f, &p.url);
    p.sigkill();

    // After grant.
    let p = spawn(&data);
    let node = Client::new(&p.url, Some(&f.node));
    assert_eq!(
        Client::new(&p.url, None).status(&sid).unwrap().state,
        SessionState::KeysGranted
    );
    let work = node.work(&sid).unwrap();
    assert_eq!(
        (work.consents.len(), work.grants.len()),
        (4, 4),
        "nothing lost, nothing duplicated"
    );
    let st = node
        .report(
            &sid,
            &f.report(ReportKind::Opened, B256::ZERO, None, &reg.evidence),
        )
        .unwrap();
    let opened = st.reports[0].clone();
    node.progress(
        &sid,
        &Progress {
            phase: "training".into(),
            epoch: Some(3),
            epochs: Some(60),
            metrics: None,
        },
    )
    .unwrap();
    p.sigkill();

    // During training.
    let p = spawn(&data);
    let node = Client::new(&p.url, Some(&f.node));
    let st = Client::new(&p.url, None).status(&sid).unwrap();
    assert_eq!(st.state, SessionState::Training);
    assert_eq!(
        st.reports,
        vec![opened.clone()],
        "the published report and its tx are kept"
    );
    let sealed = b"sealed model, restart test".to_vec();
    node.upload_sealed_model(&sid, &sealed).unwrap();
    node.report(
        &sid,
        &f.report(
            ReportKind::Completed,
            opened.report_hash,
            Some(&sealed),
            &[],
        ),
    )
    .unwrap();
    p.sigkill();

    // After the report.
    let p = spawn(&data);
    let st = wait_state(&p.url, &sid, SessionState::Published);
    assert_eq!(st.reports.len(), 2);
    assert_eq!(st.reports[0], opened);
    assert_eq!(
        Client::new(&p.url, Some(&f.owner))
            .sealed_model(&sid)
            .unwrap(),
        sealed
    );
    p.sigkill();
    let p = spawn(&data);
    assert_eq!(
        Client::new(&p.url, None).status(&sid).unwrap().state,
        SessionState::Delivered
    );
    // SIGTERM: graceful stop.
    let mut p = p;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(p.child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success(), "graceful exit: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Canary: not one byte of the coordinator's directory holds it
    // (database, WAL, blobs, chain state, logs).
    let mut files = Vec::new();
    all_files(&data, &mut files);
    assert!(files.iter().any(|p| p.ends_with("coordinator.log")));
    assert!(files.iter().any(|p| p.ends_with("coordinator.sqlite")));
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes
                .windows(f.canary.len())
                .any(|w| w == f.canary.as_bytes()),
            "canary found in {}",
            path.display()
        );
    }
    // The plaintext did contain it (the scan would find it).
    assert!(dataset(0, Some(&f.canary)).contains(&f.canary));
}

/// Scale: 1,000 parties consent, upload and grant in one session (run with
/// `cargo test --test coordinator -- --ignored scale`; prints the wall time).
#[test]
#[ignore]
fn scale_1000_parties_commit_and_grant() {
    let n: usize = std::env::var("SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let url = server.url();
    let mut f = fixture();
    f.parties = (0..n)
        .map(|i| {
            let (key, commitment, blob) = commit(&dataset(i, None));
            Member {
                id: Identity::generate().unwrap(),
                input: format!("party-{i:04}"),
                key,
                commitment,
                blob,
            }
        })
        .collect();
    f.manifest.parties = f
        .parties
        .iter()
        .map(|p| sealroom_protocol::manifest::ManifestParty {
            name: p.input.clone(),
            identity: p.id.public(),
            commitment: p.commitment.clone(),
        })
        .collect();
    f.manifest.validate().unwrap();
    let sid = f.sid();
    let t = Instant::now();
    Client::new(&url, Some(&f.owner))
        .create_session(&f.manifest)
        .unwrap();
    consent_all(&f, &url);
    upload_all(&f, &url);
    Client::new(&url, Some(&f.node))
        .register_node(&sid, &f.registration(f.manifest.hash()))
        .unwrap();
    let st = grant_all(&f, &url);
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(st.state, SessionState::KeysGranted);
    eprintln!("{{\"parties\": {n}, \"wall_s\": {wall:.2}}}");
    if std::env::var("SCALE_PROBE").is_ok() {
        let c = Client::new(&url, None);
        let t = Instant::now();
        for _ in 0..50 {
            c.status(&sid).unwrap();
        }
        eprintln!(
            "status same client: {:.2} ms",
            t.elapsed().as_secs_f64() * 20.0
        );
        let t = Instant::now();
        for _ in 0..50 {
            Client::new(&url, None).list_sessions().unwrap();
        }
        eprintln!(
            "list new client: {:.2} ms",
            t.elapsed().as_secs_f64() * 20.0
        );
        let t = Instant::now();
        for _ in 0..50 {
            let _: SessionStatus =
                serde_json::from_slice(&serde_json::to_vec(&st).unwrap()).unwrap();
        }
        eprintln!(
            "status json roundtrip: {:.2} ms",
            t.elapsed().as_secs_f64() * 20.0
        );
        let p0 = &f.parties[0];
        let t = Instant::now();
        for _ in 0..50 {
            Client::new(&url, Some(&p0.id))
                .consent(
                    &sid,
                    &Consent::sign(&p0.id, ConsentAction::Consent, f.manifest.hash()),
                )
                .unwrap_err();
        }
        eprintln!(
            "consent (refused, keys granted): {:.2} ms",
            t.elapsed().as_secs_f64() * 20.0
        );
    }
}

/// Signature headers of an upload declaring `len` bytes with SHA-256 `sha`
/// (signed at `ts`), as `Client::upload_blob_from` sends them.
fn upload_headers(
    id: &Identity,
    path: &str,
    ts: u64,
    len: u64,
    sha: &[u8; 32],
) -> Vec<(&'static str, String)> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).unwrap();
    let nonce = hex::encode(nonce);
    let sig = id.sign(&api::request_signing_message_prehashed(
        "PUT", path, ts, &nonce, len, sha,
    ));
    vec![
        (api::HDR_KEY, hex::encode(id.public().ed25519)),
        (api::HDR_TIMESTAMP, ts.to_string()),
        (api::HDR_NONCE, nonce),
        (api::HDR_SIGNATURE, hex::encode(sig)),
        (api::HDR_CONTENT_SHA256, hex::encode(sha)),
    ]
}

/// Sends only the head of a request that declares `content_length` body
/// bytes, and none of them, then reads the answer. A server that read (or
/// waited for) the body before answering never answers: the read times out
/// and the test fails.
fn head_only(
    base: &str,
    path: &str,
    headers: &[(&str, String)],
    content_length: u64,
) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/octet-stream\r\ncontent-length: {content_length}\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap_or_else(|e| {
            panic!("no answer while the body was withheld (did the server wait for it?): {e}")
        });
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Files in the blob store (its `tmp/` left out).
fn stored_blobs(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "tmp")
        .collect();
    v.sort();
    v
}

#[test]
fn uploads_are_authenticated_and_checked_before_the_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let url = server.url();
    let f = fixture();
    let sid = f.sid();
    Client::new(&url, Some(&f.owner))
        .create_session(&f.manifest)
        .unwrap();
    consent_all(&f, &url);
    let p0 = &f.parties[0];
    let path = format!(
        "/v1/sessions/{sid:#x}/blobs/{}",
        api::encode_segment(&p0.input)
    );
    let len = p0.commitment.ciphertext_len;
    let sha = p0.commitment.ciphertext_sha256.0;
    let eve = Identity::generate().unwrap();

    // Each is answered from the head alone: not one body byte is sent.
    let refused = |headers: Vec<(&str, String)>, declared: u64, status: u16, needle: &str| {
        let (s, text) = head_only(&url, &path, &headers, declared);
        assert_eq!(s, status, "{text}");
        assert!(text.contains(needle), "`{text}` should mention `{needle}`");
    };
    // A signature over another length than the one declared.
    let mut h = upload_headers(&p0.id, &path, now(), len + 1, &sha);
    h.retain(|(k, _)| *k != api::HDR_CONTENT_SHA256);
    h.push((api::HDR_CONTENT_SHA256, hex::encode(sha)));
    refused(h, len, 401, "signature");
    // The body hash not declared.
    let mut h = upload_headers(&p0.id, &path, now(), len, &sha);
    h.retain(|(k, _)| *k != api::HDR_CONTENT_SHA256);
    refused(h, len, 401, api::HDR_CONTENT_SHA256);
    // Stale.
    refused(
        upload_headers(&p0.id, &path, now() - 3600, len, &sha),
        len,
        401,
        "window",
    );
    // Validly signed by a non-member, and by a member for another's input.
    refused(
        upload_headers(&eve, &path, now(), len, &sha),
        len,
        403,
        "not a member",
    );
    let p1 = &f.parties[1];
    refused(
        upload_headers(&p1.id, &path, now(), len, &sha),
        len,
        403,
        "another member",
    );
    // Validly signed by the owner of the input, but declaring a gigabyte, a
    // shorter body, or other bytes than the commitment.
    refused(
        upload_headers(&p0.id, &path, now(), 1 << 30, &sha),
        1 << 30,
        413,
        "larger than",
    );
    refused(
        upload_headers(&p0.id, &path, now(), len - 1, &sha),
        len - 1,
        409,
        "does not match its commitment",
    );
    refused(
        upload_headers(&p0.id, &path, now(), len, &[7; 32]),
        len,
        409,
        "does not match its commitment",
    );
    assert!(stored_blobs(&data).is_empty());

    // Signed over the committed length and hash, but other bytes arrive:
    // refused after streaming, and nothing is stored.
    let mut altered = p0.blob.clone();
    altered[len as usize / 2] ^= 1;
    let (s, text) = raw_request(
        &url,
        "PUT",
        &path,
        &upload_headers(&p0.id, &path, now(), len, &sha),
        &altered,
    );
    assert!(
        s == 400 && text.contains("does not match what was signed"),
        "{text}"
    );
    assert!(stored_blobs(&data).is_empty(), "{:?}", stored_blobs(&data));
    let st = Client::new(&url, None).status(&sid).unwrap();
    let m0 = st.members.iter().find(|m| m.name == p0.input).unwrap();
    assert_eq!(m0.blob_uploaded, Some(false));

    // A JSON request whose declared body hash is not its body's.
    let cpath = format!("/v1/sessions/{sid:#x}/consent");
    let body = serde_json::to_vec(&Consent::sign(
        &p0.id,
        ConsentAction::Consent,
        f.manifest.hash(),
    ))
    .unwrap();
    let mut h = signed_headers(&p0.id, "POST", &cpath, now(), &body);
    h.push((api::HDR_CONTENT_SHA256, hex::encode([3u8; 32])));
    let (s, text) = raw_request(&url, "POST", &cpath, &h, &body);
    assert!(s == 400 && text.contains(api::HDR_CONTENT_SHA256), "{text}");

    // The real upload, streamed from a reader with progress.
    let seen = std::cell::RefCell::new(Vec::new());
    let st = Client::new(&url, Some(&p0.id))
        .upload_blob_from(
            &sid,
            &p0.input,
            len,
            sha,
            std::io::Cursor::new(p0.blob.clone()),
            &|sent, total| seen.borrow_mut().push((sent, total)),
        )
        .unwrap();
    let m0 = &st.member;
    assert_eq!(m0.name, p0.input);
    assert_eq!(m0.blob_uploaded, Some(true));
    assert_eq!(seen.into_inner().last(), Some(&(len, len)));
    assert_eq!(stored_blobs(&data), vec![hex::encode(sha)]);
    server.stop().unwrap();
}

#[test]
fn served_blobs_and_sealed_models_are_rehashed_and_altered_store_files_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data);
    let url = server.url();
    let f = fixture();
    let sid = f.sid();
    let mh = f.manifest.hash();
    let owner = Client::new(&url, Some(&f.owner));
    let node = Client::new(&url, Some(&f.node));
    let anon = Client::new(&url, None);
    owner.create_session(&f.manifest).unwrap();
    consent_all(&f, &url);
    upload_all(&f, &url);
    let reg = f.registration(mh);
    node.register_node(&sid, &reg).unwrap();
    assert_eq!(grant_all(&f, &url).state, SessionState::KeysGranted);

    // The coordinator's store rewrites one bit of a party's blob in place.
    let p0 = &f.parties[0];
    let file = data
        .join("blobs")
        .join(hex::encode(p0.commitment.ciphertext_sha256));
    let good = std::fs::read(&file).unwrap();
    assert_eq!(good, p0.blob);
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    // The response is cut short either in its body or, when the whole blob
    // fits the first chunk the server would send, before its headers are
    // flushed: both are a transport error, and neither hands over the blob.
    let mut got = Vec::new();
    let read = node
        .blob(&sid, &p0.input)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|mut body| body.read_to_end(&mut got));
    assert!(
        read.is_err() && got.len() < good.len(),
        "an altered blob must not be served whole ({} of {} bytes, {read:?})",
        got.len(),
        good.len()
    );
    // Restored, it is served whole.
    std::fs::write(&file, &good).unwrap();
    let mut got = Vec::new();
    node.blob(&sid, &p0.input)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, p0.blob);

    // The sealed model, replaced in the store after publication.
    let st = node
        .report(
            &sid,
            &f.report(ReportKind::Opened, B256::ZERO, None, &reg.evidence),
        )
        .unwrap();
    let sealed = b"sealed model ciphertext".to_vec();
    let completed = f.report(
        ReportKind::Completed,
        report_hash(&st, "opened"),
        Some(&sealed),
        &[],
    );
    node.report(&sid, &completed).unwrap();
    let st = node.upload_sealed_model(&sid, &sealed).unwrap();
    assert_eq!(st.state, SessionState::Published);
    let file = data
        .join("blobs")
        .join(hex::encode(sealroom_protocol::hash::sha256(&sealed)));
    std::fs::write(&file, b"a model the coordinator sealed").unwrap();
    expect_err(owner.sealed_model(&sid), 500, "blob-hash");
    assert_eq!(
        anon.status(&sid).unwrap().state,
        SessionState::Published,
        "nothing was delivered"
    );
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(owner.sealed_model(&sid).unwrap(), sealed);
    assert_eq!(anon.status(&sid).unwrap().state, SessionState::Delivered);
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------
// Nodes come and go: every process is the real binary (`coordinator serve`,
// `node serve`, `party agent`), driven only through the documented commands.

const SEALROOM: &str = env!("CARGO_BIN_EXE_sealroom");

/// `sealroom ARGS…`, which must succeed; its stdout.
fn sealroom_ok(args: &[&str]) -> String {
    let out = Command::new(SEALROOM).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "sealroom {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `coordinator serve` on a fixed port (so agents and nodes reach it again
/// after a restart), with a short lease.
fn spawn_at(data: &Path, port: u16, lease_s: u64) -> Proc {
    std::fs::create_dir_all(data).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join("coordinator.log"))
        .unwrap();
    let mut child = Command::new(SEALROOM)
        .args([
            "coordinator",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data")
        .arg(data)
        .args(["--lease-s", &lease_s.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Proc { child, url }
}

/// A member as the CLI knows it: identity, blob, sealed data key, record dir.
struct CliMember {
    name: String,
    key: PathBuf,
    blob: PathBuf,
    datakey: PathBuf,
    state: PathBuf,
}

/// A consortium set up from the CLI alone: keys, commitments, a scenario
/// whose training lasts long enough to interrupt.
struct Consortium {
    dir: PathBuf,
    scenario: PathBuf,
    owner: CliMember,
    parties: Vec<CliMember>,
}

/// On a failure, every log of the consortium's processes goes to stderr
/// (the temporary directory is removed with the test).
impl Drop for Consortium {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut logs = vec![];
        all_files(&self.dir, &mut logs);
        for p in logs {
            let name = p.display().to_string();
            if name.ends_with(".log") || name.ends_with(".out") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(6000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                eprintln!("===== {name}\n{tail}");
            }
        }
    }
}

impl Consortium {
    fn new(dir: &Path, epochs: u32) -> Self {
        Self::with_extra(dir, epochs, "")
    }

    /// With `extra` TOML appended to the scenario (a `[privacy]` table).
    fn with_extra(dir: &Path, epochs: u32, extra: &str) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text = std::fs::read_to_string(root.join("breast-cancer-3-hospitals.toml")).unwrap();
        let data = root.join("data/breast-cancer/");
        let text = text
            .replace("\"data/breast-cancer/", &format!("\"{}", data.display()))
            .replace("epochs = 300", &format!("epochs = {epochs}"))
            + extra;
        assert!(text.contains(&format!("epochs = {epochs}")));
        let scenario = dir.join("scenario.toml");
        std::fs::write(&scenario, text).unwrap();
        let member = |name: &str, csv: &str| {
            let key = dir.join(format!("{name}.json"));
            sealroom_ok(&["keygen", "--out", key.to_str().unwrap()]);
            let public = sealroom_ok(&["keygen", "--out", key.to_str().unwrap(), "--public"]);
            std::fs::write(dir.join(format!("{name}.pub.json")), public).unwrap();
            let blob = dir.join(format!("{name}.sealed"));
            sealroom_ok(&[
                "commit",
                data.join(csv).to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--blob-out",
                blob.to_str().unwrap(),
            ]);
            CliMember {
                name: name.to_string(),
                key,
                datakey: PathBuf::from(format!("{}.datakey", blob.display())),
                blob,
                state: dir.join(format!("{name}.state")),
            }
        };
        let parties = ["hospital-a", "hospital-b", "hospital-c"]
            .iter()
            .map(|n| member(n, &format!("{n}.csv")))
            .collect();
        let owner = member("owner", "owner-validation.csv");
        Self {
            dir: dir.to_path_buf(),
            scenario,
            owner,
            parties,
        }
    }

    fn members(&self) -> impl Iterator<Item = &CliMember> {
        self.parties.iter().chain([&self.owner])
    }

    /// `owner create` from the commitments and public keys: (session id as
    /// given to the CLI, manifest hash, session id).
    fn create(&self, url: &str) -> (String, String, B256) {
        let mut args: Vec<String> = [
            "owner",
            "create",
            "--coordinator",
            url,
            "--key",
            self.owner.key.to_str().unwrap(),
            "--scenario",
            self.scenario.to_str().unwrap(),
            "--json",
        ]
        .map(String::from)
        .to_vec();
        for p in &self.parties {
            args.push("--commitment".into());
            args.push(format!("{}={}.commitment.json", p.name, p.blob.display()));
            args.push("--party-key".into());
            args.push(format!(
                "{}={}",
                p.name,
                self.dir.join(format!("{}.pub.json", p.name)).display()
            ));
        }
        args.push("--commitment".into());
        args.push(format!(
            "validation={}.commitment.json",
            self.owner.blob.display()
        ));
        let out = sealroom_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let session = v["session_id"].as_str().unwrap().to_string();
        let sid = session.parse().unwrap();
        (
            session,
            v["manifest_hash"].as_str().unwrap().to_string(),
            sid,
        )
    }

    /// `party agent` for `m`, appending its JSON lines to `NAME.agent-SESSION.log`.
    fn agent(&self, url: &str, m: &CliMember, session: &str, accept: &str) -> Child {
        self.agent_with(url, m, session, &["--accept-manifest", accept])
    }

    /// `party agent` with other flags (`--accept-manifest` among them or not).
    fn agent_with(&self, url: &str, m: &CliMember, session: &str, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.agent_log(m, session))
            .unwrap();
        Command::new(SEALROOM)
            .args(["party", "agent", "--coordinator", url, "--session", session])
            .arg("--key")
            .arg(&m.key)
            .arg("--state")
            .arg(&m.state)
            .arg("--data-key")
            .arg(&m.datakey)
            .arg("--blob")
            .arg(&m.blob)
            .args(extra)
            .args(["--poll-s", "0.2"])
            .stdout(Stdio::from(log))
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn agent_log(&self, m: &CliMember, session: &str) -> PathBuf {
        self.dir
            .join(format!("{}.agent-{}.log", m.name, &session[2..10]))
    }

    /// The agent's decisions so far (across its restarts).
    fn decisions(&self, m: &CliMember, session: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.agent_log(m, session))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// `node serve --tee sim`, its stderr to `node-TAG.log`.
    fn node(&self, url: &str, tag: &str, max_sessions: u32) -> Child {
        Command::new(SEALROOM)
            .args([
                "node",
                "serve",
                "--coordinator",
                url,
                "--tee",
                "sim",
                "--poll-s",
                "0.2",
            ])
            .args(["--max-sessions", &max_sessions.to_string()])
            .stdout(std::fs::File::create(self.dir.join(format!("node-{tag}.out"))).unwrap())
            .stderr(std::fs::File::create(self.dir.join(format!("node-{tag}.log"))).unwrap())
            .spawn()
            .unwrap()
    }
}

fn wait_until(
    url: &str,
    sid: &B256,
    what: &str,
    done: impl Fn(&SessionStatus) -> bool,
) -> SessionStatus {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if let Ok(st) = Client::new(url, None).status(sid) {
            if done(&st) {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; state {}",
                st.state.as_str()
            );
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the node has finished at least one epoch.
fn wait_for_training(url: &str, sid: &B256) -> SessionStatus {
    wait_until(url, sid, "training", |s| {
        s.state == SessionState::Training
            && s.progress
                .as_ref()
                .and_then(|p| p["epoch"].as_u64())
                .unwrap_or(0)
                >= 1
    })
}

fn exit_code(mut c: Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn decoded(r: &api::ReportRecord) -> IntegrityReport {
    IntegrityReport::from_abi_bytes(&hex::decode(&r.report_abi).unwrap()).unwrap()
}

fn count(ds: &[serde_json::Value], step: &str, outcome: &str) -> usize {
    ds.iter()
        .filter(|d| d["step"] == step && d["outcome"] == outcome)
        .count()
}

/// Short enough to keep the test quick, long enough (four missed
/// heartbeats) that a loaded CI machine does not lose a healthy node.
const FAILOVER_LEASE_S: u64 = 6;

/// The scenario: two `node serve`, one agent per member; the node
/// holding the session is SIGKILLed while it trains, the coordinator is
/// SIGKILLed during the fail-over and an agent mid-session; the other node
/// completes, with the model an uninterrupted `sealroom run` produces, and
/// the regulator's verifier shows the lost attempt.
#[test]
fn a_node_killed_while_training_is_replaced_and_the_replay_is_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Consortium::new(dir, 3000);
    let data = dir.join("coordinator");
    let port = free_port();
    let coordinator = spawn_at(&data, port, FAILOVER_LEASE_S);
    let url = coordinator.url.clone();
    let (session, mh, sid) = c.create(&url);
    let mut agents: Vec<Option<Child>> = c
        .members()
        .map(|m| Some(c.agent(&url, m, &session, &mh)))
        .collect();
    let nodes = [c.node(&url, "1", 1), c.node(&url, "2", 1)];

    // Training has started on one of the two nodes.
    let st = wait_for_training(&url, &sid);
    let first = st.attempts.last().unwrap().clone();
    assert_eq!(first.number, 1);
    let first_key = hex::encode(first.node.node_key);
    // The node's own line naming its key (the other node's log may name it
    // too, in the coordinator's refusal: "held by node KEY").
    let own_key_line = format!("node: key {first_key} for session");
    let holder = (0..2)
        .find(|i| {
            std::fs::read_to_string(dir.join(format!("node-{}.log", i + 1)))
                .unwrap()
                .contains(&own_key_line)
        })
        .expect("one node log names the holder's key");
    let [n1, n2] = nodes;
    let (holder_proc, other) = if holder == 0 { (n1, n2) } else { (n2, n1) };
    let mut holder_proc = holder_proc;
    holder_proc.kill().unwrap(); // SIGKILL, mid-training
    holder_proc.wait().unwrap();
    // The coordinator dies during the fail-over, and an agent mid-session.
    coordinator.sigkill();
    let mut a0 = agents[0].take().unwrap();
    a0.kill().unwrap();
    a0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let coordinator = spawn_at(&data, port, FAILOVER_LEASE_S);
    assert_eq!(coordinator.url, url);
    agents[0] = Some(c.agent(&url, &c.parties[0], &session, &mh));

    let st = wait_until(&url, &sid, "published", |s| {
        s.state >= SessionState::Published
            && s.state != SessionState::Aborted
            && s.reports.iter().all(|r| r.tx_hash.is_some())
    });
    assert_eq!(
        exit_code(other, Duration::from_secs(60)),
        Some(0),
        "the replacement node served one session"
    );
    for a in agents.into_iter().flatten() {
        assert_eq!(
            exit_code(a, Duration::from_secs(60)),
            Some(0),
            "agents exit 0 on completion"
        );
    }

    // Two attempts: the first lost after its `opened`, the second finished.
    assert_eq!(st.attempts.len(), 2, "{:?}", st.attempts);
    assert_eq!(st.attempts[0].outcome, api::AttemptOutcome::Lost);
    assert_eq!(st.attempts[1].outcome, api::AttemptOutcome::Finished);
    assert_ne!(st.attempts[0].node.node_key, st.attempts[1].node.node_key);
    let kinds: Vec<&str> = st.reports.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "opened", "completed"]);
    let (o1, o2, done) = (
        decoded(&st.reports[0]),
        decoded(&st.reports[1]),
        decoded(&st.reports[2]),
    );
    assert_eq!(o1.prevReportHash, B256::ZERO);
    assert_eq!(
        o2.prevReportHash, st.reports[0].report_hash,
        "the replacement names the lost attempt"
    );
    assert_eq!(done.prevReportHash, st.reports[1].report_hash);
    assert_eq!(o1.nodeKey.0, st.attempts[0].node.node_key);
    assert_eq!(done.nodeKey.0, st.attempts[1].node.node_key);
    assert_eq!(
        st.attempts[0].opened_report_hash,
        Some(st.reports[0].report_hash)
    );

    // Nothing lost or duplicated by the agents, across the restarts.
    for m in c.members() {
        let ds = c.decisions(m, &session);
        assert_eq!(count(&ds, "consent", "signed"), 1, "{}: {ds:#?}", m.name);
        assert_eq!(count(&ds, "upload", "sent"), 1, "{}: {ds:#?}", m.name);
        let granted: Vec<&str> = ds
            .iter()
            .filter(|d| d["step"] == "grant" && d["outcome"] == "granted")
            .map(|d| d["node"].as_str().unwrap())
            .collect();
        let expected = [
            hex::encode(st.attempts[0].node.node_key),
            hex::encode(st.attempts[1].node.node_key),
        ];
        assert_eq!(
            granted, expected,
            "{}: one grant per node, in order",
            m.name
        );
        let rec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(m.state.join(format!("{session}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(rec["grant"]["node_key"], expected[1], "{}", m.name);
        assert_eq!(
            rec["earlier_grants"][0]["node_key"], expected[0],
            "{}",
            m.name
        );
    }

    // Deterministic replay: the model of an uninterrupted run of the same scenario.
    let reference = sealroom_ok(&[
        "run",
        c.scenario.to_str().unwrap(),
        "--out",
        dir.join("reference").to_str().unwrap(),
        "--json",
    ]);
    let reference: serde_json::Value = serde_json::from_str(reference.trim()).unwrap();
    assert_eq!(
        reference["model"]["sha256"].as_str().unwrap(),
        format!("{:#x}", done.modelHash),
        "the fail-over changed the model"
    );

    // The regulator's verifier, from the chain and from a bundle, shows the lost attempt.
    let contract = st.chain.as_ref().unwrap()["contract"]
        .as_str()
        .unwrap()
        .to_string();
    drop(coordinator);
    let chain_dir = data.join("chain");
    let from_chain = [
        "--session",
        &session,
        "--chain-dir",
        chain_dir.to_str().unwrap(),
        "--contract",
        &contract,
    ];
    let mut args = vec!["report", "verify"];
    args.extend(from_chain);
    let human = sealroom_ok(&args);
    assert!(human.contains("VERIFIED"), "{human}");
    assert!(human.contains("lost"), "the lost attempt is shown: {human}");
    args.push("--json");
    let v: serde_json::Value = serde_json::from_str(sealroom_ok(&args).trim()).unwrap();
    let attempts = v["attempts"].as_array().expect("attempts in the JSON");
    assert_eq!(attempts.len(), 2, "{v:#}");
    assert_eq!(attempts[0]["outcome"], "lost", "{v:#}");
    assert_eq!(attempts[1]["outcome"], "completed", "{v:#}");
    let bundle = dir.join("bundle.json");
    let mut args = vec!["report", "bundle", "--out", bundle.to_str().unwrap()];
    args.extend(from_chain);
    sealroom_ok(&args);
    let human = sealroom_ok(&["report", "verify", bundle.to_str().unwrap()]);
    assert!(
        human.contains("VERIFIED") && human.contains("lost"),
        "{human}"
    );
}

/// A member's withdrawal while the node trains stops the node, which wipes
/// and signs `aborted`; the session ends aborted on chain and the agents
/// exit 1 with the reason.
#[test]
fn a_withdrawal_during_training_stops_the_node_and_aborts_on_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Consortium::new(dir, 3000);
    let coordinator = spawn_at(&dir.join("coordinator"), free_port(), 30);
    let url = coordinator.url.clone();
    let (session, mh, sid) = c.create(&url);
    let agents: Vec<Child> = c
        .members()
        .map(|m| c.agent(&url, m, &session, &mh))
        .collect();
    let node = c.node(&url, "1", 1);
    wait_for_training(&url, &sid);
    let b = &c.parties[1];
    sealroom_ok(&[
        "party",
        "consent",
        "--withdraw",
        "--coordinator",
        &url,
        "--session",
        &session,
        "--key",
        b.key.to_str().unwrap(),
        "--state",
        b.state.to_str().unwrap(),
    ]);
    let st = wait_until(&url, &sid, "aborted on chain", |s| {
        s.reports
            .iter()
            .any(|r| r.kind == "aborted" && r.tx_hash.is_some())
    });
    assert_eq!(st.state, SessionState::Aborted);
    assert!(
        st.abort_reason
            .as_deref()
            .unwrap_or("")
            .contains("hospital-b"),
        "{:?}",
        st.abort_reason
    );
    let aborted = decoded(st.reports.iter().find(|r| r.kind == "aborted").unwrap());
    assert!(aborted.inputsWiped);
    assert!(
        aborted.abortReason.contains("withdrawal"),
        "{}",
        aborted.abortReason
    );
    assert_eq!(aborted.prevReportHash, report_hash(&st, "opened"));
    let progress_epoch = st
        .progress
        .as_ref()
        .and_then(|p| p["epoch"].as_u64())
        .unwrap_or(0);
    assert!(progress_epoch < 3000, "the node stopped before the end");
    assert_eq!(
        exit_code(node, Duration::from_secs(60)),
        Some(0),
        "node serve held its one session"
    );
    for a in agents {
        assert_eq!(
            exit_code(a, Duration::from_secs(60)),
            Some(1),
            "agents exit 1 on abort"
        );
    }
    let ds = c.decisions(&c.parties[0], &session);
    assert_eq!(count(&ds, "session", "aborted"), 1, "{ds:#?}");
}

/// `node serve` takes sessions one after another, each with a fresh key
/// and fresh evidence bound to that session's manifest.
#[test]
fn node_serve_runs_three_sessions_back_to_back_with_fresh_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Consortium::new(dir, 30);
    let coordinator = spawn_at(&dir.join("coordinator"), free_port(), 30);
    let url = coordinator.url.clone();
    let node = c.node(&url, "1", 3);
    let mut keys = std::collections::HashSet::new();
    let mut evidence = std::collections::HashSet::new();
    for _ in 0..3 {
        let (session, mh, sid) = c.create(&url);
        let agents: Vec<Child> = c
            .members()
            .map(|m| c.agent(&url, m, &session, &mh))
            .collect();
        let st = wait_until(&url, &sid, "published", |s| {
            s.state >= SessionState::Published && s.reports.iter().all(|r| r.tx_hash.is_some())
        });
        for a in agents {
            assert_eq!(exit_code(a, Duration::from_secs(60)), Some(0));
        }
        let opened = decoded(&st.reports[0]);
        keys.insert(opened.nodeKey);
        evidence.insert(opened.evidenceHash);
    }
    assert_eq!(
        exit_code(node, Duration::from_secs(60)),
        Some(0),
        "--max-sessions 3 ends the node"
    );
    assert_eq!(keys.len(), 3, "a fresh node key per session");
    assert_eq!(evidence.len(), 3, "fresh evidence per session");
    let out = std::fs::read_to_string(dir.join("node-1.out")).unwrap();
    assert_eq!(
        out.lines().filter(|l| l.contains("\"completed\"")).count(),
        3,
        "{out}"
    );
}

/// An agent consents only to the manifest hash it was given (without one it
/// shows the manifest and waits), and a node that its own, stricter policy
/// refuses gets no grant even though the manifest's policy accepts it.
/// A member's own `max_epsilon`: `party consent --policy` and `party
/// agent --policy` refuse (exit 1, check `privacy`, nothing signed) a
/// manifest whose training spends more ε than it allows — recomputed from
/// the served manifest's committed DP-SGD parameters — and consent to one
/// within it; a manifest without `[privacy]` is above any limit.
#[test]
fn members_refuse_to_consent_above_their_own_max_epsilon() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Consortium::with_extra(
        dir,
        30,
        "\n[privacy]\nmechanism = \"dp-sgd\"\ntarget_epsilon = 3.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n",
    );
    let coordinator = spawn_at(&dir.join("coordinator"), free_port(), 30);
    let url = coordinator.url.clone();
    let (session, mh, sid) = c.create(&url);
    let limit = |name: &str, max: f64| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!("accepted_kinds = [\"sim\"]\nallow_simulation = true\nmax_epsilon = {max}\n"),
        )
        .unwrap();
        p
    };
    let (tight, loose) = (limit("tight.toml", 1.0), limit("loose.toml", 5.0));
    let consent = |m: &CliMember, policy: &Path| {
        Command::new(SEALROOM)
            .args([
                "party",
                "consent",
                "--coordinator",
                &url,
                "--session",
                &session,
            ])
            .arg("--key")
            .arg(&m.key)
            .arg("--state")
            .arg(&m.state)
            .args(["--manifest-hash", &mh, "--policy"])
            .arg(policy)
            .output()
            .unwrap()
    };
    let [a, b] = [&c.parties[0], &c.parties[1]];
    let o = consent(a, &tight);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("privacy")
            && err.contains("above max_epsilon 1")
            && err.contains("ε = 3.0000"),
        "{err}"
    );
    let o = consent(a, &loose);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The agent refuses the same way and stops with exit 1.
    let mut agent = c.agent_with(
        &url,
        b,
        &session,
        &[
            "--accept-manifest",
            &mh,
            "--policy",
            tight.to_str().unwrap(),
        ],
    );
    let status = agent.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let d = c.decisions(b, &session);
    let refused = d
        .iter()
        .find(|l| l["step"] == "consent" && l["outcome"] == "refused")
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!(refused["check"], "privacy");
    let st = Client::new(&url, None).status(&sid).unwrap();
    let consented = |n: &str| st.members.iter().find(|m| m.name == n).unwrap().consented;
    assert!(consented("hospital-a") && !consented("hospital-b"));

    // No [privacy] at all: above any max_epsilon.
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let c2 = Consortium::new(&plain, 30);
    let (session2, mh2, _) = c2.create(&url);
    let o = Command::new(SEALROOM)
        .args([
            "party",
            "consent",
            "--coordinator",
            &url,
            "--session",
            &session2,
        ])
        .arg("--key")
        .arg(&c2.parties[0].key)
        .args(["--manifest-hash", &mh2, "--policy"])
        .arg(&loose)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs differentially private training"),
        "{err}"
    );
}

#[test]
fn agents_consent_only_to_the_accepted_manifest_and_refuse_nodes_their_own_policy_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = Consortium::new(dir, 30);
    let coordinator = spawn_at(&dir.join("coordinator"), free_port(), 30);
    let url = coordinator.url.clone();
    let (session, mh, sid) = c.create(&url);
    let strict = dir.join("no-simulation.toml");
    std::fs::write(&strict, "allow_simulation = false\n").unwrap();
    let other = format!("{:#x}", B256::repeat_byte(0x42));
    let [a, b, cc] = [&c.parties[0], &c.parties[1], &c.parties[2]];
    let agents = vec![
        c.agent_with(&url, a, &session, &[]),
        c.agent_with(&url, b, &session, &["--accept-manifest", &other]),
        c.agent_with(
            &url,
            cc,
            &session,
            &[
                "--accept-manifest",
                &mh,
                "--policy",
                strict.to_str().unwrap(),
            ],
        ),
        c.agent(&url, &c.owner, &session, &mh),
    ];
    // A party's agent without its blob: exit 2 naming the flag, before it
    // signs anything (hospital-a stays unconsented below).
    let o = Command::new(SEALROOM)
        .args([
            "party",
            "agent",
            "--coordinator",
            &url,
            "--session",
            &session,
        ])
        .args(["--accept-manifest", &mh, "--poll-s", "0.2"])
        .arg("--key")
        .arg(&a.key)
        .arg("--state")
        .arg(dir.join("no-blob-state"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--blob"));
    let node = c.node(&url, "1", 1);
    wait_until(
        &url,
        &sid,
        "the node registered and the owner granted",
        |s| {
            s.node.is_some()
                && s.members
                    .iter()
                    .any(|m| m.role == "owner" && m.granted == Some(true))
        },
    );
    let until = Instant::now() + Duration::from_secs(60);
    while count(&c.decisions(cc, &session), "verify-node", "refused") == 0 {
        assert!(Instant::now() < until, "{:#?}", c.decisions(cc, &session));
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = Client::new(&url, None).status(&sid).unwrap();
    let member = |name: &str| st.members.iter().find(|m| m.name == name).unwrap().clone();
    // No --accept-manifest: the manifest is shown, nothing is signed.
    let da = c.decisions(a, &session);
    let review = da
        .iter()
        .find(|d| d["step"] == "review")
        .expect("a review line");
    assert_eq!(review["manifest_hash"], mh.as_str());
    // The list is committed, not shown: its size, records and my own entry.
    assert_eq!(review["summary"]["parties"], 3);
    assert!(review["summary"]["records"].as_u64().unwrap() > 0);
    assert_eq!(review["summary"]["my_entry"], "hospital-a");
    // The reviewer learns the training is not private before consenting.
    assert!(review["summary"]["epsilon"].is_null());
    assert!(review["summary"]["privacy"]
        .as_str()
        .unwrap()
        .starts_with("not differentially private"));
    assert!(!member("hospital-a").consented);
    // Another hash accepted: the served manifest is refused.
    let db = c.decisions(b, &session);
    assert_eq!(count(&db, "consent", "refused"), 1, "{db:#?}");
    assert!(
        db.iter().any(|d| d["check"] == "manifest.changed"),
        "{db:#?}"
    );
    assert!(!member("hospital-b").consented);
    // Its own policy forbids simulation: consented and uploaded, never granted.
    let dc = c.decisions(cc, &session);
    let refused = dc.iter().find(|d| d["step"] == "verify-node").unwrap();
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("the member's own policy"),
        "{refused}"
    );
    let hc = member("hospital-c");
    assert!(hc.consented && hc.blob_uploaded == Some(true));
    assert_eq!(hc.granted, Some(false));
    assert_eq!(count(&dc, "grant", "granted"), 0);
    assert_eq!(st.state, SessionState::NodeAttested);
    for mut p in agents.into_iter().chain([node]) {
        let _ = p.kill();
        let _ = p.wait();
    }
}
