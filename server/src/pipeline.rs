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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use blindmatch_protocol::{Match, Matcher, Voucher};
use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use tokio::sync::oneshot;

use crate::store::{Evaluated, MatchStore, PendingSubmission};

/// Submissions stored but not yet evaluated before the writer waits (and with
/// it, new acknowledgements): back-pressure.
const WORK_QUEUE: usize = 64;
/// Most messages folded into one transaction.
const GROUP: usize = 256;

/// A validated submission on its way to the store.
pub(crate) struct Submission {
    pub(crate) submission_id: String,
    pub(crate) received_at_ms: i64,
    pub(crate) encoded: Vec<Vec<u8>>,
    pub(crate) decoded: Vec<Voucher>,
}

/// A submission and where to say whether it was stored.
pub(crate) struct Ingest {
    pub(crate) submission: Submission,
    pub(crate) stored: oneshot::Sender<Result<(), String>>,
}

struct Work {
    submission: PendingSubmission,
    decoded: Vec<Voucher>,
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
    matcher: Arc<Matcher>,
    table_id: String,
    processed: Arc<AtomicU64>,
) -> anyhow::Result<(Sender<Ingest>, Vec<JoinHandle<()>>)> {
    let (ingest_tx, ingest_rx) = unbounded::<Ingest>();
    let (work_tx, work_rx) = bounded::<Work>(WORK_QUEUE);
    let (done_tx, done_rx) = unbounded::<Done>();
    let mut threads = Vec::new();
    for i in 0..std::thread::available_parallelism().map_or(1, |n| n.get()) {
        let (work_rx, done_tx, matcher) = (work_rx.clone(), done_tx.clone(), Arc::clone(&matcher));
        threads.push(
            std::thread::Builder::new()
                .name(format!("match-worker-{i}"))
                .spawn(move || worker(&work_rx, &done_tx, &matcher))?,
        );
    }
    drop((work_rx, done_tx));
    let k = matcher.header().k;
    threads.push(
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer(
                    store, &ingest_rx, &done_rx, work_tx, &table_id, k, &processed,
                )
            })?,
    );
    Ok((ingest_tx, threads))
}

fn worker(work: &Receiver<Work>, done: &Sender<Done>, matcher: &Matcher) {
    for w in work {
        let results = matcher.open_batch(&w.decoded);
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

/// Recovery: what is still pending from before a restart.
fn recover(store: &MatchStore, table_id: &str, k: u8) -> Vec<Work> {
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
        let decoded: Option<Vec<Voucher>> = (submission.table_id == table_id)
            .then(|| {
                submission
                    .vouchers
                    .iter()
                    .map(|v| Voucher::decode(v, k).ok())
                    .collect()
            })
            .flatten();
        match decoded {
            Some(decoded) => out.push(Work {
                submission,
                decoded,
            }),
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "pending submissions for another table were left stored, not evaluated"
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

fn writer(
    mut store: MatchStore,
    ingest: &Receiver<Ingest>,
    done: &Receiver<Done>,
    work: Sender<Work>,
    table_id: &str,
    k: u8,
    processed: &AtomicU64,
) {
    let mut in_flight = 0usize;
    let mut recovered: std::collections::VecDeque<Work> = recover(&store, table_id, k).into();
    let mut ingest_open = true;
    loop {
        // Feed recovered work first, as the queue allows, without blocking:
        // the workers' results must keep flowing back.
        while let Some(w) = recovered.pop_front() {
            match work.try_send(w) {
                Ok(()) => in_flight += 1,
                Err(crossbeam_channel::TrySendError::Full(w)) => {
                    recovered.push_front(w);
                    break;
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
            }
        }
        let recovering = !recovered.is_empty();
        if !ingest_open && in_flight == 0 && !recovering {
            return;
        }
        // Wait for something to do; take new submissions only when recovery
        // is finished, so that old vouchers are evaluated first.
        let mut ingests = Vec::new();
        let mut dones = Vec::new();
        if ingest_open && !recovering {
            select! {
                recv(ingest) -> m => match m {
                    Ok(m) => ingests.push(m),
                    Err(_) => ingest_open = false,
                },
                recv(done) -> m => if let Ok(m) = m { dones.push(m) },
            }
        } else {
            match done.recv() {
                Ok(m) => dones.push(m),
                // Every worker is gone: nothing more can be evaluated.
                Err(_) => return,
            }
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

        if !dones.is_empty() {
            in_flight -= dones.len();
            complete(&mut store, &dones, processed);
        }
        if !ingests.is_empty() {
            in_flight += store_and_dispatch(&mut store, ingests, &work, table_id);
        }
    }
}

/// Records results: matches in, pending rows out, one transaction.
fn complete(store: &mut MatchStore, dones: &[Done], processed: &AtomicU64) {
    let mut evaluated = Vec::with_capacity(dones.len());
    let mut n = 0u64;
    for d in dones {
        let mut matches = Vec::new();
        for (i, r) in d.results.iter().enumerate() {
            n += 1;
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            match r {
                Ok(Some(m)) => matches.push((index, m)),
                Ok(None) => {}
                // A voucher that opened but is not an honest match: only a
                // malicious client makes one. Logged without its content.
                Err(e) => {
                    tracing::warn!(submission = d.submission.submission_id, voucher = index, error = %e, "rejected voucher");
                }
            }
        }
        evaluated.push(Evaluated {
            submission: &d.submission,
            matches,
        });
    }
    if let Err(e) = store.complete(&evaluated) {
        tracing::error!(vouchers = n, error = %e, "could not record results; the vouchers stay pending and are evaluated again after a restart");
    }
    processed.fetch_add(n, Ordering::Release);
}

/// Stores submissions in one transaction, answers their handlers, and hands
/// the stored vouchers to the workers. Returns how many work items it sent.
fn store_and_dispatch(
    store: &mut MatchStore,
    ingests: Vec<Ingest>,
    work: &Sender<Work>,
    table_id: &str,
) -> usize {
    let mut rows = Vec::with_capacity(ingests.len());
    let mut rest = Vec::with_capacity(ingests.len());
    for Ingest {
        submission: s,
        stored,
    } in ingests
    {
        rows.push(PendingSubmission {
            row: 0,
            submission_id: s.submission_id,
            received_at_ms: s.received_at_ms,
            table_id: table_id.to_string(),
            vouchers: s.encoded,
        });
        rest.push((s.decoded, stored));
    }
    match store.ingest(rows) {
        Ok(stored_rows) => {
            let mut sent = 0;
            for (submission, (decoded, reply)) in stored_rows.into_iter().zip(rest) {
                // Stored: the handler may acknowledge now.
                let _ = reply.send(Ok(()));
                if !decoded.is_empty()
                    && work
                        .send(Work {
                            submission,
                            decoded,
                        })
                        .is_ok()
                {
                    sent += 1;
                }
            }
            sent
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store submissions; they were not acknowledged");
            for (_, reply) in rest {
                let _ = reply.send(Err(e.to_string()));
            }
            0
        }
    }
}
