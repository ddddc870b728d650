//! Which format a list file is in: named by the operator (`ncmec:FILE`) or
//! read from the file's first bytes.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A list format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Format {
    /// blindmatch's own: `TYPE VALUE` lines, bare hex values with a
    /// default type, or CSV with a `type,value` header
    /// ([`blindmatch_protocol::list`]).
    Text,
    /// NCMEC's hash sharing API (v2): the XML of `GET /v2/entries`, one or
    /// more `<queryResult>` pages.
    Ncmec,
    /// StopNCII.org's `FetchHashes`: JSON pages of `hashRecords`.
    StopNcii,
    /// Tech Against Terrorism's TCAP content hash list (v2): JSON pages of
    /// `results`.
    Tcap,
    /// A ThreatExchange CSV export (`threatexchange dataset -P --csv`, the
    /// library HMA is built on): a `signal_type,signal_str,...` header.
    ThreatExchange,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Ncmec,
        Format::StopNcii,
        Format::Tcap,
        Format::ThreatExchange,
    ];

    /// The name of `--list NAME:FILE` and of the report.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Ncmec => "ncmec",
            Format::StopNcii => "stopncii",
            Format::Tcap => "tcap",
            Format::ThreatExchange => "threatexchange",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or(UnknownFormat)
    }
}

/// A name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown list format (expected text, ncmec, stopncii, tcap or threatexchange)")]
pub struct UnknownFormat;

/// One list file, and its format if the operator named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// The format, or `None` to read it from the file.
    pub format: Option<Format>,
}

impl Source {
    /// `--list [FORMAT:]FILE`: a prefix before the first `:` that names a
    /// format is that format; anything else is all path (write
    /// `./ncmec:x` for a file whose name starts like a format's).
    pub fn parse(arg: &OsStr) -> Source {
        if let Some((prefix, rest)) = arg.to_str().and_then(|s| s.split_once(':'))
            && let Ok(format) = prefix.parse::<Format>()
        {
            return Source {
                path: PathBuf::from(rest),
                format: Some(format),
            };
        }
        Source {
            path: PathBuf::from(arg),
            format: None,
        }
    }

    /// The file's name as the report and errors show it.
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

impl From<PathBuf> for Source {
    /// A file whose format is read from it.
    fn from(path: PathBuf) -> Self {
        Source { path, format: None }
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Self {
        Source::from(path.to_path_buf())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            Some(format) => write!(f, "{format}:{}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// What a file's first bytes say it is. JSON is told apart by its keys
/// while it is read (StopNCII's `hashRecords`, TCAP's `results`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Xml,
    Json,
    ThreatExchangeCsv,
    Text,
}

/// Reads `head` (the file's first bytes): XML starts with `<`, JSON with
/// `{`, a ThreatExchange CSV with its `signal_type,` header; anything else
/// is a text list. A UTF-8 byte order mark and leading white space are
/// skipped.
pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    match head.first() {
        Some(b'<') => Sniffed::Xml,
        Some(b'{' | b'[') => Sniffed::Json,
        _ if is_threatexchange_header(head) => Sniffed::ThreatExchangeCsv,
        _ => Sniffed::Text,
    }
}

/// A first line that starts with the column `signal_type`, quoted or not.
fn is_threatexchange_header(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = line.split(|&b| b == b',').next().unwrap_or_default();
    let first = first.trim_ascii();
    let first = first
        .strip_prefix(b"\"")
        .and_then(|f| f.strip_suffix(b"\""))
        .unwrap_or(first);
    first.eq_ignore_ascii_case(b"signal_type")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_formats_and_anything_else_is_a_path() {
        let s = Source::parse(OsStr::new("ncmec:/data/ncmec.xml"));
        assert_eq!(
            (s.path.as_path(), s.format),
            (Path::new("/data/ncmec.xml"), Some(Format::Ncmec))
        );
        let s = Source::parse(OsStr::new("TCAP:list.json"));
        assert_eq!(s.format, Some(Format::Tcap));
        for path in ["list.txt", "./ncmec:x.xml", "c:list", "weird:name:x"] {
            let s = Source::parse(OsStr::new(path));
            assert_eq!((s.path.as_path(), s.format), (Path::new(path), None));
        }
    }

    #[test]
    fn sniffs_the_first_bytes() {
        assert_eq!(
            sniff(b"\xEF\xBB\xBF  <?xml version=\"1.0\"?>"),
            Sniffed::Xml
        );
        assert_eq!(sniff(b"\n {\"count\": 1}"), Sniffed::Json);
        assert_eq!(
            sniff(b"signal_type,signal_str,collab,category,tags\r\npdq,00"),
            Sniffed::ThreatExchangeCsv
        );
        assert_eq!(
            sniff(b"\"signal_type\",\"signal_str\"\n"),
            Sniffed::ThreatExchangeCsv
        );
        assert_eq!(sniff(b"type,value\nsha256,00\n"), Sniffed::Text);
        assert_eq!(sniff(b"sha256 00\n"), Sniffed::Text);
        assert_eq!(sniff(b""), Sniffed::Text);
    }
}
