//! The on-disk table cache: verified tables by table id, partial downloads
//! to resume, and the newest manifest verified per operator key.
//!
//! `<dir>/<table id hex>.table` holds a complete table (header and slots)
//! whose id was verified; `<dir>/<table id hex>.partial` holds the verified
//! chunks received so far. A table is only ever read back through
//! `BlindedTable::decode`, which recomputes its id, so a damaged cache file is
//! detected and replaced, never used. `<dir>/manifest-<operator key hex>`
//! holds the newest signed manifest verified under that key: the base for
//! the next delta, and the record that refuses a rollback or a second table
//! under one version number.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use blindmatch_client_core::{History, TableDownload, VerifiedManifest};
use blindmatch_protocol::manifest::OperatorVerifyingKey;
use blindmatch_protocol::{BlindedTable, TableId};

use crate::ClientError;

/// A directory of cached tables.
#[derive(Clone, Debug)]
pub struct TableCache {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
    move |source| ClientError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

impl TableCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TableCache { dir: dir.into() }
    }

    /// The default location: `$XDG_CACHE_HOME/blindmatch`, else
    /// `$HOME/.cache/blindmatch`, else `./.blindmatch-cache`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(d).join("blindmatch");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(h).join(".cache").join("blindmatch");
        }
        PathBuf::from(".blindmatch-cache")
    }

    fn path(&self, id: &TableId, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", hex::encode(id.0)))
    }

    fn manifest_path(&self, operator: &OperatorVerifyingKey) -> PathBuf {
        self.dir
            .join(format!("manifest-{}", hex::encode(operator.to_bytes())))
    }

    /// The history of manifests verified under `operator` (its newest
    /// one): empty if there is none, or if the record does not verify
    /// (damaged: the server's next manifest starts a new one).
    ///
    /// # Errors
    /// [`ClientError::Cache`] if it exists but cannot be read.
    pub fn history(&self, operator: &OperatorVerifyingKey) -> Result<History, ClientError> {
        let path = self.manifest_path(operator);
        match fs::read(&path) {
            Ok(b) => {
                Ok(History::restore(*operator, &b).unwrap_or_else(|_| History::new(*operator)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::new(*operator)),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Saves `history` as the record for its operator key.
    ///
    /// # Errors
    /// [`ClientError::Cache`].
    pub(crate) fn save_history(&self, history: &History) -> Result<(), ClientError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        write_atomic(
            &self.manifest_path(history.operator()),
            &[&history.encode()],
        )
    }

    /// Removes the cached table with id `id`, if there is one.
    ///
    /// # Errors
    /// [`ClientError::Cache`].
    pub(crate) fn remove(&self, id: &TableId) -> Result<(), ClientError> {
        let old = self.path(id, "table");
        match fs::remove_file(&old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&old)(e)),
            _ => Ok(()),
        }
    }

    /// The cached table with id `id`, if a valid one is there. A file that
    /// does not decode to exactly that table is deleted.
    ///
    /// # Errors
    /// [`ClientError::Cache`] if the file exists but cannot be read or removed.
    pub fn load(&self, id: &TableId) -> Result<Option<BlindedTable>, ClientError> {
        let path = self.path(id, "table");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        match BlindedTable::decode_owned(bytes) {
            Ok(t) if t.id() == id => Ok(Some(t)),
            _ => {
                fs::remove_file(&path).map_err(io_err(&path))?;
                Ok(None)
            }
        }
    }

    /// Stores a verified table (atomically: a temporary file, then rename).
    ///
    /// # Errors
    /// [`ClientError::Cache`].
    pub fn store(&self, table: &BlindedTable) -> Result<(), ClientError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        // Header and slots written one after the other: `encode()` would
        // copy the whole table once more, at the client's peak of memory.
        write_atomic(
            &self.path(table.id(), "table"),
            &[&table.header().encode(), table.slots()],
        )
    }

    /// Opens (or starts) the partial download of `manifest`'s table.
    ///
    /// # Errors
    /// [`ClientError::Cache`].
    pub(crate) fn open_partial(&self, manifest: &VerifiedManifest) -> Result<Partial, ClientError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.path(manifest.table_id(), "partial");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut existing = Vec::new();
        file.read_to_end(&mut existing).map_err(io_err(&path))?;
        // Keep whole chunks only (a download resumes at a chunk); a file
        // longer than the table is not ours.
        let keep = if existing.len() as u64 > manifest.header().slots_len() {
            0
        } else {
            TableDownload::resumable(existing.len())
        };
        if keep != existing.len() {
            existing.truncate(keep);
            file.set_len(keep as u64).map_err(io_err(&path))?;
        }
        Ok(Partial {
            path,
            file,
            existing,
        })
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename.
fn write_atomic(path: &Path, parts: &[&[u8]]) -> Result<(), ClientError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    for bytes in parts {
        f.write_all(bytes).map_err(io_err(&tmp))?;
    }
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// A partial download on disk.
pub(crate) struct Partial {
    path: PathBuf,
    file: File,
    existing: Vec<u8>,
}

impl Partial {
    /// The bytes an earlier attempt kept.
    pub(crate) fn take_existing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.existing)
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.file.write_all(bytes).map_err(io_err(&self.path))
    }

    pub(crate) fn sync(&mut self) -> Result<(), ClientError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    pub(crate) fn remove(self) -> Result<(), ClientError> {
        drop(self.file);
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&self.path)(e)),
            _ => Ok(()),
        }
    }
}
