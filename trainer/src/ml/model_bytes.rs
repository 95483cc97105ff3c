//! The model bytes: everything needed to rebuild a trained model, in one
//! self-describing byte string (what is hashed into the `completed` report
//! and sealed to the owner).
//!
//! ```text
//! magic          8 bytes  "SRMODEL" 0x01  (format version 1)
//! arch digest   32 bytes  SHA-256 of the architecture (kind, d, classes, hidden, channels, image)
//! preprocessing  1 byte   0 none, 1 standardize, 2 min-max
//! d              4 bytes  u32 big-endian: feature count
//! offset     4·d bytes    f32 big-endian per feature
//! scale      4·d bytes    f32 big-endian per feature      x' = (x - offset) / scale
//! record_len     8 bytes  u64 big-endian
//! record   record_len     Burn record of the network: `BinBytesRecorder<FullPrecisionSettings>`
//!                         (bincode, f32 weights; parameter ids 1, 2, 3, ...)
//! ```
//! Nothing may follow the record. The architecture itself is not stored: it
//! comes from the manifest's model spec and schema, and the digest makes
//! sure bytes and spec agree.

use sealroom_protocol::scenario::Preprocessing;

use super::{MlError, Stats};

/// Magic and format version.
pub const MAGIC: &[u8; 8] = b"SRMODEL\x01";

/// The parts of model bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile<'a> {
    /// Digest of the architecture the weights are for.
    pub arch_digest: [u8; 32],
    /// Preprocessing statistics of the training data.
    pub stats: Stats,
    /// Burn's record bytes of the network.
    pub record: &'a [u8],
}

/// Encodes model bytes.
pub fn encode(arch_digest: &[u8; 32], stats: &Stats, record: &[u8]) -> Vec<u8> {
    let d = stats.offset.len();
    let mut out = Vec::with_capacity(8 + 32 + 1 + 4 + 8 * d + 8 + record.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(arch_digest);
    out.push(match stats.kind {
        Preprocessing::None => 0,
        Preprocessing::Standardize => 1,
        Preprocessing::MinMax => 2,
    });
    out.extend_from_slice(&(d as u32).to_be_bytes());
    for v in stats.offset.iter().chain(&stats.scale) {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&(record.len() as u64).to_be_bytes());
    out.extend_from_slice(record);
    out
}

/// Decodes model bytes (structure only; the record is checked when loaded).
pub fn decode(bytes: &[u8]) -> Result<ModelFile<'_>, MlError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(MlError::ModelBytes(
            "not sealroom model bytes (bad magic or version)".into(),
        ));
    }
    let mut arch_digest = [0u8; 32];
    arch_digest.copy_from_slice(r.take(32)?);
    let kind = match r.take(1)?[0] {
        0 => Preprocessing::None,
        1 => Preprocessing::Standardize,
        2 => Preprocessing::MinMax,
        k => {
            return Err(MlError::ModelBytes(format!(
                "unknown preprocessing code {k}"
            )))
        }
    };
    let d = u32::from_be_bytes(r.array()?) as usize;
    let mut floats = |count: usize| -> Result<Vec<f32>, MlError> {
        let raw = r.take(count.checked_mul(4).ok_or_else(truncated)?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let offset = floats(d)?;
    let scale = floats(d)?;
    if offset.iter().chain(&scale).any(|v| !v.is_finite()) || scale.contains(&0.0) {
        return Err(MlError::ModelBytes(
            "preprocessing statistics are not finite and non-zero".into(),
        ));
    }
    let len = usize::try_from(u64::from_be_bytes(r.array()?)).map_err(|_| truncated())?;
    let record = r.take(len)?;
    if r.at != bytes.len() {
        return Err(MlError::ModelBytes(format!(
            "{} bytes after the record",
            bytes.len() - r.at
        )));
    }
    Ok(ModelFile {
        arch_digest,
        stats: Stats {
            kind,
            offset,
            scale,
        },
        record,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MlError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(truncated)?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MlError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

fn truncated() -> MlError {
    MlError::ModelBytes("truncated".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let stats = Stats {
            kind: Preprocessing::MinMax,
            offset: vec![1.0, 2.0],
            scale: vec![3.0, 4.0],
        };
        let bytes = encode(&[7; 32], &stats, b"record");
        let f = decode(&bytes).unwrap();
        assert_eq!(f.arch_digest, [7; 32]);
        assert_eq!(f.stats, stats);
        assert_eq!(f.record, b"record");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        let mut bad = bytes;
        bad[0] ^= 1;
        assert!(decode(&bad).is_err());
    }
}
