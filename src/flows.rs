//! The party, owner and node flows shared by the `party`/`owner` subcommands
//! and by `sealroom run` (which plays every member of a scenario).

use std::path::Path;

use alloy_primitives::B256;
use anyhow::{anyhow, bail, Context, Result};
use sealroom_protocol::api::{Client, SessionStatus};
use sealroom_protocol::dataset::SignedCommitment;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{validation_input_name, Consent, ConsentAction, Grant, Manifest};
use sealroom_protocol::sealed_model::{open_model, OpenedModel};
use sealroom_reports::attest::Verdict;

use crate::cmd::commit::SelfSealedDataKey;

/// The input a member owns in a manifest: its party name, or the owner's
/// validation input. `None` when the member brings no data.
pub fn my_input(manifest: &Manifest, me: &Identity) -> Result<Option<String>> {
    let key = me.public().ed25519;
    if let Some(p) = manifest.parties.iter().find(|p| p.identity.ed25519 == key) {
        return Ok(Some(p.name.clone()));
    }
    if manifest.owner.identity.ed25519 == key {
        return Ok(manifest
            .owner
            .validation
            .as_ref()
            .map(|_| validation_input_name(&manifest.owner.name)));
    }
    bail!(
        "this identity ({}) is not a member of the session",
        me.public().fingerprint()
    )
}

/// Fetches the session and checks the manifest hash the coordinator claims.
pub fn fetch(client: &Client<'_>, session: &B256) -> Result<SessionStatus> {
    let st = client.status(session)?;
    if st.manifest.hash() != st.manifest_hash {
        bail!("the coordinator's manifest hash does not match its manifest");
    }
    st.manifest.validate()?;
    Ok(st)
}

/// Signs and sends a consent (or withdrawal) over the manifest hash.
pub fn consent(
    client: &Client<'_>,
    manifest: &Manifest,
    me: &Identity,
    action: ConsentAction,
) -> Result<()> {
    let c = Consent::sign(me, action, manifest.hash());
    client.consent(&manifest.session_id, &c)?;
    Ok(())
}

/// Uploads the member's encrypted blob after checking it matches the
/// commitment the manifest holds for the member's input.
pub fn upload_blob(
    client: &Client<'_>,
    manifest: &Manifest,
    me: &Identity,
    blob: &Path,
) -> Result<()> {
    let input = my_input(manifest, me)?.ok_or_else(|| anyhow!("this member brings no dataset"))?;
    let expected = manifest
        .grantable_inputs()
        .into_iter()
        .find(|(n, _, _)| *n == input)
        .map(|(_, _, c)| c)
        .ok_or_else(|| anyhow!("no commitment for {input} in the manifest"))?;
    let bytes = std::fs::read(blob).with_context(|| format!("--blob {}", blob.display()))?;
    let digest = sealroom_protocol::hash::sha256(&bytes);
    if B256::from(digest) != expected.ciphertext_sha256
        || bytes.len() as u64 != expected.ciphertext_len
    {
        bail!(
            "--blob {}: does not match the commitment in the manifest for {input}",
            blob.display()
        );
    }
    client.upload_blob(&manifest.session_id, &input, &bytes)?;
    Ok(())
}

/// Why a grant was not made.
#[derive(Debug)]
pub enum GrantError {
    /// The member's own verification refused the node's evidence (the failed check).
    NodeRejected(sealroom_reports::attest::Failure),
    /// Anything else: the session, the data key file, the coordinator.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for GrantError {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl GrantError {
    /// The command's failure: a rejected node is a verification failure (exit 1)
    /// naming the check; `who` prefixes the detail.
    pub fn into_failure(self, who: &str) -> crate::exit::Failure {
        match self {
            GrantError::NodeRejected(f) => crate::exit::Failure::Verification {
                check: format!("node-evidence: {}", f.check),
                detail: format!("{who}{}", f.detail),
            },
            GrantError::Other(e) => crate::exit::runtime_err(format!("{who}{e:#}")),
        }
    }
}

/// Verifies the registered node's evidence locally and, only if it passes,
/// grants the member's data key to the node. Returns the local verdict.
pub fn grant(
    client: &Client<'_>,
    manifest: &Manifest,
    me: &Identity,
    data_key_file: &Path,
    at: i64,
) -> Result<Verdict, GrantError> {
    let st = fetch(client, &manifest.session_id)?;
    if st.manifest_hash != manifest.hash() {
        return Err(anyhow!("the session's manifest changed").into());
    }
    let reg = st
        .node
        .ok_or_else(|| anyhow!("no node has registered for this session yet"))?;
    let verdict = sealroom_reports::node_check::verify_registration(manifest, &reg, at);
    if !verdict.verified {
        let f = verdict
            .failure
            .unwrap_or_else(|| sealroom_reports::attest::Failure::new("unknown", "rejected"));
        return Err(GrantError::NodeRejected(f));
    }
    seal_and_send_grant(client, manifest, me, data_key_file, &reg)?;
    Ok(verdict)
}

/// Opens the member's own sealed data key and grants it to the registered node.
fn seal_and_send_grant(
    client: &Client<'_>,
    manifest: &Manifest,
    me: &Identity,
    data_key_file: &Path,
    reg: &sealroom_protocol::api::NodeRegistration,
) -> Result<()> {
    let input = my_input(manifest, me)?.ok_or_else(|| anyhow!("this member brings no dataset"))?;
    let (_, _, commitment) = manifest
        .grantable_inputs()
        .into_iter()
        .find(|(n, _, _)| *n == input)
        .ok_or_else(|| anyhow!("no commitment for {input}"))?;
    let text = std::fs::read_to_string(data_key_file)
        .with_context(|| format!("--data-key {}", data_key_file.display()))?;
    let sealed: SelfSealedDataKey = serde_json::from_str(&text).with_context(|| {
        format!(
            "--data-key {}: not a sealed data key",
            data_key_file.display()
        )
    })?;
    if sealed.commitment_digest != commitment.digest() {
        bail!(
            "--data-key {}: belongs to another commitment",
            data_key_file.display()
        );
    }
    let key = sealed
        .open(me)
        .map_err(|e| anyhow!("--data-key {}: {e}", data_key_file.display()))?;
    let g = Grant::create(
        me,
        manifest,
        &input,
        &commitment,
        reg.node_key,
        reg.hpke_key,
        &key,
    )?;
    drop(key);
    client.grant(&manifest.session_id, &g)?;
    Ok(())
}

/// Fetches and opens the sealed model as the owner.
pub fn fetch_model(
    client: &Client<'_>,
    session: &B256,
    owner: &Identity,
) -> Result<(Vec<u8>, OpenedModel)> {
    let sealed = client.sealed_model(session)?;
    let opened = open_model(&sealed, owner)?;
    Ok((sealed, opened))
}

/// Loads a signed commitment file and checks its signature.
pub fn load_commitment(path: &Path) -> Result<SignedCommitment> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let sc: SignedCommitment = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a signed commitment", path.display()))?;
    sc.verify()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(sc)
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
