//! The regulator's verifier in the browser: `sealroom-reports`'
//! [`verify_bundle`](sealroom_reports::verifier::verify_bundle), compiled to
//! WebAssembly and embedded in the page `sealroom report verify --html`
//! writes ([`page`]). The page's verdict comes from this code running in
//! the browser, never from text the CLI put in the page.
//!
//! `web/dist/` holds the compiled module and its wasm-bindgen glue, built by
//! `scripts/build-web` (reproducibly: recorded toolchain, remapped paths);
//! `tests/run.rs` rebuilds them and compares the bytes, then drives the
//! page in headless Chromium.
#![forbid(unsafe_code)]

#[cfg(not(target_arch = "wasm32"))]
pub mod page;

use sealroom_reports::verifier::{verify_bundle, Bundle};

/// Verifies a bundle (its JSON text) offline and returns the same JSON
/// object as `sealroom report verify --json` prints for it, or
/// `{"error": …}` for text that is not a bundle or a policy that does not
/// parse. `at_unix` > 0 verifies the evidence at that instant (`--at`),
/// otherwise when the node presented it (the CLI's default). A non-empty
/// `policy_toml` replaces the manifest's policy (`--policy`), shown under
/// `policy_name`.
pub fn verify_json(
    bundle_json: &str,
    at_unix: f64,
    policy_toml: &str,
    policy_name: &str,
) -> String {
    let err = |e: String| serde_json::json!({ "error": e }).to_string();
    let bundle = match Bundle::from_json(bundle_json) {
        Ok(b) => b,
        Err(e) => return err(e.to_string()),
    };
    let policy = if policy_toml.is_empty() {
        None
    } else {
        match sealroom_protocol_policy(policy_toml) {
            Ok(p) => Some(p),
            Err(e) => return err(format!("policy {policy_name}: {e}")),
        }
    };
    let at = (at_unix.is_finite() && at_unix > 0.0).then_some(at_unix as i64);
    let v = verify_bundle(&bundle, policy.as_ref().map(|p| (p, policy_name)), at);
    serde_json::to_string(&v).unwrap_or_else(|e| err(e.to_string()))
}

fn sealroom_protocol_policy(text: &str) -> Result<sealroom_reports::Policy, String> {
    sealroom_reports::Policy::from_toml(text).map_err(|e| e.to_string())
}

/// What verified the page: the crate and its version.
pub fn engine_name() -> String {
    format!(
        "sealroom-reports {} (WebAssembly)",
        env!("CARGO_PKG_VERSION")
    )
}

/// The browser entry points.
#[cfg(target_arch = "wasm32")]
mod browser {
    use wasm_bindgen::prelude::wasm_bindgen;

    /// See [`super::verify_json`].
    #[wasm_bindgen]
    pub fn verify(bundle_json: &str, at_unix: f64, policy_toml: &str, policy_name: &str) -> String {
        super::verify_json(bundle_json, at_unix, policy_toml, policy_name)
    }

    /// See [`super::engine_name`].
    #[wasm_bindgen]
    pub fn engine() -> String {
        super::engine_name()
    }
}
