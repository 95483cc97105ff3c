//! SEV-SNP: the report parser, then the whole verifier with a real VCEK, on
//! arbitrary bytes. Must never panic; nothing but the real report may verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_reports::attest::{self, sev_snp, Inputs, Verifier};

const VCEK: &[u8] = include_bytes!("../../reports/testdata/sev-snp/trustee_test-vcek.der");

fuzz_target!(|data: &[u8]| {
    let _ = sev_snp::SnpReport::parse(data);
    let inputs = Inputs {
        evidence: data.to_vec(),
        certs: vec![VCEK.to_vec()],
        at: 1_735_689_600,
        ..Default::default()
    };
    let _ = sev_snp::SevSnpVerifier.verify_evidence(&inputs);
    let _ = attest::decode_evidence(data);
});
