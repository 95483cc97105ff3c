//! Every verification check, by its stable name.
//!
//! One enum for the verifier, the attestation verifiers and policy, the
//! trusted loader, the member library, the coordinator and the TUI, so a
//! refusal is named the same way everywhere and a misspelt check does not
//! compile. The names are part of the interface (exit-1 messages, JSON
//! output, `abortReason` on chain): never rename one; add a variant.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! checks {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )*) => {
        /// A verification check (see the module docs; `as_str` is its stable name).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Check {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl Check {
            /// Every check, in declaration order.
            pub const ALL: &'static [Check] = &[$(Check::$variant,)*];

            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Check::$variant => $name,)*
                }
            }

            /// The check with this stable name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Check::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

checks! {
    // Regulator's verifier (`sealroom report verify`)
    /// The bundle and envelope carry the known format tags.
    BundleFormat => "bundle.format",
    /// The manifest is well formed and hashes to the registered (or bound) hash.
    Manifest => "manifest",
    /// Every report decodes as an `IntegrityReport` of its labelled kind.
    ReportDecode => "report.decode",
    /// Every report's bytes are exactly its ABI re-encoding.
    ReportCanonical => "report.canonical",
    /// The kinds come in an order a session can publish: one `opened` per
    /// node attempt, then at most one `completed` or `aborted` (or `aborted`
    /// alone).
    ReportKinds => "report.kinds",
    /// The reports group into node attempts: each attempt's first report
    /// carries its node's evidence envelope (later ones none), a replacement
    /// node has fresh keys, and `completed` comes from the node of the
    /// latest `opened`.
    ReportAttempts => "report.attempts",
    /// Every report names this session and manifest.
    ReportSession => "report.session",
    /// Every report is signed (strict ed25519) by its node attempt's key.
    ReportSignature => "report.signature",
    /// Each report names its node attempt's evidence.
    EvidenceHash => "evidence.hash",
    /// Each attempt's evidence verifies against the policy (the verdict names the inner check).
    EvidenceVerified => "evidence.verified",
    /// The attested measurement is in the manifest's engine allowlist.
    EngineAllowlist => "engine.allowlist",
    /// Simulated evidence only where the policy allows it.
    Simulation => "simulation",
    /// Each report links the latest `opened` before it by hash (zero for the
    /// first): a replacement's `opened` the previous attempt's.
    ReportChain => "report.chain",
    /// The inputs root recomputed from the manifest matches.
    InputsRoot => "inputs.root",
    /// The registry stores the hash of the supplied bytes.
    ChainStoredHash => "chain.stored-hash",
    /// The publishing transaction's receipt and event match (from the chain only).
    ChainReceipt => "chain.receipt",
    /// The `completed` report's privacy account is the manifest's DP-SGD
    /// spec and schedule, its ε is at least what the verifier recomputes
    /// (and within the policy's `max_epsilon`); no other report carries one.
    Privacy => "privacy",
    /// Completed with inputs wiped, or aborted with a reason.
    ReportOutcome => "report.outcome",
    // Evidence and its binding (every verifier)
    /// Evidence, certificates or collateral are not decodable.
    EvidenceFormat => "evidence.format",
    /// The evidence kind cannot carry what was asked of it.
    EvidenceKind => "evidence.kind",
    /// The evidence binds the node keys and the manifest hash (`report_data`).
    ReportData => "report-data",
    /// The registration's measurement claim equals the attested one.
    EngineMeasurement => "engine.measurement",
    /// This build has no verifier for the evidence kind.
    VerifierMissing => "verifier.missing",
    // Policy
    /// `policy.debug`.
    PolicyDebug => "policy.debug",
    /// `policy.evidence-age`.
    PolicyEvidenceAge => "policy.evidence-age",
    /// `policy.gpu-required`.
    PolicyGpuRequired => "policy.gpu-required",
    /// `policy.kind`.
    PolicyKind => "policy.kind",
    /// `policy.measurement`.
    PolicyMeasurement => "policy.measurement",
    /// `policy.migration-agent`.
    PolicyMigrationAgent => "policy.migration-agent",
    /// `policy.min-tcb`.
    PolicyMinTcb => "policy.min-tcb",
    /// `policy.rtmr`.
    PolicyRtmr => "policy.rtmr",
    /// `policy.simulation`.
    PolicySimulation => "policy.simulation",
    // SEV-SNP
    /// `sev-snp.ark-root`.
    SevSnpArkRoot => "sev-snp.ark-root",
    /// `sev-snp.cert-validity`.
    SevSnpCertValidity => "sev-snp.cert-validity",
    /// `sev-snp.certs`.
    SevSnpCerts => "sev-snp.certs",
    /// `sev-snp.chip-id`.
    SevSnpChipId => "sev-snp.chip-id",
    /// `sev-snp.parse`.
    SevSnpParse => "sev-snp.parse",
    /// `sev-snp.signature`.
    SevSnpSignature => "sev-snp.signature",
    /// `sev-snp.signing-key`.
    SevSnpSigningKey => "sev-snp.signing-key",
    /// `sev-snp.tcb`.
    SevSnpTcb => "sev-snp.tcb",
    /// `sev-snp.vcek-chain`.
    SevSnpVcekChain => "sev-snp.vcek-chain",
    // TDX
    /// `tdx.cert-validity`.
    TdxCertValidity => "tdx.cert-validity",
    /// `tdx.collateral`.
    TdxCollateral => "tdx.collateral",
    /// `tdx.collateral-expired`.
    TdxCollateralExpired => "tdx.collateral-expired",
    /// `tdx.collateral-signature`.
    TdxCollateralSignature => "tdx.collateral-signature",
    /// `tdx.crl`.
    TdxCrl => "tdx.crl",
    /// `tdx.parse`.
    TdxParse => "tdx.parse",
    /// `tdx.pck-chain`.
    TdxPckChain => "tdx.pck-chain",
    /// `tdx.qe-identity`.
    TdxQeIdentity => "tdx.qe-identity",
    /// `tdx.qe-report-data`.
    TdxQeReportData => "tdx.qe-report-data",
    /// `tdx.qe-report-signature`.
    TdxQeReportSignature => "tdx.qe-report-signature",
    /// `tdx.quote-signature`.
    TdxQuoteSignature => "tdx.quote-signature",
    /// `tdx.root`.
    TdxRoot => "tdx.root",
    /// `tdx.tcb-status`.
    TdxTcbStatus => "tdx.tcb-status",
    /// `tdx.verify`.
    TdxVerify => "tdx.verify",
    // NVIDIA H100
    /// `nvidia.cert-chain`.
    NvidiaCertChain => "nvidia.cert-chain",
    /// `nvidia.cert-validity`.
    NvidiaCertValidity => "nvidia.cert-validity",
    /// `nvidia.nonce`.
    NvidiaNonce => "nvidia.nonce",
    /// `nvidia.nonce-binding`.
    NvidiaNonceBinding => "nvidia.nonce-binding",
    /// `nvidia.parse`.
    NvidiaParse => "nvidia.parse",
    /// `nvidia.reference`.
    NvidiaReference => "nvidia.reference",
    /// `nvidia.root`.
    NvidiaRoot => "nvidia.root",
    /// `nvidia.signature`.
    NvidiaSignature => "nvidia.signature",
    // Simulation
    /// `sim.parse`.
    SimParse => "sim.parse",
    /// `sim.platform-key`.
    SimPlatformKey => "sim.platform-key",
    /// `sim.signature`.
    SimSignature => "sim.signature",
    // Trusted loader (the node aborts, signed, naming the input)
    /// The work manifest is the one the node's evidence is bound to.
    ManifestHash => "manifest-hash",
    /// Every member consented, over this manifest, and none withdrew.
    Consent => "consent",
    /// Each input has a grant signed by the member owning it.
    GrantSignature => "grant-signature",
    /// The grant is for this node's keys.
    GrantNode => "grant-node",
    /// The grant is bound to this node's manifest.
    GrantManifest => "grant-manifest",
    /// The grant was made over this node's evidence.
    GrantEvidence => "grant-evidence",
    /// The blob's length and SHA-256 match the commitment.
    CiphertextHash => "ciphertext-hash",
    /// The blob could be fetched whole.
    Blob => "blob",
    /// The grant opens with the node's HPKE key.
    GrantOpen => "grant-open",
    /// The blob decrypts (every segment authenticated).
    Decrypt => "decrypt",
    /// The records hash to the committed Merkle root.
    MerkleRoot => "merkle-root",
    /// The record count matches the commitment.
    RecordCount => "record-count",
    /// The columns match the committed schema hash.
    SchemaHash => "schema-hash",
    /// The columns match the manifest's schema.
    Schema => "schema",
    /// The decrypted records parse under the schema.
    Data => "data",
    /// Training ran to the end.
    Training => "training",
    /// The model was sealed to the owner.
    Sealing => "sealing",
    /// No member withdrew while the node worked (a withdrawal during the
    /// session stops it: the node wipes and signs `aborted` naming this).
    Withdrawal => "withdrawal",
    // Member side (`sealroom-member`)
    /// The served manifest is the one the member consented to (or reviewed).
    ManifestChanged => "manifest.changed",
    /// The served manifest hashes to the served hash and validates.
    ManifestServed => "manifest.served",
    /// The consented manifest holds a commitment for the member's input.
    ManifestInput => "manifest.input",
    /// A node has registered.
    NodeRegistered => "node.registered",
    /// The grant could be sealed and signed.
    Grant => "grant",
    /// One strictly encoded completed report for this session, manifest and
    /// owner, linked to the latest opened report; the opened reports (one
    /// per node attempt) link back to the first.
    ModelReport => "model.report",
    /// The reports come from the registered node, whose evidence they name, the node the owner granted to.
    ModelNode => "model.node",
    /// The reports' signatures verify under the node key.
    ModelReportSignature => "model.report-signature",
    /// The registry stores the completed report served.
    ModelChain => "model.chain",
    /// The sealed bytes hash to the completed report's `sealedModelHash`.
    ModelSealedHash => "model.sealed-hash",
    /// The sealed model opens with the owner's key, for this session and manifest.
    ModelOpen => "model.open",
    /// The model hashes to the completed report's `modelHash`.
    ModelHash => "model.hash",
    /// The owner accepted this session's model (`fetch-model`) before opening a file.
    ModelUnverified => "model.unverified",
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Check> for String {
    fn from(c: Check) -> Self {
        c.as_str().to_string()
    }
}

impl PartialEq<&str> for Check {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Check {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Check::from_name(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown check `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Check::ALL {
            assert!(seen.insert(c.as_str()), "duplicate name {c}");
            assert_eq!(Check::from_name(c.as_str()), Some(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Check>(&json).unwrap(), *c);
        }
        assert_eq!(Check::from_name("no.such-check"), None);
    }
}
