//! Models outside sealroom: open model bytes on their own, apply them to
//! data (`sealroom model eval|predict`), and hand the weights over as plain
//! named `float32` tensors in PyTorch's convention (`sealroom model export`).
//!
//! The model bytes do not store the architecture, only its digest (see
//! [`model_bytes`](super::model_bytes)). [`LoadedModel::from_bytes`] reads
//! the architecture from the shapes of the weights in Burn's record and
//! accepts it only when it hashes to the stored digest, so a model file is
//! usable without the scenario that made it. What the bytes cannot say — the
//! feature *names*, the label column, the training settings — comes from the
//! scenario or the owner's member record (the caller's choice).
//!
//! Tensor names and layouts ([`LoadedModel::tensors`]), PyTorch's:
//!
//! ```text
//! convs.{i}.weight   [out_channels, in_channels, 3, 3]   Conv2d, stride 1, padding 1, then ReLU
//! convs.{i}.bias     [out_channels]
//! layers.{i}.weight  [out_features, in_features]          Linear: y = x W^T + b
//! layers.{i}.bias    [out_features]                       ReLU after every layer but the last
//! ```
//!
//! Burn stores a dense weight as `[in, out]`; the export transposes it.

use std::collections::BTreeMap;
use std::fmt;

use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use sealroom_protocol::hash::sha256;
use sealroom_protocol::scenario::{FeatureType, ModelKind, ModelSpec, Preprocessing, Schema, Task};
use serde::Serialize;

use super::model_bytes;
use super::net::{Arch, Net};
use super::train::{
    class_count, decode_record, load_record, outputs_rows, Cpu, NetRecord, RegressionScores,
    EVAL_CHUNK,
};
use super::{Dataset, MlError, Stats};

/// Format tag of [`ModelCard`].
pub const MODEL_CARD_FORMAT: &str = "sealroom-model-card/1";

/// Model bytes opened on their own, ready to run on the CPU backend.
pub struct LoadedModel {
    arch: Arch,
    stats: Stats,
    net: Net<Cpu>,
    arch_digest: [u8; 32],
    sha256: [u8; 32],
}

impl fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModel")
            .field("arch", &self.arch)
            .field("sha256", &hex::encode(self.sha256))
            .finish_non_exhaustive()
    }
}

/// `mlp 64 → 128 → 10`, `cnn 8×8 image, channels [8], dense 512 → 10`: the
/// kind and the layer sizes, for messages.
impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", kind_name(self.kind))?;
        let mut sizes = vec![self.d];
        if let (Some([h, w]), Some(c)) = (self.image, self.channels.last()) {
            write!(f, " {h}×{w} image, channels {:?}, dense", self.channels)?;
            sizes = vec![c * h * w];
        }
        sizes.extend(&self.hidden);
        sizes.push(self.classes);
        let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
        write!(f, " {}", sizes.join(" → "))
    }
}

/// A named tensor of the exported model (row-major `float32` values).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// `convs.{i}.weight`, `layers.{i}.bias`, ...
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub values: Vec<f32>,
}

/// What a model predicts for each row.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// Number of classes (values per row in `probabilities`); 1 for a regressor.
    pub classes: usize,
    /// The predicted class of each row: the first index of the largest
    /// logit (the rule the node's accuracy uses). Empty for a regressor.
    pub predicted: Vec<u32>,
    /// Softmax of the logits, `rows × classes`, row-major. Empty for a regressor.
    pub probabilities: Vec<f32>,
    /// The predicted value of each row, in the target's units (regressor;
    /// empty for a classifier).
    pub values: Vec<f32>,
}

impl Predictions {
    /// The class probabilities of row `i` (0-based).
    pub fn row(&self, i: usize) -> &[f32] {
        self.probabilities
            .get(i * self.classes..(i + 1) * self.classes)
            .unwrap_or(&[])
    }
}

/// How a model does on labelled rows: accuracy and confusion matrix of a
/// classifier, R², RMSE and MSE of a regressor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// Rows evaluated.
    pub records: u64,
    /// Rows whose predicted class is the label (0 for a regressor).
    pub correct: u64,
    /// `correct / records` (classifier).
    pub accuracy: Option<f64>,
    /// `confusion[true_class][predicted_class]` row counts (empty for a regressor).
    pub confusion: Vec<Vec<u64>>,
    /// Coefficient of determination (regressor).
    pub r2: Option<f64>,
    /// Root mean squared error, target units (regressor).
    pub rmse: Option<f64>,
    /// Mean squared error, target units (regressor).
    pub mse: Option<f64>,
}

impl LoadedModel {
    /// Opens model bytes: the preprocessing statistics, Burn's record, and
    /// the architecture read from the weights' shapes, which must hash to
    /// the digest the bytes carry. Anything else is [`MlError::ModelBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MlError> {
        let file = model_bytes::decode(bytes)?;
        let d = file.stats.offset.len();
        if d == 0 {
            return Err(MlError::ModelBytes("no input features".into()));
        }
        let device = Default::default();
        let record = decode_record::<Cpu>(file.record, &device)?;
        let arch = infer_arch(&record, d, &file.arch_digest)?;
        let net = load_record(&arch, record, &device)?;
        Ok(Self {
            arch,
            stats: file.stats,
            net,
            arch_digest: file.arch_digest,
            sha256: sha256(bytes),
        })
    }

    /// The architecture (read from the weights, checked against the digest).
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The preprocessing statistics stored with the weights.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The architecture digest stored in the bytes.
    pub fn arch_digest(&self) -> [u8; 32] {
        self.arch_digest
    }

    /// SHA-256 of the model bytes (the `completed` report's model hash).
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// Checks that a model spec and schema describe this model: the same
    /// architecture digest (kind, sizes, classes) and preprocessing kind.
    /// Feature names are not in the bytes, so they cannot be compared; the
    /// count is.
    pub fn check_spec(&self, model: &ModelSpec, schema: &Schema) -> Result<(), MlError> {
        let arch = Arch::new(model, schema)?;
        if arch.digest() != self.arch_digest {
            return Err(MlError::Spec {
                field: "model",
                message: format!("describes {arch}, the model is {}", self.arch),
            });
        }
        if schema.preprocessing != self.stats.kind {
            return Err(MlError::Spec {
                field: "schema.preprocessing",
                message: format!(
                    "is {}, the model was trained with {}",
                    prep_name(schema.preprocessing),
                    prep_name(self.stats.kind)
                ),
            });
        }
        Ok(())
    }

    /// Predictions for the rows of `data` (raw feature values in the
    /// schema's order; preprocessed here with the stored statistics).
    /// Labels, if any, are not used.
    pub fn predict(&self, data: &Dataset) -> Result<Predictions, MlError> {
        let d = self.arch.d;
        if data.d != d {
            return Err(MlError::FeatureCount {
                expected: d,
                found: data.d,
            });
        }
        if data.features.len() != data.n * d {
            return Err(MlError::Spec {
                field: "dataset",
                message: format!("buffer length does not match n = {} and d = {d}", data.n),
            });
        }
        if data.features.iter().any(|v| !v.is_finite()) {
            return Err(MlError::Spec {
                field: "dataset",
                message: "a non-finite feature value".into(),
            });
        }
        let x = self.stats.apply_rows(&data.features, d);
        let device = Default::default();
        let classes = self.arch.classes;
        if self.arch.task == Task::Regression {
            return Ok(Predictions {
                classes,
                predicted: Vec::new(),
                probabilities: Vec::new(),
                values: outputs_rows(&self.net, &self.arch, &x, data.n, &device)?,
            });
        }
        let mut out = Predictions {
            classes,
            predicted: Vec::with_capacity(data.n),
            probabilities: Vec::with_capacity(data.n * classes),
            values: Vec::new(),
        };
        for xs in x.chunks(EVAL_CHUNK * d) {
            let rows = xs.len() / d;
            let xt: Tensor<Cpu, 2> =
                Tensor::from_data(TensorData::new(xs.to_vec(), [rows, d]), &device);
            let logits = self.net.forward(xt, self.arch.image);
            let predicted = logits
                .clone()
                .argmax(1)
                .reshape([rows])
                .into_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .map_err(|e| MlError::Backend(format!("{e:?}")))?;
            for c in predicted {
                out.predicted.push(
                    u32::try_from(c)
                        .map_err(|_| MlError::Backend("class index out of range".into()))?,
                );
            }
            let probs = softmax(logits, 1)
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| MlError::Backend(format!("{e:?}")))?;
            out.probabilities.extend_from_slice(&probs);
        }
        Ok(out)
    }

    /// Accuracy and confusion matrix on labelled rows (labels in
    /// `0..classes`), or R², RMSE and MSE on a regressor's targets.
    pub fn score(&self, data: &Dataset) -> Result<Scored, MlError> {
        data.check("evaluation data", self.arch.d, class_count(&self.arch))?;
        let p = self.predict(data)?;
        if self.arch.task == Task::Regression {
            let r = RegressionScores::of(&data.targets, &p.values);
            return Ok(Scored {
                records: data.n as u64,
                correct: 0,
                accuracy: None,
                confusion: Vec::new(),
                r2: Some(r.r2),
                rmse: Some(r.rmse),
                mse: Some(r.mse),
            });
        }
        let k = self.arch.classes;
        let mut confusion = vec![vec![0u64; k]; k];
        let mut correct = 0u64;
        for (y, c) in data.labels.iter().zip(&p.predicted) {
            if y == c {
                correct += 1;
            }
            if let Some(cell) = confusion
                .get_mut(*y as usize)
                .and_then(|r| r.get_mut(*c as usize))
            {
                *cell += 1;
            }
        }
        Ok(Scored {
            records: data.n as u64,
            correct,
            accuracy: Some(correct as f64 / data.n as f64),
            confusion,
            r2: None,
            rmse: None,
            mse: None,
        })
    }

    /// The weights as named `float32` tensors in PyTorch's convention (see
    /// the module docs), in layer order: convolutions, then dense layers,
    /// each weight before its bias.
    pub fn tensors(&self) -> Result<Vec<NamedTensor>, MlError> {
        let read = |t: Tensor<Cpu, 1>| -> Result<Vec<f32>, MlError> {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| MlError::Backend(format!("{e:?}")))
        };
        let mut out = Vec::new();
        for (i, conv) in self.net.convs.iter().enumerate() {
            // Burn's Conv2d weight is already [out, in, kh, kw], as PyTorch's.
            let w = conv.weight.val();
            let shape = w.dims().to_vec();
            out.push(NamedTensor {
                name: format!("convs.{i}.weight"),
                shape,
                values: read(w.flatten(0, 3))?,
            });
            let b = conv
                .bias
                .as_ref()
                .ok_or_else(|| MlError::ModelBytes(format!("convolution {i} has no bias")))?
                .val();
            out.push(NamedTensor {
                name: format!("convs.{i}.bias"),
                shape: b.dims().to_vec(),
                values: read(b)?,
            });
        }
        for (i, layer) in self.net.dense.iter().enumerate() {
            // Burn's Linear weight is [in, out]; PyTorch's is [out, in].
            let w = layer.weight.val().transpose();
            let shape = w.dims().to_vec();
            out.push(NamedTensor {
                name: format!("layers.{i}.weight"),
                shape,
                values: read(w.flatten(0, 1))?,
            });
            let b = layer
                .bias
                .as_ref()
                .ok_or_else(|| MlError::ModelBytes(format!("dense layer {i} has no bias")))?
                .val();
            out.push(NamedTensor {
                name: format!("layers.{i}.bias"),
                shape: b.dims().to_vec(),
                values: read(b)?,
            });
        }
        Ok(out)
    }

    /// The parts of a [`ModelCard`] the model bytes know; the caller adds
    /// what only a scenario or a member record can say.
    pub fn card(&self, weights_file: &str, weights_sha256: [u8; 32]) -> ModelCard {
        let a = &self.arch;
        let mut layers = Vec::new();
        let mut c_in = 1;
        for (i, &c) in a.channels.iter().enumerate() {
            layers.push(LayerCard {
                name: format!("convs.{i}"),
                op: "conv2d",
                in_size: c_in,
                out_size: c,
                kernel_size: Some([3, 3]),
                stride: Some(1),
                padding: Some(1),
                activation: "relu",
            });
            c_in = c;
        }
        let mut width = match (a.image, a.channels.last()) {
            (Some([h, w]), Some(c)) => c * h * w,
            _ => a.d,
        };
        let last = a.hidden.len();
        for (i, &out) in a
            .hidden
            .iter()
            .chain(std::iter::once(&a.classes))
            .enumerate()
        {
            layers.push(LayerCard {
                name: format!("layers.{i}"),
                op: "linear",
                in_size: width,
                out_size: out,
                kernel_size: None,
                stride: None,
                padding: None,
                activation: if i < last { "relu" } else { "none" },
            });
            width = out;
        }
        ModelCard {
            format: MODEL_CARD_FORMAT,
            model_sha256: hex::encode(self.sha256),
            arch_digest: hex::encode(self.arch_digest),
            weights: WeightsCard {
                file: weights_file.to_string(),
                sha256: hex::encode(weights_sha256),
                dtype: "float32",
                convention: "pytorch",
            },
            architecture: ArchCard {
                kind: a.kind,
                task: a.task,
                inputs: a.d,
                classes: a.classes,
                hidden: a.hidden.clone(),
                channels: a.channels.clone(),
                image: a.image,
            },
            layers,
            input_layout: if a.image.is_some() {
                "each row of features, in `features` order, reshaped to [1, height, width] (row-major); after the convolutions the [channels, height, width] maps are flattened row-major (torch.flatten(x, 1)) into layers.0"
            } else {
                "each row of features, in `features` order, is the input vector of layers.0"
            },
            output: match a.task {
                Task::Classification => "logits over label_classes; softmax gives the probabilities; the predicted class is the first index of the largest logit",
                Task::Regression => "one value per row: the predicted target, in the label column's units (a standardised target was mapped back inside the last layer)",
            },
            preprocessing: PrepCard {
                kind: self.stats.kind,
                formula: "x' = (x - offset) / scale, in float32, per feature",
                offset: self.stats.offset.iter().map(|v| f64::from(*v)).collect(),
                scale: self.stats.scale.iter().map(|v| f64::from(*v)).collect(),
            },
            features: None,
            feature_type: None,
            label: None,
            label_classes: match a.task {
                Task::Classification => (0..a.classes as u32).collect(),
                Task::Regression => Vec::new(),
            },
            training: None,
            provenance: Provenance::default(),
        }
    }
}

/// `model-card.json`: what a program outside sealroom needs to run the
/// exported weights, and where they came from. Fields are documented in
/// docs/trainer.md ("Using the model outside sealroom").
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    /// Always [`MODEL_CARD_FORMAT`].
    pub format: &'static str,
    /// SHA-256 of the model bytes (the `completed` report's `modelHash`), hex.
    pub model_sha256: String,
    /// The architecture digest stored in the model bytes, hex.
    pub arch_digest: String,
    /// The weights file.
    pub weights: WeightsCard,
    /// The architecture.
    pub architecture: ArchCard,
    /// Every layer in order, with its tensor name prefix.
    pub layers: Vec<LayerCard>,
    /// How a row of features becomes the network's input.
    pub input_layout: &'static str,
    /// What the network outputs.
    pub output: &'static str,
    /// The preprocessing to apply to raw feature values first.
    pub preprocessing: PrepCard,
    /// Feature column names in input order, when a scenario or record said.
    pub features: Option<Vec<String>>,
    /// `float` or `integer`, when known.
    pub feature_type: Option<FeatureType>,
    /// The label column, when known.
    pub label: Option<String>,
    /// The classes: labels are the integers `0..classes` (empty for a regressor).
    pub label_classes: Vec<u32>,
    /// The manifest's `[training]` settings, when known.
    pub training: Option<serde_json::Value>,
    /// Where the model and the names came from.
    pub provenance: Provenance,
}

/// The weights file of a [`ModelCard`].
#[derive(Clone, Debug, Serialize)]
pub struct WeightsCard {
    /// File name, beside the card.
    pub file: String,
    /// SHA-256 of that file, hex (a card and weights written apart show it).
    pub sha256: String,
    /// Always `float32`.
    pub dtype: &'static str,
    /// Always `pytorch`: `[out, in]` dense weights, `[out, in, kh, kw]` kernels.
    pub convention: &'static str,
}

/// The architecture in a [`ModelCard`].
#[derive(Clone, Debug, Serialize)]
pub struct ArchCard {
    /// `logistic-regression`, `linear-regression`, `mlp` or `cnn`.
    pub kind: ModelKind,
    /// `classification` or `regression`.
    pub task: Task,
    /// Input features.
    pub inputs: usize,
    /// Outputs: classes, or 1 for a regressor.
    pub classes: usize,
    /// Hidden dense layer sizes.
    pub hidden: Vec<usize>,
    /// Convolution output channels (CNN).
    pub channels: Vec<usize>,
    /// `[height, width]` (CNN).
    pub image: Option<[usize; 2]>,
}

/// One layer in a [`ModelCard`].
#[derive(Clone, Debug, Serialize)]
pub struct LayerCard {
    /// Tensor name prefix: `{name}.weight`, `{name}.bias`.
    pub name: String,
    /// `linear` or `conv2d`.
    pub op: &'static str,
    /// Input features (linear) or channels (conv2d).
    #[serde(rename = "in")]
    pub in_size: usize,
    /// Output features or channels.
    #[serde(rename = "out")]
    pub out_size: usize,
    /// Convolution kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_size: Option<[usize; 2]>,
    /// Convolution stride.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Convolution zero padding on every side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub padding: Option<usize>,
    /// `relu` or `none`, applied after the layer.
    pub activation: &'static str,
}

/// The preprocessing in a [`ModelCard`].
#[derive(Clone, Debug, Serialize)]
pub struct PrepCard {
    /// `standardize` (offset = mean, scale = standard deviation), `min-max`
    /// (offset = minimum, scale = range) or `none` (0 and 1).
    pub kind: Preprocessing,
    /// How to apply them.
    pub formula: &'static str,
    /// Per feature; the exact `float32` values, written as JSON numbers.
    pub offset: Vec<f64>,
    /// Per feature; the exact `float32` values.
    pub scale: Vec<f64>,
}

/// Where a [`ModelCard`]'s model and names came from.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Provenance {
    /// `scenario`, `member-record`, or none.
    pub names_from: Option<String>,
    /// The scenario or record file.
    pub file: Option<String>,
    /// The session, when a record said.
    pub session_id: Option<String>,
    /// The manifest hash, when a record said.
    pub manifest_hash: Option<String>,
    /// The hash of the `completed` report that names this model, when known.
    pub completed_report_hash: Option<String>,
}

/// The tensors as a safetensors file (`float32`, little-endian), with
/// `metadata` in its header.
#[cfg(feature = "export")]
pub fn safetensors_bytes(
    tensors: &[NamedTensor],
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>, MlError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let raw = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (t.name.clone(), t.shape.clone(), raw)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, raw)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| MlError::Export(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta: std::collections::HashMap<String, String> = metadata.into_iter().collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| MlError::Export(e.to_string()))
}

/// Without the `export` feature there is no safetensors writer (the node
/// image does not link one).
#[cfg(not(feature = "export"))]
pub fn safetensors_bytes(
    _tensors: &[NamedTensor],
    _metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>, MlError> {
    Err(MlError::Export(
        "built without the `export` feature of sealroom-trainer".into(),
    ))
}

fn kind_name(k: ModelKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{k:?}"))
}

fn prep_name(p: Preprocessing) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{p:?}"))
}

/// The architecture of a decoded record: layer shapes must chain (1 input
/// channel, 3×3 kernels, each layer's input the previous one's output, the
/// first dense layer taking `d` features or the flattened maps) and the
/// result must hash to `digest`. A CNN's image shape is not in the weights:
/// every `[h, w]` with `h × w = d` is tried against the digest.
fn infer_arch(record: &NetRecord<Cpu>, d: usize, digest: &[u8; 32]) -> Result<Arch, MlError> {
    let bad = |m: String| MlError::ModelBytes(m);
    let mut channels = Vec::new();
    let mut c_in = 1usize;
    for (i, conv) in record.convs.iter().enumerate() {
        let [o, ci, kh, kw] = conv.weight.val().dims();
        if o == 0 || ci != c_in || kh != 3 || kw != 3 {
            return Err(bad(format!(
                "convolution {i}: weight shape [{o}, {ci}, {kh}, {kw}] is not [out, {c_in}, 3, 3]"
            )));
        }
        match &conv.bias {
            Some(b) if b.val().dims() == [o] => {}
            _ => return Err(bad(format!("convolution {i}: bias is not [{o}]"))),
        }
        channels.push(o);
        c_in = o;
    }
    let mut dense = Vec::new();
    for (i, layer) in record.dense.iter().enumerate() {
        let [inp, out] = layer.weight.val().dims();
        match &layer.bias {
            Some(b) if b.val().dims() == [out] => {}
            _ => return Err(bad(format!("dense layer {i}: bias is not [{out}]"))),
        }
        if out == 0 {
            return Err(bad(format!("dense layer {i}: no outputs")));
        }
        if let Some(&(_, prev)) = dense.last() {
            if inp != prev {
                return Err(bad(format!(
                    "dense layer {i}: takes {inp} inputs, the previous layer gives {prev}"
                )));
            }
        }
        dense.push((inp, out));
    }
    let (Some(&(first_in, _)), Some(&(_, classes))) = (dense.first(), dense.last()) else {
        return Err(bad("no dense layer".into()));
    };
    // One output is a regressor (a classifier has at least two classes).
    let task = if classes == 1 {
        Task::Regression
    } else {
        Task::Classification
    };
    let hidden: Vec<usize> = dense[..dense.len() - 1].iter().map(|(_, o)| *o).collect();
    let (kind, images) = if channels.is_empty() {
        if first_in != d {
            return Err(bad(format!(
                "the first dense layer takes {first_in} inputs, the preprocessing has {d} features"
            )));
        }
        let kind = match (hidden.is_empty(), task) {
            (true, Task::Classification) => ModelKind::LogisticRegression,
            (true, Task::Regression) => ModelKind::LinearRegression,
            (false, _) => ModelKind::Mlp,
        };
        (kind, vec![None])
    } else {
        if first_in != c_in * d {
            return Err(bad(format!(
                "the first dense layer takes {first_in} inputs, the convolutions give {c_in} × {d}"
            )));
        }
        let shapes = (1..=d)
            .filter(|h| (d / h) * h == d)
            .map(|h| Some([h, d / h]))
            .collect();
        (ModelKind::Cnn, shapes)
    };
    for image in images {
        let arch = Arch {
            kind,
            task,
            d,
            classes,
            hidden: hidden.clone(),
            channels: channels.clone(),
            image,
        };
        if arch.digest() == *digest {
            return Ok(arch);
        }
    }
    Err(bad(
        "the architecture digest does not match the weights' shapes".into(),
    ))
}
