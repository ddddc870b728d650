//! From acknowledgement to match record, durably.
//!
//! One **writer** thread owns the store. It takes submissions from the
//! `Submit` handlers, stores all that are waiting in one transaction (group
//! commit: one fsync shared by concurrent submissions), and only then lets the
//! handlers acknowledge. It hands the stored vouchers to the **workers** (one
//! per core), which open them, and records their results: match records in and
//! pending rows out, in one transaction. After a crash the writer first hands
//! the workers whatever is still pending, so every acknowledged voucher is
//! evaluated exactly once.
//!
//! When the store cannot write (disk full, read-only), new submissions are
//! refused, never acknowledged; results that could not be recorded are kept
//! and retried, so the server recovers on its own when space returns. The
//! writer also prunes: match records past their retention, and submission
//! ids past the dedup window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use blindmatch_protocol::{Match, Matcher, Voucher};

use crate::generation::{Generation, Generations};
use crossbeam_channel::{Receiver, Sender, after, bounded, never, select, tick, unbounded};
use tokio::sync::oneshot;

use crate::metrics::{Kind, Metrics};
use crate::store::{
    Evaluated, Ingested, MatchStore, NewSubmission, PendingSubmission, StoreError, now_ms,
};

/// Submissions stored but not yet evaluated before the writer waits (and with
/// it, new acknowledgements): back-pressure.
const WORK_QUEUE: usize = 64;
/// Most messages folded into one transaction.
const GROUP: usize = 256;
/// How long to wait before retrying results the store could not record.
const RETRY_DELAY: Duration = Duration::from_millis(250);

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

impl Default for Retention {
    /// Match records kept, ids for 24 h, pruning every minute.
    fn default() -> Self {
        Retention::new(None, DEFAULT_DEDUP_WINDOW)
    }
}

/// A validated submission on its way to the store.
pub(crate) struct Submission {
    pub(crate) submission_id: String,
    /// Digest of the batch when the client chose the id (dedup), else None.
    pub(crate) digest: Option<[u8; 32]>,
    pub(crate) received_at_ms: i64,
    pub(crate) encoded: Vec<Vec<u8>>,
    pub(crate) decoded: Vec<Voucher>,
    /// The version the vouchers were made for: evaluated against it even if
    /// it is replaced meanwhile.
    pub(crate) generation: Arc<Generation>,
}

/// Why a submission was not stored.
#[derive(Debug, Clone)]
pub(crate) enum Refused {
    /// The store could not write; nothing was stored.
    Store(StoreError),
    /// The client's id was used before for a different batch.
    Conflict,
}

/// A submission and where to say whether it was stored (a retry of a stored
/// batch counts as stored).
pub(crate) struct Ingest {
    pub(crate) submission: Submission,
    pub(crate) stored: oneshot::Sender<Result<(), Refused>>,
}

struct Work {
    submission: PendingSubmission,
    decoded: Vec<Voucher>,
    matcher: Arc<Matcher>,
}

struct Done {
    submission: PendingSubmission,
    results: Vec<Result<Option<Match>, blindmatch_protocol::Error>>,
}

/// Starts the writer and the workers; returns where to send submissions and
/// the threads to join. The threads end once every sender is dropped and all
/// stored work is evaluated.
pub(crate) fn start(
    store: MatchStore,
    generations: Arc<Generations>,
    retention: Retention,
    processed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(Sender<Ingest>, Vec<JoinHandle<()>>)> {
    let (ingest_tx, ingest_rx) = unbounded::<Ingest>();
    let (work_tx, work_rx) = bounded::<Work>(WORK_QUEUE);
    let (done_tx, done_rx) = unbounded::<Done>();
    let mut threads = Vec::new();
    for i in 0..std::thread::available_parallelism().map_or(1, |n| n.get()) {
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
                    processed,
                    metrics,
                    in_flight: 0,
                    unrecorded: Vec::new(),
                    store_failing: false,
                }
                .run(&ingest_rx, &done_rx, &generations);
            })?,
    );
    Ok((ingest_tx, threads))
}

fn worker(work: &Receiver<Work>, done: &Sender<Done>, metrics: &Metrics) {
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
    for w in work {
        let results = w.matcher.open_batch(&w.decoded);
        for (i, r) in results.iter().enumerate() {
            // A voucher that opened but is not an honest match: only a
            // malicious client makes one. Logged without its content.
            if let Err(e) = r {
                metrics.rejected_vouchers.inc();
                tracing::warn!(submission = w.submission.submission_id, voucher = i, error = %e, "rejected voucher");
            }
        }
        if done
            .send(Done {
                submission: w.submission,
                results,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Recovery: what is still pending from before a restart, for the versions
/// held. Submissions for a version not held stay stored (and pending).
fn recover(store: &MatchStore, generations: &Generations) -> Vec<Work> {
    let rows = match store.pending() {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "could not read pending vouchers; they stay stored");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for submission in rows {
        let Some(generation) = generations.by_hex(&submission.table_id) else {
            skipped += 1;
            continue;
        };
        let k = generation.table.header().k;
        let decoded: Option<Vec<Voucher>> = submission
            .vouchers
            .iter()
            .map(|v| Voucher::decode(v, k).ok())
            .collect();
        match decoded {
            Some(decoded) => out.push(Work {
                submission,
                decoded,
                matcher: Arc::clone(&generation.matcher),
            }),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "pending submissions for a table version not loaded were left stored, not evaluated: start the server once with that version's table and key to evaluate them"
        );
    }
    if !out.is_empty() {
        tracing::info!(
            submissions = out.len(),
            "evaluating vouchers acknowledged before the restart"
        );
    }
    out
}

/// The thread that owns the store.
struct Writer {
    store: MatchStore,
    work: Sender<Work>,
    retention: Retention,
    processed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    /// Work items stored and handed to the workers, not yet recorded.
    in_flight: usize,
    /// Results the store could not record yet: retried.
    unrecorded: Vec<Done>,
    /// The last write failed (log transitions, not every failure).
    store_failing: bool,
}

impl Writer {
    fn run(mut self, ingest: &Receiver<Ingest>, done: &Receiver<Done>, generations: &Generations) {
        let mut recovered: VecDeque<Work> = recover(&self.store, generations).into();
        let mut ingest_open = true;
        let prune = tick(self.retention.prune_every);
        self.prune();
        loop {
            // Feed recovered work first, as the queue allows, without
            // blocking: the workers' results must keep flowing back.
            while let Some(w) = recovered.pop_front() {
                match self.work.try_send(w) {
                    Ok(()) => self.in_flight += 1,
                    Err(crossbeam_channel::TrySendError::Full(w)) => {
                        recovered.push_front(w);
                        break;
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                }
            }
            let recovering = !recovered.is_empty();
            self.metrics.pending.set(
                i64::try_from(self.in_flight + recovered.len() + self.unrecorded.len())
                    .unwrap_or(i64::MAX),
            );
            if !ingest_open && self.in_flight == 0 && !recovering {
                return;
            }
            // Wait for something to do. New submissions are taken only once
            // recovery is finished, so that old vouchers are evaluated first.
            let new_work = if ingest_open && !recovering {
                ingest.clone()
            } else {
                never()
            };
            let retry = if self.unrecorded.is_empty() {
                never()
            } else {
                after(RETRY_DELAY)
            };
            let mut ingests = Vec::new();
            let mut dones = Vec::new();
            let mut retry_due = false;
            select! {
                recv(new_work) -> m => match m {
                    Ok(m) => ingests.push(m),
                    Err(_) => ingest_open = false,
                },
                recv(done) -> m => match m {
                    Ok(m) => dones.push(m),
                    // Every worker is gone: nothing more can be evaluated.
                    Err(_) => return,
                },
                recv(prune) -> _ => self.prune(),
                recv(retry) -> _ => retry_due = true,
            }
            while dones.len() < GROUP {
                match done.try_recv() {
                    Ok(m) => dones.push(m),
                    Err(_) => break,
                }
            }
            while ingest_open && !recovering && ingests.len() < GROUP {
                match ingest.try_recv() {
                    Ok(m) => ingests.push(m),
                    Err(_) => break,
                }
            }
            let recorded = (dones.is_empty() && !retry_due) || self.record(dones);
            if !recorded && !ingest_open {
                // Shutting down and the store still cannot write: the
                // vouchers stay pending and are evaluated after a restart.
                tracing::error!(
                    submissions = self.unrecorded.len(),
                    "results not recorded at shutdown; those submissions stay pending and are evaluated after a restart"
                );
                return;
            }
            if !ingests.is_empty() {
                self.store_and_dispatch(ingests);
            }
        }
    }

    /// Notes the outcome of a write, logging only changes: a full disk
    /// under load would otherwise log every group.
    fn note(&mut self, result: Result<(), &StoreError>) {
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

    /// Records results (and any left over from a failed attempt): matches
    /// in, pending rows out, one transaction. Returns whether it succeeded.
    fn record(&mut self, dones: Vec<Done>) -> bool {
        let mut batch = std::mem::take(&mut self.unrecorded);
        batch.extend(dones);
        let mut evaluated = Vec::with_capacity(batch.len());
        let mut n = 0u64;
        let mut matched = 0u64;
        for d in &batch {
            n += d.results.len() as u64;
            let matches = d
                .results
                .iter()
                .enumerate()
                .filter_map(|(i, r)| match r {
                    Ok(Some(m)) => Some((u32::try_from(i).unwrap_or(u32::MAX), m)),
                    _ => None,
                })
                .collect();
            let e = Evaluated {
                submission: &d.submission,
                matches,
            };
            matched += e.matches.len() as u64;
            evaluated.push(e);
        }
        let result = self.store.complete(&evaluated);
        drop(evaluated);
        self.note(result.as_ref().map(|_| ()));
        match result {
            Ok(()) => {
                self.in_flight -= batch.len();
                self.metrics.matches.inc_by(matched);
                self.processed.fetch_add(n, Ordering::Release);
                true
            }
            Err(_) => {
                self.unrecorded = batch;
                false
            }
        }
    }

    /// Stores submissions in one transaction, answers their handlers, and
    /// hands the newly stored vouchers to the workers.
    fn store_and_dispatch(&mut self, ingests: Vec<Ingest>) {
        let mut rows = Vec::with_capacity(ingests.len());
        let mut rest = Vec::with_capacity(ingests.len());
        for Ingest {
            submission: s,
            stored,
        } in ingests
        {
            rows.push(NewSubmission {
                submission: PendingSubmission {
                    row: 0,
                    submission_id: s.submission_id,
                    received_at_ms: s.received_at_ms,
                    table_id: s.generation.id_hex.clone(),
                    vouchers: s.encoded,
                },
                digest: s.digest,
            });
            rest.push((s.decoded, Arc::clone(&s.generation.matcher), stored));
        }
        let result = self.store.ingest(rows);
        self.note(result.as_ref().map(|_| ()));
        match result {
            Ok(outcomes) => {
                for (outcome, (decoded, matcher, reply)) in outcomes.into_iter().zip(rest) {
                    match outcome {
                        Ingested::Stored(submission) => {
                            // Stored: the handler may acknowledge now.
                            self.count("stored");
                            self.metrics
                                .vouchers
                                .inc_by(submission.vouchers.len() as u64);
                            let _ = reply.send(Ok(()));
                            if !decoded.is_empty()
                                && self
                                    .work
                                    .send(Work {
                                        submission,
                                        decoded,
                                        matcher,
                                    })
                                    .is_ok()
                            {
                                self.in_flight += 1;
                            }
                        }
                        // A retry of a stored batch: acknowledged alike.
                        Ingested::Duplicate => {
                            self.count("duplicate");
                            let _ = reply.send(Ok(()));
                        }
                        Ingested::Conflict => {
                            let _ = reply.send(Err(Refused::Conflict));
                        }
                    }
                }
            }
            Err(e) => {
                for (_, _, reply) in rest {
                    let _ = reply.send(Err(Refused::Store(e.clone())));
                }
            }
        }
    }

    fn count(&self, kind: &'static str) {
        self.metrics.submissions.get_or_create(&Kind { kind }).inc();
    }

    /// Deletes match records past their retention and forgets submission
    /// ids past the dedup window.
    fn prune(&mut self) {
        let now = now_ms();
        let before =
            |d: Duration| now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let matches_before = self.retention.matches.map(before);
        match self
            .store
            .prune(matches_before, before(self.retention.dedup_window))
        {
            Ok((0, _)) => {}
            Ok((matches, _)) => {
                tracing::info!(matches, "deleted match records past their retention")
            }
            Err(e) => tracing::warn!(error = %e, "could not prune the store; will try again"),
        }
    }
}
