//! Certificate handling shared by the SEV-SNP and NVIDIA verifiers: loading
//! DER, PEM and PEM bundles, and checking one certificate's signature under
//! its issuer's key.
//!
//! Why not a general path builder: each vendor chain here has a fixed shape
//! (VCEK→ASK→ARK, leaf→…→NVIDIA root), and the verifiers want to say *which*
//! link broke. Signatures are checked with `ring` (already used by dcap-qvl),
//! which verifies P-384 several times faster than the pure-Rust curve
//! crates; with the `aws-lc` feature, on native targets, with AWS-LC
//! instead (same API, same algorithms and strictness, assembly P-384 — the
//! `sealroom` command enables it, since it links AWS-LC through rustls
//! anyway; the node image and the wasm32 page keep ring). The real AMD
//! VCEKs carry serial number 0, which `x509-cert` 0.2 accepts (strict
//! parsers such as webpki do not).

#[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
use aws_lc_rs::signature::{
    UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384,
};
#[cfg(not(all(feature = "aws-lc", not(target_arch = "wasm32"))))]
use ring::signature::{
    UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384,
};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// Which implementation verifies certificate and report signatures in this
/// build (`sealroom bench verify` prints it beside its figures).
pub const SIGNATURE_BACKEND: &str = if cfg!(all(feature = "aws-lc", not(target_arch = "wasm32"))) {
    "aws-lc"
} else {
    "ring"
};

/// `ecdsa-with-SHA384`.
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
/// `RSASSA-PSS` (AMD signs with SHA-384, MGF1-SHA-384, salt 48).
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";

/// One parsed certificate, keeping its exact DER (for byte-equality checks
/// against bundled roots and for signature checks over the original TBS).
#[derive(Clone, Debug)]
pub struct Cert {
    /// The certificate's DER encoding, as supplied.
    pub der: Vec<u8>,
    /// The parsed certificate.
    pub cert: Certificate,
}

impl Cert {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert =
            Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// The subject's common name (empty when it has none).
    pub fn subject_cn(&self) -> String {
        common_name(&self.cert.tbs_certificate.subject)
    }

    /// The issuer's common name (empty when it has none).
    pub fn issuer_cn(&self) -> String {
        common_name(&self.cert.tbs_certificate.issuer)
    }

    /// Validity window as Unix seconds `(not_before, not_after)`.
    pub fn validity(&self) -> (i64, i64) {
        let v = &self.cert.tbs_certificate.validity;
        let secs = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        (secs(&v.not_before), secs(&v.not_after))
    }

    /// Whether `at` (Unix seconds) is inside the validity window; otherwise a
    /// message naming the window.
    pub fn check_valid_at(&self, at: i64) -> Result<(), String> {
        let (nb, na) = self.validity();
        if at < nb || at > na {
            return Err(format!(
                "certificate `{}` is valid from {} to {}, not at {}",
                self.subject_cn(),
                fmt_time(nb),
                fmt_time(na),
                fmt_time(at)
            ));
        }
        Ok(())
    }

    /// The raw `extnValue` of the extension with this dotted OID.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// The subject public key as an uncompressed P-384 point, if it is one.
    pub fn p384_key(&self) -> Option<&[u8]> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid.to_string() != "1.2.840.10045.2.1" {
            return None;
        }
        // namedCurve secp384r1 (1.3.132.0.34).
        let curve = spki.algorithm.parameters.as_ref()?.to_der().ok()?;
        if curve != [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22] {
            return None;
        }
        let point = spki.subject_public_key.raw_bytes();
        (point.len() == 97 && point[0] == 0x04).then_some(point)
    }

    /// The subject public key as a PKCS#1 RSA public key (DER), if it is one.
    pub fn rsa_key(&self) -> Option<&[u8]> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let oid = spki.algorithm.oid.to_string();
        // rsaEncryption, or RSASSA-PSS keys as AMD's ARK/ASK use.
        if oid != "1.2.840.113549.1.1.1" && oid != OID_RSA_PSS {
            return None;
        }
        Some(spki.subject_public_key.raw_bytes())
    }

    /// Whether the subject equals the issuer (a self-issued certificate).
    pub fn self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }

    /// Whether the certificate's basicConstraints say it is a CA.
    pub fn is_ca(&self) -> bool {
        use x509_cert::ext::pkix::BasicConstraints;
        self.extension("2.5.29.19")
            .and_then(|v| BasicConstraints::from_der(v).ok())
            .is_some_and(|bc| bc.ca)
    }
}

/// The common name of an X.509 name, or "" when it has none.
fn common_name(name: &x509_cert::name::Name) -> String {
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid.to_string() == "2.5.4.3" {
                if let Ok(s) = x509_cert::der::asn1::Utf8StringRef::try_from(&atv.value) {
                    return s.as_str().to_string();
                }
                if let Ok(s) = x509_cert::der::asn1::PrintableStringRef::try_from(&atv.value) {
                    return s.as_str().to_string();
                }
            }
        }
    }
    String::new()
}

/// Verifies an ECDSA P-384/SHA-384 signature given as fixed `r ‖ s`
/// (big-endian, 48 bytes each) under an uncompressed P-384 point.
/// Returns whether it verifies.
pub fn verify_p384_fixed(point: &[u8], msg: &[u8], rs: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
        .verify(msg, rs)
        .is_ok()
}

/// RFC 3339 rendering of Unix seconds, for messages.
pub fn fmt_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("@{secs}"))
}

/// The exact bytes of the `tbsCertificate` inside a certificate's DER (the
/// signed bytes). Taken from the original encoding, not re-encoded, so a
/// certificate that is not canonical DER still verifies byte-for-byte.
fn tbs_bytes(der: &[u8]) -> Result<&[u8], String> {
    let (_, outer_body, _) = read_tlv(der).ok_or("certificate DER is malformed")?;
    let (tbs_len, _, _) = read_tlv(outer_body).ok_or("tbsCertificate DER is malformed")?;
    outer_body
        .get(..tbs_len)
        .ok_or_else(|| "tbsCertificate DER is malformed".to_string())
}

/// Reads one DER TLV (definite length, low tag numbers). Returns the total
/// length of the TLV, its content, and the remainder.
pub(crate) fn read_tlv(b: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let _tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let total = hdr.checked_add(len)?;
    let content = b.get(hdr..total)?;
    Some((total, content, b.get(total..)?))
}

/// Checks that `child` names `issuer` as its issuer and carries a valid
/// signature under `issuer`'s key (ECDSA P-384/SHA-384 or RSA-PSS/SHA-384).
pub fn verify_signed_by(child: &Cert, issuer: &Cert) -> Result<(), String> {
    if child.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
        return Err(format!(
            "`{}` is issued by `{}`, not by `{}`",
            child.subject_cn(),
            child.issuer_cn(),
            issuer.subject_cn()
        ));
    }
    let tbs = tbs_bytes(&child.der)?;
    let sig = child.cert.signature.raw_bytes();
    let alg = child.cert.signature_algorithm.oid.to_string();
    let bad = || {
        format!(
            "signature of `{}` does not verify under `{}`",
            child.subject_cn(),
            issuer.subject_cn()
        )
    };
    match alg.as_str() {
        OID_ECDSA_SHA384 => {
            let key = issuer
                .p384_key()
                .ok_or_else(|| format!("`{}` has no P-384 key", issuer.subject_cn()))?;
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, key)
                .verify(tbs, sig)
                .map_err(|_| bad())
        }
        OID_RSA_PSS => {
            check_pss_sha384(child)?;
            let key = issuer
                .rsa_key()
                .ok_or_else(|| format!("`{}` has no RSA key", issuer.subject_cn()))?;
            // ring's RSA-PSS verification uses a salt as long as the digest (48), as AMD does.
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, key)
                .verify(tbs, sig)
                .map_err(|_| bad())
        }
        other => Err(format!(
            "`{}` is signed with unsupported algorithm {other}",
            child.subject_cn()
        )),
    }
}

/// AMD's certificates use RSA-PSS with SHA-384 (salt 48). The parameters are
/// checked rather than assumed, so a certificate claiming another hash is
/// refused instead of being verified with the wrong one.
fn check_pss_sha384(child: &Cert) -> Result<(), String> {
    let params = child
        .cert
        .signature_algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| format!("`{}`: RSA-PSS without parameters", child.subject_cn()))?;
    let der = params.to_der().map_err(|e| e.to_string())?;
    // id-sha384 (2.16.840.1.101.3.4.2.2) must appear as the hash algorithm.
    const SHA384_OID_DER: &[u8] = &[
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
    ];
    if der
        .windows(SHA384_OID_DER.len())
        .any(|w| w == SHA384_OID_DER)
    {
        Ok(())
    } else {
        Err(format!(
            "`{}`: RSA-PSS parameters do not name SHA-384",
            child.subject_cn()
        ))
    }
}

/// Loads certificates from one file's bytes: DER (one or several
/// concatenated), PEM, or a PEM bundle. Returns each certificate's DER.
pub fn load_certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.contains(BEGIN) {
            let mut out = Vec::new();
            let mut rest = text;
            while let Some(start) = rest.find(BEGIN) {
                let after = &rest[start..];
                let end = after.find(END).ok_or("PEM certificate without END line")?;
                let block = &after[..end + END.len()];
                let (label, der) = x509_cert::der::pem::decode_vec(block.as_bytes())
                    .map_err(|e| format!("bad PEM certificate: {e}"))?;
                if label != "CERTIFICATE" {
                    return Err(format!("PEM block labelled {label}, expected CERTIFICATE"));
                }
                Cert::from_der(&der)?;
                out.push(der);
                rest = &after[end + END.len()..];
            }
            return Ok(out);
        }
    }
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (total, _, tail) = read_tlv(rest).ok_or("neither PEM nor DER certificates")?;
        let der = &rest[..total];
        Cert::from_der(der)?;
        out.push(der.to_vec());
        rest = tail;
    }
    if out.is_empty() {
        return Err("no certificate in file".into());
    }
    Ok(out)
}

/// Parses a list of DER certificates, naming the position of a bad one.
/// Exact duplicates (the same file passed twice, a bundle repeating the leaf)
/// are kept once: they add nothing and would otherwise look like a second leaf.
pub fn parse_all(ders: &[Vec<u8>]) -> Result<Vec<Cert>, String> {
    let mut out: Vec<Cert> = Vec::with_capacity(ders.len());
    for (i, d) in ders.iter().enumerate() {
        let c = Cert::from_der(d).map_err(|e| format!("certificate #{}: {e}", i + 1))?;
        if !out.iter().any(|o| o.der == c.der) {
            out.push(c);
        }
    }
    Ok(out)
}

/// DER of a certificate re-encoded (used only to normalise bundled roots).
pub fn reencode(cert: &Certificate) -> Option<Vec<u8>> {
    cert.to_der().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_pem_bundles_and_der() {
        let milan = include_bytes!("roots/amd_milan.pem");
        let certs = load_certs(milan).unwrap();
        assert_eq!(certs.len(), 3);
        let parsed = parse_all(&certs).unwrap();
        assert_eq!(parsed[0].subject_cn(), "SEV-Milan");
        assert_eq!(parsed[1].subject_cn(), "ARK-Milan");
        // ARK self-signed, ASK and ASVK under it.
        verify_signed_by(&parsed[1], &parsed[1]).unwrap();
        verify_signed_by(&parsed[0], &parsed[1]).unwrap();
        verify_signed_by(&parsed[2], &parsed[1]).unwrap();
        assert!(verify_signed_by(&parsed[1], &parsed[0]).is_err());
        let der = load_certs(include_bytes!(
            "../../testdata/sev-snp/virtee_vcek_milan.der"
        ))
        .unwrap();
        assert_eq!(der.len(), 1);
        let mut two = der[0].clone();
        two.extend_from_slice(&der[0]);
        assert_eq!(load_certs(&two).unwrap().len(), 2);
        assert!(load_certs(b"hello").is_err());
        assert_eq!(parse_all(&load_certs(&two).unwrap()).unwrap().len(), 1);
    }

    /// With the `aws-lc` feature the signatures are checked by AWS-LC,
    /// elsewhere (node image, browser page) by ring: both must give the same
    /// verdict on every link of the real vendor chains (ECDSA P-384 for
    /// NVIDIA, RSA-PSS for AMD), as given and with the signature or the
    /// signed bytes altered — a flipped bit, a byte appended to the DER
    /// signature, a non-minimal integer encoding — so no input passes one
    /// verifier and fails the other.
    #[cfg(all(feature = "aws-lc", not(target_arch = "wasm32")))]
    #[test]
    fn aws_lc_and_ring_agree_on_every_vendor_link_and_its_alterations() {
        use aws_lc_rs::signature as aws;
        use ring::signature as rng;
        let chains: [&[u8]; 2] = [
            include_bytes!("roots/amd_milan.pem"),
            include_bytes!("../../testdata/nvidia/trustee_hopper_cert_chain_case1.txt"),
        ];
        let mut links = 0;
        for chain in chains {
            let certs = parse_all(&load_certs(chain).unwrap()).unwrap();
            for child in &certs {
                let Some(issuer) = certs
                    .iter()
                    .find(|i| i.cert.tbs_certificate.subject == child.cert.tbs_certificate.issuer)
                else {
                    continue;
                };
                let tbs = tbs_bytes(&child.der).unwrap().to_vec();
                let sig = child.cert.signature.raw_bytes().to_vec();
                let ecdsa = child.cert.signature_algorithm.oid.to_string() == OID_ECDSA_SHA384;
                let both = |msg: &[u8], sig: &[u8]| -> (bool, bool) {
                    if ecdsa {
                        let key = issuer.p384_key().unwrap();
                        (
                            aws::UnparsedPublicKey::new(&aws::ECDSA_P384_SHA384_ASN1, key)
                                .verify(msg, sig)
                                .is_ok(),
                            rng::UnparsedPublicKey::new(&rng::ECDSA_P384_SHA384_ASN1, key)
                                .verify(msg, sig)
                                .is_ok(),
                        )
                    } else {
                        let key = issuer.rsa_key().unwrap();
                        (
                            aws::UnparsedPublicKey::new(&aws::RSA_PSS_2048_8192_SHA384, key)
                                .verify(msg, sig)
                                .is_ok(),
                            rng::UnparsedPublicKey::new(&rng::RSA_PSS_2048_8192_SHA384, key)
                                .verify(msg, sig)
                                .is_ok(),
                        )
                    }
                };
                assert_eq!(both(&tbs, &sig), (true, true), "{}", child.subject_cn());
                links += 1;
                let mut variants: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for i in [0, sig.len() / 2, sig.len() - 1] {
                    let mut s = sig.clone();
                    s[i] ^= 0x01;
                    variants.push((tbs.clone(), s));
                }
                let mut m = tbs.clone();
                m[tbs.len() / 3] ^= 0x80;
                variants.push((m, sig.clone()));
                let mut longer = sig.clone();
                longer.push(0);
                variants.push((tbs.clone(), longer));
                if ecdsa {
                    // SEQUENCE { INTEGER r, INTEGER s }: r re-encoded with a
                    // superfluous leading zero (not DER) and the lengths fixed.
                    if let (0x30, 0x02) = (sig[0], sig[2]) {
                        let r_len = sig[3] as usize;
                        let mut padded = vec![0x30, sig[1] + 1, 0x02, sig[3] + 1, 0x00];
                        padded.extend_from_slice(&sig[4..4 + r_len]);
                        padded.extend_from_slice(&sig[4 + r_len..]);
                        variants.push((tbs.clone(), padded));
                    }
                }
                for (msg, s) in variants {
                    let (a, r) = both(&msg, &s);
                    assert!(!a && !r, "{}: aws-lc {a}, ring {r}", child.subject_cn());
                }
            }
        }
        assert!(links >= 6, "{links} links");
    }
}
