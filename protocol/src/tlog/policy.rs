//! What a client of a logged operator pins, and the checks it makes (SPEC
//! 16.6): the checkpoint is the pinned log's and signed by its key,
//! cosigned by a quorum of the pinned witnesses; the served manifest's
//! entry is in the checkpoint's tree; and every checkpoint extends the
//! last one the client accepted.

use super::note::{CosignerKey, LogVerifyingKey, Note};
use super::{Checkpoint, Hash, LogEntry, LogError, TlogProof, malformed};
use crate::merkle;

/// A log's key, the witnesses pinned for it, and how many of them must
/// have cosigned a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPolicy {
    log: LogVerifyingKey,
    witnesses: Vec<CosignerKey>,
    quorum: usize,
}

/// A checkpoint that passed a [`LogPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
    witnesses: Vec<String>,
}

impl VerifiedCheckpoint {
    /// The tree head.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note, as received.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The pinned witnesses whose cosignatures verified.
    pub fn witnesses(&self) -> &[String] {
        &self.witnesses
    }
}

impl LogPolicy {
    /// The log `log` (its origin is the key's name), with `quorum` of
    /// `witnesses` required (a witness pinned twice counts once).
    ///
    /// # Errors
    /// [`LogError::Malformed`] for a quorum above the number of distinct
    /// witnesses, or witnesses pinned without a quorum of at least one.
    pub fn new(
        log: LogVerifyingKey,
        witnesses: &[CosignerKey],
        quorum: usize,
    ) -> Result<Self, LogError> {
        let mut distinct: Vec<CosignerKey> = Vec::with_capacity(witnesses.len());
        for w in witnesses {
            if !distinct.contains(w) {
                distinct.push(w.clone());
            }
        }
        if quorum > distinct.len() || (quorum == 0 && !distinct.is_empty()) {
            return Err(malformed(
                "witness quorum",
                format!(
                    "{quorum} of {} distinct witnesses: it must be 1 to their number",
                    distinct.len()
                ),
            ));
        }
        Ok(LogPolicy {
            log,
            witnesses: distinct,
            quorum,
        })
    }

    /// The log's key.
    pub fn log(&self) -> &LogVerifyingKey {
        &self.log
    }

    /// The pinned witnesses.
    pub fn witnesses(&self) -> &[CosignerKey] {
        &self.witnesses
    }

    /// How many must cosign.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Checks a signed checkpoint: the pinned log's, signed by its key,
    /// and cosigned by the quorum.
    ///
    /// # Errors
    /// [`LogError::Malformed`], [`LogError::LogSignature`],
    /// [`LogError::Origin`], [`LogError::BadCosignature`] or
    /// [`LogError::Quorum`].
    pub fn verify_checkpoint(&self, note: &Note) -> Result<VerifiedCheckpoint, LogError> {
        if !self.log.signed(note)? {
            return Err(LogError::LogSignature(self.log.to_string()));
        }
        let checkpoint = Checkpoint::parse(note.text())?;
        if checkpoint.origin != self.log.name() {
            return Err(LogError::Origin {
                expected: self.log.name().to_owned(),
                found: checkpoint.origin,
            });
        }
        let mut witnesses = Vec::new();
        for w in &self.witnesses {
            if w.cosigned(note)?.is_some() {
                witnesses.push(w.name().to_owned());
            }
        }
        if witnesses.len() < self.quorum {
            return Err(LogError::Quorum {
                found: witnesses,
                required: self.quorum,
                pinned: self.witnesses.len(),
            });
        }
        Ok(VerifiedCheckpoint {
            checkpoint,
            note: note.clone(),
            witnesses,
        })
    }

    /// Checks that `entry` is in the log: `proof`'s checkpoint passes
    /// [`LogPolicy::verify_checkpoint`] and its path leads from the
    /// entry's leaf to the checkpoint's root.
    ///
    /// # Errors
    /// As [`LogPolicy::verify_checkpoint`], and [`LogError::Inclusion`].
    pub fn verify_inclusion(
        &self,
        proof: &TlogProof,
        entry: &LogEntry,
    ) -> Result<VerifiedCheckpoint, LogError> {
        let verified = self.verify_checkpoint(&proof.checkpoint)?;
        let c = &verified.checkpoint;
        if !merkle::verify_inclusion(
            &c.root,
            proof.index,
            c.size,
            &entry.leaf_hash(),
            &proof.path,
        ) {
            return Err(LogError::Inclusion {
                index: proof.index,
                size: c.size,
            });
        }
        Ok(verified)
    }
}

/// Checks that `new` extends `old` (both already verified): a consistency
/// proof from the older size to the newer (RFC 9162 2.1.4.2). A `new`
/// smaller than `old` is refused: a client's view of the log only grows.
///
/// # Errors
/// [`LogError::Inconsistent`].
pub fn verify_consistency(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Hash],
) -> Result<(), LogError> {
    if merkle::verify_consistency(old.size, new.size, &old.root, &new.root, proof) {
        Ok(())
    } else {
        Err(LogError::Inconsistent {
            old: old.size,
            new: new.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{CoSignature, OrgName};
    use crate::manifest::{Manifest, OperatorSigningKey};
    use crate::table::TableBuilder;
    use crate::tlog::note::{LogSigningKey, cosign_for_vectors};
    use crate::tlog::tiles;
    use crate::{Item, ItemType, ServerKey};

    fn entries(n: u64) -> Vec<LogEntry> {
        let key = ServerKey::from_scalar_bytes([9; 32]).unwrap();
        let items: Vec<Item> = (0u8..4)
            .map(|i| Item::new(ItemType::Sha256, &[i; 32]).unwrap())
            .collect();
        let table = TableBuilder::new([3; 32]).build(&key, items).unwrap().table;
        let op = OperatorSigningKey::from_seed([5; 32]);
        let org = OperatorSigningKey::from_seed([6; 32]);
        (1..=n)
            .map(|v| {
                let m = Manifest::for_table(&table, v, 1_700_000_000 + v, None).sign(&op);
                let c = CoSignature::sign(&org, OrgName::new("org").unwrap(), &m.manifest.encode());
                LogEntry::new(m, vec![c]).unwrap()
            })
            .collect()
    }

    fn checkpoint(log: &LogSigningKey, leaves: &[Hash], witnesses: &[u8]) -> Note {
        let c = Checkpoint {
            origin: log.name().to_owned(),
            size: leaves.len() as u64,
            root: merkle::root(leaves),
            extensions: Vec::new(),
        };
        let mut note = Note::new(&c.text()).unwrap();
        log.sign(&mut note);
        for &w in witnesses {
            cosign_for_vectors(&format!("w{w}.example"), [w; 32], 1_700_000_000, &mut note)
                .unwrap();
        }
        note
    }

    fn witness(w: u8) -> CosignerKey {
        let mut n = Note::new("x\n").unwrap();
        cosign_for_vectors(&format!("w{w}.example"), [w; 32], 0, &mut n).unwrap()
    }

    #[test]
    fn an_entry_is_accepted_only_in_a_cosigned_checkpoint_that_extends_the_last() {
        let log = LogSigningKey::from_seed("log.example/bm", [1; 32]).unwrap();
        let policy = LogPolicy::new(
            log.verifying_key(),
            &[witness(1), witness(2), witness(3)],
            2,
        )
        .unwrap();
        let entries = entries(5);
        for e in &entries {
            assert_eq!(&LogEntry::decode(&e.encode()).unwrap(), e);
        }
        let leaves: Vec<Hash> = entries.iter().map(LogEntry::leaf_hash).collect();
        let proof = |n: usize, i: usize, ws: &[u8]| TlogProof {
            extra: None,
            index: i as u64,
            path: merkle::inclusion_proof(&leaves[..n], i),
            checkpoint: checkpoint(&log, &leaves[..n], ws),
        };

        let first = policy
            .verify_inclusion(&proof(3, 2, &[1, 3]), &entries[2])
            .unwrap();
        assert_eq!(first.witnesses(), ["w1.example", "w3.example"]);
        // One witness is not a quorum of two; an unpinned one counts for nothing.
        match policy.verify_inclusion(&proof(3, 2, &[1, 4]), &entries[2]) {
            Err(LogError::Quorum {
                found,
                required: 2,
                pinned: 3,
            }) => assert_eq!(found, ["w1.example"]),
            other => panic!("{other:?}"),
        }
        // Another entry, or another index, is not in the tree.
        assert!(matches!(
            policy.verify_inclusion(&proof(3, 2, &[1, 2]), &entries[1]),
            Err(LogError::Inclusion { index: 2, size: 3 })
        ));
        // Another log's key.
        let other = LogSigningKey::from_seed("log.example/bm", [2; 32]).unwrap();
        let mut p = proof(3, 2, &[1, 2]);
        p.checkpoint = checkpoint(&other, &leaves[..3], &[1, 2]);
        assert!(matches!(
            policy.verify_inclusion(&p, &entries[2]),
            Err(LogError::LogSignature(_))
        ));

        // The next checkpoint extends the first; a fork of it does not.
        let second = policy
            .verify_inclusion(&proof(5, 4, &[2, 3]), &entries[4])
            .unwrap();
        let consistency = merkle::consistency_proof(&leaves, 3);
        verify_consistency(first.checkpoint(), second.checkpoint(), &consistency).unwrap();
        let mut forked = leaves.clone();
        forked[1] = merkle::leaf_hash(b"another table");
        let fork = policy
            .verify_checkpoint(&checkpoint(&log, &forked, &[1, 2]))
            .unwrap();
        let fork_proof = merkle::consistency_proof(&forked, 3);
        assert_eq!(
            verify_consistency(first.checkpoint(), fork.checkpoint(), &fork_proof),
            Err(LogError::Inconsistent { old: 3, new: 5 })
        );
        // A view never shrinks.
        assert!(verify_consistency(second.checkpoint(), first.checkpoint(), &[]).is_err());

        // The tiles of the log hold the same root.
        let t = tiles::tiles(&leaves);
        assert_eq!(t.len(), 1);
        assert_eq!(tiles::read_tile(&t[0].0, &t[0].1).unwrap(), leaves);
    }

    #[test]
    fn a_quorum_must_be_between_one_and_the_distinct_witnesses() {
        let log = LogSigningKey::from_seed("log.example/bm", [1; 32])
            .unwrap()
            .verifying_key();
        assert!(LogPolicy::new(log.clone(), &[witness(1), witness(1)], 2).is_err());
        assert!(LogPolicy::new(log.clone(), &[witness(1)], 0).is_err());
        assert!(LogPolicy::new(log.clone(), &[], 0).is_ok());
        assert_eq!(
            LogPolicy::new(log, &[witness(1), witness(1)], 1)
                .unwrap()
                .witnesses()
                .len(),
            1
        );
    }
}
