//! Standard trees over more leaves than fit in memory: the root, and the
//! whole `StandardMerkleTree.dump()` written as a stream.
//!
//! OpenZeppelin's standard tree sorts its leaf hashes and lays them out in
//! a heap array (leaf at sorted position `p` sits at index `2n-2-p`; node
//! `i` hashes its children `2i+1` and `2i+2`). The root therefore needs
//! every leaf hash in sorted order, but nothing else at once: the leaves
//! are sorted in runs of bounded size spilled to anonymous temporary files,
//! merged, and the heap's levels are reduced one after another, each read
//! and written sequentially. Memory stays at one run buffer plus a read
//! buffer per run, whatever the number of leaves; the root equals
//! [`super::StandardTree`]'s for the same leaves (tested below).
//!
//! A dump needs more: the whole heap array, root first, and each value in
//! record order with the heap index of its leaf. [`DumpSpill`] keeps every
//! level (a temporary file each, beyond a few MiB), the record digests in
//! record order, and the inverse of the sort (each record's heap index)
//! written to buckets of record indices that are each small enough to put
//! back in order in memory. The dump is then written front to back with
//! bounded memory: 32 bytes per record of digests, 64 of levels and 16 of
//! bucketed indices on disk while it runs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use alloy_primitives::B256;

use super::hash_pairs_on;

/// Leaves held in memory before a run is sorted and spilled: 1 Mi leaves,
/// 32 MiB. (Runs of 256 Ki, sorted while the records still stream in,
/// measured no faster on two cores and are not used.)
pub const DEFAULT_RUN_LEAVES: usize = 1 << 20;

/// A fixed-size item of a spilled sorted run.
trait RunItem: Ord + Copy {
    /// Encoded length in bytes (at most 64).
    const LEN: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(b: &[u8]) -> Self;
}

impl RunItem for B256 {
    const LEN: usize = 32;
    fn encode(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(self.as_slice());
    }
    fn decode(b: &[u8]) -> Self {
        B256::from_slice(&b[..32])
    }
}

/// A leaf hash with the index of its record; ordered by the hash first
/// (the tree's order), then the index.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IndexedLeaf {
    leaf: B256,
    index: u64,
}

impl RunItem for IndexedLeaf {
    const LEN: usize = 40;
    fn encode(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(self.leaf.as_slice());
        out[32..40].copy_from_slice(&self.index.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut index = [0u8; 8];
        index.copy_from_slice(&b[32..40]);
        IndexedLeaf {
            leaf: B256::from_slice(&b[..32]),
            index: u64::from_le_bytes(index),
        }
    }
}

/// Items sorted descending in runs of bounded size, spilled to temporary
/// files, and merged back in one descending stream.
struct Runs<T: RunItem> {
    buf: Vec<T>,
    files: Vec<File>,
    run_len: usize,
    count: u64,
}

impl<T: RunItem> Runs<T> {
    fn new(run_len: usize) -> Self {
        let run_len = run_len.max(2);
        Self {
            buf: Vec::with_capacity(run_len.min(DEFAULT_RUN_LEAVES)),
            files: Vec::new(),
            run_len,
            count: 0,
        }
    }

    fn push(&mut self, item: T) -> io::Result<()> {
        self.buf.push(item);
        self.count += 1;
        if self.buf.len() >= self.run_len {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the buffer descending and writes it to a new run file.
    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable_by(|a, b| b.cmp(a));
        let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        let mut b = [0u8; 64];
        for item in &self.buf {
            item.encode(&mut b);
            w.write_all(&b[..T::LEN])?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.rewind()?;
        self.files.push(f);
        self.buf.clear();
        Ok(())
    }

    /// Every item pushed, in descending order.
    fn merge(mut self) -> io::Result<Merge<T>> {
        self.buf.sort_unstable_by(|a, b| b.cmp(a));
        Merge::new(std::mem::take(&mut self.buf), self.files)
    }
}

/// Collects leaf hashes, spilling sorted runs to temporary files, and
/// computes the standard tree's root from them.
pub struct LeafSorter {
    runs: Runs<B256>,
    limits: Limits,
}

impl Default for LeafSorter {
    fn default() -> Self {
        Self::with_run_leaves(DEFAULT_RUN_LEAVES)
    }
}

impl std::fmt::Debug for LeafSorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafSorter")
            .field("count", &self.runs.count)
            .field("runs", &self.runs.files.len())
            .finish()
    }
}

impl LeafSorter {
    /// A sorter spilling every `run_leaves` leaves (at least 2).
    pub fn with_run_leaves(run_leaves: usize) -> Self {
        Self::with_limits(run_leaves, Limits::default())
    }

    /// A sorter whose tree levels are hashed on at most `threads` threads
    /// (one: the sequential baseline of a benchmark).
    pub fn on_threads(threads: usize) -> Self {
        let limits = Limits {
            threads: threads.max(1),
            ..Limits::default()
        };
        Self::with_limits(DEFAULT_RUN_LEAVES, limits)
    }

    fn with_limits(run_leaves: usize, limits: Limits) -> Self {
        Self {
            runs: Runs::new(run_leaves),
            limits,
        }
    }

    /// Leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.runs.count
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.runs.count == 0
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.files.len()
    }

    /// Adds one leaf hash.
    pub fn push(&mut self, leaf: B256) -> io::Result<()> {
        self.runs.push(leaf)
    }

    /// The root of the standard tree over every leaf pushed; `None` when
    /// there is none.
    pub fn root(self) -> io::Result<Option<B256>> {
        let n = self.runs.count;
        if n == 0 {
            return Ok(None);
        }
        let mut merged = self.runs.merge()?;
        let (root, _) = reduce_levels(n, &mut || merged.next(), false, self.limits)?;
        Ok(Some(root))
    }
}

/// A k-way merge of descending runs (files and one in-memory run).
struct Merge<T: RunItem> {
    readers: Vec<BufReader<File>>,
    mem: std::vec::IntoIter<T>,
    heap: BinaryHeap<(T, Reverse<usize>)>,
}

impl<T: RunItem> Merge<T> {
    /// Source `readers.len()` is the in-memory run.
    fn new(mem: Vec<T>, runs: Vec<File>) -> io::Result<Self> {
        let mut m = Self {
            readers: runs
                .into_iter()
                .map(|f| BufReader::with_capacity(1 << 16, f))
                .collect(),
            mem: mem.into_iter(),
            heap: BinaryHeap::new(),
        };
        for src in 0..=m.readers.len() {
            if let Some(h) = m.pull(src)? {
                m.heap.push((h, Reverse(src)));
            }
        }
        Ok(m)
    }

    fn pull(&mut self, src: usize) -> io::Result<Option<T>> {
        if src == self.readers.len() {
            return Ok(self.mem.next());
        }
        let mut b = [0u8; 64];
        match self.readers[src].read_exact(&mut b[..T::LEN]) {
            Ok(()) => Ok(Some(T::decode(&b))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn next(&mut self) -> io::Result<T> {
        let (h, Reverse(src)) = self
            .heap
            .pop()
            .ok_or_else(|| io::Error::other("sorted runs ended early"))?;
        if let Some(next) = self.pull(src)? {
            self.heap.push((next, Reverse(src)));
        }
        Ok(h)
    }
}

/// Levels of at most this many nodes stay in memory (8 MiB).
const MEM_LEVEL: u64 = 1 << 18;

/// Nodes of one heap level being written, in index order: in memory while
/// small, else in a temporary file.
enum Level {
    Mem(Vec<B256>),
    Disk(BufWriter<File>, u64),
}

impl Level {
    fn new(expected: u64, mem_level: u64) -> io::Result<Self> {
        Ok(if expected <= mem_level {
            Level::Mem(Vec::with_capacity(expected as usize))
        } else {
            Level::Disk(BufWriter::with_capacity(1 << 16, tempfile::tempfile()?), 0)
        })
    }

    fn push(&mut self, h: B256) -> io::Result<()> {
        match self {
            Level::Mem(v) => {
                v.push(h);
                Ok(())
            }
            Level::Disk(w, n) => {
                *n += 1;
                w.write_all(h.as_slice())
            }
        }
    }

    /// A sequential reader of what was written.
    fn into_part(self) -> io::Result<Part> {
        Ok(match self {
            Level::Mem(v) => Part {
                len: v.len() as u64,
                read: 0,
                source: Source::Mem(v),
            },
            Level::Disk(w, len) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                Part {
                    len,
                    read: 0,
                    source: Source::Disk(BufReader::with_capacity(1 << 16, f)),
                }
            }
        })
    }
}

enum Source {
    Mem(Vec<B256>),
    Disk(BufReader<File>),
}

/// A written level, or part of one, read front to back (and again after
/// [`Part::rewind`]).
struct Part {
    source: Source,
    len: u64,
    read: u64,
}

impl Part {
    fn next(&mut self) -> io::Result<Option<B256>> {
        if self.read == self.len {
            return Ok(None);
        }
        let i = self.read;
        self.read += 1;
        match &mut self.source {
            Source::Mem(v) => Ok(v.get(i as usize).copied()),
            Source::Disk(r) => {
                let mut b = [0u8; 32];
                r.read_exact(&mut b)?;
                Ok(Some(B256::from(b)))
            }
        }
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.read = 0;
        if let Source::Disk(r) = &mut self.source {
            r.rewind()?;
        }
        Ok(())
    }
}

/// One heap level read in index order: its parts one after another (the
/// level above the deepest holds inner nodes, then leaves).
struct LevelReader {
    parts: Vec<Part>,
    at: usize,
}

impl LevelReader {
    fn of(parts: Vec<Part>) -> Self {
        Self { parts, at: 0 }
    }

    fn next(&mut self) -> io::Result<B256> {
        while let Some(p) = self.parts.get_mut(self.at) {
            if let Some(h) = p.next()? {
                return Ok(h);
            }
            self.at += 1;
        }
        Err(io::Error::other("tree level ended early"))
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.at = 0;
        self.parts.iter_mut().try_for_each(Part::rewind)
    }

    fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }
}

/// How a tree's levels are reduced: which levels stay in memory, and how
/// the pairs of a level are hashed in parallel. The defaults suit real
/// inputs; tests shrink them to reach every path with a few leaves.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Levels of at most this many nodes stay in memory.
    mem_level: u64,
    /// Threads hashing a level's pairs.
    threads: usize,
    /// Pairs read, then hashed in parallel, at a time (bounds memory).
    step: usize,
    /// Fewer pairs than this in a step are hashed on the calling thread.
    parallel_from: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            mem_level: MEM_LEVEL,
            threads: super::available_threads().min(8),
            // 32 Ki pairs: 2 MiB in, 1 MiB out.
            step: 1 << 15,
            parallel_from: 1 << 10,
        }
    }
}

/// Reads `2 * pairs` nodes from `next` (also pushing them to `keep` when
/// given), hashes each consecutive pair, and pushes the results, in order,
/// to `up`: a step of pairs at a time, each step's hashing split over the
/// threads. The inner nodes are as many as the leaves, so on one thread
/// they would be a sequential tail as long as a third of the leaf hashing.
fn hash_pairs_into(
    pairs: u64,
    next: &mut dyn FnMut() -> io::Result<B256>,
    up: &mut Level,
    mut keep: Option<&mut Level>,
    limits: Limits,
) -> io::Result<()> {
    let step = limits.step.max(1);
    let first = usize::try_from(pairs).map_or(step, |p| p.min(step));
    let mut input: Vec<B256> = Vec::with_capacity(2 * first);
    let mut output: Vec<B256> = Vec::with_capacity(first);
    let mut left = pairs;
    while left > 0 {
        let k = usize::try_from(left).map_or(step, |l| l.min(step));
        input.clear();
        for _ in 0..2 * k {
            let h = next()?;
            if let Some(kept) = keep.as_deref_mut() {
                kept.push(h)?;
            }
            input.push(h);
        }
        output.clear();
        output.resize(k, B256::ZERO);
        let threads = if k < limits.parallel_from {
            1
        } else {
            limits.threads
        };
        hash_pairs_on(&mut output, &input, threads);
        for h in &output {
            up.push(*h)?;
        }
        left -= k as u64;
    }
    Ok(())
}

/// The root of the heap over `n ≥ 1` leaves given in descending order
/// (= heap indices `n-1 ..= 2n-2` in ascending order) and, when `keep`,
/// every level from the root's down, each rewound to its start.
fn reduce_levels(
    n: u64,
    next: &mut dyn FnMut() -> io::Result<B256>,
    keep: bool,
    limits: Limits,
) -> io::Result<(B256, Vec<LevelReader>)> {
    let mem_level = limits.mem_level;
    if n == 1 {
        let leaf = next()?;
        let kept = if keep {
            vec![LevelReader::of(vec![Level::Mem(vec![leaf]).into_part()?])]
        } else {
            Vec::new()
        };
        return Ok((leaf, kept));
    }
    let len = 2 * n - 1;
    // The deepest level D starts at 2^D - 1, the largest such index ≤ len - 1;
    // it holds only leaves (an even number of them), and level D-1 ends
    // with the other leaves. Every level above D is full.
    let deep_start = (1u64 << (63 - len.leading_zeros())) - 1;
    let upper_leaves = deep_start - (n - 1);
    let mut leaves_above = Level::new(upper_leaves, mem_level)?;
    for _ in 0..upper_leaves {
        leaves_above.push(next()?)?;
    }
    let deep = len - deep_start;
    let mut deep_leaves = if keep {
        Some(Level::new(deep, mem_level)?)
    } else {
        None
    };
    let mut inner = Level::new(deep / 2, mem_level)?;
    hash_pairs_into(deep / 2, next, &mut inner, deep_leaves.as_mut(), limits)?;
    let mut kept = Vec::new();
    if let Some(d) = deep_leaves {
        kept.push(LevelReader::of(vec![d.into_part()?]));
    }
    // Level D-1: its inner nodes, then its leaves.
    let mut current = LevelReader::of(vec![inner.into_part()?, leaves_above.into_part()?]);
    loop {
        let width = current.len();
        if width == 1 {
            break;
        }
        let mut up = Level::new(width / 2, mem_level)?;
        hash_pairs_into(width / 2, &mut || current.next(), &mut up, None, limits)?;
        let below = std::mem::replace(&mut current, LevelReader::of(vec![up.into_part()?]));
        if keep {
            let mut below = below;
            below.rewind()?;
            kept.push(below);
        }
    }
    let root = current.next()?;
    if keep {
        current.rewind()?;
        kept.push(current);
    }
    kept.reverse();
    Ok((root, kept))
}

/// Collects, in record order, each record's digest and leaf hash for a
/// dataset tree (leaf encoding `["uint256", "bytes32"]`: the record index
/// and its digest), spilling to temporary files, so that the whole
/// `StandardMerkleTree.dump()` can be written afterwards in bounded memory
/// ([`SpilledTree::write_dump`]).
pub struct DumpSpill {
    runs: Runs<IndexedLeaf>,
    digests: BufWriter<File>,
    limits: Limits,
}

impl std::fmt::Debug for DumpSpill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpSpill")
            .field("count", &self.runs.count)
            .field("runs", &self.runs.files.len())
            .finish()
    }
}

impl DumpSpill {
    /// A spill sorting in runs of [`DEFAULT_RUN_LEAVES`] (40 MiB).
    pub fn new() -> io::Result<Self> {
        Self::with_limits(DEFAULT_RUN_LEAVES, Limits::default())
    }

    /// A spill sorting in runs of `run_leaves` and reducing levels within
    /// `limits` (small values test the disk and parallel paths).
    fn with_limits(run_leaves: usize, limits: Limits) -> io::Result<Self> {
        Ok(Self {
            runs: Runs::new(run_leaves),
            digests: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            limits,
        })
    }

    /// Records pushed so far.
    pub fn len(&self) -> u64 {
        self.runs.count
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.runs.count == 0
    }

    /// Adds the next record (index [`Self::len`]): its digest and its leaf.
    pub fn push(&mut self, digest: &[u8; 32], leaf: B256) -> io::Result<()> {
        self.digests.write_all(digest)?;
        let index = self.runs.count;
        self.runs.push(IndexedLeaf { leaf, index })
    }

    /// Sorts the leaves, computes every level of the tree and the inverse
    /// of the sort; `None` when no record was pushed.
    pub fn finish(self) -> io::Result<Option<SpilledTree>> {
        let n = self.runs.count;
        if n == 0 {
            return Ok(None);
        }
        let mut digests = self.digests.into_inner().map_err(|e| e.into_error())?;
        digests.rewind()?;
        // Buckets of record indices: each is put back in order in memory
        // (8 bytes per record), and there are never more than 256 files.
        let bucket_len = (self.runs.run_len as u64).max(n.div_ceil(256));
        let mut buckets = (0..n.div_ceil(bucket_len))
            .map(|_| Ok(BufWriter::with_capacity(1 << 13, tempfile::tempfile()?)))
            .collect::<io::Result<Vec<_>>>()?;
        let mut merged = self.runs.merge()?;
        let mut position = 0u64;
        let mut next = || -> io::Result<B256> {
            let item = merged.next()?;
            // Descending position q sits at heap index n-1+q.
            let tree_index = n - 1 + position;
            position += 1;
            let bucket = buckets
                .get_mut((item.index / bucket_len) as usize)
                .ok_or_else(|| io::Error::other("a record index beyond the record count"))?;
            bucket.write_all(&item.index.to_le_bytes())?;
            bucket.write_all(&tree_index.to_le_bytes())?;
            Ok(item.leaf)
        };
        let (root, levels) = reduce_levels(n, &mut next, true, self.limits)?;
        let buckets = buckets
            .into_iter()
            .map(|w| {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                Ok(f)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Some(SpilledTree {
            n,
            root,
            levels,
            digests,
            buckets,
            bucket_len,
        }))
    }
}

/// A dataset tree held on disk by [`DumpSpill::finish`]: its root, and the
/// dump it writes.
pub struct SpilledTree {
    n: u64,
    root: B256,
    levels: Vec<LevelReader>,
    digests: File,
    buckets: Vec<File>,
    bucket_len: u64,
}

impl std::fmt::Debug for SpilledTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpilledTree")
            .field("records", &self.n)
            .field("root", &self.root)
            .finish()
    }
}

/// `"0x…"` of a 32-byte word, as the dump writes hashes and digests.
fn quoted_hex<'a>(w: &[u8], out: &'a mut [u8; 68]) -> &'a [u8] {
    out[0] = b'"';
    out[1] = b'0';
    out[2] = b'x';
    let _ = hex::encode_to_slice(w, &mut out[3..67]);
    out[67] = b'"';
    &out[..]
}

impl SpilledTree {
    /// The tree's root.
    pub fn root(&self) -> B256 {
        self.root
    }

    /// Records in the tree.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether the tree has no record (never: [`DumpSpill::finish`] returns
    /// `None` then).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Writes the `StandardMerkleTree.dump()` JSON (`standard-v1`, the
    /// layout `serde_json`'s pretty printer gives
    /// [`super::StandardTree::dump`]) front to back: the heap array root
    /// first, then each value in record order with its leaf's heap index.
    pub fn write_dump(mut self, w: &mut dyn Write) -> io::Result<()> {
        let mut hexbuf = [0u8; 68];
        w.write_all(
            b"{\n  \"format\": \"standard-v1\",\n  \"leafEncoding\": [\n    \"uint256\",\n    \"bytes32\"\n  ],\n  \"tree\": [\n",
        )?;
        let mut first = true;
        for level in &mut self.levels {
            for _ in 0..level.len() {
                let h = level.next()?;
                w.write_all(if first { b"    " } else { b",\n    " })?;
                first = false;
                w.write_all(quoted_hex(h.as_slice(), &mut hexbuf))?;
            }
        }
        w.write_all(b"\n  ],\n  \"values\": [\n")?;
        let mut digests = BufReader::with_capacity(1 << 16, &self.digests);
        let mut index = 0u64;
        for bucket in &self.buckets {
            let len = self.bucket_len.min(self.n - index);
            let tree_index = Self::bucket_in_order(bucket, index, len)?;
            for ti in tree_index {
                let mut d = [0u8; 32];
                digests.read_exact(&mut d)?;
                w.write_all(if index == 0 {
                    b"    {\n      \"value\": [\n        \""
                } else {
                    b",\n    {\n      \"value\": [\n        \""
                })?;
                write!(w, "{index}\",\n        ")?;
                w.write_all(quoted_hex(&d, &mut hexbuf))?;
                write!(w, "\n      ],\n      \"treeIndex\": {ti}\n    }}")?;
                index += 1;
            }
        }
        w.write_all(b"\n  ]\n}\n")?;
        w.flush()
    }

    /// The heap indices of records `first .. first+len`, in record order,
    /// from their bucket.
    fn bucket_in_order(bucket: &File, first: u64, len: u64) -> io::Result<Vec<u64>> {
        let mut out = vec![u64::MAX; len as usize];
        let mut r = BufReader::with_capacity(1 << 16, bucket);
        let mut pair = [0u8; 16];
        loop {
            match r.read_exact(&mut pair) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let (i, t) = pair.split_at(8);
            let i = u64::from_le_bytes(i.try_into().map_err(io::Error::other)?);
            let t = u64::from_le_bytes(t.try_into().map_err(io::Error::other)?);
            let slot = i
                .checked_sub(first)
                .and_then(|k| out.get_mut(k as usize))
                .filter(|s| **s == u64::MAX)
                .ok_or_else(|| io::Error::other("tree dump: a record index out of its bucket"))?;
            *slot = t;
        }
        if out.contains(&u64::MAX) {
            return Err(io::Error::other(
                "tree dump: a record without its tree index",
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::StandardTree;
    use super::*;
    use alloy_primitives::keccak256;

    fn leaves(n: u64, salt: u8) -> Vec<B256> {
        (0..n)
            .map(|i| keccak256([&i.to_be_bytes()[..], &[salt]].concat()))
            .collect()
    }

    fn reference_root(ls: &[B256]) -> B256 {
        let digests: Vec<[u8; 32]> = ls.iter().map(|l| l.0).collect();
        StandardTree::from_indexed_digests(digests, ls.to_vec())
            .unwrap()
            .root()
    }

    #[test]
    fn the_root_equals_the_in_memory_tree_for_every_shape_and_run_size() {
        for n in (1..=70).chain([127, 128, 129, 255, 256, 257, 1000, 1023, 1025]) {
            let ls = leaves(n, 1);
            let want = reference_root(&ls);
            for run in [2usize, 3, 7, 64, 1 << 20] {
                let mut s = if run == 3 {
                    // Levels on disk, hashed 2 pairs at a time on 2 threads.
                    LeafSorter::with_limits(
                        run,
                        Limits {
                            mem_level: 2,
                            threads: 2,
                            step: 2,
                            parallel_from: 1,
                        },
                    )
                } else if run == 7 {
                    // Steps of 5 pairs over 3 threads (uneven splits).
                    LeafSorter::with_limits(
                        run,
                        Limits {
                            mem_level: 8,
                            threads: 3,
                            step: 5,
                            parallel_from: 1,
                        },
                    )
                } else {
                    LeafSorter::with_run_leaves(run)
                };
                for l in &ls {
                    s.push(*l).unwrap();
                }
                if run < n as usize {
                    assert!(s.spilled_runs() > 0);
                }
                assert_eq!(s.root().unwrap(), Some(want), "n {n}, run {run}");
            }
        }
        assert_eq!(LeafSorter::default().root().unwrap(), None);
    }

    #[test]
    fn levels_spill_to_disk_beyond_the_memory_bound_with_the_same_root() {
        // More than MEM_LEVEL leaves at the deepest level, runs of 100k.
        let n = MEM_LEVEL * 2 + 12_345;
        let ls = leaves(n, 2);
        let want = reference_root(&ls);
        let mut s = LeafSorter::with_run_leaves(100_000);
        for l in &ls {
            s.push(*l).unwrap();
        }
        assert_eq!(s.root().unwrap(), Some(want));
    }
    fn dataset_records(n: u64, salt: u8) -> (Vec<[u8; 32]>, Vec<B256>) {
        let digests: Vec<[u8; 32]> = (0..n)
            .map(|i| keccak256([&i.to_be_bytes()[..], &[salt]].concat()).0)
            .collect();
        let leaves = digests
            .iter()
            .enumerate()
            .map(|(i, d)| super::super::leaf_hash(&super::super::uint_word(i as u64), d))
            .collect();
        (digests, leaves)
    }

    /// serde_json's pretty printing of a dump with its keys in the order
    /// OpenZeppelin writes them (a `Value` map may sort them, depending on
    /// serde_json's features in the build).
    fn pretty_in_openzeppelin_order(dump: &serde_json::Value) -> String {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            value: &'a serde_json::Value,
            #[serde(rename = "treeIndex")]
            tree_index: &'a serde_json::Value,
        }
        #[derive(serde::Serialize)]
        struct Dump<'a> {
            format: &'a serde_json::Value,
            #[serde(rename = "leafEncoding")]
            leaf_encoding: &'a serde_json::Value,
            tree: &'a serde_json::Value,
            values: Vec<Entry<'a>>,
        }
        let values = dump["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Entry {
                value: &v["value"],
                tree_index: &v["treeIndex"],
            })
            .collect();
        let d = Dump {
            format: &dump["format"],
            leaf_encoding: &dump["leafEncoding"],
            tree: &dump["tree"],
            values,
        };
        serde_json::to_string_pretty(&d).unwrap() + "\n"
    }

    #[test]
    fn the_streamed_dump_is_the_in_memory_trees_dump_for_every_shape() {
        for n in (1..=40).chain([63, 64, 65, 127, 128, 129, 300]) {
            let (digests, leaves) = dataset_records(n, 3);
            let reference =
                StandardTree::from_indexed_digests(digests.clone(), leaves.clone()).unwrap();
            let want = reference.dump();
            let want_text = pretty_in_openzeppelin_order(&want);
            let limits: [(usize, u64); 3] = if n <= 40 {
                [(2, 1), (7, 4), (DEFAULT_RUN_LEAVES, MEM_LEVEL)]
            } else {
                [(16, 8), (64, 2), (DEFAULT_RUN_LEAVES, MEM_LEVEL)]
            };
            for (run, mem) in limits {
                let limits = Limits {
                    mem_level: mem,
                    threads: 3,
                    step: (mem as usize).clamp(1, 5),
                    parallel_from: 1,
                };
                let mut s = DumpSpill::with_limits(run, limits).unwrap();
                for (d, l) in digests.iter().zip(&leaves) {
                    s.push(d, *l).unwrap();
                }
                assert_eq!(s.len(), n);
                let tree = s.finish().unwrap().unwrap();
                assert_eq!(tree.root(), reference.root(), "n {n}, run {run}, mem {mem}");
                let mut out = Vec::new();
                tree.write_dump(&mut out).unwrap();
                let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(got, want, "n {n}, run {run}, mem {mem}");
                assert_eq!(StandardTree::load(&got).unwrap().root(), reference.root());
                assert_eq!(String::from_utf8(out).unwrap(), want_text, "n {n}");
            }
        }
        assert!(DumpSpill::new().unwrap().finish().unwrap().is_none());
    }
}
