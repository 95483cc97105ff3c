//! The dataset reader (DESIGN §4): the commitment's record path
//! (`RecordHasher`, which writes ordinary record lines straight to
//! canonical bytes) against the general line reader (`CsvReader` +
//! `record_digest`) on arbitrary bytes, fed in chunks the first byte
//! chooses. Must never panic, and both must give the same record digests or
//! the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_protocol::dataset::{record_digest, CsvLine, CsvReader, RecordHasher};

fuzz_target!(|data: &[u8]| {
    let (chunk, text) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 17) + 1, rest),
        None => (1, data),
    };
    let general = {
        let mut out = Vec::new();
        let mut r = CsvReader::new();
        let mut on = |_: u64, l: CsvLine<'_>| {
            if let CsvLine::Record(f) = l {
                out.push(record_digest(&f));
            }
            Ok(())
        };
        let res = r
            .update(text, &mut on)
            .and_then(|()| r.finish(&mut on))
            .map_err(|e| e.to_string());
        match res {
            Ok(()) if out.is_empty() => Err("dataset has no records".to_string()),
            Ok(()) => Ok(out),
            Err(e) => Err(e),
        }
    };
    let fast = {
        let mut h = RecordHasher::new();
        text.chunks(chunk)
            .try_for_each(|c| h.update(c))
            .and_then(|()| h.finish())
            .map(|r| r.digests)
            .map_err(|e| e.to_string())
    };
    assert_eq!(fast, general);
});
