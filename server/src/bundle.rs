//! The server's table file: one version of the table with everything the
//! operator keeps about it, so `serve` needs only it and the key.
//!
//! `"BMTF" || 0x02 || section*`, each section `tag (4) || I2OSP(len, 8) ||
//! body`, each tag exactly once:
//!
//! | tag    | body                                                          | used by |
//! | ------ | ------------------------------------------------------------- | ------- |
//! | `TABL` | the encoded blinded table, `header || slots` (SPEC Section 5) | serve, clients |
//! | `INDX` | the private entry index (`EntryIndex::encode`)                | serve |
//! | `MNFS` | the signed manifest, `statement || signature` (SPEC 13.3)     | serve, clients |
//! | `HIST` | which slots changed since each earlier version (deltas)       | serve |
//! | `PLCE` | where each entry may move (`Placement::encode`)               | the next `build --base` |
//! | `COSG` | organisations' co-signatures of the manifest (optional)       | serve, clients |
//!
//! `HIST` is `I2OSP(count, 4)` then per earlier version `I2OSP(version, 8)
//! || table_id || I2OSP(n, 4) || n × I2OSP(slot, 4)` (ascending slots).
//! `COSG` is `I2OSP(count, 2)` then per co-signature `I2OSP(len, 2) ||
//! CoSignature::encode()` (SPEC 15.5), each verified over the manifest's
//! statement whenever the file is read.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use blindmatch_protocol::audit::CoSignature;
use blindmatch_protocol::manifest::SignedManifest;
use blindmatch_protocol::merkle::MerkleTree;
use blindmatch_protocol::table::{
    EntryIndexDecoder, HEADER_LEN, INDEX_HEADER_LEN, Placement, SLOT_LEN,
};
use blindmatch_protocol::{BlindedTable, EntryIndex, TableHeader, TableId};

const MAGIC: &[u8; 4] = b"BMTF";
const VERSION: u8 = 2;
const TABLE: &[u8; 4] = b"TABL";
const INDEX: &[u8; 4] = b"INDX";
const MANIFEST: &[u8; 4] = b"MNFS";
const HISTORY: &[u8; 4] = b"HIST";
const PLACEMENT: &[u8; 4] = b"PLCE";
const COSIGNATURES: &[u8; 4] = b"COSG";

/// Earlier versions a table file remembers changes since: a client up to
/// this many versions behind gets a delta, an older one the full table.
pub const MAX_HISTORY: usize = 30;

/// The slots changed since one earlier version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Since {
    /// The earlier version's number.
    pub version: u64,
    /// The earlier version's table id.
    pub table_id: TableId,
    /// Slots whose bytes differ between it and this version, ascending.
    pub changed: Vec<u32>,
}

/// Changes since earlier versions, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History(pub Vec<Since>);

impl History {
    /// The history of a version built from `base` (whose own history is
    /// `base_history`) that changed `changed`: every earlier version's set
    /// grows by `changed`, and `base` joins with `changed` alone. Versions
    /// whose delta would be no smaller than the table are dropped.
    pub fn next(
        base_version: u64,
        base_id: TableId,
        base_history: &History,
        changed: &[u32],
        n_slots: u32,
    ) -> History {
        let worth_it =
            |n: usize| (n as u64) * (SLOT_LEN as u64 + 4) < u64::from(n_slots) * SLOT_LEN as u64;
        let mut out = vec![Since {
            version: base_version,
            table_id: base_id,
            changed: changed.to_vec(),
        }];
        for s in &base_history.0 {
            if out.len() == MAX_HISTORY {
                break;
            }
            out.push(Since {
                version: s.version,
                table_id: s.table_id,
                changed: union(&s.changed, changed),
            });
        }
        out.retain(|s| worth_it(s.changed.len()));
        History(out)
    }

    /// The record for the version with table id `id`.
    pub fn since(&self, id: &TableId) -> Option<&Since> {
        self.position(id).map(|at| &self.0[at])
    }

    /// Where the record for the version with table id `id` is.
    pub fn position(&self, id: &TableId) -> Option<usize> {
        self.0.iter().position(|s| s.table_id == *id)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(self.0.len()).unwrap_or(0).to_be_bytes());
        for s in &self.0 {
            out.extend_from_slice(&s.version.to_be_bytes());
            out.extend_from_slice(&s.table_id.0);
            out.extend_from_slice(&u32::try_from(s.changed.len()).unwrap_or(0).to_be_bytes());
            for c in &s.changed {
                out.extend_from_slice(&c.to_be_bytes());
            }
        }
        out
    }

    fn decode(mut b: &[u8], n_slots: u32) -> anyhow::Result<Self> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
            if b.len() < n {
                bail!("the history is truncated");
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Ok(head)
        }
        let u32_of = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        let count = u32_of(take(&mut b, 4)?);
        let mut out = Vec::new();
        for _ in 0..count {
            let mut v = [0u8; 8];
            v.copy_from_slice(take(&mut b, 8)?);
            let mut id = [0u8; 32];
            id.copy_from_slice(take(&mut b, 32)?);
            let n = u32_of(take(&mut b, 4)?) as usize;
            let changed: Vec<u32> = take(&mut b, n.saturating_mul(4))?
                .chunks_exact(4)
                .map(u32_of)
                .collect();
            if changed.windows(2).any(|w| w[0] >= w[1])
                || changed.last().is_some_and(|&l| l >= n_slots)
            {
                bail!("the history's slot numbers are out of order or range");
            }
            out.push(Since {
                version: u64::from_be_bytes(v),
                table_id: TableId(id),
                changed,
            });
        }
        if !b.is_empty() {
            bail!("unexpected bytes after the history");
        }
        Ok(History(out))
    }
}

/// Merges two ascending slot lists.
fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(_) | None, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// One version of the table as the operator keeps it.
pub struct Bundle {
    /// The public table.
    pub table: BlindedTable,
    /// The private entry index.
    pub index: EntryIndex,
    /// The operator's signed statement of this version.
    pub manifest: SignedManifest,
    /// Changes since earlier versions.
    pub history: History,
    /// Where entries may move; read only for `build --base`.
    pub placement: Option<Placement>,
    /// Organisations' co-signatures of the manifest, each verified, one
    /// per organisation key.
    pub cosignatures: Vec<CoSignature>,
}

/// Writes a table file atomically (a temporary file in the same directory,
/// then rename), readable by its owner only.
///
/// # Errors
/// On I/O failure, or if the bundle has no placement.
pub fn write(path: &Path, bundle: &Bundle) -> anyhow::Result<()> {
    let Some(placement) = &bundle.placement else {
        bail!("a table file needs its placement");
    };
    write_parts(
        path,
        &bundle.table,
        &bundle.index,
        &bundle.manifest,
        &bundle.history,
        placement,
        &bundle.cosignatures,
    )
}

/// [`write()`] from borrowed parts.
///
/// # Errors
/// On I/O failure.
pub fn write_parts(
    path: &Path,
    table: &BlindedTable,
    index: &EntryIndex,
    manifest: &SignedManifest,
    history: &History,
    placement: &Placement,
    cosignatures: &[CoSignature],
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("table file {}", path.display()))?;
    let header = table.header().encode();
    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
    w.write_all(MAGIC)?;
    w.write_all(&[VERSION])?;
    // The table's encoding is `header || slots`; written from the parts, not copied.
    w.write_all(TABLE)?;
    w.write_all(&((header.len() + table.slots().len()) as u64).to_be_bytes())?;
    w.write_all(&header)?;
    w.write_all(table.slots())?;
    for (tag, body) in [
        (INDEX, index.encode()),
        (MANIFEST, manifest.encode()),
        (HISTORY, history.encode()),
        (PLACEMENT, placement.encode()),
    ]
    .into_iter()
    .chain((!cosignatures.is_empty()).then(|| (COSIGNATURES, encode_cosignatures(cosignatures))))
    {
        w.write_all(tag)?;
        w.write_all(&(body.len() as u64).to_be_bytes())?;
        w.write_all(&body)?;
    }
    w.flush()
        .with_context(|| format!("writing table file {}", path.display()))?;
    drop(w);
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("table file {}", path.display()))?;
    Ok(())
}

/// Reads a table file, streaming each part into its own buffer (the file is
/// never held whole: at a million entries that halves the server's peak
/// memory at start-up), and checks that its manifest describes its table.
/// The placement is read only if `placement` is set (`serve` skips it).
///
/// # Errors
/// If the file is missing, truncated, or any part fails to decode or check.
pub fn read(path: &Path, placement: bool) -> anyhow::Result<Bundle> {
    read_with_tree(path, placement).map(|(bundle, _)| bundle)
}

/// [`read`], also returning the Merkle tree built to check the digest, for
/// a server that hands out its proofs (built once, not twice).
///
/// # Errors
/// As [`read`].
pub(crate) fn read_with_tree(path: &Path, placement: bool) -> anyhow::Result<(Bundle, MerkleTree)> {
    let ctx = || format!("table file {}", path.display());
    let file = std::fs::File::open(path).with_context(ctx)?;
    let file_len = file.metadata().with_context(ctx)?.len();
    parse(std::io::BufReader::new(file), file_len, path, placement)
}

/// Reads a table file of `file_len` bytes from `r`; `path` names it in
/// errors. No length field may claim more than `file_len` bytes, so a
/// hostile file cannot make the reader allocate more than its own size.
///
/// # Errors
/// If it is truncated, has bytes left over, lacks a part, or any part fails
/// to decode, or the manifest does not describe the table.
pub fn read_from(
    r: impl Read,
    file_len: u64,
    path: &Path,
    want_placement: bool,
) -> anyhow::Result<Bundle> {
    parse(r, file_len, path, want_placement).map(|(bundle, _)| bundle)
}

fn parse(
    mut r: impl Read,
    file_len: u64,
    path: &Path,
    want_placement: bool,
) -> anyhow::Result<(Bundle, MerkleTree)> {
    let p = path.display();
    let ctx = || format!("table file {p}");
    let mut head = [0u8; 5];
    r.read_exact(&mut head)
        .with_context(|| format!("{p}: not a blindmatch table file (too short)"))?;
    if &head[..4] != MAGIC {
        bail!("{p}: not a blindmatch table file (made by `blindmatch-server build`)");
    }
    if head[4] == 1 {
        bail!(
            "{p}: a version 1 table file, without a signed manifest: build it again with this version"
        );
    }
    if head[4] != VERSION {
        bail!("{p}: unsupported table file version {}", head[4]);
    }
    let (mut table, mut index, mut manifest, mut history, mut placement) =
        (None, None, None, None, None);
    let mut cosignatures = None;
    let mut seen = Vec::new();
    loop {
        let mut tag = [0u8; 4];
        match r.read(&mut tag[..1]).with_context(ctx)? {
            0 => break,
            _ => r.read_exact(&mut tag[1..]).with_context(|| {
                format!("{p}: unexpected bytes after the last section (not a whole section tag)")
            })?,
        }
        let name = String::from_utf8_lossy(&tag).into_owned();
        if seen.contains(&tag) {
            bail!("{p}: section {name} appears twice");
        }
        seen.push(tag);
        let mut len = [0u8; 8];
        r.read_exact(&mut len)
            .with_context(|| format!("{p}: truncated before the {name} section"))?;
        let len = u64::from_be_bytes(len);
        // Never allocate more than the file could hold.
        if len > file_len {
            bail!("{p}: the {name} section claims {len} bytes, more than the file has");
        }
        let body = |r: &mut dyn Read| -> anyhow::Result<Vec<u8>> {
            let mut body = vec![0u8; usize::try_from(len)?];
            r.read_exact(&mut body)
                .with_context(|| format!("{p}: truncated inside the {name} section"))?;
            Ok(body)
        };
        match &tag {
            TABLE => {
                let mut bytes = body(&mut r)?;
                if bytes.len() < HEADER_LEN {
                    bail!("{p}: the table part is shorter than a table header");
                }
                let header = TableHeader::decode(&bytes[..HEADER_LEN]).with_context(ctx)?;
                // Reuse the buffer for the slots: shift them down over the header.
                bytes.drain(..HEADER_LEN);
                table = Some(BlindedTable::from_parts(header, bytes).with_context(ctx)?);
            }
            INDEX => index = Some(read_index(&mut r, len, path)?),
            MANIFEST => {
                manifest =
                    Some(SignedManifest::decode_unverified(&body(&mut r)?).with_context(ctx)?)
            }
            HISTORY => history = Some(body(&mut r)?),
            PLACEMENT if want_placement => {
                placement = Some(Placement::decode(&body(&mut r)?).with_context(ctx)?)
            }
            PLACEMENT => {
                let skipped = std::io::copy(&mut (&mut r).take(len), &mut std::io::sink())?;
                if skipped != len {
                    bail!("{p}: truncated inside the PLCE section");
                }
            }
            COSIGNATURES => cosignatures = Some(body(&mut r)?),
            _ => bail!("{p}: unknown section {name}"),
        }
    }
    let missing = |what: &str| anyhow::anyhow!("{p}: no {what} section");
    let table = table.ok_or_else(|| missing("TABL (table)"))?;
    let index = index.ok_or_else(|| missing("INDX (entry index)"))?;
    let manifest: SignedManifest = manifest.ok_or_else(|| missing("MNFS (manifest)"))?;
    let history = History::decode(
        &history.ok_or_else(|| missing("HIST (history)"))?,
        table.header().n_slots,
    )
    .with_context(ctx)?;
    if want_placement && placement.is_none() {
        return Err(missing("PLCE (placement)"));
    }
    if index.n_slots() != table.header().n_slots as usize {
        bail!(
            "{p}: the entry index covers {} slots, the table has {}",
            index.n_slots(),
            table.header().n_slots
        );
    }
    let m = &manifest.manifest;
    if m.table_id != *table.id() || m.header != *table.header() {
        bail!("{p}: the manifest names another table (table id or header differ)");
    }
    let tree = MerkleTree::new(table.slots());
    if m.digest != *tree.root() {
        bail!("{p}: the table does not hash to its manifest's digest");
    }
    let cosignatures = match cosignatures {
        Some(body) => decode_cosignatures(&body, &manifest).with_context(ctx)?,
        None => Vec::new(),
    };
    let bundle = Bundle {
        table,
        index,
        manifest,
        history,
        placement,
        cosignatures,
    };
    Ok((bundle, tree))
}

/// Decodes the index as it is read, never holding it twice.
fn read_index(r: &mut impl Read, len: u64, path: &Path) -> anyhow::Result<EntryIndex> {
    let p = path.display();
    let ctx = || format!("table file {p}");
    if len < INDEX_HEADER_LEN as u64 {
        bail!("{p}: the entry index is shorter than its header");
    }
    let mut header = [0u8; INDEX_HEADER_LEN];
    r.read_exact(&mut header)
        .with_context(|| format!("{p}: truncated inside the entry index"))?;
    // The decoder reserves room for the records the index header announces,
    // so its length was checked against the file's size first.
    let mut decoder = EntryIndexDecoder::new(&header, len).with_context(ctx)?;
    let mut left = len - INDEX_HEADER_LEN as u64;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        r.read_exact(&mut buf[..n])
            .with_context(|| format!("{p}: truncated inside the entry index"))?;
        decoder.push(&buf[..n]).with_context(ctx)?;
        left -= n as u64;
    }
    decoder.finish().with_context(ctx)
}

fn encode_cosignatures(cosignatures: &[CoSignature]) -> Vec<u8> {
    let mut out = u16::try_from(cosignatures.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec();
    for c in cosignatures {
        let bytes = c.encode();
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Decodes the `COSG` section and checks every co-signature over the
/// manifest's statement: a table whose co-signature does not verify is
/// refused, with the organisation's name (SPEC 15.5).
fn decode_cosignatures(
    mut b: &[u8],
    manifest: &SignedManifest,
) -> anyhow::Result<Vec<CoSignature>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
        if b.len() < n {
            bail!("the co-signatures section is truncated");
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    let count = take(&mut b, 2)?;
    let count = u16::from_be_bytes([count[0], count[1]]);
    // Clients read at most this many: a pinned organisation's co-signature
    // past it would be ignored.
    if usize::from(count) > blindmatch_protocol::audit::cosign::MAX_COSIGNATURES {
        bail!(
            "{count} co-signatures: a manifest carries at most {}",
            blindmatch_protocol::audit::cosign::MAX_COSIGNATURES
        );
    }
    let statement = manifest.manifest.encode();
    let mut out: Vec<CoSignature> = Vec::new();
    for _ in 0..count {
        let len = take(&mut b, 2)?;
        let c = CoSignature::decode(take(
            &mut b,
            usize::from(u16::from_be_bytes([len[0], len[1]])),
        )?)
        .context("a co-signature")?;
        check_cosignature(&c, &statement, manifest.manifest.version)?;
        if out.iter().any(|o| o.org_key == c.org_key) {
            bail!("two co-signatures by one organisation key ({})", c.name);
        }
        out.push(c);
    }
    if !b.is_empty() {
        bail!("unexpected bytes after the co-signatures");
    }
    Ok(out)
}

/// Refuses a co-signature that does not verify over `statement`, naming
/// the organisation.
///
/// # Errors
/// If it does not verify.
pub fn check_cosignature(c: &CoSignature, statement: &[u8], version: u64) -> anyhow::Result<()> {
    if !c.verifies(statement) {
        bail!(
            "the co-signature of {} (key {}) does not verify over this table's statement (version {version}): it co-signs another table or version, or it was altered",
            c.name,
            hex::encode(c.org_key.to_bytes())
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey};
    use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};

    fn file() -> Vec<u8> {
        let key = ServerKey::generate(&mut rand::rng());
        let items: Vec<Item> = (0u8..20)
            .map(|i| Item::new(ItemType::Sha256, &[i; 32]).unwrap())
            .collect();
        let built = TableBuilder::new([7; 32]).build(&key, items).unwrap();
        let op = OperatorSigningKey::generate(&mut rand::rng());
        let manifest = Manifest::for_table(&built.table, 1, 0, None).sign(&op);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bmt");
        let bundle = Bundle {
            table: built.table,
            index: built.index,
            manifest,
            history: History(vec![Since {
                version: 0,
                table_id: TableId([9; 32]),
                changed: vec![1, 5, 7],
            }]),
            placement: Some(built.placement),
            cosignatures: Vec::new(),
        };
        write(&path, &bundle).unwrap();
        let back = read(&path, true).unwrap();
        assert_eq!(back.history, bundle.history);
        assert_eq!(back.placement, bundle.placement);
        assert_eq!(back.manifest, bundle.manifest);
        assert!(read(&path, false).unwrap().placement.is_none());
        std::fs::read(path).unwrap()
    }

    /// Reads a table file from memory; only the error matters here.
    fn read_bytes(bytes: &[u8]) -> anyhow::Result<()> {
        read_from(bytes, bytes.len() as u64, Path::new("t.bmt"), true).map(|_| ())
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let good = file();
        assert!(read_bytes(&good).is_ok());
        let err = |bytes: &[u8]| format!("{:#}", read_bytes(bytes).unwrap_err());
        assert!(err(&good[..3]).contains("too short"));
        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(err(&magic).contains("not a blindmatch table file"));
        assert!(err(&good[..good.len() - 1]).contains("truncated inside the PLCE"));
        let mut extra = good.clone();
        extra.push(0);
        assert!(err(&extra).contains("unexpected bytes after the last section"));
        let mut huge_table = good.clone();
        huge_table[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(err(&huge_table).contains("the TABL section claims"));
        let mut v1 = good.clone();
        v1[4] = 1;
        assert!(err(&v1).contains("version 1 table file"));
        // A slot changed: the manifest no longer describes the table.
        let mut slot = good.clone();
        slot[5 + 12 + HEADER_LEN + 3] ^= 1;
        assert!(err(&slot).contains("manifest names another table"));
    }

    /// Regression: an index whose header announces 2^32 - 1 records, with a
    /// length field to match, made the decoder reserve ~80 GB (an abort, not
    /// an error) before this length was checked against the file's size.
    #[test]
    fn an_index_claiming_more_than_the_file_is_refused_before_allocating() {
        let good = file();
        let table_len = u64::from_be_bytes(good[9..17].try_into().unwrap());
        let at = 17 + usize::try_from(table_len).unwrap();
        assert_eq!(&good[at..at + 4], INDEX);
        let mut bad = good[..at + 4].to_vec();
        let n = u32::MAX;
        let claimed = INDEX_HEADER_LEN as u64 + u64::from(n) * 20;
        bad.extend_from_slice(&claimed.to_be_bytes());
        bad.extend_from_slice(&good[at + 12..at + 12 + 5]); // magic and version
        bad.extend_from_slice(&n.to_be_bytes());
        let e = format!("{:#}", read_bytes(&bad).unwrap_err());
        assert!(e.contains("the INDX section claims"), "{e}");
    }

    #[test]
    fn history_grows_by_the_new_changes_and_forgets_what_is_not_worth_a_delta() {
        let h1 = History::next(1, TableId([1; 32]), &History::default(), &[3, 9], 1000);
        let h2 = History::next(2, TableId([2; 32]), &h1, &[1, 9, 12], 1000);
        assert_eq!(h2.since(&TableId([2; 32])).unwrap().changed, vec![1, 9, 12]);
        assert_eq!(
            h2.since(&TableId([1; 32])).unwrap().changed,
            vec![1, 3, 9, 12]
        );
        let big: Vec<u32> = (0..900).collect();
        let h3 = History::next(3, TableId([3; 32]), &h2, &big, 1000);
        assert!(
            h3.0.is_empty(),
            "a delta of 900 of 1000 slots is larger than the table"
        );
        assert_eq!(union(&[1, 4], &[]), vec![1, 4]);
        assert_eq!(union(&[], &[2]), vec![2]);
    }
}
