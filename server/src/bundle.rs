//! The server's table file: the public table and the private entry index in
//! one file, so `serve` needs only it and the key.
//!
//! `"BMTF" || 0x01 || I2OSP(len(table), 8) || table || I2OSP(len(index), 8) || index`,
//! where `table` is the encoded blinded table (SPEC Section 5) and `index`
//! the encoded `EntryIndex`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use blindmatch_protocol::{BlindedTable, EntryIndex};

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

/// Reads a table file.
///
/// # Errors
/// If the file is missing, truncated, or any part fails to decode.
pub fn read(path: &Path) -> anyhow::Result<(BlindedTable, EntryIndex)> {
    let ctx = || format!("table file {}", path.display());
    let bytes = std::fs::read(path).with_context(ctx)?;
    if bytes.len() < 5 || &bytes[..4] != MAGIC {
        bail!(
            "{}: not a blindmatch table file (made by `blindmatch-server build`)",
            path.display()
        );
    }
    if bytes[4] != VERSION {
        bail!(
            "{}: unsupported table file version {}",
            path.display(),
            bytes[4]
        );
    }
    let mut rest = &bytes[5..];
    let mut part = |what: &str| -> anyhow::Result<&[u8]> {
        let (len, tail) = rest
            .split_first_chunk::<8>()
            .with_context(|| format!("{}: truncated before the {what}", path.display()))?;
        let len = usize::try_from(u64::from_be_bytes(*len)).unwrap_or(usize::MAX);
        if tail.len() < len {
            bail!("{}: truncated inside the {what}", path.display());
        }
        let (body, tail) = tail.split_at(len);
        rest = tail;
        Ok(body)
    };
    let table = BlindedTable::decode(part("table")?).with_context(ctx)?;
    let index = EntryIndex::decode(part("entry index")?).with_context(ctx)?;
    if !rest.is_empty() {
        bail!(
            "{}: {} unexpected bytes after the entry index",
            path.display(),
            rest.len()
        );
    }
    Ok((table, index))
}
