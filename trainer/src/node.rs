//! The trusted loader: the part of the node that trusts no one.
//!
//! On start it generates the node's ed25519 signing key and X25519 HPKE key
//! in memory (never exported) and obtains evidence whose `report_data` binds
//! both keys to the manifest hash (DESIGN §3). For a session it then checks,
//! before decrypting anything and in this order:
//!
//! 1. the manifest (structure, engine spec hash) and the engine allowlist;
//! 2. every member's consent signature over the manifest hash;
//! 3. every grant's signature by the member that owns the input;
//! 4. every blob's length and SHA-256 against the member's commitment;
//!
//! then opens each grant (HPKE), stream-decrypts each blob and recomputes its
//! Merkle root, record count and schema hash. Any mismatch stops the session
//! before training with a signed `aborted` report naming the input and the
//! check. Otherwise it signs `opened`, trains, seals the model to the owner,
//! wipes every plaintext input and key but the signing key, and signs
//! `completed`.

use std::io::Read;
use std::ops::ControlFlow;

use alloy_primitives::B256;
use sealroom_protocol::dataset::{recompute_root_from_blob, DatasetCommitment};
use sealroom_protocol::hash::{sha256, LpHasher};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{Consent, ConsentAction, Grant, Manifest};
use sealroom_protocol::policy::TeeKind;
use sealroom_protocol::sealed_model::seal_model;
use sealroom_reports::binding::expected_report_data;
use sealroom_reports::check::Check;
use sealroom_reports::report::{signing_message, IntegrityReport, ReportKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ml::{self, Dataset, EpochMetrics};

// Evidence collection lives with its implementations in `reports`
// (`attest::collect`): re-exported here for the node's callers.
#[cfg(feature = "tee-configfs")]
pub use sealroom_reports::attest::collect::ConfigfsCollector;
pub use sealroom_reports::attest::collect::{Collector, HexBytes, NodeEvidence, SimCollector};

/// The measurement of this trainer engine: SHA-256 of the running executable.
pub fn engine_measurement() -> Result<[u8; 32], String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot locate the trainer executable: {e}"))?;
    let mut f = std::fs::File::open(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// A report and the node's signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReport {
    /// `abi.encode(report)`, hex.
    #[serde(with = "sealroom_protocol::seal::hex_vec")]
    pub report_abi: Vec<u8>,
    /// ed25519 signature over `"sealroom.report.v1" || keccak256(report_abi)`.
    #[serde(with = "sealroom_protocol::identity::hex64")]
    pub signature: [u8; 64],
}

impl SignedReport {
    /// The decoded report.
    pub fn report(&self) -> Result<IntegrityReport, String> {
        IntegrityReport::from_abi_bytes(&self.report_abi).map_err(|e| e.to_string())
    }
}

/// Why a session was aborted: which input, which check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortReason {
    /// Stable code (see [`abort_code`]).
    pub code: u16,
    /// The input or member concerned (`hospital-a`, `engine`, `manifest`).
    pub input: String,
    /// The failed check (`ciphertext-hash`, `merkle-root`, …).
    pub check: String,
    /// What was found.
    pub detail: String,
}

impl AbortReason {
    fn new(code: u16, input: &str, check: Check, detail: impl Into<String>) -> Self {
        Self {
            code,
            input: input.into(),
            check: check.into(),
            detail: detail.into(),
        }
    }

    /// The text stored in the report: `input: check: detail`.
    pub fn text(&self) -> String {
        format!("{}: {}: {}", self.input, self.check, self.detail)
    }
}

/// Abort codes stored in reports.
pub mod abort_code {
    /// The manifest is malformed or its engine spec hash is wrong.
    pub const MANIFEST: u16 = 1;
    /// This trainer's measurement is not in the engine allowlist.
    pub const ENGINE: u16 = 2;
    /// A consent is missing, withdrawn, over another manifest or badly signed.
    pub const CONSENT: u16 = 3;
    /// A grant is missing or not signed by the member owning the input.
    pub const GRANT_SIGNATURE: u16 = 4;
    /// A grant does not open with this node's key.
    pub const GRANT_OPEN: u16 = 5;
    /// A blob's length or SHA-256 differs from the commitment.
    pub const CIPHERTEXT_HASH: u16 = 6;
    /// A blob fails authenticated decryption.
    pub const DECRYPT: u16 = 7;
    /// The records' Merkle root differs from the commitment.
    pub const MERKLE_ROOT: u16 = 8;
    /// The record count differs from the commitment.
    pub const RECORD_COUNT: u16 = 9;
    /// The schema hash differs from the commitment.
    pub const SCHEMA: u16 = 10;
    /// The decrypted data does not parse under the schema.
    pub const DATA: u16 = 11;
    /// Training failed.
    pub const TRAINING: u16 = 12;
    /// Sealing the model failed.
    pub const SEALING: u16 = 13;
    /// A blob could not be fetched.
    pub const BLOB_UNAVAILABLE: u16 = 14;
    /// The session was stopped by a member's withdrawal.
    pub const STOPPED: u16 = 15;
}

/// Where the node reads the encrypted blobs from (coordinator, files).
pub trait BlobSource {
    /// Opens the blob of `input` (party name or `owner/validation`).
    fn open(&self, input: &str) -> std::io::Result<Box<dyn Read + '_>>;
}

/// Everything a session needs besides the blobs.
pub struct SessionInputs<'a> {
    /// The manifest.
    pub manifest: &'a Manifest,
    /// Consents of every member (parties and the owner).
    pub consents: &'a [Consent],
    /// Grants, one per input.
    pub grants: &'a [Grant],
    /// The blobs.
    pub blobs: &'a dyn BlobSource,
    /// The report the node's first report links to: the latest `opened` of
    /// an earlier attempt of this session (zero for the first attempt).
    /// The registry enforces the link, so a wrong value only stalls.
    pub prev_report_hash: B256,
    /// Asked before training and after every epoch: `Some(reason)` stops
    /// the session there (a member withdrew), wiping and signing `aborted`.
    pub stop: &'a dyn Fn() -> Option<String>,
}

/// What the node reports while it works.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A check passed.
    Checked {
        /// Input concerned.
        input: String,
        /// Check name.
        check: String,
    },
    /// Training started.
    TrainingStarted {
        /// Records trained on.
        records: u64,
        /// Epochs to run.
        epochs: u32,
    },
    /// An epoch ended.
    Epoch(EpochMetrics),
    /// A report was signed (uploaded by the caller; `opened` comes before training).
    Report(SignedReport),
}

/// The outcome of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionOutcome {
    /// Signed reports in order: `opened` then `completed`, or an `aborted`.
    pub reports: Vec<SignedReport>,
    /// The sealed model (completed sessions).
    #[serde(with = "opt_hex")]
    pub sealed_model: Option<Vec<u8>>,
    /// Why the session was aborted, if it was.
    pub abort: Option<AbortReason>,
    /// Training summary (public part: hashes and counts; metrics are sealed to the owner).
    pub summary: Option<serde_json::Value>,
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let o: Option<String> = Option::deserialize(d)?;
        o.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Key generation failed.
    #[error("key generation: {0}")]
    Keys(String),
    /// The platform would not produce evidence.
    #[error("evidence collection ({kind}): {detail}")]
    Evidence {
        /// Kind.
        kind: TeeKind,
        /// Why.
        detail: String,
    },
}

/// A started node: keys in memory, evidence bound to them and the manifest.
pub struct Node {
    signer: Identity,
    hpke: std::cell::RefCell<Option<Identity>>,
    hpke_public: [u8; 32],
    evidence: NodeEvidence,
    /// GPU evidence composed in ([`Node::compose_sim_gpu`]), when any.
    gpu: Option<sealroom_protocol::api::GpuRegistration>,
    manifest_hash: B256,
    /// The launch measurement the node's own evidence attests.
    measurement: Vec<u8>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Node(signing key {}, keys redacted)",
            hex::encode(self.signing_key())
        )
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tee_code(kind: TeeKind) -> u8 {
    match kind {
        TeeKind::SevSnp => 1,
        TeeKind::Tdx => 2,
        TeeKind::Sim => 3,
        TeeKind::NvidiaGpu => 16,
    }
}

impl Node {
    /// Generates the node's keys and obtains evidence binding them to
    /// `manifest_hash`. The node's measurement is the one its evidence
    /// attests, never a value it computes itself.
    pub fn start(manifest_hash: B256, collector: &dyn Collector) -> Result<Self, NodeError> {
        let signer = Identity::generate().map_err(|e| NodeError::Keys(e.to_string()))?;
        let hpke = Identity::generate().map_err(|e| NodeError::Keys(e.to_string()))?;
        let rd = expected_report_data(
            &signer.public().ed25519,
            &hpke.public().x25519,
            &manifest_hash.0,
        );
        let evidence = collector.collect(&rd).map_err(|e| NodeError::Evidence {
            kind: collector.kind(),
            detail: e.to_string(),
        })?;
        let measurement =
            sealroom_reports::attest::evidence_measurement(evidence.kind, &evidence.evidence)
                .map_err(|f| NodeError::Evidence {
                    kind: collector.kind(),
                    detail: format!("{}: {}", f.check, f.detail),
                })?;
        let hpke_public = hpke.public().x25519;
        Ok(Self {
            signer,
            hpke: std::cell::RefCell::new(Some(hpke)),
            hpke_public,
            evidence,
            gpu: None,
            manifest_hash,
            measurement,
        })
    }

    /// Composes simulated GPU evidence in (`--gpu sim`): the sim format
    /// carrying the nonce derived from this node's CPU `report_data`, so it
    /// binds to the same keys and manifest. It proves nothing about a GPU
    /// and is accepted only where the policy allows simulation.
    pub fn compose_sim_gpu(&mut self) {
        let nonce = self.gpu_nonce();
        self.compose_gpu(sealroom_protocol::api::GpuRegistration {
            kind: TeeKind::Sim,
            evidence: sealroom_reports::attest::simulate::simulate_gpu_at(
                &nonce,
                i64::try_from(now()).unwrap_or(i64::MAX),
            ),
            certs: vec![],
        });
    }

    /// The nonce this node's GPU evidence must carry: derived from the CPU
    /// evidence's `report_data` (node keys and manifest hash), so the GPU
    /// report cannot be replayed from, or lent to, another node or session.
    pub fn gpu_nonce(&self) -> [u8; 32] {
        let rd = expected_report_data(
            &self.signing_key(),
            &self.hpke_public,
            &self.manifest_hash.0,
        );
        sealroom_reports::binding::gpu_nonce_for(&rd)
    }

    /// Composes GPU evidence collected for [`Node::gpu_nonce`] in: the
    /// registration, the evidence envelope and every report's evidence hash
    /// name it from now on.
    pub fn compose_gpu(&mut self, gpu: sealroom_protocol::api::GpuRegistration) {
        self.gpu = Some(gpu);
    }

    /// The GPU evidence composed in, if any.
    pub fn gpu(&self) -> Option<&sealroom_protocol::api::GpuRegistration> {
        self.gpu.as_ref()
    }

    /// What reports and grants name: the CPU evidence's keccak256, or the
    /// composite of CPU and GPU evidence
    /// ([`sealroom_reports::binding::node_evidence_hash`]).
    pub fn evidence_hash(&self) -> B256 {
        sealroom_reports::binding::node_evidence_hash(
            &self.evidence.evidence,
            self.gpu.as_ref().map(|g| g.evidence.as_slice()),
        )
    }

    /// The manifest hash this node's evidence is bound to.
    pub fn manifest_hash(&self) -> B256 {
        self.manifest_hash
    }

    /// The node's ed25519 public key.
    pub fn signing_key(&self) -> [u8; 32] {
        self.signer.public().ed25519
    }

    /// The node's X25519 HPKE public key (grants are sealed to it).
    pub fn hpke_key(&self) -> [u8; 32] {
        self.hpke_public
    }

    /// The evidence.
    pub fn evidence(&self) -> &NodeEvidence {
        &self.evidence
    }

    /// The identity the node signs coordinator requests with (its report key).
    pub fn request_identity(&self) -> &Identity {
        &self.signer
    }

    /// The launch measurement this node's evidence attests (what the
    /// registration must claim and the manifest's allowlist must hold).
    pub fn measurement(&self) -> &[u8] {
        &self.measurement
    }

    fn sign(&self, report: IntegrityReport) -> SignedReport {
        let signature = self.signer.sign(&signing_message(&report.report_hash()));
        SignedReport {
            report_abi: report.abi_bytes(),
            signature,
        }
    }

    fn base_report(
        &self,
        manifest: &Manifest,
        kind: ReportKind,
        inputs_root: B256,
        prev: B256,
    ) -> IntegrityReport {
        IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: kind as u8,
            sessionId: manifest.session_id,
            manifestHash: self.manifest_hash,
            inputsRoot: inputs_root,
            prevReportHash: prev,
            nodeKey: B256::from(self.signing_key()),
            nodeHpkeKey: B256::from(self.hpke_public),
            evidenceHash: self.evidence_hash(),
            // +16 when GPU evidence is composed in (IntegrityReport.sol).
            teeKind: tee_code(self.evidence.kind) + if self.gpu.is_some() { 16 } else { 0 },
            insecureSimulation: self.evidence.kind == TeeKind::Sim,
            modelHash: B256::ZERO,
            sealedModelHash: B256::ZERO,
            ownerKey: B256::from(manifest.owner.identity.x25519),
            trainingSummaryHash: B256::ZERO,
            seed: manifest.training.seed,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: false,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: now(),
            privacy: Default::default(),
        }
    }

    /// Runs a session to its end and returns the signed reports and the sealed model.
    pub fn run(
        &self,
        inputs: SessionInputs<'_>,
        progress: &mut dyn FnMut(NodeEvent),
    ) -> SessionOutcome {
        let manifest = inputs.manifest;
        let inputs_root = manifest
            .inputs_tree()
            .map(|t| t.root())
            .unwrap_or(B256::ZERO);
        let mut reports = Vec::new();
        let abort = |node: &Node,
                     reports: &mut Vec<SignedReport>,
                     prev: B256,
                     reason: AbortReason,
                     progress: &mut dyn FnMut(NodeEvent)| {
            let signed = node.signed_abort(manifest, inputs_root, prev, &reason);
            progress(NodeEvent::Report(signed.clone()));
            reports.push(signed);
            SessionOutcome {
                reports: std::mem::take(reports),
                sealed_model: None,
                abort: Some(reason),
                summary: None,
            }
        };

        let first_prev = inputs.prev_report_hash;
        let stopped =
            |why: String| AbortReason::new(abort_code::STOPPED, "session", Check::Withdrawal, why);

        // Phase 1: check everything, decrypt, parse. Plaintext lives only in `loaded`.
        let loaded = match self.load(&inputs, progress) {
            Ok(l) => l,
            Err(reason) => {
                self.wipe();
                return abort(self, &mut reports, first_prev, reason, progress);
            }
        };
        if let Some(why) = (inputs.stop)() {
            drop(loaded);
            self.wipe();
            return abort(self, &mut reports, first_prev, stopped(why), progress);
        }
        let opened = self.base_report(manifest, ReportKind::Opened, inputs_root, first_prev);
        let opened_hash = opened.report_hash();
        let signed = self.sign(opened);
        progress(NodeEvent::Report(signed.clone()));
        reports.push(signed);

        // Phase 2: train on the pooled data.
        let (train_set, validation) = loaded;
        progress(NodeEvent::TrainingStarted {
            records: train_set.n as u64,
            epochs: manifest.training.epochs,
        });
        let mut stop_reason: Option<String> = None;
        // The backend the manifest names (never another: its bytes would
        // differ), and DP-SGD when the manifest asks for it: its key is
        // drawn here (or derived from the seed under noise_source = "seed")
        // and wiped with the session.
        let engine = ml::Compute::for_training(&manifest.training).and_then(|compute| {
            let dp = manifest
                .privacy
                .as_ref()
                .map(|spec| ml::DpSgd::new(spec, manifest.training.seed))
                .transpose()?;
            Ok((compute, dp))
        });
        let (compute, dp) = match engine {
            Ok(e) => e,
            Err(e) => {
                drop(train_set);
                drop(validation);
                self.wipe();
                let reason = AbortReason::new(
                    abort_code::TRAINING,
                    "engine",
                    Check::Training,
                    e.to_string(),
                );
                return abort(self, &mut reports, opened_hash, reason, progress);
            }
        };
        let trained = ml::train_private_on(
            compute,
            &manifest.model,
            &manifest.training,
            &manifest.schema,
            dp.as_ref(),
            &train_set,
            validation.as_ref(),
            &mut |m: &EpochMetrics| {
                progress(NodeEvent::Epoch(m.clone()));
                match (inputs.stop)() {
                    Some(why) => {
                        stop_reason.get_or_insert(why);
                        ControlFlow::Break(())
                    }
                    None => ControlFlow::Continue(()),
                }
            },
        );
        drop(train_set);
        drop(validation);
        drop(dp);
        // The schedule trained must be the one the manifest's accountant
        // composes (the same rule from the same counts; a mismatch is a bug
        // that would make the published ε wrong).
        let trained = trained.and_then(|t| match (&t.dp, manifest.privacy_schedule()) {
            (Some(run), Some(plan)) if run.schedule != plan => Err(ml::MlError::Spec {
                field: "privacy",
                message: format!(
                    "trained schedule {:?} differs from the manifest's {plan:?}",
                    run.schedule
                ),
            }),
            _ => Ok(t),
        });
        let trained = match trained {
            Ok(t) => t,
            Err(e) => {
                self.wipe();
                let reason = match (e, stop_reason) {
                    (ml::MlError::Stopped { epoch }, Some(why)) => {
                        stopped(format!("{why} (stopped after epoch {epoch})"))
                    }
                    (e, _) => AbortReason::new(
                        abort_code::TRAINING,
                        "engine",
                        Check::Training,
                        e.to_string(),
                    ),
                };
                return abort(self, &mut reports, opened_hash, reason, progress);
            }
        };

        // A withdrawal that arrived during the last epoch: no model leaves.
        if let Some(why) = (inputs.stop)() {
            drop(trained);
            self.wipe();
            return abort(self, &mut reports, opened_hash, stopped(why), progress);
        }

        // Phase 3: seal to the owner, wipe, sign `completed`.
        let model_hash = sha256(&trained.model_bytes);
        // Sealed to the owner only (docs/trainer.md, "Metrics sealed with
        // the model"): the curve, the accuracy and the confusion matrix on
        // the validation set. Aggregates, no per-record values; the public
        // report carries only their hash.
        let validation_correct: u64 = trained
            .confusion
            .iter()
            .enumerate()
            .filter_map(|(i, row)| row.get(i))
            .sum();
        let validation_set = if trained.validation_from_split {
            "split"
        } else {
            "owner"
        };
        let metrics = match (trained.final_r2, trained.final_rmse) {
            // A regressor: R² and RMSE (target units) instead of accuracy
            // and a confusion matrix.
            (Some(r2), Some(rmse)) => serde_json::json!({
                "task": "regression",
                "final_r2": r2,
                "final_rmse": rmse,
                "final_loss": trained.final_loss,
                "epochs": trained.epochs,
                "train_records": trained.train_records,
                "validation_records": trained.validation_records,
                "validation_set": validation_set,
            }),
            _ => serde_json::json!({
                "final_accuracy": trained.final_accuracy,
                "final_loss": trained.final_loss,
                "epochs": trained.epochs,
                "train_records": trained.train_records,
                "validation_records": trained.validation_records,
                "validation_set": validation_set,
                "validation_correct": validation_correct,
                "confusion_matrix": trained.confusion,
            }),
        };
        let mut metrics = metrics;
        if let (Some(run), Some(obj), Ok(spent)) = (
            &trained.dp,
            metrics.as_object_mut(),
            manifest.privacy_spent(),
        ) {
            // What the completed report publishes, and how many records
            // the Poisson batches held (a count of the sampling's draws,
            // not of the data's values).
            obj.insert(
                "privacy".into(),
                serde_json::json!({
                    "mechanism": "dp-sgd",
                    "epsilon": spent.epsilon,
                    "delta": manifest.privacy.as_ref().map(|p| p.delta),
                    "noise_multiplier": manifest.privacy.as_ref().and_then(|p| p.noise_multiplier),
                    "max_grad_norm": manifest.privacy.as_ref().map(|p| p.max_grad_norm),
                    "sample_rate": run.schedule.sample_rate,
                    "steps": run.schedule.steps,
                    "sampled_records": run.sampled_records,
                }),
            );
        }
        let summary_hash = LpHasher::new("sealroom.training-summary.v1")
            .part(serde_json::to_vec(&metrics).unwrap_or_default())
            .finish();
        let sealed = seal_model(
            manifest.session_id,
            self.manifest_hash,
            manifest.owner.identity.x25519,
            &trained.model_bytes,
            &metrics,
        );
        let mut model_bytes = Zeroizing::new(trained.model_bytes);
        model_bytes.iter_mut().for_each(|b| *b = 0);
        let sealed = match sealed {
            Ok(s) => s,
            Err(e) => {
                self.wipe();
                let reason =
                    AbortReason::new(abort_code::SEALING, "owner", Check::Sealing, e.to_string());
                return abort(self, &mut reports, opened_hash, reason, progress);
            }
        };
        self.wipe();
        let mut done = self.base_report(manifest, ReportKind::Completed, inputs_root, opened_hash);
        done.modelHash = B256::from(model_hash);
        done.sealedModelHash = B256::from(sha256(&sealed));
        done.trainingSummaryHash = B256::from(summary_hash);
        done.dataOrderCommitment = B256::from(trained.data_order_commitment);
        done.inputsWiped = true;
        done.privacy = sealroom_reports::report::privacy_account(manifest);
        let signed = self.sign(done);
        progress(NodeEvent::Report(signed.clone()));
        reports.push(signed);
        let public_summary = serde_json::json!({
            "model_sha256": hex::encode(model_hash),
            "sealed_model_sha256": hex::encode(sha256(&sealed)),
            "training_summary_hash": hex::encode(summary_hash),
            "data_order_commitment": hex::encode(trained.data_order_commitment),
            "train_records": trained.train_records,
            "validation_records": trained.validation_records,
            "epochs": manifest.training.epochs,
        });
        SessionOutcome {
            reports,
            sealed_model: Some(sealed),
            abort: None,
            summary: Some(public_summary),
        }
    }

    /// Ends the session before loading anything: wipes the HPKE key and
    /// signs an `aborted` report naming `input` and `check`, for `manifest`
    /// (the manifest this node's evidence is bound to: a caller that finds
    /// the coordinator serving another one refuses with it, so the report
    /// still names the right session).
    pub fn refuse(
        &self,
        manifest: &Manifest,
        code: u16,
        input: &str,
        check: Check,
        detail: impl Into<String>,
    ) -> SessionOutcome {
        self.wipe();
        let inputs_root = manifest
            .inputs_tree()
            .map(|t| t.root())
            .unwrap_or(B256::ZERO);
        let reason = AbortReason::new(code, input, check, detail);
        SessionOutcome {
            reports: vec![self.signed_abort(manifest, inputs_root, B256::ZERO, &reason)],
            sealed_model: None,
            abort: Some(reason),
            summary: None,
        }
    }

    /// The signed `aborted` report for `reason` (inputs are wiped before any
    /// abort is signed).
    fn signed_abort(
        &self,
        manifest: &Manifest,
        inputs_root: B256,
        prev: B256,
        reason: &AbortReason,
    ) -> SignedReport {
        let mut r = self.base_report(manifest, ReportKind::Aborted, inputs_root, prev);
        r.abortCode = reason.code;
        r.abortReason = reason.text();
        r.inputsWiped = true;
        self.sign(r)
    }

    /// Drops the HPKE secret (the signing key stays until the node is dropped).
    fn wipe(&self) {
        self.hpke.borrow_mut().take();
    }

    fn load(
        &self,
        inputs: &SessionInputs<'_>,
        progress: &mut dyn FnMut(NodeEvent),
    ) -> Result<(Dataset, Option<Dataset>), AbortReason> {
        let m = inputs.manifest;
        let checked = |progress: &mut dyn FnMut(NodeEvent), input: &str, check: Check| {
            progress(NodeEvent::Checked {
                input: input.into(),
                check: check.into(),
            })
        };
        // 1. Manifest and engine.
        // The whole list is checked here against the header every member
        // consented to: its root, count and record total are in the hash.
        let computed = m.validate_and_hash().map_err(|e| {
            AbortReason::new(
                abort_code::MANIFEST,
                "manifest",
                Check::Manifest,
                e.to_string(),
            )
        })?;
        if computed != self.manifest_hash {
            return Err(AbortReason::new(
                abort_code::MANIFEST,
                "manifest",
                Check::ManifestHash,
                "the manifest is not the one this node's evidence is bound to",
            ));
        }
        checked(progress, "manifest", Check::Manifest);
        sealroom_reports::node_check::engine_allowed(&m.engine, &hex::encode(&self.measurement))
            .map_err(|f| {
                AbortReason::new(
                    abort_code::ENGINE,
                    "engine",
                    Check::EngineAllowlist,
                    f.detail,
                )
            })?;
        checked(progress, "engine", Check::EngineAllowlist);

        // 2. Consents: every party and the owner, over this manifest; a withdrawal wins.
        let mh = self.manifest_hash;
        let mut members: Vec<(&str, [u8; 32])> = m
            .parties
            .iter()
            .map(|p| (p.name.as_str(), p.identity.ed25519))
            .collect();
        members.push((m.owner.name.as_str(), m.owner.identity.ed25519));
        for (name, key) in &members {
            let mine: Vec<&Consent> = inputs
                .consents
                .iter()
                .filter(|c| c.member == *key)
                .collect();
            if mine.iter().any(|c| c.action == ConsentAction::Withdraw) {
                return Err(AbortReason::new(
                    abort_code::CONSENT,
                    name,
                    Check::Consent,
                    "consent withdrawn",
                ));
            }
            let c = mine
                .iter()
                .find(|c| c.action == ConsentAction::Consent)
                .ok_or_else(|| {
                    AbortReason::new(abort_code::CONSENT, name, Check::Consent, "no consent")
                })?;
            c.verify(key, &mh).map_err(|e| {
                AbortReason::new(abort_code::CONSENT, name, Check::Consent, e.to_string())
            })?;
        }
        checked(progress, "members", Check::Consent);

        // 3. Grants signed by their owners, and 4. ciphertext hashes — all before any decryption.
        let grantable = m.grantable_inputs();
        let mut plan: Vec<(String, DatasetCommitment, &Grant)> = Vec::new();
        for (input, member, commitment) in &grantable {
            let g = inputs
                .grants
                .iter()
                .find(|g| &g.input == input)
                .ok_or_else(|| {
                    AbortReason::new(
                        abort_code::GRANT_SIGNATURE,
                        input,
                        Check::GrantSignature,
                        "no grant",
                    )
                })?;
            if g.node_key != self.signing_key() || g.node_hpke_key != self.hpke_public {
                return Err(AbortReason::new(
                    abort_code::GRANT_SIGNATURE,
                    input,
                    Check::GrantNode,
                    "grant is for another node",
                ));
            }
            // The member verified some manifest and some evidence: only a
            // grant bound to this node's own manifest and evidence counts.
            if g.manifest_hash != mh {
                return Err(AbortReason::new(
                    abort_code::GRANT_SIGNATURE,
                    input,
                    Check::GrantManifest,
                    format!(
                        "grant is bound to manifest {:#x}, this node's evidence to {mh:#x}",
                        g.manifest_hash
                    ),
                ));
            }
            if g.evidence_hash != self.evidence_hash() {
                return Err(AbortReason::new(
                    abort_code::GRANT_SIGNATURE,
                    input,
                    Check::GrantEvidence,
                    "grant was made after verifying evidence other than this node's",
                ));
            }
            g.verify(&member.ed25519, &mh).map_err(|e| {
                AbortReason::new(
                    abort_code::GRANT_SIGNATURE,
                    input,
                    Check::GrantSignature,
                    e.to_string(),
                )
            })?;
            plan.push((input.clone(), commitment.clone(), g));
        }
        checked(progress, "grants", Check::GrantSignature);
        for (input, commitment, _) in &plan {
            let mut r = inputs.blobs.open(input).map_err(|e| {
                AbortReason::new(
                    abort_code::BLOB_UNAVAILABLE,
                    input,
                    Check::Blob,
                    e.to_string(),
                )
            })?;
            let mut h = Sha256::new();
            let mut len = 0u64;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = r.read(&mut buf).map_err(|e| {
                    AbortReason::new(
                        abort_code::BLOB_UNAVAILABLE,
                        input,
                        Check::Blob,
                        e.to_string(),
                    )
                })?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                len += n as u64;
                if len > m.max_blob_bytes {
                    return Err(AbortReason::new(
                        abort_code::CIPHERTEXT_HASH,
                        input,
                        Check::CiphertextHash,
                        "blob exceeds max_blob_bytes",
                    ));
                }
            }
            let digest: [u8; 32] = h.finalize().into();
            if len != commitment.ciphertext_len
                || B256::from(digest) != commitment.ciphertext_sha256
            {
                return Err(AbortReason::new(
                    abort_code::CIPHERTEXT_HASH,
                    input,
                    Check::CiphertextHash,
                    format!(
                        "blob sha256 {} ({} bytes) differs from the commitment's {:#x} ({} bytes)",
                        hex::encode(digest),
                        len,
                        commitment.ciphertext_sha256,
                        commitment.ciphertext_len
                    ),
                ));
            }
            checked(progress, input, Check::CiphertextHash);
        }

        // 5. Open grants, decrypt, recompute root, count and schema; parse.
        let hpke_secret = self
            .hpke
            .borrow()
            .as_ref()
            .and_then(|h| h.hpke_private_key().ok())
            .ok_or_else(|| {
                AbortReason::new(
                    abort_code::GRANT_OPEN,
                    "node",
                    Check::GrantOpen,
                    "node HPKE key unavailable",
                )
            })?;
        // Each input, once every check on it has passed, is parsed on its
        // own thread while the next one is decrypted and hashed (training
        // still starts only after the last check). At most one parse is in
        // flight, so at most two plaintexts are held at once; parses are
        // joined in plan order, so a bad input is reported as when inputs
        // were parsed one after another.
        let schema = &m.schema;
        let parsed = std::thread::scope(|scope| -> Result<Vec<Dataset>, AbortReason> {
            type Parse<'s> = (
                &'s str,
                std::thread::ScopedJoinHandle<'s, Result<Dataset, ml::MlError>>,
            );
            let join = |(input, handle): Parse<'_>| -> Result<Dataset, AbortReason> {
                let data_err =
                    |e: String| AbortReason::new(abort_code::DATA, input, Check::Data, e);
                handle
                    .join()
                    .map_err(|_| data_err("the parsing thread panicked".into()))?
                    .map_err(|e| data_err(e.to_string()))
            };
            let mut parsed = Vec::new();
            let mut pending: Option<Parse<'_>> = None;
            for (input, commitment, grant) in &plan {
                let checked_input = (|| -> Result<Zeroizing<Vec<u8>>, AbortReason> {
                    let key = grant
                        .open(&hpke_secret, &m.session_id, &self.manifest_hash, commitment)
                        .map_err(|e| {
                            AbortReason::new(
                                abort_code::GRANT_OPEN,
                                input,
                                Check::GrantOpen,
                                e.to_string(),
                            )
                        })?;
                    let reader = inputs.blobs.open(input).map_err(|e| {
                        AbortReason::new(
                            abort_code::BLOB_UNAVAILABLE,
                            input,
                            Check::Blob,
                            e.to_string(),
                        )
                    })?;
                    // The commitment's length is a manifest number: the manifest's
                    // caps bound it, and the initial reservation is bounded again
                    // here (the vector grows as authenticated plaintext arrives).
                    const PLAINTEXT_RESERVE_CAP: u64 = 64 << 20;
                    let reserve = commitment.ciphertext_len.min(PLAINTEXT_RESERVE_CAP);
                    let mut plain =
                        Zeroizing::new(Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)));
                    let (found, columns) = recompute_root_from_blob(reader, &key, |chunk| {
                        plain.extend_from_slice(chunk);
                        Ok(())
                    })
                    .map_err(|e| {
                        AbortReason::new(abort_code::DECRYPT, input, Check::Decrypt, e.to_string())
                    })?;
                    drop(key);
                    if found.ciphertext_sha256 != commitment.ciphertext_sha256
                        || found.ciphertext_len != commitment.ciphertext_len
                    {
                        return Err(AbortReason::new(
                            abort_code::CIPHERTEXT_HASH,
                            input,
                            Check::CiphertextHash,
                            "blob changed between checks",
                        ));
                    }
                    if found.merkle_root != commitment.merkle_root {
                        return Err(AbortReason::new(
                            abort_code::MERKLE_ROOT,
                            input,
                            Check::MerkleRoot,
                            format!(
                                "records hash to {:#x}, commitment says {:#x}",
                                found.merkle_root, commitment.merkle_root
                            ),
                        ));
                    }
                    if found.record_count != commitment.record_count {
                        return Err(AbortReason::new(
                            abort_code::RECORD_COUNT,
                            input,
                            Check::RecordCount,
                            format!(
                                "{} records, commitment says {}",
                                found.record_count, commitment.record_count
                            ),
                        ));
                    }
                    if found.schema_hash != commitment.schema_hash {
                        return Err(AbortReason::new(
                            abort_code::SCHEMA,
                            input,
                            Check::SchemaHash,
                            "columns differ from the commitment",
                        ));
                    }
                    if !same_column_set(&columns, &m.schema.columns()) {
                        return Err(AbortReason::new(
                            abort_code::SCHEMA,
                            input,
                            Check::Schema,
                            "columns differ from the manifest's schema",
                        ));
                    }
                    checked(progress, input, Check::MerkleRoot);
                    Ok(plain)
                })();
                let plain = match checked_input {
                    Ok(plain) => plain,
                    Err(e) => {
                        // An earlier input's bad data comes first.
                        if let Some(p) = pending.take() {
                            join(p)?;
                        }
                        return Err(e);
                    }
                };
                if let Some(p) = pending.take() {
                    parsed.push(join(p)?);
                }
                let handle = scope.spawn(move || {
                    let ds = Dataset::from_csv(&plain, schema);
                    drop(plain);
                    ds
                });
                pending = Some((input.as_str(), handle));
            }
            if let Some(p) = pending.take() {
                parsed.push(join(p)?);
            }
            Ok(parsed)
        })?;
        let mut party_sets = Vec::new();
        let mut validation = None;
        // The owner's set is the one input named after the owner (names
        // are checked in the manifest; no party's can hold a `/`).
        let validation_name = sealroom_protocol::manifest::validation_input_name(&m.owner.name);
        for ((input, _, _), ds) in plan.iter().zip(parsed) {
            if *input == validation_name {
                validation = Some(ds);
            } else {
                party_sets.push(ds);
            }
        }
        drop(hpke_secret);
        self.wipe();
        let refs: Vec<&Dataset> = party_sets.iter().collect();
        let pooled = Dataset::concat(&refs).map_err(|e| {
            AbortReason::new(abort_code::DATA, "pooled", Check::Data, e.to_string())
        })?;
        Ok((pooled, validation))
    }
}

fn same_column_set(a: &[String], b: &[String]) -> bool {
    let mut x = a.to_vec();
    let mut y = b.to_vec();
    x.sort();
    y.sort();
    x == y
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sealroom_protocol::scenario::Scenario;
    use sealroom_protocol::sealed_model::open_model;
    use sealroom_reports::report::verify_report_signature;

    use super::*;
    use crate::local::{prepare, Prepared};

    fn fixture(edit: impl Fn(&mut Scenario)) -> Prepared {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let mut s = Scenario::load(&path).unwrap();
        edit(&mut s);
        prepare(&s).unwrap()
    }

    fn go(
        f: &Prepared,
        node: &Node,
        grants: &[Grant],
        blobs: &std::collections::HashMap<String, Vec<u8>>,
        consents: &[Consent],
    ) -> SessionOutcome {
        f.run_with(node, grants, blobs, consents, &mut |_| {})
    }

    fn assert_aborted(out: &SessionOutcome, node_key: &[u8; 32], input: &str, check: &str) {
        let reason = out.abort.as_ref().expect("session must abort");
        assert_eq!(
            (reason.input.as_str(), reason.check.as_str()),
            (input, check),
            "{reason:?}"
        );
        assert!(out.sealed_model.is_none());
        let last = out.reports.last().unwrap();
        let r = last.report().unwrap();
        assert_eq!(r.kind, ReportKind::Aborted as u8);
        assert!(
            r.abortReason.starts_with(&format!("{input}: {check}:")),
            "{}",
            r.abortReason
        );
        assert!(r.inputsWiped);
        verify_report_signature(&r, node_key, &last.signature).unwrap();
    }

    #[test]
    fn honest_session_completes_and_only_the_owner_opens_the_model() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let nk = node.signing_key();
        let grants = f.grants(&node).unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert!(out.abort.is_none(), "{:?}", out.abort);
        assert_eq!(out.reports.len(), 2);
        let opened = out.reports[0].report().unwrap();
        let done = out.reports[1].report().unwrap();
        verify_report_signature(&opened, &nk, &out.reports[0].signature).unwrap();
        verify_report_signature(&done, &nk, &out.reports[1].signature).unwrap();
        assert_eq!(opened.kind, ReportKind::Opened as u8);
        assert_eq!(done.prevReportHash, opened.report_hash());
        assert_eq!(done.inputsRoot, f.manifest.inputs_tree().unwrap().root());
        assert!(done.inputsWiped && done.insecureSimulation);
        let sealed = out.sealed_model.unwrap();
        assert_eq!(done.sealedModelHash, B256::from(sha256(&sealed)));
        let opened_model = open_model(&sealed, &f.owner).unwrap();
        assert_eq!(done.modelHash, B256::from(sha256(&opened_model.model)));
        assert!(open_model(&sealed, &f.parties[0]).is_err());
        let m = &opened_model.metrics;
        let acc = m["final_accuracy"].as_f64().unwrap();
        assert!(acc >= 0.95, "accuracy {acc}");
        // The owner gets the validation metrics beside the weights: the
        // confusion matrix (classes × classes, counts on the validation
        // set, its trace the correct count) and the per-epoch curve.
        let n_val = m["validation_records"].as_u64().unwrap();
        let classes = f.manifest.schema.label_classes as usize;
        let cm: Vec<Vec<u64>> = serde_json::from_value(m["confusion_matrix"].clone()).unwrap();
        assert_eq!(cm.len(), classes);
        assert!(cm.iter().all(|r| r.len() == classes));
        assert_eq!(cm.iter().flatten().sum::<u64>(), n_val);
        let trace: u64 = (0..classes).map(|i| cm[i][i]).sum();
        assert_eq!(m["validation_correct"].as_u64().unwrap(), trace);
        assert_eq!(trace as f64 / n_val as f64, acc);
        let curve = m["epochs"].as_array().unwrap();
        assert_eq!(curve.len(), f.manifest.training.epochs as usize);
        for (i, e) in curve.iter().enumerate() {
            assert_eq!(e["epoch"].as_u64().unwrap(), i as u64 + 1);
            for k in ["train_loss", "val_loss", "val_accuracy"] {
                assert!(e[k].as_f64().unwrap().is_finite(), "{k} in {e}");
            }
        }
        assert_eq!(curve.last().unwrap()["val_accuracy"].as_f64().unwrap(), acc);
        // The public report commits to the sealed metrics (the hash over
        // their JSON; not recomputed here from the parsed copy: serde_json's
        // default float parser may be one ULP off, so a re-serialisation
        // need not give the sealed bytes back).
        assert_ne!(done.trainingSummaryHash, B256::ZERO);
        // The HPKE key is gone after the session: a second run cannot open grants.
        let again = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_eq!(again.abort.unwrap().check, "grant-open");
    }

    #[test]
    fn flipped_blob_byte_aborts_naming_the_party() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let mut blobs = f.blobs.clone();
        blobs.get_mut("hospital-b").unwrap()[100] ^= 0x01;
        let out = go(&f, &node, &grants, &blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-b", "ciphertext-hash");
        assert_eq!(out.reports.len(), 1, "nothing was opened");
    }

    #[test]
    fn swapped_blob_aborts() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let mut blobs = f.blobs.clone();
        let other = blobs["hospital-c"].clone();
        blobs.insert("hospital-a".into(), other);
        let out = go(&f, &node, &grants, &blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-a", "ciphertext-hash");
    }

    #[test]
    fn grant_signed_by_a_non_party_aborts() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let mut grants = f.grants(&node).unwrap();
        let eve = Identity::generate().unwrap();
        let (k, c) = &f.keys["hospital-a"];
        grants[0] = Grant::create(
            &eve,
            &f.manifest.session_id,
            &f.manifest.hash(),
            "hospital-a",
            c,
            node.signing_key(),
            node.hpke_key(),
            sealroom_reports::binding::evidence_hash(&node.evidence().evidence),
            k,
        )
        .unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-a", "grant-signature");
    }

    #[test]
    fn grant_bound_to_other_evidence_or_manifest_aborts_before_decrypting() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let (k, c) = &f.keys["hospital-a"];
        // The member verified some other evidence (e.g. a coordinator-served
        // registration) but sealed to this node's keys.
        let mut grants = f.grants(&node).unwrap();
        grants[0] = Grant::create(
            &f.parties[0],
            &f.manifest.session_id,
            &f.manifest.hash(),
            "hospital-a",
            c,
            node.signing_key(),
            node.hpke_key(),
            B256::repeat_byte(0xee),
            k,
        )
        .unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-a", "grant-evidence");
        // A grant made over a rewritten manifest.
        let node = f.node().unwrap();
        let mut other = f.manifest.clone();
        other.policy.allow_simulation = !other.policy.allow_simulation;
        let mut grants = f.grants(&node).unwrap();
        grants[1] = Grant::create(
            &f.parties[1],
            &other.session_id,
            &other.hash(),
            "hospital-b",
            &f.keys["hospital-b"].1,
            node.signing_key(),
            node.hpke_key(),
            sealroom_reports::binding::evidence_hash(&node.evidence().evidence),
            &f.keys["hospital-b"].0,
        )
        .unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-b", "grant-manifest");
    }

    #[test]
    fn consent_over_another_manifest_aborts() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let mut consents = f.consents.clone();
        consents[1] = Consent::sign(&f.parties[1], ConsentAction::Consent, B256::repeat_byte(1));
        let out = go(&f, &node, &grants, &f.blobs, &consents);
        assert_aborted(&out, &node.signing_key(), "hospital-b", "consent");
    }

    #[test]
    fn engine_outside_the_allowlist_aborts() {
        let f = fixture(|s| s.engine.trainer_measurements = vec![hex::encode([9u8; 32])]);
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "engine", "engine.allowlist");
    }

    #[test]
    fn commitment_with_a_lying_record_count_aborts() {
        let mut f = fixture(|_| {});
        // hospital-c signed a commitment claiming one record more than its blob holds.
        f.manifest.parties[2].commitment.record_count += 1;
        if let Some((_, c)) = f.keys.get_mut("hospital-c") {
            c.record_count += 1;
        }
        let mh = f.manifest.hash();
        f.consents = f
            .parties
            .iter()
            .map(|p| Consent::sign(p, ConsentAction::Consent, mh))
            .collect();
        f.consents
            .push(Consent::sign(&f.owner, ConsentAction::Consent, mh));
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let out = go(&f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), "hospital-c", "record-count");
    }

    /// Replaces input `name` (manifest party `party`) with `csv`, committed
    /// honestly under its data key so every commitment check passes, and
    /// has every member consent to the changed manifest.
    fn recommit(f: &mut Prepared, party: usize, name: &str, csv: &str) {
        let key = &f.keys[name].0;
        let out = sealroom_protocol::dataset::commit_stream(
            csv.as_bytes(),
            key,
            4096,
            Vec::new(),
            |_| {},
        )
        .unwrap();
        f.manifest.parties[party].commitment = out.commitment.clone();
        if let Some((_, c)) = f.keys.get_mut(name) {
            *c = out.commitment;
        }
        f.blobs.insert(name.into(), out.blob);
        resign(f);
    }

    /// Every member consents to the manifest as it now is.
    fn resign(f: &mut Prepared) {
        let mh = f.manifest.hash();
        f.consents = f
            .parties
            .iter()
            .chain([&f.owner])
            .map(|p| Consent::sign(p, ConsentAction::Consent, mh))
            .collect();
    }

    /// A party's CSV with one feature value that is not a number: it
    /// commits (a commitment is over text), and only parsing refuses it.
    fn with_a_word_in_row_one(party_csv: &str) -> String {
        let mut lines: Vec<String> = party_csv.lines().map(str::to_string).collect();
        let row = &mut lines[1];
        let comma = row.find(',').unwrap();
        row.replace_range(..comma, "abc");
        lines.join("\n") + "\n"
    }

    fn party_csv(i: usize) -> String {
        let s = Scenario::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../scenarios/breast-cancer-3-hospitals.toml"),
        )
        .unwrap();
        std::fs::read_to_string(s.resolve(&s.parties[i].dataset)).unwrap()
    }

    #[test]
    fn inputs_parsed_while_the_next_is_checked_abort_as_if_parsed_in_turn() {
        // Bad data in the first party and a lying record count in the
        // second, checked while the first is parsed: the first party's
        // data is reported, as when each input was parsed before the next
        // was decrypted.
        let mut f = fixture(|_| {});
        recommit(
            &mut f,
            0,
            "hospital-a",
            &with_a_word_in_row_one(&party_csv(0)),
        );
        f.manifest.parties[1].commitment.record_count += 1;
        if let Some((_, c)) = f.keys.get_mut("hospital-b") {
            c.record_count += 1;
        }
        resign(&mut f);
        let out = aborts_on_bad_data(&f, "hospital-a");
        assert_eq!(out.reports.len(), 1, "nothing was opened");

        // Bad data in the last party alone: its parse, the last in
        // flight, is still joined and reported before training.
        let mut f = fixture(|_| {});
        let bad = with_a_word_in_row_one(&party_csv(2));
        recommit(&mut f, 2, "hospital-c", &bad);
        let out = aborts_on_bad_data(&f, "hospital-c");
        assert_eq!(out.reports.len(), 1, "nothing was opened");

        // Bad data in the middle party with a clean last one.
        let mut f = fixture(|_| {});
        let bad = with_a_word_in_row_one(&party_csv(1));
        recommit(&mut f, 1, "hospital-b", &bad);
        aborts_on_bad_data(&f, "hospital-b");
    }

    /// Runs the session on a fresh node and checks it aborted on `input`'s data.
    fn aborts_on_bad_data(f: &Prepared, input: &str) -> SessionOutcome {
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let out = go(f, &node, &grants, &f.blobs, &f.consents);
        assert_aborted(&out, &node.signing_key(), input, "data");
        out
    }

    #[test]
    fn withdrawn_consent_aborts() {
        let f = fixture(|_| {});
        let node = f.node().unwrap();
        let grants = f.grants(&node).unwrap();
        let mut consents = f.consents.clone();
        consents.push(Consent::sign(
            &f.parties[0],
            ConsentAction::Withdraw,
            f.manifest.hash(),
        ));
        let out = go(&f, &node, &grants, &f.blobs, &consents);
        assert_aborted(&out, &node.signing_key(), "hospital-a", "consent");
    }

    #[test]
    fn manifest_over_a_cap_aborts_signed_naming_the_field_without_panicking() {
        use sealroom_protocol::manifest::limits;
        type Edit = fn(&mut Manifest);
        let cases: [(&str, Edit); 5] = [
            ("max_blob_bytes", |m| m.max_blob_bytes = u64::MAX),
            ("parties[1].commitment.ciphertext_len", |m| {
                m.parties[1].commitment.ciphertext_len = u64::MAX
            }),
            ("owner.validation.ciphertext_len", |m| {
                m.max_blob_bytes = limits::MAX_BLOB_BYTES;
                if let Some(v) = &mut m.owner.validation {
                    v.ciphertext_len = limits::MAX_BLOB_BYTES + 1;
                }
            }),
            ("parties[0].commitment.record_count", |m| {
                m.parties[0].commitment.record_count = u64::MAX
            }),
            ("training.epochs", |m| m.training.epochs = u32::MAX),
        ];
        for (field, edit) in cases {
            // Every member consented to the hostile manifest and the node is
            // bound to it: only the caps stand between it and the work it sizes.
            let mut f = fixture(|_| {});
            edit(&mut f.manifest);
            let mh = f.manifest.hash();
            f.consents = f
                .parties
                .iter()
                .chain([&f.owner])
                .map(|p| Consent::sign(p, ConsentAction::Consent, mh))
                .collect();
            let node = f.node().unwrap();
            let grants = f.grants(&node).unwrap();
            let out = go(&f, &node, &grants, &f.blobs, &f.consents);
            assert_aborted(&out, &node.signing_key(), "manifest", "manifest");
            assert_eq!(out.reports.len(), 1, "nothing was opened");
            let reason = out.reports[0].report().unwrap().abortReason;
            assert!(
                reason.contains(&format!("manifest field `{field}`")),
                "{reason}"
            );
        }
    }
}
