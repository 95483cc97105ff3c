//! What a party runs before releasing its data key: verify the node's
//! evidence itself, against the policy it signed in the manifest, with the
//! binding to the node's keys and this manifest — never trusting the
//! coordinator's verdict.

use sealroom_protocol::api::NodeRegistration;
use sealroom_protocol::manifest::{Engine, ManifestHeader};

use crate::attest::{self, Failure, Inputs, Verdict};
use crate::binding::expected_report_data;
use crate::check::Check;

/// Verifies a registered node at `at` (Unix seconds) for the manifest whose
/// header is `manifest` (a member holds only the header and its own entry;
/// holders of the whole manifest pass [`sealroom_protocol::manifest::Manifest::header`]).
pub fn verify_registration(manifest: &ManifestHeader, reg: &NodeRegistration, at: i64) -> Verdict {
    verify_registration_under(manifest, &manifest.policy, reg, at)
}

/// [`verify_registration`] under another `policy` than the manifest's: a
/// member's own, stricter policy (`party agent --policy`). The evidence is
/// still bound to `manifest`'s hash; a member applies both this and the
/// manifest's policy, so its own can only narrow what the parties agreed.
pub fn verify_registration_under(
    manifest: &ManifestHeader,
    policy: &sealroom_protocol::policy::Policy,
    reg: &NodeRegistration,
    at: i64,
) -> Verdict {
    let manifest_hash = manifest.hash();
    let decode = |h: &str| hex::decode(h.trim_start_matches("0x"));
    let certs: Result<Vec<Vec<u8>>, _> = reg.certs.iter().map(|c| decode(c)).collect();
    let certs = match certs {
        Ok(c) => c,
        Err(_) => {
            return Verdict::rejected(
                reg.kind,
                Failure::new(Check::EvidenceFormat, "a certificate is not hex"),
            )
        }
    };
    let collateral = match reg.collateral.as_deref().map(decode).transpose() {
        Ok(c) => c,
        Err(_) => {
            return Verdict::rejected(
                reg.kind,
                Failure::new(Check::EvidenceFormat, "collateral is not hex"),
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
            &manifest_hash.0,
        )),
        expected_nonce: None,
        gpu_reference: None,
    };
    if !policy.accepted_kinds.contains(&reg.kind) {
        return Verdict::rejected(
            reg.kind,
            Failure::new(
                Check::PolicyKind,
                format!(
                    "{} evidence is not accepted by the manifest's policy",
                    reg.kind
                ),
            ),
        );
    }
    let cpu = attest::verify(reg.kind, &inputs, policy);
    let gpu = reg.gpu.as_ref().map(|g| {
        let rd = expected_report_data(&reg.node_key, &reg.hpke_key, &manifest_hash.0);
        crate::policy_eval::verify_registered_gpu(g, &rd, policy, at)
    });
    let verdict = crate::policy_eval::with_gpu(cpu, gpu.as_ref(), policy);
    if !verdict.verified {
        return verdict;
    }
    match attested_engine_check(&manifest.engine, reg, verdict.measurement.as_deref()) {
        Ok(()) => verdict,
        Err(f) => Verdict {
            verified: false,
            failure: Some(f),
            ..verdict
        },
    }
}

/// The attested measurement is the only measurement: the registration's
/// self-reported `engine_measurement` must equal the one the verified
/// evidence carries (`engine.measurement`), and the manifest's engine
/// allowlist applies to the attested value (`engine.allowlist`).
pub fn attested_engine_check(
    engine: &Engine,
    reg: &NodeRegistration,
    attested_hex: Option<&str>,
) -> Result<(), Failure> {
    let attested = attested_hex
        .map(|h| h.trim_start_matches("0x").to_ascii_lowercase())
        .ok_or_else(|| {
            Failure::new(
                Check::EngineMeasurement,
                "the evidence carries no launch measurement",
            )
        })?;
    let claimed = reg
        .engine_measurement
        .trim_start_matches("0x")
        .to_ascii_lowercase();
    if claimed != attested {
        return Err(Failure::new(
            Check::EngineMeasurement,
            format!("the registration claims {claimed}, the evidence attests {attested}"),
        ));
    }
    engine_allowed(engine, &attested)
}

/// The manifest's engine allowlist (empty = any) against an attested
/// measurement (hex).
pub fn engine_allowed(engine: &Engine, attested_hex: &str) -> Result<(), Failure> {
    let allowed = &engine.trainer_measurements;
    let attested = attested_hex.trim_start_matches("0x");
    if allowed.is_empty()
        || allowed
            .iter()
            .any(|a| a.trim_start_matches("0x").eq_ignore_ascii_case(attested))
    {
        Ok(())
    } else {
        Err(Failure::new(
            Check::EngineAllowlist,
            format!("attested measurement {attested} is not in the manifest's engine.trainer_measurements"),
        ))
    }
}
