//! Background threads: one fetches the sessions list and the watched
//! session's status (and runs my own verification of the node and of the
//! reports there, off the UI thread); one per watched session follows the
//! coordinator's Server-Sent Events and pokes the fetcher on each event.
//! Both reconnect with backoff, so a coordinator restart shows as
//! "reconnecting" and then heals by itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use sealroom_protocol::api::{Client, SessionStatus};
use sealroom_protocol::identity::Identity;
use sealroom_reports::verifier::{
    verify_bundle, Bundle, BundledReport, EvidenceEnvelope, BUNDLE_FORMAT, ENVELOPE_FORMAT,
};

use crate::app::{role_in, Busy, Conn, Detail, Effect, FileCheck, SessionRow};

/// What the worker tells the UI.
#[derive(Debug)]
pub enum Msg {
    /// The sessions list.
    Sessions(Vec<SessionRow>),
    /// The watched session.
    Detail(Box<Detail>),
    /// Connection state.
    Conn(Conn),
    /// An action's progress.
    Progress(Busy),
    /// An action finished: the message to show.
    Done(Result<String, String>),
    /// How far reading a file for the upload confirmation is, or what it found.
    FileCheck {
        /// The file.
        path: std::path::PathBuf,
        /// Progress or result.
        check: FileCheck,
    },
}

enum Cmd {
    Watch(Option<B256>),
    Poke,
}

/// Handle on the background threads.
pub struct Worker {
    base: String,
    identity: Arc<Identity>,
    /// The identity file: no output the user types may replace it.
    key_file: Arc<std::path::PathBuf>,
    records: sealroom_member::RecordStore,
    cmd: Sender<Cmd>,
    msg: Sender<Msg>,
    sse_gen: Arc<AtomicU64>,
    sse_live: Arc<AtomicBool>,
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Worker {
    /// Starts the fetcher.
    pub fn start(
        base: &str,
        identity: Arc<Identity>,
        key_file: std::path::PathBuf,
        records: sealroom_member::RecordStore,
        msg: Sender<Msg>,
    ) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let sse_live = Arc::new(AtomicBool::new(false));
        let (b, id, m, live, rec) = (
            base.to_string(),
            Arc::clone(&identity),
            msg.clone(),
            Arc::clone(&sse_live),
            records.clone(),
        );
        std::thread::spawn(move || fetch_loop(&b, &id, &rec, cmd_rx, &m, &live));
        Self {
            base: base.to_string(),
            identity,
            key_file: Arc::new(key_file),
            records,
            cmd: cmd_tx,
            msg,
            sse_gen: Arc::new(AtomicU64::new(0)),
            sse_live,
        }
    }

    /// Carries out an effect of a key press.
    pub fn apply(&self, e: Effect) {
        match e {
            Effect::Watch(s) => {
                let generation = self.sse_gen.fetch_add(1, Ordering::SeqCst) + 1;
                self.sse_live.store(false, Ordering::SeqCst);
                if let Some(sid) = s {
                    let (b, g, live, poke) = (
                        self.base.clone(),
                        Arc::clone(&self.sse_gen),
                        Arc::clone(&self.sse_live),
                        self.cmd.clone(),
                    );
                    std::thread::spawn(move || sse_loop(&b, sid, &g, generation, &live, &poke));
                }
                let _ = self.cmd.send(Cmd::Watch(s));
            }
            Effect::Refresh => {
                let _ = self.cmd.send(Cmd::Poke);
            }
            Effect::Run(action, status) => {
                let (b, id, key, rec, m, poke) = (
                    self.base.clone(),
                    Arc::clone(&self.identity),
                    Arc::clone(&self.key_file),
                    self.records.clone(),
                    self.msg.clone(),
                    self.cmd.clone(),
                );
                std::thread::spawn(move || {
                    let r = crate::actions::run(&b, &id, &key, &rec, &action, &status, &m);
                    let _ = m.send(Msg::Done(r));
                    let _ = poke.send(Cmd::Poke);
                });
            }
            Effect::CheckFile(path) => {
                let m = self.msg.clone();
                std::thread::spawn(move || check_file(path, &m));
            }
        }
    }
}

/// Reads `path` once (1 MiB at a time, the member library's own hash) and
/// reports its length and SHA-256; progress at most every 4 MiB, so a large
/// blob does not flood the UI's channel.
pub(crate) fn check_file(path: std::path::PathBuf, out: &Sender<Msg>) {
    let last = std::cell::Cell::new(u64::MAX);
    let progress = |_: &str, done: u64, total: u64| {
        if done >> 22 != last.get() >> 22 {
            last.set(done);
            let _ = out.send(Msg::FileCheck {
                path: path.clone(),
                check: FileCheck::Reading { done, total },
            });
        }
    };
    let check = match sealroom_member::hash_file(&path, &progress) {
        Ok((len, sha256)) => FileCheck::Read { len, sha256 },
        Err(e) => FileCheck::Failed(e.to_string()),
    };
    let _ = out.send(Msg::FileCheck { path, check });
}

fn fetch_loop(
    base: &str,
    identity: &Identity,
    records: &sealroom_member::RecordStore,
    rx: mpsc::Receiver<Cmd>,
    out: &Sender<Msg>,
    sse_live: &AtomicBool,
) {
    let client = Client::new(base, Some(identity));
    let me = identity.public().ed25519;
    let mut watched: Option<B256> = None;
    let mut roles: HashMap<B256, String> = HashMap::new();
    let mut cache = VerifyCache::default();
    let mut backoff_ms = 0u64;
    loop {
        let wait = if backoff_ms > 0 {
            backoff_ms
        } else if sse_live.load(Ordering::SeqCst) {
            2000
        } else {
            500
        };
        match rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(Cmd::Watch(s)) => watched = s,
            Ok(Cmd::Poke) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Coalesce a burst of pokes into one fetch.
        while let Ok(c) = rx.try_recv() {
            if let Cmd::Watch(s) = c {
                watched = s;
            }
        }
        let r = fetch_once(&client, me, records, watched, &mut roles, &mut cache, out);
        match r {
            Ok(()) => {
                backoff_ms = 0;
                let live = watched.is_some() && sse_live.load(Ordering::SeqCst);
                if out.send(Msg::Conn(Conn::Up { live })).is_err() {
                    return;
                }
            }
            Err(e) => {
                backoff_ms = (backoff_ms * 2).clamp(500, 5000);
                if out
                    .send(Msg::Conn(Conn::Down {
                        error: e,
                        retry_ms: backoff_ms,
                    }))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn fetch_once(
    client: &Client<'_>,
    me: [u8; 32],
    records: &sealroom_member::RecordStore,
    watched: Option<B256>,
    roles: &mut HashMap<B256, String>,
    cache: &mut VerifyCache,
    out: &Sender<Msg>,
) -> Result<(), String> {
    let list = client.list_sessions().map_err(|e| e.to_string())?;
    let mut rows = Vec::with_capacity(list.len());
    for s in list {
        let role = match roles.get(&s.session_id) {
            Some(r) => r.clone(),
            None => match client.status(&s.session_id) {
                // The manifest never changes, so the role is looked up once.
                Ok(st) => {
                    let r = role_in(&st.manifest, &me).unwrap_or_else(|| "-".into());
                    roles.insert(s.session_id, r.clone());
                    r
                }
                Err(_) => "?".into(),
            },
        };
        rows.push(SessionRow {
            summary: s,
            my_role: role,
        });
    }
    let _ = out.send(Msg::Sessions(rows));
    if let Some(sid) = watched {
        let st = client.status(&sid).map_err(|e| e.to_string())?;
        // What I consented to, when I did: the overview and my node verdict
        // are judged against it, never against what is served now.
        let consented = records.load(&sid, &me).ok().flatten();
        let d = cache.detail(st, consented.as_ref());
        let _ = out.send(Msg::Detail(Box::new(d)));
    }
    Ok(())
}

/// Keeps my last verdicts so they are recomputed only when the node or the
/// reports change (verification can take milliseconds on real evidence).
#[derive(Default)]
struct VerifyCache {
    node: Option<(Vec<u8>, B256, sealroom_reports::attest::Verdict)>,
    reports: Option<(
        Vec<B256>,
        Vec<Option<String>>,
        sealroom_reports::verifier::Verification,
    )>,
}

impl VerifyCache {
    fn detail(
        &mut self,
        status: SessionStatus,
        consented: Option<&sealroom_member::MemberRecord>,
    ) -> Detail {
        // The record's hash was checked against its manifest when it loaded.
        // One party-tree build: the checked header, or (for an invalid
        // manifest, shown as not ok) the header as served.
        let checked = status.manifest.validated_header();
        let valid = checked.is_ok();
        let served_header = checked.unwrap_or_else(|_| status.manifest.header());
        let served_hash = served_header.hash();
        let manifest_ok = served_hash == status.manifest_hash
            && valid
            && consented.is_none_or(|c| c.manifest_hash == status.manifest_hash);
        let (judged, judged_hash) = match consented {
            Some(c) => (&c.manifest.header, c.manifest_hash),
            None => (&served_header, served_hash),
        };
        let my_verdict = status.node.as_ref().map(|reg| match &self.node {
            Some((ev, mh, v)) if *ev == reg.evidence && *mh == judged_hash => v.clone(),
            _ => {
                let v = sealroom_reports::node_check::verify_registration(judged, reg, now());
                self.node = Some((reg.evidence.clone(), judged_hash, v.clone()));
                v
            }
        });
        let reports_check = bundle_from_status(&status).map(|b| {
            let key: Vec<B256> = status.reports.iter().map(|r| r.report_hash).collect();
            let txs: Vec<Option<String>> =
                status.reports.iter().map(|r| r.tx_hash.clone()).collect();
            match &self.reports {
                Some((k, t, v)) if *k == key && *t == txs => v.clone(),
                _ => {
                    let v = verify_bundle(&b, None, None);
                    self.reports = Some((key, txs, v.clone()));
                    v
                }
            }
        });
        Detail {
            status,
            header: served_header,
            manifest_ok,
            my_verdict,
            reports_check,
        }
    }
}

/// The detail view of a status with my own verifications run (no cache).
pub fn detail_of(status: SessionStatus) -> Detail {
    VerifyCache::default().detail(status, None)
}

/// The offline bundle (`sealroom-bundle/2`) a status allows: None before a
/// node registered or a report exists. `stored_hash` is the hash the
/// coordinator holds; `sealroom report verify --session` checks the chain's.
/// Each node attempt's first report (an `opened`, or an `aborted` signed by
/// a node other than the latest opened's) gets that node's evidence
/// envelope, from the registration in `status.attempts` whose key signed it
/// (`status.node` for a coordinator that lists no attempts).
pub fn bundle_from_status(st: &SessionStatus) -> Option<Bundle> {
    if st.node.is_none() && st.attempts.is_empty() {
        return None;
    }
    if st.reports.is_empty() {
        return None;
    }
    let mut records: Vec<&sealroom_protocol::api::ReportRecord> = st.reports.iter().collect();
    // Openeds in the order given, then the terminal report.
    records.sort_by_key(|r| if r.kind == "opened" { 0 } else { 1 });
    let node_key = |r: &sealroom_protocol::api::ReportRecord| {
        let bytes = hex::decode(r.report_abi.trim_start_matches("0x")).ok()?;
        let report = sealroom_reports::report::IntegrityReport::from_abi_bytes(&bytes).ok()?;
        Some(report.nodeKey.0)
    };
    let registration = |key: Option<[u8; 32]>| {
        if st.attempts.is_empty() {
            return st.node.as_ref();
        }
        let key = key?;
        st.attempts
            .iter()
            .map(|a| &a.node)
            .find(|n| n.node_key == key)
            .or_else(|| st.node.as_ref().filter(|n| n.node_key == key))
    };
    let envelope_of = |n: &sealroom_protocol::api::NodeRegistration| EvidenceEnvelope {
        format: ENVELOPE_FORMAT.into(),
        kind: n.kind,
        evidence: n.evidence.clone(),
        certs: n.certs.clone(),
        collateral: n.collateral.clone(),
        manifest: st.manifest.clone(),
        gpu: n.gpu.clone(),
    };
    let mut latest_opened_node = None;
    let mut reports = Vec::with_capacity(records.len());
    let mut first_envelope = None;
    for (i, r) in records.iter().enumerate() {
        let key = node_key(r);
        let starts_attempt =
            r.kind == "opened" || latest_opened_node.is_none() || key != latest_opened_node;
        if r.kind == "opened" {
            latest_opened_node = key;
        }
        let envelope = if starts_attempt {
            registration(key).map(envelope_of)
        } else {
            None
        };
        let envelope = if i == 0 {
            first_envelope = envelope;
            None
        } else {
            envelope
        };
        reports.push(BundledReport {
            kind: r.kind.clone(),
            report_abi: r.report_abi.clone(),
            signature: r.signature.clone(),
            stored_hash: r.report_hash,
            tx_hash: r.tx_hash.clone(),
            block: r.block,
            envelope,
        });
    }
    Some(Bundle {
        format: BUNDLE_FORMAT.into(),
        session_id: st.session_id,
        chain: st.chain.clone().unwrap_or(serde_json::Value::Null),
        reports,
        envelope: first_envelope.or_else(|| st.node.as_ref().map(envelope_of))?,
    })
}

/// Follows `GET /v1/sessions/{id}/events` until the watched session changes,
/// poking the fetcher on every event; reconnects with backoff.
fn sse_loop(
    base: &str,
    sid: B256,
    generation: &AtomicU64,
    mine: u64,
    live: &AtomicBool,
    poke: &Sender<Cmd>,
) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let url = format!("{}/v1/sessions/{sid:#x}/events", base.trim_end_matches('/'));
    let mut backoff_ms = 250u64;
    while generation.load(Ordering::SeqCst) == mine {
        if let Ok(resp) = agent.get(&url).header("accept", "text/event-stream").call() {
            if resp.status().as_u16() == 200 {
                live.store(true, Ordering::SeqCst);
                backoff_ms = 250;
                let _ = poke.send(Cmd::Poke);
                let reader =
                    BufReader::new(resp.into_body().into_with_config().limit(u64::MAX).reader());
                for line in reader.lines() {
                    if generation.load(Ordering::SeqCst) != mine {
                        return;
                    }
                    let Ok(line) = line else { break };
                    // A blank line ends an event; comments (keep-alives) start with ':'.
                    if line.is_empty() && poke.send(Cmd::Poke).is_err() {
                        return;
                    }
                }
            }
        }
        if generation.load(Ordering::SeqCst) != mine {
            return;
        }
        live.store(false, Ordering::SeqCst);
        let _ = poke.send(Cmd::Poke);
        std::thread::sleep(Duration::from_millis(backoff_ms));
        backoff_ms = (backoff_ms * 2).min(5000);
    }
}
