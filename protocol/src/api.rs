//! The coordinator's HTTP/JSON API: request and response types, the signed
//! request envelope, and a blocking client (parties, owner, node, TUI).
//!
//! Every request that changes state or reads something private is signed by
//! the caller's ed25519 key over
//! `"sealroom.request.v2" || LpHasher("sealroom.request.v2")(METHOD, path,
//! u64 timestamp, nonce, u64 body length, sha256(body))` and carries the
//! signature in headers ([`HDR_KEY`], [`HDR_TIMESTAMP`], [`HDR_NONCE`],
//! [`HDR_SIGNATURE`]), with the body's SHA-256 in [`HDR_CONTENT_SHA256`] and
//! its length in `content-length`. Because length and hash are declared in
//! headers and signed, the coordinator authenticates an upload before it
//! reads a byte of the body, then checks the streamed bytes against what was
//! signed. The coordinator rejects stale timestamps and replayed nonces; the
//! node re-checks every party signature on the objects themselves (consents,
//! grants), since it trusts no coordinator.
//!
//! Routes (all under `/v1`, documented in docs/api.md):
//! `POST /sessions` (owner) · `GET /sessions` · `GET /sessions/{id}` ·
//! `GET /sessions/{id}/member` (member) ·
//! `POST /sessions/{id}/consent` (member) · `PUT /sessions/{id}/blobs/{input}` (member) ·
//! `POST /sessions/{id}/node` (node) · `GET /sessions/{id}/node` ·
//! `POST /sessions/{id}/grants` (member) · `GET /sessions/{id}/work` (node) ·
//! `GET /sessions/{id}/blobs/{input}` (node) · `POST /sessions/{id}/progress` (node) ·
//! `POST /sessions/{id}/reports` (node) · `PUT /sessions/{id}/sealed-model` (node) ·
//! `GET /sessions/{id}/sealed-model` (owner) · `GET /sessions/{id}/events` (SSE).

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::hash::LpHasher;
use crate::identity::hex32;
#[cfg(test)]
use crate::identity::Identity;
use crate::manifest::{Consent, Grant, Manifest};

/// Header: the caller's ed25519 key (hex).
pub const HDR_KEY: &str = "x-sealroom-key";
/// Header: Unix seconds when the request was signed.
pub const HDR_TIMESTAMP: &str = "x-sealroom-timestamp";
/// Header: 16 random bytes (hex), never reused.
pub const HDR_NONCE: &str = "x-sealroom-nonce";
/// Header: ed25519 signature (hex) over [`request_signing_message`].
pub const HDR_SIGNATURE: &str = "x-sealroom-signature";
/// Header: SHA-256 (hex) of the request body, as signed. Required on uploads
/// (the coordinator verifies the signature from headers before reading the
/// body); on JSON requests it must match the body when present.
pub const HDR_CONTENT_SHA256: &str = "x-sealroom-content-sha256";
/// Accepted clock skew for signed requests, seconds.
pub const MAX_SKEW_S: u64 = 300;

/// Domain tag of the request signing message (version 2: the body's length
/// is signed beside its hash).
pub const REQUEST_SIGNING_TAG: &str = "sealroom.request.v2";

/// The bytes a caller signs for a request with this body.
pub fn request_signing_message(
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    request_signing_message_prehashed(
        method,
        path,
        timestamp,
        nonce,
        body.len() as u64,
        &crate::hash::sha256(body),
    )
}

/// [`request_signing_message`] from the body's declared length and SHA-256:
/// what a client streaming a body signs, and what a server checks from the
/// headers before it reads the body.
pub fn request_signing_message_prehashed(
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &str,
    body_len: u64,
    body_sha256: &[u8; 32],
) -> Vec<u8> {
    let mut m = REQUEST_SIGNING_TAG.as_bytes().to_vec();
    m.extend_from_slice(
        &LpHasher::new(REQUEST_SIGNING_TAG)
            .part(method.to_ascii_uppercase())
            .part(path)
            .u64(timestamp)
            .part(nonce)
            .u64(body_len)
            .part(body_sha256)
            .finish(),
    );
    m
}

/// Session states (DESIGN §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionState {
    /// Created, not yet open.
    Draft,
    /// Manifest published; members consent and upload blobs.
    Open,
    /// The node holding the session stopped heartbeating for the lease time:
    /// its grants are useless (sealed to its key) and a replacement node may
    /// register. Ordered between `Open` and `NodeAttested` because, like
    /// `Open`, it waits for a node: consents, uploads and registration are
    /// accepted, grants wait for the replacement.
    NodeLost,
    /// A node registered and its evidence verified by the coordinator.
    NodeAttested,
    /// Every input's key granted to the node.
    KeysGranted,
    /// The node checked every input and signed `opened`.
    InputsVerified,
    /// Training.
    Training,
    /// The node signed `completed` and delivered the sealed model.
    Completed,
    /// Reports published on chain.
    Published,
    /// The owner fetched the model.
    Delivered,
    /// Stopped; the reason is kept.
    Aborted,
}

impl SessionState {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::NodeLost => "node-lost",
            Self::NodeAttested => "node-attested",
            Self::KeysGranted => "keys-granted",
            Self::InputsVerified => "inputs-verified",
            Self::Training => "training",
            Self::Completed => "completed",
            Self::Published => "published",
            Self::Delivered => "delivered",
            Self::Aborted => "aborted",
        }
    }
}

/// A member's progress as the coordinator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Name.
    pub name: String,
    /// `party` or `owner`.
    pub role: String,
    /// ed25519 key.
    #[serde(with = "hex32")]
    pub key: [u8; 32],
    /// Consent given (and not withdrawn).
    pub consented: bool,
    /// Consent withdrawn.
    pub withdrawn: bool,
    /// Blob uploaded and matching the commitment's length and hash (None: no input).
    pub blob_uploaded: Option<bool>,
    /// Grant uploaded for the current node (None: no input).
    pub granted: Option<bool>,
}

/// The node as registered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRegistration {
    /// Node ed25519 key.
    #[serde(with = "hex32")]
    pub node_key: [u8; 32],
    /// Node X25519 HPKE key.
    #[serde(with = "hex32")]
    pub hpke_key: [u8; 32],
    /// TEE kind (`sev-snp`, `tdx`, `sim`).
    pub kind: crate::policy::TeeKind,
    /// Evidence bytes (hex).
    #[serde(with = "crate::seal::hex_vec")]
    pub evidence: Vec<u8>,
    /// Certificates (DER, hex each).
    #[serde(default)]
    pub certs: Vec<String>,
    /// Collateral (hex).
    #[serde(default)]
    pub collateral: Option<String>,
    /// Trainer engine measurement (hex).
    pub engine_measurement: String,
    /// GPU evidence composed with the CPU evidence, its nonce derived from
    /// the CPU evidence's `report_data` (absent: a node without a GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuRegistration>,
}

/// A node's GPU evidence: `nvidia-gpu` (H100 SPDM measurement report and
/// its device certificates) or `sim` (simulated, labelled as such).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRegistration {
    /// `nvidia-gpu` or `sim`.
    pub kind: crate::policy::TeeKind,
    /// Evidence bytes (hex).
    #[serde(with = "crate::seal::hex_vec")]
    pub evidence: Vec<u8>,
    /// Certificates (DER, hex each).
    #[serde(default)]
    pub certs: Vec<String>,
}

/// A published or pending report as the coordinator holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// `opened`, `completed` or `aborted`.
    pub kind: String,
    /// `abi.encode(report)` hex.
    pub report_abi: String,
    /// Node signature hex.
    pub signature: String,
    /// keccak256 of the report.
    pub report_hash: B256,
    /// Transaction hash once published.
    pub tx_hash: Option<String>,
    /// Block number once published.
    pub block: Option<u64>,
    /// Gas used once published.
    pub gas_used: Option<u64>,
}

/// `GET /v1/sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Session id.
    pub session_id: B256,
    /// Manifest hash.
    pub manifest_hash: B256,
    /// The manifest.
    pub manifest: Manifest,
    /// Current state.
    pub state: SessionState,
    /// Members.
    pub members: Vec<MemberStatus>,
    /// The node, once registered.
    pub node: Option<NodeRegistration>,
    /// The coordinator's own verdict on the node's evidence (JSON of `reports::attest::Verdict`).
    pub coordinator_verdict: Option<serde_json::Value>,
    /// Reports.
    pub reports: Vec<ReportRecord>,
    /// Chain: `{kind, chain_id, contract, label}`.
    pub chain: Option<serde_json::Value>,
    /// Why it was aborted.
    pub abort_reason: Option<String>,
    /// Latest public progress (epoch, and metrics when the manifest makes them public).
    pub progress: Option<serde_json::Value>,
    /// Every node that held the session, in order (the current one last).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The coordinator's lease time in seconds: a node that does not
    /// heartbeat for this long while it holds the session is declared lost.
    #[serde(default)]
    pub lease_s: Option<u64>,
}

/// `GET /v1/sessions/{id}/member` (signed by a member), and the answer to
/// a member's consent, upload and grant: the session as that member needs
/// it, in O(log n) of the party list — the manifest header with the
/// member's own entry and its inclusion proof, the member's own progress and
/// the counts, and the node and reports as in [`SessionStatus`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Session id.
    pub session_id: B256,
    /// Manifest hash.
    pub manifest_hash: B256,
    /// The manifest header and the member's entry.
    pub manifest: crate::manifest::ManifestView,
    /// Current state.
    pub state: SessionState,
    /// The member's own progress.
    pub member: MemberStatus,
    /// How far all members are.
    pub counts: MemberCounts,
    /// The node, once registered.
    pub node: Option<NodeRegistration>,
    /// The coordinator's own verdict on the node's evidence.
    pub coordinator_verdict: Option<serde_json::Value>,
    /// Reports.
    pub reports: Vec<ReportRecord>,
    /// Chain: `{kind, chain_id, contract, label}`.
    pub chain: Option<serde_json::Value>,
    /// Why it was aborted.
    pub abort_reason: Option<String>,
    /// Latest public progress.
    pub progress: Option<serde_json::Value>,
    /// Every node that held the session, in order.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// The coordinator's lease time in seconds.
    #[serde(default)]
    pub lease_s: Option<u64>,
}

/// What became of a node that held a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// It holds the session now (its lease runs).
    Active,
    /// Its lease ran out: declared lost, replaced by the next attempt.
    Lost,
    /// Its session ended (completed or aborted) while it held it.
    Finished,
}

impl AttemptOutcome {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Lost => "lost",
            Self::Finished => "finished",
        }
    }
}

/// One node's hold on a session (the coordinator's account of it: members
/// verify every node themselves, the chain shows each attempt that signed
/// `opened`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first node, 2 for its replacement, ….
    pub number: u32,
    /// The node's registration (keys, evidence).
    pub node: NodeRegistration,
    /// What became of it.
    pub outcome: AttemptOutcome,
    /// Unix seconds of the registration.
    pub registered_at: u64,
    /// Unix seconds of its last heartbeat (or registration).
    pub last_seen: u64,
    /// Unix seconds when the lease runs out (while active).
    #[serde(default)]
    pub lease_expires: Option<u64>,
    /// Unix seconds when it was declared lost.
    #[serde(default)]
    pub lost_at: Option<u64>,
    /// Hash of the `opened` report it signed, if any.
    #[serde(default)]
    pub opened_report_hash: Option<B256>,
}

/// `POST /v1/sessions/{id}/heartbeat`: the node's lease, as renewed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The session's state (a node seeing `aborted` stops).
    pub state: SessionState,
    /// Why aborted (a member's withdrawal names the member).
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// The lease time in seconds (heartbeat well within it).
    pub lease_s: u64,
    /// Unix seconds when the lease now runs out.
    pub lease_expires: u64,
}

/// `GET /v1/sessions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id.
    pub session_id: B256,
    /// Name.
    pub name: String,
    /// State.
    pub state: SessionState,
    /// Members whose inputs are ready (consented, uploaded, granted).
    pub ready: u32,
    /// Members.
    pub total: u32,
    /// Consents, blobs and grants counted separately (`ready` counts only
    /// members with all three, so it reads 0 while members are halfway).
    /// Absent from coordinators older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<MemberCounts>,
}

/// How far the members of a session are, step by step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCounts {
    /// Members whose consent stands (given, not withdrawn), of `total`.
    pub consented: u32,
    /// Members that bring an input (a party's dataset, the owner's validation set).
    pub inputs: u32,
    /// Inputs whose blob is uploaded, of `inputs`.
    pub uploaded: u32,
    /// Inputs granted to the current node, of `inputs`.
    pub granted: u32,
}

/// `GET /v1/sessions/{id}/work`: what the node needs (it re-checks all of it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Work {
    /// The manifest.
    pub manifest: Manifest,
    /// Every consent and withdrawal received.
    pub consents: Vec<Consent>,
    /// Every grant for this node.
    pub grants: Vec<Grant>,
    /// The hash the node's first report must link to: the latest `opened`
    /// report of an earlier attempt (zero for the first attempt). The
    /// registry refuses any other value, so a coordinator lying here only
    /// stalls the session.
    #[serde(default)]
    pub prev_report_hash: B256,
}

/// `POST /v1/sessions/{id}/reports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportUpload {
    /// `abi.encode(report)` hex.
    pub report_abi: String,
    /// Node signature hex.
    pub signature: String,
}

/// `POST /v1/sessions/{id}/progress`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Phase (`checking`, `training`, `sealing`).
    pub phase: String,
    /// Epoch (training).
    pub epoch: Option<u32>,
    /// Epochs in total.
    pub epochs: Option<u32>,
    /// Metrics: only forwarded publicly when the manifest allows.
    pub metrics: Option<serde_json::Value>,
}

/// JSON error body of every non-2xx response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code (`bad-request`, `unauthorized`, `not-found`, `conflict`, `too-large`, `internal`).
    pub code: String,
    /// Human message naming the field or check.
    pub message: String,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The coordinator answered with an error.
    #[error("coordinator: {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Message.
        message: String,
    },
    /// The coordinator could not be reached or the transfer failed.
    #[error("coordinator unreachable at {url}: {detail}")]
    Transport {
        /// Base URL.
        url: String,
        /// Cause.
        detail: String,
    },
    /// The response was not what the API promises.
    #[error("unexpected response from the coordinator: {0}")]
    Decode(String),
}

#[cfg(feature = "client")]
pub use crate::client::Client;

/// Percent-encodes a path segment (input names may contain `/`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded path segment.
pub fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The signature headers of a request, as received.
#[derive(Clone, Copy, Debug)]
pub struct SignedHeaders<'h> {
    /// [`HDR_KEY`].
    pub key: &'h str,
    /// [`HDR_TIMESTAMP`].
    pub timestamp: &'h str,
    /// [`HDR_NONCE`].
    pub nonce: &'h str,
    /// [`HDR_SIGNATURE`].
    pub signature: &'h str,
}

/// Verifies a signed request (server side) at `now`; returns the caller's key.
/// Replay protection (remembering nonces until their timestamp leaves the
/// window) is the server's job.
pub fn verify_request(
    method: &str,
    path: &str,
    h: SignedHeaders<'_>,
    body: &[u8],
    now: u64,
) -> Result<[u8; 32], String> {
    verify_request_prehashed(
        method,
        path,
        h,
        body.len() as u64,
        &crate::hash::sha256(body),
        now,
    )
}

/// Parses the [`HDR_CONTENT_SHA256`] header value.
pub fn parse_content_sha256(value: &str) -> Result<[u8; 32], String> {
    crate::hash::parse_hex_array::<32>(value)
        .ok_or(format!("{HDR_CONTENT_SHA256}: not 32 bytes of hex"))
}

/// [`verify_request`] from the body's declared length and SHA-256: a server
/// authenticates an upload from its headers before reading the body, then
/// checks the body against both.
pub fn verify_request_prehashed(
    method: &str,
    path: &str,
    h: SignedHeaders<'_>,
    body_len: u64,
    body_sha256: &[u8; 32],
    now: u64,
) -> Result<[u8; 32], String> {
    let nonce = h.nonce;
    let key = crate::hash::parse_hex_array::<32>(h.key)
        .ok_or(format!("{HDR_KEY}: not 32 bytes of hex"))?;
    let sig = crate::hash::parse_hex_array::<64>(h.signature)
        .ok_or(format!("{HDR_SIGNATURE}: not 64 bytes of hex"))?;
    let ts: u64 = h
        .timestamp
        .parse()
        .map_err(|_| format!("{HDR_TIMESTAMP}: not a number"))?;
    // `abs_diff`: the header is unauthenticated until the signature is
    // checked, so no arithmetic on it may overflow.
    if ts.abs_diff(now) > MAX_SKEW_S {
        return Err(format!(
            "{HDR_TIMESTAMP}: outside the accepted window of {MAX_SKEW_S} s"
        ));
    }
    if nonce.len() != 32 || hex::decode(nonce).is_err() {
        return Err(format!("{HDR_NONCE}: must be 16 bytes of hex"));
    }
    crate::identity::verify_strict(
        &key,
        &request_signing_message_prehashed(method, path, ts, nonce, body_len, body_sha256),
        &sig,
    )
    .map_err(|e| format!("{HDR_SIGNATURE}: {e}"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_signature_binds_method_path_body_and_time() {
        let id = Identity::generate().unwrap();
        let ts = 1_000_000;
        let nonce = "00112233445566778899aabbccddeeff";
        let sig = hex::encode(id.sign(&request_signing_message(
            "POST", "/v1/x", ts, nonce, b"body",
        )));
        let key = hex::encode(id.public().ed25519);
        let tss = ts.to_string();
        let h = SignedHeaders {
            key: &key,
            timestamp: &tss,
            nonce,
            signature: &sig,
        };
        assert!(verify_request("POST", "/v1/x", h, b"body", ts).is_ok());
        assert!(verify_request("GET", "/v1/x", h, b"body", ts).is_err());
        assert!(verify_request("POST", "/v1/y", h, b"body", ts).is_err());
        assert!(verify_request("POST", "/v1/x", h, b"bodY", ts).is_err());
        assert!(verify_request("POST", "/v1/x", h, b"body", ts + 1000).is_err());
        // Prehashed: the same message from the declared length and hash.
        let sha = crate::hash::sha256(b"body");
        assert!(verify_request_prehashed("POST", "/v1/x", h, 4, &sha, ts).is_ok());
        assert!(verify_request_prehashed("POST", "/v1/x", h, 5, &sha, ts).is_err());
        assert!(verify_request_prehashed("POST", "/v1/x", h, 4, &[0; 32], ts).is_err());
    }

    #[test]
    fn signing_message_is_v2_and_binds_the_length() {
        let sha = [7u8; 32];
        let a = request_signing_message_prehashed("put", "/p", 1, "n", 10, &sha);
        let b = request_signing_message_prehashed("PUT", "/p", 1, "n", 10, &sha);
        assert_eq!(a, b, "the method is upper-cased");
        assert!(a.starts_with(b"sealroom.request.v2"));
        assert_ne!(
            a,
            request_signing_message_prehashed("PUT", "/p", 1, "n", 11, &sha)
        );
        assert_eq!(
            request_signing_message("PUT", "/p", 1, "n", b"abc"),
            request_signing_message_prehashed("PUT", "/p", 1, "n", 3, &crate::hash::sha256(b"abc"))
        );
    }

    #[test]
    fn segments_roundtrip() {
        for s in ["hospital-a", "owner/validation", "a b%c"] {
            assert_eq!(decode_segment(&encode_segment(s)).unwrap(), s);
        }
    }
}
