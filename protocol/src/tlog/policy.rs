//! What a client of a logged operator pins, and the checks it makes (SPEC
//! 16.6): the checkpoint is the pinned log's and signed by its key,
//! cosigned by a quorum of the pinned witnesses; the served manifest's
//! entry is in the checkpoint's tree; and every checkpoint extends the
//! last one the client accepted.

use super::note::{CosignerKey, LogVerifyingKey, Note};
use super::{Checkpoint, Hash, LogEntry, LogError, TlogProof, malformed};
use crate::merkle;

/// A witness the policy names: its name in the policy, its key, and the
/// URL of its submission prefix (which only the operator needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// The name the policy gives it.
    pub name: String,
    /// Its cosigning key.
    pub key: CosignerKey,
    /// Its submission prefix (c2sp.org/tlog-witness), if given.
    pub url: Option<String>,
}

/// What a quorum rule or group counts: a witness or a group defined before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    name: String,
    k: usize,
    members: Vec<Member>,
}

/// A client's trust in a log (c2sp.org/tlog-policy): the log's key, the
/// witnesses, and the quorum of them that must have cosigned a checkpoint,
/// a witness or a k-of-n group of witnesses and groups. A blindmatch
/// policy names exactly one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPolicy {
    log: LogVerifyingKey,
    log_url: Option<String>,
    witnesses: Vec<Witness>,
    groups: Vec<Group>,
    quorum: Option<Member>,
}

/// The most witnesses, and the most groups, a policy may define (the
/// specification recommends supporting at least 32 of each).
pub const MAX_POLICY_WITNESSES: usize = 64;

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

    /// The policy's witnesses whose cosignatures verified, by their names
    /// in the policy.
    pub fn witnesses(&self) -> &[String] {
        &self.witnesses
    }
}

impl LogPolicy {
    /// The log `log` (its origin is the key's name), with `quorum` of
    /// `witnesses` required: the policy `--log-key`, `--witness-key` and
    /// `--witness-quorum` describe. A witness pinned twice counts once.
    ///
    /// # Errors
    /// [`LogError::Malformed`] for a quorum above the number of distinct
    /// witnesses, or witnesses pinned with a quorum of 0.
    pub fn new(
        log: LogVerifyingKey,
        witnesses: &[CosignerKey],
        quorum: usize,
    ) -> Result<Self, LogError> {
        let mut distinct: Vec<Witness> = Vec::with_capacity(witnesses.len());
        for w in witnesses {
            match distinct.iter().find(|d| d.key.same_key(w)) {
                // The same key under the same name: pinned twice, counted once.
                Some(d) if d.key == *w => {}
                // The same key under two names would count one witness twice:
                // a v1 cosignature does not sign its name, so anyone can copy
                // a line under the other name.
                Some(d) => {
                    return Err(malformed(
                        "witness keys",
                        format!(
                            "{} and {} are one key: a witness is pinned once",
                            d.name,
                            w.name()
                        ),
                    ));
                }
                None => distinct.push(Witness {
                    name: w.name().to_owned(),
                    key: w.clone(),
                    url: None,
                }),
            }
        }
        if distinct.len() > MAX_POLICY_WITNESSES
            || quorum > distinct.len()
            || (quorum == 0 && !distinct.is_empty())
        {
            return Err(malformed(
                "witness quorum",
                format!(
                    "{quorum} of {} distinct witnesses: it must be 1 to their number",
                    distinct.len()
                ),
            ));
        }
        let (groups, rule) = if quorum == 0 {
            (Vec::new(), None)
        } else {
            let members = (0..distinct.len()).map(Member::Witness).collect();
            (
                vec![Group {
                    name: format!("{quorum} of the pinned witnesses"),
                    k: quorum,
                    members,
                }],
                Some(Member::Group(0)),
            )
        };
        Ok(LogPolicy {
            log,
            log_url: None,
            witnesses: distinct,
            groups,
            quorum: rule,
        })
    }

    /// Parses a policy file (c2sp.org/tlog-policy): `log <vkey> [<url>]`
    /// (exactly one, here), `witness <name> <vkey> [<url>]`, `group <name>
    /// all|any|<k> <name>...`, and one `quorum <name>|none`; `#` comments.
    ///
    /// # Errors
    /// [`LogError::Malformed`] naming the line that is wrong.
    pub fn parse(text: &str) -> Result<Self, LogError> {
        let mut logs: Vec<(LogVerifyingKey, Option<String>)> = Vec::new();
        let mut witnesses: Vec<Witness> = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut quorum: Option<Option<Member>> = None;
        // tlog-policy: each name is a member of at most one group, so that
        // a witness counts once and the groups form a tree.
        let mut used: Vec<Member> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let bad = |why: String| malformed("log policy", format!("line {line_no}: {why}"));
            if raw.bytes().any(|b| b < 0x20 && b != b'\t') || raw.bytes().any(|b| b == 0x7f) {
                return Err(bad("a control character".into()));
            }
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some((&keyword, args)) = words.split_first() else {
                continue;
            };
            if keyword.starts_with('#') {
                continue;
            }
            let defined = |name: &str| -> Option<Member> {
                if let Some(i) = witnesses.iter().position(|w| w.name == name) {
                    return Some(Member::Witness(i));
                }
                groups
                    .iter()
                    .position(|g| g.name == name)
                    .map(Member::Group)
            };
            match (keyword, args) {
                ("log", [vkey, rest @ ..]) if rest.len() <= 1 => {
                    let key = LogVerifyingKey::parse(vkey).map_err(|e| bad(e.to_string()))?;
                    if logs.iter().any(|(k, _)| k.same_key(&key)) {
                        return Err(bad("a log listed twice".into()));
                    }
                    logs.push((key, rest.first().map(|u| (*u).to_owned())));
                }
                ("witness", [name, vkey, rest @ ..]) if rest.len() <= 1 => {
                    if *name == "none" || defined(name).is_some() {
                        return Err(bad(format!("the name {name} is taken")));
                    }
                    let key = CosignerKey::parse(vkey).map_err(|e| bad(e.to_string()))?;
                    if witnesses.iter().any(|w| w.key.same_key(&key)) {
                        return Err(bad("a witness key listed twice".into()));
                    }
                    if witnesses.len() == MAX_POLICY_WITNESSES {
                        return Err(bad(format!("more than {MAX_POLICY_WITNESSES} witnesses")));
                    }
                    witnesses.push(Witness {
                        name: (*name).to_owned(),
                        key,
                        url: rest.first().map(|u| (*u).to_owned()),
                    });
                }
                ("group", [name, k, names @ ..]) if !names.is_empty() => {
                    if *name == "none" || defined(name).is_some() {
                        return Err(bad(format!("the name {name} is taken")));
                    }
                    let mut members = Vec::with_capacity(names.len());
                    for m in names {
                        let member = defined(m)
                            .ok_or_else(|| bad(format!("{m} is not defined on an earlier line")))?;
                        if members.contains(&member) || used.contains(&member) {
                            return Err(bad(format!(
                                "{m} is a member already (of this group or another): each name counts once"
                            )));
                        }
                        members.push(member);
                    }
                    used.extend_from_slice(&members);
                    let k = match *k {
                        "all" => members.len(),
                        "any" => 1,
                        k => crate::tlog::parse_decimal(k)
                            .and_then(|k| usize::try_from(k).ok())
                            .filter(|k| (1..=members.len()).contains(k))
                            .ok_or_else(|| {
                                bad(format!(
                                    "the threshold {k} is not all, any or 1 to {}",
                                    members.len()
                                ))
                            })?,
                    };
                    if groups.len() == MAX_POLICY_WITNESSES {
                        return Err(bad(format!("more than {MAX_POLICY_WITNESSES} groups")));
                    }
                    groups.push(Group {
                        name: (*name).to_owned(),
                        k,
                        members,
                    });
                }
                ("quorum", [name]) => {
                    if quorum.is_some() {
                        return Err(bad("a second quorum line".into()));
                    }
                    quorum = Some(if *name == "none" {
                        None
                    } else {
                        Some(defined(name).ok_or_else(|| {
                            bad(format!("{name} is not defined on an earlier line"))
                        })?)
                    });
                }
                _ => {
                    return Err(bad(format!(
                        "not a policy line: {keyword} with {} argument(s)",
                        args.len()
                    )));
                }
            }
        }
        let quorum = quorum.ok_or_else(|| malformed("log policy", "no quorum line"))?;
        let mut logs = logs.into_iter();
        let (Some((log, log_url)), None) = (logs.next(), logs.next()) else {
            return Err(malformed(
                "log policy",
                "a blindmatch policy names exactly one log",
            ));
        };
        Ok(LogPolicy {
            log,
            log_url,
            witnesses,
            groups,
            quorum,
        })
    }

    /// The log's key.
    pub fn log(&self) -> &LogVerifyingKey {
        &self.log
    }

    /// The log's URL, if the policy gives one.
    pub fn log_url(&self) -> Option<&str> {
        self.log_url.as_deref()
    }

    /// The witnesses the policy defines.
    pub fn witnesses(&self) -> &[Witness] {
        &self.witnesses
    }

    /// Whether the policy requires any cosignature at all.
    pub fn requires_witnesses(&self) -> bool {
        self.quorum.is_some()
    }

    /// The quorum rule, for messages: `none`, a witness's name, or a
    /// group's `k of (members)`.
    pub fn rule(&self) -> String {
        match self.quorum {
            None => "none".to_owned(),
            Some(m) => self.describe(m),
        }
    }

    fn describe(&self, m: Member) -> String {
        match m {
            Member::Witness(i) => self.witnesses[i].name.clone(),
            Member::Group(i) => {
                let g = &self.groups[i];
                let names: Vec<String> = g.members.iter().map(|&m| self.describe(m)).collect();
                format!("{} of ({})", g.k, names.join(", "))
            }
        }
    }

    /// Whether the witnesses in `cosigned` (one flag per witness) satisfy
    /// `m`.
    fn satisfied(&self, m: Member, cosigned: &[bool]) -> bool {
        match m {
            Member::Witness(i) => cosigned[i],
            Member::Group(i) => {
                let g = &self.groups[i];
                g.members
                    .iter()
                    .filter(|&&m| self.satisfied(m, cosigned))
                    .count()
                    >= g.k
            }
        }
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
        let mut cosigned = Vec::with_capacity(self.witnesses.len());
        for w in &self.witnesses {
            cosigned.push(w.key.cosigned(note)?.is_some());
        }
        let witnesses: Vec<String> = self
            .witnesses
            .iter()
            .zip(&cosigned)
            .filter(|(_, c)| **c)
            .map(|(w, _)| w.name.clone())
            .collect();
        if let Some(rule) = self.quorum
            && !self.satisfied(rule, &cosigned)
        {
            return Err(LogError::Quorum {
                found: witnesses,
                rule: self.rule(),
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
                found, pinned: 3, ..
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
        // One key under two names is refused: it would count twice.
        let pk = ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .to_bytes();
        let renamed = CosignerKey::new("another.name", &pk).unwrap();
        assert!(LogPolicy::new(log.clone(), &[witness(1), renamed], 1).is_err());
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

    /// The two-level example of c2sp.org/tlog-policy: two of the X
    /// witnesses and one of the Y witnesses.
    #[test]
    fn a_policy_file_with_groups_is_evaluated_as_the_specification_says() {
        let log = LogSigningKey::from_seed("log.example/bm", [1; 32]).unwrap();
        let mut text = format!(
            "# a comment\nlog {} https://log.example/bm\n",
            log.verifying_key()
        );
        for (name, w) in [("X1", 11), ("X2", 12), ("X3", 13), ("Y1", 21), ("Y2", 22)] {
            text.push_str(&format!(
                "witness {name} {} http://127.0.0.1:1/\n",
                witness(w)
            ));
        }
        text.push_str("group X 2 X1 X2 X3\ngroup Y any Y1 Y2\ngroup XY all X Y\n\t quorum XY \n");
        let policy = LogPolicy::parse(&text).unwrap();
        assert_eq!(policy.rule(), "2 of (2 of (X1, X2, X3), 1 of (Y1, Y2))");
        assert_eq!(
            policy.witnesses()[0].url.as_deref(),
            Some("http://127.0.0.1:1/")
        );
        let leaves = [merkle::leaf_hash(b"e")];
        let ok = |ws: &[u8]| {
            policy
                .verify_checkpoint(&checkpoint(&log, &leaves, ws))
                .is_ok()
        };
        assert!(ok(&[11, 13, 22]));
        assert!(!ok(&[11, 21, 22]));
        assert!(!ok(&[11, 12, 13]));
        for bad in [
            text.replace("quorum XY", "quorum XYZ"),
            text.replace("group X 2", "group X 4"),
            text.replace("group Y any Y1 Y2", "group Y any Y1 Y1"),
            // X1 in two groups: it would count twice toward XY.
            text.replace("group XY all X Y", "group Z any X1\ngroup XY all X Y Z"),
            text.replace("\t quorum XY \n", ""),
            format!("{text}quorum none\n"),
            text.replace("witness Y2", "witness X1"),
            format!(
                "log {}\n{text}",
                LogSigningKey::from_seed("other", [2; 32])
                    .unwrap()
                    .verifying_key()
            ),
        ] {
            assert!(LogPolicy::parse(&bad).is_err(), "{bad}");
        }
        let none = format!("log {}\nquorum none\n", log.verifying_key());
        assert!(
            LogPolicy::parse(&none)
                .unwrap()
                .verify_checkpoint(&checkpoint(&log, &leaves, &[]))
                .is_ok()
        );
    }
}
