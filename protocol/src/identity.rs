//! Party, owner and node identities: an ed25519 signing key and an X25519
//! receiving key (for HPKE), stored in a small JSON file.
//!
//! File format (`sealroom-identity/1`, mode 0600):
//! ```json
//! { "format": "sealroom-identity/1",
//!   "ed25519_secret_key": "<64 hex>", "x25519_secret_key": "<64 hex>",
//!   "ed25519_public_key": "<64 hex>", "x25519_public_key": "<64 hex>" }
//! ```
//! The public half (`sealroom-public-identity/1`) has only the two public keys
//! and is what a party shares. Loading a secret file checks that the public
//! keys written in it match the secret keys, so a hand-edited file cannot
//! silently announce someone else's key.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hpke::{kem::X25519HkdfSha256, Deserializable, Kem, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::fsutil;

/// The format tag of a secret identity file.
pub const IDENTITY_FORMAT: &str = "sealroom-identity/1";
/// The format tag of a public identity file.
pub const PUBLIC_IDENTITY_FORMAT: &str = "sealroom-public-identity/1";

/// Why an identity or a signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid identity file; `field` names the bad field.
    #[error("{path}: field `{field}`: {detail}")]
    Format {
        /// The file.
        path: String,
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A secret key file readable by other users is refused, as ssh does.
    #[error("{path}: secret key file is accessible by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file holds only public keys where a secret identity is needed.
    #[error("{path}: this is a public identity; a secret identity file (from `sealroom keygen`) is needed")]
    PublicOnly {
        /// The file.
        path: String,
    },
    /// A key's bytes are not a valid key.
    #[error("invalid {what} key")]
    InvalidKey {
        /// Which key.
        what: &'static str,
    },
    /// A signature did not verify (strict ed25519 verification).
    #[error("signature does not verify under {signer}")]
    BadSignature {
        /// Who was supposed to have signed.
        signer: String,
    },
}

/// The public half of an identity: what others use to check our signatures and
/// to seal things to us.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// ed25519 verifying key.
    #[serde(with = "hex32")]
    pub ed25519: [u8; 32],
    /// X25519 public key (HPKE receiving key).
    #[serde(with = "hex32")]
    pub x25519: [u8; 32],
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicIdentity(ed25519={}, x25519={})",
            hex::encode(self.ed25519),
            hex::encode(self.x25519)
        )
    }
}

impl PublicIdentity {
    /// Strictly verifies `signature` over `message` under this identity's ed25519 key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), IdentityError> {
        verify_strict(&self.ed25519, message, signature)
    }

    /// A short fingerprint for display (first 8 bytes of the ed25519 key).
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.ed25519[..8])
    }

    /// The JSON text of a public identity file.
    pub fn to_file_json(&self) -> String {
        let v = serde_json::json!({
            "format": PUBLIC_IDENTITY_FORMAT,
            "ed25519_public_key": hex::encode(self.ed25519),
            "x25519_public_key": hex::encode(self.x25519),
        });
        // Serialising a json! value cannot fail.
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }

    /// Loads a public identity from a public or secret identity file (only the
    /// public keys are kept from a secret file).
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let raw = read_file(path)?;
        Ok(parse_identity_file(path, &raw)?.public())
    }
}

/// Strict ed25519 verification (rejects small-order keys and non-canonical
/// signatures) of `signature` over `message` under `key`.
pub fn verify_strict(
    key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), IdentityError> {
    let vk =
        VerifyingKey::from_bytes(key).map_err(|_| IdentityError::InvalidKey { what: "ed25519" })?;
    let sig = Signature::from_bytes(signature);
    vk.verify_strict(message, &sig)
        .map_err(|_| IdentityError::BadSignature {
            signer: hex::encode(&key[..8]),
        })
}

/// A secret identity. Its secret keys are zeroized when it is dropped and
/// never appear in `Debug` output.
pub struct Identity {
    signing: SigningKey,
    x25519_secret: Zeroizing<[u8; 32]>,
    public: PublicIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?}, secret keys redacted)", self.public)
    }
}

impl Identity {
    /// A fresh identity from the operating system's random source.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut xs = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| IdentityError::Io {
            path: "<os random source>".into(),
            source: std::io::Error::other(e),
        })?;
        getrandom::fill(xs.as_mut()).map_err(|e| IdentityError::Io {
            path: "<os random source>".into(),
            source: std::io::Error::other(e),
        })?;
        Self::from_secrets(&seed, &xs)
    }

    /// Builds an identity from its two 32-byte secrets.
    pub fn from_secrets(
        ed25519_seed: &[u8; 32],
        x25519_secret: &[u8; 32],
    ) -> Result<Self, IdentityError> {
        let signing = SigningKey::from_bytes(ed25519_seed);
        let x25519 = x25519_public(x25519_secret)?;
        let public = PublicIdentity {
            ed25519: signing.verifying_key().to_bytes(),
            x25519,
        };
        Ok(Self {
            signing,
            x25519_secret: Zeroizing::new(*x25519_secret),
            public,
        })
    }

    /// The public half.
    pub fn public(&self) -> PublicIdentity {
        self.public
    }

    /// Signs `message` with the ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The HPKE private key (for opening grants and sealed models).
    pub fn hpke_private_key(&self) -> Result<<X25519HkdfSha256 as Kem>::PrivateKey, IdentityError> {
        <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(self.x25519_secret.as_ref())
            .map_err(|_| IdentityError::InvalidKey { what: "x25519" })
    }

    /// Writes the secret identity file with mode 0600, atomically. Refuses to
    /// overwrite an existing file: losing an identity loses access to data.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        if path.exists() {
            return Err(IdentityError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "file exists; refusing to overwrite an identity",
                ),
            });
        }
        let mut seed = Zeroizing::new(hex::encode(self.signing.to_bytes()));
        let mut xs = Zeroizing::new(hex::encode(self.x25519_secret.as_ref()));
        let mut text = Zeroizing::new(format!(
            "{{\n  \"format\": \"{IDENTITY_FORMAT}\",\n  \"ed25519_secret_key\": \"{}\",\n  \"x25519_secret_key\": \"{}\",\n  \"ed25519_public_key\": \"{}\",\n  \"x25519_public_key\": \"{}\"\n}}\n",
            seed.as_str(),
            xs.as_str(),
            hex::encode(self.public.ed25519),
            hex::encode(self.public.x25519),
        ));
        let r =
            fsutil::write_atomic(path, text.as_bytes(), true).map_err(|source| IdentityError::Io {
                path: path.display().to_string(),
                source,
            });
        seed.zeroize();
        xs.zeroize();
        text.zeroize();
        r
    }

    /// Loads a secret identity file. Refuses files readable by other users.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|source| IdentityError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let mode = meta.permissions().mode() & 0o777;
            let raw = read_file(path)?;
            let parsed = parse_identity_file(path, &raw)?;
            match parsed {
                Parsed::Secret(_) if mode & 0o077 != 0 => Err(IdentityError::Permissions {
                    path: path.display().to_string(),
                    mode,
                }),
                Parsed::Secret(id) => Ok(*id),
                Parsed::Public(_) => Err(IdentityError::PublicOnly {
                    path: path.display().to_string(),
                }),
            }
        }
        #[cfg(not(unix))]
        {
            let raw = read_file(path)?;
            match parse_identity_file(path, &raw)? {
                Parsed::Secret(id) => Ok(*id),
                Parsed::Public(_) => Err(IdentityError::PublicOnly {
                    path: path.display().to_string(),
                }),
            }
        }
    }
}

/// The X25519 public key of a secret.
pub fn x25519_public(secret: &[u8; 32]) -> Result<[u8; 32], IdentityError> {
    let sk = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(secret)
        .map_err(|_| IdentityError::InvalidKey { what: "x25519" })?;
    let pk = X25519HkdfSha256::sk_to_pk(&sk);
    let bytes = pk.to_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes.as_slice());
    Ok(out)
}

enum Parsed {
    Secret(Box<Identity>),
    Public(PublicIdentity),
}

impl Parsed {
    fn public(&self) -> PublicIdentity {
        match self {
            Parsed::Secret(id) => id.public(),
            Parsed::Public(p) => *p,
        }
    }
}

fn read_file(path: &Path) -> Result<Zeroizing<String>, IdentityError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| IdentityError::Io {
            path: path.display().to_string(),
            source,
        })
}

fn parse_identity_file(path: &Path, raw: &str) -> Result<Parsed, IdentityError> {
    let p = path.display().to_string();
    let fmt_err = |field: &str, detail: &str| IdentityError::Format {
        path: p.clone(),
        field: field.to_string(),
        detail: detail.to_string(),
    };
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| fmt_err("(file)", &format!("not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| fmt_err("(file)", "expected a JSON object"))?;
    let get_hex = |field: &str| -> Result<Zeroizing<[u8; 32]>, IdentityError> {
        let s = obj
            .get(field)
            .and_then(|v| v.as_str())
            .ok_or_else(|| fmt_err(field, "missing or not a string"))?;
        let mut bytes = Zeroizing::new(hex::decode(s).map_err(|_| fmt_err(field, "not hex"))?);
        if bytes.len() != 32 {
            return Err(fmt_err(field, "must be 32 bytes (64 hex digits)"));
        }
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(out)
    };
    let format = obj
        .get("format")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fmt_err("format", "missing or not a string"))?;
    let allowed: &[&str] = match format {
        IDENTITY_FORMAT => &[
            "format",
            "ed25519_secret_key",
            "x25519_secret_key",
            "ed25519_public_key",
            "x25519_public_key",
        ],
        PUBLIC_IDENTITY_FORMAT => &["format", "ed25519_public_key", "x25519_public_key"],
        other => {
            return Err(fmt_err(
                "format",
                &format!("unknown format `{other}` (expected `{IDENTITY_FORMAT}` or `{PUBLIC_IDENTITY_FORMAT}`)"),
            ))
        }
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(fmt_err(k, "unknown field"));
    }
    let ed_pub = get_hex("ed25519_public_key")?;
    let x_pub = get_hex("x25519_public_key")?;
    VerifyingKey::from_bytes(&ed_pub)
        .map_err(|_| fmt_err("ed25519_public_key", "not a valid ed25519 point"))?;
    if format == PUBLIC_IDENTITY_FORMAT {
        return Ok(Parsed::Public(PublicIdentity {
            ed25519: *ed_pub,
            x25519: *x_pub,
        }));
    }
    let seed = get_hex("ed25519_secret_key")?;
    let xs = get_hex("x25519_secret_key")?;
    let id = Identity::from_secrets(&seed, &xs)
        .map_err(|_| fmt_err("x25519_secret_key", "invalid key"))?;
    if id.public.ed25519 != *ed_pub {
        return Err(fmt_err(
            "ed25519_public_key",
            "does not match ed25519_secret_key",
        ));
    }
    if id.public.x25519 != *x_pub {
        return Err(fmt_err(
            "x25519_public_key",
            "does not match x25519_secret_key",
        ));
    }
    Ok(Parsed::Secret(Box::new(id)))
}

/// serde helper: 32 bytes as hex.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lower-case hex without prefix.
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Accepts hex with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::hash::parse_hex_array::<32>(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 32 bytes of hex"))
    }
}

/// serde helper: 64 bytes as hex (signatures).
pub mod hex64 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lower-case hex without prefix.
    pub fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Accepts hex with or without `0x`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let s = String::deserialize(d)?;
        crate::hash::parse_hex_array::<64>(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 bytes of hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let id = Identity::generate().unwrap();
        id.save(&path).unwrap();
        assert!(id.save(&path).is_err(), "must not overwrite");
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.public(), id.public());
        let sig = loaded.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
        assert!(id.public().verify(b"hellO", &sig).is_err());
        let pubpath = dir.path().join("id.pub.json");
        std::fs::write(&pubpath, id.public().to_file_json()).unwrap();
        assert_eq!(PublicIdentity::load(&pubpath).unwrap(), id.public());
        assert!(matches!(
            Identity::load(&pubpath),
            Err(IdentityError::PublicOnly { .. })
        ));
        assert!(!format!("{loaded:?}").contains(&hex::encode(loaded.signing.to_bytes())));
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_secret_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        Identity::generate().unwrap().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Identity::load(&path),
            Err(IdentityError::Permissions { .. })
        ));
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let a = Identity::generate().unwrap();
        a.save(&path).unwrap();
        let b = Identity::generate().unwrap();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            &hex::encode(a.public().ed25519),
            &hex::encode(b.public().ed25519),
        );
        std::fs::write(&path, text).unwrap();
        let err = Identity::load(&path).unwrap_err().to_string();
        assert!(err.contains("ed25519_public_key"), "{err}");
    }
}
