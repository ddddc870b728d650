//! `blindmatch-server`: the operator's command line. Thin: it parses flags and
//! calls the library.

use std::io::IsTerminal;

use anyhow::Context;
use blindmatch_server::cli::{Cli, Command, LogCommand};
use blindmatch_server::feed::{FollowOptions, Start, follow};
use blindmatch_server::store::{self, Location};
use blindmatch_server::{BuildOptions, ServeConfig, keyfile};
use clap::{CommandFactory, FromArgMatches};

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
        Command::AuditBundle(options) => {
            print!("{}", blindmatch_server::audit::make_bundle(&options)?);
        }
        Command::Log(LogCommand::Init {
            dir,
            origin,
            key_out,
        }) => {
            print!(
                "{}",
                blindmatch_server::tlog::init(&dir, &origin, &key_out)?
            );
        }
        Command::Log(LogCommand::Append { dir, key, table }) => {
            let key = keyfile::read_log_key(&key)?;
            println!("{}", blindmatch_server::tlog::append(&dir, &key, &table)?);
        }
        Command::Log(LogCommand::Witness {
            dir,
            policy,
            attempts,
            timeout,
        }) => {
            let policy = blindmatch_server::tlog::read_policy(&policy)?;
            let options = blindmatch_server::tlog::WitnessOptions {
                attempts,
                timeout: timeout.into(),
            };
            let report = blindmatch_server::tlog::witness(&dir, &policy, options).await?;
            println!("{report}");
            if !report.quorum_met {
                anyhow::bail!(
                    "the checkpoint does not meet the policy's quorum: clients that pin this policy refuse it"
                );
            }
        }
        Command::Health {
            admin_listen,
            endpoint,
            timeout,
        } => {
            match blindmatch_server::metrics::probe(admin_listen, &endpoint, timeout.into()).await {
                Ok(answer) => println!("{answer}"),
                Err(why) => anyhow::bail!("not healthy: {why}"),
            }
        }
        Command::Cosign { table, add } => {
            print!("{}", blindmatch_server::audit::attach(&table, &add)?);
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
            lists,
            report: print_report,
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
                blindmatch_server::build_from(&lists, &key, &out, &opts)
            })
            .await??;
            if print_report {
                println!("{}\n", report.lists);
            }
            println!("{report}");
        }
        Command::Serve(args) => {
            // Which settings a flag or the environment gave: the config file
            // fills in the rest.
            let given = matches
                .subcommand_matches("serve")
                .context("the serve subcommand's flags")?;
            let config = ServeConfig::try_from(args.layered(given)?)?;
            // Tests and scripts read the address from this line.
            blindmatch_server::serve::run(config, |server| {
                println!("blindmatch-server listening on {}", server.url());
            })
            .await?;
        }
        Command::Matches {
            data,
            store,
            store_password_file,
            json,
            accounts,
            follow,
            after,
            cursor,
            from_now,
            poll,
        } => {
            let location = match (data, store) {
                (Some(dir), _) => Location::Sqlite(dir),
                (None, Some(url)) => Location::parse(&url, store_password_file)
                    .map_err(|e| anyhow::anyhow!("--store {e}"))?,
                (None, None) => anyhow::bail!("give --data DIR or --store URL"),
            };
            if follow {
                let start = match (after, from_now) {
                    (Some(c), _) => Start::After(c),
                    (None, true) => Start::Now,
                    (None, false) => Start::Beginning,
                };
                let options = FollowOptions {
                    start,
                    cursor_file: cursor,
                    poll: poll.map_or(std::time::Duration::from_secs(1), Into::into),
                };
                follow_matches(location, options).await?;
            } else {
                print_matches(&location, json, accounts)?;
            }
        }
    }
    Ok(())
}

/// `matches --follow`: the feed on stdout, one JSON line per record, until
/// SIGINT or SIGTERM.
async fn follow_matches(location: Location, options: FollowOptions) -> anyhow::Result<()> {
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let follower = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        follow(&location, &options, &mut out, &stopped)
    });
    tokio::pin!(follower);
    tokio::select! {
        r = &mut follower => { r??; return Ok(()); }
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    // The line being written is finished and its cursor saved first.
    let _ = stop.send(());
    follower.await??;
    Ok(())
}

/// `matches`: the match records, then threshold mode's accounts with
/// candidates and their counts; with `--accounts`, the accounts only; with
/// `--json`, the match records (or with `--accounts` the accounts) as JSON.
fn print_matches(location: &Location, json: bool, accounts_only: bool) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let accounts = store::read_accounts(location)?;
    if accounts_only && json {
        writeln!(out, "{}", serde_json::to_string_pretty(&accounts)?)?;
        return emit(&out);
    }
    let records = if accounts_only {
        Vec::new()
    } else {
        store::read_matches(location)?
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
        return emit(&out);
    }
    if !accounts_only {
        if records.is_empty() {
            writeln!(out, "no matches recorded")?;
        } else {
            writeln!(out, "{}", store::MatchRecord::HEADER)?;
            for r in &records {
                writeln!(out, "{r}")?;
            }
            writeln!(out, "{} match(es)", records.len())?;
        }
    }
    if !accounts.is_empty() {
        // Threshold mode: below t the server holds candidates and nothing
        // else; their count mixes real and synthetic vouchers.
        writeln!(out)?;
        writeln!(out, "{}", store::AccountSummary::HEADER)?;
        for a in &accounts {
            writeln!(out, "{a}")?;
        }
        writeln!(
            out,
            "{} account(s) with candidates; below t the count is all the server knows",
            accounts.len()
        )?;
    }
    emit(&out)
}

/// Writes `matches`'s output in one go. A reader that stops early (`| head`,
/// `| grep -q`) is not an error: `println!` would panic on the broken pipe.
fn emit(out: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
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
