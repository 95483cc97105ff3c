//! Report batches: many signed reports (of any sessions) published in one
//! transaction under one Merkle root (`publishBatch`), the amortised mode
//! of docs/chain.md.
//!
//! The leaves are OpenZeppelin standard-tree leaves over `(bytes32
//! sessionId, bytes32 keccak256(report))`, so a report's inclusion checks
//! offline ([`ReportBatch::proves`]) and in the EVM (`verifyInclusion`), and
//! OpenZeppelin's library loads the tree's dump. The calldata is
//! `abi.encode((bytes32 sessionId, bytes report, bytes signature)[])`: the
//! chain holds every byte a verifier needs to recompute the root, check
//! each signature and the links between a session's reports.

use alloy_primitives::{keccak256, Bytes, B256};
use alloy_sol_types::SolValue;
use sealroom_protocol::merkle::{leaf_hash, process_proof, StandardTree, WordType};
use sealroom_reports::report::IntegrityReport;

/// One report of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    /// `abi.encode(report)`.
    pub report: Vec<u8>,
    /// The node's ed25519 signature over the report hash.
    pub signature: Vec<u8>,
}

impl BatchEntry {
    /// An entry from a decoded report and its signature.
    pub fn new(report: &IntegrityReport, signature: &[u8]) -> Self {
        Self {
            report: report.abi_bytes(),
            signature: signature.to_vec(),
        }
    }

    /// The session the report names (its third ABI word), zero when the
    /// bytes are too short to be a report.
    pub fn session_id(&self) -> B256 {
        self.report
            .get(64..96)
            .map(B256::from_slice)
            .unwrap_or(B256::ZERO)
    }

    /// `keccak256(report)`.
    pub fn report_hash(&self) -> B256 {
        keccak256(&self.report)
    }

    /// The entry's standard-tree leaf hash.
    pub fn leaf(&self) -> B256 {
        leaf_hash(&self.session_id().0, &self.report_hash().0)
    }
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// No report.
    #[error("a batch needs at least one report")]
    Empty,
    /// The calldata is not the batch encoding.
    #[error("batch calldata: {0}")]
    Decode(String),
    /// The tree could not be built.
    #[error("batch tree: {0}")]
    Tree(String),
}

/// A batch of reports and its tree.
#[derive(Clone, Debug)]
pub struct ReportBatch {
    entries: Vec<BatchEntry>,
    tree: StandardTree,
}

impl ReportBatch {
    /// A batch of `entries` (in publication order; that order is each
    /// report's index for [`ReportBatch::proof`]).
    pub fn new(entries: Vec<BatchEntry>) -> Result<Self, BatchError> {
        if entries.is_empty() {
            return Err(BatchError::Empty);
        }
        let leaves = entries
            .iter()
            .map(|e| (e.session_id().0, e.report_hash().0))
            .collect();
        let tree = StandardTree::build([WordType::Bytes32, WordType::Bytes32], leaves)
            .map_err(|e| BatchError::Tree(e.to_string()))?;
        Ok(Self { entries, tree })
    }

    /// The reports, in order.
    pub fn entries(&self) -> &[BatchEntry] {
        &self.entries
    }

    /// The tree (dump it for OpenZeppelin's library with `tree().dump()`).
    pub fn tree(&self) -> &StandardTree {
        &self.tree
    }

    /// The root `publishBatch` records.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The inclusion proof of report `index`.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>, BatchError> {
        self.tree
            .proof(index)
            .map_err(|e| BatchError::Tree(e.to_string()))
    }

    /// Whether `entry` is under `root` by `proof` (offline).
    pub fn proves(root: B256, entry: &BatchEntry, proof: &[B256]) -> bool {
        process_proof(entry.leaf(), proof) == root
    }

    /// The `reports` calldata argument of `publishBatch`.
    pub fn encode(&self) -> Bytes {
        let v: Vec<(B256, Bytes, Bytes)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    e.session_id(),
                    Bytes::copy_from_slice(&e.report),
                    Bytes::copy_from_slice(&e.signature),
                )
            })
            .collect();
        v.abi_encode().into()
    }

    /// A batch from `publishBatch`'s `reports` argument, as read back from
    /// the chain; each entry's session id must be the one its report names.
    pub fn decode(data: &[u8]) -> Result<Self, BatchError> {
        let v = <Vec<(B256, Bytes, Bytes)>>::abi_decode(data)
            .map_err(|e| BatchError::Decode(e.to_string()))?;
        let mut entries = Vec::with_capacity(v.len());
        for (i, (session, report, signature)) in v.into_iter().enumerate() {
            let e = BatchEntry {
                report: report.to_vec(),
                signature: signature.to_vec(),
            };
            if e.session_id() != session {
                return Err(BatchError::Decode(format!(
                    "entry {i} claims session {session}, its report names {}",
                    e.session_id()
                )));
            }
            entries.push(e);
        }
        Self::new(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain as _;
    use crate::gas::{filler, realistic_report};
    use sealroom_reports::report::ReportKind;

    fn batch(n: usize) -> ReportBatch {
        let sig = filler("sig", 64);
        let entries = (0..n)
            .map(|i| {
                let s = keccak256(format!("session {i}").as_bytes());
                let kind = if i % 2 == 0 {
                    ReportKind::Opened
                } else {
                    ReportKind::Completed
                };
                BatchEntry::new(
                    &realistic_report(s, keccak256(b"m"), kind, B256::ZERO, b"ev"),
                    &sig,
                )
            })
            .collect();
        ReportBatch::new(entries).unwrap()
    }

    #[test]
    fn every_report_proves_under_the_root_and_the_calldata_round_trips() {
        let b = batch(10);
        for (i, e) in b.entries().iter().enumerate() {
            let proof = b.proof(i).unwrap();
            assert!(ReportBatch::proves(b.root(), e, &proof));
            let mut altered = e.clone();
            altered.report[200] ^= 1;
            assert!(!ReportBatch::proves(b.root(), &altered, &proof));
        }
        let back = ReportBatch::decode(&b.encode()).unwrap();
        assert_eq!(back.root(), b.root());
        assert_eq!(back.entries(), b.entries());
        assert!(ReportBatch::new(vec![]).is_err());
        assert!(ReportBatch::decode(b"not a batch").is_err());
    }

    #[test]
    fn a_published_batch_proves_each_report_in_the_evm_and_is_sent_once() {
        let dir = tempfile::tempdir().unwrap();
        let chain = crate::EmbeddedChain::open(dir.path()).unwrap();
        crate::block_on(async {
            let (registry, _) = crate::Registry::deploy(&chain, 1).await.unwrap();
            let b = batch(10);
            assert_eq!(registry.batch_block(b.root()).await.unwrap(), None);
            let out = registry.publish_batch(&b).await.unwrap();
            assert!(!out.already_published);
            assert_eq!(
                registry.batch_block(b.root()).await.unwrap(),
                Some(out.block_number)
            );
            for (i, e) in b.entries().iter().enumerate() {
                let proof = b.proof(i).unwrap();
                assert!(registry
                    .verify_inclusion(b.root(), e.leaf(), &proof)
                    .await
                    .unwrap());
                let mut other = e.clone();
                other.report[300] ^= 1;
                assert!(!registry
                    .verify_inclusion(b.root(), other.leaf(), &proof)
                    .await
                    .unwrap());
            }
            // Idempotent: the same root is not sent again; the original
            // transaction comes back.
            let again = registry.publish_batch(&b).await.unwrap();
            assert!(again.already_published);
            assert_eq!(again.tx_hash, out.tx_hash);
            assert_eq!(again.gas_used, out.gas_used);
            // The calldata on chain decodes back to the same batch.
            let tx = chain.transaction(out.tx_hash).await.unwrap().unwrap();
            let call =
                <crate::SessionRegistry::publishBatchCall as alloy_sol_types::SolCall>::abi_decode(
                    &tx.input,
                )
                .unwrap();
            assert_eq!(ReportBatch::decode(&call.reports).unwrap().root(), b.root());
        })
        .unwrap();
    }
}
