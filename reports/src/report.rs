//! The integrity report: one Solidity struct (declared in
//! `contracts/src/IntegrityReport.sol`), ABI-encoded with `alloy-sol-types`,
//! so Rust and the registry contract agree byte for byte.
//!
//! `report_hash = keccak256(abi.encode(report))`; the node signs
//! `"sealroom.report.v1" || report_hash` with its ed25519 key (the prefix keeps
//! a report signature from ever being valid for any other sealroom message).

use alloy_primitives::{keccak256, B256};
use alloy_sol_types::{sol, SolValue};

// The struct is declared once, in the registry's Solidity sources, and read
// here as a file (not a crate dependency: `reports` must stay free of the
// chain code), so the Rust and the Solidity encodings cannot drift apart.
sol!(
    #[sol(extra_derives(Debug, PartialEq, Eq))]
    "../contracts/src/IntegrityReport.sol"
);

/// Report kinds, as stored in [`IntegrityReport::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// All inputs matched their commitments; training is about to start.
    Opened = 1,
    /// Training finished; the model is sealed to the owner; inputs wiped.
    Completed = 2,
    /// The session stopped; `abortReason` says why.
    Aborted = 3,
}

impl ReportKind {
    /// From the on-chain code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Opened),
            2 => Some(Self::Completed),
            3 => Some(Self::Aborted),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
        }
    }
}

/// Domain prefix of report signatures.
pub const REPORT_SIGNATURE_DOMAIN: &[u8] = b"sealroom.report.v1";

impl IntegrityReport {
    /// `abi.encode(report)`.
    pub fn abi_bytes(&self) -> Vec<u8> {
        self.abi_encode()
    }

    /// Decodes `abi.encode(report)` bytes (strict: trailing or malformed data is refused).
    pub fn from_abi_bytes(bytes: &[u8]) -> Result<Self, alloy_sol_types::Error> {
        <Self as SolValue>::abi_decode(bytes)
    }

    /// `keccak256(abi.encode(report))`.
    pub fn report_hash(&self) -> B256 {
        keccak256(self.abi_bytes())
    }
}

/// The exact bytes the node signs for a report hash.
pub fn signing_message(report_hash: &B256) -> Vec<u8> {
    let mut m = Vec::with_capacity(REPORT_SIGNATURE_DOMAIN.len() + 32);
    m.extend_from_slice(REPORT_SIGNATURE_DOMAIN);
    m.extend_from_slice(report_hash.as_slice());
    m
}

/// Strictly verifies a report signature under `node_key`.
pub fn verify_report_signature(
    report: &IntegrityReport,
    node_key: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), sealroom_protocol::identity::IdentityError> {
    sealroom_protocol::identity::verify_strict(
        node_key,
        &signing_message(&report.report_hash()),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IntegrityReport {
        IntegrityReport {
            version: 1,
            kind: ReportKind::Opened as u8,
            sessionId: B256::repeat_byte(1),
            manifestHash: B256::repeat_byte(2),
            inputsRoot: B256::repeat_byte(3),
            prevReportHash: B256::ZERO,
            nodeKey: B256::repeat_byte(4),
            nodeHpkeKey: B256::repeat_byte(5),
            evidenceHash: B256::repeat_byte(6),
            teeKind: 3,
            insecureSimulation: true,
            modelHash: B256::ZERO,
            sealedModelHash: B256::ZERO,
            ownerKey: B256::repeat_byte(7),
            trainingSummaryHash: B256::ZERO,
            seed: 42,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: false,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: 1_700_000_000,
        }
    }

    #[test]
    fn abi_roundtrip_and_hash() {
        let r = sample();
        let bytes = r.abi_bytes();
        assert_eq!(IntegrityReport::from_abi_bytes(&bytes).unwrap(), r);
        let mut r2 = r.clone();
        r2.seed = 43;
        assert_ne!(r.report_hash(), r2.report_hash());
    }

    #[test]
    fn signature_binds_the_report() {
        let id = sealroom_protocol::identity::Identity::generate().unwrap();
        let r = sample();
        let sig = id.sign(&signing_message(&r.report_hash()));
        verify_report_signature(&r, &id.public().ed25519, &sig).unwrap();
        let mut r2 = r.clone();
        r2.inputsWiped = true;
        assert!(verify_report_signature(&r2, &id.public().ed25519, &sig).is_err());
    }
}
