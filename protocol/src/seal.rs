//! HPKE (RFC 9180) sealing to an X25519 key: base mode, DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-256-GCM. Used for data-key grants (party →
//! node), the sealed model key (node → owner), and a party's own copy of its
//! data key (party → itself).
//!
//! `info` always names the purpose and, where there is one, the session id, so
//! a box sealed for one purpose or session cannot be replayed into another.

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::Identity;

/// A sealed box: the encapsulated key and the AEAD ciphertext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBox {
    /// HPKE encapsulated key (X25519 ephemeral public key), hex.
    #[serde(with = "crate::identity::hex32")]
    pub enc: [u8; 32],
    /// AEAD ciphertext with its tag, hex.
    #[serde(with = "hex_vec")]
    pub ciphertext: Vec<u8>,
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The recipient key is not a valid X25519 key.
    #[error("invalid recipient X25519 key")]
    BadRecipient,
    /// HPKE encapsulation or encryption failed.
    #[error("HPKE seal failed")]
    Seal,
    /// The box does not open with this key, info and aad: wrong recipient,
    /// another session or purpose, or an altered box.
    #[error("sealed box does not open (wrong recipient, session or purpose, or altered)")]
    Open,
}

/// The `info` string for a purpose and session.
pub fn info(purpose: &str, session_id: &[u8]) -> Vec<u8> {
    crate::hash::LpHasher::new("sealroom.hpke.info.v1")
        .part(purpose)
        .part(session_id)
        .finish()
        .to_vec()
}

/// Seals `plaintext` to `recipient` (X25519 public key).
pub fn seal(
    recipient: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedBox, SealError> {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(recipient)
        .map_err(|_| SealError::BadRecipient)?;
    let (enc, ct) = hpke::single_shot_seal::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
    )
    .map_err(|_| SealError::Seal)?;
    let mut e = [0u8; 32];
    e.copy_from_slice(enc.to_bytes().as_slice());
    Ok(SealedBox {
        enc: e,
        ciphertext: ct,
    })
}

/// Opens a box sealed to `identity`'s X25519 key.
pub fn open(
    identity: &Identity,
    info: &[u8],
    aad: &[u8],
    sealed: &SealedBox,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let sk = identity.hpke_private_key().map_err(|_| SealError::Open)?;
    open_with(&sk, info, aad, sealed)
}

/// Opens a box with a raw HPKE private key (the node's in-memory key).
pub fn open_with(
    sk: &<X25519HkdfSha256 as Kem>::PrivateKey,
    info: &[u8],
    aad: &[u8],
    sealed: &SealedBox,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&sealed.enc)
        .map_err(|_| SealError::Open)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        sk,
        &enc,
        info,
        &sealed.ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| SealError::Open)
}

/// serde helper: bytes as hex.
pub mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Lower-case hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Hex with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_with_the_right_info_opens() {
        let bob = Identity::generate().unwrap();
        let eve = Identity::generate().unwrap();
        let i = info("grant", b"session-1");
        let b = seal(&bob.public().x25519, &i, b"aad", b"secret").unwrap();
        assert_eq!(&open(&bob, &i, b"aad", &b).unwrap()[..], b"secret");
        assert_eq!(open(&eve, &i, b"aad", &b), Err(SealError::Open));
        assert_eq!(
            open(&bob, &info("grant", b"session-2"), b"aad", &b),
            Err(SealError::Open)
        );
        assert_eq!(open(&bob, &i, b"other", &b), Err(SealError::Open));
        let mut t = b.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(open(&bob, &i, b"aad", &t), Err(SealError::Open));
    }
}
