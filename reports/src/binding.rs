//! Evidence binding (DESIGN §3): the 64-byte `report_data` a node asks its TEE
//! to sign is `SHA-512("sealroom.node.v1" || signing_pk || hpke_pk || manifest_hash)`.
//! Verifiers recompute it and compare all 64 bytes.

use sealroom_protocol::hash::sha512_concat;

/// Domain tag of the binding.
pub const NODE_BINDING_DOMAIN: &[u8] = b"sealroom.node.v1";

/// The expected `report_data` for a node's keys and a manifest.
pub fn expected_report_data(
    signing_pk: &[u8; 32],
    hpke_pk: &[u8; 32],
    manifest_hash: &[u8; 32],
) -> [u8; 64] {
    sha512_concat(&[NODE_BINDING_DOMAIN, signing_pk, hpke_pk, manifest_hash])
}

/// Domain of the GPU nonce derivation.
pub const GPU_NONCE_DOMAIN: &[u8] = b"sealroom.gpu-nonce.v1";

/// The GPU nonce a node asks for, derived from its CPU evidence's
/// `report_data` (DESIGN §4): SHA-256(domain ‖ report_data). Binding the GPU
/// report to the same keys and manifest as the CPU evidence.
pub fn gpu_nonce_for(report_data: &[u8]) -> [u8; 32] {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, GPU_NONCE_DOMAIN);
    sha2::Digest::update(&mut h, report_data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&sha2::Digest::finalize(h));
    out
}

/// The digest of node evidence that grants and reports name
/// (`evidenceHash`): `keccak256` of the evidence bytes as registered.
pub fn evidence_hash(evidence: &[u8]) -> alloy_primitives::B256 {
    alloy_primitives::keccak256(evidence)
}

/// The digest of a node's evidence that reports (`evidenceHash`) and grants
/// name: `keccak256(cpu)` for CPU evidence alone (as [`evidence_hash`]);
/// with GPU evidence composed in, `keccak256(keccak256(cpu) ‖
/// keccak256(gpu))` (the ABI encoding of the two `bytes32`), so neither can
/// be swapped without changing it.
pub fn node_evidence_hash(cpu: &[u8], gpu: Option<&[u8]>) -> alloy_primitives::B256 {
    match gpu {
        None => evidence_hash(cpu),
        Some(gpu) => {
            let mut both = [0u8; 64];
            both[..32].copy_from_slice(alloy_primitives::keccak256(cpu).as_slice());
            both[32..].copy_from_slice(alloy_primitives::keccak256(gpu).as_slice());
            alloy_primitives::keccak256(both)
        }
    }
}

/// [`node_evidence_hash`] of a registration.
pub fn registration_evidence_hash(
    reg: &sealroom_protocol::api::NodeRegistration,
) -> alloy_primitives::B256 {
    node_evidence_hash(
        &reg.evidence,
        reg.gpu.as_ref().map(|g| g.evidence.as_slice()),
    )
}

/// Constant-shape comparison of all 64 bytes (no truncation, no padding).
pub fn report_data_matches(found: &[u8], expected: &[u8; 64]) -> bool {
    found.len() == 64
        && found
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composite_evidence_hash_covers_both_and_alone_is_unchanged() {
        assert_eq!(node_evidence_hash(b"cpu", None), evidence_hash(b"cpu"));
        let both = node_evidence_hash(b"cpu", Some(b"gpu"));
        assert_ne!(both, evidence_hash(b"cpu"));
        assert_ne!(both, node_evidence_hash(b"cpu", Some(b"gpv")));
        assert_ne!(both, node_evidence_hash(b"cpv", Some(b"gpu")));
        assert_ne!(both, node_evidence_hash(b"gpu", Some(b"cpu")));
    }

    #[test]
    fn binding_depends_on_every_input() {
        let base = expected_report_data(&[1; 32], &[2; 32], &[3; 32]);
        assert_ne!(base, expected_report_data(&[9; 32], &[2; 32], &[3; 32]));
        assert_ne!(base, expected_report_data(&[1; 32], &[9; 32], &[3; 32]));
        assert_ne!(base, expected_report_data(&[1; 32], &[2; 32], &[9; 32]));
        assert!(report_data_matches(&base, &base));
        assert!(!report_data_matches(&base[..63], &base));
        let mut other = base;
        other[63] ^= 1;
        assert!(!report_data_matches(&other, &base));
    }
}
