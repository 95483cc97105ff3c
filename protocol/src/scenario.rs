//! Scenario files (TOML): what an ML engineer writes to describe a session —
//! parties and their datasets, the owner, the data schema, the model, the
//! training, the attestation policy and the chain. `scenarios/README.md`
//! documents every key.
//!
//! Loading checks everything it can before anything runs, and reports every
//! problem found (not just the first) as `file:line: field: message`.
//! Relative paths are resolved against the scenario file's directory.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::dataset::{canonical_record, CsvLine, CsvReader, DatasetError};
use crate::identity::PublicIdentity;
use crate::manifest::limits;
use crate::policy::Policy;

/// A whole scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The session.
    pub session: SessionSpec,
    /// Data schema shared by every dataset.
    pub schema: Schema,
    /// Model architecture.
    pub model: ModelSpec,
    /// Training hyper-parameters.
    pub training: TrainingSpec,
    /// The model owner.
    pub owner: OwnerSpec,
    /// Data parties (`[[party]]`).
    #[serde(rename = "party", default)]
    pub parties: Vec<PartySpec>,
    /// Attestation policy (same keys as a policy file).
    #[serde(default)]
    pub policy: Policy,
    /// Where reports are published.
    #[serde(default)]
    pub chain: ChainSpec,
    /// The trainer engine allowlist (`[engine]`).
    #[serde(default)]
    pub engine: EngineSpec,
    /// Differential privacy of the training (`[privacy]`, DP-SGD).
    #[serde(default)]
    pub privacy: Option<crate::privacy::PrivacySpec>,
    /// Directory of the scenario file (relative paths resolve against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Warnings and notes found while loading (errors fail the load), with lines.
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// `[session]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Short name: lower-case letters, digits and dashes.
    pub name: String,
    /// Free text shown to parties before they consent.
    #[serde(default)]
    pub description: String,
}

/// How features are preprocessed inside the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preprocessing {
    /// Zero mean, unit variance, statistics computed on the pooled training data.
    Standardize,
    /// Scaled to [0, 1] with min/max of the pooled training data.
    MinMax,
    /// Used as they are.
    None,
}

/// What a model learns from the label column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// The label is a class `0..label_classes`; cross-entropy loss;
    /// accuracy and a confusion matrix.
    #[default]
    Classification,
    /// The label is a finite number; mean squared error; R² and RMSE.
    Regression,
}

impl Task {
    /// Whether this is the default task (serde's skip test).
    pub fn is_classification(&self) -> bool {
        *self == Task::Classification
    }

    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Schema {
    /// Values the network outputs per record: the class count, or 1 for
    /// regression.
    pub fn outputs(&self) -> u32 {
        match self.task {
            Task::Classification => self.label_classes,
            Task::Regression => 1,
        }
    }
}

/// Type of the feature values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureType {
    /// Any finite decimal number.
    Float,
    /// Integers only.
    Integer,
}

/// `[schema]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Feature column names, in model input order.
    pub features: Vec<String>,
    /// Label column name.
    pub label: String,
    /// What is learnt from the label: a class (`classification`, the
    /// default) or a number (`regression`). Omitted from the manifest when
    /// it is the default, so classification manifests hash as before.
    #[serde(default, skip_serializing_if = "Task::is_classification")]
    pub task: Task,
    /// Number of classes; labels are integers `0..label_classes`.
    /// Classification only (absent, serialised as 0, for regression).
    #[serde(default)]
    pub label_classes: u32,
    /// Regression only: train on the standardised target (mean 0, standard
    /// deviation 1 over the training rows) and map predictions back to the
    /// target's units inside the final layer, so the model predicts raw
    /// values. Default true; omitted from the manifest when true.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub standardize_target: bool,
    /// Type of feature values.
    #[serde(default = "default_feature_type")]
    pub feature_type: FeatureType,
    /// Preprocessing applied inside the node.
    #[serde(default = "default_preprocessing")]
    pub preprocessing: Preprocessing,
}

impl Preprocessing {
    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Preprocessing::Standardize => "standardize",
            Preprocessing::MinMax => "min-max",
            Preprocessing::None => "none",
        }
    }
}

impl FeatureType {
    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureType::Float => "float",
            FeatureType::Integer => "integer",
        }
    }

    /// What a value of this type is, in a sentence ("is not an integer").
    pub fn described(self) -> &'static str {
        match self {
            FeatureType::Float => "a finite number",
            FeatureType::Integer => "an integer",
        }
    }
}

fn default_feature_type() -> FeatureType {
    FeatureType::Float
}
fn default_preprocessing() -> Preprocessing {
    Preprocessing::Standardize
}

impl Schema {
    /// Every column a dataset must have: the features, then the label.
    pub fn columns(&self) -> Vec<String> {
        let mut c = self.features.clone();
        c.push(self.label.clone());
        c
    }
}

/// Model kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Multinomial logistic regression (one linear layer; classification).
    LogisticRegression,
    /// Linear regression (one linear layer, one output; regression).
    LinearRegression,
    /// Multi-layer perceptron with ReLU hidden layers.
    Mlp,
    /// Small convolutional network over `image` = [height, width] inputs.
    Cnn,
}

impl ModelKind {
    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::LogisticRegression => "logistic-regression",
            ModelKind::LinearRegression => "linear-regression",
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
        }
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The architecture.
    pub kind: ModelKind,
    /// Hidden layer sizes (`mlp`; for `cnn` the dense layers after the convolutions).
    #[serde(default)]
    pub hidden: Vec<u32>,
    /// Convolution channels per layer (`cnn` only).
    #[serde(default)]
    pub channels: Vec<u32>,
    /// Input image shape `[height, width]` (`cnn` only); height × width must equal the feature count.
    #[serde(default)]
    pub image: Vec<u32>,
}

impl ModelSpec {
    /// The architecture in the scenario's own words: `logistic-regression`,
    /// `mlp hidden [128]`, `cnn channels [8, 16] image 8x8 hidden [64]`.
    pub fn describe(&self) -> String {
        let list = |v: &[u32]| {
            let v: Vec<String> = v.iter().map(u32::to_string).collect();
            format!("[{}]", v.join(", "))
        };
        let mut s = self.kind.as_str().to_string();
        if !self.channels.is_empty() {
            s.push_str(&format!(" channels {}", list(&self.channels)));
        }
        if let [h, w] = self.image[..] {
            s.push_str(&format!(" image {h}x{w}"));
        }
        if !self.hidden.is_empty() {
            s.push_str(&format!(" hidden {}", list(&self.hidden)));
        }
        s
    }
}

/// Optimizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam.
    Adam,
    /// Stochastic gradient descent (with optional momentum).
    Sgd,
}

impl Optimizer {
    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Optimizer::Adam => "adam",
            Optimizer::Sgd => "sgd",
        }
    }
}

/// `[training]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Passes over the training data.
    pub epochs: u32,
    /// Records per gradient step.
    pub batch_size: u32,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub learning_rate: f64,
    /// SGD momentum (`sgd` only).
    #[serde(default)]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Seed for initialisation and data order.
    pub seed: u64,
    /// Fraction of pooled data held out for validation when the owner holds no validation set.
    #[serde(default)]
    pub validation_split: Option<f64>,
    /// Whether per-epoch metrics may appear in public progress (default: owner only).
    #[serde(default)]
    pub public_metrics: bool,
    /// Where the node must train (`compute = "cuda"` requires Burn's CUDA
    /// backend on the node's GPU). Absent means `cpu` and is left out of the
    /// manifest's JSON, so CPU sessions hash exactly as before.
    #[serde(default, skip_serializing_if = "TrainingCompute::is_cpu")]
    pub compute: TrainingCompute,
}

/// `training.compute`: the backend a session requires. Part of the engine
/// spec hash (and so of every report's inputs root): a node that trained on
/// another backend could not sign a report for this manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingCompute {
    /// Burn's flex backend on one CPU thread (the default, chosen by
    /// `sealroom bench train`; bytes replay exactly on one machine).
    #[default]
    Cpu,
    /// Burn's ndarray backend on one CPU thread (the default before flex;
    /// its models' bytes differ from flex's).
    #[serde(rename = "cpu-ndarray")]
    CpuNdarray,
    /// Burn's CUDA backend on the node's GPU (a node built with the `cuda`
    /// feature; replay holds only on the same backend and device kind).
    Cuda,
}

impl TrainingCompute {
    /// True for the default (left out of the manifest's JSON).
    pub fn is_cpu(&self) -> bool {
        *self == TrainingCompute::Cpu
    }

    /// The scenario file's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingCompute::Cpu => "cpu",
            TrainingCompute::CpuNdarray => "cpu-ndarray",
            TrainingCompute::Cuda => "cuda",
        }
    }
}

/// `[owner]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerSpec {
    /// Display name.
    pub name: String,
    /// Identity file (public or secret). `sealroom run` generates one when absent.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Owner-held validation set (same columns as the parties' data).
    #[serde(default)]
    pub validation: Option<PathBuf>,
}

/// `[[party]]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// Unique name.
    pub name: String,
    /// The party's dataset (CSV with a header line).
    pub dataset: PathBuf,
    /// Identity file (public or secret). `sealroom run` generates one when absent.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// `[chain]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    /// `embedded`, `anvil`, `opbnb-testnet`, `opbnb-mainnet`, or an `http(s)://` JSON-RPC URL.
    #[serde(default = "default_chain_target")]
    pub target: String,
    /// Confirmations to wait for after each publish.
    #[serde(default = "default_confirmations")]
    pub confirmations: u32,
    /// An already deployed registry (otherwise one is deployed).
    #[serde(default)]
    pub contract: Option<String>,
}

fn default_chain_target() -> String {
    "embedded".into()
}
fn default_confirmations() -> u32 {
    1
}

impl Default for ChainSpec {
    fn default() -> Self {
        Self {
            target: default_chain_target(),
            confirmations: default_confirmations(),
            contract: None,
        }
    }
}

/// `[engine]`: which trainer builds may run this session.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// Allowed engine measurements, compared with the launch measurement the
    /// node's verified evidence attests (sim: 32 bytes, SEV-SNP and TDX MRTD:
    /// 48 bytes, hex); empty = any.
    #[serde(default)]
    pub trainer_measurements: Vec<String>,
}

/// How serious a [`Problem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The scenario cannot be used (exit 2).
    Error,
    /// Usable, but probably not what was meant (an unused class).
    Warning,
    /// Usable; something one command will refuse (`sealroom run`'s simulated node).
    Note,
}

impl Severity {
    /// The word printed before a non-error problem's field.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field (`training.epochs`, `party[2].dataset`).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Error, warning or note.
    pub severity: Severity,
}

impl Problem {
    fn new(severity: Severity, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            line: None,
            field: field.into(),
            message: message.into(),
            severity,
        }
    }

    /// `file:line: field: message`, with `warning:` or `note:` before the
    /// field when it is not an error.
    pub fn display(&self, file: &Path) -> String {
        let at = match self.line {
            Some(l) => format!("{}:{l}", file.display()),
            None => file.display().to_string(),
        };
        match self.severity {
            Severity::Error => format!("{at}: {}: {}", self.field, self.message),
            s => format!("{at}: {}: {}: {}", s.as_str(), self.field, self.message),
        }
    }
}

/// A scenario that cannot be used: every problem found (errors, and the
/// warnings and notes found alongside), with file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// The problems: the errors first, then warnings and notes, each in
    /// file order (so the line printed after `error:` is an error).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&p.display(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Chain targets accepted besides URLs.
pub const CHAIN_PRESETS: &[&str] = &["embedded", "anvil", "opbnb-testnet", "opbnb-mainnet"];

impl Scenario {
    /// Reads, parses and validates a scenario file, including its datasets'
    /// headers and values and any key files it names.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        Self::load_with(path, true)
    }

    /// Reads, parses and validates a scenario file without opening its
    /// datasets: what the model owner needs to build a manifest from the
    /// parties' signed commitments, which already carry each dataset's
    /// record count and schema (the owner never needs another party's data).
    pub fn load_without_datasets(path: &Path) -> Result<Self, ScenarioError> {
        Self::load_with(path, false)
    }

    fn load_with(path: &Path, datasets: bool) -> Result<Self, ScenarioError> {
        let fail = |field: &str, message: String| ScenarioError {
            file: path.to_path_buf(),
            problems: vec![Problem::new(Severity::Error, field, message)],
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail("(file)", e.to_string()))?;
        let locator = Locator::new(&text);
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| {
            let (line, field) = match e.span() {
                Some(span) => (Some(locator.line_of(span.start)), locator.field_at(span)),
                None => (None, "(file)".to_string()),
            };
            ScenarioError {
                file: path.to_path_buf(),
                problems: vec![Problem {
                    line,
                    field,
                    message: e.message().trim().to_string(),
                    severity: Severity::Error,
                }],
            }
        })?;
        scenario.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = scenario.check(datasets);
        for p in &mut problems {
            p.line = locator.line_of_path(&p.field);
        }
        problems.sort_by_key(|p| {
            (
                p.severity != Severity::Error,
                p.line.unwrap_or(usize::MAX),
                p.severity,
            )
        });
        if problems.iter().all(|p| p.severity != Severity::Error) {
            scenario.warnings = problems;
            Ok(scenario)
        } else {
            Err(ScenarioError {
                file: path.to_path_buf(),
                problems,
            })
        }
    }

    /// Resolves a path from the scenario against its directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Semantic checks; returns every problem (lines are filled in by `load`).
    fn check(&self, datasets: bool) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |field: String, message: String| {
            out.push(Problem::new(Severity::Error, field, message))
        };

        if !is_valid_name(&self.session.name) {
            bad(
                "session.name".into(),
                "must be 1-64 characters of a-z, 0-9 and '-'".into(),
            );
        }

        // Schema.
        let s = &self.schema;
        if s.features.is_empty() {
            bad(
                "schema.features".into(),
                "at least one feature column is needed".into(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, f) in s.features.iter().enumerate() {
            if f.trim().is_empty() || f.contains(',') || f.contains('"') || f.trim() != f {
                bad(
                    format!("schema.features[{i}]"),
                    format!("{} is not a usable column name", quoted(f)),
                );
            }
            if !seen.insert(f.as_str()) {
                bad(
                    format!("schema.features[{i}]"),
                    format!("duplicate column {}", quoted(f)),
                );
            }
        }
        if seen.contains(s.label.as_str()) {
            bad(
                "schema.label".into(),
                format!("{} is also listed as a feature", quoted(&s.label)),
            );
        }
        if s.label.trim().is_empty()
            || s.label.contains(',')
            || s.label.contains('"')
            || s.label.trim() != s.label
        {
            bad(
                "schema.label".into(),
                format!("{} is not a usable column name", quoted(&s.label)),
            );
        }
        match s.task {
            Task::Classification => {
                if s.label_classes < 2 {
                    bad(
                        "schema.label_classes".into(),
                        "a classifier needs at least 2 classes (for a numeric target, set task = \"regression\")".into(),
                    );
                }
                if !s.standardize_target {
                    bad(
                        "schema.standardize_target".into(),
                        "applies to task = \"regression\" only".into(),
                    );
                }
            }
            Task::Regression => {
                if s.label_classes != 0 {
                    bad(
                        "schema.label_classes".into(),
                        "a regression target has no classes; remove label_classes".into(),
                    );
                }
            }
        }

        // Model.
        let m = &self.model;
        match m.kind {
            ModelKind::LogisticRegression | ModelKind::LinearRegression => {
                let name = m.kind.as_str();
                if !m.hidden.is_empty() || !m.channels.is_empty() || !m.image.is_empty() {
                    bad(
                        "model.kind".into(),
                        format!("{name} takes no `hidden`, `channels` or `image`"),
                    );
                }
                let fits = match s.task {
                    Task::Classification => m.kind == ModelKind::LogisticRegression,
                    Task::Regression => m.kind == ModelKind::LinearRegression,
                };
                if !fits {
                    bad(
                        "model.kind".into(),
                        format!(
                            "{name} does not fit schema.task = \"{}\" (use {})",
                            s.task.as_str(),
                            match s.task {
                                Task::Classification => "logistic-regression",
                                Task::Regression => "linear-regression",
                            }
                        ),
                    );
                }
            }
            ModelKind::Mlp => {
                if m.hidden.is_empty() {
                    bad(
                        "model.hidden".into(),
                        "mlp needs at least one hidden layer size".into(),
                    );
                }
                if !m.channels.is_empty() || !m.image.is_empty() {
                    bad(
                        "model.kind".into(),
                        "mlp takes no `channels` or `image`".into(),
                    );
                }
            }
            ModelKind::Cnn => {
                if m.channels.is_empty() {
                    bad(
                        "model.channels".into(),
                        "cnn needs at least one convolution layer".into(),
                    );
                }
                if m.image.len() != 2 {
                    bad(
                        "model.image".into(),
                        "cnn needs `image = [height, width]`".into(),
                    );
                } else if (m.image[0] as usize) * (m.image[1] as usize) != s.features.len() {
                    bad(
                        "model.image".into(),
                        format!(
                            "{}x{} = {} pixels, but the schema has {} features",
                            m.image[0],
                            m.image[1],
                            u64::from(m.image[0]) * u64::from(m.image[1]),
                            s.features.len()
                        ),
                    );
                }
            }
        }
        // The manifest's hard caps (layer sizes and counts, features,
        // classes, parameters, epochs, batch size), as the manifest will check them.
        for (field, message) in crate::manifest::limits::spec_violations(s, m, &self.training) {
            bad(field, message);
        }

        // Training.
        let t = &self.training;
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0 && t.learning_rate <= 10.0) {
            bad(
                "training.learning_rate".into(),
                "must be a number in (0, 10]".into(),
            );
        }
        if !(t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum)) {
            bad("training.momentum".into(), "must be in [0, 1)".into());
        }
        if t.momentum != 0.0 && t.optimizer != Optimizer::Sgd {
            bad(
                "training.momentum".into(),
                "momentum applies to `sgd` only".into(),
            );
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            bad(
                "training.weight_decay".into(),
                "must be a number >= 0".into(),
            );
        }
        match (t.validation_split, &self.owner.validation) {
            (Some(_), Some(_)) => bad(
                "training.validation_split".into(),
                "the owner holds a validation set (owner.validation); remove validation_split"
                    .into(),
            ),
            (None, None) => bad(
                "training.validation_split".into(),
                "set validation_split, or give the owner a validation set (owner.validation)"
                    .into(),
            ),
            (Some(v), None) if !(v > 0.0 && v < 0.9) => bad(
                "training.validation_split".into(),
                "must be in (0, 0.9)".into(),
            ),
            _ => {}
        }

        // Parties and owner.
        if self.parties.is_empty() {
            bad("party".into(), "at least one [[party]] is needed".into());
        }
        if self.parties.len() > limits::MAX_PARTIES {
            bad(
                "party".into(),
                format!(
                    "{} parties exceed the limit of {}",
                    self.parties.len(),
                    limits::MAX_PARTIES
                ),
            );
        }
        let mut names = BTreeSet::new();
        if !is_valid_name(&self.owner.name) {
            bad(
                "owner.name".into(),
                "must be 1-64 characters of a-z, 0-9 and '-'".into(),
            );
        }
        names.insert(self.owner.name.as_str());
        let columns = s.columns();
        let mut records = 0u64;
        // Records the model trains on (the parties'), for the class-count check.
        let mut party_records = 0u64;
        // Labels seen over the parties' datasets (None once one is unreadable).
        let mut labels = Some(BTreeSet::new());
        // Each party's records, by their digest: the same records given
        // twice are trained on twice (and break the privacy accountant's
        // assumption that a person's record is in the pool once).
        let mut seen_records: std::collections::BTreeMap<[u8; 32], &str> = Default::default();
        // Each party's identity (from `key`, when given).
        let mut seen_keys: std::collections::BTreeMap<[u8; 32], &str> = Default::default();
        for (i, p) in self.parties.iter().enumerate() {
            if !is_valid_name(&p.name) {
                bad(
                    format!("party[{i}].name"),
                    "must be 1-64 characters of a-z, 0-9 and '-'".into(),
                );
            }
            if !names.insert(p.name.as_str()) {
                bad(
                    format!("party[{i}].name"),
                    format!("duplicate name `{}`", p.name),
                );
            }
            if datasets {
                match scan_dataset(&self.resolve(&p.dataset), &columns, s) {
                    Ok(scan) => {
                        if let Some(first) = seen_records.insert(scan.records_digest, &p.name) {
                            bad(
                                format!("party[{i}].dataset"),
                                format!(
                                    "{}: the same records as `{first}`'s dataset; pooled, every record would be trained on twice",
                                    p.dataset.display()
                                ),
                            );
                        }
                        records = records.saturating_add(scan.records);
                        party_records = party_records.saturating_add(scan.records);
                        if let Some(l) = labels.as_mut() {
                            l.extend(scan.labels);
                        }
                    }
                    Err(m) => {
                        labels = None;
                        bad(format!("party[{i}].dataset"), m)
                    }
                }
            }
            if records > limits::MAX_RECORDS {
                bad(
                    format!("party[{i}].dataset"),
                    format!(
                        "records over all datasets exceed the limit of {}",
                        limits::MAX_RECORDS
                    ),
                );
            }
            if let Some(k) = &p.key {
                match PublicIdentity::load(&self.resolve(k)) {
                    Ok(id) => {
                        // The manifest refuses it too, but only once the
                        // datasets are committed and a session is opened.
                        if let Some(first) = seen_keys.insert(id.ed25519, &p.name) {
                            bad(
                                format!("party[{i}].key"),
                                format!(
                                    "{}: the same identity as `{first}`'s key; every party signs its own consent and grants",
                                    k.display()
                                ),
                            );
                        }
                    }
                    Err(e) => bad(format!("party[{i}].key"), e.to_string()),
                }
            }
        }
        if let Some(v) = self.owner.validation.as_ref().filter(|_| datasets) {
            match scan_dataset(&self.resolve(v), &columns, s) {
                Ok(scan) => {
                    if let Some(party) = seen_records.get(&scan.records_digest) {
                        bad(
                            "owner.validation".into(),
                            format!(
                                "{}: the same records as `{party}`'s dataset; the model would be validated on the records it trains on",
                                v.display()
                            ),
                        );
                    }
                    records = records.saturating_add(scan.records)
                }
                Err(m) => bad("owner.validation".into(), m),
            }
            if records > limits::MAX_RECORDS {
                bad(
                    "owner.validation".into(),
                    format!(
                        "records over all datasets exceed the limit of {}",
                        limits::MAX_RECORDS
                    ),
                );
            }
        }
        if let Some(k) = &self.owner.key {
            if let Err(e) = PublicIdentity::load(&self.resolve(k)) {
                bad("owner.key".into(), e.to_string());
            }
        }

        // Policy and chain.
        if let Err(e) = self.policy.validate() {
            bad(format!("policy.{}", e.field), e.detail);
        }
        let target = self.chain.target.as_str();
        if !CHAIN_PRESETS.contains(&target)
            && !target.starts_with("http://")
            && !target.starts_with("https://")
        {
            bad(
                "chain.target".into(),
                format!(
                    "`{target}` is not one of {} nor an http(s):// URL",
                    CHAIN_PRESETS.join(", ")
                ),
            );
        }
        if let Some(c) = &self.chain.contract {
            if crate::hash::parse_hex_array::<20>(c).is_none() {
                bad(
                    "chain.contract".into(),
                    "must be a 20-byte 0x-hex address".into(),
                );
            }
        }
        if self.engine.trainer_measurements.len() > limits::MAX_TRAINER_MEASUREMENTS {
            bad(
                "engine.trainer_measurements".into(),
                format!(
                    "{} entries exceed the limit of {}",
                    self.engine.trainer_measurements.len(),
                    limits::MAX_TRAINER_MEASUREMENTS
                ),
            );
        }
        for (i, m) in self.engine.trainer_measurements.iter().enumerate() {
            // The attested launch measurement: 32 bytes (sim) or 48 (SEV-SNP, TDX MRTD).
            if crate::hash::parse_hex_array::<32>(m).is_none()
                && crate::hash::parse_hex_array::<48>(m).is_none()
            {
                bad(
                    format!("engine.trainer_measurements[{i}]"),
                    "must be 32 (sim) or 48 (SEV-SNP, TDX) bytes of hex: the attested launch measurement".into(),
                );
            }
        }

        // A class count no classifier can learn from these rows: usually a
        // measurement (a regression target) declared as classes, which
        // would otherwise train silently into a useless many-class model.
        // (Judged from 20 rows on: a handful of rows says nothing.)
        let classifying = s.task == Task::Classification;
        if let Some(seen) = labels
            .as_ref()
            .filter(|_| classifying && datasets && party_records >= 20)
        {
            let classes = u64::from(s.label_classes).max(seen.len() as u64);
            if classes.saturating_mul(2) > party_records {
                bad(
                    "schema.label_classes".into(),
                    format!(
                        "{} classes ({} distinct labels) for {party_records} training records: fewer than 2 records per class, which no classifier can learn; \
                         if `{}` is a measurement rather than a category, set task = \"regression\" in [schema] (and drop label_classes)",
                        s.label_classes,
                        seen.len(),
                        s.label
                    ),
                );
            }
        }
        // Privacy: the spec's own values, the models DP-SGD supports, and —
        // once the datasets' record counts are known — the ε it spends.
        if let Some(p) = &self.privacy {
            for (field, message) in p.problems(false) {
                bad(format!("privacy.{field}"), message);
            }
            if self.training.public_metrics {
                bad(
                    "training.public_metrics".into(),
                    "must be false with [privacy]: a private session's metrics go to the owner only".into(),
                );
            }
            if self.owner.validation.is_none() {
                bad(
                    "owner.validation".into(),
                    "a scenario with [privacy] needs the owner's validation set: with validation_split, the preprocessing statistics inside the model and the metrics would be computed on party records, outside ε".into(),
                );
            }
            if m.kind == ModelKind::Cnn {
                bad(
                    "privacy".into(),
                    "DP-SGD supports logistic-regression, linear-regression and mlp models, not cnn (per-record gradients of convolutions are not built)".into(),
                );
            }
            if datasets && labels.is_some() && p.problems(false).is_empty() {
                let schedule = crate::manifest::training_schedule(
                    party_records,
                    self.owner.validation.is_some(),
                    &self.training,
                );
                if let Some(schedule) = schedule {
                    match p.committed(&schedule).and_then(|c| {
                        let spent = c.spent(&schedule)?;
                        Ok((c, spent))
                    }) {
                        Ok((c, spent)) => {
                            let over = self.policy.max_epsilon.filter(|max| {
                                spent.epsilon > *max
                                    || c.noise_source == crate::privacy::NoiseSource::Seed
                            });
                            let text = format!(
                                "DP-SGD spends ε = {:.4} at δ = {} (σ {:.6}, C {}, q {:.6}, {} steps, RDP order {}){}",
                                spent.epsilon,
                                c.delta,
                                c.noise_multiplier.unwrap_or(f64::NAN),
                                c.max_grad_norm,
                                schedule.sample_rate,
                                schedule.steps,
                                spent.order,
                                if c.noise_source == crate::privacy::NoiseSource::Seed {
                                    "; noise_source = \"seed\": whoever knows the seed knows the noise, so ε does not hold against the members"
                                } else {
                                    ""
                                }
                            );
                            match over {
                                Some(max) => bad(
                                    "policy.max_epsilon".into(),
                                    if spent.epsilon > max {
                                        format!("{text}, above max_epsilon {max}")
                                    } else {
                                        format!("{text}; max_epsilon {max} needs noise keyed inside the TEE (noise_source = \"tee\")")
                                    },
                                ),
                                None => out.push(Problem::new(Severity::Note, "privacy", text)),
                            }
                        }
                        Err(e) => bad(format!("privacy.{}", e.field), e.message),
                    }
                }
            }
        } else if self.policy.max_epsilon.is_some() {
            bad(
                "policy.max_epsilon".into(),
                "set, but the scenario has no [privacy]: the training would not be differentially private".into(),
            );
        }
        // Warnings and notes: usable, but probably not what was meant.
        if let Some(seen) = labels.filter(|_| classifying && datasets && !self.parties.is_empty()) {
            if let Some(m) = unused_classes_warning(&seen, s.label_classes) {
                out.push(Problem::new(Severity::Warning, "schema.label_classes", m));
            }
        }
        if self.policy.validate().is_ok() {
            if let Some((field, what)) = sim_node_refusal(&self.policy) {
                let (severity, message) = (
                    Severity::Note,
                    format!(
                        "{what}: `sealroom run` runs a simulated node, which this policy refuses; \
                         it needs `accepted_kinds` with \"sim\" and `allow_simulation = true`. \
                         A session over the network with a TEE node this policy accepts is fine \
                         (docs/run.md, \"Members over the network\")"
                    ),
                );
                out.push(Problem::new(severity, field, message));
            }
        }
        out
    }
}

/// Why the simulated node `sealroom run` starts cannot meet `policy`, as
/// `(field, what)`, or None when it can. One rule for `sealroom run`, which
/// refuses such a scenario, and `sealroom scenario check`, which notes it.
pub fn sim_node_refusal(policy: &Policy) -> Option<(&'static str, &'static str)> {
    use crate::policy::TeeKind;
    if !policy.accepted_kinds.contains(&TeeKind::Sim) {
        Some(("policy.accepted_kinds", "does not list \"sim\""))
    } else if !policy.allow_simulation {
        Some(("policy.allow_simulation", "is false"))
    } else {
        None
    }
}

/// The warning for classes no record uses: a model output that never
/// trains, most often labels counted from 1 instead of 0.
fn unused_classes_warning(seen: &BTreeSet<u32>, classes: u32) -> Option<String> {
    if classes > limits::MAX_CLASSES || seen.is_empty() {
        return None;
    }
    let unused: Vec<u32> = (0..classes).filter(|c| !seen.contains(c)).collect();
    if unused.is_empty() {
        return None;
    }
    let list = |v: &mut dyn Iterator<Item = u32>| {
        let v: Vec<String> = v.take(11).map(|c| c.to_string()).collect();
        if v.len() > 10 {
            format!("{}, …", v[..10].join(", "))
        } else {
            v.join(", ")
        }
    };
    let mut m = format!(
        "{} {} of 0..{classes} appear{} in no party's dataset (labels found: {}); the model keeps an output that never trains",
        if unused.len() == 1 { "class" } else { "classes" },
        list(&mut unused.iter().copied()),
        if unused.len() == 1 { "s" } else { "" },
        list(&mut seen.iter().copied()),
    );
    if unused == [0] && seen.iter().next() == Some(&1) {
        m.push_str(
            "; labels are 0-based: with labels 1..=N, subtract 1 from every label and set label_classes = N",
        );
    }
    Some(m)
}

/// A name or value quoted, with invisible and control characters escaped
/// (`"\u{feff}alcohol"`, `""`): a message about a column name must show a
/// difference the eye cannot see.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || (c.is_whitespace() && c != ' ') || invisible(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Format and zero-width characters that print as nothing.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}')
}

/// Checks a dataset against the schema: its header holds exactly the schema's
/// columns, and every value parses as the schema says. Streams the file.
pub fn check_dataset(path: &Path, columns: &[String], schema: &Schema) -> Result<(), String> {
    scan_dataset(path, columns, schema).map(|_| ())
}

/// What reading a dataset found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatasetScan {
    /// Records (lines after the header, blank ones at the end not counted).
    pub records: u64,
    /// The distinct labels used.
    pub labels: BTreeSet<u32>,
    /// SHA-256 over the records' canonical bytes, in order (each record's
    /// encoding is count- and length-prefixed, so the concatenation is
    /// unambiguous): equal exactly when the commitments' Merkle roots would
    /// be, which is how the scenario check finds one dataset given twice.
    pub records_digest: [u8; 32],
}

/// [`check_dataset`], returning the record count and the labels used. The
/// file is read through the same line rules as the commitment
/// ([`CsvReader`]), so a blank line inside it, a byte-order mark or a short
/// record is found here, with its line, and not first by `sealroom commit`
/// or `run`. Also refuses a file larger than a session's blobs may be
/// ([`limits::DEFAULT_MAX_BLOB_BYTES`]: the blob is the file's ciphertext,
/// slightly larger). Errors are `FILE:LINE: message`.
pub fn scan_dataset(
    path: &Path,
    columns: &[String],
    schema: &Schema,
) -> Result<DatasetScan, String> {
    let shown = path.display();
    let mut f = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let size = f.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
    if size > limits::DEFAULT_MAX_BLOB_BYTES {
        return Err(format!(
            "{shown}: {size} bytes; a session's blobs are limited to {} bytes (max_blob_bytes)",
            limits::DEFAULT_MAX_BLOB_BYTES
        ));
    }
    let located = |e: DatasetError| match e {
        DatasetError::Record { line, detail } => format!("{shown}:{line}: {detail}"),
        other => format!("{shown}: {other}"),
    };
    let want: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
    let mut scan = DatasetScan::default();
    let mut records_hasher = Sha256::new();
    let mut names: Vec<String> = Vec::new();
    let mut label_idx = 0usize;
    let mut on_line = |line_no: u64, line: CsvLine<'_>| -> Result<(), DatasetError> {
        let err = |detail: String| DatasetError::Record {
            line: line_no,
            detail,
        };
        match line {
            CsvLine::Header(header) => {
                let have: BTreeSet<&str> = header.iter().copied().collect();
                let missing: Vec<String> = want.difference(&have).map(|c| quoted(c)).collect();
                let extra: Vec<String> = have.difference(&want).map(|c| quoted(c)).collect();
                if !missing.is_empty() || !extra.is_empty() || header.len() != columns.len() {
                    let mut m = String::from("columns do not match the schema");
                    if !missing.is_empty() {
                        m.push_str(&format!("; missing: {}", missing.join(", ")));
                    }
                    if !extra.is_empty() {
                        m.push_str(&format!("; not in the schema: {}", extra.join(", ")));
                    }
                    if missing.is_empty() && extra.is_empty() {
                        m.push_str("; a column appears twice");
                    }
                    return Err(err(m));
                }
                label_idx = header.iter().position(|h| *h == schema.label).unwrap_or(0);
                names = header.iter().map(|h| h.to_string()).collect();
            }
            CsvLine::Record(fields) => {
                for (i, v) in fields.iter().enumerate() {
                    if i == label_idx && schema.task == Task::Regression {
                        if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                            return Err(err(format!(
                                "label {}: a regression target must be a finite number",
                                quoted(v)
                            )));
                        }
                    } else if i == label_idx {
                        match v.parse::<u32>() {
                            Ok(c) if c < schema.label_classes => {
                                scan.labels.insert(c);
                            }
                            _ => {
                                let continuous = v.parse::<u64>().is_err()
                                    && v.parse::<f64>().is_ok_and(f64::is_finite);
                                return Err(err(format!(
                                    "label {} is not a class in 0..{} (labels are 0-based integers below label_classes){}",
                                    quoted(v),
                                    schema.label_classes,
                                    if continuous {
                                        "; it looks like a measurement: for a numeric target set task = \"regression\" in [schema] (docs: scenarios/README.md)"
                                    } else {
                                        ""
                                    }
                                )));
                            }
                        }
                    } else {
                        let ok = match schema.feature_type {
                            FeatureType::Float => v.parse::<f64>().is_ok_and(f64::is_finite),
                            FeatureType::Integer => v.parse::<i64>().is_ok(),
                        };
                        if !ok {
                            return Err(err(format!(
                                "column {}: {} is not {} (schema.feature_type = \"{}\")",
                                quoted(names.get(i).map(String::as_str).unwrap_or("")),
                                quoted(v),
                                schema.feature_type.described(),
                                schema.feature_type.as_str()
                            )));
                        }
                    }
                }
                records_hasher.update(Zeroizing::new(canonical_record(&fields)).as_slice());
                scan.records += 1;
            }
            CsvLine::Blank => {}
        }
        Ok(())
    };
    let mut reader = CsvReader::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        reader.update(&buf[..n], &mut on_line).map_err(located)?;
    }
    reader.finish(&mut on_line).map_err(located)?;
    if scan.records == 0 {
        return Err(format!("{shown}: no records"));
    }
    scan.records_digest = records_hasher.finalize().into();
    Ok(scan)
}

/// Maps byte offsets and dotted field paths of a TOML text to line numbers.
struct Locator<'a> {
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(n) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// Line of the deepest existing prefix of `path` (a missing key points at its table).
    fn line_of_path(&self, path: &str) -> Option<usize> {
        use toml_edit::TableLike;
        let doc = self.doc.as_ref()?;
        let mut table: Option<&dyn TableLike> = Some(doc.as_table());
        let mut aot: Option<&toml_edit::ArrayOfTables> = None;
        let mut arr: Option<&toml_edit::Array> = None;
        let mut best: Option<Range<usize>> = None;
        for seg in parse_path(path) {
            match seg {
                Seg::Key(k) => {
                    let Some((key, v)) = table.and_then(|t| t.get_key_value(&k)) else {
                        break;
                    };
                    best = key.span().or(best);
                    table = v.as_table_like();
                    aot = v.as_array_of_tables();
                    arr = v.as_array();
                }
                Seg::Index(i) => {
                    if let Some(t) = aot.and_then(|a| a.get(i)) {
                        let first_key = t
                            .iter()
                            .next()
                            .and_then(|(k, _)| t.key(k))
                            .and_then(|k| k.span());
                        best = t.span().or(first_key).or(best);
                        table = Some(t);
                        aot = None;
                        arr = None;
                    } else if let Some(v) = arr.and_then(|a| a.get(i)) {
                        best = v.span().or(best);
                        table = v.as_inline_table().map(|t| t as &dyn TableLike);
                        arr = v.as_array();
                        aot = None;
                    } else {
                        break;
                    }
                }
            }
        }
        best.map(|r| self.line_of(r.start))
    }

    /// Dotted path of the field whose key or value contains `span`.
    fn field_at(&self, span: Range<usize>) -> String {
        let Some(doc) = self.doc.as_ref() else {
            return "(syntax)".into();
        };
        let mut path = Vec::new();
        find_in_table(doc.as_table(), span.start, &mut path);
        let mut s = String::new();
        for p in path.iter().rev() {
            match p {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if s.is_empty() {
            "(file)".into()
        } else {
            s
        }
    }
}

fn span_contains(r: Option<Range<usize>>, offset: usize) -> bool {
    r.is_some_and(|r| r.start <= offset && offset < r.end.max(r.start + 1))
}

/// Finds the path (pushed leaf first) of the entry of `t` containing `offset`.
fn find_in_table(t: &dyn toml_edit::TableLike, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (k, v) in t.iter() {
        let key_span = t.get_key_value(k).and_then(|(key, _)| key.span());
        if find_in_item(v, offset, path)
            || span_contains(key_span, offset)
            || span_contains(v.span(), offset)
        {
            path.push(Seg::Key(k.to_string()));
            return true;
        }
    }
    false
}

fn find_in_item(v: &toml_edit::Item, offset: usize, path: &mut Vec<Seg>) -> bool {
    if let Some(a) = v.as_array_of_tables() {
        for (i, t) in a.iter().enumerate() {
            if find_in_table(t, offset, path) || span_contains(t.span(), offset) {
                path.push(Seg::Index(i));
                return true;
            }
        }
        false
    } else if let Some(t) = v.as_table_like() {
        find_in_table(t, offset, path)
    } else {
        false
    }
}

/// Whether `s` is a valid session, owner or party name: 1 to 64 lower-case
/// ASCII letters, digits or `-`. Input names are built from these (`NAME`,
/// `OWNER/validation`), so none may hold a `/`; the manifest holds its
/// names to the same rule, whoever wrote it.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The breast-cancer scenario with its datasets by absolute path, edited.
    fn variant(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let base = std::fs::read_to_string(root.join("breast-cancer-3-hospitals.toml")).unwrap();
        let data = root.join("data");
        let text = edit(base.replace("\"data/", &format!("\"{}/", data.display())));
        let p = dir.join("capped.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A small scenario (two float features, `classes` classes, a split)
    /// whose one party's dataset is `csv`, both written into `dir`.
    fn small(dir: &Path, classes: u32, csv: &[u8], policy: &str) -> PathBuf {
        std::fs::write(dir.join("a.csv"), csv).unwrap();
        let p = dir.join("small.toml");
        std::fs::write(
            &p,
            format!(
                "[session]\nname = \"wine\"\n\
                 [schema]\nfeatures = [\"alcohol\", \"ash\"]\nlabel = \"class\"\nlabel_classes = {classes}\n\
                 [model]\nkind = \"logistic-regression\"\n\
                 [training]\nepochs = 5\nbatch_size = 8\noptimizer = \"adam\"\nlearning_rate = 0.01\nseed = 1\nvalidation_split = 0.2\n\
                 [owner]\nname = \"owner\"\n\
                 [[party]]\nname = \"a\"\ndataset = \"a.csv\"\n\
                 [policy]\n{policy}\n"
            ),
        )
        .unwrap();
        p
    }

    /// 1-based line of the first line of `p` containing `needle`.
    fn line_of(p: &Path, needle: &str) -> usize {
        let text = std::fs::read_to_string(p).unwrap();
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    const SIM: &str = "accepted_kinds = [\"sev-snp\", \"tdx\", \"sim\"]\nallow_simulation = true";

    /// The one error of a scenario that fails to load.
    fn only_error(p: &Path) -> String {
        let e = Scenario::load(p).unwrap_err();
        let errors: Vec<&Problem> = e
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{e}");
        errors[0].display(p)
    }

    #[test]
    fn one_dataset_or_identity_given_twice_or_data_as_validation_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        // The same file for two parties.
        let p = variant(dir.path(), |t| {
            t.replace(
                "breast-cancer/hospital-b.csv",
                "breast-cancer/hospital-a.csv",
            )
        });
        let e = only_error(&p);
        assert!(
            e.starts_with(&format!(
                "{}:{}: party[1].dataset: ",
                p.display(),
                std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.contains("hospital-a.csv"))
                    .nth(1)
                    .unwrap()
                    .0
                    + 1
            )) && e.contains("the same records as `hospital-a`'s dataset"),
            "{e}"
        );
        // Another file with the same records (a blank line added at the end,
        // fields padded: the bytes differ, the commitment would not).
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/data/breast-cancer");
        let text = std::fs::read_to_string(data.join("hospital-c.csv")).unwrap();
        let copy = dir.path().join("copy-of-c.csv");
        std::fs::write(&copy, text.replace(',', " , ") + "\n").unwrap();
        let p = variant(dir.path(), |t| {
            t.replace(
                &format!(
                    "{}/breast-cancer/hospital-b.csv",
                    data.parent().unwrap().display()
                ),
                &copy.display().to_string(),
            )
        });
        let e = only_error(&p);
        assert!(
            e.contains("party[2].dataset: ") && e.contains("the same records as `hospital-b`'s"),
            "{e}"
        );
        // One identity for two parties (a public copy of it, even).
        let id = crate::identity::Identity::generate().unwrap();
        let (secret, public) = (dir.path().join("id.json"), dir.path().join("id.pub.json"));
        id.save(&secret).unwrap();
        std::fs::write(&public, id.public().to_file_json()).unwrap();
        let p = variant(dir.path(), |t| {
            t.replace(
                "hospital-a.csv\"\n",
                &format!("hospital-a.csv\"\nkey = \"{}\"\n", secret.display()),
            )
            .replace(
                "hospital-c.csv\"\n",
                &format!("hospital-c.csv\"\nkey = \"{}\"\n", public.display()),
            )
        });
        let e = only_error(&p);
        assert!(
            e.starts_with(&format!(
                "{}:{}: party[2].key: ",
                p.display(),
                line_of(&p, "id.pub.json")
            )) && e.contains("the same identity as `hospital-a`'s key"),
            "{e}"
        );
        // The owner's validation set is a party's training data.
        let p = variant(dir.path(), |t| {
            t.replace(
                "breast-cancer/owner-validation.csv",
                "breast-cancer/hospital-c.csv",
            )
        });
        let e = only_error(&p);
        assert!(
            e.starts_with(&format!(
                "{}:{}: owner.validation: ",
                p.display(),
                line_of(&p, "validation = ")
            )) && e.contains(
                "`hospital-c`'s dataset; the model would be validated on the records it trains on"
            ),
            "{e}"
        );
    }

    #[test]
    fn datasets_are_read_with_the_commitments_line_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let csv_path = d.join("a.csv").display().to_string();
        let scenario_at = |p: &Path| {
            format!(
                "{}:{}: party[0].dataset: {csv_path}",
                p.display(),
                line_of(p, "dataset =")
            )
        };

        // A blank line inside: the check finds it, with the CSV's line.
        let p = small(d, 3, b"alcohol,ash,class\n1,2,0\n1,2,1\n\n2,3,2\n", SIM);
        assert_eq!(
            only_error(&p),
            format!(
                "{}:4: blank line inside the dataset (blank lines are allowed only at the end)",
                scenario_at(&p)
            )
        );
        // At the end it is fine.
        let p = small(d, 3, b"alcohol,ash,class\n1,2,0\n1,2,1\n2,3,2\n\n", SIM);
        let s = Scenario::load(&p).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);

        // A byte-order mark: said as such, not as two look-alike names.
        let p = small(d, 3, b"\xEF\xBB\xBFalcohol,ash,class\n1,2,0\n", SIM);
        let e = only_error(&p);
        assert!(
            e.starts_with(&format!(
                "{}:1: the file starts with a UTF-8 byte-order mark",
                scenario_at(&p)
            )),
            "{e}"
        );
        // An empty or invisible column name is shown quoted and escaped.
        let p = small(d, 3, b"alcohol,ash,,class\n1,2,,0\n", SIM);
        let e = only_error(&p);
        assert!(
            e.ends_with(":1: header column 3 has an empty name (\"\")"),
            "{e}"
        );
        let p = small(d, 3, "alcohol\u{200b},ash,class\n1,2,0\n".as_bytes(), SIM);
        let e = only_error(&p);
        assert!(
            e.ends_with(
                ":1: columns do not match the schema; missing: \"alcohol\"; not in the schema: \"alcohol\\u{200b}\""
            ),
            "{e}"
        );
        // Values: the type in the scenario's word, with its article.
        let p = small(d, 3, b"alcohol,ash,class\n1.5,2,x\n", SIM);
        let e = only_error(&p);
        assert!(e.contains(":2: label \"x\" is not a class in 0..3"), "{e}");
        std::fs::write(
            d.join("int.toml"),
            std::fs::read_to_string(&p).unwrap().replace(
                "label_classes = 3",
                "label_classes = 3\nfeature_type = \"integer\"",
            ),
        )
        .unwrap();
        std::fs::write(d.join("a.csv"), b"alcohol,ash,class\n1.5,2,0\n").unwrap();
        let e = only_error(&d.join("int.toml"));
        assert!(
            e.ends_with(
                ":2: column \"alcohol\": \"1.5\" is not an integer (schema.feature_type = \"integer\")"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_measurement_declared_as_classes_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // 20 rows, each its own "class": a regression target in disguise.
        let mut csv = String::from("alcohol,ash,class\n");
        for i in 0..20 {
            csv.push_str(&format!("1,2,{i}\n"));
        }
        let p = small(d, 20, csv.as_bytes(), SIM);
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("schema.label_classes")
                && e.contains("fewer than 2 records per class")
                && e.contains("regression"),
            "{e}"
        );
        // A continuous label says what it looks like.
        let p = small(d, 2, b"alcohol,ash,class\n1,2,0\n1,2,151.5\n", SIM);
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(e.contains("\"151.5\"") || e.contains("151.5"), "{e}");
        assert!(e.contains("looks like a measurement"), "{e}");
        // 2 classes over 20 rows is fine.
        let mut csv = String::from("alcohol,ash,class\n");
        for i in 0..20 {
            csv.push_str(&format!("1,2,{}\n", i % 2));
        }
        assert!(Scenario::load(&small(d, 2, csv.as_bytes(), SIM)).is_ok());
    }

    #[test]
    fn a_regression_scenario_takes_a_numeric_target_and_its_own_model_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut csv = String::from("alcohol,ash,class\n");
        for i in 0..30 {
            csv.push_str(&format!("1,2,{}.5\n", 100 + i));
        }
        let regression = |d: &Path, extra: &str, kind: &str| {
            let p = small(d, 2, csv.as_bytes(), SIM);
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace(
                    "label_classes = 2\n",
                    &format!("task = \"regression\"\n{extra}"),
                )
                .replace("\"logistic-regression\"", kind);
            std::fs::write(&p, text).unwrap();
            p
        };
        // Continuous labels, 30 distinct values in 30 rows: fine for regression.
        let s = Scenario::load(&regression(d, "", "\"linear-regression\"")).unwrap();
        assert_eq!(s.schema.task, Task::Regression);
        assert_eq!(s.schema.outputs(), 1);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        // An MLP regresses too.
        assert!(Scenario::load(&regression(d, "", "\"mlp\"\nhidden = [8]")).is_ok());
        // Classes make no sense for a number; logistic regression does not regress.
        let e = only_error(&regression(
            d,
            "label_classes = 3\n",
            "\"linear-regression\"",
        ));
        assert!(
            e.contains("schema.label_classes: a regression target has no classes"),
            "{e}"
        );
        let e = only_error(&regression(d, "", "\"logistic-regression\""));
        assert!(
            e.contains("model.kind: logistic-regression does not fit schema.task = \"regression\" (use linear-regression)"),
            "{e}"
        );
        // A classifier cannot be a linear regression, nor standardise a target.
        let p = small(d, 2, b"alcohol,ash,class\n1,2,0\n1,2,1\n", SIM);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replace("\"logistic-regression\"", "\"linear-regression\""),
        )
        .unwrap();
        assert!(only_error(&p).contains("model.kind: linear-regression does not fit"));
        std::fs::write(
            &p,
            text.replace(
                "label_classes = 2\n",
                "label_classes = 2\nstandardize_target = false\n",
            ),
        )
        .unwrap();
        assert!(only_error(&p)
            .contains("schema.standardize_target: applies to task = \"regression\" only"));
        // A target that is not a number names its file and line.
        let p = regression(d, "", "\"linear-regression\"");
        std::fs::write(d.join("a.csv"), b"alcohol,ash,class\n1,2,3.5\n1,2,high\n").unwrap();
        let e = only_error(&p);
        assert!(
            e.contains("a.csv:3: label \"high\": a regression target must be a finite number"),
            "{e}"
        );
    }

    #[test]
    fn a_privacy_table_is_checked_and_its_epsilon_noted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut csv = String::from("alcohol,ash,class\n");
        for i in 0..40 {
            csv.push_str(&format!("{i},2,{}\n", i % 2));
        }
        std::fs::write(d.join("v.csv"), "alcohol,ash,class\n1,2,0\n3,4,1\n").unwrap();
        // The small scenario with the owner's validation set instead of a
        // split (a private session needs it), `[privacy]` appended.
        let with_split = |privacy: &str, policy_extra: &str| {
            let p = small(d, 2, csv.as_bytes(), &format!("{SIM}\n{policy_extra}"));
            let text = std::fs::read_to_string(&p).unwrap() + "\n[privacy]\n" + privacy;
            std::fs::write(&p, text).unwrap();
            p
        };
        let with = |privacy: &str, policy_extra: &str| {
            let p = with_split(privacy, policy_extra);
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.replace("validation_split = 0.2\n", "").replace(
                "[owner]\nname = \"owner\"\n",
                "[owner]\nname = \"owner\"\nvalidation = \"v.csv\"\n",
            );
            std::fs::write(&p, text).unwrap();
            p
        };
        let ok = "target_epsilon = 2.0\ndelta = 1e-5\nmax_grad_norm = 1.0\n";
        let s = Scenario::load(&with(ok, "")).unwrap();
        let note = s.warnings.iter().find(|w| w.field == "privacy").unwrap();
        assert_eq!(note.severity, Severity::Note);
        // 40 party rows all train; batch 8 → q 0.2, 5 epochs × 5 steps.
        assert!(
            note.message
                .starts_with("DP-SGD spends ε = 2.0000 at δ = 0.00001")
                && note.message.contains("q 0.200000, 25 steps"),
            "{}",
            note.message
        );
        // A split of the parties' records would put the preprocessing
        // statistics and the metrics outside ε.
        let e = only_error(&with_split(ok, ""));
        assert!(
            e.contains(
                "owner.validation: a scenario with [privacy] needs the owner's validation set"
            ),
            "{e}"
        );
        let e = only_error(&with(ok, "max_epsilon = 1.0"));
        assert!(
            e.contains("policy.max_epsilon") && e.contains("above max_epsilon 1"),
            "{e}"
        );
        let e = only_error(&with(
            &format!("{ok}noise_source = \"seed\"\n"),
            "max_epsilon = 5.0",
        ));
        assert!(e.contains("needs noise keyed inside the TEE"), "{e}");
        let e = only_error(&with(&format!("noise_multiplier = 1.0\n{ok}"), ""));
        assert!(
            e.contains("privacy.target_epsilon: give noise_multiplier or target_epsilon, not both"),
            "{e}"
        );
        let e = only_error(&with("delta = 1e-5\nmax_grad_norm = 1.0\n", ""));
        assert!(
            e.contains("privacy.noise_multiplier: give noise_multiplier"),
            "{e}"
        );
        let p = with("noise_multiplier = 1.0\ndelta = 2\nmax_grad_norm = 0\n", "");
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("privacy.delta: 2: must be in (0, 1)")
                && e.contains("privacy.max_grad_norm: 0: must be a number > 0"),
            "{e}"
        );
        let p = with(ok, "");
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            text.replace("seed = 1\n", "seed = 1\npublic_metrics = true\n"),
        )
        .unwrap();
        assert!(only_error(&p).contains("training.public_metrics"));
        // A limit without [privacy] cannot hold.
        let p = small(d, 2, csv.as_bytes(), &format!("{SIM}\nmax_epsilon = 5.0"));
        assert!(
            only_error(&p).contains("policy.max_epsilon: set, but the scenario has no [privacy]")
        );
    }

    #[test]
    fn an_unused_class_is_a_warning_and_a_policy_run_cannot_meet_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // 1-based labels with label_classes = 4: class 0 is never used.
        let p = small(d, 4, b"alcohol,ash,class\n1,2,1\n1,2,2\n2,3,3\n", SIM);
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let w = &s.warnings[0];
        assert_eq!(w.severity, Severity::Warning);
        let line = line_of(&p, "label_classes =");
        assert_eq!(
            (w.field.as_str(), w.line),
            ("schema.label_classes", Some(line))
        );
        assert!(
            w.message.starts_with(
                "class 0 of 0..4 appears in no party's dataset (labels found: 1, 2, 3)"
            ) && w.message.contains("labels are 0-based"),
            "{}",
            w.message
        );
        assert!(
            w.display(&p).starts_with(&format!(
                "{}:{line}: warning: schema.label_classes: ",
                p.display()
            )),
            "{}",
            w.display(&p)
        );

        // A hardware-only policy is fine for a networked session: a note for `run`.
        let csv = b"alcohol,ash,class\n1,2,0\n1,2,1\n";
        let p = small(d, 2, csv, "accepted_kinds = [\"sev-snp\", \"tdx\"]");
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let n = &s.warnings[0];
        assert_eq!(n.severity, Severity::Note);
        assert_eq!(n.field, "policy.accepted_kinds");
        assert!(
            n.message.contains("`sealroom run` runs a simulated node")
                && n.message.contains("allow_simulation = true")
                && n.message
                    .contains("A session over the network with a TEE node"),
            "{}",
            n.message
        );
        let p = small(d, 2, csv, "accepted_kinds = [\"tdx\", \"sim\"]");
        let s = Scenario::load(&p).unwrap();
        assert_eq!(s.warnings[0].field, "policy.allow_simulation");
        // Errors come with the warnings and notes found alongside.
        let p = small(d, 4, b"alcohol,ash,class\n1,2,1\n\n1,2,2\n", SIM);
        let e = Scenario::load(&p).unwrap_err();
        assert_eq!(
            e.problems.len(),
            1,
            "an unreadable dataset gives no class warning: {e}"
        );
    }

    #[test]
    fn names_are_quoted_with_invisible_characters_escaped() {
        assert_eq!(quoted(""), "\"\"");
        assert_eq!(quoted("\u{feff}alcohol"), "\"\\u{feff}alcohol\"");
        assert_eq!(quoted("a\tb\"c"), "\"a\\u{9}b\\\"c\"");
        assert_eq!(quoted("wörter"), "\"wörter\"");
    }

    #[test]
    fn scenario_check_reports_the_manifest_caps_with_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = variant(dir.path(), |t| {
            t.replace("epochs = 300", "epochs = 100001")
                .replace("batch_size = 512", "batch_size = 1000000")
                .replace(
                    "kind = \"logistic-regression\"",
                    "kind = \"mlp\"\nhidden = [65536, 65536]",
                )
        });
        let text = std::fs::read_to_string(&p).unwrap();
        let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let e = Scenario::load(&p).unwrap_err().to_string();
        let file = p.display().to_string();
        for want in [
            format!(
                "{file}:{}: training.epochs: 100001 is not in 1..=100000",
                line("epochs =")
            ),
            format!(
                "{file}:{}: training.batch_size: 1000000 is not in 1..=65536",
                line("batch_size =")
            ),
            format!("{file}:{}: model: the network has", line("[model]")),
        ] {
            assert!(e.contains(&want), "`{e}` should contain `{want}`");
        }
        assert!(e.contains("over the limit of 1073741824"), "{e}");

        // Under every cap, the batch × widest layer product still is not.
        let p = variant(dir.path(), |t| {
            t.replace("batch_size = 512", "batch_size = 65536").replace(
                "kind = \"logistic-regression\"",
                "kind = \"mlp\"\nhidden = [65536]",
            )
        });
        let e = Scenario::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("training.batch_size: 65536 records × the widest layer's 65536 values"),
            "{e}"
        );

        // The shipped scenario is within every cap.
        let p = variant(dir.path(), |t| t);
        Scenario::load(&p).unwrap();
    }
}
