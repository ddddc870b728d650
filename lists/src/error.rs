//! Why a list is refused: every bad record with where it is and which field,
//! or a file that cannot be read as its format at all.

use std::fmt;

use blindmatch_protocol::list::ListError;

/// How many bad records an error keeps (and shows): the count covers all.
pub(crate) const BAD_KEPT: usize = 20;

/// Where a bad record is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A line (1-based) of a text or CSV list: one record a line.
    Line(u64),
    /// The `number`-th record (1-based) of an XML or JSON list, named as the
    /// format names it (`image`, `video`, `record`), and the line it is on.
    Record {
        /// What the format calls it: the XML element, or `record`.
        kind: &'static str,
        /// Its number among the file's records, all kinds together.
        number: u64,
        /// The line (1-based) of the field at fault, or of the record.
        line: u64,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(f, "line {line}"),
            Location::Record { kind, number, line } => write!(f, "{kind} {number} (line {line})"),
        }
    }
}

/// One record that could not be read: where, which field, what is wrong.
/// The message never holds the value itself (a hash value is an item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Where.
    pub at: Location,
    /// The field at fault (`fingerprint md5`, `hashValue`, `signal_str`), if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {field}: {}", self.at, self.message),
            None => write!(f, "{}: {}", self.at, self.message),
        }
    }
}

/// Why one list file is refused whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{path}: {source}{hint}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
        /// A hint, for a `FORMAT:` prefix that names no format.
        hint: &'static str,
    },
    /// A text list (`TYPE VALUE` lines, bare hex, `type,value` CSV): the
    /// protocol's parser's error.
    #[error("{path}: {source}")]
    Text {
        /// The file.
        path: String,
        /// Its bad lines, or no entries.
        source: ListError,
    },
    /// Records that could not be read: the first 20 of them, and how many in all.
    #[error("{path}: {total} bad record(s){}", shown(.bad, *.total))]
    BadRecords {
        /// The file.
        path: String,
        /// The first bad records, in file order.
        bad: Vec<BadRecord>,
        /// How many there are.
        total: u64,
    },
    /// The file is not in its format (not well-formed XML, JSON or CSV, or
    /// another document): it cannot be read past this point.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
    /// No record at all: almost surely the wrong file.
    #[error("{path}: no entries (no record in the file)")]
    Empty {
        /// The file.
        path: String,
    },
}

fn shown(bad: &[BadRecord], total: u64) -> String {
    let mut msg = String::new();
    for b in bad {
        msg.push_str(&format!("\n  {b}"));
    }
    if total > bad.len() as u64 {
        msg.push_str(&format!("\n  ... and {} more", total - bad.len() as u64));
    }
    msg
}

/// Why a set of lists is refused: every file's error (nothing is built from
/// any if one is bad).
#[derive(Debug, thiserror::Error)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} list(s) refused", all.len())?;
                for e in all {
                    write!(f, "\n{e}")?;
                }
                Ok(())
            }
        }
    }
}
