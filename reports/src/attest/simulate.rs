//! Producer of `sim` evidence: a software "platform" signs what a TEE would.
//!
//! This proves nothing about hardware; it exists so that development and
//! tests can run the whole flow without a TEE. Evidence produced here is
//! labelled `insecure-simulation` wherever it appears, and only a policy with
//! `allow_simulation = true` accepts it. Kept apart from [`super::sim`] (the
//! verifier) so that verifying code never holds the signing key.
//!
//! Layout (209 bytes): magic `SRSIMEV1` (8) ‖ platform ed25519 key (32) ‖
//! measurement (32) ‖ report_data (64) ‖ flags (1, bit 0 = debug) ‖
//! timestamp (8, big-endian Unix seconds) ‖ ed25519 signature (64) over
//! [`SIM_SIGNING_DOMAIN`] ‖ everything before the signature.

use ed25519_dalek::{Signer, SigningKey};

/// Magic at the start of sim evidence.
pub const SIM_MAGIC: &[u8; 8] = b"SRSIMEV1";
/// Domain prefix of the signed message.
pub const SIM_SIGNING_DOMAIN: &[u8] = b"sealroom.insecure-simulation.evidence.v1";
/// Total length of sim evidence.
pub const SIM_EVIDENCE_LEN: usize = 8 + 32 + 32 + 64 + 1 + 8 + 64;
/// Measurement used when none is given: the hash of a fixed label, so that
/// sim evidence has a stable, recognisable measurement.
pub const SIM_DEFAULT_MEASUREMENT_LABEL: &[u8] = b"sealroom.insecure-simulation.measurement.v1";

/// The well-known simulation platform key. Its seed is public on purpose:
/// anyone can produce sim evidence, which is exactly what sim evidence is worth.
pub fn sim_platform_key() -> SigningKey {
    let digest =
        sealroom_protocol::hash::sha512_concat(&[b"sealroom.insecure-simulation.platform-key.v1"]);
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest[..32]);
    SigningKey::from_bytes(&seed)
}

/// The default sim measurement (SHA-256 of [`SIM_DEFAULT_MEASUREMENT_LABEL`]).
pub fn sim_default_measurement() -> [u8; 32] {
    sealroom_protocol::hash::sha256(SIM_DEFAULT_MEASUREMENT_LABEL)
}

/// Produces sim evidence stamped with the current time. The clock is read
/// here, on the producing side only; verification takes its time as input.
pub fn simulate(report_data: &[u8; 64], measurement: &[u8; 32], debug: bool) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    simulate_at(report_data, measurement, debug, now)
}

/// Label of the simulated GPU's measurement (SHA-256 of it).
pub const SIM_GPU_MEASUREMENT_LABEL: &[u8] = b"sealroom.insecure-simulation.gpu-measurement.v1";

/// Simulated GPU evidence for `--gpu sim`: the sim format, signed by the
/// same public software key, carrying the GPU nonce (derived from the CPU
/// evidence's `report_data`, [`crate::binding::gpu_nonce_for`]) in the
/// first 32 bytes of its `report_data` and zeros in the rest. It proves
/// nothing about a GPU and is verified as simulation everywhere.
pub fn simulate_gpu_at(nonce: &[u8; 32], timestamp: i64) -> Vec<u8> {
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(nonce);
    simulate_at(
        &rd,
        &sealroom_protocol::hash::sha256(SIM_GPU_MEASUREMENT_LABEL),
        false,
        timestamp,
    )
}

/// Produces sim evidence stamped with `timestamp` (Unix seconds).
pub fn simulate_at(
    report_data: &[u8; 64],
    measurement: &[u8; 32],
    debug: bool,
    timestamp: i64,
) -> Vec<u8> {
    let key = sim_platform_key();
    let mut out = Vec::with_capacity(SIM_EVIDENCE_LEN);
    out.extend_from_slice(SIM_MAGIC);
    out.extend_from_slice(key.verifying_key().as_bytes());
    out.extend_from_slice(measurement);
    out.extend_from_slice(report_data);
    out.push(u8::from(debug));
    out.extend_from_slice(&timestamp.to_be_bytes());
    let mut msg = SIM_SIGNING_DOMAIN.to_vec();
    msg.extend_from_slice(&out);
    out.extend_from_slice(&key.sign(&msg).to_bytes());
    out
}
