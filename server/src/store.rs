//! The store: one SQLite database in the data directory.
//!
//! - `pending` holds every acknowledged submission (one row, its vouchers
//!   concatenated) until it has been evaluated: a submission is acknowledged
//!   only after it is committed here.
//! - `matches` holds the match records: the item, its associated data, the
//!   entry, the time and the submission they came in.
//!
//! Evaluating a submission deletes its `pending` row in the same transaction
//! that inserts its match records (if any), so after a crash every voucher is
//! evaluated exactly once and a non-matching voucher leaves no trace. Writes
//! are transactions in WAL mode with `synchronous = FULL`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use blindmatch_protocol::Match;
use rusqlite::{Connection, OpenFlags, params};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "matches.sqlite3";

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
";

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
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// # Errors
    /// If the directory or database cannot be created or opened.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("data directory {}", dir.display()))?;
        let path = db_path(dir);
        let conn = Connection::open(&path)
            .with_context(|| format!("match database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("match database {}", path.display()))?;
        Ok(MatchStore { conn })
    }

    /// Stores submissions as pending, all in one transaction (one fsync for
    /// every submission in the call: group commit), and returns them with
    /// their row ids.
    ///
    /// # Errors
    /// On a database error (disk full, read-only directory); nothing is
    /// stored then.
    pub fn ingest(
        &mut self,
        submissions: Vec<PendingSubmission>,
    ) -> anyhow::Result<Vec<PendingSubmission>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(submissions.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO pending (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for mut s in submissions {
                let len = s.vouchers.first().map_or(0, Vec::len);
                if s.vouchers.iter().any(|v| v.len() != len) {
                    anyhow::bail!("vouchers of one submission differ in length");
                }
                stmt.execute(params![
                    s.submission_id,
                    s.received_at_ms,
                    s.table_id,
                    i64::try_from(s.vouchers.len())?,
                    i64::try_from(len)?,
                    s.vouchers.concat()
                ])?;
                s.row = tx.last_insert_rowid();
                out.push(s);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records evaluated submissions: inserts their matches and deletes their
    /// pending rows, in one transaction.
    ///
    /// # Errors
    /// On a database error; the submissions then stay pending and are
    /// evaluated again after a restart.
    pub fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> anyhow::Result<()> {
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

/// Reads every recorded match, oldest first, without writing to the store.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<MatchRecord>> {
    let path = db_path(dir);
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(
        || {
            format!(
                "match database {} (has `serve` run with this --data?)",
                path.display()
            )
        },
    )?;
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
