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
    #[sol(extra_derives(Debug, PartialEq, Eq, Default))]
    "../contracts/src/IntegrityReport.sol"
);

/// The report format version this code writes and accepts (2: with the
/// privacy account).
pub const REPORT_VERSION: u8 = 2;

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

    /// From the lower-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "opened" => Some(Self::Opened),
            "completed" => Some(Self::Completed),
            "aborted" => Some(Self::Aborted),
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

    /// Decodes `abi.encode(report)` bytes, strictly: the bytes must be
    /// exactly the canonical encoding of the report they decode to
    /// (re-encoding gives the input back byte for byte). Trailing bytes,
    /// dirty padding (a non-zero byte in the unused part of a `bool`,
    /// `uint8` or `uint64` word, or after a string's last byte), unusual
    /// offsets and truncated data are all refused, so two different byte
    /// strings never pass as the same report and every hash taken over the
    /// supplied bytes is the hash of the report as decoded.
    pub fn from_abi_bytes(bytes: &[u8]) -> Result<Self, alloy_sol_types::Error> {
        let report = <Self as SolValue>::abi_decode(bytes)?;
        let canonical = report.abi_encode();
        if canonical != bytes {
            let at = canonical
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(canonical.len().min(bytes.len()));
            return Err(alloy_sol_types::Error::custom(format!(
                "not the canonical ABI encoding of an IntegrityReport: {} bytes given, the report they decode to re-encodes to {} bytes; first difference at byte {at} ({})",
                bytes.len(),
                canonical.len(),
                where_in_encoding(at, canonical.len())
            )));
        }
        Ok(report)
    }

    /// `keccak256(abi.encode(report))`.
    pub fn report_hash(&self) -> B256 {
        keccak256(self.abi_bytes())
    }
}

/// The fields of [`IntegrityReport`] in encoding order.
const FIELDS: [&str; 28] = [
    "version",
    "kind",
    "sessionId",
    "manifestHash",
    "inputsRoot",
    "prevReportHash",
    "nodeKey",
    "nodeHpkeKey",
    "evidenceHash",
    "teeKind",
    "insecureSimulation",
    "modelHash",
    "sealedModelHash",
    "ownerKey",
    "trainingSummaryHash",
    "seed",
    "dataOrderCommitment",
    "inputsWiped",
    "abortCode",
    "abortReason",
    "timestamp",
    "privacy.mechanism",
    "privacy.noiseMultiplier",
    "privacy.maxGradNorm",
    "privacy.sampleRate",
    "privacy.steps",
    "privacy.delta",
    "privacy.epsilon",
];

/// Names the part of a canonical encoding `at` falls in (for messages).
fn where_in_encoding(at: usize, canonical_len: usize) -> String {
    let word = at / 32;
    if at >= canonical_len {
        "past the end of the canonical encoding: trailing bytes".into()
    } else if word == 0 {
        "the struct's offset word".into()
    } else if let Some(f) = FIELDS.get(word - 1) {
        format!("the word of `{f}`")
    } else {
        "the `abortReason` string's length or bytes".into()
    }
}

/// The `completed` report's privacy account of a manifest: its committed
/// DP-SGD parameters, its schedule and the ε the accountant gives for them,
/// f64 values as their bit patterns (all zero without `[privacy]`). The
/// node writes it; the verifier recomputes and compares each field.
pub fn privacy_account(manifest: &sealroom_protocol::manifest::Manifest) -> PrivacyAccount {
    use sealroom_protocol::privacy::NoiseSource;
    let (Some(spec), Some(plan), Ok(spent)) = (
        &manifest.privacy,
        manifest.privacy_schedule(),
        manifest.privacy_spent(),
    ) else {
        return PrivacyAccount::default();
    };
    PrivacyAccount {
        mechanism: match spec.noise_source {
            NoiseSource::Tee => 1,
            NoiseSource::Seed => 2,
        },
        noiseMultiplier: spec.noise_multiplier.unwrap_or(0.0).to_bits(),
        maxGradNorm: spec.max_grad_norm.to_bits(),
        sampleRate: plan.sample_rate.to_bits(),
        steps: plan.steps,
        delta: spec.delta.to_bits(),
        epsilon: spent.epsilon.to_bits(),
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
            version: crate::report::REPORT_VERSION,
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
            privacy: Default::default(),
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

    /// Offset of the head word of field `i` (the struct is dynamic, so its
    /// encoding starts with one offset word, then the head).
    fn word(i: usize) -> usize {
        32 + 32 * i
    }

    #[test]
    fn decoding_is_strict_appended_bytes() {
        let bytes = sample().abi_bytes();
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0u8; 32]);
        let err = IntegrityReport::from_abi_bytes(&longer).unwrap_err();
        assert!(err.to_string().contains("canonical"), "{err}");
        assert!(err.to_string().contains("trailing bytes"), "{err}");
        let mut one = bytes.clone();
        one.push(0);
        assert!(IntegrityReport::from_abi_bytes(&one).is_err());
    }

    #[test]
    fn decoding_is_strict_dirty_padding() {
        let bytes = sample().abi_bytes();
        // Field 10 is `insecureSimulation` (bool), 1 is `kind` (uint8), 18
        // is `abortCode` (uint8), 15 is `seed` (uint64): a nibble set in the
        // padding of each word is refused, although a lax decoder reads the
        // same values.
        for (field, byte) in [(10, 0), (10, 30), (1, 0), (1, 30), (18, 5), (15, 23)] {
            let mut dirty = bytes.clone();
            dirty[word(field) + byte] |= 0x10;
            assert!(
                IntegrityReport::from_abi_bytes(&dirty).is_err(),
                "field {field} byte {byte} accepted"
            );
        }
        let mut dirty = bytes.clone();
        dirty[word(10)] = 0x01;
        let err = IntegrityReport::from_abi_bytes(&dirty)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`insecureSimulation`"), "{err}");
        // The untouched bytes still decode (the test is not vacuous).
        assert_eq!(IntegrityReport::from_abi_bytes(&bytes).unwrap(), sample());
    }

    #[test]
    fn decoding_is_strict_string_padding_and_truncation() {
        let mut r = sample();
        r.abortReason = "abc".into();
        let bytes = r.abi_bytes();
        assert_eq!(IntegrityReport::from_abi_bytes(&bytes).unwrap(), r);
        // The string's bytes are the last word: "abc" then 29 padding bytes.
        let mut dirty = bytes.clone();
        let n = dirty.len();
        dirty[n - 1] = 0x01;
        assert!(IntegrityReport::from_abi_bytes(&dirty).is_err());
        // Truncated anywhere: refused.
        for cut in [1, 31, 32, 200, n - 1] {
            assert!(
                IntegrityReport::from_abi_bytes(&bytes[..n - cut]).is_err(),
                "cut {cut}"
            );
        }
        assert!(IntegrityReport::from_abi_bytes(&[]).is_err());
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
