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
    with_gpu(verdict, None, policy)
}

/// A node's GPU evidence: `nvidia-gpu` (an H100 SPDM measurement report
/// and its device certificate chain) or `sim` (simulated GPU evidence,
/// [`crate::attest::simulate::simulate_gpu_at`]).
#[derive(Clone, Debug)]
pub struct GpuEvidence<'a> {
    /// `nvidia-gpu` or `sim`.
    pub kind: TeeKind,
    /// The evidence bytes.
    pub evidence: &'a [u8],
    /// Certificates (DER), `nvidia-gpu` only.
    pub certs: Vec<Vec<u8>>,
}

/// Verifies GPU evidence under `policy` at `at`, expecting the nonce
/// derived from the CPU evidence's `report_data`
/// ([`crate::binding::gpu_nonce_for`]). The verdict's `report_data` is the
/// nonce the evidence carries, which [`evaluate_composite`] binds to the
/// CPU evidence (`nvidia.nonce-binding`).
pub fn verify_gpu(
    gpu: &GpuEvidence<'_>,
    cpu_report_data: &[u8; 64],
    policy: &Policy,
    at: i64,
) -> Verdict {
    verify_gpu_with_nonce(
        gpu,
        &crate::binding::gpu_nonce_for(cpu_report_data),
        policy,
        at,
    )
}

/// [`verify_gpu`] with the expected nonce given directly.
pub fn verify_gpu_with_nonce(
    gpu: &GpuEvidence<'_>,
    nonce: &[u8; 32],
    policy: &Policy,
    at: i64,
) -> Verdict {
    match gpu.kind {
        TeeKind::NvidiaGpu => {
            let inputs = Inputs {
                evidence: gpu.evidence.to_vec(),
                certs: gpu.certs.clone(),
                at,
                expected_nonce: Some(*nonce),
                gpu_reference: (!policy.gpu_reference.is_empty()).then(|| GpuReference {
                    measurements: policy.gpu_reference.clone(),
                }),
                ..Default::default()
            };
            crate::attest::verify(TeeKind::NvidiaGpu, &inputs, policy)
        }
        TeeKind::Sim => {
            // Judged as simulation: accepted only where the policy allows
            // it, whatever CPU kinds the policy lists.
            let as_sim = Policy {
                accepted_kinds: vec![TeeKind::Sim],
                ..policy.clone()
            };
            let inputs = Inputs {
                evidence: gpu.evidence.to_vec(),
                at,
                ..Default::default()
            };
            let mut v = crate::attest::verify(TeeKind::Sim, &inputs, &as_sim);
            // Pinned GPU measurements cannot be met by simulated evidence,
            // which has no SPDM measurement blocks: fail closed rather than
            // let a pin go unchecked.
            if v.verified && !policy.gpu_reference.is_empty() {
                v.verified = false;
                v.failure = Some(Failure::new(
                    Check::NvidiaReference,
                    "the policy pins GPU measurements (gpu_reference) and simulated GPU evidence has none to compare",
                ));
            }
            // The nonce is the first 32 bytes, the rest zeros; anything else
            // is not a nonce and fails the binding.
            if let Some(rd) = v.report_data.as_deref().and_then(|h| hex::decode(h).ok()) {
                if rd.len() == 64 && rd[32..].iter().all(|b| *b == 0) {
                    v.report_data = Some(hex::encode(&rd[..32]));
                }
            }
            v
        }
        other => Verdict::rejected(
            other,
            Failure::new(
                Check::EvidenceKind,
                format!(
                    "`{}` is not GPU evidence (nvidia-gpu or sim)",
                    other.as_str()
                ),
            ),
        ),
    }
}

/// Verified GPU evidence in words for checklists: its kind, what it
/// measured, and whether the policy pins those measurements.
pub fn gpu_words(gpu: &Verdict, policy: &Policy) -> String {
    let what = if gpu.kind == TeeKind::Sim {
        "GPU evidence (sim: insecure simulation)".to_string()
    } else {
        let blocks = gpu.claims["measurement_count"].as_u64().unwrap_or(0);
        format!("NVIDIA GPU evidence ({blocks} SPDM measurement blocks)")
    };
    let digest = gpu
        .measurement
        .as_deref()
        .map(|m| format!("; GPU measurement {}…", &m[..m.len().min(16)]))
        .unwrap_or_default();
    format!(
        "{what} verified, its nonce bound to that report_data{digest}; {}",
        gpu_pin_words(policy)
    )
}

/// Whether a policy pins the GPU's measurements, in words.
pub fn gpu_pin_words(policy: &Policy) -> String {
    if policy.gpu_reference.is_empty() {
        "GPU measurements not pinned (the policy sets no gpu_reference: any GPU firmware accepted)"
            .to_string()
    } else {
        let blocks: Vec<&str> = policy.gpu_reference.keys().map(String::as_str).collect();
        format!(
            "GPU measurement blocks {} pinned by the policy's gpu_reference",
            blocks.join(", ")
        )
    }
}

/// [`verify_gpu`] of GPU evidence as a node registered it (certificates
/// in hex; a bad one fails `evidence.format`).
pub fn verify_registered_gpu(
    gpu: &sealroom_protocol::api::GpuRegistration,
    cpu_report_data: &[u8; 64],
    policy: &Policy,
    at: i64,
) -> Verdict {
    let certs: Result<Vec<Vec<u8>>, _> = gpu
        .certs
        .iter()
        .map(|c| hex::decode(c.trim_start_matches("0x")))
        .collect();
    match certs {
        Ok(certs) => verify_gpu(
            &GpuEvidence {
                kind: gpu.kind,
                evidence: &gpu.evidence,
                certs,
            },
            cpu_report_data,
            policy,
            at,
        ),
        Err(_) => Verdict::rejected(
            gpu.kind,
            Failure::new(Check::EvidenceFormat, "a GPU certificate is not hex"),
        ),
    }
}

/// The verdict on a node's composite evidence: the CPU verdict, failed
/// with the first composite failure (`policy.gpu-required`, the GPU
/// verdict's own failure, `nvidia.nonce-binding`) when there is one.
pub fn with_gpu(verdict: Verdict, gpu: Option<&Verdict>, policy: &Policy) -> Verdict {
    if !verdict.verified {
        return verdict;
    }
    match evaluate_composite(&verdict, gpu, policy) {
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

    /// Composite evidence with a simulated GPU: bound to the CPU
    /// evidence's report_data it passes where simulation is allowed (also
    /// under `require_gpu`); bound to another, `nvidia.nonce-binding`; where
    /// simulation is not allowed, refused as simulation.
    #[test]
    fn a_simulated_gpu_binds_to_its_cpu_evidence() {
        use crate::attest::simulate::simulate_gpu_at;
        use crate::binding::gpu_nonce_for;
        let cpu = verify(TeeKind::Sim, &sim_inputs(false), &sim_policy());
        assert!(cpu.verified);
        let mut p = sim_policy();
        p.require_gpu = true;
        let gpu_ev = simulate_gpu_at(&gpu_nonce_for(&[5; 64]), T0);
        let gpu = GpuEvidence {
            kind: TeeKind::Sim,
            evidence: &gpu_ev,
            certs: vec![],
        };
        let g = verify_gpu(&gpu, &[5; 64], &p, T0 + 10);
        assert!(g.verified && g.insecure_simulation, "{:?}", g.failure);
        assert_eq!(g.report_data, Some(hex::encode(gpu_nonce_for(&[5; 64]))));
        assert!(with_gpu(cpu.clone(), Some(&g), &p).verified);
        // Bound to another CPU report_data.
        let other_ev = simulate_gpu_at(&gpu_nonce_for(&[6; 64]), T0);
        let other = GpuEvidence {
            evidence: &other_ev,
            ..gpu.clone()
        };
        let g2 = verify_gpu(&other, &[5; 64], &p, T0 + 10);
        let v = with_gpu(cpu.clone(), Some(&g2), &p);
        assert_eq!(failed(&v), "nvidia.nonce-binding");
        // CPU evidence itself (non-zero tail) is no GPU nonce.
        let cpu_as_gpu = GpuEvidence {
            evidence: &sim_inputs(false).evidence,
            ..gpu.clone()
        };
        let g3 = verify_gpu(&cpu_as_gpu, &[5; 64], &p, T0 + 10);
        assert_eq!(
            failed(&with_gpu(cpu.clone(), Some(&g3), &p)),
            "nvidia.nonce-binding"
        );
        // No simulation allowed: the simulated GPU is refused as simulation.
        let hw = Policy::default();
        let g4 = verify_gpu(&gpu, &[5; 64], &hw, T0 + 10);
        assert!(!g4.verified);
        assert_eq!(failed(&g4), "policy.simulation");
        // Not GPU evidence at all.
        let tdx = GpuEvidence {
            kind: TeeKind::Tdx,
            ..gpu.clone()
        };
        assert_eq!(failed(&verify_gpu(&tdx, &[5; 64], &p, T0)), "evidence.kind");
        // Words: simulated, its measurement, not pinned.
        let w = gpu_words(&g, &p);
        assert!(
            w.starts_with("GPU evidence (sim: insecure simulation) verified"),
            "{w}"
        );
        assert!(
            w.contains("GPU measurement ") && w.contains("not pinned"),
            "{w}"
        );
        // A policy that pins GPU measurements cannot be met by simulated
        // GPU evidence (no measurement blocks): it fails closed.
        let mut pinned = p.clone();
        pinned
            .gpu_reference
            .insert("7".into(), vec!["00".repeat(48)]);
        assert_eq!(
            failed(&verify_gpu(&gpu, &[5; 64], &pinned, T0 + 10)),
            "nvidia.reference"
        );
        assert!(gpu_pin_words(&pinned).contains("blocks 7 pinned"));
    }

    /// The real H100 samples through the composite path: the GPU part
    /// verifies with the nonce the test computes from the sample (a real
    /// report cannot be bound to a CPU report_data chosen afterwards: that
    /// would need a SHA-256 preimage), and the binding to an unrelated CPU
    /// verdict then fails with `nvidia.nonce-binding`.
    #[test]
    fn real_h100_evidence_goes_through_the_composite_path() {
        use crate::attest::nvidia::SpdmReport;
        use crate::attest::testdata::{certs, NV_CHAIN1, NV_REPORT};
        let evidence = crate::attest::decode_evidence(NV_REPORT);
        let nonce = SpdmReport::parse(&evidence).unwrap().request_nonce;
        let gpu = GpuEvidence {
            kind: TeeKind::NvidiaGpu,
            evidence: &evidence,
            certs: certs(&[NV_CHAIN1]),
        };
        let at = crate::attest::testdata::t("2026-01-01T00:00:00Z");
        let mut p = sim_policy();
        p.require_gpu = true;
        let g = verify_gpu_with_nonce(&gpu, &nonce, &p, at);
        assert!(g.verified, "{:?}", g.failure);
        assert!(!g.insecure_simulation);
        assert_eq!(g.report_data, Some(hex::encode(nonce)));
        let cpu = verify(TeeKind::Sim, &sim_inputs(false), &sim_policy());
        assert_eq!(failed(&with_gpu(cpu, Some(&g), &p)), "nvidia.nonce-binding");
        // Through verify_gpu the expected nonce is the CPU-derived one,
        // which this report does not carry.
        assert_eq!(failed(&verify_gpu(&gpu, &[5; 64], &p, at)), "nvidia.nonce");
        let w = gpu_words(&g, &p);
        assert!(
            w.starts_with("NVIDIA GPU evidence (") && w.contains("SPDM measurement blocks)"),
            "{w}"
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
