//! `[privacy]`: differential privacy of a session's training (DP-SGD), part
//! of the manifest every member consents to.
//!
//! The node trains with DP-SGD when the manifest has a `privacy` table: each
//! step samples every training record independently with probability `q`
//! (Poisson sampling), clips each sampled record's gradient to L2 norm `C`
//! over all parameters, adds Gaussian noise `N(0, σ²C²)` once to the sum and
//! divides by the *expected* batch size `q·N`. The schedule — `q` and the
//! number of steps — follows from the manifest alone ([`schedule`]), so the
//! node, every member and the regulator's verifier compute the same ε with
//! the same accountant ([`crate::dp`]) from the same committed numbers.
//! docs/privacy.md says what the guarantee covers and what it does not.

use serde::{Deserialize, Serialize};

use crate::dp::{self, Spent};

/// The DP mechanism.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// DP-SGD (Abadi et al. 2016): per-record clipping, Gaussian noise.
    #[default]
    DpSgd,
}

/// How records are drawn into a step's batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Each record independently with probability `q` (the batch size is
    /// random; empty batches happen and are trained on: noise only).
    #[default]
    Poisson,
}

/// The privacy accountant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accountant {
    /// Rényi DP at integer orders 2..=256 with the conversion of Balle et
    /// al. 2020 ([`crate::dp`]).
    #[default]
    Rdp,
}

/// Where the randomness of sampling and noise comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseSource {
    /// A fresh 32-byte key drawn from the operating system inside the node,
    /// never leaving it (wiped with the inputs). The guarantee holds against
    /// everyone, the consortium included; the run cannot be replayed bit
    /// for bit.
    #[default]
    Tee,
    /// A ChaCha20 key derived from the committed `training.seed`: the run
    /// replays bit for bit, but everyone who knows the seed (every member:
    /// it is in the manifest and on chain) knows the noise and the batches,
    /// so ε does not hold against them. For tests and reproducibility
    /// audits only; the verifier says so.
    Seed,
}

impl NoiseSource {
    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            NoiseSource::Tee => "tee",
            NoiseSource::Seed => "seed",
        }
    }
}

/// `[privacy]` in a scenario and a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    /// Always `dp-sgd`.
    #[serde(default)]
    pub mechanism: Mechanism,
    /// σ, the noise multiplier. In a scenario, give it or `target_epsilon`;
    /// a manifest always carries it (solved for the target when one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_multiplier: Option<f64>,
    /// C, the L2 norm every record's gradient is clipped to.
    pub max_grad_norm: f64,
    /// δ of the (ε, δ) guarantee; below 1 / records is the usual choice.
    pub delta: f64,
    /// Always `poisson`.
    #[serde(default)]
    pub sampling: Sampling,
    /// The ε to reach: σ is the smallest noise multiplier whose ε at δ is
    /// at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_epsilon: Option<f64>,
    /// Always `rdp`.
    #[serde(default)]
    pub accountant: Accountant,
    /// `tee` (default) or `seed`; see [`NoiseSource`].
    #[serde(default)]
    pub noise_source: NoiseSource,
}

/// Largest noise multiplier a manifest may commit to.
pub const MAX_NOISE_MULTIPLIER: f64 = 1e4;

/// The sampling schedule DP-SGD runs and the accountant composes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Records trained on (pooled, minus the validation split if any).
    pub train_records: u64,
    /// q = min(1, batch_size / train_records).
    pub sample_rate: f64,
    /// epochs × ceil(train_records / batch_size).
    pub steps: u64,
    /// Steps that make one epoch: ceil(train_records / batch_size).
    pub steps_per_epoch: u64,
}

/// The schedule of a session: expected batch size `batch_size` (so
/// `q = batch_size / N`), and as many steps as the non-private run of the
/// same spec takes (`ceil(N / batch_size)` per epoch). `None` when there
/// is nothing to train on.
pub fn schedule(train_records: u64, batch_size: u32, epochs: u32) -> Option<Schedule> {
    if train_records == 0 || batch_size == 0 || epochs == 0 {
        return None;
    }
    let b = u64::from(batch_size);
    let steps_per_epoch = train_records.div_ceil(b);
    Some(Schedule {
        train_records,
        sample_rate: (b as f64 / train_records as f64).min(1.0),
        steps: u64::from(epochs).saturating_mul(steps_per_epoch),
        steps_per_epoch,
    })
}

/// Validation rows a seeded split of `pooled` records takes at `fraction`:
/// `round(pooled × fraction)`, at least 1, leaving at least 1 (the
/// trainer's rule; the privacy schedule needs the training count).
pub fn split_validation_rows(pooled: u64, fraction: f64) -> u64 {
    if pooled < 2 {
        return 0;
    }
    ((pooled as f64 * fraction).round() as u64).clamp(1, pooled - 1)
}

impl PrivacySpec {
    /// ε of this spec over `schedule` (σ must be set).
    pub fn spent(&self, schedule: &Schedule) -> Result<Spent, dp::DpError> {
        let sigma = self.noise_multiplier.ok_or(dp::DpError {
            field: "noise_multiplier",
            message: "not set".into(),
        })?;
        dp::epsilon(sigma, schedule.sample_rate, schedule.steps, self.delta)
    }

    /// Every problem of the spec's own values as `(field, message)`, fields
    /// relative to the table (`max_grad_norm`). `committed`: a manifest's
    /// spec, which must carry σ (a scenario's gives σ or a target, not both).
    pub fn problems(&self, committed: bool) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match (self.noise_multiplier, self.target_epsilon, committed) {
            (None, None, _) => out.push((
                "noise_multiplier",
                "give noise_multiplier (σ) or target_epsilon".into(),
            )),
            (None, Some(_), true) => out.push((
                "noise_multiplier",
                "a manifest commits to σ (solved for target_epsilon when the manifest is made)"
                    .into(),
            )),
            (Some(_), Some(_), false) => out.push((
                "target_epsilon",
                "give noise_multiplier or target_epsilon, not both (σ is solved for the target)"
                    .into(),
            )),
            _ => {}
        }
        if let Some(s) = self.noise_multiplier {
            if !(s.is_finite() && s > 0.0 && s <= MAX_NOISE_MULTIPLIER) {
                out.push((
                    "noise_multiplier",
                    format!("{s}: must be a number in (0, {MAX_NOISE_MULTIPLIER}]"),
                ));
            }
        }
        if let Some(t) = self.target_epsilon {
            if !(t.is_finite() && t > 0.0) {
                out.push(("target_epsilon", format!("{t}: must be a number > 0")));
            }
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            out.push((
                "max_grad_norm",
                format!("{}: must be a number > 0", self.max_grad_norm),
            ));
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            out.push(("delta", format!("{}: must be in (0, 1)", self.delta)));
        }
        out
    }

    /// The committed spec of a scenario's spec: σ solved for
    /// `target_epsilon` when that is what was given.
    pub fn committed(&self, schedule: &Schedule) -> Result<Self, dp::DpError> {
        let mut out = self.clone();
        if let (None, Some(target)) = (self.noise_multiplier, self.target_epsilon) {
            let (sigma, _) =
                dp::sigma_for(target, schedule.sample_rate, schedule.steps, self.delta)?;
            out.noise_multiplier = Some(sigma);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PrivacySpec {
        PrivacySpec {
            mechanism: Mechanism::DpSgd,
            noise_multiplier: None,
            max_grad_norm: 1.0,
            delta: 1e-5,
            sampling: Sampling::Poisson,
            target_epsilon: Some(3.0),
            accountant: Accountant::Rdp,
            noise_source: NoiseSource::Tee,
        }
    }

    #[test]
    fn schedule_and_split_follow_the_trainer() {
        let s = schedule(456, 64, 30).unwrap();
        assert_eq!((s.steps_per_epoch, s.steps), (8, 240));
        assert_eq!(s.sample_rate, 64.0 / 456.0);
        assert_eq!(schedule(10, 64, 3).unwrap().sample_rate, 1.0);
        assert!(schedule(0, 64, 3).is_none());
        assert_eq!(split_validation_rows(100, 0.2), 20);
        assert_eq!(split_validation_rows(3, 0.01), 1);
        assert_eq!(split_validation_rows(3, 0.99), 2);
    }

    #[test]
    fn a_target_is_solved_into_sigma_and_the_spec_is_checked() {
        let s = schedule(456, 64, 30).unwrap();
        let scenario = spec();
        assert!(scenario.problems(false).is_empty());
        assert_eq!(scenario.problems(true)[0].0, "noise_multiplier");
        let committed = scenario.committed(&s).unwrap();
        assert!(committed.problems(true).is_empty());
        let eps = committed.spent(&s).unwrap().epsilon;
        assert!(eps <= 3.0 && eps > 2.999, "{eps}");
        let both = PrivacySpec {
            noise_multiplier: Some(1.0),
            ..spec()
        };
        assert_eq!(both.problems(false)[0].0, "target_epsilon");
        let bad = PrivacySpec {
            noise_multiplier: Some(-1.0),
            target_epsilon: None,
            max_grad_norm: 0.0,
            delta: 1.0,
            ..spec()
        };
        let fields: Vec<&str> = bad.problems(true).iter().map(|p| p.0).collect();
        assert_eq!(fields, ["noise_multiplier", "max_grad_norm", "delta"]);
    }
}
