//! The training loop and evaluation.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer as _, SgdConfig};
use burn::record::{BinBytesRecorder, BurnRecord, FullPrecisionSettings, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use sealroom_protocol::privacy::{schedule, Schedule};
use sealroom_protocol::scenario::{
    ModelSpec, Optimizer, Schema, Task, TrainingCompute, TrainingSpec,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::dp::{clipped_sum, privatize, BatchTruth, DpSgd, PrivGrad};
use super::model_bytes;
use super::net::{Arch, Net};
use super::rng::{OrderCommitment, Rng};
use super::{Dataset, MlError, Stats};

/// The CPU backend: Burn's ndarray backend, single-threaded (see the module docs).
/// The default CPU backend: Burn's flex, single-threaded (built without
/// rayon). Chosen by measurement (`sealroom bench train`: 1.5–6× faster than
/// ndarray on the shipped scenarios, bytes identical run to run).
pub(crate) type Cpu = burn::backend::Flex<f32>;
/// Burn's ndarray backend (the previous default), `training.compute =
/// "cpu-ndarray"`.
pub(crate) type Ndarray = NdArray<f32>;

/// Rows per forward pass when evaluating (bounds memory on large sets).
pub(crate) const EVAL_CHUNK: usize = 4096;

/// Metrics after one epoch. Aggregates only, no per-record values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean loss over the epoch's training batches (weighted by batch
    /// size): cross-entropy, or for regression the mean squared error of
    /// the target as trained (standardised unless `standardize_target = false`).
    /// Absent in a private session: it is a statistic of party records
    /// that DP-SGD does not noise, so it never leaves the trainer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// The same loss on the validation set after the epoch.
    pub val_loss: f64,
    /// Fraction of validation records classified correctly after the epoch
    /// (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Coefficient of determination on the validation set (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_r2: Option<f64>,
    /// Root mean squared error on the validation set, in the target's units
    /// (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_rmse: Option<f64>,
}

/// The result of [`train`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedModel {
    /// The model: preprocessing statistics and Burn record (format in
    /// [`model_bytes`](super::model_bytes)); its SHA-256 is the model hash.
    pub model_bytes: Vec<u8>,
    /// Metrics of every epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    /// What was learnt.
    pub task: Task,
    /// Validation accuracy of the returned model (the last epoch's;
    /// classification).
    pub final_accuracy: Option<f64>,
    /// Validation R² of the returned model (regression).
    pub final_r2: Option<f64>,
    /// Validation RMSE of the returned model, target units (regression).
    pub final_rmse: Option<f64>,
    /// Validation loss of the returned model (the last epoch's).
    pub final_loss: f64,
    /// Commitment to the data order (see [`rng::OrderCommitment`](super::rng::OrderCommitment)).
    pub data_order_commitment: [u8; 32],
    /// Records trained on.
    pub train_records: u64,
    /// Records validated on.
    pub validation_records: u64,
    /// Whether validation used a seeded split of the pool (`false`: the
    /// owner's validation set).
    pub validation_from_split: bool,
    /// Confusion matrix of the returned model on the validation set:
    /// `confusion[true_class][predicted_class]` record counts (its trace
    /// over `validation_records` is `final_accuracy`). Counts, not records:
    /// an aggregate like the other metrics, sealed to the owner only.
    /// Empty for regression.
    pub confusion: Vec<Vec<u64>>,
    /// The DP-SGD schedule actually run (`None`: not private).
    pub dp: Option<DpRun>,
}

/// What a DP-SGD training ran: the schedule the accountant composes, and
/// how many records the Poisson batches held in all.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpRun {
    /// The schedule (q, steps, training records).
    pub schedule: Schedule,
    /// Records over all sampled batches (≈ q · N · steps).
    pub sampled_records: u64,
}

/// How good a model is on a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Fraction of records classified correctly (classification).
    pub accuracy: Option<f64>,
    /// Coefficient of determination (regression).
    pub r2: Option<f64>,
    /// Root mean squared error in the target's units (regression).
    pub rmse: Option<f64>,
    /// Mean cross-entropy, or mean squared error in the target's units.
    pub loss: f64,
    /// Records evaluated.
    pub records: u64,
}

/// Where the tensors live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compute {
    /// Burn's flex backend on one CPU thread (the default; deterministic on
    /// one machine, its gemm picks kernels by CPU features).
    #[default]
    Cpu,
    /// Burn's ndarray backend on one CPU thread (deterministic; the
    /// previous default, kept selectable).
    Ndarray,
    /// Burn's CUDA backend on GPU `index` (`cuda` cargo feature).
    #[cfg(feature = "cuda")]
    Cuda {
        /// CUDA device ordinal.
        index: usize,
    },
}

impl Compute {
    /// The backend a manifest's `training.compute` requires, on this build:
    /// `cuda` needs the `cuda` cargo feature (GPU 0), and is refused with a
    /// message naming the field otherwise, never silently run on the CPU.
    pub fn for_training(training: &TrainingSpec) -> Result<Self, MlError> {
        match training.compute {
            TrainingCompute::Cpu => Ok(Compute::Cpu),
            TrainingCompute::CpuNdarray => Ok(Compute::Ndarray),
            #[cfg(feature = "cuda")]
            TrainingCompute::Cuda => Ok(Compute::Cuda { index: 0 }),
            #[cfg(not(feature = "cuda"))]
            TrainingCompute::Cuda => Err(MlError::Spec {
                field: "training.compute",
                message: "\"cuda\" requires a node built with the `cuda` feature on a GPU; this one trains on the CPU only".into(),
            }),
        }
    }

    /// The backend's name, as reports and logs print it.
    pub fn name(self) -> &'static str {
        match self {
            Compute::Cpu => "burn-flex (cpu)",
            Compute::Ndarray => "burn-ndarray (cpu)",
            #[cfg(feature = "cuda")]
            Compute::Cuda { .. } => "burn-cuda (gpu)",
        }
    }
}

/// Trains on the pooled data on the backend `training.compute` names
/// ([`Compute::for_training`]); see [`train_on`].
pub fn train(
    model: &ModelSpec,
    training: &TrainingSpec,
    schema: &Schema,
    train: &Dataset,
    validation: Option<&Dataset>,
    progress: &mut dyn FnMut(&EpochMetrics) -> ControlFlow<()>,
) -> Result<TrainedModel, MlError> {
    train_on(
        Compute::for_training(training)?,
        model,
        training,
        schema,
        train,
        validation,
        progress,
    )
}

/// Trains on the pooled data.
///
/// `validation` is the owner's validation set; when `None`, the pooled data
/// is split: the seed's `"split"` permutation of the pooled rows, whose first
/// `round(n × training.validation_split)` rows (at least 1, leaving at least
/// 1) validate and the rest train.
///
/// `progress` is called after every epoch; when it answers `Break`,
/// training stops there with [`MlError::Stopped`] (a member withdrew:
/// nothing trained so far is returned).
pub fn train_on(
    compute: Compute,
    model: &ModelSpec,
    training: &TrainingSpec,
    schema: &Schema,
    train: &Dataset,
    validation: Option<&Dataset>,
    progress: &mut dyn FnMut(&EpochMetrics) -> ControlFlow<()>,
) -> Result<TrainedModel, MlError> {
    train_private_on(
        compute, model, training, schema, None, train, validation, progress,
    )
}

/// Trains with DP-SGD when `dp` is given ([`super::dp`]: Poisson sampling
/// at the manifest's rate, per-record clipping, Gaussian noise, for the
/// manifest's number of steps); otherwise exactly [`train_on`].
#[allow(clippy::too_many_arguments)]
pub fn train_private_on(
    compute: Compute,
    model: &ModelSpec,
    training: &TrainingSpec,
    schema: &Schema,
    dp: Option<&DpSgd>,
    train: &Dataset,
    validation: Option<&Dataset>,
    progress: &mut dyn FnMut(&EpochMetrics) -> ControlFlow<()>,
) -> Result<TrainedModel, MlError> {
    // The same run on each backend; only the type and the device differ.
    macro_rules! on {
        ($backend:ty, $device:expr) => {
            run::<$backend>(
                $device, model, training, schema, dp, train, validation, progress,
            )
        };
    }
    match compute {
        Compute::Cpu => on!(Autodiff<Cpu>, &Default::default()),
        Compute::Ndarray => on!(Autodiff<Ndarray>, &Default::default()),
        #[cfg(feature = "cuda")]
        Compute::Cuda { index } => {
            let device = burn::backend::cuda::CudaDevice::new(index);
            // CUDA initialisation panics when no device or driver is present.
            catch_unwind(AssertUnwindSafe(|| {
                on!(Autodiff<burn::backend::Cuda>, &device)
            }))
            .map_err(|p| MlError::Backend(format!("CUDA backend failed: {}", panic_message(&p))))?
        }
    }
}

/// Rebuilds a model from its bytes and returns its score on `data`: the
/// accuracy of a classifier, the R² of a regressor.
pub fn evaluate(
    model: &ModelSpec,
    schema: &Schema,
    model_bytes: &[u8],
    data: &Dataset,
) -> Result<f64, MlError> {
    let e = evaluate_metrics(model, schema, model_bytes, data)?;
    e.accuracy
        .or(e.r2)
        .ok_or_else(|| MlError::Backend("no score".into()))
}

/// Rebuilds a model from its bytes (on the CPU backend) and measures
/// accuracy and loss on `data`, preprocessed with the statistics stored in
/// the bytes.
pub fn evaluate_metrics(
    model: &ModelSpec,
    schema: &Schema,
    model_bytes: &[u8],
    data: &Dataset,
) -> Result<Evaluation, MlError> {
    let arch = Arch::new(model, schema)?;
    let file = model_bytes::decode(model_bytes)?;
    if file.arch_digest != arch.digest() {
        return Err(MlError::ModelBytes(
            "made for another model spec or schema".into(),
        ));
    }
    if file.stats.offset.len() != arch.d {
        return Err(MlError::FeatureCount {
            expected: arch.d,
            found: file.stats.offset.len(),
        });
    }
    data.check("evaluation data", arch.d, class_count(&arch))?;
    let device = Default::default();
    let net: Net<Cpu> = load_net(&arch, file.record, &device)?;
    let x = file.stats.apply(data);
    if arch.task == Task::Regression {
        let predicted = outputs_rows(&net, &arch, &x, data.n, &device)?;
        let r = RegressionScores::of(&data.targets, &predicted);
        return Ok(Evaluation {
            accuracy: None,
            r2: Some(r.r2),
            rmse: Some(r.rmse),
            loss: r.mse,
            records: data.n as u64,
        });
    }
    let (loss, correct) = measure(&net, &arch, &x, &data.labels, &device)?;
    Ok(Evaluation {
        accuracy: Some(correct as f64 / data.n as f64),
        r2: None,
        rmse: None,
        loss: loss / data.n as f64,
        records: data.n as u64,
    })
}

/// The class count [`Dataset::check`] wants: `None` for a regressor.
pub(crate) fn class_count(arch: &Arch) -> Option<u32> {
    (arch.task == Task::Classification).then_some(arch.classes as u32)
}

/// Mean squared error, RMSE and R² of predictions against targets, in
/// f64 (the definitions scikit-learn's `mean_squared_error` and
/// `r2_score` use; a constant target gives R² 1 when predicted exactly,
/// else 0, as scikit-learn does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RegressionScores {
    pub mse: f64,
    pub rmse: f64,
    pub r2: f64,
}

impl RegressionScores {
    pub(crate) fn of(targets: &[f32], predicted: &[f32]) -> Self {
        let n = targets.len().max(1) as f64;
        let mean = targets.iter().map(|y| f64::from(*y)).sum::<f64>() / n;
        let (sse, sst) = targets
            .iter()
            .zip(predicted)
            .fold((0f64, 0f64), |(sse, sst), (y, p)| {
                let y = f64::from(*y);
                (sse + (y - f64::from(*p)).powi(2), sst + (y - mean).powi(2))
            });
        let r2 = if sst > 0.0 {
            1.0 - sse / sst
        } else if sse == 0.0 {
            1.0
        } else {
            0.0
        };
        let mse = sse / n;
        Self {
            mse,
            rmse: mse.sqrt(),
            r2,
        }
    }
}

/// Mean and standard deviation (population) the target is standardised
/// with: `(0, 1)` when it is not; a constant target keeps scale 1.
fn target_scaling(schema: &Schema, train: &Dataset) -> (f64, f64) {
    if schema.task != Task::Regression || !schema.standardize_target || train.targets.is_empty() {
        return (0.0, 1.0);
    }
    let n = train.targets.len() as f64;
    let mean = train.targets.iter().map(|y| f64::from(*y)).sum::<f64>() / n;
    let var = train
        .targets
        .iter()
        .map(|y| (f64::from(*y) - mean).powi(2))
        .sum::<f64>()
        / n;
    let std = var.sqrt();
    (mean, if std > 1e-12 { std } else { 1.0 })
}

/// The labels a batch is trained against, already on the device.
enum Truth<B: Backend> {
    /// Class indices (cross-entropy).
    Classes(Tensor<B, 1, Int>),
    /// Target values `[n, 1]`, standardised as trained (mean squared error).
    Values(Tensor<B, 2>),
}

#[allow(clippy::too_many_arguments)]
fn run<B: AutodiffBackend>(
    device: &B::Device,
    model: &ModelSpec,
    training: &TrainingSpec,
    schema: &Schema,
    dp: Option<&DpSgd>,
    pooled: &Dataset,
    validation: Option<&Dataset>,
    progress: &mut dyn FnMut(&EpochMetrics) -> ControlFlow<()>,
) -> Result<TrainedModel, MlError> {
    let arch = Arch::new(model, schema)?;
    check_training(training)?;
    if dp.is_some() && !arch.channels.is_empty() {
        return Err(MlError::Spec {
            field: "privacy",
            message:
                "DP-SGD supports logistic-regression, linear-regression and mlp models, not cnn"
                    .into(),
        });
    }
    if dp.is_some() && validation.is_none() {
        // The manifest refuses this too; the trainer does not rely on it.
        return Err(MlError::Spec {
            field: "owner.validation",
            message: "DP-SGD needs the owner's validation set: a split of the parties' records \
                      would give preprocessing statistics and metrics outside ε"
                .into(),
        });
    }
    let classes = class_count(&arch);
    pooled.check("training data", arch.d, classes)?;
    let pooled_n = u32::try_from(pooled.n).map_err(|_| MlError::Spec {
        field: "dataset",
        message: "more than 2^32 - 1 records".into(),
    })?;

    // Validation set: the owner's, or a seeded split of the pool.
    let split_train;
    let split_val;
    let (train, val, split_perm) = match validation {
        Some(v) => {
            v.check("validation data", arch.d, classes)?;
            (pooled, v, None)
        }
        None => {
            let fraction = training.validation_split.ok_or(MlError::Spec {
                field: "training.validation_split",
                message: "needed when the owner holds no validation set".into(),
            })?;
            if !(fraction > 0.0 && fraction < 1.0) || pooled_n < 2 {
                return Err(MlError::Spec {
                    field: "training.validation_split",
                    message: "must be in (0, 1), with at least 2 pooled records".into(),
                });
            }
            let perm = Rng::stream(training.seed, "split").permutation(pooled_n);
            let n_val = ((pooled.n as f64 * fraction).round() as usize).clamp(1, pooled.n - 1);
            split_val = pooled.select(&perm[..n_val]);
            split_train = pooled.select(&perm[n_val..]);
            (&split_train, &split_val, Some(perm))
        }
    };
    let n = train.n;
    let n_u32 = n as u32;

    // Preprocessing statistics from the training rows only — or, in a
    // private session, from the owner's validation set: the statistics
    // travel inside the model, and fitted on party records they would
    // carry exact values of those records (a min-max bound is one record's
    // value) past DP-SGD's noise.
    let fit_on = if dp.is_some() { val } else { train };
    let stats = Stats::fit(schema.preprocessing, fit_on);
    let train_x = stats.apply(train);
    let val_x = stats.apply(val);

    // Burn's backend RNG is seeded for completeness; no operation we use
    // draws from it (initial weights come from our own stream, see `Net::init`).
    B::seed(device, training.seed);
    let mut net: Net<B> = Net::init(&arch, training.seed, device);

    // The training set is uploaded once; batches are gathered on the device.
    let x_all: Tensor<B, 2> =
        Tensor::from_data(TensorData::new(train_x.to_vec(), [n, arch.d]), device);
    drop(train_x);
    let (target_mean, target_std) = target_scaling(schema, fit_on);
    // The regression target as trained (standardised), kept on the host
    // too: DP-SGD builds each sampled batch's truth from it.
    let scaled_targets: Zeroizing<Vec<f32>> = Zeroizing::new(
        train
            .targets
            .iter()
            .map(|y| ((f64::from(*y) - target_mean) / target_std) as f32)
            .collect(),
    );
    let truth: Truth<B> = match arch.task {
        Task::Classification => Truth::Classes(Tensor::from_data(
            TensorData::new(labels_i64(&train.labels).to_vec(), [n]),
            device,
        )),
        Task::Regression => Truth::Values(Tensor::from_data(
            TensorData::new(scaled_targets.to_vec(), [n, 1]),
            device,
        )),
    };
    let loss_fn: CrossEntropyLoss<B> = CrossEntropyLossConfig::new().init(device);

    let lr = training.learning_rate;
    let batch = training.batch_size as usize;
    let mut order = Rng::stream(training.seed, "order");
    // DP-SGD's schedule: the one the manifest's accountant composes
    // (`sealroom_protocol::privacy::schedule`, from the same counts).
    let dp_plan = match dp {
        Some(dp) => {
            let plan =
                schedule(n as u64, training.batch_size, training.epochs).ok_or(MlError::Spec {
                    field: "privacy",
                    message: "no training records to sample from".into(),
                })?;
            Some((dp, plan, dp.stream("sample"), dp.stream("noise")))
        }
        None => None,
    };
    let mut dp_plan = dp_plan;
    let mut dp_sampled = 0u64;
    // A DP run commits to each step's Poisson batch (one part per step)
    // instead of one permutation per epoch.
    let mut commitment = OrderCommitment::new(
        training.seed,
        pooled.n as u64,
        n as u64,
        match &dp_plan {
            Some((_, plan, _, _)) => plan.steps,
            None => training.epochs.into(),
        },
        split_perm.as_deref(),
    );
    let x_inner = x_all.clone().inner();
    let inner_device = x_inner.device();
    let mut epochs = Vec::with_capacity(training.epochs as usize);

    let decay =
        (training.weight_decay > 0.0).then(|| WeightDecayConfig::new(training.weight_decay as f32));
    let mut adam = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(decay.clone())
        .init::<B, Net<B>>();
    let momentum = (training.momentum > 0.0).then_some(MomentumConfig {
        momentum: training.momentum,
        dampening: 0.0,
        nesterov: false,
    });
    let mut sgd = SgdConfig::new()
        .with_weight_decay(decay)
        .with_momentum(momentum)
        .init::<B, Net<B>>();

    for epoch in 1..=training.epochs {
        let train_loss = if let Some((dp, plan, sampler, noise)) = dp_plan.as_mut() {
            let mut records = 0u64;
            for _ in 0..plan.steps_per_epoch {
                let picked = sampler.sample(n_u32, plan.sample_rate);
                commitment.epoch(&picked);
                let inner = net.valid();
                let sum = if picked.is_empty() {
                    None
                } else {
                    let (x, truth) = dp_batch::<B::InnerBackend>(
                        &x_inner,
                        &picked,
                        &arch,
                        &train.labels,
                        &scaled_targets,
                        &inner_device,
                    );
                    let s = clipped_sum(&inner, x, &truth, dp.max_grad_norm)?;
                    records += picked.len() as u64;
                    Some(s)
                };
                let expected = plan.sample_rate * plan.train_records as f64;
                let mut grads = GradientsParams::new();
                for (id, g) in privatize(&inner, sum, dp, noise, expected, &inner_device) {
                    match g {
                        PrivGrad::Matrix(t) => grads.register(id, t),
                        PrivGrad::Vector(t) => grads.register(id, t),
                    }
                }
                net = match training.optimizer {
                    Optimizer::Adam => adam.step(lr, net, grads),
                    Optimizer::Sgd => sgd.step(lr, net, grads),
                };
            }
            dp_sampled += records;
            // The loss of the sampled records would be a statistic of party
            // records without noise: it is neither computed, reported nor
            // acted on (an abort on it would publish a bit of it).
            // Divergence shows in the validation loss, computed from the
            // noised weights.
            None
        } else {
            let perm = order.permutation(n_u32);
            commitment.epoch(&perm);
            let mut loss_sum: Option<Tensor<B::InnerBackend, 1>> = None;
            for idx in perm.chunks(batch) {
                let rows = idx.len();
                let idx_t: Tensor<B, 1, Int> = Tensor::from_data(
                    TensorData::new(
                        idx.iter().map(|i| i64::from(*i)).collect::<Vec<_>>(),
                        [rows],
                    ),
                    device,
                );
                let x = x_all.clone().select(0, idx_t.clone());
                let out = net.forward(x, arch.image);
                let loss = match &truth {
                    Truth::Classes(y) => loss_fn.forward(out, y.clone().select(0, idx_t)),
                    Truth::Values(y) => {
                        MseLoss::new().forward(out, y.clone().select(0, idx_t), Reduction::Mean)
                    }
                };
                let weighted = loss.clone().inner().mul_scalar(rows as f64);
                loss_sum = Some(match loss_sum {
                    Some(s) => s + weighted,
                    None => weighted,
                });
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = match training.optimizer {
                    Optimizer::Adam => adam.step(lr, net, grads),
                    Optimizer::Sgd => sgd.step(lr, net, grads),
                };
            }
            Some(match loss_sum {
                Some(s) => scalar(s)? / n as f64,
                None => f64::NAN,
            })
        };
        let metrics = epoch_metrics(
            &net.valid(),
            &arch,
            epoch,
            train_loss,
            &val_x,
            val,
            (target_mean, target_std),
            device,
        )?;
        let next = progress(&metrics);
        epochs.push(metrics);
        if next.is_break() {
            return Err(MlError::Stopped { epoch });
        }
    }

    let last = epochs.last().cloned().ok_or(MlError::Spec {
        field: "training.epochs",
        message: "must be at least 1".into(),
    })?;
    // A regressor's output goes back to the target's units inside its
    // last layer; its final scores are measured on exactly that network,
    // so `sealroom model eval` of the stored bytes reproduces them.
    let mut final_net = net.valid();
    let (confusion, final_r2, final_rmse, final_loss) = match arch.task {
        // Computed on the final network after training, so it cannot change
        // the model bytes (no randomness, the weights are only read).
        Task::Classification => (
            confusion_matrix(&final_net, &arch, &val_x, &val.labels, device)?,
            None,
            None,
            last.val_loss,
        ),
        Task::Regression => {
            final_net = final_net.unstandardize_output(target_mean, target_std);
            let predicted = outputs_rows(&final_net, &arch, &val_x, val.n, device)?;
            let r = RegressionScores::of(&val.targets, &predicted);
            (
                Vec::new(),
                Some(r.r2),
                Some(r.rmse),
                r.mse / (target_std * target_std),
            )
        }
    };
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(final_net.into_record(), ())
        .map_err(|e| MlError::Backend(format!("recording the model: {e}")))?;
    let model_bytes = model_bytes::encode(&arch.digest(), &stats, &record);
    Ok(TrainedModel {
        model_bytes,
        task: arch.task,
        final_accuracy: last.val_accuracy,
        final_r2,
        final_rmse,
        final_loss,
        epochs,
        data_order_commitment: commitment.finish(),
        train_records: n as u64,
        validation_records: val.n as u64,
        validation_from_split: validation.is_none(),
        confusion,
        dp: dp_plan.map(|(_, schedule, _, _)| DpRun {
            schedule,
            sampled_records: dp_sampled,
        }),
    })
}

/// The validation metrics after an epoch (a regressor's predictions mapped
/// back to the target's units with `(mean, std)`); a non-finite loss is
/// [`MlError::Diverged`].
#[allow(clippy::too_many_arguments)]
fn epoch_metrics<B: Backend>(
    net: &Net<B>,
    arch: &Arch,
    epoch: u32,
    train_loss: Option<f64>,
    val_x: &[f32],
    val: &Dataset,
    (target_mean, target_std): (f64, f64),
    device: &B::Device,
) -> Result<EpochMetrics, MlError> {
    let metrics = match arch.task {
        Task::Classification => {
            let (val_loss, correct) = measure(net, arch, val_x, &val.labels, device)?;
            EpochMetrics {
                epoch,
                train_loss,
                val_loss: val_loss / val.n as f64,
                val_accuracy: Some(correct as f64 / val.n as f64),
                val_r2: None,
                val_rmse: None,
            }
        }
        Task::Regression => {
            let predicted: Vec<f32> = outputs_rows(net, arch, val_x, val.n, device)?
                .into_iter()
                .map(|p| (f64::from(p) * target_std + target_mean) as f32)
                .collect();
            let r = RegressionScores::of(&val.targets, &predicted);
            EpochMetrics {
                epoch,
                train_loss,
                val_loss: r.mse / (target_std * target_std),
                val_accuracy: None,
                val_r2: Some(r.r2),
                val_rmse: Some(r.rmse),
            }
        }
    };
    if metrics.train_loss.is_some_and(|l| !l.is_finite()) || !metrics.val_loss.is_finite() {
        return Err(MlError::Diverged { epoch });
    }
    Ok(metrics)
}

/// A DP-SGD step's sampled rows and their truth, gathered on the device
/// from the uploaded training set and the host's labels or targets.
fn dp_batch<B: Backend>(
    x_all: &Tensor<B, 2>,
    picked: &[u32],
    arch: &Arch,
    labels: &[u32],
    targets: &[f32],
    device: &B::Device,
) -> (Tensor<B, 2>, BatchTruth<B>) {
    let rows = picked.len();
    let idx: Tensor<B, 1, Int> = Tensor::from_data(
        TensorData::new(
            picked.iter().map(|i| i64::from(*i)).collect::<Vec<_>>(),
            [rows],
        ),
        device,
    );
    let x = x_all.clone().select(0, idx);
    let truth = match arch.task {
        Task::Classification => {
            let k = arch.classes;
            let mut hot = Zeroizing::new(vec![0f32; rows * k]);
            for (r, i) in picked.iter().enumerate() {
                hot[r * k + labels[*i as usize] as usize] = 1.0;
            }
            BatchTruth::OneHot(Tensor::from_data(
                TensorData::new(hot.to_vec(), [rows, k]),
                device,
            ))
        }
        Task::Regression => {
            let ys: Zeroizing<Vec<f32>> =
                Zeroizing::new(picked.iter().map(|i| targets[*i as usize]).collect());
            BatchTruth::Values(Tensor::from_data(
                TensorData::new(ys.to_vec(), [rows, 1]),
                device,
            ))
        }
    };
    (x, truth)
}

fn check_training(t: &TrainingSpec) -> Result<(), MlError> {
    let bad = |field, message: &str| {
        Err(MlError::Spec {
            field,
            message: message.to_string(),
        })
    };
    if t.epochs == 0 {
        return bad("training.epochs", "must be at least 1");
    }
    if t.batch_size == 0 {
        return bad("training.batch_size", "must be at least 1");
    }
    if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
        return bad("training.learning_rate", "must be a positive number");
    }
    if !(t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum)) {
        return bad("training.momentum", "must be in [0, 1)");
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        return bad("training.weight_decay", "must be a non-negative number");
    }
    Ok(())
}

/// Summed cross-entropy and number of correct predictions over `labels`.
fn measure<B: Backend>(
    net: &Net<B>,
    arch: &Arch,
    x: &[f32],
    labels: &[u32],
    device: &B::Device,
) -> Result<(f64, u64), MlError> {
    let loss_fn: CrossEntropyLoss<B> = CrossEntropyLossConfig::new().init(device);
    let mut loss = 0f64;
    let mut correct = 0u64;
    for (xs, ys) in x.chunks(EVAL_CHUNK * arch.d).zip(labels.chunks(EVAL_CHUNK)) {
        let rows = ys.len();
        let xt: Tensor<B, 2> =
            Tensor::from_data(TensorData::new(xs.to_vec(), [rows, arch.d]), device);
        let yt: Tensor<B, 1, Int> =
            Tensor::from_data(TensorData::new(labels_i64(ys).to_vec(), [rows]), device);
        let logits = net.forward(xt, arch.image);
        let predicted = logits.clone().argmax(1).reshape([rows]);
        correct += predicted
            .equal(yt.clone())
            .int()
            .sum()
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| MlError::Backend(format!("{e:?}")))?
            .first()
            .map_or(0, |c| *c as u64);
        loss += scalar(loss_fn.forward(logits, yt))? * rows as f64;
    }
    Ok((loss, correct))
}

/// `confusion[true][predicted]` counts of `net` over `labels`.
fn confusion_matrix<B: Backend>(
    net: &Net<B>,
    arch: &Arch,
    x: &[f32],
    labels: &[u32],
    device: &B::Device,
) -> Result<Vec<Vec<u64>>, MlError> {
    let mut m = vec![vec![0u64; arch.classes]; arch.classes];
    for (xs, ys) in x.chunks(EVAL_CHUNK * arch.d).zip(labels.chunks(EVAL_CHUNK)) {
        let predicted = argmax_rows(net, arch, xs, ys.len(), device)?;
        for (y, p) in ys.iter().zip(predicted) {
            let cell = m
                .get_mut(*y as usize)
                .and_then(|row| row.get_mut(p))
                .ok_or_else(|| MlError::Backend("a class index out of range".into()))?;
            *cell += 1;
        }
    }
    Ok(m)
}

/// The network's raw outputs for `rows` preprocessed rows of a regressor
/// (one value per row), in chunks of [`EVAL_CHUNK`].
pub(crate) fn outputs_rows<B: Backend>(
    net: &Net<B>,
    arch: &Arch,
    x: &[f32],
    rows: usize,
    device: &B::Device,
) -> Result<Vec<f32>, MlError> {
    let mut out = Vec::with_capacity(rows);
    for xs in x.chunks(EVAL_CHUNK * arch.d) {
        let n = xs.len() / arch.d;
        let xt: Tensor<B, 2> = Tensor::from_data(TensorData::new(xs.to_vec(), [n, arch.d]), device);
        let values = net
            .forward(xt, arch.image)
            .reshape([n * arch.classes])
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| MlError::Backend(format!("{e:?}")))?;
        out.extend(values.into_iter().step_by(arch.classes.max(1)));
    }
    Ok(out)
}

/// The predicted class of each of `rows` preprocessed rows (Burn's argmax
/// of the logits, the same rule as the accuracy in [`measure`]).
pub(crate) fn argmax_rows<B: Backend>(
    net: &Net<B>,
    arch: &Arch,
    xs: &[f32],
    rows: usize,
    device: &B::Device,
) -> Result<Vec<usize>, MlError> {
    let xt: Tensor<B, 2> = Tensor::from_data(TensorData::new(xs.to_vec(), [rows, arch.d]), device);
    let logits = net.forward(xt, arch.image);
    logits
        .argmax(1)
        .reshape([rows])
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| MlError::Backend(format!("{e:?}")))?
        .into_iter()
        .map(|c| usize::try_from(c).map_err(|_| MlError::Backend("negative class index".into())))
        .collect()
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> Result<f64, MlError> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| MlError::Backend(format!("{e:?}")))?
        .first()
        .copied()
        .ok_or_else(|| MlError::Backend("empty scalar".into()))
}

fn labels_i64(labels: &[u32]) -> Zeroizing<Vec<i64>> {
    Zeroizing::new(labels.iter().map(|l| i64::from(*l)).collect())
}

type NetItem<B> = <<Net<B> as Module<B>>::Record as Record<B>>::Item<FullPrecisionSettings>;
pub(crate) type NetRecord<B> = <Net<B> as Module<B>>::Record;

fn load_net<B: Backend>(arch: &Arch, record: &[u8], device: &B::Device) -> Result<Net<B>, MlError> {
    let record = decode_record::<B>(record, device)?;
    load_record(arch, record, device)
}

/// Decodes Burn's record bytes into the network's record (tensors with the
/// shapes the bytes say, not yet checked against any architecture).
pub(crate) fn decode_record<B: Backend>(
    record: &[u8],
    device: &B::Device,
) -> Result<NetRecord<B>, MlError> {
    // Decoded here with the recorder's own format (bincode, standard
    // config) because Burn's `BinBytesRecorder::load` panics on malformed
    // bytes; building tensors from a decoded but inconsistent record can
    // still panic inside Burn, so that step is contained too.
    let (decoded, used): (BurnRecord<NetItem<B>, B>, usize) =
        bincode::serde::decode_from_slice(record, bincode::config::standard())
            .map_err(|e| MlError::ModelBytes(format!("record does not decode: {e}")))?;
    if used != record.len() {
        return Err(MlError::ModelBytes(format!(
            "{} bytes after the Burn record",
            record.len() - used
        )));
    }
    catch_unwind(AssertUnwindSafe(|| {
        <Net<B> as Module<B>>::Record::from_item(decoded.item, device)
    }))
    .map_err(|p| MlError::ModelBytes(format!("record does not load: {}", panic_message(&p))))
}

/// The network of `arch` with the weights of `record`.
pub(crate) fn load_record<B: Backend>(
    arch: &Arch,
    record: NetRecord<B>,
    device: &B::Device,
) -> Result<Net<B>, MlError> {
    catch_unwind(AssertUnwindSafe(|| {
        let template: Net<B> = Net::init(arch, 0, device);
        template.load_record(record)
    }))
    .map_err(|p| MlError::ModelBytes(format!("record does not load: {}", panic_message(&p))))
}

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}
