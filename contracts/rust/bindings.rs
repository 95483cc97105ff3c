//! alloy bindings generated from the committed artefact (ABI + bytecode), so
//! the Rust side cannot call a function the deployed bytecode lacks.

use alloy_primitives::Bytes;
use alloy_sol_types::{sol, GenericRevertReason, SolInterface};

sol!(
    #[sol(all_derives)]
    SessionRegistry,
    "artifacts/SessionRegistry.json"
);

use SessionRegistry::SessionRegistryErrors as E;

/// Names a report field by its index in the struct (the registry's
/// `FieldMismatch.field`).
fn field_name(index: u8) -> &'static str {
    match index {
        1 => "kind",
        2 => "sessionId",
        3 => "manifestHash",
        5 => "prevReportHash",
        _ => "unknown field",
    }
}

/// Decodes revert data into a sentence: the registry's custom errors first,
/// then `Error(string)` / `Panic(uint256)`, else the raw hex.
pub fn decode_revert(data: &[u8]) -> String {
    if let Ok(err) = E::abi_decode(data) {
        return describe(&err);
    }
    if data.is_empty() {
        return "reverted without data".to_string();
    }
    match GenericRevertReason::decode(data) {
        Some(GenericRevertReason::RawString(_)) | None => {
            format!("reverted with unknown data 0x{}", hex::encode(data))
        }
        Some(reason) => reason.to_string(),
    }
}

/// One sentence per custom error of the registry.
pub fn describe(err: &SessionRegistry::SessionRegistryErrors) -> String {
    match err {
        E::SessionExists(e) => format!(
            "SessionExists: session {} is already registered",
            e.sessionId
        ),
        E::ZeroPublisher(_) => "ZeroPublisher: the publisher address is zero".to_string(),
        E::ZeroManifest(_) => "ZeroManifest: the manifest hash is zero".to_string(),
        E::UnknownSession(e) => format!(
            "UnknownSession: session {} was never opened on this registry",
            e.sessionId
        ),
        E::NotPublisher(e) => format!(
            "NotPublisher: {} may not publish for session {} (its publisher is {})",
            e.sender, e.sessionId, e.publisher
        ),
        E::InvalidKind(e) => format!("InvalidKind: report kind {} is not 1, 2 or 3", e.kind),
        E::ReportExists(e) => format!(
            "ReportExists: session {} already has a kind-{} report (hash {})",
            e.sessionId, e.kind, e.reportHash
        ),
        E::NotOpened(e) => format!(
            "NotOpened: session {} has no opened report yet",
            e.sessionId
        ),
        E::SessionClosed(e) => format!(
            "SessionClosed: session {} already has a terminal kind-{} report",
            e.sessionId, e.terminalKind
        ),
        E::MalformedReport(e) => format!(
            "MalformedReport: {} bytes are not an abi-encoded IntegrityReport",
            e.length
        ),
        E::UnsupportedVersion(e) => format!("UnsupportedVersion: report version {}", e.version),
        E::FieldMismatch(e) => format!(
            "FieldMismatch: report {} is {}, expected {}",
            field_name(e.field),
            e.actual,
            e.expected
        ),
        E::MalformedSignature(e) => format!(
            "MalformedSignature: {} bytes, expected 64 (ed25519)",
            e.length
        ),
        E::BatchExists(e) => format!(
            "BatchExists: batch root {} was already published in block {}",
            e.root, e.blockNumber
        ),
        E::EmptyBatch(_) => {
            "EmptyBatch: a batch needs a non-zero root and at least one report".to_string()
        }
    }
}

/// Decodes revert data into the registry's custom error, when it is one.
pub fn registry_error(data: &Bytes) -> Option<SessionRegistry::SessionRegistryErrors> {
    E::abi_decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256};
    use alloy_sol_types::SolError;

    #[test]
    fn custom_errors_decode_to_sentences() {
        let data = SessionRegistry::NotOpened {
            sessionId: B256::repeat_byte(1),
        }
        .abi_encode();
        assert!(decode_revert(&data).starts_with("NotOpened: session 0x0101"));
        let data = SessionRegistry::NotPublisher {
            sessionId: B256::ZERO,
            sender: Address::repeat_byte(2),
            publisher: Address::repeat_byte(3),
        }
        .abi_encode();
        assert!(decode_revert(&data).starts_with("NotPublisher:"));
        assert_eq!(decode_revert(&[]), "reverted without data");
        assert!(decode_revert(&[1, 2, 3]).contains("0x010203"));
    }
}
