//! NCMEC's hash sharing API, version 2: the XML of `GET /v2/entries`.
//!
//! Followed from the public client python-threatexchange
//! (facebook/ThreatExchange, `threatexchange/exchanges/clients/ncmec/hash_api.py`,
//! `NCMECEntryUpdate.from_xml` and `GetEntriesResponse.from_xml`, with the
//! sample responses of its `tests/data.py`, which reproduce NCMEC's
//! documentation, report.cybertip.org/hashsharing/v2/documentation.pdf) and
//! from how its exchange merges fetches (`exchanges/impl/ncmec_api.py`):
//!
//! ```text
//! <queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
//!   <images count="2" maxTimestamp="...">
//!     <image>
//!       <member id="42">Example Member</member>
//!       <timestamp>...</timestamp>
//!       <id>image1</id>
//!       <classification>A1</classification>
//!       <fingerprints><md5>..</md5><sha1>..</sha1><pdna>..</pdna><pdq>..</pdq></fingerprints>
//!       <feedback>...</feedback>
//!     </image>
//!     <deletedImage><member id="43">..</member><id>image4</id><timestamp>..</timestamp></deletedImage>
//!   </images>
//!   <videos ...><video>...</video><deletedVideo>...</deletedVideo></videos>
//!   <paging><next>/v2/entries?...</next></paging>
//! </queryResult>
//! ```
//!
//! An entry is keyed by its member and id; a later record of it replaces an
//! earlier one and `deletedImage`/`deletedVideo` deletes it, as the
//! exchange's `fetch_value_merge` does. A file may hold several
//! `queryResult` pages one after another (the pages of one fetch, in the
//! order fetched). Fingerprints: `md5`, `sha1` (exact hashes of the image or
//! video file) and `pdq` are taken; every other (`pdna` = PhotoDNA,
//! `tmk-pdqf`, `videntifier`, `netclean`, `ssvh-*`: NCMEC's list of
//! fingerprint types, `FingerprintType` in hash_api.py) is counted as
//! unsupported. Namespaces are ignored, as the client ignores them.

use std::io::BufRead;
use std::path::Path;

use blindmatch_protocol::ItemType;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{Error, Location};
use crate::format::Format;
use crate::lines::Lines;
use crate::tally::{SourceList, Tally, hex_value, printable};

/// Where the reader is in the document.
enum Ctx {
    /// A `queryResult` page.
    Root,
    /// `images` or `videos`.
    Entries,
    /// An entry element.
    Entry,
    /// Its `id`.
    Id,
    /// Its `fingerprints`.
    Fingerprints,
    /// One fingerprint, by its element name.
    Fingerprint,
    /// Anything else: skipped, with what is inside it.
    Other,
}

/// An entry being read.
struct Draft {
    kind: &'static str,
    deleted: bool,
    number: u64,
    line: u64,
    member: String,
    id: Option<String>,
    fingerprints: Vec<(String, String, u64)>,
}

/// The entry elements: name, and whether it is a deletion.
fn entry_kind(name: &str) -> Option<(&'static str, bool)> {
    [
        ("image", false),
        ("video", false),
        ("deletedImage", true),
        ("deletedVideo", true),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// NCMEC's fingerprint names that blindmatch matches exactly.
fn fingerprint_type(name: &str) -> Option<ItemType> {
    match name.to_ascii_lowercase().as_str() {
        "md5" => Some(ItemType::Md5),
        "sha1" => Some(ItemType::Sha1),
        "sha256" => Some(ItemType::Sha256),
        "pdq" => Some(ItemType::Pdq),
        _ => None,
    }
}

/// The reader's state between events.
struct State {
    tally: Tally,
    stack: Vec<Ctx>,
    draft: Option<Draft>,
    text: String,
    entries: u64,
}

impl State {
    /// A start tag (or an empty element's) at `line`: what it opens.
    fn open(&mut self, e: &BytesStart<'_>, line: u64) -> Result<Ctx, String> {
        let local = e.local_name();
        let name = local.as_ref();
        self.text.clear();
        let ctx = match self.stack.last() {
            None if name.eq_ignore_ascii_case("queryResult") => Ctx::Root,
            None => {
                return Err(format!(
                    "the XML's root element is <{}>, not NCMEC's <queryResult> (a response of GET /v2/entries)",
                    printable(name)
                ));
            }
            Some(Ctx::Root)
                if name.eq_ignore_ascii_case("images") || name.eq_ignore_ascii_case("videos") =>
            {
                Ctx::Entries
            }
            Some(Ctx::Entries) => match entry_kind(name) {
                Some((kind, deleted)) => {
                    self.entries += 1;
                    self.draft = Some(Draft {
                        kind,
                        deleted,
                        number: self.entries,
                        line,
                        member: String::new(),
                        id: None,
                        fingerprints: Vec::new(),
                    });
                    Ctx::Entry
                }
                None => {
                    // An entry of a kind this reader does not know: counted.
                    self.tally.unsupported(&format!("<{name}> entry"));
                    Ctx::Other
                }
            },
            Some(Ctx::Entry) => {
                if name.eq_ignore_ascii_case("member") {
                    if let (Some(d), Ok(Some(id))) = (&mut self.draft, e.try_get_attribute("id")) {
                        d.member = id.value.into_owned();
                    }
                    Ctx::Other
                } else if name.eq_ignore_ascii_case("id") {
                    Ctx::Id
                } else if name.eq_ignore_ascii_case("fingerprints") {
                    Ctx::Fingerprints
                } else {
                    Ctx::Other
                }
            }
            Some(Ctx::Fingerprints) => {
                if let Some(d) = &mut self.draft {
                    d.fingerprints.push((name.to_owned(), String::new(), line));
                }
                Ctx::Fingerprint
            }
            Some(_) => Ctx::Other,
        };
        Ok(ctx)
    }

    /// The end of what `ctx` opened.
    fn close(&mut self, ctx: Ctx) {
        match ctx {
            Ctx::Id => {
                if let Some(d) = &mut self.draft {
                    d.id = Some(std::mem::take(&mut self.text));
                }
            }
            Ctx::Fingerprint => {
                if let Some((_, value, _)) =
                    self.draft.as_mut().and_then(|d| d.fingerprints.last_mut())
                {
                    *value = std::mem::take(&mut self.text);
                }
            }
            Ctx::Entry => {
                if let Some(d) = self.draft.take() {
                    self.entry(d);
                }
            }
            Ctx::Root | Ctx::Entries | Ctx::Fingerprints | Ctx::Other => {}
        }
    }

    /// A whole entry.
    fn entry(&mut self, d: Draft) {
        let at = |line| Location::Record {
            kind: d.kind,
            number: d.number,
            line,
        };
        let id = d.id.as_deref().map(str::trim).unwrap_or_default();
        if id.is_empty() {
            // The id is what a later deletion names: without it the entry
            // could never be removed.
            self.tally.bad(at(d.line), Some("id"), "missing or empty");
            return;
        }
        // A deletion's fingerprints, if any, are not read: the client does
        // not either ("we expect len(fingerprints) == 0 here").
        let record = self.tally.entry(d.member.trim(), id, d.deleted);
        if d.deleted {
            return;
        }
        for (name, value, line) in &d.fingerprints {
            match fingerprint_type(name) {
                Some(ty) => match hex_value(ty, value) {
                    Ok(item) => self.tally.entry_value(record, item),
                    Err(why) => {
                        self.tally
                            .bad(at(*line), Some(&format!("fingerprint {name}")), why)
                    }
                },
                None => self.tally.unsupported(name),
            }
        }
    }
}

/// Reads an NCMEC entries response (one or more pages).
pub(crate) fn read(path: &Path, reader: impl BufRead) -> Result<SourceList, Error> {
    let malformed = |message: String| Error::Malformed {
        path: path.display().to_string(),
        message,
    };
    let (lines, counter) = Lines::new(reader);
    let mut xml = Reader::from_reader(lines);
    xml.config_mut().trim_text(true);
    let mut st = State {
        tally: Tally::new(path.to_path_buf()),
        stack: Vec::new(),
        draft: None,
        text: String::new(),
        entries: 0,
    };
    let mut buf = Vec::new();
    loop {
        let event = xml.read_event_into(&mut buf).map_err(|e| {
            malformed(format!(
                "not well-formed XML at line {}: {e}",
                counter.line()
            ))
        })?;
        let capturing = matches!(st.stack.last(), Some(Ctx::Id | Ctx::Fingerprint));
        match event {
            Event::Eof => break,
            Event::Start(e) => {
                let ctx = st.open(&e, counter.line()).map_err(malformed)?;
                st.stack.push(ctx);
            }
            Event::Empty(e) => {
                let ctx = st.open(&e, counter.line()).map_err(malformed)?;
                st.close(ctx);
            }
            Event::End(_) => {
                if let Some(ctx) = st.stack.pop() {
                    st.close(ctx);
                }
            }
            Event::Text(t) if capturing => st.text.push_str(&t.xml10_content()),
            Event::CData(t) if capturing => st.text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if capturing => {
                // Kept as written: in a hash value it is not a hex digit,
                // and the value is refused as such.
                st.text.push('&');
                st.text.push_str(&r.into_inner());
                st.text.push(';');
            }
            _ => {}
        }
        buf.clear();
    }
    if !st.stack.is_empty() {
        return Err(malformed(format!(
            "the XML ends inside an element at line {}: a truncated file?",
            counter.line()
        )));
    }
    st.tally.finish(Format::Ncmec)
}
