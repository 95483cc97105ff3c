//! TDX: the strict quote layout parser, then the verifier (dcap-qvl) with the
//! sample collateral, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_reports::attest::{tdx, Inputs, Verifier};

const COLLATERAL: &[u8] =
    include_bytes!("../../reports/testdata/tdx/dcapqvl_tdx_quote_collateral.json");

fuzz_target!(|data: &[u8]| {
    if tdx::parse_layout(data).is_ok() {
        let inputs = Inputs {
            evidence: data.to_vec(),
            collateral: Some(COLLATERAL.to_vec()),
            at: 1_750_377_600,
            ..Default::default()
        };
        let _ = tdx::TdxVerifier.verify_evidence(&inputs);
    }
    let _ = tdx::parse_collateral(data);
});
