//! The HTTP/JSON API (routes in `sealroom_protocol::api`, documented in
//! docs/api.md): request parsing, limits, authentication, streaming of
//! blobs, and the per-session event stream.
//!
//! Uploads are authenticated from their headers before any body byte is
//! read (the signature covers the declared length and SHA-256), and stored
//! blobs are re-hashed while they are served: bytes that no longer hash to
//! their content address never reach a client whole.

use std::convert::Infallible;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use alloy_primitives::B256;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use sealroom_protocol::api::{NodeRegistration, Progress, ReportUpload, SessionSummary, Work};
use sealroom_protocol::manifest::{Consent, Grant, Manifest};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::auth;
use crate::blobs::BlobWriter;
use crate::error::ApiErr;
use crate::service::{self, Core};

/// Largest JSON request body.
pub const JSON_LIMIT: usize = 1 << 20;
/// Largest manifest (`POST /v1/sessions`): room for
/// [`sealroom_protocol::manifest::limits::MAX_PARTIES`] parties.
pub const MANIFEST_LIMIT: usize = 16 << 20;
/// How long a JSON body may take to arrive.
pub const JSON_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a streamed upload may stall between two chunks.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
}

/// The router of every route.
pub fn router(core: Arc<Core>, shutdown: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/sessions", post(create).get(list))
        .route("/v1/sessions/{id}", get(status))
        .route("/v1/sessions/{id}/member", get(member_view))
        .route("/v1/sessions/{id}/consent", post(consent))
        .route(
            "/v1/sessions/{id}/blobs/{input}",
            put(upload_blob).get(download_blob),
        )
        .route("/v1/sessions/{id}/node", post(register_node).get(node))
        .route("/v1/sessions/{id}/grants", post(grant))
        .route("/v1/sessions/{id}/work", get(work))
        .route("/v1/sessions/{id}/progress", post(progress))
        .route("/v1/sessions/{id}/heartbeat", post(heartbeat))
        .route("/v1/sessions/{id}/reports", post(report))
        .route(
            "/v1/sessions/{id}/sealed-model",
            put(upload_sealed).get(fetch_sealed),
        )
        .route("/v1/sessions/{id}/events", get(events))
        .fallback(|| async { ApiErr::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiErr {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                code: "bad-request",
                message: "method not allowed on this route".into(),
            }
        })
        // Bodies are read by the handlers with their own limits (JSON 1 MiB,
        // blobs up to the manifest's max_blob_bytes, streamed).
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(AppState { core, shutdown })
}

/// `Path`, with its rejections (e.g. invalid percent-encoding) as JSON errors.
struct JsonPath<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for JsonPath<T>
{
    type Rejection = ApiErr;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiErr> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| JsonPath(v))
            .map_err(|e| ApiErr::bad_request(format!("path: {e}")))
    }
}

fn parse_id(s: &str) -> Result<B256, ApiErr> {
    B256::from_str(s)
        .map_err(|_| ApiErr::bad_request(format!("session id `{s}` is not 32 bytes of hex")))
}

async fn status_of(core: &Core, id: B256) -> Result<service::StatusOut, ApiErr> {
    let chain = core.chain.info();
    let lease_s = core.lease_s;
    core.db(move |c| service::status(c, &id, chain, lease_s))
        .await
}

/// Reads a JSON body (≤ [`JSON_LIMIT`]), authenticates it, then parses it.
async fn signed_json<T: serde::de::DeserializeOwned>(
    core: &Core,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<([u8; 32], T), ApiErr> {
    signed_json_limited(core, method, uri, headers, body, JSON_LIMIT).await
}

/// [`signed_json`] with another size limit.
async fn signed_json_limited<T: serde::de::DeserializeOwned>(
    core: &Core,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<([u8; 32], T), ApiErr> {
    let read = tokio::time::timeout(JSON_TIMEOUT, axum::body::to_bytes(body, limit));
    let bytes = read
        .await
        .map_err(|_| {
            ApiErr::timeout(format!(
                "request body not received within {} s",
                JSON_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|_| {
            ApiErr::too_large(format!(
                "request body exceeds {limit} bytes or could not be read"
            ))
        })?;
    let key = auth::authenticate(
        core,
        method.as_str(),
        uri.path(),
        headers,
        auth::Body::Bytes(&bytes),
    )
    .await?;
    let v = serde_json::from_slice(&bytes)
        .map_err(|e| ApiErr::bad_request(format!("request body: {e}")))?;
    Ok((key, v))
}

async fn signed_empty(
    core: &Core,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<[u8; 32], ApiErr> {
    auth::authenticate(
        core,
        method.as_str(),
        uri.path(),
        headers,
        auth::Body::Bytes(&[]),
    )
    .await
}

async fn health(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "chain": s.core.chain.info() }))
}

async fn create(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<service::StatusOut>, ApiErr> {
    let (key, m): (_, Manifest) =
        signed_json_limited(&s.core, &method, &uri, &headers, body, MANIFEST_LIMIT).await?;
    let (id, ev) = s.core.db(move |c| service::create(c, &key, &m)).await?;
    s.core.emit(ev);
    Ok(Json(status_of(&s.core, id).await?))
}

async fn list(State(s): State<AppState>) -> Result<Json<Vec<SessionSummary>>, ApiErr> {
    Ok(Json(s.core.db(|c| Ok(crate::db::summaries(c)?)).await?))
}

async fn status(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
) -> Result<Json<service::StatusOut>, ApiErr> {
    Ok(Json(status_of(&s.core, parse_id(&id)?).await?))
}

async fn view_of(
    core: &Core,
    id: B256,
    key: [u8; 32],
) -> Result<sealroom_protocol::api::MemberView, ApiErr> {
    let chain = core.chain.info();
    let lease_s = core.lease_s;
    core.db(move |c| service::member_view(c, &id, &key, chain, lease_s))
        .await
}

/// `GET /v1/sessions/{id}/member`: the signing member's view.
async fn member_view(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<sealroom_protocol::api::MemberView>, ApiErr> {
    let id = parse_id(&id)?;
    let key = signed_empty(&s.core, &method, &uri, &headers).await?;
    Ok(Json(view_of(&s.core, id, key).await?))
}

async fn consent(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<sealroom_protocol::api::MemberView>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, c): (_, Consent) = signed_json(&s.core, &method, &uri, &headers, body).await?;
    let ev = s
        .core
        .db(move |db| service::consent(db, &id, &key, &c))
        .await?;
    s.core.emit(ev);
    Ok(Json(view_of(&s.core, id, key).await?))
}

/// Streams a request body into the blob store (hashing on the way) without
/// holding it whole; refuses more than `limit` bytes.
async fn stream_to_store(
    core: &Core,
    body: Body,
    limit: u64,
) -> Result<([u8; 32], u64, Box<dyn BlobWriter>), ApiErr> {
    let writer = core.blobs.begin()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let task = tokio::task::spawn_blocking(move || -> std::io::Result<Box<dyn BlobWriter>> {
        let mut w = writer;
        while let Some(chunk) = rx.blocking_recv() {
            w.write_all(&chunk)?;
        }
        Ok(w)
    });
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut failure = None;
    let mut stream = body.into_data_stream();
    loop {
        let chunk = match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(_) => {
                failure = Some(ApiErr::timeout(format!(
                    "upload stalled for {} s",
                    IDLE_TIMEOUT.as_secs()
                )));
                break;
            }
        };
        match chunk {
            Err(e) => {
                failure = Some(ApiErr::bad_request(format!("reading the body: {e}")));
                break;
            }
            Ok(c) => {
                len += c.len() as u64;
                if len > limit {
                    failure = Some(ApiErr::too_large(format!(
                        "body exceeds the {limit} bytes accepted here"
                    )));
                    break;
                }
                hasher.update(&c);
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let w = task
        .await
        .map_err(|_| ApiErr::internal("blob writer failed"))??;
    if let Some(f) = failure {
        return Err(f);
    }
    Ok((hasher.finalize().into(), len, w))
}

async fn commit_blob(w: Box<dyn BlobWriter>, sha: [u8; 32]) -> Result<(), ApiErr> {
    tokio::task::spawn_blocking(move || w.commit(&sha))
        .await
        .map_err(|_| ApiErr::internal("blob commit failed"))??;
    Ok(())
}

/// Streams an authenticated upload into the store and checks the bytes
/// against the length and SHA-256 its signature declared; on a mismatch the
/// writer is dropped uncommitted, so nothing is stored.
async fn stream_declared(
    core: &Core,
    body: Body,
    len: u64,
    sha: [u8; 32],
) -> Result<Box<dyn BlobWriter>, ApiErr> {
    let (got_sha, got_len, writer) = stream_to_store(core, body, len).await?;
    if got_len != len || got_sha != sha {
        tracing::info!(check = "body-hash", "upload refused");
        return Err(ApiErr::bad_request(format!(
            "body does not match what was signed: {got_len} bytes with sha256 {}, \
             declared {len} bytes with sha256 {} (content-length, {})",
            hex::encode(got_sha),
            hex::encode(sha),
            sealroom_protocol::api::HDR_CONTENT_SHA256
        )));
    }
    Ok(writer)
}

/// A `PUT` of a declared body (blob or sealed model), authenticated from its
/// headers alone: the declared length and SHA-256, then the signature over
/// them. Returns `(length, sha256, caller)`.
async fn authenticate_declared_put(
    s: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(u64, [u8; 32], [u8; 32]), ApiErr> {
    let (len, sha) = auth::declared_body(headers)?;
    let key = auth::authenticate(
        &s.core,
        "PUT",
        uri.path(),
        headers,
        auth::Body::Declared { len, sha256: sha },
    )
    .await?;
    Ok((len, sha, key))
}

async fn upload_blob(
    State(s): State<AppState>,
    JsonPath((id, input)): JsonPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<sealroom_protocol::api::MemberView>, ApiErr> {
    let id = parse_id(&id)?;
    // Before any body byte is read: the signature over the declared length
    // and hash, the caller's right to this input, and the declaration
    // against the commitment. A stranger cannot make us read, let alone
    // store, a single byte.
    let (len, sha, key) = authenticate_declared_put(&s, &uri, &headers).await?;
    let inp = input.clone();
    let commitment = s
        .core
        .db(move |c| service::blob_precheck(c, &id, &key, &inp))
        .await?;
    if len > commitment.ciphertext_len {
        return Err(ApiErr::too_large(format!(
            "blob for `{input}` is larger than its commitment's ciphertext_len ({})",
            commitment.ciphertext_len
        )));
    }
    if len != commitment.ciphertext_len || sha != commitment.ciphertext_sha256.0 {
        tracing::info!(session = %id, route = "blob-upload", check = "commitment", "blob refused");
        return Err(ApiErr::conflict(format!(
            "blob for `{input}` does not match its commitment: length {len} vs {}, sha256 {} vs {}",
            commitment.ciphertext_len,
            hex::encode(sha),
            hex::encode(commitment.ciphertext_sha256)
        )));
    }
    let writer = stream_declared(&s.core, body, len, sha).await?;
    commit_blob(writer, sha).await?;
    let ev = s
        .core
        .db(move |c| service::blob_record(c, &id, &key, &input, &sha, len))
        .await?;
    s.core.emit(ev);
    Ok(Json(view_of(&s.core, id, key).await?))
}

/// Passes a stored blob's chunks on while hashing them, holding the last
/// chunk back until the whole content hashed to its address `want`; when it
/// does not, the stream ends in an error instead, so the response is cut
/// short of its `content-length` and no client receives altered bytes whole.
fn rehashed<S>(inner: S, want: [u8; 32]) -> impl Stream<Item = std::io::Result<Bytes>> + Send
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin,
{
    struct St<S> {
        inner: S,
        hasher: Sha256,
        held: Option<Bytes>,
        done: bool,
    }
    let st = St {
        inner,
        hasher: Sha256::new(),
        held: None,
        done: false,
    };
    futures_util::stream::unfold(st, move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(chunk)) => {
                    st.hasher.update(&chunk);
                    if let Some(prev) = st.held.replace(chunk) {
                        return Some((Ok(prev), st));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    let got: [u8; 32] = std::mem::take(&mut st.hasher).finalize().into();
                    if got != want {
                        tracing::error!(
                            check = "blob-hash",
                            want = %hex::encode(want),
                            got = %hex::encode(got),
                            "stored blob does not hash to its content address; response aborted"
                        );
                        return Some((
                            Err(std::io::Error::other(
                                "blob-hash: stored blob does not hash to its content address",
                            )),
                            st,
                        ));
                    }
                    let last = st.held.take()?;
                    return Some((Ok(last), st));
                }
            }
        }
    })
}

/// Hashes a stored blob whole; an error naming the `blob-hash` check when
/// it does not hash to its address (before anything is served or recorded).
async fn verify_stored(core: &Core, sha: [u8; 32], what: &str) -> Result<(), ApiErr> {
    use tokio::io::AsyncReadExt;
    let (mut reader, _) = core
        .blobs
        .open(&sha)?
        .ok_or_else(|| ApiErr::internal(format!("{what} recorded but missing from the store")))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let got: [u8; 32] = hasher.finalize().into();
    if got != sha {
        tracing::error!(check = "blob-hash", want = %hex::encode(sha), got = %hex::encode(got), "stored {what} altered; refused");
        return Err(ApiErr::internal(format!(
            "blob-hash: the stored {what} does not hash to its content address {}; \
             the coordinator's store was altered, so it is not served",
            hex::encode(sha)
        )));
    }
    Ok(())
}

async fn stream_blob(core: &Core, sha: [u8; 32]) -> Result<Response, ApiErr> {
    let (reader, len) = core
        .blobs
        .open(&sha)?
        .ok_or_else(|| ApiErr::internal("blob recorded but missing from the store"))?;
    let body = Body::from_stream(rehashed(tokio_util::io::ReaderStream::new(reader), sha));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

async fn download_blob(
    State(s): State<AppState>,
    JsonPath((id, input)): JsonPath<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiErr> {
    let id = parse_id(&id)?;
    let key = signed_empty(&s.core, &method, &uri, &headers).await?;
    let sha = s
        .core
        .db(move |c| service::blob_for_node(c, &id, &key, &input))
        .await?;
    stream_blob(&s.core, sha).await
}

async fn register_node(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<service::StatusOut>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, reg): (_, NodeRegistration) =
        signed_json(&s.core, &method, &uri, &headers, body).await?;
    let ev = s
        .core
        .db({
            let lease_s = s.core.lease_s;
            move |c| service::register_node(c, &id, &key, &reg, lease_s)
        })
        .await?;
    s.core.emit(ev);
    Ok(Json(status_of(&s.core, id).await?))
}

async fn node(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
) -> Result<Json<NodeRegistration>, ApiErr> {
    let st = status_of(&s.core, parse_id(&id)?).await?;
    st.node
        .map(Json)
        .ok_or_else(|| ApiErr::not_found("no node registered yet"))
}

async fn grant(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<sealroom_protocol::api::MemberView>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, g): (_, Grant) = signed_json(&s.core, &method, &uri, &headers, body).await?;
    let ev = s.core.db(move |c| service::grant(c, &id, &key, &g)).await?;
    s.core.emit(ev);
    Ok(Json(view_of(&s.core, id, key).await?))
}

async fn work(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<Work>, ApiErr> {
    let id = parse_id(&id)?;
    let key = signed_empty(&s.core, &method, &uri, &headers).await?;
    Ok(Json(s.core.db(move |c| service::work(c, &id, &key)).await?))
}

async fn progress(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, p): (_, Progress) = signed_json(&s.core, &method, &uri, &headers, body).await?;
    let ev = s
        .core
        .db(move |c| service::progress(c, &id, &key, &p))
        .await?;
    s.core.emit(ev);
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn heartbeat(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<sealroom_protocol::api::Lease>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, _): (_, serde_json::Value) =
        signed_json(&s.core, &method, &uri, &headers, body).await?;
    let lease_s = s.core.lease_s;
    let lease = s
        .core
        .db(move |c| service::heartbeat(c, &id, &key, lease_s))
        .await?;
    Ok(Json(lease))
}

async fn report(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<service::StatusOut>, ApiErr> {
    let id = parse_id(&id)?;
    let (key, r): (_, ReportUpload) = signed_json(&s.core, &method, &uri, &headers, body).await?;
    let ev = s
        .core
        .db(move |c| service::report(c, &id, &key, &r))
        .await?;
    s.core.emit(ev);
    // Publish now; on failure the report stays pending and the background
    // publisher retries.
    if let Err(e) = service::publish_pending(&s.core, id).await {
        tracing::warn!(session = %id, error = %e, "publication pending; will retry");
    }
    Ok(Json(status_of(&s.core, id).await?))
}

async fn upload_sealed(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<service::StatusOut>, ApiErr> {
    let id = parse_id(&id)?;
    // As for blobs: authenticated from the headers, the node's right and the
    // declared size and hash checked, all before the body is read.
    let (len, sha, key) = authenticate_declared_put(&s, &uri, &headers).await?;
    let limit = s
        .core
        .db(move |c| service::sealed_precheck(c, &id, &key))
        .await?;
    if len > limit {
        return Err(ApiErr::too_large(format!(
            "sealed model exceeds max_blob_bytes ({limit})"
        )));
    }
    s.core
        .db(move |c| service::sealed_check(c, &id, &key, &sha))
        .await?;
    let writer = stream_declared(&s.core, body, len, sha).await?;
    commit_blob(writer, sha).await?;
    let ev = s
        .core
        .db(move |c| service::sealed_record(c, &id, &key, &sha, len))
        .await?;
    s.core.emit(ev);
    if let Err(e) = service::publish_pending(&s.core, id).await {
        tracing::warn!(session = %id, error = %e, "publication pending; will retry");
    }
    Ok(Json(status_of(&s.core, id).await?))
}

async fn fetch_sealed(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiErr> {
    let id = parse_id(&id)?;
    let key = signed_empty(&s.core, &method, &uri, &headers).await?;
    // Re-hash the stored sealed model before the session becomes Delivered:
    // bytes altered in the store are refused, and the state stays Published.
    let stored = s
        .core
        .db(move |c| service::sealed_for_owner(c, &id, &key))
        .await?;
    verify_stored(&s.core, stored, "sealed model").await?;
    let (sha, ev) = s.core.db(move |c| service::deliver(c, &id, &key)).await?;
    s.core.emit(ev);
    stream_blob(&s.core, sha).await
}

async fn events(
    State(s): State<AppState>,
    JsonPath(id): JsonPath<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiErr> {
    let id = parse_id(&id)?;
    // Subscribe before reading the snapshot, so nothing falls in between.
    let rx = s.core.events.subscribe();
    let st = status_of(&s.core, id).await?;
    let first = SseEvent::default()
        .event("status")
        .json_data(serde_json::json!({ "session_id": id, "state": st.state, "abort_reason": st.abort_reason }))
        .map_err(|_| ApiErr::internal("event encoding"))?;
    let live = futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.session_id == id => {
                    let ev = SseEvent::default()
                        .event(e.kind)
                        .json_data(&e)
                        .unwrap_or_else(|_| SseEvent::default().event("error"));
                    return Some((Ok(ev), rx));
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    return Some((
                        Ok(SseEvent::default().event("lagged").data(n.to_string())),
                        rx,
                    ));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let mut shutdown = s.shutdown.clone();
    let stop = async move {
        let _ = shutdown.wait_for(|v| *v).await;
    };
    let stream = futures_util::stream::once(async move { Ok(first) })
        .chain(live)
        .take_until(Box::pin(stop));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(chunks: &[&'static [u8]], want: [u8; 32]) -> (Vec<u8>, Option<String>) {
        let inner = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        );
        let mut s = Box::pin(rehashed(inner, want));
        let mut out = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn served_bytes_are_rehashed_and_altered_ones_never_arrive_whole() {
        let chunks: [&'static [u8]; 3] = [b"first ", b"second ", b"third"];
        let whole = b"first second third";
        let sha: [u8; 32] = Sha256::digest(whole).into();
        assert_eq!(collect(&chunks, sha).await, (whole.to_vec(), None));
        // Altered content (the address no longer matches): the last chunk is
        // held back and the stream ends in an error naming the check.
        let (got, err) = collect(&chunks, [0u8; 32]).await;
        assert_eq!(got, b"first second ".to_vec());
        assert!(err.unwrap().contains("blob-hash"));
        // One chunk: nothing at all is released.
        let (got, err) = collect(&[b"only"], [0u8; 32]).await;
        assert!(got.is_empty() && err.is_some());
        // Empty blob with the right address.
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(collect(&[], empty).await, (vec![], None));
    }
}
