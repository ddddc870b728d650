//! blindmatch hash lists: the formats operators receive, read into the
//! items a table is built from, with an account of everything left out.
//!
//! The operator's `blindmatch-server build`, its `audit-bundle` and an
//! organisation's `blindmatch-audit` read lists through this crate, so that
//! the file an organisation publishes is read the same way by all three
//! (SPEC 15.1 numbers a list by its values' first occurrences).
//!
//! A [`Source`] is one file, in a [`Format`] the operator names
//! (`ncmec:FILE`) or that is read from the file's first bytes
//! (`<` is NCMEC's XML, `{` StopNCII's or TCAP's JSON, a `signal_type,...`
//! header a ThreatExchange CSV, anything else blindmatch's own text list).
//! [`read`] turns it into a [`SourceList`]: the values it lists now, the
//! values it tombstoned, and counts by type of what was read, listed,
//! repeated, tombstoned, and of types blindmatch cannot match exactly
//! (PhotoDNA, TMK, ...), which are counted, never put in and never silently
//! dropped. [`combine`] makes several sources one table and a [`Report`].
//!
//! Each format's module cites the public document or client it follows:
//! [`Format::Ncmec`] (`ncmec`), [`Format::StopNcii`] (`stopncii`),
//! [`Format::Tcap`] (`tcap`), [`Format::ThreatExchange`] (`threatexchange`);
//! `tally` says how a file's records become its current state (a later
//! record replaces an earlier one; a deletion tombstones). Files are read
//! as streams: only the values are held, never the file.
//!
//! A bad record names its file, its line or record number and its field,
//! and the whole list is refused: nothing is built from a list with one.

mod error;
mod format;
mod json;
mod lines;
mod ncmec;
mod report;
mod stopncii;
mod tally;
mod tcap;
mod text;
mod threatexchange;

use std::fs::File;
use std::io::{BufRead, BufReader};

use blindmatch_protocol::ItemType;

pub use error::{BadRecord, Error, Errors, Location};
pub use format::{Format, Source, UnknownFormat};
pub use report::{Combined, LeftOut, Report, SourceReport, combine};
pub use tally::{Counts, SourceList, TypeCounts};

use format::{Sniffed, sniff};
use json::JsonFormat;

/// Reads one list file. `default_type` is the type of bare values in a text
/// list; other formats name every value's type.
///
/// # Errors
/// [`Error`]: the file cannot be read; it is not in its format; a record is
/// bad (every one is named); or it holds no record.
pub fn read(source: &Source, default_type: Option<ItemType>) -> Result<SourceList, Error> {
    let path = &source.path;
    let io = |source: std::io::Error, hint: &'static str| Error::Io {
        path: path.display().to_string(),
        source,
        hint,
    };
    let file = File::open(path).map_err(|e| {
        // `ncmc:x.xml` is a path, not a format: say which are.
        let hint = if e.kind() == std::io::ErrorKind::NotFound
            && path.to_str().is_some_and(|p| p.contains(':'))
        {
            " (a list's format is given as FORMAT:FILE, FORMAT one of text, ncmec, stopncii, tcap, threatexchange)"
        } else {
            ""
        };
        io(e, hint)
    })?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    read_from(source, &mut reader, default_type)
}

/// [`read`] from a reader: `source` names it and may name its format.
///
/// # Errors
/// As [`read`].
pub fn read_from(
    source: &Source,
    reader: &mut impl BufRead,
    default_type: Option<ItemType>,
) -> Result<SourceList, Error> {
    let path = source.path.as_path();
    let head = reader.fill_buf().map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
        hint: "",
    })?;
    // A UTF-8 byte order mark (editors on Windows write one) is not content.
    if head.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let format = match source.format {
        Some(f) => f,
        None => {
            let head = reader.fill_buf().map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
                hint: "",
            })?;
            match sniff(head) {
                Sniffed::Xml => Format::Ncmec,
                Sniffed::Json => return json::read(path, reader, None),
                Sniffed::ThreatExchangeCsv => Format::ThreatExchange,
                Sniffed::Text => Format::Text,
            }
        }
    };
    match format {
        Format::Text => text::read(path, reader, default_type),
        Format::Ncmec => ncmec::read(path, reader),
        Format::StopNcii => json::read(path, reader, Some(JsonFormat::StopNcii)),
        Format::Tcap => json::read(path, reader, Some(JsonFormat::Tcap)),
        Format::ThreatExchange => threatexchange::read(path, reader),
    }
}

/// Reads every source, and combines them if all are good.
///
/// # Errors
/// [`Errors`]: every source's error (nothing is built if one is bad).
pub fn read_all(sources: &[Source], default_type: Option<ItemType>) -> Result<Combined, Errors> {
    let mut lists = Vec::with_capacity(sources.len());
    let mut errors = Vec::new();
    for s in sources {
        match read(s, default_type) {
            Ok(list) => lists.push(list),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(combine(lists))
    } else {
        Err(Errors(errors))
    }
}
