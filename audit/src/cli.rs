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
    /// Your list: `TYPE VALUE` per line, bare hex values with --type, or CSV with a
    /// `type,value` header (as the operator's `build` reads it).
    #[arg(long, value_name = "PATH")]
    pub list: PathBuf,
    /// Type of bare values: md5, sha1, sha256, pdq or bytes.
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
