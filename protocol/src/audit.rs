//! The list audit (SPEC Section 15): the operator proves to a list
//! organisation that every slot of a table is either `α·H(y)` for an entry
//! y of the organisation's own list, or a filler the organisation
//! recomputes; the organisation then co-signs the table's statement.
//!
//! - [`dleq`]: the batched proof of RFC 9497 Section 2.2 that the entry
//!   slots hold `α·H(y)` under the table's `L = α·G`.
//! - [`bundle`]: what the operator gives one organisation for one version
//!   ([`AuditBundle`]), made by [`AuditBundle::prove`] and checked by
//!   [`AuditBundle::verify`], in full or as a delta from the version the
//!   organisation audited before ([`AuditState`]).
//! - [`cosign`]: the organisation's co-signature of the table's statement
//!   ([`CoSignature`]), and the quorum a client requires ([`Quorum`]).

pub mod bundle;
pub mod cosign;
pub mod dleq;
#[cfg(feature = "test-vectors")]
pub mod vectors;

pub use bundle::{AuditBundle, AuditList, AuditState, Audited, EntrySlot, ProveReport};
pub use cosign::{CoSignature, OrgName, Quorum, QuorumCount};

use core::fmt;

/// What a bundle claims a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// `α·H(y)` for item `y` of the list (its number).
    Entry(u32),
    /// Its first build's filler (SPEC 5.4).
    Filler,
    /// The fresh filler written by the update to this version.
    Fresh(u64),
    /// Unchanged since the audited base, which found an entry there.
    Kept,
    /// Unchanged since the audited base, which found this fresh filler.
    KeptFresh(u64),
    /// Unchanged since the audited base, which found its first filler.
    KeptFiller,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claim::Entry(i) => write!(f, "the entry of list item {i}"),
            Claim::Filler => f.write_str("its first build's filler"),
            Claim::Fresh(v) => write!(f, "the fresh filler of version {v}"),
            Claim::Kept => f.write_str("an entry audited before"),
            Claim::KeptFresh(v) => write!(f, "the fresh filler of version {v}, audited before"),
            Claim::KeptFiller => f.write_str("its first filler, audited before"),
        }
    }
}

/// Why one slot fails the audit (SPEC 15.3). Every failure names its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotFailure {
    /// The slot is not the filler the bundle claims: it holds something
    /// else, an entry that is not on this organisation's list (or a filler
    /// under another claim).
    NotAFiller {
        /// The slot.
        slot: u32,
        /// What the bundle claimed.
        claimed: Claim,
    },
    /// An entry claimed in a slot that is none of its item's k positions:
    /// no client looking for the item would find it there.
    Misplaced {
        /// The slot.
        slot: u32,
        /// The item's number in the list.
        list_index: u32,
    },
    /// An entry slot that does not hold a valid element.
    NotAnElement {
        /// The slot.
        slot: u32,
    },
    /// A slot unchanged since the audited base holds an entry whose item
    /// this organisation has since taken off its list.
    NoLongerListed {
        /// The slot.
        slot: u32,
    },
}

impl SlotFailure {
    /// The slot that failed.
    pub fn slot(&self) -> u32 {
        match *self {
            SlotFailure::NotAFiller { slot, .. }
            | SlotFailure::Misplaced { slot, .. }
            | SlotFailure::NotAnElement { slot }
            | SlotFailure::NoLongerListed { slot } => slot,
        }
    }
}

impl fmt::Display for SlotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotFailure::NotAFiller { slot, claimed } => write!(
                f,
                "slot {slot}: not {claimed}, and no entry of this list is proved there (an entry not on this list?)"
            ),
            SlotFailure::Misplaced { slot, list_index } => write!(
                f,
                "slot {slot}: claimed for list item {list_index}, but it is none of that item's positions"
            ),
            SlotFailure::NotAnElement { slot } => {
                write!(
                    f,
                    "slot {slot}: claimed as an entry, but not a valid element"
                )
            }
            SlotFailure::NoLongerListed { slot } => write!(
                f,
                "slot {slot}: holds an entry audited before whose item is no longer on this list"
            ),
        }
    }
}

/// Why an audit failed, or a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The table fails the audit: every slot that failed, and whether the
    /// proof over the entry slots failed (it covers them all at once, so a
    /// failed proof names no slot: some slot claimed as an entry of the
    /// list is not one).
    #[error("{}", refusal(slots, *proof_failed))]
    Refused {
        /// Each slot that failed, ascending.
        slots: Vec<SlotFailure>,
        /// Whether the batched proof failed.
        proof_failed: bool,
    },
    /// The inputs do not belong together (another table, list or base).
    #[error("{0}")]
    Mismatch(&'static str),
    /// The table's placement was written before fresh fillers were
    /// recorded: which version wrote each is unknown.
    #[error(
        "the table file does not record which version wrote each fresh filler (built by an older blindmatch): rebuild it (a first build) to audit it"
    )]
    Unrecorded,
    /// The bundle breaks its own rules, or does not decode.
    #[error("audit bundle: {0}")]
    Bundle(#[source] crate::Error),
}

fn refusal(slots: &[SlotFailure], proof_failed: bool) -> String {
    let mut out = format!(
        "the table fails the audit: {} slot(s) not accounted for",
        slots.len()
    );
    if proof_failed {
        out.push_str(
            "; the proof over the slots claimed as entries of this list does not verify (one of them is not one)",
        );
    }
    for s in slots.iter().take(20) {
        out.push_str("\n  ");
        out.push_str(&s.to_string());
    }
    if slots.len() > 20 {
        out.push_str(&format!("\n  ... and {} more", slots.len() - 20));
    }
    out
}
