//! Typed items: the hash values that lists hold and clients submit.
//!
//! An item is a hash type plus its value. The type is part of every
//! computation (hash to the group, cuckoo positions, payload), so a PDQ value
//! can never collide with a SHA-256 value of the same bytes.

use core::fmt;
use core::str::FromStr;

/// The longest value any item type carries, in bytes (the `bytes` type's
/// maximum). The voucher payload reserves this much for every item, so a
/// voucher's size does not depend on the item's type.
pub const MAX_ITEM_LEN: usize = 64;

/// The kind of hash an [`Item`] holds.
///
/// The numeric codes are part of the wire format (SPEC.md, "Items").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ItemType {
    /// MD5, 16 bytes.
    Md5,
    /// SHA-1, 20 bytes.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
    /// PDQ perceptual hash, 256 bits, matched exactly (no Hamming distance).
    Pdq,
    /// Opaque bytes, 1 to [`MAX_ITEM_LEN`] bytes: any other hash.
    Bytes,
}

impl ItemType {
    /// Every type, in code order.
    pub const ALL: [ItemType; 5] = [
        ItemType::Md5,
        ItemType::Sha1,
        ItemType::Sha256,
        ItemType::Pdq,
        ItemType::Bytes,
    ];

    /// The one-byte wire code.
    pub const fn code(self) -> u8 {
        match self {
            ItemType::Md5 => 1,
            ItemType::Sha1 => 2,
            ItemType::Sha256 => 3,
            ItemType::Pdq => 4,
            ItemType::Bytes => 5,
        }
    }

    /// The type for a wire code.
    ///
    /// # Errors
    /// [`ItemError::UnknownTypeCode`] for an unassigned code.
    pub const fn from_code(code: u8) -> Result<Self, ItemError> {
        Ok(match code {
            1 => ItemType::Md5,
            2 => ItemType::Sha1,
            3 => ItemType::Sha256,
            4 => ItemType::Pdq,
            5 => ItemType::Bytes,
            other => return Err(ItemError::UnknownTypeCode(other)),
        })
    }

    /// The lower-case name used in list files, DSTs and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            ItemType::Md5 => "md5",
            ItemType::Sha1 => "sha1",
            ItemType::Sha256 => "sha256",
            ItemType::Pdq => "pdq",
            ItemType::Bytes => "bytes",
        }
    }

    /// The exact length of a value of this type, or `None` for `bytes`.
    pub const fn fixed_len(self) -> Option<usize> {
        match self {
            ItemType::Md5 => Some(16),
            ItemType::Sha1 => Some(20),
            ItemType::Sha256 | ItemType::Pdq => Some(32),
            ItemType::Bytes => None,
        }
    }

    const fn expected_len_text(self) -> &'static str {
        match self {
            ItemType::Md5 => "16",
            ItemType::Sha1 => "20",
            ItemType::Sha256 | ItemType::Pdq => "32",
            ItemType::Bytes => "1 to 64",
        }
    }

    fn check_len(self, len: usize) -> Result<(), ItemError> {
        let ok = match self.fixed_len() {
            Some(n) => len == n,
            None => (1..=MAX_ITEM_LEN).contains(&len),
        };
        if ok {
            Ok(())
        } else {
            Err(ItemError::WrongLength {
                item_type: self,
                expected: self.expected_len_text(),
                got: len,
            })
        }
    }
}

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ItemType {
    type Err = ItemError;

    /// Case-insensitive; surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, ItemError> {
        let t = s.trim();
        ItemType::ALL
            .into_iter()
            .find(|ty| ty.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ItemError::UnknownType(t.chars().take(32).collect()))
    }
}

/// A typed hash value.
///
/// `Debug` does not show the value: items must not reach logs. Use
/// [`Item::to_hex`] where printing the value is intended (the match record).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Item {
    item_type: ItemType,
    len: u8,
    value: [u8; MAX_ITEM_LEN],
}

impl Item {
    /// An item from raw bytes.
    ///
    /// # Errors
    /// [`ItemError::WrongLength`] if the length does not fit the type.
    pub fn new(item_type: ItemType, value: &[u8]) -> Result<Self, ItemError> {
        item_type.check_len(value.len())?;
        let mut buf = [0u8; MAX_ITEM_LEN];
        buf[..value.len()].copy_from_slice(value);
        Ok(Item {
            item_type,
            // check_len bounds the length by MAX_ITEM_LEN = 64.
            len: u8::try_from(value.len()).unwrap_or(u8::MAX),
            value: buf,
        })
    }

    /// Parses hex text: case-insensitive, surrounding whitespace trimmed,
    /// length checked against the type.
    ///
    /// # Errors
    /// An [`ItemError`] naming what is wrong: empty, odd length, a non-hex
    /// character and its offset, or the wrong length for the type.
    pub fn parse(item_type: ItemType, text: &str) -> Result<Self, ItemError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ItemError::Empty(item_type));
        }
        if let Some(offset) = t.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(ItemError::InvalidHexCharacter { item_type, offset });
        }
        if !t.len().is_multiple_of(2) {
            return Err(ItemError::OddLength {
                item_type,
                digits: t.len(),
            });
        }
        let n = t.len() / 2;
        if n > MAX_ITEM_LEN {
            // Report the length before allocating anything for it.
            item_type.check_len(n)?;
        }
        let mut buf = [0u8; MAX_ITEM_LEN];
        for (i, pair) in t.as_bytes().chunks_exact(2).enumerate() {
            buf[i] = (hex_val(pair[0]) << 4) | hex_val(pair[1]);
        }
        Item::new(item_type, &buf[..n])
    }

    /// The hash type.
    pub fn item_type(&self) -> ItemType {
        self.item_type
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.value[..usize::from(self.len)]
    }

    /// The value as lower-case hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(2 * self.value().len());
        for b in self.value() {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s
    }

    /// The item encoding of SPEC.md: `type_code || len || value`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.item_type.code());
        out.push(self.len);
        out.extend_from_slice(self.value());
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("type", &self.item_type)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The value of an ASCII hex digit; the caller has checked the byte is one.
fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// A hash value could not be parsed as an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The type name is not one of `md5`, `sha1`, `sha256`, `pdq`, `bytes`.
    #[error("unknown item type {0:?} (expected md5, sha1, sha256, pdq or bytes)")]
    UnknownType(String),
    /// The numeric type code on the wire is not assigned.
    #[error("unknown item type code {0}")]
    UnknownTypeCode(u8),
    /// The value was empty after trimming whitespace.
    #[error("empty {0} value")]
    Empty(ItemType),
    /// The hex text has an odd number of digits.
    #[error("{item_type} value has an odd number of hex digits ({digits})")]
    OddLength {
        /// The type being parsed.
        item_type: ItemType,
        /// How many hex digits there were.
        digits: usize,
    },
    /// A character that is not a hex digit.
    #[error("{item_type} value has a non-hex character at offset {offset}")]
    InvalidHexCharacter {
        /// The type being parsed.
        item_type: ItemType,
        /// Byte offset of the character in the trimmed text.
        offset: usize,
    },
    /// The decoded value has the wrong length for its type.
    #[error("{item_type} value is {got} bytes, expected {expected}")]
    WrongLength {
        /// The type being parsed.
        item_type: ItemType,
        /// What the type requires (for `bytes`: the maximum).
        expected: &'static str,
        /// What was given.
        got: usize,
    },
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;

    #[test]
    fn parses_each_type_case_insensitively_and_trimmed() {
        let md5 = Item::parse(ItemType::Md5, "  D41D8CD98F00B204E9800998ECF8427E\n").unwrap();
        assert_eq!(md5.to_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5.item_type(), ItemType::Md5);
        assert_eq!(
            Item::parse(ItemType::Sha1, &"ab".repeat(20))
                .unwrap()
                .value()
                .len(),
            20
        );
        assert_eq!(
            Item::parse(ItemType::Sha256, &"0F".repeat(32))
                .unwrap()
                .value(),
            [15u8; 32]
        );
        assert_eq!(
            Item::parse(ItemType::Pdq, &"f0".repeat(32))
                .unwrap()
                .value()
                .len(),
            32
        );
        assert_eq!(Item::parse(ItemType::Bytes, "00").unwrap().value(), [0]);
        assert_eq!(
            Item::parse(ItemType::Bytes, &"11".repeat(64))
                .unwrap()
                .value()
                .len(),
            64
        );
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(
            Item::parse(ItemType::Sha256, "  "),
            Err(ItemError::Empty(ItemType::Sha256))
        );
        assert_eq!(
            Item::parse(ItemType::Md5, "abc"),
            Err(ItemError::OddLength {
                item_type: ItemType::Md5,
                digits: 3
            })
        );
        assert_eq!(
            Item::parse(ItemType::Md5, "abzz"),
            Err(ItemError::InvalidHexCharacter {
                item_type: ItemType::Md5,
                offset: 2
            })
        );
        let e = Item::parse(ItemType::Sha1, &"ab".repeat(32)).unwrap_err();
        assert_eq!(e.to_string(), "sha1 value is 32 bytes, expected 20");
        let e = Item::parse(ItemType::Bytes, &"ab".repeat(65)).unwrap_err();
        assert_eq!(e.to_string(), "bytes value is 65 bytes, expected 1 to 64");
        // A multi-byte character is reported, not sliced through.
        assert!(matches!(
            Item::parse(ItemType::Md5, "éé"),
            Err(ItemError::InvalidHexCharacter { offset: 0, .. })
        ));
    }

    #[test]
    fn type_names_and_codes_round_trip() {
        for t in ItemType::ALL {
            assert_eq!(t.name().parse::<ItemType>().unwrap(), t);
            assert_eq!(t.name().to_uppercase().parse::<ItemType>().unwrap(), t);
            assert_eq!(ItemType::from_code(t.code()).unwrap(), t);
        }
        assert!(ItemType::from_code(0).is_err());
        assert!(ItemType::from_code(6).is_err());
        assert_eq!(
            "sha512".parse::<ItemType>(),
            Err(ItemError::UnknownType("sha512".into()))
        );
    }

    #[test]
    fn debug_does_not_show_the_value() {
        let item = Item::parse(ItemType::Sha256, &"ab".repeat(32)).unwrap();
        let shown = format!("{item:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(shown.contains("Sha256"));
    }
}
