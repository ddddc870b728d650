//! What a client refuses, and why.

/// Why the client refused what a server sent, or what the app asked.
///
/// Every variant names the problem without an item, a key or associated
/// data, so it is safe to log and to show. Its [`Error::kind`] is the one
/// thing a binding maps (to an exception class in Python and Kotlin, an enum
/// case in Swift, an `Error` with a `kind` in JavaScript, a status code in
/// C); the message each language shows is this type's `Display`, so a
/// Kotlin user reads the same words as a C user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server's table is in threshold mode (protocol version 2, SPEC
    /// Section 14): its vouchers are made under an account secret.
    #[error(
        "the server's table is in threshold mode (protocol version 2, t = {t}): make the submission under an account secret"
    )]
    ThresholdMode {
        /// The manifest's threshold.
        t: u16,
    },
    /// An account submission for a table in protocol version 1, which has
    /// no threshold: the server would refuse the account id.
    #[error(
        "the server's table is not in threshold mode (protocol version 1): make the submission without an account"
    )]
    NotThresholdMode,
    /// An account submission with a table opened without its manifest,
    /// which is what says whether (and under which t) threshold mode applies.
    #[error(
        "this table was opened without its manifest, which says whether it is in threshold mode: open it with its manifest"
    )]
    NoManifest,
    /// The manifest's signature does not verify under the pinned operator
    /// key: it was not signed by the operator, or it was altered.
    #[error("manifest signature does not verify under the pinned operator key")]
    BadSignature,
    /// The server offered a version older than one this client verified
    /// before: a rollback to a list missing newer entries.
    #[error(
        "the server offers table version {offered}, older than version {seen} seen before: refused (rollback)"
    )]
    Rollback {
        /// The version offered.
        offered: u64,
        /// The newest version seen.
        seen: u64,
    },
    /// The server offered another signed statement under a version number
    /// this client has seen (another table, or the same one signed again),
    /// or a table it has seen under other parameters (mode, t, s): how one
    /// user would be singled out. Both manifests are evidence.
    #[error(
        "the server offers table {offered} as version {version}, but this client verified table {seen} under other signed terms before: two statements for one version or one table (equivocation); refused"
    )]
    Equivocation {
        /// The version number.
        version: u64,
        /// The table id offered now (hex).
        offered: String,
        /// The table id seen before (hex).
        seen: String,
    },
    /// Fewer of the organisations this client pins co-signed the table's
    /// statement than it requires (SPEC Section 15.6): the list was not
    /// audited by enough of them, or this table is not the one they
    /// audited.
    #[error(
        "the table version {version} has {found} valid co-signature(s) from the organisations this client pins ({cosigners}), {required} required: refused (not audited by enough organisations){}",
        not_counted(*unpinned, invalid)
    )]
    BelowQuorum {
        /// The table version.
        version: u64,
        /// Distinct pinned organisations whose co-signature verified.
        found: usize,
        /// How many are required.
        required: usize,
        /// Their names, comma-separated, or "none".
        cosigners: String,
        /// Co-signatures from keys this client does not pin.
        unpinned: usize,
        /// Names on co-signatures from pinned keys that do not verify over
        /// this statement, comma-separated (empty if none).
        invalid: String,
    },
    /// The manifest is not proved to be in the operator's transparency log
    /// under a checkpoint the app's policy accepts (SPEC Section 16.6), or
    /// that checkpoint does not extend the one this client accepted before:
    /// no proof, a proof that fails, too few witnesses (m of n), or an
    /// inconsistent (forked) log. The table held stays.
    #[error("transparency log: {0}")]
    Log(#[source] blindmatch_protocol::tlog::LogError),
    /// The manifest was built longer ago than the app allows: the list may
    /// have stopped being updated.
    #[error(
        "the server's table version {version} was built {age_seconds} s ago, more than the {max_seconds} s allowed: refused (stale list)"
    )]
    TooOld {
        /// Its version.
        version: u64,
        /// Its age.
        age_seconds: u64,
        /// The bound.
        max_seconds: u64,
    },
    /// A chunk, table, delta or statement is not what the signed manifest
    /// describes: it does not hash to the digest or the table id, or a slot
    /// is not a valid element. Nothing of it was kept.
    #[error("{}", subject_once(what, source))]
    Invalid {
        /// What was being checked ("table chunk", "delta", "table", ...).
        what: &'static str,
        /// The protocol's reason.
        source: blindmatch_protocol::Error,
    },
    /// A message is malformed before any cryptography is involved (a proof
    /// hash that is not 32 bytes, a delta index cut in half, a delta larger
    /// than the table).
    #[error("{0}")]
    Malformed(&'static str),
    /// Something the app gave cannot be used: a hash value of the wrong
    /// length or not hex, associated data over 1 KiB, an operator key or a
    /// voucher id of the wrong length.
    ///
    /// The protocol's reason names what it is about ("sha256 value is 3
    /// bytes, expected 32", "voucher id: expected 16 bytes, got 3").
    #[error(transparent)]
    Input(blindmatch_protocol::Error),
    /// The saved [`crate::History`] does not verify under the operator key:
    /// damaged, or from another operator. Starting a new one loses the
    /// rollback protection of what the damaged one recorded.
    #[error("saved manifest history does not verify under this operator key: {0}")]
    History(blindmatch_protocol::Error),
    /// An account secret cannot be made or read: a damaged saved secret, an
    /// account id outside 1 to 64 bytes, a synthetic rate outside 0 to 1.
    #[error("account secret: {0}")]
    Account(blindmatch_protocol::Error),
    /// A step was taken out of order: an object that a step consumed (a
    /// finished download) was used again. Only the bindings, whose objects
    /// a language can keep after a step, can reach this.
    #[error("this {0} is finished: start a new one")]
    Finished(&'static str),
}

/// What kind of refusal an [`Error`] is: the flat list every binding maps
/// one to one, so that each language tells the same cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::BadSignature`]: the manifest is not the operator's.
    BadSignature,
    /// [`Error::Rollback`]: an older version than one seen before.
    Rollback,
    /// [`Error::Equivocation`]: another statement under a version seen, or
    /// a table seen under other terms.
    Equivocation,
    /// [`Error::TooOld`]: built longer ago than the app allows.
    TooOld,
    /// [`Error::BelowQuorum`]: too few pinned organisations co-signed.
    Quorum,
    /// [`Error::Log`]: not proved to be in the transparency log, or the
    /// log's view forked.
    Log,
    /// [`Error::Invalid`]: not what the signed manifest describes.
    Invalid,
    /// [`Error::Malformed`]: a malformed message.
    Malformed,
    /// [`Error::Input`]: something the app gave cannot be used.
    Input,
    /// [`Error::History`]: the saved history does not verify.
    History,
    /// [`Error::ThresholdMode`], [`Error::NotThresholdMode`],
    /// [`Error::NoManifest`]: a submission of the wrong mode for the table.
    Mode,
    /// [`Error::Account`]: an account secret cannot be made or read.
    Account,
    /// [`Error::Finished`]: a step taken out of order.
    State,
}

impl ErrorKind {
    /// Every kind, in the order bindings list them.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::BadSignature,
        ErrorKind::Rollback,
        ErrorKind::Equivocation,
        ErrorKind::TooOld,
        ErrorKind::Quorum,
        ErrorKind::Log,
        ErrorKind::Invalid,
        ErrorKind::Malformed,
        ErrorKind::Input,
        ErrorKind::History,
        ErrorKind::Mode,
        ErrorKind::Account,
        ErrorKind::State,
    ];

    /// The kind's name, as every binding spells it (`"Rollback"`): the
    /// exception class, the enum case, JavaScript's `error.kind`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadSignature => "BadSignature",
            ErrorKind::Rollback => "Rollback",
            ErrorKind::Equivocation => "Equivocation",
            ErrorKind::TooOld => "TooOld",
            ErrorKind::Quorum => "Quorum",
            ErrorKind::Log => "Log",
            ErrorKind::Invalid => "Invalid",
            ErrorKind::Malformed => "Malformed",
            ErrorKind::Input => "Input",
            ErrorKind::History => "History",
            ErrorKind::Mode => "Mode",
            ErrorKind::Account => "Account",
            ErrorKind::State => "State",
        }
    }
}

impl core::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl Error {
    /// Which kind of refusal this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ThresholdMode { .. } | Error::NotThresholdMode | Error::NoManifest => {
                ErrorKind::Mode
            }
            Error::BadSignature => ErrorKind::BadSignature,
            Error::Rollback { .. } => ErrorKind::Rollback,
            Error::Equivocation { .. } => ErrorKind::Equivocation,
            Error::TooOld { .. } => ErrorKind::TooOld,
            Error::BelowQuorum { .. } => ErrorKind::Quorum,
            Error::Log(_) => ErrorKind::Log,
            Error::Invalid { .. } => ErrorKind::Invalid,
            Error::Malformed(_) => ErrorKind::Malformed,
            Error::Input(_) => ErrorKind::Input,
            Error::History(_) => ErrorKind::History,
            Error::Account(_) => ErrorKind::Account,
            Error::Finished(_) => ErrorKind::State,
        }
    }

    /// One error of every kind, in [`ErrorKind::ALL`]'s order: what the
    /// bindings' tests map to show that each language tells every kind
    /// apart and shows its message.
    #[doc(hidden)]
    pub fn one_of_each_kind() -> Vec<Error> {
        use blindmatch_protocol::Error as P;
        vec![
            Error::BadSignature,
            Error::Rollback {
                offered: 1,
                seen: 2,
            },
            Error::Equivocation {
                version: 2,
                offered: "aa".into(),
                seen: "bb".into(),
            },
            Error::TooOld {
                version: 3,
                age_seconds: 100,
                max_seconds: 10,
            },
            Error::BelowQuorum {
                version: 3,
                found: 1,
                required: 2,
                cosigners: "Hotline A".into(),
                unpinned: 1,
                invalid: "Hotline B".into(),
            },
            Error::Log(blindmatch_protocol::tlog::LogError::Inconsistent { old: 5, new: 7 }),
            Error::Invalid {
                what: "table chunk",
                source: P::DigestMismatch,
            },
            Error::Malformed("a proof hash is not 32 bytes"),
            Error::Input(P::AssociatedDataTooLong {
                len: 2000,
                max: blindmatch_protocol::MAX_AD_LEN,
            }),
            Error::History(P::BadSignature),
            Error::ThresholdMode { t: 30 },
            Error::Account(P::MalformedAccount("non-zero padding after the account id")),
            Error::Finished("download"),
        ]
    }

    pub(crate) fn invalid(what: &'static str) -> impl FnOnce(blindmatch_protocol::Error) -> Self {
        move |source| Error::Invalid { what, source }
    }
}

/// What a quorum did not count, for [`Error::BelowQuorum`]'s message.
fn not_counted(unpinned: usize, invalid: &str) -> String {
    let mut out = String::new();
    if unpinned > 0 {
        out.push_str(&format!("; {unpinned} from keys not pinned"));
    }
    if !invalid.is_empty() {
        out.push_str(&format!(
            "; pinned but not valid over this statement: {invalid}"
        ));
    }
    out
}

/// `what: reason`, or the reason alone when it already starts with `what`
/// (a chunk of the wrong length is "table chunk: expected 65536 bytes, got
/// 100", not "table chunk: table chunk: ...").
fn subject_once(what: &str, source: &blindmatch_protocol::Error) -> String {
    let reason = source.to_string();
    if reason.starts_with(what) {
        reason
    } else {
        format!("{what}: {reason}")
    }
}

impl From<blindmatch_protocol::ItemError> for Error {
    fn from(e: blindmatch_protocol::ItemError) -> Self {
        Error::Input(e.into())
    }
}
