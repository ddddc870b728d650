//! The store: one SQLite database in the data directory.
//!
//! - `pending` holds every acknowledged submission (one row, its vouchers
//!   concatenated) until it has been evaluated: a submission is acknowledged
//!   only after it is committed here.
//! - `matches` holds the match records: the item, its associated data, the
//!   entry, the time and the submission they came in. They are kept for the
//!   configured retention (forever by default).
//! - `submissions` remembers the id and digest of every submission a client
//!   named, for the dedup window, so that a retried batch is stored once.
//!
//! Recording a submission's results deletes its `pending` row in the same
//! transaction that inserts its match records (if any), so after a crash
//! every voucher is evaluated and recorded exactly once and a non-matching
//! voucher leaves no trace. The pipeline records on a timer, many
//! submissions at a time (the harvest), never right after one is evaluated.
//! Writes are transactions in WAL mode with `synchronous = FULL`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use blindmatch_protocol::Match;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "matches.sqlite3";

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS matches (
    id               INTEGER PRIMARY KEY,
    submission_id    TEXT    NOT NULL,
    voucher_index    INTEGER NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    table_id         TEXT    NOT NULL,
    entry            INTEGER NOT NULL,
    item_type        TEXT    NOT NULL,
    item_hex         TEXT    NOT NULL,
    associated_data  BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS matches_by_time ON matches (received_at_ms);
CREATE TABLE IF NOT EXISTS pending (
    id               INTEGER PRIMARY KEY,
    submission_id    TEXT    NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    table_id         TEXT    NOT NULL,
    voucher_count    INTEGER NOT NULL,
    voucher_len      INTEGER NOT NULL,
    vouchers         BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id    TEXT    PRIMARY KEY,
    digest           BLOB    NOT NULL,
    received_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS submissions_by_time ON submissions (received_at_ms);
";

/// Why the store could not write. The service turns these into statuses:
/// `Full` is RESOURCE_EXHAUSTED, the others UNAVAILABLE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk is full, or the database reached `--max-store-mib`.
    #[error("the match store is full (disk full or --max-store-mib reached)")]
    Full,
    /// The data directory or database is read-only.
    #[error("the match store is read-only")]
    ReadOnly,
    /// Any other database or I/O failure.
    #[error("the match store failed: {0}")]
    Failed(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full,
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            _ => StoreError::Failed(e.to_string()),
        }
    }
}

/// A submission to store, and the digest that identifies its content when
/// the client named it (`None`: the server chose the id, no dedup).
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// The submission (`row` is ignored).
    pub submission: PendingSubmission,
    /// Digest of the batch, for a client-chosen id.
    pub digest: Option<[u8; 32]>,
}

/// What storing one submission came to.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// Stored now, with its row id: evaluate it.
    Stored(PendingSubmission),
    /// The same id and content were stored before: a retry. Acknowledge it
    /// again; store and evaluate nothing.
    Duplicate,
    /// The id was stored before with different content.
    Conflict,
}

/// Row counts and size, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Submissions acknowledged and not yet evaluated.
    pub pending: u64,
    /// Submission ids remembered for dedup.
    pub remembered_ids: u64,
    /// Match records.
    pub matches: u64,
    /// Database pages in use or free.
    pub page_count: u64,
    /// Free pages (reused before the file grows).
    pub freelist_count: u64,
}

/// A submission stored but not yet evaluated: one row, its vouchers
/// concatenated (they all have the table's voucher length), so storing and
/// retiring a batch of 64 costs two row operations, not 128.
#[derive(Debug, Clone)]
pub struct PendingSubmission {
    /// Row id in `pending`.
    pub row: i64,
    /// The submission id.
    pub submission_id: String,
    /// When it was received.
    pub received_at_ms: i64,
    /// The table its vouchers were made for (hex).
    pub table_id: String,
    /// The encoded vouchers.
    pub vouchers: Vec<Vec<u8>>,
}

/// One evaluated submission: its pending row, and its matches by voucher index.
pub struct Evaluated<'a> {
    /// The submission.
    pub submission: &'a PendingSubmission,
    /// Its matches: (voucher index, match).
    pub matches: Vec<(u32, &'a Match)>,
}

/// One recorded match.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchRecord {
    /// Row id.
    pub id: i64,
    /// The submission (one Submit call) the voucher came in.
    pub submission_id: String,
    /// The voucher's position in its submission.
    pub voucher_index: u32,
    /// When the submission was received, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The table the voucher was made for (hex).
    pub table_id: String,
    /// The list entry (index in the deduplicated list the table was built from).
    pub entry: u32,
    /// Item type name.
    pub item_type: String,
    /// Item value, hex.
    pub item_hex: String,
    /// The client's associated data.
    #[serde(serialize_with = "serialize_ad")]
    pub associated_data: Vec<u8>,
}

fn serialize_ad<S: serde::Serializer>(ad: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(ad))
}

impl MatchRecord {
    /// The receive time as RFC 3339 (UTC, milliseconds).
    pub fn received_at(&self) -> String {
        let t = UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(self.received_at_ms).unwrap_or(0));
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The writable store.
pub struct MatchStore {
    conn: Connection,
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

impl MatchStore {
    /// Opens (creating if needed) the store in `dir`. With `max_bytes`, the
    /// database refuses to grow past that size (`PRAGMA max_page_count`): a
    /// write that would need more fails as [`StoreError::Full`], exactly as
    /// on a full disk, and succeeds again once evaluated submissions have
    /// freed their pages.
    ///
    /// # Errors
    /// If the directory or database cannot be created or opened, or was
    /// written by a newer version.
    pub fn open(dir: &Path, max_bytes: Option<u64>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("data directory {}", dir.display()))?;
        let path = db_path(dir);
        let context = || format!("match database {}", path.display());
        let conn = Connection::open(&path).with_context(context)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .with_context(context)?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "match database {} has schema version {version}, newer than this server's {SCHEMA_VERSION}",
                path.display()
            );
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(context)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .with_context(context)?;
        // After a checkpoint, truncate the write-ahead log back to 64 MiB: a
        // burst must not leave a large file behind.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)
            .with_context(context)?;
        // Deleted rows (evaluated vouchers are user data) are zeroed in their
        // page, at no extra I/O.
        conn.pragma_update(None, "secure_delete", "FAST")
            .with_context(context)?;
        conn.execute_batch(SCHEMA).with_context(context)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .with_context(context)?;
        if let Some(max) = max_bytes {
            let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages = i64::try_from(max).unwrap_or(i64::MAX) / page.max(1);
            conn.pragma_update(None, "max_page_count", pages.max(1))?;
        }
        Ok(MatchStore { conn })
    }

    /// Stores submissions as pending, all in one transaction (one fsync for
    /// every submission in the call: group commit). A submission whose
    /// client-chosen id was stored before is not stored again: it comes back
    /// as [`Ingested::Duplicate`] (same digest) or [`Ingested::Conflict`].
    ///
    /// # Errors
    /// On a database error (disk full, read-only directory); nothing is
    /// stored then.
    pub fn ingest(&mut self, submissions: Vec<NewSubmission>) -> Result<Vec<Ingested>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(submissions.len());
        {
            let mut remember = tx.prepare_cached(
                "INSERT INTO submissions (submission_id, digest, received_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            let mut known =
                tx.prepare_cached("SELECT digest FROM submissions WHERE submission_id = ?1")?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO pending (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for NewSubmission {
                submission: mut s,
                digest,
            } in submissions
            {
                if let Some(digest) = digest {
                    let new = remember.execute(params![
                        s.submission_id,
                        &digest[..],
                        s.received_at_ms
                    ])? == 1;
                    if !new {
                        let stored: Option<Vec<u8>> = known
                            .query_row(params![s.submission_id], |r| r.get(0))
                            .optional()?;
                        out.push(if stored.as_deref() == Some(&digest[..]) {
                            Ingested::Duplicate
                        } else {
                            Ingested::Conflict
                        });
                        continue;
                    }
                }
                let len = s.vouchers.first().map_or(0, Vec::len);
                if s.vouchers.iter().any(|v| v.len() != len) {
                    return Err(StoreError::Failed(
                        "vouchers of one submission differ in length".into(),
                    ));
                }
                stmt.execute(params![
                    s.submission_id,
                    s.received_at_ms,
                    s.table_id,
                    i64::try_from(s.vouchers.len()).unwrap_or(i64::MAX),
                    i64::try_from(len).unwrap_or(i64::MAX),
                    s.vouchers.concat()
                ])?;
                s.row = tx.last_insert_rowid();
                out.push(Ingested::Stored(s));
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Deletes match records received before `matches_before` (if given),
    /// and forgets submission ids received before `ids_before` unless their
    /// submission is still pending. Returns (matches, ids) deleted.
    ///
    /// # Errors
    /// On a database error; nothing is deleted then.
    pub fn prune(
        &mut self,
        matches_before: Option<i64>,
        ids_before: i64,
    ) -> Result<(usize, usize), StoreError> {
        let tx = self.conn.transaction()?;
        let matches = match matches_before {
            Some(t) => tx.execute("DELETE FROM matches WHERE received_at_ms < ?1", [t])?,
            None => 0,
        };
        let ids = tx.execute(
            "DELETE FROM submissions WHERE received_at_ms < ?1
             AND submission_id NOT IN (SELECT submission_id FROM pending)",
            [ids_before],
        )?;
        tx.commit()?;
        Ok((matches, ids))
    }

    /// Records evaluated submissions: inserts their matches and deletes their
    /// pending rows, in one transaction.
    ///
    /// # Errors
    /// On a database error; the submissions then stay pending and are
    /// evaluated again after a restart.
    pub fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
            for e in evaluated {
                let s = e.submission;
                for (index, m) in &e.matches {
                    insert.execute(params![
                        s.submission_id,
                        index,
                        s.received_at_ms,
                        s.table_id,
                        m.entry,
                        m.item.item_type().name(),
                        m.item.to_hex(),
                        m.associated_data,
                    ])?;
                }
                delete.execute(params![s.row])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every pending submission, oldest first: what a restart must evaluate.
    ///
    /// # Errors
    /// On a database error, or a row whose vouchers do not add up.
    pub fn pending(&self) -> anyhow::Result<Vec<PendingSubmission>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers FROM pending ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let count: i64 = r.get(4)?;
            let len: i64 = r.get(5)?;
            let blob: Vec<u8> = r.get(6)?;
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, count, len, blob))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (row, submission_id, received_at_ms, table_id, count, len, blob): (
                i64,
                String,
                i64,
                String,
                i64,
                i64,
                Vec<u8>,
            ) = row?;
            let (count, len) = (usize::try_from(count)?, usize::try_from(len)?);
            if count.checked_mul(len) != Some(blob.len()) || (count > 0 && len == 0) {
                anyhow::bail!(
                    "pending submission {submission_id}: {count} vouchers of {len} bytes do not fill {} bytes",
                    blob.len()
                );
            }
            out.push(PendingSubmission {
                row,
                submission_id,
                received_at_ms,
                table_id,
                vouchers: if len == 0 {
                    Vec::new()
                } else {
                    blob.chunks(len).map(<[u8]>::to_vec).collect()
                },
            });
        }
        Ok(out)
    }
}

fn read_only(dir: &Path) -> anyhow::Result<Connection> {
    let path = db_path(dir);
    Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(|| {
        format!(
            "match database {} (has `serve` run with this --data?)",
            path.display()
        )
    })
}

/// Row counts and size of the store in `dir`, read without writing.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn stats(dir: &Path) -> anyhow::Result<StoreStats> {
    let conn = read_only(dir)?;
    let count = |sql: &str| -> anyhow::Result<u64> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(StoreStats {
        pending: count("SELECT count(*) FROM pending")?,
        remembered_ids: count("SELECT count(*) FROM submissions")?,
        matches: count("SELECT count(*) FROM matches")?,
        page_count: count("PRAGMA page_count")?,
        freelist_count: count("PRAGMA freelist_count")?,
    })
}

/// Reads every recorded match, oldest first, without writing to the store.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<MatchRecord>> {
    let conn = read_only(dir)?;
    let mut stmt = conn.prepare(
        "SELECT id, submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data
         FROM matches ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MatchRecord {
            id: r.get(0)?,
            submission_id: r.get(1)?,
            voucher_index: r.get(2)?,
            received_at_ms: r.get(3)?,
            table_id: r.get(4)?,
            entry: r.get(5)?,
            item_type: r.get(6)?,
            item_hex: r.get(7)?,
            associated_data: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindmatch_protocol::{Item, ItemType};

    fn submission(store: &mut MatchStore, id: &str, n: usize) -> PendingSubmission {
        let out = store
            .ingest(vec![NewSubmission {
                submission: PendingSubmission {
                    row: 0,
                    submission_id: id.into(),
                    received_at_ms: now_ms(),
                    table_id: "t".into(),
                    vouchers: vec![vec![7u8; 1397]; n],
                },
                digest: None,
            }])
            .unwrap();
        match out.into_iter().next() {
            Some(Ingested::Stored(s)) => s,
            _ => panic!("not stored"),
        }
    }

    /// One harvest records submissions with and without matches: exactly
    /// their matches, and no pending row left; a restart has nothing to
    /// evaluate again.
    #[test]
    fn a_harvest_records_exactly_the_matches_and_leaves_nothing_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = MatchStore::open(dir.path(), None).unwrap();
        let none = submission(&mut store, "none", 3);
        let all = submission(&mut store, "all", 3);
        let matches: Vec<Match> = (1..=3u8)
            .map(|i| Match {
                item: Item::new(ItemType::Sha256, &[i; 32]).unwrap(),
                associated_data: vec![i; 100],
                entry: u32::from(i) * 1000,
                position: i % 3,
            })
            .collect();
        assert_eq!(store.pending().unwrap().len(), 2);
        store
            .complete(&[
                Evaluated {
                    submission: &none,
                    matches: Vec::new(),
                },
                Evaluated {
                    submission: &all,
                    matches: matches
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (u32::try_from(i).unwrap(), m))
                        .collect(),
                },
            ])
            .unwrap();
        let records = read_all(dir.path()).unwrap();
        assert_eq!(records.len(), 3);
        for (r, m) in records.iter().zip(&matches) {
            assert_eq!(
                (r.submission_id.as_str(), r.entry, &r.associated_data),
                ("all", m.entry, &m.associated_data)
            );
        }
        assert!(store.pending().unwrap().is_empty());
        assert_eq!(stats(dir.path()).unwrap().pending, 0);
    }
}
