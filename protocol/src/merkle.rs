//! OpenZeppelin "standard" Merkle trees (`@openzeppelin/merkle-tree`,
//! format `standard-v1`), for leaves of two ABI words.
//!
//! Why this shape: a tree dumped here loads in OpenZeppelin's JavaScript
//! library and its proofs verify with `MerkleProof.verify` in Solidity, so a
//! party can prove inclusion with tools it already trusts.
//!
//! Algorithm (as OpenZeppelin specifies it): `leaf = keccak256(keccak256(abi.encode(values)))`;
//! leaves are sorted ascending by hash and laid out from the end of a
//! `2n-1` array; each inner node is `keccak256(sort(a, b))`.

use alloy_primitives::{keccak256, B256};
use serde::{Deserialize, Serialize};

/// The ABI type of a leaf's first word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WordType {
    /// `uint256` (dumped as a decimal string).
    Uint256,
    /// `bytes32` (dumped as 0x-hex).
    Bytes32,
}

impl WordType {
    fn abi_name(self) -> &'static str {
        match self {
            WordType::Uint256 => "uint256",
            WordType::Bytes32 => "bytes32",
        }
    }
}

/// Why a tree or proof was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MerkleError {
    /// OpenZeppelin trees cannot be empty.
    #[error("a Merkle tree needs at least one leaf")]
    Empty,
    /// A dump file does not have the expected shape.
    #[error("tree dump: {0}")]
    Dump(String),
    /// A leaf index outside the tree.
    #[error("no leaf at index {0}")]
    NoSuchLeaf(usize),
}

/// Hash of a leaf of two 32-byte ABI words.
pub fn leaf_hash(word0: &[u8; 32], word1: &[u8; 32]) -> B256 {
    let mut enc = [0u8; 64];
    enc[..32].copy_from_slice(word0);
    enc[32..].copy_from_slice(word1);
    keccak256(keccak256(enc))
}

/// The commutative inner-node hash.
pub fn hash_pair(a: &B256, b: &B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// Folds a proof up from a leaf hash; equals the root iff the proof is valid.
pub fn process_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof.iter().fold(leaf, |acc, sib| hash_pair(&acc, sib))
}

/// A standard tree over `(word0, word1)` leaves.
#[derive(Clone, Debug)]
pub struct StandardTree {
    types: [WordType; 2],
    tree: Vec<B256>,
    /// Leaves in insertion order, with their position in `tree`.
    values: Vec<([u8; 32], [u8; 32], usize)>,
}

impl StandardTree {
    /// Builds the tree over `leaves` (in their given order; that order is the
    /// leaf index used by [`StandardTree::proof`]).
    pub fn build(types: [WordType; 2], leaves: Vec<([u8; 32], [u8; 32])>) -> Result<Self, MerkleError> {
        if leaves.is_empty() {
            return Err(MerkleError::Empty);
        }
        let mut hashed: Vec<(B256, usize)> = leaves
            .iter()
            .enumerate()
            .map(|(i, (a, b))| (leaf_hash(a, b), i))
            .collect();
        hashed.sort_by(|x, y| x.0.cmp(&y.0));
        let n = hashed.len();
        let len = 2 * n - 1;
        let mut tree = vec![B256::ZERO; len];
        let mut tree_index = vec![0usize; n];
        for (leaf_pos, (h, value_index)) in hashed.iter().enumerate() {
            let ti = len - 1 - leaf_pos;
            tree[ti] = *h;
            tree_index[*value_index] = ti;
        }
        for i in (0..len - n).rev() {
            tree[i] = hash_pair(&tree[2 * i + 1], &tree[2 * i + 2]);
        }
        let values = leaves
            .into_iter()
            .zip(tree_index)
            .map(|((a, b), ti)| (a, b, ti))
            .collect();
        Ok(Self { types, tree, values })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.tree[0]
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: trees are never empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The leaf values at `index` (insertion order).
    pub fn value(&self, index: usize) -> Option<([u8; 32], [u8; 32])> {
        self.values.get(index).map(|(a, b, _)| (*a, *b))
    }

    /// The inclusion proof of the leaf inserted at `index`.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>, MerkleError> {
        let (_, _, mut i) = *self.values.get(index).ok_or(MerkleError::NoSuchLeaf(index))?;
        let mut proof = Vec::new();
        while i > 0 {
            let sibling = if i % 2 == 1 { i + 1 } else { i - 1 };
            proof.push(self.tree[sibling]);
            i = (i - 1) / 2;
        }
        Ok(proof)
    }

    /// The `StandardMerkleTree.dump()` JSON object.
    pub fn dump(&self) -> serde_json::Value {
        let word = |t: WordType, w: &[u8; 32]| -> serde_json::Value {
            match t {
                WordType::Bytes32 => serde_json::Value::String(format!("0x{}", hex::encode(w))),
                WordType::Uint256 => {
                    serde_json::Value::String(alloy_primitives::U256::from_be_bytes(*w).to_string())
                }
            }
        };
        serde_json::json!({
            "format": "standard-v1",
            "leafEncoding": [self.types[0].abi_name(), self.types[1].abi_name()],
            "tree": self.tree.iter().map(|h| format!("{h:#x}")).collect::<Vec<_>>(),
            "values": self.values.iter().map(|(a, b, ti)| serde_json::json!({
                "value": [word(self.types[0], a), word(self.types[1], b)],
                "treeIndex": ti,
            })).collect::<Vec<_>>(),
        })
    }

    /// Loads a dump and checks it fully: every inner node is recomputed and
    /// every value's leaf hash must sit at its `treeIndex`.
    pub fn load(dump: &serde_json::Value) -> Result<Self, MerkleError> {
        let bad = |m: &str| MerkleError::Dump(m.to_string());
        if dump.get("format").and_then(|v| v.as_str()) != Some("standard-v1") {
            return Err(bad("`format` must be \"standard-v1\""));
        }
        let enc = dump
            .get("leafEncoding")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad("missing `leafEncoding`"))?;
        let parse_type = |v: &serde_json::Value| match v.as_str() {
            Some("uint256") => Ok(WordType::Uint256),
            Some("bytes32") => Ok(WordType::Bytes32),
            _ => Err(bad("`leafEncoding` supports uint256 and bytes32 words only")),
        };
        if enc.len() != 2 {
            return Err(bad("`leafEncoding` must have two entries"));
        }
        let types = [parse_type(&enc[0])?, parse_type(&enc[1])?];
        let tree: Vec<B256> = dump
            .get("tree")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad("missing `tree`"))?
            .iter()
            .map(|h| h.as_str().and_then(|s| s.parse::<B256>().ok()).ok_or_else(|| bad("`tree` entries must be bytes32 hex")))
            .collect::<Result<_, _>>()?;
        let vals = dump
            .get("values")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad("missing `values`"))?;
        if vals.is_empty() || tree.len() != 2 * vals.len() - 1 {
            return Err(bad("`tree` length must be 2 * values - 1"));
        }
        let parse_word = |t: WordType, v: &serde_json::Value| -> Result<[u8; 32], MerkleError> {
            let s = v.as_str().ok_or_else(|| bad("values must be strings"))?;
            match t {
                WordType::Bytes32 => s.parse::<B256>().map(|b| b.0).map_err(|_| bad("bad bytes32 value")),
                WordType::Uint256 => s
                    .parse::<alloy_primitives::U256>()
                    .map(|u| u.to_be_bytes::<32>())
                    .map_err(|_| bad("bad uint256 value")),
            }
        };
        let mut values = Vec::with_capacity(vals.len());
        for v in vals {
            let pair = v.get("value").and_then(|x| x.as_array()).ok_or_else(|| bad("value missing"))?;
            if pair.len() != 2 {
                return Err(bad("each value must have two words"));
            }
            let a = parse_word(types[0], &pair[0])?;
            let b = parse_word(types[1], &pair[1])?;
            let ti = v
                .get("treeIndex")
                .and_then(|x| x.as_u64())
                .ok_or_else(|| bad("treeIndex missing"))? as usize;
            if ti >= tree.len() || ti < vals.len() - 1 || tree[ti] != leaf_hash(&a, &b) {
                return Err(bad("a value's hash does not sit at its treeIndex"));
            }
            values.push((a, b, ti));
        }
        for i in 0..vals.len() - 1 {
            if tree[i] != hash_pair(&tree[2 * i + 1], &tree[2 * i + 2]) {
                return Err(bad("an inner node does not match its children"));
            }
        }
        Ok(Self { types, tree, values })
    }
}

/// A `uint256` word from a `u64`.
pub fn uint_word(v: u64) -> [u8; 32] {
    alloy_primitives::U256::from(v).to_be_bytes::<32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root and proof computed by `@openzeppelin/merkle-tree` 1.0.8:
    /// `StandardMerkleTree.of([["0","0x11..11"],["1","0x22..22"],["2","0x33..33"]], ["uint256","bytes32"])`.
    #[test]
    fn matches_openzeppelin_vectors() {
        let leaves = vec![
            (uint_word(0), [0x11; 32]),
            (uint_word(1), [0x22; 32]),
            (uint_word(2), [0x33; 32]),
        ];
        let t = StandardTree::build([WordType::Uint256, WordType::Bytes32], leaves).unwrap();
        assert_eq!(
            format!("{:#x}", t.root()),
            "0x7c9d8649b3b1888e11398f6acddf8f4ec0a9e9d700b324808faf5455283273a1"
        );
        let p = t.proof(1).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            format!("{:#x}", p[0]),
            "0x7a61af1dbcd683a1da0bdfc13ca8bdf2d60f98e8a9a6afeac1daa41e2d3600f3"
        );
        let d = t.dump();
        assert_eq!(d["values"][0]["treeIndex"], 4);
        assert_eq!(d["values"][1]["treeIndex"], 2);
        assert_eq!(d["values"][0]["value"][0], "0");
        for i in 0..3 {
            let (a, b) = t.value(i).unwrap();
            assert_eq!(process_proof(leaf_hash(&a, &b), &t.proof(i).unwrap()), t.root());
        }
        let again = StandardTree::load(&d).unwrap();
        assert_eq!(again.root(), t.root());
    }

    #[test]
    fn load_rejects_tampered_dump() {
        let leaves = (0..5u64).map(|i| (uint_word(i), [i as u8; 32])).collect();
        let t = StandardTree::build([WordType::Uint256, WordType::Bytes32], leaves).unwrap();
        let mut d = t.dump();
        d["values"][2]["value"][1] = serde_json::Value::String(format!("0x{}", "ff".repeat(32)));
        assert!(StandardTree::load(&d).is_err());
        assert_eq!(StandardTree::build([WordType::Uint256, WordType::Bytes32], vec![]).unwrap_err(), MerkleError::Empty);
    }

    #[test]
    fn single_leaf_tree() {
        let t = StandardTree::build([WordType::Uint256, WordType::Bytes32], vec![(uint_word(0), [7; 32])]).unwrap();
        assert_eq!(t.root(), leaf_hash(&uint_word(0), &[7; 32]));
        assert!(t.proof(0).unwrap().is_empty());
    }
}
