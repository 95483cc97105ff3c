//! Domain-separated, length-prefixed hashing.
//!
//! Every value sealroom hashes for a signature or a commitment goes through
//! [`LpHasher`]: the domain tag and every part are prefixed by their length,
//! so no two different sequences of parts can produce the same input bytes
//! (no ambiguity between `("ab", "c")` and `("a", "bc")`).

use sha2::{Digest, Sha256, Sha512};

/// A SHA-256 hasher over a domain tag and length-prefixed parts.
///
/// Encoding: `u32be(len(domain)) || domain || (u64be(len(part)) || part)*`.
#[derive(Clone)]
pub struct LpHasher {
    inner: Sha256,
}

impl LpHasher {
    /// Starts a hash under `domain` (e.g. `"sealroom.schema.v1"`).
    pub fn new(domain: &str) -> Self {
        let mut inner = Sha256::new();
        inner.update((domain.len() as u32).to_be_bytes());
        inner.update(domain.as_bytes());
        Self { inner }
    }

    /// Appends one length-prefixed part.
    pub fn part(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.push(bytes);
        self
    }

    /// Appends one length-prefixed part in place.
    pub fn push(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        self.inner.update((bytes.len() as u64).to_be_bytes());
        self.inner.update(bytes);
    }

    /// Appends a `u64` as a fixed 8-byte big-endian part.
    pub fn u64(self, value: u64) -> Self {
        self.part(value.to_be_bytes())
    }

    /// The 32-byte digest.
    pub fn finish(self) -> [u8; 32] {
        self.inner.finalize().into()
    }
}

/// Plain SHA-256 of `bytes` (for content hashes of files and blobs).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Plain SHA-512 of the concatenation of `parts` (DESIGN §3 report_data uses
/// fixed-length parts after a fixed tag, so plain concatenation is unambiguous there).
pub fn sha512_concat(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Lower-case hex with a `0x` prefix, the form every JSON output uses for hashes.
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Parses hex with or without a `0x` prefix into exactly `N` bytes.
pub fn parse_hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let v = hex::decode(t).ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous() {
        let a = LpHasher::new("d").part("ab").part("c").finish();
        let b = LpHasher::new("d").part("a").part("bc").finish();
        assert_ne!(a, b);
        let c = LpHasher::new("da").part("b").finish();
        let d = LpHasher::new("d").part("ab").finish();
        assert_ne!(c, d);
    }

    #[test]
    fn hex_roundtrip() {
        let x = [0xabu8; 4];
        assert_eq!(parse_hex_array::<4>(&hex0x(&x)), Some(x));
        assert_eq!(parse_hex_array::<4>("abababab"), Some(x));
        assert_eq!(parse_hex_array::<5>("abababab"), None);
        assert_eq!(parse_hex_array::<4>("zz"), None);
    }
}
