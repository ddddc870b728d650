//! Several sources into one table: the union of what they list, and the
//! report of what went in and what did not, per source and type.

use std::collections::HashSet;
use std::fmt;

use blindmatch_protocol::Item;

use crate::format::Format;
use crate::tally::{Counts, SourceList, TypeCounts};

/// One source in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    /// The file, as given.
    pub name: String,
    /// Its format.
    pub format: Format,
    /// What came of its values.
    pub counts: Counts,
    /// Values it tombstoned that another source lists: kept.
    pub tombstoned_kept: u64,
}

/// What the sources came to; its `Display` is the table `build --report`
/// prints, [`Report::left_out`] the line `build` always prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each source, in the order given.
    pub sources: Vec<SourceReport>,
    /// Distinct values over all sources: the table's entries.
    pub entries: u64,
}

/// The sources' union and its report.
#[derive(Debug)]
pub struct Combined {
    /// Every value some source lists, once, in order of first occurrence
    /// (sources in the order given).
    pub items: Vec<Item>,
    /// Values some source tombstoned and none lists: what a new version
    /// built from the base removes as tombstoned, if the base holds them.
    pub tombstoned: Vec<Item>,
    /// What went in and what did not.
    pub report: Report,
}

/// Combines sources read with [`crate::read`]: a value listed by any source
/// is in; one tombstoned by a source and listed by another stays in, and
/// the report says so.
pub fn combine(sources: Vec<SourceList>) -> Combined {
    let mut items: Vec<Item> = Vec::with_capacity(sources.iter().map(|s| s.items.len()).sum());
    let mut tombstoned = Vec::new();
    let mut reports = Vec::with_capacity(sources.len());
    let mut source_tombstones = Vec::with_capacity(sources.len());
    for s in sources {
        reports.push(SourceReport {
            name: s.path.display().to_string(),
            format: s.format,
            counts: s.counts,
            tombstoned_kept: 0,
        });
        items.extend(s.items);
        source_tombstones.push(s.tombstoned);
    }
    // First occurrence wins, as the protocol's own dedup keeps it.
    let keep: Vec<bool> = {
        let mut seen = HashSet::with_capacity(items.len());
        items.iter().map(|i| seen.insert(i)).collect()
    };
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
    {
        let listed: HashSet<&Item> = items.iter().collect();
        let mut dropped = HashSet::new();
        for (report, tombs) in reports.iter_mut().zip(&source_tombstones) {
            for t in tombs {
                if listed.contains(t) {
                    report.tombstoned_kept += 1;
                } else if dropped.insert(t) {
                    tombstoned.push(t.clone());
                }
            }
        }
    }
    Combined {
        report: Report {
            sources: reports,
            entries: items.len() as u64,
        },
        items,
        tombstoned,
    }
}

impl Report {
    /// Everything left out, summed over sources: the line `build` prints
    /// whether or not the table was asked for.
    pub fn left_out(&self) -> LeftOut {
        let mut out = LeftOut::default();
        for s in &self.sources {
            let t = s.counts.total();
            out.repeated += t.repeated();
            out.tombstoned += t.tombstoned;
            out.tombstoned_kept += s.tombstoned_kept;
            out.deletions_without_values += s.counts.deletions_without_values;
            for (name, n) in &s.counts.unsupported {
                match out.unsupported.iter_mut().find(|(m, _)| m == name) {
                    Some((_, total)) => *total += n,
                    None => out.unsupported.push((name.clone(), *n)),
                }
            }
            out.listed += t.listed;
        }
        out.entries = self.entries;
        out
    }
}

/// What was left out of the table, over all sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Values of types blindmatch cannot match exactly, by name.
    pub unsupported: Vec<(String, u64)>,
    /// Distinct values tombstoned, summed over sources (those another
    /// source lists included: see `tombstoned_kept`).
    pub tombstoned: u64,
    /// Tombstoned values kept because another source lists them.
    pub tombstoned_kept: u64,
    /// Repeated occurrences within a source.
    pub repeated: u64,
    /// Deletions of entries with no value in their file.
    pub deletions_without_values: u64,
    /// Values listed, summed over sources.
    pub listed: u64,
    /// Distinct values over sources: the table's entries.
    pub entries: u64,
}

impl fmt::Display for LeftOut {
    /// One line: "left out: ..." (or that nothing was).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unsupported: u64 = self.unsupported.iter().map(|(_, n)| n).sum();
        let mut parts = Vec::new();
        if unsupported > 0 {
            let names: Vec<String> = self
                .unsupported
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            parts.push(format!(
                "{unsupported} value(s) of types blindmatch cannot match exactly ({})",
                names.join(", ")
            ));
        }
        if self.tombstoned > self.tombstoned_kept {
            parts.push(format!(
                "{} tombstoned",
                self.tombstoned - self.tombstoned_kept
            ));
        }
        if self.repeated > 0 {
            parts.push(format!("{} repeated within a list", self.repeated));
        }
        if parts.is_empty() {
            write!(f, "left out: nothing")?;
        } else {
            write!(f, "left out: {}", parts.join(", "))?;
        }
        if self.tombstoned_kept > 0 {
            write!(
                f,
                "; kept: {} tombstoned by one list but listed by another",
                self.tombstoned_kept
            )?;
        }
        if self.listed > self.entries {
            write!(
                f,
                "; {} listed by more than one list (once in the table)",
                self.listed - self.entries
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    /// A row per source and type: values read, listed (in), repeated,
    /// tombstoned, unsupported; then what each source's notes are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<[String; 8]> = vec![[
            "source".into(),
            "format".into(),
            "type".into(),
            "read".into(),
            "in".into(),
            "repeated".into(),
            "tombstoned".into(),
            "unsupported".into(),
        ]];
        for s in &self.sources {
            let row = |ty: String, c: TypeCounts, unsupported: u64| -> [String; 8] {
                let n = |v: u64, shown: bool| if shown { v.to_string() } else { "-".into() };
                let supported = unsupported == 0;
                [
                    s.name.clone(),
                    s.format.to_string(),
                    ty,
                    c.read.to_string(),
                    n(c.listed, supported),
                    n(c.repeated(), supported),
                    n(c.tombstoned, supported),
                    n(unsupported, !supported),
                ]
            };
            for (ty, c) in &s.counts.types {
                rows.push(row(ty.to_string(), *c, 0));
            }
            for (name, n) in &s.counts.unsupported {
                let c = TypeCounts {
                    read: *n,
                    ..TypeCounts::default()
                };
                rows.push(row(name.clone(), c, *n));
            }
        }
        let mut widths = [0usize; 8];
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in &rows {
            let mut line = String::new();
            for (i, (cell, w)) in r.iter().zip(widths).enumerate() {
                if i < 3 {
                    line.push_str(&format!("{cell:<w$}  "));
                } else {
                    line.push_str(&format!("{cell:>w$}  "));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        for s in &self.sources {
            if s.counts.deletions_without_values > 0 {
                writeln!(
                    f,
                    "{}: deletions of entries with no value in the file (nothing to remove from it): {}",
                    s.name, s.counts.deletions_without_values
                )?;
            }
            if s.tombstoned_kept > 0 {
                writeln!(
                    f,
                    "{}: tombstoned, but listed by another list, so kept: {}",
                    s.name, s.tombstoned_kept
                )?;
            }
        }
        let listed: u64 = self.sources.iter().map(|s| s.counts.total().listed).sum();
        write!(
            f,
            "in the table: {} entries ({} values listed, {} of them listed by an earlier list too)",
            self.entries,
            listed,
            listed - self.entries
        )
    }
}
