//! The PostgreSQL store: one database shared by any number of replicas of
//! the server (`serve --store postgres://…`).
//!
//! The tables are those of the SQLite store, in a schema of their own
//! (`blindmatch`), with the claim of each pending submission and the
//! replicas' heartbeats as the parts that matter here:
//!
//! - A replica stores a submission claimed by itself and evaluates it from
//!   memory. It renews its heartbeat four times per lease; a replica whose
//!   heartbeat is older than the lease is presumed dead, and the others
//!   claim its pending work with `FOR UPDATE SKIP LOCKED`, so two live
//!   replicas never claim the same row, and a replica killed mid-evaluation
//!   leaves its work to the others.
//! - Recording is one statement: it deletes the pending rows and inserts
//!   the match records of exactly the rows it deleted. A row two replicas
//!   evaluated (the lease ran out on a replica that was only slow) is
//!   deleted once, by whichever commits first; the other deletes nothing
//!   and so inserts nothing.
//! - Times that replicas compare (heartbeats, published versions) are the
//!   database's clock, so the replicas' clocks need not agree.
//! - Every session runs with `synchronous_commit = on` whatever the
//!   database's default: an acknowledgement waits for the WAL flush.
//!
//! The driver is tokio-postgres with a deadpool pool, on a runtime of the
//! store's own (one thread): the pipeline's writer is a plain thread and
//! waits for each operation, and `matches` and the tests can read the store
//! from anywhere. Each operation has a deadline; a database that does not
//! answer is [`StoreError::Unreachable`], never an acknowledgement.
//!
//! The match feed ([`PgFeed`]) reads records in commit order, which ids do
//! not follow here: replicas insert at once, so a record with a smaller id
//! can commit after one with a larger id has been read, and a reader that
//! kept only the last id read would skip it for good. Each record carries
//! the id of the transaction that inserted it (`txid xid8`, the column's
//! default `pg_current_xact_id()`), and a reader takes only records whose
//! transaction is older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`), in (txid, id) order, with
//! both in its cursor. Every transaction below that horizon has ended, so
//! no record can appear later with a smaller (txid, id): the order read is
//! final (the transactional-outbox technique). A transaction left open on
//! the database holds the horizon back: the feed waits for it, and loses
//! nothing. The webhook's deliverer is one replica at a time: the holder of
//! an advisory lock on a session of its own, released by the database when
//! that session ends (the replica stopped or died).
//!
//! TLS: `sslmode=require` (or libpq's `verify-ca` / `verify-full`, which
//! mean the same here) connects over rustls and verifies the server's
//! certificate and name against the Mozilla roots, or against the CA file
//! in `sslrootcert=PATH`. Unlike libpq, `require` always verifies; without
//! an `sslmode`, or with `disable` or `prefer`, the connection is plaintext
//! (for a database on the same host or a private network).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;

use super::{
    Account, AccountSummary, CandidateState, Cursor, Evaluated, Feed, FeedRecord, Findings,
    Ingested, MatchRecord, NewSubmission, PendingSubmission, Pruned, Published, Receipt, Replica,
    Store, StoreError, StoreStats, StoredCandidate, Verdict, millis,
};

/// The schema, one migration per version (`blindmatch.schema_version`).
/// A database of a newer version is refused.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE blindmatch.matches (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id    TEXT    NOT NULL,
    voucher_index    INTEGER NOT NULL,
    received_at_ms   BIGINT  NOT NULL,
    table_id         TEXT    NOT NULL,
    entry            BIGINT  NOT NULL,
    item_type        TEXT    NOT NULL,
    item_hex         TEXT    NOT NULL,
    associated_data  BYTEA   NOT NULL
);
CREATE INDEX matches_by_time ON blindmatch.matches (received_at_ms);
CREATE TABLE blindmatch.pending (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id    TEXT    NOT NULL,
    received_at_ms   BIGINT  NOT NULL,
    table_id         TEXT    NOT NULL,
    voucher_count    INTEGER NOT NULL,
    voucher_len      INTEGER NOT NULL,
    vouchers         BYTEA   NOT NULL,
    claimed_by       TEXT
);
-- Vouchers are ciphertext: compressing them costs CPU and saves nothing.
ALTER TABLE blindmatch.pending ALTER COLUMN vouchers SET STORAGE EXTERNAL;
CREATE INDEX pending_by_claim ON blindmatch.pending (claimed_by);
CREATE INDEX pending_by_submission ON blindmatch.pending (submission_id);
CREATE TABLE blindmatch.submissions (
    submission_id    TEXT    PRIMARY KEY,
    digest           BYTEA   NOT NULL,
    received_at_ms   BIGINT  NOT NULL
);
CREATE INDEX submissions_by_time ON blindmatch.submissions (received_at_ms);
CREATE TABLE blindmatch.replicas (
    replica_id       TEXT    PRIMARY KEY,
    started_ms       BIGINT  NOT NULL,
    heartbeat_ms     BIGINT  NOT NULL
);
CREATE TABLE blindmatch.versions (
    table_id         TEXT    PRIMARY KEY,
    version          BIGINT  NOT NULL,
    published_at_ms  BIGINT  NOT NULL
);
",
    "
-- 2: threshold mode (SPEC 14.9): the account of a submission and of a
-- match, and the candidates.
ALTER TABLE blindmatch.pending ADD COLUMN account BYTEA;
ALTER TABLE blindmatch.matches ADD COLUMN account BYTEA;
CREATE TABLE blindmatch.candidates (
    id               BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account          BYTEA    NOT NULL,
    t                INTEGER  NOT NULL,
    x                BIGINT   NOT NULL,
    state            SMALLINT NOT NULL,
    submission_id    TEXT     NOT NULL,
    voucher_index    INTEGER  NOT NULL,
    received_at_ms   BIGINT   NOT NULL,
    table_id         TEXT     NOT NULL,
    position         SMALLINT NOT NULL,
    share            BYTEA    NOT NULL,
    UNIQUE (account, t, x)
);
ALTER TABLE blindmatch.candidates ALTER COLUMN share SET STORAGE EXTERNAL;
CREATE INDEX candidates_new ON blindmatch.candidates (account, t) WHERE state = 0;
CREATE INDEX candidates_by_time ON blindmatch.candidates (received_at_ms);
",
    "
-- 3: the match feed. Each record keeps the transaction that inserted it, the
-- order the feed reads in (the module's documentation says why), and the
-- time it was recorded (NULL for the older ones); the webhook's cursor.
ALTER TABLE blindmatch.matches ADD COLUMN recorded_at_ms BIGINT;
ALTER TABLE blindmatch.matches ALTER COLUMN recorded_at_ms
    SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
ALTER TABLE blindmatch.matches ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX matches_feed ON blindmatch.matches (txid, id);
CREATE TABLE blindmatch.feed_cursors (
    name             TEXT    PRIMARY KEY,
    after_txid       xid8    NOT NULL,
    after_id         BIGINT  NOT NULL
);
",
];

/// The schema version this code writes.
#[allow(clippy::cast_possible_truncation, reason = "a handful of migrations")]
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The database's clock, in milliseconds since the Unix epoch.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Advisory lock keys (two int4): ours, then what it guards.
const LOCK_SPACE: i32 = 0x626d_7463; // "bmtc"
const LOCK_MIGRATE: i32 = 1;
const LOCK_PRUNE: i32 = 2;
/// Held (on a session of its own) by the replica that delivers the feed.
const LOCK_FEED: i32 = 3;

/// Longest any one operation may take before the store counts as
/// unreachable. A harvest of a full in-flight budget writes well under this.
const DEADLINE: Duration = Duration::from_secs(15);
/// Connections per replica: the writer, the claim and version checks, a
/// spare.
const POOL_SIZE: usize = 4;
/// Replicas silent this long are forgotten (their claims had lapsed long
/// before).
const FORGET_REPLICAS_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A URL with its password masked, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    // postgres://user:secret@host/...
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    // ...?password=secret
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***".to_owned()
                } else {
                    kv.to_owned()
                }
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// What the URL asks for beyond what tokio-postgres reads: TLS, and the CA
/// to verify the server with. libpq's names, so an operator's URL works
/// unchanged.
struct Parsed {
    config: tokio_postgres::Config,
    tls: bool,
    ca: Option<std::path::PathBuf>,
}

fn parse(url: &str) -> Result<Parsed, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut tls, mut ca, mut rest) = (false, None, Vec::new());
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("sslmode", mode)) => match mode {
                "disable" | "allow" | "prefer" => tls = false,
                "require" | "verify-ca" | "verify-full" => tls = true,
                other => {
                    return Err(format!(
                        "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                    ));
                }
            },
            Some(("sslrootcert", path)) => ca = Some(std::path::PathBuf::from(path)),
            _ => rest.push(kv),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| format!("{}: {e}", redact(&url)))?;
    if config.get_hosts().is_empty() {
        return Err(format!("{}: names no host", redact(&url)));
    }
    config.ssl_mode(if tls {
        tokio_postgres::config::SslMode::Require
    } else {
        tokio_postgres::config::SslMode::Disable
    });
    if config.get_application_name().is_none() {
        config.application_name("blindmatch-server");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    // Acknowledged means durable, whatever the database's default.
    let options = match config.get_options() {
        Some(o) => format!("{o} -c synchronous_commit=on"),
        None => "-c synchronous_commit=on".to_owned(),
    };
    config.options(&options);
    Ok(Parsed { config, tls, ca })
}

/// Checks a `--store` URL without connecting: well formed, and without a
/// password (it belongs in a file, `--store-password-file`, like every
/// secret here: a URL is seen in `ps`, the environment and shell history).
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let parsed = parse(url)?;
    if parsed.config.get_password().is_some() {
        return Err(format!(
            "{}: the URL holds a password; put it in a file (mode 0600) and give --store-password-file",
            redact(url)
        ));
    }
    Ok(())
}

fn tls_config(ca: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("sslrootcert {}", path.display()))?
            {
                roots
                    .add(cert.with_context(|| format!("sslrootcert {}", path.display()))?)
                    .with_context(|| format!("sslrootcert {}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let text = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        match e.code() {
            Some(c) if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => {
                StoreError::Full
            }
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly,
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::CONNECTION_FAILURE
                    || *c == SqlState::CONNECTION_EXCEPTION
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                StoreError::Unreachable(text)
            }
            Some(_) => StoreError::Failed(text),
            // No SQLSTATE: the connection itself failed.
            None => StoreError::Unreachable(text),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unreachable(other.to_string()),
        }
    }
}

/// A pool on a runtime of its own.
struct Pg {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// The URL without its password, for errors.
    shown: String,
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed where this may be
        // dropped (inside another runtime); its connections just close.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Pg {
    fn connect(url: &str, password_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Parsed {
            mut config,
            tls,
            ca,
        } = parse(url).map_err(|e| anyhow::anyhow!("--store {e}"))?;
        if let Some(path) = password_file {
            crate::keyfile::check_private(path, "store password file")?;
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("store password file {}", path.display()))?,
            );
            // tokio-postgres keeps its own copy for reconnecting.
            config.password(text.trim_end_matches(['\r', '\n']));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .context("the PostgreSQL store's runtime")?;
        let manager_config = ManagerConfig {
            // A connection that died (a database restart) is noticed here;
            // one that died unnoticed fails its next statement, which the
            // caller retries.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if tls {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(ca.as_deref())?);
            Manager::from_config(config, tls, manager_config)
        } else {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        };
        let pool = {
            // The pool's timers need the runtime.
            let _in = runtime.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(DEADLINE))
                .create_timeout(Some(Duration::from_secs(5)))
                .recycle_timeout(Some(Duration::from_secs(5)))
                .build()
                .context("the PostgreSQL pool")?
        };
        Ok(Pg {
            runtime: Some(runtime),
            pool,
            shown: redact(url),
        })
    }

    /// Runs `op` on the store's runtime with a pool connection, within the
    /// deadline, and waits for it. Callable from any thread, async or not.
    fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = &self.runtime else {
            return Err(StoreError::Failed("the store is closed".into()));
        };
        let fut = op(self.pool.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let out = tokio::time::timeout(DEADLINE, fut)
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unreachable(format!(
                        "no answer within {}s",
                        DEADLINE.as_secs()
                    )))
                });
            let _ = tx.send(out);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Failed("the store's runtime stopped".into())))
    }

    /// Creates the schema or migrates it, under an advisory lock so that
    /// replicas starting together do it once.
    fn migrate(&self) -> anyhow::Result<()> {
        let shown = self.shown.clone();
        let from = self
            .run(|pool| async move {
                let mut client = pool.get().await?;
                let tx = client.transaction().await?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    &[&LOCK_SPACE, &LOCK_MIGRATE],
                )
                .await?;
                // Checked first (under the lock) rather than IF NOT EXISTS,
                // which has the server send a NOTICE at every start.
                let exists = schema_exists(&tx).await?;
                if !exists {
                    tx.batch_execute(
                        "CREATE SCHEMA IF NOT EXISTS blindmatch;
                         CREATE TABLE blindmatch.schema_version (version INTEGER NOT NULL)",
                    )
                    .await?;
                }
                let version: i32 = tx
                    .query_opt("SELECT version FROM blindmatch.schema_version", &[])
                    .await?
                    .map_or(0, |r| r.get(0));
                if version > SCHEMA_VERSION {
                    return Ok(Err(version));
                }
                for sql in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
                    tx.batch_execute(sql).await?;
                }
                tx.execute("DELETE FROM blindmatch.schema_version", &[])
                    .await?;
                tx.execute(
                    "INSERT INTO blindmatch.schema_version (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .await?;
                tx.commit().await?;
                Ok(Ok(version))
            })
            .with_context(|| format!("PostgreSQL store {shown}"))?;
        match from {
            Err(newer) => anyhow::bail!(
                "PostgreSQL store {}: schema version {newer} is newer than this server's {SCHEMA_VERSION}: run the newer server",
                self.shown
            ),
            Ok(0) => {
                tracing::info!(store = self.shown, "PostgreSQL store created");
                Ok(())
            }
            Ok(v) if v < SCHEMA_VERSION => {
                tracing::info!(from = v, to = SCHEMA_VERSION, "store schema migrated");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    /// For readers: the schema must exist, at this code's version (`serve`
    /// migrates it at start).
    fn check_schema(&self) -> anyhow::Result<()> {
        let version = self
            .run(|pool| async move {
                let client = pool.get().await?;
                let exists = schema_exists(&client).await?;
                if !exists {
                    return Ok(None);
                }
                Ok(client
                    .query_opt("SELECT version FROM blindmatch.schema_version", &[])
                    .await?
                    .map(|r| r.get::<_, i32>(0)))
            })
            .with_context(|| format!("PostgreSQL store {}", self.shown))?;
        match version {
            None => anyhow::bail!(
                "PostgreSQL store {}: no blindmatch schema (has `serve` run with this --store?)",
                self.shown
            ),
            Some(v) if v < SCHEMA_VERSION => anyhow::bail!(
                "PostgreSQL store {}: schema version {v} is older than this version's {SCHEMA_VERSION}: start this version's `serve` on it once (it migrates the store at start)",
                self.shown
            ),
            Some(v) if v > SCHEMA_VERSION => anyhow::bail!(
                "PostgreSQL store {}: schema version {v} is newer than this server's {SCHEMA_VERSION}",
                self.shown
            ),
            Some(_) => Ok(()),
        }
    }
}

/// Whether the blindmatch schema has been created (by any replica).
async fn schema_exists(c: &impl deadpool_postgres::GenericClient) -> Result<bool, StoreError> {
    Ok(c.query_one(
        "SELECT to_regclass('blindmatch.schema_version') IS NOT NULL",
        &[],
    )
    .await?
    .get(0))
}

/// The writable PostgreSQL store of one replica.
pub struct PgStore {
    pg: Pg,
    replica: Replica,
}

impl PgStore {
    /// Connects, creates or migrates the schema, and registers `replica`.
    ///
    /// # Errors
    /// If the URL is invalid, the database cannot be reached, or its schema
    /// is newer than this code.
    pub fn open(
        url: &str,
        password_file: Option<&std::path::Path>,
        replica: Replica,
    ) -> anyhow::Result<Self> {
        let pg = Pg::connect(url, password_file)?;
        pg.migrate()?;
        let mut store = PgStore { pg, replica };
        store
            .heartbeat()
            .with_context(|| format!("PostgreSQL store {}", store.pg.shown))?;
        Ok(store)
    }

    /// The replica this store writes as.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
}

fn to_i32(n: usize) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::Failed(format!("{n} does not fit a column")))
}

/// One submission's parameters, owned (they cross to the store's runtime).
struct Row {
    receipt: Receipt,
    account: Option<Vec<u8>>,
    digest: Option<Vec<u8>>,
    blob: Vec<u8>,
    count: i32,
    len: i32,
}

impl Store for PgStore {
    fn ingest(&mut self, submissions: &[NewSubmission<'_>]) -> Result<Vec<Ingested>, StoreError> {
        let rows = submissions
            .iter()
            .map(|n| {
                let (blob, len) = n.concat()?;
                Ok(Row {
                    receipt: n.receipt.clone(),
                    account: n.account.map(<[u8]>::to_vec),
                    count: to_i32(n.vouchers.len())?,
                    len: to_i32(len)?,
                    blob,
                    digest: n.digest.map(|d| d.to_vec()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let replica = self.replica.id.clone();
        self.pg.run(|pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // One statement per submission, all sent before the first answer
            // (tokio-postgres pipelines them): one round trip for the group.
            let named = tx
                .prepare_cached(
                    "WITH fresh AS (
                         INSERT INTO blindmatch.submissions (submission_id, digest, received_at_ms)
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1)
                     INSERT INTO blindmatch.pending
                         (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, claimed_by, account)
                     SELECT $1, $3, $4, $5, $6, $7, $8, $9 FROM fresh RETURNING id",
                )
                .await?;
            let unnamed = tx
                .prepare_cached(
                    "INSERT INTO blindmatch.pending
                         (submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, claimed_by, account)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .await?;
            let params: Vec<Vec<&(dyn tokio_postgres::types::ToSql + Sync)>> = rows
                .iter()
                .map(|r| {
                    let s = &r.receipt;
                    let mut p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        vec![&s.submission_id];
                    if let Some(d) = &r.digest {
                        p.push(d);
                    }
                    p.extend([
                        &s.received_at_ms as &(dyn tokio_postgres::types::ToSql + Sync),
                        &s.table_id,
                        &r.count,
                        &r.len,
                        &r.blob,
                        &replica,
                        &r.account,
                    ]);
                    p
                })
                .collect();
            let ids = futures_util::future::try_join_all(rows.iter().zip(&params).map(|(r, p)| {
                let stmt = if r.digest.is_some() { &named } else { &unnamed };
                tx.query_opt(stmt, p)
            }))
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for (r, id) in rows.into_iter().zip(ids) {
                match (id, r.digest) {
                    (Some(id), _) => out.push(Ingested::Stored { row: id.get(0) }),
                    (None, Some(digest)) => {
                        // Seen before (by any replica, or earlier in this
                        // group): a retry if the content is the same.
                        let stored: Option<Vec<u8>> = tx
                            .query_opt(
                                "SELECT digest FROM blindmatch.submissions WHERE submission_id = $1",
                                &[&r.receipt.submission_id],
                            )
                            .await?
                            .map(|row| row.get(0));
                        out.push(if stored == Some(digest) {
                            Ingested::Duplicate
                        } else {
                            Ingested::Conflict
                        });
                    }
                    (None, None) => {
                        return Err(StoreError::Failed("an insert returned no row".into()));
                    }
                }
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    fn complete(&mut self, evaluated: &[Evaluated<'_>]) -> Result<Vec<i64>, StoreError> {
        if evaluated.is_empty() {
            return Ok(Vec::new());
        }
        // A submission may be here twice (evaluated once as stored and once
        // as claimed back after another replica took it over and died): its
        // matches go in once, as SQLite's row-by-row delete ensures there.
        let mut seen = std::collections::HashSet::new();
        let evaluated: Vec<&Evaluated<'_>> =
            evaluated.iter().filter(|e| seen.insert(e.row)).collect();
        let rows: Vec<i64> = evaluated.iter().map(|e| e.row).collect();
        let (mut of, mut index, mut entry) = (Vec::new(), Vec::new(), Vec::new());
        let (mut kind, mut item, mut ad) = (Vec::new(), Vec::new(), Vec::new());
        let (mut c_of, mut c_t, mut c_x) = (Vec::new(), Vec::new(), Vec::new());
        let (mut c_index, mut c_position, mut c_share) = (Vec::new(), Vec::new(), Vec::new());
        for e in evaluated {
            match e.findings {
                Findings::Matches(matches) => {
                    for (i, m) in matches {
                        of.push(e.row);
                        index.push(i64::from(*i));
                        entry.push(i64::from(m.entry));
                        kind.push(m.item.item_type().name().to_owned());
                        item.push(m.item.to_hex());
                        ad.push(m.associated_data.clone());
                    }
                }
                // The account is the pending row's (the same bytes): the
                // statement below takes it from there.
                Findings::Candidates { t, candidates, .. } => {
                    for c in candidates {
                        c_of.push(e.row);
                        c_t.push(i32::from(*t));
                        c_x.push(i64::try_from(c.x).unwrap_or(i64::MAX));
                        c_index.push(i64::from(c.voucher_index));
                        c_position.push(i16::from(c.position));
                        c_share.push(c.share.clone());
                    }
                }
            }
        }
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            // One statement, so one implicit transaction and one round trip
            // per harvest: the rows deleted are exactly those whose matches
            // are inserted.
            let stmt = client
                .prepare_cached(
                    "WITH done AS (
                         DELETE FROM blindmatch.pending WHERE id = ANY($1)
                         RETURNING id, submission_id, received_at_ms, table_id, account),
                     candidates AS (
                         INSERT INTO blindmatch.candidates (account, t, x, state, submission_id, voucher_index, received_at_ms, table_id, position, share)
                         SELECT d.account, c.t, c.x, 0, d.submission_id, c.voucher_index::integer, d.received_at_ms, d.table_id, c.position, c.share
                         FROM done d
                         JOIN UNNEST($8::bigint[], $9::integer[], $10::bigint[], $11::bigint[], $12::smallint[], $13::bytea[])
                              AS c(row_id, t, x, voucher_index, position, share)
                           ON c.row_id = d.id
                         WHERE d.account IS NOT NULL
                         ORDER BY d.id, c.voucher_index
                         ON CONFLICT (account, t, x) DO NOTHING),
                     recorded AS (
                         INSERT INTO blindmatch.matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data)
                         SELECT d.submission_id, m.voucher_index::integer, d.received_at_ms, d.table_id, m.entry, m.item_type, m.item_hex, m.associated_data
                         FROM done d
                         JOIN UNNEST($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bytea[])
                              AS m(row_id, voucher_index, entry, item_type, item_hex, associated_data)
                           ON m.row_id = d.id
                         ORDER BY d.id, m.voucher_index)
                     SELECT id FROM done",
                )
                .await?;
            Ok(client
                .query(
                    &stmt,
                    &[
                        &rows,
                        &of,
                        &index,
                        &entry,
                        &kind,
                        &item,
                        &ad,
                        &c_of,
                        &c_t,
                        &c_x,
                        &c_index,
                        &c_position,
                        &c_share,
                    ],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn claim(
        &mut self,
        tables: &[String],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError> {
        let (replica, lease) = (self.replica.id.clone(), millis(self.replica.lease));
        let (tables, limit) = (tables.to_vec(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "WITH orphans AS (
                         SELECT p.id FROM blindmatch.pending p
                         WHERE p.table_id = ANY($2)
                           AND p.claimed_by IS DISTINCT FROM $1
                           AND NOT EXISTS (SELECT 1 FROM blindmatch.replicas r
                                           WHERE r.replica_id = p.claimed_by
                                             AND r.heartbeat_ms >= {NOW_MS} - $3)
                         ORDER BY p.id LIMIT $4
                         FOR UPDATE OF p SKIP LOCKED)
                     UPDATE blindmatch.pending p SET claimed_by = $1
                     FROM orphans o WHERE p.id = o.id
                     RETURNING p.id, p.submission_id, p.received_at_ms, p.table_id, p.voucher_count, p.voucher_len, p.vouchers, p.account"
                ))
                .await?;
            pending_rows(&client.query(&stmt, &[&replica, &tables, &lease, &limit]).await?)
        })
    }

    fn reclaim(
        &mut self,
        tables: &[String],
        held: &[i64],
        limit: usize,
    ) -> Result<Vec<PendingSubmission>, StoreError> {
        let replica = self.replica.id.clone();
        let (tables, held) = (tables.to_vec(), held.to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT id, submission_id, received_at_ms, table_id, voucher_count, voucher_len, vouchers, account
                     FROM blindmatch.pending
                     WHERE claimed_by = $1 AND table_id = ANY($2) AND NOT (id = ANY($3))
                     ORDER BY id LIMIT $4",
                )
                .await?;
            pending_rows(&client.query(&stmt, &[&replica, &tables, &held, &limit]).await?)
        })
    }

    fn heartbeat(&mut self) -> Result<(), StoreError> {
        let replica = self.replica.id.clone();
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "INSERT INTO blindmatch.replicas (replica_id, started_ms, heartbeat_ms)
                     VALUES ($1, {NOW_MS}, {NOW_MS})
                     ON CONFLICT (replica_id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms"
                ))
                .await?;
            client.execute(&stmt, &[&replica]).await?;
            Ok(())
        })
    }

    fn leave(&mut self) -> Result<(), StoreError> {
        let replica = self.replica.id.clone();
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    "DELETE FROM blindmatch.replicas WHERE replica_id = $1",
                    &[&replica],
                )
                .await?;
            Ok(())
        })
    }

    fn prune(
        &mut self,
        matches_before: Option<i64>,
        ids_before: i64,
    ) -> Result<Option<Pruned>, StoreError> {
        let forget = millis(FORGET_REPLICAS_AFTER);
        self.pg.run(|pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let mine: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1, $2)",
                    &[&LOCK_SPACE, &LOCK_PRUNE],
                )
                .await?
                .get(0);
            if !mine {
                return Ok(None);
            }
            let matches = match matches_before {
                Some(t) => {
                    tx.execute(
                        "DELETE FROM blindmatch.candidates WHERE received_at_ms < $1",
                        &[&t],
                    )
                    .await?;
                    tx.execute(
                        "DELETE FROM blindmatch.matches WHERE received_at_ms < $1",
                        &[&t],
                    )
                    .await?
                }
                None => 0,
            };
            let ids = tx
                .execute(
                    "DELETE FROM blindmatch.submissions s WHERE s.received_at_ms < $1
                     AND NOT EXISTS (SELECT 1 FROM blindmatch.pending p WHERE p.submission_id = s.submission_id)",
                    &[&ids_before],
                )
                .await?;
            tx.execute(
                &format!("DELETE FROM blindmatch.replicas WHERE heartbeat_ms < {NOW_MS} - $1"),
                &[&forget],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(Pruned {
                matches: usize::try_from(matches).unwrap_or(usize::MAX),
                ids: usize::try_from(ids).unwrap_or(usize::MAX),
            }))
        })
    }

    fn publish(&mut self, table_id: &str, version: u64) -> Result<Vec<Published>, StoreError> {
        let table_id = table_id.to_owned();
        let version = i64::try_from(version)
            .map_err(|_| StoreError::Failed(format!("version {version} does not fit")))?;
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    &format!(
                        "INSERT INTO blindmatch.versions (table_id, version, published_at_ms)
                         VALUES ($1, $2, {NOW_MS}) ON CONFLICT DO NOTHING"
                    ),
                    &[&table_id, &version],
                )
                .await?;
            versions(&client).await
        })
    }

    fn versions(&mut self) -> Result<Vec<Published>, StoreError> {
        self.pg
            .run(|pool| async move { versions(&*pool.get().await?).await })
    }

    fn stats(&mut self) -> Result<StoreStats, StoreError> {
        self.pg
            .run(|pool| async move { count(&*pool.get().await?).await })
    }

    fn pending(&mut self) -> Result<u64, StoreError> {
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached("SELECT count(*) FROM blindmatch.pending")
                .await?;
            let n: i64 = client.query_one(&stmt, &[]).await?.get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn unexamined(&mut self, limit: usize) -> Result<Vec<Account>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT account, t FROM blindmatch.candidates WHERE state = 0
                     GROUP BY account, t ORDER BY min(id) LIMIT $1",
                )
                .await?;
            client
                .query(&stmt, &[&limit])
                .await?
                .iter()
                .map(|r| {
                    Ok(Account {
                        id: r.get(0),
                        t: u16::try_from(r.get::<_, i32>(1))
                            .map_err(|_| StoreError::Failed("a threshold out of range".into()))?,
                    })
                })
                .collect()
        })
    }

    fn candidates(&mut self, account: &Account) -> Result<Vec<StoredCandidate>, StoreError> {
        let (id, t) = (account.id.clone(), i32::from(account.t));
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT id, share, table_id, position, state FROM blindmatch.candidates
                     WHERE account = $1 AND t = $2 ORDER BY id",
                )
                .await?;
            client
                .query(&stmt, &[&id, &t])
                .await?
                .iter()
                .map(|r| {
                    Ok(StoredCandidate {
                        id: r.get(0),
                        share: r.get(1),
                        table_id: r.get(2),
                        position: u8::try_from(r.get::<_, i16>(3))
                            .map_err(|_| StoreError::Failed("a position out of range".into()))?,
                        state: CandidateState::from_code(i64::from(r.get::<_, i16>(4)))?,
                    })
                })
                .collect()
        })
    }

    fn settle(
        &mut self,
        account: &Account,
        verdicts: &[(i64, Verdict)],
    ) -> Result<usize, StoreError> {
        let (id, t) = (account.id.clone(), i32::from(account.t));
        let verdicts = verdicts.to_vec();
        self.pg.run(|pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // Row locks make this exactly once across replicas: a second
            // settle of the same candidate waits for the first, then finds
            // it resolved and changes (and records) nothing.
            let hold = tx
                .prepare_cached(
                    "UPDATE blindmatch.candidates SET state = 1
                     WHERE id = $1 AND account = $2 AND t = $3 AND state = 0",
                )
                .await?;
            let resolve = tx
                .prepare_cached(
                    "UPDATE blindmatch.candidates SET state = $4
                     WHERE id = $1 AND account = $2 AND t = $3 AND state IN (0, 1)",
                )
                .await?;
            let record = tx
                .prepare_cached(
                    "INSERT INTO blindmatch.matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account)
                     SELECT submission_id, voucher_index, received_at_ms, table_id, $2, $3, $4, $5, account
                     FROM blindmatch.candidates WHERE id = $1",
                )
                .await?;
            let mut inserted = 0usize;
            for (row, verdict) in &verdicts {
                let changed = match verdict {
                    Verdict::Held => tx.execute(&hold, &[row, &id, &t]).await?,
                    v => {
                        tx.execute(&resolve, &[row, &id, &t, &v.state().code()])
                            .await?
                    }
                };
                if let (1, Verdict::Real(m)) = (changed, verdict) {
                    let n = tx
                        .execute(
                            &record,
                            &[
                                row,
                                &i64::from(m.entry),
                                &m.item.item_type().name(),
                                &m.item.to_hex(),
                                &m.associated_data,
                            ],
                        )
                        .await?;
                    inserted += usize::try_from(n).unwrap_or(0);
                }
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }
}

/// Pending rows as `claim` and `reclaim` return them (`id, submission_id,
/// received_at_ms, table_id, voucher_count, voucher_len, vouchers,
/// account`), oldest first.
fn pending_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<PendingSubmission>, StoreError> {
    let mut out = rows
        .iter()
        .map(|r| {
            let receipt = Receipt {
                submission_id: r.get(1),
                received_at_ms: r.get(2),
                table_id: r.get(3),
            };
            PendingSubmission::from_row(
                r.get(0),
                receipt,
                r.get(7),
                (i64::from(r.get::<_, i32>(4)), i64::from(r.get::<_, i32>(5))),
                r.get::<_, &[u8]>(6),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|s| s.row);
    Ok(out)
}

async fn versions(client: &tokio_postgres::Client) -> Result<Vec<Published>, StoreError> {
    Ok(client
        .query(
            "SELECT table_id, version, published_at_ms FROM blindmatch.versions ORDER BY version DESC",
            &[],
        )
        .await?
        .iter()
        .map(|r| Published {
            table_id: r.get(0),
            version: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            published_at_ms: r.get(2),
        })
        .collect())
}

async fn count(client: &tokio_postgres::Client) -> Result<StoreStats, StoreError> {
    let r = client
        .query_one(
            "SELECT (SELECT count(*) FROM blindmatch.pending),
                    (SELECT count(*) FROM blindmatch.submissions),
                    (SELECT count(*) FROM blindmatch.matches),
                    (SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'blindmatch' AND c.relkind = 'r')",
            &[],
        )
        .await?;
    let n = |i: usize| u64::try_from(r.get::<_, Option<i64>>(i).unwrap_or(0)).unwrap_or(0);
    Ok(StoreStats {
        pending: n(0),
        remembered_ids: n(1),
        matches: n(2),
        bytes_in_use: n(3),
    })
}

/// Row counts of the store at `url`, read without writing.
///
/// # Errors
/// If the store cannot be reached or has no schema.
pub fn stats(url: &str, password_file: Option<&std::path::Path>) -> anyhow::Result<StoreStats> {
    let pg = Pg::connect(url, password_file)?;
    pg.check_schema()?;
    Ok(pg.run(|pool| async move { count(&*pool.get().await?).await })?)
}

/// Every recorded match at `url`, oldest first, read without writing.
///
/// # Errors
/// If the store cannot be reached or has no schema.
pub fn read_all(
    url: &str,
    password_file: Option<&std::path::Path>,
) -> anyhow::Result<Vec<MatchRecord>> {
    let pg = Pg::connect(url, password_file)?;
    pg.check_schema()?;
    let rows = pg.run(|pool| async move {
        let client = pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {RECORD} FROM blindmatch.matches ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter()
            .map(record)
            .collect::<Result<Vec<_>, StoreError>>()
    })?;
    Ok(rows)
}

/// The columns of a match record, as [`record`] reads them.
const RECORD: &str = "id, submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data, account, recorded_at_ms";

fn record(r: &tokio_postgres::Row) -> Result<MatchRecord, StoreError> {
    Ok(MatchRecord {
        id: r.get(0),
        submission_id: r.get(1),
        voucher_index: u32::try_from(r.get::<_, i32>(2))
            .map_err(|_| StoreError::Failed("a negative voucher index".into()))?,
        received_at_ms: r.get(3),
        recorded_at_ms: r.get(10),
        table_id: r.get(4),
        entry: u32::try_from(r.get::<_, i64>(5))
            .map_err(|_| StoreError::Failed("an entry out of range".into()))?,
        item_type: r.get(6),
        item_hex: r.get(7),
        associated_data: r.get(8),
        account_hex: r.get::<_, Option<Vec<u8>>>(9).map(hex::encode),
    })
}

/// An `xid8` as the database prints it (a decimal number).
fn xid(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Failed(format!("transaction id {text:?} is not a number")))
}

/// Only records whose transaction is older than every one still running:
/// none can commit later with a smaller (txid, id).
const SETTLED: &str = "txid < pg_snapshot_xmin(pg_current_snapshot())";

/// The match feed of a PostgreSQL store: reads on a small pool; the
/// deliverer's lock, and the cursor it saves, on a session of its own.
pub struct PgFeed {
    pg: Pg,
    /// The session that holds the feed's advisory lock, while this process
    /// leads. Taken out of the pool: back in it, the lock would stay held
    /// by an idle connection.
    leader: Option<Arc<deadpool_postgres::ClientWrapper>>,
}

impl PgFeed {
    /// Connects to the store at `url`, which must exist at this code's
    /// schema version.
    ///
    /// # Errors
    /// If the URL is invalid, the database cannot be reached, or it has no
    /// schema or one of another version.
    pub fn open(url: &str, password_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let pg = Pg::connect(url, password_file)?;
        pg.check_schema()?;
        Ok(PgFeed { pg, leader: None })
    }
}

impl Feed for PgFeed {
    fn read(&mut self, after: Cursor, limit: usize) -> Result<Vec<FeedRecord>, StoreError> {
        let (txid, id) = (after.xid.to_string(), after.id);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {RECORD}, txid::text FROM blindmatch.matches
                     WHERE (txid, id) > ($1::text::xid8, $2) AND {SETTLED}
                     ORDER BY txid, id LIMIT $3"
                ))
                .await?;
            client
                .query(&stmt, &[&txid, &id, &limit])
                .await?
                .iter()
                .map(|r| {
                    let record = record(r)?;
                    Ok(FeedRecord {
                        cursor: Cursor {
                            xid: xid(r.get(11))?,
                            id: record.id,
                        },
                        record,
                    })
                })
                .collect()
        })
    }

    fn head(&mut self) -> Result<Cursor, StoreError> {
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    &format!(
                        "SELECT txid::text, id FROM blindmatch.matches WHERE {SETTLED}
                         ORDER BY txid DESC, id DESC LIMIT 1"
                    ),
                    &[],
                )
                .await?;
            match row {
                Some(r) => Ok(Cursor {
                    xid: xid(r.get(0))?,
                    id: r.get(1),
                }),
                None => Ok(Cursor::START),
            }
        })
    }

    fn resolve(&mut self, given: Cursor) -> Result<Cursor, StoreError> {
        if given.xid != 0 || given.id == 0 {
            return Ok(given);
        }
        let id = given.id;
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT txid::text FROM blindmatch.matches WHERE id = $1",
                    &[&id],
                )
                .await?;
            match row {
                Some(r) => Ok(Cursor {
                    xid: xid(r.get(0))?,
                    id,
                }),
                None => Err(StoreError::Failed(format!(
                    "no match record has id {id} (pruned, or never written): give a line's cursor instead"
                ))),
            }
        })
    }

    fn backlog(&mut self, after: Cursor) -> Result<u64, StoreError> {
        let (txid, id) = (after.xid.to_string(), after.id);
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT count(*) FROM blindmatch.matches WHERE (txid, id) > ($1::text::xid8, $2)",
                )
                .await?;
            let n: i64 = client.query_one(&stmt, &[&txid, &id]).await?.get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn lead(&mut self) -> Result<bool, StoreError> {
        let held = self.leader.take();
        let leader = self.pg.run(|pool| async move {
            if let Some(client) = held {
                // The lock lasts as long as its session: alive, still ours.
                // Dead (the database restarted, the network dropped it),
                // released, and perhaps taken by another replica.
                return match client.simple_query("SELECT 1").await {
                    Ok(_) => Ok(Some(client)),
                    Err(e) => {
                        tracing::warn!(error = %e, "the feed's lock session ended: no longer delivering");
                        Ok(None)
                    }
                };
            }
            let client = pool.get().await?;
            let mine: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&LOCK_SPACE, &LOCK_FEED],
                )
                .await?
                .get(0);
            Ok(mine.then(|| Arc::new(deadpool_postgres::Object::take(client))))
        })?;
        let leads = leader.is_some();
        self.leader = leader;
        Ok(leads)
    }

    fn saved(&mut self, name: &str) -> Result<Option<Cursor>, StoreError> {
        let name = name.to_owned();
        self.pg.run(|pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT after_txid::text, after_id FROM blindmatch.feed_cursors WHERE name = $1",
                    &[&name],
                )
                .await?;
            row.map(|r| {
                Ok(Cursor {
                    xid: xid(r.get(0))?,
                    id: r.get(1),
                })
            })
            .transpose()
        })
    }

    fn save(&mut self, name: &str, cursor: Cursor) -> Result<(), StoreError> {
        let Some(leader) = self.leader.clone() else {
            return Err(StoreError::Failed(
                "this replica does not deliver the feed (another one holds its lock)".into(),
            ));
        };
        let (name, txid, id) = (name.to_owned(), cursor.xid.to_string(), cursor.id);
        let out = self.pg.run(|_| async move {
            // On the lock's session: if it is gone, so is the lock, and the
            // cursor is another replica's to move now.
            leader
                .execute(
                    "INSERT INTO blindmatch.feed_cursors (name, after_txid, after_id)
                     VALUES ($1, $2::text::xid8, $3)
                     ON CONFLICT (name) DO UPDATE
                     SET after_txid = EXCLUDED.after_txid, after_id = EXCLUDED.after_id
                     WHERE (feed_cursors.after_txid, feed_cursors.after_id)
                         < (EXCLUDED.after_txid, EXCLUDED.after_id)",
                    &[&name, &txid, &id],
                )
                .await?;
            Ok(())
        });
        if out.is_err() {
            self.leader = None;
        }
        out
    }
}

/// Every account with candidates at `url`, counted by state, read without
/// writing.
///
/// # Errors
/// If the store cannot be reached or has no schema.
pub fn read_accounts(
    url: &str,
    password_file: Option<&std::path::Path>,
) -> anyhow::Result<Vec<AccountSummary>> {
    let pg = Pg::connect(url, password_file)?;
    pg.check_schema()?;
    Ok(pg.run(|pool| async move {
        let client = pool.get().await?;
        let rows = client
            .query(
                "SELECT account, t,
                        count(*) FILTER (WHERE state IN (0, 1)),
                        count(*) FILTER (WHERE state = 2),
                        count(*) FILTER (WHERE state = 3),
                        count(*) FILTER (WHERE state = 4)
                 FROM blindmatch.candidates GROUP BY account, t ORDER BY min(id)",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let n = |i: usize| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
                Ok(AccountSummary {
                    account_hex: hex::encode(r.get::<_, Vec<u8>>(0)),
                    t: u16::try_from(r.get::<_, i32>(1))
                        .map_err(|_| StoreError::Failed("a threshold out of range".into()))?,
                    unrevealed: n(2),
                    real: n(3),
                    synthetic: n(4),
                    rejected: n(5),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_libpq_tls_options_are_understood() {
        assert_eq!(
            redact("postgres://bm:s3cret@db.example:5432/bm?sslmode=require&password=x"),
            "postgres://bm:***@db.example:5432/bm?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://bm@db/bm"), "postgres://bm@db/bm");
        let p = parse("postgres://bm@db/bm?sslmode=verify-full&sslrootcert=/etc/ca.pem").unwrap();
        assert!(p.tls);
        assert_eq!(p.ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(!parse("postgres://bm@db/bm").unwrap().tls);
        let e = parse("postgres://bm@db/bm?sslmode=sometimes")
            .err()
            .unwrap();
        assert!(e.contains("sslmode=sometimes"), "{e}");
        let e = parse("postgres://bm:hunter2@db/bm?bogus=1").err().unwrap();
        assert!(!e.contains("hunter2"), "{e}");
        let e = check_url("postgres://bm:hunter2@db/bm").err().unwrap();
        assert!(
            e.contains("--store-password-file") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
