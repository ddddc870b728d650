//! The `blindmatch-audit` command line, as clap reads it: `src/main.rs`
//! parses it and runs what it names; the declarations live here so that
//! tests can walk every flag (README's are checked against them).

use std::path::PathBuf;

use blindmatch_protocol::ItemType;
use clap::{Args, Parser, Subcommand};

use crate::AuditInputs;

/// `blindmatch-audit`.
#[derive(Parser)]
#[command(
    name = "blindmatch-audit",
    version,
    about = "blindmatch list audit: check a table against your own list, and co-sign it"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Check that every slot of the table is an entry of your list (proved by the operator's
    /// bundle) or a filler (recomputed). Exit 0 if it passes; otherwise every slot that
    /// failed is named, and the exit status is 1.
    Verify(Inputs),
    /// Verify as `verify` does, then co-sign the table's signed statement with your key (never
    /// a table that does not pass).
    Cosign {
        /// What is audited.
        #[command(flatten)]
        inputs: Inputs,
        /// Your organisation's signing key (`blindmatch-server keygen --signing --out FILE`).
        #[arg(long, value_name = "PATH")]
        signing_key: PathBuf,
        /// Your organisation's name, as clients will show it (1 to 64 bytes).
        #[arg(long)]
        name: String,
        /// Where to write the co-signature, for the operator.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Read the operator's whole transparency log (SPEC Section 16.7) and report two tables
    /// for one version, a version going backwards, an entry whose signatures do not verify or
    /// whose co-signatures miss the quorum, a checkpoint that does not extend the last one this
    /// monitor saw (--state), and files that do not agree (or cannot be fetched). Exit 0 if
    /// nothing is found, 1 if something is, 2 if the log's checkpoint cannot be read. Run it from
    /// cron with --state.
    Monitor(MonitorArgs),
}

/// `monitor`'s flags.
#[derive(Args)]
pub struct MonitorArgs {
    /// The log: its directory, or the URL prefix it is published under
    /// (`https://host/log`, or a server's admin listener `http://host:port/log`).
    #[arg(long, value_name = "DIR|URL")]
    pub log: String,
    /// The log's verifier key (`origin+keyid+key`, as `blindmatch-server log init` prints it).
    #[arg(
        long,
        env = "BLINDMATCH_LOG_KEY",
        value_name = "VKEY",
        required_unless_present = "log_policy",
        conflicts_with = "log_policy"
    )]
    pub log_key: Option<String>,
    /// Instead of --log-key: a policy (c2sp.org/tlog-policy); the checkpoint must also carry
    /// its quorum of witness cosignatures.
    #[arg(long, env = "BLINDMATCH_LOG_POLICY", value_name = "PATH")]
    pub log_policy: Option<PathBuf>,
    /// The operator's verifying key (64 hex digits or a file holding them): every entry's
    /// statement must be signed by it.
    #[arg(long, env = "BLINDMATCH_OPERATOR_KEY", value_name = "HEX|PATH")]
    pub operator_key: Option<String>,
    /// A list organisation's verifying key; repeat (or comma-separate) for each. Every entry
    /// must then carry --org-quorum of their co-signatures.
    #[arg(long = "org-key", value_name = "HEX|PATH", value_delimiter = ',')]
    pub org_keys: Vec<String>,
    /// How many of the --org-key organisations must have co-signed each entry [default: all].
    #[arg(long, value_name = "K", requires = "org_keys")]
    pub org_quorum: Option<usize>,
    /// Where the monitor keeps the newest checkpoint it checked (created on the first run):
    /// every later checkpoint must extend it.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Each HTTP request's timeout.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: humantime::Duration,
}

impl MonitorArgs {
    /// The options with every key and file read.
    ///
    /// # Errors
    /// A key or policy that does not parse, naming the flag.
    pub fn resolve(self) -> anyhow::Result<crate::monitor::MonitorOptions> {
        use anyhow::Context;
        use blindmatch_protocol::tlog::{LogPolicy, LogVerifyingKey};
        let trust = match (self.log_key, self.log_policy) {
            (Some(k), _) => {
                crate::monitor::LogTrust::Key(LogVerifyingKey::parse(&k).context("--log-key")?)
            }
            (None, Some(p)) => crate::monitor::LogTrust::Policy({
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("--log-policy {}", p.display()))?;
                LogPolicy::parse(&text).with_context(|| format!("--log-policy {}", p.display()))?
            }),
            (None, None) => anyhow::bail!("give --log-key or --log-policy"),
        };
        let operator = self
            .operator_key
            .as_deref()
            .map(blindmatch_server::keyfile::operator_key)
            .transpose()
            .context("--operator-key")?;
        let quorum = if self.org_keys.is_empty() {
            None
        } else {
            let orgs = self
                .org_keys
                .iter()
                .map(|k| {
                    blindmatch_server::keyfile::operator_key(k)
                        .with_context(|| format!("--org-key {k}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let required = self.org_quorum.unwrap_or(orgs.len());
            Some(blindmatch_protocol::audit::Quorum::new(&orgs, required).context("--org-quorum")?)
        };
        Ok(crate::monitor::MonitorOptions {
            log: self.log,
            trust,
            operator,
            quorum,
            state: self.state,
            timeout: self.timeout.into(),
        })
    }
}

/// What an audit reads, as flags.
#[derive(Args)]
pub struct Inputs {
    /// The public table (header and slots, as clients download it; `blindmatch-server
    /// audit-bundle --public-table` writes it).
    #[arg(long, value_name = "PATH")]
    pub table: PathBuf,
    /// The operator's audit bundle for your list.
    #[arg(long, value_name = "PATH")]
    pub bundle: PathBuf,
    /// Your list, as the operator's `build` reads it: NCMEC XML, StopNCII or TCAP JSON, a
    /// ThreatExchange CSV, or text (`TYPE VALUE` lines, bare hex with --type, `type,value`
    /// CSV); the format read from the file or named (ncmec:FILE, ...).
    #[arg(long, value_name = "[FORMAT:]FILE", value_parser = blindmatch_server::cli::list_source())]
    pub list: blindmatch_server::lists::Source,
    /// Type of bare values in a text list: md5, sha1, sha256, pdq or bytes.
    #[arg(long = "type", value_name = "TYPE")]
    pub default_type: Option<ItemType>,
    /// The operator's verifying key (64 hex digits or a file holding them): the statement's
    /// signature is checked (`cosign` requires it).
    #[arg(long, value_name = "HEX|PATH", env = "BLINDMATCH_OPERATOR_KEY")]
    pub operator_key: Option<String>,
    /// The state your audit of the earlier version saved (--save-state): needed for a delta
    /// bundle.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Keep this audit's state here (mode 0600; it names your entries in the table), for the
    /// next version's delta audit.
    #[arg(long, value_name = "PATH")]
    pub save_state: Option<PathBuf>,
}

impl Inputs {
    /// The inputs with the operator's key read.
    ///
    /// # Errors
    /// An operator key that is neither 64 hex digits nor a readable file
    /// holding them, or not a valid key.
    pub fn resolve(self) -> anyhow::Result<AuditInputs> {
        let operator = self
            .operator_key
            .as_deref()
            .map(blindmatch_server::keyfile::operator_key)
            .transpose()?;
        Ok(AuditInputs {
            table: self.table,
            bundle: self.bundle,
            list: self.list,
            default_type: self.default_type,
            operator,
            state: self.state,
            save_state: self.save_state,
        })
    }
}
