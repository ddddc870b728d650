//! `serve`'s configuration, from four layers in order of precedence: flags,
//! `BLINDMATCH_*` environment variables, a TOML file (`--config`), and the
//! defaults. Secrets are never values here, only paths to files holding them.
//!
//! The TOML file uses the flags' names without the dashes' prefix:
//!
//! ```toml
//! table = "/srv/blindmatch/table.bmt"
//! key = "/srv/blindmatch/server.key"
//! data = "/var/lib/blindmatch"        # SQLite, the default; or, for replicas:
//! # store = "postgres://blindmatch@db.internal/blindmatch?sslmode=require"
//! # store-password-file = "/etc/blindmatch/db-password"
//! # lease = "10s"
//! listen = "0.0.0.0:50051"
//! max-batch = 1024
//! retain-matches = "365d"
//! dedup-window = "24h"
//! max-store-mib = 10240
//! admin-listen = "127.0.0.1:9464"
//! drain-timeout = "30s"
//! request-timeout = "30s"
//! max-concurrent-per-connection = 64
//! rate-limit = 50
//! max-inflight-mib = 128
//! max-connections = 1024
//! max-connections-per-client = 32
//! idle-timeout = "60s"
//! body-timeout = "10s"
//! tls-cert = "/etc/blindmatch/tls/server.crt"
//! tls-key = "/etc/blindmatch/tls/server.key"
//! tls-client-ca = "/etc/blindmatch/tls/clients-ca.crt"   # mutual TLS
//! # plaintext = true      # instead of the tls-* keys: no TLS, only when asked for
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::pipeline::{DEFAULT_DEDUP_WINDOW, Retention};
use crate::serve::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_GRACE, DEFAULT_MAX_BATCH, Limits, ServeConfig, TlsFiles,
};
use crate::store::Location;

/// Default address to listen on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// `serve`'s flags. Each can also come from its environment variable or the
/// config file; a flag wins over the variable, the variable over the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flag names without `--`).
    #[arg(long, env = "BLINDMATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The table file from `build`.
    #[arg(long, env = "BLINDMATCH_TABLE", value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// The server key file (a path: the key itself is never a flag).
    #[arg(long, env = "BLINDMATCH_KEY", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Directory for the match database (SQLite, one server).
    #[arg(
        long,
        env = "BLINDMATCH_DATA",
        value_name = "DIR",
        conflicts_with = "store"
    )]
    pub data: Option<PathBuf>,
    /// The store shared by replicas: `postgres://USER@HOST:PORT/DB?sslmode=require`
    /// (or sqlite:DIR, as --data). Its password, if any, goes in --store-password-file.
    #[arg(long, env = "BLINDMATCH_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// File holding the PostgreSQL password (mode 0600).
    #[arg(long, env = "BLINDMATCH_STORE_PASSWORD_FILE", value_name = "PATH")]
    pub store_password_file: Option<PathBuf>,
    /// How long a replica's claim on pending work outlives its last heartbeat
    /// before other replicas take the work over [default: 10s].
    #[arg(long, env = "BLINDMATCH_LEASE", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub lease: Option<Duration>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "BLINDMATCH_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Most vouchers per submission [default: 1024].
    #[arg(long, env = "BLINDMATCH_MAX_BATCH", value_name = "N")]
    pub max_batch: Option<usize>,
    /// Delete match records older than this (e.g. `90d`, `1y`) [default: keep them].
    #[arg(long, env = "BLINDMATCH_RETAIN_MATCHES", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub retain_matches: Option<Duration>,
    /// How long a client-chosen submission id is remembered, so that a retry is stored once
    /// [default: 24h].
    #[arg(long, env = "BLINDMATCH_DEDUP_WINDOW", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub dedup_window: Option<Duration>,
    /// Largest the match database may grow, in MiB; past it submissions are refused
    /// (RESOURCE_EXHAUSTED), as on a full disk [default: the disk's size].
    #[arg(long, env = "BLINDMATCH_MAX_STORE_MIB", value_name = "MIB")]
    pub max_store_mib: Option<u64>,
    /// Address for the admin listener: Prometheus `/metrics`, `/live`, `/ready` [default: none].
    #[arg(long, env = "BLINDMATCH_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// At SIGTERM/SIGINT, how long in-flight submissions and evaluation may take before the
    /// server exits anyway [default: 30s].
    #[arg(long, env = "BLINDMATCH_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// After a reload (SIGHUP or `POST /reload` on the admin listener), how long vouchers made
    /// for the replaced table version are still accepted and evaluated under its key; after it
    /// that version and its key are dropped [default: 1h].
    #[arg(long, env = "BLINDMATCH_GRACE", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub grace: Option<Duration>,
    /// After a restart during a grace period: the replaced version's table file, accepted for
    /// --grace from the start so that its pending submissions are evaluated (with --previous-key).
    #[arg(
        long,
        env = "BLINDMATCH_PREVIOUS_TABLE",
        value_name = "PATH",
        requires = "previous_key"
    )]
    pub previous_table: Option<PathBuf>,
    /// The operator's verifying key (64 hex digits, or a file holding them): a table whose
    /// manifest it did not sign is refused at start and at reload, as clients would refuse it.
    #[arg(long, env = "BLINDMATCH_OPERATOR_KEY", value_name = "HEX|PATH")]
    pub operator_key: Option<String>,
    /// The replaced version's key file (with --previous-table).
    #[arg(
        long,
        env = "BLINDMATCH_PREVIOUS_KEY",
        value_name = "PATH",
        requires = "previous_table"
    )]
    pub previous_key: Option<PathBuf>,
    /// A request not answered within this is cancelled [default: 30s].
    #[arg(long, env = "BLINDMATCH_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Requests served at once on one connection; more wait [default: 64].
    #[arg(
        long,
        env = "BLINDMATCH_MAX_CONCURRENT_PER_CONNECTION",
        value_name = "N"
    )]
    pub max_concurrent_per_connection: Option<usize>,
    /// Submissions a second accepted from one IP address (burst as many); more get
    /// RESOURCE_EXHAUSTED [default: no limit].
    #[arg(long, env = "BLINDMATCH_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<u32>,
    /// Memory that submissions in flight may hold, from receipt until their results are
    /// recorded, in MiB; one client may hold at most half (less when more are active). A
    /// submission that does not fit is refused at once (RESOURCE_EXHAUSTED, retryable)
    /// [default: 128].
    #[arg(long, env = "BLINDMATCH_MAX_INFLIGHT_MIB", value_name = "MIB")]
    pub max_inflight_mib: Option<usize>,
    /// Open connections in total; more are closed at once [default: 1024].
    #[arg(long, env = "BLINDMATCH_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open connections from one client address (IPv6: one /64) [default: 32].
    #[arg(long, env = "BLINDMATCH_MAX_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub max_connections_per_client: Option<usize>,
    /// A connection with no traffic either way for this long is closed; longer than
    /// --request-timeout [default: 60s].
    #[arg(long, env = "BLINDMATCH_IDLE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// A request's body must arrive within this of its headers (slow senders are cut off)
    /// [default: 10s].
    #[arg(long, env = "BLINDMATCH_BODY_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub body_timeout: Option<Duration>,
    /// TLS certificate chain (PEM) for the gRPC listener.
    #[arg(long, env = "BLINDMATCH_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM, mode 0600).
    #[arg(long, env = "BLINDMATCH_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by this CA (PEM): mutual TLS.
    #[arg(long, env = "BLINDMATCH_TLS_CLIENT_CA", value_name = "PATH")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve without TLS. Never the default: without --tls-cert/--tls-key this must be given.
    #[arg(long, env = "BLINDMATCH_PLAINTEXT")]
    pub plaintext: bool,
    /// Also speak gRPC-Web (and HTTP/1.1), for browsers, to pages from this origin
    /// (`https://app.example`; repeat for more; `*` for any). Off unless given.
    #[arg(
        long = "grpc-web-origin",
        env = "BLINDMATCH_GRPC_WEB_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub grpc_web_origins: Vec<String>,
}

/// The config file's contents: every field optional, unknown keys refused.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    table: Option<PathBuf>,
    key: Option<PathBuf>,
    data: Option<PathBuf>,
    store: Option<String>,
    store_password_file: Option<PathBuf>,
    lease: Option<String>,
    listen: Option<SocketAddr>,
    max_batch: Option<usize>,
    retain_matches: Option<String>,
    dedup_window: Option<String>,
    max_store_mib: Option<u64>,
    admin_listen: Option<SocketAddr>,
    drain_timeout: Option<String>,
    grace: Option<String>,
    previous_table: Option<PathBuf>,
    previous_key: Option<PathBuf>,
    operator_key: Option<String>,
    request_timeout: Option<String>,
    max_concurrent_per_connection: Option<usize>,
    rate_limit: Option<u32>,
    max_inflight_mib: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    idle_timeout: Option<String>,
    body_timeout: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    plaintext: Option<bool>,
    grpc_web_origins: Option<Vec<String>>,
}

impl FileConfig {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

/// A duration setting: the flag (or environment) if given, else the config
/// file's value, parsed here so that a malformed one names its key.
fn duration(
    flag: Option<Duration>,
    file: &Path,
    key: &str,
    value: Option<String>,
) -> anyhow::Result<Option<Duration>> {
    if flag.is_some() {
        return Ok(flag);
    }
    value
        .map(|v| {
            humantime::parse_duration(&v)
                .with_context(|| format!("config file {}: {key} = {v:?}", file.display()))
        })
        .transpose()
}

impl ServeArgs {
    /// Merges flags and environment (already in `self`) over the config
    /// file over the defaults, and checks the result.
    ///
    /// # Errors
    /// If the config file cannot be read or parsed (naming it, and the line
    /// for a syntax error), a required setting is missing, or a value is out
    /// of range.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let (file, path) = match &self.config {
            Some(p) => (FileConfig::read(p)?, p.clone()),
            None => (FileConfig::default(), PathBuf::new()),
        };
        let required = |flag: Option<PathBuf>, file: Option<PathBuf>, name: &str| {
            flag.or(file).with_context(|| {
                format!(
                    "missing --{name} (or BLINDMATCH_{}, or `{name}` in the --config file)",
                    name.to_uppercase()
                )
            })
        };
        let table = required(self.table, file.table, "table")?;
        let key = required(self.key, file.key, "key")?;
        let store = match (self.data, self.store, file.data, file.store) {
            (Some(dir), None, ..) => Location::Sqlite(dir),
            (None, Some(url), ..) => {
                Location::parse(&url, None).map_err(|e| anyhow::anyhow!("--store {e}"))?
            }
            (None, None, Some(_), Some(_)) => bail!(
                "config file {}: data and store contradict each other: give one",
                path.display()
            ),
            (None, None, Some(dir), None) => Location::Sqlite(dir),
            (None, None, None, Some(url)) => Location::parse(&url, None)
                .map_err(|e| anyhow::anyhow!("config file {}: store = {e}", path.display()))?,
            (None, None, None, None) => bail!(
                "missing --data DIR (SQLite) or --store URL (PostgreSQL) (or BLINDMATCH_DATA / BLINDMATCH_STORE, or `data` / `store` in the --config file)"
            ),
            (Some(_), Some(_), ..) => bail!("--data and --store contradict each other: give one"),
        };
        let password_file = self.store_password_file.or(file.store_password_file);
        let store = match (store, password_file) {
            (Location::Postgres { url, .. }, password_file) => {
                Location::Postgres { url, password_file }
            }
            (Location::Sqlite(_), Some(_)) => {
                bail!("store-password-file is for a PostgreSQL --store, not SQLite")
            }
            (sqlite, None) => sqlite,
        };
        let lease = duration(self.lease, &path, "lease", file.lease)?
            .unwrap_or(crate::store::DEFAULT_LEASE);
        if lease < Duration::from_secs(1) {
            bail!("lease must be at least 1s: four heartbeats per lease must fit in it");
        }
        let listen = match self.listen.or(file.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse()?,
        };
        let max_batch = self
            .max_batch
            .or(file.max_batch)
            .unwrap_or(DEFAULT_MAX_BATCH);
        if max_batch == 0 {
            bail!("max-batch must be at least 1");
        }
        let retain_matches = duration(
            self.retain_matches,
            &path,
            "retain-matches",
            file.retain_matches,
        )?;
        let dedup_window = duration(self.dedup_window, &path, "dedup-window", file.dedup_window)?
            .unwrap_or(DEFAULT_DEDUP_WINDOW);
        if retain_matches.is_some_and(|d| d.is_zero()) || dedup_window.is_zero() {
            bail!("retain-matches and dedup-window must be longer than zero");
        }
        let max_store_mib = self.max_store_mib.or(file.max_store_mib);
        if max_store_mib == Some(0) {
            bail!("max-store-mib must be at least 1");
        }
        let drain_timeout = duration(
            self.drain_timeout,
            &path,
            "drain-timeout",
            file.drain_timeout,
        )?
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
        let grace = duration(self.grace, &path, "grace", file.grace)?.unwrap_or(DEFAULT_GRACE);
        let previous = match (
            self.previous_table.or(file.previous_table),
            self.previous_key.or(file.previous_key),
        ) {
            (Some(t), Some(k)) => Some((t, k)),
            (None, None) => None,
            _ => bail!("previous-table and previous-key go together: give both"),
        };
        let operator_key = match self.operator_key.or(file.operator_key) {
            Some(v) => Some(crate::keyfile::operator_key(&v).context("operator-key")?),
            None => None,
        };
        let defaults = Limits::default();
        let request_timeout = duration(
            self.request_timeout,
            &path,
            "request-timeout",
            file.request_timeout,
        )?
        .unwrap_or(defaults.request_timeout);
        let max_concurrent_per_connection = self
            .max_concurrent_per_connection
            .or(file.max_concurrent_per_connection)
            .unwrap_or(defaults.max_concurrent_per_connection);
        if request_timeout.is_zero() || max_concurrent_per_connection == 0 {
            bail!("request-timeout and max-concurrent-per-connection must be more than zero");
        }
        let rate_limit = match self.rate_limit.or(file.rate_limit) {
            Some(0) => bail!("rate-limit must be at least 1 (leave it out for no limit)"),
            r => r.and_then(std::num::NonZeroU32::new),
        };
        let max_inflight_mib = self
            .max_inflight_mib
            .or(file.max_inflight_mib)
            .unwrap_or(defaults.max_inflight_bytes >> 20);
        // Two maximal submissions at least: one per source is always allowed.
        let two_max = 2 * crate::serve::max_submission_charge(max_batch);
        if max_inflight_mib.saturating_mul(1 << 20) < two_max {
            bail!(
                "max-inflight-mib {max_inflight_mib} is below what two of the largest submissions need at max-batch {max_batch} ({} MiB): raise it, or lower max-batch",
                two_max.div_ceil(1 << 20)
            );
        }
        let max_total = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.connections.max_total);
        let max_per_source = self
            .max_connections_per_client
            .or(file.max_connections_per_client)
            .unwrap_or(defaults.connections.max_per_source);
        if max_total == 0 || max_per_source == 0 {
            bail!("max-connections and max-connections-per-client must be at least 1");
        }
        let idle_timeout = duration(self.idle_timeout, &path, "idle-timeout", file.idle_timeout)?
            .unwrap_or(defaults.connections.idle_timeout);
        if idle_timeout <= request_timeout {
            bail!(
                "idle-timeout ({}) must be longer than request-timeout ({}): a call waiting for its answer would look idle",
                humantime::format_duration(idle_timeout),
                humantime::format_duration(request_timeout)
            );
        }
        let body_timeout = duration(self.body_timeout, &path, "body-timeout", file.body_timeout)?
            .unwrap_or(defaults.body_timeout);
        if body_timeout.is_zero() {
            bail!("body-timeout must be longer than zero");
        }
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
            self.tls_client_ca.or(file.tls_client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (None, None, Some(_)) => bail!("tls-client-ca needs tls-cert and tls-key"),
            _ => bail!("tls-cert and tls-key go together: give both"),
        };
        let plaintext = self.plaintext || file.plaintext == Some(true);
        match (&tls, plaintext) {
            (None, false) => bail!(
                "no TLS: give --tls-cert and --tls-key (or BLINDMATCH_TLS_*, or tls-cert and tls-key in the config file), \
                 or --plaintext to serve without TLS (on loopback or behind a TLS-terminating proxy)"
            ),
            (Some(_), true) => {
                bail!("--plaintext and TLS settings contradict each other: give one")
            }
            _ => {}
        }
        let grpc_web_origins = if self.grpc_web_origins.is_empty() {
            file.grpc_web_origins.unwrap_or_default()
        } else {
            self.grpc_web_origins
        };
        for origin in &grpc_web_origins {
            let scheme = origin.starts_with("http://") || origin.starts_with("https://");
            if !(origin == "*" || scheme && http::HeaderValue::from_str(origin).is_ok()) {
                bail!(
                    "grpc-web-origin {origin:?}: give an origin such as https://app.example (scheme, host, port; no path), or *"
                );
            }
        }
        Ok(ServeConfig {
            tls,
            max_batch,
            grpc_web_origins,
            admin_listen: self.admin_listen.or(file.admin_listen),
            drain_timeout,
            grace,
            previous,
            operator_key,
            limits: Limits {
                request_timeout,
                max_concurrent_per_connection,
                submissions_per_second_per_ip: rate_limit,
                max_inflight_bytes: max_inflight_mib.saturating_mul(1 << 20),
                connections: crate::ConnectionLimits {
                    max_total,
                    max_per_source,
                    idle_timeout,
                },
                body_timeout,
            },
            retention: Retention::new(retain_matches, dedup_window),
            max_store_bytes: max_store_mib.map(|m| m.saturating_mul(1 << 20)),
            store,
            lease,
            ..ServeConfig::new(table, key, PathBuf::new(), listen)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("serve.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "table = \"t.bmt\"\nkey = \"k.key\"\ndata = \"d\"\nmax-batch = 10\ndedup-window = \"2h\"\nplaintext = true\n",
        );
        let cfg = ServeArgs {
            config: Some(config),
            max_batch: Some(30),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cfg.max_batch, 30, "the flag wins");
        assert_eq!(cfg.table, PathBuf::from("t.bmt"), "the file fills in");
        assert_eq!(cfg.retention.dedup_window, Duration::from_secs(7200));
        assert_eq!(cfg.listen, DEFAULT_LISTEN.parse().unwrap(), "the default");
        assert_eq!(cfg.retention.matches, None);
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            format!(
                "{:#}",
                ServeArgs {
                    config: Some(write(dir.path(), text)),
                    ..ServeArgs::default()
                }
                .resolve()
                .unwrap_err()
            )
        };
        let e = err("table = \"t\"\nkey = \"k\"\n");
        assert!(
            e.contains("missing --data") && e.contains("BLINDMATCH_DATA"),
            "{e}"
        );
        let e = err("tabel = \"t\"\n");
        assert!(e.contains("serve.toml") && e.contains("tabel"), "{e}");
        let e = err("table = \"t\"\nkey = \"k\"\ndata = \"d\"\ndedup-window = \"soon\"\n");
        assert!(e.contains("dedup-window = \"soon\""), "{e}");
        let e = err("table = \"t\"\nkey = \"k\"\ndata = \"d\"\nmax-batch = 0\n");
        assert!(e.contains("max-batch must be at least 1"), "{e}");
        let e = err("table = \"t\"\nkey = \"k\"\ndata = \"d\"\n");
        assert!(e.contains("no TLS") && e.contains("--plaintext"), "{e}");
        let e = err("table = \"t\"\nkey = \"k\"\ndata = \"d\"\ntls-cert = \"c\"\n");
        assert!(e.contains("tls-cert and tls-key go together"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\ntls-cert = \"c\"\ntls-key = \"k\"\nplaintext = true\n",
        );
        assert!(e.contains("contradict"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\ngrpc-web-origins = [\"app.example\"]\n",
        );
        assert!(e.contains("grpc-web-origin \"app.example\""), "{e}");
        let ok = ServeArgs {
            config: Some(write(
                dir.path(),
                "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\ngrpc-web-origins = [\"https://app.example\", \"*\"]\n",
            )),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(ok.grpc_web_origins, ["https://app.example", "*"]);
        let e = err("listen = [\n");
        assert!(e.contains("serve.toml") && e.contains("line 1"), "{e}");
        let missing = ServeArgs {
            config: Some(dir.path().join("nope.toml")),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{missing:#}").contains("nope.toml"));
    }
}
