//! A whole session prepared in memory, as its members would prepare it:
//! identities, commitments and encrypted blobs, the manifest, consents and
//! grants. Used by `sealroom bench overhead` (the same training run plain and
//! through the loader) and by the loader's tests.

use std::collections::HashMap;
use std::io::Read;

use alloy_primitives::B256;
use sealroom_protocol::dataset::{commit_stream, DatasetCommitment};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{validation_input_name, Consent, ConsentAction, Grant, Manifest};
use sealroom_protocol::scenario::Scenario;
use sealroom_protocol::stream::DataKey;

use crate::node::{BlobSource, Node, NodeEvent, SessionInputs, SessionOutcome, SimCollector};

/// Blobs held in memory.
pub struct MemBlobs(pub HashMap<String, Vec<u8>>);

impl BlobSource for MemBlobs {
    fn open(&self, input: &str) -> std::io::Result<Box<dyn Read + '_>> {
        self.0
            .get(input)
            .map(|b| Box::new(&b[..]) as Box<dyn Read>)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, input.to_string()))
    }
}

/// A prepared session.
pub struct Prepared {
    /// The manifest.
    pub manifest: Manifest,
    /// Party identities, in manifest order.
    pub parties: Vec<Identity>,
    /// The owner.
    pub owner: Identity,
    /// Data keys and commitments per input.
    pub keys: HashMap<String, (DataKey, DatasetCommitment)>,
    /// Encrypted blobs per input.
    pub blobs: HashMap<String, Vec<u8>>,
    /// Every member's consent.
    pub consents: Vec<Consent>,
}

/// Why a session could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// A dataset could not be read or committed.
    #[error("{path}: {detail}")]
    Dataset {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// Keys, manifest or grants failed.
    #[error("{0}")]
    Protocol(String),
}

/// Prepares `scenario` in memory (blobs with 4 KiB segments).
pub fn prepare(scenario: &Scenario) -> Result<Prepared, PrepareError> {
    let proto = |e: &dyn std::fmt::Display| PrepareError::Protocol(e.to_string());
    let parties: Vec<Identity> = scenario
        .parties
        .iter()
        .map(|_| Identity::generate().map_err(|e| proto(&e)))
        .collect::<Result<_, _>>()?;
    let owner = Identity::generate().map_err(|e| proto(&e))?;
    let mut keys = HashMap::new();
    let mut blobs = HashMap::new();
    let mut commit =
        |name: &str, file: &std::path::Path| -> Result<DatasetCommitment, PrepareError> {
            let err = |d: String| PrepareError::Dataset {
                path: file.display().to_string(),
                detail: d,
            };
            let key = DataKey::generate().map_err(|e| err(e.to_string()))?;
            let data = std::fs::read(file).map_err(|e| err(e.to_string()))?;
            let out = commit_stream(&data[..], &key, 4096, Vec::new(), |_| {})
                .map_err(|e| err(e.to_string()))?;
            blobs.insert(name.to_string(), out.blob);
            keys.insert(name.to_string(), (key, out.commitment.clone()));
            Ok(out.commitment)
        };
    let mut pc = Vec::new();
    for (p, id) in scenario.parties.iter().zip(&parties) {
        pc.push((id.public(), commit(&p.name, &scenario.resolve(&p.dataset))?));
    }
    let validation = match &scenario.owner.validation {
        Some(v) => Some(commit(
            &validation_input_name(&scenario.owner.name),
            &scenario.resolve(v),
        )?),
        None => None,
    };
    let manifest = Manifest::from_scenario(
        scenario,
        B256::repeat_byte(0x5e),
        1,
        pc,
        owner.public(),
        validation,
    )
    .map_err(|e| proto(&e))?;
    let mh = manifest.hash();
    let mut consents: Vec<Consent> = parties
        .iter()
        .map(|p| Consent::sign(p, ConsentAction::Consent, mh))
        .collect();
    consents.push(Consent::sign(&owner, ConsentAction::Consent, mh));
    Ok(Prepared {
        manifest,
        parties,
        owner,
        keys,
        blobs,
        consents,
    })
}

impl Prepared {
    /// A node started for this manifest with simulated evidence.
    pub fn node(&self) -> Result<Node, PrepareError> {
        Node::start(
            self.manifest.hash(),
            &SimCollector {
                measurement: [7; 32],
            },
        )
        .map_err(|e| PrepareError::Protocol(e.to_string()))
    }

    /// Every member's grant to `node`.
    pub fn grants(&self, node: &Node) -> Result<Vec<Grant>, PrepareError> {
        let proto = |e: &dyn std::fmt::Display| PrepareError::Protocol(e.to_string());
        let mut out = Vec::new();
        let (sid, mh) = (self.manifest.session_id, self.manifest.hash());
        for (i, p) in self.manifest.parties.iter().enumerate() {
            let (k, c) = self
                .keys
                .get(&p.name)
                .ok_or_else(|| proto(&"missing key"))?;
            out.push(
                Grant::create(
                    &self.parties[i],
                    &sid,
                    &mh,
                    &p.name,
                    c,
                    node.signing_key(),
                    node.hpke_key(),
                    sealroom_reports::binding::evidence_hash(&node.evidence().evidence),
                    k,
                )
                .map_err(|e| proto(&e))?,
            );
        }
        if self.manifest.owner.validation.is_some() {
            let v = validation_input_name(&self.manifest.owner.name);
            let (k, c) = self.keys.get(&v).ok_or_else(|| proto(&"missing key"))?;
            out.push(
                Grant::create(
                    &self.owner,
                    &sid,
                    &mh,
                    &v,
                    c,
                    node.signing_key(),
                    node.hpke_key(),
                    sealroom_reports::binding::evidence_hash(&node.evidence().evidence),
                    k,
                )
                .map_err(|e| proto(&e))?,
            );
        }
        Ok(out)
    }

    /// Runs `node` over these inputs (optionally with replaced grants, blobs or consents).
    pub fn run_with(
        &self,
        node: &Node,
        grants: &[Grant],
        blobs: &HashMap<String, Vec<u8>>,
        consents: &[Consent],
        progress: &mut dyn FnMut(NodeEvent),
    ) -> SessionOutcome {
        let src = MemBlobs(blobs.clone());
        node.run(
            SessionInputs {
                manifest: &self.manifest,
                consents,
                grants,
                blobs: &src,
                prev_report_hash: alloy_primitives::B256::ZERO,
                stop: &|| None,
            },
            progress,
        )
    }

    /// Starts a node, grants every key and runs the session.
    pub fn run(&self) -> Result<SessionOutcome, PrepareError> {
        let node = self.node()?;
        let grants = self.grants(&node)?;
        Ok(self.run_with(&node, &grants, &self.blobs, &self.consents, &mut |_| {}))
    }
}
