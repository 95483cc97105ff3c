//! Live session events, fanned out to `GET /v1/sessions/{id}/events`
//! subscribers as Server-Sent Events.
//!
//! Events carry only what the public status already shows (states, member
//! flags, public progress, report hashes and transactions): a subscriber
//! learns when to look, never anything private.

use alloy_primitives::B256;
use serde::Serialize;

/// One event of one session.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// The session.
    pub session_id: B256,
    /// SSE event name: `state`, `member`, `node`, `progress` or `report`.
    #[serde(skip)]
    pub kind: &'static str,
    /// The payload (see docs/api.md).
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// An event with the given JSON object as payload.
    pub fn new(session_id: B256, kind: &'static str, data: serde_json::Value) -> Self {
        let data = match data {
            serde_json::Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        Self {
            session_id,
            kind,
            data,
        }
    }

    /// A state change.
    pub fn state(
        session_id: B256,
        state: sealroom_protocol::api::SessionState,
        reason: Option<&str>,
    ) -> Self {
        Self::new(
            session_id,
            "state",
            serde_json::json!({ "state": state, "abort_reason": reason }),
        )
    }

    /// A member's progress (`consented`, `withdrawn`, `blob-uploaded`, `granted`).
    pub fn member(session_id: B256, name: &str, what: &str) -> Self {
        Self::new(
            session_id,
            "member",
            serde_json::json!({ "member": name, "event": what }),
        )
    }
}
