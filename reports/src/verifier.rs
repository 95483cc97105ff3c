//! The public verifier: what a regulator runs on a session's published
//! reports, from an offline bundle or from the chain alone.
//!
//! Inputs are a [`Bundle`]: the session's reports (ABI bytes + node
//! signatures, as in calldata), what the registry stored for each, each node
//! attempt's evidence, and the manifest. On chain, the manifest and a node's
//! evidence travel in the `evidence` calldata of that node's first report as
//! an [`EvidenceEnvelope`], so the chain alone holds everything a verifier
//! needs.
//!
//! A session may have several node attempts (fail-over): a node lost after
//! its `opened` is replaced by a fresh node, whose own `opened` links the
//! previous attempt's `opened`. Every attempt's node must have been
//! trustworthy (members released their keys to it), so every attempt's
//! evidence is verified, and the verifier explains each attempt
//! ([`Verification::attempts`]).
//!
//! Every hash and signature is computed over the report bytes exactly as
//! supplied, and those bytes must be the canonical ABI encoding of the report
//! they decode to (no trailing bytes, no dirty padding).
//!
//! Checks, in order (each is reported, named, with its detail):
//! `bundle.format` · `manifest` · `report.decode` · `report.canonical` ·
//! `report.kinds` · `report.attempts` · `report.session` · `report.signature` ·
//! `evidence.hash` · `evidence.verified` (signatures, chain, binding of the
//! node keys and manifest hash in report_data, policy) · `simulation` ·
//! `report.chain` · `inputs.root` · `chain.stored-hash` · the checks of the
//! chain reader when the bundle was read from the chain just now (e.g.
//! `chain.receipt`) · `privacy` · `report.outcome`.
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

/// Format tag of the bundles this verifier writes: per-attempt evidence
/// (`reports[i].envelope`).
pub const BUNDLE_FORMAT: &str = "sealroom-bundle/2";
/// The earlier format tag, still read: one node attempt, no per-report
/// envelopes (a `/1` bundle is a `/2` bundle without them).
pub const BUNDLE_FORMAT_V1: &str = "sealroom-bundle/1";
/// Format tag of evidence envelopes.
pub const ENVELOPE_FORMAT: &str = "sealroom-evidence/1";

/// What the `evidence` calldata of a node attempt's first report holds (the
/// session's first report, and a replacement node's first report).
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
    /// The node's GPU evidence, when it composed one in (its nonce derived
    /// from the CPU evidence's `report_data`); the reports' `evidenceHash`
    /// then covers both ([`crate::binding::node_evidence_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<sealroom_protocol::api::GpuRegistration>,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundledReport {
    /// `opened`, `completed` or `aborted`.
    pub kind: String,
    /// `abi.encode(report)` hex.
    pub report_abi: String,
    /// Node signature hex.
    pub signature: String,
    /// The hash the registry stored for (session, kind) (for a superseded
    /// `opened`: until the next attempt's `opened` replaced it).
    pub stored_hash: B256,
    /// Publishing transaction.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block: Option<u64>,
    /// The evidence envelope this report carried in calldata when it is the
    /// first report of a node attempt after the first (a replacement node's
    /// `opened`, or its `aborted` before `opened`); `sealroom-bundle/2` only.
    /// The session's first report's envelope is [`Bundle::envelope`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EvidenceEnvelope>,
}

/// A self-contained, offline-verifiable record of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`] (or [`BUNDLE_FORMAT_V1`] for a bundle read from
    /// a `/1` file).
    pub format: String,
    /// Session id.
    pub session_id: B256,
    /// Where it was published: `{kind, chain_id, contract, label}` (see
    /// [`ChainRef`]), or null when the session named no chain.
    pub chain: serde_json::Value,
    /// Reports in publication order: one `opened` per node attempt, then
    /// the terminal `completed` or `aborted`, if any.
    pub reports: Vec<BundledReport>,
    /// The envelope the session's first report carried: the first node
    /// attempt's evidence, and the manifest.
    pub envelope: EvidenceEnvelope,
}

impl Bundle {
    /// The evidence envelope report `index` carried: the top-level one for
    /// the first report, `reports[index].envelope` for the others.
    pub fn envelope_of(&self, index: usize) -> Option<&EvidenceEnvelope> {
        if index == 0 {
            Some(&self.envelope)
        } else {
            self.reports.get(index)?.envelope.as_ref()
        }
    }
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

/// Parses an evidence envelope at `path` strictly.
fn parse_envelope(env: &serde_json::Value, path: &str) -> Result<EvidenceEnvelope, BundleError> {
    only_keys(
        env,
        path,
        &["format", "kind", "evidence", "manifest"],
        &["certs", "collateral", "gpu"],
    )?;
    if let Some(gpu) = env.get("gpu").filter(|g| !g.is_null()) {
        only_keys(
            gpu,
            &format!("{path}.gpu"),
            &["kind", "evidence"],
            &["certs"],
        )?;
        let _: sealroom_protocol::api::GpuRegistration = typed(gpu, &format!("{path}.gpu"))?;
    }
    format_tag(&env["format"], &format!("{path}.format"), ENVELOPE_FORMAT)?;
    format_tag(
        &env["manifest"]["format"],
        &format!("{path}.manifest.format"),
        MANIFEST_FORMAT,
    )?;
    // Parts first, so an error names the deepest field it can.
    let _: Manifest = field(env, path, "manifest")?;
    let _: TeeKind = field(env, path, "kind")?;
    typed(env, path)
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
    /// path), the known format tags (`sealroom-bundle/2` or `/1`,
    /// `sealroom-evidence/1`, `sealroom-manifest/2`), and a `chain` object
    /// of the documented shape naming a known kind (or null). A `/1` bundle
    /// has no `reports[i].envelope`; in a `/2` bundle only reports after
    /// the first may carry one (the first report's is the top-level
    /// `envelope`).
    pub fn from_json(text: &str) -> Result<Self, BundleError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bundle_err("(file)", format!("not JSON: {e}")))?;
        only_keys(
            &v,
            "",
            &["format", "session_id", "chain", "reports", "envelope"],
            &[],
        )?;
        let format = match v["format"].as_str() {
            Some(BUNDLE_FORMAT) => BUNDLE_FORMAT,
            Some(BUNDLE_FORMAT_V1) => BUNDLE_FORMAT_V1,
            Some(t) => {
                return Err(bundle_err(
                    "format",
                    format!(
                        "unknown format `{t}` (this verifier reads `{BUNDLE_FORMAT}` and `{BUNDLE_FORMAT_V1}`)"
                    ),
                ))
            }
            None => return Err(bundle_err("format", "not a string")),
        };
        let report_keys: &[&str] = if format == BUNDLE_FORMAT {
            &["tx_hash", "block", "envelope"]
        } else {
            &["tx_hash", "block"]
        };
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
                report_keys,
            )?;
            let envelope = match r.get("envelope") {
                None | Some(serde_json::Value::Null) => None,
                Some(_) if i == 0 => {
                    return Err(bundle_err(
                        format!("{path}.envelope"),
                        "the first report's envelope is the bundle's top-level `envelope`",
                    ))
                }
                Some(e) => Some(parse_envelope(e, &format!("{path}.envelope"))?),
            };
            reports.push(BundledReport {
                kind: field(r, &path, "kind")?,
                report_abi: field(r, &path, "report_abi")?,
                signature: field(r, &path, "signature")?,
                stored_hash: field(r, &path, "stored_hash")?,
                tx_hash: field(r, &path, "tx_hash")?,
                block: field(r, &path, "block")?,
                envelope,
            });
        }

        let envelope = parse_envelope(&v["envelope"], "envelope")?;
        Ok(Bundle {
            format: format.into(),
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
    /// True when a node's evidence is simulated (any attempt's).
    pub insecure_simulation: bool,
    /// Which policy was applied: `manifest` or the file given.
    pub policy_source: String,
    /// The outcome: `completed`, `aborted`, or `incomplete`.
    pub outcome: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The evidence verdict of the last node attempt (the node the outcome
    /// comes from); each attempt's result is in [`Verification::attempts`].
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
    /// Each node attempt, in order (one unless a node was lost and replaced).
    #[serde(default)]
    pub attempts: Vec<AttemptSummary>,
    /// What an auditor reads first: plain-language sentences, the policy,
    /// measurements, inputs, reports with UTC times and transactions.
    #[serde(default)]
    pub summary: Option<crate::audit::AuditSummary>,
}

/// What became of a node attempt, as the reports show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptResult {
    /// It signed `opened`, then a later attempt's `opened` replaced it: the
    /// node was lost (declared lost by the coordinator) and replaced.
    Lost,
    /// It signed `completed`.
    Completed,
    /// It signed `aborted` (after its `opened`, or before it).
    Aborted,
    /// It signed `opened` and nothing after it yet.
    InProgress,
}

impl AttemptResult {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::InProgress => "in-progress",
        }
    }
}

/// One node attempt as the verifier explains it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptSummary {
    /// 1 for the first node, 2 for its replacement, ….
    pub number: u32,
    /// The node's ed25519 key (hex), which signed the attempt's reports.
    pub node_key: String,
    /// The TEE kind of its evidence (none when no envelope names it).
    pub tee_kind: Option<TeeKind>,
    /// True when its evidence is simulated: no TEE protected this node.
    pub insecure_simulation: bool,
    /// Whether its evidence verified against the policy, bound to its keys
    /// and the manifest.
    pub evidence_verified: bool,
    /// Indexes into the bundle's `reports` of the attempt's reports.
    pub reports: Vec<usize>,
    /// keccak256 of its `opened` report (none for an abort before `opened`).
    pub opened_report_hash: Option<B256>,
    /// The transaction that published its `opened` report, as the bundle
    /// gives it.
    pub opened_tx_hash: Option<String>,
    /// What became of it.
    pub outcome: AttemptResult,
    /// The attempt that replaced it (for `lost`).
    pub replaced_by: Option<u32>,
    /// The same in plain language (a sentence to print after the outcome:
    /// `lost: node lost after opened; replaced by attempt 2; …`).
    pub explanation: String,
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
    /// Its index in the bundle's `reports`.
    index: usize,
    kind: ReportKind,
    report: IntegrityReport,
    /// keccak256 of the supplied bytes (the canonical encoding of `report`).
    hash: B256,
    signature: [u8; 64],
    bundled: &'a BundledReport,
}

/// A node attempt: the decoded reports one node signed, starting with its
/// `opened` (or an `aborted` before it).
struct Group<'a> {
    number: u32,
    /// Indexes into the decoded reports.
    members: Vec<usize>,
    node_key: [u8; 32],
    hpke_key: [u8; 32],
    /// The envelope its first report carried.
    envelope: Option<&'a EvidenceEnvelope>,
    /// Index into the decoded reports of its `opened`.
    opened: Option<usize>,
}

fn policy_phrase(source: &str) -> String {
    if source == "manifest" {
        "the policy the parties signed in the manifest".into()
    } else {
        format!("the policy in {source}")
    }
}

fn short(key: &[u8]) -> String {
    format!("{}…", hex::encode(&key[..key.len().min(8)]))
}

/// The sequences of report kinds a session can publish: one `opened` per
/// node attempt that reached it (one or more), then at most one `completed`
/// or `aborted`; or `aborted` alone (the first node aborted before
/// `opened`).
fn kinds_check(reports: &[BundledReport]) -> (bool, String) {
    let kinds: Vec<&str> = reports.iter().map(|r| r.kind.as_str()).collect();
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
    // The same report twice is never a second attempt.
    let abi = |r: &BundledReport| r.report_abi.trim_start_matches("0x").to_ascii_lowercase();
    for (i, r) in reports.iter().enumerate() {
        if let Some(j) = reports[..i]
            .iter()
            .position(|x| x.kind == r.kind && abi(x) == abi(r))
        {
            return (
                false,
                format!(
                    "duplicate {} report (reports[{j}] and reports[{i}] are the same report): each report appears once",
                    r.kind
                ),
            );
        }
    }
    let openeds = kinds.iter().take_while(|k| **k == "opened").count();
    let rest = &kinds[openeds..];
    let ok = match rest {
        [] => true,
        ["completed"] => openeds > 0,
        ["aborted"] => true,
        _ => false,
    };
    if ok {
        let attempts = if openeds > 1 {
            format!(" (one opened per node attempt: {openeds} attempts reached opened)")
        } else {
            String::new()
        };
        return (true, format!("in order: {}{attempts}", kinds.join(" → ")));
    }
    if openeds == 0 && rest[0] == "completed" {
        return (
            false,
            "reports[0] is completed: expected opened first (completed needs an opened report), or aborted alone".into(),
        );
    }
    let (j, t) = (openeds, rest[0]);
    let (i, k) = (openeds + 1, rest[1]);
    if k == t {
        (
            false,
            format!("duplicate {k} report (reports[{j}] and reports[{i}]): a session ends once"),
        )
    } else {
        (
            false,
            format!(
                "reports[{i}] ({k}) follows the terminal {t} report (reports[{j}]): nothing follows completed or aborted; expected opened (one per node attempt), then completed or aborted (or aborted alone)"
            ),
        )
    }
}

/// Groups the decoded reports into node attempts: each `opened` starts one;
/// a `completed` or `aborted` belongs to the latest attempt when its node
/// signed it, and otherwise is a new node's abort before its `opened`.
/// Returns the attempts and the first rule broken, if any.
fn group_attempts<'a>(
    bundle: &'a Bundle,
    decoded: &[Decoded<'a>],
) -> (Vec<Group<'a>>, Option<String>) {
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut problem: Option<String> = None;
    for (di, d) in decoded.iter().enumerate() {
        let nk = d.report.nodeKey.0;
        let hk = d.report.nodeHpkeKey.0;
        let i = d.index;
        let kind = d.kind.as_str();
        if let Some(g) = groups.last_mut() {
            if d.kind != ReportKind::Opened && g.opened.is_some() && g.node_key == nk {
                g.members.push(di);
                if g.hpke_key != hk {
                    problem.get_or_insert(format!(
                        "reports[{i}] ({kind}) names HPKE key {}, but attempt {}'s opened names {}",
                        short(&hk),
                        g.number,
                        short(&g.hpke_key)
                    ));
                }
                if d.bundled.envelope.is_some() {
                    problem.get_or_insert(format!(
                        "reports[{i}] ({kind}) carries an evidence envelope but continues attempt {} (only an attempt's first report carries one)",
                        g.number
                    ));
                }
                continue;
            }
        }
        let number = u32::try_from(groups.len() + 1).unwrap_or(u32::MAX);
        if d.kind == ReportKind::Completed {
            problem.get_or_insert(match groups.last() {
                Some(g) => format!(
                    "reports[{i}] (completed) is signed by node {}, not by node {} of the latest opened (attempt {}): completed must come from the node that opened",
                    short(&nk),
                    short(&g.node_key),
                    g.number
                ),
                None => format!("reports[{i}] (completed) follows no opened report"),
            });
        }
        if let Some(g) = groups.iter().find(|g| g.node_key == nk) {
            problem.get_or_insert(format!(
                "attempt {number} (reports[{i}], {kind}) reuses node key {} of attempt {}: a replacement node attests afresh, with fresh keys",
                short(&nk),
                g.number
            ));
        }
        let envelope = bundle.envelope_of(i);
        if envelope.is_none() {
            problem.get_or_insert(format!(
                "attempt {number}'s first report (reports[{i}], {kind}) carries no evidence envelope: each node attempt's first report carries its node's evidence"
            ));
        }
        groups.push(Group {
            number,
            members: vec![di],
            node_key: nk,
            hpke_key: hk,
            envelope,
            opened: (d.kind == ReportKind::Opened).then_some(di),
        });
    }
    (groups, problem)
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
/// manifest's; `at`: the instant to verify evidence at (default: for each
/// node attempt, the time in its first report, when that node presented its
/// evidence); `provenance`: whether the bundle was read from the chain just
/// now (and which chain checks the reader ran) or is offline.
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
    // Every envelope in the bundle: the top-level one, then the later
    // attempts' (with the report index that carried each).
    let later: Vec<(usize, &EvidenceEnvelope)> = bundle
        .reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.envelope.as_ref()?)))
        .collect();
    let mut insecure =
        bundle.envelope.kind == TeeKind::Sim || later.iter().any(|(_, e)| e.kind == TeeKind::Sim);

    let known_format = bundle.format == BUNDLE_FORMAT || bundle.format == BUNDLE_FORMAT_V1;
    let v1_with_envelopes = bundle.format == BUNDLE_FORMAT_V1 && !later.is_empty();
    let bad_envelope = std::iter::once(("envelope".to_string(), &bundle.envelope))
        .chain(
            later
                .iter()
                .map(|(i, e)| (format!("reports[{i}].envelope"), *e)),
        )
        .find(|(_, e)| e.format != ENVELOPE_FORMAT);
    let format_ok = known_format && !v1_with_envelopes && bad_envelope.is_none();
    c.push(
        Name::BundleFormat,
        format_ok,
        if format_ok {
            format!("{} with {ENVELOPE_FORMAT} envelope(s)", bundle.format)
        } else if let Some((path, e)) = bad_envelope {
            format!(
                "unknown format: {path} `{}` (this verifier reads {ENVELOPE_FORMAT})",
                e.format
            )
        } else if v1_with_envelopes {
            format!("a {BUNDLE_FORMAT_V1} bundle carries per-report envelopes (only {BUNDLE_FORMAT} does)")
        } else {
            format!(
                "unknown format: bundle `{}` (this verifier reads {BUNDLE_FORMAT} and {BUNDLE_FORMAT_V1})",
                bundle.format
            )
        },
    );

    let foreign_manifest = later.iter().find(|(_, e)| e.manifest.hash() != mh);
    c.push(
        Name::Manifest,
        m.validate().is_ok() && m.session_id == bundle.session_id && foreign_manifest.is_none(),
        match (m.validate(), foreign_manifest) {
            (Err(e), _) => e.to_string(),
            (Ok(()), _) if m.session_id != bundle.session_id => {
                "manifest is for another session".into()
            }
            (Ok(()), Some((i, e))) => format!(
                "reports[{i}].envelope carries manifest {:#x}, not the session's manifest {mh:#x}",
                e.manifest.hash()
            ),
            (Ok(()), None) => format!(
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
        if report.version != crate::report::REPORT_VERSION {
            decode_fail.get_or_insert(format!(
                "reports[{i}] ({}): report format version {}, this verifier reads version {}",
                r.kind,
                report.version,
                crate::report::REPORT_VERSION
            ));
            continue;
        }
        match ReportKind::from_code(report.kind) {
            Some(k) if k.as_str() == r.kind => {
                let hash = keccak256(&bytes);
                decoded.push(Decoded {
                    index: i,
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

    // Node attempts.
    let (groups, attempt_problem) = group_attempts(bundle, &decoded);
    let attempts_ok = attempt_problem.is_none() && !groups.is_empty() && decoded.len() == n;
    c.push(
        Name::ReportAttempts,
        attempts_ok,
        match attempt_problem {
            Some(p) => p,
            None if groups.is_empty() => "no report decoded: no node attempt".into(),
            None if decoded.len() != n => {
                "not every report decoded: the node attempts cannot be told apart".into()
            }
            None if groups.len() == 1 => format!(
                "one node attempt: node {} signed {}; its first report carries its evidence envelope",
                short(&groups[0].node_key),
                groups[0]
                    .members
                    .iter()
                    .map(|&i| decoded[i].kind.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
            None => format!(
                "{} node attempts ({}); each attempt's first report carries its node's evidence envelope, each replacement node has fresh keys, and the last attempt's node signed its own reports",
                groups.len(),
                groups
                    .iter()
                    .map(|g| format!(
                        "{}: node {} signed {}",
                        g.number,
                        short(&g.node_key),
                        g.members
                            .iter()
                            .map(|&i| decoded[i].kind.as_str())
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
    );

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

    // Signatures, each under the node key its report names (the attempts
    // check ties each key to its attempt, the evidence check binds it),
    // over keccak256 of the supplied bytes.
    let sig_bad = decoded.iter().find(|d| {
        sealroom_protocol::identity::verify_strict(
            &d.report.nodeKey.0,
            &signing_message(&d.hash),
            &d.signature,
        )
        .is_err()
    });
    c.push(
        Name::ReportSignature,
        sig_bad.is_none() && !decoded.is_empty(),
        match sig_bad {
            Some(d) => format!(
                "reports[{}] ({}): signature does not verify under the node key {}",
                d.index,
                d.kind.as_str(),
                hex::encode(d.report.nodeKey)
            ),
            None if decoded.is_empty() => "no report decoded: no signature to check".into(),
            None if groups.len() <= 1 => format!(
                "{} signature(s) over keccak256 of the supplied report bytes valid under node key {}",
                decoded.len(),
                hex::encode(decoded[0].report.nodeKey)
            ),
            None => format!(
                "{} signature(s) over keccak256 of the supplied report bytes valid, each under its attempt's node key ({})",
                decoded.len(),
                groups
                    .iter()
                    .map(|g| format!("attempt {}: {}", g.number, hex::encode(g.node_key)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    );

    // Evidence: each report names its attempt's evidence.
    let mut ev_fail = None;
    for g in &groups {
        let Some(env) = g.envelope else {
            ev_fail.get_or_insert(format!("attempt {} has no evidence envelope", g.number));
            continue;
        };
        let h = crate::binding::node_evidence_hash(
            &env.evidence,
            env.gpu.as_ref().map(|g| g.evidence.as_slice()),
        );
        if let Some(&i) = g
            .members
            .iter()
            .find(|&&i| decoded[i].report.evidenceHash != h)
        {
            ev_fail.get_or_insert(if groups.len() == 1 {
                "the evidence is not the one the reports name".to_string()
            } else {
                format!(
                    "reports[{}] ({}) names evidence {:#x}, not its attempt's ({h:#x}, attempt {})",
                    decoded[i].index,
                    decoded[i].kind.as_str(),
                    decoded[i].report.evidenceHash,
                    g.number
                )
            });
        }
    }
    let ev_ok = ev_fail.is_none() && !groups.is_empty();
    c.push(
        Name::EvidenceHash,
        ev_ok,
        match ev_fail {
            Some(f) => f,
            None if groups.is_empty() => "the evidence is not the one the reports name".into(),
            None if groups.len() == 1 => format!(
                "evidence keccak256 {:#x} matches every report",
                keccak256(&bundle.envelope.evidence)
            ),
            None => {
                "each report names its attempt's evidence (keccak256 of the envelope's evidence)"
                    .into()
            }
        },
    );

    // Each attempt's evidence, verified against the policy and bound to its
    // node keys and the manifest: members released their keys to every
    // attempt's node, lost ones included.
    let mut verdicts: Vec<Option<Verdict>> = Vec::new();
    let mut ev_details = Vec::new();
    for g in &groups {
        let Some(env) = g.envelope else {
            verdicts.push(None);
            ev_details.push(format!("attempt {}: no evidence envelope", g.number));
            continue;
        };
        let at = at.unwrap_or(decoded[g.members[0]].report.timestamp as i64);
        let decode = |h: &str| hex::decode(h.trim_start_matches("0x")).unwrap_or_default();
        let inputs = Inputs {
            evidence: env.evidence.clone(),
            certs: env.certs.iter().map(|h| decode(h)).collect(),
            collateral: env.collateral.as_deref().map(decode),
            at,
            expected_report_data: Some(expected_report_data(&g.node_key, &g.hpke_key, &mh.0)),
            expected_nonce: None,
            gpu_reference: None,
        };
        let mut gpu_verdict = None;
        let v = if policy.accepted_kinds.contains(&env.kind) {
            let cpu = attest::verify(env.kind, &inputs, &policy);
            let rd = expected_report_data(&g.node_key, &g.hpke_key, &mh.0);
            gpu_verdict = env
                .gpu
                .as_ref()
                .map(|gpu| crate::policy_eval::verify_registered_gpu(gpu, &rd, &policy, at));
            crate::policy_eval::with_gpu(cpu, gpu_verdict.as_ref(), &policy)
        } else {
            Verdict::rejected(
                env.kind,
                attest::Failure::new(
                    Name::PolicyKind,
                    format!("{} evidence is not accepted by the policy", env.kind),
                ),
            )
        };
        insecure |= v.insecure_simulation;
        let detail = match &v.failure {
            None => format!(
                "{} evidence verified at {at} under the {policy_source} policy; node keys and manifest bound in report_data{}",
                v.kind,
                match &gpu_verdict {
                    Some(g) => format!("; {}", crate::policy_eval::gpu_words(g, &policy)),
                    None => String::new(),
                }
            ),
            Some(f) => format!("{}: {}", f.check, f.detail),
        };
        ev_details.push(if groups.len() == 1 {
            detail
        } else {
            format!("attempt {}: {detail}", g.number)
        });
        verdicts.push(Some(v));
    }
    let all_verified = !groups.is_empty()
        && verdicts
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| v.verified));
    c.push(
        Name::EvidenceVerified,
        all_verified,
        if groups.is_empty() {
            "no report names a node key".to_string()
        } else {
            ev_details.join("; ")
        },
    );
    // The manifest's engine allowlist applies to each attested measurement
    // (the only measurement there is).
    let attested: Vec<(u32, String)> = groups
        .iter()
        .zip(&verdicts)
        .filter_map(|(g, v)| {
            let v = v.as_ref().filter(|v| v.verified)?;
            Some((g.number, v.measurement.clone().unwrap_or_default()))
        })
        .collect();
    if !attested.is_empty() {
        let mut engine_fail = None;
        for (number, a) in &attested {
            if let Err(f) = crate::node_check::engine_allowed(&m.engine, a) {
                engine_fail.get_or_insert(if attested.len() == 1 && groups.len() == 1 {
                    f.detail
                } else {
                    format!("attempt {number}: {}", f.detail)
                });
            }
        }
        let mut list: Vec<&str> = attested.iter().map(|(_, a)| a.as_str()).collect();
        list.sort_unstable();
        list.dedup();
        let list = list.join(", ");
        let _ = match engine_fail {
            Some(f) => c.push(Name::EngineAllowlist, false, f),
            None if m.engine.trainer_measurements.is_empty() => c.push(
                Name::EngineAllowlist,
                true,
                format!("the manifest pins no engine measurement; attested {list}"),
            ),
            None => c.push(
                Name::EngineAllowlist,
                true,
                format!("attested measurement {list} is in engine.trainer_measurements"),
            ),
        };
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

    // Report chain: each report links the latest opened report before it
    // (keccak256 of its supplied bytes), zero when there is none: the first
    // opened links nothing, a replacement's opened links the previous
    // attempt's, the terminal report the latest opened.
    let mut link_fail = None;
    let mut latest: Option<&Decoded<'_>> = None;
    let mut openeds = 0;
    for d in &decoded {
        let expected = latest.map(|l| l.hash).unwrap_or(B256::ZERO);
        if d.report.prevReportHash != expected && link_fail.is_none() {
            let kind = d.kind.as_str();
            let prev = d.report.prevReportHash;
            let i = d.index;
            link_fail = Some(match (d.kind, latest) {
                (ReportKind::Opened, None) => format!(
                    "the first opened report (reports[{i}]) has prevReportHash {prev:#x}, not zero"
                ),
                (ReportKind::Opened, Some(l)) => format!(
                    "the opened report reports[{i}] (attempt {}) has prevReportHash {prev:#x}, not keccak256 of the previous attempt's opened report (reports[{}], {expected:#x})",
                    openeds + 1,
                    l.index
                ),
                (_, None) => format!(
                    "the {kind} report (reports[{i}]) has prevReportHash {prev:#x}, not zero (no opened report precedes it)"
                ),
                (_, Some(l)) => format!(
                    "the {kind} report's prevReportHash {prev:#x} is not keccak256 of the latest opened report's bytes (reports[{}], {expected:#x})",
                    l.index
                ),
            });
        }
        if d.kind == ReportKind::Opened {
            latest = Some(d);
            openeds += 1;
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
                "reports link: {} (each prevReportHash is keccak256 of the latest opened report before it, zero for the first; a replacement's opened links the previous attempt's)",
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
    let (privacy_ok, privacy_detail) = check_privacy(m, &policy, &decoded);
    c.push(Name::Privacy, privacy_ok, privacy_detail);
    let by = if groups.len() > 1 {
        format!(" (attempt {} of {})", groups.len(), groups.len())
    } else {
        String::new()
    };
    c.push(
        Name::ReportOutcome,
        outcome == "completed" || outcome == "aborted",
        match (completed, aborted) {
            (Some(d), _) => format!(
                "completed{by}: model sha256 {:#x}, sealed to owner key {}, inputs wiped: {}",
                d.modelHash,
                hex::encode(d.ownerKey),
                d.inputsWiped
            ),
            (None, Some(a)) => format!("aborted{by} (code {}): {}", a.abortCode, a.abortReason),
            _ => "no completed or aborted report".into(),
        },
    );

    let attempts = summarize_attempts(&groups, &verdicts, &decoded);
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
    let summary = crate::audit::summarize(crate::audit::Facts {
        bundle,
        manifest: m,
        policy: &policy,
        policy_source: &policy_source,
        reports: bundle
            .reports
            .iter()
            .map(|r| {
                let bytes = hex::decode(r.report_abi.trim_start_matches("0x")).ok();
                let report = bytes
                    .as_deref()
                    .and_then(|b| IntegrityReport::from_abi_bytes(b).ok());
                let hash = bytes.as_deref().map(alloy_primitives::keccak256);
                (report, hash)
            })
            .collect(),
        attempts: &attempts,
        verdicts: &verdicts,
        from_chain,
        verified: failure.is_none(),
        failed_check: failure
            .as_ref()
            .map(|f| (f.check.as_str(), f.detail.as_str())),
        checks: c.0.len(),
        not_checked: not_checked.len(),
    });
    Verification {
        verified: failure.is_none(),
        insecure_simulation: insecure,
        policy_source,
        outcome: outcome.into(),
        checks: c.0,
        evidence_verdict: verdicts.into_iter().last().flatten(),
        failure,
        source: if from_chain { "chain" } else { "offline" }.into(),
        chain,
        not_checked,
        attempts,
        summary: Some(summary),
    }
}

/// Each attempt, with what became of it in plain language.
fn summarize_attempts(
    groups: &[Group<'_>],
    verdicts: &[Option<Verdict>],
    decoded: &[Decoded<'_>],
) -> Vec<AttemptSummary> {
    groups
        .iter()
        .zip(verdicts)
        .enumerate()
        .map(|(gi, (g, v))| {
            let last = gi + 1 == groups.len();
            let terminal = g
                .members
                .iter()
                .map(|&i| &decoded[i])
                .find(|d| d.kind != ReportKind::Opened);
            let opened = g.opened.map(|i| &decoded[i]);
            let (outcome, replaced_by, explanation) = match terminal {
                _ if !last => {
                    let next = g.number + 1;
                    (
                        AttemptResult::Lost,
                        Some(next),
                        format!(
                            "node lost after opened; replaced by attempt {next}; its keys were sealed to that node only (the data keys granted to it open only with its own TEE-held key), and it published nothing more"
                        ),
                    )
                }
                Some(t) if t.kind == ReportKind::Completed => (
                    AttemptResult::Completed,
                    None,
                    format!(
                        "the model was trained and sealed to the owner; inputs wiped: {}",
                        if t.report.inputsWiped { "yes" } else { "NO" }
                    ),
                ),
                Some(t) => (
                    AttemptResult::Aborted,
                    None,
                    format!(
                        "{} (code {}): {}",
                        if opened.is_some() {
                            "after opened"
                        } else {
                            "before opened"
                        },
                        t.report.abortCode,
                        t.report.abortReason
                    ),
                ),
                None => (
                    AttemptResult::InProgress,
                    None,
                    "opened, no completed or aborted report yet (training in progress, or the node was lost and not replaced yet)".to_string(),
                ),
            };
            AttemptSummary {
                number: g.number,
                node_key: hex::encode(g.node_key),
                tee_kind: g.envelope.map(|e| e.kind),
                insecure_simulation: g.envelope.is_some_and(|e| e.kind == TeeKind::Sim)
                    || v.as_ref().is_some_and(|v| v.insecure_simulation),
                evidence_verified: v.as_ref().is_some_and(|v| v.verified),
                reports: g.members.iter().map(|&i| decoded[i].index).collect(),
                opened_report_hash: opened.map(|d| d.hash),
                opened_tx_hash: opened.and_then(|d| d.bundled.tx_hash.clone()),
                outcome,
                replaced_by,
                explanation,
            }
        })
        .collect()
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

/// The `privacy` check: only a `completed` report carries a privacy
/// account; it carries exactly the manifest's committed DP-SGD parameters
/// and schedule (bit for bit: they are f64 bit patterns), and an ε no
/// smaller than the one recomputed here from them; the applied policy's
/// `max_epsilon` holds. Without `[privacy]` the account must be empty.
fn check_privacy(m: &Manifest, policy: &Policy, decoded: &[Decoded<'_>]) -> (bool, String) {
    use sealroom_protocol::privacy::NoiseSource;
    if let Some(d) = decoded
        .iter()
        .find(|d| d.kind != ReportKind::Completed && d.report.privacy != Default::default())
    {
        return (
            false,
            format!(
                "the {} report carries a privacy account; only a completed report may",
                d.kind.as_str()
            ),
        );
    }
    let Some(done) = decoded.iter().find(|d| d.kind == ReportKind::Completed) else {
        return (
            true,
            "no completed report: no privacy spent to account for".into(),
        );
    };
    let a = &done.report.privacy;
    let Some(spec) = &m.privacy else {
        if a != &Default::default() {
            return (
                false,
                "the completed report claims a privacy account the manifest has no [privacy] for"
                    .into(),
            );
        }
        return match policy.max_epsilon {
            Some(max) => (
                false,
                format!(
                    "the policy's max_epsilon {max} needs differentially private training; the manifest has no [privacy]"
                ),
            ),
            None => (
                true,
                "no [privacy] in the manifest: the training is not differentially private (nothing to account)".into(),
            ),
        };
    };
    let (Some(schedule), Some(sigma)) = (m.privacy_schedule(), spec.noise_multiplier) else {
        return (
            false,
            "the manifest's [privacy] has no σ or no training records".into(),
        );
    };
    let mechanism = match spec.noise_source {
        NoiseSource::Tee => 1u8,
        NoiseSource::Seed => 2u8,
    };
    let f = f64::from_bits;
    let mut wrong = Vec::new();
    if a.mechanism != mechanism {
        wrong.push(format!(
            "mechanism {} (the manifest's is {mechanism})",
            a.mechanism
        ));
    }
    for (name, claimed, committed) in [
        ("noiseMultiplier", a.noiseMultiplier, sigma),
        ("maxGradNorm", a.maxGradNorm, spec.max_grad_norm),
        ("sampleRate", a.sampleRate, schedule.sample_rate),
        ("delta", a.delta, spec.delta),
    ] {
        if claimed != committed.to_bits() {
            wrong.push(format!(
                "{name} {} (the manifest's is {committed})",
                f(claimed)
            ));
        }
    }
    if a.steps != schedule.steps {
        wrong.push(format!(
            "steps {} (the manifest's schedule is {})",
            a.steps, schedule.steps
        ));
    }
    if !wrong.is_empty() {
        return (
            false,
            format!(
                "the completed report's privacy parameters differ from the manifest: {}",
                wrong.join(", ")
            ),
        );
    }
    let spent = match spec.spent(&schedule) {
        Ok(s) => s,
        Err(e) => return (false, format!("ε cannot be recomputed: {e}")),
    };
    let claimed = f(a.epsilon);
    // The node ran this same accountant: its claim equals the recomputed ε
    // up to rounding; a claim below it understates the privacy spent.
    if claimed.is_nan() || claimed < spent.epsilon * (1.0 - 1e-12) {
        return (
            false,
            format!(
                "the completed report claims ε = {claimed}, less than the {} recomputed from the committed σ {sigma}, q {}, {} steps, δ {}",
                spent.epsilon, schedule.sample_rate, schedule.steps, spec.delta
            ),
        );
    }
    if let Some(Err(e)) = policy.max_epsilon.map(|max| m.privacy_within(max)) {
        return (false, format!("{e} (the applied policy)"));
    }
    (
        true,
        format!(
            "DP-SGD spent ε = {:.4} at δ = {} (recomputed: σ {sigma}, C {}, Poisson q {:.6}, {} steps, RDP order {}; the report claims {claimed:.4}){}",
            spent.epsilon,
            spec.delta,
            spec.max_grad_norm,
            schedule.sample_rate,
            schedule.steps,
            spent.order,
            if spec.noise_source == NoiseSource::Seed {
                "; noise_source = seed: the noise derives from the committed seed, so ε does not hold against anyone who knows it (every member)"
            } else {
                ""
            }
        ),
    )
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
            envelope: None,
        }
    }

    #[test]
    fn openeds_per_attempt_then_one_terminal_report() {
        // Distinct bytes per report: the kinds alone are under test.
        let seq = |k: &[&str]| {
            let reports: Vec<_> = k
                .iter()
                .enumerate()
                .map(|(i, k)| BundledReport {
                    report_abi: format!("{i:02x}"),
                    ..report(k)
                })
                .collect();
            kinds_check(&reports)
        };
        for ok in [
            &["opened"][..],
            &["opened", "completed"],
            &["opened", "aborted"],
            &["aborted"],
            &["opened", "opened"],
            &["opened", "opened", "completed"],
            &["opened", "opened", "opened", "aborted"],
        ] {
            assert!(seq(ok).0, "{ok:?}");
        }
        let (_, d) = seq(&["opened", "opened", "completed"]);
        assert!(d.contains("2 attempts reached opened"), "{d}");
        // The same opened twice is a duplicate, not a second attempt.
        let mut same = vec![report("opened"), report("opened")];
        same[0].report_abi = "0xAB".into();
        same[1].report_abi = "ab".into();
        let (ok, d) = kinds_check(&same);
        assert!(!ok && d.contains("duplicate opened"), "{d}");
        let (ok, d) = seq(&["opened", "completed", "completed"]);
        assert!(!ok && d.contains("duplicate completed"), "{d}");
        let (ok, d) = seq(&["completed", "opened"]);
        assert!(!ok && d.contains("expected opened"), "{d}");
        let (ok, d) = seq(&["opened", "completed", "opened"]);
        assert!(!ok && d.contains("follows the terminal completed"), "{d}");
        let (ok, d) = seq(&["aborted", "opened"]);
        assert!(!ok && d.contains("follows the terminal aborted"), "{d}");
        assert!(!seq(&["opened", "completed", "aborted"]).0);
        assert!(!seq(&["completed"]).0);
        assert!(!seq(&[]).0);
        let (ok, d) = seq(&["opened", "closed"]);
        assert!(!ok && d.contains("unknown kind `closed`"), "{d}");
    }

    /// Sessions with several node attempts, on simulated evidence.
    mod attempts {
        use super::*;
        use crate::attest::simulate::{sim_default_measurement, simulate_at};
        use sealroom_protocol::identity::Identity;
        use sealroom_protocol::scenario::Scenario;

        const T0: u64 = 1_760_000_000;

        fn manifest() -> Manifest {
            manifest_of("breast-cancer-3-hospitals.toml")
        }

        fn manifest_of(file: &str) -> Manifest {
            manifest_with(file, |_| {})
        }

        fn manifest_with(file: &str, edit: impl Fn(&mut Scenario)) -> Manifest {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios")
                .join(file);
            let mut s = Scenario::load(&path).unwrap();
            edit(&mut s);
            let c = |n: u8| sealroom_protocol::dataset::DatasetCommitment {
                merkle_root: B256::repeat_byte(n),
                record_count: 10,
                schema_hash: B256::repeat_byte(9),
                ciphertext_sha256: B256::repeat_byte(n + 1),
                ciphertext_len: 100,
            };
            let parties = (0..3)
                .map(|i| (Identity::generate().unwrap().public(), c(i * 2)))
                .collect();
            let owner = Identity::generate().unwrap().public();
            Manifest::from_scenario(&s, B256::repeat_byte(7), 1, parties, owner, Some(c(40)))
                .unwrap()
        }

        /// A node: fresh keys and sim evidence binding them to the manifest.
        struct Node {
            id: Identity,
            env: EvidenceEnvelope,
        }

        fn node(m: &Manifest, t: u64) -> Node {
            let id = Identity::generate().unwrap();
            let p = id.public();
            let rd = expected_report_data(&p.ed25519, &p.x25519, &m.hash().0);
            let evidence = simulate_at(&rd, &sim_default_measurement(), false, t as i64);
            Node {
                id,
                env: EvidenceEnvelope {
                    format: ENVELOPE_FORMAT.into(),
                    kind: TeeKind::Sim,
                    evidence,
                    certs: vec![],
                    collateral: None,
                    manifest: m.clone(),
                    gpu: None,
                },
            }
        }

        fn report_of(
            n: &Node,
            m: &Manifest,
            kind: ReportKind,
            prev: B256,
            t: u64,
        ) -> IntegrityReport {
            let p = n.id.public();
            let completed = kind == ReportKind::Completed;
            IntegrityReport {
                version: crate::report::REPORT_VERSION,
                kind: kind as u8,
                sessionId: m.session_id,
                manifestHash: m.hash(),
                inputsRoot: m.inputs_tree().unwrap().root(),
                prevReportHash: prev,
                nodeKey: p.ed25519.into(),
                nodeHpkeKey: p.x25519.into(),
                evidenceHash: crate::binding::node_evidence_hash(
                    &n.env.evidence,
                    n.env.gpu.as_ref().map(|g| g.evidence.as_slice()),
                ),
                teeKind: 3,
                insecureSimulation: true,
                modelHash: if completed {
                    B256::repeat_byte(1)
                } else {
                    B256::ZERO
                },
                sealedModelHash: if completed {
                    B256::repeat_byte(2)
                } else {
                    B256::ZERO
                },
                ownerKey: m.owner.identity.x25519.into(),
                trainingSummaryHash: B256::ZERO,
                seed: 42,
                dataOrderCommitment: B256::repeat_byte(3),
                inputsWiped: completed,
                abortCode: if kind == ReportKind::Aborted { 7 } else { 0 },
                abortReason: if kind == ReportKind::Aborted {
                    "party hospital-b: ciphertext hash mismatch".into()
                } else {
                    String::new()
                },
                timestamp: t,
                privacy: Default::default(),
            }
        }

        fn bundled(n: &Node, r: &IntegrityReport, envelope: bool) -> BundledReport {
            let bytes = r.abi_bytes();
            let h = keccak256(&bytes);
            BundledReport {
                kind: ReportKind::from_code(r.kind).unwrap().as_str().into(),
                report_abi: hex::encode(&bytes),
                signature: hex::encode(n.id.sign(&signing_message(&h))),
                stored_hash: h,
                tx_hash: Some(format!("{:#x}", keccak256(h))),
                block: None,
                envelope: envelope.then(|| n.env.clone()),
            }
        }

        /// Node 1 opened and was lost; node 2 opened (linking node 1's) and,
        /// with `terminal`, completed or aborted.
        fn failover(terminal: Option<ReportKind>) -> (Bundle, Node, Node) {
            let m = manifest();
            let (a, b) = (node(&m, T0), node(&m, T0 + 600));
            let o1 = report_of(&a, &m, ReportKind::Opened, B256::ZERO, T0);
            let o2 = report_of(&b, &m, ReportKind::Opened, o1.report_hash(), T0 + 600);
            let mut reports = vec![bundled(&a, &o1, false), bundled(&b, &o2, true)];
            if let Some(k) = terminal {
                let t = report_of(&b, &m, k, o2.report_hash(), T0 + 900);
                reports.push(bundled(&b, &t, false));
            }
            let bundle = Bundle {
                format: BUNDLE_FORMAT.into(),
                session_id: m.session_id,
                chain: serde_json::Value::Null,
                reports,
                envelope: a.env.clone(),
            };
            (bundle, a, b)
        }

        fn failed(v: &Verification) -> (String, String) {
            let f = v.failure.clone().expect("a failed check");
            (f.check, f.detail)
        }

        /// A DP session's `completed` report must carry the manifest's
        /// privacy account; one that understates ε, or changes σ, C, q,
        /// steps or δ — even re-signed by the node's own key — fails the
        /// `privacy` check, as does an account on a non-private manifest
        /// and an ε above the applied policy's `max_epsilon`.
        #[test]
        fn a_privacy_account_that_differs_from_the_manifest_is_rejected() {
            let session = |m: &Manifest, tweak: &dyn Fn(&mut IntegrityReport)| {
                let n = node(m, T0);
                let o = report_of(&n, m, ReportKind::Opened, B256::ZERO, T0);
                let mut c = report_of(&n, m, ReportKind::Completed, o.report_hash(), T0 + 60);
                c.privacy = crate::report::privacy_account(m);
                tweak(&mut c);
                Bundle {
                    format: BUNDLE_FORMAT.into(),
                    session_id: m.session_id,
                    chain: serde_json::Value::Null,
                    reports: vec![bundled(&n, &o, true), bundled(&n, &c, false)],
                    envelope: n.env.clone(),
                }
            };
            let m = manifest_of("breast-cancer-dp.toml");
            let spent = m.privacy_spent().unwrap().epsilon;
            assert!(spent > 0.0 && spent <= 3.0 * (1.0 + 1e-9), "{spent}");
            let v = verify_bundle(&session(&m, &|_| {}), None, None);
            assert!(v.verified, "{:?}", v.failure);
            let p = v.checks.iter().find(|c| c.check == "privacy").unwrap();
            assert!(p.detail.starts_with("DP-SGD spent ε = "), "{}", p.detail);

            let under = |c: &mut IntegrityReport| {
                c.privacy.epsilon = (f64::from_bits(c.privacy.epsilon) * 0.5).to_bits()
            };
            let (check, detail) = failed(&verify_bundle(&session(&m, &under), None, None));
            assert_eq!(check, "privacy");
            assert!(
                detail.contains("claims ε") && detail.contains("less than"),
                "{detail}"
            );
            // Overstating is allowed (a looser claim is still true).
            let over = |c: &mut IntegrityReport| {
                c.privacy.epsilon = (f64::from_bits(c.privacy.epsilon) * 2.0).to_bits()
            };
            assert!(verify_bundle(&session(&m, &over), None, None).verified);
            type Tweak<'a> = (&'a str, &'a dyn Fn(&mut IntegrityReport));
            let tweaks: [Tweak; 5] = [
                ("noiseMultiplier", &|c| {
                    c.privacy.noiseMultiplier = 2f64.to_bits()
                }),
                ("maxGradNorm", &|c| c.privacy.maxGradNorm = 5f64.to_bits()),
                ("sampleRate", &|c| c.privacy.sampleRate = 0.01f64.to_bits()),
                ("steps", &|c| c.privacy.steps = 1),
                ("mechanism", &|c| c.privacy.mechanism = 2),
            ];
            for (field, t) in tweaks {
                let (check, detail) = failed(&verify_bundle(&session(&m, t), None, None));
                assert_eq!(check, "privacy", "{field}");
                assert!(detail.contains(field), "{field}: {detail}");
            }
            let mut strict = m.policy.clone();
            strict.max_epsilon = Some(1.0);
            let (check, detail) = failed(&verify_bundle(
                &session(&m, &|_| {}),
                Some((&strict, "strict.toml")),
                None,
            ));
            assert_eq!(check, "privacy");
            assert!(detail.contains("max_epsilon 1"), "{detail}");
            // Seed-derived noise meets no max_epsilon, however loose.
            let seeded = manifest_with("breast-cancer-dp.toml", |s| {
                if let Some(p) = s.privacy.as_mut() {
                    p.noise_source = sealroom_protocol::privacy::NoiseSource::Seed;
                }
            });
            assert!(verify_bundle(&session(&seeded, &|_| {}), None, None).verified);
            strict.max_epsilon = Some(100.0);
            let (check, detail) = failed(&verify_bundle(
                &session(&seeded, &|_| {}),
                Some((&strict, "strict.toml")),
                None,
            ));
            assert_eq!(check, "privacy");
            assert!(detail.contains("noise_source = \"seed\""), "{detail}");

            // No [privacy]: no account may be claimed.
            let plain = manifest();
            assert!(verify_bundle(&session(&plain, &|_| {}), None, None).verified);
            let claim = |c: &mut IntegrityReport| {
                c.privacy = crate::report::privacy_account(&m);
            };
            let (check, detail) = failed(&verify_bundle(&session(&plain, &claim), None, None));
            assert_eq!(check, "privacy");
            assert!(detail.contains("no [privacy]"), "{detail}");
        }

        /// A node with composite evidence (here a simulated GPU): under a
        /// policy that requires a GPU it verifies when the GPU evidence is
        /// bound to the node's CPU report_data and the reports name both;
        /// without GPU evidence, `policy.gpu-required`; bound to another
        /// report_data, `nvidia.nonce-binding`; reports naming the CPU
        /// evidence alone, `evidence.hash`.
        #[test]
        fn a_gpu_node_verifies_only_with_bound_composite_evidence() {
            use crate::attest::simulate::simulate_gpu_at;
            use crate::binding::gpu_nonce_for;
            use sealroom_protocol::api::GpuRegistration;
            let m = manifest_with("breast-cancer-3-hospitals.toml", |s| {
                s.policy.require_gpu = true
            });
            let session = |n: &Node| {
                let o = report_of(n, &m, ReportKind::Opened, B256::ZERO, T0);
                let c = report_of(n, &m, ReportKind::Completed, o.report_hash(), T0 + 60);
                Bundle {
                    format: BUNDLE_FORMAT.into(),
                    session_id: m.session_id,
                    chain: serde_json::Value::Null,
                    reports: vec![bundled(n, &o, true), bundled(n, &c, false)],
                    envelope: n.env.clone(),
                }
            };
            let with_gpu = |rd: &[u8; 64]| {
                let mut n = node(&m, T0);
                n.env.gpu = Some(GpuRegistration {
                    kind: TeeKind::Sim,
                    evidence: simulate_gpu_at(&gpu_nonce_for(rd), T0 as i64),
                    certs: vec![],
                });
                n
            };
            let bound = |n: &Node| {
                let p = n.id.public();
                expected_report_data(&p.ed25519, &p.x25519, &m.hash().0)
            };
            // Bound: verified, and the reports' evidenceHash covers the GPU.
            let probe = node(&m, T0);
            let mut good = with_gpu(&bound(&probe));
            good.id = probe.id;
            good.env.evidence = probe.env.evidence;
            let v = verify_bundle(&session(&good), None, None);
            assert!(v.verified, "{:?}", v.failure);
            // No GPU evidence.
            let (check, detail) = failed(&verify_bundle(&session(&node(&m, T0)), None, None));
            assert_eq!(check, "evidence.verified");
            assert!(detail.contains("policy.gpu-required"), "{detail}");
            // GPU evidence bound to another node's report_data.
            let stranger = with_gpu(&[9; 64]);
            let (check, detail) = failed(&verify_bundle(&session(&stranger), None, None));
            assert_eq!(check, "evidence.verified");
            assert!(detail.contains("nvidia.nonce-binding"), "{detail}");
            // Reports that name the CPU evidence alone: the GPU part is not committed.
            let mut b = session(&good);
            let mut o =
                IntegrityReport::from_abi_bytes(&hex::decode(&b.reports[0].report_abi).unwrap())
                    .unwrap();
            o.evidenceHash = keccak256(&good.env.evidence);
            b.reports[0] = bundled(&good, &o, true);
            let (check, _) = failed(&verify_bundle(&b, None, None));
            assert_eq!(check, "evidence.hash");
        }

        #[test]
        fn a_replaced_node_is_explained_and_every_attempt_verified() {
            let (b, a, n2) = failover(Some(ReportKind::Completed));
            let v = verify_bundle(&b, None, None);
            assert!(v.verified, "{:?}", v.failure);
            assert_eq!(v.outcome, "completed");
            assert_eq!(v.attempts.len(), 2);
            let (first, second) = (&v.attempts[0], &v.attempts[1]);
            assert_eq!(first.outcome, AttemptResult::Lost);
            assert_eq!(first.replaced_by, Some(2));
            assert_eq!(first.node_key, hex::encode(a.id.public().ed25519));
            assert!(
                first.explanation.contains("replaced by attempt 2"),
                "{}",
                first.explanation
            );
            assert!(first.evidence_verified && first.insecure_simulation);
            assert_eq!(first.reports, vec![0]);
            assert_eq!(second.outcome, AttemptResult::Completed);
            assert_eq!(second.node_key, hex::encode(n2.id.public().ed25519));
            assert_eq!(second.reports, vec![1, 2]);
            assert_eq!(second.opened_tx_hash, b.reports[1].tx_hash);
            let att = v
                .checks
                .iter()
                .find(|c| c.check == "report.attempts")
                .unwrap();
            assert!(att.detail.starts_with("2 node attempts"), "{}", att.detail);
            // The bundle round-trips through its strict reader.
            let text = serde_json::to_string(&b).unwrap();
            assert_eq!(Bundle::from_json(&text).unwrap(), b);
        }

        #[test]
        fn in_progress_and_aborted_replacements() {
            let (b, _, _) = failover(None);
            let v = verify_bundle(&b, None, None);
            assert_eq!(
                failed(&v).0,
                "report.outcome",
                "only the outcome is missing"
            );
            assert_eq!(v.attempts[1].outcome, AttemptResult::InProgress);
            let (b, _, _) = failover(Some(ReportKind::Aborted));
            let v = verify_bundle(&b, None, None);
            assert!(v.verified, "{:?}", v.failure);
            assert_eq!(v.outcome, "aborted");
            assert_eq!(v.attempts[1].outcome, AttemptResult::Aborted);
            assert!(v.attempts[1].explanation.starts_with("after opened"));
        }

        #[test]
        fn a_replacement_aborting_before_its_opened_is_its_own_attempt() {
            // Node 2's loader refused an input: its aborted links node 1's
            // opened and carries node 2's evidence.
            let m = manifest();
            let (a, n2) = (node(&m, T0), node(&m, T0 + 600));
            let o1 = report_of(&a, &m, ReportKind::Opened, B256::ZERO, T0);
            let ab = report_of(&n2, &m, ReportKind::Aborted, o1.report_hash(), T0 + 600);
            let b = Bundle {
                format: BUNDLE_FORMAT.into(),
                session_id: m.session_id,
                chain: serde_json::Value::Null,
                reports: vec![bundled(&a, &o1, false), bundled(&n2, &ab, true)],
                envelope: a.env.clone(),
            };
            let v = verify_bundle(&b, None, None);
            assert!(v.verified, "{:?}", v.failure);
            assert_eq!(v.attempts.len(), 2);
            assert_eq!(v.attempts[0].outcome, AttemptResult::Lost);
            assert_eq!(v.attempts[1].outcome, AttemptResult::Aborted);
            assert_eq!(v.attempts[1].opened_report_hash, None);
            assert!(v.attempts[1].explanation.starts_with("before opened"));
            // Without its envelope, node 2's evidence is unknown: refused.
            let mut no_env = b.clone();
            no_env.reports[1].envelope = None;
            let v = verify_bundle(&no_env, None, None);
            let (check, detail) = failed(&v);
            assert_eq!(check, "report.attempts");
            assert!(detail.contains("carries no evidence envelope"), "{detail}");
        }

        #[test]
        fn broken_attempt_rules_are_named() {
            let (b, a, n2) = failover(Some(ReportKind::Completed));
            let m = &b.envelope.manifest;
            // The replacement's opened links nothing: report.chain.
            let mut x = b.clone();
            let o1 = report_of(&a, m, ReportKind::Opened, B256::ZERO, T0);
            let o2 = report_of(&n2, m, ReportKind::Opened, B256::ZERO, T0 + 600);
            x.reports[1] = bundled(&n2, &o2, true);
            let c = report_of(&n2, m, ReportKind::Completed, o2.report_hash(), T0 + 900);
            x.reports[2] = bundled(&n2, &c, false);
            let (check, detail) = failed(&verify_bundle(&x, None, None));
            assert_eq!(check, "report.chain");
            assert!(detail.contains("previous attempt's opened"), "{detail}");
            // The completed links the first attempt's opened: report.chain.
            let mut x = b.clone();
            let o2 = report_of(&n2, m, ReportKind::Opened, o1.report_hash(), T0 + 600);
            let c = report_of(&n2, m, ReportKind::Completed, o1.report_hash(), T0 + 900);
            x.reports[1] = bundled(&n2, &o2, true);
            x.reports[2] = bundled(&n2, &c, false);
            let (check, detail) = failed(&verify_bundle(&x, None, None));
            assert_eq!(check, "report.chain");
            assert!(detail.contains("latest opened"), "{detail}");
            // The completed is signed by the lost node: report.attempts.
            let mut x = b.clone();
            let c = report_of(&a, m, ReportKind::Completed, o2.report_hash(), T0 + 900);
            x.reports[2] = bundled(&a, &c, false);
            let (check, detail) = failed(&verify_bundle(&x, None, None));
            assert_eq!(check, "report.attempts");
            assert!(
                detail.contains("completed must come from the node that opened"),
                "{detail}"
            );
            // The replacement reuses the lost node's keys: report.attempts.
            let mut x = b.clone();
            let o2a = report_of(&a, m, ReportKind::Opened, o1.report_hash(), T0 + 600);
            x.reports[1] = bundled(&a, &o2a, true);
            x.reports.truncate(2);
            let (check, detail) = failed(&verify_bundle(&x, None, None));
            assert_eq!(check, "report.attempts");
            assert!(detail.contains("fresh keys"), "{detail}");
            // An envelope on a report that starts no attempt: report.attempts.
            let mut x = b.clone();
            x.reports[2].envelope = Some(n2.env.clone());
            let (check, detail) = failed(&verify_bundle(&x, None, None));
            assert_eq!(check, "report.attempts");
            assert!(detail.contains("continues attempt 2"), "{detail}");
            // The replacement's evidence swapped for the lost node's: the
            // reports name other evidence, and it binds other keys.
            let mut x = b.clone();
            x.reports[1].envelope = Some(a.env.clone());
            let v = verify_bundle(&x, None, None);
            assert_eq!(failed(&v).0, "evidence.hash");
            let ev = v
                .checks
                .iter()
                .find(|c| c.check == "evidence.verified")
                .unwrap();
            assert!(
                !ev.ok && ev.detail.starts_with("attempt 1: sim evidence verified"),
                "{}",
                ev.detail
            );
            assert!(
                ev.detail.contains("attempt 2: report-data"),
                "{}",
                ev.detail
            );
            // A later envelope carrying another manifest: manifest.
            let mut x = b.clone();
            let mut env = n2.env.clone();
            env.manifest.description.push('!');
            x.reports[1].envelope = Some(env);
            assert_eq!(failed(&verify_bundle(&x, None, None)).0, "manifest");
        }

        #[test]
        fn the_strict_reader_reads_v1_and_places_envelopes() {
            let (b, _, _) = failover(Some(ReportKind::Completed));
            let v2 = serde_json::to_value(&b).unwrap();
            // An envelope on the first report: its place is the top level.
            let mut x = v2.clone();
            x["reports"][0]["envelope"] = v2["envelope"].clone();
            let e = Bundle::from_json(&x.to_string()).unwrap_err();
            assert_eq!(e.field, "reports[0].envelope");
            // A nested envelope is read as strictly as the top-level one.
            let mut x = v2.clone();
            x["reports"][1]["envelope"]["note"] = "x".into();
            let e = Bundle::from_json(&x.to_string()).unwrap_err();
            assert_eq!(e.field, "reports[1].envelope.note");
            let mut x = v2.clone();
            x["reports"][1]["envelope"]["format"] = "sealroom-evidence/9".into();
            let e = Bundle::from_json(&x.to_string()).unwrap_err();
            assert_eq!(e.field, "reports[1].envelope.format");
            // A /1 file has no per-report envelopes ...
            let mut x = v2.clone();
            x["format"] = BUNDLE_FORMAT_V1.into();
            let e = Bundle::from_json(&x.to_string()).unwrap_err();
            assert_eq!(e.field, "reports[1].envelope");
            // ... and is read as one attempt.
            let m = manifest();
            let a = node(&m, T0);
            let o = report_of(&a, &m, ReportKind::Opened, B256::ZERO, T0);
            let c = report_of(&a, &m, ReportKind::Completed, o.report_hash(), T0 + 60);
            let one = Bundle {
                format: BUNDLE_FORMAT_V1.into(),
                session_id: m.session_id,
                chain: serde_json::Value::Null,
                reports: vec![bundled(&a, &o, false), bundled(&a, &c, false)],
                envelope: a.env.clone(),
            };
            let text = serde_json::to_string(&one).unwrap();
            assert!(!text.contains("\"envelope\":null"), "absent, not null");
            let read = Bundle::from_json(&text).unwrap();
            assert_eq!(read.format, BUNDLE_FORMAT_V1);
            let v = verify_bundle(&read, None, None);
            assert!(v.verified, "{:?}", v.failure);
            assert_eq!(v.attempts.len(), 1);
            assert_eq!(v.attempts[0].outcome, AttemptResult::Completed);
            let x = v
                .checks
                .iter()
                .find(|c| c.check == "report.signature")
                .unwrap();
            assert!(x.detail.contains("valid under node key"), "{}", x.detail);
            let mut x = serde_json::to_value(&one).unwrap();
            x["format"] = "sealroom-bundle/9".into();
            assert_eq!(
                Bundle::from_json(&x.to_string()).unwrap_err().field,
                "format"
            );
        }
    }
}
