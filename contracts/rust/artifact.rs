//! The committed compiler output of `contracts/src/SessionRegistry.sol`.
//!
//! Committed (not compiled by `build.rs`) so that building the workspace
//! needs nothing but cargo; a test recompiles with the pinned solcjs and
//! checks the committed bytes are reproduced exactly.

use alloy_primitives::Bytes;
use serde::Deserialize;

/// `contracts/artifacts/SessionRegistry.json`, as committed.
pub const ARTIFACT_JSON: &str = include_str!("../artifacts/SessionRegistry.json");

/// The parts of the artefact the crate reads at run time.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `SessionRegistry`.
    pub contract_name: String,
    /// The compiler that produced the bytecode.
    pub compiler: Compiler,
    /// Creation bytecode (what a deployment sends).
    pub bytecode: Bytes,
    /// Runtime bytecode (what the chain stores at the registry's address).
    pub deployed_bytecode: Bytes,
}

/// Compiler name and exact version.
#[derive(Clone, Debug, Deserialize)]
pub struct Compiler {
    /// `solc (solcjs, npm)`.
    pub name: String,
    /// Full version string, e.g. `0.8.30+commit.73712a01.Emscripten.clang`.
    pub version: String,
}

impl Artifact {
    /// Parses the committed artefact.
    pub fn committed() -> Result<Self, serde_json::Error> {
        serde_json::from_str(ARTIFACT_JSON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn committed_artifact_parses_and_matches_bindings() {
        let a = Artifact::committed().unwrap();
        assert_eq!(a.contract_name, "SessionRegistry");
        assert!(a.compiler.version.starts_with("0.8.30+"));
        assert_eq!(a.bytecode, crate::SessionRegistry::BYTECODE);
        assert_eq!(
            a.deployed_bytecode,
            crate::SessionRegistry::DEPLOYED_BYTECODE
        );
    }

    /// Recompiles with the pinned solcjs and compares byte for byte. The test
    /// command runs `npm install --prefix contracts --no-save` first, so a missing compiler
    /// is a failure, not a skip.
    #[test]
    fn recompiling_reproduces_the_committed_artifact() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(
            dir.join("node_modules/solc/package.json").exists(),
            "contracts/node_modules/solc is missing: run `npm install --prefix contracts --no-save` before the tests"
        );
        let out = Command::new("node")
            .arg(dir.join("build.mjs"))
            .arg("--stdout")
            .output()
            .expect("node must be on PATH to run the pinned solcjs");
        assert!(
            out.status.success(),
            "solcjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fresh: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let committed: serde_json::Value = serde_json::from_str(ARTIFACT_JSON).unwrap();
        assert_eq!(
            fresh["bytecode"], committed["bytecode"],
            "creation bytecode differs: run `node contracts/build.mjs` and commit contracts/artifacts"
        );
        assert_eq!(
            fresh["deployedBytecode"], committed["deployedBytecode"],
            "runtime bytecode differs"
        );
        assert_eq!(fresh["abi"], committed["abi"], "ABI differs");
        assert_eq!(fresh["compiler"], committed["compiler"], "compiler differs");
        assert_eq!(fresh, committed, "artefact differs");
    }
}
