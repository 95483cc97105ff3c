//! The encrypted-stream format (DESIGN §5): the header parser and the
//! segment decryptor on arbitrary bytes under a fixed key, then a round trip
//! of the same bytes as plaintext. Must never panic; random bytes must never
//! authenticate; what is encrypted must decrypt to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_protocol::stream::{decrypt_all, parse_header, DataKey, StreamEncryptor, HEADER_LEN};
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let key = DataKey::from_bytes([7; 32]);
    if let Some(h) = data.get(..HEADER_LEN) {
        let _ = parse_header(h.try_into().expect("HEADER_LEN bytes"));
    }
    // Only a stream this key wrote can open; the fuzzer cannot forge a tag.
    assert!(decrypt_all(&key, data).is_err());

    // Small segments so that inputs cross segment boundaries.
    let segment = 16 + u32::from(data.first().copied().unwrap_or(0) % 64);
    let mut enc = StreamEncryptor::new(&key, segment, Vec::new()).expect("encryptor");
    enc.write_all(data).expect("write");
    let blob = enc.finish().expect("finish");
    let back = decrypt_all(&key, &blob).expect("a stream this key wrote opens");
    assert_eq!(back.as_slice(), data);
    // Truncated by one byte, it must not open.
    assert!(decrypt_all(&key, &blob[..blob.len() - 1]).is_err());
});
