//! The offline bundle decoder (`report verify BUNDLE`, the browser page):
//! the strict reader, then the whole offline verification and the auditor's
//! summary on whatever it accepts. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_reports::verifier::{verify_bundle, Bundle};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bundle) = Bundle::from_json(text) {
            let v = verify_bundle(&bundle, None, None);
            // A verdict is either verified or names its failed check.
            assert!(v.verified || v.failure.is_some());
        }
    }
});
