//! AMD SEV-SNP attestation report verification (reports v2, v3 and later,
//! 1184 bytes, ECDSA P-384/SHA-384), VCEK→ASK→ARK or VLEK→ASVK→ARK to the
//! AMD roots bundled in this crate (Milan, Genoa, Turin).
//!
//! Checks, in order, each with its name:
//! 1. `sev-snp.parse`: exactly 1184 bytes, known version, signature algorithm ECDSA P-384.
//! 2. `sev-snp.certs`: exactly one VCEK/VLEK (P-384 leaf) among the supplied certificates.
//! 3. `sev-snp.ark-root`: a supplied ARK equals the bundled ARK of the leaf's product;
//!    the bundled ARK is self-signed.
//!    Every other supplied certificate must be this product's ASK/ASVK or the
//!    leaf's issuer, else `sev-snp.vcek-chain`.
//! 4. `sev-snp.signing-key`: the report says it was signed by the kind of key supplied.
//! 5. `sev-snp.chip-id`: the VCEK's hwID equals the report's CHIP_ID (not for a VLEK).
//! 6. `sev-snp.vcek-chain`: the ASK (ASVK for a VLEK) is signed by the ARK and
//!    the leaf by the ASK/ASVK.
//! 7. `sev-snp.cert-validity`: every certificate of the chain is valid at `at`.
//! 8. `sev-snp.tcb`: the leaf's TCB extensions equal the report's REPORTED_TCB.
//! 9. `sev-snp.signature`: the report signature verifies under the leaf.
//!
//! Chip id is checked before the chain and the signature so that a
//! certificate of another chip is named as such rather than as a bad
//! signature; acceptance needs every check either way.

use std::sync::OnceLock;

use super::certs::{verify_signed_by, Cert};
use super::{hx, Attested, Failure, Inputs, Verifier};
use crate::check::Check;
use crate::TeeKind;

/// Length of an SNP attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// Bytes covered by the signature.
pub const SIGNED_LEN: usize = 0x2A0;

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// Which key signed a report (REPORT field at 0x48, bits 2..4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key (cloud provider).
    Vlek,
    /// Not signed (7) or reserved.
    Other(u8),
}

/// An AMD EPYC generation with bundled roots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// 3rd generation (Zen 3).
    Milan,
    /// 4th generation (Zen 4).
    Genoa,
    /// 5th generation (Zen 5); its TCB layout adds an FMC component.
    Turin,
}

impl Product {
    fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "Milan" => Some(Product::Milan),
            "Genoa" => Some(Product::Genoa),
            "Turin" => Some(Product::Turin),
            _ => None,
        }
    }
}

/// A parsed SNP report (the fields the verifier and the verdict use).
#[derive(Clone, Debug)]
pub struct SnpReport {
    /// Report format version.
    pub version: u32,
    /// Guest SVN.
    pub guest_svn: u32,
    /// Guest policy (bit 19 DEBUG, bit 18 MIGRATE_MA, bit 16 SMT).
    pub policy: u64,
    /// VMPL the report was requested at.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub sig_algo: u32,
    /// Platform info flags.
    pub platform_info: u64,
    /// Key-selection flags word at 0x48.
    pub key_info: u32,
    /// 64 bytes of guest-supplied data.
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Host data.
    pub host_data: [u8; 32],
    /// ID key digest.
    pub id_key_digest: [u8; 48],
    /// Author key digest.
    pub author_key_digest: [u8; 48],
    /// Family id.
    pub family_id: [u8; 16],
    /// Image id.
    pub image_id: [u8; 16],
    /// Report id.
    pub report_id: [u8; 32],
    /// Raw REPORTED_TCB (8 bytes).
    pub reported_tcb: [u8; 8],
    /// CPUID family/model/stepping (v3 and later; zero before).
    pub cpuid: [u8; 3],
    /// Chip id (zero for VLEK-signed or masked reports).
    pub chip_id: [u8; 64],
    /// Signature r, little-endian, 72 bytes.
    pub sig_r: [u8; 72],
    /// Signature s, little-endian, 72 bytes.
    pub sig_s: [u8; 72],
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[off..off + N]);
    out
}

fn u32le(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(arr::<4>(b, off))
}

fn u64le(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(arr::<8>(b, off))
}

impl SnpReport {
    /// Parses a report. Refuses any other length: no truncation, no trailing bytes.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() != REPORT_LEN {
            return Err(format!(
                "an SNP report has {REPORT_LEN} bytes, this has {}",
                b.len()
            ));
        }
        let version = u32le(b, 0);
        if !(2..=5).contains(&version) {
            return Err(format!("report version {version} is not supported (2..=5)"));
        }
        let sig_algo = u32le(b, 0x34);
        if sig_algo != 1 {
            return Err(format!(
                "signature algorithm {sig_algo} is not ECDSA P-384/SHA-384 (1)"
            ));
        }
        Ok(Self {
            version,
            guest_svn: u32le(b, 4),
            policy: u64le(b, 8),
            family_id: arr(b, 0x10),
            image_id: arr(b, 0x20),
            vmpl: u32le(b, 0x30),
            sig_algo,
            platform_info: u64le(b, 0x40),
            key_info: u32le(b, 0x48),
            report_data: arr(b, 0x50),
            measurement: arr(b, 0x90),
            host_data: arr(b, 0xC0),
            id_key_digest: arr(b, 0xE0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            reported_tcb: arr(b, 0x180),
            cpuid: if version >= 3 { arr(b, 0x188) } else { [0; 3] },
            chip_id: arr(b, 0x1A0),
            sig_r: arr(b, 0x2A0),
            sig_s: arr(b, 0x2A0 + 72),
        })
    }

    /// Which key signed the report.
    pub fn signing_key(&self) -> SigningKey {
        match (self.key_info >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            n => SigningKey::Other(n as u8),
        }
    }

    /// Whether the guest policy allows debugging (bit 19).
    pub fn debug(&self) -> bool {
        self.policy & (1 << 19) != 0
    }

    /// Whether the guest policy allows a migration agent (bit 18).
    pub fn migrate_ma(&self) -> bool {
        self.policy & (1 << 18) != 0
    }

    /// REPORTED_TCB as (fmc, bootloader, tee, snp, microcode) for `product`:
    /// Turin moved the fields to make room for FMC.
    pub fn tcb(&self, product: Product) -> TcbParts {
        let t = &self.reported_tcb;
        match product {
            Product::Turin => TcbParts {
                fmc: Some(t[0]),
                bootloader: t[1],
                tee: t[2],
                snp: t[3],
                microcode: t[7],
            },
            _ => TcbParts {
                fmc: None,
                bootloader: t[0],
                tee: t[1],
                snp: t[6],
                microcode: t[7],
            },
        }
    }
}

/// The components of an SNP TCB version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbParts {
    /// FMC SPL (Turin only).
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// PSP OS SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

/// Bundled AMD certificates of one product.
struct Roots {
    ask: Cert,
    ark: Cert,
    asvk: Cert,
}

fn load_bundle(pem: &[u8]) -> Option<Roots> {
    let ders = super::certs::load_certs(pem).ok()?;
    let certs = super::certs::parse_all(&ders).ok()?;
    let find = |prefix: &str| {
        certs
            .iter()
            .find(|c| c.subject_cn().starts_with(prefix))
            .cloned()
    };
    let ark = find("ARK-")?;
    let asvk = find("SEV-VLEK-")?;
    let ask = certs
        .iter()
        .find(|c| c.subject_cn().starts_with("SEV-") && !c.subject_cn().starts_with("SEV-VLEK-"))?
        .clone();
    // The bundled chain is verified once per process: ARK self-signed, ASK and
    // ASVK under it. A broken bundle makes every report fail `ark-root`.
    verify_signed_by(&ark, &ark).ok()?;
    verify_signed_by(&ask, &ark).ok()?;
    verify_signed_by(&asvk, &ark).ok()?;
    Some(Roots { ask, ark, asvk })
}

fn roots(product: Product) -> Option<&'static Roots> {
    static MILAN: OnceLock<Option<Roots>> = OnceLock::new();
    static GENOA: OnceLock<Option<Roots>> = OnceLock::new();
    static TURIN: OnceLock<Option<Roots>> = OnceLock::new();
    match product {
        Product::Milan => MILAN
            .get_or_init(|| load_bundle(include_bytes!("roots/amd_milan.pem")))
            .as_ref(),
        Product::Genoa => GENOA
            .get_or_init(|| load_bundle(include_bytes!("roots/amd_genoa.pem")))
            .as_ref(),
        Product::Turin => TURIN
            .get_or_init(|| load_bundle(include_bytes!("roots/amd_turin.pem")))
            .as_ref(),
    }
}

/// Reads a small INTEGER extension value (the SPL extensions).
fn ext_u8(cert: &Cert, oid: &str) -> Option<u8> {
    let v = cert.extension(oid)?;
    let (_, content, rest) = super::certs::read_tlv(v)?;
    if v.first() != Some(&0x02) || !rest.is_empty() {
        return None;
    }
    let trimmed: Vec<u8> = content.iter().copied().skip_while(|b| *b == 0).collect();
    match trimmed.as_slice() {
        [] => Some(0),
        [x] => Some(*x),
        _ => None,
    }
}

/// The VCEK hwID: 64 raw bytes, an OCTET STRING of them, or 8 bytes (Turin).
fn hwid(cert: &Cert) -> Option<Vec<u8>> {
    let v = cert.extension(OID_HWID)?;
    if v.first() == Some(&0x04) {
        if let Some((total, content, _)) = super::certs::read_tlv(v) {
            if total == v.len() && (content.len() == 64 || content.len() == 8) {
                return Some(content.to_vec());
            }
        }
    }
    Some(v.to_vec())
}

/// The SEV-SNP verifier.
pub struct SevSnpVerifier;

impl Verifier for SevSnpVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn verify_evidence(&self, inputs: &Inputs) -> Result<Attested, Failure> {
        let report =
            SnpReport::parse(&inputs.evidence).map_err(|e| Failure::new(Check::SevSnpParse, e))?;
        let supplied = super::certs::parse_all(&inputs.certs)
            .map_err(|e| Failure::new(Check::SevSnpCerts, e))?;

        // 2. The leaf: the one certificate with a P-384 key.
        let leaves: Vec<&Cert> = supplied.iter().filter(|c| c.p384_key().is_some()).collect();
        let leaf = match leaves.as_slice() {
            [one] => *one,
            [] => {
                return Err(Failure::new(
                    Check::SevSnpCerts,
                    "no VCEK or VLEK certificate supplied (--certs)",
                ))
            }
            _ => {
                return Err(Failure::new(
                    Check::SevSnpCerts,
                    "more than one VCEK/VLEK certificate supplied",
                ))
            }
        };
        let issuer_cn = leaf.issuer_cn();
        let (is_vlek, product_name) = if let Some(p) = issuer_cn.strip_prefix("SEV-VLEK-") {
            (true, p)
        } else if let Some(p) = issuer_cn.strip_prefix("SEV-") {
            (false, p)
        } else {
            return Err(Failure::new(
                Check::SevSnpVcekChain,
                format!(
                    "leaf `{}` is issued by `{issuer_cn}`, not by an AMD ASK/ASVK",
                    leaf.subject_cn()
                ),
            ));
        };
        let product = Product::from_name(product_name).ok_or_else(|| {
            Failure::new(
                Check::SevSnpVcekChain,
                format!("no bundled AMD roots for product `{product_name}`"),
            )
        })?;
        let roots = roots(product).ok_or_else(|| {
            Failure::new(
                Check::SevSnpArkRoot,
                format!("bundled {} roots do not verify", product.name()),
            )
        })?;

        // 3 and 4. Supplied non-leaf certificates must be this product's ARK
        // (byte-equal to the bundled one), its ASK or ASVK; nothing else.
        let mut intermediate: Option<&Cert> = None;
        for c in supplied.iter().filter(|c| !std::ptr::eq(*c, leaf)) {
            let cn = c.subject_cn();
            let bundled = [&roots.ask, &roots.asvk, &roots.ark]
                .iter()
                .any(|b| b.der == c.der);
            if bundled && c.cert.tbs_certificate.subject != leaf.cert.tbs_certificate.issuer {
                // This product's own ASK/ASVK/ARK, e.g. from a full bundle: harmless.
                continue;
            }
            if cn.starts_with("ARK-") {
                if c.der != roots.ark.der {
                    return Err(Failure::new(
                        Check::SevSnpArkRoot,
                        format!(
                            "supplied ARK `{cn}` is not the bundled AMD ARK-{}",
                            product.name()
                        ),
                    ));
                }
            } else if c.cert.tbs_certificate.subject == leaf.cert.tbs_certificate.issuer {
                intermediate = Some(c);
            } else {
                return Err(Failure::new(
                    Check::SevSnpVcekChain,
                    format!("supplied certificate `{cn}` is not part of the chain of a leaf issued by `{issuer_cn}`"),
                ));
            }
        }
        // 4. The report names the kind of key that signed it.
        let expected_key = if is_vlek {
            SigningKey::Vlek
        } else {
            SigningKey::Vcek
        };
        if report.signing_key() != expected_key {
            return Err(Failure::new(
                Check::SevSnpSigningKey,
                format!(
                    "report says it was signed by {:?}, the supplied leaf is a {:?}",
                    report.signing_key(),
                    expected_key
                ),
            ));
        }

        // 5. Chip id (a VLEK is not chip-specific; its reports carry zeros).
        if !is_vlek {
            let hw = hwid(leaf)
                .ok_or_else(|| Failure::new(Check::SevSnpChipId, "VCEK has no hwID extension"))?;
            let ok = match hw.len() {
                64 => hw[..] == report.chip_id[..],
                8 => hw[..] == report.chip_id[..8],
                _ => false,
            };
            if !ok {
                return Err(Failure::new(
                    Check::SevSnpChipId,
                    format!(
                        "VCEK is for chip {}, report is from chip {}",
                        hex::encode(&hw),
                        hex::encode(report.chip_id)
                    ),
                ));
            }
        }

        // 6. The chain: ASK/ASVK under the ARK, the leaf under the ASK/ASVK.
        let bundled_mid = if is_vlek { &roots.asvk } else { &roots.ask };
        let mid = match intermediate {
            Some(m) if m.der == bundled_mid.der => bundled_mid,
            Some(m) => {
                verify_signed_by(m, &roots.ark)
                    .map_err(|e| Failure::new(Check::SevSnpVcekChain, e))?;
                m
            }
            None => bundled_mid,
        };
        verify_signed_by(leaf, mid).map_err(|e| Failure::new(Check::SevSnpVcekChain, e))?;

        // 7. Validity at the chosen instant.
        for c in [leaf, mid, &roots.ark] {
            c.check_valid_at(inputs.at)
                .map_err(|e| Failure::new(Check::SevSnpCertValidity, e))?;
        }

        // 8. TCB in the certificate equals the reported TCB.
        let tcb = report.tcb(product);
        let cert_tcb = (
            ext_u8(leaf, OID_BL_SPL),
            ext_u8(leaf, OID_TEE_SPL),
            ext_u8(leaf, OID_SNP_SPL),
            ext_u8(leaf, OID_UCODE_SPL),
        );
        let fmc_ok = product != Product::Turin || ext_u8(leaf, OID_FMC_SPL) == tcb.fmc;
        if cert_tcb
            != (
                Some(tcb.bootloader),
                Some(tcb.tee),
                Some(tcb.snp),
                Some(tcb.microcode),
            )
            || !fmc_ok
        {
            return Err(Failure::new(
                Check::SevSnpTcb,
                format!(
                    "certificate TCB bl {:?} tee {:?} snp {:?} ucode {:?} differs from reported TCB bl {} tee {} snp {} ucode {}",
                    cert_tcb.0, cert_tcb.1, cert_tcb.2, cert_tcb.3, tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
                ),
            ));
        }

        // 9. The signature: r and s are little-endian 72-byte fields holding P-384 scalars.
        verify_report_signature(&inputs.evidence, &report, leaf)?;

        let mut tcbj = serde_json::Map::new();
        tcbj.insert("bootloader".into(), tcb.bootloader.into());
        tcbj.insert("tee".into(), tcb.tee.into());
        tcbj.insert("snp".into(), tcb.snp.into());
        tcbj.insert("microcode".into(), tcb.microcode.into());
        if let Some(f) = tcb.fmc {
            tcbj.insert("fmc".into(), f.into());
        }
        let mut claims = serde_json::Map::new();
        claims.insert("product".into(), product.name().into());
        claims.insert("report_version".into(), report.version.into());
        claims.insert(
            "signing_key".into(),
            if is_vlek { "vlek" } else { "vcek" }.into(),
        );
        claims.insert(
            "guest_policy".into(),
            format!("{:#x}", report.policy).into(),
        );
        claims.insert("debug".into(), report.debug().into());
        claims.insert("migrate_ma".into(), report.migrate_ma().into());
        claims.insert("guest_svn".into(), report.guest_svn.into());
        claims.insert("vmpl".into(), report.vmpl.into());
        claims.insert(
            "platform_info".into(),
            format!("{:#x}", report.platform_info).into(),
        );
        claims.insert("chip_id".into(), hx(&report.chip_id));
        claims.insert("host_data".into(), hx(&report.host_data));
        claims.insert("id_key_digest".into(), hx(&report.id_key_digest));
        claims.insert("author_key_digest".into(), hx(&report.author_key_digest));
        claims.insert("family_id".into(), hx(&report.family_id));
        claims.insert("image_id".into(), hx(&report.image_id));
        claims.insert("report_id".into(), hx(&report.report_id));
        if report.version >= 3 {
            claims.insert("cpuid".into(), hx(&report.cpuid));
        }
        Ok(Attested {
            measurement: report.measurement.to_vec(),
            report_data: report.report_data.to_vec(),
            debug: report.debug(),
            migrate_ma: report.migrate_ma(),
            snp_tcb: Some([tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode]),
            tcb: tcbj,
            claims,
            ..Default::default()
        })
    }
}

fn verify_report_signature(raw: &[u8], report: &SnpReport, leaf: &Cert) -> Result<(), Failure> {
    let bad = |d: &str| Failure::new(Check::SevSnpSignature, d.to_string());
    let key = leaf
        .p384_key()
        .ok_or_else(|| bad("leaf has no P-384 key"))?;
    // The scalars occupy the low 48 bytes; the upper 24 must be zero.
    if report.sig_r[48..]
        .iter()
        .chain(&report.sig_s[48..])
        .any(|b| *b != 0)
    {
        return Err(bad("signature components exceed 48 bytes"));
    }
    let mut rs = [0u8; 96];
    for i in 0..48 {
        rs[i] = report.sig_r[47 - i];
        rs[48 + i] = report.sig_s[47 - i];
    }
    if super::certs::verify_p384_fixed(key, &raw[..SIGNED_LEN], &rs) {
        Ok(())
    } else {
        Err(bad(
            "report signature does not verify under the supplied VCEK/VLEK",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    fn inputs(report: &[u8], certs_files: &[&[u8]], at: &str) -> Inputs {
        Inputs {
            evidence: report.to_vec(),
            certs: certs(certs_files),
            at: t(at),
            ..Default::default()
        }
    }

    #[test]
    fn valid_samples_verify_with_expected_tcb() {
        let v = SevSnpVerifier;
        type Case<'a> = (&'a [u8], Vec<&'a [u8]>, &'a str, [u8; 4]);
        let cases: [Case; 4] = [
            (
                SNP_VIRTEE_MILAN_REPORT,
                vec![
                    SNP_VIRTEE_MILAN_VCEK,
                    SNP_VIRTEE_MILAN_ASK,
                    SNP_VIRTEE_MILAN_ARK,
                ],
                "2025-01-01T00:00:00Z",
                [3, 0, 8, 115],
            ),
            (
                SNP_TRUSTEE_REPORT,
                vec![SNP_TRUSTEE_VCEK, SNP_TRUSTEE_MILAN_BUNDLE],
                "2025-01-01T00:00:00Z",
                [3, 0, 8, 115],
            ),
            (
                SNP_AZ_GENOA_REPORT,
                vec![SNP_AZ_GENOA_VCEK, SNP_TRUSTEE_GENOA_BUNDLE],
                "2025-06-01T00:00:00Z",
                [10, 0, 23, 84],
            ),
            (
                SNP_VLEK_REPORT,
                vec![SNP_VLEK, SNP_TRUSTEE_MILAN_BUNDLE],
                "2025-06-01T00:00:00Z",
                [0, 0, 0, 0],
            ),
        ];
        for (i, (rep, files, at, tcb)) in cases.iter().enumerate() {
            let a = v
                .verify_evidence(&inputs(rep, files, at))
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            if i < 3 {
                assert_eq!(a.snp_tcb, Some(*tcb), "case {i}");
            }
            assert_eq!(a.measurement.len(), 48);
            // The leaf alone suffices: the chain is bundled.
            let leaf_only = inputs(rep, &files[..1], at);
            assert!(v.verify_evidence(&leaf_only).is_ok(), "case {i} leaf only");
        }
        let vlek = v
            .verify_evidence(&inputs(
                SNP_VLEK_REPORT,
                &[SNP_VLEK],
                "2025-06-01T00:00:00Z",
            ))
            .unwrap();
        assert_eq!(vlek.claims["signing_key"], "vlek");
    }

    #[test]
    fn rejected_outside_the_validity_window() {
        let v = SevSnpVerifier;
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_VLEK_REPORT,
                &[SNP_VLEK],
                "2026-01-01T00:00:00Z"
            ))),
            "sev-snp.cert-validity"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_TRUSTEE_VCEK],
                "2031-01-01T00:00:00Z"
            ))),
            "sev-snp.cert-validity"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_AZ_GENOA_REPORT,
                &[SNP_AZ_GENOA_VCEK],
                "2024-06-01T00:00:00Z"
            ))),
            "sev-snp.cert-validity"
        );
    }

    #[test]
    fn other_chip_swapped_cert_and_fake_ark_have_distinct_checks() {
        let v = SevSnpVerifier;
        let at = "2025-01-01T00:00:00Z";
        // VCEKs of other chips.
        for other in [
            SNP_VCEK_INVALID_LEGACY,
            SNP_VCEK_INVALID_NEW,
            SNP_VIRTEE_MILAN_VCEK,
        ] {
            assert_eq!(
                check(v.verify_evidence(&inputs(SNP_TRUSTEE_REPORT, &[other], at))),
                "sev-snp.chip-id"
            );
        }
        // A swapped intermediate: Genoa's ASK in a Milan chain.
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_TRUSTEE_VCEK, SNP_VIRTEE_GENOA_ASK],
                at
            ))),
            "sev-snp.vcek-chain"
        );
        // A supplied ARK that is not the bundled one: Genoa's, and a forged copy of Milan's.
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_TRUSTEE_VCEK, SNP_VIRTEE_GENOA_ARK],
                at
            ))),
            "sev-snp.ark-root"
        );
        let mut fake_ark = certs(&[SNP_VIRTEE_MILAN_ARK]).remove(0);
        let n = fake_ark.len();
        fake_ark[n - 10] ^= 0x01; // inside the signature: still parses, no longer AMD's
        let mut inp = inputs(SNP_TRUSTEE_REPORT, &[SNP_TRUSTEE_VCEK], at);
        inp.certs.push(fake_ark);
        assert_eq!(check(v.verify_evidence(&inp)), "sev-snp.ark-root");
        // A VLEK presented for a VCEK-signed report.
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_VLEK],
                "2025-06-01T00:00:00Z"
            ))),
            "sev-snp.signing-key"
        );
        // A Genoa VCEK for a Milan report: other chip.
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_AZ_GENOA_VCEK],
                "2025-06-01T00:00:00Z"
            ))),
            "sev-snp.chip-id"
        );
        // The same leaf twice is fine.
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_TRUSTEE_VCEK, SNP_TRUSTEE_VCEK],
                at
            ))),
            "ok"
        );
        // No leaf, two leaves, truncated report.
        assert_eq!(
            check(v.verify_evidence(&inputs(SNP_TRUSTEE_REPORT, &[SNP_TRUSTEE_MILAN_BUNDLE], at))),
            "sev-snp.certs"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                SNP_TRUSTEE_REPORT,
                &[SNP_TRUSTEE_VCEK, SNP_VIRTEE_MILAN_VCEK],
                at
            ))),
            "sev-snp.certs"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                &SNP_TRUSTEE_REPORT[..1183],
                &[SNP_TRUSTEE_VCEK],
                at
            ))),
            "sev-snp.parse"
        );
    }

    #[test]
    fn every_signed_byte_flip_is_rejected() {
        let v = SevSnpVerifier;
        let cases: [(&[u8], &[u8], &str); 4] = [
            (
                SNP_VIRTEE_MILAN_REPORT,
                SNP_VIRTEE_MILAN_VCEK,
                "2025-01-01T00:00:00Z",
            ),
            (SNP_TRUSTEE_REPORT, SNP_TRUSTEE_VCEK, "2025-01-01T00:00:00Z"),
            (
                SNP_AZ_GENOA_REPORT,
                SNP_AZ_GENOA_VCEK,
                "2025-06-01T00:00:00Z",
            ),
            (SNP_VLEK_REPORT, SNP_VLEK, "2025-06-01T00:00:00Z"),
        ];
        for (rep, leaf, at) in cases {
            let mut inp = inputs(rep, &[leaf], at);
            assert!(v.verify_evidence(&inp).is_ok());
            // The signed region and the signature itself (r and s with their padding).
            for i in 0..SIGNED_LEN + 144 {
                inp.evidence[i] ^= 0x01;
                assert!(
                    v.verify_evidence(&inp).is_err(),
                    "flipping byte {i:#x} was accepted"
                );
                inp.evidence[i] ^= 0x01;
            }
        }
    }

    #[test]
    fn binding_and_policy_on_a_real_report() {
        let mut inp = inputs(
            SNP_TRUSTEE_REPORT,
            &[SNP_TRUSTEE_VCEK],
            "2025-01-01T00:00:00Z",
        );
        let mut rd = [0u8; 64];
        rd.copy_from_slice(&SNP_TRUSTEE_REPORT[0x50..0x90]);
        inp.expected_report_data = Some(rd);
        let p = crate::Policy::default();
        let v = crate::attest::verify(TeeKind::SevSnp, &inp, &p);
        assert!(v.verified, "{v:?}");
        assert_eq!(v.tcb["microcode"], 115);
        rd[0] ^= 1;
        inp.expected_report_data = Some(rd);
        let v = crate::attest::verify(TeeKind::SevSnp, &inp, &p);
        assert_eq!(v.failure.unwrap().check, "report-data");
        inp.expected_report_data = None;
        let high = crate::Policy::from_toml("[min_tcb.sev-snp]\nmicrocode = 200").unwrap();
        let v = crate::attest::verify(TeeKind::SevSnp, &inp, &high);
        assert_eq!(v.failure.unwrap().check, "policy.min-tcb");
        let ok =
            crate::Policy::from_toml("[min_tcb.sev-snp]\nbootloader = 3\nsnp = 8\nmicrocode = 115")
                .unwrap();
        assert!(crate::attest::verify(TeeKind::SevSnp, &inp, &ok).verified);
        let pinned = crate::Policy::from_toml(&format!(
            "[measurements]\nsev-snp = [\"{}\"]",
            "00".repeat(48)
        ))
        .unwrap();
        let v = crate::attest::verify(TeeKind::SevSnp, &inp, &pinned);
        assert_eq!(v.failure.unwrap().check, "policy.measurement");
    }

    #[test]
    fn turin_vcek_extensions_are_read() {
        let c = Cert::from_der(SNP_TURIN_VCEK).unwrap();
        assert_eq!(c.issuer_cn(), "SEV-Turin");
        assert!(ext_u8(&c, OID_FMC_SPL).is_some());
        assert_eq!(hwid(&c).map(|h| h.len()), Some(8));
        assert!(roots(Product::Turin).is_some());
        assert!(verify_signed_by(&c, &roots(Product::Turin).unwrap().ask).is_ok());
    }
}
