//! The list formats operators receive (lists/: NCMEC XML, StopNCII and TCAP
//! JSON, ThreatExchange CSV, text), each named and detected from the bytes:
//! every input is a list or an error naming what is wrong, never a panic.
#![no_main]

use std::io::Cursor;
use std::path::PathBuf;

use blindmatch_server::lists::{Format, Source, read_from};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let formats = std::iter::once(None).chain(Format::ALL.into_iter().map(Some));
    for format in formats {
        let source = Source {
            path: PathBuf::from("fuzz"),
            format,
        };
        if let Ok(list) = read_from(&source, &mut Cursor::new(data), None) {
            let read: u64 = list.counts.types.values().map(|c| c.read).sum();
            assert!(list.items.len() as u64 + list.tombstoned.len() as u64 <= read);
            let _ = blindmatch_server::lists::combine(vec![list]).report.to_string();
        }
    }
});
