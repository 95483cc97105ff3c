//! The public verifier: what a regulator runs on a session's published
//! reports, from an offline bundle or from the chain alone.
//!
//! Inputs are a [`Bundle`]: the session's reports (ABI bytes + node
//! signatures, as in calldata), what the registry stored for each, the node's
//! evidence, and the manifest. On chain, the manifest and the evidence travel
//! in the `evidence` calldata of the first report as an [`EvidenceEnvelope`],
//! so the chain alone holds everything a verifier needs.
//!
//! Every hash and signature is computed over the report bytes exactly as
//! supplied, and those bytes must be the canonical ABI encoding of the report
//! they decode to (no trailing bytes, no dirty padding).
//!
//! Checks, in order (each is reported, named, with its detail):
//! `bundle.format` · `manifest` · `report.decode` · `report.canonical` ·
//! `report.kinds` · `report.session` · `report.signature` ·
//! `evidence.hash` · `evidence.verified` (signatures, chain, binding of the
//! node keys and manifest hash in report_data, policy) · `simulation` ·
//! `report.chain` · `inputs.root` · `chain.stored-hash` · the checks of the
//! chain reader when the bundle was read from the chain just now (e.g.
//! `chain.receipt`) · `report.outcome`.
//!
//! What the verifier cannot check from the bundle alone (transaction hashes,
//! blocks, that the registry stores the hashes, the chain and the contract
//! the bundle names) is listed in [`Verification::not_checked`]; the chain's
//! human name is derived from its kind and chain id ([`chain_name`]), never
//! taken from the bundle's label.

use alloy_primitives::{keccak256, Address, B256};
use alloy_sol_types::SolValue;
use sealroom_protocol::manifest::{Manifest, MANIFEST_FORMAT};
use sealroom_protocol::policy::{Policy, TeeKind};
use serde::{Deserialize, Serialize};

use crate::attest::{self, Inputs, Verdict};
use crate::binding::expected_report_data;
use crate::check::Check as Name;
use crate::report::{signing_message, IntegrityReport, ReportKind};

/// Format tag of bundles.
pub const BUNDLE_FORMAT: &str = "sealroom-bundle/1";
/// Format tag of evidence envelopes.
pub const ENVELOPE_FORMAT: &str = "sealroom-evidence/1";

/// What the `evidence` calldata of a session's first report holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEnvelope {
    /// Always [`ENVELOPE_FORMAT`].
    pub format: String,
    /// TEE kind.
    pub kind: TeeKind,
    /// Raw evidence (hex); `keccak256` of it is the report's `evidenceHash`.
    #[serde(with = "sealroom_protocol::seal::hex_vec")]
    pub evidence: Vec<u8>,
    /// Certificates (DER hex).
    #[serde(default)]
    pub certs: Vec<String>,
    /// Collateral (hex).
    #[serde(default)]
    pub collateral: Option<String>,
    /// The manifest every member signed (public: names, keys, hashes, spec, policy).
    pub manifest: Manifest,
}

impl EvidenceEnvelope {
    /// Canonical bytes for calldata.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses calldata bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let e: Self = serde_json::from_slice(b).map_err(|e| format!("evidence envelope: {e}"))?;
        if e.format != ENVELOPE_FORMAT {
            return Err(format!("evidence envelope: unknown format `{}`", e.format));
        }
        Ok(e)
    }
}

/// One report as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledReport {
    /// `opened`, `completed` or `aborted`.
    pub kind: String,
    /// `abi.encode(report)` hex.
    pub report_abi: String,
    /// Node signature hex.
    pub signature: String,
    /// The hash the registry stored for (session, kind).
    pub stored_hash: B256,
    /// Publishing transaction.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block: Option<u64>,
}

/// A self-contained, offline-verifiable record of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Session id.
    pub session_id: B256,
    /// Where it was published: `{kind, chain_id, contract, label}` (see
    /// [`ChainRef`]), or null when the session named no chain.
    pub chain: serde_json::Value,
    /// Reports, `opened` first.
    pub reports: Vec<BundledReport>,
    /// The node's evidence and the manifest.
    pub envelope: EvidenceEnvelope,
}

/// The `chain` object of a bundle. Offline, none of it can be checked; the
/// label is never shown (the name is derived by [`chain_name`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRef {
    /// `embedded` or `rpc` (bundles from the chain reader); a coordinator's
    /// chain name (`anvil`, `opbnb-testnet`, `opbnb-mainnet`, `json-rpc`)
    /// in bundles built from a coordinator's status.
    pub kind: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The registry's address (absent before the coordinator knew it).
    #[serde(default)]
    pub contract: Option<String>,
    /// Free text from whoever wrote the bundle: ignored.
    #[serde(default)]
    pub label: Option<String>,
}

/// The chain kinds a bundle may name.
pub const CHAIN_KINDS: [&str; 6] = [
    "embedded",
    "rpc",
    "anvil",
    "opbnb-testnet",
    "opbnb-mainnet",
    "json-rpc",
];

/// The chain's human name, derived from its kind and chain id only:
/// 204 → `opBNB mainnet`, 5611 → `opBNB testnet`, the embedded chain →
/// `embedded development chain`, 31337 otherwise → `local development chain
/// (anvil)`, anything else → `EVM chain N`.
pub fn chain_name(kind: &str, chain_id: u64) -> String {
    match (kind, chain_id) {
        ("embedded", 31337) => "embedded development chain".into(),
        ("embedded", id) => format!("EVM chain {id} (named `embedded`, whose chain id is 31337)"),
        (_, 204) => "opBNB mainnet".into(),
        (_, 5611) => "opBNB testnet".into(),
        (_, 31337) => "local development chain (anvil)".into(),
        (_, id) => format!("EVM chain {id}"),
    }
}

/// Why a bundle file was refused before any check ran (bad input: the CLI
/// exits 2 naming the file and `field`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct BundleError {
    /// The JSON path of the offending field (`reports[1].extra`, `envelope.format`, …).
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

fn bundle_err(field: impl Into<String>, detail: impl Into<String>) -> BundleError {
    BundleError {
        field: field.into(),
        detail: detail.into(),
    }
}

/// Refuses keys of `v` (an object) outside `required` and `optional`, and
/// a missing required key, naming `path.key`.
fn only_keys(
    v: &serde_json::Value,
    path: &str,
    required: &[&str],
    optional: &[&str],
) -> Result<(), BundleError> {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    let obj = v.as_object().ok_or_else(|| {
        bundle_err(
            if path.is_empty() { "(top level)" } else { path },
            "not a JSON object",
        )
    })?;
    let known = || required.iter().chain(optional).copied();
    if let Some(k) = obj.keys().find(|k| !known().any(|x| x == k.as_str())) {
        return Err(bundle_err(
            at(k),
            format!(
                "unknown field (expected only {})",
                known().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    if let Some(k) = required.iter().find(|k| !obj.contains_key(**k)) {
        return Err(bundle_err(at(k), "missing field"));
    }
    Ok(())
}

/// Field `key` of object `v` (null when absent), naming `path.key` on error.
fn field<T: serde::de::DeserializeOwned>(
    v: &serde_json::Value,
    path: &str,
    key: &str,
) -> Result<T, BundleError> {
    T::deserialize(v.get(key).unwrap_or(&serde_json::Value::Null))
        .map_err(|e| bundle_err(format!("{path}.{key}"), e.to_string()))
}

fn typed<T: serde::de::DeserializeOwned>(
    v: &serde_json::Value,
    path: &str,
) -> Result<T, BundleError> {
    T::deserialize(v).map_err(|e| bundle_err(path, e.to_string()))
}

fn format_tag(v: &serde_json::Value, path: &str, expected: &str) -> Result<(), BundleError> {
    match v.as_str() {
        Some(t) if t == expected => Ok(()),
        Some(t) => Err(bundle_err(
            path,
            format!("unknown format `{t}` (this verifier reads `{expected}`)"),
        )),
        None => Err(bundle_err(path, "not a string")),
    }
}

impl Bundle {
    /// Parses a bundle file strictly: JSON with exactly the documented
    /// fields (an unknown or missing field anywhere is refused, naming its
    /// path), the known format tags (`sealroom-bundle/1`,
    /// `sealroom-evidence/1`, `sealroom-manifest/1`), and a `chain` object
    /// of the documented shape naming a known kind (or null).
    pub fn from_json(text: &str) -> Result<Self, BundleError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bundle_err("(file)", format!("not JSON: {e}")))?;
        only_keys(
            &v,
            "",
            &["format", "session_id", "chain", "reports", "envelope"],
            &[],
        )?;
        format_tag(&v["format"], "format", BUNDLE_FORMAT)?;
        let session_id: B256 = typed(&v["session_id"], "session_id")?;

        let chain = v["chain"].clone();
        if !chain.is_null() {
            if !chain.is_object() {
                return Err(bundle_err("chain", "neither an object nor null"));
            }
            only_keys(
                &chain,
                "chain",
                &["kind", "chain_id"],
                &["contract", "label"],
            )?;
            let c: ChainRef = typed(&chain, "chain")?;
            if !CHAIN_KINDS.contains(&c.kind.as_str()) {
                return Err(bundle_err(
                    "chain.kind",
                    format!(
                        "unknown chain kind `{}` (expected one of {})",
                        c.kind,
                        CHAIN_KINDS.join(", ")
                    ),
                ));
            }
            if let Some(a) = &c.contract {
                a.parse::<Address>().map_err(|_| {
                    bundle_err("chain.contract", format!("`{a}` is not an address"))
                })?;
            }
        }

        let reports_v = v["reports"]
            .as_array()
            .ok_or_else(|| bundle_err("reports", "not a JSON array"))?;
        let mut reports = Vec::with_capacity(reports_v.len());
        for (i, r) in reports_v.iter().enumerate() {
            let path = format!("reports[{i}]");
            only_keys(
                r,
                &path,
                &["kind", "report_abi", "signature", "stored_hash"],
                &["tx_hash", "block"],
            )?;
            reports.push(BundledReport {
                kind: field(r, &path, "kind")?,
                report_abi: field(r, &path, "report_abi")?,
                signature: field(r, &path, "signature")?,
                stored_hash: field(r, &path, "stored_hash")?,
                tx_hash: field(r, &path, "tx_hash")?,
                block: field(r, &path, "block")?,
            });
        }

        let env = &v["envelope"];
        only_keys(
            env,
            "envelope",
            &["format", "kind", "evidence", "manifest"],
            &["certs", "collateral"],
        )?;
        format_tag(&env["format"], "envelope.format", ENVELOPE_FORMAT)?;
        format_tag(
            &env["manifest"]["format"],
            "envelope.manifest.format",
            MANIFEST_FORMAT,
        )?;
        // Parts first, so an error names the deepest field it can.
        let _: Manifest = field(env, "envelope", "manifest")?;
        let _: TeeKind = field(env, "envelope", "kind")?;
        let envelope: EvidenceEnvelope = typed(env, "envelope")?;
        Ok(Bundle {
            format: BUNDLE_FORMAT.into(),
            session_id,
            chain,
            reports,
            envelope,
        })
    }
}

/// One named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name.
    pub check: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A field of the bundle the verifier did not check, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotChecked {
    /// JSON path in the bundle (`reports[0].tx_hash`, `chain.chain_id`, …).
    pub field: String,
    /// Its value as the bundle gives it (`None` for the chain label, which
    /// is never repeated, and for absent values).
    pub value: Option<String>,
    /// Why it was not checked (starts with `not checked offline`).
    pub reason: String,
}

/// The chain a bundle names, as the verifier shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// `embedded`, `rpc`, or a coordinator's chain name.
    pub kind: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Derived from `kind` and `chain_id` by [`chain_name`] (never the bundle's label).
    pub name: String,
    /// The registry address.
    pub contract: Option<String>,
    /// True when the reports were read from this chain just now; false
    /// offline (then all of this is what the bundle claims).
    pub checked: bool,
}

/// Where the bundle came from, which decides what could be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// A file or a value handed over: nothing about the chain was read.
    Offline,
    /// Read from the chain just now by the caller, which ran these checks
    /// (transaction receipts, blocks, stored hashes) and passes them on.
    Chain(Vec<Check>),
}

/// The verifier's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// All checks passed.
    pub verified: bool,
    /// True when the node's evidence is simulated.
    pub insecure_simulation: bool,
    /// Which policy was applied: `manifest` or the file given.
    pub policy_source: String,
    /// The outcome: `completed`, `aborted`, or `incomplete`.
    pub outcome: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The evidence verdict.
    pub evidence_verdict: Option<Verdict>,
    /// The first failed check, if any.
    pub failure: Option<Check>,
    /// `offline` (a bundle: nothing about the chain was read) or `chain`
    /// (read from the chain just now).
    #[serde(default)]
    pub source: String,
    /// The chain the bundle names, with its derived name.
    #[serde(default)]
    pub chain: Option<ChainSummary>,
    /// Every field the verifier could not check (offline: transaction
    /// hashes, blocks, stored hashes, chain and contract).
    #[serde(default)]
    pub not_checked: Vec<NotChecked>,
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, check: Name, ok: bool, detail: impl Into<String>) -> bool {
        self.0.push(Check {
            check: check.into(),
            ok,
            detail: detail.into(),
        });
        ok
    }
}

/// One report that decoded strictly, with the bytes exactly as supplied.
struct Decoded<'a> {
    kind: ReportKind,
    report: IntegrityReport,
    /// keccak256 of the supplied bytes (the canonical encoding of `report`).
    hash: B256,
    signature: [u8; 64],
    bundled: &'a BundledReport,
}

fn policy_phrase(source: &str) -> String {
    if source == "manifest" {
        "the policy the parties signed in the manifest".into()
    } else {
        format!("the policy in {source}")
    }
}

/// The only sequences of report kinds a session can publish.
const KIND_SEQUENCES: [&[&str]; 4] = [
    &["opened"],
    &["opened", "completed"],
    &["opened", "aborted"],
    &["aborted"],
];

fn kinds_check(reports: &[BundledReport]) -> (bool, String) {
    let kinds: Vec<&str> = reports.iter().map(|r| r.kind.as_str()).collect();
    if KIND_SEQUENCES.contains(&kinds.as_slice()) {
        return (
            true,
            format!("one report per kind, in order: {}", kinds.join(" → ")),
        );
    }
    if kinds.is_empty() {
        return (false, "no reports".into());
    }
    if let Some((i, k)) = kinds
        .iter()
        .enumerate()
        .find(|(_, k)| ReportKind::from_name(k).is_none())
    {
        return (false, format!("reports[{i}]: unknown kind `{k}`"));
    }
    for (i, k) in kinds.iter().enumerate() {
        if let Some(j) = kinds[..i].iter().position(|x| x == k) {
            return (
                false,
                format!("duplicate {k} report (reports[{j}] and reports[{i}]): a session has exactly one report per kind"),
            );
        }
    }
    (
        false,
        format!(
            "kinds in order {}: expected opened, then completed or aborted (or aborted alone)",
            kinds.join(" → ")
        ),
    )
}

/// Verifies a bundle handed over as a value or read from a file, offline:
/// see [`verify_bundle_from`].
pub fn verify_bundle(
    bundle: &Bundle,
    policy: Option<(&Policy, &str)>,
    at: Option<i64>,
) -> Verification {
    verify_bundle_from(bundle, policy, at, &Provenance::Offline)
}

/// Verifies a bundle. `policy`: an override (with its source name) or the
/// manifest's; `at`: the instant to verify evidence at (default: the time in
/// the first report, when the node presented the evidence); `provenance`:
/// whether the bundle was read from the chain just now (and which chain
/// checks the reader ran) or is offline.
pub fn verify_bundle_from(
    bundle: &Bundle,
    policy: Option<(&Policy, &str)>,
    at: Option<i64>,
    provenance: &Provenance,
) -> Verification {
    let mut c = Checks(Vec::new());
    let m = &bundle.envelope.manifest;
    let mh = m.hash();
    let (policy, policy_source) = match policy {
        Some((p, src)) => (p.clone(), src.to_string()),
        None => (m.policy.clone(), "manifest".to_string()),
    };
    let mut insecure = bundle.envelope.kind == TeeKind::Sim;
    let mut verdict = None;

    let format_ok = bundle.format == BUNDLE_FORMAT && bundle.envelope.format == ENVELOPE_FORMAT;
    c.push(
        Name::BundleFormat,
        format_ok,
        if format_ok {
            format!("{BUNDLE_FORMAT} with a {ENVELOPE_FORMAT} envelope")
        } else {
            format!(
                "unknown format: bundle `{}`, envelope `{}` (this verifier reads {BUNDLE_FORMAT}, {ENVELOPE_FORMAT})",
                bundle.format, bundle.envelope.format
            )
        },
    );

    c.push(
        Name::Manifest,
        m.validate().is_ok() && m.session_id == bundle.session_id,
        match m.validate() {
            Err(e) => e.to_string(),
            Ok(()) if m.session_id != bundle.session_id => "manifest is for another session".into(),
            Ok(()) => format!(
                "manifest {mh:#x}, {} parties, owner {}",
                m.parties.len(),
                m.owner.name
            ),
        },
    );

    // Decode reports, strictly, keeping the bytes exactly as supplied.
    let mut decoded: Vec<Decoded<'_>> = Vec::new();
    let mut decode_fail: Option<String> = None;
    let mut canonical_fail: Option<String> = None;
    for (i, r) in bundle.reports.iter().enumerate() {
        let text = r.report_abi.strip_prefix("0x").unwrap_or(&r.report_abi);
        let Ok(bytes) = hex::decode(text) else {
            decode_fail.get_or_insert(format!("reports[{i}] ({}): report_abi is not hex", r.kind));
            continue;
        };
        let Some(signature) = sealroom_protocol::hash::parse_hex_array::<64>(&r.signature) else {
            decode_fail.get_or_insert(format!(
                "reports[{i}] ({}): signature is not 64 bytes of hex",
                r.kind
            ));
            continue;
        };
        let report = match IntegrityReport::from_abi_bytes(&bytes) {
            Ok(rep) => rep,
            Err(e) => {
                // A lax decoder accepting the bytes means they are a report,
                // but not in its one canonical encoding.
                if <IntegrityReport as SolValue>::abi_decode(&bytes).is_ok() {
                    canonical_fail.get_or_insert(format!("reports[{i}] ({}): {e}", r.kind));
                } else {
                    decode_fail.get_or_insert(format!(
                        "reports[{i}] ({}): not an ABI-encoded IntegrityReport: {e}",
                        r.kind
                    ));
                }
                continue;
            }
        };
        match ReportKind::from_code(report.kind) {
            Some(k) if k.as_str() == r.kind => {
                let hash = keccak256(&bytes);
                decoded.push(Decoded {
                    kind: k,
                    report,
                    hash,
                    signature,
                    bundled: r,
                });
            }
            _ => {
                decode_fail.get_or_insert(format!(
                    "reports[{i}]: published as {} but its kind field is {}",
                    r.kind, report.kind
                ));
            }
        }
    }
    let n = bundle.reports.len();
    c.push(
        Name::ReportDecode,
        decode_fail.is_none() && n > 0,
        match (&decode_fail, n) {
            (Some(d), _) => d.clone(),
            (None, 0) => "no reports".into(),
            (None, _) => format!(
                "{n} report(s) decode as IntegrityReport with the kind they were published as"
            ),
        },
    );
    c.push(
        Name::ReportCanonical,
        canonical_fail.is_none(),
        canonical_fail.clone().unwrap_or_else(|| {
            "every report's bytes are exactly abi.encode(report): re-encoding gives them back byte for byte (no trailing bytes, no dirty padding)".into()
        }),
    );
    let (kinds_ok, kinds_detail) = kinds_check(&bundle.reports);
    c.push(Name::ReportKinds, kinds_ok, kinds_detail);

    let session_ok = decoded
        .iter()
        .all(|d| d.report.sessionId == bundle.session_id && d.report.manifestHash == mh);
    c.push(
        Name::ReportSession,
        session_ok,
        if session_ok {
            format!(
                "every report names session {:#x} and manifest {mh:#x}",
                bundle.session_id
            )
        } else {
            "a report names another session or manifest".into()
        },
    );

    // Signatures under one node key, over keccak256 of the supplied bytes.
    let node_key = decoded.first().map(|d| d.report.nodeKey.0);
    let node_hpke = decoded.first().map(|d| d.report.nodeHpkeKey.0);
    let mut sig_detail = String::new();
    let mut sig_ok = node_key.is_some();
    for d in &decoded {
        let same = Some(d.report.nodeKey.0) == node_key;
        let ok = same
            && node_key.is_some_and(|nk| {
                sealroom_protocol::identity::verify_strict(
                    &nk,
                    &signing_message(&d.hash),
                    &d.signature,
                )
                .is_ok()
            });
        if !ok {
            sig_ok = false;
            sig_detail = format!(
                "{} report: signature does not verify under the node key",
                d.kind.as_str()
            );
        }
    }
    if sig_ok {
        sig_detail = format!(
            "{} signature(s) over keccak256 of the supplied report bytes valid under node key {}",
            decoded.len(),
            hex::encode(node_key.unwrap_or_default())
        );
    } else if node_key.is_none() {
        sig_detail = "no report decoded: no signature to check".into();
    }
    c.push(Name::ReportSignature, sig_ok, sig_detail);

    // Evidence.
    let ev_hash = keccak256(&bundle.envelope.evidence);
    let ev_ok = !decoded.is_empty() && decoded.iter().all(|d| d.report.evidenceHash == ev_hash);
    c.push(
        Name::EvidenceHash,
        ev_ok,
        if ev_ok {
            format!("evidence keccak256 {ev_hash:#x} matches every report")
        } else {
            "the evidence is not the one the reports name".into()
        },
    );
    if let (Some(nk), Some(hk)) = (node_key, node_hpke) {
        let at = at.unwrap_or_else(|| {
            decoded
                .first()
                .map(|d| d.report.timestamp as i64)
                .unwrap_or(0)
        });
        let decode = |h: &str| hex::decode(h.trim_start_matches("0x")).unwrap_or_default();
        let inputs = Inputs {
            evidence: bundle.envelope.evidence.clone(),
            certs: bundle.envelope.certs.iter().map(|h| decode(h)).collect(),
            collateral: bundle.envelope.collateral.as_deref().map(decode),
            at,
            expected_report_data: Some(expected_report_data(&nk, &hk, &mh.0)),
            expected_nonce: None,
            gpu_reference: None,
        };
        let kind_ok = policy.accepted_kinds.contains(&bundle.envelope.kind);
        let v = if kind_ok {
            attest::verify(bundle.envelope.kind, &inputs, &policy)
        } else {
            Verdict::rejected(
                bundle.envelope.kind,
                attest::Failure::new(
                    Name::PolicyKind,
                    format!(
                        "{} evidence is not accepted by the policy",
                        bundle.envelope.kind
                    ),
                ),
            )
        };
        insecure = v.insecure_simulation;
        let detail = match &v.failure {
            None => format!(
                "{} evidence verified at {at} under the {policy_source} policy; node keys and manifest bound in report_data",
                v.kind
            ),
            Some(f) => format!("{}: {}", f.check, f.detail),
        };
        c.push(Name::EvidenceVerified, v.verified, detail);
        if v.verified {
            // The manifest's engine allowlist applies to the attested
            // measurement (the only measurement there is).
            let attested = v.measurement.clone().unwrap_or_default();
            let _ = match crate::node_check::engine_allowed(m, &attested) {
                Ok(()) if m.engine.trainer_measurements.is_empty() => c.push(
                    Name::EngineAllowlist,
                    true,
                    format!("the manifest pins no engine measurement; attested {attested}"),
                ),
                Ok(()) => c.push(
                    Name::EngineAllowlist,
                    true,
                    format!("attested measurement {attested} is in engine.trainer_measurements"),
                ),
                Err(f) => c.push(Name::EngineAllowlist, false, f.detail),
            };
        }
        verdict = Some(v);
    } else {
        c.push(Name::EvidenceVerified, false, "no report names a node key");
    }
    let phrase = policy_phrase(&policy_source);
    c.push(
        Name::Simulation,
        !insecure || policy.allow_simulation,
        match (insecure, policy.allow_simulation) {
            (false, _) => "hardware evidence".to_string(),
            (true, true) => format!(
                "insecure-simulation: no TEE protected this session ({phrase} allows simulation: allow_simulation = true)"
            ),
            (true, false) => format!(
                "insecure-simulation: no TEE protected this session, and {phrase} forbids simulation (allow_simulation = false)"
            ),
        },
    );

    // Report chain: each report links the previous one by keccak256 of its
    // supplied bytes; the first links nothing.
    let mut link_fail = None;
    for (i, d) in decoded.iter().enumerate() {
        let expected = if i == 0 {
            B256::ZERO
        } else {
            decoded[i - 1].hash
        };
        if d.report.prevReportHash != expected && link_fail.is_none() {
            link_fail = Some(if i == 0 {
                format!(
                    "the first report ({}) has prevReportHash {:#x}, not zero",
                    d.kind.as_str(),
                    d.report.prevReportHash
                )
            } else {
                format!(
                    "the {} report's prevReportHash {:#x} is not keccak256 of the {} report's bytes ({expected:#x})",
                    d.kind.as_str(),
                    d.report.prevReportHash,
                    decoded[i - 1].kind.as_str()
                )
            });
        }
    }
    let chain_ok = link_fail.is_none() && !decoded.is_empty();
    c.push(
        Name::ReportChain,
        chain_ok,
        match link_fail {
            Some(f) => f,
            None if decoded.is_empty() => "no report decoded".into(),
            None => format!(
                "reports link: {} (each prevReportHash is keccak256 of the previous report's bytes)",
                decoded
                    .iter()
                    .map(|d| d.kind.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        },
    );

    let root = m.inputs_tree().map(|t| t.root()).ok();
    let root_ok = root.is_some() && decoded.iter().all(|d| Some(d.report.inputsRoot) == root);
    c.push(
        Name::InputsRoot,
        root_ok,
        match root {
            Some(r) if root_ok => format!("inputs root {r:#x} recomputed from the manifest"),
            _ => "a report's inputs root differs from the manifest's inputs tree".into(),
        },
    );

    let from_chain = matches!(provenance, Provenance::Chain(_));
    let stored_bad = decoded.iter().find(|d| d.hash != d.bundled.stored_hash);
    c.push(
        Name::ChainStoredHash,
        stored_bad.is_none() && !decoded.is_empty(),
        match (stored_bad, from_chain) {
            (Some(d), _) => format!(
                "the {} report's keccak256 {:#x} (over its bytes as supplied) differs from the stored hash {:#x}",
                d.kind.as_str(),
                d.hash,
                d.bundled.stored_hash
            ),
            (None, true) => "keccak256 of each report's bytes as supplied equals the hash the registry stores (read from the chain)".to_string(),
            (None, false) => "keccak256 of each report's bytes as supplied equals the stored hash the bundle gives (that the registry holds it is not checked offline)".to_string(),
        },
    );
    if let Provenance::Chain(checks) = provenance {
        c.0.extend(checks.iter().cloned());
    }

    let get = |k: ReportKind| decoded.iter().find(|d| d.kind == k).map(|d| &d.report);
    let completed = get(ReportKind::Completed);
    let aborted = get(ReportKind::Aborted);
    let outcome = if let Some(done) = completed {
        if done.inputsWiped {
            "completed"
        } else {
            "completed-without-wipe"
        }
    } else if aborted.is_some() {
        "aborted"
    } else {
        "incomplete"
    };
    c.push(
        Name::ReportOutcome,
        outcome == "completed" || outcome == "aborted",
        match (completed, aborted) {
            (Some(d), _) => format!(
                "completed: model sha256 {:#x}, sealed to owner key {}, inputs wiped: {}",
                d.modelHash,
                hex::encode(d.ownerKey),
                d.inputsWiped
            ),
            (None, Some(a)) => format!("aborted (code {}): {}", a.abortCode, a.abortReason),
            _ => "no completed or aborted report".into(),
        },
    );

    let chain_ref: Option<ChainRef> = serde_json::from_value(bundle.chain.clone()).ok();
    let chain = chain_ref.as_ref().map(|r| ChainSummary {
        kind: r.kind.clone(),
        chain_id: r.chain_id,
        name: chain_name(&r.kind, r.chain_id),
        contract: r.contract.clone(),
        checked: from_chain,
    });
    let not_checked = if from_chain {
        Vec::new()
    } else {
        offline_unchecked(bundle, chain_ref.as_ref())
    };

    let failure = c.0.iter().find(|x| !x.ok).cloned();
    Verification {
        verified: failure.is_none(),
        insecure_simulation: insecure,
        policy_source,
        outcome: outcome.into(),
        checks: c.0,
        evidence_verdict: verdict,
        failure,
        source: if from_chain { "chain" } else { "offline" }.into(),
        chain,
        not_checked,
    }
}

/// What only the chain could confirm, listed field by field.
fn offline_unchecked(bundle: &Bundle, chain: Option<&ChainRef>) -> Vec<NotChecked> {
    const OFFLINE: &str = "not checked offline";
    let mut out = Vec::new();
    let mut add = |field: String, value: Option<String>, why: &str| {
        out.push(NotChecked {
            field,
            value,
            reason: format!("{OFFLINE}: {why}"),
        })
    };
    for (i, r) in bundle.reports.iter().enumerate() {
        add(
            format!("reports[{i}].tx_hash"),
            r.tx_hash.clone(),
            "that this transaction published the report (verify with --session ID --rpc URL --contract ADDR)",
        );
        add(
            format!("reports[{i}].block"),
            r.block.map(|b| b.to_string()),
            "the block the transaction is in",
        );
        add(
            format!("reports[{i}].stored_hash"),
            Some(format!("{:#x}", r.stored_hash)),
            "that the registry stores this hash for the session and kind",
        );
    }
    match chain {
        Some(c) => {
            add(
                "chain.kind".into(),
                Some(c.kind.clone()),
                "the kind of chain the reports went to",
            );
            add(
                "chain.chain_id".into(),
                Some(c.chain_id.to_string()),
                "the chain the reports went to (the name shown is derived from this id)",
            );
            add(
                "chain.contract".into(),
                c.contract.clone(),
                "that a registry at this address holds the reports",
            );
            add(
                "chain.label".into(),
                None,
                "free text, never shown: the chain's name is derived from its kind and chain id",
            );
        }
        None => add(
            "chain".into(),
            None,
            "the bundle names no chain (or not in the documented shape)",
        ),
    }
    out
}

/// The OpenZeppelin inclusion proof that `party`'s dataset is an input of
/// the bundle's session (`sealroom-inclusion-proof/1`).
pub fn inclusion_proof(b: &Bundle, party: &str) -> Result<serde_json::Value, String> {
    let m = &b.envelope.manifest;
    let tree = m.inputs_tree().map_err(|e| e.to_string())?;
    let idx = (0..tree.len())
        .find(|i| {
            tree.value(*i)
                .is_some_and(|v| v.get(1).and_then(|n| n.as_str()) == Some(party))
        })
        .ok_or_else(|| format!("--party {party}: not an input of this session"))?;
    let value = tree.value(idx).unwrap_or_default();
    let proof = tree.proof(idx).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "format": "sealroom-inclusion-proof/1",
        "session_id": format!("{:#x}", b.session_id),
        "inputs_root": format!("{:#x}", tree.root()),
        "leaf_encoding": ["uint8", "string", "bytes32"],
        "value": value,
        "leaf": format!("{:#x}", tree.leaf(idx).unwrap_or_default()),
        "proof": proof.iter().map(|h| format!("{h:#x}")).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_come_from_kind_and_id() {
        assert_eq!(chain_name("rpc", 204), "opBNB mainnet");
        assert_eq!(chain_name("opbnb-mainnet", 204), "opBNB mainnet");
        assert_eq!(chain_name("rpc", 5611), "opBNB testnet");
        assert_eq!(chain_name("embedded", 31337), "embedded development chain");
        assert_eq!(chain_name("rpc", 31337), "local development chain (anvil)");
        assert_eq!(
            chain_name("anvil", 31337),
            "local development chain (anvil)"
        );
        assert_eq!(chain_name("rpc", 1), "EVM chain 1");
        assert!(chain_name("embedded", 204).starts_with("EVM chain 204"));
    }

    fn report(kind: &str) -> BundledReport {
        BundledReport {
            kind: kind.into(),
            report_abi: String::new(),
            signature: String::new(),
            stored_hash: B256::ZERO,
            tx_hash: None,
            block: None,
        }
    }

    #[test]
    fn exactly_one_report_per_kind_in_order() {
        let seq = |k: &[&str]| kinds_check(&k.iter().map(|k| report(k)).collect::<Vec<_>>());
        for ok in KIND_SEQUENCES {
            assert!(seq(ok).0, "{ok:?}");
        }
        let (ok, d) = seq(&["opened", "opened", "completed"]);
        assert!(!ok && d.contains("duplicate opened"), "{d}");
        let (ok, d) = seq(&["opened", "completed", "completed"]);
        assert!(!ok && d.contains("duplicate completed"), "{d}");
        let (ok, d) = seq(&["completed", "opened"]);
        assert!(!ok && d.contains("expected opened"), "{d}");
        assert!(!seq(&["opened", "completed", "aborted"]).0);
        assert!(!seq(&["completed"]).0);
        assert!(!seq(&[]).0);
        let (ok, d) = seq(&["opened", "closed"]);
        assert!(!ok && d.contains("unknown kind `closed`"), "{d}");
    }
}
