//! blindmatch list audit: what a list organisation runs (SPEC Section 15).
//!
//! The operator gives the organisation, for each table version, an audit
//! bundle made from the organisation's own list (`blindmatch-server
//! audit-bundle`) and the public table (what clients download). [`verify`]
//! checks, with no server and no secret of the operator's, that every slot
//! of the table is an entry of that list (proved) or a filler (recomputed),
//! and keeps what it found as the state the next version's delta audit
//! starts from; [`cosign`] verifies and then signs the table's statement
//! with the organisation's key. [`monitor::monitor`] reads the operator's
//! whole transparency log (SPEC Section 16.7) and reports equivocation, a
//! fork and entries below a quorum. `src/main.rs` prints what these return.

pub mod cli;
pub mod monitor;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use blindmatch_protocol::audit::{
    AuditBundle, AuditError, AuditList, AuditState, CoSignature, OrgName, SlotFailure,
};
use blindmatch_protocol::manifest::{OperatorVerifyingKey, SignedManifest};
use blindmatch_protocol::{BlindedTable, ItemType, TableId};
use blindmatch_server::keyfile;
use blindmatch_server::lists::Source;

/// What an audit reads.
#[derive(Debug, Clone)]
pub struct AuditInputs {
    /// The public table: `header || slots`, as clients download it.
    pub table: PathBuf,
    /// The operator's audit bundle for this organisation.
    pub bundle: PathBuf,
    /// The organisation's list, in any format the operator's `build` reads.
    pub list: Source,
    /// Type of bare values in a text list.
    pub default_type: Option<ItemType>,
    /// The operator's verifying key: if given, the statement's signature
    /// is checked.
    pub operator: Option<OperatorVerifyingKey>,
    /// The state of the audit of the version a delta bundle starts from.
    pub state: Option<PathBuf>,
    /// Where to keep this audit's state (mode 0600), for the next delta.
    pub save_state: Option<PathBuf>,
}

/// A passed audit.
#[derive(Debug, Clone)]
pub struct Passed {
    /// The statement audited (what a co-signature signs).
    pub manifest: SignedManifest,
    /// Whether the operator's signature on it was checked.
    pub signature_checked: bool,
    /// Delta from this table id, or a full audit.
    pub base: Option<TableId>,
    /// Entry slots proved.
    pub entries_proved: usize,
    /// Filler slots recomputed.
    pub fillers_recomputed: usize,
    /// Slots kept from the base audit (a delta).
    pub slots_kept: usize,
    /// Entries of the list in the table, in all.
    pub entries: usize,
    /// Distinct items on the list.
    pub listed: usize,
    /// Seconds taken.
    pub seconds: f64,
}

/// Why an audit did not pass.
#[derive(Debug)]
pub enum Failed {
    /// The table fails the audit: every slot, and whether the proof did.
    Refused {
        /// Each slot that failed, ascending.
        slots: Vec<SlotFailure>,
        /// Whether the batched proof over the entry slots failed.
        proof_failed: bool,
    },
    /// The inputs could not be read or do not belong together.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failed {
    fn from(e: anyhow::Error) -> Self {
        Failed::Other(e)
    }
}

impl fmt::Display for Failed {
    /// Every failed slot on a line of its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Refused {
                slots,
                proof_failed,
            } => {
                writeln!(
                    f,
                    "REFUSED: the table fails the audit: {} slot(s) not accounted for{}",
                    slots.len(),
                    if *proof_failed {
                        "; the proof over the slots claimed as entries of this list does not verify (one of them is not one)"
                    } else {
                        ""
                    }
                )?;
                for s in slots {
                    writeln!(f, "  {s}")?;
                }
                Ok(())
            }
            Failed::Other(e) => write!(f, "{e:#}"),
        }
    }
}

/// Checks the table against the organisation's list (SPEC 15.4).
///
/// # Errors
/// [`Failed::Refused`] naming every slot that failed; [`Failed::Other`]
/// for files that cannot be read or do not belong together.
pub fn verify(inputs: &AuditInputs) -> Result<Passed, Failed> {
    let started = Instant::now();
    let table = BlindedTable::decode(
        &std::fs::read(&inputs.table).with_context(|| format!("--table {}", inputs.table.display()))?,
    )
    .with_context(|| {
        format!(
            "--table {}: not a public table (header and slots; `blindmatch-server audit-bundle --public-table` writes one)",
            inputs.table.display()
        )
    })?;
    let bundle = AuditBundle::decode(
        &std::fs::read(&inputs.bundle)
            .with_context(|| format!("--bundle {}", inputs.bundle.display()))?,
    )
    .with_context(|| format!("--bundle {}", inputs.bundle.display()))?;
    if let Some(op) = &inputs.operator {
        SignedManifest::verify_encoded(&bundle.manifest.encode(), op).with_context(
            || "the bundle's statement is not signed by the operator key given (--operator-key)",
        )?;
    }
    // Read as the operator's build reads it: the values the list lists
    // now, in order of first occurrence (SPEC 15.1).
    let items = blindmatch_server::lists::read(&inputs.list, inputs.default_type)
        .map_err(|e| anyhow::anyhow!("nothing was audited: {e}"))?
        .items;
    let list = AuditList::new(items).context("the list")?;
    let state = inputs
        .state
        .as_deref()
        .map(|p| -> anyhow::Result<AuditState> {
            AuditState::decode(
                &std::fs::read(p).with_context(|| format!("--state {}", p.display()))?,
            )
            .with_context(|| format!("--state {}", p.display()))
        })
        .transpose()?;
    let audited = match bundle.verify(&table, &list, state.as_ref()) {
        Ok(a) => a,
        Err(AuditError::Refused {
            slots,
            proof_failed,
        }) => {
            return Err(Failed::Refused {
                slots,
                proof_failed,
            });
        }
        Err(e) => return Err(anyhow::Error::new(e).into()),
    };
    if let Some(path) = &inputs.save_state {
        keyfile::write_private(path, &audited.state.encode(), "--save-state")?;
    }
    Ok(Passed {
        manifest: bundle.manifest,
        signature_checked: inputs.operator.is_some(),
        base: bundle.base,
        entries_proved: audited.entries_proved,
        fillers_recomputed: audited.fillers_recomputed,
        slots_kept: audited.slots_kept,
        entries: audited.state.entries.len(),
        listed: list.items().len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl fmt::Display for Passed {
    /// What `verify` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest.manifest;
        let kind = match &self.base {
            Some(b) => format!("delta audit from table {}", hex::encode(b.0)),
            None => "full audit".to_owned(),
        };
        writeln!(
            f,
            "PASSED ({kind}): table version {} ({}), table id {}",
            m.version,
            if self.signature_checked {
                "operator's signature checked"
            } else {
                "operator's signature NOT checked: give --operator-key"
            },
            hex::encode(m.table_id.0)
        )?;
        writeln!(
            f,
            "{} entry slot(s) proved, {} filler(s) recomputed, {} slot(s) kept from the base audit; every slot is an entry of this list or a filler",
            self.entries_proved, self.fillers_recomputed, self.slots_kept
        )?;
        writeln!(
            f,
            "{} of the list's {} distinct items are in the table; {:.2} s",
            self.entries, self.listed, self.seconds
        )
    }
}

/// What `cosign` adds to an audit.
#[derive(Debug, Clone)]
pub struct CoSigning {
    /// The organisation's signing key file (`blindmatch-server keygen
    /// --signing`).
    pub signing_key: PathBuf,
    /// The name to sign under.
    pub name: String,
    /// Where to write the co-signature.
    pub out: PathBuf,
}

/// A co-signature made after a passed audit.
#[derive(Debug)]
pub struct CoSigned {
    /// The audit.
    pub passed: Passed,
    /// The co-signature.
    pub cosignature: CoSignature,
    /// Where it was written.
    pub path: PathBuf,
}

/// Verifies the table (as [`verify`]), then co-signs its statement: a
/// table that does not pass is never signed.
///
/// # Errors
/// As [`verify`]; an unreadable signing key or a bad name (checked before
/// the audit, which may take a minute).
pub fn cosign(inputs: &AuditInputs, signing: &CoSigning) -> Result<CoSigned, Failed> {
    if inputs.operator.is_none() {
        return Err(anyhow::anyhow!(
            "cosign needs --operator-key: a co-signature vouches for the operator's statement, which must be checked first"
        )
        .into());
    }
    let name = OrgName::new(&signing.name).context("--name")?;
    let key = keyfile::read_signing(&signing.signing_key)?;
    let passed = verify(inputs)?;
    let c = CoSignature::sign(&key, name, &passed.manifest.manifest.encode());
    if !c.verifies(&passed.manifest.manifest.encode()) {
        return Err(anyhow::anyhow!("the co-signature just made does not verify").into());
    }
    std::fs::write(&signing.out, c.encode())
        .with_context(|| format!("--out {}", signing.out.display()))?;
    Ok(CoSigned {
        passed,
        cosignature: c,
        path: signing.out.clone(),
    })
}

impl fmt::Display for CoSigned {
    /// What `cosign` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.passed)?;
        writeln!(
            f,
            "co-signed version {} as {:?} with key {}: wrote {} (give it to the operator: `blindmatch-server cosign --table FILE --add {}`)",
            self.passed.manifest.manifest.version,
            self.cosignature.name.as_str(),
            hex::encode(self.cosignature.org_key.to_bytes()),
            self.path.display(),
            self.path.display()
        )
    }
}
