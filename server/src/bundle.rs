//! The server's table file: the public table and the private entry index in
//! one file, so `serve` needs only it and the key.
//!
//! `"BMTF" || 0x01 || I2OSP(len(table), 8) || table || I2OSP(len(index), 8) || index`,
//! where `table` is the encoded blinded table (SPEC Section 5) and `index`
//! the encoded `EntryIndex`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use blindmatch_protocol::table::{EntryIndexDecoder, HEADER_LEN, INDEX_HEADER_LEN};
use blindmatch_protocol::{BlindedTable, EntryIndex, TableHeader};

const MAGIC: &[u8; 4] = b"BMTF";
const VERSION: u8 = 1;

/// Writes a table file atomically (a temporary file in the same directory,
/// then rename), readable by its owner only.
///
/// # Errors
/// On I/O failure.
pub fn write(path: &Path, table: &BlindedTable, index: &EntryIndex) -> anyhow::Result<()> {
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
    let index = index.encode();
    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
    w.write_all(MAGIC)?;
    w.write_all(&[VERSION])?;
    // The table's encoding is `header || slots`; written from the parts, not copied.
    w.write_all(&((header.len() + table.slots().len()) as u64).to_be_bytes())?;
    w.write_all(&header)?;
    w.write_all(table.slots())?;
    w.write_all(&(index.len() as u64).to_be_bytes())?;
    w.write_all(&index)?;
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
/// memory at start-up).
///
/// # Errors
/// If the file is missing, truncated, or any part fails to decode.
pub fn read(path: &Path) -> anyhow::Result<(BlindedTable, EntryIndex)> {
    let ctx = || format!("table file {}", path.display());
    let file = std::fs::File::open(path).with_context(ctx)?;
    let file_len = file.metadata().with_context(ctx)?.len();
    read_from(std::io::BufReader::new(file), file_len, path)
}

/// Reads a table file of `file_len` bytes from `r`; `path` names it in
/// errors. No length field may claim more than `file_len` bytes, so a
/// hostile file cannot make the reader allocate more than its own size.
///
/// # Errors
/// If it is truncated, has bytes left over, or any part fails to decode.
pub fn read_from(
    mut r: impl Read,
    file_len: u64,
    path: &Path,
) -> anyhow::Result<(BlindedTable, EntryIndex)> {
    let ctx = || format!("table file {}", path.display());
    let mut head = [0u8; 5];
    r.read_exact(&mut head).with_context(|| {
        format!(
            "{}: not a blindmatch table file (too short)",
            path.display()
        )
    })?;
    if &head[..4] != MAGIC {
        bail!(
            "{}: not a blindmatch table file (made by `blindmatch-server build`)",
            path.display()
        );
    }
    if head[4] != VERSION {
        bail!(
            "{}: unsupported table file version {}",
            path.display(),
            head[4]
        );
    }
    let mut part = |what: &str| -> anyhow::Result<Vec<u8>> {
        let mut len = [0u8; 8];
        r.read_exact(&mut len)
            .with_context(|| format!("{}: truncated before the {what}", path.display()))?;
        let len = u64::from_be_bytes(len);
        // Never allocate more than the file could hold.
        if len > file_len {
            bail!(
                "{}: the {what} claims {len} bytes, more than the file has",
                path.display()
            );
        }
        let mut body = vec![0u8; usize::try_from(len)?];
        r.read_exact(&mut body)
            .with_context(|| format!("{}: truncated inside the {what}", path.display()))?;
        Ok(body)
    };
    let mut table = part("table")?;
    if table.len() < HEADER_LEN {
        bail!(
            "{}: the table part is shorter than a table header",
            path.display()
        );
    }
    let header = TableHeader::decode(&table[..HEADER_LEN]).with_context(ctx)?;
    // Reuse the buffer for the slots: shift them down over the header.
    table.drain(..HEADER_LEN);
    let table = BlindedTable::from_parts(header, table).with_context(ctx)?;
    // The index is decoded as it is read, never held twice.
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .with_context(|| format!("{}: truncated before the entry index", path.display()))?;
    let len = u64::from_be_bytes(len);
    // As for the table: the decoder reserves room for the records the index
    // header announces, so its length must fit in the file first.
    if len > file_len {
        bail!(
            "{}: the entry index claims {len} bytes, more than the file has",
            path.display()
        );
    }
    let mut header = [0u8; INDEX_HEADER_LEN];
    r.read_exact(&mut header)
        .with_context(|| format!("{}: truncated inside the entry index", path.display()))?;
    let mut decoder = EntryIndexDecoder::new(&header, len).with_context(ctx)?;
    let mut left = len - INDEX_HEADER_LEN as u64;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        r.read_exact(&mut buf[..n])
            .with_context(|| format!("{}: truncated inside the entry index", path.display()))?;
        decoder.push(&buf[..n]).with_context(ctx)?;
        left -= n as u64;
    }
    let index = decoder.finish().with_context(ctx)?;
    let mut rest = [0u8; 1];
    if r.read(&mut rest).with_context(ctx)? != 0 {
        bail!("{}: unexpected bytes after the entry index", path.display());
    }
    Ok((table, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};

    fn file() -> Vec<u8> {
        let key = ServerKey::generate(&mut rand::rng());
        let items: Vec<Item> = (0u8..20)
            .map(|i| Item::new(ItemType::Sha256, &[i; 32]).unwrap())
            .collect();
        let built = TableBuilder::new([7; 32]).build(&key, items).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bmt");
        write(&path, &built.table, &built.index).unwrap();
        std::fs::read(path).unwrap()
    }

    /// Reads a table file from memory; only the error matters here.
    fn read_bytes(bytes: &[u8]) -> anyhow::Result<()> {
        read_from(bytes, bytes.len() as u64, Path::new("t.bmt")).map(|_| ())
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
        assert!(err(&good[..good.len() - 1]).contains("truncated inside the entry index"));
        let mut extra = good.clone();
        extra.push(0);
        assert!(err(&extra).contains("unexpected bytes after"));
        let mut huge_table = good.clone();
        huge_table[5..13].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(err(&huge_table).contains("the table claims"));
    }

    /// Regression: an index whose header announces 2^32 - 1 records, with a
    /// length field to match, made the decoder reserve ~80 GB (an abort, not
    /// an error) before this length was checked against the file's size.
    #[test]
    fn an_index_claiming_more_than_the_file_is_refused_before_allocating() {
        let good = file();
        let table_len = u64::from_be_bytes(good[5..13].try_into().unwrap());
        let at = 13 + usize::try_from(table_len).unwrap();
        let mut bad = good[..at].to_vec();
        let n = u32::MAX;
        let claimed = INDEX_HEADER_LEN as u64 + u64::from(n) * 20;
        bad.extend_from_slice(&claimed.to_be_bytes());
        bad.extend_from_slice(&good[at + 8..at + 8 + 5]); // magic and version
        bad.extend_from_slice(&n.to_be_bytes());
        let e = format!("{:#}", read_bytes(&bad).unwrap_err());
        assert!(e.contains("the entry index claims"), "{e}");
    }
}
