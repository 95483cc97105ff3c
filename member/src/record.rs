//! The member's own record of what it signed, one JSON file per session.
//!
//! The coordinator may rewrite anything it stores between two steps; the
//! member therefore keeps, beside its identity (or under `--state DIR`), the
//! manifest it consented to, its upload, the node it granted to and the model
//! it accepted. Every later step checks what the coordinator serves against
//! this record, never against the coordinator's earlier answers. The CLI and
//! the TUI share the files, so consent given in one and grant given in the
//! other check the same record.
//!
//! Layout: `DIR/<session id, 0x-hex>.json`, mode 0600 (directory 0700),
//! written atomically (temporary file, fsync, rename).

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use sealroom_protocol::fsutil::write_atomic;
use sealroom_protocol::identity::hex32;
use sealroom_protocol::manifest::{ConsentAction, ManifestView};
use sealroom_protocol::policy::TeeKind;
use serde::{Deserialize, Serialize};

use crate::MemberError;

/// Format tag of member records.
pub const RECORD_FORMAT: &str = "sealroom-member-record/2";

/// What the member signed for one session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRecord {
    /// Always [`RECORD_FORMAT`].
    pub format: String,
    /// The session.
    pub session_id: B256,
    /// The member's ed25519 key.
    #[serde(with = "hex32")]
    pub member: [u8; 32],
    /// The hash of the manifest the member consented to.
    pub manifest_hash: B256,
    /// That manifest as the member checked it: the header (everything but
    /// the party list, which it commits to) and the member's own entry with
    /// its inclusion proof. Later steps verify the node against *its*
    /// policy, never against the one the coordinator serves.
    pub manifest: ManifestView,
    /// The latest consent or withdrawal the member signed.
    pub consent: Option<ConsentEntry>,
    /// The blob the member uploaded.
    pub upload: Option<UploadEntry>,
    /// The node the member granted its data key to (the latest one).
    pub grant: Option<GrantEntry>,
    /// Nodes granted to before it, oldest first: each was declared lost and
    /// replaced (its grant was sealed to its own key only).
    #[serde(default)]
    pub earlier_grants: Vec<GrantEntry>,
    /// The model the owner accepted.
    pub model: Option<ModelEntry>,
}

/// A signed consent or withdrawal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentEntry {
    /// Consent or withdrawal.
    pub action: ConsentAction,
    /// Unix seconds.
    pub at: i64,
}

/// An uploaded blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadEntry {
    /// The input name.
    pub input: String,
    /// SHA-256 of the bytes sent.
    pub ciphertext_sha256: B256,
    /// Their length.
    pub ciphertext_len: u64,
    /// Unix seconds.
    pub at: i64,
}

/// A grant: the node the member verified itself and released its key to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    /// The input.
    pub input: String,
    /// The node's ed25519 key.
    #[serde(with = "hex32")]
    pub node_key: [u8; 32],
    /// The node's HPKE key.
    #[serde(with = "hex32")]
    pub node_hpke_key: [u8; 32],
    /// keccak256 of the evidence verified.
    pub evidence_hash: B256,
    /// Its kind.
    pub kind: TeeKind,
    /// The attested measurement (hex).
    pub measurement: Option<String>,
    /// Whether it was simulated evidence.
    pub insecure_simulation: bool,
    /// Unix seconds.
    pub at: i64,
}

/// The model the owner accepted, as the verified `completed` report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// keccak256 of the `completed` report as supplied.
    pub completed_report_hash: B256,
    /// The node that signed it.
    #[serde(with = "hex32")]
    pub node_key: [u8; 32],
    /// SHA-256 of the sealed model bytes.
    pub sealed_sha256: B256,
    /// SHA-256 of the model bytes.
    pub model_sha256: B256,
    /// Whether the chain's stored report hash was compared.
    pub chain_checked: bool,
    /// Unix seconds.
    pub at: i64,
}

/// Where a member's records live.
#[derive(Clone, Debug)]
pub struct RecordStore {
    dir: PathBuf,
}

impl RecordStore {
    /// The default: `KEYFILE.sessions/` beside the identity file, so the
    /// record travels with the key that signed it.
    pub fn beside_identity(key_file: &Path) -> Self {
        let mut s = key_file.as_os_str().to_owned();
        s.push(".sessions");
        Self { dir: s.into() }
    }

    /// An explicit directory (`--state DIR`).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record file of a session.
    pub fn path(&self, session: &B256) -> PathBuf {
        self.dir.join(format!("{session:#x}.json"))
    }

    /// Loads a session's record (`None` when the member never acted on it),
    /// checking it is well-formed, this member's, and internally consistent.
    pub fn load(
        &self,
        session: &B256,
        member: &[u8; 32],
    ) -> Result<Option<MemberRecord>, MemberError> {
        let path = self.path(session);
        let err = |detail: String| MemberError::Record {
            path: path.display().to_string(),
            detail,
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let rec: MemberRecord = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
        if rec.format != RECORD_FORMAT {
            return Err(err(format!("format: unknown format `{}`", rec.format)));
        }
        if rec.session_id != *session {
            return Err(err("session_id: belongs to another session".into()));
        }
        if rec.member != *member {
            return Err(err("member: written by another identity".into()));
        }
        match rec.manifest.check_for(member) {
            Ok(h) if h == rec.manifest_hash => {}
            Ok(_) => {
                return Err(err(
                    "manifest: does not hash to manifest_hash (the record was altered)".into(),
                ))
            }
            Err(e) => return Err(err(format!("manifest: {e} (the record was altered)"))),
        }
        Ok(Some(rec))
    }

    /// Writes a record atomically, mode 0600, creating the directory (0700).
    pub fn save(&self, rec: &MemberRecord) -> Result<(), MemberError> {
        let path = self.path(&rec.session_id);
        let err = |detail: String| MemberError::Record {
            path: path.display().to_string(),
            detail,
        };
        create_private_dir(&self.dir).map_err(|e| err(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| err(e.to_string()))?;
        write_atomic(&path, &bytes, true).map_err(|e| err(e.to_string()))
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

impl MemberRecord {
    /// A new record for a manifest the member is about to consent to.
    pub fn new(member: [u8; 32], manifest: ManifestView) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            session_id: manifest.header.session_id,
            member,
            manifest_hash: manifest.hash(),
            manifest,
            consent: None,
            upload: None,
            grant: None,
            earlier_grants: Vec::new(),
            model: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealroom_protocol::identity::Identity;
    use sealroom_protocol::manifest::Manifest;
    use sealroom_protocol::scenario::Scenario;

    fn manifest(owner: &Identity) -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/breast-cancer-3-hospitals.toml");
        let s = Scenario::load(&path).unwrap();
        let c = |n: u8| sealroom_protocol::dataset::DatasetCommitment {
            merkle_root: B256::repeat_byte(n),
            record_count: 10,
            schema_hash: B256::repeat_byte(9),
            ciphertext_sha256: B256::repeat_byte(n + 1),
            ciphertext_len: 100,
        };
        let parties = (0..3)
            .map(|i| (Identity::generate().unwrap().public(), c(i * 2)))
            .collect();
        Manifest::from_scenario(
            &s,
            B256::repeat_byte(7),
            1,
            parties,
            owner.public(),
            Some(c(40)),
        )
        .unwrap()
    }

    #[test]
    fn records_round_trip_privately_and_refuse_what_is_not_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let me = Identity::generate().unwrap();
        let key = me.public().ed25519;
        let store = RecordStore::in_dir(dir.path().join("state"));
        let m = manifest(&me);
        let sid = m.session_id;
        assert!(store.load(&sid, &key).unwrap().is_none());
        let mut rec = MemberRecord::new(key, m.view_of(&key).unwrap());
        rec.consent = Some(ConsentEntry {
            action: ConsentAction::Consent,
            at: 5,
        });
        store.save(&rec).unwrap();
        assert_eq!(store.load(&sid, &key).unwrap().unwrap(), rec);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path(&sid))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "record readable by others: {mode:o}");
            let dmode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
            assert_eq!(
                dmode & 0o077,
                0,
                "record directory open to others: {dmode:o}"
            );
        }
        // Another identity's view of the same file.
        let other = Identity::generate().unwrap().public().ed25519;
        assert!(matches!(
            store.load(&sid, &other),
            Err(MemberError::Record { .. })
        ));
        // A record whose manifest was edited on disk no longer loads.
        let mut text: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path(&sid)).unwrap()).unwrap();
        text["manifest"]["header"]["description"] = "edited".into();
        std::fs::write(store.path(&sid), serde_json::to_vec(&text).unwrap()).unwrap();
        let err = store.load(&sid, &key).unwrap_err();
        assert!(err.to_string().contains("manifest"), "{err}");
        // Unknown fields are refused.
        let mut text: serde_json::Value = serde_json::to_value(&rec).unwrap();
        text["extra"] = 1.into();
        std::fs::write(store.path(&sid), serde_json::to_vec(&text).unwrap()).unwrap();
        assert!(store.load(&sid, &key).is_err());
    }

    #[test]
    fn the_default_store_sits_beside_the_identity() {
        let s = RecordStore::beside_identity(Path::new("/keys/hospital-a.json"));
        assert_eq!(s.dir(), Path::new("/keys/hospital-a.json.sessions"));
        assert_eq!(
            s.path(&B256::repeat_byte(1)),
            Path::new("/keys/hospital-a.json.sessions")
                .join(format!("{:#x}.json", B256::repeat_byte(1)))
        );
    }
}
