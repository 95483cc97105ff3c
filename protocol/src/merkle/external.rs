//! The root of a standard tree over more leaves than fit in memory.
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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use alloy_primitives::B256;

use super::hash_pair;

/// Leaves held in memory before a run is sorted and spilled: 1 Mi leaves,
/// 32 MiB.
pub const DEFAULT_RUN_LEAVES: usize = 1 << 20;

/// Collects leaf hashes, spilling sorted runs to temporary files, and
/// computes the standard tree's root from them.
pub struct LeafSorter {
    buf: Vec<B256>,
    runs: Vec<File>,
    run_leaves: usize,
    count: u64,
}

impl Default for LeafSorter {
    fn default() -> Self {
        Self::with_run_leaves(DEFAULT_RUN_LEAVES)
    }
}

impl std::fmt::Debug for LeafSorter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafSorter")
            .field("count", &self.count)
            .field("runs", &self.runs.len())
            .finish()
    }
}

impl LeafSorter {
    /// A sorter spilling every `run_leaves` leaves (at least 2).
    pub fn with_run_leaves(run_leaves: usize) -> Self {
        let run_leaves = run_leaves.max(2);
        Self {
            buf: Vec::with_capacity(run_leaves.min(DEFAULT_RUN_LEAVES)),
            runs: Vec::new(),
            run_leaves,
            count: 0,
        }
    }

    /// Leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Runs spilled to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds one leaf hash.
    pub fn push(&mut self, leaf: B256) -> io::Result<()> {
        self.buf.push(leaf);
        self.count += 1;
        if self.buf.len() >= self.run_leaves {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the buffer descending and writes it to a new run file.
    fn spill(&mut self) -> io::Result<()> {
        self.buf.sort_unstable_by(|a, b| b.cmp(a));
        let mut w = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for leaf in &self.buf {
            w.write_all(leaf.as_slice())?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.rewind()?;
        self.runs.push(f);
        self.buf.clear();
        Ok(())
    }

    /// The root of the standard tree over every leaf pushed; `None` when
    /// there is none.
    pub fn root(mut self) -> io::Result<Option<B256>> {
        let n = self.count;
        if n == 0 {
            return Ok(None);
        }
        self.buf.sort_unstable_by(|a, b| b.cmp(a));
        let mut merged = Merge::new(std::mem::take(&mut self.buf), self.runs)?;
        root_from_descending(n, &mut || merged.next()).map(Some)
    }
}

/// A k-way merge of descending runs (files and one in-memory run).
struct Merge {
    readers: Vec<BufReader<File>>,
    mem: std::vec::IntoIter<B256>,
    heap: BinaryHeap<(B256, Reverse<usize>)>,
}

impl Merge {
    /// Source `readers.len()` is the in-memory run.
    fn new(mem: Vec<B256>, runs: Vec<File>) -> io::Result<Self> {
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

    fn pull(&mut self, src: usize) -> io::Result<Option<B256>> {
        if src == self.readers.len() {
            return Ok(self.mem.next());
        }
        let mut b = [0u8; 32];
        match self.readers[src].read_exact(&mut b) {
            Ok(()) => Ok(Some(B256::from(b))),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn next(&mut self) -> io::Result<B256> {
        let (h, Reverse(src)) = self
            .heap
            .pop()
            .ok_or_else(|| io::Error::other("leaf runs ended early"))?;
        if let Some(next) = self.pull(src)? {
            self.heap.push((next, Reverse(src)));
        }
        Ok(h)
    }
}

/// Nodes of one heap level, in index order: in memory while small, else in
/// a temporary file.
enum Level {
    Mem(Vec<B256>),
    Disk(BufWriter<File>),
}

/// Levels of at most this many nodes stay in memory (8 MiB).
const MEM_LEVEL: u64 = 1 << 18;

impl Level {
    fn new(expected: u64) -> io::Result<Self> {
        Ok(if expected <= MEM_LEVEL {
            Level::Mem(Vec::with_capacity(expected as usize))
        } else {
            Level::Disk(BufWriter::with_capacity(1 << 16, tempfile::tempfile()?))
        })
    }

    fn push(&mut self, h: B256) -> io::Result<()> {
        match self {
            Level::Mem(v) => {
                v.push(h);
                Ok(())
            }
            Level::Disk(w) => w.write_all(h.as_slice()),
        }
    }

    /// A sequential reader of the level.
    fn into_reader(self) -> io::Result<LevelReader> {
        Ok(match self {
            Level::Mem(v) => LevelReader::Mem(v.into_iter()),
            Level::Disk(w) => {
                let mut f = w.into_inner().map_err(|e| e.into_error())?;
                f.rewind()?;
                LevelReader::Disk(BufReader::with_capacity(1 << 16, f))
            }
        })
    }
}

enum LevelReader {
    Mem(std::vec::IntoIter<B256>),
    Disk(BufReader<File>),
}

impl LevelReader {
    fn next(&mut self) -> io::Result<B256> {
        match self {
            LevelReader::Mem(it) => it
                .next()
                .ok_or_else(|| io::Error::other("tree level ended early")),
            LevelReader::Disk(r) => {
                let mut b = [0u8; 32];
                r.read_exact(&mut b)?;
                Ok(B256::from(b))
            }
        }
    }
}

/// The root of the heap over `n ≥ 1` leaves given in descending order
/// (= heap indices `n-1 ..= 2n-2` in ascending order).
fn root_from_descending(n: u64, next: &mut dyn FnMut() -> io::Result<B256>) -> io::Result<B256> {
    if n == 1 {
        return next();
    }
    let len = 2 * n - 1;
    // The deepest level D starts at 2^D - 1, the largest such index ≤ len - 1;
    // it holds only leaves, and level D-1 ends with the other leaves.
    let deep_start = (1u64 << (63 - len.leading_zeros())) - 1;
    let upper_leaves = deep_start - (n - 1);
    let mut leaves_above = Level::new(upper_leaves)?;
    for _ in 0..upper_leaves {
        leaves_above.push(next()?)?;
    }
    let deep = len - deep_start;
    let mut inner = Level::new(deep / 2)?;
    for _ in 0..deep / 2 {
        let a = next()?;
        let b = next()?;
        inner.push(hash_pair(&a, &b))?;
    }
    // Level D-1: its inner nodes, then its leaves.
    let mut width = deep / 2 + upper_leaves;
    let mut first = inner.into_reader()?;
    let mut second = leaves_above.into_reader()?;
    let mut from_first = deep / 2;
    let read = move || -> io::Result<B256> {
        if from_first > 0 {
            from_first -= 1;
            first.next()
        } else {
            second.next()
        }
    };
    let mut current: Box<dyn FnMut() -> io::Result<B256>> = Box::new(read);
    while width > 1 {
        let mut up = Level::new(width / 2)?;
        for _ in 0..width / 2 {
            let a = current()?;
            let b = current()?;
            up.push(hash_pair(&a, &b))?;
        }
        width /= 2;
        let mut r = up.into_reader()?;
        current = Box::new(move || r.next());
    }
    current()
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
                let mut s = LeafSorter::with_run_leaves(run);
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
}
