//! The member side of a session — consent, upload, node verification, grant,
//! model fetch and open — in one place, shared by `sealroom party|owner`,
//! `sealroom run` and the TUI, so each check exists once (DESIGN §6, amended).
//!
//! The coordinator is the adversary: anything it serves may have changed
//! between two steps. So every step here
//! 1. fetches the member's view of the session (the manifest header and its
//!    own party entry with an inclusion proof, O(log n) of the party list)
//!    and checks that the header hashes to the served hash and the entry is
//!    the member's own, under the committed root (`manifest.served`);
//! 2. checks that hash against the member's own [`record`] of the manifest it
//!    consented to (`manifest.changed`), and from then on uses the *recorded*
//!    manifest — its policy, its commitments, its owner key — never the
//!    served one;
//! 3. records what it did, atomically, before or right after sending it.
//!
//! A grant can only be built from a [`VerifiedNode`], which only
//! [`Member::verify_node`] returns after the member's own verification of the
//! node's evidence against the consented manifest passed: a path that skips
//! the check does not compile.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod commit;
pub mod datakey;
mod error;
mod model;
pub mod record;

use std::io::Read;
use std::path::Path;

use alloy_primitives::B256;
use sealroom_protocol::api::{Client, MemberView, NodeRegistration, SessionStatus};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{
    Consent, ConsentAction, Grant, Manifest, ManifestHeader, ManifestView,
};
use sealroom_protocol::policy::Policy;
use sealroom_reports::attest::{Failure, Verdict};
use sealroom_reports::check::Check;
use sha2::{Digest, Sha256};

pub use error::MemberError;
pub use model::{open_model_file, quality_lines, quality_summary, ChainReportHashes, FetchedModel};
pub use record::{MemberRecord, RecordStore};

use datakey::SelfSealedDataKey;
use record::{ConsentEntry, GrantEntry, UploadEntry};

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The input a member owns in its view of a manifest: its party name, or
/// the owner's validation input; `None` when the member brings no data.
pub fn my_input(manifest: &ManifestView, me: &[u8; 32]) -> Option<String> {
    manifest.input_of(me).map(|(name, _)| name)
}

/// A member of sessions on one coordinator: its identity, a client signing
/// with it, and its records.
pub struct Member<'a> {
    client: Client<'a>,
    me: &'a Identity,
    records: RecordStore,
}

/// The outcome of a consent or withdrawal.
#[derive(Clone, Debug)]
pub struct Consented {
    /// What was signed.
    pub action: ConsentAction,
    /// Over which manifest.
    pub manifest_hash: B256,
    /// Where the record is.
    pub record: String,
}

/// The outcome of an upload.
#[derive(Clone, Debug)]
pub struct Uploaded {
    /// The input.
    pub input: String,
    /// Bytes sent.
    pub bytes: u64,
    /// Their SHA-256.
    pub sha256: B256,
}

/// A node the member verified itself, against the manifest it consented to.
/// Only [`Member::verify_node`] constructs one; [`Member::grant`] needs one.
#[derive(Debug)]
pub struct VerifiedNode {
    session: B256,
    record: MemberRecord,
    reg: NodeRegistration,
    verdict: Verdict,
    evidence_hash: B256,
}

impl VerifiedNode {
    /// The member's verdict.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The registration that was verified.
    pub fn registration(&self) -> &NodeRegistration {
        &self.reg
    }

    /// keccak256 of the verified evidence.
    pub fn evidence_hash(&self) -> B256 {
        self.evidence_hash
    }
}

/// The outcome of a grant.
#[derive(Clone, Debug)]
pub struct Granted {
    /// The input granted.
    pub input: String,
    /// The node's key.
    pub node_key: [u8; 32],
    /// The member's verdict on it.
    pub verdict: Verdict,
}

impl<'a> Member<'a> {
    /// A member talking to `coordinator`, keeping records in `records`.
    pub fn new(coordinator: &str, me: &'a Identity, records: RecordStore) -> Self {
        Self {
            client: Client::new(coordinator, Some(me)),
            me,
            records,
        }
    }

    /// The member's records.
    pub fn records(&self) -> &RecordStore {
        &self.records
    }

    /// The signing client (for reads that carry no trust, like listings).
    pub fn client(&self) -> &Client<'a> {
        &self.client
    }

    fn key(&self) -> [u8; 32] {
        self.me.public().ed25519
    }

    /// The session as served to this member, with its manifest view checked
    /// (`manifest.served`): the header well formed and hashing to the served
    /// hash, the entry this member's own and under the committed party root.
    /// Nothing here is trusted yet.
    pub fn served(&self, session: &B256) -> Result<MemberView, MemberError> {
        let st = self.client.member_view(session)?;
        let header = &st.manifest.header;
        if st.session_id != *session || header.session_id != *session {
            return Err(MemberError::ServedManifest(format!(
                "the coordinator answered for session {:#x}, not {session:#x}",
                header.session_id
            )));
        }
        let computed = st
            .manifest
            .check_for(&self.key())
            .map_err(|e| MemberError::ServedManifest(e.to_string()))?;
        if computed != st.manifest_hash {
            return Err(MemberError::ServedManifest(format!(
                "the served manifest hashes to {computed:#x}, the coordinator claims {:#x}",
                st.manifest_hash
            )));
        }
        Ok(st)
    }

    /// The whole party list, for a member that wants to review every entry
    /// (O(n), by choice): the public status's manifest, refused
    /// (`manifest.served`) unless it is well formed and hashes to
    /// `manifest_hash` — the hash the member checked its own view against,
    /// so the list is the one its consent covers.
    pub fn all_parties(
        &self,
        session: &B256,
        manifest_hash: &B256,
    ) -> Result<Vec<sealroom_protocol::manifest::ManifestParty>, MemberError> {
        let st = self.client.status(session)?;
        let computed = st
            .manifest
            .validate_and_hash()
            .map_err(|e| MemberError::ServedManifest(format!("the whole manifest: {e}")))?;
        if computed != *manifest_hash || st.manifest.session_id != *session {
            return Err(MemberError::ServedManifest(format!(
                "the whole manifest the coordinator serves hashes to {computed:#x}, not {manifest_hash:#x}: its party list is not the one your view commits to"
            )));
        }
        Ok(st.manifest.parties)
    }

    /// The owner's side of `POST /v1/sessions`. The status the coordinator
    /// answered must name the session and manifest the owner built (check
    /// `manifest.changed`), and the owner's record is written from its *own*
    /// manifest before anything is signed: the owner's view carries no party
    /// list, so every later step (its consent, a validation set's grant, the
    /// model fetch) compares the served manifest with this record, and a
    /// party list swapped after creation is refused. Returns the record's
    /// path.
    pub fn pin_created(
        &self,
        manifest: &Manifest,
        answered: &SessionStatus,
    ) -> Result<String, MemberError> {
        let hash = manifest.hash();
        if answered.session_id != manifest.session_id || answered.manifest_hash != hash {
            return Err(MemberError::check_failed(
                Check::ManifestChanged,
                format!(
                    "the coordinator answered session {:#x} with manifest {:#x}; you created session {:#x} with manifest {hash:#x}",
                    answered.session_id, answered.manifest_hash, manifest.session_id
                ),
            ));
        }
        let view = manifest.view_of(&self.key()).ok_or_else(|| {
            MemberError::input("--key", "this identity is not the owner of the manifest")
        })?;
        match self.record(&manifest.session_id)? {
            Some(rec) if rec.manifest_hash != hash => {
                return Err(MemberError::ManifestChanged {
                    consented: rec.manifest_hash,
                    served: hash,
                })
            }
            Some(_) => {}
            None => self.records.save(&MemberRecord::new(self.key(), view))?,
        }
        Ok(self
            .records
            .path(&manifest.session_id)
            .display()
            .to_string())
    }

    /// The member's record of `session`, if any.
    pub fn record(&self, session: &B256) -> Result<Option<MemberRecord>, MemberError> {
        self.records.load(session, &self.key())
    }

    /// The session as served, after checking its manifest is the one in the
    /// member's record (`manifest.changed`); errors when there is no record.
    pub fn checked(&self, session: &B256) -> Result<(MemberView, MemberRecord), MemberError> {
        let rec = self
            .record(session)?
            .ok_or_else(|| MemberError::NotConsented {
                session: *session,
                dir: self.records.dir().display().to_string(),
            })?;
        let st = self.served(session)?;
        if st.manifest_hash != rec.manifest_hash {
            return Err(MemberError::ManifestChanged {
                consented: rec.manifest_hash,
                served: st.manifest_hash,
            });
        }
        Ok((st, rec))
    }

    /// Signs a consent (or withdrawal). A consent is recorded *before* it is
    /// sent, with the whole manifest; once recorded, the member never signs
    /// for another manifest of the same session. A withdrawal is always
    /// possible and is signed over the recorded manifest when there is one.
    ///
    /// `reviewed`: the manifest hash the member was shown and agreed to (the
    /// TUI's confirmation, `party consent --manifest-hash`); a coordinator
    /// that swaps the manifest between review and consent gets nothing signed.
    pub fn consent(
        &self,
        session: &B256,
        action: ConsentAction,
        reviewed: Option<B256>,
    ) -> Result<Consented, MemberError> {
        self.consent_under(session, action, reviewed, None)
    }

    /// [`Member::consent`], refusing (check `privacy`, nothing signed) to
    /// consent to a manifest whose training spends more privacy than the
    /// member's own `local` policy's `max_epsilon` allows: ε recomputed
    /// here from the served manifest's committed DP-SGD parameters; a
    /// manifest without `[privacy]` spends unbounded ε. Withdrawals are
    /// never refused.
    pub fn consent_under(
        &self,
        session: &B256,
        action: ConsentAction,
        reviewed: Option<B256>,
        local: Option<&Policy>,
    ) -> Result<Consented, MemberError> {
        let existing = self.record(session)?;
        // A withdrawal is final: the session aborts on it, and a consent
        // signed after it (by an agent shown `consented = false` by a
        // coordinator hiding the withdrawal) would undo what the member did.
        if matches!(action, ConsentAction::Consent) && withdrew(existing.as_ref()) {
            return Err(MemberError::check_failed(
                Check::Withdrawal,
                format!(
                    "you withdrew from session {session:#x} (your record {}): a withdrawal is final; nothing was signed",
                    self.records.path(session).display()
                ),
            ));
        }
        let mut rec = match (action, existing) {
            (ConsentAction::Withdraw, Some(rec)) => rec,
            (_, existing) => {
                let st = self.served(session)?;
                if let Some(reviewed) = reviewed {
                    if reviewed != st.manifest_hash {
                        return Err(MemberError::NotReviewed {
                            reviewed,
                            served: st.manifest_hash,
                        });
                    }
                }
                if st.manifest.member_name(&self.key()).is_none() {
                    return Err(MemberError::input(
                        "--key",
                        format!(
                            "this identity ({}) is not a member of session {session:#x}",
                            self.me.public().fingerprint()
                        ),
                    ));
                }
                match existing {
                    Some(rec) if rec.manifest_hash != st.manifest_hash => {
                        return Err(MemberError::ManifestChanged {
                            consented: rec.manifest_hash,
                            served: st.manifest_hash,
                        })
                    }
                    Some(rec) => rec,
                    None => MemberRecord::new(self.key(), st.manifest),
                }
            }
        };
        // The privacy limit is checked on the very manifest about to be
        // recorded and signed, never on an earlier fetch: a coordinator
        // could serve a manifest within the limit to the check and another
        // one to the signature.
        if let (ConsentAction::Consent, Some(max)) = (action, local.and_then(|p| p.max_epsilon)) {
            if let Err(e) = rec.manifest.header.privacy_within(max) {
                return Err(MemberError::Check {
                    check: Check::Privacy,
                    detail: format!(
                        "manifest {:#x}: {e} (your policy); nothing was signed",
                        rec.manifest_hash
                    ),
                });
            }
        }
        rec.consent = Some(ConsentEntry { action, at: now() });
        self.records.save(&rec)?;
        let c = Consent::sign(self.me, action, rec.manifest_hash);
        self.client.consent(session, &c)?;
        Ok(Consented {
            action,
            manifest_hash: rec.manifest_hash,
            record: self.records.path(session).display().to_string(),
        })
    }

    /// Uploads the member's blob, streaming it from `blob`: checked first
    /// (length and SHA-256, one pass, bounded memory) against the commitment
    /// in the *consented* manifest, then sent with its hash signed.
    pub fn upload(
        &self,
        session: &B256,
        blob: &Path,
        progress: &dyn Fn(&str, u64, u64),
    ) -> Result<Uploaded, MemberError> {
        let (_, mut rec) = self.checked(session)?;
        let input = my_input(&rec.manifest, &self.key())
            .ok_or_else(|| MemberError::input("--key", "this member brings no dataset"))?;
        let commitment = commitment_of(&rec.manifest, &self.key(), &input)?;
        let what = format!("--blob {}", blob.display());
        let (len, digest) = hash_file(blob, progress).map_err(|e| MemberError::input(&what, e))?;
        if digest != commitment.ciphertext_sha256 || len != commitment.ciphertext_len {
            return Err(MemberError::input(
                &what,
                format!(
                    "does not match the commitment for `{input}` in the manifest you consented to ({len} bytes, sha256 {digest:#x}; expected {} bytes, {:#x})",
                    commitment.ciphertext_len, commitment.ciphertext_sha256
                ),
            ));
        }
        let file = std::fs::File::open(blob).map_err(|e| MemberError::input(&what, e))?;
        self.client
            .upload_blob_from(session, &input, len, digest.0, file, &|done, total| {
                progress("uploading", done, total)
            })?;
        rec.upload = Some(UploadEntry {
            input: input.clone(),
            ciphertext_sha256: digest,
            ciphertext_len: len,
            at: now(),
        });
        self.records.save(&rec)?;
        Ok(Uploaded {
            input,
            bytes: len,
            sha256: digest,
        })
    }

    /// Verifies the node registered for `session` itself, at `at`, against
    /// the policy of the manifest it consented to: the evidence, its binding
    /// to the node's keys and the consented manifest hash, the attested
    /// measurement against the registration's claim and the engine allowlist.
    pub fn verify_node(&self, session: &B256, at: i64) -> Result<VerifiedNode, MemberError> {
        self.verify_node_with(session, at, None)
    }

    /// [`Member::verify_node`], and then, when given, under the member's
    /// own `local` policy too (which can only narrow the manifest's: both
    /// must accept the node).
    pub fn verify_node_with(
        &self,
        session: &B256,
        at: i64,
        local: Option<&sealroom_protocol::policy::Policy>,
    ) -> Result<VerifiedNode, MemberError> {
        let (st, rec) = self.checked(session)?;
        consented_to_grant(&rec)?;
        let reg = st.node.ok_or_else(|| MemberError::Check {
            check: Check::NodeRegistered,
            detail: "no node has registered for this session yet".into(),
        })?;
        another_node_within_privacy(&rec, &reg, local)?;
        let verdict = verify_registration(&rec.manifest.header, &reg, at);
        if !verdict.verified {
            let f = verdict.failure.clone().unwrap_or_else(|| {
                Failure::new(
                    sealroom_reports::check::Check::EvidenceVerified,
                    "rejected without a named check",
                )
            });
            return Err(MemberError::NodeRejected(f));
        }
        if let Some(local) = local {
            let mine = sealroom_reports::node_check::verify_registration_under(
                &rec.manifest.header,
                local,
                &reg,
                at,
            );
            if !mine.verified {
                let mut f = mine.failure.unwrap_or_else(|| {
                    Failure::new(Check::EvidenceVerified, "rejected without a named check")
                });
                f.detail = format!("the member's own policy: {}", f.detail);
                return Err(MemberError::NodeRejected(f));
            }
        }
        let evidence_hash = sealroom_reports::binding::registration_evidence_hash(&reg);
        Ok(VerifiedNode {
            session: *session,
            record: rec,
            reg,
            verdict,
            evidence_hash,
        })
    }

    /// Grants the member's data key (`data_key_file`, from `sealroom commit`)
    /// to a node this member verified. The grant is signed over the consented
    /// manifest hash, the node's signing and HPKE keys and the evidence hash.
    pub fn grant(&self, node: VerifiedNode, data_key_file: &Path) -> Result<Granted, MemberError> {
        let VerifiedNode {
            session,
            mut record,
            reg,
            verdict,
            evidence_hash,
        } = node;
        consented_to_grant(&record)?;
        let input = my_input(&record.manifest, &self.key())
            .ok_or_else(|| MemberError::input("--key", "this member brings no dataset"))?;
        let commitment = commitment_of(&record.manifest, &self.key(), &input)?;
        let sealed = SelfSealedDataKey::load_for(data_key_file, self.me, &commitment.digest())?;
        let key = sealed.open(self.me).map_err(|e| {
            MemberError::input(format!("--data-key {}", data_key_file.display()), e)
        })?;
        let g = Grant::create(
            self.me,
            &record.session_id,
            &record.manifest_hash,
            &input,
            &commitment,
            reg.node_key,
            reg.hpke_key,
            evidence_hash,
            &key,
        )
        .map_err(|e| MemberError::check_failed(Check::Grant, e.to_string()))?;
        drop(key);
        if let Some(prev) = record.grant.take() {
            if prev.node_key == reg.node_key {
                // The same node again (a resend after a crash): one entry.
            } else {
                record.earlier_grants.push(prev);
            }
        }
        record.grant = Some(GrantEntry {
            input: input.clone(),
            node_key: reg.node_key,
            node_hpke_key: reg.hpke_key,
            evidence_hash,
            kind: reg.kind,
            measurement: verdict.measurement.clone(),
            insecure_simulation: verdict.insecure_simulation,
            at: now(),
        });
        self.records.save(&record)?;
        self.client.grant(&session, &g)?;
        Ok(Granted {
            input,
            node_key: reg.node_key,
            verdict,
        })
    }
}

/// Whether the member's record says its latest act was a withdrawal.
fn withdrew(rec: Option<&MemberRecord>) -> bool {
    matches!(
        rec.and_then(|r| r.consent.as_ref()).map(|c| c.action),
        Some(ConsentAction::Withdraw)
    )
}

/// A node is verified for, and a data key granted to, only in a session
/// whose consent the member's own record holds: never after the member
/// withdrew (check `withdrawal`), whatever the coordinator serves, and
/// never before it consented (check `consent`).
fn consented_to_grant(rec: &MemberRecord) -> Result<(), MemberError> {
    match rec.consent.as_ref().map(|c| c.action) {
        Some(ConsentAction::Consent) => Ok(()),
        Some(ConsentAction::Withdraw) => Err(MemberError::check_failed(
            Check::Withdrawal,
            format!(
                "you withdrew from session {:#x}: no node is verified or granted to",
                rec.session_id
            ),
        )),
        None => Err(MemberError::check_failed(
            Check::Consent,
            format!(
                "you have not consented to session {:#x}: consent first; nothing was granted",
                rec.session_id
            ),
        )),
    }
}

/// A second node for a private session whose noise is drawn inside the TEE
/// is a second, independently noised training: the coordinator can declare
/// a node lost after it sealed a model, and every node granted to may seal
/// one for the owner. So each node granted to counts as one spending of the
/// manifest's ε against the member's own `max_epsilon`; without a limit of
/// its own the member consented to one training, and a second node is
/// refused (check `privacy`). A replay under seed-keyed noise is the same
/// training bit for bit, and a session without `[privacy]` spends no ε.
fn another_node_within_privacy(
    rec: &MemberRecord,
    reg: &NodeRegistration,
    local: Option<&Policy>,
) -> Result<(), MemberError> {
    let header = &rec.manifest.header;
    let keyed_in_tee = header
        .privacy
        .as_ref()
        .is_some_and(|p| p.noise_source == sealroom_protocol::privacy::NoiseSource::Tee);
    let earlier: Vec<[u8; 32]> = rec
        .earlier_grants
        .iter()
        .chain(rec.grant.as_ref())
        .map(|g| g.node_key)
        .collect();
    if !keyed_in_tee || earlier.is_empty() || earlier.contains(&reg.node_key) {
        return Ok(());
    }
    let mut nodes = earlier;
    nodes.sort_unstable();
    nodes.dedup();
    let trainings = nodes.len() + 1;
    let epsilon = header
        .privacy_spent()
        .map(|s| s.epsilon)
        .map_err(|e| MemberError::check_failed(Check::Privacy, e.message))?;
    let spent = epsilon * trainings as f64;
    match local.and_then(|p| p.max_epsilon) {
        Some(max) if spent <= max => Ok(()),
        limit => Err(MemberError::check_failed(
            Check::Privacy,
            format!(
                "node {trainings} of this private session (the others were declared lost): each node draws its own noise and may seal a model, so the owner could learn up to {trainings} × ε = {spent:.4}; {}; nothing was granted",
                match limit {
                    Some(max) => format!("your policy's max_epsilon is {max}"),
                    None => "you consented to one training (a policy with max_epsilon allows more)".into(),
                }
            ),
        )),
    }
}

/// The member's own verification of a registered node against `manifest`
/// (the consented one): evidence, binding, policy, attested measurement.
pub fn verify_registration(manifest: &ManifestHeader, reg: &NodeRegistration, at: i64) -> Verdict {
    sealroom_reports::node_check::verify_registration(manifest, reg, at)
}

fn commitment_of(
    manifest: &ManifestView,
    me: &[u8; 32],
    input: &str,
) -> Result<sealroom_protocol::dataset::DatasetCommitment, MemberError> {
    manifest
        .input_of(me)
        .filter(|(n, _)| n == input)
        .map(|(_, c)| c)
        .ok_or_else(|| {
            MemberError::check_failed(
                Check::ManifestInput,
                format!("no commitment for `{input}` in the consented manifest"),
            )
        })
}

/// Length and SHA-256 of a file, in one bounded-memory pass (1 MiB at a
/// time); `progress` gets `("checking the blob", done, total)`. Public so
/// the TUI shows a blob's own values with the same reading `upload` checks.
pub fn hash_file(path: &Path, progress: &dyn Fn(&str, u64, u64)) -> std::io::Result<(u64, B256)> {
    let mut f = std::fs::File::open(path)?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        progress("checking the blob", done, total);
    }
    Ok((done, B256::from(<[u8; 32]>::from(h.finalize()))))
}
