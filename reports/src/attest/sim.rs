//! Verifier of `sim` evidence (see [`super::simulate`] for the format).
//!
//! Checks, in order: `sim.parse` (length, magic, flags), `sim.platform-key`
//! (the key is the well-known simulation key), `sim.signature` (ed25519,
//! strict). The verdict always says `insecure_simulation: true`, and the
//! policy stage rejects it (`policy.simulation`) unless `allow_simulation`.

use super::simulate::{sim_platform_key, SIM_EVIDENCE_LEN, SIM_MAGIC, SIM_SIGNING_DOMAIN};
use super::{hx, Attested, Failure, Inputs, Verifier};
use crate::check::Check;
use crate::TeeKind;

/// Parsed sim evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimEvidence {
    /// Platform public key.
    pub platform_key: [u8; 32],
    /// Measurement.
    pub measurement: [u8; 32],
    /// Bound data.
    pub report_data: [u8; 64],
    /// Debug flag.
    pub debug: bool,
    /// Creation time, Unix seconds.
    pub timestamp: i64,
    /// Signature.
    pub signature: [u8; 64],
}

impl SimEvidence {
    /// Parses sim evidence; exact length, known magic, known flags.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() != SIM_EVIDENCE_LEN {
            return Err(format!(
                "sim evidence has {SIM_EVIDENCE_LEN} bytes, this has {}",
                b.len()
            ));
        }
        if &b[..8] != SIM_MAGIC {
            return Err("not sim evidence (bad magic)".into());
        }
        let flags = b[136];
        if flags > 1 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        let take = |o: usize, n: usize| &b[o..o + n];
        let mut ev = SimEvidence {
            platform_key: [0; 32],
            measurement: [0; 32],
            report_data: [0; 64],
            debug: flags == 1,
            timestamp: 0,
            signature: [0; 64],
        };
        ev.platform_key.copy_from_slice(take(8, 32));
        ev.measurement.copy_from_slice(take(40, 32));
        ev.report_data.copy_from_slice(take(72, 64));
        let mut ts = [0u8; 8];
        ts.copy_from_slice(take(137, 8));
        ev.timestamp = i64::from_be_bytes(ts);
        ev.signature.copy_from_slice(take(145, 64));
        Ok(ev)
    }
}

/// The sim verifier.
pub struct SimVerifier;

impl Verifier for SimVerifier {
    fn kind(&self) -> TeeKind {
        TeeKind::Sim
    }

    fn verify_evidence(&self, inputs: &Inputs) -> Result<Attested, Failure> {
        let b = &inputs.evidence;
        let ev = SimEvidence::parse(b).map_err(|e| Failure::new(Check::SimParse, e))?;
        if ev.platform_key != *sim_platform_key().verifying_key().as_bytes() {
            return Err(Failure::new(
                Check::SimPlatformKey,
                "not signed by the sealroom simulation platform key",
            ));
        }
        let mut msg = SIM_SIGNING_DOMAIN.to_vec();
        msg.extend_from_slice(&b[..SIM_EVIDENCE_LEN - 64]);
        sealroom_protocol::identity::verify_strict(&ev.platform_key, &msg, &ev.signature)
            .map_err(|_| Failure::new(Check::SimSignature, "signature does not verify"))?;
        let mut claims = serde_json::Map::new();
        claims.insert("label".into(), "insecure-simulation".into());
        claims.insert("platform_key".into(), hx(&ev.platform_key));
        claims.insert("debug".into(), ev.debug.into());
        claims.insert(
            "timestamp".into(),
            super::certs::fmt_time(ev.timestamp).into(),
        );
        let mut tcb = serde_json::Map::new();
        tcb.insert("insecure_simulation".into(), true.into());
        Ok(Attested {
            measurement: ev.measurement.to_vec(),
            report_data: ev.report_data.to_vec(),
            debug: ev.debug,
            timestamp: Some(ev.timestamp),
            tcb,
            claims,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::simulate::*;
    use super::*;

    #[test]
    fn round_trip_and_every_byte_matters() {
        let ev = simulate_at(&[7; 64], &sim_default_measurement(), false, 1_750_000_000);
        let mut inp = Inputs {
            evidence: ev,
            at: 1_750_000_100,
            ..Default::default()
        };
        let a = SimVerifier.verify_evidence(&inp).unwrap();
        assert_eq!(a.report_data, vec![7; 64]);
        assert!(!a.debug);
        for i in 0..SIM_EVIDENCE_LEN {
            inp.evidence[i] ^= 0x01;
            assert!(SimVerifier.verify_evidence(&inp).is_err(), "byte {i}");
            inp.evidence[i] ^= 0x01;
        }
        inp.evidence.push(0);
        assert_eq!(
            SimVerifier.verify_evidence(&inp).unwrap_err().check,
            "sim.parse"
        );
    }
}
