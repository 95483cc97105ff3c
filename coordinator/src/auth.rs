//! Signed requests: the envelope of `sealroom_protocol::api` checked on the
//! server, plus replay protection (nonces remembered in the database until
//! their timestamp leaves the accepted window).
//!
//! The signature covers the body's length and SHA-256. JSON bodies (at most
//! 1 MiB) are read, then checked; uploads declare both in headers
//! (`content-length`, [`HDR_CONTENT_SHA256`]), are authenticated from the
//! headers alone before a byte of the body is read ([`declared_body`],
//! [`Body::Declared`]), and the streamed bytes are then checked against the
//! declaration.

use axum::http::{header, HeaderMap};
use sealroom_protocol::api::{
    self, SignedHeaders, HDR_CONTENT_SHA256, HDR_KEY, HDR_NONCE, HDR_SIGNATURE, HDR_TIMESTAMP,
};

use crate::db;
use crate::error::ApiErr;
use crate::service::{now_s, Core};

/// The four signature headers, owned.
#[derive(Clone, Debug)]
pub struct RawSig {
    key: String,
    timestamp: String,
    nonce: String,
    signature: String,
}

impl RawSig {
    /// Reads the headers; 401 naming the first one missing.
    pub fn from_headers(h: &HeaderMap) -> Result<Self, ApiErr> {
        let get = |name: &str| -> Result<String, ApiErr> {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiErr::unauthorized(format!("signed request required: header {name} missing"))
                })
        };
        Ok(Self {
            key: get(HDR_KEY)?,
            timestamp: get(HDR_TIMESTAMP)?,
            nonce: get(HDR_NONCE)?,
            signature: get(HDR_SIGNATURE)?,
        })
    }

    fn headers(&self) -> SignedHeaders<'_> {
        SignedHeaders {
            key: &self.key,
            timestamp: &self.timestamp,
            nonce: &self.nonce,
            signature: &self.signature,
        }
    }
}

/// The request signing message from the body's declared length and SHA-256.
pub use sealroom_protocol::api::request_signing_message_prehashed as signing_message_prehashed;

/// What was signed: the body itself, or the length and SHA-256 an upload
/// declares in its headers (checked before the body is read).
pub enum Body<'b> {
    /// The whole body, already read.
    Bytes(&'b [u8]),
    /// An upload's declared length and SHA-256 ([`declared_body`]).
    Declared {
        /// `content-length`.
        len: u64,
        /// [`HDR_CONTENT_SHA256`].
        sha256: [u8; 32],
    },
}

/// An upload's declared body: its `content-length` and the SHA-256 in
/// [`HDR_CONTENT_SHA256`], both required (a chunked body declares no length
/// and is refused), read before any byte of the body.
pub fn declared_body(h: &HeaderMap) -> Result<(u64, [u8; 32]), ApiErr> {
    if h.contains_key(header::TRANSFER_ENCODING) {
        return Err(ApiErr::bad_request(
            "transfer-encoding: uploads must declare their length in content-length, not stream chunked",
        ));
    }
    let len = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiErr::bad_request("content-length: required on uploads (it is signed)"))?
        .parse::<u64>()
        .map_err(|_| ApiErr::bad_request("content-length: not a number"))?;
    let sha = h
        .get(HDR_CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiErr::unauthorized(format!(
                "signed upload required: header {HDR_CONTENT_SHA256} missing"
            ))
        })?;
    let sha = api::parse_content_sha256(sha).map_err(ApiErr::unauthorized)?;
    Ok((len, sha))
}

/// Verifies a signed request and consumes its nonce; returns the signer.
pub async fn authenticate(
    core: &Core,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: Body<'_>,
) -> Result<[u8; 32], ApiErr> {
    let raw = RawSig::from_headers(headers)?;
    let now = now_s();
    let key = match body {
        Body::Bytes(b) => {
            // The declared hash is optional on JSON bodies, but never a lie.
            if let Some(v) = headers.get(HDR_CONTENT_SHA256) {
                let declared = v
                    .to_str()
                    .map_err(|_| ApiErr::bad_request(format!("{HDR_CONTENT_SHA256}: not text")))
                    .and_then(|v| api::parse_content_sha256(v).map_err(ApiErr::bad_request))?;
                if declared != sealroom_protocol::hash::sha256(b) {
                    return Err(ApiErr::bad_request(format!(
                        "{HDR_CONTENT_SHA256}: does not match the body"
                    )));
                }
            }
            api::verify_request(method, path, raw.headers(), b, now)
        }
        Body::Declared { len, sha256 } => {
            api::verify_request_prehashed(method, path, raw.headers(), len, &sha256, now)
        }
    }
    .map_err(|e| {
        tracing::info!(route = %path, check = "signature", "request refused");
        ApiErr::unauthorized(e)
    })?;
    let ts: u64 = raw.timestamp.parse().unwrap_or(now);
    let nonce = raw.nonce.clone();
    let fresh = core
        .db(move |c| Ok(db::remember_nonce(c, &key, &nonce, ts)?))
        .await?;
    if !fresh {
        tracing::info!(route = %path, check = "replay", "request refused");
        return Err(ApiErr::unauthorized(format!(
            "{HDR_NONCE}: replayed request (nonce already used)"
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealroom_protocol::api::MAX_SKEW_S;

    #[test]
    fn prehashed_message_equals_the_protocol_message() {
        let body = b"some body bytes";
        let sha = sealroom_protocol::hash::sha256(body);
        assert_eq!(
            signing_message_prehashed("put", "/v1/x/blobs/a%2Fb", 17, "00ff", 15, &sha),
            api::request_signing_message("PUT", "/v1/x/blobs/a%2Fb", 17, "00ff", body)
        );
    }

    #[test]
    fn prehashed_verification_accepts_and_rejects_like_the_protocol() {
        let id = sealroom_protocol::identity::Identity::generate().unwrap();
        let now = now_s();
        let nonce = "00112233445566778899aabbccddeeff".to_string();
        let body = b"blob";
        let sig = id.sign(&api::request_signing_message(
            "PUT", "/p", now, &nonce, body,
        ));
        let raw = RawSig {
            key: hex::encode(id.public().ed25519),
            timestamp: now.to_string(),
            nonce,
            signature: hex::encode(sig),
        };
        let sha = sealroom_protocol::hash::sha256(body);
        let verify = |path: &str, len: u64, sha: &[u8; 32], now: u64| {
            api::verify_request_prehashed("PUT", path, raw.headers(), len, sha, now)
        };
        assert_eq!(verify("/p", 4, &sha, now).unwrap(), id.public().ed25519);
        assert!(verify("/q", 4, &sha, now).is_err());
        assert!(verify("/p", 4, &[0; 32], now).is_err());
        assert!(verify("/p", 5, &sha, now).is_err(), "the length is signed");
        assert!(verify("/p", 4, &sha, now + 2 * MAX_SKEW_S).is_err());
    }

    #[test]
    fn uploads_declare_length_and_hash_in_headers() {
        let mut h = HeaderMap::new();
        assert!(declared_body(&h)
            .unwrap_err()
            .message
            .contains("content-length"));
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert!(declared_body(&h)
            .unwrap_err()
            .message
            .contains(HDR_CONTENT_SHA256));
        h.insert(HDR_CONTENT_SHA256, "zz".parse().unwrap());
        assert!(declared_body(&h).is_err());
        h.insert(HDR_CONTENT_SHA256, hex::encode([5u8; 32]).parse().unwrap());
        assert_eq!(declared_body(&h).unwrap(), (12, [5u8; 32]));
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        assert!(declared_body(&h)
            .unwrap_err()
            .message
            .contains("transfer-encoding"));
    }
}
