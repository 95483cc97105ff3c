//! What a member checks of a manifest, in O(log n) of its party list.
//!
//! `manifest_hash` is the hash of the manifest's [`ManifestHeader`]: every
//! field of the manifest but the party list, which the header replaces by a
//! [`PartyList`] commitment (count, record total and the root of an
//! OpenZeppelin standard tree over `(uint256 index, bytes32 partyDigest)`).
//! A member receives the header and its own entry with an inclusion proof
//! ([`ManifestView`]): it recomputes the hash it signs from the header, and
//! finds its own name, keys and commitment under the root at the position
//! the proof names. The node receives the whole list and checks it against
//! the same root and totals, so a list that differs from the one every
//! member consented to is refused where the data would be decrypted.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use super::{
    engine_spec_hash_with, json_bytes, limits, privacy_spent_of, privacy_within_of,
    validation_input_name, ChainTarget, Engine, Manifest, ManifestError, ManifestOwner,
    ManifestParty, MANIFEST_FORMAT,
};
use crate::dataset::DatasetCommitment;
use crate::hash::LpHasher;
use crate::merkle::{leaf_hash, process_proof, uint_word, StandardTree};
use crate::policy::Policy;
use crate::privacy::PrivacySpec;
use crate::scenario::{ModelKind, ModelSpec, Schema, Task, TrainingSpec};

/// The party list as the header commits to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyList {
    /// Number of data parties.
    pub count: u64,
    /// Records over every party's dataset (the owner's validation set is
    /// not counted): DP-SGD's sample rate is derived from it, so a member
    /// checks ε without the other parties' entries.
    pub records: u64,
    /// Root of the standard tree over `(uint256 index, bytes32 partyDigest)`
    /// (see [`party_digest`]).
    pub root: B256,
}

/// The manifest without its party list: what `manifest_hash` hashes.
///
/// The fields are the manifest's, in the manifest's order, with `parties`
/// replaced by its [`PartyList`] commitment (a unit test keeps the two
/// structs in step).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestHeader {
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
    /// The data parties, committed.
    pub parties: PartyList,
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
    /// Differential privacy of the training, when private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySpec>,
}

/// The digest of one party entry: `LpHasher("sealroom.manifest.party.v1")`
/// over its canonical JSON (name, keys and commitment).
pub fn party_digest(party: &ManifestParty) -> [u8; 32] {
    LpHasher::new("sealroom.manifest.party.v1")
        .part(json_bytes(party))
        .finish()
}

/// The standard tree over a party list; `None` for an empty list (whose
/// manifest no holder accepts).
pub fn parties_tree(parties: &[ManifestParty]) -> Option<StandardTree> {
    if parties.is_empty() {
        return None;
    }
    let digests: Vec<[u8; 32]> = parties.iter().map(party_digest).collect();
    let leaves = digests
        .iter()
        .enumerate()
        .map(|(i, d)| leaf_hash(&uint_word(i as u64), d))
        .collect();
    StandardTree::from_indexed_digests(digests, leaves).ok()
}

/// The owner's validation input when `key` is the owner's and it has one.
fn owner_input(o: &ManifestOwner, key: &[u8; 32]) -> Option<(String, DatasetCommitment)> {
    if o.identity.ed25519 != *key {
        return None;
    }
    o.validation
        .clone()
        .map(|c| (validation_input_name(&o.name), c))
}

/// One party's entry with its inclusion proof under [`PartyList::root`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyEntry {
    /// Position in the manifest's party list.
    pub index: u64,
    /// The entry.
    pub party: ManifestParty,
    /// Sibling hashes from the leaf to the root (OpenZeppelin's proof).
    pub proof: Vec<B256>,
}

impl PartyEntry {
    /// Whether the entry sits at `index` under `list.root`.
    pub fn proves(&self, list: &PartyList) -> bool {
        let leaf = leaf_hash(&uint_word(self.index), &party_digest(&self.party));
        self.index < list.count && process_proof(leaf, &self.proof) == list.root
    }
}

/// What the coordinator serves a member: the header and, for a data party,
/// its own entry with its proof. A member checks it with
/// [`ManifestView::check_for`] and keeps it as its record of the agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestView {
    /// Everything but the party list.
    pub header: ManifestHeader,
    /// The member's own entry (absent for the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<PartyEntry>,
}

impl ManifestView {
    /// `manifest_hash`.
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    /// The checks a member runs before it signs anything over this view:
    /// the header is well formed, and the member with key `me` is the owner
    /// or a party whose entry sits under the committed root with its own
    /// key. Returns the manifest hash.
    pub fn check_for(&self, me: &[u8; 32]) -> Result<B256, ManifestError> {
        self.header.validate()?;
        if self.header.owner.identity.ed25519 == *me {
            return Ok(self.hash());
        }
        let bad = |field: &str, detail: String| ManifestError::Invalid {
            field: field.into(),
            detail,
        };
        let Some(e) = &self.entry else {
            return Err(bad(
                "parties",
                "this key is neither the owner nor given a party entry".into(),
            ));
        };
        if e.party.identity.ed25519 != *me {
            return Err(bad(
                "parties",
                format!("the served entry `{}` holds another key", e.party.name),
            ));
        }
        if !e.proves(&self.header.parties) {
            return Err(bad(
                "parties.root",
                format!(
                    "the entry `{}` at index {} is not under the committed party root",
                    e.party.name, e.index
                ),
            ));
        }
        let c = &e.party.commitment;
        if e.party.name == self.header.owner.name {
            return Err(bad("parties", format!("duplicate name `{}`", e.party.name)));
        }
        if c.ciphertext_len > self.header.max_blob_bytes {
            return Err(bad(
                &format!("parties[{}].commitment.ciphertext_len", e.index),
                format!(
                    "`{}`'s blob of {} bytes exceeds max_blob_bytes ({})",
                    e.party.name, c.ciphertext_len, self.header.max_blob_bytes
                ),
            ));
        }
        if c.record_count > self.header.parties.records {
            return Err(bad(
                "parties.records",
                format!(
                    "{} records in total, fewer than `{}`'s own {}",
                    self.header.parties.records, e.party.name, c.record_count
                ),
            ));
        }
        Ok(self.hash())
    }

    /// The member's name (owner or party) when `key` is the owner's or the entry's.
    pub fn member_name(&self, key: &[u8; 32]) -> Option<&str> {
        if self.header.owner.identity.ed25519 == *key {
            return Some(&self.header.owner.name);
        }
        self.entry
            .as_ref()
            .filter(|e| e.party.identity.ed25519 == *key)
            .map(|e| e.party.name.as_str())
    }

    /// The input `key` owns (its dataset, or the owner's validation set).
    pub fn input_of(&self, key: &[u8; 32]) -> Option<(String, DatasetCommitment)> {
        if let Some(e) = self
            .entry
            .as_ref()
            .filter(|e| e.party.identity.ed25519 == *key)
        {
            return Some((e.party.name.clone(), e.party.commitment.clone()));
        }
        owner_input(&self.header.owner, key)
    }
}

impl ManifestHeader {
    /// `manifest_hash`.
    pub fn hash(&self) -> B256 {
        B256::from(
            LpHasher::new("sealroom.manifest.v2")
                .part(json_bytes(self))
                .finish(),
        )
    }

    /// The DP-SGD schedule (see [`Manifest::privacy_schedule`]), from the
    /// committed record total.
    pub fn privacy_schedule(&self) -> Option<crate::privacy::Schedule> {
        super::training_schedule(
            self.parties.records,
            self.owner.validation.is_some(),
            &self.training,
        )
    }

    /// ε the training spends (see [`Manifest::privacy_spent`]), from the
    /// committed record total.
    pub fn privacy_spent(&self) -> Result<crate::dp::Spent, crate::dp::DpError> {
        privacy_spent_of(
            self.privacy.as_ref(),
            self.parties.records,
            self.owner.validation.is_some(),
            &self.training,
        )
    }

    /// Whether the training's privacy holds within `max_epsilon` (see
    /// [`Manifest::privacy_within`]).
    pub fn privacy_within(&self, max: f64) -> Result<crate::dp::Spent, String> {
        privacy_within_of(
            self.privacy.as_ref(),
            self.parties.records,
            self.owner.validation.is_some(),
            &self.training,
            max,
        )
    }

    /// Checks of everything but the party entries (the whole manifest's
    /// [`Manifest::validate`] runs these after its list checks). Caps come
    /// first: nothing below sizes work from an unchecked number.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |field: &str, detail: &str| ManifestError::Invalid {
            field: field.into(),
            detail: detail.into(),
        };
        if self.format != MANIFEST_FORMAT {
            return Err(bad("format", "unknown manifest format"));
        }
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
        if self.parties.count == 0 {
            return Err(bad("parties", "no parties"));
        }
        if self.parties.count > limits::MAX_PARTIES as u64 {
            return Err(bad(
                "parties",
                &format!(
                    "{} parties exceed the limit of {}",
                    self.parties.count,
                    limits::MAX_PARTIES
                ),
            ));
        }
        if self.engine.trainer_measurements.len() > limits::MAX_TRAINER_MEASUREMENTS {
            return Err(bad(
                "engine.trainer_measurements",
                &format!(
                    "{} entries exceed the limit of {}",
                    self.engine.trainer_measurements.len(),
                    limits::MAX_TRAINER_MEASUREMENTS
                ),
            ));
        }
        if let Some((field, detail)) =
            limits::spec_violations(&self.schema, &self.model, &self.training)
                .into_iter()
                .next()
        {
            return Err(bad(&field, &detail));
        }
        if self.schema.features.is_empty() {
            return Err(bad("schema.features", "no feature columns"));
        }
        match self.schema.task {
            Task::Classification if self.schema.label_classes < 2 => {
                return Err(bad(
                    "schema.label_classes",
                    "a classifier needs at least 2 classes",
                ));
            }
            Task::Regression if self.schema.label_classes != 0 => {
                return Err(bad(
                    "schema.label_classes",
                    "a regression target has no classes",
                ));
            }
            _ => {}
        }
        let kind_fits = match self.model.kind {
            ModelKind::LogisticRegression => self.schema.task == Task::Classification,
            ModelKind::LinearRegression => self.schema.task == Task::Regression,
            ModelKind::Mlp | ModelKind::Cnn => true,
        };
        if !kind_fits {
            return Err(bad(
                "model.kind",
                &format!(
                    "{} does not fit schema.task {}",
                    self.model.kind.as_str(),
                    self.schema.task.as_str()
                ),
            ));
        }
        let mut records = self.parties.records;
        if records > limits::MAX_RECORDS {
            return Err(bad(
                "parties.records",
                &format!(
                    "records over all inputs exceed the limit of {}",
                    limits::MAX_RECORDS
                ),
            ));
        }
        if let Some(c) = &self.owner.validation {
            if c.ciphertext_len > self.max_blob_bytes {
                return Err(bad(
                    "owner.validation.ciphertext_len",
                    &format!(
                        "`{}`'s blob of {} bytes exceeds max_blob_bytes ({})",
                        self.owner.name, c.ciphertext_len, self.max_blob_bytes
                    ),
                ));
            }
            records = records.saturating_add(c.record_count);
            if records > limits::MAX_RECORDS {
                return Err(bad(
                    "owner.validation.record_count",
                    &format!(
                        "records over all inputs exceed the limit of {}",
                        limits::MAX_RECORDS
                    ),
                ));
            }
        }
        if let Some(p) = &self.privacy {
            if let Some((field, detail)) = p.problems(true).into_iter().next() {
                return Err(bad(&format!("privacy.{field}"), &detail));
            }
            if self.model.kind == ModelKind::Cnn {
                return Err(bad(
                    "privacy",
                    "DP-SGD supports logistic-regression, linear-regression and mlp models, not cnn",
                ));
            }
            if self.training.public_metrics {
                return Err(bad(
                    "training.public_metrics",
                    "must be false with [privacy]: a private session's metrics go to the owner only",
                ));
            }
            // Everything the owner receives beside the noised weights —
            // preprocessing statistics inside the model, validation
            // metrics — is computed on the owner's own validation set. A
            // split of the parties' records would put statistics of party
            // records outside ε.
            if self.owner.validation.is_none() {
                return Err(bad(
                    "owner.validation",
                    "a session with [privacy] needs the owner's validation set: with validation_split, \
                     the preprocessing statistics and the metrics would be computed on party records outside ε",
                ));
            }
            let spent = self
                .privacy_spent()
                .map_err(|e| bad(&format!("privacy.{}", e.field), &e.message))?;
            if let Some(t) = p.target_epsilon {
                // σ was solved to the target; a looser σ would overshoot it.
                if spent.epsilon > t * (1.0 + 1e-9) {
                    return Err(bad(
                        "privacy.noise_multiplier",
                        &format!("gives ε = {} above target_epsilon {t}", spent.epsilon),
                    ));
                }
            }
        }
        if let Some(max) = self.policy.max_epsilon {
            self.privacy_within(max)
                .map_err(|e| bad("policy.max_epsilon", &e))?;
        }
        if self.engine.spec_hash
            != engine_spec_hash_with(
                &self.schema,
                &self.model,
                &self.training,
                self.privacy.as_ref(),
            )
        {
            return Err(bad(
                "engine.spec_hash",
                "does not match schema, model and training",
            ));
        }
        self.policy
            .validate()
            .map_err(|e| bad(&format!("policy.{}", e.field), &e.detail))?;
        Ok(())
    }
}

impl Manifest {
    /// The party list's commitment (count, record total, tree root).
    pub fn party_list(&self) -> PartyList {
        self.party_list_with(parties_tree(&self.parties).as_ref())
    }

    fn party_list_with(&self, tree: Option<&StandardTree>) -> PartyList {
        PartyList {
            root: tree.map(StandardTree::root).unwrap_or_default(),
            ..self.party_list_without_root()
        }
    }

    /// Count and record total of the party list, with a zero root (for a
    /// caller that built the [`parties_tree`] itself).
    pub fn party_list_without_root(&self) -> PartyList {
        PartyList {
            count: self.parties.len() as u64,
            records: self
                .parties
                .iter()
                .map(|p| p.commitment.record_count)
                .fold(0u64, u64::saturating_add),
            root: B256::ZERO,
        }
    }

    /// The header: what `manifest_hash` hashes.
    pub fn header(&self) -> ManifestHeader {
        self.header_with(&self.party_list())
    }

    /// The header with an already computed party list commitment.
    pub fn header_with(&self, parties: &PartyList) -> ManifestHeader {
        ManifestHeader {
            format: self.format.clone(),
            session_id: self.session_id,
            name: self.name.clone(),
            description: self.description.clone(),
            created_at: self.created_at,
            parties: *parties,
            owner: self.owner.clone(),
            schema: self.schema.clone(),
            model: self.model.clone(),
            training: self.training.clone(),
            engine: self.engine.clone(),
            policy: self.policy.clone(),
            chain: self.chain.clone(),
            max_blob_bytes: self.max_blob_bytes,
            privacy: self.privacy.clone(),
        }
    }

    /// The view served to the member with key `me` (the owner's has no
    /// entry), built on `tree` (the list's [`parties_tree`]); `None` when
    /// `me` is no member.
    pub fn view_for(&self, me: &[u8; 32], tree: &StandardTree) -> Option<ManifestView> {
        let header = self.header_with(&self.party_list_with(Some(tree)));
        if self.owner.identity.ed25519 == *me {
            return Some(ManifestView {
                header,
                entry: None,
            });
        }
        let index = self
            .parties
            .iter()
            .position(|p| p.identity.ed25519 == *me)?;
        self.entry_view(header, index, tree)
    }

    /// The input `key` owns in the whole list (a scan: for holders of the
    /// whole manifest such as the TUI's session pane).
    pub fn input_of(&self, key: &[u8; 32]) -> Option<(String, DatasetCommitment)> {
        if let Some(p) = self.parties.iter().find(|p| p.identity.ed25519 == *key) {
            return Some((p.name.clone(), p.commitment.clone()));
        }
        owner_input(&self.owner, key)
    }

    /// [`Manifest::view_for`], building the party tree (for a holder of the
    /// whole manifest that serves one view, such as the owner's own record).
    pub fn view_of(&self, me: &[u8; 32]) -> Option<ManifestView> {
        self.view_for(me, &parties_tree(&self.parties)?)
    }

    /// The view of party `index` under `header` (already computed by the caller).
    pub fn entry_view(
        &self,
        header: ManifestHeader,
        index: usize,
        tree: &StandardTree,
    ) -> Option<ManifestView> {
        let party = self.parties.get(index)?.clone();
        let proof = tree.proof(index).ok()?;
        Some(ManifestView {
            header,
            entry: Some(PartyEntry {
                index: index as u64,
                party,
                proof,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::manifest;
    use super::*;

    #[test]
    fn header_has_every_manifest_field_but_the_party_list() {
        let (m, _, _) = manifest();
        let full = serde_json::to_value(&m).unwrap();
        let head = serde_json::to_value(m.header()).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&full), keys(&head));
        for k in keys(&full) {
            if k != "parties" {
                assert_eq!(full[&k], head[&k], "{k}");
            }
        }
        assert_eq!(head["parties"]["count"], 3);
    }

    #[test]
    fn every_party_checks_its_own_entry_and_nothing_else_passes() {
        let (m, ids, owner) = manifest();
        let tree = parties_tree(&m.parties).unwrap();
        let mh = m.hash();
        for (i, id) in ids.iter().enumerate() {
            let key = id.public().ed25519;
            let v = m.view_for(&key, &tree).unwrap();
            assert_eq!(v.check_for(&key).unwrap(), mh);
            assert_eq!(v.member_name(&key), Some(m.parties[i].name.as_str()));
            assert_eq!(v.input_of(&key).unwrap().1, m.parties[i].commitment);
            // Another party's view is not mine.
            let other = ids[(i + 1) % ids.len()].public().ed25519;
            assert!(v.check_for(&other).is_err());
        }
        let ok = owner.public().ed25519;
        let v = m.view_for(&ok, &tree).unwrap();
        assert!(v.entry.is_none());
        assert_eq!(v.check_for(&ok).unwrap(), mh);
        assert_eq!(
            v.input_of(&ok).unwrap().0,
            validation_input_name(&m.owner.name)
        );
        // A stranger gets no view.
        assert!(m.view_for(&[9; 32], &tree).is_none());
    }

    #[test]
    fn an_altered_entry_proof_or_header_is_refused_or_changes_the_hash() {
        let (m, ids, _) = manifest();
        let tree = parties_tree(&m.parties).unwrap();
        let key = ids[1].public().ed25519;
        let good = m.view_for(&key, &tree).unwrap();
        let mh = good.check_for(&key).unwrap();
        // The coordinator swaps my commitment: not under the root.
        let mut v = good.clone();
        v.entry.as_mut().unwrap().party.commitment.record_count += 1;
        let e = v.check_for(&key).unwrap_err().to_string();
        assert!(e.contains("parties.root"), "{e}");
        // Another position for the same entry.
        let mut v = good.clone();
        v.entry.as_mut().unwrap().index = 0;
        assert!(v.check_for(&key).is_err());
        // A proof sibling flipped.
        let mut v = good.clone();
        v.entry.as_mut().unwrap().proof[0].0[0] ^= 1;
        assert!(v.check_for(&key).is_err());
        // A rebuilt root over another list checks, but hashes differently:
        // the member signs that other hash, which the node then refuses.
        let mut other = m.clone();
        other.parties.pop();
        let t2 = parties_tree(&other.parties).unwrap();
        let v = other.view_for(&key, &t2).unwrap();
        assert_ne!(v.check_for(&key).unwrap(), mh);
        // A header field changes the hash.
        let mut v = good.clone();
        v.header.training.epochs += 1;
        assert_ne!(v.hash(), mh);
        // The record total below my own records is refused.
        let mut v = good;
        v.header.parties.records = 1;
        assert!(v.check_for(&key).is_err());
    }

    #[test]
    fn the_view_round_trips_through_json() {
        let (m, ids, _) = manifest();
        let tree = parties_tree(&m.parties).unwrap();
        let key = ids[2].public().ed25519;
        let v = m.view_for(&key, &tree).unwrap();
        let back: ManifestView = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.check_for(&key).unwrap(), m.hash());
    }
}
