//! Signed notes (c2sp.org/signed-note) and the two kinds of signature a
//! blindmatch log's checkpoint carries: the log's own Ed25519 signature
//! (type `0x01`) and the witnesses' timestamped cosignatures (type `0x04`,
//! c2sp.org/tlog-cosignature).

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{LogError, b64, malformed};

/// The most bytes a note may have (a checkpoint with its signatures is a
/// few hundred).
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// The most signature lines a note may have (the specification requires
/// accepting at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// Signature type of a note's Ed25519 signature (the log's).
const TYPE_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 checkpoint cosignature (a witness's).
const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// One signature line: `— <name> base64(key ID || signature)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID (big-endian in the line).
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its final newline.
    pub fn line(&self) -> String {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, b64::encode(&bytes))
    }

    /// Parses one line (without its newline).
    fn parse(line: &str) -> Result<Self, LogError> {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| {
            malformed(
                "signed note",
                "a signature line must start with an em dash and a space",
            )
        })?;
        let (name, sig) = rest.split_once(' ').ok_or_else(|| {
            malformed(
                "signed note",
                "a signature line has a key name, a space and a signature",
            )
        })?;
        check_key_name(name)?;
        let bytes = b64::decode(sig).ok_or_else(|| {
            malformed(
                "signed note",
                format!("the signature of {name} is not base64"),
            )
        })?;
        if bytes.len() < 5 {
            return Err(malformed(
                "signed note",
                format!("the signature of {name} is too short"),
            ));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            signature: bytes[4..].to_vec(),
        })
    }
}

/// A note: its text (ending in a newline) and its signature lines, parsed
/// but not verified. Only the keys a reader pins give the text any meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note of `text` (which must end in a newline) with no signatures
    /// yet.
    ///
    /// # Errors
    /// [`LogError::Malformed`] for text that breaks the format.
    pub fn new(text: &str) -> Result<Self, LogError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note: the text, the blank line that ends it (the
    /// last in the note), and one or more signature lines.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming what breaks the format.
    pub fn parse(bytes: &[u8]) -> Result<Self, LogError> {
        if bytes.len() > MAX_NOTE_LEN {
            return Err(malformed(
                "signed note",
                format!("{} bytes, more than {MAX_NOTE_LEN}", bytes.len()),
            ));
        }
        let all = core::str::from_utf8(bytes).map_err(|_| malformed("signed note", "not UTF-8"))?;
        if all.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed(
                "signed note",
                "an ASCII control character (below U+0020) other than newline",
            ));
        }
        let split = all
            .rfind("\n\n")
            .ok_or_else(|| malformed("signed note", "no blank line before the signatures"))?;
        let (text, sigs) = (&all[..=split], &all[split + 2..]);
        check_text(text)?;
        let body = sigs.strip_suffix('\n').ok_or_else(|| {
            malformed(
                "signed note",
                "the last signature line must end in a newline",
            )
        })?;
        if body.is_empty() {
            return Err(malformed("signed note", "no signature lines"));
        }
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(malformed(
                "signed note",
                format!("{} signatures, more than {MAX_SIGNATURES}", lines.len()),
            ));
        }
        let signatures = lines
            .into_iter()
            .map(NoteSignature::parse)
            .collect::<Result<_, _>>()?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note's text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line, unless the same key (name and ID) already
    /// signed: a witness's cosignature is replaced by its newer one.
    pub fn add_signature(&mut self, sig: NoteSignature) {
        if let Some(old) = self
            .signatures
            .iter_mut()
            .find(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            *old = sig;
        } else {
            self.signatures.push(sig);
        }
    }

    /// The encoded note: text, blank line, signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// The signatures by the key named `name` with ID `id`.
    fn by(&self, name: &str, id: u32) -> impl Iterator<Item = &NoteSignature> {
        self.signatures
            .iter()
            .filter(move |s| s.name == name && s.key_id == id)
    }
}

fn check_text(text: &str) -> Result<(), LogError> {
    if !text.ends_with('\n') {
        return Err(malformed("signed note", "the text must end in a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed(
            "signed note",
            "an ASCII control character (below U+0020) other than newline",
        ));
    }
    Ok(())
}

/// Key names: non-empty, no Unicode space, no `+`.
fn check_key_name(name: &str) -> Result<(), LogError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(malformed(
            "key name",
            format!("{name:?}: must be non-empty, without spaces or '+'"),
        ));
    }
    Ok(())
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`, big-endian.
fn key_id(name: &str, kind: u8, key: &[u8; 32]) -> u32 {
    let h = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', kind])
        .chain_update(key)
        .finalize();
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// Parses `<name>+<hex key ID>+base64(type || key)`, checks the ID, and
/// returns the name, type and key.
fn parse_vkey(text: &str) -> Result<(String, u8, [u8; 32]), LogError> {
    let text = text.trim();
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("verifier key", "expected <name>+<key ID>+<key>"));
    };
    check_key_name(name)?;
    let id = (id.len() == 8)
        .then(|| u32::from_str_radix(id, 16).ok())
        .flatten()
        .filter(|_| {
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| malformed("verifier key", "the key ID must be 8 lowercase hex digits"))?;
    let bytes =
        b64::decode(key).ok_or_else(|| malformed("verifier key", "the key is not base64"))?;
    let (&kind, key) = bytes
        .split_first()
        .ok_or_else(|| malformed("verifier key", "empty key"))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| malformed("verifier key", "an Ed25519 key is 32 bytes"))?;
    if key_id(name, kind, &key) != id {
        return Err(malformed(
            "verifier key",
            "the key ID does not match the name and key",
        ));
    }
    Ok((name.to_owned(), kind, key))
}

fn vkey_text(name: &str, kind: u8, key: &[u8; 32]) -> String {
    let mut bytes = vec![kind];
    bytes.extend_from_slice(key);
    format!(
        "{name}+{:08x}+{}",
        key_id(name, kind, key),
        b64::encode(&bytes)
    )
}

fn ed25519_key(bytes: &[u8; 32]) -> Result<VerifyingKey, LogError> {
    let key = VerifyingKey::from_bytes(bytes)
        .map_err(|_| malformed("verifier key", "not an Ed25519 public key"))?;
    if key.is_weak() {
        return Err(malformed("verifier key", "a small-order Ed25519 key"));
    }
    Ok(key)
}

/// The log's signing key: an Ed25519 key named by the log's origin, kept in
/// the text form of Go's `golang.org/x/mod/sumdb/note`
/// (`PRIVATE+KEY+<name>+<key ID>+base64(0x01 || seed)`), so that the Go
/// tools of the ecosystem can read it too.
pub struct LogSigningKey {
    name: String,
    key: SigningKey,
}

impl core::fmt::Debug for LogSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LogSigningKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LogSigningKey {
    /// A new key for the log named `name` (its origin).
    ///
    /// # Errors
    /// [`LogError::Malformed`] for a name with a space or `+`.
    pub fn generate(name: &str, rng: &mut impl rand_core::CryptoRng) -> Result<Self, LogError> {
        check_key_name(name)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Ok(LogSigningKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// From its seed (for vectors and tests).
    ///
    /// # Errors
    /// As [`LogSigningKey::generate`].
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, LogError> {
        check_key_name(name)?;
        Ok(LogSigningKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`LogError::Malformed`] for anything but an Ed25519 note key whose ID
    /// matches.
    pub fn from_text(text: &str) -> Result<Self, LogError> {
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(|| {
            malformed(
                "log signing key",
                "expected PRIVATE+KEY+<name>+<key ID>+<key>",
            )
        })?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "log signing key",
                "expected PRIVATE+KEY+<name>+<key ID>+<key>",
            ));
        };
        check_key_name(name)?;
        let bytes = Zeroizing::new(
            b64::decode(key)
                .ok_or_else(|| malformed("log signing key", "the key is not base64"))?,
        );
        if bytes.len() != 33 || bytes[0] != TYPE_ED25519 {
            return Err(malformed("log signing key", "not an Ed25519 note key"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&bytes[1..]);
        let out = LogSigningKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        if format!("{:08x}", out.verifying_key().id) != id {
            return Err(malformed(
                "log signing key",
                "the key ID does not match the name and key",
            ));
        }
        Ok(out)
    }

    /// The text form (a secret: write it with mode 0600).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(vec![TYPE_ED25519]);
        bytes.extend_from_slice(self.key.as_bytes());
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}\n",
            self.name,
            self.verifying_key().id,
            b64::encode(&bytes)
        ))
    }

    /// The log's name (its origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key clients pin.
    pub fn verifying_key(&self) -> LogVerifyingKey {
        let key = self.key.verifying_key();
        LogVerifyingKey {
            id: key_id(&self.name, TYPE_ED25519, key.as_bytes()),
            name: self.name.clone(),
            key,
        }
    }

    /// Signs `note`'s text and adds the signature line.
    pub fn sign(&self, note: &mut Note) {
        let sig = self.key.sign(note.text.as_bytes());
        note.add_signature(NoteSignature {
            name: self.name.clone(),
            key_id: self.verifying_key().id,
            signature: sig.to_bytes().to_vec(),
        });
    }
}

/// A log's public key: what clients, witnesses and monitors pin, as a
/// verifier key `<name>+<key ID>+base64(0x01 || key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogVerifyingKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl LogVerifyingKey {
    /// Parses a verifier key of type `0x01`.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, LogError> {
        let (name, kind, key) = parse_vkey(text)?;
        if kind != TYPE_ED25519 {
            return Err(malformed(
                "log key",
                format!("signature type 0x{kind:02x}, not an Ed25519 note key (0x01)"),
            ));
        }
        Ok(LogVerifyingKey {
            id: key_id(&name, kind, &key),
            name,
            key: ed25519_key(&key)?,
        })
    }

    /// The key's name: the log's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `other` wraps the same Ed25519 key (whatever its name).
    pub fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }

    /// Whether this key made a valid signature on `note`: `Ok(true)` if
    /// one of its signatures verifies and none fails, `Ok(false)` if it did
    /// not sign, an error if a signature of its fails (the note is bad).
    ///
    /// # Errors
    /// [`LogError::LogSignature`].
    pub fn signed(&self, note: &Note) -> Result<bool, LogError> {
        let mut any = false;
        for s in note.by(&self.name, self.id) {
            let ok = Signature::from_slice(&s.signature)
                .is_ok_and(|sig| self.key.verify_strict(note.text.as_bytes(), &sig).is_ok());
            if !ok {
                return Err(LogError::LogSignature(self.to_string()));
            }
            any = true;
        }
        Ok(any)
    }
}

impl core::fmt::Display for LogVerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&vkey_text(&self.name, TYPE_ED25519, self.key.as_bytes()))
    }
}

/// A witness's public key, for its timestamped Ed25519 cosignatures
/// (c2sp.org/tlog-cosignature): a verifier key of type `0x04`
/// (`<name>+<key ID>+base64(0x04 || key)`). A type-`0x01` key of the same
/// witness is accepted too (some witnesses print their key that way); the
/// cosignature's key ID is computed with `0x04` either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignerKey {
    /// Parses a verifier key.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, LogError> {
        let (name, kind, key) = parse_vkey(text)?;
        if kind != TYPE_COSIGNATURE_V1 && kind != TYPE_ED25519 {
            return Err(malformed(
                "witness key",
                format!("signature type 0x{kind:02x}, not an Ed25519 cosignature key (0x04)"),
            ));
        }
        Self::new(&name, &key)
    }

    /// The witness named `name` with Ed25519 public key `key`.
    ///
    /// # Errors
    /// [`LogError::Malformed`] for a bad name or key.
    pub fn new(name: &str, key: &[u8; 32]) -> Result<Self, LogError> {
        check_key_name(name)?;
        Ok(CosignerKey {
            name: name.to_owned(),
            id: key_id(name, TYPE_COSIGNATURE_V1, key),
            key: ed25519_key(key)?,
        })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `other` wraps the same Ed25519 key (whatever its name).
    pub fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }

    /// The newest valid cosignature of this witness on `note` (whose text
    /// is a checkpoint): its timestamp, `Ok(None)` if it did not cosign.
    ///
    /// # Errors
    /// [`LogError::BadCosignature`] if a cosignature of its fails.
    pub fn cosigned(&self, note: &Note) -> Result<Option<u64>, LogError> {
        let mut newest = None;
        for s in note.by(&self.name, self.id) {
            let t = self
                .check(&note.text, &s.signature)
                .ok_or_else(|| LogError::BadCosignature(self.name.clone()))?;
            newest = newest.max(Some(t));
        }
        Ok(newest)
    }

    /// Verifies one `timestamped_signature` over `text`.
    fn check(&self, text: &str, sig: &[u8]) -> Option<u64> {
        if sig.len() != 8 + 64 {
            return None;
        }
        let t = u64::from_be_bytes(sig[..8].try_into().ok()?);
        if t > i64::MAX as u64 {
            return None;
        }
        let signature = Signature::from_slice(&sig[8..]).ok()?;
        self.key
            .verify_strict(&cosigned_message(t, text), &signature)
            .ok()
            .map(|()| t)
    }
}

impl core::fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&vkey_text(
            &self.name,
            TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        ))
    }
}

/// The message a v1 cosignature signs: `cosignature/v1`, `time <t>`, then
/// the checkpoint's text.
fn cosigned_message(t: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {t}\n{text}").into_bytes()
}

/// A witness's signing side, for the vectors only: the tests and the demo
/// run real witnesses.
#[cfg(any(test, feature = "test-vectors"))]
///
/// # Errors
/// [`LogError::Malformed`] for a bad name.
pub fn cosign_for_vectors(
    name: &str,
    seed: [u8; 32],
    t: u64,
    note: &mut Note,
) -> Result<CosignerKey, LogError> {
    let key = SigningKey::from_bytes(&seed);
    let pk = key.verifying_key().to_bytes();
    let cosigner = CosignerKey::new(name, &pk)?;
    let sig = key.sign(&cosigned_message(t, &note.text));
    let mut bytes = t.to_be_bytes().to_vec();
    bytes.extend_from_slice(&sig.to_bytes());
    note.add_signature(NoteSignature {
        name: name.to_owned(),
        key_id: cosigner.id,
        signature: bytes,
    });
    Ok(cosigner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of c2sp.org/signed-note ("Verifier keys", "Example").
    #[test]
    fn the_specifications_example_verifies() {
        let vkey = LogVerifyingKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = Note::parse("This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n".as_bytes()).unwrap();
        assert_eq!(vkey.signed(&note), Ok(true));
        assert_eq!(
            vkey.to_string(),
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
        );
        let mut bad = note.clone();
        bad.text = "This is another message.\n".into();
        assert!(vkey.signed(&bad).is_err());
    }

    #[test]
    fn a_key_signs_and_round_trips_through_its_text() {
        let key = LogSigningKey::from_seed("log.example/bm", [7; 32]).unwrap();
        let again = LogSigningKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        let mut note = Note::new("hello\n").unwrap();
        key.sign(&mut note);
        let parsed = Note::parse(note.encode().as_bytes()).unwrap();
        assert_eq!(key.verifying_key().signed(&parsed), Ok(true));
        let other = LogSigningKey::from_seed("log.example/bm", [8; 32]).unwrap();
        assert_eq!(other.verifying_key().signed(&parsed), Ok(false));
        let vkey = LogVerifyingKey::parse(&key.verifying_key().to_string()).unwrap();
        assert_eq!(vkey, key.verifying_key());
    }

    #[test]
    fn malformed_notes_are_refused() {
        for bad in [
            "no blank line\n\u{2014} a AAAAAAA=\n",
            "text\n\n",
            "text\n\n\u{2014} a AAAAAAA=",
            "text\n\n- a AAAAAAA=\n",
            "text\n\n\u{2014} a+b AAAAAAA=\n",
            "text\n\n\u{2014} a AAAA\n",
            "text\r\n\n\u{2014} a AAAAAAA=\n",
            "text\n\n\u{2014} a !!!\n",
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // The last blank line separates the signatures: text may hold one.
        let ok = Note::parse("a\n\nb\n\n\u{2014} a AAAAAAA=\n".as_bytes()).unwrap();
        assert_eq!(ok.text(), "a\n\nb\n");
    }

    #[test]
    fn cosignatures_verify_with_their_timestamp_and_nothing_else() {
        let mut note =
            Note::new("origin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
        let w =
            cosign_for_vectors("witness.example/w1", [3; 32], 1_679_315_147, &mut note).unwrap();
        let parsed = Note::parse(note.encode().as_bytes()).unwrap();
        assert_eq!(w.cosigned(&parsed), Ok(Some(1_679_315_147)));
        assert_eq!(CosignerKey::parse(&w.to_string()).unwrap(), w);
        let mut tampered = parsed.clone();
        tampered.signatures[0].signature[7] ^= 1;
        assert!(w.cosigned(&tampered).is_err());
    }
}
