//! The store's conformance suite: every case runs against both backends,
//! SQLite (in a temporary directory) and PostgreSQL (a fresh database on
//! the test cluster, see `support/postgres.rs`), through the one interface
//! the server uses, `blindmatch_server::store::Store`.
//!
//! The cases at the end need several replicas open on one store at once,
//! which only PostgreSQL allows (a SQLite store has one writer: a second is
//! refused, as the first case of that part checks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/postgres.rs"]
mod postgres;

use std::time::Duration;

use blindmatch_protocol::{Item, ItemType, Match};
use blindmatch_server::store::{
    self, Account, CandidateState, Cursor, Evaluated, Feed, FeedKind, FeedRecord, Findings,
    Ingested, Location, NewCandidate, NewSubmission, PendingSubmission, Receipt, Replica, Store,
    Verdict,
};

/// One backend under test: opens the same store as any number of replicas.
struct Backend {
    location: Location,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Backend {
            location: Location::Sqlite(dir.path().to_owned()),
            _dir: Some(dir),
        }
    }

    fn postgres(test: &str) -> Option<Self> {
        let url = postgres::fresh_database(test)?;
        Some(Backend {
            location: Location::parse(&url, None).unwrap(),
            _dir: None,
        })
    }

    /// Opens the store as a new replica with `lease`.
    fn open_with(&self, lease: Duration) -> Box<dyn Store> {
        store::open(&self.location, Replica::new(lease), None).unwrap()
    }

    fn open(&self) -> Box<dyn Store> {
        self.open_with(store::DEFAULT_LEASE)
    }

    fn matches(&self) -> Vec<store::MatchRecord> {
        store::read_matches(&self.location).unwrap()
    }

    /// The match feed, as the webhook's deliverer opens it (after a store:
    /// the feed needs the schema).
    fn feed(&self) -> Box<dyn Feed> {
        store::open_feed(&self.location, true).unwrap()
    }
}

/// Runs each case on SQLite and on PostgreSQL.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(&super::Backend::sqlite()); } )*
        }
        mod on_postgres {
            $( #[test] fn $case() {
                if let Some(b) = super::Backend::postgres(stringify!($case)) { super::$case(&b); }
            } )*
        }
    };
}

conformance!(
    an_ingested_submission_comes_back_whole_to_the_next_replica,
    a_harvest_records_exactly_the_matches_and_leaves_nothing_pending,
    a_submission_recorded_once_is_not_recorded_again,
    a_named_batch_is_stored_once_and_a_reused_id_is_a_conflict,
    claims_take_only_the_tables_held_and_never_this_replicas_own,
    a_reclaim_finds_this_replicas_rows_that_it_does_not_hold,
    pruning_forgets_old_matches_and_ids_but_not_pending_ones,
    a_version_is_recorded_once_at_its_first_publication,
    stats_count_the_whole_store,
    candidates_are_stored_once_per_x_with_their_submissions_retirement,
    a_settlement_applies_once_and_only_to_unresolved_candidates,
    candidates_are_kept_per_account_and_threshold_and_pruned_with_the_matches,
    the_feed_gives_every_record_once_in_order_from_any_cursor,
    a_pruned_newest_record_leaves_its_id_unused,
    the_webhooks_cursor_is_kept_in_the_store_and_never_moves_back,
);

fn submission(id: &str, n: usize, table: &str) -> PendingSubmission {
    PendingSubmission {
        row: 0,
        receipt: Receipt {
            submission_id: id.into(),
            received_at_ms: store::now_ms(),
            table_id: table.into(),
        },
        account: None,
        vouchers: (0..n)
            .map(|i| vec![u8::try_from(i % 251).unwrap(); 1397])
            .collect(),
    }
}

/// `p` to store, named by the client if `digest` is given.
fn new<'a>(p: &'a PendingSubmission, digest: Option<&'a [u8; 32]>) -> NewSubmission<'a> {
    NewSubmission {
        receipt: &p.receipt,
        account: p.account.as_deref(),
        vouchers: &p.vouchers,
        digest,
    }
}

/// Stores `p` (unnamed) and returns it with its row.
fn stored(s: &mut dyn Store, mut p: PendingSubmission) -> PendingSubmission {
    match s.ingest(&[new(&p, None)]).unwrap()[..] {
        [Ingested::Stored { row }] => p.row = row,
        ref other => panic!("not stored: {other:?}"),
    }
    p
}

fn ingest_one(s: &mut dyn Store, id: &str, n: usize, table: &str) -> PendingSubmission {
    stored(s, submission(id, n, table))
}

fn evaluated<'a>(p: &'a PendingSubmission, findings: &'a Findings) -> Evaluated<'a> {
    Evaluated {
        row: p.row,
        receipt: &p.receipt,
        findings,
    }
}

fn matched(matches: &[(u32, &Match)]) -> Findings {
    Findings::Matches(matches.iter().map(|&(i, m)| (i, m.clone())).collect())
}

fn a_match(i: u8) -> Match {
    Match {
        item: Item::new(ItemType::Sha256, &[i; 32]).unwrap(),
        associated_data: vec![i; 100],
        entry: u32::from(i) * 1000,
        position: i % 3,
    }
}

/// What one replica acknowledged and left unevaluated (it stopped), the
/// next claims: every voucher as stored, oldest first.
fn an_ingested_submission_comes_back_whole_to_the_next_replica(b: &Backend) {
    let mut first = b.open();
    let a = ingest_one(&mut *first, "a", 3, "t");
    let c = ingest_one(&mut *first, "c", 64, "t");
    first.leave().unwrap();
    drop(first);
    let mut next = b.open();
    let claimed = next.claim(&["t".into()], 100).unwrap();
    assert_eq!(
        claimed.iter().map(|s| s.row).collect::<Vec<_>>(),
        [a.row, c.row]
    );
    assert_eq!(claimed[0].vouchers, a.vouchers);
    assert_eq!(claimed[1].vouchers, c.vouchers);
    assert_eq!(claimed[1].receipt, c.receipt);
    // Claimed now: a second claim gets nothing more.
    assert!(next.claim(&["t".into()], 100).unwrap().is_empty());
}

/// One harvest records submissions with and without matches: exactly their
/// matches, and no pending row left; nothing is left to claim.
fn a_harvest_records_exactly_the_matches_and_leaves_nothing_pending(b: &Backend) {
    let mut s = b.open();
    let none = ingest_one(&mut *s, "none", 3, "t");
    let all = ingest_one(&mut *s, "all", 3, "t");
    let matches: Vec<Match> = (1..=3u8).map(a_match).collect();
    assert_eq!(s.stats().unwrap().pending, 2);
    let recorded = s
        .complete(&[
            evaluated(&none, &matched(&[])),
            evaluated(
                &all,
                &Findings::Matches(
                    matches
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (u32::try_from(i).unwrap(), m.clone()))
                        .collect(),
                ),
            ),
        ])
        .unwrap();
    assert_eq!(recorded.len(), 2);
    let records = b.matches();
    assert_eq!(records.len(), 3);
    for (i, (r, m)) in records.iter().zip(&matches).enumerate() {
        assert_eq!(
            (
                r.submission_id.as_str(),
                r.voucher_index,
                r.entry,
                &r.associated_data,
                r.item_hex.clone(),
                r.received_at_ms,
                r.table_id.as_str()
            ),
            (
                "all",
                u32::try_from(i).unwrap(),
                m.entry,
                &m.associated_data,
                m.item.to_hex(),
                all.receipt.received_at_ms,
                "t"
            )
        );
    }
    assert_eq!(s.stats().unwrap().pending, 0);
    s.leave().unwrap();
    drop(s);
    assert!(b.open().claim(&["t".into()], 10).unwrap().is_empty());
}

/// A submission evaluated twice (taken over from a replica presumed dead)
/// is recorded by the first to complete; the second records nothing.
fn a_submission_recorded_once_is_not_recorded_again(b: &Backend) {
    let mut s = b.open();
    let sub = ingest_one(&mut *s, "twice", 2, "t");
    let m = a_match(7);
    let findings = matched(&[(1, &m)]);
    assert_eq!(
        s.complete(&[evaluated(&sub, &findings)]).unwrap(),
        vec![sub.row]
    );
    assert!(
        s.complete(&[evaluated(&sub, &findings)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.matches().len(), 1);
    // Twice in one harvest (held once as stored, once as claimed back):
    // recorded once too.
    let again = ingest_one(&mut *s, "twice in one", 2, "t");
    let findings = matched(&[(0, &m)]);
    let both = [evaluated(&again, &findings), evaluated(&again, &findings)];
    assert_eq!(s.complete(&both).unwrap(), vec![again.row]);
    assert_eq!(
        b.matches().len(),
        2,
        "a submission held twice was recorded twice"
    );
}

/// A client-chosen id: stored once; the same id and digest again (also in
/// the same group) is a duplicate, another digest a conflict. Server-chosen
/// ids (no digest) are never deduplicated.
fn a_named_batch_is_stored_once_and_a_reused_id_is_a_conflict(b: &Backend) {
    let mut s = b.open();
    let x = submission("x", 2, "t");
    let (d1, d2, d3) = ([1; 32], [2; 32], [3; 32]);
    let named = |d| new(&x, Some(d));
    let out = s.ingest(&[named(&d1), named(&d1), named(&d2)]).unwrap();
    assert!(matches!(out[0], Ingested::Stored { .. }), "{out:?}");
    assert!(matches!(out[1], Ingested::Duplicate), "{out:?}");
    assert!(matches!(out[2], Ingested::Conflict), "{out:?}");
    let again = s.ingest(&[named(&d1), named(&d3)]).unwrap();
    assert!(matches!(again[0], Ingested::Duplicate), "{again:?}");
    assert!(matches!(again[1], Ingested::Conflict), "{again:?}");
    // The id is remembered by the store, not by this replica.
    s.leave().unwrap();
    drop(s);
    let mut other = b.open();
    let out = other.ingest(&[named(&d1)]).unwrap();
    assert!(matches!(out[0], Ingested::Duplicate), "{out:?}");
    let y = submission("y", 1, "t");
    let out = other.ingest(&[new(&y, None), new(&y, None)]).unwrap();
    assert!(
        out.iter().all(|o| matches!(o, Ingested::Stored { .. })),
        "{out:?}"
    );
    let stats = other.stats().unwrap();
    assert_eq!((stats.pending, stats.remembered_ids), (3, 1));
}

/// A replica claims only work for the versions it holds, never its own,
/// and at most what it asks for.
fn claims_take_only_the_tables_held_and_never_this_replicas_own(b: &Backend) {
    let mut first = b.open();
    for i in 0..5 {
        ingest_one(&mut *first, &format!("old{i}"), 1, "old");
    }
    ingest_one(&mut *first, "new", 1, "new");
    assert!(
        first
            .claim(&["old".into(), "new".into()], 10)
            .unwrap()
            .is_empty(),
        "a replica claimed its own work"
    );
    first.leave().unwrap();
    drop(first);
    let mut next = b.open();
    assert!(next.claim(&["other".into()], 10).unwrap().is_empty());
    let got = next.claim(&["old".into()], 3).unwrap();
    assert_eq!(
        got.iter()
            .map(|s| s.receipt.submission_id.as_str())
            .collect::<Vec<_>>(),
        ["old0", "old1", "old2"]
    );
    let rest = next.claim(&["old".into(), "new".into()], 10).unwrap();
    assert_eq!(
        rest.iter()
            .map(|s| s.receipt.submission_id.as_str())
            .collect::<Vec<_>>(),
        ["old3", "old4", "new"]
    );
}

/// After an ingest that reported an error (its commit went through, its
/// answer did not), a replica finds its own rows that it does not hold,
/// for the versions it holds, oldest first; never another replica's.
fn a_reclaim_finds_this_replicas_rows_that_it_does_not_hold(b: &Backend) {
    let mut first = b.open();
    let rows: Vec<i64> = (0..4)
        .map(|i| ingest_one(&mut *first, &format!("mine{i}"), 1, "t").row)
        .collect();
    ingest_one(&mut *first, "other version", 1, "u");
    let ids = |got: Vec<PendingSubmission>| -> Vec<String> {
        got.into_iter().map(|s| s.receipt.submission_id).collect()
    };
    assert_eq!(
        ids(first
            .reclaim(&["t".into()], &[rows[0], rows[2]], 10)
            .unwrap()),
        ["mine1", "mine3"]
    );
    assert_eq!(
        ids(first.reclaim(&["t".into()], &[rows[0]], 1).unwrap()),
        ["mine1"]
    );
    let whole = first.reclaim(&["t".into(), "u".into()], &rows, 10).unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].receipt.submission_id, "other version");
    assert_eq!(whole[0].vouchers, submission("x", 1, "u").vouchers);
    assert!(first.reclaim(&["t".into()], &rows, 10).unwrap().is_empty());
    first.leave().unwrap();
    drop(first);
    // Another replica's claims (here a replica that left) are not its own.
    let mut next = b.open();
    assert!(
        next.reclaim(&["t".into(), "u".into()], &[], 10)
            .unwrap()
            .is_empty()
    );
}

/// Pruning deletes match records and ids older than given, but keeps the
/// id of a submission still pending (its retry must still be recognised).
fn pruning_forgets_old_matches_and_ids_but_not_pending_ones(b: &Backend) {
    let mut s = b.open();
    let at = |id: &str, at: i64| {
        let mut sub = submission(id, 1, "t");
        sub.receipt.received_at_ms = at;
        sub
    };
    let mut stored = [at("done", 1_000), at("waiting", 1_000), at("recent", 5_000)];
    let out = s
        .ingest(&stored.each_ref().map(|p| new(p, Some(&[9; 32]))))
        .unwrap();
    for (p, o) in stored.iter_mut().zip(out) {
        match o {
            Ingested::Stored { row } => p.row = row,
            other => panic!("{other:?}"),
        }
    }
    let m = a_match(1);
    s.complete(&[
        evaluated(&stored[0], &matched(&[(0, &m)])),
        evaluated(&stored[2], &matched(&[(0, &m)])),
    ])
    .unwrap();
    let pruned = s.prune(Some(2_000), 2_000).unwrap().unwrap();
    assert_eq!((pruned.matches, pruned.ids), (1, 1));
    let stats = s.stats().unwrap();
    assert_eq!(
        (stats.matches, stats.remembered_ids, stats.pending),
        (1, 2, 1)
    );
    // Keeping matches forever: only ids go.
    let pruned = s.prune(None, 10_000).unwrap().unwrap();
    assert_eq!((pruned.matches, pruned.ids), (0, 1));
    assert_eq!(b.matches().len(), 1);
}

/// The first replica to serve a version records when; later publications
/// of it keep that time; versions come newest first.
fn a_version_is_recorded_once_at_its_first_publication(b: &Backend) {
    let mut s = b.open();
    assert!(s.versions().unwrap().is_empty());
    let v1 = s.publish("aa", 1).unwrap();
    assert_eq!(v1.len(), 1);
    assert_eq!((v1[0].table_id.as_str(), v1[0].version), ("aa", 1));
    let now = store::now_ms();
    assert!((v1[0].published_at_ms - now).abs() < 60_000, "{v1:?}");
    std::thread::sleep(Duration::from_millis(20));
    let again = s.publish("aa", 1).unwrap();
    assert_eq!(again, v1);
    s.leave().unwrap();
    drop(s);
    let mut other = b.open();
    let both = other.publish("bb", 2).unwrap();
    assert_eq!(both.iter().map(|p| p.version).collect::<Vec<_>>(), [2, 1]);
    assert!(both[0].published_at_ms >= v1[0].published_at_ms);
    assert_eq!(other.versions().unwrap(), both);
}

fn stats_count_the_whole_store(b: &Backend) {
    let mut s = b.open();
    let sub = ingest_one(&mut *s, "one", 4, "t");
    ingest_one(&mut *s, "two", 4, "t");
    let m = a_match(2);
    s.complete(&[evaluated(&sub, &matched(&[(3, &m)]))])
        .unwrap();
    let stats = s.stats().unwrap();
    assert_eq!((stats.pending, stats.matches), (1, 1));
    assert_eq!(s.pending().unwrap(), 1);
    assert!(stats.bytes_in_use > 0);
    assert_eq!(store::read_stats(&b.location).unwrap().pending, 1);
}

// --- Threshold mode's candidates (SPEC 14.9). ---

fn account(id: &str, t: u16) -> Account {
    Account {
        id: id.as_bytes().to_vec(),
        t,
    }
}

fn for_account(id: &str, n: usize, acct: &str) -> PendingSubmission {
    let mut sub = submission(id, n, "t2");
    sub.account = Some(acct.as_bytes().to_vec());
    sub
}

fn candidates_of(p: &PendingSubmission, t: u16, candidates: &[NewCandidate]) -> Findings {
    Findings::Candidates {
        account: p.account.clone().unwrap(),
        t,
        candidates: candidates.to_vec(),
    }
}

fn candidate(index: u32, x: u64) -> NewCandidate {
    NewCandidate {
        voucher_index: index,
        x,
        share: vec![u8::try_from(x % 251).unwrap(); 1180],
        position: u8::try_from(index % 3).unwrap(),
    }
}

/// A submission's candidates are stored when it is retired, in order, one
/// per x (a resubmitted voucher, in the same or a later submission, counts
/// once), new until examined; the account comes back from a claim with the
/// pending row, and a second retirement of the same row stores nothing.
fn candidates_are_stored_once_per_x_with_their_submissions_retirement(b: &Backend) {
    let mut s = b.open();
    let first = stored(&mut *s, for_account("a", 4, "alice"));
    assert!(s.unexamined(10).unwrap().is_empty());
    // Claimed back by the next process, the account is there.
    s.leave().unwrap();
    drop(s);
    let mut s = b.open();
    let claimed = s.claim(&["t2".into()], 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].account.as_deref(), Some(&b"alice"[..]));
    let cands = [candidate(0, 10), candidate(1, 20), candidate(3, 20)];
    let recorded = s
        .complete(&[evaluated(
            &claimed[0],
            &candidates_of(&claimed[0], 3, &cands),
        )])
        .unwrap();
    assert_eq!(recorded, vec![first.row]);
    // Recorded again (another replica's late copy): nothing more.
    let again = [candidate(0, 30)];
    assert!(
        s.complete(&[evaluated(
            &claimed[0],
            &candidates_of(&claimed[0], 3, &again)
        )])
        .unwrap()
        .is_empty()
    );
    // A later submission resends x = 10 and adds x = 40.
    let second = stored(&mut *s, for_account("b", 2, "alice"));
    let later = [candidate(0, 10), candidate(1, 40)];
    s.complete(&[evaluated(&second, &candidates_of(&second, 3, &later))])
        .unwrap();
    assert_eq!(s.unexamined(10).unwrap(), vec![account("alice", 3)]);
    let got = s.candidates(&account("alice", 3)).unwrap();
    assert_eq!(
        got.iter()
            .map(|c| (c.share[0], c.position))
            .collect::<Vec<_>>(),
        [(10, 0), (20, 1), (40, 1)],
        "one per x, in the order stored"
    );
    assert!(got.iter().all(|c| c.state == CandidateState::New));
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(got[0].table_id, "t2");
    assert_eq!(got[0].share.len(), 1180);
    assert_eq!(s.stats().unwrap().pending, 0);
}

/// Held applies to new candidates only; a real, synthetic or rejected
/// verdict to unresolved ones only; a real one inserts its match record
/// (with the candidate's submission, index, time, table and account) once,
/// however often the account is settled.
fn a_settlement_applies_once_and_only_to_unresolved_candidates(b: &Backend) {
    let mut s = b.open();
    let sub = stored(&mut *s, for_account("a", 4, "bob"));
    let cands = [
        candidate(0, 1),
        candidate(1, 2),
        candidate(2, 3),
        candidate(3, 4),
    ];
    s.complete(&[evaluated(&sub, &candidates_of(&sub, 2, &cands))])
        .unwrap();
    let bob = account("bob", 2);
    let ids: Vec<i64> = s.candidates(&bob).unwrap().iter().map(|c| c.id).collect();
    // Below: every new one held; examined, nothing left to examine.
    let held: Vec<(i64, Verdict)> = ids.iter().map(|&i| (i, Verdict::Held)).collect();
    assert_eq!(s.settle(&bob, &held[..2]).unwrap(), 0);
    assert_eq!(s.unexamined(10).unwrap(), vec![bob.clone()]);
    assert_eq!(s.settle(&bob, &held).unwrap(), 0);
    assert!(s.unexamined(10).unwrap().is_empty());
    // The crossing: two real, one synthetic, one rejected.
    let crossing = vec![
        (ids[0], Verdict::Real(a_match(1))),
        (ids[1], Verdict::Real(a_match(2))),
        (ids[2], Verdict::Synthetic),
        (ids[3], Verdict::Rejected),
    ];
    assert_eq!(s.settle(&bob, &crossing).unwrap(), 2);
    // Again (a crash before the examiner knew, or a second replica): none.
    assert_eq!(s.settle(&bob, &crossing).unwrap(), 0);
    // Held never moves a resolved candidate back; another account's
    // settlement never touches bob's.
    assert_eq!(s.settle(&bob, &held).unwrap(), 0);
    let other = vec![(ids[2], Verdict::Real(a_match(3)))];
    assert_eq!(s.settle(&account("carol", 2), &other).unwrap(), 0);
    assert_eq!(s.settle(&account("bob", 3), &other).unwrap(), 0);
    let states: Vec<CandidateState> = s
        .candidates(&bob)
        .unwrap()
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(
        states,
        [
            CandidateState::Real,
            CandidateState::Real,
            CandidateState::Synthetic,
            CandidateState::Rejected
        ]
    );
    let records = b.matches();
    assert_eq!(records.len(), 2);
    let hex_bob = hex::encode("bob");
    for (r, (i, m)) in records.iter().zip([(0u32, a_match(1)), (1, a_match(2))]) {
        assert_eq!(r.account_hex.as_deref(), Some(hex_bob.as_str()));
        assert_eq!(r.submission_id, "a");
        assert_eq!(r.voucher_index, i);
        assert_eq!(r.received_at_ms, sub.receipt.received_at_ms);
        assert_eq!(r.table_id, "t2");
        assert_eq!(r.entry, m.entry);
        assert_eq!(r.item_hex, m.item.to_hex());
        assert_eq!(r.associated_data, m.associated_data);
    }
    let summary = store::read_accounts(&b.location).unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!(
        (
            summary[0].t,
            summary[0].unrevealed,
            summary[0].real,
            summary[0].synthetic,
            summary[0].rejected
        ),
        (2, 0, 2, 1, 1)
    );
}

/// Candidates of one account under two thresholds, or of two accounts,
/// never mix; they are deleted with the match records of their age.
fn candidates_are_kept_per_account_and_threshold_and_pruned_with_the_matches(b: &Backend) {
    let mut s = b.open();
    for (sub, acct, t) in [("a", "dave", 3u16), ("b", "dave", 4), ("c", "erin", 3)] {
        let p = stored(&mut *s, for_account(sub, 1, acct));
        let c = [candidate(0, 7)];
        s.complete(&[evaluated(&p, &candidates_of(&p, t, &c))])
            .unwrap();
    }
    let mut pending = s.unexamined(10).unwrap();
    pending.sort_by(|a, b| (&a.id, a.t).cmp(&(&b.id, b.t)));
    assert_eq!(
        pending,
        [account("dave", 3), account("dave", 4), account("erin", 3)]
    );
    assert_eq!(s.unexamined(2).unwrap().len(), 2, "the limit holds");
    for a in &pending {
        assert_eq!(s.candidates(a).unwrap().len(), 1);
    }
    // Pruning past their time deletes them with the match records.
    s.prune(Some(store::now_ms() + 1), 0).unwrap();
    assert!(s.unexamined(10).unwrap().is_empty());
    assert!(store::read_accounts(&b.location).unwrap().is_empty());
}

// --- The match feed. ---

/// Reads the feed after `after` until `n` records came (on PostgreSQL a
/// record is readable once every transaction older than its own has ended,
/// and other tests' transactions on the cluster count: they delay it, so
/// this waits for them), then checks nothing more is readable.
fn read_n(feed: &mut dyn Feed, after: Cursor, n: usize) -> Vec<FeedRecord> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut out: Vec<FeedRecord> = Vec::new();
    let mut cursor = after;
    while out.len() < n {
        let got = feed.read(cursor, 2).unwrap();
        if let Some(last) = got.last() {
            cursor = last.cursor;
        } else {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} records readable: {out:?}",
                out.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        out.extend(got);
    }
    assert_eq!(out.len(), n, "more records than written: {out:?}");
    assert!(feed.read(cursor, 10).unwrap().is_empty());
    out
}

/// Every match record comes once, in the order written, each with a
/// cursor that resumes after it: version-1 matches and a crossing's
/// (`threshold`, with the account); a bare id resolves to its cursor; the
/// head is the last cursor; the backlog counts what is after a cursor.
fn the_feed_gives_every_record_once_in_order_from_any_cursor(b: &Backend) {
    let mut s = b.open();
    let mut feed = b.feed();
    assert!(feed.read(Cursor::START, 10).unwrap().is_empty());
    assert_eq!(feed.head().unwrap(), Cursor::START);
    let before = store::now_ms();
    let first = ingest_one(&mut *s, "first", 2, "t");
    let (m1, m2) = (a_match(1), a_match(2));
    s.complete(&[evaluated(&first, &matched(&[(0, &m1), (1, &m2)]))])
        .unwrap();
    let all = read_n(&mut *feed, Cursor::START, 2);
    assert_eq!(
        all.iter()
            .map(|r| (r.kind(), r.record.voucher_index, r.record.entry))
            .collect::<Vec<_>>(),
        [
            (FeedKind::Match, 0, m1.entry),
            (FeedKind::Match, 1, m2.entry)
        ]
    );
    for r in &all {
        assert_eq!(r.cursor.id, r.record.id);
        let at = r.record.recorded_at_ms.unwrap();
        assert!(
            at >= before - 5_000 && at <= store::now_ms() + 5_000,
            "{at}"
        );
    }
    assert!(all[0].cursor < all[1].cursor);
    // A crossing: its records carry the account.
    let sub = stored(&mut *s, for_account("x", 2, "gina"));
    let cands = [candidate(0, 1), candidate(1, 2)];
    s.complete(&[evaluated(&sub, &candidates_of(&sub, 2, &cands))])
        .unwrap();
    let gina = account("gina", 2);
    let ids: Vec<i64> = s.candidates(&gina).unwrap().iter().map(|c| c.id).collect();
    let crossing = vec![
        (ids[0], Verdict::Real(a_match(3))),
        (ids[1], Verdict::Real(a_match(4))),
    ];
    assert_eq!(s.settle(&gina, &crossing).unwrap(), 2);
    let rest = read_n(&mut *feed, all[1].cursor, 2);
    for r in &rest {
        assert_eq!(r.kind(), FeedKind::Threshold);
        assert_eq!(
            r.record.account_hex.as_deref(),
            Some(hex::encode("gina").as_str())
        );
    }
    assert!(rest[0].cursor > all[1].cursor);
    // From any cursor, the rest; a limit is a limit.
    let whole: Vec<FeedRecord> = all.iter().chain(&rest).cloned().collect();
    assert_eq!(feed.read(Cursor::START, 10).unwrap(), whole);
    assert_eq!(feed.read(whole[1].cursor, 1).unwrap(), whole[2..3]);
    assert_eq!(feed.head().unwrap(), whole[3].cursor);
    assert_eq!(feed.backlog(whole[0].cursor).unwrap(), 3);
    assert_eq!(feed.backlog(whole[3].cursor).unwrap(), 0);
    // A bare id (`--after 42`) is the record's cursor; an unknown one on
    // PostgreSQL is an error that says so.
    let bare = Cursor {
        xid: 0,
        id: whole[2].record.id,
    };
    assert_eq!(feed.resolve(bare).unwrap(), whole[2].cursor);
    assert_eq!(feed.resolve(Cursor::START).unwrap(), Cursor::START);
    // The same records, read-only (`matches --follow`).
    let mut reader = store::open_feed(&b.location, false).unwrap();
    assert_eq!(reader.read(Cursor::START, 10).unwrap(), whole);
}

/// Pruning the newest records does not let the next record take an id a
/// reader has passed (SQLite would reuse max(id) + 1 without AUTOINCREMENT).
fn a_pruned_newest_record_leaves_its_id_unused(b: &Backend) {
    let mut s = b.open();
    let mut feed = b.feed();
    let old = |id: &str| {
        let mut sub = submission(id, 1, "t");
        sub.receipt.received_at_ms = 1_000;
        sub
    };
    let (m1, m2) = (a_match(1), a_match(2));
    let a = stored(&mut *s, old("a"));
    let c = stored(&mut *s, old("c"));
    s.complete(&[
        evaluated(&a, &matched(&[(0, &m1)])),
        evaluated(&c, &matched(&[(0, &m2)])),
    ])
    .unwrap();
    let seen = read_n(&mut *feed, Cursor::START, 2);
    let last = seen[1].cursor;
    assert_eq!(s.prune(Some(2_000), 0).unwrap().unwrap().matches, 2);
    let next = ingest_one(&mut *s, "next", 1, "t");
    s.complete(&[evaluated(&next, &matched(&[(0, &m1)]))])
        .unwrap();
    let after = read_n(&mut *feed, last, 1);
    assert_eq!(after[0].record.submission_id, "next");
    assert!(after[0].record.id > seen[1].record.id);
}

/// The webhook's cursor: none at first, then the last saved, kept by the
/// store across processes, and never moved back (a deliverer that lost
/// its role late cannot undo another's progress).
fn the_webhooks_cursor_is_kept_in_the_store_and_never_moves_back(b: &Backend) {
    let mut s = b.open();
    let mut feed = b.feed();
    let sub = ingest_one(&mut *s, "w", 3, "t");
    let ms: Vec<Match> = (1..=3).map(a_match).collect();
    s.complete(&[evaluated(
        &sub,
        &matched(&[(0, &ms[0]), (1, &ms[1]), (2, &ms[2])]),
    )])
    .unwrap();
    let records = read_n(&mut *feed, Cursor::START, 3);
    assert!(feed.lead().unwrap(), "a lone process leads");
    assert_eq!(feed.saved("webhook").unwrap(), None);
    feed.save("webhook", records[1].cursor).unwrap();
    assert_eq!(feed.saved("webhook").unwrap(), Some(records[1].cursor));
    feed.save("webhook", records[0].cursor).unwrap();
    assert_eq!(feed.saved("webhook").unwrap(), Some(records[1].cursor));
    assert_eq!(feed.saved("other").unwrap(), None);
    drop(feed);
    let mut again = b.feed();
    assert_eq!(again.saved("webhook").unwrap(), Some(records[1].cursor));
    assert!(again.lead().unwrap());
    again.save("webhook", records[2].cursor).unwrap();
    assert_eq!(again.saved("webhook").unwrap(), Some(records[2].cursor));
}

/// A SQLite store's cursor is an id: a PostgreSQL cursor given to it is
/// refused with a message; a store that was never served has no feed.
#[test]
fn sqlite_refuses_a_postgres_cursor_and_a_missing_store() {
    let b = Backend::sqlite();
    let e = format!("{:#}", store::open_feed(&b.location, false).err().unwrap());
    assert!(e.contains("has `serve` run"), "{e}");
    let _s = b.open();
    let mut feed = b.feed();
    let e = feed
        .resolve(Cursor { xid: 5, id: 1 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("PostgreSQL"), "{e}");
}

/// Replicas insert at once, so ids do not follow commit order: here the
/// transaction that took the smaller id commits last. A reader that kept
/// only the last id read would read the larger one first and skip the
/// smaller one for good; the feed holds a record back until every older
/// transaction has ended, and gives both, once each.
#[test]
fn the_feed_follows_commit_order_not_id_order() {
    let Some(b) = Backend::postgres("commitorder") else {
        return;
    };
    let Location::Postgres { url, .. } = &b.location else {
        unreachable!()
    };
    drop(b.open());
    let mut feed = b.feed();
    let insert = |tag: &str| {
        format!(
            "INSERT INTO blindmatch.matches (submission_id, voucher_index, received_at_ms, table_id, entry, item_type, item_hex, associated_data)
             VALUES ('{tag}', 0, 1, 't', 1, 'sha256', '00', '\\x00')"
        )
    };
    let (early, late) = (insert("early"), insert("late"));
    let url = url.clone();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (done_tx, done) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let connect = || async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
            };
            let (first, second) = (connect().await, connect().await);
            // The first takes the smaller id and stays open...
            first
                .batch_execute(&format!("BEGIN; {early}"))
                .await
                .unwrap();
            // ...while the second takes the larger one and commits.
            second.batch_execute(&late).await.unwrap();
            done_tx.send(()).unwrap();
            let _ = tokio::task::spawn_blocking(move || wait.recv()).await;
            first.batch_execute("COMMIT").await.unwrap();
            done_tx.send(()).unwrap();
        });
    });
    done.recv().unwrap();
    let mut seen: Vec<FeedRecord> = feed.read(Cursor::START, 10).unwrap();
    assert!(
        seen.iter().all(|r| r.record.submission_id != "early"),
        "read a record of a transaction still open: {seen:?}"
    );
    go.send(()).unwrap();
    done.recv().unwrap();
    holder.join().unwrap();
    let cursor = seen.last().map_or(Cursor::START, |r| r.cursor);
    let more = 2 - seen.len();
    seen.extend(read_n(&mut *feed, cursor, more));
    let tags: Vec<&str> = seen
        .iter()
        .map(|r| r.record.submission_id.as_str())
        .collect();
    assert_eq!(tags, ["early", "late"], "each record once, in commit order");
    // The record read first has the smaller id and committed last: its
    // transaction began first.
    assert!(seen[0].record.id < seen[1].record.id);
    assert!(seen[0].cursor < seen[1].cursor);
}

/// One replica delivers the feed at a time: the first to ask leads, the
/// others do not until its session ends, and only the leader may save the
/// cursor.
#[test]
fn one_replica_leads_the_feed_at_a_time() {
    let Some(b) = Backend::postgres("feedlead") else {
        return;
    };
    drop(b.open());
    let (mut first, mut second) = (b.feed(), b.feed());
    assert!(first.lead().unwrap());
    assert!(first.lead().unwrap(), "the leader keeps leading");
    assert!(!second.lead().unwrap());
    let e = second
        .save("webhook", Cursor { xid: 3, id: 1 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not deliver"), "{e}");
    first.save("webhook", Cursor { xid: 3, id: 1 }).unwrap();
    // The leader dies (its sessions close): another takes over.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !second.lead().unwrap() {
        assert!(std::time::Instant::now() < deadline, "nobody took over");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        second.saved("webhook").unwrap(),
        Some(Cursor { xid: 3, id: 1 })
    );
    second.save("webhook", Cursor { xid: 4, id: 2 }).unwrap();
}

// --- Several replicas at once: PostgreSQL only. ---

/// SQLite has one writer: a second replica on the same directory is refused
/// with an error that points at PostgreSQL.
#[test]
fn sqlite_refuses_a_second_replica() {
    let b = Backend::sqlite();
    let _first = b.open();
    let e = store::open(&b.location, Replica::new(store::DEFAULT_LEASE), None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--store postgres://"), "{e}");
}

/// A live replica's claims are its own; once its heartbeat lapses for the
/// lease, another takes the work over.
#[test]
fn a_lapsed_replicas_work_is_taken_over_and_a_live_ones_is_not() {
    let Some(b) = Backend::postgres("lapsed") else {
        return;
    };
    let lease = Duration::from_secs(1);
    let mut a = b.open_with(lease);
    let mut c = b.open_with(lease);
    let sub = ingest_one(&mut *a, "held", 2, "t");
    assert!(c.claim(&["t".into()], 10).unwrap().is_empty());
    a.heartbeat().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    a.heartbeat().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        c.claim(&["t".into()], 10).unwrap().is_empty(),
        "took over a replica that kept beating"
    );
    // `a` goes silent (as if killed).
    std::thread::sleep(Duration::from_millis(1200));
    let taken = c.claim(&["t".into()], 10).unwrap();
    assert_eq!(taken.iter().map(|s| s.row).collect::<Vec<_>>(), [sub.row]);
    // Both evaluate it; the first to complete records it, once.
    let m = a_match(3);
    let findings = matched(&[(0, &m)]);
    assert_eq!(
        c.complete(&[evaluated(&taken[0], &findings)]).unwrap(),
        vec![sub.row]
    );
    assert!(
        a.complete(&[evaluated(&sub, &findings)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.matches().len(), 1);
}

/// Two replicas settling one crossing at the same moment record its
/// matches once.
#[test]
fn a_crossing_settled_by_two_replicas_at_once_is_recorded_once() {
    let Some(b) = Backend::postgres("crossing") else {
        return;
    };
    let mut first = b.open();
    let sub = stored(&mut *first, for_account("a", 8, "frank"));
    let cands: Vec<NewCandidate> = (0..8).map(|i| candidate(i, u64::from(i) + 1)).collect();
    first
        .complete(&[evaluated(&sub, &candidates_of(&sub, 8, &cands))])
        .unwrap();
    let frank = account("frank", 8);
    let ids: Vec<i64> = first
        .candidates(&frank)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let verdicts: Vec<(i64, Verdict)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, Verdict::Real(a_match(u8::try_from(i).unwrap()))))
        .collect();
    for _ in 0..5 {
        let inserted: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let mut r = b.open();
                    let (frank, verdicts) = (&frank, &verdicts);
                    scope.spawn(move || r.settle(frank, verdicts).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert!(inserted == 8 || inserted == 0);
    }
    assert_eq!(b.matches().len(), 8, "each real candidate recorded once");
}

/// Replicas claiming at the same moment get disjoint work (SKIP LOCKED),
/// and all of it.
#[test]
fn concurrent_claims_are_disjoint_and_complete() {
    let Some(b) = Backend::postgres("disjoint") else {
        return;
    };
    let mut first = b.open();
    let rows: Vec<i64> = (0..200)
        .map(|i| ingest_one(&mut *first, &format!("s{i}"), 1, "t").row)
        .collect();
    first.leave().unwrap();
    let claimed: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let mut r = b.open();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = r.claim(&["t".into()], 7).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(got.iter().map(|s| s.row));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = claimed.iter().flatten().copied().collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a row was claimed twice");
    assert_eq!(all, rows, "claims did not cover every row");
}

/// The same client-chosen id arriving at two replicas at once is stored by
/// one; the other acknowledges it as a retry.
#[test]
fn one_id_at_two_replicas_at_once_is_stored_once() {
    let Some(b) = Backend::postgres("sameid") else {
        return;
    };
    for round in 0..20 {
        let outs: Vec<Ingested> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let mut r = b.open();
                    scope.spawn(move || {
                        let p = submission(&format!("race{round}"), 1, "t");
                        r.ingest(&[new(&p, Some(&[round; 32]))]).unwrap().remove(0)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = outs
            .iter()
            .filter(|o| matches!(o, Ingested::Stored { .. }))
            .count();
        let dup = outs
            .iter()
            .filter(|o| matches!(o, Ingested::Duplicate))
            .count();
        assert_eq!((stored, dup), (1, 1), "round {round}: {outs:?}");
    }
}

/// Pruning is done by one replica at a time: while another holds the lock,
/// a replica skips.
#[test]
fn pruning_skips_while_another_replica_prunes() {
    let Some(b) = Backend::postgres("prunelock") else {
        return;
    };
    let Location::Postgres { url, .. } = &b.location else {
        unreachable!()
    };
    let mut s = b.open();
    assert!(s.prune(None, 0).unwrap().is_some());
    // Another replica mid-prune: it holds the lock in an open transaction.
    let url = url.clone();
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (locked_tx, locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(1651340387, 2)")
                .await
                .unwrap();
            locked_tx.send(()).unwrap();
            let _ = tokio::task::spawn_blocking(move || held.recv()).await;
            client.batch_execute("COMMIT").await.unwrap();
        });
    });
    locked.recv().unwrap();
    assert_eq!(s.prune(None, 0).unwrap(), None);
    hold.send(()).unwrap();
    holder.join().unwrap();
    assert!(s.prune(None, 0).unwrap().is_some());
}

/// A database that cannot be reached is an error that names it, at open;
/// never a hang.
#[test]
fn an_unreachable_database_is_a_clear_error() {
    let started = std::time::Instant::now();
    let location = Location::parse("postgres://blindmatch@127.0.0.1:1/blindmatch", None).unwrap();
    let e = format!(
        "{:#}",
        store::open(&location, Replica::new(store::DEFAULT_LEASE), None)
            .err()
            .unwrap()
    );
    assert!(
        e.contains("127.0.0.1:1") && e.contains("unreachable"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
