//! The sealed-model format (`SRMODEL1`): the public header reader and the
//! owner's opener on arbitrary bytes, then a round trip sealing the bytes as
//! a model to a fixed owner. Must never panic; only the owner opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::sealed_model::{open_model, read_header, seal_model};
use alloy_primitives::B256;

fuzz_target!(|data: &[u8]| {
    let owner = Identity::from_secrets(&[1; 32], &[2; 32]).expect("identity");
    let _ = read_header(data);
    let _ = open_model(data, &owner);

    let metrics = serde_json::json!({ "len": data.len() });
    let sealed = seal_model(
        B256::repeat_byte(3),
        B256::repeat_byte(4),
        owner.public().x25519,
        data,
        &metrics,
    )
    .expect("seal");
    let opened = open_model(&sealed, &owner).expect("the owner opens its model");
    assert_eq!(opened.model.as_slice(), data);
    assert_eq!(opened.metrics, metrics);
    let other = Identity::from_secrets(&[5; 32], &[6; 32]).expect("identity");
    assert!(open_model(&sealed, &other).is_err());
});
