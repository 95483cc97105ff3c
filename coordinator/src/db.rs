//! Persistence: one SQLite database (`DATA/coordinator.sqlite`, WAL,
//! `synchronous=FULL`) holding sessions, signed messages, blob and report
//! records and seen request nonces.
//!
//! Every state change is written in one transaction and committed (fsynced)
//! before the HTTP response leaves, so a coordinator killed at any instant
//! restarts from this file with everything it acknowledged. Only public or
//! signed material is stored: manifests, consents, grants (sealed to the
//! node), hashes, reports. Never a request body of a blob, never a key.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use alloy_primitives::B256;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sealroom_protocol::api::{
    Attempt, AttemptOutcome, MemberCounts, MemberStatus, NodeRegistration, ReportRecord,
    SessionState, SessionSummary,
};
use sealroom_protocol::manifest::{validation_input_name, Consent, ConsentAction, Grant, Manifest};

use crate::error::CoordinatorError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    manifest_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    abort_reason TEXT,
    node TEXT,
    verdict TEXT,
    progress TEXT,
    sealed_sha TEXT,
    sealed_len INTEGER,
    chain_open_tx TEXT
);
CREATE TABLE IF NOT EXISTS manifests (
    session TEXT PRIMARY KEY,
    manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    member TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_session ON consents(session);
CREATE INDEX IF NOT EXISTS consents_member ON consents(session, member);
CREATE TABLE IF NOT EXISTS counts (
    session TEXT NOT NULL,
    node_key TEXT NOT NULL,
    what TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (session, node_key, what)
);
CREATE TABLE IF NOT EXISTS blobs (
    session TEXT NOT NULL,
    input TEXT NOT NULL,
    sha TEXT NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (session, input)
);
CREATE TABLE IF NOT EXISTS grants (
    session TEXT NOT NULL,
    input TEXT NOT NULL,
    node_key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (session, input, node_key)
);
CREATE TABLE IF NOT EXISTS reports (
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    abi TEXT NOT NULL,
    signature TEXT NOT NULL,
    hash TEXT NOT NULL,
    tx TEXT,
    block INTEGER,
    gas INTEGER,
    PRIMARY KEY (session, hash)
);
CREATE TABLE IF NOT EXISTS attempts (
    session TEXT NOT NULL,
    number INTEGER NOT NULL,
    node_key TEXT NOT NULL,
    registration TEXT NOT NULL,
    outcome TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    lost_at INTEGER,
    opened_hash TEXT,
    PRIMARY KEY (session, number)
);
CREATE INDEX IF NOT EXISTS attempts_active ON attempts(outcome);
CREATE TABLE IF NOT EXISTS nonces (
    key TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (key, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_ts ON nonces(ts);
CREATE TABLE IF NOT EXISTS meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
";

/// Opens (creating) the database with the durability settings the design
/// requires: WAL journal, `synchronous=FULL` (every commit fsynced).
pub fn open(path: &Path) -> Result<Connection, CoordinatorError> {
    let err = |e: rusqlite::Error| CoordinatorError::Database {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    // A database written by a coordinator before node attempts existed
    // (reports keyed by kind, no attempts table) is refused by name rather
    // than half-used.
    let had_sessions: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sessions'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(err)?
        > 0;
    conn.execute_batch(SCHEMA).map_err(err)?;
    let version = meta(&conn, "schema").map_err(err)?;
    match version.as_deref() {
        Some(SCHEMA_VERSION) => {}
        None if !had_sessions => set_meta(&conn, "schema", SCHEMA_VERSION).map_err(err)?,
        other => {
            return Err(CoordinatorError::Database {
                path: path.display().to_string(),
                detail: format!(
                    "schema {} is not this coordinator's schema {SCHEMA_VERSION}: start it with a fresh --data \
                     directory (sessions of the old one keep their reports on chain)",
                    other.unwrap_or("1")
                ),
            })
        }
    }
    Ok(conn)
}

/// The database layout version (2: node attempts and leases; 3: manifest
/// format 2, manifests in their own table, and the step counters kept
/// beside the rows, so that no member request reads or counts in O(n)).
pub const SCHEMA_VERSION: &str = "3";

/// Adds one to a session's counter `what` (`consented`, `blobs`, or
/// `grants` for `node_key`): kept in the transaction that inserts the row it
/// counts, so a member request reads a count in O(1) instead of counting
/// rows (a session may have 10,000 members).
fn bump(tx: &Transaction<'_>, id: &B256, node_key: &str, what: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO counts (session, node_key, what, n) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (session, node_key, what) DO UPDATE SET n = n + 1",
    )?
    .execute(params![id.to_string(), node_key, what])?;
    Ok(())
}

/// A counter kept by [`bump`].
fn count_of(conn: &Connection, id: &B256, node_key: &str, what: &str) -> rusqlite::Result<u64> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT n FROM counts WHERE session = ?1 AND node_key = ?2 AND what = ?3")?
        .query_row(params![id.to_string(), node_key, what], |r| r.get(0))
        .optional()?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// Hex of 32 bytes, lower case, no prefix (keys in the database).
pub fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

/// A session as stored.
#[derive(Clone, Debug)]
pub struct SessionRow {
    /// The manifest.
    pub manifest: Arc<Manifest>,
    /// The manifest's JSON as stored (its canonical bytes).
    pub manifest_json: Arc<serde_json::value::RawValue>,
    /// The party list indexed (header, tree, members by key and input).
    pub index: Arc<PartyIndex>,
    /// Its hash.
    pub manifest_hash: B256,
    /// State.
    pub state: SessionState,
    /// Why aborted.
    pub abort_reason: Option<String>,
    /// Registered node.
    pub node: Option<NodeRegistration>,
    /// The coordinator's verdict JSON.
    pub verdict: Option<serde_json::Value>,
    /// Latest public progress.
    pub progress: Option<serde_json::Value>,
    /// Sealed model (sha256, length).
    pub sealed: Option<([u8; 32], u64)>,
    /// The `openSession` transaction, once sent.
    pub chain_open_tx: Option<String>,
}

fn bad_row(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
}

fn json_col<T: serde::de::DeserializeOwned>(
    s: Option<String>,
    what: &str,
) -> rusqlite::Result<Option<T>> {
    s.map(|s| serde_json::from_str(&s).map_err(|_| bad_row(what)))
        .transpose()
}

/// Parses a state name.
pub fn parse_state(s: &str) -> Option<SessionState> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// A parsed manifest, its stored JSON and its party index, shared between requests.
pub type CachedManifest = (
    Arc<Manifest>,
    Arc<serde_json::value::RawValue>,
    Arc<PartyIndex>,
);

/// What a member request needs of a manifest in O(1) or O(log n) of its
/// party list, built once per session: the header (what the manifest hash
/// hashes), the party tree (inclusion proofs) and the lookups by key and by
/// input name.
#[derive(Debug)]
pub struct PartyIndex {
    /// The manifest header.
    pub header: sealroom_protocol::manifest::ManifestHeader,
    /// The party tree under `header.parties.root`.
    pub tree: sealroom_protocol::merkle::StandardTree,
    /// Party position by ed25519 key.
    pub by_key: HashMap<[u8; 32], usize>,
    /// Party position by name (= input name).
    pub by_name: HashMap<String, usize>,
}

impl PartyIndex {
    /// Indexes `m` (a validated manifest: it has parties).
    pub fn build(m: &Manifest) -> Option<Self> {
        let tree = sealroom_protocol::manifest::parties_tree(&m.parties)?;
        let header = m.header_with(&sealroom_protocol::manifest::PartyList {
            root: tree.root(),
            ..m.party_list_without_root()
        });
        Some(Self {
            header,
            tree,
            by_key: m
                .parties
                .iter()
                .enumerate()
                .map(|(i, p)| (p.identity.ed25519, i))
                .collect(),
            by_name: m
                .parties
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
        })
    }
}

/// Manifests never change once a session exists, and large ones (a thousand
/// parties) are costly to parse on every request: they are parsed once per
/// process and shared. Keyed by session id and manifest hash.
fn manifest_cache() -> &'static Mutex<HashMap<(String, String), CachedManifest>> {
    static CACHE: OnceLock<Mutex<HashMap<(String, String), CachedManifest>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The session's manifest (parsed once, then cached).
pub fn manifest(
    conn: &Connection,
    id: &B256,
    manifest_hash: &str,
) -> rusqlite::Result<CachedManifest> {
    let key = (id.to_string(), manifest_hash.to_string());
    if let Some(m) = manifest_cache()
        .lock()
        .ok()
        .and_then(|c| c.get(&key).cloned())
    {
        return Ok(m);
    }
    let json: String = conn.query_row(
        "SELECT manifest FROM manifests WHERE session = ?1",
        params![key.0],
        |r| r.get(0),
    )?;
    let parsed: Manifest = serde_json::from_str(&json).map_err(|_| bad_row("manifest"))?;
    let index = PartyIndex::build(&parsed).ok_or_else(|| bad_row("manifest parties"))?;
    let raw = serde_json::value::RawValue::from_string(json).map_err(|_| bad_row("manifest"))?;
    let entry: CachedManifest = (Arc::new(parsed), Arc::from(raw), Arc::new(index));
    if let Ok(mut c) = manifest_cache().lock() {
        // Bounded: a long-running coordinator sees many sessions, and a
        // 10,000-party entry holds tens of MB. An evicted one is re-read
        // and re-indexed on its next request.
        if c.len() >= MANIFEST_CACHE_SESSIONS {
            if let Some(k) = c.keys().next().cloned() {
                c.remove(&k);
            }
        }
        c.insert(key, entry.clone());
    }
    Ok(entry)
}

/// Sessions whose parsed manifest and party index stay cached.
const MANIFEST_CACHE_SESSIONS: usize = 32;

/// Loads a session.
pub fn session(conn: &Connection, id: &B256) -> rusqlite::Result<Option<SessionRow>> {
    let row = conn
        .query_row(
            "SELECT manifest_hash, state, abort_reason, node, verdict, progress, sealed_sha, sealed_len, chain_open_tx
             FROM sessions WHERE id = ?1",
            params![id.to_string()],
            |r| {
                let mh: String = r.get(0)?;
                let state: String = r.get(1)?;
                let sealed_sha: Option<String> = r.get(6)?;
                let sealed_len: Option<i64> = r.get(7)?;
                let sealed = match (sealed_sha, sealed_len) {
                    (Some(s), Some(l)) => Some((
                        sealroom_protocol::hash::parse_hex_array::<32>(&s).ok_or_else(|| bad_row("sealed_sha"))?,
                        u64::try_from(l).map_err(|_| bad_row("sealed_len"))?,
                    )),
                    _ => None,
                };
                Ok((
                    mh,
                    parse_state(&state).ok_or_else(|| bad_row("state"))?,
                    r.get::<_, Option<String>>(2)?,
                    json_col(r.get(3)?, "node")?,
                    json_col(r.get(4)?, "verdict")?,
                    json_col(r.get(5)?, "progress")?,
                    sealed,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((mh, state, abort_reason, node, verdict, progress, sealed, chain_open_tx)) = row
    else {
        return Ok(None);
    };
    let (manifest, manifest_json, index) = manifest(conn, id, &mh)?;
    Ok(Some(SessionRow {
        manifest,
        manifest_json,
        index,
        manifest_hash: B256::from_str(&mh).map_err(|_| bad_row("manifest_hash"))?,
        state,
        abort_reason,
        node,
        verdict,
        progress,
        sealed,
        chain_open_tx,
    }))
}

/// Inserts a new session in state `Open`, its manifest hashing to `mh`.
pub fn insert_session(tx: &Transaction<'_>, m: &Manifest, mh: &B256) -> rusqlite::Result<()> {
    let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions", [], |r| {
        r.get(0)
    })?;
    let json = serde_json::to_string(m).map_err(|_| bad_row("manifest"))?;
    tx.execute(
        "INSERT INTO sessions (id, seq, manifest_hash, name, state) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            m.session_id.to_string(),
            seq,
            mh.to_string(),
            m.name,
            SessionState::Open.as_str()
        ],
    )?;
    // In its own table: a large manifest (10,000 parties: megabytes) inside
    // the session row would be read through on every row lookup and
    // rewritten by every state update.
    tx.execute(
        "INSERT INTO manifests (session, manifest) VALUES (?1, ?2)",
        params![m.session_id.to_string(), json],
    )?;
    Ok(())
}

/// Sets the state (and the abort reason when given).
pub fn set_state(
    tx: &Transaction<'_>,
    id: &B256,
    state: SessionState,
    abort_reason: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET state = ?2, abort_reason = COALESCE(?3, abort_reason) WHERE id = ?1",
        params![id.to_string(), state.as_str(), abort_reason],
    )?;
    Ok(())
}

/// Stores the node and the coordinator's verdict.
pub fn set_node(
    tx: &Transaction<'_>,
    id: &B256,
    node: &NodeRegistration,
    verdict: &serde_json::Value,
) -> rusqlite::Result<()> {
    let node = serde_json::to_string(node).map_err(|_| bad_row("node"))?;
    tx.execute(
        "UPDATE sessions SET node = ?2, verdict = ?3 WHERE id = ?1",
        params![id.to_string(), node, verdict.to_string()],
    )?;
    Ok(())
}

/// Stores the latest public progress.
pub fn set_progress(
    tx: &Transaction<'_>,
    id: &B256,
    progress: &serde_json::Value,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET progress = ?2 WHERE id = ?1",
        params![id.to_string(), progress.to_string()],
    )?;
    Ok(())
}

/// Records the sealed model.
pub fn set_sealed(
    tx: &Transaction<'_>,
    id: &B256,
    sha: &[u8; 32],
    len: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET sealed_sha = ?2, sealed_len = ?3 WHERE id = ?1",
        params![
            id.to_string(),
            hx(sha),
            i64::try_from(len).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

/// Records the session's `openSession` transaction.
pub fn set_chain_open(conn: &Connection, id: &B256, tx_hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sessions SET chain_open_tx = ?2 WHERE id = ?1",
        params![id.to_string(), tx_hash],
    )?;
    Ok(())
}

/// Appends a consent or withdrawal.
pub fn insert_consent(tx: &Transaction<'_>, id: &B256, c: &Consent) -> rusqlite::Result<()> {
    let action = match c.action {
        ConsentAction::Consent => "consent",
        ConsentAction::Withdraw => "withdraw",
    };
    let body = serde_json::to_string(c).map_err(|_| bad_row("consent"))?;
    // A member's first consent counts (COUNT(DISTINCT member) of consents).
    let first_consent = c.action == ConsentAction::Consent
        && tx
            .prepare_cached(
                "SELECT 1 FROM consents WHERE session = ?1 AND member = ?2 AND action = 'consent' LIMIT 1",
            )?
            .query_row(params![id.to_string(), hx(&c.member)], |_| Ok(()))
            .optional()?
            .is_none();
    tx.execute(
        "INSERT INTO consents (session, member, action, body) VALUES (?1, ?2, ?3, ?4)",
        params![id.to_string(), hx(&c.member), action, body],
    )?;
    if first_consent {
        bump(tx, id, "", "consented")?;
    }
    Ok(())
}

/// Every consent and withdrawal of a session, in arrival order.
pub fn consents(conn: &Connection, id: &B256) -> rusqlite::Result<Vec<Consent>> {
    let mut st =
        conn.prepare_cached("SELECT body FROM consents WHERE session = ?1 ORDER BY seq")?;
    let rows = st.query_map(params![id.to_string()], |r| r.get::<_, String>(0))?;
    rows.map(|b| b.and_then(|b| serde_json::from_str(&b).map_err(|_| bad_row("consent"))))
        .collect()
}

/// Latest action per member key (hex): `consent` or `withdraw`.
pub fn consent_actions(
    conn: &Connection,
    id: &B256,
) -> rusqlite::Result<std::collections::HashMap<String, (bool, bool)>> {
    let mut st =
        conn.prepare_cached("SELECT member, action FROM consents WHERE session = ?1 ORDER BY seq")?;
    let rows = st.query_map(params![id.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let (member, action) = row?;
        apply_action(out.entry(member).or_default(), &action);
    }
    Ok(out)
}

/// Folds one stored action into (consented and not withdrawn, withdrawn):
/// a withdrawal wins over any consent, before or after it.
fn apply_action(e: &mut (bool, bool), action: &str) {
    if action == "withdraw" {
        *e = (false, true);
    } else if !e.1 {
        e.0 = true;
    }
}

/// One member's latest action: (consented and not withdrawn, withdrawn).
pub fn consent_action(
    conn: &Connection,
    id: &B256,
    member: &[u8; 32],
) -> rusqlite::Result<(bool, bool)> {
    let mut st = conn.prepare_cached(
        "SELECT action FROM consents WHERE session = ?1 AND member = ?2 ORDER BY seq",
    )?;
    let rows = st.query_map(params![id.to_string(), hx(member)], |r| {
        r.get::<_, String>(0)
    })?;
    let mut e = (false, false);
    for action in rows {
        apply_action(&mut e, &action?);
    }
    Ok(e)
}

/// Records an uploaded blob for an input.
pub fn insert_blob(
    tx: &Transaction<'_>,
    id: &B256,
    input: &str,
    sha: &[u8; 32],
    len: u64,
) -> rusqlite::Result<()> {
    if blob(tx, id, input)?.is_none() {
        bump(tx, id, "", "blobs")?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO blobs (session, input, sha, len) VALUES (?1, ?2, ?3, ?4)",
        params![
            id.to_string(),
            input,
            hx(sha),
            i64::try_from(len).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

/// The blob recorded for an input.
pub fn blob(conn: &Connection, id: &B256, input: &str) -> rusqlite::Result<Option<[u8; 32]>> {
    let s: Option<String> = conn
        .query_row(
            "SELECT sha FROM blobs WHERE session = ?1 AND input = ?2",
            params![id.to_string(), input],
            |r| r.get(0),
        )
        .optional()?;
    s.map(|s| sealroom_protocol::hash::parse_hex_array::<32>(&s).ok_or_else(|| bad_row("blob sha")))
        .transpose()
}

/// Inputs with a blob.
pub fn blob_inputs(
    conn: &Connection,
    id: &B256,
) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut st = conn.prepare_cached("SELECT input FROM blobs WHERE session = ?1")?;
    let rows = st.query_map(params![id.to_string()], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// Records a grant (replacing an earlier one for the same input and node).
pub fn insert_grant(tx: &Transaction<'_>, id: &B256, g: &Grant) -> rusqlite::Result<()> {
    let body = serde_json::to_string(g).map_err(|_| bad_row("grant"))?;
    if !grant_exists(tx, id, &g.input, &g.node_key)? {
        bump(tx, id, &hx(&g.node_key), "grants")?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO grants (session, input, node_key, body) VALUES (?1, ?2, ?3, ?4)",
        params![id.to_string(), g.input, hx(&g.node_key), body],
    )?;
    Ok(())
}

/// Grants of a session for one node, by input name.
pub fn grants(conn: &Connection, id: &B256, node_key: &[u8; 32]) -> rusqlite::Result<Vec<Grant>> {
    let mut st = conn.prepare_cached(
        "SELECT body FROM grants WHERE session = ?1 AND node_key = ?2 ORDER BY input",
    )?;
    let rows = st.query_map(params![id.to_string(), hx(node_key)], |r| {
        r.get::<_, String>(0)
    })?;
    rows.map(|b| b.and_then(|b| serde_json::from_str(&b).map_err(|_| bad_row("grant"))))
        .collect()
}

/// Inputs granted to one node.
pub fn granted_inputs(
    conn: &Connection,
    id: &B256,
    node_key: &[u8; 32],
) -> rusqlite::Result<std::collections::HashSet<String>> {
    let mut st =
        conn.prepare_cached("SELECT input FROM grants WHERE session = ?1 AND node_key = ?2")?;
    let rows = st.query_map(params![id.to_string(), hx(node_key)], |r| {
        r.get::<_, String>(0)
    })?;
    rows.collect()
}

/// The grant stored for one input and node.
pub fn grant(
    conn: &Connection,
    id: &B256,
    input: &str,
    node_key: &[u8; 32],
) -> rusqlite::Result<Option<Grant>> {
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM grants WHERE session = ?1 AND input = ?2 AND node_key = ?3",
            params![id.to_string(), input, hx(node_key)],
            |r| r.get(0),
        )
        .optional()?;
    body.map(|b| serde_json::from_str(&b).map_err(|_| bad_row("grant")))
        .transpose()
}

/// (members who consented, inputs with a blob, inputs granted to `node_key`).
pub fn readiness_counts(
    conn: &Connection,
    id: &B256,
    node_key: &[u8; 32],
) -> rusqlite::Result<(u64, u64, u64)> {
    Ok((
        count_of(conn, id, "", "consented")?,
        count_of(conn, id, "", "blobs")?,
        count_of(conn, id, &hx(node_key), "grants")?,
    ))
}

/// Stores a new report (unpublished).
pub fn insert_report(tx: &Transaction<'_>, id: &B256, r: &ReportRecord) -> rusqlite::Result<()> {
    let seq: i64 = tx.query_row(
        "SELECT COUNT(*) FROM reports WHERE session = ?1",
        params![id.to_string()],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO reports (session, kind, seq, abi, signature, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id.to_string(), r.kind, seq, r.report_abi, r.signature, r.report_hash.to_string()],
    )?;
    Ok(())
}

/// Records a report's publication.
pub fn set_report_published(
    conn: &Connection,
    id: &B256,
    hash: &B256,
    tx: &str,
    block: u64,
    gas: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE reports SET tx = ?3, block = ?4, gas = ?5 WHERE session = ?1 AND hash = ?2",
        params![
            id.to_string(),
            hash.to_string(),
            tx,
            i64::try_from(block).unwrap_or(i64::MAX),
            i64::try_from(gas).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

/// Reports of a session in arrival order.
pub fn reports(conn: &Connection, id: &B256) -> rusqlite::Result<Vec<ReportRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT kind, abi, signature, hash, tx, block, gas FROM reports WHERE session = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map(params![id.to_string()], |r| {
        let hash: String = r.get(3)?;
        let block: Option<i64> = r.get(5)?;
        let gas: Option<i64> = r.get(6)?;
        Ok(ReportRecord {
            kind: r.get(0)?,
            report_abi: r.get(1)?,
            signature: r.get(2)?,
            report_hash: B256::from_str(&hash).map_err(|_| bad_row("report hash"))?,
            tx_hash: r.get(4)?,
            block: block.and_then(|b| u64::try_from(b).ok()),
            gas_used: gas.and_then(|g| u64::try_from(g).ok()),
        })
    })?;
    rows.collect()
}

/// Opens attempt `number` for `node` (now active).
pub fn insert_attempt(
    tx: &Transaction<'_>,
    id: &B256,
    node: &NodeRegistration,
    now: u64,
) -> rusqlite::Result<u32> {
    let number: i64 = tx.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE session = ?1",
        params![id.to_string()],
        |r| r.get(0),
    )?;
    let reg = serde_json::to_string(node).map_err(|_| bad_row("registration"))?;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO attempts (session, number, node_key, registration, outcome, registered_at, last_seen)
         VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?5)",
        params![id.to_string(), number, hx(&node.node_key), reg, now],
    )?;
    Ok(u32::try_from(number).unwrap_or(u32::MAX))
}

/// A session's attempts, oldest first (the lease is filled in by the caller).
pub fn attempts(conn: &Connection, id: &B256) -> rusqlite::Result<Vec<Attempt>> {
    let mut st = conn.prepare_cached(
        "SELECT number, registration, outcome, registered_at, last_seen, lost_at, opened_hash
         FROM attempts WHERE session = ?1 ORDER BY number",
    )?;
    let rows = st.query_map(params![id.to_string()], |r| {
        let outcome: String = r.get(2)?;
        let opened: Option<String> = r.get(6)?;
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Attempt {
            number: u32::try_from(r.get::<_, i64>(0)?).map_err(|_| bad_row("attempt number"))?,
            node: json_col(Some(r.get(1)?), "registration")?
                .ok_or_else(|| bad_row("registration"))?,
            outcome: serde_json::from_value(serde_json::Value::String(outcome))
                .map_err(|_| bad_row("attempt outcome"))?,
            registered_at: u(r.get(3)?),
            last_seen: u(r.get(4)?),
            lease_expires: None,
            lost_at: r.get::<_, Option<i64>>(5)?.map(u),
            opened_report_hash: opened
                .map(|h| B256::from_str(&h).map_err(|_| bad_row("opened hash")))
                .transpose()?,
        })
    })?;
    rows.collect()
}

/// Renews the lease of the active attempt of `node_key` (its last sign of life).
pub fn touch_attempt(
    conn: &Connection,
    id: &B256,
    node_key: &[u8; 32],
    now: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE attempts SET last_seen = MAX(last_seen, ?3)
         WHERE session = ?1 AND node_key = ?2 AND outcome = 'active'",
        params![
            id.to_string(),
            hx(node_key),
            i64::try_from(now).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

/// Sets the outcome of the session's active attempt (`lost` also stamps the time).
pub fn end_active_attempt(
    tx: &Transaction<'_>,
    id: &B256,
    outcome: AttemptOutcome,
    now: u64,
) -> rusqlite::Result<()> {
    let lost_at = (outcome == AttemptOutcome::Lost).then(|| i64::try_from(now).unwrap_or(i64::MAX));
    tx.execute(
        "UPDATE attempts SET outcome = ?2, lost_at = ?3 WHERE session = ?1 AND outcome = 'active'",
        params![id.to_string(), outcome.as_str(), lost_at],
    )?;
    Ok(())
}

/// Records the `opened` report hash of the attempt of `node_key`.
pub fn set_attempt_opened(
    tx: &Transaction<'_>,
    id: &B256,
    node_key: &[u8; 32],
    hash: &B256,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE attempts SET opened_hash = ?3 WHERE session = ?1 AND node_key = ?2",
        params![id.to_string(), hx(node_key), hash.to_string()],
    )?;
    Ok(())
}

/// Active attempts whose last sign of life is before `cutoff`: (session, node key).
pub fn stale_attempts(conn: &Connection, cutoff: u64) -> rusqlite::Result<Vec<B256>> {
    let mut st = conn.prepare_cached(
        "SELECT session FROM attempts WHERE outcome = 'active' AND last_seen < ?1",
    )?;
    let rows = st.query_map(params![i64::try_from(cutoff).unwrap_or(i64::MAX)], |r| {
        r.get::<_, String>(0)
    })?;
    rows.map(|s| s.and_then(|s| B256::from_str(&s).map_err(|_| bad_row("session id"))))
        .collect()
}

/// Gives every active attempt a fresh lease: at startup, because nodes could
/// not heartbeat while the coordinator was down.
pub fn refresh_active_leases(conn: &Connection, now: u64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE attempts SET last_seen = MAX(last_seen, ?1) WHERE outcome = 'active'",
        params![i64::try_from(now).unwrap_or(i64::MAX)],
    )
}

/// Clears the node, its verdict, the progress and any sealed model (a lost
/// node's work is void).
pub fn clear_node(tx: &Transaction<'_>, id: &B256) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET node = NULL, verdict = NULL, progress = NULL, sealed_sha = NULL, sealed_len = NULL
         WHERE id = ?1",
        params![id.to_string()],
    )?;
    Ok(())
}

/// Sessions with a report not yet published (for the publisher after a restart).
pub fn sessions_with_pending_reports(conn: &Connection) -> rusqlite::Result<Vec<B256>> {
    let mut st = conn.prepare("SELECT DISTINCT session FROM reports WHERE tx IS NULL")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|s| s.and_then(|s| B256::from_str(&s).map_err(|_| bad_row("session id"))))
        .collect()
}

/// Sessions in a given state.
pub fn sessions_in_state(conn: &Connection, state: SessionState) -> rusqlite::Result<Vec<B256>> {
    let mut st = conn.prepare("SELECT id FROM sessions WHERE state = ?1")?;
    let rows = st.query_map(params![state.as_str()], |r| r.get::<_, String>(0))?;
    rows.map(|s| s.and_then(|s| B256::from_str(&s).map_err(|_| bad_row("session id"))))
        .collect()
}

/// Remembers a request nonce; false when it was already seen (a replay).
pub fn remember_nonce(
    conn: &Connection,
    key: &[u8; 32],
    nonce: &str,
    ts: u64,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO nonces (key, nonce, ts) VALUES (?1, ?2, ?3)",
        params![
            hx(key),
            nonce.to_ascii_lowercase(),
            i64::try_from(ts).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(n == 1)
}

/// Forgets nonces older than `before` (Unix seconds): their timestamps are
/// outside the accepted window, so a replay is refused as stale anyway.
pub fn prune_nonces(conn: &Connection, before: u64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM nonces WHERE ts < ?1",
        params![i64::try_from(before).unwrap_or(i64::MAX)],
    )
}

/// A metadata value.
pub fn meta(conn: &Connection, k: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT v FROM meta WHERE k = ?1", params![k], |r| r.get(0))
        .optional()
}

/// Sets a metadata value.
pub fn set_meta(conn: &Connection, k: &str, v: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
        params![k, v],
    )?;
    Ok(())
}

/// Member rows of a session's status.
pub fn members(
    conn: &Connection,
    id: &B256,
    row: &SessionRow,
) -> rusqlite::Result<Vec<MemberStatus>> {
    let actions = consent_actions(conn, id)?;
    let blobs = blob_inputs(conn, id)?;
    let granted: std::collections::HashSet<String> = match &row.node {
        Some(n) => grants(conn, id, &n.node_key)?
            .into_iter()
            .map(|g| g.input)
            .collect(),
        None => Default::default(),
    };
    let m = &row.manifest;
    let member = |name: &str, role: &str, key: [u8; 32], input: Option<String>| {
        let (consented, withdrawn) = actions.get(&hx(&key)).copied().unwrap_or_default();
        MemberStatus {
            name: name.to_string(),
            role: role.to_string(),
            key,
            consented,
            withdrawn,
            blob_uploaded: input.as_ref().map(|i| blobs.contains(i)),
            granted: input.as_ref().map(|i| granted.contains(i)),
        }
    };
    let mut out: Vec<MemberStatus> = m
        .parties
        .iter()
        .map(|p| member(&p.name, "party", p.identity.ed25519, Some(p.name.clone())))
        .collect();
    out.push(member(
        &m.owner.name,
        "owner",
        m.owner.identity.ed25519,
        m.owner
            .validation
            .as_ref()
            .map(|_| validation_input_name(&m.owner.name)),
    ));
    Ok(out)
}

/// One member's status, from the index and three single-row lookups;
/// `None` when `key` is no member.
pub fn member_status(
    conn: &Connection,
    id: &B256,
    row: &SessionRow,
    key: &[u8; 32],
) -> rusqlite::Result<Option<MemberStatus>> {
    let m = &row.manifest;
    let (name, role, input) = if m.owner.identity.ed25519 == *key {
        (
            m.owner.name.clone(),
            "owner",
            m.owner
                .validation
                .as_ref()
                .map(|_| validation_input_name(&m.owner.name)),
        )
    } else if let Some(p) = row.index.by_key.get(key).and_then(|i| m.parties.get(*i)) {
        (p.name.clone(), "party", Some(p.name.clone()))
    } else {
        return Ok(None);
    };
    let (consented, withdrawn) = consent_action(conn, id, key)?;
    let blob_uploaded = match &input {
        Some(i) => Some(blob(conn, id, i)?.is_some()),
        None => None,
    };
    let granted = match (&input, &row.node) {
        (Some(i), Some(n)) => Some(grant_exists(conn, id, i, &n.node_key)?),
        (Some(_), None) => Some(false),
        (None, _) => None,
    };
    Ok(Some(MemberStatus {
        name,
        role: role.into(),
        key: *key,
        consented,
        withdrawn,
        blob_uploaded,
        granted,
    }))
}

/// Whether a grant for `input` to `node_key` is stored.
fn grant_exists(
    conn: &Connection,
    id: &B256,
    input: &str,
    node_key: &[u8; 32],
) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM grants WHERE session = ?1 AND input = ?2 AND node_key = ?3")?
        .query_row(params![id.to_string(), input, hx(node_key)], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Counts of the members' steps (as [`summaries`] has them), by counting
/// rows instead of listing members.
pub fn member_counts(
    conn: &Connection,
    id: &B256,
    row: &SessionRow,
) -> rusqlite::Result<MemberCounts> {
    let node = row.node.as_ref().map(|n| n.node_key).unwrap_or([0; 32]);
    let (consented, uploaded, granted) = readiness_counts(conn, id, &node)?;
    let inputs = row.manifest.input_count();
    let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(MemberCounts {
        consented: n(consented),
        inputs: n(inputs),
        uploaded: n(uploaded),
        granted: n(if row.node.is_some() { granted } else { 0 }),
    })
}

/// Whether a member's inputs are all in (consented, uploaded, granted).
pub fn member_ready(m: &MemberStatus) -> bool {
    m.consented && m.blob_uploaded.unwrap_or(true) && m.granted.unwrap_or(true)
}

/// `GET /v1/sessions` rows, oldest first.
pub fn summaries(conn: &Connection) -> rusqlite::Result<Vec<SessionSummary>> {
    let ids: Vec<String> = {
        let mut st = conn.prepare("SELECT id FROM sessions ORDER BY seq")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = B256::from_str(&id).map_err(|_| bad_row("session id"))?;
        if let Some(row) = session(conn, &id)? {
            let members = members(conn, &id, &row)?;
            let count = |f: &dyn Fn(&MemberStatus) -> bool| {
                u32::try_from(members.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
            };
            out.push(SessionSummary {
                session_id: id,
                name: row.manifest.name.clone(),
                state: row.state,
                ready: count(&member_ready),
                total: count(&|_| true),
                counts: Some(MemberCounts {
                    consented: count(&|m| m.consented),
                    inputs: count(&|m| m.blob_uploaded.is_some()),
                    uploaded: count(&|m| m.blob_uploaded == Some(true)),
                    granted: count(&|m| m.granted == Some(true)),
                }),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_survive_reopen_and_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sqlite");
        let conn = open(&path).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        assert!(remember_nonce(&conn, &[1; 32], "AA", 100).unwrap());
        assert!(
            !remember_nonce(&conn, &[1; 32], "aa", 100).unwrap(),
            "case does not make a nonce new"
        );
        assert!(
            remember_nonce(&conn, &[2; 32], "aa", 100).unwrap(),
            "nonces are per key"
        );
        drop(conn);
        let conn = open(&path).unwrap();
        assert!(
            !remember_nonce(&conn, &[1; 32], "aa", 100).unwrap(),
            "remembered across a restart"
        );
        assert_eq!(prune_nonces(&conn, 101).unwrap(), 2);
        assert!(remember_nonce(&conn, &[1; 32], "aa", 200).unwrap());
    }

    #[test]
    fn latest_consent_action_wins_and_withdrawal_sticks() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("c.sqlite")).unwrap();
        let id = B256::repeat_byte(5);
        let a = sealroom_protocol::identity::Identity::generate().unwrap();
        let b = sealroom_protocol::identity::Identity::generate().unwrap();
        let tx = conn.transaction().unwrap();
        insert_consent(&tx, &id, &Consent::sign(&a, ConsentAction::Consent, id)).unwrap();
        insert_consent(&tx, &id, &Consent::sign(&b, ConsentAction::Consent, id)).unwrap();
        insert_consent(&tx, &id, &Consent::sign(&b, ConsentAction::Withdraw, id)).unwrap();
        tx.commit().unwrap();
        let actions = consent_actions(&conn, &id).unwrap();
        assert_eq!(actions[&hx(&a.public().ed25519)], (true, false));
        assert_eq!(actions[&hx(&b.public().ed25519)], (false, true));
        assert_eq!(
            consents(&conn, &id).unwrap().len(),
            3,
            "every message is kept for the node"
        );
        assert!(consent_actions(&conn, &B256::ZERO).unwrap().is_empty());
    }

    #[test]
    fn states_roundtrip_by_name() {
        use SessionState::*;
        for s in [
            Draft,
            Open,
            NodeAttested,
            KeysGranted,
            InputsVerified,
            Training,
            Completed,
            Published,
            Delivered,
            Aborted,
        ] {
            assert_eq!(parse_state(s.as_str()), Some(s));
        }
        assert_eq!(parse_state("nope"), None);
    }
}
