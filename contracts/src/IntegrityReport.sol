// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

// The one declaration of sealroom's integrity report (DESIGN §3). The Solidity
// registry imports it, and the Rust crate `sealroom-reports` reads this very
// file with alloy's `sol!`, so both sides ABI-encode the same struct byte for
// byte. `report_hash = keccak256(abi.encode(report))`.
//
// Changing the order or the types of the first six fields breaks the
// registry: it reads `version`, `kind`, `sessionId`, `manifestHash` and
// `prevReportHash` at fixed offsets of the encoded bytes
// (the head of `abi.encode(report)` is fixed-size; only `abortReason`'s
// contents live in the tail).

/// The differential privacy a `completed` report's training spent (DP-SGD).
/// All zero in `opened` and `aborted` reports and when the manifest has no
/// `[privacy]`. Real numbers are IEEE-754 binary64 bit patterns: exactly the
/// values the node used, which a verifier recomputes ε from, with no
/// fixed-point rounding in between.
struct PrivacyAccount {
    /// 0 = none; 1 = DP-SGD with Poisson sampling and the RDP accountant
    /// (orders 2..=256), sampling and noise keyed inside the TEE; 2 = the
    /// same with sampling and noise derived from the committed seed.
    uint8 mechanism;
    /// σ, the noise multiplier (f64 bits).
    uint64 noiseMultiplier;
    /// C, the per-record gradient clipping norm (f64 bits).
    uint64 maxGradNorm;
    /// q, the Poisson sampling rate (f64 bits).
    uint64 sampleRate;
    /// Training steps (an integer).
    uint64 steps;
    /// δ (f64 bits).
    uint64 delta;
    /// ε spent at δ, as the node's accountant computed it (f64 bits).
    uint64 epsilon;
}

/// Integrity report published on chain. Holds hashes and facts only.
struct IntegrityReport {
    /// Format version (2: with `privacy`).
    uint8 version;
    /// 1 = opened, 2 = completed, 3 = aborted.
    uint8 kind;
    /// Session id (random 32 bytes).
    bytes32 sessionId;
    /// Hash of the canonical manifest every party signed.
    bytes32 manifestHash;
    /// Root of the OpenZeppelin tree over the session's inputs.
    bytes32 inputsRoot;
    /// `report_hash` of the previous report of this session (zero for `opened`).
    bytes32 prevReportHash;
    /// The node's ed25519 public key (bound in the evidence's report_data).
    bytes32 nodeKey;
    /// The node's X25519 HPKE public key (bound in the evidence's report_data).
    bytes32 nodeHpkeKey;
    /// keccak256 of the node's evidence bytes (the evidence travels in calldata).
    bytes32 evidenceHash;
    /// TEE kind: 1 = sev-snp, 2 = tdx, 3 = sim (+16 when GPU evidence is composed in).
    uint8 teeKind;
    /// True when the evidence is simulated: no hardware protection at all.
    bool insecureSimulation;
    /// sha256 of the trained model bytes (completed only).
    bytes32 modelHash;
    /// sha256 of the sealed model (completed only).
    bytes32 sealedModelHash;
    /// The owner's X25519 key the model is sealed to.
    bytes32 ownerKey;
    /// sha256 of the training summary (metrics go to the owner, sealed).
    bytes32 trainingSummaryHash;
    /// Training seed.
    uint64 seed;
    /// Commitment to the data order derived from the seed.
    bytes32 dataOrderCommitment;
    /// True once every plaintext input and key but the signing key was wiped.
    bool inputsWiped;
    /// Abort reason code (0 unless aborted).
    uint16 abortCode;
    /// Abort reason: which input and which check (empty unless aborted).
    string abortReason;
    /// Unix time the node produced the report.
    uint64 timestamp;
    /// Differential privacy spent (`completed` only; zero otherwise).
    PrivacyAccount privacy;
}
