//! The policy loader (TOML, validation) and the GPU reference file loader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = sealroom_protocol::policy::Policy::from_toml(text) {
            // A policy that loads must validate again and round-trip.
            assert!(p.validate().is_ok());
        }
        let _ = sealroom_reports::attest::GpuReference::from_toml(text);
    }
});
