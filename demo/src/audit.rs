//! Day 4 of the demo: the list audit (SPEC Section 15). Two organisations,
//! hotlines A and B, each list the demo's entries and some of their own;
//! the operator's table is their intersection. Each audits the table the
//! server serves against its own list (`blindmatch-audit`, from the
//! operator's bundle) and co-signs it, and a client pinned to both
//! requires both co-signatures. Then the operator slips a hash that only A
//! lists into the next version: B's audit refuses and names the slot.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use blindmatch_audit::{AuditInputs, CoSigning, Failed};
use blindmatch_protocol::manifest::OperatorVerifyingKey;
use blindmatch_protocol::{Item, ItemType};
use blindmatch_server::audit::BundleOptions;
use sha2::{Digest, Sha256};

/// An item only organisation `name` lists (its `i`-th).
pub(crate) fn own_item(name: &str, i: usize) -> Item {
    Item::new(
        ItemType::Sha256,
        &Sha256::digest(format!("{name} only {i}")),
    )
    .unwrap_or_else(|_| unreachable!("a SHA-256 digest is a valid sha256 item"))
}

/// One list organisation: its list, its key, the state of its last audit.
pub(crate) struct Organisation {
    pub(crate) name: String,
    list: PathBuf,
    signing: PathBuf,
    state: PathBuf,
    pub(crate) key: OperatorVerifyingKey,
}

/// What an organisation's audit of one version came to.
pub(crate) enum Outcome {
    /// Passed and co-signed: the co-signature file.
    CoSigned(PathBuf),
    /// Refused: what `blindmatch-audit` printed.
    Refused(String),
}

impl Organisation {
    /// `name`'s list: the operator's `shared` list and 50 items of its own.
    pub(crate) fn new(dir: &Path, name: &str, shared: &Path) -> anyhow::Result<Self> {
        let list = dir.join(format!("{name}.list"));
        std::fs::copy(shared, &list).context("an organisation's list")?;
        let mut f = std::fs::OpenOptions::new().append(true).open(&list)?;
        for i in 0..50 {
            writeln!(f, "sha256 {}", own_item(name, i).to_hex())?;
        }
        let signing = dir.join(format!("{name}.sign"));
        let key = blindmatch_server::keyfile::write_new_signing(&signing)?.verifying_key();
        Ok(Organisation {
            name: name.to_owned(),
            state: dir.join(format!("{name}.state")),
            list,
            signing,
            key,
        })
    }

    /// The operator makes this organisation's bundle for `table` (a delta
    /// from `base`, the version it audited before, if given); the
    /// organisation audits the table and co-signs it if it passes.
    pub(crate) fn audit(
        &self,
        dir: &Path,
        operator: (&Path, OperatorVerifyingKey),
        table: &Path,
        base: Option<&Path>,
    ) -> anyhow::Result<Outcome> {
        let (bundle, public) = (
            dir.join(format!("{}.bundle", self.name)),
            dir.join(format!("{}.table", self.name)),
        );
        blindmatch_server::audit::make_bundle(&BundleOptions {
            table: table.to_owned(),
            key: operator.0.to_owned(),
            list: self.list.clone().into(),
            default_type: None,
            base: base.map(Path::to_owned),
            out: bundle.clone(),
            public_table: Some(public.clone()),
        })?;
        let out = dir.join(format!("{}.cosig", self.name));
        let inputs = AuditInputs {
            table: public,
            bundle,
            list: self.list.clone().into(),
            default_type: None,
            operator: Some(operator.1),
            state: base.map(|_| self.state.clone()),
            save_state: Some(self.state.clone()),
        };
        let signing = CoSigning {
            signing_key: self.signing.clone(),
            name: self.name.clone(),
            out: out.clone(),
        };
        match blindmatch_audit::cosign(&inputs, &signing) {
            Ok(_) => Ok(Outcome::CoSigned(out)),
            Err(refused @ Failed::Refused { .. }) => Ok(Outcome::Refused(refused.to_string())),
            Err(Failed::Other(e)) => Err(e),
        }
    }
}
