//! The networks: one Burn module covers logistic regression (one dense
//! layer), the MLP (ReLU dense layers) and the small CNN (ReLU 3×3
//! convolutions, then ReLU dense layers).

use burn::module::{Module, Param, ParamId};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use sealroom_protocol::hash::LpHasher;
use sealroom_protocol::scenario::{ModelKind, ModelSpec, Schema, Task};

use super::rng::Rng;
use super::MlError;

/// The architecture a spec and a schema describe, checked and with sizes as
/// `usize`. Public so that a model opened from its bytes alone
/// ([`LoadedModel`](super::LoadedModel)) can say what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arch {
    /// Logistic or linear regression, MLP or CNN.
    pub kind: ModelKind,
    /// Classification or regression (a regressor has exactly one output,
    /// a classifier at least two, so the output count tells them apart).
    pub task: Task,
    /// Input features.
    pub d: usize,
    /// Outputs: the classes of a classifier, 1 for a regressor.
    pub classes: usize,
    /// Dense hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Convolution output channels (CNN only).
    pub channels: Vec<usize>,
    /// `[height, width]` (CNN only).
    pub image: Option<[usize; 2]>,
}

impl Arch {
    /// The architecture of a model spec over a schema, refusing specs the
    /// engine cannot build (errors name the scenario field).
    pub fn new(model: &ModelSpec, schema: &Schema) -> Result<Self, MlError> {
        let d = schema.features.len();
        let spec = |field, message: &str| MlError::Spec {
            field,
            message: message.to_string(),
        };
        if d == 0 {
            return Err(spec("schema.features", "at least one feature is needed"));
        }
        match schema.task {
            Task::Classification if schema.label_classes < 2 => {
                return Err(spec(
                    "schema.label_classes",
                    "a classifier needs at least 2 classes",
                ));
            }
            Task::Regression if schema.label_classes != 0 => {
                return Err(spec(
                    "schema.label_classes",
                    "a regression target has no classes",
                ));
            }
            _ => {}
        }
        let hidden: Vec<usize> = model.hidden.iter().map(|h| *h as usize).collect();
        let channels: Vec<usize> = model.channels.iter().map(|c| *c as usize).collect();
        if hidden.contains(&0) {
            return Err(spec("model.hidden", "layer sizes must be at least 1"));
        }
        if channels.contains(&0) {
            return Err(spec("model.channels", "channel counts must be at least 1"));
        }
        let image = match model.kind {
            ModelKind::LogisticRegression | ModelKind::LinearRegression => {
                if !hidden.is_empty() || !channels.is_empty() {
                    return Err(spec(
                        "model.kind",
                        "a one-layer model takes no `hidden` or `channels`",
                    ));
                }
                let fits = (model.kind == ModelKind::LogisticRegression)
                    == (schema.task == Task::Classification);
                if !fits {
                    return Err(spec(
                        "model.kind",
                        "logistic-regression is for classification, linear-regression for regression",
                    ));
                }
                None
            }
            ModelKind::Mlp => {
                if hidden.is_empty() {
                    return Err(spec("model.hidden", "mlp needs at least one hidden layer"));
                }
                if !channels.is_empty() {
                    return Err(spec("model.channels", "mlp takes no `channels`"));
                }
                None
            }
            ModelKind::Cnn => {
                if channels.is_empty() {
                    return Err(spec(
                        "model.channels",
                        "cnn needs at least one convolution layer",
                    ));
                }
                match model.image.as_slice() {
                    [h, w] if (*h as usize) * (*w as usize) == d && *h > 0 => {
                        Some([*h as usize, *w as usize])
                    }
                    _ => return Err(spec(
                        "model.image",
                        "cnn needs `image = [height, width]` with height × width = feature count",
                    )),
                }
            }
        };
        Ok(Self {
            kind: model.kind,
            task: schema.task,
            d,
            classes: schema.outputs() as usize,
            hidden,
            channels,
            image,
        })
    }

    /// A digest of the architecture, stored in the model bytes so that
    /// evaluating bytes under another spec fails cleanly instead of loading
    /// mismatched tensors.
    pub fn digest(&self) -> [u8; 32] {
        let kind: &[u8] = match self.kind {
            ModelKind::LogisticRegression => b"logistic-regression",
            ModelKind::LinearRegression => b"linear-regression",
            ModelKind::Mlp => b"mlp",
            ModelKind::Cnn => b"cnn",
        };
        let list = |v: &[usize]| {
            v.iter()
                .flat_map(|x| (*x as u64).to_be_bytes())
                .collect::<Vec<u8>>()
        };
        let image = self.image.map(|i| list(&i)).unwrap_or_default();
        LpHasher::new("sealroom.trainer.arch.v1")
            .part(kind)
            .u64(self.d as u64)
            .u64(self.classes as u64)
            .part(list(&self.hidden))
            .part(list(&self.channels))
            .part(image)
            .finish()
    }
}

/// The network. Hyper-structure (image shape) is passed to `forward`, so the
/// module holds parameters only and its record is the weights alone.
#[derive(Module, Debug)]
pub(crate) struct Net<B: Backend> {
    pub(crate) convs: Vec<Conv2d<B>>,
    pub(crate) dense: Vec<Linear<B>>,
}

impl<B: Backend> Net<B> {
    /// A freshly initialised network: every weight and bias is uniform in
    /// `±1/sqrt(fan_in)` (PyTorch's default for dense and conv layers),
    /// drawn from the seed's `"init"` stream in layer order (convolutions,
    /// then dense layers; weight then bias). Parameter ids are 1, 2, 3, ...
    /// in the same order, so the record bytes depend on nothing random.
    pub fn init(arch: &Arch, seed: u64, device: &B::Device) -> Self {
        let mut rng = Rng::stream(seed, "init");
        let mut next_id = 0u64;
        let mut param = |shape: Vec<usize>, fan_in: usize, rng: &mut Rng| {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count).map(|_| rng.symmetric_f32(bound)).collect();
            next_id += 1;
            (ParamId::from(next_id), TensorData::new(values, shape))
        };

        let mut convs = Vec::new();
        let mut c_in = 1;
        for &c_out in &arch.channels {
            let fan_in = c_in * 9;
            let (wid, w) = param(vec![c_out, c_in, 3, 3], fan_in, &mut rng);
            let (bid, b) = param(vec![c_out], fan_in, &mut rng);
            convs.push(Conv2d {
                weight: Param::initialized(wid, Tensor::from_data(w, device).require_grad()),
                bias: Some(Param::initialized(
                    bid,
                    Tensor::from_data(b, device).require_grad(),
                )),
                stride: [1, 1],
                kernel_size: [3, 3],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
            });
            c_in = c_out;
        }

        let mut dense = Vec::new();
        let mut width = match (arch.image, arch.channels.last()) {
            (Some([h, w]), Some(c)) => c * h * w,
            _ => arch.d,
        };
        for &out in arch.hidden.iter().chain(std::iter::once(&arch.classes)) {
            // Burn's default (row) layout: weight is [d_input, d_output].
            let (wid, w) = param(vec![width, out], width, &mut rng);
            let (bid, b) = param(vec![out], width, &mut rng);
            dense.push(Linear {
                weight: Param::initialized(wid, Tensor::from_data(w, device).require_grad()),
                bias: Some(Param::initialized(
                    bid,
                    Tensor::from_data(b, device).require_grad(),
                )),
            });
            width = out;
        }
        Self { convs, dense }
    }

    /// The same network with its last layer's outputs mapped from the
    /// standardised target back to the target's units: `y = mean + std · ŷ`,
    /// folded into that layer's weight and bias so the stored model
    /// predicts raw values with no extra statistics to carry.
    pub fn unstandardize_output(mut self, mean: f64, std: f64) -> Self {
        if let Some(last) = self.dense.pop() {
            let weight = last.weight.map(|w| w.mul_scalar(std));
            let bias = last
                .bias
                .map(|b| b.map(|b| b.mul_scalar(std).add_scalar(mean)));
            self.dense.push(Linear { weight, bias });
        }
        self
    }

    /// Logits `[n, classes]` (a regressor: predictions `[n, 1]`) of
    /// preprocessed inputs `[n, d]`.
    pub fn forward(&self, x: Tensor<B, 2>, image: Option<[usize; 2]>) -> Tensor<B, 2> {
        let mut x = x;
        if let (Some([h, w]), false) = (image, self.convs.is_empty()) {
            let n = x.dims()[0];
            let mut t: Tensor<B, 4> = x.reshape([n, 1, h, w]);
            for conv in &self.convs {
                t = relu(conv.forward(t));
            }
            x = t.flatten(1, 3);
        }
        let last = self.dense.len().saturating_sub(1);
        for (i, layer) in self.dense.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}
