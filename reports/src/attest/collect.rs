//! Collectors: obtaining evidence on real hardware. Each is behind a cargo
//! feature of this crate so that the verifier (what regulators run) does not
//! carry device code, and CI still compiles them (`cargo check --features …`).
//!
//! | feature | kind | interface |
//! |---|---|---|
//! | `collect-configfs` | sev-snp, tdx | Linux configfs-tsm, `/sys/kernel/config/tsm/report` |
//! | `collect-sev-guest` | sev-snp | `/dev/sev-guest` through the `sev` crate |
//! | `collect-nvidia` | nvidia-gpu | NVML through `nvml-wrapper` (CC state, attestation report with a nonce) |
//!
//! On a machine without the hardware every collector fails fast with a
//! [`CollectError::Unavailable`] naming what is missing.

use serde::{Deserialize, Serialize};

use crate::attest::TeeKind;

/// Why evidence could not be collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// The hardware or kernel interface is not present on this machine.
    #[error("{what} is not available on this machine: {detail}")]
    Unavailable {
        /// The interface that is missing (a path, a library).
        what: String,
        /// What was found instead.
        detail: String,
    },
    /// The interface is present but the request failed.
    #[error("{what}: {detail}")]
    Failed {
        /// The interface.
        what: String,
        /// The error.
        detail: String,
    },
    /// The machine provides another kind of evidence than the operator asked for.
    #[error("this machine provides {found} evidence, not {expected}")]
    WrongKind {
        /// What the operator asked for.
        expected: TeeKind,
        /// What the platform provides.
        found: TeeKind,
    },
    /// The collector for this kind was not compiled in.
    #[error("collector `{0}` is not compiled in (enable the cargo feature of sealroom-reports)")]
    NotCompiled(&'static str),
}

/// Evidence a node presents: the kind, the evidence bytes, and the
/// certificates and collateral a verifier needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvidence {
    /// TEE kind.
    pub kind: TeeKind,
    /// Evidence bytes (hex in JSON).
    #[serde(with = "sealroom_protocol::seal::hex_vec")]
    pub evidence: Vec<u8>,
    /// Certificates (DER, hex in JSON).
    #[serde(default)]
    pub certs: Vec<HexBytes>,
    /// Collateral (TDX), raw bytes hex.
    #[serde(default)]
    pub collateral: Option<HexBytes>,
}

/// Bytes serialised as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HexBytes(#[serde(with = "sealroom_protocol::seal::hex_vec")] pub Vec<u8>);

/// Obtains evidence for a 64-byte `report_data` from the platform.
pub trait Collector {
    /// The kind of evidence this collector produces.
    fn kind(&self) -> TeeKind;
    /// Asks the platform for evidence over `report_data`.
    fn collect(&self, report_data: &[u8; 64]) -> Result<NodeEvidence, CollectError>;
}

/// Simulation: a software platform key signs the node's binding. No
/// hardware, no security; labelled `insecure-simulation` everywhere.
pub struct SimCollector {
    /// The measurement the simulated platform reports (the node binary's).
    pub measurement: [u8; 32],
}

impl Collector for SimCollector {
    fn kind(&self) -> TeeKind {
        TeeKind::Sim
    }
    fn collect(&self, report_data: &[u8; 64]) -> Result<NodeEvidence, CollectError> {
        Ok(NodeEvidence {
            kind: TeeKind::Sim,
            evidence: crate::attest::simulate::simulate(report_data, &self.measurement, false),
            certs: Vec::new(),
            collateral: None,
        })
    }
}

/// Real SEV-SNP or TDX evidence through Linux configfs-tsm
/// (`/sys/kernel/config/tsm/report`), inside a confidential VM. Fails fast
/// with a clear message elsewhere. TDX verifiers need the quote's collateral
/// (TCB info, QE identity, CRLs from Intel's PCS or a PCCS), which the
/// operator supplies with the node (`--collateral`).
#[cfg(feature = "collect-configfs")]
pub struct ConfigfsCollector {
    /// The kind the operator expects (the provider must match).
    pub kind: TeeKind,
    /// Collateral to present with the evidence (TDX).
    pub collateral: Option<Vec<u8>>,
}

#[cfg(feature = "collect-configfs")]
impl Collector for ConfigfsCollector {
    fn kind(&self) -> TeeKind {
        self.kind
    }
    fn collect(&self, report_data: &[u8; 64]) -> Result<NodeEvidence, CollectError> {
        let (provider, c) = configfs::collect(report_data)?;
        let kind = match provider.trim() {
            "sev_guest" => TeeKind::SevSnp,
            "tdx_guest" => TeeKind::Tdx,
            other => {
                return Err(CollectError::Failed {
                    what: "configfs-tsm provider".into(),
                    detail: format!("`{other}` is neither sev_guest nor tdx_guest"),
                })
            }
        };
        if kind != self.kind {
            return Err(CollectError::WrongKind {
                expected: self.kind,
                found: kind,
            });
        }
        Ok(NodeEvidence {
            kind,
            evidence: c.evidence,
            certs: c.certs.into_iter().map(HexBytes).collect(),
            collateral: self.collateral.clone().map(HexBytes),
        })
    }
}

/// Evidence collected from hardware: the evidence bytes and any certificates
/// the platform supplied with it (DER or PEM, as returned).
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// Evidence in its native binary form.
    pub evidence: Vec<u8>,
    /// Certificates returned with the evidence (e.g. VCEK from the host, GPU chain).
    pub certs: Vec<Vec<u8>>,
}

#[cfg(feature = "collect-configfs")]
pub mod configfs {
    //! configfs-tsm (Linux ≥ 6.7): create a report entry, write `inblob`
    //! (the 64-byte report_data), read `outblob` (SNP report or TDX quote),
    //! `auxblob` (SNP certificate table, when the host provides one) and
    //! `provider` (`sev_guest` or `tdx_guest`).
    use super::{CollectError, Collected};
    use std::path::{Path, PathBuf};

    /// Root of the configfs-tsm report interface.
    pub const TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";

    /// Collects evidence for `report_data` through configfs-tsm. Returns the
    /// provider name with the evidence.
    pub fn collect(report_data: &[u8; 64]) -> Result<(String, Collected), CollectError> {
        collect_in(Path::new(TSM_REPORT_DIR), report_data)
    }

    fn io(what: &Path, e: std::io::Error) -> CollectError {
        CollectError::Failed {
            what: what.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// As [`collect`], under another root (tests).
    pub fn collect_in(
        root: &Path,
        report_data: &[u8; 64],
    ) -> Result<(String, Collected), CollectError> {
        if !root.is_dir() {
            return Err(CollectError::Unavailable {
                what: root.display().to_string(),
                detail: "no configfs-tsm report directory (not a confidential VM, or kernel < 6.7, or configfs not mounted)".into(),
            });
        }
        let entry: PathBuf = root.join(format!("sealroom-{}", std::process::id()));
        std::fs::create_dir(&entry).map_err(|e| io(&entry, e))?;
        let result = (|| {
            let inblob = entry.join("inblob");
            std::fs::write(&inblob, report_data).map_err(|e| io(&inblob, e))?;
            let outblob = entry.join("outblob");
            let evidence = std::fs::read(&outblob).map_err(|e| io(&outblob, e))?;
            let provider = std::fs::read_to_string(entry.join("provider"))
                .unwrap_or_default()
                .trim()
                .to_string();
            let certs = std::fs::read(entry.join("auxblob"))
                .ok()
                .filter(|b| !b.is_empty())
                .into_iter()
                .collect();
            Ok((provider, Collected { evidence, certs }))
        })();
        let _ = std::fs::remove_dir(&entry);
        result
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn fails_fast_without_the_interface() {
            let e = super::collect_in(std::path::Path::new("/nonexistent/tsm/report"), &[0; 64])
                .unwrap_err();
            assert!(e.to_string().contains("not available"), "{e}");
        }
    }
}

#[cfg(feature = "collect-sev-guest")]
pub mod sev_guest {
    //! SEV-SNP through `/dev/sev-guest` (the `sev` crate's firmware interface):
    //! an extended report returns the certificates the host cached (VCEK, ASK, ARK).
    use super::{CollectError, Collected};

    /// Device node of the SEV guest driver.
    pub const SEV_GUEST_DEVICE: &str = "/dev/sev-guest";

    /// Requests an SNP report (VMPL 0 unless given) binding `report_data`.
    pub fn collect(report_data: &[u8; 64], vmpl: Option<u32>) -> Result<Collected, CollectError> {
        if !std::path::Path::new(SEV_GUEST_DEVICE).exists() {
            return Err(CollectError::Unavailable {
                what: SEV_GUEST_DEVICE.into(),
                detail: "no SEV guest device (not an SEV-SNP guest, or the sev-guest driver is not loaded)".into(),
            });
        }
        let mut fw = sev::firmware::guest::Firmware::open().map_err(|e| CollectError::Failed {
            what: SEV_GUEST_DEVICE.into(),
            detail: e.to_string(),
        })?;
        let (report, certs) = fw
            .get_ext_report(None, Some(*report_data), vmpl)
            .map_err(|e| CollectError::Failed {
                what: SEV_GUEST_DEVICE.into(),
                detail: e.to_string(),
            })?;
        let certs = certs
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.data().to_vec())
            .collect();
        Ok(Collected {
            evidence: report,
            certs,
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn fails_fast_without_the_device() {
            if std::path::Path::new(super::SEV_GUEST_DEVICE).exists() {
                return;
            }
            assert!(super::collect(&[0; 64], None)
                .unwrap_err()
                .to_string()
                .contains("not available"));
        }
    }
}

#[cfg(feature = "collect-nvidia")]
pub mod nvidia {
    //! NVIDIA H100 through NVML: requires confidential-compute mode, then asks
    //! for the GPU attestation report with our nonce and the device chain.
    use super::{CollectError, Collected};

    fn nvml_err(e: impl std::fmt::Display) -> CollectError {
        CollectError::Failed {
            what: "NVML".into(),
            detail: e.to_string(),
        }
    }

    /// Collects the attestation report of GPU `index` bound to `nonce`.
    pub fn collect(index: u32, nonce: &[u8; 32]) -> Result<Collected, CollectError> {
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| CollectError::Unavailable {
            what: "NVML (libnvidia-ml.so)".into(),
            detail: e.to_string(),
        })?;
        let dev = nvml.device_by_index(index).map_err(nvml_err)?;
        if !dev.is_cc_enabled().map_err(nvml_err)? {
            return Err(CollectError::Unavailable {
                what: format!("GPU {index} confidential-compute mode"),
                detail: "CC mode is off: GPU evidence would prove nothing".into(),
            });
        }
        let report = dev
            .confidential_compute_gpu_attestation_report(*nonce)
            .map_err(nvml_err)?;
        let chain = dev
            .confidential_compute_gpu_certificate()
            .map_err(nvml_err)?;
        Ok(Collected {
            evidence: report.attestation_report,
            certs: vec![chain.attestation_cert_chain],
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn fails_fast_without_a_gpu() {
            if let Err(e) = super::collect(0, &[0; 32]) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
