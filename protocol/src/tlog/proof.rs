//! The two texts that carry proofs: the offline proof of an entry a client
//! checks (c2sp.org/tlog-proof), and the body of a witness's
//! `add-checkpoint` request (c2sp.org/tlog-witness).

use super::note::{MAX_NOTE_LEN, Note, NoteSignature};
use super::{Hash, LogError, b64, malformed, parse_decimal};

/// The most hashes in a proof: a tree of 2^63 entries needs 63.
pub const MAX_PROOF_HASHES: usize = 63;
const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// An entry's inclusion proof under a (cosigned) checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data (a blindmatch proof has none).
    pub extra: Option<Vec<u8>>,
    /// The entry's index in the log.
    pub index: u64,
    /// The audit path, from the leaf's sibling up (RFC 9162 2.1.3.1).
    pub path: Vec<Hash>,
    /// The checkpoint, with its signatures.
    pub checkpoint: Note,
}

impl TlogProof {
    /// The text (a `.tlog-proof` file).
    pub fn encode(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", b64::encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        push_hashes(&mut out, &self.path);
        out.push('\n');
        out.push_str(&self.checkpoint.encode());
        out
    }

    /// Parses the text.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming the line that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, LogError> {
        const WHAT: &str = "tlog proof";
        if bytes.len() > MAX_NOTE_LEN + 8 * 1024 {
            return Err(malformed(WHAT, "too long"));
        }
        let text = core::str::from_utf8(bytes).map_err(|_| malformed(WHAT, "not UTF-8"))?;
        let mut rest = text
            .strip_prefix(TLOG_PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| malformed(WHAT, "the first line must be c2sp.org/tlog-proof@v1"))?;
        let mut extra = None;
        if let Some(r) = rest.strip_prefix("extra ") {
            let (line, r) = r
                .split_once('\n')
                .ok_or_else(|| malformed(WHAT, "the extra line is cut short"))?;
            extra = Some(
                b64::decode(line).ok_or_else(|| malformed(WHAT, "the extra line is not base64"))?,
            );
            rest = r;
        }
        let (line, r) = rest
            .strip_prefix("index ")
            .and_then(|r| r.split_once('\n'))
            .ok_or_else(|| malformed(WHAT, "expected the line index <n>"))?;
        let index =
            parse_decimal(line).ok_or_else(|| malformed(WHAT, "the index is not a decimal"))?;
        let (path, note) = read_hashes(r, WHAT)?;
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: Note::parse(note.as_bytes())?,
        })
    }
}

/// The body of `POST <prefix>/add-checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned (0 if none).
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The log-signed checkpoint.
    pub checkpoint: Note,
}

impl AddCheckpoint {
    /// The request body.
    pub fn encode(&self) -> String {
        let mut out = format!("old {}\n", self.old_size);
        push_hashes(&mut out, &self.proof);
        out.push('\n');
        out.push_str(&self.checkpoint.encode());
        out
    }

    /// Parses a request body (as a witness would).
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Self, LogError> {
        const WHAT: &str = "add-checkpoint request";
        let text = core::str::from_utf8(bytes).map_err(|_| malformed(WHAT, "not UTF-8"))?;
        let (line, r) = text
            .strip_prefix("old ")
            .and_then(|r| r.split_once('\n'))
            .ok_or_else(|| malformed(WHAT, "expected the line old <size>"))?;
        let old_size =
            parse_decimal(line).ok_or_else(|| malformed(WHAT, "the old size is not a decimal"))?;
        let (proof, note) = read_hashes(r, WHAT)?;
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: Note::parse(note.as_bytes())?,
        })
    }
}

/// A witness's `200` answer: one or more signature lines.
///
/// # Errors
/// [`LogError::Malformed`] for anything else.
pub fn parse_signature_lines(bytes: &[u8]) -> Result<Vec<NoteSignature>, LogError> {
    // A note of one dummy line carrying them parses them by the note's rules.
    let mut text = b"x\n\n".to_vec();
    text.extend_from_slice(bytes);
    Ok(Note::parse(&text)?.signatures().to_vec())
}

fn push_hashes(out: &mut String, hashes: &[Hash]) {
    for h in hashes {
        out.push_str(&b64::encode(h));
        out.push('\n');
    }
}

/// Reads hash lines up to an empty line; returns them and what follows.
fn read_hashes<'a>(
    mut rest: &'a str,
    what: &'static str,
) -> Result<(Vec<Hash>, &'a str), LogError> {
    let mut hashes = Vec::new();
    loop {
        let (line, r) = rest
            .split_once('\n')
            .ok_or_else(|| malformed(what, "no empty line before the checkpoint"))?;
        rest = r;
        if line.is_empty() {
            return Ok((hashes, rest));
        }
        if hashes.len() == MAX_PROOF_HASHES {
            return Err(malformed(
                what,
                format!("more than {MAX_PROOF_HASHES} proof hashes"),
            ));
        }
        hashes.push(
            b64::decode_hash(line)
                .ok_or_else(|| malformed(what, "a proof line is not a base64 SHA-256 hash"))?,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    /// The example request of c2sp.org/tlog-witness parses and re-encodes
    /// byte for byte.
    #[test]
    fn the_witness_specifications_example_request() {
        let body = format!(
            "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\n{CHECKPOINT}"
        );
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!((req.old_size, req.proof.len()), (20_852_014, 4));
        assert_eq!(req.encode(), body);
    }

    #[test]
    fn a_proof_round_trips_and_malformed_ones_are_refused() {
        let p = TlogProof {
            extra: Some(b"x".to_vec()),
            index: 73_894,
            path: vec![[1; 32], [2; 32]],
            checkpoint: Note::parse(CHECKPOINT.as_bytes()).unwrap(),
        };
        let text = p.encode();
        assert_eq!(TlogProof::parse(text.as_bytes()).unwrap(), p);
        for bad in [
            text.replace("tlog-proof@v1", "tlog-proof@v2"),
            text.replace("index 73894", "index 073894"),
            text.replace("index 73894\n", ""),
            text.replacen("AQEB", "AQE", 1),
            text.replace("\n\nexample", "\nexample"),
        ] {
            assert!(TlogProof::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let long = TlogProof {
            path: vec![[0; 32]; 64],
            extra: None,
            ..p
        };
        assert!(TlogProof::parse(long.encode().as_bytes()).is_err());
    }
}
