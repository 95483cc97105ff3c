//! NVIDIA H100 (Hopper) GPU evidence: an SPDM GET_MEASUREMENTS request (with
//! the verifier's nonce) followed by the GPU's signed MEASUREMENTS response,
//! as the driver returns it, and the device certificate chain.
//!
//! The report is parsed by its structure, never by "the last 96 bytes": the
//! response's own length fields locate the signature (one real sample carries
//! a trailing zero byte after it; trailing zero bytes are tolerated, anything
//! else is refused).
//!
//! Checks, in order:
//! 1. `nvidia.parse`: request (37 bytes, SPDM 1.1, GET_MEASUREMENTS with a
//!    signature requested), response (MEASUREMENTS, same version), every
//!    measurement block and opaque TLV length consistent.
//! 2. `nvidia.cert-chain`: the supplied certificates form one chain, leaf first
//!    after ordering by issuer, each signed by the next (ECDSA P-384), ending at
//!    the bundled NVIDIA Device Identity CA (a supplied root must equal it);
//!    every CA certificate says CA.
//! 3. `nvidia.cert-validity`: every certificate valid at `at`.
//! 4. `nvidia.signature`: ECDSA P-384/SHA-384 under the leaf over
//!    request ‖ response-without-signature (SPDM 1.1 L1/L2 transcript).
//!
//! The nonce is checked by the policy stage (`nvidia.nonce`), and measurements
//! against reference values (`nvidia.reference`) when reference values are
//! given. What this does not do: fetch NVIDIA RIMs or OCSP (offline), or prove
//! that the GPU is the one bound to the CPU TEE's PCIe link (no TDISP).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sha2::Digest;

use super::certs::{verify_signed_by, Cert};
use super::{hx, Attested, Failure, Inputs, Verifier};
use crate::check::Check;
use crate::TeeKind;

/// Bundled NVIDIA Device Identity CA (PEM).
pub const NVIDIA_DEVICE_ROOT_PEM: &[u8] = include_bytes!("roots/nvidia_device_identity_ca.pem");

const REQUEST_LEN: usize = 37;
const SIG_LEN: usize = 96;
/// Certificates in an H100 device chain, root included.
const CHAIN_LEN: usize = 5;

pub use crate::binding::{gpu_nonce_for, GPU_NONCE_DOMAIN};

/// A parsed SPDM measurement report.
#[derive(Clone, Debug)]
pub struct SpdmReport {
    /// SPDM version byte (0x11 = 1.1).
    pub version: u8,
    /// The requester's nonce (from the request).
    pub request_nonce: [u8; 32],
    /// The responder's nonce.
    pub response_nonce: [u8; 32],
    /// Measurement blocks by index: the measurement value.
    pub measurements: BTreeMap<u8, Vec<u8>>,
    /// The raw measurement record (all blocks).
    pub record: Vec<u8>,
    /// Opaque TLVs (type, value).
    pub opaque: Vec<(u16, Vec<u8>)>,
    /// Length of request ‖ response without the signature (the signed bytes).
    pub signed_len: usize,
    /// The signature, r ‖ s big-endian.
    pub signature: [u8; SIG_LEN],
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or_else(|| format!("truncated in {what} at byte {}", self.pos))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u24(&mut self, what: &str) -> Result<usize, String> {
        let s = self.take(3, what)?;
        Ok(usize::from(s[0]) | usize::from(s[1]) << 8 | usize::from(s[2]) << 16)
    }
}

impl SpdmReport {
    /// Parses request ‖ response (binary; see [`super::decode_evidence`] for hex).
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        let mut c = Cursor { b, pos: 0 };
        let version = c.u8("request")?;
        if version != 0x11 {
            return Err(format!("SPDM version {version:#x} is not supported (1.1)"));
        }
        if c.u8("request")? != 0xE0 {
            return Err("request is not GET_MEASUREMENTS (0xE0)".into());
        }
        let p1 = c.u8("request")?;
        if p1 & 1 == 0 {
            return Err("request did not ask for a signature".into());
        }
        let _operation = c.u8("request")?;
        let mut request_nonce = [0u8; 32];
        request_nonce.copy_from_slice(c.take(32, "request nonce")?);
        let _slot = c.u8("request")?;
        debug_assert_eq!(c.pos, REQUEST_LEN);

        if c.u8("response")? != version {
            return Err("response SPDM version differs from the request's".into());
        }
        if c.u8("response")? != 0x60 {
            return Err("response is not MEASUREMENTS (0x60)".into());
        }
        let _p1 = c.u8("response")?;
        let _p2 = c.u8("response")?;
        let n_blocks = c.u8("response")?;
        let rec_len = c.u24("response")?;
        let record = c.take(rec_len, "measurement record")?;
        let mut measurements = BTreeMap::new();
        let mut rc = Cursor { b: record, pos: 0 };
        let mut count = 0usize;
        while rc.pos < record.len() {
            let index = rc.u8("measurement block")?;
            let spec = rc.u8("measurement block")?;
            if spec != 1 {
                return Err(format!(
                    "measurement {index}: specification {spec} is not DMTF (1)"
                ));
            }
            let size = rc.u16("measurement block")? as usize;
            let m = rc.take(size, "measurement block")?;
            let mut mc = Cursor { b: m, pos: 0 };
            let _vtype = mc.u8("DMTF measurement")?;
            let vlen = mc.u16("DMTF measurement")? as usize;
            let value = mc.take(vlen, "DMTF measurement")?;
            if mc.pos != m.len() {
                return Err(format!(
                    "measurement {index}: DMTF value size disagrees with block size"
                ));
            }
            if measurements.insert(index, value.to_vec()).is_some() {
                return Err(format!("measurement {index} appears twice"));
            }
            count += 1;
        }
        if count != usize::from(n_blocks) {
            return Err(format!(
                "response announces {n_blocks} blocks, the record holds {count}"
            ));
        }
        let mut response_nonce = [0u8; 32];
        response_nonce.copy_from_slice(c.take(32, "response nonce")?);
        let opaque_len = c.u16("opaque length")? as usize;
        let opaque_bytes = c.take(opaque_len, "opaque data")?;
        let mut opaque = Vec::new();
        let mut oc = Cursor {
            b: opaque_bytes,
            pos: 0,
        };
        while oc.pos < opaque_bytes.len() {
            let t = oc.u16("opaque TLV")?;
            let l = oc.u16("opaque TLV")? as usize;
            opaque.push((t, oc.take(l, "opaque TLV")?.to_vec()));
        }
        let signed_len = c.pos;
        let mut signature = [0u8; SIG_LEN];
        signature.copy_from_slice(c.take(SIG_LEN, "signature")?);
        if b[c.pos..].iter().any(|x| *x != 0) {
            return Err(format!(
                "{} unexpected bytes after the signature",
                b.len() - c.pos
            ));
        }
        Ok(Self {
            version,
            request_nonce,
            response_nonce,
            measurements,
            record: record.to_vec(),
            opaque,
            signed_len,
            signature,
        })
    }

    fn tlv(&self, t: u16) -> Option<&[u8]> {
        self.opaque
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }
}

fn c_string(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|x| *x == 0).next().unwrap_or_default()).into_owned()
}

fn root() -> Option<&'static Cert> {
    static ROOT: OnceLock<Option<Cert>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let ders = super::certs::load_certs(NVIDIA_DEVICE_ROOT_PEM).ok()?;
        let c = Cert::from_der(ders.first()?).ok()?;
        verify_signed_by(&c, &c).ok()?;
        Some(c)
    })
    .as_ref()
}

/// Orders supplied certificates into a chain from the leaf (the one no other
/// certificate names as issuer) to the root, refusing gaps and extras.
fn order_chain(certs: &[Cert]) -> Result<Vec<&Cert>, String> {
    let subjects_issued: Vec<bool> = certs
        .iter()
        .map(|c| {
            certs.iter().any(|o| {
                !std::ptr::eq(o, c)
                    && o.cert.tbs_certificate.issuer == c.cert.tbs_certificate.subject
                    && !o.self_issued()
            })
        })
        .collect();
    let leaves: Vec<&Cert> = certs
        .iter()
        .zip(&subjects_issued)
        .filter(|(c, used)| !**used && !c.self_issued())
        .map(|(c, _)| c)
        .collect();
    let leaf = match leaves.as_slice() {
        [one] => *one,
        [] => return Err("no leaf certificate (the chain holds only CA certificates)".into()),
        _ => {
            return Err(format!(
                "{} certificates could be the leaf: the chain is broken or has extras",
                leaves.len()
            ))
        }
    };
    let mut chain = vec![leaf];
    let mut cur = leaf;
    while !cur.self_issued() {
        let next = certs
            .iter()
            .find(|c| c.cert.tbs_certificate.subject == cur.cert.tbs_certificate.issuer)
            .ok_or_else(|| {
                format!(
                    "issuer `{}` of `{}` is missing",
                    cur.issuer_cn(),
                    cur.subject_cn()
                )
            })?;
        if chain.len() > certs.len() {
            return Err("certificate chain loops".into());
        }
        chain.push(next);
        cur = next;
    }
    if chain.len() != certs.len() {
        return Err(format!(
            "{} supplied certificates are not part of the chain",
            certs.len() - chain.len()
        ));
    }
    Ok(chain)
}

/// Chain links (a certificate and the one that signed it) whose signatures
/// verified in this process, by SHA-256 of both certificates
/// (length-prefixed), with the child's position in its chain. A P-384
/// signature costs more than the rest of a verification: the vendor links
/// (provisioner ICA ← GH100 identity ← root) are the same for every H100 and
/// are verified once per process, a GPU's own links (attestation leaf ← GSP
/// BROM ← provisioner ICA) once per GPU. Everything that depends on the
/// instant or the report (validity, CA flags, the report signature) is still
/// checked every time. Only links that verified are remembered.
static LINK_CACHE: std::sync::Mutex<Vec<([u8; 32], usize)>> = std::sync::Mutex::new(Vec::new());
const LINK_CACHE_MAX: usize = 256;

fn link_key(child: &Cert, issuer: &Cert) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(b"sealroom.nvidia-link.v1");
    for c in [child, issuer] {
        h.update((c.der.len() as u64).to_be_bytes());
        h.update(&c.der);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize());
    out
}

fn link_cached(key: &[u8; 32]) -> bool {
    LINK_CACHE
        .lock()
        .map(|c| c.iter().any(|(k, _)| k == key))
        .unwrap_or(false)
}

fn remember_link(key: [u8; 32], position: usize) {
    if let Ok(mut c) = LINK_CACHE.lock() {
        if c.len() >= LINK_CACHE_MAX {
            c.remove(0);
        }
        c.push((key, position));
    }
}

/// Forgets every remembered link (the benchmark measures a first
/// verification in a fresh process with it).
pub fn clear_chain_cache() {
    if let Ok(mut c) = LINK_CACHE.lock() {
        c.clear();
    }
}

/// Forgets the links of the GPUs themselves (leaf and GSP BROM), keeping the
/// vendor links: the benchmark measures a GPU this process has not seen,
/// from a verifier that has verified another H100 before.
pub fn clear_device_links() {
    if let Ok(mut c) = LINK_CACHE.lock() {
        c.retain(|(_, position)| *position >= DEVICE_LINKS);
    }
}

/// The links at the bottom of an H100 chain that belong to one GPU.
const DEVICE_LINKS: usize = 2;

/// The NVIDIA GPU verifier.
pub struct NvidiaVerifier;

impl Verifier for NvidiaVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::NvidiaGpu
    }

    fn verify_evidence(&self, inputs: &Inputs) -> Result<Attested, Failure> {
        let rep =
            SpdmReport::parse(&inputs.evidence).map_err(|e| Failure::new(Check::NvidiaParse, e))?;
        let chain_err = |e: String| Failure::new(Check::NvidiaCertChain, e);
        let root = root().ok_or_else(|| chain_err("bundled NVIDIA root does not load".into()))?;
        let mut certs = super::certs::parse_all(&inputs.certs).map_err(chain_err)?;
        if certs.is_empty() {
            return Err(chain_err(
                "no GPU certificate chain supplied (--certs)".into(),
            ));
        }
        // The root may be supplied or not; if supplied it must be NVIDIA's.
        for c in &certs {
            if c.self_issued() && c.der != root.der {
                return Err(Failure::new(
                    Check::NvidiaRoot,
                    format!(
                        "supplied root `{}` is not the bundled NVIDIA Device Identity CA",
                        c.subject_cn()
                    ),
                ));
            }
        }
        if !certs.iter().any(|c| c.der == root.der) {
            certs.push(root.clone());
        }
        let chain = order_chain(&certs).map_err(chain_err)?;
        for (position, pair) in chain.windows(2).enumerate() {
            let key = link_key(pair[0], pair[1]);
            if !link_cached(&key) {
                verify_signed_by(pair[0], pair[1]).map_err(chain_err)?;
                remember_link(key, position);
            }
        }
        if chain.len() != CHAIN_LEN {
            return Err(chain_err(format!(
                "the H100 chain has {CHAIN_LEN} certificates (leaf, GSP BROM, provisioner ICA, GH100 identity, root); this has {}",
                chain.len()
            )));
        }
        if chain[0].is_ca() {
            return Err(chain_err(format!(
                "`{}` is a CA certificate: the device leaf is missing",
                chain[0].subject_cn()
            )));
        }
        for ca in &chain[1..] {
            if !ca.is_ca() {
                return Err(chain_err(format!(
                    "`{}` signs certificates but is not a CA",
                    ca.subject_cn()
                )));
            }
        }
        for c in &chain {
            c.check_valid_at(inputs.at)
                .map_err(|e| Failure::new(Check::NvidiaCertValidity, e))?;
        }
        let leaf = chain[0];
        let key = leaf
            .p384_key()
            .ok_or_else(|| chain_err(format!("leaf `{}` has no P-384 key", leaf.subject_cn())))?;
        if !super::certs::verify_p384_fixed(key, &inputs.evidence[..rep.signed_len], &rep.signature)
        {
            return Err(Failure::new(
                Check::NvidiaSignature,
                "SPDM measurement signature does not verify under the leaf",
            ));
        }

        let measurement = sha2::Sha384::digest(&rep.record).to_vec();
        let mut claims = serde_json::Map::new();
        claims.insert(
            "spdm_version".into(),
            format!("{}.{}", rep.version >> 4, rep.version & 0xF).into(),
        );
        claims.insert("leaf".into(), leaf.subject_cn().into());
        claims.insert("chain_length".into(), chain.len().into());
        claims.insert("measurement_count".into(), rep.measurements.len().into());
        claims.insert("response_nonce".into(), hx(&rep.response_nonce));
        if let Some(v) = rep.tlv(3) {
            claims.insert("driver_version".into(), c_string(v).into());
        }
        if let Some(v) = rep.tlv(6).filter(|v| v.len() >= 5) {
            claims.insert(
                "vbios_version".into(),
                format!(
                    "{:02x}.{:02x}.{:02x}.{:02x}.{:02x}",
                    v[3], v[2], v[1], v[0], v[4]
                )
                .into(),
            );
        }
        if let Some(v) = rep.tlv(14) {
            claims.insert("board_id".into(), hx(v));
        }
        if let Some(v) = rep.tlv(15) {
            claims.insert("chip_sku".into(), c_string(v).into());
        }
        if let Some(v) = rep.tlv(20) {
            claims.insert("fwid".into(), hx(v));
        }
        let ms: serde_json::Map<String, serde_json::Value> = rep
            .measurements
            .iter()
            .map(|(k, v)| (k.to_string(), hx(v)))
            .collect();
        claims.insert("measurements".into(), serde_json::Value::Object(ms));
        let mut tcb = serde_json::Map::new();
        if let Some(v) = rep.tlv(3) {
            tcb.insert("driver_version".into(), c_string(v).into());
        }
        Ok(Attested {
            measurement,
            report_data: rep.request_nonce.to_vec(),
            gpu_measurements: Some(rep.measurements),
            tcb,
            claims,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::super::{decode_evidence, GpuReference};
    use super::*;
    use crate::Policy;

    fn inputs(rep: &[u8], chain: &[&[u8]]) -> Inputs {
        Inputs {
            evidence: decode_evidence(rep),
            certs: certs(chain),
            at: t("2026-01-01T00:00:00Z"),
            ..Default::default()
        }
    }

    #[test]
    fn both_reports_verify_and_claims_match() {
        assert_eq!(certs(&[NV_ROOT]), certs(&[NVIDIA_DEVICE_ROOT_PEM]));
        let v = NvidiaVerifier;
        let a = v.verify_evidence(&inputs(NV_REPORT, &[NV_CHAIN1])).unwrap();
        assert_eq!(hex::encode(&a.report_data[..4]), "931d8dd0");
        assert_eq!(a.claims["driver_version"], "550.90.07");
        assert_eq!(a.claims["vbios_version"], "96.00.9f.00.01");
        let expected: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../testdata/nvidia/trustee_hopperAttestationReport-claims.txt"
        ))
        .unwrap();
        assert_eq!(a.claims["measurements"], expected["measurements"]);
        // The coco report with its trailing zero byte, and chains given in another order or without the root.
        let b = v
            .verify_evidence(&inputs(NV_COCO_REPORT, &[NV_COCO_CERTS]))
            .unwrap();
        assert_eq!(b.claims["driver_version"], "580.95.05");
        assert!(v
            .verify_evidence(&inputs(NV_REPORT, &[NV_CHAIN1, NV_CHAIN1, NV_ROOT]))
            .is_ok());
        let mut reversed = inputs(NV_REPORT, &[NV_CHAIN1]);
        reversed.certs.reverse();
        assert!(v.verify_evidence(&reversed).is_ok());
        let mut no_root = inputs(NV_REPORT, &[NV_CHAIN1]);
        no_root.certs.pop();
        assert!(v.verify_evidence(&no_root).is_ok());
        // Validity: the certificates are valid from 2020 (or later) to 9999.
        let mut early = inputs(NV_REPORT, &[NV_CHAIN1]);
        early.at = t("2010-01-01T00:00:00Z");
        assert_eq!(check(v.verify_evidence(&early)), "nvidia.cert-validity");
    }

    #[test]
    fn broken_chains_and_swaps_are_rejected() {
        let v = NvidiaVerifier;
        for (name, chain) in [
            ("case2", NV_CHAIN2),
            ("case3", NV_CHAIN3),
            ("case4", NV_CHAIN4),
        ] {
            assert_eq!(
                check(v.verify_evidence(&inputs(NV_REPORT, &[chain]))),
                "nvidia.cert-chain",
                "{name}"
            );
        }
        // The other GPU's chain for this report: the signature fails under its leaf.
        assert_eq!(
            check(v.verify_evidence(&inputs(NV_REPORT, &[NV_COCO_CERTS]))),
            "nvidia.signature"
        );
        // Another GPU's leaf swapped into this chain.
        let mut swapped = certs(&[NV_CHAIN1]);
        swapped[0] = certs(&[NV_COCO_CERTS]).remove(0);
        let mut inp = inputs(NV_REPORT, &[]);
        inp.certs = swapped;
        assert_ne!(check(v.verify_evidence(&inp)), "ok");
        // A fake root.
        let mut fake = certs(&[NV_CHAIN1]);
        let n = fake[4].len();
        fake[4][n - 5] ^= 1;
        let mut inp = inputs(NV_REPORT, &[]);
        inp.certs = fake;
        assert_eq!(check(v.verify_evidence(&inp)), "nvidia.root");
        // Non-zero trailing bytes.
        let mut inp = inputs(NV_COCO_REPORT, &[NV_COCO_CERTS]);
        *inp.evidence.last_mut().unwrap() = 1;
        assert_eq!(check(v.verify_evidence(&inp)), "nvidia.parse");
    }

    #[test]
    fn every_signed_byte_flip_is_rejected() {
        let v = NvidiaVerifier;
        for (rep, chain) in [(NV_REPORT, NV_CHAIN1), (NV_COCO_REPORT, NV_COCO_CERTS)] {
            let mut inp = inputs(rep, &[chain]);
            let end = SpdmReport::parse(&inp.evidence).unwrap().signed_len + SIG_LEN;
            for i in 0..end {
                inp.evidence[i] ^= 0x01;
                assert!(
                    v.verify_evidence(&inp).is_err(),
                    "flipping byte {i} was accepted"
                );
                inp.evidence[i] ^= 0x01;
            }
        }
    }

    #[test]
    fn nonce_and_reference_values_are_enforced() {
        let mut inp = inputs(NV_REPORT, &[NV_CHAIN1]);
        let nonce = SpdmReport::parse(&inp.evidence).unwrap().request_nonce;
        inp.expected_nonce = Some(nonce);
        let p = Policy::default();
        assert!(crate::attest::verify(TeeKind::NvidiaGpu, &inp, &p).verified);
        let mut wrong = nonce;
        wrong[0] ^= 1;
        inp.expected_nonce = Some(wrong);
        let v = crate::attest::verify(TeeKind::NvidiaGpu, &inp, &p);
        assert_eq!(v.failure.unwrap().check, "nvidia.nonce");
        inp.expected_nonce = Some(nonce);
        let m7 = "6850b0a82e7e77c0f51e0e6732163866003390c4eb286d8dfb26a72f711a9c8bcdf402a1fd4e5d70b97708107a785efc";
        inp.gpu_reference =
            Some(GpuReference::from_toml(&format!("[measurements]\n\"7\" = [\"{m7}\"]")).unwrap());
        assert!(crate::attest::verify(TeeKind::NvidiaGpu, &inp, &p).verified);
        inp.gpu_reference =
            Some(GpuReference::from_toml(&format!("[measurements]\n\"8\" = [\"{m7}\"]")).unwrap());
        let v = crate::attest::verify(TeeKind::NvidiaGpu, &inp, &p);
        assert_eq!(v.failure.unwrap().check, "nvidia.reference");
        assert_eq!(gpu_nonce_for(&[1; 64]), gpu_nonce_for(&[1; 64]));
        assert_ne!(gpu_nonce_for(&[1; 64]), gpu_nonce_for(&[2; 64]));
    }
}
