//! Each format on realistic files written from its public documentation
//! (tests/data/; each parser's module says which document), each kind of
//! bad record, tombstones, and unsupported types counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use blindmatch_lists::{Error, Format, Location, Source, SourceList, TypeCounts, combine, read};
use blindmatch_protocol::{Item, ItemType};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_data(name: &str) -> SourceList {
    read(&Source::from(data(name)), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `text` read as `format` (or detected), from memory.
fn parse(format: Option<Format>, text: &str) -> Result<SourceList, Error> {
    let source = Source {
        path: PathBuf::from("list"),
        format,
    };
    blindmatch_lists::read_from(&source, &mut Cursor::new(text.as_bytes()), None)
}

/// The one bad record of a refused list.
fn bad(format: Option<Format>, text: &str) -> (Location, Option<String>, String) {
    match parse(format, text) {
        Err(Error::BadRecords { bad, total, .. }) => {
            assert_eq!(total, 1, "{bad:?}");
            let b = bad.into_iter().next().unwrap();
            (b.at, b.field, b.message)
        }
        other => panic!("not refused for a bad record: {other:?}"),
    }
}

fn counts(s: &SourceList, ty: ItemType) -> (u64, u64, u64, u64) {
    let c: TypeCounts = s.counts.types[&ty];
    (c.read, c.listed, c.repeated(), c.tombstoned)
}

fn item(ty: ItemType, hex: &str) -> Item {
    Item::parse(ty, hex).unwrap()
}

const PDQ_A: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const PDQ_B: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
const MD5_A: &str = "8f14e45fceea167a5a36dedd4bea2543";

#[test]
fn ncmec_entries_fingerprints_deletions_and_pages() {
    let s = read_data("ncmec.xml");
    assert_eq!(s.format, Format::Ncmec);
    // md5: img-1001, 1002, 1003, 1004 (= 1001's), vid-2001, 2002, 2003;
    // vid-2002 is deleted by the second page.
    assert_eq!(counts(&s, ItemType::Md5), (7, 5, 1, 1));
    assert_eq!(counts(&s, ItemType::Sha1), (5, 4, 1, 0));
    assert_eq!(counts(&s, ItemType::Pdq), (2, 2, 0, 0));
    let unsupported: BTreeMap<&str, u64> = s
        .counts
        .unsupported
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        unsupported,
        BTreeMap::from([("pdna", 2), ("tmk-pdqf", 1), ("videntifier", 1)])
    );
    // img-0999's deletion names an entry that is not in the file.
    assert_eq!(s.counts.deletions_without_values, 1);
    assert_eq!(s.items.len(), 11);
    assert_eq!(s.tombstoned.len(), 1);
    assert_eq!(s.tombstoned[0].item_type(), ItemType::Md5);

    // The next version's file has a third page deleting img-1003: its md5,
    // sha1 and pdq are tombstoned.
    let next = read_data("ncmec-next.xml");
    assert_eq!(counts(&next, ItemType::Md5), (7, 4, 1, 2));
    assert_eq!(counts(&next, ItemType::Sha1), (5, 3, 1, 1));
    assert_eq!(counts(&next, ItemType::Pdq), (2, 1, 0, 1));
    assert_eq!(next.items.len(), 8);
}

#[test]
fn stopncii_pages_statuses_and_signal_types() {
    let s = read_data("stopncii.json");
    assert_eq!(s.format, Format::StopNcii);
    assert_eq!(counts(&s, ItemType::Pdq), (4, 4, 0, 0));
    assert_eq!(counts(&s, ItemType::Md5), (1, 1, 0, 0));
    assert_eq!(s.counts.unsupported["VideoTMK"], 1);
    // The next file withdraws one of them in a later record.
    let next = read_data("stopncii-next.json");
    assert_eq!(counts(&next, ItemType::Pdq), (5, 3, 1, 1));
    assert_eq!(next.tombstoned.len(), 1);

    let page = |records: &str| {
        format!("{{\"count\": 1, \"hasMoreRecords\": false, \"hashRecords\": [{records}]}}")
    };
    let rec = |t: &str, v: &str, st: &str| {
        format!(
            "{{\"lastModtimestamp\": 1, \"signalType\": \"{t}\", \"hashValue\": \"{v}\", \"hashStatus\": \"{st}\", \"caseNumbers\": {{}}}}"
        )
    };
    // Withdrawn, then received again: listed; Deleted: tombstoned.
    let text = page(
        &[
            rec("ImagePDQ", PDQ_A, "Withdrawn"),
            rec("ImagePDQ", PDQ_A, "Received"),
            rec("ImagePDQ", PDQ_B, "Deleted"),
            rec("URL", "https://example.org", "Active"),
            rec("Text", "hello", "Active"),
        ]
        .join(",\n"),
    );
    let s = parse(None, &text).unwrap();
    assert_eq!(s.items, vec![item(ItemType::Pdq, PDQ_A)]);
    assert_eq!(s.tombstoned, vec![item(ItemType::Pdq, PDQ_B)]);
    assert_eq!(
        (s.counts.unsupported["URL"], s.counts.unsupported["Text"]),
        (1, 1)
    );

    // Bad records: each names its record, line and field.
    let (at, field, msg) = bad(
        None,
        &page(&format!("\n{}", rec("ImagePDQ", &PDQ_A[1..], "Active"))),
    );
    assert_eq!(at.to_string(), "record 1 (line 2)");
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("hashValue"), "not 64 hex digits: 63 digits")
    );
    let (_, field, msg) = bad(None, &page(&rec("VideoMD5", MD5_A, "Escalated")));
    assert_eq!(field.as_deref(), Some("hashStatus"));
    assert!(msg.starts_with("unknown status"), "{msg}");
    let (_, field, msg) = bad(
        None,
        &page(r#"{"signalType": "ImagePDQ", "hashStatus": "Active"}"#),
    );
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("hashValue"), "missing")
    );
    let (_, field, msg) = bad(None, &page(r#"{"signalType": 4, "hashValue": "00"}"#));
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("signalType"), "not a string")
    );
    let (at, field, msg) = bad(
        None,
        &page(&format!(
            "{},\n  \"oops\"",
            rec("ImagePDQ", PDQ_A, "Active")
        )),
    );
    assert_eq!(
        (at.to_string(), field, msg.as_str()),
        ("record 2 (line 2)".into(), None, "not a JSON object")
    );
}

#[test]
fn tcap_algorithms_deletions_and_file_types() {
    let s = read_data("tcap.json");
    assert_eq!(s.format, Format::Tcap);
    assert_eq!(counts(&s, ItemType::Md5), (3, 2, 0, 1));
    assert_eq!(counts(&s, ItemType::Sha256), (1, 1, 0, 0));
    assert_eq!(counts(&s, ItemType::Pdq), (1, 1, 0, 0));
    assert_eq!(s.counts.unsupported["SHA512"], 1);

    let entry = |alg: &str, digest: &str, deleted: &str| {
        format!(
            r#"{{"hash_digest": "{digest}", "algorithm": "{alg}", "ideology": "islamist", "file_type": "pdf", "deleted": {deleted}, "updated_on": 1.5, "created_on": "2026-01-01T00:00:00", "id": 7}}"#
        )
    };
    let page = |results: &str| {
        format!(
            r#"{{"count": 1, "next": null, "previous": null, "checkpoint": "1.5,7", "results": [{results}]}}"#
        )
    };
    // An MD5 of a PDF is an exact file hash: taken, whatever the file type.
    let s = parse(Some(Format::Tcap), &page(&entry("MD5", MD5_A, "false"))).unwrap();
    assert_eq!(s.items, vec![item(ItemType::Md5, MD5_A)]);
    let (_, field, msg) = bad(None, &page(&entry("MD5", MD5_A, "\"no\"")));
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("deleted"), "not true or false")
    );
    let (_, field, msg) = bad(None, &page(&entry("PDQ", "xyz", "false")));
    assert_eq!(field.as_deref(), Some("hash_digest"));
    assert!(msg.starts_with("not 64 hex digits: a character"), "{msg}");
    let (_, field, _) = bad(None, &page(r#"{"hash_digest": "00", "deleted": false}"#));
    assert_eq!(field.as_deref(), Some("algorithm"));
    let s = parse(None, &page(&entry("TMK", "AAAA", "false"))).unwrap();
    assert_eq!((s.items.len(), s.counts.unsupported["TMK"]), (0, 1));
}

#[test]
fn threatexchange_csv_types_categories_and_quoting() {
    let s = read_data("threatexchange.csv");
    assert_eq!(s.format, Format::ThreatExchange);
    assert_eq!(counts(&s, ItemType::Pdq), (3, 1, 0, 2));
    assert_eq!(counts(&s, ItemType::Md5), (1, 1, 0, 0));
    assert_eq!(counts(&s, ItemType::Sha256), (1, 1, 0, 0));
    assert_eq!(
        (
            s.counts.unsupported["photo_dna"],
            s.counts.unsupported["url_md5"]
        ),
        (1, 1)
    );

    let head = "signal_type,signal_str,collab,category,tags\n";
    let (at, field, msg) = bad(
        None,
        &format!(
            "{head}pdq,{PDQ_A},c,POSITIVE_CLASS,\nvideo_md5,{},c,,\n",
            &MD5_A[2..]
        ),
    );
    assert_eq!(
        (at, field.as_deref(), msg.as_str()),
        (
            Location::Line(3),
            Some("signal_str"),
            "not 32 hex digits: 30 digits"
        )
    );
    let (_, field, msg) = bad(None, &format!("{head}pdq,{PDQ_A},c,MAYBE,\n"));
    assert_eq!(field.as_deref(), Some("category"));
    assert!(msg.starts_with("unknown category"), "{msg}");
    let (_, field, msg) = bad(None, &format!("{head}pdq\n"));
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("signal_str"), "missing")
    );
    // Without a category column every row is listed.
    let s = parse(
        Some(Format::ThreatExchange),
        &format!("signal_str,signal_type\n{PDQ_A},pdq\n"),
    )
    .unwrap();
    assert_eq!(s.items, vec![item(ItemType::Pdq, PDQ_A)]);
    let e = parse(Some(Format::ThreatExchange), "type,value\nmd5,00\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("no `signal_type` and `signal_str` columns"),
        "{e}"
    );
}

#[test]
fn ncmec_bad_records_name_the_entry_line_and_fingerprint() {
    let doc = |entries: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<queryResult xmlns=\"https://hashsharing.ncmec.org/hashsharing/v2\">\n<images count=\"2\">\n{entries}</images>\n</queryResult>\n"
        )
    };
    let image = |id: &str, md5: &str| {
        format!(
            "<image>\n  <member id=\"42\">ESP</member>\n  <id>{id}</id>\n  <fingerprints>\n    <md5>{md5}</md5>\n  </fingerprints>\n</image>\n"
        )
    };
    let text = doc(&(image("a", MD5_A) + &image("b", &MD5_A[1..])));
    let (at, field, msg) = bad(None, &text);
    assert_eq!(at.to_string(), "image 2 (line 15)");
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("fingerprint md5"), "not 32 hex digits: 31 digits")
    );
    let (at, field, msg) = bad(None, &doc(&image("  ", MD5_A)));
    assert_eq!(
        (at.to_string(), field.as_deref(), msg.as_str()),
        ("image 1 (line 4)".into(), Some("id"), "missing or empty")
    );
    let (_, field, msg) = bad(
        None,
        &doc("<image><id>x</id><fingerprints><pdq/></fingerprints></image>"),
    );
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("fingerprint pdq"), "empty (expected 64 hex digits)")
    );
    let (_, _, msg) = bad(
        None,
        &doc(&image("c", "&amp;8f14e45fceea167a5a36dedd4bea25")),
    );
    assert!(msg.contains("not a hex digit at offset 0"), "{msg}");

    // Not NCMEC's document, or not XML at all: refused whole, with where.
    let e = parse(
        None,
        "<?xml version=\"1.0\"?>\n<status><member id=\"1\">x</member></status>",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("root element is <status>, not NCMEC's <queryResult>"),
        "{e}"
    );
    let e = parse(
        None,
        &doc(&image("a", MD5_A)).replace("</images>", "</imagez>"),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Malformed { .. })
            && e.to_string().contains("not well-formed XML at line"),
        "{e}"
    );
    let cut = doc(&image("a", MD5_A));
    let e = parse(None, cut.trim_end().strip_suffix("</queryResult>").unwrap()).unwrap_err();
    assert!(e.to_string().contains("a truncated file?"), "{e}");
    // An empty result is no list.
    assert!(matches!(parse(None, &doc("")), Err(Error::Empty { .. })));
}

#[test]
fn a_named_format_is_checked_and_json_kinds_do_not_mix() {
    let stop = r#"{"hashRecords": [{"signalType": "ImagePDQ", "hashValue": "VALUE", "hashStatus": "Active"}]}"#.replace("VALUE", PDQ_A);
    let e = parse(Some(Format::Tcap), &stop).unwrap_err();
    assert!(e.to_string().contains("in a tcap list"), "{e}");
    let tcap = r#"{"results": []}"#;
    let e = parse(None, &format!("{stop}\n{tcap}")).unwrap_err();
    assert!(
        e.to_string()
            .contains("a page with `results` (tcap), in a stopncii list"),
        "{e}"
    );
    let e = parse(None, r#"{"count": 0}"#).unwrap_err();
    assert!(e.to_string().contains("not a page of a list"), "{e}");
    let e = parse(None, "{\"hashRecords\": [\n{\"signalType\": }").unwrap_err();
    assert!(
        e.to_string().contains("not valid JSON") && e.to_string().contains("line 2"),
        "{e}"
    );
    // A byte order mark is not content, in any format.
    let s = parse(None, &format!("\u{feff}{stop}")).unwrap();
    assert_eq!(s.items, vec![item(ItemType::Pdq, PDQ_A)]);
    let s = parse(None, &format!("\u{feff}type,value\npdq,{PDQ_A}\n")).unwrap();
    assert_eq!(s.items, vec![item(ItemType::Pdq, PDQ_A)]);
    // An array of pages is read as the pages.
    let s = parse(None, &format!("[{stop}, {stop}]")).unwrap();
    assert_eq!(counts(&s, ItemType::Pdq), (2, 1, 1, 0));
    // A named text list is the protocol's format, whatever it looks like.
    let e = parse(Some(Format::Text), &stop).unwrap_err();
    assert!(e.to_string().contains("bad line"), "{e}");
}

#[test]
fn text_lists_are_the_protocols_and_keep_its_messages() {
    let s = read_data("hashes.txt");
    assert_eq!((s.format, s.items.len()), (Format::Text, 3));
    let e = parse(None, &format!("sha256 {PDQ_A}\nsha256 abc\n")).unwrap_err();
    assert!(matches!(e, Error::Text { .. }), "{e:?}");
    assert!(e.to_string().contains("1 bad line(s)\n  line 2:"), "{e}");
    let e = parse(None, "# nothing\n").unwrap_err();
    assert!(e.to_string().contains("no entries"), "{e}");
    // The CSV the protocol reads is still text: `type,value`.
    let s = parse(None, &format!("type,value\npdq,{PDQ_A}\npdq,{PDQ_A}\n")).unwrap();
    assert_eq!(counts(&s, ItemType::Pdq), (2, 1, 1, 0));
}

#[test]
fn sources_combine_and_the_report_says_what_went_in() {
    let lists = [
        "ncmec.xml",
        "stopncii.json",
        "tcap.json",
        "threatexchange.csv",
        "hashes.txt",
    ]
    .map(read_data)
    .to_vec();
    let listed: usize = lists.iter().map(|s| s.items.len()).sum();
    let c = combine(lists);
    // Overlaps: img-1001's pdq (NCMEC, StopNCII), vid-2001's md5 (NCMEC,
    // TCAP), img-1002's md5 (NCMEC, hashes.txt).
    assert_eq!((listed, c.items.len()), (26, 23));
    // tcap-2.jpg's pdq: listed by TCAP, tombstoned by ThreatExchange: kept.
    let te = &c.report.sources[3];
    assert_eq!(te.tombstoned_kept, 1);
    // Tombstoned and listed by none: vid-2002's md5, tcap-3.pdf's, te-2's pdq.
    assert_eq!(c.tombstoned.len(), 3);
    let shown = c.report.to_string();
    for row in [
        "ncmec.xml           ncmec           md5",
        "stopncii.json       stopncii        VideoTMK",
        "threatexchange.csv: tombstoned, but listed by another list, so kept: 1",
        "ncmec.xml: deletions of entries with no value in the file (nothing to remove from it): 1",
        "in the table: 23 entries (26 values listed, 3 of them listed by an earlier list too)",
    ] {
        assert!(shown.contains(row), "{row:?} not in\n{shown}");
    }
    let left = c.report.left_out().to_string();
    assert!(
        left.starts_with("left out: 8 value(s) of types blindmatch cannot match exactly (pdna 2, tmk-pdqf 1, videntifier 1, VideoTMK 1, SHA512 1, photo_dna 1, url_md5 1"),
        "{left}"
    );
    assert!(
        left.contains("3 tombstoned") && left.contains("kept: 1 tombstoned"),
        "{left}"
    );
}
