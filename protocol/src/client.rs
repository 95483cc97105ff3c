//! The blocking HTTP client for the coordinator (parties, owner, node, TUI),
//! behind the `client` feature so the regulator's verifier (`reports`),
//! which only needs the API's types, links no HTTP client.

use std::io::Read;
use std::time::Duration;

use alloy_primitives::B256;
use serde::Serialize;

use crate::api::*;
use crate::identity::Identity;
use crate::manifest::{Consent, Grant, Manifest};

/// A blocking client for the coordinator, signing requests with an identity.
pub struct Client<'a> {
    base: String,
    identity: Option<&'a Identity>,
    agent: ureq::Agent,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<'a> Client<'a> {
    /// A client for `base` (e.g. `http://127.0.0.1:7300`), signing with `identity` when given.
    pub fn new(base: &str, identity: Option<&'a Identity>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        Self {
            base: base.trim_end_matches('/').to_string(),
            identity,
            agent,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Adds the signature headers (when the client has an identity) over
    /// the body's length and SHA-256, and the hash itself in
    /// [`HDR_CONTENT_SHA256`].
    fn signed(
        &self,
        req: ureq::http::request::Builder,
        method: &str,
        path: &str,
        body_len: u64,
        body_sha256: &[u8; 32],
    ) -> Result<ureq::http::request::Builder, ClientError> {
        let Some(id) = self.identity else {
            return Ok(req);
        };
        let ts = now_s();
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| ClientError::Transport {
            url: self.base.clone(),
            detail: e.to_string(),
        })?;
        let nonce = hex::encode(nonce);
        let sig = id.sign(&request_signing_message_prehashed(
            method,
            path,
            ts,
            &nonce,
            body_len,
            body_sha256,
        ));
        Ok(req
            .header(HDR_KEY, hex::encode(id.public().ed25519))
            .header(HDR_TIMESTAMP, ts.to_string())
            .header(HDR_NONCE, nonce)
            .header(HDR_SIGNATURE, hex::encode(sig))
            .header(HDR_CONTENT_SHA256, hex::encode(body_sha256)))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let bytes = body.map(|(b, _)| b).unwrap_or(&[]);
        let mut req = self.signed(
            ureq::http::Request::builder().method(method).uri(&url),
            method,
            path,
            bytes.len() as u64,
            &crate::hash::sha256(bytes),
        )?;
        if let Some((_, ct)) = body {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(bytes.to_vec())
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        self.run(req)
    }

    /// Streams a body of declared length and SHA-256 from `body` (bounded
    /// memory), signed over both, with `content-length` set: the coordinator
    /// authenticates the request before it reads the body.
    fn send_stream(
        &self,
        method: &str,
        path: &str,
        len: u64,
        body_sha256: &[u8; 32],
        body: &mut dyn Read,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let req = self
            .signed(
                ureq::http::Request::builder().method(method).uri(&url),
                method,
                path,
                len,
                body_sha256,
            )?
            .header("content-type", "application/octet-stream")
            .header("content-length", len.to_string())
            .body(ureq::SendBody::from_reader(body))
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        self.run(req)
    }

    fn run(
        &self,
        req: ureq::http::Request<impl ureq::AsSendBody>,
    ) -> Result<ureq::http::Response<ureq::Body>, ClientError> {
        let resp = self.agent.run(req).map_err(|e| ClientError::Transport {
            url: self.base.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let mut resp = resp;
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let err: ApiError = serde_json::from_str(&text).unwrap_or(ApiError {
                code: "http".into(),
                message: text,
            });
            return Err(ClientError::Api {
                status,
                code: err.code,
                message: err.message,
            });
        }
        Ok(resp)
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<T, ClientError> {
        let mut resp = self.send(method, path, body.map(|b| (b, "application/json")))?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    fn to_body<T: Serialize>(v: &T) -> Result<Vec<u8>, ClientError> {
        serde_json::to_vec(v).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `POST /v1/sessions` (owner): publish a manifest; returns its status.
    pub fn create_session(&self, manifest: &Manifest) -> Result<SessionStatus, ClientError> {
        self.json("POST", "/v1/sessions", Some(&Self::to_body(manifest)?))
    }

    /// `GET /v1/sessions`.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, ClientError> {
        self.json("GET", "/v1/sessions", None)
    }

    /// `GET /v1/sessions/{id}`.
    pub fn status(&self, session: &B256) -> Result<SessionStatus, ClientError> {
        self.json("GET", &format!("/v1/sessions/{session:#x}"), None)
    }

    /// `GET /v1/sessions/{id}/member` (member, signed): the session as the
    /// signing member needs it ([`MemberView`]).
    pub fn member_view(&self, session: &B256) -> Result<MemberView, ClientError> {
        self.json("GET", &format!("/v1/sessions/{session:#x}/member"), None)
    }

    /// `POST /v1/sessions/{id}/consent` (member): consent or withdrawal.
    pub fn consent(&self, session: &B256, consent: &Consent) -> Result<MemberView, ClientError> {
        self.json(
            "POST",
            &format!("/v1/sessions/{session:#x}/consent"),
            Some(&Self::to_body(consent)?),
        )
    }

    fn decode_body<T: serde::de::DeserializeOwned>(
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, ClientError> {
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `PUT /v1/sessions/{id}/blobs/{input}` (member): upload an encrypted
    /// blob held in memory ([`Client::upload_blob_from`] over the slice).
    pub fn upload_blob(
        &self,
        session: &B256,
        input: &str,
        blob: &[u8],
    ) -> Result<MemberView, ClientError> {
        self.upload_blob_from(
            session,
            input,
            blob.len() as u64,
            crate::hash::sha256(blob),
            blob,
            &|_, _| {},
        )
    }

    /// `PUT /v1/sessions/{id}/blobs/{input}` (member): streams an encrypted
    /// blob of `len` bytes whose SHA-256 is `body_sha256` from `body`, with
    /// bounded memory, calling `progress(sent, len)` as bytes go out (every
    /// 256 KiB and at the end). The request is signed over `len` and
    /// `body_sha256`; the coordinator checks both against the commitment
    /// before reading the body, and refuses (storing nothing) bytes that do
    /// not match them. At most `len` bytes are read from `body`.
    pub fn upload_blob_from(
        &self,
        session: &B256,
        input: &str,
        len: u64,
        body_sha256: [u8; 32],
        body: impl Read,
        progress: &dyn Fn(u64, u64),
    ) -> Result<MemberView, ClientError> {
        let path = format!("/v1/sessions/{session:#x}/blobs/{}", encode_segment(input));
        let mut reader = Progressing {
            inner: body,
            sent: 0,
            total: len,
            progress,
        };
        let resp = self.send_stream("PUT", &path, len, &body_sha256, &mut reader)?;
        Self::decode_body(resp)
    }

    /// `POST /v1/sessions/{id}/node` (node): register with evidence.
    pub fn register_node(
        &self,
        session: &B256,
        reg: &NodeRegistration,
    ) -> Result<SessionStatus, ClientError> {
        self.json(
            "POST",
            &format!("/v1/sessions/{session:#x}/node"),
            Some(&Self::to_body(reg)?),
        )
    }

    /// `POST /v1/sessions/{id}/grants` (member).
    pub fn grant(&self, session: &B256, grant: &Grant) -> Result<MemberView, ClientError> {
        self.json(
            "POST",
            &format!("/v1/sessions/{session:#x}/grants"),
            Some(&Self::to_body(grant)?),
        )
    }

    /// `GET /v1/sessions/{id}/work` (node).
    pub fn work(&self, session: &B256) -> Result<Work, ClientError> {
        self.json("GET", &format!("/v1/sessions/{session:#x}/work"), None)
    }

    /// `GET /v1/sessions/{id}/blobs/{input}` (node): a streaming reader of the blob.
    pub fn blob(
        &self,
        session: &B256,
        input: &str,
    ) -> Result<Box<dyn Read + Send + 'static>, ClientError> {
        let path = format!("/v1/sessions/{session:#x}/blobs/{}", encode_segment(input));
        let resp = self.send("GET", &path, None)?;
        Ok(Box::new(
            resp.into_body().into_with_config().limit(u64::MAX).reader(),
        ))
    }

    /// `POST /v1/sessions/{id}/progress` (node).
    pub fn progress(&self, session: &B256, p: &Progress) -> Result<(), ClientError> {
        self.send(
            "POST",
            &format!("/v1/sessions/{session:#x}/progress"),
            Some((&Self::to_body(p)?, "application/json")),
        )?;
        Ok(())
    }

    /// `POST /v1/sessions/{id}/heartbeat` (the node holding the session):
    /// renews its lease; the answer says whether the session was aborted.
    pub fn heartbeat(&self, session: &B256) -> Result<Lease, ClientError> {
        self.json(
            "POST",
            &format!("/v1/sessions/{session:#x}/heartbeat"),
            Some(b"{}"),
        )
    }

    /// `POST /v1/sessions/{id}/reports` (node).
    pub fn report(&self, session: &B256, r: &ReportUpload) -> Result<SessionStatus, ClientError> {
        self.json(
            "POST",
            &format!("/v1/sessions/{session:#x}/reports"),
            Some(&Self::to_body(r)?),
        )
    }

    /// `PUT /v1/sessions/{id}/sealed-model` (node): signed over the sealed
    /// bytes' length and SHA-256, like a blob upload.
    pub fn upload_sealed_model(
        &self,
        session: &B256,
        sealed: &[u8],
    ) -> Result<SessionStatus, ClientError> {
        let path = format!("/v1/sessions/{session:#x}/sealed-model");
        let mut body = sealed;
        let resp = self.send_stream(
            "PUT",
            &path,
            sealed.len() as u64,
            &crate::hash::sha256(sealed),
            &mut body,
        )?;
        Self::decode_body(resp)
    }

    /// `GET /v1/sessions/{id}/sealed-model` (owner only).
    pub fn sealed_model(&self, session: &B256) -> Result<Vec<u8>, ClientError> {
        let mut resp = self.send(
            "GET",
            &format!("/v1/sessions/{session:#x}/sealed-model"),
            None,
        )?;
        resp.body_mut()
            .with_config()
            .limit(crate::manifest::limits::MAX_BLOB_BYTES)
            .read_to_vec()
            .map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// A reader that stops at the declared length and reports progress.
struct Progressing<'p, R> {
    inner: R,
    sent: u64,
    total: u64,
    progress: &'p dyn Fn(u64, u64),
}

impl<R: Read> Read for Progressing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.total.saturating_sub(self.sent);
        if room == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        let before = self.sent;
        self.sent += n as u64;
        // One call per 256 KiB (and at the end): a multi-GB blob must not
        // flood a UI's channel.
        if n > 0 && (self.sent >> 18 != before >> 18 || self.sent == self.total) {
            (self.progress)(self.sent, self.total);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progressing_reader_stops_at_the_declared_length_and_reports() {
        let calls = std::cell::RefCell::new(Vec::new());
        let data = vec![1u8; 600 << 10];
        let mut r = Progressing {
            inner: &data[..],
            sent: 0,
            total: 300 << 10,
            progress: &|s, t| calls.borrow_mut().push((s, t)),
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 300 << 10, "never past the declared length");
        let calls = calls.into_inner();
        assert_eq!(calls.last(), Some(&(300 << 10, 300 << 10)));
        assert!(calls.iter().any(|(s, _)| *s >= 256 << 10 && *s < 300 << 10));
    }
}
