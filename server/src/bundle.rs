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
    let mut r = std::io::BufReader::new(file);
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
