//! The log's signed tree head (c2sp.org/tlog-checkpoint): origin, tree
//! size and root hash, one per line, as the text of a signed note.

use super::{Hash, LogError, b64, malformed, parse_decimal};

/// A checkpoint's text. Extension lines are kept (they are signed) but
/// carry nothing a blindmatch log uses; a blindmatch log writes none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The RFC 9162 root hash of the tree of `size` entries.
    pub root: Hash,
    /// Extension lines, in order.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Parses a note's text.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, LogError> {
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("checkpoint", "the text must end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("checkpoint", "empty origin line"));
        }
        let size = lines.next().and_then(parse_decimal).ok_or_else(|| {
            malformed(
                "checkpoint",
                "the second line must be the tree size in decimal",
            )
        })?;
        let root = lines.next().and_then(b64::decode_hash).ok_or_else(|| {
            malformed(
                "checkpoint",
                "the third line must be a base64 SHA-256 root hash",
            )
        })?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("checkpoint", "an empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The note text.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64::encode(&self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_round_trips_and_malformed_texts_do_not_parse() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse(text).unwrap();
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("example.com/behind-the-sofa", 20_852_163)
        );
        assert_eq!(c.text(), text);
        for bad in [
            "",
            "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
