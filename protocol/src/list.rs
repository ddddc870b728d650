//! Reading hash lists.
//!
//! One entry per line, either `TYPE VALUE` or a bare hex `VALUE` when a
//! default type is given; or CSV whose first line is the header `type,value`.
//! `#` starts a comment; blank lines are ignored. Every bad line is reported
//! with its number, and nothing is built (or audited) from a list that has
//! one. The operator's `build` and an organisation's audit (SPEC Section
//! 15.1) read lists with this one parser, so both number a list alike.

use std::io::BufRead;

use crate::{Item, ItemType};

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed list.
#[derive(Debug, Default)]
pub struct ParsedList {
    /// Entries in file order (duplicates included).
    pub items: Vec<Item>,
    /// Lines that could not be parsed.
    pub bad: Vec<BadLine>,
}

/// Why a list is refused whole: its bad lines, or no entries at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Lines that could not be parsed (the message shows the first 20).
    #[error("{}", bad_lines(.0))]
    BadLines(Vec<BadLine>),
    /// Only blank lines and comments: almost surely the wrong file.
    #[error("no entries (only blank lines and comments)")]
    Empty,
}

fn bad_lines(bad: &[BadLine]) -> String {
    const SHOWN: usize = 20;
    let mut msg = format!("{} bad line(s)", bad.len());
    for b in bad.iter().take(SHOWN) {
        msg.push_str(&format!("\n  line {}: {}", b.line, b.message));
    }
    if bad.len() > SHOWN {
        msg.push_str(&format!("\n  ... and {} more", bad.len() - SHOWN));
    }
    msg
}

impl ParsedList {
    /// The entries, or the reason the list is refused whole.
    ///
    /// # Errors
    /// [`ListError`].
    pub fn into_items(self) -> Result<Vec<Item>, ListError> {
        if !self.bad.is_empty() {
            return Err(ListError::BadLines(self.bad));
        }
        if self.items.is_empty() {
            return Err(ListError::Empty);
        }
        Ok(self.items)
    }
}

/// Parses a list.
///
/// # Errors
/// Only I/O errors; bad lines are collected in [`ParsedList::bad`].
pub fn parse(reader: impl BufRead, default_type: Option<ItemType>) -> std::io::Result<ParsedList> {
    let mut out = ParsedList::default();
    let mut csv = false;
    let mut seen_content = false;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let raw = line?;
        let Ok(text) = std::str::from_utf8(&raw) else {
            out.bad.push(BadLine {
                line: line_no,
                message: "not valid UTF-8".into(),
            });
            continue;
        };
        let text = text.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if !seen_content {
            seen_content = true;
            if text.replace(' ', "").eq_ignore_ascii_case("type,value") {
                csv = true;
                continue;
            }
        }
        match parse_line(text, csv, default_type) {
            Ok(item) => out.items.push(item),
            Err(message) => out.bad.push(BadLine {
                line: line_no,
                message,
            }),
        }
    }
    Ok(out)
}

fn parse_line(text: &str, csv: bool, default_type: Option<ItemType>) -> Result<Item, String> {
    let fields: Vec<&str> = if csv {
        text.split(',').map(str::trim).collect()
    } else {
        text.split_whitespace().collect()
    };
    let (ty, value) = match fields.as_slice() {
        [t, v] => (t.parse::<ItemType>().map_err(|e| e.to_string())?, *v),
        [v] if !csv => match default_type {
            Some(t) => (t, *v),
            None => {
                return Err("bare value without a type: write `TYPE VALUE` or pass --type".into());
            }
        },
        _ if csv => {
            return Err(format!(
                "expected 2 CSV fields (type,value), found {}",
                fields.len()
            ));
        }
        _ => {
            return Err(format!(
                "expected `TYPE VALUE` or a bare value, found {} fields",
                fields.len()
            ));
        }
    };
    Item::parse(ty, value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn typed_and_bare_lines_comments_and_blanks() {
        let text = format!(
            "# a list\n\nsha256 {SHA}\n{}  # trailing comment\nMD5 900150983CD24FB0D6963F7D28E17F72\n",
            SHA.to_uppercase()
        );
        let p = parse(text.as_bytes(), Some(ItemType::Sha256)).unwrap();
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.items[0], p.items[1]);
        assert_eq!(p.items[2].item_type(), ItemType::Md5);
    }

    #[test]
    fn csv_with_header() {
        let text = format!("type,value\nsha256,{SHA}\n pdq , {SHA}\n");
        let p = parse(text.as_bytes(), None).unwrap();
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        assert_eq!(p.items[1].item_type(), ItemType::Pdq);
    }

    #[test]
    fn bad_lines_are_reported_with_numbers() {
        let text = format!("sha256 {SHA}\n{SHA}\nsha256 abc\nsha512 {SHA}\nsha256 {SHA} extra\n");
        let p = parse(text.as_bytes(), None).unwrap();
        let lines: Vec<usize> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(p.bad[0].message.contains("--type"));
        assert!(
            p.bad[1].message.contains("odd number"),
            "{}",
            p.bad[1].message
        );
        assert!(p.bad[2].message.contains("unknown item type"));
        assert_eq!(p.items.len(), 1);
    }
}
