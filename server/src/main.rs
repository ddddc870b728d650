//! `blindmatch-server`: the operator's command line. Thin: it parses flags and
//! calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use blindmatch_protocol::ItemType;
use blindmatch_server::store::{self, Location};
use blindmatch_server::{BuildOptions, ServeConfig, keyfile};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "blindmatch-server",
    version,
    about = "blindmatch list operator: key, table, service, matches"
)]
struct Cli {
    /// Log format on stderr: `human` or `json` (one object per line). The level comes from
    /// RUST_LOG (default info). Logs never contain an item, a point, a key or associated data.
    #[arg(long, global = true, env = "BLINDMATCH_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Build and sign a version of the blinded table from a hash list. With --base, build the
    /// next version of that table in place: entries still listed keep their slots, so clients
    /// holding it catch up with a small delta.
    Build {
        /// The complete list: `TYPE VALUE` per line, bare hex values with --type, or CSV with a `type,value` header.
        #[arg(long)]
        list: PathBuf,
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
        /// With --base: also give N random empty slots a fresh filler, so that the slots a real
        /// change touched are harder to tell (papers/SECURITY.md 6.1); each costs 36 bytes of delta.
        #[arg(long, value_name = "N", default_value_t = 0, requires = "base")]
        decoys: u32,
        /// Where to write the table file.
        #[arg(long)]
        out: PathBuf,
        /// Type of bare values: md5, sha1, sha256, pdq or bytes.
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
    /// Serve the table and receive vouchers over gRPC until SIGINT/SIGTERM.
    ///
    /// Every setting is a flag, a BLINDMATCH_* environment variable or a key in the --config
    /// TOML file, in that order of precedence.
    Serve(Box<blindmatch_server::config::ServeArgs>),
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
        /// unrevealed, revealed real, synthetic and rejected.
        #[arg(long)]
        accounts: bool,
    },
}

async fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen {
            out,
            signing: false,
        } => {
            let key = keyfile::write_new(&out)?;
            println!("wrote server key {} (mode 0600)", out.display());
            println!("public key: {}", hex::encode(key.public_key().to_bytes()));
        }
        Command::Keygen { out, signing: true } => {
            let key = keyfile::write_new_signing(&out)?;
            println!("wrote operator signing key {} (mode 0600)", out.display());
            println!(
                "operator verifying key (clients pin it): {}",
                hex::encode(key.verifying_key().to_bytes())
            );
            println!(
                "also written to {}",
                keyfile::public_key_path(&out).display()
            );
        }
        Command::Manifest { table, json } => {
            let bundle = blindmatch_server::bundle::read(&table, false)?;
            if json {
                let j = blindmatch_client_core::manifest_json(&bundle.manifest);
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                let m = &bundle.manifest.manifest;
                println!(
                    "version {} built at {} (unix), table id {}, digest {}, {} slots; deltas from {} earlier version(s)",
                    m.version,
                    m.created,
                    hex::encode(m.table_id.0),
                    hex::encode(m.digest),
                    m.header.n_slots,
                    bundle.history.0.len()
                );
            }
        }
        Command::Build {
            list,
            key,
            signing_key,
            base,
            decoys,
            out,
            default_type,
            k,
            load_factor,
            threshold,
            synthetic_bound,
        } => {
            let opts = BuildOptions {
                threshold: threshold.map(|t| (t, synthetic_bound)),
                default_type,
                k,
                load_factor,
                progress: std::io::stderr().is_terminal(),
                signing_key,
                base,
                decoys,
            };
            let report = tokio::task::spawn_blocking(move || {
                blindmatch_server::build(&list, &key, &out, &opts)
            })
            .await??;
            println!("{report}");
        }
        Command::Serve(args) => {
            // Which settings a flag or the environment gave: the config file
            // fills in the rest.
            let given = matches
                .subcommand_matches("serve")
                .context("the serve subcommand's flags")?;
            let config = ServeConfig::try_from(args.layered(given)?)?;
            blindmatch_server::serve::run(config).await?;
        }
        Command::Matches {
            data,
            store,
            store_password_file,
            json,
            accounts,
        } => {
            let location = match (data, store) {
                (Some(dir), _) => Location::Sqlite(dir),
                (None, Some(url)) => Location::parse(&url, store_password_file)
                    .map_err(|e| anyhow::anyhow!("--store {e}"))?,
                (None, None) => anyhow::bail!("give --data DIR or --store URL"),
            };
            print_matches(&location, json, accounts)?;
        }
    }
    Ok(())
}

/// `matches`: the match records, then threshold mode's accounts with
/// candidates and their counts; with `--accounts`, the accounts only; with
/// `--json`, the match records (or with `--accounts` the accounts) as JSON.
fn print_matches(location: &Location, json: bool, accounts_only: bool) -> anyhow::Result<()> {
    let accounts = store::read_accounts(location)?;
    if accounts_only && json {
        println!("{}", serde_json::to_string_pretty(&accounts)?);
        return Ok(());
    }
    let records = if accounts_only {
        Vec::new()
    } else {
        store::read_matches(location)?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    if !accounts_only {
        if records.is_empty() {
            println!("no matches recorded");
        } else {
            println!("{}", store::MatchRecord::HEADER);
            for r in &records {
                println!("{r}");
            }
            println!("{} match(es)", records.len());
        }
    }
    if !accounts.is_empty() {
        // Threshold mode: below t the server holds candidates and nothing
        // else; their count mixes real and synthetic vouchers.
        println!();
        println!("{}", store::AccountSummary::HEADER);
        for a in &accounts {
            println!("{a}");
        }
        println!(
            "{} account(s) with candidates; below t the count is all the server knows",
            accounts.len()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match run(cli, &matches).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
