//! The operator's command line, as clap reads it: `src/main.rs` parses it
//! and runs what it names; the declarations live here so that tests can
//! walk every subcommand and flag (the documentation's flags are checked
//! against them).

use std::path::PathBuf;

use blindmatch_lists::Source;
use blindmatch_protocol::ItemType;
use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// `blindmatch-server`.
#[derive(Parser)]
#[command(
    name = "blindmatch-server",
    version,
    about = "blindmatch list operator: key, table, service, matches"
)]
pub struct Cli {
    /// Log format on stderr: `human` or `json` (one object per line). The level comes from
    /// RUST_LOG (default info). Logs never contain an item, a point, a key or associated data.
    #[arg(long, global = true, env = "BLINDMATCH_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Write a new key (file mode 0600; an existing file is never overwritten): the server's
    /// blinding key, or with --signing the operator's Ed25519 signing key (its verifying key,
    /// which clients pin, is printed and written to OUT.pub).
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
        /// Make the operator's signing key instead of a blinding key.
        #[arg(long)]
        signing: bool,
    },
    /// Build and sign a version of the blinded table from hash lists. With --base, build the
    /// next version of that table in place: entries still listed keep their slots, so clients
    /// holding it catch up with a small delta.
    Build {
        /// A list, each its source's complete current state (repeat for several sources): NCMEC
        /// hash sharing XML, StopNCII or TCAP JSON, a ThreatExchange CSV export, or blindmatch's
        /// text (`TYPE VALUE` lines, bare hex with --type, `type,value` CSV). The format is read
        /// from the file, or named: ncmec:FILE, stopncii:, tcap:, threatexchange:, text:.
        #[arg(long = "list", value_name = "[FORMAT:]FILE", required = true, value_parser = list_source())]
        lists: Vec<Source>,
        /// Print, per list and type, what went in and what did not (unsupported types,
        /// tombstoned, repeated), before the summary.
        #[arg(long)]
        report: bool,
        /// The server's blinding key from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The operator's signing key from `keygen --signing`.
        #[arg(long, value_name = "PATH")]
        signing_key: PathBuf,
        /// The previous version's table file: the new version keeps its slots (a new table is
        /// built instead, and the output says why, if the list outgrew it or the key changed).
        #[arg(long, value_name = "PATH")]
        base: Option<PathBuf>,
        /// With --base: give N random empty slots a fresh filler, so that the slots a real change
        /// touched are harder to tell (papers/SECURITY.md 6.1); each costs 36 bytes of delta. At
        /// least one: it gives every version a table id no earlier version had (SPEC 13.1).
        #[arg(long, value_name = "N", default_value_t = 1, requires = "base", value_parser = clap::value_parser!(u32).range(1..))]
        decoys: u32,
        /// Where to write the table file.
        #[arg(long)]
        out: PathBuf,
        /// Type of bare values in text lists: md5, sha1, sha256, pdq or bytes.
        #[arg(long = "type", value_name = "TYPE")]
        default_type: Option<ItemType>,
        /// Hash choices per item (2..=8) [default: 3].
        #[arg(long)]
        k: Option<u8>,
        /// Entries per slot, between 0 and 1 [default: 0.85 for k = 3].
        #[arg(long)]
        load_factor: Option<f64>,
        /// Threshold mode (protocol version 2, SPEC Section 14): the server learns an
        /// account's matches only once it holds T of them (1..=256; Apple chose 30). 0 signs
        /// a version-1 table. [default: the base's mode, else version 1]
        #[arg(long, value_name = "T")]
        threshold: Option<u16>,
        /// With --threshold: the most synthetic vouchers among an account's latest t + s
        /// candidates with which t real ones are still found (0..=256; each costs a client
        /// 8 bytes per voucher). Clients pick their synthetic rate to stay under it.
        #[arg(long, value_name = "S", default_value_t = 0, requires = "threshold")]
        synthetic_bound: u16,
    },
    /// Make the audit bundle for one list organisation (SPEC Section 15): which slots of the
    /// table hold entries of its list, with a proof, and which filler every other slot holds.
    /// The organisation checks it with `blindmatch-audit verify` and co-signs.
    AuditBundle(crate::audit::BundleOptions),
    /// Attach organisations' co-signatures (from `blindmatch-audit cosign`) to a table file:
    /// each is checked over the table's signed statement, and `serve` serves them in
    /// GetManifest (reloaded on SIGHUP).
    Cosign {
        /// The table file.
        #[arg(long, value_name = "PATH")]
        table: PathBuf,
        /// Co-signature files; one by an organisation already attached replaces it.
        #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
        add: Vec<PathBuf>,
    },
    /// The transparency log of the table versions (SPEC Section 16): create it, append a
    /// version, collect the witnesses' cosignatures.
    #[command(subcommand)]
    Log(LogCommand),
    /// Serve the table and receive vouchers over gRPC until SIGINT/SIGTERM.
    ///
    /// Every setting is a flag, a BLINDMATCH_* environment variable or a key in the --config
    /// TOML file, in that order of precedence.
    Serve(Box<ServeArgs>),
    /// Print a table file's signed manifest, for anyone to compare with what clients were
    /// served (`blindmatch manifest --json`).
    Manifest {
        /// The table file.
        #[arg(long)]
        table: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the recorded matches (of every replica, for a shared store).
    Matches {
        /// The data directory given to `serve` (SQLite).
        #[arg(
            long,
            env = "BLINDMATCH_DATA",
            required_unless_present = "store",
            conflicts_with = "store"
        )]
        data: Option<PathBuf>,
        /// The store given to `serve`: postgres://USER@HOST/DB (or sqlite:DIR).
        #[arg(long, env = "BLINDMATCH_STORE", value_name = "URL")]
        store: Option<String>,
        /// File holding the PostgreSQL password (mode 0600).
        #[arg(long, env = "BLINDMATCH_STORE_PASSWORD_FILE", value_name = "PATH")]
        store_password_file: Option<PathBuf>,
        /// Print JSON instead of a table (the match records; with --accounts, the accounts).
        #[arg(long)]
        json: bool,
        /// Threshold mode: only the accounts with candidates, and how many each holds
        /// unrevealed, real, synthetic and rejected (revealed as such).
        #[arg(long, conflicts_with = "follow")]
        accounts: bool,
        /// Print each match record as one JSON line, in the order recorded, then wait for new
        /// ones and print them too, until SIGINT/SIGTERM (README, "Acting on matches").
        #[arg(long)]
        follow: bool,
        /// With --follow: start after this record (a line's `cursor`, or its `id`), whatever the
        /// cursor file holds.
        #[arg(long, value_name = "CURSOR", requires = "follow")]
        after: Option<crate::store::Cursor>,
        /// With --follow: where the cursor of the last line written is kept; a restart resumes
        /// after it (at least once: the last line may come again). Absent: from the beginning,
        /// or with --from-now from the newest record.
        #[arg(long, value_name = "FILE", requires = "follow")]
        cursor: Option<PathBuf>,
        /// With --follow, and no cursor file yet or no --cursor: only records recorded from now.
        #[arg(long, requires = "follow", conflicts_with = "after")]
        from_now: bool,
        /// With --follow: how often to ask the store for new records [default: 1s].
        #[arg(long, value_name = "DURATION", requires = "follow")]
        poll: Option<humantime::Duration>,
    },
    /// Ask a running server's admin listener whether it is ready (exit 0) or not (exit 1): the
    /// health check of a container image that has no shell or curl (deploy/container).
    Health {
        /// The admin listener's address, as given to `serve` (so the same environment serves
        /// both); an unspecified one (`0.0.0.0:9464`) is asked on loopback.
        #[arg(
            long,
            env = "BLINDMATCH_ADMIN_LISTEN",
            default_value = "127.0.0.1:9464",
            value_name = "ADDR"
        )]
        admin_listen: std::net::SocketAddr,
        /// What to ask: `ready` (serving, the store reachable) or `live` (the process answers).
        #[arg(long, default_value = "ready", value_parser = ["ready", "live"])]
        endpoint: String,
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_name = "DURATION")]
        timeout: humantime::Duration,
    },
}

/// `--list [FORMAT:]FILE`, parsed once into a [`Source`] (a path need not
/// be UTF-8).
pub fn list_source() -> impl TypedValueParser<Value = Source> {
    OsStringValueParser::new().map(|arg| Source::parse(&arg))
}

/// `log`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum LogCommand {
    /// Create an empty log in a directory (its static files: `checkpoint` and `tile/...`), and
    /// the log's signing key (mode 0600; its verifier key, which clients, witnesses and monitors
    /// pin, is printed and written to KEY_OUT.pub).
    Init {
        /// The log directory (created); publish it as it is with any web server, or let
        /// `serve --log` serve it.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The log's name, its checkpoints' origin line: a schema-less URL such as
        /// `blindmatch.example.org/log` (no spaces, no `+`).
        #[arg(long)]
        origin: String,
        /// Where to write the log's signing key (never overwritten).
        #[arg(long, value_name = "PATH")]
        key_out: PathBuf,
    },
    /// Log a table version (its signed statement and the co-signatures attached to it: attach
    /// them first) as the log's next entry, and sign the new checkpoint. A version already
    /// logged with another table is refused: that would be equivocation, in public.
    Append {
        /// The log directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The log's signing key from `log init`.
        #[arg(long, value_name = "PATH")]
        key: PathBuf,
        /// The table file of the version to log.
        #[arg(long, value_name = "PATH")]
        table: PathBuf,
    },
    /// Ask the witnesses of a policy to cosign the log's checkpoint (c2sp.org/tlog-witness),
    /// and write their cosignatures into it. Exits non-zero unless the policy's quorum is met.
    Witness {
        /// The log directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The policy (c2sp.org/tlog-policy) with each witness's URL: `witness NAME VKEY URL`.
        #[arg(long, value_name = "PATH")]
        policy: PathBuf,
        /// Requests per witness when it does not answer, or answers 5xx or 429.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
        attempts: u32,
        /// Each request's timeout.
        #[arg(long, value_name = "DURATION", default_value = "10s")]
        timeout: humantime::Duration,
    },
}
