//! The member's signed actions, run on a worker thread. Every check lives
//! in `sealroom-member`, the library the `sealroom party|owner` commands use
//! too, with the same record of what this member signed (beside its key):
//! consent given here and a grant given on the command line (or the
//! reverse) check the same consented manifest.

use std::path::Path;
use std::sync::mpsc::Sender;

use sealroom_member::{Member, MemberError, RecordStore};
use sealroom_protocol::api::SessionStatus;
use sealroom_protocol::fsutil::write_atomic;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::ConsentAction;

use crate::app::{Action, Busy};
use crate::worker::{bundle_from_status, now, Msg};

/// A member-side refusal as the TUI shows it: the check first.
fn shown(e: MemberError) -> String {
    match e.check() {
        Some(check) => format!("refused: {check}: {}", e.detail()),
        None => e.to_string(),
    }
}

/// Refuses an output path the user typed that would replace the member's
/// identity file or a file of its record store: the secret key, and the
/// record every later check runs against, are never written over.
fn refuse_own_files(path: &Path, key_file: &Path, records: &RecordStore) -> Result<(), String> {
    sealroom_member::commit::refuse_same_files(&[
        ("your identity file", key_file),
        ("the output", path),
    ])?;
    let dir_of = |p: &Path| {
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::canonicalize(parent).ok()
    };
    match (dir_of(path), std::fs::canonicalize(records.dir()).ok()) {
        (Some(a), Some(b)) if a == b => Err(format!(
            "{}: inside your record store ({}); choose another place",
            path.display(),
            records.dir().display()
        )),
        _ => Ok(()),
    }
}

/// Runs `action` for the session `st`; the Ok text is shown to the user.
pub fn run(
    base: &str,
    me: &Identity,
    key_file: &Path,
    records: &RecordStore,
    action: &Action,
    st: &SessionStatus,
    out: &Sender<Msg>,
) -> Result<String, String> {
    let member = Member::new(base, me, records.clone());
    let progress = |label: &str, done: u64, total: u64| {
        let _ = out.send(Msg::Progress(Busy {
            label: label.to_string(),
            done,
            total,
        }));
    };
    let session = st.session_id;
    match action {
        Action::Consent(a) => {
            // Sign only the manifest the confirmation showed.
            let done = member
                .consent(&session, *a, Some(st.manifest_hash))
                .map_err(shown)?;
            Ok(format!(
                "{} over manifest {:#x} (recorded)",
                if *a == ConsentAction::Consent {
                    "consented"
                } else {
                    "withdrew consent"
                },
                done.manifest_hash
            ))
        }
        Action::Upload(path) => {
            // One message per 256 KiB (and at the end): a multi-GB blob must
            // not flood the UI's channel.
            let last = std::cell::Cell::new(u64::MAX);
            let throttled = |label: &str, done: u64, total: u64| {
                if done >> 18 != last.get() >> 18 || done == total {
                    last.set(done);
                    progress(label, done, total);
                }
            };
            let up = member.upload(&session, path, &throttled).map_err(shown)?;
            Ok(format!(
                "uploaded {} ({} bytes) as {}",
                path.display(),
                up.bytes,
                up.input
            ))
        }
        Action::Grant(path) => {
            progress("verifying the node myself", 0, 0);
            let node = member.verify_node(&session, now()).map_err(|e| match e {
                MemberError::NodeRejected(f) => format!(
                    "grant refused: my verification of the node failed: {}: {}",
                    f.check, f.detail
                ),
                other => shown(other),
            })?;
            progress("sealing my data key to the node", 0, 0);
            let g = member.grant(node, path).map_err(shown)?;
            Ok(format!(
                "node verified by me ({}{}); data key for {} granted to node {}",
                g.verdict.kind,
                if g.verdict.insecure_simulation {
                    ", INSECURE-SIMULATION"
                } else {
                    ""
                },
                g.input,
                hex::encode(&g.node_key[..8])
            ))
        }
        Action::FetchModel(path) => {
            refuse_own_files(path, key_file, records)?;
            progress("fetching and verifying the model", 0, 0);
            let f = member.fetch_model(&session, None).map_err(shown)?;
            write_atomic(path, &f.opened.model, true)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            // How good it is, from the sealed metrics.
            Ok(format!(
                "model {} bytes, sha256 {} written to {}; it is the model the verified completed report {:#x} names (chain not checked here); {}",
                f.opened.model.len(),
                hex::encode(f.model_sha256),
                path.display(),
                f.report_hash,
                sealroom_member::quality_summary(&f.opened.metrics),
            ))
        }
        Action::Export(path) => {
            refuse_own_files(path, key_file, records)?;
            progress("fetching the status", 0, 0);
            let fresh = member
                .client()
                .status(&session)
                .map_err(|e| e.to_string())?;
            match bundle_from_status(&fresh) {
                Some(b) => {
                    let text = serde_json::to_vec_pretty(&b).map_err(|e| e.to_string())?;
                    write_atomic(path, &text, false)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok(format!(
                        "bundle ({} report(s)) written to {}; verify: sealroom report verify {}",
                        b.reports.len(),
                        path.display(),
                        path.display()
                    ))
                }
                None => {
                    let text = serde_json::to_vec_pretty(&fresh).map_err(|e| e.to_string())?;
                    write_atomic(path, &text, false)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    Ok(format!(
                        "no reports yet, so no bundle: the session status JSON was written to {} instead",
                        path.display()
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod own_files {
    use super::*;

    #[test]
    fn outputs_over_the_identity_or_into_the_record_store_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("me.json");
        std::fs::write(&key, b"{}").unwrap();
        let records = RecordStore::beside_identity(&key);
        std::fs::create_dir_all(records.dir()).unwrap();
        let err = refuse_own_files(&key, &key, &records).unwrap_err();
        assert!(err.contains("your identity file"), "{err}");
        // The same file under another spelling.
        let dotted = dir.path().join(".").join("me.json");
        assert!(refuse_own_files(&dotted, &key, &records).is_err());
        let inside = records.dir().join("0xabc.json");
        let err = refuse_own_files(&inside, &key, &records).unwrap_err();
        assert!(err.contains("record store"), "{err}");
        refuse_own_files(&dir.path().join("model.bin"), &key, &records).unwrap();
    }
}
