//! `serve`'s settings, each declared once.
//!
//! Every setting is one field of one of the groups below ([`TableSettings`],
//! [`StoreSettings`], [`ListenSettings`], [`LimitSettings`], [`FeedSettings`], flattened into
//! [`ServeArgs`]): its flag, its `BLINDMATCH_*` environment variable, its
//! default (shown by `serve --help`) and its parser are that field's
//! attributes, and nowhere else. A TOML file (`--config`) sets any of them
//! under the field's name in kebab case (the flag's name, but
//! `grpc-web-origins` for the repeatable `--grpc-web-origin`):
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
//! # grpc-web-origins = ["https://app.example"]
//! # webhook = "https://hooks.internal/blindmatch"
//! # webhook-secret-file = "/etc/blindmatch/webhook.secret"
//! # webhook-max-backoff = "5m"
//! ```
//!
//! The layers merge generically, in one order: a flag, then its environment
//! variable (both clap's), then the file, then the default. The file's
//! values are parsed by the same clap parsers as the flags (a duration is
//! `humantime` in both, a bad value names its key), and they fill in exactly
//! the settings that neither a flag nor the environment gave
//! ([`clap::parser::ValueSource`]). The merged [`ServeArgs`] is then
//! checked as a whole into a [`ServeConfig`] by `TryFrom`, the one place
//! that knows how settings relate (TLS or `--plaintext`, `--data` or
//! `--store`, timeouts against each other). Secrets are never values here,
//! only paths to files holding them.
//!
//! Cargo layers its configuration the same way (one struct per table,
//! `CargoBuildConfig`, over files and `CARGO_*` variables); here clap's own
//! parsers read the file too, so that a value means the same in a flag,
//! the environment and the file.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};

use crate::feed::webhook::{DEFAULT_MAX_BACKOFF, WebhookSettings};
use crate::pipeline::{DEFAULT_DEDUP_WINDOW, Retention};
use crate::serve::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_GRACE, DEFAULT_MAX_BATCH, DEFAULT_MAX_INFLIGHT_MIB, Limits,
    ServeConfig, TlsFiles,
};
use crate::store::{DEFAULT_LEASE, Location};

/// Default address to listen on.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    50051,
));

/// A duration as flags and files write it (`30s`, `24h`, `1y`), shown so by
/// `--help`.
type HumanDuration = humantime::Duration;

/// `serve`'s settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flag names without `--`).
    #[arg(long, env = "BLINDMATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The table, its key, and the versions served.
    #[command(flatten, next_help_heading = "Table")]
    pub table: TableSettings,
    /// Where submissions and matches are kept.
    #[command(flatten, next_help_heading = "Store")]
    pub store: StoreSettings,
    /// What the server listens on, and how.
    #[command(flatten, next_help_heading = "Listeners")]
    pub listen: ListenSettings,
    /// What one client can make the server hold.
    #[command(flatten, next_help_heading = "Limits")]
    pub limits: LimitSettings,
    /// Acting on matches: the webhook.
    #[command(flatten, next_help_heading = "Match feed")]
    pub feed: FeedSettings,
}

/// The webhook (README, "Acting on matches").
#[derive(Debug, Clone, clap::Args)]
pub struct FeedSettings {
    /// POST each new match record to this http:// or https:// URL, signed as Standard Webhooks
    /// say (with --webhook-secret-file), retried until it answers 2xx [default: none].
    #[arg(long, env = "BLINDMATCH_WEBHOOK", value_name = "URL")]
    pub webhook: Option<String>,
    /// The webhook's signing secret: `whsec_` and the base64 of 24 to 64 random bytes, in a
    /// file of mode 0600 (the receiver holds the same).
    #[arg(long, env = "BLINDMATCH_WEBHOOK_SECRET_FILE", value_name = "PATH")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The longest wait between two attempts to deliver a record (the first retry comes after
    /// 1 s, each next after twice as long, with jitter).
    #[arg(long, env = "BLINDMATCH_WEBHOOK_MAX_BACKOFF", value_name = "DURATION", default_value_t = DEFAULT_MAX_BACKOFF.into())]
    pub webhook_max_backoff: HumanDuration,
}

/// The table served, its key, and the versions it replaced.
#[derive(Debug, Clone, clap::Args)]
pub struct TableSettings {
    /// The table file from `build` (required).
    #[arg(long, env = "BLINDMATCH_TABLE", value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// The server key file (a path: the key itself is never a flag; required).
    #[arg(long, env = "BLINDMATCH_KEY", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// The operator's verifying key (64 hex digits, or a file holding them): a table whose
    /// manifest it did not sign is refused at start and at reload, as clients would refuse it.
    #[arg(long, env = "BLINDMATCH_OPERATOR_KEY", value_name = "HEX|PATH")]
    pub operator_key: Option<String>,
    /// After a reload (SIGHUP or `POST /reload` on the admin listener), how long vouchers made
    /// for the replaced table version are still accepted and evaluated under its key; after it
    /// that version and its key are dropped.
    #[arg(long, env = "BLINDMATCH_GRACE", value_name = "DURATION", default_value_t = DEFAULT_GRACE.into())]
    pub grace: HumanDuration,
    /// After a restart during a grace period: the replaced version's table file, accepted for
    /// --grace from the start so that its pending submissions are evaluated (with --previous-key).
    #[arg(long, env = "BLINDMATCH_PREVIOUS_TABLE", value_name = "PATH")]
    pub previous_table: Option<PathBuf>,
    /// The replaced version's key file (with --previous-table).
    #[arg(long, env = "BLINDMATCH_PREVIOUS_KEY", value_name = "PATH")]
    pub previous_key: Option<PathBuf>,
    /// The transparency log's directory (`log init`; SPEC Section 16), with --log-policy: every
    /// version served must be logged under a checkpoint that meets the policy; GetManifest
    /// serves its proofs, and the admin listener its files under /log/.
    #[arg(long, env = "BLINDMATCH_LOG", value_name = "DIR")]
    pub log: Option<PathBuf>,
    /// The log's policy (c2sp.org/tlog-policy: the log key, the witnesses, the quorum), the one
    /// clients pin (with --log).
    #[arg(long, env = "BLINDMATCH_LOG_POLICY", value_name = "PATH")]
    pub log_policy: Option<PathBuf>,
}

/// The store, and how long it keeps what it keeps.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreSettings {
    /// Directory for the match database (SQLite, one server).
    #[arg(long, env = "BLINDMATCH_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The store shared by replicas: `postgres://USER@HOST:PORT/DB?sslmode=require`
    /// (or sqlite:DIR, as --data). Its password, if any, goes in --store-password-file.
    #[arg(long, env = "BLINDMATCH_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// File holding the PostgreSQL password (mode 0600).
    #[arg(long, env = "BLINDMATCH_STORE_PASSWORD_FILE", value_name = "PATH")]
    pub store_password_file: Option<PathBuf>,
    /// How long a replica's claim on pending work outlives its last heartbeat before other
    /// replicas take the work over.
    #[arg(long, env = "BLINDMATCH_LEASE", value_name = "DURATION", default_value_t = DEFAULT_LEASE.into())]
    pub lease: HumanDuration,
    /// Delete match records older than this (e.g. `90d`, `1y`) [default: keep them].
    #[arg(long, env = "BLINDMATCH_RETAIN_MATCHES", value_name = "DURATION")]
    pub retain_matches: Option<HumanDuration>,
    /// How long a client-chosen submission id is remembered, so that a retry is stored once.
    #[arg(long, env = "BLINDMATCH_DEDUP_WINDOW", value_name = "DURATION", default_value_t = DEFAULT_DEDUP_WINDOW.into())]
    pub dedup_window: HumanDuration,
    /// Largest the match database may grow, in MiB; past it submissions are refused
    /// (RESOURCE_EXHAUSTED), as on a full disk [default: the disk's size].
    #[arg(long, env = "BLINDMATCH_MAX_STORE_MIB", value_name = "MIB")]
    pub max_store_mib: Option<u64>,
}

/// The listeners.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenSettings {
    /// Address to listen on.
    #[arg(long, env = "BLINDMATCH_LISTEN", value_name = "ADDR", default_value_t = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address for the admin listener: Prometheus `/metrics`, `/live`, `/ready` [default: none].
    #[arg(long, env = "BLINDMATCH_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
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
    /// At SIGTERM/SIGINT, how long in-flight submissions and evaluation may take before the
    /// server exits anyway.
    #[arg(long, env = "BLINDMATCH_DRAIN_TIMEOUT", value_name = "DURATION", default_value_t = DEFAULT_DRAIN_TIMEOUT.into())]
    pub drain_timeout: HumanDuration,
}

/// Limits on what clients can make the server hold (README, "Limits and
/// sizing").
#[derive(Debug, Clone, clap::Args)]
pub struct LimitSettings {
    /// Most vouchers per submission.
    #[arg(long, env = "BLINDMATCH_MAX_BATCH", value_name = "N", default_value_t = DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
    /// A request not answered within this is cancelled.
    #[arg(long, env = "BLINDMATCH_REQUEST_TIMEOUT", value_name = "DURATION", default_value_t = Duration::from_secs(30).into())]
    pub request_timeout: HumanDuration,
    /// Requests served at once on one connection; more wait.
    #[arg(
        long,
        env = "BLINDMATCH_MAX_CONCURRENT_PER_CONNECTION",
        value_name = "N",
        default_value_t = 64
    )]
    pub max_concurrent_per_connection: usize,
    /// Submissions a second accepted from one IP address (burst as many); more get
    /// RESOURCE_EXHAUSTED [default: no limit].
    #[arg(long, env = "BLINDMATCH_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<u32>,
    /// Memory that submissions in flight may hold, from receipt until their results are
    /// recorded, in MiB; one client may hold at most half (less when more are active). A
    /// submission that does not fit is refused at once (RESOURCE_EXHAUSTED, retryable).
    #[arg(long, env = "BLINDMATCH_MAX_INFLIGHT_MIB", value_name = "MIB", default_value_t = DEFAULT_MAX_INFLIGHT_MIB)]
    pub max_inflight_mib: usize,
    /// Open connections in total; more are closed at once.
    #[arg(
        long,
        env = "BLINDMATCH_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 1024
    )]
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64).
    #[arg(
        long,
        env = "BLINDMATCH_MAX_CONNECTIONS_PER_CLIENT",
        value_name = "N",
        default_value_t = 32
    )]
    pub max_connections_per_client: usize,
    /// A connection with no traffic either way for this long is closed; longer than
    /// --request-timeout.
    #[arg(long, env = "BLINDMATCH_IDLE_TIMEOUT", value_name = "DURATION", default_value_t = Duration::from_secs(60).into())]
    pub idle_timeout: HumanDuration,
    /// A request's body must arrive within this of its headers (slow senders are cut off).
    #[arg(long, env = "BLINDMATCH_BODY_TIMEOUT", value_name = "DURATION", default_value_t = Duration::from_secs(10).into())]
    pub body_timeout: HumanDuration,
}

/// The `serve` command as clap knows it, for layering and tests.
fn command() -> clap::Command {
    ServeArgs::augment_args(clap::Command::new("serve").no_binary_name(true))
}

/// The key a setting has in the config file: its field's name, kebab case.
fn file_key(arg: &clap::Arg) -> String {
    arg.get_id().as_str().replace('_', "-")
}

impl ServeArgs {
    /// The settings from `args` (flags and values, without `serve`) and the
    /// environment, with the config file layered in: what `serve` runs
    /// with, checked.
    ///
    /// # Errors
    /// A flag clap refuses, or as [`ServeArgs::layered`] and
    /// [`ServeConfig::try_from`].
    pub fn resolve_from<I, T>(args: I) -> anyhow::Result<ServeConfig>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = command().try_get_matches_from(args)?;
        ServeArgs::from_arg_matches(&matches)?
            .layered(&matches)?
            .try_into()
    }

    /// These settings (parsed into `matches` from flags, the environment
    /// and the defaults) with the `--config` file's values in for every
    /// setting that neither a flag nor its environment variable gave.
    ///
    /// # Errors
    /// If the file cannot be read or parsed (naming it, and the line for a
    /// syntax error), holds a key that is no setting, or a value its
    /// setting's parser refuses (naming the key).
    pub fn layered(mut self, matches: &ArgMatches) -> anyhow::Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("config file {}", path.display()))?;
        let file: toml::Table =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        // The file's values, as the flags they stand for, parsed by a
        // command that reads no environment and fills in no defaults: what
        // it holds is exactly what the file gave.
        let bare = command().mut_args(|a| a.env(None).default_value(None));
        let mut argv: Vec<OsString> = Vec::new();
        for (key, value) in &file {
            let Some(arg) = bare.get_arguments().find(|a| file_key(a) == *key) else {
                bail!(
                    "config file {}: {key} is not a setting of serve (see serve --help)",
                    path.display()
                );
            };
            let given = matches!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if given || arg.get_id() == "config" {
                continue;
            }
            let one = file_value_as_flag(arg, value)
                .with_context(|| format!("config file {}: {key}", path.display()))?;
            // Each key on its own first, so that an error names it.
            bare.clone().try_get_matches_from(&one).with_context(|| {
                format!("config file {}: {key} = {}", path.display(), shown(value))
            })?;
            argv.extend(one);
        }
        let from_file = bare.try_get_matches_from(argv)?;
        self.update_from_arg_matches(&from_file)?;
        Ok(self)
    }
}

/// A file's value as TOML writes it (`"soon"`, `0`, `[...]`), for messages.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(shown).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.type_str().to_owned(),
    }
}

/// A config file's `value` for `arg` as the flag and values that set it.
fn file_value_as_flag(arg: &clap::Arg, value: &toml::Value) -> anyhow::Result<Vec<OsString>> {
    let flag = OsString::from(format!("--{}", arg.get_long().unwrap_or_default()));
    let scalar = |v: &toml::Value| -> anyhow::Result<OsString> {
        Ok(match v {
            toml::Value::String(s) => s.into(),
            toml::Value::Integer(i) => i.to_string().into(),
            toml::Value::Float(f) => f.to_string().into(),
            other => bail!("{} is not a value it takes", other.type_str()),
        })
    };
    if !arg.get_action().takes_values() {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![flag]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            other => bail!("true or false, not {}", other.type_str()),
        };
    }
    let values = match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
        v => vec![scalar(v)?],
    };
    Ok(values.into_iter().flat_map(|v| [flag.clone(), v]).collect())
}

/// `"missing --table (or BLINDMATCH_TABLE, or `table` in the --config file)"`.
fn missing(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "missing --{name} (or BLINDMATCH_{}, or `{name}` in the --config file)",
        name.to_uppercase().replace('-', "_")
    )
}

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = anyhow::Error;

    /// Checks the settings as a whole.
    ///
    /// # Errors
    /// A required setting missing, settings that contradict each other,
    /// or a value out of range; the message names the settings.
    fn try_from(args: ServeArgs) -> anyhow::Result<ServeConfig> {
        let ServeArgs {
            config: _,
            table: t,
            store: s,
            listen: l,
            limits: lim,
            feed: f,
        } = args;
        let table = t.table.ok_or_else(|| missing("table"))?;
        let key = t.key.ok_or_else(|| missing("key"))?;
        let store = match (s.data, s.store) {
            (Some(dir), None) => Location::Sqlite(dir),
            (None, Some(url)) => Location::parse(&url, s.store_password_file.clone())
                .map_err(|e| anyhow::anyhow!("--store {e}"))?,
            (Some(_), Some(_)) => bail!("--data and --store contradict each other: give one"),
            (None, None) => bail!(
                "missing --data DIR (SQLite) or --store URL (PostgreSQL) (or BLINDMATCH_DATA / BLINDMATCH_STORE, or `data` / `store` in the --config file)"
            ),
        };
        if matches!(store, Location::Sqlite(_)) && s.store_password_file.is_some() {
            bail!("--store-password-file is for a PostgreSQL --store, not SQLite");
        }
        let lease: Duration = s.lease.into();
        if lease < Duration::from_secs(1) {
            bail!("--lease must be at least 1s: four heartbeats per lease must fit in it");
        }
        if lim.max_batch == 0 {
            bail!("--max-batch must be at least 1");
        }
        let retain_matches = s.retain_matches.map(Duration::from);
        let dedup_window: Duration = s.dedup_window.into();
        if retain_matches.is_some_and(|d| d.is_zero()) || dedup_window.is_zero() {
            bail!("--retain-matches and --dedup-window must be longer than zero");
        }
        if s.max_store_mib == Some(0) {
            bail!("--max-store-mib must be at least 1");
        }
        let previous = match (t.previous_table, t.previous_key) {
            (Some(t), Some(k)) => Some((t, k)),
            (None, None) => None,
            _ => bail!("--previous-table and --previous-key go together: give both"),
        };
        let log = match (t.log, t.log_policy) {
            (Some(dir), Some(policy)) => Some(crate::tlog::LogSettings {
                dir,
                policy: crate::tlog::read_policy(&policy).context("--log-policy")?,
            }),
            (None, None) => None,
            _ => bail!("--log and --log-policy go together: give both"),
        };
        let operator_key = match t.operator_key {
            Some(v) => Some(crate::keyfile::operator_key(&v).context("--operator-key")?),
            None => None,
        };
        let request_timeout: Duration = lim.request_timeout.into();
        if request_timeout.is_zero() || lim.max_concurrent_per_connection == 0 {
            bail!("--request-timeout and --max-concurrent-per-connection must be more than zero");
        }
        let rate_limit = match lim.rate_limit {
            Some(0) => bail!("--rate-limit must be at least 1 (leave it out for no limit)"),
            r => r.and_then(std::num::NonZeroU32::new),
        };
        // Two maximal submissions at least: one per source is always allowed.
        let two_max = 2 * crate::serve::max_submission_charge(lim.max_batch);
        if lim.max_inflight_mib.saturating_mul(1 << 20) < two_max {
            bail!(
                "--max-inflight-mib {} is below what two of the largest submissions need at --max-batch {} ({} MiB): raise it, or lower --max-batch",
                lim.max_inflight_mib,
                lim.max_batch,
                two_max.div_ceil(1 << 20)
            );
        }
        if lim.max_connections == 0 || lim.max_connections_per_client == 0 {
            bail!("--max-connections and --max-connections-per-client must be at least 1");
        }
        let idle_timeout: Duration = lim.idle_timeout.into();
        if idle_timeout <= request_timeout {
            bail!(
                "--idle-timeout ({}) must be longer than --request-timeout ({}): a call waiting for its answer would look idle",
                lim.idle_timeout,
                lim.request_timeout
            );
        }
        let body_timeout: Duration = lim.body_timeout.into();
        if body_timeout.is_zero() {
            bail!("--body-timeout must be longer than zero");
        }
        let tls = match (l.tls_cert, l.tls_key, l.tls_client_ca) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (None, None, Some(_)) => bail!("--tls-client-ca needs --tls-cert and --tls-key"),
            _ => bail!("--tls-cert and --tls-key go together: give both"),
        };
        match (&tls, l.plaintext) {
            (None, false) => bail!(
                "no TLS: give --tls-cert and --tls-key (or BLINDMATCH_TLS_*, or tls-cert and tls-key in the config file), \
                 or --plaintext to serve without TLS (on loopback or behind a TLS-terminating proxy)"
            ),
            (Some(_), true) => {
                bail!("--plaintext and TLS settings contradict each other: give one")
            }
            _ => {}
        }
        for origin in &l.grpc_web_origins {
            let scheme = origin.starts_with("http://") || origin.starts_with("https://");
            if !(origin == "*" || scheme && http::HeaderValue::from_str(origin).is_ok()) {
                bail!(
                    "--grpc-web-origin {origin:?}: give an origin such as https://app.example (scheme, host, port; no path), or *"
                );
            }
        }
        let max_backoff: Duration = f.webhook_max_backoff.into();
        if max_backoff < Duration::from_secs(1) {
            bail!("--webhook-max-backoff must be at least 1s (the first retry waits 1s)");
        }
        let webhook = match (f.webhook, f.webhook_secret_file) {
            (Some(url), Some(secret_file)) => Some(WebhookSettings {
                url: WebhookSettings::parse_url(&url)
                    .map_err(|e| anyhow::anyhow!("--webhook {e}"))?,
                secret_file,
                max_backoff,
            }),
            (None, None) => None,
            (Some(_), None) => {
                bail!("--webhook needs --webhook-secret-file: every delivery is signed")
            }
            (None, Some(_)) => {
                bail!("--webhook-secret-file goes with --webhook (the receiver's URL)")
            }
        };
        Ok(ServeConfig {
            webhook,
            table,
            key,
            store,
            lease,
            listen: l.listen,
            max_batch: lim.max_batch,
            retention: Retention::new(retain_matches, dedup_window),
            max_store_bytes: s.max_store_mib.map(|m| m.saturating_mul(1 << 20)),
            admin_listen: l.admin_listen,
            drain_timeout: l.drain_timeout.into(),
            limits: Limits {
                request_timeout,
                max_concurrent_per_connection: lim.max_concurrent_per_connection,
                submissions_per_second_per_ip: rate_limit,
                max_inflight_bytes: lim.max_inflight_mib.saturating_mul(1 << 20),
                connections: crate::ConnectionLimits {
                    max_total: lim.max_connections,
                    max_per_source: lim.max_connections_per_client,
                    idle_timeout,
                },
                body_timeout,
            },
            tls,
            grace: t.grace.into(),
            previous,
            operator_key,
            log,
            grpc_web_origins: l.grpc_web_origins,
        })
    }
}

impl ServeConfig {
    /// The defaults of every setting (those of `serve --help`), serving
    /// `table` with `key` on the SQLite store in `data` at `listen`, in
    /// plaintext: for tests, tools and the demo.
    ///
    /// # Panics
    /// Never for a path and an address: the defaults are valid settings
    /// (the test `the_defaults_are_a_valid_configuration` checks them).
    #[allow(clippy::expect_used, reason = "the defaults are checked by a test")]
    pub fn new(table: PathBuf, key: PathBuf, data: PathBuf, listen: SocketAddr) -> Self {
        let matches = command()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(["--plaintext"])
            .expect("the defaults parse");
        let mut args = ServeArgs::from_arg_matches(&matches).expect("the defaults parse");
        args.table.table = Some(table);
        args.table.key = Some(key);
        args.store.data = Some(data);
        args.listen.listen = listen;
        ServeConfig::try_from(args).expect("the defaults are valid")
    }
}

/// Every long flag `serve` takes, `--` included: for the test that keeps
/// the documentation's flag names equal to `--help`'s.
pub fn serve_flags() -> Vec<String> {
    command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("serve.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn resolve(args: &[&str]) -> anyhow::Result<ServeConfig> {
        ServeArgs::resolve_from(args.iter().copied())
    }

    #[test]
    fn the_defaults_are_a_valid_configuration() {
        let c = ServeConfig::new(
            "t".into(),
            "k".into(),
            "d".into(),
            "127.0.0.1:0".parse().unwrap(),
        );
        assert_eq!(c.max_batch, DEFAULT_MAX_BATCH);
        assert_eq!(c.lease, DEFAULT_LEASE);
        assert_eq!(c.grace, DEFAULT_GRACE);
        assert_eq!(c.retention.dedup_window, DEFAULT_DEDUP_WINDOW);
        assert_eq!(c.limits.max_inflight_bytes, DEFAULT_MAX_INFLIGHT_MIB << 20);
        assert!(c.tls.is_none());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "table = \"t.bmt\"\nkey = \"k.key\"\ndata = \"d\"\nmax-batch = 10\ndedup-window = \"2h\"\nplaintext = true\ngrpc-web-origins = [\"https://a.example\", \"*\"]\n",
        );
        let config = config.to_str().unwrap();
        let cfg = resolve(&["--config", config, "--max-batch", "30"]).unwrap();
        assert_eq!(cfg.max_batch, 30, "the flag wins");
        assert_eq!(cfg.table, PathBuf::from("t.bmt"), "the file fills in");
        assert_eq!(cfg.retention.dedup_window, Duration::from_secs(7200));
        assert_eq!(cfg.listen, DEFAULT_LISTEN, "the default");
        assert_eq!(cfg.retention.matches, None);
        assert!(cfg.tls.is_none());
        assert_eq!(cfg.grpc_web_origins, ["https://a.example", "*"]);
        // A flag given with its default value still wins over the file.
        let cfg = resolve(&["--config", config, "--max-batch", "1024"]).unwrap();
        assert_eq!(cfg.max_batch, 1024);
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            let config = write(dir.path(), text);
            format!(
                "{:#}",
                resolve(&["--config", config.to_str().unwrap()]).unwrap_err()
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
        assert!(e.contains("--tls-cert and --tls-key go together"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\ntls-cert = \"c\"\ntls-key = \"k\"\nplaintext = true\n",
        );
        assert!(e.contains("contradict"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\ngrpc-web-origins = [\"app.example\"]\n",
        );
        assert!(e.contains("--grpc-web-origin \"app.example\""), "{e}");
        let e = err("table = \"t\"\nkey = \"k\"\ndata = \"d\"\nstore = \"postgres://u@h/d\"\n");
        assert!(e.contains("--data and --store contradict"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\nwebhook = \"https://h.example/in\"\n",
        );
        assert!(e.contains("--webhook needs --webhook-secret-file"), "{e}");
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\nwebhook = \"ftp://h.example/\"\nwebhook-secret-file = \"s\"\n",
        );
        assert!(
            e.contains("--webhook") && e.contains("http:// or https://"),
            "{e}"
        );
        let e = err(
            "table = \"t\"\nkey = \"k\"\ndata = \"d\"\nplaintext = true\nwebhook-secret-file = \"s\"\n",
        );
        assert!(e.contains("goes with --webhook"), "{e}");
        let e = err("plaintext = \"yes\"\n");
        assert!(
            e.contains("plaintext") && e.contains("true or false"),
            "{e}"
        );
        let e = err("listen = [\n");
        assert!(e.contains("serve.toml") && e.contains("line 1"), "{e}");
        let missing =
            resolve(&["--config", dir.path().join("nope.toml").to_str().unwrap()]).unwrap_err();
        assert!(format!("{missing:#}").contains("nope.toml"));
    }

    #[test]
    fn every_setting_has_a_file_key_and_every_flag_is_listed() {
        let flags = serve_flags();
        assert!(flags.contains(&"--max-inflight-mib".to_string()));
        assert!(flags.contains(&"--grpc-web-origin".to_string()));
        let keys: Vec<String> = command().get_arguments().map(file_key).collect();
        assert!(keys.contains(&"grpc-web-origins".to_string()));
        assert_eq!(keys.len(), flags.len());
    }
}
