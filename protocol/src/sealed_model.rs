//! The sealed model: what leaves the TEE, readable only by the owner.
//!
//! Layout: `"SRMODEL1" || u32be(len(header)) || header JSON || blob`, where
//! the blob is the STREAM cipher (see [`crate::stream`]) under a fresh model
//! key over `u64be(len(model)) || model bytes || metrics JSON`, and the header
//! carries the session id, the manifest hash, the owner's X25519 key and the
//! model key HPKE-sealed to it (`info` = purpose `model` + session id,
//! `aad` = manifest hash).

use std::io::{Read, Write};

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{hex32, Identity};
use crate::seal::{self, SealedBox};
use crate::stream::{self, DataKey, StreamDecryptor, StreamEncryptor};

const MAGIC: &[u8; 8] = b"SRMODEL1";
/// HPKE purpose of the model key.
pub const MODEL_PURPOSE: &str = "model";

/// The public header of a sealed model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedModelHeader {
    /// Session id.
    pub session_id: B256,
    /// Manifest hash.
    pub manifest_hash: B256,
    /// The owner's X25519 key the model key is sealed to.
    #[serde(with = "hex32")]
    pub owner_x25519: [u8; 32],
    /// The sealed model key.
    pub model_key: SealedBox,
}

/// An opened model.
pub struct OpenedModel {
    /// The model bytes.
    pub model: Zeroizing<Vec<u8>>,
    /// The metrics JSON the node sealed with it.
    pub metrics: serde_json::Value,
    /// The header.
    pub header: SealedModelHeader,
}

/// Why a sealed model could not be produced or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealedModelError {
    /// Not a sealed model, or a malformed one.
    #[error("not a valid sealed model: {0}")]
    Format(String),
    /// The model key does not open with this identity (not the owner).
    #[error("the model key does not open with this identity: it is sealed to owner key {0}")]
    NotOwner(String),
    /// The encrypted payload fails authentication.
    #[error("sealed model payload: {0}")]
    Payload(#[from] stream::StreamError),
    /// Sealing failed.
    #[error("sealing failed: {0}")]
    Seal(String),
}

/// Seals `model` and `metrics` to the owner's X25519 key.
pub fn seal_model(
    session_id: B256,
    manifest_hash: B256,
    owner_x25519: [u8; 32],
    model: &[u8],
    metrics: &serde_json::Value,
) -> Result<Vec<u8>, SealedModelError> {
    let key = DataKey::generate().map_err(|e| SealedModelError::Seal(e.to_string()))?;
    let sealed_key = seal::seal(
        &owner_x25519,
        &seal::info(MODEL_PURPOSE, session_id.as_slice()),
        manifest_hash.as_slice(),
        key.expose(),
    )
    .map_err(|e| SealedModelError::Seal(e.to_string()))?;
    let header = SealedModelHeader {
        session_id,
        manifest_hash,
        owner_x25519,
        model_key: sealed_key,
    };
    let header_json =
        serde_json::to_vec(&header).map_err(|e| SealedModelError::Seal(e.to_string()))?;
    let mut out = Vec::with_capacity(model.len() + header_json.len() + 1024);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&header_json);
    let seal_err = |e: std::io::Error| SealedModelError::Seal(e.to_string());
    let mut enc =
        StreamEncryptor::new(&key, stream::DEFAULT_SEGMENT_SIZE, out).map_err(seal_err)?;
    enc.write_all(&(model.len() as u64).to_be_bytes())
        .map_err(seal_err)?;
    enc.write_all(model).map_err(seal_err)?;
    enc.write_all(&serde_json::to_vec(metrics).map_err(|e| SealedModelError::Seal(e.to_string()))?)
        .map_err(seal_err)?;
    enc.finish().map_err(seal_err)
}

/// Reads the public header without opening anything.
pub fn read_header(sealed: &[u8]) -> Result<(SealedModelHeader, &[u8]), SealedModelError> {
    let bad = |m: &str| SealedModelError::Format(m.to_string());
    if sealed.len() < 12 || &sealed[..8] != MAGIC {
        return Err(bad("magic bytes differ"));
    }
    let hlen = u32::from_be_bytes([sealed[8], sealed[9], sealed[10], sealed[11]]) as usize;
    let header_bytes = sealed
        .get(12..12 + hlen)
        .ok_or_else(|| bad("header truncated"))?;
    let header: SealedModelHeader = serde_json::from_slice(header_bytes)
        .map_err(|e| SealedModelError::Format(format!("header: {e}")))?;
    Ok((header, &sealed[12 + hlen..]))
}

/// Opens a sealed model with the owner's identity.
pub fn open_model(sealed: &[u8], owner: &Identity) -> Result<OpenedModel, SealedModelError> {
    let (header, blob) = read_header(sealed)?;
    let key_bytes = seal::open(
        owner,
        &seal::info(MODEL_PURPOSE, header.session_id.as_slice()),
        header.manifest_hash.as_slice(),
        &header.model_key,
    )
    .map_err(|_| SealedModelError::NotOwner(hex::encode(header.owner_x25519)))?;
    let arr: [u8; 32] = key_bytes
        .as_slice()
        .try_into()
        .map_err(|_| SealedModelError::Format("model key length".into()))?;
    let key = DataKey::from_bytes(arr);
    let mut dec = StreamDecryptor::new(&key, blob)?;
    let mut plain = Zeroizing::new(Vec::new());
    dec.read_to_end(&mut plain).map_err(|e| {
        match e.into_inner().map(|i| i.downcast::<stream::StreamError>()) {
            Some(Ok(se)) => SealedModelError::Payload(*se),
            _ => SealedModelError::Format("payload unreadable".into()),
        }
    })?;
    if plain.len() < 8 {
        return Err(SealedModelError::Format("payload too short".into()));
    }
    let mlen = u64::from_be_bytes(plain[..8].try_into().unwrap_or([0; 8])) as usize;
    let model_end = 8usize
        .checked_add(mlen)
        .filter(|e| *e <= plain.len())
        .ok_or_else(|| SealedModelError::Format("model length exceeds payload".into()))?;
    let model = Zeroizing::new(plain[8..model_end].to_vec());
    let metrics = serde_json::from_slice(&plain[model_end..])
        .map_err(|e| SealedModelError::Format(format!("metrics: {e}")))?;
    Ok(OpenedModel {
        model,
        metrics,
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_opens_and_gets_exact_bytes() {
        let owner = Identity::generate().unwrap();
        let other = Identity::generate().unwrap();
        let model: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let metrics = serde_json::json!({"accuracy": 0.98});
        let sealed = seal_model(
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            owner.public().x25519,
            &model,
            &metrics,
        )
        .unwrap();
        let opened = open_model(&sealed, &owner).unwrap();
        assert_eq!(&opened.model[..], &model[..]);
        assert_eq!(opened.metrics, metrics);
        assert!(matches!(
            open_model(&sealed, &other),
            Err(SealedModelError::NotOwner(_))
        ));
        let mut t = sealed.clone();
        let last = t.len() - 3;
        t[last] ^= 1;
        assert!(open_model(&t, &owner).is_err());
    }
}
