//! Signed requests: the envelope of `sealroom_protocol::api` checked on the
//! server, plus replay protection (nonces remembered in the database until
//! their timestamp leaves the accepted window).

use axum::http::HeaderMap;
use sealroom_protocol::api::{
    self, SignedHeaders, HDR_KEY, HDR_NONCE, HDR_SIGNATURE, HDR_TIMESTAMP, MAX_SKEW_S,
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

    /// The claimed key, before any check (to refuse a non-member before
    /// streaming a large body; the signature is still checked afterwards).
    pub fn claimed_key(&self) -> Result<[u8; 32], ApiErr> {
        sealroom_protocol::hash::parse_hex_array::<32>(&self.key)
            .ok_or_else(|| ApiErr::unauthorized(format!("{HDR_KEY}: not 32 bytes of hex")))
    }

    /// Refuses a stale timestamp early (before streaming a body).
    pub fn check_fresh(&self, now: u64) -> Result<(), ApiErr> {
        let ts: u64 = self
            .timestamp
            .parse()
            .map_err(|_| ApiErr::unauthorized(format!("{HDR_TIMESTAMP}: not a number")))?;
        if ts + MAX_SKEW_S < now || ts > now + MAX_SKEW_S {
            return Err(ApiErr::unauthorized(format!(
                "{HDR_TIMESTAMP}: outside the accepted window of {MAX_SKEW_S} s"
            )));
        }
        Ok(())
    }
}

/// The request signing message from the body's SHA-256: streamed uploads
/// are hashed on the fly and never held whole.
pub use sealroom_protocol::api::request_signing_message_prehashed as signing_message_prehashed;

/// What was signed: the body itself or its hash (streamed uploads).
pub enum Body<'b> {
    /// The whole body.
    Bytes(&'b [u8]),
    /// SHA-256 of a streamed body.
    Sha256([u8; 32]),
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
        Body::Bytes(b) => api::verify_request(method, path, raw.headers(), b, now),
        Body::Sha256(h) => api::verify_request_prehashed(method, path, raw.headers(), &h, now),
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

    #[test]
    fn prehashed_message_equals_the_protocol_message() {
        let body = b"some body bytes";
        let sha = sealroom_protocol::hash::sha256(body);
        assert_eq!(
            signing_message_prehashed("put", "/v1/x/blobs/a%2Fb", 17, "00ff", &sha),
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
        assert_eq!(
            api::verify_request_prehashed("PUT", "/p", raw.headers(), &sha, now).unwrap(),
            id.public().ed25519
        );
        assert!(api::verify_request_prehashed("PUT", "/q", raw.headers(), &sha, now).is_err());
        assert!(api::verify_request_prehashed("PUT", "/p", raw.headers(), &[0; 32], now).is_err());
        assert!(api::verify_request_prehashed(
            "PUT",
            "/p",
            raw.headers(),
            &sha,
            now + 2 * MAX_SKEW_S
        )
        .is_err());
        assert!(raw.check_fresh(now + 2 * MAX_SKEW_S).is_err());
    }
}
