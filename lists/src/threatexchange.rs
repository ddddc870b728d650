//! A ThreatExchange CSV export: what `threatexchange dataset -P --csv`
//! prints, the library and command line that HMA (Hasher-Matcher-Actioner)
//! is built on.
//!
//! Followed from python-threatexchange (facebook/ThreatExchange,
//! `threatexchange/cli/dataset_cmd.py`, `_print_csv`: a header and one row per
//! signal, written by Python's `csv.DictWriter`):
//!
//! ```text
//! signal_type,signal_str,collab,category,tags
//! pdq,<64 hex digits>,Sample Collab,POSITIVE_CLASS,tag1 tag2
//! video_md5,<32 hex digits>,Sample Collab,NEGATIVE_CLASS,
//! ```
//!
//! `signal_type` is the signal type's `get_name()` (`signal_type/*.py`):
//! `pdq` is `pdq`, `video_md5` `md5` and `video_sha256` `sha256` (exact
//! hashes of the file), and blindmatch's own `md5`, `sha1`, `sha256` are
//! taken as they are; every other (`photo_dna`, `vpdq`, `video_tmk_pdqf`,
//! `url`, `url_md5` (a URL's hash, not a file's), `raw_text`, ...) is
//! counted as unsupported. `category` is the aggregate opinion
//! (`exchanges/fetch_state.py`, `AggregateSignalOpinionCategory`):
//! NEGATIVE_CLASS ("signal generates false positives, or is test/example
//! data") tombstones the value; POSITIVE_CLASS, INVESTIGATION_SEED and
//! DISPUTED list it; so does a row without one. A later row for the same
//! value replaces an earlier one. Only `signal_type` and `signal_str` are
//! required columns.

use std::io::Read;
use std::path::Path;

use blindmatch_protocol::ItemType;

use crate::error::{Error, Location};
use crate::format::Format;
use crate::tally::{SourceList, Tally, hex_value};

/// The aggregate opinions that list a value.
const LISTING: [&str; 3] = ["POSITIVE_CLASS", "INVESTIGATION_SEED", "DISPUTED"];

/// Reads a ThreatExchange CSV export.
pub(crate) fn read(path: &Path, reader: impl Read) -> Result<SourceList, Error> {
    let name = || path.display().to_string();
    let csv_error = |e: csv::Error| {
        let message = format!("not a readable CSV file: {e}");
        match e.into_kind() {
            csv::ErrorKind::Io(source) => Error::Io {
                path: name(),
                source,
                hint: "",
            },
            _ => Error::Malformed {
                path: name(),
                message,
            },
        }
    };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.byte_headers().map_err(csv_error)?.clone();
    let column = |want: &str| {
        headers
            .iter()
            .position(|h| h.trim_ascii().eq_ignore_ascii_case(want.as_bytes()))
    };
    let (Some(type_at), Some(value_at)) = (column("signal_type"), column("signal_str")) else {
        return Err(Error::Malformed {
            path: name(),
            message: "the CSV header has no `signal_type` and `signal_str` columns (a ThreatExchange export's header is signal_type,signal_str,collab,category,tags)".into(),
        });
    };
    let category_at = column("category");
    let mut tally = Tally::new(path.to_path_buf());
    let mut row = csv::ByteRecord::new();
    while csv.read_byte_record(&mut row).map_err(csv_error)? {
        let at = Location::Line(row.position().map_or(0, csv::Position::line));
        let field = |i: usize| -> Result<&str, &'static str> {
            let bytes = row.get(i).ok_or("missing")?;
            std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8")
        };
        let signal_type = match field(type_at) {
            Ok(t) if !t.trim().is_empty() => t.trim(),
            Ok(_) => {
                tally.bad(at, Some("signal_type"), "empty");
                continue;
            }
            Err(why) => {
                tally.bad(at, Some("signal_type"), why);
                continue;
            }
        };
        let item_type = match signal_type.to_ascii_lowercase().as_str() {
            "pdq" => ItemType::Pdq,
            "video_md5" | "md5" => ItemType::Md5,
            "video_sha256" | "sha256" => ItemType::Sha256,
            "sha1" => ItemType::Sha1,
            _ => {
                tally.unsupported(signal_type);
                continue;
            }
        };
        let item = match field(value_at)
            .map_err(str::to_owned)
            .and_then(|v| hex_value(item_type, v))
        {
            Ok(item) => item,
            Err(why) => {
                tally.bad(at, Some("signal_str"), why);
                continue;
            }
        };
        let deleted = match category_at.map(field) {
            None => false,
            Some(Ok(c)) if c.trim().is_empty() => false,
            Some(Ok(c)) if c.trim().eq_ignore_ascii_case("NEGATIVE_CLASS") => true,
            Some(Ok(c)) if LISTING.iter().any(|l| l.eq_ignore_ascii_case(c.trim())) => false,
            Some(Ok(_)) => {
                tally.bad(
                    at,
                    Some("category"),
                    "unknown category (expected POSITIVE_CLASS, INVESTIGATION_SEED, DISPUTED or NEGATIVE_CLASS)",
                );
                continue;
            }
            Some(Err(why)) => {
                tally.bad(at, Some("category"), why);
                continue;
            }
        };
        tally.value(item, deleted);
    }
    tally.finish(Format::ThreatExchange)
}
