//! A member's data key sealed to its own X25519 key (`BLOB.datakey`, written
//! by `sealroom commit`): the member opens it again only to grant it to a
//! node it has verified itself.

use std::path::Path;

use sealroom_protocol::identity::{hex32, Identity};
use sealroom_protocol::seal::{self, SealError, SealedBox};
use sealroom_protocol::stream::DataKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::MemberError;

/// Format tag of self-sealed data keys.
pub const DATAKEY_FORMAT: &str = "sealroom-datakey/1";
/// HPKE purpose of a member's own copy of its data key.
pub const SELF_DATAKEY_PURPOSE: &str = "datakey-self";

/// A data key sealed to its owner's own X25519 key, bound to one commitment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfSealedDataKey {
    /// Always [`DATAKEY_FORMAT`].
    pub format: String,
    /// The member's ed25519 key (who can open it).
    #[serde(with = "hex32")]
    pub party: [u8; 32],
    /// Digest of the commitment the key belongs to (HPKE info and aad).
    #[serde(with = "hex32")]
    pub commitment_digest: [u8; 32],
    /// The sealed key.
    pub sealed: SealedBox,
}

impl SelfSealedDataKey {
    /// Seals `key` to `party` for `commitment_digest`.
    pub fn seal(
        party: &Identity,
        commitment_digest: [u8; 32],
        key: &DataKey,
    ) -> Result<Self, SealError> {
        let info = seal::info(SELF_DATAKEY_PURPOSE, &commitment_digest);
        let sealed = seal::seal(
            &party.public().x25519,
            &info,
            &commitment_digest,
            key.expose(),
        )?;
        Ok(Self {
            format: DATAKEY_FORMAT.into(),
            party: party.public().ed25519,
            commitment_digest,
            sealed,
        })
    }

    /// Reads a data key file, checking its format and that it is this
    /// member's key for `commitment_digest`.
    pub fn load_for(
        path: &Path,
        me: &Identity,
        commitment_digest: &[u8; 32],
    ) -> Result<Self, MemberError> {
        let what = format!("--data-key {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| MemberError::input(&what, e))?;
        let sealed: Self = serde_json::from_str(&text)
            .map_err(|e| MemberError::input(&what, format!("not a sealed data key: {e}")))?;
        if sealed.format != DATAKEY_FORMAT {
            return Err(MemberError::input(
                &what,
                format!("format: unknown format `{}`", sealed.format),
            ));
        }
        if sealed.party != me.public().ed25519 {
            return Err(MemberError::input(&what, "sealed for another member"));
        }
        if sealed.commitment_digest != *commitment_digest {
            return Err(MemberError::input(&what, "belongs to another commitment"));
        }
        Ok(sealed)
    }

    /// Opens it with the member's identity.
    pub fn open(&self, party: &Identity) -> Result<DataKey, SealError> {
        let info = seal::info(SELF_DATAKEY_PURPOSE, &self.commitment_digest);
        let bytes = seal::open(party, &info, &self.commitment_digest, &self.sealed)?;
        let mut arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SealError::Open)?;
        let key = DataKey::from_bytes(arr);
        // The stack copy; `bytes` zeroizes itself on drop.
        arr.zeroize();
        Ok(key)
    }
}
