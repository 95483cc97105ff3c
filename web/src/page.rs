//! The self-verifying HTML page: one file holding the bundle, the verifier
//! compiled to WebAssembly (base64), its wasm-bindgen glue, the styles and
//! the script that renders the verdict. It makes no network request: its
//! Content-Security-Policy forbids every fetch, and everything it needs is
//! inline.

use base64::Engine;

/// The compiled verifier (`scripts/build-web` writes it; `tests/run.rs`
/// checks it is what the sources build).
pub const WASM: &[u8] = include_bytes!("../dist/sealroom_web_bg.wasm");
/// wasm-bindgen's glue for [`WASM`] (`--target no-modules`).
pub const GLUE: &str = include_str!("../dist/sealroom_web.js");
/// The page around them.
pub const TEMPLATE: &str = include_str!("../page/template.html");

/// What the page verifies with besides the bundle: the CLI's `--at`,
/// `--policy` and the bundle's file name.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PageParams {
    /// Unix seconds to verify the evidence at; 0: when the node presented it.
    pub at: i64,
    /// A policy (TOML) replacing the manifest's; empty: the manifest's.
    pub policy: String,
    /// Where that policy came from.
    pub policy_name: String,
    /// The bundle's file name, shown on the page.
    pub label: String,
}

/// JSON made safe inside `<script type="application/json">`: every `<` is
/// written `\u003c` (in JSON, `<` can only occur inside a string, where the
/// escape is the same value), so nothing in a bundle can close the element
/// or switch the HTML parser into another state.
fn script_json(text: &str) -> String {
    text.replace('<', "\\u003c")
}

/// The page for `bundle_json` (the bundle's exact text).
pub fn render(bundle_json: &str, params: &PageParams) -> String {
    let params = serde_json::to_string(params).unwrap_or_else(|_| "{}".into());
    let wasm = base64::engine::general_purpose::STANDARD.encode(WASM);
    let values = [
        ("@@BUNDLE@@", script_json(bundle_json)),
        ("@@PARAMS@@", script_json(&params)),
        ("@@GLUE@@", GLUE.replace("</script", "<\\/script")),
        ("@@WASM_BASE64@@", wasm),
    ];
    // One pass over the template: a value is never searched for markers,
    // so a bundle holding `@@PARAMS@@` stays the bundle's text.
    let mut out =
        String::with_capacity(TEMPLATE.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = TEMPLATE;
    while let Some((at, marker, value)) = values
        .iter()
        .filter_map(|(m, v)| rest.find(m).map(|i| (i, *m, v)))
        .min_by_key(|(i, _, _)| *i)
    {
        out.push_str(&rest[..at]);
        out.push_str(value);
        rest = &rest[at + marker.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_read_as_markers_and_cannot_close_their_script() {
        let page = render(
            r#"{"x":"@@PARAMS@@ </script><script>alert(1)</script>"}"#,
            &PageParams::default(),
        );
        assert!(page
            .contains(r#"{"x":"@@PARAMS@@ \u003c/script>\u003cscript>alert(1)\u003c/script>"}"#));
        assert!(page.contains(r#""policy_name":"""#));
        for m in ["@@BUNDLE@@", "@@GLUE@@", "@@WASM_BASE64@@"] {
            assert!(!page.contains(m), "{m}");
        }
        assert_eq!(
            page.matches("<script").count(),
            TEMPLATE.matches("<script").count() + GLUE.matches("<script").count()
        );
    }
}
