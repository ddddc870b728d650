//! One entry of a blindmatch log (SPEC 16.2): a published table version's
//! signed statement and the organisations' co-signatures of it.
//!
//! ```text
//! entry = "BMLE" || 0x01
//!      || I2OSP(len(signed), 2) || signed        (statement || signature, 13.3)
//!      || I2OSP(m, 1)
//!      || m × (I2OSP(len(c_i), 2) || c_i)        (co-signatures, 15.5)
//! ```
//!
//! The co-signatures are ordered by their organisation's key, each key at
//! most once, so that one statement with one set of co-signatures has one
//! entry, which a client rebuilds from the manifest it was served.

use super::{Hash, LogError, malformed};
use crate::audit::CoSignature;
use crate::audit::cosign::MAX_COSIGNATURES;
use crate::manifest::SignedManifest;
use crate::merkle;

/// Magic bytes of an encoded [`LogEntry`].
pub const ENTRY_MAGIC: [u8; 4] = *b"BMLE";
const FORMAT_VERSION: u8 = 1;

/// One logged table version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The operator's statement and signature.
    pub manifest: SignedManifest,
    /// The co-signatures, ordered by organisation key.
    cosignatures: Vec<CoSignature>,
}

impl LogEntry {
    /// The entry of `manifest` with `cosignatures` (put in order).
    ///
    /// # Errors
    /// [`LogError::Malformed`] for more than 32 co-signatures or two from
    /// one organisation.
    pub fn new(
        manifest: SignedManifest,
        mut cosignatures: Vec<CoSignature>,
    ) -> Result<Self, LogError> {
        cosignatures.sort_by_key(|c| c.org_key.to_bytes());
        if cosignatures.len() > MAX_COSIGNATURES {
            return Err(malformed(
                "log entry",
                format!("more than {MAX_COSIGNATURES} co-signatures"),
            ));
        }
        if cosignatures
            .windows(2)
            .any(|w| w[0].org_key == w[1].org_key)
        {
            return Err(malformed(
                "log entry",
                "two co-signatures by one organisation",
            ));
        }
        Ok(LogEntry {
            manifest,
            cosignatures,
        })
    }

    /// The co-signatures, ordered by organisation key.
    pub fn cosignatures(&self) -> &[CoSignature] {
        &self.cosignatures
    }

    /// The table version the entry logs.
    pub fn version(&self) -> u64 {
        self.manifest.manifest.version
    }

    /// The entry's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let signed = self.manifest.encode();
        let mut out = Vec::with_capacity(8 + signed.len() + self.cosignatures.len() * 160);
        out.extend_from_slice(&ENTRY_MAGIC);
        out.push(FORMAT_VERSION);
        push_u16_prefixed(&mut out, &signed);
        // At most 32, checked by `new` and `decode`.
        out.push(u8::try_from(self.cosignatures.len()).unwrap_or(u8::MAX));
        for c in &self.cosignatures {
            push_u16_prefixed(&mut out, &c.encode());
        }
        out
    }

    /// The RFC 9162 leaf hash of the entry: what the log's tree holds.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }

    /// Decodes an entry (signatures are not checked here), refusing any
    /// encoding but the canonical one.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        const WHAT: &str = "log entry";
        let rest = bytes
            .strip_prefix(&ENTRY_MAGIC)
            .ok_or_else(|| malformed(WHAT, "not a blindmatch log entry (magic BMLE)"))?;
        let (&version, rest) = rest
            .split_first()
            .ok_or_else(|| malformed(WHAT, "cut short"))?;
        if version != FORMAT_VERSION {
            return Err(malformed(
                WHAT,
                format!("format {version}, this build reads {FORMAT_VERSION}"),
            ));
        }
        let (signed, rest) = take_u16_prefixed(rest)?;
        let manifest = SignedManifest::decode_unverified(signed)
            .map_err(|e| malformed(WHAT, format!("its signed manifest: {e}")))?;
        let (&m, mut rest) = rest
            .split_first()
            .ok_or_else(|| malformed(WHAT, "cut short"))?;
        let mut cosignatures = Vec::with_capacity(usize::from(m));
        for _ in 0..m {
            let (c, r) = take_u16_prefixed(rest)?;
            cosignatures.push(
                CoSignature::decode(c)
                    .map_err(|e| malformed(WHAT, format!("a co-signature: {e}")))?,
            );
            rest = r;
        }
        if !rest.is_empty() {
            return Err(malformed(WHAT, "bytes after the last co-signature"));
        }
        let entry = LogEntry::new(manifest, cosignatures.clone())?;
        if entry.cosignatures != cosignatures {
            return Err(malformed(WHAT, "co-signatures out of order"));
        }
        Ok(entry)
    }
}

fn push_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Statements and co-signatures are a few hundred bytes.
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn take_u16_prefixed(bytes: &[u8]) -> Result<(&[u8], &[u8]), LogError> {
    let (len, rest) = bytes
        .split_first_chunk::<2>()
        .ok_or_else(|| malformed("log entry", "cut short"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(malformed("log entry", "cut short"));
    }
    Ok(rest.split_at(len))
}
