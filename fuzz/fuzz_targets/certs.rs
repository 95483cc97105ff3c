//! Certificate loading (DER, PEM, bundles) and the sim evidence parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_reports::attest::{certs, sim};

fuzz_target!(|data: &[u8]| {
    if let Ok(ders) = certs::load_certs(data) {
        let _ = certs::parse_all(&ders);
    }
    let _ = sim::SimEvidence::parse(data);
});
