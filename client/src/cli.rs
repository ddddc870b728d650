//! The `blindmatch` command line, as clap reads it: `src/main.rs` parses it
//! and runs what it names; the declarations live here so that tests can
//! walk every subcommand and flag (the documentation's flags are checked
//! against them).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// `blindmatch`.
#[derive(Parser)]
#[command(
    name = "blindmatch",
    version,
    about = "Check items against a blindmatch server"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The server to talk to and what to trust, shared by the subcommands.
#[derive(clap::Args)]
pub struct Server {
    /// Server address: https://host:port (TLS), or http://127.0.0.1:50051 for a --plaintext server
    #[arg(long, env = "BLINDMATCH_SERVER")]
    pub server: String,
    /// The list operator's verifying key (64 hex digits, or a file holding them): only tables it signed are used
    #[arg(long, env = "BLINDMATCH_OPERATOR_KEY", value_name = "HEX|PATH")]
    pub operator_key: String,
    /// Trust only this CA certificate (PEM) [default: the Mozilla root certificates]
    #[arg(long, env = "BLINDMATCH_CA", value_name = "PATH")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), for a server that requires one (mutual TLS)
    #[arg(
        long,
        env = "BLINDMATCH_TLS_CERT",
        value_name = "PATH",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM)
    #[arg(
        long,
        env = "BLINDMATCH_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Expect this name in the server's certificate instead of the address's host
    #[arg(long, env = "BLINDMATCH_TLS_DOMAIN", value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// Refuse a table built longer ago than this (e.g. `3d`): the list may have stopped being
    /// updated [default: no bound]
    #[arg(long, env = "BLINDMATCH_MAX_TABLE_AGE", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_table_age: Option<std::time::Duration>,
    /// A list organisation's verifying key (64 hex digits, or a file holding them); repeat for
    /// each organisation, or give them comma-separated in the environment. A table is then used
    /// only if --org-quorum of them co-signed it (SPEC 15.6)
    #[arg(
        long = "org-key",
        env = "BLINDMATCH_ORG_KEYS",
        value_name = "HEX|PATH",
        value_delimiter = ','
    )]
    pub org_keys: Vec<String>,
    /// How many of the --org-key organisations must have co-signed the table [default: all of them]
    #[arg(
        long,
        env = "BLINDMATCH_ORG_QUORUM",
        value_name = "K",
        requires = "org_keys"
    )]
    pub org_quorum: Option<usize>,
    /// The operator's transparency log policy (c2sp.org/tlog-policy: `log VKEY`, `witness NAME
    /// VKEY`, `group ...`, `quorum ...`): a table is used only if its version is in the log under
    /// a checkpoint the policy accepts, and each checkpoint extends the last one accepted
    /// (SPEC 16.6)
    #[arg(
        long,
        env = "BLINDMATCH_LOG_POLICY",
        value_name = "PATH",
        conflicts_with = "log_key"
    )]
    pub log_policy: Option<PathBuf>,
    /// Instead of --log-policy: the log's verifier key (`origin+keyid+key`, as `blindmatch-server
    /// log init` prints it)
    #[arg(long, env = "BLINDMATCH_LOG_KEY", value_name = "VKEY")]
    pub log_key: Option<String>,
    /// With --log-key: a witness's verifier key (`name+keyid+key`); repeat for each witness, or
    /// give them comma-separated in the environment
    #[arg(
        long = "witness-key",
        env = "BLINDMATCH_WITNESS_KEYS",
        value_name = "VKEY",
        value_delimiter = ',',
        requires = "log_key"
    )]
    pub witness_keys: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned the log's checkpoint
    /// [default: all of them]
    #[arg(
        long,
        env = "BLINDMATCH_WITNESS_QUORUM",
        value_name = "K",
        requires = "witness_keys"
    )]
    pub witness_quorum: Option<usize>,
    /// Table cache directory [default: $XDG_CACHE_HOME/blindmatch or ~/.cache/blindmatch]
    #[arg(long, env = "BLINDMATCH_CACHE")]
    pub cache: Option<PathBuf>,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Bring the cached table up to the server's current version (a delta when the cache holds
    /// the previous one, else a full or resumed download) and verify it.
    Fetch {
        /// The server.
        #[command(flatten)]
        server: Server,
    },
    /// Print the server's current manifest, verified against the operator key. Two clients
    /// that print the same `statement` were served the same table.
    Manifest {
        /// The server.
        #[command(flatten)]
        server: Server,
        /// Print JSON (the signed statement, its signature and every field).
        #[arg(long)]
        json: bool,
    },
    /// Submit a voucher for each item given.
    Check {
        /// The server.
        #[command(flatten)]
        server: Server,
        /// A SHA-256 value (64 hex digits)
        #[arg(long, value_name = "HEX")]
        sha256: Vec<String>,
        /// An MD5 value (32 hex digits)
        #[arg(long, value_name = "HEX")]
        md5: Vec<String>,
        /// A SHA-1 value (40 hex digits)
        #[arg(long, value_name = "HEX")]
        sha1: Vec<String>,
        /// A PDQ hash (64 hex digits), matched exactly
        #[arg(long, value_name = "HEX")]
        pdq: Vec<String>,
        /// A file, submitted as the SHA-256 of its contents
        #[arg(long, value_name = "PATH")]
        file: Vec<PathBuf>,
        /// Associated data sent with every item (at most 1024 bytes); the server sees it only on a match
        #[arg(long, default_value = "")]
        ad: String,
        /// Threshold mode (the server's manifest says so): the account secret file from
        /// `blindmatch account new`. Each item's voucher id is a hash of the account, the item
        /// and --ad, so checking the same upload again counts once toward the threshold.
        #[arg(long, env = "BLINDMATCH_ACCOUNT", value_name = "FILE")]
        account: Option<PathBuf>,
    },
    /// Threshold mode's account secret (SPEC Section 14.1).
    Account {
        /// What to do with it.
        #[command(subcommand)]
        command: AccountCommand,
    },
}

/// `account`'s subcommands.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Make a new account secret and write it (mode 0600; an existing file is never
    /// overwritten). Keep it as secret as a password, and copy it to the account's other
    /// devices: they must all use the same one.
    New {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// The account id the platform uses for this account (1 to 64 bytes), sent with every
        /// submission.
        #[arg(long)]
        id: String,
        /// Probability that a voucher is synthetic (0 to 1): noise that hides from the server
        /// how many of the account's vouchers match, below the threshold. It must keep the
        /// synthetic vouchers among t + s in a row within the manifest's bound s
        /// (papers/SECURITY.md, Section 9).
        #[arg(long, default_value_t = 0.0)]
        synthetic_rate: f64,
    },
}
