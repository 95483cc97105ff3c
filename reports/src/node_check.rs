//! What a party runs before releasing its data key: verify the node's
//! evidence itself, against the policy it signed in the manifest, with the
//! binding to the node's keys and this manifest — never trusting the
//! coordinator's verdict.

use sealroom_protocol::api::NodeRegistration;
use sealroom_protocol::manifest::Manifest;

use crate::attest::{self, Failure, Inputs, Verdict};
use crate::binding::expected_report_data;

/// Verifies a registered node at `at` (Unix seconds) for `manifest`.
pub fn verify_registration(manifest: &Manifest, reg: &NodeRegistration, at: i64) -> Verdict {
    let decode = |h: &str| hex::decode(h.trim_start_matches("0x"));
    let certs: Result<Vec<Vec<u8>>, _> = reg.certs.iter().map(|c| decode(c)).collect();
    let certs = match certs {
        Ok(c) => c,
        Err(_) => {
            return Verdict::rejected(
                reg.kind,
                Failure::new("evidence.format", "a certificate is not hex"),
            )
        }
    };
    let collateral = match reg.collateral.as_deref().map(decode).transpose() {
        Ok(c) => c,
        Err(_) => {
            return Verdict::rejected(
                reg.kind,
                Failure::new("evidence.format", "collateral is not hex"),
            )
        }
    };
    let inputs = Inputs {
        evidence: reg.evidence.clone(),
        certs,
        collateral,
        at,
        expected_report_data: Some(expected_report_data(
            &reg.node_key,
            &reg.hpke_key,
            &manifest.hash().0,
        )),
        expected_nonce: None,
        gpu_reference: None,
    };
    if !manifest.policy.accepted_kinds.contains(&reg.kind) {
        return Verdict::rejected(
            reg.kind,
            Failure::new(
                "policy.kind",
                format!(
                    "{} evidence is not accepted by the manifest's policy",
                    reg.kind
                ),
            ),
        );
    }
    attest::verify(reg.kind, &inputs, &manifest.policy)
}
