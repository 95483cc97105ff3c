//! Feature preprocessing inside the node.

use sealroom_protocol::scenario::Preprocessing;
use zeroize::Zeroizing;

use super::Dataset;

/// Per-feature affine preprocessing: `x' = (x - offset[j]) / scale[j]`.
///
/// Computed on the pooled *training* rows only (never on validation data,
/// which would leak it into the model), applied unchanged to validation and
/// evaluation data, and stored in the model bytes.
/// Statistics are aggregates over many records, not per-record values; they
/// travel only inside the sealed model.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// What the statistics implement.
    pub kind: Preprocessing,
    /// Subtracted from each feature (mean, minimum, or 0).
    pub offset: Vec<f32>,
    /// Divides each feature after the offset (standard deviation, range, or 1;
    /// a constant feature gets 1 so it maps to 0 instead of dividing by zero).
    pub scale: Vec<f32>,
}

impl Stats {
    /// Statistics of `data` (accumulated in `f64`, in row order, so they are
    /// deterministic).
    pub fn fit(kind: Preprocessing, data: &Dataset) -> Self {
        let (n, d) = (data.n, data.d);
        let mut offset = vec![0f32; d];
        let mut scale = vec![1f32; d];
        match kind {
            Preprocessing::None => {}
            Preprocessing::Standardize => {
                let mut sum = vec![0f64; d];
                for row in data.features.chunks_exact(d) {
                    for (s, x) in sum.iter_mut().zip(row) {
                        *s += f64::from(*x);
                    }
                }
                let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
                let mut sq = vec![0f64; d];
                for row in data.features.chunks_exact(d) {
                    for ((q, x), m) in sq.iter_mut().zip(row).zip(&mean) {
                        let c = f64::from(*x) - m;
                        *q += c * c;
                    }
                }
                for j in 0..d {
                    offset[j] = mean[j] as f32;
                    let std = (sq[j] / n as f64).sqrt();
                    scale[j] = if std > 1e-12 { std as f32 } else { 1.0 };
                }
            }
            Preprocessing::MinMax => {
                let mut lo = vec![f32::INFINITY; d];
                let mut hi = vec![f32::NEG_INFINITY; d];
                for row in data.features.chunks_exact(d) {
                    for ((l, h), x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                        *l = l.min(*x);
                        *h = h.max(*x);
                    }
                }
                for j in 0..d {
                    offset[j] = lo[j];
                    let range = hi[j] - lo[j];
                    scale[j] = if range > 0.0 && range.is_finite() {
                        range
                    } else {
                        1.0
                    };
                }
            }
        }
        Self {
            kind,
            offset,
            scale,
        }
    }

    /// The features of `data`, transformed, in a buffer zeroized on drop.
    pub fn apply(&self, data: &Dataset) -> Zeroizing<Vec<f32>> {
        self.apply_rows(&data.features, data.d)
    }

    /// Row-major `features` with `d` values per row, transformed (the same
    /// arithmetic as [`Stats::apply`]: `(x - offset) / scale` in `f32`).
    pub fn apply_rows(&self, features: &[f32], d: usize) -> Zeroizing<Vec<f32>> {
        let mut out = Zeroizing::new(Vec::with_capacity(features.len()));
        if d == 0 {
            return out;
        }
        for row in features.chunks_exact(d) {
            for ((x, o), s) in row.iter().zip(&self.offset).zip(&self.scale) {
                out.push((x - o) / s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Dataset {
        Dataset {
            features: vec![1.0, 5.0, 3.0, 5.0],
            labels: vec![0, 1],
            targets: vec![],
            n: 2,
            d: 2,
        }
    }

    #[test]
    fn standardize_and_minmax() {
        let s = Stats::fit(Preprocessing::Standardize, &data());
        assert_eq!(s.offset, vec![2.0, 5.0]);
        assert_eq!(s.scale, vec![1.0, 1.0]); // std of {1,3} is 1; constant column gets 1
        assert_eq!(*s.apply(&data()), vec![-1.0, 0.0, 1.0, 0.0]);
        let m = Stats::fit(Preprocessing::MinMax, &data());
        assert_eq!(*m.apply(&data()), vec![0.0, 0.0, 1.0, 0.0]);
        let none = Stats::fit(Preprocessing::None, &data());
        assert_eq!(*none.apply(&data()), data().features);
    }
}
