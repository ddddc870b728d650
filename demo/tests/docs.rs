//! The flags README.md and papers/SPEC.md name are flags the binaries
//! take: every `--flag` in them must be one of `blindmatch-server`'s,
//! `blindmatch`'s or `blindmatch-audit`'s (any subcommand, as their
//! `--help` lists them; here, in the crate that depends on all three), except on
//! lines that run another program (cargo, a benchmark, a script), whose
//! flags are that program's business. A renamed flag left in the docs fails
//! here, naming the file and line; so does a config-file key in README's
//! example that is not a `serve` setting.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;

use clap::CommandFactory;

/// Every long flag of `command` and its subcommands, `--` included.
fn flags(command: &clap::Command, out: &mut BTreeSet<String>) {
    for a in command.get_arguments() {
        if let Some(l) = a.get_long() {
            out.insert(format!("--{l}"));
        }
    }
    for sub in command.get_subcommands() {
        flags(sub, out);
    }
}

fn known() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    flags(&blindmatch_server::cli::Cli::command(), &mut out);
    flags(&blindmatch_client::cli::Cli::command(), &mut out);
    flags(&blindmatch_audit::cli::Cli::command(), &mut out);
    // clap's own.
    out.extend(["--help".to_string(), "--version".to_string()]);
    out
}

/// A line that runs something else than the two binaries: its flags are
/// not theirs.
fn foreign(line: &str) -> bool {
    [
        "cargo ",
        "cargo-",
        "RUSTFLAGS",
        "rustup",
        "maturin",
        "pip ",
        "npm ",
        "npx ",
        "mvn ",
        "node ",
        "python3 ",
        "valgrind",
        "blindmatch-bench",
        "blindmatch-timing",
        "blindmatch-delta",
        "blindmatch-flood",
        "blindmatch-store-bench",
        "blindmatch-threshold-bench",
        "blindmatch-bindings-bench",
        "blindmatch-scale",
        "blindmatch-demo",
        "scripts/",
        "bindings/",
        ".ci/run",
        "git ",
        "protoc",
        "-max_total_time",
        "podman",
        "helm ",
        "kubectl ",
        // python-threatexchange's CLI, whose CSV export `build` reads.
        "threatexchange dataset",
    ]
    .iter()
    .any(|w| line.contains(w))
}

/// Flags of other programs that prose names in passing (cargo's, podman's).
const OTHER_PROGRAMS_FLAGS: [&str; 3] = ["--locked", "--test", "--cgroup-manager"];

/// `--word-word` tokens of `line` (a lone `--` and `---` table rules are
/// not flags); `--word-*` stands for every flag that starts `--word-`.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        let starts = b[i] == b'-'
            && b[i + 1] == b'-'
            && b[i + 2].is_ascii_lowercase()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-'));
        if starts {
            let end = (i + 2..b.len())
                .find(|&j| !(b[j].is_ascii_lowercase() || b[j].is_ascii_digit() || b[j] == b'-'))
                .unwrap_or(b.len());
            let token = &line[i..end];
            if b.get(end) == Some(&b'*') && token.ends_with('-') {
                out.push(format!("{token}*"));
            } else {
                out.push(token.trim_end_matches('-').to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn unknown_flags(path: &str) -> Vec<String> {
    let known = known();
    let text =
        std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut bad = Vec::new();
    // A command continued with `\` is one line for this purpose.
    let mut logical = String::new();
    let mut first = 0;
    for (n, line) in text.lines().enumerate() {
        if logical.is_empty() {
            first = n + 1;
        }
        logical.push_str(line);
        if line.ends_with('\\') {
            logical.push(' ');
            continue;
        }
        if !foreign(&logical) {
            for t in tokens(&logical) {
                let ok = match t.strip_suffix('*') {
                    Some(prefix) => known.iter().any(|k| k.starts_with(prefix)),
                    None => known.contains(&t) || OTHER_PROGRAMS_FLAGS.contains(&t.as_str()),
                };
                if !ok {
                    bad.push(format!("{path}:{first}: {t}"));
                }
            }
        }
        logical.clear();
    }
    bad
}

#[test]
fn the_readme_names_only_flags_the_binaries_take() {
    let bad = unknown_flags("README.md");
    assert!(bad.is_empty(), "flags no binary takes:\n{}", bad.join("\n"));
}

#[test]
fn the_spec_names_only_flags_the_binaries_take() {
    let bad = unknown_flags("papers/SPEC.md");
    assert!(bad.is_empty(), "flags no binary takes:\n{}", bad.join("\n"));
}

/// The README's example config file holds only `serve` settings, each
/// under its key.
#[test]
fn the_readme_config_example_holds_only_serve_settings() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let keys: BTreeSet<String> = blindmatch_server::config::serve_flags()
        .into_iter()
        .map(|f| f.trim_start_matches("--").to_string())
        .chain(["grpc-web-origins".to_string()])
        .collect();
    let mut in_toml = false;
    let mut seen = 0;
    for (n, line) in readme.lines().enumerate() {
        if line.starts_with("```toml") {
            in_toml = true;
            continue;
        }
        if line.starts_with("```") {
            in_toml = false;
        }
        let line = line.trim_start_matches('#').trim();
        if in_toml && let Some((key, _)) = line.split_once(" = ") {
            assert!(
                keys.contains(key.trim()),
                "README.md:{}: {key} is not a serve setting",
                n + 1
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "README.md has no ```toml config example");
}

#[test]
fn a_renamed_flag_would_be_found() {
    // The check itself: SPEC 14.9 once named `--retention` for
    // `--retain-matches`.
    assert_eq!(
        tokens("matches past `--retention` (or --retain-matches, --tls-*), and -- x ---"),
        ["--retention", "--retain-matches", "--tls-*"]
    );
    assert!(!known().contains("--retention"));
    assert!(known().contains("--retain-matches"));
}
