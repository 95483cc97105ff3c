//! Attestation policy: what evidence a session accepts. The parties sign it as
//! part of the manifest; the `reports` crate evaluates evidence against it.
//!
//! Every key has a safe default, so a file holding only
//! `allow_simulation = false` is a complete policy. Unknown keys are errors.
//! [`Policy::validate`] rejects policies that no evidence could satisfy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A kind of TEE evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TeeKind {
    /// AMD SEV-SNP attestation report.
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// Intel TDX DCAP quote.
    #[serde(rename = "tdx")]
    Tdx,
    /// NVIDIA H100 SPDM measurement report (GPU evidence, composite with a CPU kind).
    #[serde(rename = "nvidia-gpu")]
    NvidiaGpu,
    /// Software simulation: no hardware, no security. Always labelled.
    #[serde(rename = "sim")]
    Sim,
}

impl TeeKind {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::SevSnp => "sev-snp",
            TeeKind::Tdx => "tdx",
            TeeKind::NvidiaGpu => "nvidia-gpu",
            TeeKind::Sim => "sim",
        }
    }

    /// Parses a name used in files and on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sev-snp" => Some(TeeKind::SevSnp),
            "tdx" => Some(TeeKind::Tdx),
            "nvidia-gpu" => Some(TeeKind::NvidiaGpu),
            "sim" => Some(TeeKind::Sim),
            _ => None,
        }
    }

    /// Byte length of this kind's launch measurement.
    pub fn measurement_len(self) -> usize {
        match self {
            TeeKind::SevSnp | TeeKind::Tdx => 48,
            TeeKind::NvidiaGpu => 48,
            TeeKind::Sim => 32,
        }
    }
}

impl std::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Minimum SEV-SNP TCB (each component must be at least this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnpMinTcb {
    /// Boot loader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// CPU microcode SVN.
    pub microcode: u8,
}

/// Minimum TCB requirements per kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinTcb {
    /// SEV-SNP components (reported TCB must be at least these).
    #[serde(rename = "sev-snp")]
    pub sev_snp: SnpMinTcb,
    /// Accepted TDX TCB statuses (default: only `UpToDate`).
    pub tdx_statuses: Vec<String>,
}

impl Default for MinTcb {
    fn default() -> Self {
        Self {
            sev_snp: SnpMinTcb::default(),
            tdx_statuses: vec!["UpToDate".to_string()],
        }
    }
}

/// Known TDX TCB statuses (Intel DCAP).
pub const TDX_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// TDX runtime measurement register allowlists (each empty = any).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TdxRtmrs {
    /// Allowed RTMR0 values (hex, 48 bytes): firmware configuration.
    pub rtmr0: Vec<String>,
    /// Allowed RTMR1 values: OS loader and kernel.
    pub rtmr1: Vec<String>,
    /// Allowed RTMR2 values: kernel command line and initrd.
    pub rtmr2: Vec<String>,
    /// Allowed RTMR3 values: runtime (application) measurements.
    pub rtmr3: Vec<String>,
}

impl TdxRtmrs {
    /// The four lists, RTMR0 first.
    pub fn lists(&self) -> [&Vec<String>; 4] {
        [&self.rtmr0, &self.rtmr1, &self.rtmr2, &self.rtmr3]
    }
}

/// An attestation policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Kinds of CPU TEE evidence accepted (default: `sev-snp`, `tdx`).
    pub accepted_kinds: Vec<TeeKind>,
    /// Accept `sim` evidence (default false). Must be true for `sim` to be accepted.
    pub allow_simulation: bool,
    /// Allowed launch measurements per kind, hex (empty or absent = any; the
    /// verdict then says no measurement was pinned).
    pub measurements: BTreeMap<TeeKind, Vec<String>>,
    /// Minimum TCB per kind.
    pub min_tcb: MinTcb,
    /// Accept evidence from a debuggable guest (default false: never).
    pub allow_debug: bool,
    /// Maximum age of evidence in seconds at verification time (default one day).
    pub max_evidence_age_s: u64,
    /// Require composite GPU evidence (NVIDIA H100 in CC mode) (default false).
    pub require_gpu: bool,
    /// SEV-SNP: accept a guest policy that allows a migration agent (default false).
    pub allow_migration_agent: bool,
    /// TDX: RTMR allowlists (`[tdx_rtmrs]` with `rtmr0` … `rtmr3`; default: any).
    pub tdx_rtmrs: TdxRtmrs,
    /// NVIDIA GPU reference measurements: SPDM measurement index (`"1"`…) to
    /// accepted values (hex, 48 bytes). Indices not listed are not compared.
    pub gpu_reference: BTreeMap<String, Vec<String>>,
    /// The most privacy the training may spend: ε at the manifest's δ,
    /// recomputed from the committed DP-SGD parameters (absent: no limit;
    /// set: a session without `[privacy]` is refused). In a manifest every
    /// holder enforces it; in a member's own policy file the member refuses
    /// to consent above it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_epsilon: Option<f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            accepted_kinds: vec![TeeKind::SevSnp, TeeKind::Tdx],
            allow_simulation: false,
            measurements: BTreeMap::new(),
            min_tcb: MinTcb::default(),
            allow_debug: false,
            max_evidence_age_s: 86_400,
            require_gpu: false,
            allow_migration_agent: false,
            tdx_rtmrs: TdxRtmrs::default(),
            gpu_reference: BTreeMap::new(),
            max_epsilon: None,
        }
    }
}

/// A policy that cannot be used; `field` names the key at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy field `{field}`: {detail}")]
pub struct PolicyError {
    /// Dotted path of the key.
    pub field: String,
    /// What is wrong.
    pub detail: String,
}

impl Policy {
    /// Parses a policy from TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError {
            field: "(file)".into(),
            detail: e.to_string(),
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Rejects policies that no evidence could satisfy, and malformed values.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |field: &str, detail: String| PolicyError {
            field: field.into(),
            detail,
        };
        if self.accepted_kinds.is_empty() {
            return Err(err(
                "accepted_kinds",
                "empty: no evidence could ever be accepted".into(),
            ));
        }
        if let Some(e) = self.max_epsilon {
            if !(e.is_finite() && e > 0.0) {
                return Err(err("max_epsilon", format!("{e}: must be a number > 0")));
            }
        }
        if self.accepted_kinds.contains(&TeeKind::NvidiaGpu) {
            return Err(err(
                "accepted_kinds",
                "nvidia-gpu is GPU evidence, accepted alongside a CPU kind via require_gpu, not on its own".into(),
            ));
        }
        if self.accepted_kinds == [TeeKind::Sim] && !self.allow_simulation {
            return Err(err(
                "allow_simulation",
                "accepted_kinds is only `sim` but allow_simulation is false: nothing could be accepted".into(),
            ));
        }
        if self.require_gpu && self.accepted_kinds.iter().all(|k| *k == TeeKind::Sim) {
            return Err(err(
                "require_gpu",
                "a GPU cannot be attested by simulation evidence".into(),
            ));
        }
        if self.max_evidence_age_s == 0 {
            return Err(err(
                "max_evidence_age_s",
                "must be greater than zero".into(),
            ));
        }
        for (kind, list) in &self.measurements {
            for (i, m) in list.iter().enumerate() {
                let field = format!("measurements.{kind}[{i}]");
                let t = m.strip_prefix("0x").unwrap_or(m);
                let bytes = hex::decode(t).map_err(|_| err(&field, "not hex".into()))?;
                if bytes.len() != kind.measurement_len() {
                    return Err(err(
                        &field,
                        format!(
                            "{} bytes, a {kind} measurement has {}",
                            bytes.len(),
                            kind.measurement_len()
                        ),
                    ));
                }
            }
        }
        if self.min_tcb.tdx_statuses.is_empty() && self.accepted_kinds == [TeeKind::Tdx] {
            return Err(err(
                "min_tcb.tdx_statuses",
                "empty: no TDX evidence could ever be accepted".into(),
            ));
        }
        for (r, list) in self.tdx_rtmrs.lists().iter().enumerate() {
            for (i, m) in list.iter().enumerate() {
                let field = format!("tdx_rtmrs.rtmr{r}[{i}]");
                let bytes = hex::decode(m.strip_prefix("0x").unwrap_or(m))
                    .map_err(|_| err(&field, "not hex".into()))?;
                if bytes.len() != 48 {
                    return Err(err(
                        &field,
                        format!("{} bytes, an RTMR has 48", bytes.len()),
                    ));
                }
            }
        }
        for (idx, list) in &self.gpu_reference {
            let field = format!("gpu_reference.{idx}");
            match idx.parse::<u8>() {
                Ok(n) if n >= 1 => {}
                _ => {
                    return Err(err(
                        &field,
                        "the key must be an SPDM measurement index 1..=255".into(),
                    ))
                }
            }
            if list.is_empty() {
                return Err(err(&field, "empty: no measurement could match".into()));
            }
            for (i, m) in list.iter().enumerate() {
                let bytes = hex::decode(m.strip_prefix("0x").unwrap_or(m))
                    .map_err(|_| err(&format!("{field}[{i}]"), "not hex".into()))?;
                if bytes.is_empty() {
                    return Err(err(&format!("{field}[{i}]"), "empty value".into()));
                }
            }
        }
        for (i, s) in self.min_tcb.tdx_statuses.iter().enumerate() {
            if !TDX_STATUSES.contains(&s.as_str()) {
                return Err(err(
                    &format!("min_tcb.tdx_statuses[{i}]"),
                    format!("unknown status `{s}` (known: {})", TDX_STATUSES.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Whether `kind`'s measurement allowlist pins anything.
    pub fn pins_measurement(&self, kind: TeeKind) -> bool {
        self.measurements.get(&kind).is_some_and(|l| !l.is_empty())
    }

    /// Whether `measurement` is allowed for `kind` (true when nothing is pinned).
    pub fn measurement_allowed(&self, kind: TeeKind, measurement: &[u8]) -> bool {
        match self.measurements.get(&kind) {
            None => true,
            Some(l) if l.is_empty() => true,
            Some(l) => l.iter().any(|m| {
                hex::decode(m.strip_prefix("0x").unwrap_or(m)).is_ok_and(|b| b == measurement)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_policy_is_valid_and_safe() {
        let p = Policy::from_toml("allow_simulation = false\n").unwrap();
        assert!(!p.allow_simulation);
        assert!(!p.allow_debug);
        assert_eq!(p.min_tcb.tdx_statuses, vec!["UpToDate"]);
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Policy::from_toml("allow_simulatoin = true")
            .unwrap_err()
            .detail
            .contains("unknown field"));
        assert_eq!(
            Policy::from_toml("accepted_kinds = []").unwrap_err().field,
            "accepted_kinds"
        );
        assert_eq!(
            Policy::from_toml("accepted_kinds = [\"sim\"]")
                .unwrap_err()
                .field,
            "allow_simulation"
        );
        assert_eq!(
            Policy::from_toml("[measurements]\nsev-snp = [\"abcd\"]")
                .unwrap_err()
                .field,
            "measurements.sev-snp[0]"
        );
        assert!(Policy::from_toml("[min_tcb]\ntdx_statuses = [\"Fine\"]").is_err());
        assert_eq!(
            Policy::from_toml("[tdx_rtmrs]\nrtmr2 = [\"00\"]")
                .unwrap_err()
                .field,
            "tdx_rtmrs.rtmr2[0]"
        );
        assert_eq!(
            Policy::from_toml("[gpu_reference]\nx = [\"00\"]")
                .unwrap_err()
                .field,
            "gpu_reference.x"
        );
        assert_eq!(
            Policy::from_toml("[gpu_reference]\n\"3\" = []")
                .unwrap_err()
                .field,
            "gpu_reference.3"
        );
        assert_eq!(
            Policy::from_toml("accepted_kinds = [\"tdx\"]\n[min_tcb]\ntdx_statuses = []")
                .unwrap_err()
                .field,
            "min_tcb.tdx_statuses"
        );
        let p = Policy::from_toml(&format!(
            "allow_migration_agent = true\n[tdx_rtmrs]\nrtmr3 = [\"{}\"]",
            "ab".repeat(48)
        ))
        .unwrap();
        assert!(p.allow_migration_agent);
        assert_eq!(p.tdx_rtmrs.lists()[3].len(), 1);
        let ok = Policy::from_toml("accepted_kinds = [\"sim\"]\nallow_simulation = true").unwrap();
        assert!(ok.measurement_allowed(TeeKind::Sim, &[1; 32]));
    }
}
