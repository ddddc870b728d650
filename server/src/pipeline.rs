//! From acknowledgement to match record, durably.
//!
//! One **writer** thread owns the store. It takes submissions from the
//! `Submit` handlers, stores all that are waiting in one transaction (group
//! commit: one flush shared by concurrent submissions), and only then lets
//! the handlers acknowledge. It hands the stored vouchers to the **workers**
//! (one per core, round robin between sources), which open them with the
//! same work whatever they hold. Every 250 ms, on a timer of its own (the
//! *harvest*), it records all results since the last: match records in and
//! pending rows out, in one transaction, so that no write follows any one
//! submission's evaluation (papers/SECURITY.md, Section 7).
//!
//! What this replica stores it claims; it renews its claims with a heartbeat
//! (four per lease) and, twice per lease, claims the pending work nobody
//! live holds: at start, what it or an earlier process left (a submission
//! evaluated but not yet harvested is among it); with several replicas on
//! one PostgreSQL store, the work of a replica that died. After a store
//! write that failed, it also takes back its own rows that it does not hold:
//! a commit can go through while its answer is lost (the database stopped
//! at that moment), and the client's retry of such a batch is acknowledged
//! as a duplicate. Claimed work is evaluated in turn with the sources, so
//! every acknowledged voucher is evaluated, and the store records it exactly
//! once (`store`).
//!
//! Threshold mode (SPEC Section 14.9): a version-2 voucher that opens is a
//! candidate, stored with its submission's retirement in the harvest. After
//! each harvest, and at each claim, the writer examines the accounts whose
//! candidates nobody examined yet (Section 14.6: detection, and at t real
//! shares reconstruction and decryption), and settles each in one
//! transaction: the match records of the real, listed items, written once
//! however often an account is examined (after a crash, or by two replicas).
//!
//! When the store cannot write (disk full, read-only, database down), new
//! submissions are refused, never acknowledged; results that could not be
//! recorded are kept and retried, so the server recovers on its own. The
//! writer also prunes: match records past their retention, and submission
//! ids past the dedup window (one replica at a time).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use blindmatch_protocol::Match;
use blindmatch_protocol::threshold::{Opened, Outcome, Share, reveal, share_len};

use crate::admission::{Reservation, Source};
use crate::generation::{Generation, Generations};
use crossbeam_channel::{Receiver, Sender, bounded, never, select, tick, unbounded};
use tokio::sync::oneshot;

use crate::metrics::{Kind, Metrics};
use crate::store::{
    Account, CandidateState, Evaluated, Findings, Ingested, NewSubmission, PendingSubmission,
    Published, Receipt, Store, StoreError, StoredCandidate, Verdict, now_ms,
};
use crate::submission::{Batch, Submission};

/// Accounts examined per round (after a harvest that recorded candidates,
/// at a claim, and at every harvest while a round came back full): a flood
/// of new accounts delays the next ones' examination, never the harvest.
const EXAMINE_PER_ROUND: usize = 64;

/// Submissions handed to the workers at a time, per worker. The rest wait in
/// the writer's fair queue, so that the order in which they are evaluated is
/// decided there (round robin between sources), not by arrival. What bounds
/// the submissions stored and not yet evaluated is the in-flight budget:
/// each holds its reservation until its results are recorded.
const WORK_PER_WORKER: usize = 2;
/// Most messages folded into one transaction.
const GROUP: usize = 256;
/// How often evaluated submissions are recorded (the harvest): their match
/// records in and their pending rows out, in one transaction for all of
/// them. On a timer that nothing a client does moves, so that no write
/// follows a submission's evaluation: what a client could learn from the
/// harvest's cost is the number of matches (everyone's) per period. A
/// shorter period makes match records visible sooner. Results the store
/// cannot record are kept and tried again at the next harvest.
const HARVEST_EVERY: Duration = Duration::from_millis(250);

/// How long the store keeps what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Match records older than this are deleted; `None` keeps them forever.
    pub matches: Option<Duration>,
    /// Submission ids are remembered this long: a retry within it is
    /// recognised and stored once.
    pub dedup_window: Duration,
    /// How often to prune.
    pub prune_every: Duration,
}

impl Retention {
    /// Keeps match records for `matches` (forever if `None`) and ids for
    /// `dedup_window`, pruning four times per shortest period, at least
    /// every minute and at most every 100 ms.
    pub fn new(matches: Option<Duration>, dedup_window: Duration) -> Self {
        let shortest = matches.map_or(dedup_window, |m| m.min(dedup_window));
        Retention {
            matches,
            dedup_window,
            prune_every: (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(60)),
        }
    }
}

/// How long submission ids are remembered unless configured otherwise.
pub(crate) const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Why a submission was not stored.
#[derive(Debug, Clone)]
pub(crate) enum Refused {
    /// The store could not write; nothing was stored.
    Store(StoreError),
    /// The client's id was used before for a different batch.
    Conflict,
}

/// A submission to store, and where to say whether it was stored (a retry of
/// a stored batch counts as stored).
pub(crate) struct Ingest {
    pub(crate) submission: Submission,
    /// The vouchers as received: what the store keeps.
    pub(crate) encoded: Vec<Vec<u8>>,
    /// The batch's digest when the client chose the id (SPEC 12.3), for
    /// dedup; `None` when the server drew it.
    pub(crate) digest: Option<[u8; 32]>,
    /// Its share of the in-flight budget, released once it is recorded.
    pub(crate) reservation: Option<Reservation>,
    pub(crate) stored: oneshot::Sender<Result<(), Refused>>,
}

impl Ingest {
    fn new_submission(&self) -> NewSubmission<'_> {
        NewSubmission {
            receipt: &self.submission.receipt,
            account: self.submission.batch.account(),
            vouchers: &self.encoded,
            digest: self.digest.as_ref(),
        }
    }
}

/// What the rest of the server asks of the store, through the writer that
/// owns it.
pub(crate) enum Control {
    /// Record a version as published ([`Store::publish`]); the answer is
    /// every version recorded, newest first.
    Publish {
        table_id: String,
        version: u64,
        reply: oneshot::Sender<Result<Vec<Published>, StoreError>>,
    },
    /// Every version recorded, newest first.
    Versions {
        reply: oneshot::Sender<Result<Vec<Published>, StoreError>>,
    },
}

/// A stored submission for a worker: its pending row, and what to open.
struct Work {
    row: i64,
    submission: Submission,
    reservation: Option<Reservation>,
}

/// An evaluated submission waiting for the harvest.
struct Done {
    row: i64,
    receipt: Receipt,
    /// How many vouchers it held.
    vouchers: usize,
    findings: Findings,
    /// Released when the findings are recorded.
    _reservation: Option<Reservation>,
}

/// Stored submissions waiting for a worker, one queue per source, taken
/// round robin: a source that floods the server waits behind itself, not in
/// front of everyone else.
struct FairQueue<T> {
    by_source: std::collections::HashMap<Option<Source>, VecDeque<T>>,
    /// Sources with work, in the order they are served next.
    turn: VecDeque<Option<Source>>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            by_source: std::collections::HashMap::new(),
            turn: VecDeque::new(),
        }
    }
}

impl<T> FairQueue<T> {
    fn push(&mut self, source: Option<Source>, item: T) {
        let queue = self.by_source.entry(source).or_default();
        if queue.is_empty() {
            self.turn.push_back(source);
        }
        queue.push_back(item);
    }

    fn pop(&mut self) -> Option<T> {
        let source = self.turn.pop_front()?;
        let queue = self.by_source.get_mut(&source)?;
        let item = queue.pop_front();
        if queue.is_empty() {
            self.by_source.remove(&source);
        } else {
            self.turn.push_back(source);
        }
        item
    }
}

/// Where to send submissions and requests for the store.
pub(crate) struct Pipeline {
    pub(crate) ingest: Sender<Ingest>,
    pub(crate) control: Sender<Control>,
}

/// Starts the writer and the workers; returns where to send submissions and
/// the threads to join. The threads end once every submission sender is
/// dropped and all work this replica holds is evaluated and recorded.
pub(crate) fn start(
    store: Box<dyn Store>,
    lease: Duration,
    generations: Arc<Generations>,
    retention: Retention,
    processed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Pipeline, Vec<JoinHandle<()>>)> {
    // Opened: it answered.
    metrics.store_up.set(1);
    let (ingest_tx, ingest_rx) = unbounded::<Ingest>();
    let (control_tx, control_rx) = unbounded::<Control>();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (work_tx, work_rx) = bounded::<Work>(WORK_PER_WORKER * workers);
    let (done_tx, done_rx) = unbounded::<Done>();
    let mut threads = Vec::new();
    for i in 0..workers {
        let (work_rx, done_tx, metrics) = (work_rx.clone(), done_tx.clone(), Arc::clone(&metrics));
        threads.push(
            std::thread::Builder::new()
                .name(format!("match-worker-{i}"))
                .spawn(move || worker(&work_rx, &done_tx, &metrics))?,
        );
    }
    drop((work_rx, done_tx));
    threads.push(
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                Writer {
                    store,
                    work: work_tx,
                    retention,
                    lease,
                    claim_batch: CLAIM_PER_WORKER * workers,
                    processed,
                    metrics,
                    generations,
                    in_flight: 0,
                    queued: FairQueue::default(),
                    held: HashSet::new(),
                    evaluated: Vec::new(),
                    store_failing: false,
                    more_to_claim: true,
                    more_to_examine: false,
                    unheld_logged: false,
                    ingest_in_doubt: false,
                }
                .run(&ingest_rx, &control_rx, &done_rx);
            })?,
    );
    Ok((
        Pipeline {
            ingest: ingest_tx,
            control: control_tx,
        },
        threads,
    ))
}

/// Pending submissions claimed at a time, per worker: enough to keep the
/// workers busy between claims, few enough that replicas taking over a
/// dead one's work share it.
const CLAIM_PER_WORKER: usize = 8;

fn worker(work: &Receiver<Work>, done_tx: &Sender<Done>, metrics: &Metrics) {
    // Evaluation yields the CPU to the threads that receive submissions and
    // send acknowledgements: a match costs more to evaluate than a
    // non-match, and that work must not slow the responses a client can time
    // (papers/SECURITY.md, Section 7). Lowest niceness for normal threads;
    // throughput is unchanged on a busy machine, the workers simply go last.
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::warn!(error = ?e, "could not lower the match workers' priority");
    }
    for Work {
        row,
        submission,
        reservation,
    } in work
    {
        let vouchers = submission.batch.len();
        let (receipt, findings) = submission.evaluate(|receipt, i, e| {
            // A voucher that opened but is not an honest match (or, in
            // threshold mode, whose payload is not a share): only a
            // malicious client makes one. Logged without its content.
            metrics.rejected_vouchers.inc();
            tracing::warn!(submission = receipt.submission_id, voucher = i, error = %e, "rejected voucher");
        });
        if let Findings::Candidates { candidates, .. } = &findings {
            metrics.candidates.inc_by(candidates.len() as u64);
        }
        let done = Done {
            row,
            receipt,
            vouchers,
            findings,
            _reservation: reservation,
        };
        if done_tx.send(done).is_err() {
            return;
        }
    }
}

/// The thread that owns the store.
struct Writer {
    store: Box<dyn Store>,
    work: Sender<Work>,
    retention: Retention,
    lease: Duration,
    claim_batch: usize,
    processed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    generations: Arc<Generations>,
    /// Work items held and not yet recorded: queued, with the workers, or
    /// evaluated and waiting to be recorded.
    in_flight: usize,
    /// Held work not yet handed to the workers.
    queued: FairQueue<Work>,
    /// Rows held (queued, evaluating or awaiting the harvest): a row this
    /// replica claims back (another replica took it over, then died) is
    /// not held twice.
    held: HashSet<i64>,
    /// Evaluated, waiting for the next harvest (or for the store to write
    /// again).
    evaluated: Vec<Done>,
    /// The last write failed (log transitions, not every failure).
    store_failing: bool,
    /// The last claim took as much as it asked for: claim again soon.
    more_to_claim: bool,
    /// The last examination took a full round: accounts remain for the
    /// next harvest's.
    more_to_examine: bool,
    /// Whether the claim found work for versions not held, already said.
    unheld_logged: bool,
    /// An ingest failed since the last reclaim: its commit may have gone
    /// through with only the answer lost, storing rows claimed by this
    /// replica that it does not hold (and a retry of them is acknowledged
    /// as a duplicate). The next claim looks for them.
    ingest_in_doubt: bool,
}

impl Writer {
    fn run(
        mut self,
        ingest: &Receiver<Ingest>,
        control: &Receiver<Control>,
        done: &Receiver<Done>,
    ) {
        let mut ingest_open = true;
        let prune = tick(self.retention.prune_every);
        let harvest = tick(HARVEST_EVERY);
        // Four heartbeats per lease; a claim of orphaned work twice per lease
        // (no claim can lapse sooner than a lease after its last beat).
        let beat = tick(self.lease / 4);
        let claim = tick(self.lease / 2);
        let mut control_open = true;
        self.prune();
        loop {
            if ingest_open && self.more_to_claim && self.in_flight < 2 * self.claim_batch {
                self.claim();
            }
            // Feed the workers as their queue allows, without blocking (the
            // workers' results must keep flowing back), round robin between
            // sources. Only the writer sends, so a queue that is not full
            // takes the next item.
            while !self.work.is_full() {
                let Some(w) = self.queued.pop() else { break };
                if self.work.try_send(w).is_err() {
                    // Every worker is gone.
                    return;
                }
            }
            // Results not yet recorded are still in `in_flight`.
            self.metrics
                .pending
                .set(i64::try_from(self.in_flight).unwrap_or(i64::MAX));
            if !ingest_open && self.in_flight == self.evaluated.len() {
                // Everything held is evaluated: record it and stop.
                if !self.record() {
                    // The store still cannot write: the vouchers stay
                    // pending and are evaluated after a restart.
                    tracing::error!(
                        submissions = self.evaluated.len(),
                        "results not recorded at shutdown; those submissions stay pending and are evaluated after a restart"
                    );
                }
                // What this replica still holds is free for the others now.
                if let Err(e) = self.store.leave() {
                    tracing::warn!(error = %e, "could not end this replica's claims; they end with the lease");
                }
                return;
            }
            let new_work = if ingest_open { ingest.clone() } else { never() };
            let requests = if control_open {
                control.clone()
            } else {
                never()
            };
            let mut ingests = Vec::new();
            select! {
                recv(new_work) -> m => match m {
                    Ok(m) => ingests.push(m),
                    Err(_) => ingest_open = false,
                },
                recv(done) -> m => match m {
                    Ok(m) => self.evaluated.push(m),
                    // Every worker is gone: nothing more can be evaluated.
                    Err(_) => return,
                },
                recv(requests) -> m => match m {
                    Ok(m) => self.control(m),
                    Err(_) => control_open = false,
                },
                recv(prune) -> _ => self.prune(),
                recv(harvest) -> _ => {
                    self.record();
                    if self.more_to_examine {
                        self.examine();
                    }
                }
                recv(beat) -> _ => self.heartbeat(),
                recv(claim) -> _ => self.more_to_claim = true,
            }
            while let Ok(m) = done.try_recv() {
                self.evaluated.push(m);
            }
            while ingest_open && ingests.len() < GROUP {
                match ingest.try_recv() {
                    Ok(m) => ingests.push(m),
                    Err(_) => break,
                }
            }
            if !ingests.is_empty() {
                self.store_and_dispatch(ingests);
            }
        }
    }

    /// Notes the outcome of a write, logging only changes: a full disk
    /// under load would otherwise log every group.
    fn note(&mut self, result: Result<(), &StoreError>) {
        // A full or read-only store answers: only unreachable is down.
        let up = !matches!(result, Err(StoreError::Unreachable(_)));
        self.metrics.store_up.set(i64::from(up));
        match (result, self.store_failing) {
            (Err(e), false) => {
                tracing::error!(error = %e, "the match store cannot write: submissions are refused (not acknowledged) until it can");
                self.store_failing = true;
            }
            (Ok(()), true) => {
                tracing::info!("the match store writes again");
                self.store_failing = false;
            }
            _ => {}
        }
    }

    fn control(&mut self, request: Control) {
        match request {
            Control::Publish {
                table_id,
                version,
                reply,
            } => {
                let _ = reply.send(self.store.publish(&table_id, version));
            }
            Control::Versions { reply } => {
                let _ = reply.send(self.store.versions());
            }
        }
    }

    /// Renews this replica's claims, and reads the pending work of the
    /// whole store for the metrics.
    fn heartbeat(&mut self) {
        let beat = self.store.heartbeat();
        self.note(beat.as_ref().map(|_| ()));
        if beat.is_ok()
            && let Ok(n) = self.store.pending()
        {
            self.metrics
                .store_pending
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Claims pending work nobody live holds, for the versions held, and
    /// queues it (as a source of its own, served in turn with the others);
    /// after a failed ingest, first the rows it may have stored all the same.
    fn claim(&mut self) {
        self.more_to_claim = false;
        let versions = self.generations.held();
        let tables: Vec<String> = versions.iter().map(|g| g.id_hex.clone()).collect();
        if self.ingest_in_doubt {
            let held: Vec<i64> = self.held.iter().copied().collect();
            match self.store.reclaim(&tables, &held, self.claim_batch) {
                Ok(found) => {
                    self.ingest_in_doubt = found.len() == self.claim_batch;
                    self.more_to_claim = self.ingest_in_doubt;
                    if !found.is_empty() {
                        tracing::warn!(
                            submissions = found.len(),
                            "evaluating submissions stored by a write whose answer was lost (it reported an error)"
                        );
                    }
                    self.hold(&versions, found);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for the rows of a failed write; will try again");
                }
            }
        }
        let claimed = match self.store.claim(&tables, self.claim_batch) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim pending work; will try again");
                return;
            }
        };
        self.more_to_claim |= claimed.len() == self.claim_batch;
        let n = claimed.len();
        self.hold(&versions, claimed);
        // Accounts whose candidates an earlier process stored and never
        // examined (it stopped between the two), or another replica's.
        self.examine();
        if n > 0 {
            tracing::info!(
                submissions = n,
                "evaluating pending work no live replica holds (acknowledged before a restart or by a replica that stopped)"
            );
        }
        if !self.unheld_logged
            && let Ok(pending) = self.store.pending()
            && pending > self.in_flight as u64
            && n == 0
        {
            tracing::debug!(
                pending,
                "pending submissions remain in the store for other replicas or for a table version not loaded here"
            );
            self.unheld_logged = true;
        }
    }

    /// Queues claimed rows for the workers, except those already held and
    /// those of versions not held.
    fn hold(&mut self, versions: &[Arc<Generation>], claimed: Vec<PendingSubmission>) {
        let mut undecodable = 0usize;
        for pending in claimed {
            if self.held.contains(&pending.row) {
                continue;
            }
            let Some(generation) = versions
                .iter()
                .find(|g| g.id_hex == pending.receipt.table_id)
            else {
                continue;
            };
            let account = pending.account.unwrap_or_default();
            let Ok(batch) = Batch::decode(generation, account, &pending.vouchers) else {
                // Stored by a server that checked every voucher: only a
                // damaged store gets here. It stays pending.
                undecodable += 1;
                continue;
            };
            self.held.insert(pending.row);
            let submission = Submission {
                receipt: pending.receipt,
                batch,
                generation: Arc::clone(generation),
            };
            self.queued.push(
                None,
                Work {
                    row: pending.row,
                    submission,
                    reservation: None,
                },
            );
            self.in_flight += 1;
        }
        if undecodable > 0 {
            tracing::error!(
                submissions = undecodable,
                "claimed pending submissions whose vouchers do not decode for their table; they stay stored"
            );
        }
    }

    /// The harvest: records every submission evaluated since the last one
    /// (and any the store could not take then): match records in, pending
    /// rows out, one transaction. Returns whether it succeeded.
    fn record(&mut self) -> bool {
        if self.evaluated.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.evaluated);
        let evaluated: Vec<Evaluated<'_>> = batch
            .iter()
            .map(|d| Evaluated {
                row: d.row,
                receipt: &d.receipt,
                findings: &d.findings,
            })
            .collect();
        let result = self.store.complete(&evaluated);
        drop(evaluated);
        self.note(result.as_ref().map(|_| ()));
        let Ok(recorded) = result else {
            self.evaluated = batch;
            return false;
        };
        let recorded: HashSet<i64> = recorded.into_iter().collect();
        let (mut vouchers, mut matched, mut taken, mut accounts) = (0u64, 0u64, 0usize, false);
        for d in &batch {
            if recorded.contains(&d.row) {
                vouchers += d.vouchers as u64;
                matched += d.findings.matches() as u64;
            } else {
                taken += 1;
            }
            accounts |= d.findings.account().is_some();
            self.held.remove(&d.row);
        }
        if taken > 0 {
            // Another replica presumed this one dead (its heartbeat
            // lapsed) and recorded them first: dropped here.
            tracing::warn!(
                submissions = taken,
                "results dropped: another replica recorded these submissions first"
            );
        }
        self.in_flight -= batch.len();
        self.metrics.matches.inc_by(matched);
        // Dropping the batch releases its reservations.
        drop(batch);
        if accounts {
            self.examine();
        }
        self.processed.fetch_add(vouchers, Ordering::Release);
        true
    }

    /// Stores submissions in one transaction, answers their handlers, and
    /// hands the newly stored ones to the workers.
    fn store_and_dispatch(&mut self, ingests: Vec<Ingest>) {
        let rows: Vec<NewSubmission<'_>> = ingests.iter().map(Ingest::new_submission).collect();
        let result = self.store.ingest(&rows);
        drop(rows);
        self.note(result.as_ref().map(|_| ()));
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(e) => {
                for ingest in ingests {
                    let _ = ingest.stored.send(Err(Refused::Store(e.clone())));
                }
                self.ingest_in_doubt = true;
                return;
            }
        };
        for (outcome, ingest) in outcomes.into_iter().zip(ingests) {
            // The encoded vouchers are in the store now (or were before):
            // they are dropped here, the workers need only the batch.
            let Ingest {
                submission,
                reservation,
                stored,
                ..
            } = ingest;
            match outcome {
                Ingested::Stored { row } => {
                    // Stored: the handler may acknowledge now.
                    self.count("stored");
                    self.metrics.vouchers.inc_by(submission.batch.len() as u64);
                    let _ = stored.send(Ok(()));
                    let source = reservation.as_ref().and_then(Reservation::source);
                    self.held.insert(row);
                    self.queued.push(
                        source,
                        Work {
                            row,
                            submission,
                            reservation,
                        },
                    );
                    self.in_flight += 1;
                }
                // A retry of a stored batch: acknowledged alike.
                Ingested::Duplicate => {
                    self.count("duplicate");
                    let _ = stored.send(Ok(()));
                }
                Ingested::Conflict => {
                    let _ = stored.send(Err(Refused::Conflict));
                }
            }
        }
    }

    /// Examines the accounts with unexamined candidates (SPEC 14.6) and
    /// settles each: match records for the real, listed items at the
    /// crossing, once.
    fn examine(&mut self) {
        let accounts = match self.store.unexamined(EXAMINE_PER_ROUND) {
            Ok(a) => {
                self.more_to_examine = a.len() == EXAMINE_PER_ROUND;
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the accounts to examine; will try again");
                return;
            }
        };
        for account in accounts {
            let candidates = match self.store.candidates(&account) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read an account's candidates; will try again");
                    return;
                }
            };
            let (kind, verdicts) = verdicts(&account, &candidates, &self.generations);
            self.metrics
                .examinations
                .get_or_create(&Kind { kind })
                .inc();
            match self.store.settle(&account, &verdicts) {
                Ok(recorded) => {
                    if recorded > 0 {
                        self.metrics.matches.inc_by(recorded as u64);
                        // The account id is the platform's, not a secret of
                        // this protocol, but it is a user's: not logged.
                        tracing::info!(
                            t = account.t,
                            matches = recorded,
                            "an account crossed its threshold: its matches are recorded"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not settle an account; it is examined again");
                    return;
                }
            }
        }
    }

    fn count(&self, kind: &'static str) {
        self.metrics.submissions.get_or_create(&Kind { kind }).inc();
    }

    /// Deletes match records past their retention and forgets submission
    /// ids past the dedup window, unless another replica is doing it.
    fn prune(&mut self) {
        let now = now_ms();
        let before =
            |d: Duration| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let matches_before = self.retention.matches.map(before);
        match self
            .store
            .prune(matches_before, before(self.retention.dedup_window))
        {
            Ok(Some(p)) if p.matches > 0 => {
                tracing::info!(
                    matches = p.matches,
                    "deleted match records past their retention"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune the store; will try again"),
        }
    }
}

/// One examination of an account (SPEC 14.6): its outcome's name and a
/// verdict for each candidate it decides. Below the threshold (or
/// inconsistent) every new candidate is held; at the crossing every
/// unresolved one is classified, and a real one is a match only if its item
/// is listed: at the box it opened, in the version it opened under while
/// that version is held, else anywhere in the current version.
fn verdicts(
    account: &Account,
    candidates: &[StoredCandidate],
    generations: &Generations,
) -> (&'static str, Vec<(i64, Verdict)>) {
    let unresolved =
        |c: &StoredCandidate| matches!(c.state, CandidateState::New | CandidateState::Held);
    let mut out = Vec::new();
    let mut shares = Vec::with_capacity(candidates.len());
    let mut of = Vec::with_capacity(candidates.len());
    for c in candidates {
        let s = c
            .share
            .len()
            .checked_sub(share_len(0))
            .filter(|n| n % 8 == 0)
            .and_then(|n| u16::try_from(n / 8).ok());
        match s.map(|s| Share::decode(&c.share, s)) {
            Some(Ok(share)) => {
                shares.push(share);
                of.push(c);
            }
            // Stored by a server that decoded it: only a damaged store.
            _ if unresolved(c) => out.push((c.id, Verdict::Rejected)),
            _ => {}
        }
    }
    let hold = |out: &mut Vec<(i64, Verdict)>| {
        for c in candidates {
            if c.state == CandidateState::New {
                out.push((c.id, Verdict::Held));
            }
        }
    };
    let revealed = match reveal(account.t, &shares) {
        Ok(Outcome::Revealed(r)) => r,
        Ok(Outcome::Below) => {
            hold(&mut out);
            return ("below", out);
        }
        Ok(Outcome::Inconsistent) | Err(_) => {
            tracing::warn!(
                t = account.t,
                shares = shares.len(),
                "an account's shares do not lie on one polynomial (more synthetic vouchers than the bound, or a client off the protocol): nothing revealed"
            );
            hold(&mut out);
            return ("inconsistent", out);
        }
    };
    for o in revealed.real {
        match o {
            Opened::Item {
                index,
                item,
                associated_data,
            } => {
                let c = of[index];
                if !unresolved(c) {
                    continue;
                }
                let confirmed = match generations.by_hex(&c.table_id) {
                    Some(g) => g
                        .matcher
                        .confirm(&item, c.position)
                        .map(|entry| (entry, c.position)),
                    None => {
                        let current = generations.current();
                        (0..current.table.header().k)
                            .find_map(|j| current.matcher.confirm(&item, j).map(|entry| (entry, j)))
                    }
                };
                out.push((
                    c.id,
                    match confirmed {
                        Some((entry, position)) => Verdict::Real(Match {
                            item,
                            associated_data,
                            entry,
                            position,
                        }),
                        None => Verdict::Rejected,
                    },
                ));
            }
            Opened::Malformed { index, .. } => {
                if unresolved(of[index]) {
                    out.push((of[index].id, Verdict::Rejected));
                }
            }
        }
    }
    for index in revealed.synthetic {
        if unresolved(of[index]) {
            out.push((of[index].id, Verdict::Synthetic));
        }
    }
    ("revealed", out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Generation;
    use crate::store::{Account, Location, Pruned, Replica, StoreStats};
    use blindmatch_protocol::{Item, ItemType};

    /// A store whose ingests, while `lose` is set, commit and then report an
    /// error: a database that stopped between a commit and its answer.
    struct LostAnswers {
        inner: Box<dyn Store>,
        lose: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Store for LostAnswers {
        fn ingest(&mut self, s: &[NewSubmission<'_>]) -> Result<Vec<Ingested>, StoreError> {
            let stored = self.inner.ingest(s)?;
            if self.lose.load(Ordering::Relaxed) {
                return Err(StoreError::Unreachable(
                    "the answer to a commit was lost".into(),
                ));
            }
            Ok(stored)
        }
        fn complete(&mut self, e: &[Evaluated<'_>]) -> Result<Vec<i64>, StoreError> {
            self.inner.complete(e)
        }
        fn claim(&mut self, t: &[String], l: usize) -> Result<Vec<PendingSubmission>, StoreError> {
            self.inner.claim(t, l)
        }
        fn reclaim(
            &mut self,
            t: &[String],
            h: &[i64],
            l: usize,
        ) -> Result<Vec<PendingSubmission>, StoreError> {
            self.inner.reclaim(t, h, l)
        }
        fn heartbeat(&mut self) -> Result<(), StoreError> {
            self.inner.heartbeat()
        }
        fn leave(&mut self) -> Result<(), StoreError> {
            self.inner.leave()
        }
        fn prune(&mut self, m: Option<i64>, i: i64) -> Result<Option<Pruned>, StoreError> {
            self.inner.prune(m, i)
        }
        fn publish(&mut self, t: &str, v: u64) -> Result<Vec<Published>, StoreError> {
            self.inner.publish(t, v)
        }
        fn versions(&mut self) -> Result<Vec<Published>, StoreError> {
            self.inner.versions()
        }
        fn stats(&mut self) -> Result<StoreStats, StoreError> {
            self.inner.stats()
        }
        fn pending(&mut self) -> Result<u64, StoreError> {
            self.inner.pending()
        }
        fn unexamined(&mut self, l: usize) -> Result<Vec<Account>, StoreError> {
            self.inner.unexamined(l)
        }
        fn candidates(&mut self, a: &Account) -> Result<Vec<StoredCandidate>, StoreError> {
            self.inner.candidates(a)
        }
        fn settle(&mut self, a: &Account, v: &[(i64, Verdict)]) -> Result<usize, StoreError> {
            self.inner.settle(a, v)
        }
    }

    /// A batch stored by a write that reported an error is refused to its
    /// client, and its retry is acknowledged as a duplicate: the replica
    /// that stored it (and whose heartbeat nobody else overrides) must
    /// evaluate it all the same. Found by the replica harness, where
    /// PostgreSQL stopped between a commit and its answer.
    #[test]
    fn a_batch_stored_by_a_write_that_reported_an_error_is_evaluated() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let listed = Item::new(ItemType::Sha256, &[7; 32]).unwrap();
        let list = dir.path().join("list.txt");
        let mut f = std::fs::File::create(&list).unwrap();
        for i in 0..50u8 {
            writeln!(f, "{}", hex::encode([i.wrapping_add(100); 32])).unwrap();
        }
        writeln!(f, "{}", listed.to_hex()).unwrap();
        drop(f);
        let (key, signing, table) = (
            dir.path().join("server.key"),
            dir.path().join("operator.sign"),
            dir.path().join("table.bmt"),
        );
        crate::keyfile::write_new(&key).unwrap();
        crate::keyfile::write_new_signing(&signing).unwrap();
        let opts = crate::BuildOptions {
            default_type: Some(ItemType::Sha256),
            k: None,
            load_factor: None,
            progress: false,
            signing_key: signing,
            base: None,
            decoys: 0,
            threshold: None,
        };
        crate::build(&list, &key, &table, &opts).unwrap();
        let generations = Arc::new(Generations::new(
            Generation::load(&table, &key, None, None).unwrap(),
        ));
        let generation = generations.current();

        let data = dir.path().join("data");
        let lease = Duration::from_millis(400);
        let lose = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let store = LostAnswers {
            inner: crate::store::open(&Location::Sqlite(data.clone()), Replica::new(lease), None)
                .unwrap(),
            lose: Arc::clone(&lose),
        };
        let (pipeline, threads) = start(
            Box::new(store),
            lease,
            generations,
            Retention::new(None, DEFAULT_DEDUP_WINDOW),
            Arc::new(AtomicU64::new(0)),
            Arc::new(Metrics::new()),
        )
        .unwrap();

        let client =
            blindmatch_client_core::Table::decode_unverified(&generation.table.encode()).unwrap();
        let items = [(listed, b"the match record's".to_vec())];
        let vouchers = client
            .submission(&items, &mut rand::rng())
            .unwrap()
            .vouchers;
        let batch = Batch::decode(&generation, Vec::new(), &vouchers).unwrap();
        let (tx, rx) = oneshot::channel();
        pipeline
            .ingest
            .send(Ingest {
                submission: Submission {
                    receipt: Receipt {
                        submission_id: "in doubt".into(),
                        received_at_ms: now_ms(),
                        table_id: generation.id_hex.clone(),
                    },
                    batch,
                    generation: Arc::clone(&generation),
                },
                encoded: vouchers,
                digest: None,
                reservation: None,
                stored: tx,
            })
            .unwrap();
        let refused = rx.blocking_recv().unwrap();
        assert!(matches!(refused, Err(Refused::Store(_))), "{refused:?}");
        lose.store(false, Ordering::Relaxed);

        // Acknowledged to nobody, stored all the same: evaluated within a
        // few claims (two per lease).
        let location = Location::Sqlite(data);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stats = crate::store::read_stats(&location).unwrap();
            if stats.pending == 0 {
                assert_eq!(stats.matches, 1);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the batch stayed pending: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(pipeline);
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn the_fair_queue_serves_sources_in_turn() {
        let a = Some(Source::address("10.0.0.1".parse().unwrap()));
        let b = Some(Source::address("10.0.0.2".parse().unwrap()));
        let mut q = FairQueue::default();
        for i in 0..4 {
            q.push(a, format!("a{i}"));
        }
        q.push(b, "b0".to_string());
        q.push(None, "recovered".to_string());
        q.push(b, "b1".to_string());
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, ["a0", "b0", "recovered", "a1", "b1", "a2", "a3"]);
    }
}
