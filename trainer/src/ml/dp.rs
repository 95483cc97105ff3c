//! DP-SGD: Poisson sampling, per-record gradient clipping, Gaussian noise.
//!
//! Burn has no per-example gradient API, and a backward pass per record is
//! 7–29× a batched step at the shipped sizes. The networks DP-SGD supports
//! here are dense (logistic and linear regression, MLPs), where per-record
//! gradients have an exact closed form that needs no per-record pass: for a
//! dense layer `z = a·W + b`, record `i`'s weight gradient is the outer
//! product `aᵢ ⊗ δᵢ` of its input and its output error, so
//!
//! - its squared norm is `‖aᵢ‖² · ‖δᵢ‖²` (plus `‖δᵢ‖²` for the bias), and the
//!   record's norm over *all* parameters is the root of the sum over layers;
//! - the sum of the clipped gradients is `Aᵀ · diag(f) · Δ` with
//!   `fᵢ = 1 / max(1, ‖gᵢ‖ / C)`: one matrix product per layer, as in a
//!   normal step.
//!
//! The errors `δ` come from one hand-written backward pass (softmax
//! cross-entropy: `softmax(z) − onehot(y)`; squared error `(z − y)²`:
//! `2(z − y)`; ReLU masks between layers). `cargo test -p sealroom-trainer
//! dp_` checks them against Burn's autodiff, record by record. A CNN is
//! refused: convolutions have no such closed form here.
//!
//! Randomness — which records a step samples and the noise — comes from
//! ChaCha20 keyed per session ([`DpSgd::new`]): a key drawn inside the node
//! (default, `noise_source = "tee"`), or one derived from the committed
//! seed (`"seed"`, replayable, no guarantee against whoever knows the seed).
//! Gaussian draws are Box–Muller in f64 from 53-bit uniforms; a
//! floating-point sampler like this is not the exact discrete Gaussian some
//! DP libraries use (docs/privacy.md, "What it does not cover").

use burn::module::ParamId;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sealroom_protocol::hash::LpHasher;
use sealroom_protocol::privacy::{NoiseSource, PrivacySpec};
use zeroize::Zeroizing;

use super::net::Net;
use super::MlError;

/// A session's DP-SGD parameters and the key of its randomness.
pub struct DpSgd {
    /// σ.
    pub noise_multiplier: f64,
    /// C.
    pub max_grad_norm: f64,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DpSgd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpSgd")
            .field("noise_multiplier", &self.noise_multiplier)
            .field("max_grad_norm", &self.max_grad_norm)
            .finish_non_exhaustive()
    }
}

impl DpSgd {
    /// The DP-SGD of a committed spec: the key is 32 bytes from the
    /// operating system (`noise_source = "tee"`) or
    /// `LpHasher("sealroom.trainer.dp-key.v1").u64(seed)` (`"seed"`).
    pub fn new(spec: &PrivacySpec, seed: u64) -> Result<Self, MlError> {
        let noise_multiplier = spec.noise_multiplier.ok_or(MlError::Spec {
            field: "privacy.noise_multiplier",
            message: "not committed".into(),
        })?;
        let mut key = Zeroizing::new([0u8; 32]);
        match spec.noise_source {
            NoiseSource::Tee => getrandom::fill(key.as_mut())
                .map_err(|e| MlError::Backend(format!("operating-system randomness: {e}")))?,
            NoiseSource::Seed => key.copy_from_slice(
                &LpHasher::new("sealroom.trainer.dp-key.v1")
                    .u64(seed)
                    .finish(),
            ),
        }
        Ok(Self {
            noise_multiplier,
            max_grad_norm: spec.max_grad_norm,
            key,
        })
    }

    /// The random stream `tag` (`"sample"`, `"noise"`) of this session.
    pub(crate) fn stream(&self, tag: &str) -> DpRng {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(
            &LpHasher::new("sealroom.trainer.dp-stream.v1")
                .part(self.key.as_slice())
                .part(tag)
                .finish(),
        );
        DpRng(ChaCha20Rng::from_seed(*seed))
    }
}

/// ChaCha20 draws for sampling and noise.
pub(crate) struct DpRng(ChaCha20Rng);

impl DpRng {
    /// Uniform in (0, 1], 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        ((self.0.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Poisson sampling: each of `0..n` independently with probability `q`.
    pub(crate) fn sample(&mut self, n: u32, q: f64) -> Vec<u32> {
        (0..n).filter(|_| self.unit() <= q).collect()
    }

    /// `count` independent N(0, std²) draws (Box–Muller, both outputs used).
    pub(crate) fn gaussian(&mut self, count: usize, std: f64) -> Vec<f32> {
        let mut out = Vec::with_capacity(count + 1);
        while out.len() < count {
            let r = (-2.0 * self.unit().ln()).sqrt();
            let t = std::f64::consts::TAU * self.unit();
            out.push((r * t.cos() * std) as f32);
            out.push((r * t.sin() * std) as f32);
        }
        out.truncate(count);
        out
    }
}

/// What a batch is trained against, on the device.
pub(crate) enum BatchTruth<B: Backend> {
    /// One-hot classes `[n, classes]` (softmax cross-entropy).
    OneHot(Tensor<B, 2>),
    /// Targets `[n, 1]` as trained (squared error).
    Values(Tensor<B, 2>),
}

/// One dense layer's summed gradient: weight id and `[in, out]` gradient,
/// bias id and `[out]` gradient.
pub(crate) type LayerGrad<B> = (ParamId, Tensor<B, 2>, Option<(ParamId, Tensor<B, 1>)>);

/// The clipped, summed gradients of a batch: per dense layer, weight
/// `[in, out]` (Burn's layout) and bias `[out]`, with the parameter ids.
pub(crate) struct ClippedSum<B: Backend> {
    pub layers: Vec<LayerGrad<B>>,
    /// Each record's gradient norm over all parameters, before clipping
    /// (read by the tests; never released: it is per-record).
    #[cfg_attr(not(test), allow(dead_code))]
    pub norms: Vec<f32>,
}

/// Per-record gradients of a dense network on a batch `x`, each clipped to
/// L2 norm `c` over all parameters, summed (see the module docs).
pub(crate) fn clipped_sum<B: Backend>(
    net: &Net<B>,
    x: Tensor<B, 2>,
    truth: &BatchTruth<B>,
    c: f64,
) -> Result<ClippedSum<B>, MlError> {
    if !net.convs.is_empty() {
        return Err(MlError::Spec {
            field: "privacy",
            message: "DP-SGD has no per-record gradients for convolutions".into(),
        });
    }
    let last = net.dense.len().saturating_sub(1);
    // Forward, keeping every layer's input and pre-activation.
    let mut inputs = vec![x];
    let mut pre = Vec::with_capacity(net.dense.len());
    for (i, layer) in net.dense.iter().enumerate() {
        let a = inputs.last().cloned().ok_or(MlError::Empty("network"))?;
        let z = layer.forward(a);
        if i < last {
            inputs.push(relu(z.clone()));
        }
        pre.push(z);
    }
    let out = pre.last().cloned().ok_or(MlError::Empty("network"))?;
    // Output error δ_L. The sampled records' loss is not computed: it
    // would be a statistic of party records without noise.
    let mut delta = match truth {
        BatchTruth::OneHot(y) => softmax(out, 1).sub(y.clone()),
        BatchTruth::Values(y) => out.sub(y.clone()).mul_scalar(2.0),
    };
    // Backward: δ of every layer, last first.
    let mut deltas = Vec::with_capacity(net.dense.len());
    for i in (0..net.dense.len()).rev() {
        deltas.push(delta.clone());
        if i > 0 {
            let w = net.dense[i].weight.val();
            let mask = pre[i - 1].clone().greater_elem(0.0).float();
            delta = delta.matmul(w.transpose()).mul(mask);
        }
    }
    deltas.reverse();
    // Each record's squared norm: Σ_layers (‖a‖² + 1[bias]) · ‖δ‖².
    let mut sq: Option<Tensor<B, 2>> = None;
    for (i, (a, d)) in inputs.iter().zip(&deltas).enumerate() {
        let bias = if net.dense[i].bias.is_some() {
            1.0
        } else {
            0.0
        };
        let term = a
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .add_scalar(bias)
            .mul(d.clone().powf_scalar(2.0).sum_dim(1));
        sq = Some(match sq {
            Some(s) => s + term,
            None => term,
        });
    }
    let sq = sq.ok_or(MlError::Empty("network"))?;
    let norm = sq.sqrt();
    let norms = read(norm.clone().flatten(0, 1))?;
    // fᵢ = 1 / max(1, ‖gᵢ‖ / C).
    let factor = norm.div_scalar(c).clamp_min(1.0).recip();
    let mut layers = Vec::with_capacity(net.dense.len());
    for (i, (a, d)) in inputs.into_iter().zip(deltas).enumerate() {
        let scaled = d.mul(factor.clone());
        let gw = a.transpose().matmul(scaled.clone());
        let layer = &net.dense[i];
        let gb = layer.bias.as_ref().map(|b| {
            let out = scaled.dims()[1];
            (b.id, scaled.sum_dim(0).reshape([out]))
        });
        layers.push((layer.weight.id, gw, gb));
    }
    Ok(ClippedSum { layers, norms })
}

fn read<B: Backend>(t: Tensor<B, 1>) -> Result<Vec<f32>, MlError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| MlError::Backend(format!("{e:?}")))
}

/// Adds N(0, (σC)²) noise to every summed gradient and divides by the
/// expected batch size `q·N`; an empty batch (`sum = None`) is noise alone.
pub(crate) fn privatize<B: Backend>(
    net: &Net<B>,
    sum: Option<ClippedSum<B>>,
    dp: &DpSgd,
    noise: &mut DpRng,
    expected_batch: f64,
    device: &B::Device,
) -> Vec<(ParamId, PrivGrad<B>)> {
    let std = dp.noise_multiplier * dp.max_grad_norm;
    let mut sums: Vec<LayerGrad<B>> = match sum {
        Some(s) => s.layers,
        None => net
            .dense
            .iter()
            .map(|l| {
                let w = l.weight.val();
                let gb = l.bias.as_ref().map(|b| (b.id, b.val().zeros_like()));
                (l.weight.id, w.zeros_like(), gb)
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (wid, gw, gb) in sums.drain(..) {
        let dims = gw.dims();
        let n = TensorData::new(noise.gaussian(dims[0] * dims[1], std), dims);
        let gw = (gw + Tensor::from_data(n, device)).div_scalar(expected_batch);
        out.push((wid, PrivGrad::Matrix(gw)));
        if let Some((bid, gb)) = gb {
            let len = gb.dims()[0];
            let n = TensorData::new(noise.gaussian(len, std), [len]);
            let gb = (gb + Tensor::from_data(n, device)).div_scalar(expected_batch);
            out.push((bid, PrivGrad::Vector(gb)));
        }
    }
    out
}

/// A privatised gradient, by rank.
pub(crate) enum PrivGrad<B: Backend> {
    /// A weight.
    Matrix(Tensor<B, 2>),
    /// A bias.
    Vector(Tensor<B, 1>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::net::Arch;
    use crate::ml::train::Cpu;
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
    use burn::tensor::Int;
    use sealroom_protocol::scenario::{
        FeatureType, ModelKind, ModelSpec, Preprocessing, Schema, Task,
    };

    type Ad = Autodiff<Cpu>;

    fn arch(task: Task, kind: ModelKind, hidden: Vec<u32>) -> Arch {
        let schema = Schema {
            features: (0..4).map(|i| format!("f{i}")).collect(),
            label: "y".into(),
            task,
            label_classes: if task == Task::Regression { 0 } else { 3 },
            standardize_target: true,
            feature_type: FeatureType::Float,
            preprocessing: Preprocessing::Standardize,
        };
        let model = ModelSpec {
            kind,
            hidden,
            channels: vec![],
            image: vec![],
        };
        Arch::new(&model, &schema).unwrap()
    }

    /// Records with varied scales, so some gradients are far above C.
    fn rows() -> Vec<[f32; 4]> {
        (0..8)
            .map(|i| {
                let s = 1.0 + i as f32;
                [0.3 * s, -0.7, 0.05 * s * s, (i as f32 - 3.5) * 0.4]
            })
            .collect()
    }

    fn flat(g: &ClippedSum<Cpu>) -> Vec<f32> {
        let mut out = Vec::new();
        for (_, w, b) in &g.layers {
            out.extend(w.clone().into_data().to_vec::<f32>().unwrap());
            if let Some((_, b)) = b {
                out.extend(b.clone().into_data().to_vec::<f32>().unwrap());
            }
        }
        out
    }

    fn truth_of(task: Task, i: usize) -> BatchTruth<Cpu> {
        let dev = Default::default();
        match task {
            Task::Classification => {
                let mut hot = vec![0f32; 3];
                hot[i % 3] = 1.0;
                BatchTruth::OneHot(Tensor::from_data(TensorData::new(hot, [1, 3]), &dev))
            }
            Task::Regression => BatchTruth::Values(Tensor::from_data(
                TensorData::new(vec![i as f32 - 2.0], [1, 1]),
                &dev,
            )),
        }
    }

    /// The closed-form per-record gradients equal Burn's autodiff of that
    /// record's loss, for a classifier and a regressor, one layer and an MLP.
    #[test]
    fn dp_per_record_gradients_match_autodiff() {
        let dev = Default::default();
        for (task, kind, hidden) in [
            (Task::Classification, ModelKind::LogisticRegression, vec![]),
            (Task::Classification, ModelKind::Mlp, vec![6, 5]),
            (Task::Regression, ModelKind::LinearRegression, vec![]),
            (Task::Regression, ModelKind::Mlp, vec![6]),
        ] {
            let a = arch(task, kind, hidden);
            let net: Net<Ad> = Net::init(&a, 3, &dev);
            for (i, r) in rows().iter().enumerate() {
                let x: Tensor<Ad, 2> = Tensor::from_data(TensorData::new(r.to_vec(), [1, 4]), &dev);
                let out = net.forward(x.clone(), None);
                let loss = match task {
                    Task::Classification => {
                        let y: Tensor<Ad, 1, Int> =
                            Tensor::from_data(TensorData::new(vec![(i % 3) as i64], [1]), &dev);
                        CrossEntropyLossConfig::new().init(&dev).forward(out, y)
                    }
                    Task::Regression => {
                        let y: Tensor<Ad, 2> =
                            Tensor::from_data(TensorData::new(vec![i as f32 - 2.0], [1, 1]), &dev);
                        MseLoss::new().forward(out, y, Reduction::Mean)
                    }
                };
                let grads = loss.backward();
                let mut auto = Vec::new();
                for l in &net.dense {
                    auto.extend(
                        l.weight
                            .grad(&grads)
                            .unwrap()
                            .into_data()
                            .to_vec::<f32>()
                            .unwrap(),
                    );
                    let b = l.bias.as_ref().unwrap().grad(&grads).unwrap();
                    auto.extend(b.into_data().to_vec::<f32>().unwrap());
                }
                let ours = clipped_sum(&net.valid(), x.inner(), &truth_of(task, i), 1e12).unwrap();
                let ours = flat(&ours);
                assert_eq!(ours.len(), auto.len());
                for (p, q) in ours.iter().zip(&auto) {
                    assert!(
                        (p - q).abs() <= 1e-5 * (1.0 + q.abs()),
                        "{task:?} {kind:?} row {i}: {p} vs {q}"
                    );
                }
            }
        }
    }

    /// No record contributes more than C: each record's clipped gradient
    /// has norm min(‖g‖, C); the batch's sum is the sum of the records'.
    #[test]
    fn dp_clipping_bounds_every_record_by_c() {
        let dev = Default::default();
        let a = arch(Task::Classification, ModelKind::Mlp, vec![6]);
        let net: Net<Cpu> = Net::init(&a, 5, &dev);
        let c = 0.3;
        let mut total = vec![0f32; 0];
        let mut clipped = 0;
        for (i, r) in rows().iter().enumerate() {
            let x = Tensor::from_data(TensorData::new(r.to_vec(), [1, 4]), &dev);
            let one = clipped_sum(&net, x, &truth_of(Task::Classification, i), c).unwrap();
            let raw = one.norms[0] as f64;
            let g = flat(&one);
            let norm = g.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            assert!(norm <= c * (1.0 + 1e-5), "row {i}: {norm} > C");
            assert!(
                (norm - raw.min(c)).abs() <= 1e-5 * (1.0 + raw),
                "row {i}: {norm} vs {raw}"
            );
            clipped += usize::from(raw > c);
            if total.is_empty() {
                total = g;
            } else {
                total.iter_mut().zip(&g).for_each(|(t, v)| *t += v);
            }
        }
        assert!(clipped >= 4, "the test needs records above C: {clipped}");
        let xs: Vec<f32> = rows().iter().flatten().copied().collect();
        let mut hot = vec![0f32; 8 * 3];
        for i in 0..8 {
            hot[i * 3 + i % 3] = 1.0;
        }
        let batch = clipped_sum(
            &net,
            Tensor::from_data(TensorData::new(xs, [8, 4]), &dev),
            &BatchTruth::OneHot(Tensor::from_data(TensorData::new(hot, [8, 3]), &dev)),
            c,
        )
        .unwrap();
        for (p, q) in flat(&batch).iter().zip(&total) {
            assert!((p - q).abs() <= 1e-5, "{p} vs {q}");
        }
    }

    fn dp(source: NoiseSource) -> DpSgd {
        let spec = PrivacySpec {
            mechanism: Default::default(),
            noise_multiplier: Some(1.3),
            max_grad_norm: 2.0,
            delta: 1e-5,
            sampling: Default::default(),
            target_epsilon: None,
            accountant: Default::default(),
            noise_source: source,
        };
        DpSgd::new(&spec, 7).unwrap()
    }

    /// The noise is N(0, (σC)²): mean, standard deviation and fourth
    /// moment of 200,000 draws within their sampling error.
    #[test]
    fn dp_noise_has_the_committed_scale() {
        let d = dp(NoiseSource::Seed);
        let std = d.noise_multiplier * d.max_grad_norm;
        let n = 200_000;
        let z = d.stream("noise").gaussian(n, std);
        let mean = z.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
        let var = z
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let kurt = z
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(4))
            .sum::<f64>()
            / n as f64
            / (var * var);
        assert!(mean.abs() < 4.0 * std / (n as f64).sqrt(), "mean {mean}");
        // sd of the sample variance ≈ var·sqrt(2/n) = 0.32% of it.
        assert!(
            (var.sqrt() / std - 1.0).abs() < 0.01,
            "std {} vs {std}",
            var.sqrt()
        );
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
        // Streams and keys differ; the seed key replays.
        assert_ne!(
            d.stream("noise").gaussian(4, 1.0),
            d.stream("sample").gaussian(4, 1.0)
        );
        assert_eq!(
            z[..8],
            dp(NoiseSource::Seed).stream("noise").gaussian(8, std)[..]
        );
        assert_ne!(
            dp(NoiseSource::Tee).stream("noise").gaussian(8, 1.0),
            dp(NoiseSource::Tee).stream("noise").gaussian(8, 1.0)
        );
    }

    /// A step's privatised gradient is (clipped sum + N(0, (σC)²)) ÷ qN:
    /// with the same noise stream, privatising a batch's clipped sum and an
    /// empty batch differ by exactly sum ÷ qN, and the empty batch's
    /// gradient (noise alone) has standard deviation σC ÷ qN over many
    /// steps — so a trainer that noised with σ instead of σC, or divided
    /// by the realised batch size, fails here.
    #[test]
    fn dp_privatized_gradients_are_the_clipped_sum_plus_sigma_c_noise_over_qn() {
        let dev = Default::default();
        let a = arch(Task::Classification, ModelKind::Mlp, vec![6]);
        let net: Net<Cpu> = Net::init(&a, 5, &dev);
        let d = dp(NoiseSource::Seed);
        let flat_priv = |g: Vec<(ParamId, PrivGrad<Cpu>)>| -> Vec<f64> {
            g.into_iter()
                .flat_map(|(_, g)| match g {
                    PrivGrad::Matrix(t) => t.into_data().to_vec::<f32>().unwrap(),
                    PrivGrad::Vector(t) => t.into_data().to_vec::<f32>().unwrap(),
                })
                .map(f64::from)
                .collect()
        };
        let expected = 12.5; // q·N, e.g. q = 0.05 of 250 records
        let xs: Vec<f32> = rows().iter().flatten().copied().collect();
        let mut hot = vec![0f32; 8 * 3];
        for i in 0..8 {
            hot[i * 3 + i % 3] = 1.0;
        }
        let batch = || {
            clipped_sum(
                &net,
                Tensor::from_data(TensorData::new(xs.clone(), [8, 4]), &dev),
                &BatchTruth::OneHot(Tensor::from_data(
                    TensorData::new(hot.clone(), [8, 3]),
                    &dev,
                )),
                0.3,
            )
            .unwrap()
        };
        let sum: Vec<f64> = flat(&batch()).into_iter().map(f64::from).collect();
        let with = flat_priv(privatize(
            &net,
            Some(batch()),
            &d,
            &mut d.stream("noise"),
            expected,
            &dev,
        ));
        let alone = flat_priv(privatize(
            &net,
            None,
            &d,
            &mut d.stream("noise"),
            expected,
            &dev,
        ));
        assert_eq!((with.len(), alone.len()), (sum.len(), sum.len()));
        for ((w, z), s) in with.iter().zip(&alone).zip(&sum) {
            assert!(
                ((w - z) * expected - s).abs() <= 1e-4 * (1.0 + s.abs()),
                "{w} {z} {s}"
            );
        }
        // Noise alone over many steps: N(0, (σC / qN)²) per coordinate.
        let mut stream = d.stream("noise");
        let mut draws = Vec::new();
        while draws.len() < 100_000 {
            draws.extend(flat_priv(privatize(
                &net,
                None,
                &d,
                &mut stream,
                expected,
                &dev,
            )));
        }
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let sd = (draws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let want = d.noise_multiplier * d.max_grad_norm / expected;
        assert!((sd / want - 1.0).abs() < 0.015, "sd {sd} vs σC/qN {want}");
        assert!(mean.abs() < 5.0 * want / n.sqrt(), "mean {mean}");
    }

    /// Poisson sampling: batch sizes have mean qN and variance Nq(1−q);
    /// every record is drawn at rate q.
    #[test]
    fn dp_poisson_batches_have_binomial_sizes() {
        let d = dp(NoiseSource::Seed);
        let mut rng = d.stream("sample");
        let (n, q, steps) = (500u32, 0.08, 4000);
        let mut hits = vec![0u32; n as usize];
        let sizes: Vec<f64> = (0..steps)
            .map(|_| {
                let b = rng.sample(n, q);
                assert!(b.windows(2).all(|w| w[0] < w[1]));
                b.iter().for_each(|i| hits[*i as usize] += 1);
                b.len() as f64
            })
            .collect();
        let mean = sizes.iter().sum::<f64>() / steps as f64;
        let var = sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (steps - 1) as f64;
        let (m0, v0) = (f64::from(n) * q, f64::from(n) * q * (1.0 - q));
        assert!(
            (mean - m0).abs() < 4.0 * (v0 / steps as f64).sqrt(),
            "mean {mean} vs {m0}"
        );
        assert!((var / v0 - 1.0).abs() < 0.1, "variance {var} vs {v0}");
        let rate = |i: usize| f64::from(hits[i]) / steps as f64;
        assert!(
            (0..n as usize).all(|i| (rate(i) - q).abs() < 0.04),
            "a record's rate is off"
        );
        assert!(rng.sample(n, 0.0).is_empty());
        assert_eq!(rng.sample(n, 1.0).len(), n as usize);
    }
}
