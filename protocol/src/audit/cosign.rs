//! Co-signatures (SPEC Section 15.5): an organisation that audited a table
//! signs the operator's statement of it, and a client requires a quorum of
//! the organisations it pins.
//!
//! An organisation's key is an Ed25519 key like the operator's (the same
//! file, from `blindmatch-server keygen --signing`); its signature is over
//! `"blindmatch-v1/cosign" || I2OSP(len(name), 1) || name || statement`,
//! so it names one exact statement (one table id, one version, one set of
//! terms) and the name the organisation gave, and can never be read as the
//! operator's signature on a manifest, whose label differs.

use crate::encoding::{array, check_magic_version};
use crate::error::Error;
use crate::manifest::{OperatorSigningKey, OperatorVerifyingKey, SIGNATURE_LEN};

/// Magic bytes of an encoded [`CoSignature`].
pub const COSIGNATURE_MAGIC: [u8; 4] = *b"BMCS";
const FORMAT_VERSION: u8 = 1;
/// The signed message's label.
const COSIGN_LABEL: &[u8] = b"blindmatch-v1/cosign";
/// The longest organisation name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// The most co-signatures one manifest carries: a client reads no more.
pub const MAX_COSIGNATURES: usize = 32;

/// An organisation's name as it signs it: 1 to 64 bytes of UTF-8 without
/// control characters (it is shown to people and written in logs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrgName(String);

impl OrgName {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty name, one over 64 bytes, or
    /// one holding a control character.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(Error::InvalidParameter {
                name: "organisation name",
                value: name.len() as u64,
                allowed: "1 to 64 bytes of UTF-8 without control characters",
            });
        }
        Ok(OrgName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Display for OrgName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One organisation's co-signature of one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoSignature {
    /// The organisation's verifying key.
    pub org_key: OperatorVerifyingKey,
    /// The name it signed under.
    pub name: OrgName,
    /// Ed25519 over the co-signing message.
    pub signature: [u8; SIGNATURE_LEN],
}

fn message(name: &OrgName, statement: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(COSIGN_LABEL.len() + 1 + name.0.len() + statement.len());
    m.extend_from_slice(COSIGN_LABEL);
    m.push(u8::try_from(name.0.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(name.0.as_bytes());
    m.extend_from_slice(statement);
    m
}

impl CoSignature {
    /// The organisation `key`, named `name`, co-signs `statement` (the
    /// operator's statement bytes, SPEC 13.3). Sign only a statement whose
    /// table passed the audit.
    pub fn sign(key: &OperatorSigningKey, name: OrgName, statement: &[u8]) -> Self {
        let signature = key.sign_message(&message(&name, statement));
        CoSignature {
            org_key: key.verifying_key(),
            name,
            signature,
        }
    }

    /// Whether this is a valid co-signature of `statement` (strict Ed25519,
    /// SPEC 13.3 rule 1).
    pub fn verifies(&self, statement: &[u8]) -> bool {
        self.org_key
            .verify_message(&message(&self.name, statement), &self.signature)
    }

    /// `"BMCS" || 0x01 || org_key || I2OSP(len(name), 1) || name ||
    /// signature`: the file an organisation hands the operator.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 32 + 1 + self.name.0.len() + SIGNATURE_LEN);
        out.extend_from_slice(&COSIGNATURE_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.org_key.to_bytes());
        out.push(u8::try_from(self.name.0.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.name.0.as_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes [`CoSignature::encode`] (the signature is not checked here).
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidOperatorKey`], or [`Error::InvalidParameter`] for
    /// the name.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        const FIXED: usize = 5 + 32 + 1;
        let too_short = Error::Length {
            what: "co-signature",
            expected: FIXED + 1 + SIGNATURE_LEN,
            got: bytes.len(),
        };
        if bytes.len() < FIXED {
            return Err(too_short);
        }
        check_magic_version(bytes, &COSIGNATURE_MAGIC, FORMAT_VERSION, "co-signature")?;
        let org_key = OperatorVerifyingKey::from_bytes(&bytes[5..37])?;
        let len = usize::from(bytes[37]);
        if bytes.len() != FIXED + len + SIGNATURE_LEN {
            return Err(Error::Length {
                what: "co-signature",
                expected: FIXED + len + SIGNATURE_LEN,
                got: bytes.len(),
            });
        }
        let name = core::str::from_utf8(&bytes[FIXED..FIXED + len]).map_err(|_| {
            Error::InvalidParameter {
                name: "organisation name",
                value: len as u64,
                allowed: "UTF-8",
            }
        })?;
        Ok(CoSignature {
            org_key,
            name: OrgName::new(name)?,
            signature: array(&bytes[FIXED + len..], "co-signature")?,
        })
    }
}

/// The organisations a client pins and how many of them must have
/// co-signed a statement (SPEC 15.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    orgs: Vec<OperatorVerifyingKey>,
    required: usize,
}

/// The co-signers a quorum counted, and what it did not count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumCount {
    /// Valid co-signatures from pinned organisations, one per organisation
    /// (by key), with the names they signed under, ordered by name.
    pub counted: Vec<(OperatorVerifyingKey, OrgName)>,
    /// Co-signatures from keys not pinned (counted for nothing).
    pub unpinned: usize,
    /// Co-signatures from pinned keys that do not verify over this
    /// statement (another statement's, or altered), by name.
    pub invalid: Vec<OrgName>,
}

impl QuorumCount {
    /// The names counted, comma-separated (for messages).
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.counted.iter().map(|(_, n)| n.as_str()).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }
}

impl Quorum {
    /// At least `required` of the organisations `orgs` (a key pinned twice
    /// counts once).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless 1 ≤ `required` ≤ the number of
    /// distinct keys.
    pub fn new(orgs: &[OperatorVerifyingKey], required: usize) -> Result<Self, Error> {
        let mut distinct: Vec<OperatorVerifyingKey> = Vec::with_capacity(orgs.len());
        for k in orgs {
            if !distinct.contains(k) {
                distinct.push(*k);
            }
        }
        if required == 0 || required > distinct.len() {
            return Err(Error::InvalidParameter {
                name: "organisation quorum",
                value: required as u64,
                allowed: "1 to the number of distinct organisation keys pinned",
            });
        }
        Ok(Quorum {
            orgs: distinct,
            required,
        })
    }

    /// How many co-signatures are required.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The distinct organisation keys pinned.
    pub fn orgs(&self) -> &[OperatorVerifyingKey] {
        &self.orgs
    }

    /// Counts the valid co-signatures of `statement` by pinned
    /// organisations, each organisation once (at most
    /// [`MAX_COSIGNATURES`] are read).
    pub fn count(&self, statement: &[u8], cosignatures: &[CoSignature]) -> QuorumCount {
        let mut out = QuorumCount::default();
        for c in cosignatures.iter().take(MAX_COSIGNATURES) {
            if !self.orgs.contains(&c.org_key) {
                out.unpinned += 1;
            } else if out.counted.iter().any(|(k, _)| *k == c.org_key) {
                // Counted once, whatever else it signed.
            } else if c.verifies(statement) {
                out.counted.push((c.org_key, c.name.clone()));
            } else {
                out.invalid.push(c.name.clone());
            }
        }
        // By name, so that messages and lists of co-signers read the same
        // whatever order the manifest carries them in (a logged manifest
        // carries them by key, SPEC 16.2).
        out.counted.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
        out.invalid.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out
    }

    /// Whether `count` reaches the quorum.
    pub fn reached(&self, count: &QuorumCount) -> bool {
        count.counted.len() >= self.required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(seed: u8) -> OperatorSigningKey {
        OperatorSigningKey::from_seed([seed; 32])
    }

    #[test]
    fn a_quorum_counts_distinct_pinned_organisations_that_signed_this_statement() {
        let (a, b, c, stranger) = (org(1), org(2), org(3), org(4));
        let statement = b"a statement".as_slice();
        let sign = |k: &OperatorSigningKey, n: &str, s: &[u8]| {
            CoSignature::sign(k, OrgName::new(n).unwrap(), s)
        };
        let q = Quorum::new(
            &[
                a.verifying_key(),
                b.verifying_key(),
                a.verifying_key(),
                c.verifying_key(),
            ],
            2,
        )
        .unwrap();
        assert_eq!(q.orgs().len(), 3);
        // A twice, a stranger, and C over another statement: one counted.
        let sigs = [
            sign(&a, "A", statement),
            sign(&a, "A again", statement),
            sign(&stranger, "S", statement),
            sign(&c, "C", b"another statement"),
        ];
        let n = q.count(statement, &sigs);
        assert_eq!(n.counted.len(), 1);
        assert_eq!((n.unpinned, n.invalid.len()), (1, 1));
        assert!(!q.reached(&n));
        assert_eq!(n.names(), "A");
        let n = q.count(statement, &[sigs[0].clone(), sign(&b, "B", statement)]);
        assert!(q.reached(&n));
        assert_eq!(n.names(), "A, B");
        // A name changed after signing does not verify.
        let mut renamed = sign(&b, "B", statement);
        renamed.name = OrgName::new("C").unwrap();
        assert!(!renamed.verifies(statement));
        assert!(Quorum::new(&[a.verifying_key(), a.verifying_key()], 2).is_err());
        assert!(Quorum::new(&[a.verifying_key()], 0).is_err());
    }

    #[test]
    fn co_signatures_round_trip_and_refuse_damage() {
        let c = CoSignature::sign(&org(9), OrgName::new("Hotline Ä").unwrap(), b"s");
        let bytes = c.encode();
        assert_eq!(CoSignature::decode(&bytes).unwrap(), c);
        for cut in [0, 4, 37, 38, bytes.len() - 1] {
            assert!(CoSignature::decode(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(CoSignature::decode(&long).is_err());
        assert!(OrgName::new("").is_err());
        assert!(OrgName::new("a\nb").is_err());
        assert!(OrgName::new(&"x".repeat(65)).is_err());
    }
}
