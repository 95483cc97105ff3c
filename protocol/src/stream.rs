//! Streaming authenticated encryption of dataset blobs: AES-256-GCM in the
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015).
//!
//! Blob layout (`SRSTRM` version 1):
//! ```text
//! header  = "SRSTRM" || version:u8 (=1) || algorithm:u8 (=1, AES-256-GCM STREAM-BE32)
//!           || segment_size:u32be || nonce_prefix:[u8; 7]                  (19 bytes)
//! segment = AES-256-GCM(key, nonce = nonce_prefix || counter:u32be || last:u8,
//!                       aad = header, plaintext chunk) || tag:[u8; 16]
//! ```
//! Every segment but the last carries exactly `segment_size` plaintext bytes;
//! the last carries 0..=segment_size and is sealed with `last = 1`. So a
//! flipped byte, reordered segments, a truncated blob or appended bytes all
//! fail authentication, and the header (segment size, version) is bound to
//! every segment through the AAD. Memory use is one segment, whatever the size.

use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

/// Magic bytes at the start of every blob.
pub const MAGIC: &[u8; 6] = b"SRSTRM";
/// The only version this code writes and reads.
pub const VERSION: u8 = 1;
/// Algorithm id 1: AES-256-GCM, STREAM with a 32-bit big-endian counter.
pub const ALG_AES256GCM_STREAM_BE32: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 19;
/// Tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Largest accepted segment size (bounds the decryptor's memory).
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;

/// A dataset's 256-bit data key; zeroized on drop, never printed.
#[derive(Clone, zeroize::ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(redacted)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> io::Result<Self> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(io::Error::other)?;
        Ok(Self(k))
    }

    /// Wraps existing key bytes (from an opened grant).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes (to seal them in a grant).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a blob could not be decrypted. Each case names what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The blob does not start with a valid header.
    #[error("bad blob header: {0}")]
    Header(String),
    /// A segment failed authentication: flipped bytes, reordered segments,
    /// bytes appended or cut inside a segment, or a wrong key.
    #[error("segment {segment} failed authentication (ciphertext altered, reordered, cut or extended, or wrong key)")]
    Tampered {
        /// Index of the segment.
        segment: u32,
    },
    /// The blob ends early: its last segment is not marked final.
    #[error("blob truncated: segment {segment} is not the final segment but the blob ends there")]
    Truncated {
        /// Index of the last segment present.
        segment: u32,
    },
    /// More than 2^32 segments.
    #[error("blob too large for a 32-bit segment counter")]
    TooLarge,
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::from(n)
}

fn cipher(key: &DataKey) -> Aes256Gcm {
    // A 32-byte key always has the right length for AES-256.
    Aes256Gcm::new(&key.0.into())
}

/// Encrypts a stream into a blob; write plaintext, then call [`StreamEncryptor::finish`].
pub struct StreamEncryptor<W: Write> {
    out: W,
    aead: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
    segment: usize,
    counter: u32,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> StreamEncryptor<W> {
    /// Writes the header and returns an encryptor with a fresh random nonce prefix.
    pub fn new(key: &DataKey, segment_size: u32, mut out: W) -> io::Result<Self> {
        if segment_size == 0 || segment_size > MAX_SEGMENT_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment size out of range",
            ));
        }
        let mut prefix = [0u8; 7];
        getrandom::fill(&mut prefix).map_err(io::Error::other)?;
        let mut header = [0u8; HEADER_LEN];
        header[..6].copy_from_slice(MAGIC);
        header[6] = VERSION;
        header[7] = ALG_AES256GCM_STREAM_BE32;
        header[8..12].copy_from_slice(&segment_size.to_be_bytes());
        header[12..19].copy_from_slice(&prefix);
        out.write_all(&header)?;
        let segment = segment_size as usize;
        Ok(Self {
            out,
            aead: cipher(key),
            header,
            prefix,
            segment,
            counter: 0,
            buf: Zeroizing::new(Vec::with_capacity(segment + TAG_LEN + 1)),
        })
    }

    /// The header bytes (hashed together with the segments by callers that hash the blob).
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    fn seal_segment(&mut self, len: usize, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        let tag = self
            .aead
            .encrypt_inout_detached(&n, &self.header, (&mut self.buf[..len]).into())
            .map_err(|_| io::Error::other("AES-GCM encryption failed"))?;
        self.out.write_all(&self.buf[..len])?;
        self.out.write_all(tag.as_slice())?;
        // Keep any lookahead bytes: they belong to the next segment.
        self.buf[..len].zeroize();
        self.buf.drain(..len);
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| io::Error::from(StreamError::TooLarge))?;
        }
        Ok(())
    }

    /// Seals the final segment and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let len = self.buf.len();
        self.seal_segment(len, true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for StreamEncryptor<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            // Hold one byte beyond a full segment before sealing it, so that the
            // final segment (possibly full) is only sealed by `finish`.
            let room = self.segment + 1 - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.segment + 1 {
                self.seal_segment(self.segment, false)?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Parses and checks a blob header.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<(u32, [u8; 7]), StreamError> {
    if &header[..6] != MAGIC {
        return Err(StreamError::Header(
            "not a sealroom blob (magic bytes differ)".into(),
        ));
    }
    if header[6] != VERSION {
        return Err(StreamError::Header(format!(
            "unsupported version {}",
            header[6]
        )));
    }
    if header[7] != ALG_AES256GCM_STREAM_BE32 {
        return Err(StreamError::Header(format!(
            "unsupported algorithm {}",
            header[7]
        )));
    }
    let seg = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if seg == 0 || seg > MAX_SEGMENT_SIZE {
        return Err(StreamError::Header(format!(
            "segment size {seg} out of range"
        )));
    }
    let mut prefix = [0u8; 7];
    prefix.copy_from_slice(&header[12..19]);
    Ok((seg, prefix))
}

/// Decrypts a blob as a `Read` of plaintext. Plaintext is released one
/// authenticated segment at a time; an error is returned at the first segment
/// that fails, before any of its bytes are released.
pub struct StreamDecryptor<R: Read> {
    input: R,
    aead: Aes256Gcm,
    header: [u8; HEADER_LEN],
    prefix: [u8; 7],
    segment: usize,
    counter: u32,
    /// Ciphertext read ahead (one segment + tag + one byte of lookahead).
    cbuf: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: Read> StreamDecryptor<R> {
    /// Reads and checks the header.
    pub fn new(key: &DataKey, mut input: R) -> Result<Self, StreamError> {
        let mut header = [0u8; HEADER_LEN];
        read_full(&mut input, &mut header)
            .and_then(|n| {
                if n < HEADER_LEN {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short header"))
                } else {
                    Ok(())
                }
            })
            .map_err(|_| StreamError::Header("blob shorter than its header".into()))?;
        let (seg, prefix) = parse_header(&header)?;
        Ok(Self {
            input,
            aead: cipher(key),
            header,
            prefix,
            segment: seg as usize,
            counter: 0,
            cbuf: Vec::with_capacity(seg as usize + TAG_LEN + 1),
            plain: Zeroizing::new(Vec::with_capacity(seg as usize)),
            pos: 0,
            done: false,
        })
    }

    fn try_open(&self, ct: &[u8], last: bool) -> Option<Zeroizing<Vec<u8>>> {
        let body = ct.len() - TAG_LEN;
        let mut out = Zeroizing::new(ct[..body].to_vec());
        let tag = Tag::try_from(&ct[body..]).ok()?;
        let n = nonce(&self.prefix, self.counter, last);
        self.aead
            .decrypt_inout_detached(&n, &self.header, (&mut out[..]).into(), &tag)
            .ok()
            .map(|()| out)
    }

    /// Authenticates and decrypts the next segment into `plain`.
    fn next_segment(&mut self) -> Result<(), StreamError> {
        let want = self.segment + TAG_LEN + 1;
        let have = self.cbuf.len();
        self.cbuf.resize(want, 0);
        let got = read_full(&mut self.input, &mut self.cbuf[have..])?;
        self.cbuf.truncate(have + got);
        let at_end = self.cbuf.len() < want;
        let seg_len = self.cbuf.len().min(self.segment + TAG_LEN);
        if seg_len < TAG_LEN {
            return Err(StreamError::Truncated {
                segment: self.counter,
            });
        }
        let ct = self.cbuf[..seg_len].to_vec();
        let opened = self.try_open(&ct, at_end);
        let plain = match opened {
            Some(p) => p,
            None => {
                // Diagnose: does the segment open with the other flag?
                // Diagnose a whole dropped tail: the blob ends on a segment
                // that opens only as a non-final one.
                return Err(if at_end && self.try_open(&ct, false).is_some() {
                    StreamError::Truncated {
                        segment: self.counter,
                    }
                } else {
                    StreamError::Tampered {
                        segment: self.counter,
                    }
                });
            }
        };
        self.cbuf.drain(..seg_len);
        self.plain.zeroize();
        *self.plain = plain.to_vec();
        self.pos = 0;
        if at_end {
            self.done = true;
        } else {
            self.counter = self.counter.checked_add(1).ok_or(StreamError::TooLarge)?;
        }
        Ok(())
    }
}

impl<R: Read> Read for StreamDecryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R: Read> StreamDecryptor<R> {
    /// The underlying reader (after the stream has been read to its end).
    pub fn into_inner(self) -> R {
        self.input
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decrypts a whole blob held in memory (tests and small blobs).
pub fn decrypt_all(key: &DataKey, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
    let mut d = StreamDecryptor::new(key, blob)?;
    let mut out = Zeroizing::new(Vec::new());
    d.read_to_end(&mut out).map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<StreamError>() {
            Ok(se) => *se,
            Err(other) => StreamError::Io(io::Error::other(other)),
        },
        None => StreamError::Io(io::Error::other("read failed")),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt(key: &DataKey, seg: u32, data: &[u8]) -> Vec<u8> {
        let mut e = StreamEncryptor::new(key, seg, Vec::new()).unwrap();
        // Uneven writes exercise the buffering.
        for chunk in data.chunks(7) {
            e.write_all(chunk).unwrap();
        }
        e.finish().unwrap()
    }

    #[test]
    fn roundtrip_sizes() {
        let key = DataKey::generate().unwrap();
        for len in [0usize, 1, 31, 32, 33, 64, 65, 1000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let blob = encrypt(&key, 32, &data);
            let segs = len.div_ceil(32).max(1);
            assert_eq!(blob.len(), HEADER_LEN + len + segs * TAG_LEN, "len {len}");
            assert_eq!(&decrypt_all(&key, &blob).unwrap()[..], &data[..]);
        }
    }

    #[test]
    fn every_byte_flip_is_detected() {
        let key = DataKey::generate().unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let blob = encrypt(&key, 32, &data);
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0x01;
            assert!(decrypt_all(&key, &b).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn truncation_reorder_append_wrong_key() {
        let key = DataKey::generate().unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let blob = encrypt(&key, 32, &data);
        let seg = 32 + TAG_LEN;
        // Drop the final segment: the new last one is not marked final.
        let cut = &blob[..HEADER_LEN + 3 * seg];
        assert!(matches!(
            decrypt_all(&key, cut),
            Err(StreamError::Truncated { segment: 2 })
        ));
        // Cut inside a segment.
        assert!(decrypt_all(&key, &blob[..blob.len() - 5]).is_err());
        // Swap segments 0 and 1.
        let mut sw = blob.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + seg);
        let s0 = blob[a..a + seg].to_vec();
        sw[a..a + seg].copy_from_slice(&blob[b..b + seg]);
        sw[b..b + seg].copy_from_slice(&s0);
        assert!(matches!(
            decrypt_all(&key, &sw),
            Err(StreamError::Tampered { segment: 0 })
        ));
        // Append bytes after the final segment.
        let mut ap = blob.clone();
        ap.extend_from_slice(&[0u8; 20]);
        assert!(matches!(
            decrypt_all(&key, &ap),
            Err(StreamError::Tampered { segment: 3 })
        ));
        // Append a whole extra segment's worth of bytes.
        let mut ap2 = blob.clone();
        ap2.extend_from_slice(&blob[HEADER_LEN..HEADER_LEN + seg]);
        assert!(decrypt_all(&key, &ap2).is_err());
        // Wrong key.
        let other = DataKey::generate().unwrap();
        assert!(matches!(
            decrypt_all(&other, &blob),
            Err(StreamError::Tampered { segment: 0 })
        ));
        // Not a blob.
        assert!(matches!(
            decrypt_all(&key, b"hello"),
            Err(StreamError::Header(_))
        ));
    }
}
