//! Rényi-DP accounting of DP-SGD: the Poisson-subsampled Gaussian mechanism,
//! composed over training steps, converted to (ε, δ).
//!
//! The point is that a verifier *recomputes* ε from the committed
//! parameters (σ, q, steps, δ) instead of trusting a claimed value: the
//! regulator's verifier (`sealroom_reports::dp` re-exports this module)
//! and every holder of a manifest run this same code, and the manifest
//! itself uses it to solve σ for a `target_epsilon`.
//!
//! - Neighbouring relation: add/remove one record (Poisson sampling makes
//!   the batch size itself random, which is what the bound covers).
//! - RDP at integer orders α ∈ 2..=256, exact finite sum (Mironov, Talwar,
//!   Zhang 2019, §3.3): `A_α = Σ_{k=0..α} C(α,k) (1−q)^{α−k} q^k
//!   exp((k²−k)/(2σ²))`, `RDP(α) = steps · ln(A_α)/(α−1)`, summed in log
//!   space.
//! - Conversion (Balle et al. 2020, Thm 21; also Canonne, Kamath, Steinke
//!   2020): `ε(α) = RDP(α) + ln(1 − 1/α) − ln(δ·α)/(α−1)`, with ε = 0 when
//!   `δ² + expm1(−RDP) > 0` (the KL bound already gives δ), minimised over
//!   the orders; the first minimising order is reported.
//!
//! Google's `dp-accounting` (its `RdpAccountant` with orders 2..=256) is the
//! independent oracle in `tests/cli.rs`: agreement to 1e-6 relative.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// The orders the accountant evaluates.
pub const ORDERS: RangeInclusive<u32> = 2..=256;

/// A parameter outside its domain; `field` names the flag or scenario field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DpError {
    /// `noise_multiplier`, `sample_rate`, `steps`, `delta` or `target_epsilon`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> DpError {
    DpError {
        field,
        message: message.into(),
    }
}

/// The privacy spent: ε at δ, and the order that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// ε.
    pub epsilon: f64,
    /// The RDP order α at which ε is smallest.
    pub order: u32,
}

/// `ln(e^a + e^b)` without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// RDP of one step of the Poisson-subsampled Gaussian at integer `alpha ≥ 2`.
pub fn rdp_step(q: f64, sigma: f64, alpha: u32) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if q == 1.0 {
        return f64::from(alpha) / (2.0 * sigma * sigma);
    }
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let a = f64::from(alpha);
    let mut log_binom = 0.0f64; // ln C(alpha, 0)
    let mut log_a = f64::NEG_INFINITY;
    for k in 0..=alpha {
        if k > 0 {
            log_binom += (a - f64::from(k) + 1.0).ln() - f64::from(k).ln();
        }
        let kf = f64::from(k);
        let term = log_binom + kf * lq + (a - kf) * l1q + (kf * kf - kf) / (2.0 * sigma * sigma);
        log_a = log_add(log_a, term);
    }
    log_a / (a - 1.0)
}

fn check(sigma: f64, q: f64, steps: u64, delta: f64) -> Result<(), DpError> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(err(
            "noise_multiplier",
            format!("{sigma}: must be a finite number > 0"),
        ));
    }
    if !(0.0..=1.0).contains(&q) {
        return Err(err("sample_rate", format!("{q}: must be in [0, 1]")));
    }
    if steps == 0 {
        return Err(err("steps", "must be at least 1"));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(err("delta", format!("{delta}: must be in (0, 1)")));
    }
    Ok(())
}

/// ε at `delta` after `steps` steps with noise multiplier `sigma` and
/// Poisson sampling rate `q`.
pub fn epsilon(sigma: f64, q: f64, steps: u64, delta: f64) -> Result<Spent, DpError> {
    check(sigma, q, steps, delta)?;
    let mut best = Spent {
        epsilon: f64::INFINITY,
        order: *ORDERS.start(),
    };
    for alpha in ORDERS {
        let r = rdp_step(q, sigma, alpha) * steps as f64;
        let a = f64::from(alpha);
        let eps = if delta * delta + (-r).exp_m1() > 0.0 {
            0.0
        } else {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        };
        if eps < best.epsilon {
            best = Spent {
                epsilon: eps,
                order: alpha,
            };
        }
    }
    best.epsilon = best.epsilon.max(0.0);
    Ok(best)
}

/// The smallest noise multiplier (to 1e-9 relative) whose ε at `delta` is
/// at most `target` — the σ a scenario with `target_epsilon` commits to.
pub fn sigma_for(target: f64, q: f64, steps: u64, delta: f64) -> Result<(f64, Spent), DpError> {
    if !(target.is_finite() && target > 0.0) {
        return Err(err(
            "target_epsilon",
            format!("{target}: must be a finite number > 0"),
        ));
    }
    check(1.0, q, steps, delta)?;
    if q == 0.0 {
        return Err(err(
            "sample_rate",
            "0: nothing is ever sampled; any σ gives ε = 0",
        ));
    }
    // ε falls as σ grows: bracket, then bisect.
    let (mut lo, mut hi) = (1e-3, 1.0);
    while epsilon(hi, q, steps, delta)?.epsilon > target {
        lo = hi;
        hi *= 2.0;
        if hi > 1e6 {
            return Err(err(
                "target_epsilon",
                format!("{target}: not reachable with a noise multiplier up to 1e6"),
            ));
        }
    }
    if epsilon(lo, q, steps, delta)?.epsilon <= target {
        return Err(err(
            "target_epsilon",
            format!(
                "{target}: already met with a noise multiplier of {lo}; choose a smaller target"
            ),
        ));
    }
    while (hi - lo) > 1e-9 * hi {
        let mid = 0.5 * (lo + hi);
        if epsilon(mid, q, steps, delta)?.epsilon > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((hi, epsilon(hi, q, steps, delta)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_edges() {
        // Values from Google's dp-accounting 0.6.0 (RdpAccountant, orders 2..=256).
        for (s, q, t, d, eps, order) in [
            (1.1, 0.01, 1000, 1e-5, 1.725_290_818_044_944_4, 9),
            (1.0, 1.0, 10, 1e-5, 19.801_691_480_042_894, 3),
        ] {
            let got = epsilon(s, q, t, d).unwrap();
            assert!((got.epsilon - eps).abs() <= 1e-9 * eps, "{got:?} vs {eps}");
            assert_eq!(got.order, order);
        }
        assert_eq!(epsilon(1.0, 0.0, 100, 1e-5).unwrap().epsilon, 0.0);
        assert_eq!(
            epsilon(0.0, 0.1, 1, 1e-5).unwrap_err().field,
            "noise_multiplier"
        );
        assert_eq!(epsilon(1.0, 1.5, 1, 1e-5).unwrap_err().field, "sample_rate");
        assert_eq!(epsilon(1.0, 0.1, 0, 1e-5).unwrap_err().field, "steps");
        assert_eq!(epsilon(1.0, 0.1, 1, 0.0).unwrap_err().field, "delta");
    }

    #[test]
    fn sigma_for_meets_the_target_tightly() {
        let (sigma, spent) = sigma_for(1.0, 0.01, 1000, 1e-5).unwrap();
        assert!(spent.epsilon <= 1.0);
        let looser = epsilon(sigma * (1.0 - 1e-6), 0.01, 1000, 1e-5).unwrap();
        assert!(looser.epsilon > 1.0 - 1e-4, "{sigma} {spent:?} {looser:?}");
        assert_eq!(
            sigma_for(-1.0, 0.01, 10, 1e-5).unwrap_err().field,
            "target_epsilon"
        );
    }
}
