//! The list formats operators receive, end to end through the real
//! `blindmatch-server build` (issue 26, part 3): NCMEC, StopNCII, TCAP,
//! ThreatExchange and text lists into one table, `--report`; the next
//! version, where tombstones remove entries in the delta; and a bad record,
//! which builds nothing and names its file, entry, line and field. The list
//! files are the parser tests' (lists/tests/data), written from the formats'
//! public documents with made-up values: `pdq(label)` there is
//! SHA-256("pdq" || label), `sha256(label)` SHA-256(label).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use blindmatch_protocol::{ClientTable, Item, ItemType, Matcher};
use sha2::{Digest, Sha256};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lists/tests/data")
        .join(name)
}

fn pdq(label: &str) -> Item {
    Item::new(ItemType::Pdq, &Sha256::digest(format!("pdq{label}"))).unwrap()
}

fn sha256(label: &str) -> Item {
    Item::new(ItemType::Sha256, &Sha256::digest(label)).unwrap()
}

/// Runs the binary: (success, stdout, stderr).
fn run(args: &[&OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
        .args(args)
        .env_remove("BLINDMATCH_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic: {err}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    )
}

struct Operator {
    dir: tempfile::TempDir,
    key: PathBuf,
    signing: PathBuf,
}

impl Operator {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("server.key");
        let signing = dir.path().join("operator.sign");
        blindmatch_server::keyfile::write_new(&key).unwrap();
        blindmatch_server::keyfile::write_new_signing(&signing).unwrap();
        Operator { dir, key, signing }
    }

    /// `build --list L ... [--base B] --out OUT [extra]`.
    fn build(
        &self,
        lists: &[PathBuf],
        base: Option<&Path>,
        out: &Path,
        extra: &[&str],
    ) -> (bool, String, String) {
        let mut args: Vec<&OsStr> = vec!["build".as_ref()];
        for l in lists {
            args.extend(["--list".as_ref(), l.as_os_str()]);
        }
        if let Some(b) = base {
            args.extend(["--base".as_ref(), b.as_os_str()]);
        }
        args.extend([
            "--key".as_ref(),
            self.key.as_os_str(),
            "--signing-key".as_ref(),
            self.signing.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        args.extend(extra.iter().map(OsStr::new));
        run(&args)
    }

    /// Which of `items` the table file matches.
    fn matches(&self, table: &Path, items: &[Item]) -> Vec<bool> {
        let key = blindmatch_server::keyfile::read(&self.key).unwrap();
        let file = blindmatch_server::bundle::read(table, false).unwrap();
        let matcher = Matcher::new(&key, &file.table, file.index.clone()).unwrap();
        let client = ClientTable::new(file.table.clone()).unwrap();
        items
            .iter()
            .map(|item| {
                let v = client.create_voucher(item, b"", &mut rand::rng()).unwrap();
                matcher.open(&v).unwrap().is_some()
            })
            .collect()
    }
}

#[test]
fn lists_of_every_format_build_a_table_and_tombstones_remove_entries_next_version() {
    let op = Operator::new();
    let v1 = op.dir.path().join("table.bmt");
    let lists = |next: bool| {
        let n = |base: &str, ext: &str| {
            data(&format!("{base}{}.{ext}", if next { "-next" } else { "" }))
        };
        vec![
            n("ncmec", "xml"),
            n("stopncii", "json"),
            // Named rather than read from the file: the same.
            PathBuf::from(format!("tcap:{}", data("tcap.json").display())),
            data("threatexchange.csv"),
            data("hashes.txt"),
        ]
    };
    let (ok, out, err) = op.build(&lists(false), None, &v1, &["--report"]);
    assert!(ok, "{err}");
    for line in [
        // The report: a row per list and type, unsupported types by name.
        "ncmec.xml           ncmec           md5             7   5         1           1            -",
        "ncmec.xml           ncmec           pdna            2   -         -           -            2",
        "stopncii.json       stopncii        VideoTMK        1   -         -           -            1",
        "tcap.json           tcap            SHA512          1   -         -           -            1",
        "threatexchange.csv  threatexchange  pdq             3   1         0           2            -",
        "hashes.txt          text            sha256          2   2         0           0            -",
        "threatexchange.csv: tombstoned, but listed by another list, so kept: 1",
        "in the table: 23 entries (26 values listed, 3 of them listed by an earlier list too)",
        // The summary, and what was left out, always.
        "version 1: 23 entries",
        "left out: 8 value(s) of types blindmatch cannot match exactly (pdna 2, tmk-pdqf 1, videntifier 1, VideoTMK 1, SHA512 1, photo_dna 1, url_md5 1), 3 tombstoned, 2 repeated within a list",
    ] {
        assert!(out.contains(line), "{line:?} not in\n{out}");
    }
    // What is in the table: one value of each list; the value TCAP lists
    // and ThreatExchange marks NEGATIVE_CLASS (kept); not the one only
    // ThreatExchange lists as NEGATIVE_CLASS.
    let probe = [
        pdq("img-1003"),      // NCMEC
        pdq("ncii-2"),        // StopNCII
        sha256("tcap-1.mp4"), // TCAP
        pdq("te-1"),          // ThreatExchange
        sha256("own-1"),      // text
        pdq("tcap-2.jpg"),    // listed and tombstoned: kept
        pdq("te-2"),          // tombstoned only
    ];
    assert_eq!(
        op.matches(&v1, &probe),
        [true, true, true, true, true, true, false]
    );

    // Without --report: the summary and the left-out line, never silent.
    let (ok, out, err) = op.build(&lists(false)[..1], None, &op.dir.path().join("n.bmt"), &[]);
    assert!(ok, "{err}");
    assert!(!out.contains("source  "), "{out}");
    assert!(out.contains("left out: 4 value(s) of types blindmatch cannot match exactly (pdna 2, tmk-pdqf 1, videntifier 1), 1 tombstoned, 2 repeated within a list"), "{out}");

    // The next day: NCMEC deletes img-1003 (its md5, sha1 and pdq) and
    // StopNCII withdraws ncii-2. Built in place: the delta removes them.
    let v2 = op.dir.path().join("table.next");
    let (ok, out, err) = op.build(&lists(true), Some(&v1), &v2, &["--report"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "version 2 from version 1: 19 entries kept, 0 added, 4 removed (4 of them tombstoned)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "ncmec-next.xml      ncmec           pdq             2   1         0           1"
        ),
        "{out}"
    );
    assert_eq!(
        op.matches(&v2, &probe),
        [false, false, true, true, true, true, false]
    );
    let base = blindmatch_server::bundle::read(&v1, false).unwrap();
    let next = blindmatch_server::bundle::read(&v2, false).unwrap();
    let delta = blindmatch_protocol::TableDelta::between(&base.table, &next.table).unwrap();
    assert!(
        delta.indices.len() >= 4,
        "{} slots changed",
        delta.indices.len()
    );
}

#[test]
fn a_bad_record_in_any_list_builds_nothing_and_names_file_entry_line_and_field() {
    let op = Operator::new();
    // The third image's md5 loses a digit.
    let good = std::fs::read_to_string(data("ncmec.xml")).unwrap();
    let (before, rest) = good.split_at(good.match_indices("<md5>").nth(2).unwrap().0);
    let line = before.lines().count();
    let bad = format!("{before}{}", rest.replacen("<md5>", "<md5>0", 1));
    let ncmec = op.dir.path().join("ncmec.xml");
    std::fs::write(&ncmec, bad).unwrap();
    let te = op.dir.path().join("te.csv");
    std::fs::write(
        &te,
        "signal_type,signal_str,collab,category,tags\npdq,00,c,POSITIVE_CLASS,\n",
    )
    .unwrap();
    let out = op.dir.path().join("table.bmt");
    let (ok, stdout, err) = op.build(
        &[data("stopncii.json"), ncmec.clone(), te.clone()],
        None,
        &out,
        &[],
    );
    assert!(!ok, "{stdout}");
    assert!(!out.exists(), "a table was written");
    for fragment in [
        "no table was built: 2 list(s) refused".to_owned(),
        format!(
            "{}: 1 bad record(s)\n  image 3 (line {line}): fingerprint md5: not 32 hex digits: 33 digits",
            ncmec.display()
        ),
        format!(
            "{}: 1 bad record(s)\n  line 2: signal_str: not 64 hex digits: 2 digits",
            te.display()
        ),
    ] {
        assert!(err.contains(&fragment), "{fragment:?} not in\n{err}");
    }
}

/// An organisation's list in its own format is what `audit-bundle` reads
/// too: the values it lists now (not its tombstoned ones), all in the table.
#[test]
fn audit_bundle_reads_an_organisations_list_in_its_format() {
    let op = Operator::new();
    let table = op.dir.path().join("table.bmt");
    let (ok, _, err) = op.build(&[data("ncmec.xml")], None, &table, &[]);
    assert!(ok, "{err}");
    let bundle = op.dir.path().join("ncmec.bundle");
    let list = PathBuf::from(format!("ncmec:{}", data("ncmec.xml").display()));
    let (ok, out, err) = run(&[
        "audit-bundle".as_ref(),
        "--table".as_ref(),
        table.as_os_str(),
        "--key".as_ref(),
        op.key.as_os_str(),
        "--list".as_ref(),
        list.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("11 distinct items listed: 11 entry slot(s) proved, 0 not in the table"),
        "{out}"
    );
    assert!(!out.contains("WARNING"), "{out}");
}
