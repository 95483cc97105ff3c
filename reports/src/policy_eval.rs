//! Second stage of verification: the binding and the session policy, applied
//! to facts a [`crate::attest::Verifier`] established from genuine evidence.
//!
//! Checks, in order, each with its name:
//! 1. `report-data` (CPU kinds, sim) / `nvidia.nonce` (GPU): all bytes equal the expected value.
//! 2. `policy.simulation`: sim evidence needs `allow_simulation = true`.
//! 3. `policy.kind`: the CPU kind is in `accepted_kinds` (GPU evidence is checked by `require_gpu`).
//! 4. `policy.measurement`: the measurement is in the kind's allowlist (empty = any; the verdict says so).
//! 5. `policy.rtmr` (TDX): each pinned RTMR matches.
//! 6. `nvidia.reference` (GPU): every measurement with reference values matches one.
//! 7. `policy.debug`: debuggable guests are refused unless `allow_debug`.
//! 8. `policy.migration-agent` (SNP): refused unless `allow_migration_agent`.
//! 9. `policy.min-tcb`: SNP components at least the minimum; TDX status in `min_tcb.tdx_statuses`.
//! 10. `policy.evidence-age`: evidence that carries its creation time (sim) is not older than
//!     `max_evidence_age_s` nor from the future.

use std::collections::BTreeMap;

use crate::attest::{Attested, Failure, GpuReference, Inputs, Verdict};
use crate::binding::report_data_matches;
use crate::check::Check;
use crate::{Policy, TeeKind};

/// Evaluates binding and policy, and builds the verdict.
pub fn evaluate(kind: TeeKind, att: Attested, inputs: &Inputs, policy: &Policy) -> Verdict {
    let failure = check(kind, &att, inputs, policy).err();
    let mut claims = att.claims;
    claims.insert(
        "verified_at".into(),
        crate::attest::certs::fmt_time(inputs.at).into(),
    );
    if kind != TeeKind::NvidiaGpu {
        claims.insert(
            "measurement_pinned".into(),
            policy.pins_measurement(kind).into(),
        );
        if !policy.pins_measurement(kind) {
            claims.insert(
                "measurement_note".into(),
                "policy pins no measurement for this kind: any measurement is accepted".into(),
            );
        }
    }
    claims.insert(
        "report_data_checked".into(),
        (if kind == TeeKind::NvidiaGpu {
            inputs.expected_nonce.is_some()
        } else {
            inputs.expected_report_data.is_some()
        })
        .into(),
    );
    if kind == TeeKind::Sim {
        claims.insert("insecure_simulation".into(), true.into());
    }
    Verdict {
        verified: failure.is_none(),
        kind,
        insecure_simulation: kind == TeeKind::Sim,
        measurement: Some(hex::encode(&att.measurement)),
        report_data: Some(hex::encode(&att.report_data)),
        tcb: serde_json::Value::Object(att.tcb),
        claims: serde_json::Value::Object(claims),
        failure,
    }
}

fn decode_list(list: &[String]) -> Vec<Vec<u8>> {
    list.iter()
        .filter_map(|m| hex::decode(m.strip_prefix("0x").unwrap_or(m)).ok())
        .collect()
}

fn check(kind: TeeKind, att: &Attested, inputs: &Inputs, policy: &Policy) -> Result<(), Failure> {
    // 1. Binding.
    if kind == TeeKind::NvidiaGpu {
        if let Some(n) = &inputs.expected_nonce {
            if att.report_data.as_slice() != n.as_slice() {
                return Err(Failure::new(
                    Check::NvidiaNonce,
                    format!(
                        "evidence nonce {} is not the expected {}",
                        hex::encode(&att.report_data),
                        hex::encode(n)
                    ),
                ));
            }
        }
    } else if let Some(rd) = &inputs.expected_report_data {
        if !report_data_matches(&att.report_data, rd) {
            return Err(Failure::new(
                Check::ReportData,
                format!(
                    "evidence report_data {} is not the expected {}",
                    hex::encode(&att.report_data),
                    hex::encode(rd)
                ),
            ));
        }
    }
    // 2. Simulation.
    if kind == TeeKind::Sim && !policy.allow_simulation {
        return Err(Failure::new(
            Check::PolicySimulation,
            "insecure-simulation evidence and the policy does not allow_simulation",
        ));
    }
    // 3. Kind.
    if kind != TeeKind::NvidiaGpu && !policy.accepted_kinds.contains(&kind) {
        return Err(Failure::new(
            Check::PolicyKind,
            format!("{kind} is not among the policy's accepted_kinds"),
        ));
    }
    // 4. Measurement.
    if !policy.measurement_allowed(kind, &att.measurement) {
        return Err(Failure::new(
            Check::PolicyMeasurement,
            format!(
                "measurement {} is not in the policy's {kind} allowlist",
                hex::encode(&att.measurement)
            ),
        ));
    }
    // 5. RTMRs.
    if let Some(rtmrs) = &att.rtmrs {
        for (i, allowed) in policy.tdx_rtmrs.lists().iter().enumerate() {
            if allowed.is_empty() {
                continue;
            }
            let found = &rtmrs[i];
            if !decode_list(allowed).iter().any(|a| a == found) {
                return Err(Failure::new(
                    Check::PolicyRtmr,
                    format!(
                        "RTMR{i} {} is not allowed by the policy",
                        hex::encode(found)
                    ),
                ));
            }
        }
    }
    // 6. GPU reference values: the policy's, then a supplied reference file.
    if let Some(ms) = &att.gpu_measurements {
        let from_policy = GpuReference {
            measurements: policy.gpu_reference.clone(),
        };
        for r in [Some(&from_policy), inputs.gpu_reference.as_ref()]
            .into_iter()
            .flatten()
        {
            check_gpu_reference(ms, r)?;
        }
    }
    // 7. Debug.
    if att.debug && !policy.allow_debug {
        return Err(Failure::new(
            Check::PolicyDebug,
            "the guest is debuggable and the policy forbids debug",
        ));
    }
    // 8. Migration agent.
    if att.migrate_ma && !policy.allow_migration_agent {
        return Err(Failure::new(
            Check::PolicyMigrationAgent,
            "the guest policy allows a migration agent",
        ));
    }
    // 9. TCB.
    if let Some([bl, tee, snp, ucode]) = att.snp_tcb {
        let m = &policy.min_tcb.sev_snp;
        let below: Vec<String> = [
            ("bootloader", bl, m.bootloader),
            ("tee", tee, m.tee),
            ("snp", snp, m.snp),
            ("microcode", ucode, m.microcode),
        ]
        .iter()
        .filter(|(_, have, min)| have < min)
        .map(|(n, have, min)| format!("{n} {have} < {min}"))
        .collect();
        if !below.is_empty() {
            return Err(Failure::new(
                Check::PolicyMinTcb,
                format!(
                    "reported TCB below the policy minimum: {}",
                    below.join(", ")
                ),
            ));
        }
    }
    if let Some(status) = &att.tdx_status {
        if !policy.min_tcb.tdx_statuses.iter().any(|s| s == status) {
            return Err(Failure::new(
                Check::PolicyMinTcb,
                format!(
                    "TDX TCB status {status} is not accepted (policy accepts {})",
                    policy.min_tcb.tdx_statuses.join(", ")
                ),
            ));
        }
    }
    // 10. Age.
    if let Some(ts) = att.timestamp {
        const SKEW_S: i64 = 300;
        let age = inputs.at.saturating_sub(ts);
        if age > i64::try_from(policy.max_evidence_age_s).unwrap_or(i64::MAX) || age < -SKEW_S {
            return Err(Failure::new(
                Check::PolicyEvidenceAge,
                format!(
                    "evidence created {} is {age} s old at {} (max {} s)",
                    crate::attest::certs::fmt_time(ts),
                    crate::attest::certs::fmt_time(inputs.at),
                    policy.max_evidence_age_s
                ),
            ));
        }
    }
    Ok(())
}

fn check_gpu_reference(ms: &BTreeMap<u8, Vec<u8>>, r: &GpuReference) -> Result<(), Failure> {
    for (idx, allowed) in &r.measurements {
        let Ok(i) = idx.parse::<u8>() else {
            return Err(Failure::new(
                Check::NvidiaReference,
                format!("bad measurement index `{idx}`"),
            ));
        };
        let Some(found) = ms.get(&i) else {
            return Err(Failure::new(
                Check::NvidiaReference,
                format!("the report has no measurement {i}"),
            ));
        };
        if !decode_list(allowed).iter().any(|a| a == found) {
            return Err(Failure::new(
                Check::NvidiaReference,
                format!(
                    "measurement {i} = {} matches no reference value",
                    hex::encode(found)
                ),
            ));
        }
    }
    Ok(())
}

/// A verdict on CPU evidence presented without GPU evidence, under
/// `policy`: sessions carry no GPU evidence yet (composite evidence is not
/// wired through registration, reports and bundles), so a policy with
/// `require_gpu` can never be met and fails closed with
/// `policy.gpu-required`, rather than a node without a GPU passing a policy
/// the parties signed demanding one. Every node verification goes through
/// here: the coordinator, members (CLI, TUI, agent) and the verifier.
pub fn without_gpu(verdict: Verdict, policy: &Policy) -> Verdict {
    if !verdict.verified {
        return verdict;
    }
    match evaluate_composite(&verdict, None, policy) {
        Ok(()) => verdict,
        Err(f) => Verdict {
            verified: false,
            failure: Some(f),
            ..verdict
        },
    }
}

/// Composite evidence of a GPU node (DESIGN §4): CPU evidence plus GPU
/// evidence whose nonce is derived from the CPU `report_data`. Returns the
/// first failure: `policy.gpu-required` when the policy requires a GPU and
/// none was verified, or `nvidia.nonce-binding` when the GPU nonce is not
/// bound to the CPU evidence.
pub fn evaluate_composite(
    cpu: &Verdict,
    gpu: Option<&Verdict>,
    policy: &Policy,
) -> Result<(), Failure> {
    if let Some(f) = &cpu.failure {
        return Err(f.clone());
    }
    match gpu {
        None if policy.require_gpu => Err(Failure::new(
            Check::PolicyGpuRequired,
            "the policy requires GPU evidence and none was given",
        )),
        None => Ok(()),
        Some(g) => {
            if let Some(f) = &g.failure {
                return Err(f.clone());
            }
            let rd = cpu
                .report_data
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .unwrap_or_default();
            let expected = crate::binding::gpu_nonce_for(&rd);
            if g.report_data.as_deref() != Some(hex::encode(expected).as_str()) {
                return Err(Failure::new(
                    Check::NvidiaNonceBinding,
                    "the GPU nonce is not derived from the CPU evidence's report_data",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::simulate::{sim_default_measurement, simulate_at};
    use crate::attest::verify;

    const T0: i64 = 1_750_000_000;

    fn sim_inputs(debug: bool) -> Inputs {
        Inputs {
            evidence: simulate_at(&[5; 64], &sim_default_measurement(), debug, T0),
            at: T0 + 10,
            ..Default::default()
        }
    }

    fn sim_policy() -> Policy {
        Policy::from_toml("accepted_kinds = [\"sim\"]\nallow_simulation = true").unwrap()
    }

    fn failed(v: &Verdict) -> &str {
        v.failure.as_ref().map(|f| f.check.as_str()).unwrap_or("ok")
    }

    #[test]
    fn sim_needs_allow_simulation_and_is_always_labelled() {
        let v = verify(TeeKind::Sim, &sim_inputs(false), &Policy::default());
        assert_eq!(failed(&v), "policy.simulation");
        assert!(v.insecure_simulation);
        let v = verify(TeeKind::Sim, &sim_inputs(false), &sim_policy());
        assert!(v.verified, "{v:?}");
        assert!(v.insecure_simulation);
        assert_eq!(v.claims["measurement_pinned"], false);
        let json = serde_json::to_value(&v).unwrap();
        for k in [
            "verified",
            "kind",
            "insecure_simulation",
            "measurement",
            "report_data",
            "tcb",
            "claims",
            "failure",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert_eq!(json["kind"], "sim");
    }

    #[test]
    fn policy_cases_have_named_checks() {
        // Debug set (crafted with sim) under a policy forbidding debug.
        assert_eq!(
            failed(&verify(TeeKind::Sim, &sim_inputs(true), &sim_policy())),
            "policy.debug"
        );
        // A measurement the evidence lacks.
        let p = Policy::from_toml(&format!(
            "accepted_kinds = [\"sim\"]\nallow_simulation = true\n[measurements]\nsim = [\"{}\"]",
            hex::encode([9u8; 32])
        ))
        .unwrap();
        assert_eq!(
            failed(&verify(TeeKind::Sim, &sim_inputs(false), &p)),
            "policy.measurement"
        );
        let p = Policy::from_toml(&format!(
            "accepted_kinds = [\"sim\"]\nallow_simulation = true\n[measurements]\nsim = [\"{}\"]",
            hex::encode(sim_default_measurement())
        ))
        .unwrap();
        let v = verify(TeeKind::Sim, &sim_inputs(false), &p);
        assert!(v.verified);
        assert_eq!(v.claims["measurement_pinned"], true);
        // Wrong report_data.
        let mut inp = sim_inputs(false);
        inp.expected_report_data = Some([6; 64]);
        assert_eq!(
            failed(&verify(TeeKind::Sim, &inp, &sim_policy())),
            "report-data"
        );
        inp.expected_report_data = Some([5; 64]);
        assert!(verify(TeeKind::Sim, &inp, &sim_policy()).verified);
        // Too old, and from the future.
        let mut inp = sim_inputs(false);
        inp.at = T0 + 86_401;
        assert_eq!(
            failed(&verify(TeeKind::Sim, &inp, &sim_policy())),
            "policy.evidence-age"
        );
        inp.at = T0 - 3600;
        assert_eq!(
            failed(&verify(TeeKind::Sim, &inp, &sim_policy())),
            "policy.evidence-age"
        );
        // Kind not accepted.
        let p = Policy::from_toml("accepted_kinds = [\"tdx\"]\nallow_simulation = true").unwrap();
        assert_eq!(
            failed(&verify(TeeKind::Sim, &sim_inputs(false), &p)),
            "policy.kind"
        );
    }

    #[test]
    fn composite_requires_gpu_when_asked() {
        let cpu = verify(TeeKind::Sim, &sim_inputs(false), &sim_policy());
        let mut p = Policy::default();
        assert!(evaluate_composite(&cpu, None, &p).is_ok());
        assert!(without_gpu(cpu.clone(), &p).verified);
        p.require_gpu = true;
        assert_eq!(
            evaluate_composite(&cpu, None, &p).unwrap_err().check,
            "policy.gpu-required"
        );
        let v = without_gpu(cpu.clone(), &p);
        assert!(!v.verified);
        assert_eq!(failed(&v), "policy.gpu-required");
    }
}
