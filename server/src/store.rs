//! The store: where acknowledged submissions wait to be evaluated, where
//! match records are kept, and what every replica of the server agrees on.
//!
//! One interface, [`Store`], with two backends:
//!
//! - [`sqlite`]: one SQLite database in the data directory (`--data DIR`),
//!   the default. It belongs to one server process at a time.
//! - [`postgres`]: one PostgreSQL database (`--store postgres://…`) shared by
//!   any number of replicas.
//!
//! Both keep the same tables and give the same guarantees, which the
//! conformance suite (`server/tests/store.rs`) checks case by case on each:
//!
//! - **Acknowledged means durable.** [`Store::ingest`] returns only after
//!   the transaction holding the submissions has committed; a submission is
//!   acknowledged only then.
//! - **Retries are stored once.** A client-chosen id is remembered (with the
//!   digest of its batch) for the dedup window, across replicas: the same id
//!   and digest is [`Ingested::Duplicate`], another digest
//!   [`Ingested::Conflict`].
//! - **Evaluated and recorded exactly once.** Each pending submission is
//!   *claimed* by one replica: the one that stored it, or, once that
//!   replica's heartbeat has lapsed for the lease, whichever replica
//!   [`Store::claim`]s it first (`FOR UPDATE SKIP LOCKED` in PostgreSQL).
//!   [`Store::complete`] deletes the pending row and inserts its match
//!   records in one transaction, and inserts them only if the row was still
//!   there: a submission two replicas evaluated (one presumed dead, then
//!   back) is recorded by the first to finish, and the other's results are
//!   dropped. A non-matching voucher leaves no trace.
//! - **One pruner at a time.** Retention and id pruning take a lock (an
//!   advisory lock in PostgreSQL); a replica that does not get it skips.
//! - **Threshold mode's candidates** (SPEC Section 14.9). A version-2
//!   voucher that opens is a *candidate*: its share encoding, the table and
//!   box it opened under, and where it came from; no item and no associated
//!   data, which the server cannot read yet. [`Store::complete`] stores the
//!   candidates of a submission in the transaction that retires it, one per
//!   (account, t, x): a resubmitted voucher counts once. Each is *new* until
//!   some replica has examined its account ([`Store::unexamined`],
//!   [`Store::candidates`]); [`Store::settle`] then records the verdicts in
//!   one transaction, each only if the candidate is still unresolved, and a
//!   match record with each candidate it turns real: a crossing examined by
//!   two replicas at once, or again after a crash, is recorded once.
//! - **One table version.** [`Store::publish`] records a version (table id,
//!   version number, time) the first time any replica serves it; every
//!   replica reads the newest and the time each was replaced, so all serve
//!   the same current version and end a grace period at the same moment.
//! - **The match feed** ([`Feed`]: `matches --follow`, `serve --webhook`).
//!   Match records are read in the order their transactions committed,
//!   from a [`Cursor`], so a reader that resumes from the last cursor it
//!   handled misses none and sees none twice. Record ids are never reused
//!   (not even once the newest record has been pruned). On SQLite, one
//!   writer, ids follow commits; on PostgreSQL, where replicas insert at
//!   once, they do not, and the cursor holds the inserting transaction too
//!   ([`postgres`] explains how). The webhook's cursor is kept in the
//!   store, and one process at a time delivers ([`Feed::lead`]).

pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blindmatch_protocol::Match;

pub use sqlite::{DB_FILE, SqliteStore, read_all, stats};

/// Why the store could not do what was asked. The service turns these into
/// statuses: `Full` is RESOURCE_EXHAUSTED, the others UNAVAILABLE; none is
/// ever an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk is full, or the database reached `--max-store-mib`.
    #[error("the match store is full (disk full or --max-store-mib reached)")]
    Full,
    /// The data directory or database is read-only.
    #[error("the match store is read-only")]
    ReadOnly,
    /// The database cannot be reached (PostgreSQL down, restarting, or a
    /// network in between): the operation may be retried.
    #[error("the match store is unreachable: {0}")]
    Unreachable(String),
    /// Any other database or I/O failure.
    #[error("the match store failed: {0}")]
    Failed(String),
}

/// Where the store is: `--data DIR` (SQLite) or `--store URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database in this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// A libpq connection URL (`postgres://user@host:port/db?sslmode=require`),
        /// without a password: secrets are never settings.
        url: String,
        /// The file holding the database password (mode 0600), if it takes one.
        password_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Location {
    /// The URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Location {
    /// A SQLite path, or a PostgreSQL URL with any password masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "{}", dir.display()),
            Location::Postgres { url, .. } => f.write_str(&postgres::redact(url)),
        }
    }
}

impl Location {
    /// Reads `--store`: a `postgres://` or `postgresql://` URL, or
    /// `sqlite:DIR` for the default backend.
    ///
    /// # Errors
    /// If the value is neither, or the URL is malformed or holds a password.
    pub fn parse(value: &str, password_file: Option<PathBuf>) -> Result<Self, String> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            postgres::check_url(value)?;
            Ok(Location::Postgres {
                url: value.to_owned(),
                password_file,
            })
        } else if let Some(dir) = value.strip_prefix("sqlite:") {
            if dir.is_empty() {
                return Err("sqlite: needs a data directory (sqlite:/var/lib/blindmatch)".into());
            }
            Ok(Location::Sqlite(PathBuf::from(dir)))
        } else {
            Err(format!(
                "{:?} is not a store: give postgres://USER@HOST/DB, or sqlite:DIR (or --data DIR)",
                postgres::redact(value)
            ))
        }
    }
}

/// Who is writing: one server process. Its claims on pending work last while
/// its heartbeat is younger than `lease`.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Unique to this process: host, process id and a random suffix.
    pub id: String,
    /// How long a claim outlives the last heartbeat; after it, another
    /// replica may take the work over. The server beats four times per lease.
    pub lease: Duration,
}

/// Default lease: long enough that a busy replica's heartbeat never lapses,
/// short enough that a dead replica's work is taken over within seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

impl Replica {
    /// A new identity for this process, with `lease`.
    pub fn new(lease: Duration) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "replica".into());
        let suffix: u32 = rand::random();
        Replica {
            id: format!("{host}-{}-{suffix:08x}", std::process::id()),
            lease,
        }
    }
}

/// Opens the store at `location` for writing, as `replica`.
///
/// # Errors
/// If it cannot be opened or reached, or was written by a newer version.
pub fn open(
    location: &Location,
    replica: Replica,
    max_bytes: Option<u64>,
) -> anyhow::Result<Box<dyn Store>> {
    Ok(match location {
        Location::Sqlite(dir) => Box::new(SqliteStore::open(dir, max_bytes, replica)?),
        Location::Postgres { url, password_file } => {
            if max_bytes.is_some() {
                anyhow::bail!(
                    "--max-store-mib applies to the SQLite store only: size a PostgreSQL database with its own quotas"
                );
            }
            Box::new(postgres::PgStore::open(
                url,
                password_file.as_deref(),
                replica,
            )?)
        }
    })
}

/// Reads every recorded match at `location`, oldest first, without writing
/// (`matches`).
///
/// # Errors
/// If the store cannot be read.
pub fn read_matches(location: &Location) -> anyhow::Result<Vec<MatchRecord>> {
    match location {
        Location::Sqlite(dir) => read_all(dir),
        Location::Postgres { url, password_file } => {
            postgres::read_all(url, password_file.as_deref())
        }
    }
}

/// Opens the match feed at `location`: read-only for `matches --follow`,
/// or `writable` for the webhook's deliverer in `serve` (its cursor and
/// its lead are writes). The store must exist, at this code's schema
/// version (`serve` creates and migrates it).
///
/// # Errors
/// If the store cannot be opened or reached, or its schema is older or
/// newer than this code's.
pub fn open_feed(location: &Location, writable: bool) -> anyhow::Result<Box<dyn Feed>> {
    Ok(match location {
        Location::Sqlite(dir) => Box::new(sqlite::SqliteFeed::open(dir, writable)?),
        Location::Postgres { url, password_file } => {
            Box::new(postgres::PgFeed::open(url, password_file.as_deref())?)
        }
    })
}

/// Every threshold-mode account with candidates at `location`, with their
/// counts by state, without writing (`matches`).
///
/// # Errors
/// If the store cannot be read.
pub fn read_accounts(location: &Location) -> anyhow::Result<Vec<AccountSummary>> {
    match location {
        Location::Sqlite(dir) => sqlite::read_accounts(dir),
        Location::Postgres { url, password_file } => {
            postgres::read_accounts(url, password_file.as_deref())
        }
    }
}

/// Row counts of the store at `location`, read without writing.
///
/// # Errors
/// If the store cannot be read.
pub fn read_stats(location: &Location) -> anyhow::Result<StoreStats> {
    match location {
        Location::Sqlite(dir) => stats(dir),
        Location::Postgres { url, password_file } => postgres::stats(url, password_file.as_deref()),
    }
}

/// The store, as the pipeline's writer thread uses it. Every method is one
/// transaction: it happened entirely, or (on an error) not at all, with one
/// exception a networked database cannot rule out: a commit that went
/// through while its answer was lost (the database stopped, or the deadline
/// passed, between the two) is an error here too. For [`Store::ingest`]
/// that leaves rows claimed by this replica that it does not hold;
/// [`Store::reclaim`] finds them.
pub trait Store: Send {
    /// Stores submissions as pending, claimed by this replica, all in one
    /// transaction (group commit: one flush for every submission in the
    /// call). A submission whose client-chosen id was stored before, by any
    /// replica, is not stored again: it comes back as
    /// [`Ingested::Duplicate`] (same digest) or [`Ingested::Conflict`].
    ///
    /// # Errors
    /// On a database error; nothing is stored then, unless the commit went
    /// through and only its answer was lost (see [`Store::reclaim`]).
    fn ingest(&mut self, submissions: &[NewSubmission<'_>]) -> Result<Vec<Ingested>, StoreError>;

    /// Records evaluated submissions: deletes their pending rows and inserts
    /// the match records of those whose row was still pending, in one
    /// transaction. Returns the rows recorded by this call; the others had
    /// been recorded already (by another replica that took them over).
    ///
    /// # Errors
    /// On a database error; nothing is recorded then, and the submissions
    /// stay pending.
    fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> Result<Vec<i64>, StoreError>;

    /// Claims up to `limit` pending submissions for the tables in `tables`
    /// (hex ids) that no live replica holds: those of replicas whose
    /// heartbeat is older than their lease, or gone. Oldest first. This
    /// replica's own claims are never returned.
    ///
    /// # Errors
    /// On a database error; nothing is claimed then.
    fn claim(
        &mut self,
        tables: &[String],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError>;

    /// Returns up to `limit` pending submissions for the tables in `tables`
    /// that this replica claims but does not hold (`held`, its rows queued,
    /// evaluating or awaiting the harvest): those an [`Store::ingest`]
    /// stored although it reported an error. Oldest first. Nobody else
    /// claims them while this replica's heartbeat is live, so without this
    /// they would wait for its end.
    ///
    /// # Errors
    /// On a database error.
    fn reclaim(
        &mut self,
        tables: &[String],
        held: &[i64],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError>;

    /// Renews this replica's claims (its heartbeat).
    ///
    /// # Errors
    /// On a database error.
    fn heartbeat(&mut self) -> Result<(), StoreError>;

    /// Ends this replica's claims at once (a clean shutdown): what it still
    /// holds pending can be claimed by others without waiting for the lease.
    ///
    /// # Errors
    /// On a database error; the claims then end with the lease.
    fn leave(&mut self) -> Result<(), StoreError>;

    /// Deletes match records received before `matches_before` (if given),
    /// and forgets submission ids received before `ids_before` unless their
    /// submission is still pending. Returns `None` if another replica is
    /// pruning now (nothing was done).
    ///
    /// # Errors
    /// On a database error; nothing is deleted then.
    fn prune(
        &mut self,
        matches_before: Option<i64>,
        ids_before: i64,
    ) -> Result<Option<Pruned>, StoreError>;

    /// Records that `table_id` (hex) at `version` is published, at the
    /// database's current time, unless it was recorded before; returns
    /// every version recorded, newest first.
    ///
    /// # Errors
    /// On a database error.
    fn publish(&mut self, table_id: &str, version: u64) -> Result<Vec<Published>, StoreError>;

    /// Every version recorded, newest first.
    ///
    /// # Errors
    /// On a database error.
    fn versions(&mut self) -> Result<Vec<Published>, StoreError>;

    /// Row counts of the whole store (every replica's work).
    ///
    /// # Errors
    /// On a database error.
    fn stats(&mut self) -> Result<StoreStats, StoreError>;

    /// Submissions pending in the whole store (every replica's): cheaper
    /// than [`Store::stats`], for the metrics.
    ///
    /// # Errors
    /// On a database error.
    fn pending(&mut self) -> Result<u64, StoreError>;

    /// Up to `limit` accounts (with their threshold) that hold candidates
    /// no replica has examined yet: the ones to run SPEC 14.6 for.
    ///
    /// # Errors
    /// On a database error.
    fn unexamined(&mut self, limit: usize) -> Result<Vec<Account>, StoreError>;

    /// Every candidate of `account` under threshold t, in the order they
    /// were stored (resolved ones too: after a crossing, the polynomial
    /// they lie on is what classifies the next ones).
    ///
    /// # Errors
    /// On a database error.
    fn candidates(&mut self, account: &Account) -> Result<Vec<StoredCandidate>, StoreError>;

    /// Records the verdicts of one examination of `account`, in one
    /// transaction. A verdict applies only to a candidate still unresolved
    /// ([`CandidateState::New`] or [`CandidateState::Held`]; `Held` only to
    /// a new one), and a [`Verdict::Real`] inserts its match record only
    /// then. Returns how many match records were inserted.
    ///
    /// # Errors
    /// On a database error; nothing is recorded then.
    fn settle(
        &mut self,
        account: &Account,
        verdicts: &[(i64, Verdict)],
    ) -> Result<usize, StoreError>;
}

/// The match feed: the match records in the order they were committed,
/// each with the [`Cursor`] that resumes after it. One reader is one
/// connection of its own, never the pipeline's writer: reading the feed
/// does not slow `Submit`.
pub trait Feed: Send {
    /// Up to `limit` records after `after`, in commit order. A record is
    /// returned only once no record that commits later can sort before it
    /// (on PostgreSQL, once every transaction that started before its own
    /// has ended): a reader that resumes from the last cursor returned
    /// misses nothing.
    ///
    /// # Errors
    /// On a database error.
    fn read(&mut self, after: Cursor, limit: usize) -> Result<Vec<FeedRecord>, StoreError>;

    /// The cursor of the newest record [`Feed::read`] returns now
    /// ([`Cursor::START`] for none): where `--from-now` starts.
    ///
    /// # Errors
    /// On a database error.
    fn head(&mut self) -> Result<Cursor, StoreError>;

    /// A cursor as an operator gave it, exact: on PostgreSQL a bare record
    /// id (`--after 42`) becomes that record's cursor.
    ///
    /// # Errors
    /// If a bare id names no record (pruned, or never written), a
    /// PostgreSQL cursor is given to a SQLite store, or on a database
    /// error.
    fn resolve(&mut self, given: Cursor) -> Result<Cursor, StoreError>;

    /// How many records there are after `after` (committed or about to be
    /// readable): the webhook's backlog.
    ///
    /// # Errors
    /// On a database error.
    fn backlog(&mut self, after: Cursor) -> Result<u64, StoreError>;

    /// Whether this process is the one that delivers the feed now, taking
    /// the role if nobody holds it. SQLite: always (one server per store).
    /// PostgreSQL: an advisory lock held by a session of its own, released
    /// by the database when the session ends (the replica died or stopped),
    /// so that another replica takes over.
    ///
    /// # Errors
    /// On a database error (the role, if held, is given up then).
    fn lead(&mut self) -> Result<bool, StoreError>;

    /// The cursor saved under `name`, if any.
    ///
    /// # Errors
    /// On a database error.
    fn saved(&mut self, name: &str) -> Result<Option<Cursor>, StoreError>;

    /// Saves `cursor` under `name` unless a later one is saved there (a
    /// cursor never moves back). Only the process that [`Feed::lead`]s may
    /// save; on PostgreSQL the write goes through the session that holds
    /// the lock, so it fails if the role was lost.
    ///
    /// # Errors
    /// If this process does not lead, or on a database error.
    fn save(&mut self, name: &str, cursor: Cursor) -> Result<(), StoreError>;
}

/// A position in the match feed: after the record `id`, which on
/// PostgreSQL transaction `xid` inserted. Records are read in the order of
/// (`xid`, `id`), which is the order in which they became readable
/// ([`Feed::read`]); on SQLite `xid` is 0 and ids alone are that order (one
/// writer: ids follow commits).
///
/// Printed as `ID` when `xid` is 0, else `XID:ID`: a line's `cursor`, which
/// consumers keep as an opaque string. [`Cursor::START`] (`0`) is before
/// every record. A bare id given for a PostgreSQL store is a record's id,
/// which [`Feed::resolve`] turns into its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    /// The inserting transaction (PostgreSQL's `xid8`); 0 on SQLite, and
    /// in a bare id not yet resolved.
    pub xid: u64,
    /// The record's id.
    pub id: i64,
}

impl Cursor {
    /// Before every record.
    pub const START: Cursor = Cursor { xid: 0, id: 0 };
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.xid == 0 {
            write!(f, "{}", self.id)
        } else {
            write!(f, "{}:{}", self.xid, self.id)
        }
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;

    /// `ID` or `XID:ID` (a line's `cursor`), both numbers.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a cursor: give a line's `cursor` (ID, or XID:ID on PostgreSQL) or a record's `id`"
            )
        };
        let (xid, id) = match s.trim().split_once(':') {
            Some((x, i)) => (x.parse::<u64>().ok().filter(|x| *x > 0).ok_or_else(bad)?, i),
            None => (0, s.trim()),
        };
        let id = id.parse::<i64>().ok().filter(|i| *i >= 0).ok_or_else(bad)?;
        Ok(Cursor { xid, id })
    }
}

impl serde::Serialize for Cursor {
    /// As a string: its `XID:ID` form is not a JSON number.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a line of the feed reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// Protocol version 1: a voucher matched when it was evaluated.
    Match,
    /// Threshold mode: a match revealed when its account held t (the
    /// record carries the account). The records one crossing reveals are
    /// written in one transaction and so come together in the feed.
    Threshold,
}

/// One record of the feed, with the cursor that resumes after it. Its JSON
/// (a line of `matches --follow`, the `data` of a webhook) is the match
/// record's with two fields first: `kind` and `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRecord {
    /// Where a reader that handled this record resumes.
    pub cursor: Cursor,
    /// The match record.
    pub record: MatchRecord,
}

impl FeedRecord {
    /// Whether it is a version-1 match or one a threshold crossing revealed.
    pub fn kind(&self) -> FeedKind {
        match self.record.account_hex {
            Some(_) => FeedKind::Threshold,
            None => FeedKind::Match,
        }
    }
}

impl serde::Serialize for FeedRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            kind: FeedKind,
            cursor: Cursor,
            #[serde(flatten)]
            record: &'a MatchRecord,
        }
        Line {
            kind: self.kind(),
            cursor: self.cursor,
            record: &self.record,
        }
        .serialize(s)
    }
}

/// A threshold-mode account: the platform's opaque id, and the threshold t
/// its candidates were made under (shares of two thresholds never combine).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// The account id from `Submit`, 1 to 64 bytes.
    pub id: Vec<u8>,
    /// The manifest's t.
    pub t: u16,
}

/// A candidate to store with its submission (SPEC 14.9).
#[derive(Debug, Clone)]
pub struct NewCandidate {
    /// The voucher's position in its submission.
    pub voucher_index: u32,
    /// The share's x-coordinate: one candidate per (account, t, x).
    pub x: u64,
    /// The share encoding (SPEC 14.3).
    pub share: Vec<u8>,
    /// The box that opened.
    pub position: u8,
}

/// Where a candidate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateState {
    /// Stored, its account not examined since.
    New,
    /// Examined: below the threshold (or inconsistent), waiting for more.
    Held,
    /// Revealed: a real share whose item is listed; its match record exists.
    Real,
    /// Revealed: not on the account's polynomial (synthetic or forged).
    Synthetic,
    /// Revealed: on the polynomial, but its inner layer is malformed or its
    /// item is not the listed entry at the box that opened. Never a match.
    Rejected,
}

impl CandidateState {
    pub(crate) fn code(self) -> i16 {
        match self {
            CandidateState::New => 0,
            CandidateState::Held => 1,
            CandidateState::Real => 2,
            CandidateState::Synthetic => 3,
            CandidateState::Rejected => 4,
        }
    }

    pub(crate) fn from_code(code: i64) -> Result<Self, StoreError> {
        Ok(match code {
            0 => CandidateState::New,
            1 => CandidateState::Held,
            2 => CandidateState::Real,
            3 => CandidateState::Synthetic,
            4 => CandidateState::Rejected,
            other => {
                return Err(StoreError::Failed(format!(
                    "candidate state {other} is not one this server writes"
                )));
            }
        })
    }
}

/// A stored candidate.
#[derive(Clone)]
pub struct StoredCandidate {
    /// Row id: the order candidates were stored in.
    pub id: i64,
    /// The share encoding.
    pub share: Vec<u8>,
    /// The table it opened under (hex).
    pub table_id: String,
    /// The box that opened.
    pub position: u8,
    /// Where it stands.
    pub state: CandidateState,
}

impl std::fmt::Debug for StoredCandidate {
    /// Without the share.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCandidate")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What one examination decided for one candidate.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Below the threshold: examined, still unresolved.
    Held,
    /// Real and listed: record this match.
    Real(Match),
    /// Not on the polynomial.
    Synthetic,
    /// On the polynomial, never a match.
    Rejected,
}

impl Verdict {
    pub(crate) fn state(&self) -> CandidateState {
        match self {
            Verdict::Held => CandidateState::Held,
            Verdict::Real(_) => CandidateState::Real,
            Verdict::Synthetic => CandidateState::Synthetic,
            Verdict::Rejected => CandidateState::Rejected,
        }
    }
}

/// An account's candidates, counted by state (`matches --accounts`; its
/// JSON has these fields under these names).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountSummary {
    /// The account id, hex.
    pub account_hex: String,
    /// The threshold its candidates were made under.
    pub t: u16,
    /// Candidates not yet revealed (new or held): the count the server
    /// sees below the threshold, real and synthetic alike.
    pub unrevealed: u64,
    /// Revealed real matches.
    pub real: u64,
    /// Revealed synthetic (or forged) vouchers.
    pub synthetic: u64,
    /// Revealed and rejected.
    pub rejected: u64,
}

/// What one prune deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Match records past their retention.
    pub matches: usize,
    /// Submission ids past the dedup window.
    pub ids: usize,
}

/// One published table version, as the store recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The table id (hex).
    pub table_id: String,
    /// Its version number (from its manifest).
    pub version: u64,
    /// When a replica first served it, milliseconds since the Unix epoch
    /// (the database's clock for PostgreSQL).
    pub published_at_ms: i64,
}

/// Who sent a submission, when, and for which table: what the store keeps
/// with its vouchers and copies into every record it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The submission id (hex): the client's, or one the server drew.
    pub submission_id: String,
    /// When it was received, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The table its vouchers were made for (hex).
    pub table_id: String,
}

/// A submission to store ([`Store::ingest`]), borrowed from the caller, who
/// keeps it for evaluation once the store says it is stored.
#[derive(Debug, Clone, Copy)]
pub struct NewSubmission<'a> {
    /// Who, when, which table.
    pub receipt: &'a Receipt,
    /// Threshold mode: the account the vouchers are bound to.
    pub account: Option<&'a [u8]>,
    /// The encoded vouchers, all of one length.
    pub vouchers: &'a [Vec<u8>],
    /// Digest of the batch when the client chose the id (SPEC 12.3): a
    /// retry is recognised by it. `None`: the server chose the id, no dedup.
    pub digest: Option<&'a [u8; 32]>,
}

impl NewSubmission<'_> {
    /// The vouchers as one buffer and their common length.
    ///
    /// # Errors
    /// If they differ in length.
    pub(crate) fn concat(&self) -> Result<(Vec<u8>, usize), StoreError> {
        let len = self.vouchers.first().map_or(0, Vec::len);
        if self.vouchers.iter().any(|v| v.len() != len) {
            return Err(StoreError::Failed(
                "vouchers of one submission differ in length".into(),
            ));
        }
        Ok((self.vouchers.concat(), len))
    }
}

/// What storing one submission came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored now, pending, claimed by this replica, in this row.
    Stored {
        /// Its row: what [`Evaluated::row`] names when it is recorded.
        row: i64,
    },
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
    /// Bytes the database takes (file pages in use for SQLite, relation
    /// sizes for PostgreSQL).
    pub bytes_in_use: u64,
}

/// A submission stored but not yet evaluated, as [`Store::claim`] hands it
/// over: one row, its vouchers concatenated (they all have the table's
/// voucher length), so storing and retiring a batch of 64 costs two row
/// operations, not 128.
#[derive(Debug, Clone)]
pub struct PendingSubmission {
    /// Row id in `pending`.
    pub row: i64,
    /// Who, when, which table.
    pub receipt: Receipt,
    /// Threshold mode: the account the vouchers are bound to.
    pub account: Option<Vec<u8>>,
    /// The encoded vouchers.
    pub vouchers: Vec<Vec<u8>>,
}

impl PendingSubmission {
    /// Splits a stored row back into its vouchers.
    ///
    /// # Errors
    /// If `count` vouchers of `len` bytes do not fill `blob`.
    pub(crate) fn from_row(
        row: i64,
        receipt: Receipt,
        account: Option<Vec<u8>>,
        (count, len): (i64, i64),
        blob: &[u8],
    ) -> Result<Self, StoreError> {
        let bad = || {
            StoreError::Failed(format!(
                "pending submission {}: {count} vouchers of {len} bytes do not fill {} bytes",
                receipt.submission_id,
                blob.len()
            ))
        };
        let (count, len) = (
            usize::try_from(count).map_err(|_| bad())?,
            usize::try_from(len).map_err(|_| bad())?,
        );
        if count.checked_mul(len) != Some(blob.len()) || (count > 0 && len == 0) {
            return Err(bad());
        }
        Ok(PendingSubmission {
            row,
            receipt,
            account,
            vouchers: if len == 0 {
                Vec::new()
            } else {
                blob.chunks(len).map(<[u8]>::to_vec).collect()
            },
        })
    }
}

/// What evaluating one submission found: what the harvest records.
#[derive(Debug, Clone)]
pub enum Findings {
    /// Protocol version 1: the vouchers that matched, by their index in the
    /// submission (a non-matching voucher leaves no trace).
    Matches(Vec<(u32, Match)>),
    /// Threshold mode: the vouchers that opened, as candidates of `account`
    /// under threshold `t` (SPEC 14.9).
    Candidates {
        /// The account the vouchers are bound to.
        account: Vec<u8>,
        /// The threshold of the table's manifest.
        t: u16,
        /// The candidates, in voucher order.
        candidates: Vec<NewCandidate>,
    },
}

impl Findings {
    /// How many match records these findings make when recorded.
    pub fn matches(&self) -> usize {
        match self {
            Findings::Matches(m) => m.len(),
            Findings::Candidates { .. } => 0,
        }
    }

    /// Threshold mode: the account whose candidates these are, to examine
    /// once they are recorded.
    pub fn account(&self) -> Option<&[u8]> {
        match self {
            Findings::Matches(_) => None,
            Findings::Candidates { account, .. } => Some(account),
        }
    }
}

/// One evaluated submission, for [`Store::complete`]: its pending row, and
/// what its evaluation found.
#[derive(Debug, Clone, Copy)]
pub struct Evaluated<'a> {
    /// The pending row ([`Ingested::Stored`], [`PendingSubmission::row`]).
    pub row: i64,
    /// Who, when, which table: copied into every record.
    pub receipt: &'a Receipt,
    /// Its matches, or its candidates.
    pub findings: &'a Findings,
}

/// One recorded match. Its JSON (`matches --json`) is an object with every
/// field below under the same name, `associated_data` as text (UTF-8, an
/// invalid byte replaced by U+FFFD) and `associated_data_hex`, the exact
/// bytes; `account_hex` is `null` in version 1, `recorded_at_ms` for the
/// records of a server older than the feed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchRecord {
    /// Row id: increasing, never reused.
    pub id: i64,
    /// The submission (one Submit call) the voucher came in.
    pub submission_id: String,
    /// The voucher's position in its submission.
    pub voucher_index: u32,
    /// When the submission was received, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// When the match was recorded (in threshold mode, revealed), in
    /// milliseconds since the Unix epoch; `None` for records written before
    /// the store kept it.
    pub recorded_at_ms: Option<i64>,
    /// The table the voucher was made for (hex).
    pub table_id: String,
    /// The list entry (index in the deduplicated list the table was built from).
    pub entry: u32,
    /// Item type name.
    pub item_type: String,
    /// Item value, hex.
    pub item_hex: String,
    /// The client's associated data: in JSON as text and as hex.
    #[serde(flatten, serialize_with = "serialize_ad")]
    pub associated_data: Vec<u8>,
    /// Threshold mode: the account, hex (revealed when it crossed t).
    pub account_hex: Option<String>,
}

/// `associated_data` (text, for people) and `associated_data_hex` (the
/// bytes, for programs: the text form cannot carry a byte that is not
/// UTF-8).
fn serialize_ad<S: serde::Serializer>(ad: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("associated_data", &String::from_utf8_lossy(ad))?;
    map.serialize_entry("associated_data_hex", &hex::encode(ad))?;
    map.end()
}

impl MatchRecord {
    /// The column titles of [`MatchRecord`]'s `Display`.
    pub const HEADER: &'static str = "received                  type       entry  submission                        item                                                              associated data";

    /// The receive time as RFC 3339 (UTC, milliseconds).
    pub fn received_at(&self) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(self.received_at_ms).unwrap_or(0));
        humantime::format_rfc3339_millis(t).to_string()
    }
}

impl std::fmt::Display for MatchRecord {
    /// One row of `matches`: time, type, entry, submission, item, the
    /// associated data (escaped), and in threshold mode the account.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<24}  {:<7}  {:>7}  {:<32}  {:<64}  {}",
            self.received_at(),
            self.item_type,
            self.entry,
            self.submission_id,
            self.item_hex,
            String::from_utf8_lossy(&self.associated_data).escape_debug(),
        )?;
        if let Some(a) = &self.account_hex {
            write!(f, "  (account {a})")?;
        }
        Ok(())
    }
}

impl AccountSummary {
    /// The column titles of [`AccountSummary`]'s `Display`.
    pub const HEADER: &'static str =
        "account (threshold mode)             t  unrevealed      real  synthetic  rejected";
}

impl std::fmt::Display for AccountSummary {
    /// One row of `matches` for an account with candidates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<32}  {:>4}  {:>10}  {:>8}  {:>9}  {:>8}",
            self.account_hex, self.t, self.unrevealed, self.real, self.synthetic, self.rejected
        )
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `matches --json`: every field under its name, associated data as
    /// text and as the exact bytes (README, "What `matches` prints").
    #[test]
    fn a_match_record_in_json() {
        let record = MatchRecord {
            id: 7,
            submission_id: "00".repeat(16),
            voucher_index: 3,
            received_at_ms: 1_700_000_000_000,
            recorded_at_ms: Some(1_700_000_000_250),
            table_id: "ab".repeat(32),
            entry: 42,
            item_type: "sha256".into(),
            item_hex: "cd".repeat(32),
            associated_data: b"upload \xff 17".to_vec(),
            account_hex: None,
        };
        let json = serde_json::to_value(&record).unwrap();
        let expected = serde_json::json!({
            "id": 7,
            "submission_id": "00".repeat(16),
            "voucher_index": 3,
            "received_at_ms": 1_700_000_000_000_i64,
            "recorded_at_ms": 1_700_000_000_250_i64,
            "table_id": "ab".repeat(32),
            "entry": 42,
            "item_type": "sha256",
            "item_hex": "cd".repeat(32),
            "associated_data": "upload \u{fffd} 17",
            "associated_data_hex": hex::encode(b"upload \xff 17"),
            "account_hex": null,
        });
        assert_eq!(json, expected);
        // A line of the feed: the same, with its kind and cursor first.
        let line = FeedRecord {
            cursor: Cursor { xid: 812, id: 7 },
            record: MatchRecord {
                account_hex: Some("0a".into()),
                ..record
            },
        };
        let json = serde_json::to_string(&line).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"threshold","cursor":"812:7","id":7,"#),
            "{json}"
        );
        let mut expected = expected;
        expected["kind"] = "threshold".into();
        expected["cursor"] = "812:7".into();
        expected["account_hex"] = "0a".into();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            expected
        );
    }

    /// A cursor prints as it parses: `ID` on SQLite, `XID:ID` on
    /// PostgreSQL; anything else is refused with a message.
    #[test]
    fn cursors_print_and_parse_alike() {
        for (text, cursor) in [
            ("0", Cursor::START),
            ("42", Cursor { xid: 0, id: 42 }),
            (
                "18446744073709551615:3",
                Cursor {
                    xid: u64::MAX,
                    id: 3,
                },
            ),
        ] {
            assert_eq!(text.parse::<Cursor>().unwrap(), cursor);
            assert_eq!(cursor.to_string(), text);
        }
        assert_eq!(" 7\n".trim().parse::<Cursor>().unwrap().id, 7);
        for bad in ["", "-1", "x", "0:5", "1:", ":1", "1:2:3", "1.5"] {
            let e = bad.parse::<Cursor>().unwrap_err();
            assert!(e.contains("not a cursor"), "{bad}: {e}");
        }
        assert!(Cursor { xid: 1, id: 1 } > Cursor { xid: 0, id: 99 });
    }
}
