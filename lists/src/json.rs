//! The JSON lists (StopNCII, TCAP), streamed: pages of records, each record
//! handed to its format as it is read, so that a list of millions is never
//! held as JSON. A file holds one page object, several written one after
//! another (the pages of one fetch, in order), or an array of pages.

use std::io::BufRead;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Location};
use crate::format::Format;
use crate::lines::{LineCounter, Lines};
use crate::tally::{SourceList, Tally};
use crate::{stopncii, tcap};

/// The JSON formats, told apart by the key that holds a page's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonFormat {
    StopNcii,
    Tcap,
}

impl JsonFormat {
    fn records_key(self) -> &'static str {
        match self {
            JsonFormat::StopNcii => "hashRecords",
            JsonFormat::Tcap => "results",
        }
    }

    fn of_key(key: &str) -> Option<Self> {
        [JsonFormat::StopNcii, JsonFormat::Tcap]
            .into_iter()
            .find(|f| f.records_key() == key)
    }

    fn format(self) -> Format {
        match self {
            JsonFormat::StopNcii => Format::StopNcii,
            JsonFormat::Tcap => Format::Tcap,
        }
    }

    /// The fields of a record this format reads; any other is skipped.
    fn fields(self) -> &'static [&'static str] {
        match self {
            JsonFormat::StopNcii => stopncii::FIELDS,
            JsonFormat::Tcap => tcap::FIELDS,
        }
    }
}

/// One record's fields, as [`JsonFormat::fields`] names them, with the line
/// each was on.
pub(crate) struct Fields {
    values: Vec<Option<(Value, u64)>>,
    names: &'static [&'static str],
    /// Where the record is, for a fault not of one field.
    pub(crate) at: Location,
    number: u64,
}

impl Fields {
    /// Where field `name` is (or the record, if it is absent).
    pub(crate) fn at(&self, name: &str) -> Location {
        let line = self
            .names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.values[i].as_ref())
            .map(|(_, line)| *line);
        match (self.at, line) {
            (Location::Record { kind, .. }, Some(line)) => Location::Record {
                kind,
                number: self.number,
                line,
            },
            (at, _) => at,
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        let i = self.names.iter().position(|n| *n == name)?;
        self.values[i].as_ref().map(|(v, _)| v)
    }

    /// A string field.
    ///
    /// # Errors
    /// Absent, or not a string: what to report.
    pub(crate) fn str(&self, name: &str) -> Result<&str, &'static str> {
        match self.get(name) {
            None | Some(Value::Null) => Err("missing"),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err("not a string"),
        }
    }

    /// A boolean field.
    ///
    /// # Errors
    /// Absent, or not `true` or `false`.
    pub(crate) fn bool(&self, name: &str) -> Result<bool, &'static str> {
        match self.get(name) {
            None | Some(Value::Null) => Err("missing"),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err("not true or false"),
        }
    }
}

/// The reader's state across pages.
struct State {
    tally: Tally,
    lines: LineCounter,
    /// Named by the operator, or by the first page's records key.
    format: Option<JsonFormat>,
    records: u64,
}

/// Reads a StopNCII or TCAP list; `expect` is the format the operator
/// named (`None`: whichever the first page is).
pub(crate) fn read(
    path: &Path,
    reader: impl BufRead,
    expect: Option<JsonFormat>,
) -> Result<SourceList, Error> {
    let (lines, counter) = Lines::new(reader);
    let mut st = State {
        tally: Tally::new(path.to_path_buf()),
        lines: counter,
        format: expect,
        records: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(lines);
    let malformed = |e: serde_json::Error| Error::Malformed {
        path: path.display().to_string(),
        message: if e.is_syntax() || e.is_eof() {
            format!("not valid JSON: {e}")
        } else {
            e.to_string()
        },
    };
    loop {
        Page { st: &mut st }
            .deserialize(&mut de)
            .map_err(malformed)?;
        // Another page may follow: end() fails on anything but white space,
        // and leaves it to be read as the next page.
        if de.end().is_ok() {
            break;
        }
    }
    let format = st.format.map_or(Format::StopNcii, JsonFormat::format);
    st.tally.finish(format)
}

/// One page object (or an array of them).
struct Page<'a> {
    st: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a page object of StopNCII's FetchHashes (`hashRecords`) or TCAP's hash list (`results`)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Page { st: &mut *self.st })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            let Some(this) = JsonFormat::of_key(&key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match self.st.format {
                Some(f) if f != this => {
                    return Err(de::Error::custom(format!(
                        "a page with `{}` ({}), in a {} list (`{}`)",
                        this.records_key(),
                        this.format(),
                        f.format(),
                        f.records_key()
                    )));
                }
                _ => self.st.format = Some(this),
            }
            found = true;
            map.next_value_seed(Records {
                st: &mut *self.st,
                format: this,
            })?;
        }
        if !found {
            let want = match self.st.format {
                Some(f) => format!("`{}` ({})", f.records_key(), f.format()),
                None => "`hashRecords` (StopNCII's FetchHashes) or `results` (TCAP's hash list)"
                    .to_owned(),
            };
            return Err(de::Error::custom(format!(
                "a JSON object without {want}: not a page of a list"
            )));
        }
        Ok(())
    }
}

/// A page's array of records.
struct Records<'a> {
    st: &'a mut State,
    format: JsonFormat,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Record {
                st: &mut *self.st,
                format: self.format,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// One record.
struct Record<'a> {
    st: &'a mut State,
    format: JsonFormat,
}

impl<'de> DeserializeSeed<'de> for Record<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Record<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.st.records += 1;
        let number = self.st.records;
        let names = self.format.fields();
        let mut fields = Fields {
            values: vec![None; names.len()],
            names,
            at: Location::Record {
                kind: "record",
                number,
                line: self.st.lines.line(),
            },
            number,
        };
        while let Some(key) = map.next_key::<String>()? {
            match names.iter().position(|n| *n == key) {
                Some(i) => {
                    let line = self.st.lines.line();
                    fields.values[i] = Some((map.next_value::<Value>()?, line));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match self.format {
            JsonFormat::StopNcii => stopncii::record(&mut self.st.tally, &fields),
            JsonFormat::Tcap => tcap::record(&mut self.st.tally, &fields),
        }
        Ok(())
    }

    /// Anything but an object is a bad record, not a broken file.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object()
    }
}

impl Record<'_> {
    fn not_an_object<E>(self) -> Result<(), E> {
        self.st.records += 1;
        let at = Location::Record {
            kind: "record",
            number: self.st.records,
            line: self.st.lines.line(),
        };
        self.st.tally.bad(at, None, "not a JSON object");
        Ok(())
    }
}
