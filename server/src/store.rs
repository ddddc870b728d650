//! The store: one SQLite database in the data directory.
//!
//! - `pending` holds every acknowledged voucher until it has been evaluated:
//!   a submission is acknowledged only after its vouchers are committed here.
//! - `matches` holds the match records: the item, its associated data, the
//!   entry, the time and the submission they came in.
//!
//! Evaluating a voucher deletes its `pending` row in the same transaction
//! that inserts its match record (if any), so after a crash every voucher is
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
    voucher_index    INTEGER NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    table_id         TEXT    NOT NULL,
    voucher          BLOB    NOT NULL
);
";

/// A voucher stored but not yet evaluated.
#[derive(Debug, Clone)]
pub struct PendingVoucher {
    /// Row id in `pending`.
    pub row: i64,
    /// The submission it came in.
    pub submission_id: String,
    /// Its position in the submission.
    pub voucher_index: u32,
    /// When the submission was received.
    pub received_at_ms: i64,
    /// The table it was made for (hex).
    pub table_id: String,
    /// The encoded voucher.
    pub voucher: Vec<u8>,
}

/// One evaluated voucher: its pending row, and its match if it matched.
pub struct Evaluated<'a> {
    /// The pending row to delete.
    pub row: i64,
    /// The match to record.
    pub matched: Option<(&'a PendingVoucher, &'a Match)>,
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

    /// Stores vouchers as pending, all in one transaction (one fsync for
    /// every submission in the call: group commit), and returns them with
    /// their row ids.
    ///
    /// # Errors
    /// On a database error (disk full, read-only directory); nothing is
    /// stored then.
    pub fn ingest(&mut self, vouchers: Vec<PendingVoucher>) -> anyhow::Result<Vec<PendingVoucher>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(vouchers.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO pending (submission_id, voucher_index, received_at_ms, table_id, voucher)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for mut v in vouchers {
                stmt.execute(params![
                    v.submission_id,
                    v.voucher_index,
                    v.received_at_ms,
                    v.table_id,
                    v.voucher
                ])?;
                v.row = tx.last_insert_rowid();
                out.push(v);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records evaluated vouchers: inserts the matches and deletes the
    /// pending rows, in one transaction.
    ///
    /// # Errors
    /// On a database error; the vouchers then stay pending and are evaluated
    /// again after a restart.
    pub fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
            for e in evaluated {
                if let Some((v, m)) = e.matched {
                    insert.execute(params![
                        v.submission_id,
                        v.voucher_index,
                        v.received_at_ms,
                        v.table_id,
                        m.entry,
                        m.item.item_type().name(),
                        m.item.to_hex(),
                        m.associated_data,
                    ])?;
                }
                delete.execute(params![e.row])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every pending voucher, oldest first: what a restart must evaluate.
    ///
    /// # Errors
    /// On a database error.
    pub fn pending(&self) -> anyhow::Result<Vec<PendingVoucher>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, submission_id, voucher_index, received_at_ms, table_id, voucher FROM pending ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PendingVoucher {
                row: r.get(0)?,
                submission_id: r.get(1)?,
                voucher_index: r.get(2)?,
                received_at_ms: r.get(3)?,
                table_id: r.get(4)?,
                voucher: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
