//! blindmatch's own list format, read by the protocol's parser
//! ([`blindmatch_protocol::list`]), which the audit's list numbering is
//! specified against (SPEC 15.1): it is wrapped here, not copied.

use std::io::BufRead;
use std::path::Path;

use blindmatch_protocol::ItemType;
use blindmatch_protocol::list;

use crate::error::Error;
use crate::format::Format;
use crate::tally::{SourceList, Tally};

/// Reads a text list: every value listed, none tombstoned.
pub(crate) fn read(
    path: &Path,
    reader: impl BufRead,
    default_type: Option<ItemType>,
) -> Result<SourceList, Error> {
    let name = || path.display().to_string();
    let parsed = list::parse(reader, default_type).map_err(|source| Error::Io {
        path: name(),
        source,
        hint: "",
    })?;
    let items = parsed.into_items().map_err(|source| Error::Text {
        path: name(),
        source,
    })?;
    let mut tally = Tally::new(path.to_path_buf());
    for item in items {
        tally.value(item, false);
    }
    tally.finish(Format::Text)
}
