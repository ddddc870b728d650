//! The audit through the real `blindmatch-audit` binary, on tables built by
//! the operator's real tools (`build`, `audit-bundle`, `cosign`, called as
//! the library `blindmatch-server` runs them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use blindmatch_protocol::ItemType;
use blindmatch_server::BuildOptions;
use blindmatch_server::audit::BundleOptions;

/// A distinct 32-byte value (64 hex digits) per i.
fn hash(i: u32) -> String {
    format!(
        "{:032x}{:032x}",
        u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
        u128::from(i)
    )
}

fn write_list(path: &Path, items: impl Iterator<Item = u32>) {
    let text: String = items.map(|i| format!("{}\n", hash(i))).collect();
    std::fs::write(path, text).unwrap();
}

struct Operator {
    dir: tempfile::TempDir,
    key: PathBuf,
    signing: PathBuf,
    operator_pub: String,
}

impl Operator {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("server.key");
        blindmatch_server::keyfile::write_new(&key).unwrap();
        let signing = dir.path().join("operator.sign");
        let operator_pub = hex::encode(
            blindmatch_server::keyfile::write_new_signing(&signing)
                .unwrap()
                .verifying_key()
                .to_bytes(),
        );
        Operator {
            dir,
            key,
            signing,
            operator_pub,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn build(&self, list: &Path, out: &str, base: Option<&str>) -> PathBuf {
        let out = self.path(out);
        blindmatch_server::build(
            list,
            &self.key,
            &out,
            &BuildOptions {
                default_type: Some(ItemType::Sha256),
                k: None,
                load_factor: None,
                progress: false,
                signing_key: self.signing.clone(),
                base: base.map(|b| self.path(b)),
                decoys: 2,
                threshold: None,
            },
        )
        .unwrap();
        out
    }

    /// The bundle for `org_list` and the public table, in `prefix.*`.
    fn bundle(
        &self,
        table: &Path,
        org_list: &Path,
        prefix: &str,
        base: Option<&str>,
    ) -> (PathBuf, PathBuf) {
        let (out, public) = (
            self.path(&format!("{prefix}.bundle")),
            self.path(&format!("{prefix}.table")),
        );
        blindmatch_server::audit::make_bundle(&BundleOptions {
            table: table.to_owned(),
            key: self.key.clone(),
            list: org_list.to_owned().into(),
            default_type: Some(ItemType::Sha256),
            base: base.map(|b| self.path(b)),
            out: out.clone(),
            public_table: Some(public.clone()),
        })
        .unwrap();
        (out, public)
    }
}

fn audit(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blindmatch-audit"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `blindmatch-audit CMD --table T --bundle B --list L --type sha256 EXTRA...`.
fn audit_on(cmd: &str, table: &Path, bundle: &Path, list: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        cmd,
        "--table",
        s(table),
        "--bundle",
        s(bundle),
        "--list",
        s(list),
        "--type",
        "sha256",
    ];
    args.extend_from_slice(extra);
    audit(&args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_organisations_audit_the_intersection_and_one_refuses_a_slipped_hash() {
    let op = Operator::new();
    // A lists 0..300, B lists 100..400; the operator serves the intersection.
    let (list_a, list_b, both) = (op.path("a.txt"), op.path("b.txt"), op.path("both.txt"));
    write_list(&list_a, 0..300);
    write_list(&list_b, 100..400);
    write_list(&both, 100..300);
    let v1 = op.build(&both, "v1.bmt", None);

    let mut cosignatures = Vec::new();
    for (org, list) in [("A", &list_a), ("B", &list_b)] {
        let signing = op.path(&format!("{org}.sign"));
        blindmatch_server::keyfile::write_new_signing(&signing).unwrap();
        let (bundle, table) = op.bundle(&v1, list, &format!("{org}-v1"), None);
        let state = op.path(&format!("{org}-v1.state"));
        let out = op.path(&format!("{org}-v1.cosig"));
        let (ok, text) = audit_on(
            "cosign",
            &table,
            &bundle,
            list,
            &[
                "--operator-key",
                &op.operator_pub,
                "--save-state",
                s(&state),
                "--signing-key",
                s(&signing),
                "--name",
                &format!("Hotline {org}"),
                "--out",
                s(&out),
            ],
        );
        assert!(ok, "{text}");
        assert!(
            text.contains("PASSED (full audit)") && text.contains("200 entry slot(s) proved"),
            "{text}"
        );
        cosignatures.push(out);
    }
    let attached = blindmatch_server::audit::attach(&v1, &cosignatures).unwrap();
    assert_eq!(attached.now.len(), 2);

    // Version 2 slips in item 999, on neither list.
    let slipped = op.path("slipped.txt");
    write_list(&slipped, (100..300).chain([999]));
    op.build(&slipped, "v2.bmt", Some("v1.bmt"));
    let v2 = op.path("v2.bmt");
    let (bundle, table) = op.bundle(&v2, &list_b, "B-v2", Some("v1.bmt"));
    let (ok, text) = audit_on(
        "verify",
        &table,
        &bundle,
        &list_b,
        &["--state", s(&op.path("B-v1.state"))],
    );
    assert!(!ok, "{text}");
    let file = blindmatch_server::bundle::read(&v2, false).unwrap();
    let fp = blindmatch_protocol::Item::parse(ItemType::Sha256, &hash(999)).unwrap();
    let slot = file
        .table
        .header()
        .positions(&fp)
        .as_slice()
        .iter()
        .copied()
        .find(|&p| {
            file.index.entry_at(p).is_some() && {
                // The slot the new entry took: not an entry of B's list.
                let at = p as usize * 32;
                blindmatch_server::bundle::read(&v1, false)
                    .unwrap()
                    .table
                    .slots()[at..at + 32]
                    != file.table.slots()[at..at + 32]
            }
        })
        .unwrap();
    assert!(
        text.contains("REFUSED") && text.contains(&format!("slot {slot}:")),
        "{text}"
    );
    // B refuses to co-sign it.
    let (ok, text) = audit_on(
        "cosign",
        &table,
        &bundle,
        &list_b,
        &[
            "--state",
            s(&op.path("B-v1.state")),
            "--signing-key",
            s(&op.path("B.sign")),
            "--name",
            "Hotline B",
            "--out",
            s(&op.path("B-v2.cosig")),
        ],
    );
    assert!(!ok && !op.path("B-v2.cosig").exists(), "{text}");
    // A co-signature of version 1 does not attach to version 2.
    let e = blindmatch_server::audit::attach(&v2, &cosignatures[..1]).unwrap_err();
    assert!(format!("{e:#}").contains("Hotline A"), "{e:#}");
}

#[test]
fn bad_inputs_are_named_and_never_panic() {
    let op = Operator::new();
    let list = op.path("list.txt");
    write_list(&list, 0..50);
    let v1 = op.build(&list, "v1.bmt", None);
    let (bundle, table) = op.bundle(&v1, &list, "v1", None);
    let garbage = op.path("garbage");
    std::fs::write(&garbage, b"not a bundle").unwrap();
    let other_list = op.path("other.txt");
    write_list(&other_list, 0..51);
    let op_key = "ab".repeat(32);
    for (bundle_arg, list_arg, extra, expect) in [
        (&garbage, &list, None, "--bundle"),
        (&bundle, &other_list, None, "another list"),
        (&bundle, &list, Some(op_key.as_str()), "operator key"),
    ] {
        let extra: Vec<&str> = extra.map_or(vec![], |k| vec!["--operator-key", k]);
        let (ok, text) = audit_on("verify", &table, bundle_arg, list_arg, &extra);
        assert!(
            !ok && text.contains(expect) && !text.contains("panicked"),
            "{expect}: {text}"
        );
    }
    // A co-signature vouches for the operator's statement: not without its key.
    let signing = op.path("org.sign");
    blindmatch_server::keyfile::write_new_signing(&signing).unwrap();
    let out = op.path("org.cosig");
    let (ok, text) = audit_on(
        "cosign",
        &table,
        &bundle,
        &list,
        &[
            "--signing-key",
            s(&signing),
            "--name",
            "Hotline",
            "--out",
            s(&out),
        ],
    );
    assert!(
        !ok && text.contains("--operator-key") && !out.exists(),
        "{text}"
    );
    // The table file of the operator is not a public table.
    let (ok, text) = audit_on("verify", &v1, &bundle, &list, &[]);
    assert!(!ok && text.contains("not a public table"), "{text}");
}
