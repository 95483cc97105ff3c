//! The member's signed actions, run on a worker thread: the same sequences as
//! the `sealroom party` / `owner` commands (src/flows.rs), reimplemented over
//! the protocol client because the TUI must not depend on the root crate.
//! Each re-checks what it relies on (manifest hash, my own node verdict,
//! blob hash) rather than trusting the snapshot the UI showed.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::Sender;

use alloy_primitives::B256;
use sealroom_protocol::api::{
    encode_segment, request_signing_message, ApiError, Client, SessionStatus, HDR_KEY, HDR_NONCE,
    HDR_SIGNATURE, HDR_TIMESTAMP,
};
use sealroom_protocol::fsutil::write_atomic;
use sealroom_protocol::identity::{hex32, Identity};
use sealroom_protocol::manifest::{Consent, ConsentAction, Grant};
use sealroom_protocol::seal::{self, SealedBox};
use sealroom_protocol::sealed_model::open_model;
use sealroom_protocol::stream::DataKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::app::{my_input, Action, Busy};
use crate::worker::{bundle_from_status, now, Msg};

/// Format tag of the self-sealed data key `sealroom commit` writes.
pub const DATAKEY_FORMAT: &str = "sealroom-datakey/1";
/// HPKE purpose of a member's own copy of its data key.
pub const SELF_DATAKEY_PURPOSE: &str = "datakey-self";

/// A member's data key sealed to its own X25519 key (`BLOB.datakey`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfSealedDataKey {
    /// Always [`DATAKEY_FORMAT`].
    pub format: String,
    /// Who can open it.
    #[serde(with = "hex32")]
    pub party: [u8; 32],
    /// The commitment it belongs to.
    #[serde(with = "hex32")]
    pub commitment_digest: [u8; 32],
    /// The sealed key.
    pub sealed: SealedBox,
}

/// Runs `action` for the session `st`; the Ok text is shown to the user.
pub fn run(
    base: &str,
    me: &Identity,
    action: &Action,
    st: &SessionStatus,
    out: &Sender<Msg>,
) -> Result<String, String> {
    let client = Client::new(base, Some(me));
    let progress = |label: &str, done: u64, total: u64| {
        let _ = out.send(Msg::Progress(Busy {
            label: label.to_string(),
            done,
            total,
        }));
    };
    let m = &st.manifest;
    let mh = m.hash();
    if mh != st.manifest_hash {
        return Err(
            "refused: the manifest does not hash to the coordinator's manifest hash".into(),
        );
    }
    let mykey = me.public().ed25519;
    match action {
        Action::Consent(a) => {
            let c = Consent::sign(me, *a, mh);
            client
                .consent(&m.session_id, &c)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{} over manifest {mh:#x}",
                if *a == ConsentAction::Consent {
                    "consented"
                } else {
                    "withdrew consent"
                }
            ))
        }
        Action::Upload(path) => {
            let input = my_input(m, &mykey).ok_or("this member brings no dataset")?;
            let (_, _, c) = m
                .grantable_inputs()
                .into_iter()
                .find(|(n, _, _)| *n == input)
                .ok_or_else(|| format!("no commitment for {input} in the manifest"))?;
            let bytes = read_with_progress(path, &progress)?;
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            if digest != c.ciphertext_sha256.0 || bytes.len() as u64 != c.ciphertext_len {
                return Err(format!(
                    "{}: does not match the commitment in the manifest for {input}",
                    path.display()
                ));
            }
            upload_with_progress(base, me, &m.session_id, &input, &bytes, &progress)?;
            Ok(format!(
                "uploaded {} ({} bytes) as {input}",
                path.display(),
                bytes.len()
            ))
        }
        Action::Grant(path) => {
            progress("verifying the node myself", 0, 0);
            let fresh = client.status(&m.session_id).map_err(|e| e.to_string())?;
            if fresh.manifest_hash != mh {
                return Err("refused: the session's manifest changed".into());
            }
            let reg = fresh
                .node
                .ok_or("no node has registered for this session yet")?;
            let verdict = sealroom_reports::node_check::verify_registration(m, &reg, now());
            if !verdict.verified {
                let (check, detail) = verdict
                    .failure
                    .map(|f| (f.check, f.detail))
                    .unwrap_or_else(|| ("unknown".into(), String::new()));
                return Err(format!(
                    "grant refused: my verification of the node failed: {check}: {detail}"
                ));
            }
            let input = my_input(m, &mykey).ok_or("this member brings no dataset")?;
            let (_, _, commitment) = m
                .grantable_inputs()
                .into_iter()
                .find(|(n, _, _)| *n == input)
                .ok_or_else(|| format!("no commitment for {input}"))?;
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let sealed: SelfSealedDataKey = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a sealed data key: {e}", path.display()))?;
            if sealed.format != DATAKEY_FORMAT {
                return Err(format!(
                    "{}: unknown format `{}`",
                    path.display(),
                    sealed.format
                ));
            }
            if sealed.party != mykey {
                return Err(format!("{}: sealed for another member", path.display()));
            }
            if sealed.commitment_digest != commitment.digest() {
                return Err(format!("{}: belongs to another commitment", path.display()));
            }
            progress("sealing my data key to the node", 0, 0);
            let info = seal::info(SELF_DATAKEY_PURPOSE, &sealed.commitment_digest);
            let bytes = seal::open(me, &info, &sealed.commitment_digest, &sealed.sealed)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| format!("{}: not a 32-byte key", path.display()))?;
            let key = DataKey::from_bytes(arr);
            // The key's plaintext copies: the Zeroizing buffer and this array.
            arr.zeroize();
            drop(bytes);
            let g = Grant::create(me, m, &input, &commitment, reg.node_key, reg.hpke_key, &key)
                .map_err(|e| e.to_string())?;
            drop(key);
            client.grant(&m.session_id, &g).map_err(|e| e.to_string())?;
            Ok(format!(
                "node verified by me ({}{}); data key for {input} granted to node {}",
                verdict.kind,
                if verdict.insecure_simulation {
                    ", INSECURE-SIMULATION"
                } else {
                    ""
                },
                hex::encode(&reg.node_key[..8])
            ))
        }
        Action::FetchModel(path) => {
            progress("fetching the sealed model", 0, 0);
            let sealed = client
                .sealed_model(&m.session_id)
                .map_err(|e| e.to_string())?;
            progress("opening the model", 0, 0);
            let opened = open_model(&sealed, me).map_err(|e| e.to_string())?;
            write_atomic(path, &opened.model, true)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!(
                "model {} bytes, sha256 {} written to {}",
                opened.model.len(),
                hex::encode(Sha256::digest(opened.model.as_slice())),
                path.display()
            ))
        }
        Action::Export(path) => {
            progress("fetching the status", 0, 0);
            let fresh = client.status(&m.session_id).map_err(|e| e.to_string())?;
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

/// `PUT /v1/sessions/{id}/blobs/{input}`, signed like the protocol client
/// does, but streaming the body through a counting reader so the bar moves
/// while the blob goes out (the client's `upload_blob` takes the whole slice
/// and reports nothing until the coordinator answers).
fn upload_with_progress(
    base: &str,
    me: &Identity,
    session: &B256,
    input: &str,
    bytes: &[u8],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(), String> {
    let path = format!("/v1/sessions/{session:#x}/blobs/{}", encode_segment(input));
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let ts = now().max(0) as u64;
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| format!("randomness: {e}"))?;
    let nonce = hex::encode(nonce);
    let sig = me.sign(&request_signing_message("PUT", &path, ts, &nonce, bytes));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .new_agent();
    let total = bytes.len() as u64;
    let mut reader = Counting {
        inner: bytes,
        done: 0,
        total,
        progress,
    };
    let mut resp = agent
        .put(&url)
        .header(HDR_KEY, hex::encode(me.public().ed25519))
        .header(HDR_TIMESTAMP, ts.to_string())
        .header(HDR_NONCE, nonce)
        .header(HDR_SIGNATURE, hex::encode(sig))
        .header("content-type", "application/octet-stream")
        .header("content-length", total.to_string())
        .send(ureq::SendBody::from_reader(&mut reader))
        .map_err(|e| format!("coordinator unreachable at {base}: {e}"))?;
    let status = resp.status().as_u16();
    if status >= 400 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        return Err(match serde_json::from_str::<ApiError>(&text) {
            Ok(e) => format!("coordinator: {status} {}: {}", e.code, e.message),
            Err(_) => format!("coordinator: {status}: {text}"),
        });
    }
    Ok(())
}

/// Reads from a slice and reports how much has been read.
struct Counting<'a> {
    inner: &'a [u8],
    done: u64,
    total: u64,
    progress: &'a dyn Fn(&str, u64, u64),
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.done;
        self.done += n as u64;
        // One message per 256 KiB (and at the end): a multi-GB blob must not
        // flood the UI's channel.
        if self.done >> 18 != before >> 18 || self.done == self.total {
            (self.progress)("uploading", self.done, self.total);
        }
        Ok(n)
    }
}

fn read_with_progress(path: &Path, progress: &dyn Fn(&str, u64, u64)) -> Result<Vec<u8>, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(total as usize);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        progress("reading and checking the blob", bytes.len() as u64, total);
    }
    Ok(bytes)
}
