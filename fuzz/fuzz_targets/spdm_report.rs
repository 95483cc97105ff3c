//! NVIDIA: the SPDM GET_MEASUREMENTS request+response parser, then the
//! verifier with the real H100 chain, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_reports::attest::{certs, nvidia, Inputs, Verifier};

const CHAIN: &[u8] =
    include_bytes!("../../reports/testdata/nvidia/trustee_hopper_cert_chain_case1.txt");

fuzz_target!(|data: &[u8]| {
    if nvidia::SpdmReport::parse(data).is_ok() {
        let chain = certs::load_certs(CHAIN).unwrap_or_default();
        let inputs = Inputs {
            evidence: data.to_vec(),
            certs: chain,
            at: 1_767_225_600,
            ..Default::default()
        };
        let _ = nvidia::NvidiaVerifier.verify_evidence(&inputs);
    }
});
