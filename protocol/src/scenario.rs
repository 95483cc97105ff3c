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
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::split_fields;
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
    /// Directory of the scenario file (relative paths resolve against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
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
    /// Number of classes; labels are integers `0..label_classes`.
    pub label_classes: u32,
    /// Type of feature values.
    #[serde(default = "default_feature_type")]
    pub feature_type: FeatureType,
    /// Preprocessing applied inside the node.
    #[serde(default = "default_preprocessing")]
    pub preprocessing: Preprocessing,
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
    /// Multinomial logistic regression (one linear layer).
    LogisticRegression,
    /// Multi-layer perceptron with ReLU hidden layers.
    Mlp,
    /// Small convolutional network over `image` = [height, width] inputs.
    Cnn,
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

/// Optimizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam.
    Adam,
    /// Stochastic gradient descent (with optional momentum).
    Sgd,
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

/// One problem in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field (`training.epochs`, `party[2].dataset`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A scenario that cannot be used: every problem found, with file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(l) => write!(
                    f,
                    "{}:{}: {}: {}",
                    self.file.display(),
                    l,
                    p.field,
                    p.message
                )?,
                None => write!(f, "{}: {}: {}", self.file.display(), p.field, p.message)?,
            }
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
            problems: vec![Problem {
                line: None,
                field: field.into(),
                message,
            }],
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
                }],
            }
        })?;
        scenario.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = scenario.check(datasets);
        for p in &mut problems {
            p.line = locator.line_of_path(&p.field);
        }
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        if problems.is_empty() {
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
            out.push(Problem {
                line: None,
                field,
                message,
            })
        };

        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if !name_ok(&self.session.name) {
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
            if f.trim().is_empty() || f.contains(',') || f.contains('"') {
                bad(
                    format!("schema.features[{i}]"),
                    format!("`{f}` is not a usable column name"),
                );
            }
            if !seen.insert(f.as_str()) {
                bad(
                    format!("schema.features[{i}]"),
                    format!("duplicate column `{f}`"),
                );
            }
        }
        if seen.contains(s.label.as_str()) {
            bad(
                "schema.label".into(),
                format!("`{}` is also listed as a feature", s.label),
            );
        }
        if s.label_classes < 2 {
            bad(
                "schema.label_classes".into(),
                "a classifier needs at least 2 classes".into(),
            );
        }

        // Model.
        let m = &self.model;
        match m.kind {
            ModelKind::LogisticRegression => {
                if !m.hidden.is_empty() || !m.channels.is_empty() || !m.image.is_empty() {
                    bad(
                        "model.kind".into(),
                        "logistic-regression takes no `hidden`, `channels` or `image`".into(),
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
        if !name_ok(&self.owner.name) {
            bad(
                "owner.name".into(),
                "must be 1-64 characters of a-z, 0-9 and '-'".into(),
            );
        }
        names.insert(self.owner.name.as_str());
        let columns = s.columns();
        let mut records = 0u64;
        for (i, p) in self.parties.iter().enumerate() {
            if !name_ok(&p.name) {
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
                match dataset_records(&self.resolve(&p.dataset), &columns, s) {
                    Ok(n) => records = records.saturating_add(n),
                    Err(m) => bad(format!("party[{i}].dataset"), m),
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
                if let Err(e) = PublicIdentity::load(&self.resolve(k)) {
                    bad(format!("party[{i}].key"), e.to_string());
                }
            }
        }
        if let Some(v) = self.owner.validation.as_ref().filter(|_| datasets) {
            match dataset_records(&self.resolve(v), &columns, s) {
                Ok(n) => records = records.saturating_add(n),
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
        out
    }
}

/// Checks a dataset against the schema: its header holds exactly the schema's
/// columns, and every value parses as the schema says. Streams the file.
pub fn check_dataset(path: &Path, columns: &[String], schema: &Schema) -> Result<(), String> {
    dataset_records(path, columns, schema).map(|_| ())
}

/// [`check_dataset`], returning the record count; also refuses a file
/// larger than a session's blobs may be ([`limits::DEFAULT_MAX_BLOB_BYTES`]:
/// the blob is the file's ciphertext, slightly larger).
fn dataset_records(path: &Path, columns: &[String], schema: &Schema) -> Result<u64, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = f
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > limits::DEFAULT_MAX_BLOB_BYTES {
        return Err(format!(
            "{}: {size} bytes; a session's blobs are limited to {} bytes (max_blob_bytes)",
            path.display(),
            limits::DEFAULT_MAX_BLOB_BYTES
        ));
    }
    let mut lines = BufReader::new(f).lines();
    let header = match lines.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(format!("{}: {e}", path.display())),
        None => {
            return Err(format!(
                "{}: empty file (a header line is needed)",
                path.display()
            ))
        }
    };
    let header = split_fields(header.trim_end_matches('\r'))
        .map_err(|m| format!("{}:1: {m}", path.display()))?;
    let want: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
    let have: BTreeSet<&str> = header.iter().copied().collect();
    let missing: Vec<&str> = want.difference(&have).copied().collect();
    let extra: Vec<&str> = have.difference(&want).copied().collect();
    if !missing.is_empty() || !extra.is_empty() || header.len() != columns.len() {
        let mut m = format!("{}:1: columns do not match the schema", path.display());
        if !missing.is_empty() {
            m.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            m.push_str(&format!("; not in the schema: {}", extra.join(", ")));
        }
        if missing.is_empty() && extra.is_empty() {
            m.push_str("; a column appears twice");
        }
        return Err(m);
    }
    let label_idx = header.iter().position(|h| *h == schema.label).unwrap_or(0);
    let mut records = 0u64;
    for (n, line) in lines.enumerate() {
        let line_no = n + 2;
        let line = line.map_err(|e| format!("{}:{line_no}: {e}", path.display()))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields =
            split_fields(line).map_err(|m| format!("{}:{line_no}: {m}", path.display()))?;
        if fields.len() != header.len() {
            return Err(format!(
                "{}:{line_no}: {} fields, the header has {}",
                path.display(),
                fields.len(),
                header.len()
            ));
        }
        for (i, v) in fields.iter().enumerate() {
            if i == label_idx {
                match v.parse::<u32>() {
                    Ok(c) if c < schema.label_classes => {}
                    _ => {
                        return Err(format!(
                            "{}:{line_no}: label `{v}` is not a class in 0..{}",
                            path.display(),
                            schema.label_classes
                        ))
                    }
                }
            } else {
                let ok = match schema.feature_type {
                    FeatureType::Float => v.parse::<f64>().is_ok_and(f64::is_finite),
                    FeatureType::Integer => v.parse::<i64>().is_ok(),
                };
                if !ok {
                    return Err(format!(
                        "{}:{line_no}: column `{}`: `{v}` is not a {:?} value",
                        path.display(),
                        header[i],
                        schema.feature_type
                    ));
                }
            }
        }
        records += 1;
    }
    if records == 0 {
        return Err(format!("{}: no records", path.display()));
    }
    Ok(records)
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
