//! Dataset commitments: records hashed into an OpenZeppelin standard Merkle
//! tree, the dataset encrypted with the STREAM cipher, and the ciphertext
//! hashed, all in one streaming pass.
//!
//! Dataset format: UTF-8 CSV, first line the column names, one record per
//! line, no quoting (the scenario schema says which columns are features and
//! which is the label). A blank line is allowed only at the end; a file
//! starting with a UTF-8 byte-order mark is refused ([`CsvLines`] says
//! why). Canonical record bytes are
//! `u32be(field_count) || (u32be(len) || field)*` over the fields with
//! surrounding whitespace trimmed; the record's leaf is
//! `(uint256 index, bytes32 sha256(canonical record bytes))`.
//! The schema hash is `LpHasher("sealroom.schema.v1")` over the column names.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::hash::LpHasher;
use crate::merkle::external::{DumpSpill, LeafSorter, SpilledTree};
use crate::merkle::{uint_word, MerkleError, StandardTree};
use crate::stream::{DataKey, StreamEncryptor, StreamError};

/// Longest accepted line, in bytes (bounds memory on hostile input).
pub const MAX_LINE: usize = 1 << 20;

/// What a party commits to for one dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCommitment {
    /// Root of the OpenZeppelin standard tree over `(index, sha256(record))`.
    pub merkle_root: B256,
    /// Number of records (lines after the header).
    pub record_count: u64,
    /// Hash of the column names.
    pub schema_hash: B256,
    /// SHA-256 of the whole encrypted blob (header and segments).
    pub ciphertext_sha256: B256,
    /// Length of the encrypted blob in bytes.
    pub ciphertext_len: u64,
}

impl DatasetCommitment {
    /// The digest that identifies this commitment (what parties sign and what
    /// the session inputs tree holds).
    pub fn digest(&self) -> [u8; 32] {
        LpHasher::new("sealroom.dataset-commitment.v1")
            .part(self.merkle_root)
            .u64(self.record_count)
            .part(self.schema_hash)
            .part(self.ciphertext_sha256)
            .u64(self.ciphertext_len)
            .finish()
    }
}

/// Why a dataset could not be committed or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A line of the dataset is malformed; `line` is 1-based.
    #[error("line {line}: {detail}")]
    Record {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        detail: String,
    },
    /// The dataset has a header but no records.
    #[error("dataset has no records")]
    Empty,
    /// Tree construction failed.
    #[error("merkle tree: {0}")]
    Merkle(#[from] MerkleError),
    /// Decrypting a blob failed.
    #[error("{0}")]
    Stream(#[from] StreamError),
}

/// Canonical bytes of a record's fields.
pub fn canonical_record(fields: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + fields.iter().map(|f| f.len() + 4).sum::<usize>());
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// SHA-256 of a record's canonical bytes.
pub fn record_digest(fields: &[&str]) -> [u8; 32] {
    Sha256::digest(Zeroizing::new(canonical_record(fields)).as_slice()).into()
}

/// Hash of an ordered list of column names.
pub fn schema_hash<S: AsRef<str>>(columns: &[S]) -> B256 {
    let mut h = LpHasher::new("sealroom.schema.v1").u64(columns.len() as u64);
    for c in columns {
        h.push(c.as_ref().as_bytes());
    }
    B256::from(h.finish())
}

/// Splits a CSV line into trimmed fields, rejecting quoting.
pub fn split_fields(line: &str) -> Result<Vec<&str>, String> {
    if line.contains('"') {
        return Err("quoted fields are not supported".into());
    }
    Ok(line.split(',').map(str::trim).collect())
}

/// The UTF-8 byte-order mark some spreadsheet programs write at the start
/// of a CSV export.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of a dataset as the format's rules read it.
#[derive(Debug, PartialEq, Eq)]
pub enum CsvLine<'a> {
    /// The first line: the column names, trimmed.
    Header(Vec<&'a str>),
    /// A record: as many trimmed fields as the header has columns.
    Record(Vec<&'a str>),
    /// A blank line (tolerated only at the end of the file).
    Blank,
}

/// The dataset format's rules, line by line, in one place: the commitment
/// ([`RecordHasher`], so `sealroom commit` and the node) and `sealroom
/// scenario check` both read through it, so a file the check accepts is a
/// file commit accepts, with the same line numbers in the errors.
///
/// A file starting with a UTF-8 byte-order mark is refused rather than
/// stripped: the commitment is over the records exactly as the node parses
/// them, and one reader silently dropping bytes another keeps is how the two
/// would come to disagree.
#[derive(Debug, Default)]
pub struct CsvLines {
    line: u64,
    width: Option<usize>,
    blank_at: Option<u64>,
}

impl CsvLines {
    /// Rules for a new file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of lines taken so far (the 1-based number of the last one).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Whether the header has been read.
    pub fn has_header(&self) -> bool {
        self.width.is_some()
    }

    /// Takes the next line, without its `\n` (a trailing `\r` is dropped here).
    pub fn take<'a>(&mut self, raw: &'a [u8]) -> Result<CsvLine<'a>, DatasetError> {
        self.line += 1;
        let line_no = self.line;
        let err = |detail: String| DatasetError::Record {
            line: line_no,
            detail,
        };
        if line_no == 1 && raw.starts_with(UTF8_BOM) {
            return Err(err(
                "the file starts with a UTF-8 byte-order mark (bytes EF BB BF, as spreadsheet \
                 exports often write); save it as UTF-8 without a BOM"
                    .into(),
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|_| err("not valid UTF-8".into()))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            if self.width.is_none() {
                return Err(err(
                    "blank line before the header (the first line holds the column names)".into(),
                ));
            }
            // A blank line is tolerated only as the very end of the file.
            self.blank_at.get_or_insert(line_no);
            return Ok(CsvLine::Blank);
        }
        if let Some(blank) = self.blank_at {
            return Err(DatasetError::Record {
                line: blank,
                detail: "blank line inside the dataset (blank lines are allowed only at the end)"
                    .into(),
            });
        }
        let fields = split_fields(text).map_err(err)?;
        match self.width {
            None => {
                if let Some(i) = fields.iter().position(|f| f.is_empty()) {
                    return Err(err(format!(
                        "header column {} has an empty name (\"\")",
                        i + 1
                    )));
                }
                self.width = Some(fields.len());
                Ok(CsvLine::Header(fields))
            }
            Some(width) => {
                if fields.len() != width {
                    return Err(err(format!(
                        "{} fields, but the header has {width} columns",
                        fields.len()
                    )));
                }
                Ok(CsvLine::Record(fields))
            }
        }
    }
}

/// What [`CsvLines::take_canonical`] did with a line.
enum Taken<'a> {
    /// A record, written as canonical bytes.
    Record,
    /// Anything else, as [`CsvLines::take`] reads it.
    Line(CsvLine<'a>),
}

/// A byte that is certainly neither whitespace nor part of a multi-byte
/// character: a field that starts and ends with one needs no trimming.
fn plain_ascii(b: u8) -> bool {
    b > b' ' && b < 0x7f
}

impl CsvLines {
    /// The commitment's hot path: a record line written straight into
    /// `out` as canonical bytes (`u32be(field_count) || (u32be(len) ||
    /// field)*`), one scan for the separators and no per-line allocation.
    /// It handles the common shape — header read, no blank line pending,
    /// valid UTF-8, no quote, fields that need no trimming or whose
    /// trimming is checked by `str::trim` itself — and hands every other
    /// line, and every error, to [`CsvLines::take`], so the bytes and the
    /// errors (with their line numbers) are exactly the general reader's.
    /// `out` must have room for `raw.len() * 5 + 8` more bytes (callers
    /// reserve it, so a plaintext buffer is never reallocated).
    fn take_canonical<'a>(
        &mut self,
        raw: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<Taken<'a>, DatasetError> {
        let slow = |me: &mut Self| me.take(raw).map(Taken::Line);
        let Some(width) = self.width else {
            return slow(self);
        };
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if self.blank_at.is_some()
            || !line.first().is_some_and(|b| plain_ascii(*b))
            || memchr::memchr(b'"', line).is_some()
        {
            return slow(self);
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return slow(self);
        };
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        let mut fields = 0usize;
        let mut from = 0;
        let ends = memchr::memchr_iter(b',', line).chain(std::iter::once(line.len()));
        for end in ends {
            let raw_field = &text[from..end];
            let field = match raw_field.as_bytes() {
                [] => raw_field,
                [a, .., b] | [a @ b] if plain_ascii(*a) && plain_ascii(*b) => raw_field,
                _ => raw_field.trim(),
            };
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
            fields += 1;
            from = end + 1;
        }
        if fields != width {
            out.truncate(start);
            return slow(self);
        }
        out[start..start + 4].copy_from_slice(&(fields as u32).to_be_bytes());
        self.line += 1;
        Ok(Taken::Record)
    }
}

/// What [`CsvReader`] hands each raw line to, with the rules it must read
/// the line through.
type RawLineFn<'f> = &'f mut dyn FnMut(&mut CsvLines, &[u8]) -> Result<(), DatasetError>;

/// Splits a stream of bytes, in any chunking, into lines for [`CsvLines`],
/// keeping only the current partial line (at most [`MAX_LINE`] bytes).
pub struct CsvReader {
    partial: Zeroizing<Vec<u8>>,
    rules: CsvLines,
}

impl Default for CsvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvReader {
    /// A reader at the start of a file.
    pub fn new() -> Self {
        Self {
            partial: Zeroizing::new(Vec::new()),
            rules: CsvLines::new(),
        }
    }

    /// Feeds the next bytes; `on_line` gets each complete line's number and content.
    pub fn update(
        &mut self,
        data: &[u8],
        on_line: &mut dyn FnMut(u64, CsvLine<'_>) -> Result<(), DatasetError>,
    ) -> Result<(), DatasetError> {
        self.update_raw(data, &mut |rules, raw| {
            let line = rules.take(raw)?;
            on_line(rules.line(), line)
        })
    }

    /// [`CsvReader::update`] handing each complete raw line (without its
    /// `\n`) and the rules to `on_raw`, which must read it through them.
    fn update_raw(&mut self, mut data: &[u8], on_raw: RawLineFn<'_>) -> Result<(), DatasetError> {
        while let Some(nl) = memchr::memchr(b'\n', data) {
            if self.partial.is_empty() {
                on_raw(&mut self.rules, &data[..nl])?;
            } else {
                self.partial.extend_from_slice(&data[..nl]);
                let raw = Zeroizing::new(std::mem::take(&mut *self.partial));
                on_raw(&mut self.rules, &raw)?;
            }
            data = &data[nl + 1..];
        }
        if self.partial.len() + data.len() > MAX_LINE {
            return Err(DatasetError::Record {
                line: self.rules.line() + 1,
                detail: format!("line longer than {MAX_LINE} bytes"),
            });
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }

    /// Ends the input: takes a last line without a newline, and refuses a
    /// file without a header.
    pub fn finish(
        self,
        on_line: &mut dyn FnMut(u64, CsvLine<'_>) -> Result<(), DatasetError>,
    ) -> Result<(), DatasetError> {
        self.finish_raw(&mut |rules, raw| {
            let line = rules.take(raw)?;
            on_line(rules.line(), line)
        })
    }

    /// [`CsvReader::finish`] with raw lines, as [`CsvReader::update_raw`].
    fn finish_raw(mut self, on_raw: RawLineFn<'_>) -> Result<(), DatasetError> {
        if !self.partial.is_empty() {
            let raw = Zeroizing::new(std::mem::take(&mut *self.partial));
            on_raw(&mut self.rules, &raw)?;
        }
        if !self.rules.has_header() {
            return Err(DatasetError::Record {
                line: 1,
                detail: "missing header line with column names".into(),
            });
        }
        Ok(())
    }
}

/// Incremental record hasher: feed plaintext bytes in any chunking; it keeps
/// only the current partial line and one 32-byte digest per record.
///
/// Two ways to run it, with identical results:
/// - inline ([`RecordHasher::new`]): parsing, SHA-256 and the leaf Keccaks
///   on the calling thread;
/// - offloaded ([`hash_records_offloaded`]): the calling thread parses and
///   writes each record's canonical bytes into [`RecordBatch`]es, and a
///   second thread runs [`hash_batches`] (SHA-256 and the leaf Keccaks, in
///   record order). Parsing and hashing then use two cores; every format
///   error is still found by the parsing thread, in line order.
pub struct RecordHasher {
    reader: CsvReader,
    columns: Option<Vec<String>>,
    records: u64,
    batch: RecordBatch,
    offload: Option<SyncSender<RecordBatch>>,
    hashed: BatchHashes,
}

/// Canonical bytes of consecutive records (plaintext, wiped on drop), cut
/// where [`RECORD_BATCH_BYTES`] is reached.
struct RecordBatch {
    bytes: Zeroizing<Vec<u8>>,
    /// End offset of each record in `bytes`.
    ends: Vec<usize>,
    /// Index of the batch's first record in the dataset: each record's
    /// leaf commits to its index, so a batch can be hashed by any worker,
    /// in any order, and still give the leaves the sequential pass gives.
    first: u64,
}

/// Size at which a batch of canonical records is handed over.
const RECORD_BATCH_BYTES: usize = 256 * 1024;

impl RecordBatch {
    fn new(first: u64) -> Self {
        Self {
            bytes: Zeroizing::new(Vec::with_capacity(RECORD_BATCH_BYTES + MAX_LINE / 64)),
            ends: Vec::new(),
            first,
        }
    }

    fn push(&mut self, fields: &[&str]) {
        self.bytes
            .extend_from_slice(&(fields.len() as u32).to_be_bytes());
        for f in fields {
            self.bytes
                .extend_from_slice(&(f.len() as u32).to_be_bytes());
            self.bytes.extend_from_slice(f.as_bytes());
        }
        self.ends.push(self.bytes.len());
    }
}

/// An I/O error of the temporary files a bounded pass spills to, said as
/// such: a full or unwritable temporary directory is not the dataset's
/// fault, and the message says where the files were.
fn spill_err(e: io::Error) -> DatasetError {
    DatasetError::Io(io::Error::new(
        e.kind(),
        format!(
            "temporary files in {} (set TMPDIR to use another directory): {e}",
            std::env::temp_dir().display()
        ),
    ))
}

/// What a hashing pass keeps of each record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keep {
    /// Digests and leaf hashes in memory (the whole tree: proofs).
    Whole,
    /// Leaf hashes only, sorted on disk (the root, bounded memory).
    Root,
    /// Digests and leaf hashes spilled to disk (the root and a streamed
    /// tree dump, bounded memory).
    Dump,
}

/// Record digests and leaf hashes, in record order; or, in root-only mode,
/// only the leaf hashes, handed to a sorter that spills sorted runs to disk;
/// or, in dump mode, both spilled to disk (memory bounded whatever the
/// number of records in the last two).
#[derive(Default)]
struct BatchHashes {
    digests: Vec<[u8; 32]>,
    leaves: Vec<B256>,
    sorter: Option<LeafSorter>,
    dump: Option<DumpSpill>,
    count: u64,
    spill_error: Option<io::Error>,
}

impl BatchHashes {
    fn keeping(keep: Keep) -> Self {
        match keep {
            Keep::Whole => Self::default(),
            Keep::Root => Self {
                sorter: Some(LeafSorter::default()),
                ..Self::default()
            },
            Keep::Dump => match DumpSpill::new() {
                Ok(d) => Self {
                    dump: Some(d),
                    ..Self::default()
                },
                Err(e) => Self {
                    spill_error: Some(e),
                    ..Self::default()
                },
            },
        }
    }

    /// The root-only sorter, or the spill error that stopped it.
    fn into_sorter(self) -> Result<LeafSorter, DatasetError> {
        match (self.spill_error, self.sorter) {
            (Some(e), _) => Err(spill_err(e)),
            (None, Some(sorter)) => Ok(sorter),
            (None, None) => Err(DatasetError::Io(io::Error::other(
                "hashing kept no sorter (not a root-only pass)",
            ))),
        }
    }

    /// The dump spill, or the spill error that stopped it.
    fn into_dump(self) -> Result<DumpSpill, DatasetError> {
        match (self.spill_error, self.dump) {
            (Some(e), _) => Err(spill_err(e)),
            (None, Some(dump)) => Ok(dump),
            (None, None) => Err(DatasetError::Io(io::Error::other(
                "hashing kept no spill (not a dump pass)",
            ))),
        }
    }

    /// Takes one hashed batch, which must be the next in record order
    /// (callers reorder what parallel workers return).
    fn absorb(&mut self, batch: HashedBatch) {
        debug_assert_eq!(batch.first, self.count);
        self.count += batch.leaves.len() as u64;
        if self.spill_error.is_some() {
            return;
        }
        let spilled = if let Some(s) = &mut self.sorter {
            batch.leaves.into_iter().try_for_each(|leaf| s.push(leaf))
        } else if let Some(d) = &mut self.dump {
            batch
                .digests
                .iter()
                .zip(batch.leaves)
                .try_for_each(|(digest, leaf)| d.push(digest, leaf))
        } else {
            self.leaves.extend(batch.leaves);
            self.digests.extend(batch.digests);
            Ok(())
        };
        if let Err(e) = spilled {
            self.spill_error = Some(e);
        }
    }
}

/// One batch's record digests (unless only the root is wanted) and leaf
/// hashes, with the index of its first record.
struct HashedBatch {
    first: u64,
    digests: Vec<[u8; 32]>,
    leaves: Vec<B256>,
}

/// Hashes one batch: each record's SHA-256 and its leaf
/// `keccak256(keccak256(abi.encode(index, digest)))`, the index counting
/// from the batch's first record.
fn hash_batch(batch: &RecordBatch, keep_digests: bool) -> HashedBatch {
    let mut out = HashedBatch {
        first: batch.first,
        digests: Vec::with_capacity(if keep_digests { batch.ends.len() } else { 0 }),
        leaves: Vec::with_capacity(batch.ends.len()),
    };
    let mut start = 0;
    for (i, &end) in batch.ends.iter().enumerate() {
        let d: [u8; 32] = Sha256::digest(&batch.bytes[start..end]).into();
        out.leaves.push(crate::merkle::leaf_hash(
            &uint_word(batch.first + i as u64),
            &d,
        ));
        if keep_digests {
            out.digests.push(d);
        }
        start = end;
    }
    out
}

/// How many threads hash records in an offloaded pass: one per core (at
/// most 8), so on two cores the SHA-256 and Keccak work — the largest
/// share of a commit — is split in two while parsing and encryption fill
/// the gaps.
fn hashing_workers() -> usize {
    crate::merkle::available_threads().min(8)
}

/// The hashing side of an offloaded [`RecordHasher`]: `workers` threads
/// take batches from the channel as they come and hash them; this thread
/// puts the results back in record order. It ends when the hasher
/// finishes (drops its sender). In-flight batches are bounded by the two
/// channels' capacities, so the reorder buffer is too.
fn hash_batches(batches: Receiver<RecordBatch>, keep: Keep, workers: usize) -> BatchHashes {
    let mut out = BatchHashes::keeping(keep);
    let batches = std::sync::Mutex::new(batches);
    std::thread::scope(|s| {
        let (htx, hrx) = sync_channel::<HashedBatch>(2 * workers);
        for _ in 0..workers.max(1) {
            let htx = htx.clone();
            let batches = &batches;
            s.spawn(move || loop {
                // The lock is held only while waiting for the next batch.
                let next = match batches.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(batch) = next else { return };
                // A closed channel means the collector is gone: stop.
                if htx.send(hash_batch(&batch, keep != Keep::Root)).is_err() {
                    return;
                }
            });
        }
        drop(htx);
        let mut pending = std::collections::BTreeMap::new();
        for hashed in hrx {
            pending.insert(hashed.first, hashed);
            while let Some(next) = pending.remove(&out.count) {
                out.absorb(next);
            }
        }
        // Anything left could not be put in order: a worker died. The
        // count check of the caller reports the lost records.
    });
    out
}

/// Runs `feed` with an offloaded [`RecordHasher`] (this thread parses, a
/// second one hashes), then finishes it: the records' hashes, or the first
/// error of `feed`, of the parser or of the hashing thread.
pub fn hash_records_offloaded(
    feed: impl FnOnce(&mut RecordHasher) -> Result<(), DatasetError>,
) -> Result<RecordHashes, DatasetError> {
    let (columns, hashed) = hash_offloaded(Keep::Whole, feed)?;
    Ok(RecordHashes {
        columns,
        digests: hashed.digests,
        leaves: hashed.leaves,
    })
}

/// [`hash_records_offloaded`] keeping only what the root needs, in bounded
/// memory: the column names and the sorter holding every leaf hash.
fn hash_records_offloaded_root(
    feed: impl FnOnce(&mut RecordHasher) -> Result<(), DatasetError>,
) -> Result<(Vec<String>, LeafSorter), DatasetError> {
    let (columns, hashed) = hash_offloaded(Keep::Root, feed)?;
    Ok((columns, hashed.into_sorter()?))
}

/// [`hash_records_offloaded`] spilling digests and leaves to disk for a
/// streamed tree dump, in bounded memory.
fn hash_records_offloaded_dump(
    feed: impl FnOnce(&mut RecordHasher) -> Result<(), DatasetError>,
) -> Result<(Vec<String>, DumpSpill), DatasetError> {
    let (columns, hashed) = hash_offloaded(Keep::Dump, feed)?;
    Ok((columns, hashed.into_dump()?))
}

fn hash_offloaded(
    keep: Keep,
    feed: impl FnOnce(&mut RecordHasher) -> Result<(), DatasetError>,
) -> Result<(Vec<String>, BatchHashes), DatasetError> {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<RecordBatch>(4);
        let workers = hashing_workers();
        let worker = s.spawn(move || hash_batches(rx, keep, workers));
        let mut rh = RecordHasher::offloaded(tx);
        let fed = feed(&mut rh);
        let join = || {
            worker
                .join()
                .map_err(|_| DatasetError::Io(io::Error::other("record hashing thread panicked")))
        };
        match fed {
            Ok(()) => rh.finish_offloaded(join),
            Err(e) => {
                // Dropping the hasher closes the channel: the worker ends.
                drop(rh);
                let _ = join();
                Err(e)
            }
        }
    })
}

impl Default for RecordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordHasher {
    /// A hasher that hashes on the calling thread.
    pub fn new() -> Self {
        Self {
            reader: CsvReader::new(),
            columns: None,
            records: 0,
            batch: RecordBatch::new(0),
            offload: None,
            hashed: BatchHashes::default(),
        }
    }

    /// A hasher that parses on the calling thread and sends the records'
    /// canonical bytes to [`hash_batches`] running on another (see
    /// [`hash_records_offloaded`]).
    fn offloaded(to: SyncSender<RecordBatch>) -> Self {
        Self {
            offload: Some(to),
            ..Self::new()
        }
    }

    fn take(&mut self, line: CsvLine<'_>) {
        match line {
            CsvLine::Header(fields) => {
                self.columns = Some(fields.iter().map(|s| s.to_string()).collect());
            }
            CsvLine::Record(fields) => {
                self.records += 1;
                self.batch.push(&fields);
                if self.batch.bytes.len() >= RECORD_BATCH_BYTES {
                    self.flush();
                }
            }
            CsvLine::Blank => {}
        }
    }

    fn flush(&mut self) {
        if self.batch.ends.is_empty() {
            return;
        }
        let full = std::mem::replace(&mut self.batch, RecordBatch::new(self.records));
        match &self.offload {
            // A closed channel means the hashing thread is gone; its
            // caller reports that when it joins it.
            Some(tx) => {
                let _ = tx.send(full);
            }
            None => {
                let keep_digests = self.hashed.sorter.is_none();
                self.hashed.absorb(hash_batch(&full, keep_digests))
            }
        }
    }

    /// Feeds the next bytes of the dataset.
    pub fn update(&mut self, data: &[u8]) -> Result<(), DatasetError> {
        let mut reader = std::mem::take(&mut self.reader);
        let r = reader.update_raw(data, &mut |rules, raw| self.take_raw(rules, raw));
        self.reader = reader;
        r
    }

    /// One raw line: a record goes straight into the batch as canonical
    /// bytes ([`CsvLines::take_canonical`]); the batch is first given room
    /// for the largest canonical form the line can have, so its plaintext
    /// buffer is never reallocated (a reallocation would free an unwiped
    /// copy).
    fn take_raw(&mut self, rules: &mut CsvLines, raw: &[u8]) -> Result<(), DatasetError> {
        let need = raw.len().saturating_mul(5).saturating_add(8);
        if self.batch.bytes.capacity() - self.batch.bytes.len() < need {
            self.flush();
            if self.batch.bytes.capacity() < need {
                self.batch.bytes = Zeroizing::new(Vec::with_capacity(need));
            }
        }
        match rules.take_canonical(raw, &mut self.batch.bytes)? {
            Taken::Record => {
                self.records += 1;
                self.batch.ends.push(self.batch.bytes.len());
                if self.batch.bytes.len() >= RECORD_BATCH_BYTES {
                    self.flush();
                }
            }
            Taken::Line(line) => self.take(line),
        }
        Ok(())
    }

    /// A hasher that hashes on the calling thread and keeps only what the
    /// root needs (leaf hashes sorted in spilled runs, bounded memory),
    /// whose tree levels are hashed on at most `threads` threads (one:
    /// everything on the calling thread): end it with
    /// [`RecordHasher::finish_root`]. The one-thread counterpart of
    /// [`commit_stream_root`]'s hashing.
    pub fn root_only_on(threads: usize) -> Self {
        Self {
            hashed: BatchHashes {
                sorter: Some(LeafSorter::on_threads(threads)),
                ..BatchHashes::default()
            },
            ..Self::new()
        }
    }

    /// Ends the input of a [`RecordHasher::root_only_on`] hasher: the column
    /// names, the record count and the root.
    pub fn finish_root(self) -> Result<(Vec<String>, u64, B256), DatasetError> {
        let (columns, hashed) = self.finish_parsing()?;
        let sorter = hashed.into_sorter()?;
        let count = sorter.len();
        let root = sorter
            .root()
            .map_err(spill_err)?
            .ok_or(DatasetError::Empty)?;
        Ok((columns, count, root))
    }

    /// Ends the input; returns the column names, one digest per record and
    /// each record's leaf hash (inline hasher).
    pub fn finish(self) -> Result<RecordHashes, DatasetError> {
        let (columns, hashed) = self.finish_parsing()?;
        Ok(RecordHashes {
            columns,
            digests: hashed.digests,
            leaves: hashed.leaves,
        })
    }

    /// Ends the input of an offloaded hasher: flushes the last batch and
    /// closes the channel; `join` then waits for [`hash_batches`] and
    /// returns what it hashed (or why the thread failed).
    fn finish_offloaded(
        self,
        join: impl FnOnce() -> Result<BatchHashes, DatasetError>,
    ) -> Result<(Vec<String>, BatchHashes), DatasetError> {
        let records = self.records;
        let result = self.finish_parsing();
        // The sender is dropped with the hasher above: the thread ends.
        let hashed = join()?;
        let (columns, _) = result?;
        if hashed.count != records {
            return Err(DatasetError::Io(io::Error::other(
                "the record hashing thread lost records",
            )));
        }
        Ok((columns, hashed))
    }

    fn finish_parsing(mut self) -> Result<(Vec<String>, BatchHashes), DatasetError> {
        let reader = std::mem::take(&mut self.reader);
        reader.finish_raw(&mut |rules, raw| self.take_raw(rules, raw))?;
        self.flush();
        drop(self.offload.take());
        let columns = self.columns.take().ok_or(DatasetError::Record {
            line: 1,
            detail: "missing header line with column names".into(),
        })?;
        if self.records == 0 {
            return Err(DatasetError::Empty);
        }
        Ok((columns, std::mem::take(&mut self.hashed)))
    }
}

/// What [`RecordHasher::finish`] returns.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordHashes {
    /// Column names from the header.
    pub columns: Vec<String>,
    /// SHA-256 of each record's canonical bytes.
    pub digests: Vec<[u8; 32]>,
    /// Each record's Merkle leaf hash.
    pub leaves: Vec<B256>,
}

/// The commitment and record tree from a pass's results.
fn finish_commitment(
    records: RecordHashes,
    ciphertext_sha256: [u8; 32],
    ciphertext_len: u64,
) -> Result<(DatasetCommitment, Vec<String>, StandardTree), DatasetError> {
    let record_count = records.digests.len() as u64;
    let tree = StandardTree::from_indexed_digests(records.digests, records.leaves)?;
    let columns = records.columns;
    let commitment = commitment_of(
        tree.root(),
        record_count,
        &columns,
        ciphertext_sha256,
        ciphertext_len,
    );
    Ok((commitment, columns, tree))
}

/// A commitment from its parts (both passes end here).
fn commitment_of(
    merkle_root: B256,
    record_count: u64,
    columns: &[String],
    ciphertext_sha256: [u8; 32],
    ciphertext_len: u64,
) -> DatasetCommitment {
    DatasetCommitment {
        merkle_root,
        record_count,
        schema_hash: schema_hash(columns),
        ciphertext_sha256: B256::from(ciphertext_sha256),
        ciphertext_len,
    }
}

/// The commitment from a root-only pass (the sorted leaves merged from disk).
fn finish_commitment_root(
    columns: Vec<String>,
    sorter: LeafSorter,
    ciphertext_sha256: [u8; 32],
    ciphertext_len: u64,
) -> Result<(DatasetCommitment, Vec<String>), DatasetError> {
    let record_count = sorter.len();
    let merkle_root = sorter
        .root()
        .map_err(spill_err)?
        .ok_or(DatasetError::Empty)?;
    let commitment = commitment_of(
        merkle_root,
        record_count,
        &columns,
        ciphertext_sha256,
        ciphertext_len,
    );
    Ok((commitment, columns))
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the SHA-256 and the byte count.
    pub fn finish(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The result of committing a dataset.
pub struct CommitOutput<W: Write> {
    /// The commitment.
    pub commitment: DatasetCommitment,
    /// Column names from the header.
    pub columns: Vec<String>,
    /// The record tree (for dumps and proofs).
    pub tree: StandardTree,
    /// The blob writer, returned after the final segment.
    pub blob: W,
}

/// Size of the chunks the commit pipeline reads.
pub const CHUNK: usize = 1 << 20;

/// Commits a dataset in one streaming pass: encrypts `input` under `key` into
/// `blob` (hashing the ciphertext) on one thread while hashing its records on
/// another. Memory: a few chunks in flight plus about 85 bytes per record
/// (the whole tree is kept, for dumps and proofs; [`commit_stream_root`]
/// keeps memory bounded when only the commitment is needed).
/// `progress` is called with the number of plaintext bytes read so far.
pub fn commit_stream<R: Read, W: Write + Send>(
    input: R,
    key: &DataKey,
    segment_size: u32,
    blob: W,
    progress: impl FnMut(u64),
) -> Result<CommitOutput<W>, DatasetError> {
    let (records, blob, ct_sha, ct_len) =
        commit_pass(input, key, segment_size, blob, progress, &|feed| {
            hash_records_offloaded(feed)
        })?;
    let (commitment, columns, tree) = finish_commitment(records, ct_sha, ct_len)?;
    Ok(CommitOutput {
        commitment,
        columns,
        tree,
        blob,
    })
}

/// What [`commit_stream_root`] returns: the commitment without the tree.
pub struct CommitRootOutput<W: Write> {
    /// The commitment.
    pub commitment: DatasetCommitment,
    /// Column names from the header.
    pub columns: Vec<String>,
    /// The blob writer, returned after the final segment.
    pub blob: W,
}

/// [`commit_stream`] in bounded memory, for when no tree dump or proof is
/// wanted: the record digests are not kept and the leaf hashes are sorted
/// in runs spilled to temporary files, then merged into the root
/// ([`crate::merkle::external`]). Memory stays at a few chunks in flight and
/// one 32 MiB run, whatever the number of records; the commitment is the
/// same as [`commit_stream`]'s.
pub fn commit_stream_root<R: Read, W: Write + Send>(
    input: R,
    key: &DataKey,
    segment_size: u32,
    blob: W,
    progress: impl FnMut(u64),
) -> Result<CommitRootOutput<W>, DatasetError> {
    let ((columns, sorter), blob, ct_sha, ct_len) =
        commit_pass(input, key, segment_size, blob, progress, &|feed| {
            hash_records_offloaded_root(feed)
        })?;
    let (commitment, columns) = finish_commitment_root(columns, sorter, ct_sha, ct_len)?;
    Ok(CommitRootOutput {
        commitment,
        columns,
        blob,
    })
}

/// What [`commit_stream_dump`] returns: the commitment and the tree, held
/// on disk, ready to write its dump.
pub struct CommitDumpOutput<W: Write> {
    /// The commitment.
    pub commitment: DatasetCommitment,
    /// Column names from the header.
    pub columns: Vec<String>,
    /// The record tree, in temporary files; [`SpilledTree::write_dump`]
    /// streams its `StandardMerkleTree.dump()`.
    pub tree: SpilledTree,
    /// The blob writer, returned after the final segment.
    pub blob: W,
}

/// [`commit_stream`] for a tree dump in bounded memory: the record digests
/// and leaf hashes go to temporary files (about 140 bytes per record on
/// disk while the tree exists), the tree's levels too, and the dump is
/// written from them front to back. Memory stays at a few chunks in flight,
/// one 40 MiB sort run and an 8 MiB index bucket, whatever the number of
/// records; the commitment and the dump are [`commit_stream`]'s.
pub fn commit_stream_dump<R: Read, W: Write + Send>(
    input: R,
    key: &DataKey,
    segment_size: u32,
    blob: W,
    progress: impl FnMut(u64),
) -> Result<CommitDumpOutput<W>, DatasetError> {
    let ((columns, spill), blob, ct_sha, ct_len) =
        commit_pass(input, key, segment_size, blob, progress, &|feed| {
            hash_records_offloaded_dump(feed)
        })?;
    let record_count = spill.len();
    let tree = spill
        .finish()
        .map_err(spill_err)?
        .ok_or(DatasetError::Empty)?;
    let commitment = commitment_of(tree.root(), record_count, &columns, ct_sha, ct_len);
    Ok(CommitDumpOutput {
        commitment,
        columns,
        tree,
        blob,
    })
}

/// How a pass hashes records: it runs the feeding closure against a hasher
/// and returns what it kept.
type RecordFeed<'f> = &'f mut dyn FnMut(&mut RecordHasher) -> Result<(), DatasetError>;

/// The streaming pass both commits share: read, encrypt and hash.
fn commit_pass<R: Read, W: Write + Send, H: Send>(
    mut input: R,
    key: &DataKey,
    segment_size: u32,
    blob: W,
    mut progress: impl FnMut(u64),
    hash_records: &(dyn Fn(RecordFeed<'_>) -> Result<H, DatasetError> + Sync),
) -> Result<(H, W, [u8; 32], u64), DatasetError> {
    let encryptor = StreamEncryptor::new(key, segment_size, HashingWriter::new(blob))?;
    let (tx, rx) = sync_channel::<Arc<Zeroizing<Vec<u8>>>>(4);
    let (etx, erx) = sync_channel::<Arc<Zeroizing<Vec<u8>>>>(4);
    std::thread::scope(|s| -> Result<(H, W, [u8; 32], u64), DatasetError> {
        let enc_thread = s.spawn(move || -> io::Result<HashingWriter<W>> {
            let mut enc = encryptor;
            for chunk in erx {
                enc.write_all(&chunk)?;
            }
            enc.finish()
        });
        // Records: parsed on this thread, hashed on another (two cores).
        let hash_thread = s.spawn(move || {
            hash_records(&mut |rh: &mut RecordHasher| {
                for chunk in rx.iter() {
                    rh.update(&chunk)?;
                }
                Ok(())
            })
        });
        let mut total = 0u64;
        let read_result = (|| -> io::Result<()> {
            loop {
                let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
                let mut filled = 0;
                while filled < CHUNK {
                    match input.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                if filled == 0 {
                    return Ok(());
                }
                buf.truncate(filled);
                total += filled as u64;
                let chunk = Arc::new(buf);
                // A closed channel means that worker failed; its error is reported below.
                if tx.send(chunk.clone()).is_err() || etx.send(chunk).is_err() {
                    return Ok(());
                }
                progress(total);
                if filled < CHUNK {
                    return Ok(());
                }
            }
        })();
        drop(tx);
        drop(etx);
        let hashed = hash_thread
            .join()
            .map_err(|_| io::Error::other("record hashing thread panicked"))?;
        let encrypted = enc_thread
            .join()
            .map_err(|_| io::Error::other("encryption thread panicked"))?;
        read_result?;
        let records = hashed?;
        let (blob, ct_sha, ct_len) = encrypted?.finish();
        Ok((records, blob, ct_sha, ct_len))
    })
}

/// Recomputes a commitment from a blob and its key, streaming: the ciphertext
/// hash over the blob bytes, then the records from the decrypted stream.
/// The plaintext is handed to `sink` segment by segment (e.g. to parse the
/// training data) and is never held whole here.
pub fn recompute_from_blob<R: Read>(
    blob: R,
    key: &DataKey,
    sink: impl FnMut(&[u8]) -> Result<(), DatasetError>,
) -> Result<(DatasetCommitment, Vec<String>, StandardTree), DatasetError> {
    let (records, ct_sha, len) =
        recompute_pass(blob, key, sink, &|feed| hash_records_offloaded(feed))?;
    finish_commitment(records, ct_sha, len)
}

/// [`recompute_from_blob`] in bounded memory (the root from spilled sorted
/// runs, as [`commit_stream_root`]): what the trusted loader runs, since it
/// needs the commitment, not the tree.
pub fn recompute_root_from_blob<R: Read>(
    blob: R,
    key: &DataKey,
    sink: impl FnMut(&[u8]) -> Result<(), DatasetError>,
) -> Result<(DatasetCommitment, Vec<String>), DatasetError> {
    let ((columns, sorter), ct_sha, len) =
        recompute_pass(blob, key, sink, &|feed| hash_records_offloaded_root(feed))?;
    finish_commitment_root(columns, sorter, ct_sha, len)
}

/// The decrypting pass both recomputations share.
fn recompute_pass<R: Read, H>(
    blob: R,
    key: &DataKey,
    mut sink: impl FnMut(&[u8]) -> Result<(), DatasetError>,
    hash_records: &dyn Fn(RecordFeed<'_>) -> Result<H, DatasetError>,
) -> Result<(H, [u8; 32], u64), DatasetError> {
    struct HashingReader<R: Read> {
        inner: R,
        hasher: Sha256,
        len: u64,
    }
    impl<R: Read> Read for HashingReader<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.hasher.update(&buf[..n]);
            self.len += n as u64;
            Ok(n)
        }
    }
    let reader = HashingReader {
        inner: blob,
        hasher: Sha256::new(),
        len: 0,
    };
    let mut dec = crate::stream::StreamDecryptor::new(key, reader)?;
    // Records parsed here, hashed on a second thread (as in commit_stream).
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let records = hash_records(&mut |rh: &mut RecordHasher| loop {
        let n = match dec.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                return Err(match e.into_inner().map(|i| i.downcast::<StreamError>()) {
                    Some(Ok(se)) => DatasetError::Stream(*se),
                    Some(Err(other)) => DatasetError::Io(io::Error::other(other)),
                    None => DatasetError::Io(io::Error::other("blob read failed")),
                })
            }
        };
        if n == 0 {
            return Ok(());
        }
        rh.update(&buf[..n])?;
        sink(&buf[..n])?;
    })?;
    let reader = dec.into_inner();
    let ct_sha: [u8; 32] = reader.hasher.finalize().into();
    Ok((records, ct_sha, reader.len))
}

/// Domain prefix of a party's signature over a commitment digest.
pub const COMMITMENT_SIGNATURE_DOMAIN: &[u8] = b"sealroom.commitment.v1";

/// A commitment signed by the party that made it, as written by `sealroom commit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommitment {
    /// Always `sealroom-commitment/1`.
    pub format: String,
    /// Column names of the dataset (public: they are the schema).
    pub columns: Vec<String>,
    /// The commitment.
    pub commitment: DatasetCommitment,
    /// The committing party's ed25519 key.
    #[serde(with = "crate::identity::hex32")]
    pub party: [u8; 32],
    /// ed25519 signature over `COMMITMENT_SIGNATURE_DOMAIN || commitment.digest()`.
    #[serde(with = "crate::identity::hex64")]
    pub signature: [u8; 64],
}

/// Format tag of [`SignedCommitment`].
pub const SIGNED_COMMITMENT_FORMAT: &str = "sealroom-commitment/1";

/// The exact bytes a party signs for a commitment.
pub fn commitment_signing_message(c: &DatasetCommitment) -> Vec<u8> {
    let mut m = COMMITMENT_SIGNATURE_DOMAIN.to_vec();
    m.extend_from_slice(&c.digest());
    m
}

impl SignedCommitment {
    /// Signs `commitment` with `party`.
    pub fn sign(
        party: &crate::identity::Identity,
        commitment: DatasetCommitment,
        columns: Vec<String>,
    ) -> Self {
        let signature = party.sign(&commitment_signing_message(&commitment));
        Self {
            format: SIGNED_COMMITMENT_FORMAT.to_string(),
            columns,
            commitment,
            party: party.public().ed25519,
            signature,
        }
    }

    /// Checks the format tag, that the columns hash to the schema hash, and the
    /// signature (strict ed25519) under the embedded party key.
    pub fn verify(&self) -> Result<(), String> {
        if self.format != SIGNED_COMMITMENT_FORMAT {
            return Err(format!(
                "format `{}` is not `{SIGNED_COMMITMENT_FORMAT}`",
                self.format
            ));
        }
        if schema_hash(&self.columns) != self.commitment.schema_hash {
            return Err("columns do not match schema_hash".into());
        }
        crate::identity::verify_strict(
            &self.party,
            &commitment_signing_message(&self.commitment),
            &self.signature,
        )
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "a,b,label\n1.0,2.0,0\n3.5, 4 ,1\r\n5,6,0\n";

    #[test]
    fn commit_then_recompute_matches() {
        let key = DataKey::generate().unwrap();
        let out = commit_stream(CSV.as_bytes(), &key, 16, Vec::new(), |_| {}).unwrap();
        assert_eq!(out.commitment.record_count, 3);
        assert_eq!(out.columns, vec!["a", "b", "label"]);
        assert_eq!(
            out.commitment.schema_hash,
            schema_hash(&["a", "b", "label"])
        );
        assert_eq!(out.commitment.ciphertext_len, out.blob.len() as u64);
        let mut plain = Vec::new();
        let (again, _, tree) = recompute_from_blob(&out.blob[..], &key, |b| {
            plain.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(again, out.commitment);
        assert_eq!(plain, CSV.as_bytes());
        // Leaf 1 is the second record, trimmed.
        assert_eq!(
            tree.leaf(1).unwrap(),
            crate::merkle::leaf_hash(&uint_word(1), &record_digest(&["3.5", "4", "1"]))
        );
    }

    #[test]
    fn the_bounded_memory_commit_and_recompute_give_the_same_commitment() {
        // Enough records for a few hundred leaves; the sorter's spilling is
        // tested with small runs in merkle::external.
        let mut csv = String::from("a,b,label\n");
        for i in 0..777 {
            csv.push_str(&format!("{i}.5,{},{}\n", i * 7 % 13, i % 2));
        }
        let key = DataKey::generate().unwrap();
        let whole = commit_stream(csv.as_bytes(), &key, 64, Vec::new(), |_| {}).unwrap();
        let bounded = commit_stream_root(csv.as_bytes(), &key, 64, Vec::new(), |_| {}).unwrap();
        assert_eq!(bounded.commitment.merkle_root, whole.commitment.merkle_root);
        assert_eq!(bounded.commitment.record_count, 777);
        assert_eq!(bounded.columns, whole.columns);
        let mut plain = Vec::new();
        let (again, columns) = recompute_root_from_blob(&bounded.blob[..], &key, |b| {
            plain.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(again, bounded.commitment);
        assert_eq!(columns, whole.columns);
        assert_eq!(plain, csv.as_bytes());
        // The inline root-only hasher (one thread) agrees.
        let mut rh = RecordHasher::root_only_on(1);
        for c in csv.as_bytes().chunks(100) {
            rh.update(c).unwrap();
        }
        let (columns, count, root) = rh.finish_root().unwrap();
        assert_eq!(
            (columns, count, root),
            (whole.columns.clone(), 777, whole.commitment.merkle_root)
        );
        // The streamed dump is the whole tree's dump.
        let dumped = commit_stream_dump(csv.as_bytes(), &key, 64, Vec::new(), |_| {}).unwrap();
        assert_eq!(dumped.commitment.merkle_root, whole.commitment.merkle_root);
        assert_eq!(dumped.commitment.record_count, 777);
        assert_eq!(dumped.columns, whole.columns);
        let mut text = Vec::new();
        dumped.tree.write_dump(&mut text).unwrap();
        let dump: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(dump, whole.tree.dump());
        // Malformed input fails the same way.
        let e = commit_stream_dump("a,b\n1,2\n\n3,4\n".as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = commit_stream_root("a,b\n1,2\n\n3,4\n".as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn chunking_does_not_change_the_commitment() {
        let mut rh1 = RecordHasher::new();
        rh1.update(CSV.as_bytes()).unwrap();
        let mut rh2 = RecordHasher::new();
        for b in CSV.as_bytes() {
            rh2.update(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(rh1.finish().unwrap(), rh2.finish().unwrap());
    }

    /// Inline and offloaded hashing (parse here, hash on another thread)
    /// give the same digests, leaves and errors, across many batches.
    #[test]
    fn offloaded_hashing_matches_inline_hashing() {
        let offloaded = |text: &[u8]| {
            hash_records_offloaded(|rh| {
                for c in text.chunks(7919) {
                    rh.update(c)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
        };
        let inline = |text: &[u8]| {
            let mut rh = RecordHasher::new();
            rh.update(text).map_err(|e| e.to_string())?;
            rh.finish().map_err(|e| e.to_string())
        };
        let mut big = String::from("a,b,c\n");
        for i in 0..40_000 {
            big.push_str(&format!("{i},{}.5,{}\n", i * 7, i % 3));
        }
        let r = offloaded(big.as_bytes()).unwrap();
        assert!(r.digests.len() == 40_000 && r.digests.len() * 20 > RECORD_BATCH_BYTES);
        assert_eq!(Ok(r), inline(big.as_bytes()));
        for bad in [
            "a,b\n1,2\n3\n",
            "a,b\n",
            "",
            "a,b\n1,2\n\n3,4\n",
            "a,b\n1,\"2\"\n",
            "a,b\n1,2\n\n\n",
        ] {
            assert_eq!(offloaded(bad.as_bytes()), inline(bad.as_bytes()), "{bad:?}");
        }
        let mut late = big.clone();
        late.push_str("1,2\n");
        let e = offloaded(late.as_bytes()).unwrap_err();
        assert_eq!(Err(e.clone()), inline(late.as_bytes()).map(|_| ()));
        assert!(e.starts_with("line 40002:"), "{e}");
    }

    /// The commitment's fast record path gives exactly the general
    /// reader's canonical bytes and errors: random files over an alphabet
    /// of separators, ASCII and Unicode whitespace (which `str::trim`
    /// strips), quotes, carriage returns, multi-byte characters and invalid
    /// UTF-8, hashed through [`RecordHasher`] (fast path, any chunking) and
    /// through [`CsvReader`] + [`record_digest`] (the general path).
    #[test]
    fn the_fast_record_path_reads_every_line_as_the_general_reader_does() {
        let alphabet: [&[u8]; 16] = [
            b"1",
            b"a",
            b"x7",
            b" ",
            b"\t",
            b",",
            b",",
            "\u{a0}".as_bytes(),
            "\u{2003}".as_bytes(),
            b"\"",
            b"\r",
            b"\x0b",
            "\u{e9}".as_bytes(),
            "\u{85}".as_bytes(),
            b"\xff",
            b"\n",
        ];
        let general = |text: &[u8]| -> Result<Vec<[u8; 32]>, String> {
            let mut out = Vec::new();
            let mut r = CsvReader::new();
            let mut on = |_: u64, l: CsvLine<'_>| {
                if let CsvLine::Record(f) = l {
                    out.push(record_digest(&f));
                }
                Ok(())
            };
            r.update(text, &mut on).map_err(|e| e.to_string())?;
            r.finish(&mut on).map_err(|e| e.to_string())?;
            if out.is_empty() {
                return Err(DatasetError::Empty.to_string());
            }
            Ok(out)
        };
        let fast = |text: &[u8], chunk: usize| -> Result<Vec<[u8; 32]>, String> {
            let mut h = RecordHasher::new();
            for c in text.chunks(chunk) {
                h.update(c).map_err(|e| e.to_string())?;
            }
            h.finish().map(|r| r.digests).map_err(|e| e.to_string())
        };
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..3000 {
            let mut text = b"a, b ,c\n".to_vec();
            for _ in 0..next(6) + 1 {
                // Mostly well-formed three-field lines, some of them noisy.
                if next(3) > 0 {
                    for f in 0..3 {
                        if f > 0 {
                            text.push(b',');
                        }
                        for _ in 0..next(3) {
                            text.extend_from_slice(alphabet[next(4) as usize]);
                        }
                        if next(5) == 0 {
                            text.extend_from_slice(alphabet[next(16) as usize]);
                        }
                    }
                } else {
                    for _ in 0..next(8) {
                        text.extend_from_slice(alphabet[next(16) as usize]);
                    }
                }
                text.push(b'\n');
            }
            let want = general(&text);
            match &want {
                Ok(_) => ok += 1,
                Err(_) => refused += 1,
            }
            for chunk in [1, 3, 64, 1 << 20] {
                assert_eq!(
                    fast(&text, chunk),
                    want,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        assert!(
            ok > 300 && refused > 300,
            "{ok} accepted, {refused} refused"
        );
    }

    #[test]
    fn any_number_of_hashing_workers_gives_the_sequential_leaves() {
        // Small batches, so each worker gets many and they finish out of
        // order; the leaves and digests must come back in record order.
        let mut batches = Vec::new();
        let mut next = 0u64;
        for size in [1usize, 5, 2, 17, 3, 40, 1, 9, 30, 4, 11, 2] {
            let mut b = RecordBatch::new(next);
            for i in 0..size {
                let v = format!("{}", next + i as u64);
                b.push(&[v.as_str(), "x"]);
            }
            next += size as u64;
            batches.push(b);
        }
        let mut inline = BatchHashes::default();
        for b in &batches {
            inline.absorb(hash_batch(b, true));
        }
        for workers in [1, 2, 3, 7] {
            let (tx, rx) = sync_channel(1);
            let sender = std::thread::spawn({
                let batches: Vec<RecordBatch> = batches
                    .iter()
                    .map(|b| RecordBatch {
                        bytes: b.bytes.clone(),
                        ends: b.ends.clone(),
                        first: b.first,
                    })
                    .collect();
                move || {
                    for b in batches {
                        tx.send(b).unwrap();
                    }
                }
            });
            let parallel = hash_batches(rx, Keep::Whole, workers);
            sender.join().unwrap();
            assert_eq!(parallel.count, next, "{workers} workers");
            assert_eq!(parallel.leaves, inline.leaves, "{workers} workers");
            assert_eq!(parallel.digests, inline.digests, "{workers} workers");
        }
    }

    #[test]
    fn malformed_datasets_name_the_line() {
        let key = DataKey::generate().unwrap();
        let bad = "a,b\n1,2\n3\n";
        let e = commit_stream(bad.as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("line 3:"), "{e}");
        let e = commit_stream("a,b\n".as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(matches!(e, DatasetError::Empty));
        let e = commit_stream("a,b\n1,2\n\n3,4\n".as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = commit_stream("a,b\n\"1\",2\n".as_bytes(), &key, 16, Vec::new(), |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("quoted"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_and_blank_lines_are_refused_with_their_line() {
        let key = DataKey::generate().unwrap();
        let commit = |csv: &[u8]| {
            commit_stream(csv, &key, 16, Vec::new(), |_| {})
                .err()
                .map(|e| e.to_string())
        };
        let e = commit(b"\xEF\xBB\xBFa,b\n1,2\n").unwrap();
        assert!(
            e.starts_with("line 1: the file starts with a UTF-8 byte-order mark"),
            "{e}"
        );
        let e = commit(b"\na,b\n1,2\n").unwrap();
        assert!(e.starts_with("line 1: blank line before the header"), "{e}");
        let e = commit(b"a,b\n1,2\n  \r\n3,4\n").unwrap();
        assert!(
            e.starts_with("line 3: blank line inside the dataset"),
            "{e}"
        );
        let e = commit(b"a,,b\n1,2,3\n").unwrap();
        assert!(e.contains("header column 2 has an empty name"), "{e}");
        // Blank lines at the end are fine, and do not count as records.
        assert_eq!(commit(b"a,b\n1,2\n\n\r\n"), None);
        // The check's reader sees the same lines, numbered the same.
        let mut r = CsvReader::new();
        let mut seen = Vec::new();
        let mut on = |n: u64, l: CsvLine<'_>| {
            seen.push((n, format!("{l:?}")));
            Ok(())
        };
        r.update(b"a, b\r\n1,", &mut on).unwrap();
        r.update(b"2\n\n", &mut on).unwrap();
        r.finish(&mut on).unwrap();
        assert_eq!(
            seen,
            vec![
                (1, "Header([\"a\", \"b\"])".to_string()),
                (2, "Record([\"1\", \"2\"])".to_string()),
                (3, "Blank".to_string()),
            ]
        );
    }

    #[test]
    fn signed_commitment_verifies_and_binds() {
        let key = DataKey::generate().unwrap();
        let out = commit_stream(CSV.as_bytes(), &key, 16, Vec::new(), |_| {}).unwrap();
        let id = crate::identity::Identity::generate().unwrap();
        let sc = SignedCommitment::sign(&id, out.commitment.clone(), out.columns.clone());
        sc.verify().unwrap();
        let mut lying = sc.clone();
        lying.commitment.record_count += 1;
        assert!(lying.verify().is_err());
        let mut cols = sc.clone();
        cols.columns[0] = "z".into();
        assert!(cols.verify().is_err());
    }

    #[test]
    fn tampered_blob_fails_recompute() {
        let key = DataKey::generate().unwrap();
        let out = commit_stream(CSV.as_bytes(), &key, 16, Vec::new(), |_| {}).unwrap();
        let mut blob = out.blob.clone();
        let last = blob.len() - 1;
        blob[last] ^= 0x80;
        assert!(matches!(
            recompute_from_blob(&blob[..], &key, |_| Ok(())),
            Err(DatasetError::Stream(_))
        ));
    }
}
