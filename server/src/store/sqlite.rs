//! The default store: one SQLite database in the data directory, written by
//! one server process at a time (it holds an exclusive `flock` on the
//! database file while open, so a second `serve` on the same `--data` is
//! refused, not interleaved; SQLite's own locks are POSIX record locks, which
//! `flock` does not touch).
//!
//! - `pending` holds every acknowledged submission (one row, its vouchers
//!   concatenated) until it has been evaluated, with the replica that
//!   claimed it.
//! - `matches` holds the match records: the item, its associated data, the
//!   entry, the time and the submission they came in. They are kept for the
//!   configured retention (forever by default).
//! - `submissions` remembers the id and digest of every submission a client
//!   named, for the dedup window, so that a retried batch is stored once.
//! - `candidates` holds threshold mode's candidates (SPEC 14.9): per
//!   account and t, one share encoding per x, with the table and box it
//!   opened under and where it came from, and its state.
//! - `replicas` holds the heartbeat of the process that has the store open,
//!   and `versions` the table versions it published (the same tables as the
//!   PostgreSQL store, so that one conformance suite covers both).
//! - `feed_cursors` holds the webhook's cursor: the last record its
//!   receiver acknowledged.
//!
//! Writes are transactions in WAL mode with `synchronous = FULL`.
//!
//! The match feed ([`SqliteFeed`]) is a connection of its own (read-only
//! for `matches --follow`). Its cursor is the record id: one process writes,
//! so ids are handed out in commit order, and `AUTOINCREMENT` keeps them
//! from being reused once the newest record has been pruned.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params};

use super::{
    Account, AccountSummary, CandidateState, Cursor, Evaluated, Feed, FeedRecord, Findings,
    Ingested, MatchRecord, NewSubmission, PendingSubmission, Pruned, Published, Receipt, Replica,
    Store, StoreError, StoreStats, StoredCandidate, Verdict, millis, now_ms,
};

/// File name of the database in the data directory.
pub const DB_FILE: &str = "matches.sqlite3";

/// Bytes of pages in the write-ahead log that start a checkpoint: the size
/// `journal_size_limit` truncates the log back to.
const WAL_AUTOCHECKPOINT_BYTES: i64 = 64 << 20;
/// The page size of a new database.
const PAGE_SIZE: i64 = 16 << 10;

/// The schema, one migration per version (`PRAGMA user_version` is the
/// number applied). A database of a newer version is refused.
const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    "
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
",
    // 2: claims, heartbeats and published versions (the replica store).
    "
ALTER TABLE pending ADD COLUMN claimed_by TEXT;
CREATE INDEX pending_by_claim ON pending (claimed_by);
CREATE TABLE replicas (
    replica_id       TEXT    PRIMARY KEY,
    heartbeat_ms     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE versions (
    table_id         TEXT    PRIMARY KEY,
    version          INTEGER NOT NULL,
    published_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
",
    // 3: threshold mode (SPEC 14.9): the account of a submission and of a
    // match, and the candidates.
    "
ALTER TABLE pending ADD COLUMN account BLOB;
ALTER TABLE matches ADD COLUMN account BLOB;
CREATE TABLE candidates (
    id               INTEGER PRIMARY KEY,
    account          BLOB    NOT NULL,
    t                INTEGER NOT NULL,
    x                INTEGER NOT NULL,
    state            INTEGER NOT NULL,
    submission_id    TEXT    NOT NULL,
    voucher_index    INTEGER NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    table_id         TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    share            BLOB    NOT NULL,
    UNIQUE (account, t, x)
);
CREATE INDEX candidates_new ON candidates (account, t) WHERE state = 0;
CREATE INDEX candidates_by_time ON candidates (received_at_ms);
",
    // 4: the match feed. Record ids become AUTOINCREMENT: without it SQLite
    // gives the next record max(id) + 1, so once the newest records had
    // been pruned an id a reader already passed would be handed out again
    // and its record never read. Records get the time they were recorded
    // (NULL for the older ones). The webhook's cursor.
    "
CREATE TABLE matches_v4 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id    TEXT    NOT NULL,
    voucher_index    INTEGER NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    table_id         TEXT    NOT NULL,
    entry            INTEGER NOT NULL,
    item_type        TEXT    NOT NULL,
    item_hex         TEXT    NOT NULL,
    associated_data  BLOB    NOT NULL,
    account          BLOB,
    recorded_at_ms   INTEGER DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
INSERT INTO matches_v4 (id, submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account, recorded_at_ms)
    SELECT id, submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account, NULL
    FROM matches;
DROP TABLE matches;
ALTER TABLE matches_v4 RENAME TO matches;
CREATE INDEX matches_by_time ON matches (received_at_ms);
CREATE TABLE feed_cursors (
    name             TEXT    PRIMARY KEY,
    after_id         INTEGER NOT NULL
) WITHOUT ROWID;
",
];

/// The schema version this code writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full,
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            _ => StoreError::Failed(e.to_string()),
        }
    }
}

/// The writable SQLite store.
pub struct SqliteStore {
    conn: Connection,
    replica: Replica,
    /// Held while open: one writing process per data directory.
    _lock: std::fs::File,
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, migrating an older
    /// schema. With `max_bytes`, the database refuses to grow past that
    /// size (`PRAGMA max_page_count`): a write that would need more fails
    /// as [`StoreError::Full`], exactly as on a full disk, and succeeds again
    /// once evaluated submissions have freed their pages.
    ///
    /// The process that opens the store is its only writer, so every claim
    /// left by an earlier process is void: its pending work is claimable
    /// at once.
    ///
    /// # Errors
    /// If the directory or database cannot be created or opened, another
    /// process has it open, or it was written by a newer version.
    pub fn open(dir: &Path, max_bytes: Option<u64>, replica: Replica) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("data directory {}", dir.display()))?;
        let path = db_path(dir);
        let context = || format!("match database {}", path.display());
        // An empty file is a new database to SQLite.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(context)?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "match database {} is in use by another blindmatch-server; \
                 one SQLite store has one server: run replicas on PostgreSQL (--store postgres://…)",
                path.display()
            )
        })?;
        let mut conn = Connection::open(&path).with_context(context)?;
        // A new database gets 16 KiB pages (SQLite's default is 4 KiB; an
        // existing database keeps its own): a submission's row is one blob
        // of its vouchers (about 90 KB for 64), which takes a quarter of the
        // overflow pages, log frames and writes it would at 4 KiB. Measured
        // (papers/bench/profile-e2e.md): about 2 CPU-µs less per voucher.
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .with_context(context)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(context)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .with_context(context)?;
        // After a checkpoint, truncate the write-ahead log back to 64 MiB: a
        // burst must not leave a large file behind.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)
            .with_context(context)?;
        // Checkpoint once the log holds 64 MiB of pages, not SQLite's 1,000
        // pages. A pending row lives well under a second and its pages are
        // reused by the next rows, so between two checkpoints the same pages
        // are written to the log many times over; a checkpoint copies only
        // each page's last version into the database, and the rarer it is,
        // the fewer copies it makes. Durability is the log's (each commit is
        // flushed to it); what grows is the log's file on disk. Measured
        // (papers/bench/profile-e2e.md): about 2 CPU-µs less per voucher.
        let page: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .with_context(context)?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            WAL_AUTOCHECKPOINT_BYTES / page.max(1),
        )
        .with_context(context)?;
        // Deleted rows (evaluated vouchers are user data) are zeroed in their
        // page, at no extra I/O.
        conn.pragma_update(None, "secure_delete", "FAST")
            .with_context(context)?;
        migrate(&mut conn).with_context(context)?;
        if let Some(max) = max_bytes {
            let pages = i64::try_from(max).unwrap_or(i64::MAX) / page.max(1);
            conn.pragma_update(None, "max_page_count", pages.max(1))?;
        }
        conn.execute("DELETE FROM replicas", [])
            .with_context(context)?;
        let mut store = SqliteStore {
            conn,
            replica,
            _lock: lock,
        };
        store.heartbeat().with_context(context)?;
        Ok(store)
    }
}

/// Applies the migrations this database lacks, each in its own transaction
/// with its version number.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "schema version {version} is newer than this server's {SCHEMA_VERSION}: run the newer server, or restore a backup"
        );
    }
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version)?)
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration to schema version {}", n + 1))?;
        tx.pragma_update(None, "user_version", i64::try_from(n + 1)?)?;
        tx.commit()?;
        if version > 0 {
            tracing::info!(from = version, to = n + 1, "store schema migrated");
        }
    }
    Ok(())
}

fn published(tx: &Connection) -> Result<Vec<Published>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT table_id, version, published_at_ms FROM versions ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let version: i64 = r.get(1)?;
        Ok(Published {
            table_id: r.get(0)?,
            version: u64::try_from(version).unwrap_or(0),
            published_at_ms: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn ingest_one(
    tx: &Transaction<'_>,
    replica: &str,
    new: &NewSubmission<'_>,
) -> Result<Ingested, StoreError> {
    let r = new.receipt;
    if let Some(digest) = new.digest {
        let fresh = tx
            .prepare_cached(
                "INSERT INTO submissions (submission_id, digest, received_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![r.submission_id, &digest[..], r.received_at_ms])?
            == 1;
        if !fresh {
            let stored: Option<Vec<u8>> = tx
                .prepare_cached("SELECT digest FROM submissions WHERE submission_id = ?1")?
                .query_row(params![r.submission_id], |r| r.get(0))
                .optional()?;
            return Ok(if stored.as_deref() == Some(&digest[..]) {
                Ingested::Duplicate
            } else {
                Ingested::Conflict
            });
        }
    }
    let (blob, len) = new.concat()?;
    tx.prepare_cached(
        "INSERT INTO pending (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, claimed_by, account)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.submission_id,
        r.received_at_ms,
        r.table_id,
        i64::try_from(new.vouchers.len()).unwrap_or(i64::MAX),
        i64::try_from(len).unwrap_or(i64::MAX),
        blob,
        replica,
        new.account,
    ])?;
    Ok(Ingested::Stored {
        row: tx.last_insert_rowid(),
    })
}

impl Store for SqliteStore {
    fn ingest(&mut self, submissions: &[NewSubmission<'_>]) -> Result<Vec<Ingested>, StoreError> {
        let tx = self.conn.transaction()?;
        let out = submissions
            .iter()
            .map(|s| ingest_one(&tx, &self.replica.id, s))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(out)
    }

    fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> Result<Vec<i64>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut recorded = Vec::with_capacity(evaluated.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM pending WHERE id = ?1")?;
            let mut candidate = tx.prepare_cached(
                "INSERT INTO candidates (account, t, x, state, submission_id, voucher_index, received_at_ms, table_id, position, share)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (account, t, x) DO NOTHING",
            )?;
            for e in evaluated {
                // Still pending: this call records it. Gone: another
                // replica recorded it first, and these results are dropped.
                if delete.execute(params![e.row])? == 0 {
                    continue;
                }
                recorded.push(e.row);
                let r = e.receipt;
                match e.findings {
                    Findings::Matches(matches) => {
                        for (index, m) in matches {
                            insert.execute(params![
                                r.submission_id,
                                index,
                                r.received_at_ms,
                                r.table_id,
                                m.entry,
                                m.item.item_type().name(),
                                m.item.to_hex(),
                                m.associated_data,
                            ])?;
                        }
                    }
                    Findings::Candidates {
                        account,
                        t,
                        candidates,
                    } => {
                        for c in candidates {
                            candidate.execute(params![
                                account,
                                t,
                                i64::try_from(c.x).unwrap_or(i64::MAX),
                                r.submission_id,
                                c.voucher_index,
                                r.received_at_ms,
                                r.table_id,
                                c.position,
                                c.share,
                            ])?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(recorded)
    }

    fn claim(
        &mut self,
        tables: &[String],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError> {
        let tx = self.conn.transaction()?;
        let live_since = now_ms().saturating_sub(millis(self.replica.lease));
        let claimed = {
            let mut stmt = tx.prepare_cached(
                "UPDATE pending SET claimed_by = ?1
                 WHERE id IN (
                     SELECT p.id FROM pending p
                     WHERE p.table_id IN (SELECT value FROM json_each(?2))
                       AND p.claimed_by IS NOT ?1
                       AND NOT EXISTS (SELECT 1 FROM replicas r
                                       WHERE r.replica_id = p.claimed_by AND r.heartbeat_ms >= ?3)
                     ORDER BY p.id LIMIT ?4)
                 RETURNING id, submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, account",
            )?;
            read_pending(
                &mut stmt,
                params![self.replica.id, json(tables)?, live_since, sql_limit(limit)],
            )?
        };
        tx.commit()?;
        Ok(claimed)
    }

    fn reclaim(
        &mut self,
        tables: &[String],
        held: &[i64],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, account
             FROM pending
             WHERE claimed_by = ?1
               AND table_id IN (SELECT value FROM json_each(?2))
               AND id NOT IN (SELECT value FROM json_each(?3))
             ORDER BY id LIMIT ?4",
        )?;
        read_pending(
            &mut stmt,
            params![
                self.replica.id,
                json(tables)?,
                json(held)?,
                sql_limit(limit)
            ],
        )
    }

    fn heartbeat(&mut self) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO replicas (replica_id, heartbeat_ms) VALUES (?1, ?2)
                 ON CONFLICT (replica_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
            )?
            .execute(params![self.replica.id, now_ms()])?;
        Ok(())
    }

    fn leave(&mut self) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM replicas WHERE replica_id = ?1",
            [&self.replica.id],
        )?;
        Ok(())
    }

    fn prune(
        &mut self,
        matches_before: Option<i64>,
        ids_before: i64,
    ) -> Result<Option<Pruned>, StoreError> {
        // One writer: the lock is the store's own.
        let tx = self.conn.transaction()?;
        let matches = match matches_before {
            Some(t) => {
                // Candidates are kept as long as match records: an account's
                // count below the threshold restarts once they age out.
                tx.execute("DELETE FROM candidates WHERE received_at_ms < ?1", [t])?;
                tx.execute("DELETE FROM matches WHERE received_at_ms < ?1", [t])?
            }
            None => 0,
        };
        let ids = tx.execute(
            "DELETE FROM submissions WHERE received_at_ms < ?1
             AND submission_id NOT IN (SELECT submission_id FROM pending)",
            [ids_before],
        )?;
        tx.commit()?;
        Ok(Some(Pruned { matches, ids }))
    }

    fn publish(&mut self, table_id: &str, version: u64) -> Result<Vec<Published>, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO versions (table_id, version, published_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![
                table_id,
                i64::try_from(version).unwrap_or(i64::MAX),
                now_ms()
            ],
        )?;
        let out = published(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn versions(&mut self) -> Result<Vec<Published>, StoreError> {
        published(&self.conn)
    }

    fn stats(&mut self) -> Result<StoreStats, StoreError> {
        Ok(count(&self.conn)?)
    }

    fn pending(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM pending")?
            .query_row([], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn unexamined(&mut self, limit: usize) -> Result<Vec<Account>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT account, t FROM candidates WHERE state = 0 GROUP BY account, t ORDER BY min(id) LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(Account {
                id: r.get(0)?,
                t: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn candidates(&mut self, account: &Account) -> Result<Vec<StoredCandidate>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, share, table_id, position, state FROM candidates
             WHERE account = ?1 AND t = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![account.id, account.t], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u8>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, share, table_id, position, state) = row?;
            out.push(StoredCandidate {
                id,
                share,
                table_id,
                position,
                state: CandidateState::from_code(state)?,
            });
        }
        Ok(out)
    }

    fn settle(
        &mut self,
        account: &Account,
        verdicts: &[(i64, Verdict)],
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut inserted = 0;
        {
            // The account is in the condition too: a verdict never moves
            // another account's candidate.
            let mut hold = tx.prepare_cached(
                "UPDATE candidates SET state = 1 WHERE id = ?1 AND account = ?2 AND t = ?3 AND state = 0",
            )?;
            let mut resolve = tx.prepare_cached(
                "UPDATE candidates SET state = ?4 WHERE id = ?1 AND account = ?2 AND t = ?3 AND state IN (0, 1)",
            )?;
            let mut record = tx.prepare_cached(
                "INSERT INTO matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account)
                 SELECT submission_id, voucher_index, received_at_ms, table_id, ?2, ?3, ?4, ?5, account
                 FROM candidates WHERE id = ?1",
            )?;
            for (id, verdict) in verdicts {
                let changed = match verdict {
                    Verdict::Held => hold.execute(params![id, account.id, account.t])?,
                    v => resolve.execute(params![id, account.id, account.t, v.state().code()])?,
                };
                if let (1, Verdict::Real(m)) = (changed, verdict) {
                    inserted += record.execute(params![
                        id,
                        m.entry,
                        m.item.item_type().name(),
                        m.item.to_hex(),
                        m.associated_data,
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(inserted)
    }
}

/// SQLite has no array parameter: lists go in as JSON, read by `json_each`.
fn json<T: serde::Serialize>(values: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(values).map_err(|e| StoreError::Failed(format!("a query's list: {e}")))
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Runs a statement that returns pending rows (`id, submission_id,
/// received_at_ms, table_id, voucher_count, voucher_len, vouchers,
/// account`), oldest first.
fn read_pending(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<PendingSubmission>, StoreError> {
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Receipt {
                submission_id: r.get(1)?,
                received_at_ms: r.get(2)?,
                table_id: r.get(3)?,
            },
            (r.get::<_, i64>(4)?, r.get::<_, i64>(5)?),
            r.get::<_, Vec<u8>>(6)?,
            r.get::<_, Option<Vec<u8>>>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (row, receipt, shape, blob, account) = row?;
        out.push(PendingSubmission::from_row(
            row, receipt, account, shape, &blob,
        )?);
    }
    out.sort_by_key(|s| s.row);
    Ok(out)
}

/// A connection that only reads, to a database of this code's schema.
fn read_only(dir: &Path) -> anyhow::Result<Connection> {
    let path = db_path(dir);
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(
        || {
            format!(
                "match database {} (has `serve` run with this --data?)",
                path.display()
            )
        },
    )?;
    check_schema(&conn).with_context(|| format!("match database {}", path.display()))?;
    Ok(conn)
}

/// Readers need the schema this code writes: `serve` migrates at start.
fn check_schema(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => anyhow::bail!("no match store here (has `serve` run with this --data?)"),
        v if v < SCHEMA_VERSION => anyhow::bail!(
            "schema version {v} is older than this version's {SCHEMA_VERSION}: start this version's `serve` on it once (it migrates the store at start)"
        ),
        v if v > SCHEMA_VERSION => anyhow::bail!(
            "schema version {v} is newer than this version's {SCHEMA_VERSION}: use the newer blindmatch-server"
        ),
        _ => Ok(()),
    }
}

fn count(conn: &Connection) -> rusqlite::Result<StoreStats> {
    let count = |sql: &str| -> rusqlite::Result<u64> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let pages = count("PRAGMA page_count")?.saturating_sub(count("PRAGMA freelist_count")?);
    Ok(StoreStats {
        pending: count("SELECT count(*) FROM pending")?,
        remembered_ids: count("SELECT count(*) FROM submissions")?,
        matches: count("SELECT count(*) FROM matches")?,
        bytes_in_use: pages * count("PRAGMA page_size")?,
    })
}

/// Row counts and size of the store in `dir`, read without writing.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn stats(dir: &Path) -> anyhow::Result<StoreStats> {
    Ok(count(&read_only(dir)?)?)
}

/// Reads every recorded match, oldest first, without writing to the store.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<MatchRecord>> {
    let conn = read_only(dir)?;
    let mut stmt = conn.prepare(&format!("SELECT {RECORD} FROM matches ORDER BY id"))?;
    let rows = stmt.query_map([], record)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The columns of a match record, as [`record`] reads them.
const RECORD: &str = "id, submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account, recorded_at_ms";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<MatchRecord> {
    Ok(MatchRecord {
        id: r.get(0)?,
        submission_id: r.get(1)?,
        voucher_index: r.get(2)?,
        received_at_ms: r.get(3)?,
        recorded_at_ms: r.get(10)?,
        table_id: r.get(4)?,
        entry: r.get(5)?,
        item_type: r.get(6)?,
        item_hex: r.get(7)?,
        associated_data: r.get(8)?,
        account_hex: r.get::<_, Option<Vec<u8>>>(9)?.map(hex::encode),
    })
}

/// The match feed of a SQLite store, on a connection of its own. Written
/// only by the webhook's deliverer, in the server process that holds the
/// store (so it always leads); its cursor writes do not wait for the disk
/// (`synchronous = NORMAL`): one lost in a power cut only has the receiver
/// get a record again, and the writer's next commit flushes it anyway.
pub struct SqliteFeed {
    conn: Connection,
}

impl SqliteFeed {
    /// Opens the feed of the store in `dir`, read-only unless `writable`.
    ///
    /// # Errors
    /// If there is no store there, or its schema is not this code's.
    pub fn open(dir: &Path, writable: bool) -> anyhow::Result<Self> {
        if !writable {
            return Ok(SqliteFeed {
                conn: read_only(dir)?,
            });
        }
        let path = db_path(dir);
        let context = || format!("match database {}", path.display());
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(context)?;
        check_schema(&conn).with_context(context)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .with_context(context)?;
        Ok(SqliteFeed { conn })
    }
}

impl Feed for SqliteFeed {
    fn read(&mut self, after: Cursor, limit: usize) -> Result<Vec<FeedRecord>, StoreError> {
        let after = sqlite_cursor(after)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORD} FROM matches WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after, sql_limit(limit)], record)?;
        rows.map(|r| {
            r.map(|record| FeedRecord {
                cursor: Cursor {
                    xid: 0,
                    id: record.id,
                },
                record,
            })
            .map_err(StoreError::from)
        })
        .collect()
    }

    fn head(&mut self) -> Result<Cursor, StoreError> {
        let id: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM matches")?
            .query_row([], |r| r.get(0))?;
        Ok(Cursor { xid: 0, id })
    }

    fn resolve(&mut self, given: Cursor) -> Result<Cursor, StoreError> {
        sqlite_cursor(given).map(|id| Cursor { xid: 0, id })
    }

    fn backlog(&mut self, after: Cursor) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM matches WHERE id > ?1")?
            .query_row([sqlite_cursor(after)?], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn lead(&mut self) -> Result<bool, StoreError> {
        // The server that opened the store holds its lock file: it is the
        // only process that delivers.
        Ok(true)
    }

    fn saved(&mut self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT after_id FROM feed_cursors WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(id.map(|id| Cursor { xid: 0, id }))
    }

    fn save(&mut self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO feed_cursors (name, after_id) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET after_id = max(after_id, excluded.after_id)",
            )?
            .execute(params![name, sqlite_cursor(cursor)?])?;
        Ok(())
    }
}

/// The id a cursor stands for on SQLite, where it is the whole cursor.
fn sqlite_cursor(c: Cursor) -> Result<i64, StoreError> {
    if c.xid != 0 {
        return Err(StoreError::Failed(format!(
            "cursor {c} is a PostgreSQL store's: a SQLite store's cursor is a record id"
        )));
    }
    Ok(c.id)
}

/// Every account with candidates, counted by state, without writing.
///
/// # Errors
/// If there is no database in `dir` or it cannot be read.
pub fn read_accounts(dir: &Path) -> anyhow::Result<Vec<AccountSummary>> {
    let conn = read_only(dir)?;
    let mut stmt = conn.prepare(
        "SELECT account, t,
                sum(state IN (0, 1)), sum(state = 2), sum(state = 3), sum(state = 4)
         FROM candidates GROUP BY account, t ORDER BY min(id)",
    )?;
    let rows = stmt.query_map([], |r| {
        let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(AccountSummary {
            account_hex: hex::encode(r.get::<_, Vec<u8>>(0)?),
            t: r.get(1)?,
            unrevealed: n(2)?,
            real: n(3)?,
            synthetic: n(4)?,
            rejected: n(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(store: &SqliteStore, name: &str) -> i64 {
        store
            .conn
            .pragma_query_value(None, name, |r| r.get(0))
            .unwrap()
    }

    /// A new database gets the larger pages; one made before keeps its own;
    /// both checkpoint at the same size of log.
    #[test]
    fn new_databases_get_larger_pages_and_every_log_checkpoints_at_64_mib() {
        let new = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(new.path(), None, Replica::new(super::super::DEFAULT_LEASE)).unwrap();
        assert_eq!(pragma(&store, "page_size"), PAGE_SIZE);
        assert_eq!(
            pragma(&store, "wal_autocheckpoint") * PAGE_SIZE,
            WAL_AUTOCHECKPOINT_BYTES
        );
        let old = tempfile::tempdir().unwrap();
        Connection::open(db_path(old.path()))
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        let store =
            SqliteStore::open(old.path(), None, Replica::new(super::super::DEFAULT_LEASE)).unwrap();
        assert_eq!(pragma(&store, "page_size"), 4096);
        assert_eq!(
            pragma(&store, "wal_autocheckpoint") * 4096,
            WAL_AUTOCHECKPOINT_BYTES
        );
    }

    /// A database of schema version 1 (the first release) is migrated in
    /// place, its pending work kept and claimable.
    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_pending_work() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(db_path(dir.path())).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO pending (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers)
                 VALUES ('s', 1, 't', 2, 3, x'010203040506')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let replica = Replica::new(super::super::DEFAULT_LEASE);
        let mut store = SqliteStore::open(dir.path(), None, replica).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let claimed = store.claim(&["t".into()], 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].vouchers, vec![vec![1, 2, 3], vec![4, 5, 6]]);
    }

    /// A newer schema is refused, and a second writer on the same directory
    /// is refused while the first has it open.
    #[test]
    fn a_newer_schema_and_a_second_writer_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let replica = || Replica::new(super::super::DEFAULT_LEASE);
        let first = SqliteStore::open(dir.path(), None, replica()).unwrap();
        let e = SqliteStore::open(dir.path(), None, replica())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("in use by another blindmatch-server"), "{e}");
        drop(first);
        {
            let conn = Connection::open(db_path(dir.path())).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let e = format!(
            "{:#}",
            SqliteStore::open(dir.path(), None, replica())
                .err()
                .unwrap()
        );
        assert!(e.contains("newer than this server's"), "{e}");
    }
}
