//! `bindings/ERRORS.md`, the reference of error kinds every binding links,
//! lists exactly the kinds the core has; and every kind's message reads
//! once: never empty, never a subject said twice ("table chunk: table
//! chunk: ...").

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;

use blindmatch_client_core::{Error, ErrorKind};

fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bindings/ERRORS.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_reference_lists_every_kind_once_and_no_other() {
    let text = reference();
    // A kind's row starts "| `Name` |".
    let rows: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(n, _)| n))
        .collect();
    let listed: BTreeSet<&str> = rows.iter().copied().collect();
    assert_eq!(
        listed.len(),
        rows.len(),
        "a kind has two rows in ERRORS.md: {rows:?}"
    );
    let core: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        listed, core,
        "bindings/ERRORS.md lists other kinds than ErrorKind::ALL"
    );
}

#[test]
fn every_message_reads_once() {
    for e in Error::one_of_each_kind() {
        let m = e.to_string();
        let kind = e.kind().name();
        assert!(!m.trim().is_empty(), "{kind}: empty message");
        // The same "subject: " twice in a row.
        let parts: Vec<&str> = m.split(": ").collect();
        for w in parts.windows(2) {
            assert_ne!(w[0], w[1], "{kind}: {m:?} says {:?} twice", w[0]);
        }
    }
}
