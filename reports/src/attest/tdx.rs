//! Intel TDX DCAP quote verification (quote v4 and v5), offline, with the
//! collateral supplied as a file (dcap-qvl `QuoteCollateralV3` JSON).
//!
//! The cryptographic work is done by `dcap-qvl`: TCB info and QE identity
//! signatures and freshness, CRLs, the PCK chain to the bundled Intel SGX Root
//! CA, the QE report signature and hash, the quote signature, and the TCB level
//! match. This module adds a strict structural parse first (exact length, no
//! trailing bytes, every length field consistent), names the failed check, and
//! extracts MRTD, RTMRs, report_data and the TD attributes.
//!
//! Checks, in order: `tdx.parse`, `tdx.root` (the chain in the quote ends at
//! the bundled Intel root), `tdx.collateral` (missing or malformed),
//! then as dcap-qvl proceeds: `tdx.collateral-expired`, `tdx.collateral-signature`,
//! `tdx.crl`, `tdx.pck-chain`, `tdx.cert-validity`, `tdx.qe-report-signature`,
//! `tdx.qe-report-data`, `tdx.qe-identity`, `tdx.quote-signature`,
//! `tdx.tcb-status` (no TCB level matches, or Revoked), `tdx.verify` (other).

use std::sync::OnceLock;

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;

use super::{hx, Attested, Failure, Inputs, Verifier};
use crate::check::Check;
use crate::TeeKind;

/// Bundled Intel SGX Root CA (DER), the trust anchor of DCAP.
pub const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("roots/intel_sgx_root_ca.der");

const HEADER_LEN: usize = 48;
const TD10_LEN: usize = 584;
const TD15_LEN: usize = 648;

/// Byte regions of a quote, as found by the structural parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteLayout {
    /// Quote version (4 or 5).
    pub version: u16,
    /// End of the signed region (header + body descriptor + body).
    pub signed_end: usize,
    /// Start and end of the signature data.
    pub sig_data: (usize, usize),
    /// Offset of the TD report body.
    pub body_offset: usize,
    /// Length of the TD report body.
    pub body_len: usize,
    /// The PCK certificate chain embedded in the quote (DER, leaf first).
    pub pck_chain: Vec<Vec<u8>>,
}

fn le16(b: &[u8], o: usize) -> Result<u16, String> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated at {o}"))
}

fn le32(b: &[u8], o: usize) -> Result<u32, String> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at {o}"))
}

/// Parses the structure of a TDX quote strictly: versions 4/5, TDX TEE type,
/// ECDSA-256 attestation key, and every length consistent with the total.
pub fn parse_layout(b: &[u8]) -> Result<QuoteLayout, String> {
    let version = le16(b, 0)?;
    if version != 4 && version != 5 {
        return Err(format!("quote version {version}, expected 4 or 5"));
    }
    if le16(b, 2)? != 2 {
        return Err("attestation key type is not ECDSA-256 with P-256".into());
    }
    if le32(b, 4)? != 0x81 {
        return Err("TEE type is not TDX (0x81)".into());
    }
    let (body_offset, body_len) = if version == 4 {
        (HEADER_LEN, TD10_LEN)
    } else {
        let body_type = le16(b, HEADER_LEN)?;
        let size = le32(b, HEADER_LEN + 2)? as usize;
        let expected = match body_type {
            2 => TD10_LEN,
            3 => TD15_LEN,
            t => {
                return Err(format!(
                    "quote v5 body type {t} is not a TD report (2 or 3)"
                ))
            }
        };
        if size != expected {
            return Err(format!(
                "body size {size}, expected {expected} for body type {body_type}"
            ));
        }
        (HEADER_LEN + 6, size)
    };
    let signed_end = body_offset + body_len;
    let sig_len = le32(b, signed_end)? as usize;
    let sig_start = signed_end + 4;
    let sig_end = sig_start
        .checked_add(sig_len)
        .ok_or("signature length overflows")?;
    // Quote buffers from the quoting service may be zero-padded; anything
    // else after the signature data is refused.
    let tail = b.get(sig_end..).ok_or_else(|| {
        format!(
            "signature data of {sig_len} bytes ends at {sig_end}, past the quote's {} bytes",
            b.len()
        )
    })?;
    if tail.iter().any(|x| *x != 0) {
        return Err(format!(
            "{} unexpected bytes after the signature data",
            tail.len()
        ));
    }
    // Signature data: signature (64), attestation key (64), certification data.
    let cd = sig_start + 128;
    let cd_type = le16(b, cd)?;
    let cd_len = le32(b, cd + 2)? as usize;
    if cd_type != 6 {
        return Err(format!(
            "certification data type {cd_type}, expected 6 (QE report)"
        ));
    }
    if cd.checked_add(6 + cd_len) != Some(sig_end) {
        return Err("certification data length is inconsistent".into());
    }
    // QE report (384), its signature (64), auth data (len + data), PCK chain.
    let auth = cd + 6 + 384 + 64;
    let auth_len = le16(b, auth)? as usize;
    let inner = auth + 2 + auth_len;
    let inner_type = le16(b, inner)?;
    let inner_len = le32(b, inner + 2)? as usize;
    if inner_type != 5 {
        return Err(format!(
            "inner certification data type {inner_type}, expected 5 (PCK chain)"
        ));
    }
    if inner.checked_add(6 + inner_len) != Some(sig_end) {
        return Err("PCK chain length is inconsistent".into());
    }
    let pck_chain = check_pem_chain(&b[inner + 6..sig_end])?;
    Ok(QuoteLayout {
        version,
        signed_end,
        sig_data: (sig_start, sig_end),
        body_offset,
        body_len,
        pck_chain,
    })
}

/// The PCK chain must be exactly PEM certificates (with at most trailing NULs
/// and whitespace between them): bytes that no check reads must not exist, so
/// that every byte of the signature data is covered by some check.
fn check_pem_chain(b: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(b).map_err(|_| "PCK chain is not text")?;
    let text = text.trim_end_matches('\0');
    let ders = super::certs::load_certs(text.as_bytes()).map_err(|e| format!("PCK chain: {e}"))?;
    if ders.len() < 2 {
        return Err("PCK chain has fewer than two certificates".into());
    }
    // Re-render and compare, ignoring only line breaks between base64 lines.
    let canon = |s: &str| {
        s.chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect::<String>()
    };
    let mut rendered = String::new();
    for d in &ders {
        rendered.push_str("-----BEGIN CERTIFICATE-----");
        rendered.push_str(&encode_b64(d));
        rendered.push_str("-----END CERTIFICATE-----");
    }
    if canon(text) != rendered {
        return Err("PCK chain is not canonical PEM (extra or altered bytes)".into());
    }
    Ok(ders)
}

fn encode_b64(d: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(d.len().div_ceil(3) * 4);
    for c in d.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// Maps a dcap-qvl error (an anyhow chain) to a check name.
fn classify(msg: &str) -> Check {
    let m = msg.to_ascii_lowercase();
    let has = |s: &str| m.contains(s);
    if has("tcbinfo expired")
        || has("qe identity expired")
        || has("issue date is in the future")
        || has("crlexpired")
        || has("crl expired")
        || has("crlnotvalidyet")
    {
        Check::TdxCollateralExpired
    } else if has("certexpired") || has("certnotvalidyet") || has("expired") {
        Check::TdxCertValidity
    } else if has("isv enclave report signature") {
        Check::TdxQuoteSignature
    } else if has("qe_report in quote") {
        Check::TdxQeReportSignature
    } else if has("qe report hash") {
        Check::TdxQeReportData
    } else if has("tcb_info in quote_collateral") || has("qe_identity in quote_collateral") {
        Check::TdxCollateralSignature
    } else if has("no matching tcb level")
        || has("revoked")
        || has("below minimum")
        || has("module")
    {
        Check::TdxTcbStatus
    } else if has("qe identity") || has("mrsigner") || has("isvprodid") || has("qe ") {
        Check::TdxQeIdentity
    } else if has("crl") {
        Check::TdxCrl
    } else if has("certificate") || has("cert") || has("issuer") || has("fmspc") || has("pck") {
        Check::TdxPckChain
    } else if has("decode quote") || has("unsupported") {
        Check::TdxParse
    } else {
        Check::TdxVerify
    }
}

fn verifier() -> &'static QuoteVerifier {
    static V: OnceLock<QuoteVerifier> = OnceLock::new();
    // Debug is decided by the session policy (`policy.debug`), with its own
    // check name, so dcap-qvl is told to report rather than refuse it.
    V.get_or_init(|| QuoteVerifier::new(INTEL_SGX_ROOT_CA.to_vec()).allow_debug(true))
}

/// Parses collateral JSON.
pub fn parse_collateral(b: &[u8]) -> Result<QuoteCollateralV3, String> {
    serde_json::from_slice(b)
        .map_err(|e| format!("collateral is not dcap-qvl QuoteCollateralV3 JSON: {e}"))
}

/// The TDX verifier.
pub struct TdxVerifier;

impl Verifier for TdxVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn verify_evidence(&self, inputs: &Inputs) -> Result<Attested, Failure> {
        let quote = &inputs.evidence;
        let layout = parse_layout(quote).map_err(|e| Failure::new(Check::TdxParse, e))?;
        // The chain in the quote ends at Intel's root: it must be the bundled
        // one byte for byte (dcap-qvl anchors at the bundled root and would
        // otherwise ignore those bytes).
        if layout.pck_chain.last().map(Vec::as_slice) != Some(INTEL_SGX_ROOT_CA) {
            return Err(Failure::new(
                Check::TdxRoot,
                "the PCK chain in the quote does not end at the bundled Intel SGX Root CA",
            ));
        }
        let col = inputs.collateral.as_ref().ok_or_else(|| {
            Failure::new(
                Check::TdxCollateral,
                "no collateral supplied (--collateral)",
            )
        })?;
        let col = parse_collateral(col).map_err(|e| Failure::new(Check::TdxCollateral, e))?;
        let at = u64::try_from(inputs.at)
            .map_err(|_| Failure::new(Check::TdxVerify, "time before 1970"))?;
        let report = verifier().verify(quote, &col, at).map_err(|e| {
            let msg = format!("{e:#}");
            let check = classify(&msg);
            let detail = match check {
                Check::TdxCollateralExpired => format!(
                    "collateral (TCB info, QE identity or a CRL) is not valid at {}: {msg}",
                    super::certs::fmt_time(inputs.at)
                ),
                Check::TdxTcbStatus => {
                    format!("the platform's TCB could not be appraised as acceptable: {msg}")
                }
                _ => msg,
            };
            Failure::new(check, detail)
        })?;
        let td = report
            .report
            .as_td10()
            .ok_or_else(|| Failure::new(Check::TdxParse, "quote does not carry a TD report"))?;
        let debug = td.td_attributes[0] & 0x01 != 0;
        let mut tcb = serde_json::Map::new();
        tcb.insert("status".into(), report.status.clone().into());
        tcb.insert("advisory_ids".into(), report.advisory_ids.clone().into());
        tcb.insert(
            "platform_status".into(),
            format!("{:?}", report.platform_status.status).into(),
        );
        tcb.insert(
            "qe_status".into(),
            format!("{:?}", report.qe_status.status).into(),
        );
        tcb.insert("tee_tcb_svn".into(), hx(&td.tee_tcb_svn));
        let mut claims = serde_json::Map::new();
        claims.insert("quote_version".into(), layout.version.into());
        claims.insert("mr_td".into(), hx(&td.mr_td));
        claims.insert("rtmr0".into(), hx(&td.rt_mr0));
        claims.insert("rtmr1".into(), hx(&td.rt_mr1));
        claims.insert("rtmr2".into(), hx(&td.rt_mr2));
        claims.insert("rtmr3".into(), hx(&td.rt_mr3));
        claims.insert("mr_seam".into(), hx(&td.mr_seam));
        claims.insert("mr_config_id".into(), hx(&td.mr_config_id));
        claims.insert("mr_owner".into(), hx(&td.mr_owner));
        claims.insert("mr_owner_config".into(), hx(&td.mr_owner_config));
        claims.insert("td_attributes".into(), hx(&td.td_attributes));
        claims.insert("xfam".into(), hx(&td.xfam));
        claims.insert("debug".into(), debug.into());
        Ok(Attested {
            measurement: td.mr_td.to_vec(),
            report_data: td.report_data.to_vec(),
            debug,
            tdx_status: Some(report.status.clone()),
            rtmrs: Some([
                td.rt_mr0.to_vec(),
                td.rt_mr1.to_vec(),
                td.rt_mr2.to_vec(),
                td.rt_mr3.to_vec(),
            ]),
            tcb,
            claims,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::*;
    use super::*;

    fn inputs(q: &[u8], c: &[u8], at: &str) -> Inputs {
        Inputs {
            evidence: q.to_vec(),
            collateral: Some(c.to_vec()),
            at: t(at),
            ..Default::default()
        }
    }

    #[test]
    fn sample_rows() {
        let v = TdxVerifier;
        let a = v
            .verify_evidence(&inputs(TDX_QUOTE, TDX_COLLATERAL, "2025-06-20T00:00:00Z"))
            .unwrap();
        assert_eq!(a.tdx_status.as_deref(), Some("UpToDate"));
        assert_eq!(a.measurement.len(), 48);
        assert_eq!(
            check(v.verify_evidence(&inputs(TDX_QUOTE, TDX_COLLATERAL, "2026-11-22T00:00:00Z"))),
            "tdx.collateral-expired"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(TDX_QUOTE, TDX_COLLATERAL, "2025-06-01T00:00:00Z"))),
            "tdx.collateral-expired"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                TDX_QUOTE_OUTDATED,
                TDX_COLLATERAL_OUTDATED,
                "2026-02-19T00:00:00Z"
            ))),
            "tdx.tcb-status"
        );
        assert_eq!(parse_layout(TDX_QUOTE_OUTDATED).unwrap().version, 5);
        assert_eq!(
            check(v.verify_evidence(&inputs(
                TDX_QUOTE_FROM_HEX,
                TDX_COLLATERAL,
                "2025-06-20T00:00:00Z"
            ))),
            "tdx.tcb-status"
        );
        // The wrong collateral for a quote, and none at all.
        assert_ne!(
            check(v.verify_evidence(&inputs(
                TDX_QUOTE,
                TDX_COLLATERAL_OUTDATED,
                "2026-02-19T00:00:00Z"
            ))),
            "ok"
        );
        let mut none = inputs(TDX_QUOTE, b"{}", "2025-06-20T00:00:00Z");
        assert_eq!(check(v.verify_evidence(&none)), "tdx.collateral");
        none.collateral = None;
        assert_eq!(check(v.verify_evidence(&none)), "tdx.collateral");
        // Trailing bytes and truncation.
        let mut long = TDX_QUOTE.to_vec();
        long.push(1);
        assert_eq!(
            check(v.verify_evidence(&inputs(&long, TDX_COLLATERAL, "2025-06-20T00:00:00Z"))),
            "tdx.parse"
        );
        assert_eq!(
            check(v.verify_evidence(&inputs(
                &TDX_QUOTE[..4900],
                TDX_COLLATERAL,
                "2025-06-20T00:00:00Z"
            ))),
            "tdx.parse"
        );
    }

    #[test]
    fn named_checks_for_tampering_binding_and_policy() {
        let v = TdxVerifier;
        let at = "2025-06-20T00:00:00Z";
        let flip = |i: usize| {
            let mut q = TDX_QUOTE.to_vec();
            q[i] ^= 1;
            check(v.verify_evidence(&inputs(&q, TDX_COLLATERAL, at)))
        };
        assert_eq!(flip(48 + 200), "tdx.quote-signature");
        assert_eq!(flip(4036), "tdx.root");
        assert_eq!(flip(2), "tdx.parse");
        let mut inp = inputs(TDX_QUOTE, TDX_COLLATERAL, at);
        let a = v.verify_evidence(&inp).unwrap();
        let mut rd = [0u8; 64];
        rd.copy_from_slice(&a.report_data);
        inp.expected_report_data = Some(rd);
        let p = crate::Policy::default();
        assert!(crate::attest::verify(TeeKind::Tdx, &inp, &p).verified);
        rd[63] ^= 1;
        inp.expected_report_data = Some(rd);
        let verdict = crate::attest::verify(TeeKind::Tdx, &inp, &p);
        assert_eq!(verdict.failure.unwrap().check, "report-data");
        inp.expected_report_data = None;
        let strict = crate::Policy::from_toml("[min_tcb]\ntdx_statuses = [\"OutOfDate\"]").unwrap();
        let verdict = crate::attest::verify(TeeKind::Tdx, &inp, &strict);
        assert_eq!(verdict.failure.unwrap().check, "policy.min-tcb");
        let pinned =
            crate::Policy::from_toml(&format!("[tdx_rtmrs]\nrtmr3 = [\"{}\"]", "11".repeat(48)))
                .unwrap();
        let verdict = crate::attest::verify(TeeKind::Tdx, &inp, &pinned);
        assert_eq!(verdict.failure.unwrap().check, "policy.rtmr");
        let verdict = crate::attest::verify(TeeKind::Tdx, &inp, &p);
        assert_eq!(verdict.tcb["status"], "UpToDate");
        assert_eq!(verdict.tcb["advisory_ids"], serde_json::json!([]));
    }

    #[test]
    fn every_byte_flip_is_rejected() {
        let v = TdxVerifier;
        let mut inp = inputs(TDX_QUOTE, TDX_COLLATERAL, "2025-06-20T00:00:00Z");
        let layout = parse_layout(TDX_QUOTE).unwrap();
        assert!(TDX_QUOTE[layout.sig_data.1..].iter().all(|b| *b == 0));
        let mut accepted = Vec::new();
        // Header, body and signature data (and the zero padding after it).
        for i in 0..TDX_QUOTE.len() {
            inp.evidence[i] ^= 0x01;
            if v.verify_evidence(&inp).is_ok() {
                accepted.push(i);
            }
            inp.evidence[i] ^= 0x01;
        }
        assert!(accepted.is_empty(), "flips accepted at {accepted:?}");
    }
}
