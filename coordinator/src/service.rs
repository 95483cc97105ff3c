//! The session state machine (DESIGN §2) over the database: every operation
//! checks who asks and in which state, writes its effect in one transaction,
//! commits (fsync) and only then returns, so the HTTP layer acknowledges
//! nothing that is not durable.

use std::sync::{Arc, Mutex};

use alloy_primitives::B256;
use rusqlite::Connection;
use sealroom_protocol::api::{
    Attempt, AttemptOutcome, Lease, MemberView, NodeRegistration, Progress, ReportRecord,
    ReportUpload, SessionState, Work,
};
use sealroom_protocol::dataset::DatasetCommitment;
use sealroom_protocol::manifest::{
    validation_input_name, Consent, ConsentAction, Grant, Manifest, ManifestView,
};
use sealroom_reports::report::{verify_report_signature, IntegrityReport, ReportKind};
use tokio::sync::broadcast;

use crate::blobs::BlobStore;
use crate::chain::ChainCtx;
use crate::db::{self, SessionRow};
use crate::error::ApiErr;
use crate::events::Event;

/// Unix seconds now.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The default lease (`coordinator serve --lease-s`): how long a node may go
/// without a sign of life while it holds a session before it is declared
/// lost. Nodes heartbeat from a thread of their own every quarter lease,
/// independent of how long an epoch takes, so the lease only has to cover
/// network trouble and a coordinator restart (leases are renewed at
/// startup); two minutes tolerates both without leaving a dead node's
/// session idle for long.
pub const DEFAULT_LEASE_S: u64 = 120;

/// States in which a node holds the session and its lease runs.
fn leased(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::NodeAttested
            | SessionState::KeysGranted
            | SessionState::InputsVerified
            | SessionState::Training
    )
}

/// Shared state of the service.
pub struct Core {
    db: Arc<Mutex<Connection>>,
    /// Ciphertext blobs and sealed models.
    pub blobs: Arc<dyn BlobStore>,
    /// Event fan-out.
    pub events: broadcast::Sender<Event>,
    /// The chain.
    pub chain: ChainCtx,
    /// Lease time in seconds.
    pub lease_s: u64,
}

impl Core {
    /// Wraps an opened database, blob store and chain.
    pub fn new(conn: Connection, blobs: Arc<dyn BlobStore>, chain: ChainCtx) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self {
            db: Arc::new(Mutex::new(conn)),
            blobs,
            events,
            chain,
            lease_s: DEFAULT_LEASE_S,
        }
    }

    /// The same core with another lease time (at least 1 s).
    pub fn with_lease(mut self, lease_s: u64) -> Self {
        self.lease_s = lease_s.max(1);
        self
    }

    /// Runs `f` on the database on a blocking thread (SQLite commits fsync).
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiErr>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiErr> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db
                .lock()
                .map_err(|_| ApiErr::internal("database lock poisoned"))?;
            f(&mut conn)
        })
        .await
        .map_err(|_| ApiErr::internal("database task failed"))?
    }

    /// Sends events to subscribers (none listening is fine).
    pub fn emit(&self, events: Vec<Event>) {
        for e in events {
            let _ = self.events.send(e);
        }
    }
}

fn load(conn: &Connection, id: &B256) -> Result<SessionRow, ApiErr> {
    db::session(conn, id)?.ok_or_else(|| ApiErr::not_found(format!("no session {id}")))
}

/// `SessionStatus` as sent: the same fields, with the manifest spliced in
/// as the JSON stored at creation (re-serialising a thousand-party manifest
/// on every response would dominate large sessions).
#[derive(Debug, serde::Serialize)]
pub struct StatusOut {
    /// Session id.
    pub session_id: B256,
    /// Manifest hash.
    pub manifest_hash: B256,
    /// The manifest (stored JSON).
    pub manifest: std::sync::Arc<serde_json::value::RawValue>,
    /// Current state.
    pub state: SessionState,
    /// Members.
    pub members: Vec<sealroom_protocol::api::MemberStatus>,
    /// The node.
    pub node: Option<NodeRegistration>,
    /// The coordinator's verdict.
    pub coordinator_verdict: Option<serde_json::Value>,
    /// Reports.
    pub reports: Vec<ReportRecord>,
    /// Chain.
    pub chain: Option<serde_json::Value>,
    /// Why aborted.
    pub abort_reason: Option<String>,
    /// Latest public progress.
    pub progress: Option<serde_json::Value>,
    /// Every node that held the session.
    pub attempts: Vec<Attempt>,
    /// The lease time.
    pub lease_s: Option<u64>,
}

/// The session's attempts with the active one's lease expiry filled in.
fn attempts_of(conn: &Connection, id: &B256, lease_s: u64) -> Result<Vec<Attempt>, ApiErr> {
    let mut v = db::attempts(conn, id)?;
    for a in &mut v {
        if a.outcome == AttemptOutcome::Active {
            a.lease_expires = Some(a.last_seen.saturating_add(lease_s));
        }
    }
    Ok(v)
}

/// The full public status of a session.
pub fn status(
    conn: &Connection,
    id: &B256,
    chain: serde_json::Value,
    lease_s: u64,
) -> Result<StatusOut, ApiErr> {
    let row = load(conn, id)?;
    let members = db::members(conn, id, &row)?;
    let reports = db::reports(conn, id)?;
    let attempts = attempts_of(conn, id, lease_s)?;
    let manifest = row.manifest_json.clone();
    Ok(StatusOut {
        session_id: *id,
        manifest_hash: row.manifest_hash,
        manifest,
        state: row.state,
        members,
        node: row.node,
        coordinator_verdict: row.verdict,
        reports,
        chain: Some(chain),
        abort_reason: row.abort_reason,
        progress: row.progress,
        attempts,
        lease_s: Some(lease_s),
    })
}

/// The session as the member `caller` needs it (`GET …/member`, and the
/// answer to its consent, upload and grant): the header with its own entry
/// and proof, its own status and the counts; nothing in it grows with the
/// number of parties but the proof (log n).
pub fn member_view(
    conn: &Connection,
    id: &B256,
    caller: &[u8; 32],
    chain: serde_json::Value,
    lease_s: u64,
) -> Result<MemberView, ApiErr> {
    let row = load(conn, id)?;
    let ix = &row.index;
    let manifest = if row.manifest.owner.identity.ed25519 == *caller {
        ManifestView {
            header: ix.header.clone(),
            entry: None,
        }
    } else {
        let i = *ix.by_key.get(caller).ok_or_else(|| {
            ApiErr::forbidden("the signer is not a member (party or owner) of this session")
        })?;
        row.manifest
            .entry_view(ix.header.clone(), i, &ix.tree)
            .ok_or_else(|| ApiErr::internal("party index out of step with the manifest"))?
    };
    let member = db::member_status(conn, id, &row, caller)?.ok_or_else(|| {
        ApiErr::forbidden("the signer is not a member (party or owner) of this session")
    })?;
    let counts = db::member_counts(conn, id, &row)?;
    Ok(MemberView {
        session_id: *id,
        manifest_hash: row.manifest_hash,
        manifest,
        state: row.state,
        member,
        counts,
        coordinator_verdict: row.verdict,
        reports: db::reports(conn, id)?,
        chain: Some(chain),
        abort_reason: row.abort_reason,
        progress: row.progress,
        attempts: attempts_of(conn, id, lease_s)?,
        lease_s: Some(lease_s),
        node: row.node,
    })
}

/// The commitment of `input` when `caller` is the member that owns it
/// (looked up in the session's party index, not by scanning the list).
fn owned_input(
    row: &SessionRow,
    caller: &[u8; 32],
    input: &str,
) -> Result<DatasetCommitment, ApiErr> {
    let m = &row.manifest;
    let (key, c) = if let Some(p) = row.index.by_name.get(input).and_then(|i| m.parties.get(*i)) {
        (p.identity.ed25519, p.commitment.clone())
    } else {
        match &m.owner.validation {
            Some(c) if input == validation_input_name(&m.owner.name) => {
                (m.owner.identity.ed25519, c.clone())
            }
            _ => {
                return Err(ApiErr::not_found(format!(
                    "input `{input}` is not in the manifest"
                )))
            }
        }
    };
    if key != *caller {
        return Err(ApiErr::forbidden(format!(
            "input `{input}` belongs to another member"
        )));
    }
    Ok(c)
}

/// The caller's name when it is a member (owner or party).
fn member<'r>(row: &'r SessionRow, caller: &[u8; 32]) -> Result<&'r str, ApiErr> {
    let m = &row.manifest;
    if m.owner.identity.ed25519 == *caller {
        return Ok(&m.owner.name);
    }
    row.index
        .by_key
        .get(caller)
        .and_then(|i| m.parties.get(*i))
        .map(|p| p.name.as_str())
        .ok_or_else(|| {
            ApiErr::forbidden("the signer is not a member (party or owner) of this session")
        })
}

/// The registered node, when `caller` is it. A node declared lost is told
/// so (409), so that one that was only cut off stops instead of retrying.
fn node_of<'r>(
    conn: &Connection,
    row: &'r SessionRow,
    caller: &[u8; 32],
) -> Result<&'r NodeRegistration, ApiErr> {
    if row.node.as_ref().map(|n| &n.node_key) != Some(caller) {
        if let Some(a) = db::attempts(conn, &row.manifest.session_id)?
            .into_iter()
            .find(|a| a.node.node_key == *caller && a.outcome == AttemptOutcome::Lost)
        {
            return Err(ApiErr::conflict(format!(
                "node-lost: this node (attempt {}) was declared lost at {} after no sign of life for the lease time; \
                 its grants are void and another node may hold the session",
                a.number,
                a.lost_at.unwrap_or_default()
            )));
        }
    }
    let node = row
        .node
        .as_ref()
        .ok_or_else(|| ApiErr::conflict("no node is registered for this session"))?;
    if node.node_key != *caller {
        return Err(ApiErr::forbidden(
            "the signer is not the session's registered node",
        ));
    }
    Ok(node)
}

fn not_aborted(row: &SessionRow) -> Result<(), ApiErr> {
    if row.state == SessionState::Aborted {
        return Err(ApiErr::conflict(format!(
            "session aborted: {}",
            row.abort_reason.as_deref().unwrap_or("no reason recorded")
        )));
    }
    Ok(())
}

/// Inputs may change (consent, blobs, grants) only before keys are granted.
fn before_keys_granted(row: &SessionRow, what: &str) -> Result<(), ApiErr> {
    not_aborted(row)?;
    if row.state >= SessionState::KeysGranted {
        return Err(ApiErr::conflict(format!(
            "{what}: keys are already granted (state {})",
            row.state.as_str()
        )));
    }
    Ok(())
}

/// Moves NodeAttested → KeysGranted once every member consented and every
/// grantable input has its blob and a grant for the registered node.
fn maybe_keys_granted(
    tx: &rusqlite::Transaction<'_>,
    id: &B256,
    out: &mut Vec<Event>,
) -> Result<(), ApiErr> {
    let row = load(tx, id)?;
    if row.state != SessionState::NodeAttested {
        return Ok(());
    }
    let Some(node) = &row.node else { return Ok(()) };
    // Counts, not member rows: this runs on every consent, blob and grant of
    // a session that may have a thousand members. No member has withdrawn
    // (that aborts), and only members' messages are ever stored.
    let inputs = row.manifest.input_count();
    let members = row.manifest.parties.len() as u64 + 1;
    let (consented, blobs, grants) = db::readiness_counts(tx, id, &node.node_key)?;
    if consented == members && blobs == inputs && grants == inputs {
        db::set_state(tx, id, SessionState::KeysGranted, None)?;
        out.push(Event::state(*id, SessionState::KeysGranted, None));
        tracing::info!(session = %id, state = "keys-granted", "transition");
    }
    Ok(())
}

/// `POST /v1/sessions`.
pub fn create(
    conn: &mut Connection,
    caller: &[u8; 32],
    m: &Manifest,
) -> Result<(B256, Vec<Event>), ApiErr> {
    let mh = m
        .validate_and_hash()
        .map_err(|e| ApiErr::bad_request(e.to_string()))?;
    if m.owner.identity.ed25519 != *caller {
        return Err(ApiErr::forbidden(
            "only the manifest's owner may create its session",
        ));
    }
    let id = m.session_id;
    if let Some(existing) = db::session(conn, &id)? {
        if existing.manifest_hash == mh {
            return Ok((id, vec![]));
        }
        return Err(ApiErr::conflict(format!(
            "session {id} already exists with another manifest"
        )));
    }
    let tx = conn.transaction()?;
    db::insert_session(&tx, m, &mh)?;
    tx.commit()?;
    tracing::info!(session = %id, state = "open", "session created");
    Ok((id, vec![Event::state(id, SessionState::Open, None)]))
}

/// `POST /v1/sessions/{id}/consent`.
pub fn consent(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    c: &Consent,
) -> Result<Vec<Event>, ApiErr> {
    let row = load(conn, id)?;
    let name = member(&row, caller)?.to_string();
    c.verify(caller, &row.manifest_hash)
        .map_err(|e| ApiErr::bad_request(format!("consent: {e}")))?;
    let (consented, withdrawn) = db::consent_action(conn, id, caller)?;
    // A repeated consent is a no-op in any live state (clients retry).
    if consented && c.action == ConsentAction::Consent && row.state != SessionState::Aborted {
        return Ok(vec![]);
    }
    match c.action {
        ConsentAction::Consent => before_keys_granted(&row, "consent")?,
        // A member may stop the session at any point before its model is
        // done: the node (if alive) learns it from its next heartbeat and
        // signs `aborted`; otherwise this record is the abort.
        ConsentAction::Withdraw => {
            not_aborted(&row)?;
            if row.state >= SessionState::Completed {
                return Err(ApiErr::conflict(format!(
                    "withdrawal: the session already completed (state {})",
                    row.state.as_str()
                )));
            }
        }
    }
    if withdrawn {
        return Err(ApiErr::conflict(format!("`{name}` already withdrew")));
    }
    let mut out = vec![];
    let tx = conn.transaction()?;
    match c.action {
        ConsentAction::Consent if consented => return Ok(out),
        ConsentAction::Consent => {
            db::insert_consent(&tx, id, c)?;
            out.push(Event::member(*id, &name, "consented"));
            maybe_keys_granted(&tx, id, &mut out)?;
        }
        ConsentAction::Withdraw => {
            db::insert_consent(&tx, id, c)?;
            let reason = format!(
                "consent withdrawn by `{name}` in state {}",
                row.state.as_str()
            );
            db::set_state(&tx, id, SessionState::Aborted, Some(&reason))?;
            db::end_active_attempt(&tx, id, AttemptOutcome::Finished, now_s())?;
            out.push(Event::member(*id, &name, "withdrawn"));
            out.push(Event::state(*id, SessionState::Aborted, Some(&reason)));
            tracing::info!(session = %id, state = "aborted", check = "withdrawal", "transition");
        }
    }
    tx.commit()?;
    Ok(out)
}

/// Checks before a blob upload streams anything: membership, ownership of
/// the input, state. Returns the commitment the blob must match.
pub fn blob_precheck(
    conn: &Connection,
    id: &B256,
    caller: &[u8; 32],
    input: &str,
) -> Result<DatasetCommitment, ApiErr> {
    let row = load(conn, id)?;
    member(&row, caller)?;
    let c = owned_input(&row, caller, input)?;
    before_keys_granted(&row, "blob upload")?;
    Ok(c)
}

/// Records an uploaded blob already checked against its commitment.
pub fn blob_record(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    input: &str,
    sha: &[u8; 32],
    len: u64,
) -> Result<Vec<Event>, ApiErr> {
    let c = blob_precheck(conn, id, caller, input)?;
    if c.ciphertext_sha256.0 != *sha || c.ciphertext_len != len {
        return Err(ApiErr::conflict(format!(
            "blob for `{input}` does not match its commitment"
        )));
    }
    if db::blob(conn, id, input)?.as_ref() == Some(sha) {
        return Ok(vec![]);
    }
    let mut out = vec![Event::member(
        *id,
        member(&load(conn, id)?, caller)?,
        "blob-uploaded",
    )];
    let tx = conn.transaction()?;
    db::insert_blob(&tx, id, input, sha, len)?;
    maybe_keys_granted(&tx, id, &mut out)?;
    tx.commit()?;
    tracing::info!(session = %id, route = "blob-upload", "blob stored");
    Ok(out)
}

/// `POST /v1/sessions/{id}/node`: the evidence is verified here against the
/// manifest's policy, bound to the node's keys and the manifest hash.
pub fn register_node(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    reg: &NodeRegistration,
    lease_s: u64,
) -> Result<Vec<Event>, ApiErr> {
    if reg.node_key != *caller {
        return Err(ApiErr::forbidden(
            "the registration must be signed by the node_key it registers",
        ));
    }
    let row = load(conn, id)?;
    not_aborted(&row)?;
    let now = now_s();
    if let Some(n) = &row.node {
        if n == reg {
            db::touch_attempt(conn, id, &reg.node_key, now)?;
            return Ok(vec![]);
        }
    }
    if row.state >= SessionState::Completed {
        return Err(ApiErr::conflict(format!(
            "the session needs no node (state {})",
            row.state.as_str()
        )));
    }
    let attempts = db::attempts(conn, id)?;
    if let Some(a) = attempts.iter().find(|a| a.node.node_key == reg.node_key) {
        return Err(ApiErr::conflict(format!(
            "node key already used by attempt {} ({}): a replacement registers with fresh keys",
            a.number,
            a.outcome.as_str()
        )));
    }
    // One node at a time: the holder keeps the session while its lease runs.
    let mut holder_lost = false;
    if let Some(active) = attempts
        .iter()
        .find(|a| a.outcome == AttemptOutcome::Active)
    {
        let expires = active.last_seen.saturating_add(lease_s);
        if leased(row.state) && now <= expires {
            return Err(ApiErr::conflict(format!(
                "held by node {} (attempt {}, state {}) whose lease runs until {expires}",
                hex::encode(active.node.node_key),
                active.number,
                row.state.as_str()
            )));
        }
        holder_lost = leased(row.state);
    }
    // One verification, the members' own: evidence, binding to the keys and
    // this manifest, policy, then the attested measurement against the
    // registration's claim and the engine allowlist.
    let at = i64::try_from(now_s()).unwrap_or(i64::MAX);
    let verdict = sealroom_reports::node_check::verify_registration(&row.index.header, reg, at);
    if !verdict.verified {
        let why = verdict
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", f.check, f.detail))
            .unwrap_or_default();
        tracing::info!(session = %id, route = "node", check = %verdict.failure.as_ref().map(|f| f.check.as_str()).unwrap_or("?"), "evidence refused");
        return Err(ApiErr::conflict(format!(
            "evidence refused by the session policy: {why}"
        )));
    }
    let verdict_json =
        serde_json::to_value(&verdict).map_err(|_| ApiErr::internal("verdict encoding"))?;
    let mut out = vec![Event::new(
        *id,
        "node",
        serde_json::json!({ "node_key": hex::encode(reg.node_key), "kind": reg.kind, "insecure_simulation": verdict.insecure_simulation }),
    )];
    let tx = conn.transaction()?;
    if holder_lost {
        out.splice(0..0, declare_lost(&tx, id, now)?);
    }
    let number = db::insert_attempt(&tx, id, reg, now)?;
    db::set_node(&tx, id, reg, &verdict_json)?;
    if holder_lost || row.state != SessionState::NodeAttested {
        db::set_state(&tx, id, SessionState::NodeAttested, None)?;
        out.push(Event::state(*id, SessionState::NodeAttested, None));
    }
    maybe_keys_granted(&tx, id, &mut out)?;
    tx.commit()?;
    tracing::info!(session = %id, state = "node-attested", kind = reg.kind.as_str(), attempt = number, "node registered");
    Ok(out)
}

/// Declares the session's active node lost (inside `tx`): its attempt ends
/// `lost`, the node, progress and any sealed model are cleared, and the
/// session waits in `node-lost` for a replacement. Grants stay stored but
/// are keyed by the lost node, so none of them counts for the next one.
fn declare_lost(tx: &rusqlite::Transaction<'_>, id: &B256, now: u64) -> Result<Vec<Event>, ApiErr> {
    let row = load(tx, id)?;
    let lost = row.node.as_ref().map(|n| hex::encode(n.node_key));
    db::end_active_attempt(tx, id, AttemptOutcome::Lost, now)?;
    db::clear_node(tx, id)?;
    db::set_state(tx, id, SessionState::NodeLost, None)?;
    tracing::warn!(session = %id, node = ?lost, from = row.state.as_str(), state = "node-lost", "lease expired: node declared lost");
    Ok(vec![
        Event::new(
            *id,
            "node",
            serde_json::json!({ "event": "lost", "node_key": lost }),
        ),
        Event::state(*id, SessionState::NodeLost, None),
    ])
}

/// Declares lost every node whose lease ran out (`last_seen + lease_s <
/// now`) while it holds a session; attempts of sessions that ended are
/// closed as `finished`. Run periodically by the server.
pub fn expire_leases(conn: &mut Connection, now: u64, lease_s: u64) -> Result<Vec<Event>, ApiErr> {
    let stale = db::stale_attempts(conn, now.saturating_sub(lease_s))?;
    let mut out = vec![];
    for id in stale {
        let row = load(conn, &id)?;
        let has_completed = completed_report(conn, &id)?.is_some();
        let tx = conn.transaction()?;
        if leased(row.state) && !has_completed {
            out.extend(declare_lost(&tx, &id, now)?);
        } else if !leased(row.state) {
            db::end_active_attempt(&tx, &id, AttemptOutcome::Finished, now)?;
        }
        tx.commit()?;
    }
    Ok(out)
}

/// `POST /v1/sessions/{id}/heartbeat`: the registered node renews its lease
/// and learns the session's state (a member's withdrawal shows as `aborted`).
pub fn heartbeat(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    lease_s: u64,
) -> Result<Lease, ApiErr> {
    let row = load(conn, id)?;
    node_of(conn, &row, caller)?;
    let now = now_s();
    db::touch_attempt(conn, id, caller, now)?;
    Ok(Lease {
        state: row.state,
        abort_reason: row.abort_reason,
        lease_s,
        lease_expires: now.saturating_add(lease_s),
    })
}

/// `POST /v1/sessions/{id}/grants`.
pub fn grant(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    g: &Grant,
) -> Result<Vec<Event>, ApiErr> {
    let row = load(conn, id)?;
    let name = member(&row, caller)?.to_string();
    owned_input(&row, caller, &g.input)?;
    not_aborted(&row)?;
    let node = row
        .node
        .as_ref()
        .ok_or_else(|| ApiErr::conflict("no node is registered yet"))?;
    if g.node_key != node.node_key || g.node_hpke_key != node.hpke_key {
        return Err(ApiErr::conflict(format!(
            "grant for `{}` is for another node than the registered one",
            g.input
        )));
    }
    g.verify(caller, &row.manifest_hash)
        .map_err(|e| ApiErr::bad_request(format!("grant: {e}")))?;
    if g.evidence_hash != sealroom_reports::binding::registration_evidence_hash(node) {
        return Err(ApiErr::conflict(format!(
            "grant for `{}` was made over evidence other than the registered node's",
            g.input
        )));
    }
    if db::grant(conn, id, &g.input, &node.node_key)?.as_ref() == Some(g) {
        return Ok(vec![]);
    }
    before_keys_granted(&row, "grant")?;
    let mut out = vec![Event::member(*id, &name, "granted")];
    let tx = conn.transaction()?;
    db::insert_grant(&tx, id, g)?;
    maybe_keys_granted(&tx, id, &mut out)?;
    tx.commit()?;
    tracing::info!(session = %id, route = "grants", "grant stored");
    Ok(out)
}

/// `GET /v1/sessions/{id}/work`.
pub fn work(conn: &Connection, id: &B256, caller: &[u8; 32]) -> Result<Work, ApiErr> {
    let row = load(conn, id)?;
    let node = node_of(conn, &row, caller)?;
    Ok(Work {
        consents: db::consents(conn, id)?,
        grants: db::grants(conn, id, &node.node_key)?,
        manifest: (*row.manifest).clone(),
        prev_report_hash: latest_opened(&db::reports(conn, id)?).unwrap_or(B256::ZERO),
    })
}

/// The hash of the session's latest `opened` report (of any attempt).
fn latest_opened(reports: &[ReportRecord]) -> Option<B256> {
    reports
        .iter()
        .rev()
        .find(|r| r.kind == ReportKind::Opened.as_str())
        .map(|r| r.report_hash)
}

/// `GET /v1/sessions/{id}/blobs/{input}`: the blob's hash.
pub fn blob_for_node(
    conn: &Connection,
    id: &B256,
    caller: &[u8; 32],
    input: &str,
) -> Result<[u8; 32], ApiErr> {
    let row = load(conn, id)?;
    node_of(conn, &row, caller)?;
    db::blob(conn, id, input)?
        .ok_or_else(|| ApiErr::not_found(format!("no blob uploaded for `{input}`")))
}

/// `POST /v1/sessions/{id}/progress`.
pub fn progress(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    p: &Progress,
) -> Result<Vec<Event>, ApiErr> {
    let row = load(conn, id)?;
    node_of(conn, &row, caller)?;
    not_aborted(&row)?;
    if !matches!(
        row.state,
        SessionState::KeysGranted | SessionState::InputsVerified | SessionState::Training
    ) {
        return Err(ApiErr::conflict(format!(
            "no progress expected in state {}",
            row.state.as_str()
        )));
    }
    let mut public = serde_json::json!({ "phase": p.phase, "epoch": p.epoch, "epochs": p.epochs });
    if row.manifest.training.public_metrics {
        public["metrics"] = p.metrics.clone().unwrap_or(serde_json::Value::Null);
    }
    let mut out = vec![Event::new(*id, "progress", public.clone())];
    let tx = conn.transaction()?;
    db::touch_attempt(&tx, id, caller, now_s())?;
    db::set_progress(&tx, id, &public)?;
    if row.state == SessionState::InputsVerified {
        db::set_state(&tx, id, SessionState::Training, None)?;
        out.push(Event::state(*id, SessionState::Training, None));
        tracing::info!(session = %id, state = "training", "transition");
    }
    tx.commit()?;
    Ok(out)
}

/// The node key a stored report names (`None` when it does not decode).
fn report_node(r: &ReportRecord) -> Option<[u8; 32]> {
    let abi = hex::decode(&r.report_abi).ok()?;
    IntegrityReport::from_abi_bytes(&abi)
        .ok()
        .map(|x| x.nodeKey.0)
}

fn parse_hex(s: &str, what: &str) -> Result<Vec<u8>, ApiErr> {
    hex::decode(s.trim_start_matches("0x"))
        .map_err(|_| ApiErr::bad_request(format!("{what}: not hex")))
}

/// `POST /v1/sessions/{id}/reports`: a report signed by the registered
/// node, bound to this session and manifest, chained to the previous one.
pub fn report(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    up: &ReportUpload,
) -> Result<Vec<Event>, ApiErr> {
    let row = load(conn, id)?;
    let node = node_of(conn, &row, caller)?.clone();
    let abi = parse_hex(&up.report_abi, "report_abi")?;
    let report = IntegrityReport::from_abi_bytes(&abi).map_err(|e| {
        ApiErr::bad_request(format!(
            "report_abi: not an abi-encoded IntegrityReport ({e})"
        ))
    })?;
    let sig: [u8; 64] = parse_hex(&up.signature, "signature")?
        .try_into()
        .map_err(|_| ApiErr::bad_request("signature: must be 64 bytes"))?;
    verify_report_signature(&report, &node.node_key, &sig).map_err(|e| {
        ApiErr::bad_request(format!(
            "report signature under the registered node key: {e}"
        ))
    })?;
    let kind = ReportKind::from_code(report.kind)
        .ok_or_else(|| ApiErr::bad_request(format!("report kind {} is unknown", report.kind)))?;
    let field = |ok: bool, name: &str| {
        if ok {
            Ok(())
        } else {
            Err(ApiErr::conflict(format!(
                "report.{name} does not match the session"
            )))
        }
    };
    field(report.sessionId == *id, "sessionId")?;
    field(report.manifestHash == row.manifest_hash, "manifestHash")?;
    field(report.nodeKey.0 == node.node_key, "nodeKey")?;
    field(report.nodeHpkeKey.0 == node.hpke_key, "nodeHpkeKey")?;
    let hash = report.report_hash();
    let existing = db::reports(conn, id)?;
    if existing.iter().any(|e| e.report_hash == hash) {
        return Ok(vec![]);
    }
    // One report of each kind per node; one terminal report per session.
    let same_kind_here = existing.iter().any(|e| {
        e.kind == kind.as_str()
            && (kind != ReportKind::Opened || report_node(e) == Some(node.node_key))
    });
    if same_kind_here {
        return Err(ApiErr::conflict(format!(
            "a different {} report is already stored",
            kind.as_str()
        )));
    }
    // Every report links to the latest `opened` of the session (an earlier
    // attempt's for a replacement's `opened`): the registry enforces the
    // same rule, so what is accepted here can be published.
    let opened = latest_opened(&existing);
    let completed = existing.iter().any(|r| r.kind == "completed");
    let mut next_state = None;
    let mut reason = None;
    match kind {
        ReportKind::Opened => {
            if row.state != SessionState::KeysGranted {
                return Err(ApiErr::conflict(format!(
                    "opened report in state {}",
                    row.state.as_str()
                )));
            }
            field(
                report.prevReportHash == opened.unwrap_or(B256::ZERO),
                "prevReportHash",
            )?;
            field(
                report.evidenceHash == sealroom_reports::binding::registration_evidence_hash(&node),
                "evidenceHash",
            )?;
            next_state = Some(SessionState::InputsVerified);
        }
        ReportKind::Completed => {
            if !matches!(
                row.state,
                SessionState::InputsVerified | SessionState::Training
            ) {
                return Err(ApiErr::conflict(format!(
                    "completed report in state {}",
                    row.state.as_str()
                )));
            }
            field(Some(report.prevReportHash) == opened, "prevReportHash")?;
            if let Some((sha, _)) = row.sealed {
                if report.sealedModelHash.0 != sha {
                    return Err(ApiErr::conflict(
                        "report.sealedModelHash does not match the uploaded sealed model",
                    ));
                }
                next_state = Some(SessionState::Completed);
            }
        }
        ReportKind::Aborted => {
            // After a member's withdrawal the live node still signs its
            // `aborted` (the session is already aborted here; the report
            // puts it on chain).
            if existing.iter().any(|r| r.kind == "aborted") {
                not_aborted(&row)?;
            }
            if completed {
                return Err(ApiErr::conflict(
                    "the session already has a completed report",
                ));
            }
            field(
                report.prevReportHash == opened.unwrap_or(B256::ZERO),
                "prevReportHash",
            )?;
            if row.state != SessionState::Aborted {
                next_state = Some(SessionState::Aborted);
                reason = Some(format!(
                    "node aborted (code {}): {}",
                    report.abortCode, report.abortReason
                ));
            }
        }
    }
    let record = ReportRecord {
        kind: kind.as_str().to_string(),
        report_abi: hex::encode(&abi),
        signature: hex::encode(sig),
        report_hash: hash,
        tx_hash: None,
        block: None,
        gas_used: None,
    };
    let mut out = vec![Event::new(
        *id,
        "report",
        serde_json::json!({ "kind": kind.as_str(), "report_hash": hash, "tx_hash": null }),
    )];
    let tx = conn.transaction()?;
    db::insert_report(&tx, id, &record)?;
    db::touch_attempt(&tx, id, &node.node_key, now_s())?;
    if kind == ReportKind::Opened {
        db::set_attempt_opened(&tx, id, &node.node_key, &hash)?;
    }
    if let Some(s) = next_state {
        db::set_state(&tx, id, s, reason.as_deref())?;
        out.push(Event::state(*id, s, reason.as_deref()));
        if matches!(s, SessionState::Completed | SessionState::Aborted) {
            db::end_active_attempt(&tx, id, AttemptOutcome::Finished, now_s())?;
        }
    }
    tx.commit()?;
    tracing::info!(session = %id, route = "reports", kind = kind.as_str(), state = %next_state.map(|s| s.as_str()).unwrap_or(row.state.as_str()), "report accepted");
    Ok(out)
}

/// Checks before a sealed-model upload; returns the largest accepted size.
pub fn sealed_precheck(conn: &Connection, id: &B256, caller: &[u8; 32]) -> Result<u64, ApiErr> {
    let row = load(conn, id)?;
    node_of(conn, &row, caller)?;
    not_aborted(&row)?;
    if !matches!(
        row.state,
        SessionState::InputsVerified | SessionState::Training | SessionState::Completed
    ) {
        return Err(ApiErr::conflict(format!(
            "no sealed model expected in state {}",
            row.state.as_str()
        )));
    }
    Ok(row.manifest.max_blob_bytes)
}

fn completed_report(conn: &Connection, id: &B256) -> Result<Option<IntegrityReport>, ApiErr> {
    let reports = db::reports(conn, id)?;
    reports
        .iter()
        .find(|r| r.kind == "completed")
        .map(|r| {
            let abi = parse_hex(&r.report_abi, "stored report")?;
            IntegrityReport::from_abi_bytes(&abi)
                .map_err(|_| ApiErr::internal("stored report does not decode"))
        })
        .transpose()
}

/// Verifies a streamed sealed model against the completed report (when in).
pub fn sealed_check(
    conn: &Connection,
    id: &B256,
    caller: &[u8; 32],
    sha: &[u8; 32],
) -> Result<(), ApiErr> {
    sealed_precheck(conn, id, caller)?;
    let row = load(conn, id)?;
    if let Some((old, _)) = row.sealed {
        if old != *sha {
            return Err(ApiErr::conflict(
                "a different sealed model is already stored",
            ));
        }
    }
    if let Some(r) = completed_report(conn, id)? {
        if r.sealedModelHash.0 != *sha {
            return Err(ApiErr::conflict(
                "sealed model SHA-256 does not match the completed report's sealedModelHash",
            ));
        }
    }
    Ok(())
}

/// Records the sealed model; Completed when the completed report is in.
pub fn sealed_record(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
    sha: &[u8; 32],
    len: u64,
) -> Result<Vec<Event>, ApiErr> {
    sealed_check(conn, id, caller, sha)?;
    let row = load(conn, id)?;
    if row.sealed.is_some() {
        return Ok(vec![]);
    }
    let has_completed = completed_report(conn, id)?.is_some();
    let mut out = vec![Event::new(
        *id,
        "node",
        serde_json::json!({ "event": "sealed-model-uploaded" }),
    )];
    let tx = conn.transaction()?;
    db::set_sealed(&tx, id, sha, len)?;
    if has_completed && row.state != SessionState::Completed {
        db::set_state(&tx, id, SessionState::Completed, None)?;
        db::end_active_attempt(&tx, id, AttemptOutcome::Finished, now_s())?;
        out.push(Event::state(*id, SessionState::Completed, None));
    }
    tx.commit()?;
    tracing::info!(session = %id, route = "sealed-model", "sealed model stored");
    Ok(out)
}

/// The sealed model's hash, for the owner only and once it may be released
/// (the checks of [`deliver`], without its transition): the server re-hashes
/// the stored bytes before it delivers them.
pub fn sealed_for_owner(
    conn: &Connection,
    id: &B256,
    caller: &[u8; 32],
) -> Result<[u8; 32], ApiErr> {
    owner_sealed(&load(conn, id)?, caller)
}

/// The checks before a sealed model goes to anyone: the caller is the
/// manifest's owner, the session is not aborted, a sealed model exists.
fn owner_sealed(row: &SessionRow, caller: &[u8; 32]) -> Result<[u8; 32], ApiErr> {
    if row.manifest.owner.identity.ed25519 != *caller {
        return Err(ApiErr::forbidden(
            "only the session's owner may fetch the sealed model",
        ));
    }
    not_aborted(row)?;
    row.sealed
        .map(|(sha, _)| sha)
        .ok_or_else(|| ApiErr::conflict("no sealed model yet"))
}

/// `GET /v1/sessions/{id}/sealed-model` (owner): Published → Delivered,
/// persisted before the first byte leaves. Returns the model's hash.
pub fn deliver(
    conn: &mut Connection,
    id: &B256,
    caller: &[u8; 32],
) -> Result<([u8; 32], Vec<Event>), ApiErr> {
    let row = load(conn, id)?;
    let sha = owner_sealed(&row, caller)?;
    let mut out = vec![];
    match row.state {
        SessionState::Delivered => {}
        SessionState::Published => {
            let tx = conn.transaction()?;
            db::set_state(&tx, id, SessionState::Delivered, None)?;
            tx.commit()?;
            out.push(Event::state(*id, SessionState::Delivered, None));
            tracing::info!(session = %id, state = "delivered", "transition");
        }
        s => {
            return Err(ApiErr::conflict(format!(
                "the sealed model is released once its reports are on chain (state {})",
                s.as_str()
            )))
        }
    }
    Ok((sha, out))
}

/// Completed → Published once the opened and completed reports are on chain.
pub fn maybe_published(conn: &mut Connection, id: &B256) -> Result<Vec<Event>, ApiErr> {
    let row = load(conn, id)?;
    if row.state != SessionState::Completed {
        return Ok(vec![]);
    }
    let reports = db::reports(conn, id)?;
    let all_on_chain = reports.iter().all(|r| r.tx_hash.is_some());
    if !(all_on_chain && reports.iter().any(|r| r.kind == "completed")) {
        return Ok(vec![]);
    }
    let tx = conn.transaction()?;
    db::set_state(&tx, id, SessionState::Published, None)?;
    tx.commit()?;
    tracing::info!(session = %id, state = "published", "transition");
    Ok(vec![Event::state(*id, SessionState::Published, None)])
}

/// Publishes a session's pending reports (opening it on chain first), then
/// moves Completed → Published when both reports are in. Failures are logged
/// and retried by the background publisher; nothing here is lost.
pub async fn publish_pending(core: &Core, id: B256) -> Result<(), String> {
    let _guard = core.chain.publish_lock.lock().await;
    let (row, reports) = core
        .db(move |c| Ok((load(c, &id)?, db::reports(c, &id)?)))
        .await
        .map_err(|e| e.message)?;
    let pending: Vec<ReportRecord> = reports
        .iter()
        .filter(|r| r.tx_hash.is_none())
        .cloned()
        .collect();
    if !pending.is_empty() {
        let (registry, deployed) = core.chain.registry().await?;
        if deployed || db_contract_missing(core).await {
            let key = core.chain.meta_key();
            let addr = registry.address().to_string();
            core.db(move |c| Ok(db::set_meta(c, &key, &addr)?))
                .await
                .map_err(|e| e.message)?;
        }
        if row.chain_open_tx.is_none() || deployed {
            let tx = core
                .chain
                .open_session(&registry, id, row.manifest_hash)
                .await?;
            core.db(move |c| Ok(db::set_chain_open(c, &id, &tx)?))
                .await
                .map_err(|e| e.message)?;
        }
        // Each node's evidence travels once, with its first report (its
        // `opened`, or an abort before one), as an envelope that also
        // carries the manifest: the chain alone holds everything a
        // verifier needs (DESIGN §5), for every attempt.
        let attempts = core
            .db(move |c| Ok(db::attempts(c, &id)?))
            .await
            .map_err(|e| e.message)?;
        let envelope_of = |node_key: [u8; 32]| -> Vec<u8> {
            attempts
                .iter()
                .map(|a| &a.node)
                .chain(row.node.as_ref())
                .find(|n| n.node_key == node_key)
                .map(|n| {
                    sealroom_reports::verifier::EvidenceEnvelope {
                        format: sealroom_reports::verifier::ENVELOPE_FORMAT.to_string(),
                        kind: n.kind,
                        evidence: n.evidence.clone(),
                        certs: n.certs.clone(),
                        collateral: n.collateral.clone(),
                        manifest: (*row.manifest).clone(),
                        gpu: n.gpu.clone(),
                    }
                    .to_bytes()
                })
                .unwrap_or_default()
        };
        for r in pending {
            let abi = hex::decode(&r.report_abi).map_err(|e| e.to_string())?;
            let report = IntegrityReport::from_abi_bytes(&abi).map_err(|e| e.to_string())?;
            let sig = hex::decode(&r.signature).map_err(|e| e.to_string())?;
            let first_of_node = reports
                .iter()
                .find(|x| report_node(x) == Some(report.nodeKey.0))
                .map(|x| x.report_hash)
                == Some(r.report_hash);
            let ev = if first_of_node {
                envelope_of(report.nodeKey.0)
            } else {
                vec![]
            };
            let (tx, block, gas) = core.chain.publish(&registry, &report, &sig, &ev).await?;
            tracing::info!(session = %id, kind = %r.kind, tx = %tx, block, gas, "report published");
            let hash = r.report_hash;
            let txc = tx.clone();
            core.db(move |c| Ok(db::set_report_published(c, &id, &hash, &txc, block, gas)?))
                .await
                .map_err(|e| e.message)?;
            core.emit(vec![Event::new(
                id,
                "report",
                serde_json::json!({ "kind": r.kind, "report_hash": r.report_hash, "tx_hash": tx, "block": block, "gas_used": gas }),
            )]);
        }
    }
    let ev = core
        .db(move |c| maybe_published(c, &id))
        .await
        .map_err(|e| e.message)?;
    core.emit(ev);
    Ok(())
}

async fn db_contract_missing(core: &Core) -> bool {
    let key = core.chain.meta_key();
    core.db(move |c| Ok(db::meta(c, &key)?))
        .await
        .map(|v| v.is_none())
        .unwrap_or(true)
}

/// Publishes everything pending (after a restart, and periodically).
pub async fn publish_all_pending(core: &Core) {
    let ids = core
        .db(|c| {
            let mut v = db::sessions_with_pending_reports(c)?;
            v.extend(db::sessions_in_state(c, SessionState::Completed)?);
            Ok(v)
        })
        .await
        .unwrap_or_default();
    for id in ids {
        if let Err(e) = publish_pending(core, id).await {
            tracing::warn!(session = %id, error = %e, "publication pending; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealroom_protocol::identity::Identity;
    use sealroom_protocol::policy::TeeKind;
    use sealroom_reports::report::signing_message;

    /// A simulated node with fresh keys and evidence bound to manifest `mh`.
    fn sim_node(mh: B256) -> (Identity, NodeRegistration) {
        let id = Identity::generate().unwrap();
        let p = id.public();
        let rd = sealroom_reports::binding::expected_report_data(&p.ed25519, &p.x25519, &mh.0);
        let measurement = sealroom_reports::attest::simulate::sim_default_measurement();
        let reg = NodeRegistration {
            node_key: p.ed25519,
            hpke_key: p.x25519,
            kind: TeeKind::Sim,
            evidence: sealroom_reports::attest::simulate::simulate(&rd, &measurement, false),
            certs: vec![],
            collateral: None,
            engine_measurement: hex::encode(measurement),
            gpu: None,
        };
        (id, reg)
    }

    fn commitment(n: u8) -> DatasetCommitment {
        DatasetCommitment {
            merkle_root: B256::repeat_byte(n),
            record_count: 3,
            schema_hash: B256::repeat_byte(1),
            ciphertext_sha256: B256::repeat_byte(n + 1),
            ciphertext_len: 10,
        }
    }

    /// A report accepted but not yet on chain (the process died in
    /// between) is published by the startup pass, exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_report_is_published_on_resume_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let scenario = sealroom_protocol::scenario::Scenario::load(&path).unwrap();
        let owner = Identity::generate().unwrap();
        let parties: Vec<_> = (0..3u8)
            .map(|i| (Identity::generate().unwrap().public(), commitment(i * 2)))
            .collect();
        let m = Manifest::from_scenario(
            &scenario,
            B256::repeat_byte(42),
            1,
            parties,
            owner.public(),
            None,
        )
        .unwrap();
        let id = m.session_id;
        let mh = m.hash();
        let chain = ChainCtx::open(
            &crate::ChainSpec::Embedded(dir.path().join("chain")),
            None,
            None,
            None,
        )
        .await
        .unwrap();
        let blobs = crate::blobs::DirBlobStore::open(dir.path().join("blobs")).unwrap();
        let core = Core::new(
            db::open(&dir.path().join("c.sqlite")).unwrap(),
            Arc::new(blobs),
            chain,
        );

        let (node, reg) = sim_node(mh);
        let n = node.public();
        let owner_key = owner.public().ed25519;
        let (m2, reg2) = (m.clone(), reg.clone());
        core.db(move |c| {
            create(c, &owner_key, &m2)?;
            register_node(c, &id, &reg2.node_key, &reg2, DEFAULT_LEASE_S)?;
            // Skip consents, blobs and grants: tested over HTTP elsewhere.
            let tx = c.transaction()?;
            db::set_state(&tx, &id, SessionState::KeysGranted, None)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();

        let r = IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: ReportKind::Opened as u8,
            sessionId: id,
            manifestHash: mh,
            inputsRoot: B256::ZERO,
            prevReportHash: B256::ZERO,
            nodeKey: B256::from(n.ed25519),
            nodeHpkeKey: B256::from(n.x25519),
            evidenceHash: alloy_primitives::keccak256(&reg.evidence),
            teeKind: 3,
            insecureSimulation: true,
            modelHash: B256::ZERO,
            sealedModelHash: B256::ZERO,
            ownerKey: B256::from(owner_key),
            trainingSummaryHash: B256::ZERO,
            seed: 1,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: false,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: 1,
            privacy: Default::default(),
        };
        let up = ReportUpload {
            report_abi: hex::encode(r.abi_bytes()),
            signature: hex::encode(node.sign(&signing_message(&r.report_hash()))),
        };
        // Accepted and committed, not published (as if killed right after).
        core.db(move |c| report(c, &id, &n.ed25519, &up))
            .await
            .unwrap();
        let pending = core.db(move |c| Ok(db::reports(c, &id)?)).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].tx_hash.is_none());
        assert_eq!(
            core.db(|c| Ok(db::sessions_with_pending_reports(c)?))
                .await
                .unwrap(),
            vec![id]
        );

        publish_all_pending(&core).await;
        let done = core.db(move |c| Ok(db::reports(c, &id)?)).await.unwrap();
        let tx = done[0].tx_hash.clone().expect("published on resume");
        assert!(core
            .db(|c| Ok(db::sessions_with_pending_reports(c)?))
            .await
            .unwrap()
            .is_empty());
        // A second pass (or a second process) sends nothing new.
        publish_all_pending(&core).await;
        let after = core.db(move |c| Ok(db::reports(c, &id)?)).await.unwrap();
        assert_eq!(after, done);
        let (registry, deployed) = core.chain.registry().await.unwrap();
        assert!(!deployed);
        let again = core
            .chain
            .publish(
                &registry,
                &r,
                &hex::decode(&done[0].signature).unwrap(),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(again.0, tx, "idempotent: the original transaction");
    }

    /// The lease rules without HTTP: one node at a time while its lease
    /// runs; a holder whose lease ran out is declared lost (by the sweeper,
    /// or by a replacement's registration in the same transaction); a lost
    /// node is told so; a used key cannot come back; the replacement is
    /// attempt 2 and needs grants of its own; a withdrawal is refused only
    /// once the model is done.
    #[test]
    fn leases_hand_a_session_to_one_node_at_a_time_and_replace_a_lost_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = db::open(&dir.path().join("c.sqlite")).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let scenario = sealroom_protocol::scenario::Scenario::load(&path).unwrap();
        let owner = Identity::generate().unwrap();
        let parties: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let party = &parties[1];
        let m = Manifest::from_scenario(
            &scenario,
            B256::repeat_byte(7),
            1,
            parties
                .iter()
                .enumerate()
                .map(|(i, p)| (p.public(), commitment(2 * i as u8)))
                .collect(),
            owner.public(),
            None,
        )
        .unwrap();
        let id = m.session_id;
        create(&mut c, &owner.public().ed25519, &m).unwrap();
        let node = sim_node;
        let lease = 60;
        let (_n1, r1) = node(m.hash());
        let (_n2, r2) = node(m.hash());
        register_node(&mut c, &id, &r1.node_key, &r1, lease).unwrap();
        // A second node while the first one's lease runs: refused.
        let e = register_node(&mut c, &id, &r2.node_key, &r2, lease).unwrap_err();
        assert!(e.message.contains("held by node"), "{}", e.message);
        // The sweeper leaves a live lease alone…
        assert!(expire_leases(&mut c, now_s(), lease).unwrap().is_empty());
        // …and declares the holder lost once it ran out.
        let ev = expire_leases(&mut c, now_s() + lease + 1, lease).unwrap();
        assert!(ev.iter().any(|e| e.kind == "state"));
        let row = load(&c, &id).unwrap();
        assert_eq!(row.state, SessionState::NodeLost);
        assert!(row.node.is_none());
        // The lost node is told so; its key cannot register again.
        let e = heartbeat(&mut c, &id, &r1.node_key, lease).unwrap_err();
        assert!(e.message.starts_with("node-lost"), "{}", e.message);
        let e = register_node(&mut c, &id, &r1.node_key, &r1, lease).unwrap_err();
        assert!(
            e.message.contains("already used by attempt 1"),
            "{}",
            e.message
        );
        // The replacement is attempt 2, in node-attested, with no grant yet.
        register_node(&mut c, &id, &r2.node_key, &r2, lease).unwrap();
        let row = load(&c, &id).unwrap();
        assert_eq!(row.state, SessionState::NodeAttested);
        let attempts = db::attempts(&c, &id).unwrap();
        assert_eq!(
            attempts
                .iter()
                .map(|a| (a.number, a.outcome))
                .collect::<Vec<_>>(),
            [(1, AttemptOutcome::Lost), (2, AttemptOutcome::Active)]
        );
        let l = heartbeat(&mut c, &id, &r2.node_key, lease).unwrap();
        assert_eq!(l.state, SessionState::NodeAttested);
        assert_eq!(l.lease_s, lease);
        // A third node arriving after the replacement's lease ran out takes
        // over in the same transaction, without waiting for the sweeper.
        c.execute(
            "UPDATE attempts SET last_seen = last_seen - 1000 WHERE outcome = 'active'",
            [],
        )
        .unwrap();
        let (_n3, r3) = node(m.hash());
        register_node(&mut c, &id, &r3.node_key, &r3, lease).unwrap();
        let attempts = db::attempts(&c, &id).unwrap();
        assert_eq!(attempts.len(), 3);
        assert_eq!(attempts[1].outcome, AttemptOutcome::Lost);
        assert_eq!(attempts[2].outcome, AttemptOutcome::Active);
        // A member may withdraw in node-attested (and any state before
        // completed): the session ends aborted and the attempt finished.
        let w = Consent::sign(party, ConsentAction::Withdraw, m.hash());
        consent(&mut c, &id, &party.public().ed25519, &w).unwrap();
        let row = load(&c, &id).unwrap();
        assert_eq!(row.state, SessionState::Aborted);
        assert!(row.abort_reason.unwrap().contains("in state node-attested"));
        assert_eq!(
            db::attempts(&c, &id).unwrap()[2].outcome,
            AttemptOutcome::Finished
        );
        // The live node still learns it from its heartbeat.
        let l = heartbeat(&mut c, &id, &r3.node_key, lease).unwrap();
        assert_eq!(l.state, SessionState::Aborted);
    }
}
