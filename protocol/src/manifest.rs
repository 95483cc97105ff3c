//! The manifest: the agreement every party signs (DESIGN §3), and the signed
//! messages that refer to it — consents, withdrawals and data-key grants.
//!
//! `manifest_hash = LpHasher("sealroom.manifest.v2")(canonical JSON of the
//! header)`: the header is the manifest with its party list replaced by a
//! commitment to it (count, record total, Merkle root; see [`view`]), so a
//! member checks what it consents to from the header and its own entry in
//! O(log n) of the list. The canonical JSON is serde's serialisation (fixed
//! field order, sorted maps, shortest round-trip floats), so every party
//! recomputes the same bytes from the same manifest.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetCommitment;
use crate::hash::LpHasher;
use crate::identity::{hex32, hex64, Identity, IdentityError, PublicIdentity};
use crate::merkle::{input_leaf, MerkleError, StandardTree, INPUT_ENCODING};
use crate::policy::Policy;
use crate::privacy::{self, PrivacySpec, Schedule};
use crate::scenario::{ModelSpec, Scenario, Schema, TrainingSpec};
use crate::seal::{self, SealError, SealedBox};
use crate::stream::DataKey;

/// Format tag of manifests.
pub const MANIFEST_FORMAT: &str = "sealroom-manifest/2";

mod view;
pub use view::{parties_tree, party_digest, ManifestHeader, ManifestView, PartyEntry, PartyList};

/// Hard caps on every manifest number that sizes work or memory
/// (docs/formats.md, "Limits", says why each is what it is).
///
/// [`Manifest::validate`] enforces them, and every holder of a manifest —
/// coordinator, members, node — runs it when it loads one, so a hostile
/// manifest is refused before anything it sizes is allocated or started.
/// Scenario checks report the same caps, naming the scenario field.
pub mod limits {
    use crate::scenario::{ModelKind, ModelSpec, Schema, TrainingSpec};

    /// Largest `max_blob_bytes` a manifest may set: 64 GiB per blob.
    pub const MAX_BLOB_BYTES: u64 = 64 << 30;
    /// `max_blob_bytes` of manifests built from scenarios: 4 GiB per blob.
    pub const DEFAULT_MAX_BLOB_BYTES: u64 = 4 << 30;
    /// Data parties in one session.
    pub const MAX_PARTIES: usize = 10_000;
    /// Records over all inputs of a session (parties and the owner's
    /// validation set together); the trainer indexes pooled records with `u32`.
    pub const MAX_RECORDS: u64 = 1 << 31;
    /// `training.epochs`.
    pub const MAX_EPOCHS: u32 = 100_000;
    /// `training.batch_size`.
    pub const MAX_BATCH_SIZE: u32 = 65_536;
    /// Feature columns (`schema.features`): a 256x256 image.
    pub const MAX_FEATURES: usize = 65_536;
    /// `schema.label_classes`.
    pub const MAX_CLASSES: u32 = 65_536;
    /// Hidden layers (`model.hidden` entries).
    pub const MAX_HIDDEN_LAYERS: usize = 64;
    /// Width of one hidden layer.
    pub const MAX_LAYER_WIDTH: u32 = 65_536;
    /// Convolution layers (`model.channels` entries).
    pub const MAX_CONV_LAYERS: usize = 16;
    /// Channels of one convolution layer.
    pub const MAX_CHANNELS: u32 = 1_024;
    /// Trainable parameters of the network (4 GiB of f32 weights).
    pub const MAX_PARAMETERS: u64 = 1 << 30;
    /// `training.batch_size` × the widest activation of one record (8 GiB of
    /// f32 for one layer's activations of one batch).
    pub const MAX_BATCH_ACTIVATIONS: u64 = 1 << 31;
    /// Entries of `engine.trainer_measurements`.
    pub const MAX_TRAINER_MEASUREMENTS: usize = 256;

    /// `[height, width]` when the model is a CNN with a usable image shape.
    fn image(model: &ModelSpec) -> Option<(u64, u64)> {
        match (model.kind, model.image.as_slice()) {
            (ModelKind::Cnn, [h, w]) if !model.channels.is_empty() => {
                Some((u64::from(*h), u64::from(*w)))
            }
            _ => None,
        }
    }

    /// Trainable parameters of the network the trainer builds from this spec
    /// (3x3 convolutions with bias, then dense layers with bias), saturating.
    pub fn parameter_count(schema: &Schema, model: &ModelSpec) -> u64 {
        let mut total = 0u64;
        let mut c_in = 1u64;
        if image(model).is_some() {
            for &c in &model.channels {
                let c = u64::from(c);
                total = total.saturating_add(c.saturating_mul(c_in).saturating_mul(9) + c);
                c_in = c;
            }
        }
        let mut width = match image(model) {
            Some((h, w)) => c_in.saturating_mul(h).saturating_mul(w),
            None => schema.features.len() as u64,
        };
        let outs = model
            .hidden
            .iter()
            .map(|h| u64::from(*h))
            .chain(std::iter::once(u64::from(schema.outputs())));
        for out in outs {
            total = total.saturating_add(width.saturating_mul(out).saturating_add(out));
            width = out;
        }
        total
    }

    /// The widest activation of one record: its features, each convolution's
    /// output (channels × height × width), each dense layer's output.
    pub fn widest_activation(schema: &Schema, model: &ModelSpec) -> u64 {
        let mut widest = schema.features.len() as u64;
        if let Some((h, w)) = image(model) {
            for &c in &model.channels {
                widest = widest.max(u64::from(c).saturating_mul(h).saturating_mul(w));
            }
        }
        for &o in model.hidden.iter().chain([&schema.outputs()]) {
            widest = widest.max(u64::from(o));
        }
        widest
    }

    /// Every cap the schema, model and training spec exceed, as
    /// `(field, message)`; also the lower bounds that keep training defined
    /// (at least one epoch, a non-empty batch, non-empty layers).
    pub fn spec_violations(
        schema: &Schema,
        model: &ModelSpec,
        training: &TrainingSpec,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |field: &str, message: String| out.push((field.to_string(), message));
        if schema.features.len() > MAX_FEATURES {
            bad(
                "schema.features",
                format!(
                    "{} feature columns exceed the limit of {MAX_FEATURES}",
                    schema.features.len()
                ),
            );
        }
        if schema.label_classes > MAX_CLASSES {
            bad(
                "schema.label_classes",
                format!(
                    "{} classes exceed the limit of {MAX_CLASSES}",
                    schema.label_classes
                ),
            );
        }
        if model.hidden.len() > MAX_HIDDEN_LAYERS {
            bad(
                "model.hidden",
                format!(
                    "{} hidden layers exceed the limit of {MAX_HIDDEN_LAYERS}",
                    model.hidden.len()
                ),
            );
        }
        for (i, h) in model.hidden.iter().enumerate() {
            if *h == 0 || *h > MAX_LAYER_WIDTH {
                bad(
                    &format!("model.hidden[{i}]"),
                    format!("layer size {h} is not in 1..={MAX_LAYER_WIDTH}"),
                );
            }
        }
        if model.channels.len() > MAX_CONV_LAYERS {
            bad(
                "model.channels",
                format!(
                    "{} convolution layers exceed the limit of {MAX_CONV_LAYERS}",
                    model.channels.len()
                ),
            );
        }
        for (i, c) in model.channels.iter().enumerate() {
            if *c == 0 || *c > MAX_CHANNELS {
                bad(
                    &format!("model.channels[{i}]"),
                    format!("channel count {c} is not in 1..={MAX_CHANNELS}"),
                );
            }
        }
        for (i, d) in model.image.iter().enumerate() {
            if *d == 0 || *d as usize > MAX_FEATURES {
                bad(
                    &format!("model.image[{i}]"),
                    format!("image side {d} is not in 1..={MAX_FEATURES}"),
                );
            }
        }
        let params = parameter_count(schema, model);
        if params > MAX_PARAMETERS {
            bad(
                "model",
                format!("the network has {params} parameters, over the limit of {MAX_PARAMETERS}"),
            );
        }
        if training.epochs == 0 || training.epochs > MAX_EPOCHS {
            bad(
                "training.epochs",
                format!("{} is not in 1..={MAX_EPOCHS}", training.epochs),
            );
        }
        if training.batch_size == 0 || training.batch_size > MAX_BATCH_SIZE {
            bad(
                "training.batch_size",
                format!("{} is not in 1..={MAX_BATCH_SIZE}", training.batch_size),
            );
        } else {
            let act =
                u64::from(training.batch_size).saturating_mul(widest_activation(schema, model));
            if act > MAX_BATCH_ACTIVATIONS {
                bad(
                    "training.batch_size",
                    format!(
                        "{} records × the widest layer's {} values = {act} activations, over the limit of {MAX_BATCH_ACTIVATIONS}",
                        training.batch_size,
                        widest_activation(schema, model)
                    ),
                );
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::dataset::DatasetCommitment;
        use crate::identity::Identity;
        use crate::manifest::{engine_spec_hash, Manifest};
        use crate::scenario::Scenario;
        use alloy_primitives::B256;

        fn commitment(n: u8) -> DatasetCommitment {
            DatasetCommitment {
                merkle_root: B256::repeat_byte(n),
                record_count: 10,
                schema_hash: B256::repeat_byte(9),
                ciphertext_sha256: B256::repeat_byte(n + 1),
                ciphertext_len: 100,
            }
        }

        fn manifest() -> Manifest {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios/breast-cancer-3-hospitals.toml");
            let s = Scenario::load(&path).unwrap();
            let parties = (0..3)
                .map(|i| (Identity::generate().unwrap().public(), commitment(i * 2)))
                .collect();
            Manifest::from_scenario(
                &s,
                B256::repeat_byte(7),
                1,
                parties,
                Identity::generate().unwrap().public(),
                Some(commitment(40)),
            )
            .unwrap()
        }

        /// Applies `edit` (keeping the engine spec hash consistent, so only
        /// the caps can refuse it) and returns the validation error, if any.
        fn check(edit: impl Fn(&mut Manifest)) -> Option<String> {
            let mut m = manifest();
            edit(&mut m);
            m.engine.spec_hash = engine_spec_hash(&m.schema, &m.model, &m.training);
            m.validate().err().map(|e| e.to_string())
        }

        fn refused(field: &str, edit: impl Fn(&mut Manifest)) -> String {
            let e = check(edit).unwrap_or_else(|| panic!("`{field}` over its cap must be refused"));
            assert!(
                e.starts_with(&format!("manifest field `{field}`: ")),
                "`{e}` should name `{field}`"
            );
            e
        }

        #[test]
        fn every_cap_is_enforced_naming_its_field() {
            assert_eq!(check(|_| {}), None);
            refused("max_blob_bytes", |m| m.max_blob_bytes = MAX_BLOB_BYTES + 1);
            refused("max_blob_bytes", |m| m.max_blob_bytes = u64::MAX);
            refused("parties[1].commitment.ciphertext_len", |m| {
                m.parties[1].commitment.ciphertext_len = m.max_blob_bytes + 1
            });
            refused("owner.validation.ciphertext_len", |m| {
                if let Some(v) = &mut m.owner.validation {
                    v.ciphertext_len = u64::MAX;
                }
            });
            refused("parties[0].commitment.record_count", |m| {
                m.parties[0].commitment.record_count = MAX_RECORDS + 1
            });
            // Each input under the cap, their sum over it.
            refused("parties[2].commitment.record_count", |m| {
                for p in &mut m.parties {
                    p.commitment.record_count = MAX_RECORDS / 2;
                }
            });
            refused("owner.validation.record_count", |m| {
                for p in &mut m.parties {
                    p.commitment.record_count = MAX_RECORDS / 3;
                }
                if let Some(v) = &mut m.owner.validation {
                    v.record_count = u64::MAX;
                }
            });
            let e = refused("parties", |m| {
                let p = m.parties[0].clone();
                m.parties = vec![p; MAX_PARTIES + 1];
            });
            assert!(e.contains("limit of 10000"), "{e}");
            refused("engine.trainer_measurements", |m| {
                m.engine.trainer_measurements =
                    vec![hex::encode([1u8; 32]); MAX_TRAINER_MEASUREMENTS + 1]
            });
            refused("training.epochs", |m| m.training.epochs = MAX_EPOCHS + 1);
            refused("training.epochs", |m| m.training.epochs = 0);
            refused("training.batch_size", |m| {
                m.training.batch_size = MAX_BATCH_SIZE + 1
            });
            refused("training.batch_size", |m| m.training.batch_size = 0);
            refused("schema.features", |m| {
                m.schema.features = (0..=MAX_FEATURES).map(|i| format!("f{i}")).collect()
            });
            refused("schema.label_classes", |m| {
                m.schema.label_classes = MAX_CLASSES + 1
            });
            refused("model.hidden", |m| {
                m.model.kind = ModelKind::Mlp;
                m.model.hidden = vec![4; MAX_HIDDEN_LAYERS + 1];
            });
            refused("model.hidden[1]", |m| {
                m.model.kind = ModelKind::Mlp;
                m.model.hidden = vec![4, MAX_LAYER_WIDTH + 1];
            });
            refused("model.channels", |m| {
                m.model.channels = vec![1; MAX_CONV_LAYERS + 1];
            });
            refused("model.channels[0]", |m| {
                m.model.channels = vec![MAX_CHANNELS + 1];
            });
            refused("model.image[0]", |m| m.model.image = vec![u32::MAX, 1]);
            // Each layer under the width cap, the network over the parameter cap.
            refused("model", |m| {
                m.model.kind = ModelKind::Mlp;
                m.model.hidden = vec![MAX_LAYER_WIDTH, MAX_LAYER_WIDTH];
            });
            // Batch and width under their caps, the product over it.
            refused("training.batch_size", |m| {
                m.model.kind = ModelKind::Mlp;
                m.model.hidden = vec![MAX_LAYER_WIDTH];
                m.training.batch_size = MAX_BATCH_SIZE;
            });
        }

        #[test]
        fn the_same_records_twice_are_refused_naming_the_second_input() {
            let e = check(|m| {
                m.parties[2].commitment.merkle_root = m.parties[0].commitment.merkle_root
            })
            .expect("a party committing another's records must be refused");
            let (first, third) = (&manifest().parties[0].name, &manifest().parties[2].name);
            assert!(
                e.starts_with("manifest field `parties[2].commitment.merkle_root`: ")
                    && e.contains(&format!(
                        "`{third}` commits to the same records as `{first}`"
                    )),
                "{e}"
            );
            let e = check(|m| {
                let root = m.parties[1].commitment.merkle_root;
                if let Some(v) = &mut m.owner.validation {
                    v.merkle_root = root;
                }
            })
            .expect("a validation set equal to a party's data must be refused");
            assert!(
                e.starts_with("manifest field `owner.validation.merkle_root`: ")
                    && e.contains(&format!("`{}`'s training data", manifest().parties[1].name)),
                "{e}"
            );
            // Equal in everything but the root: accepted.
            assert_eq!(
                check(|m| {
                    m.parties[1].commitment.record_count = m.parties[0].commitment.record_count;
                    m.parties[1].commitment.ciphertext_len = m.parties[0].commitment.ciphertext_len;
                }),
                None
            );
        }

        #[test]
        fn names_outside_the_scenario_rules_and_the_owner_as_a_party_are_refused() {
            for name in ["hospital-a/validation", "", "Hospital", "a b"] {
                let e = check(|m| m.parties[1].name = name.to_string())
                    .unwrap_or_else(|| panic!("party name {name:?} must be refused"));
                assert!(e.starts_with("manifest field `parties[1].name`: "), "{e}");
            }
            let e = check(|m| m.owner.name = "owner/x".into()).expect("owner name with /");
            assert!(e.starts_with("manifest field `owner.name`: "), "{e}");
            let e = check(|m| m.parties[2].identity = m.owner.identity)
                .expect("a party with the owner's key must be refused");
            assert!(
                e.starts_with("manifest field `parties[2].identity`: ")
                    && e.contains("the owner's key"),
                "{e}"
            );
        }

        #[test]
        fn values_at_their_caps_pass() {
            assert_eq!(
                check(|m| {
                    m.max_blob_bytes = MAX_BLOB_BYTES;
                    m.parties[0].commitment.ciphertext_len = MAX_BLOB_BYTES;
                    m.parties[0].commitment.record_count = MAX_RECORDS - 30;
                    m.training.epochs = MAX_EPOCHS;
                    m.training.batch_size = MAX_BATCH_SIZE;
                    m.model.kind = ModelKind::Mlp;
                    m.model.hidden = vec![64; MAX_HIDDEN_LAYERS];
                }),
                None
            );
        }

        #[test]
        fn parameter_count_matches_the_trainer_architecture() {
            let m = manifest();
            // Logistic regression over 30 features, 2 classes.
            assert_eq!(parameter_count(&m.schema, &m.model), 30 * 2 + 2);
            let mut model = m.model.clone();
            model.kind = ModelKind::Mlp;
            model.hidden = vec![16, 8];
            assert_eq!(
                parameter_count(&m.schema, &model),
                (30 * 16 + 16) + (16 * 8 + 8) + (8 * 2 + 2)
            );
            // CNN over a 5x6 image: two 3x3 convolutions, then dense layers.
            model.kind = ModelKind::Cnn;
            model.channels = vec![4, 8];
            model.image = vec![5, 6];
            model.hidden = vec![10];
            assert_eq!(
                parameter_count(&m.schema, &model),
                (4 * 9 + 4) + (8 * 4 * 9 + 8) + (8 * 30 * 10 + 10) + (10 * 2 + 2)
            );
            assert_eq!(widest_activation(&m.schema, &model), 8 * 30);
        }
    }
}

/// A data party in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestParty {
    /// Unique name.
    pub name: String,
    /// Public keys.
    pub identity: PublicIdentity,
    /// The commitment the node must find when it opens this party's blob.
    pub commitment: DatasetCommitment,
}

/// The model owner in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestOwner {
    /// Name.
    pub name: String,
    /// Public keys; the model is sealed to `identity.x25519`.
    pub identity: PublicIdentity,
    /// The owner's validation set commitment, when the owner holds one.
    pub validation: Option<DatasetCommitment>,
}

/// The engine: which trainer builds may run, on which spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// Allowed trainer measurements (hex SHA-256).
    pub trainer_measurements: Vec<String>,
    /// Hash of schema, model and training spec (see [`engine_spec_hash`]).
    pub spec_hash: B256,
}

/// Where the reports go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTarget {
    /// `embedded`, `anvil`, `opbnb-testnet`, `opbnb-mainnet` or a URL.
    pub target: String,
    /// Registry address when fixed in advance.
    pub contract: Option<String>,
}

/// The session agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Random 32 bytes.
    pub session_id: B256,
    /// Session name.
    pub name: String,
    /// Shown to parties before consent.
    pub description: String,
    /// Unix time of creation.
    pub created_at: u64,
    /// Data parties.
    pub parties: Vec<ManifestParty>,
    /// Model owner.
    pub owner: ManifestOwner,
    /// Data schema.
    pub schema: Schema,
    /// Model.
    pub model: ModelSpec,
    /// Training.
    pub training: TrainingSpec,
    /// Engine allowlist and spec hash.
    pub engine: Engine,
    /// Attestation policy.
    pub policy: Policy,
    /// Chain target.
    pub chain: ChainTarget,
    /// Largest accepted blob, bytes.
    pub max_blob_bytes: u64,
    /// Differential privacy of the training (`[privacy]`): absent, the
    /// training is not private (and the manifest hashes as before the
    /// field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySpec>,
}

/// Why a manifest or signed message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A structural problem; `field` names it.
    #[error("manifest field `{field}`: {detail}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A signature failed.
    #[error("{what}: {source}")]
    Signature {
        /// Which message.
        what: String,
        /// The cause.
        source: IdentityError,
    },
    /// A grant does not open.
    #[error("grant for `{input}`: {source}")]
    Grant {
        /// The input.
        input: String,
        /// The cause.
        source: SealError,
    },
    /// Tree construction failed.
    #[error("inputs tree: {0}")]
    Merkle(#[from] MerkleError),
}

/// Hash of the engine spec (schema, model, training) of a non-private session.
pub fn engine_spec_hash(schema: &Schema, model: &ModelSpec, training: &TrainingSpec) -> B256 {
    engine_spec_hash_with(schema, model, training, None)
}

/// Hash of the engine spec: schema, model, training and, when the training
/// is private, the committed `[privacy]` spec as a fourth part (absent for
/// non-private sessions, whose hashes are unchanged).
pub fn engine_spec_hash_with(
    schema: &Schema,
    model: &ModelSpec,
    training: &TrainingSpec,
    privacy: Option<&PrivacySpec>,
) -> B256 {
    let mut h = LpHasher::new("sealroom.engine-spec.v1")
        .part(json_bytes(schema))
        .part(json_bytes(model))
        .part(json_bytes(training));
    if let Some(p) = privacy {
        h.push(json_bytes(p));
    }
    B256::from(h.finish())
}

/// Canonical JSON of a plain data struct (serialising those cannot fail).
fn json_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Kinds of session inputs (first field of an inputs-tree leaf).
pub mod input_kind {
    /// The training engine (digest: engine spec hash).
    pub const ENGINE: u8 = 1;
    /// A party's dataset (digest: commitment digest).
    pub const DATASET: u8 = 2;
    /// The owner's validation set (digest: commitment digest).
    pub const VALIDATION: u8 = 3;
    /// The configuration (digest: policy hash).
    pub const CONFIG: u8 = 4;
}

/// The DP-SGD schedule of a session's training, from the committed record
/// count of the parties: every party record trains when the owner holds the
/// validation set, else the seeded split takes its rows first (the
/// trainer's rule, [`privacy::split_validation_rows`]).
pub fn training_schedule(
    party_records: u64,
    owner_validates: bool,
    training: &TrainingSpec,
) -> Option<Schedule> {
    let train = if owner_validates {
        party_records
    } else {
        let fraction = training.validation_split?;
        party_records - privacy::split_validation_rows(party_records, fraction)
    };
    privacy::schedule(train, training.batch_size, training.epochs)
}

/// Name of the owner's validation input in grants and in the inputs tree.
pub fn validation_input_name(owner: &str) -> String {
    format!("{owner}/validation")
}

/// ε spent by the DP-SGD spec `privacy` over `party_records` (see
/// [`Manifest::privacy_spent`]).
fn privacy_spent_of(
    privacy: Option<&PrivacySpec>,
    party_records: u64,
    owner_validates: bool,
    training: &TrainingSpec,
) -> Result<crate::dp::Spent, crate::dp::DpError> {
    let p = privacy.ok_or(crate::dp::DpError {
        field: "privacy",
        message: "the manifest has no [privacy]: the training is not differentially private".into(),
    })?;
    let schedule =
        training_schedule(party_records, owner_validates, training).ok_or(crate::dp::DpError {
            field: "privacy",
            message: "no training records to sample from".into(),
        })?;
    p.spent(&schedule)
}

/// [`Manifest::privacy_within`] over the spec, records and training.
fn privacy_within_of(
    privacy: Option<&PrivacySpec>,
    party_records: u64,
    owner_validates: bool,
    training: &TrainingSpec,
    max: f64,
) -> Result<crate::dp::Spent, String> {
    let spent =
        privacy_spent_of(privacy, party_records, owner_validates, training).map_err(|e| {
            format!(
                "{}; max_epsilon {max} needs differentially private training",
                e.message
            )
        })?;
    if privacy.is_some_and(|p| p.noise_source == privacy::NoiseSource::Seed) {
        return Err(format!(
            "noise_source = \"seed\": the noise derives from the committed seed, so ε = {:.4} does not hold against anyone who knows it; max_epsilon {max} needs noise keyed inside the TEE",
            spent.epsilon
        ));
    }
    if spent.epsilon > max {
        return Err(format!(
            "the training spends ε = {:.4}, above max_epsilon {max}",
            spent.epsilon
        ));
    }
    Ok(spent)
}

impl Manifest {
    /// The DP-SGD schedule this manifest's training runs (see
    /// [`training_schedule`]); `None` when it has no training records.
    pub fn privacy_schedule(&self) -> Option<Schedule> {
        training_schedule(
            self.party_records(),
            self.owner.validation.is_some(),
            &self.training,
        )
    }

    /// Records over every party's dataset.
    fn party_records(&self) -> u64 {
        self.parties
            .iter()
            .map(|p| p.commitment.record_count)
            .fold(0u64, u64::saturating_add)
    }

    /// ε the training spends, recomputed from the committed σ, δ and the
    /// schedule: what the verifier checks a `completed` report's claim
    /// against. An error when the training is not private.
    pub fn privacy_spent(&self) -> Result<crate::dp::Spent, crate::dp::DpError> {
        privacy_spent_of(
            self.privacy.as_ref(),
            self.party_records(),
            self.owner.validation.is_some(),
            &self.training,
        )
    }

    /// Whether the training's privacy holds within `max_epsilon` against
    /// everyone: ε recomputed from the committed DP-SGD parameters at most
    /// `max`, with the noise keyed inside the TEE. Seed-derived noise
    /// (`noise_source = "seed"`) is known to everyone who knows the seed,
    /// so it meets no limit; neither does a manifest without `[privacy]`.
    /// The error says which, in a sentence.
    pub fn privacy_within(&self, max: f64) -> Result<crate::dp::Spent, String> {
        privacy_within_of(
            self.privacy.as_ref(),
            self.party_records(),
            self.owner.validation.is_some(),
            &self.training,
            max,
        )
    }

    /// Builds a manifest from a validated scenario, the parties' public
    /// identities and commitments (in scenario order), the owner's identity
    /// and validation commitment.
    pub fn from_scenario(
        scenario: &Scenario,
        session_id: B256,
        created_at: u64,
        parties: Vec<(PublicIdentity, DatasetCommitment)>,
        owner: PublicIdentity,
        owner_validation: Option<DatasetCommitment>,
    ) -> Result<Self, ManifestError> {
        if parties.len() != scenario.parties.len() {
            return Err(ManifestError::Invalid {
                field: "parties".into(),
                detail: "one identity and commitment per scenario party is needed".into(),
            });
        }
        let parties = scenario
            .parties
            .iter()
            .zip(parties)
            .map(|(p, (identity, commitment))| ManifestParty {
                name: p.name.clone(),
                identity,
                commitment,
            })
            .collect::<Vec<ManifestParty>>();
        // σ is solved for a target ε here, from the committed record counts,
        // and the manifest commits to it.
        let privacy = match &scenario.privacy {
            None => None,
            Some(p) => {
                let records = parties
                    .iter()
                    .map(|p| p.commitment.record_count)
                    .fold(0u64, u64::saturating_add);
                let schedule =
                    training_schedule(records, owner_validation.is_some(), &scenario.training)
                        .ok_or_else(|| ManifestError::Invalid {
                            field: "privacy".into(),
                            detail: "no training records to sample from".into(),
                        })?;
                Some(p.committed(&schedule).map_err(|e| ManifestError::Invalid {
                    field: format!("privacy.{}", e.field),
                    detail: e.message,
                })?)
            }
        };
        let m = Manifest {
            format: MANIFEST_FORMAT.into(),
            session_id,
            name: scenario.session.name.clone(),
            description: scenario.session.description.clone(),
            created_at,
            parties,
            owner: ManifestOwner {
                name: scenario.owner.name.clone(),
                identity: owner,
                validation: owner_validation,
            },
            schema: scenario.schema.clone(),
            model: scenario.model.clone(),
            training: scenario.training.clone(),
            engine: Engine {
                trainer_measurements: scenario.engine.trainer_measurements.clone(),
                spec_hash: engine_spec_hash_with(
                    &scenario.schema,
                    &scenario.model,
                    &scenario.training,
                    privacy.as_ref(),
                ),
            },
            policy: scenario.policy.clone(),
            chain: ChainTarget {
                target: scenario.chain.target.clone(),
                contract: scenario.chain.contract.clone(),
            },
            max_blob_bytes: limits::DEFAULT_MAX_BLOB_BYTES,
            privacy,
        };
        m.validate()?;
        Ok(m)
    }

    /// Structural checks every holder of the whole manifest runs: the
    /// party list (its size first, then each entry's blob and records, unique
    /// names and keys), then the header's checks
    /// ([`ManifestHeader::validate`]) on the header the list commits to.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.validate_and_hash().map(|_| ())
    }

    /// [`Manifest::validate`], returning the manifest hash it computed on
    /// the way (the party tree is built once).
    pub fn validate_and_hash(&self) -> Result<B256, ManifestError> {
        self.validated_header().map(|h| h.hash())
    }

    /// [`Manifest::validate`], returning the header it checked (the party
    /// tree is built once; `manifest_hash` is its [`ManifestHeader::hash`]).
    pub fn validated_header(&self) -> Result<ManifestHeader, ManifestError> {
        let bad = |field: &str, detail: &str| ManifestError::Invalid {
            field: field.into(),
            detail: detail.into(),
        };
        if self.format != MANIFEST_FORMAT {
            return Err(bad("format", "unknown manifest format"));
        }
        // Caps first: nothing below may size work from an unchecked number.
        if self.max_blob_bytes > limits::MAX_BLOB_BYTES {
            return Err(bad(
                "max_blob_bytes",
                &format!(
                    "{} exceeds the limit of {} bytes",
                    self.max_blob_bytes,
                    limits::MAX_BLOB_BYTES
                ),
            ));
        }
        if self.parties.is_empty() {
            return Err(bad("parties", "no parties"));
        }
        if self.parties.len() > limits::MAX_PARTIES {
            return Err(bad(
                "parties",
                &format!(
                    "{} parties exceed the limit of {}",
                    self.parties.len(),
                    limits::MAX_PARTIES
                ),
            ));
        }
        // Every party's blob fits max_blob_bytes; records fit MAX_RECORDS
        // (the header checks the owner's validation set on top).
        let mut records = 0u64;
        for (i, p) in self.parties.iter().enumerate() {
            let c = &p.commitment;
            if c.ciphertext_len > self.max_blob_bytes {
                return Err(bad(
                    &format!("parties[{i}].commitment.ciphertext_len"),
                    &format!(
                        "`{}`'s blob of {} bytes exceeds max_blob_bytes ({})",
                        p.name, c.ciphertext_len, self.max_blob_bytes
                    ),
                ));
            }
            records = records.saturating_add(c.record_count);
            if c.record_count > limits::MAX_RECORDS || records > limits::MAX_RECORDS {
                return Err(bad(
                    &format!("parties[{i}].commitment.record_count"),
                    &format!(
                        "records over all inputs exceed the limit of {}",
                        limits::MAX_RECORDS
                    ),
                ));
            }
        }
        // Names are the scenario's (lower-case letters, digits, `-`): an
        // input is named `NAME` or `OWNER/validation`, so a `/` in a name
        // could pass one input off as another. The owner's identity is not a
        // party's: a member is one of the two, and its view, records and
        // grants are kept under one role.
        if !crate::scenario::is_valid_name(&self.owner.name) {
            return Err(bad(
                "owner.name",
                &format!(
                    "`{}`: 1 to 64 lower-case letters, digits or `-`",
                    self.owner.name
                ),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        names.insert(self.owner.name.as_str());
        for (i, p) in self.parties.iter().enumerate() {
            if !crate::scenario::is_valid_name(&p.name) {
                return Err(bad(
                    &format!("parties[{i}].name"),
                    &format!("`{}`: 1 to 64 lower-case letters, digits or `-`", p.name),
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(bad("parties", &format!("duplicate name `{}`", p.name)));
            }
            if p.identity.ed25519 == self.owner.identity.ed25519 {
                return Err(bad(
                    &format!("parties[{i}].identity"),
                    &format!(
                        "`{}` has the owner's key: the owner brings data as its validation set, or under an identity of its own",
                        p.name
                    ),
                ));
            }
            if !keys.insert(p.identity.ed25519) {
                return Err(bad(
                    "parties",
                    &format!("`{}` reuses another party's key", p.name),
                ));
            }
        }
        // The same records committed twice: pooled, each would be trained
        // on twice (and counted once by the privacy accountant, which
        // assumes every person's record is in the pool once); as the
        // validation set, the model would be scored on its training records.
        // Roots are over the ordered record digests, so equal roots are
        // equal record sequences.
        let mut roots = std::collections::BTreeMap::new();
        for (i, p) in self.parties.iter().enumerate() {
            if let Some(first) = roots.insert(p.commitment.merkle_root, p.name.as_str()) {
                return Err(bad(
                    &format!("parties[{i}].commitment.merkle_root"),
                    &format!(
                        "`{}` commits to the same records as `{first}`; pooled, every record would be trained on twice",
                        p.name
                    ),
                ));
            }
        }
        if let Some(v) = &self.owner.validation {
            if let Some(party) = roots.get(&v.merkle_root) {
                return Err(bad(
                    "owner.validation.merkle_root",
                    &format!(
                        "the validation set is `{party}`'s training data; the model would be validated on the records it trains on"
                    ),
                ));
            }
        }
        let header = self.header();
        header.validate()?;
        Ok(header)
    }

    /// The canonical bytes of the whole manifest (as stored and served to
    /// the node; `manifest_hash` hashes the header's, see [`Manifest::hash`]).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        json_bytes(self)
    }

    /// `manifest_hash`: the hash of [`Manifest::header`].
    pub fn hash(&self) -> B256 {
        self.header().hash()
    }

    /// Hash of the policy alone (an input of the session).
    pub fn policy_hash(&self) -> B256 {
        B256::from(
            LpHasher::new("sealroom.policy.v1")
                .part(json_bytes(&self.policy))
                .finish(),
        )
    }

    /// The party named `name`.
    pub fn party(&self, name: &str) -> Option<&ManifestParty> {
        self.parties.iter().find(|p| p.name == name)
    }

    /// The member (party or owner) with this ed25519 key, by name.
    pub fn member_name(&self, ed25519: &[u8; 32]) -> Option<&str> {
        if self.owner.identity.ed25519 == *ed25519 {
            return Some(&self.owner.name);
        }
        self.parties
            .iter()
            .find(|p| p.identity.ed25519 == *ed25519)
            .map(|p| p.name.as_str())
    }

    /// How many inputs must be granted: every party's dataset, and the
    /// owner's validation set when there is one (without listing them).
    pub fn input_count(&self) -> u64 {
        self.parties.len() as u64 + u64::from(self.owner.validation.is_some())
    }

    /// Every input whose key must be granted: (input name, granting member's key, commitment).
    pub fn grantable_inputs(&self) -> Vec<(String, PublicIdentity, DatasetCommitment)> {
        let mut v: Vec<_> = self
            .parties
            .iter()
            .map(|p| (p.name.clone(), p.identity, p.commitment.clone()))
            .collect();
        if let Some(c) = &self.owner.validation {
            v.push((
                validation_input_name(&self.owner.name),
                self.owner.identity,
                c.clone(),
            ));
        }
        v
    }

    /// The session inputs tree: OpenZeppelin standard tree over
    /// `(uint8 kind, string name, bytes32 digest)` for the engine, every
    /// dataset, the owner's validation set and the configuration.
    pub fn inputs_tree(&self) -> Result<StandardTree, ManifestError> {
        let mut leaves = vec![input_leaf(
            input_kind::ENGINE,
            "engine",
            &self.engine.spec_hash.0,
        )];
        for p in &self.parties {
            leaves.push(input_leaf(
                input_kind::DATASET,
                &p.name,
                &p.commitment.digest(),
            ));
        }
        if let Some(c) = &self.owner.validation {
            leaves.push(input_leaf(
                input_kind::VALIDATION,
                &validation_input_name(&self.owner.name),
                &c.digest(),
            ));
        }
        leaves.push(input_leaf(
            input_kind::CONFIG,
            "policy",
            &self.policy_hash().0,
        ));
        let enc = INPUT_ENCODING.iter().map(|s| s.to_string()).collect();
        Ok(StandardTree::from_leaves(enc, leaves)?)
    }
}

/// What a consent or withdrawal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    /// I agree to this manifest.
    Consent,
    /// I withdraw my consent (before keys are granted).
    Withdraw,
}

/// A member's signed consent to (or withdrawal from) a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Consent or withdrawal.
    pub action: ConsentAction,
    /// The member's ed25519 key.
    #[serde(with = "hex32")]
    pub member: [u8; 32],
    /// The manifest hash signed.
    pub manifest_hash: B256,
    /// Signature over `"sealroom.consent.v1" || action || manifest_hash`.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

fn consent_message(action: ConsentAction, manifest_hash: &B256) -> Vec<u8> {
    let mut m = b"sealroom.consent.v1".to_vec();
    m.push(match action {
        ConsentAction::Consent => 1,
        ConsentAction::Withdraw => 2,
    });
    m.extend_from_slice(manifest_hash.as_slice());
    m
}

impl Consent {
    /// Signs a consent or withdrawal.
    pub fn sign(member: &Identity, action: ConsentAction, manifest_hash: B256) -> Self {
        Self {
            action,
            member: member.public().ed25519,
            manifest_hash,
            signature: member.sign(&consent_message(action, &manifest_hash)),
        }
    }

    /// Verifies it is a signature by `expected` over `manifest_hash`.
    pub fn verify(&self, expected: &[u8; 32], manifest_hash: &B256) -> Result<(), ManifestError> {
        let who = hex::encode(&expected[..8]);
        if self.member != *expected {
            return Err(ManifestError::Signature {
                what: format!("consent from {who}"),
                source: IdentityError::BadSignature {
                    signer: hex::encode(&self.member[..8]),
                },
            });
        }
        if self.manifest_hash != *manifest_hash {
            return Err(ManifestError::Invalid {
                field: "consent.manifest_hash".into(),
                detail: format!("consent from {who} is over another manifest"),
            });
        }
        crate::identity::verify_strict(
            expected,
            &consent_message(self.action, manifest_hash),
            &self.signature,
        )
        .map_err(|source| ManifestError::Signature {
            what: format!("consent from {who}"),
            source,
        })
    }
}

/// A data key granted to an attested node, signed by the member that owns the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Input name (party name, or `owner/validation`).
    pub input: String,
    /// The granting member's ed25519 key.
    #[serde(with = "hex32")]
    pub member: [u8; 32],
    /// The node's ed25519 key the grant is for.
    #[serde(with = "hex32")]
    pub node_key: [u8; 32],
    /// The node's HPKE key the data key is sealed to.
    #[serde(with = "hex32")]
    pub node_hpke_key: [u8; 32],
    /// The manifest the member consented to: the node refuses a grant bound
    /// to any manifest but the one its own evidence is bound to.
    pub manifest_hash: B256,
    /// `keccak256` of the node evidence the member verified (the same digest
    /// the node's reports carry as `evidenceHash`): the node refuses a grant
    /// made after verifying evidence other than its own.
    pub evidence_hash: B256,
    /// The sealed data key.
    pub sealed: SealedBox,
    /// Signature over the grant (see [`Grant::signing_message`]).
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// HPKE purpose of grants.
pub const GRANT_PURPOSE: &str = "grant";

fn grant_aad(
    manifest_hash: &B256,
    input: &str,
    commitment_digest: &[u8; 32],
    node_key: &[u8; 32],
) -> Vec<u8> {
    LpHasher::new("sealroom.grant.aad.v1")
        .part(manifest_hash)
        .part(input)
        .part(commitment_digest)
        .part(node_key)
        .finish()
        .to_vec()
}

impl Grant {
    /// The bytes the member signs: every field but the signature,
    /// length-prefixed, under the grant domain. The manifest hash signed is
    /// the verifier's (`manifest_hash` argument), so a grant whose own field
    /// was rewritten fails too.
    pub fn signing_message(&self, manifest_hash: &B256) -> Vec<u8> {
        let mut m = b"sealroom.grant.v2".to_vec();
        m.extend_from_slice(
            &LpHasher::new("sealroom.grant.v2")
                .part(manifest_hash)
                .part(&self.input)
                .part(self.member)
                .part(self.node_key)
                .part(self.node_hpke_key)
                .part(self.evidence_hash)
                .part(self.sealed.enc)
                .part(&self.sealed.ciphertext)
                .finish(),
        );
        m
    }

    /// Seals `key` to the node and signs the grant.
    ///
    /// This is the wire primitive: it checks nothing about the node. Members
    /// never call it directly; they go through `sealroom-member`, whose grant
    /// takes the value only a successful verification of the node returns.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        member: &Identity,
        session_id: &B256,
        manifest_hash: &B256,
        input: &str,
        commitment: &DatasetCommitment,
        node_key: [u8; 32],
        node_hpke_key: [u8; 32],
        evidence_hash: B256,
        key: &DataKey,
    ) -> Result<Self, ManifestError> {
        let mh = *manifest_hash;
        let info = seal::info(GRANT_PURPOSE, session_id.as_slice());
        let aad = grant_aad(&mh, input, &commitment.digest(), &node_key);
        let sealed = seal::seal(&node_hpke_key, &info, &aad, key.expose()).map_err(|source| {
            ManifestError::Grant {
                input: input.into(),
                source,
            }
        })?;
        let mut g = Grant {
            input: input.into(),
            member: member.public().ed25519,
            node_key,
            node_hpke_key,
            manifest_hash: mh,
            evidence_hash,
            sealed,
            signature: [0; 64],
        };
        g.signature = member.sign(&g.signing_message(&mh));
        Ok(g)
    }

    /// Checks the signature under `expected_member` (the key the manifest names for this input).
    pub fn verify(
        &self,
        expected_member: &[u8; 32],
        manifest_hash: &B256,
    ) -> Result<(), ManifestError> {
        if self.manifest_hash != *manifest_hash {
            return Err(ManifestError::Invalid {
                field: "grant.manifest_hash".into(),
                detail: format!(
                    "grant for `{}` is bound to manifest {:#x}, not {manifest_hash:#x}",
                    self.input, self.manifest_hash
                ),
            });
        }
        if self.member != *expected_member {
            return Err(ManifestError::Invalid {
                field: "grant.member".into(),
                detail: format!(
                    "grant for `{}` is not from the member that owns it",
                    self.input
                ),
            });
        }
        crate::identity::verify_strict(
            expected_member,
            &self.signing_message(manifest_hash),
            &self.signature,
        )
        .map_err(|source| ManifestError::Signature {
            what: format!("grant for `{}`", self.input),
            source,
        })
    }

    /// Opens the data key inside the node, for the session `session_id`
    /// whose manifest hashes to `manifest_hash`.
    pub fn open(
        &self,
        node_hpke_secret: &<hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey,
        session_id: &B256,
        manifest_hash: &B256,
        commitment: &DatasetCommitment,
    ) -> Result<DataKey, ManifestError> {
        let info = seal::info(GRANT_PURPOSE, session_id.as_slice());
        let aad = grant_aad(
            manifest_hash,
            &self.input,
            &commitment.digest(),
            &self.node_key,
        );
        let bytes =
            seal::open_with(node_hpke_secret, &info, &aad, &self.sealed).map_err(|source| {
                ManifestError::Grant {
                    input: self.input.clone(),
                    source,
                }
            })?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ManifestError::Grant {
                input: self.input.clone(),
                source: SealError::Open,
            })?;
        Ok(DataKey::from_bytes(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commitment(n: u8) -> DatasetCommitment {
        DatasetCommitment {
            merkle_root: B256::repeat_byte(n),
            record_count: 10,
            schema_hash: B256::repeat_byte(9),
            ciphertext_sha256: B256::repeat_byte(n + 1),
            ciphertext_len: 100,
        }
    }

    pub(super) fn manifest() -> (Manifest, Vec<Identity>, Identity) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let s = Scenario::load(&path).unwrap();
        let ids: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
        let owner = Identity::generate().unwrap();
        let parties = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.public(), commitment(i as u8 * 2)))
            .collect();
        let m = Manifest::from_scenario(
            &s,
            B256::repeat_byte(7),
            1,
            parties,
            owner.public(),
            Some(commitment(40)),
        )
        .unwrap();
        (m, ids, owner)
    }

    #[test]
    fn hash_is_stable_across_json_roundtrip_and_sensitive_to_changes() {
        let (m, _, _) = manifest();
        let again: Manifest = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(again.hash(), m.hash());
        let mut other = m.clone();
        other.training.learning_rate *= 2.0;
        assert_ne!(other.hash(), m.hash());
        assert!(
            other.validate().is_err(),
            "spec hash must catch a changed hyper-parameter"
        );
        let tree = m.inputs_tree().unwrap();
        assert_eq!(tree.len(), 3 + 3);
    }

    /// `training.compute` is left out of the JSON when `cpu` (CPU
    /// manifests hash as before), and `cuda` is bound by the engine spec
    /// hash: a coordinator cannot switch the backend after consent.
    #[test]
    fn training_compute_is_bound_and_cpu_is_implicit() {
        let (m, _, _) = manifest();
        let json = serde_json::to_string(&m.training).unwrap();
        assert!(!json.contains("compute"), "{json}");
        let mut cuda = m.clone();
        cuda.training.compute = crate::scenario::TrainingCompute::Cuda;
        assert!(serde_json::to_string(&cuda.training)
            .unwrap()
            .contains("\"compute\":\"cuda\""));
        assert_ne!(cuda.hash(), m.hash());
        assert!(cuda.validate().is_err(), "the spec hash must catch it");
        let text = "epochs = 1\nbatch_size = 8\noptimizer = \"adam\"\nlearning_rate = 0.1\nseed = 1\ncompute = \"tpu\"";
        let err = toml::from_str::<crate::scenario::TrainingSpec>(text).unwrap_err();
        assert!(
            err.to_string().contains("compute") || err.to_string().contains("tpu"),
            "{err}"
        );
    }

    /// A private session needs the owner's validation set: members and the
    /// node refuse a private manifest that would split the parties'
    /// records for validation, naming `owner.validation`, even with a
    /// consistent engine spec hash.
    #[test]
    fn a_private_manifest_without_the_owners_validation_set_is_refused() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-dp.toml");
        let s = Scenario::load(&path).unwrap();
        let parties = (0..3u8)
            .map(|i| {
                let mut c = commitment(i * 2);
                c.record_count = 150;
                (Identity::generate().unwrap().public(), c)
            })
            .collect();
        let owner = Identity::generate().unwrap().public();
        let mut validation = commitment(40);
        validation.record_count = 100;
        let m = Manifest::from_scenario(
            &s,
            B256::repeat_byte(7),
            1,
            parties,
            owner,
            Some(validation),
        )
        .unwrap();
        m.validate().unwrap();
        let mut split = m.clone();
        split.owner.validation = None;
        split.training.validation_split = Some(0.2);
        split.engine.spec_hash = engine_spec_hash_with(
            &split.schema,
            &split.model,
            &split.training,
            split.privacy.as_ref(),
        );
        let e = split.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("manifest field `owner.validation`: ") && e.contains("outside ε"),
            "{e}"
        );
    }

    #[test]
    fn consent_and_grant_bind_manifest_member_and_node() {
        let (m, ids, _) = manifest();
        let mh = m.hash();
        let c = Consent::sign(&ids[0], ConsentAction::Consent, mh);
        c.verify(&ids[0].public().ed25519, &mh).unwrap();
        assert!(c.verify(&ids[1].public().ed25519, &mh).is_err());
        assert!(c.verify(&ids[0].public().ed25519, &B256::ZERO).is_err());

        let node = Identity::generate().unwrap();
        let key = DataKey::generate().unwrap();
        let p = &m.parties[0];
        let g = Grant::create(
            &ids[0],
            &m.session_id,
            &mh,
            &p.name,
            &p.commitment,
            node.public().ed25519,
            node.public().x25519,
            B256::repeat_byte(5),
            &key,
        )
        .unwrap();
        g.verify(&ids[0].public().ed25519, &mh).unwrap();
        assert!(g.verify(&ids[1].public().ed25519, &mh).is_err());
        let sk = node.hpke_private_key().unwrap();
        assert_eq!(
            g.open(&sk, &m.session_id, &mh, &p.commitment)
                .unwrap()
                .expose(),
            key.expose()
        );
        // Bound to the commitment: another party's commitment does not open it.
        assert!(g
            .open(&sk, &m.session_id, &mh, &m.parties[1].commitment)
            .is_err());
        // A grant signed by a non-member for this input fails.
        let eve = Identity::generate().unwrap();
        let forged = Grant::create(
            &eve,
            &m.session_id,
            &mh,
            &p.name,
            &p.commitment,
            node.public().ed25519,
            node.public().x25519,
            B256::repeat_byte(5),
            &key,
        )
        .unwrap();
        assert!(forged.verify(&p.identity.ed25519, &mh).is_err());
        // Bound to the manifest and the evidence: rewriting either field breaks it.
        assert!(g.verify(&ids[0].public().ed25519, &B256::ZERO).is_err());
        let mut moved = g.clone();
        moved.evidence_hash = B256::repeat_byte(6);
        assert!(moved.verify(&ids[0].public().ed25519, &mh).is_err());
        let mut moved = g.clone();
        moved.manifest_hash = B256::ZERO;
        assert!(moved.verify(&ids[0].public().ed25519, &mh).is_err());
    }
}
