//! `blindmatch-store-bench`: what the store costs, SQLite against
//! PostgreSQL in one run, and what 1, 2 and 3 replicas on one PostgreSQL
//! carry (papers/BENCHMARKS.md, "Store and replicas").
//!
//! 1. **Store cost per voucher.** The store interface the server uses,
//!    driven directly: groups of submissions of 64 vouchers ingested (one
//!    transaction per group, as the writer's group commit does) and then
//!    recorded in harvests, about one match per submission. Wall time and
//!    the whole machine's CPU time (`/proc/stat`, so PostgreSQL's processes
//!    count too) per voucher, and, for PostgreSQL, the statements and
//!    transactions per submission the server counted (`pg_stat_statements`
//!    when the cluster preloads it; `pg_stat_database` always).
//! 2. **Replicas.** N real `blindmatch-server` processes on one PostgreSQL
//!    database (and one on SQLite for comparison), C streams of 64-voucher
//!    submissions spread over them for D seconds, then until everything
//!    acknowledged is evaluated: vouchers per second end to end, and CPU per
//!    voucher of the servers and of PostgreSQL.
//!
//! On a machine of 2 cores the replicas share those cores with each other,
//! with PostgreSQL and with the load generator: throughput cannot grow with
//! N here, and the CPU per voucher is the figure that carries to larger
//! machines.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::args::{Markdown, Served};
use blindmatch_benches::items::sha_items;
use blindmatch_benches::report::Printed;
use blindmatch_benches::{machine, service};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::{ClientTable, Item, ItemType, Match, TableBuilder, voucher_len};
use blindmatch_server::store::{
    self, Evaluated, Findings, Ingested, Location, NewSubmission, Receipt, Replica,
};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Store cost (SQLite vs PostgreSQL) and replica throughput")]
#[command(mut_arg("entries", |a| a.help("Entries in the table the replicas serve")))]
struct Args {
    /// A PostgreSQL URL of a role that may create databases (the test
    /// cluster: scripts/pg-test-cluster.sh); without it only SQLite runs.
    #[arg(long, env = "BLINDMATCH_TEST_POSTGRES")]
    postgres: Option<String>,
    /// Submissions of 64 vouchers in the store-cost part.
    #[arg(long, default_value_t = 2000)]
    submissions: usize,
    /// Submissions per ingest transaction (the writer folds concurrent ones).
    #[arg(long, default_value_t = 8)]
    group: usize,
    /// Replica counts to measure, comma-separated (0: skip that part).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    replicas: Vec<usize>,
    /// Concurrent submission streams in the replica part.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of load per replica count.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[command(flatten)]
    served: Served,
    #[command(flatten)]
    markdown: Markdown,
}

const BATCH: usize = 64;

/// The whole machine's busy CPU time so far, in seconds (`/proc/stat`).
fn machine_cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: f64 = f
        .iter()
        .enumerate()
        .filter(|(i, _)| !matches!(i, 3 | 4))
        .map(|(_, v)| v)
        .sum();
    busy / 100.0
}

/// CPU seconds so far of every process named `postgres` (the cluster's), by
/// process id: differences are taken per process, so that a backend that
/// exits in between does not count negative.
fn postgres_cpu() -> std::collections::HashMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| Some((pid, machine::cpu_seconds(pid)?)))
        .collect()
}

/// PostgreSQL CPU seconds spent since `before` (a process that exited in
/// between is not seen: an undercount of its last moments).
fn postgres_cpu_since(before: &std::collections::HashMap<u32, f64>) -> f64 {
    postgres_cpu()
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
        .filter(|d| *d > 0.0)
        .sum()
}

/// Runs `query` (simple protocol) on the cluster from a runtime of its own;
/// returns the rows as text.
fn sql(url: &str, query: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let (url, query) = (url.to_owned(), query.to_owned());
    std::thread::spawn(move || -> anyhow::Result<Vec<Vec<Option<String>>>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .context("connecting to --postgres")?;
            tokio::spawn(conn);
            let mut rows = Vec::new();
            for m in client.simple_query(&query).await.context(query.clone())? {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                    rows.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                }
            }
            Ok(rows)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sql thread panicked"))?
}

/// A new database on the cluster at `url`; returns its URL.
fn fresh_database(url: &str, tag: &str) -> anyhow::Result<String> {
    let name = format!("bm_bench_{tag}_{:08x}", rand::random::<u32>());
    sql(url, &format!("CREATE DATABASE {name}"))?;
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Ok(if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    })
}

fn one_number(url: &str, query: &str) -> Option<f64> {
    sql(url, query)
        .ok()?
        .first()?
        .first()?
        .as_ref()?
        .parse()
        .ok()
}

/// What the store-cost part measured for one backend.
struct Cost {
    backend: &'static str,
    vouchers: usize,
    ingest_wall_us: f64,
    record_wall_us: f64,
    cpu_us: f64,
    /// PostgreSQL only: statements and transactions per submission.
    statements: Option<f64>,
    transactions: Option<f64>,
    /// PostgreSQL only: write-ahead log bytes per voucher.
    wal_bytes: Option<f64>,
}

/// Drives the store as the writer does: ingest groups, then harvests.
fn store_cost(
    backend: &'static str,
    location: &Location,
    args: &Args,
    db: Option<&str>,
) -> anyhow::Result<Cost> {
    let mut s = store::open(location, Replica::new(store::DEFAULT_LEASE), None)?;
    let len = voucher_len(3);
    let m = Match {
        item: Item::new(ItemType::Sha256, &[7; 32])?,
        associated_data: vec![b'a'; 64],
        entry: 1,
        position: 0,
    };
    let groups = args.submissions.div_ceil(args.group.max(1));
    // One group: per submission its receipt, vouchers and digest.
    let make = |g: usize| -> Vec<(Receipt, Vec<Vec<u8>>, [u8; 32])> {
        (0..args.group.max(1))
            .map(|i| {
                let receipt = Receipt {
                    submission_id: format!("{g:08}{i:08}{:016x}", rand::random::<u64>()),
                    received_at_ms: store::now_ms(),
                    table_id: "bench".into(),
                };
                let vouchers = (0..BATCH)
                    .map(|_| {
                        let mut v = vec![0u8; len];
                        rand::Rng::fill_bytes(&mut rand::rng(), &mut v);
                        v
                    })
                    .collect();
                (receipt, vouchers, rand::random())
            })
            .collect()
    };
    // Every submission recorded with one match.
    let findings = Findings::Matches(vec![(0, m)]);
    let counters = |db: &str| {
        (
            one_number(db, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"),
            one_number(
                db,
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            ),
        )
    };
    if let Some(db) = db {
        let _ = sql(db, "SELECT pg_stat_statements_reset()");
    }
    let lsn = |db: &str| {
        sql(db, "SELECT pg_current_wal_lsn()::text")
            .ok()
            .and_then(|r| r.first()?.first()?.clone())
    };
    let lsn_before = db.and_then(lsn);
    let before = db.map(counters);
    let (mut ingest, mut record) = (Duration::ZERO, Duration::ZERO);
    let cpu0 = machine_cpu_seconds();
    let mut waiting: Vec<(i64, Receipt)> = Vec::new();
    for g in 0..groups {
        let batch = make(g);
        let rows: Vec<NewSubmission<'_>> = batch
            .iter()
            .map(|(receipt, vouchers, digest)| NewSubmission {
                receipt,
                account: None,
                vouchers,
                digest: Some(digest),
            })
            .collect();
        let t = Instant::now();
        let out = s.ingest(&rows)?;
        ingest += t.elapsed();
        drop(rows);
        for (o, (receipt, ..)) in out.into_iter().zip(batch) {
            if let Ingested::Stored { row } = o {
                waiting.push((row, receipt));
            }
        }
        // A harvest every four groups (the real one is on a timer).
        if g % 4 == 3 || g + 1 == groups {
            let evaluated: Vec<Evaluated<'_>> = waiting
                .iter()
                .map(|(row, receipt)| Evaluated {
                    row: *row,
                    receipt,
                    findings: &findings,
                })
                .collect();
            let t = Instant::now();
            s.complete(&evaluated)?;
            record += t.elapsed();
            drop(evaluated);
            waiting.clear();
        }
    }
    let cpu = machine_cpu_seconds() - cpu0;
    let after = db.map(counters);
    let wal_bytes = match (db, lsn_before, db.and_then(lsn)) {
        (Some(db), Some(a), Some(b)) => {
            one_number(db, &format!("SELECT pg_wal_lsn_diff('{b}', '{a}')"))
        }
        _ => None,
    };
    let n = (groups * args.group.max(1)) as f64;
    let vouchers = groups * args.group.max(1) * BATCH;
    let per = |(a, b): (Option<f64>, Option<f64>)| a.zip(b).map(|(a, b)| (b - a) / n);
    let (statements, transactions) = match (before, after) {
        (Some(b), Some(a)) => (per((b.0, a.0)), per((b.1, a.1))),
        _ => (None, None),
    };
    Ok(Cost {
        backend,
        vouchers,
        ingest_wall_us: ingest.as_secs_f64() * 1e6 / vouchers as f64,
        record_wall_us: record.as_secs_f64() * 1e6 / vouchers as f64,
        cpu_us: cpu * 1e6 / vouchers as f64,
        statements,
        transactions,
        wal_bytes: wal_bytes.map(|w| w / vouchers as f64),
    })
}

/// What the replica part measured for one setup.
struct Throughput {
    setup: String,
    vouchers: u64,
    per_second: f64,
    server_cpu_us: f64,
    postgres_cpu_us: f64,
}

async fn replicas(
    bin: &Path,
    dir: &Path,
    store_args: Vec<Vec<String>>,
    setup: String,
    pending: impl Fn() -> anyhow::Result<u64>,
    args: &Args,
    request: Arc<SubmitRequest>,
) -> anyhow::Result<Throughput> {
    let servers = store_args
        .iter()
        .map(|extra| service::start_with(bin, dir, BATCH, extra))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut clients = Vec::new();
    for s in &servers {
        clients.push(VoucherServiceClient::connect(s.url.clone()).await?);
    }
    let cpu = |servers: &[service::ServerProcess]| -> f64 {
        servers
            .iter()
            .filter_map(|s| machine::cpu_seconds(s.child.id()))
            .sum()
    };
    let (cpu0, pg0) = (cpu(&servers), postgres_cpu());
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.duration);
    let streams: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let mut c = clients[i % clients.len()].clone();
            let (acked, request) = (Arc::clone(&acked), Arc::clone(&request));
            tokio::spawn(async move {
                while Instant::now() < until {
                    match blindmatch_benches::submit::submit_admitted(&mut c, (*request).clone())
                        .await
                    {
                        Ok(a) => {
                            acked.fetch_add(u64::from(a.response.accepted), Ordering::Relaxed);
                        }
                        Err(s) => {
                            eprintln!("store-bench: a submission failed: {s}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
        .collect();
    for s in streams {
        s.await?;
    }
    // Until everything acknowledged is evaluated and recorded.
    let deadline = Instant::now() + Duration::from_secs(120);
    while pending()? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{setup}: the backlog never drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = start.elapsed().as_secs_f64();
    let vouchers = acked.load(Ordering::Relaxed);
    let (cpu1, pg) = (cpu(&servers), postgres_cpu_since(&pg0));
    drop(servers);
    let v = vouchers.max(1) as f64;
    Ok(Throughput {
        setup,
        vouchers,
        per_second: vouchers as f64 / wall,
        server_cpu_us: (cpu1 - cpu0) * 1e6 / v,
        postgres_cpu_us: pg * 1e6 / v,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.submissions > 0 && args.group > 0,
        "--submissions and --group must be at least 1"
    );
    let mut out = Printed::default();
    out.line(format!(
        "store bench: {} ({} cores), {} submissions of {BATCH} vouchers in groups of {}",
        machine::cpu_model(),
        machine::cores(),
        args.submissions,
        args.group
    ));
    if args.postgres.is_none() {
        out.line("SKIPPED the PostgreSQL figures: give --postgres URL or BLINDMATCH_TEST_POSTGRES (scripts/pg-test-cluster.sh start)");
    }

    // 1. Store cost.
    let dir = tempfile::tempdir()?;
    let costs = store_costs(&args, dir.path())?;
    cost_table(&mut out, &costs);

    // 2. Replicas.
    let counts: Vec<usize> = args.replicas.iter().copied().filter(|&n| n > 0).collect();
    if !counts.is_empty() {
        let rows = replica_rows(&args, dir.path(), counts).await?;
        replica_table(&mut out, &args, &rows);
    }
    args.markdown.write(out.text())
}

/// The store-cost part on SQLite, and on a fresh PostgreSQL database if
/// `--postgres` is given.
fn store_costs(args: &Args, dir: &Path) -> anyhow::Result<Vec<Cost>> {
    let mut costs = vec![tokio::task::block_in_place(|| {
        store_cost("SQLite", &Location::Sqlite(dir.join("cost")), args, None)
    })?];
    if let Some(pg) = &args.postgres {
        let db = fresh_database(pg, "cost")?;
        let location = Location::parse(&db, None).map_err(|e| anyhow::anyhow!(e))?;
        let _ = sql(&db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        costs.push(tokio::task::block_in_place(|| {
            store_cost("PostgreSQL", &location, args, Some(&db))
        })?);
    }
    Ok(costs)
}

fn cost_table(out: &mut Printed, costs: &[Cost]) {
    out.line("");
    out.line("| store | vouchers | ingest, wall µs/voucher | record, wall µs/voucher | machine CPU µs/voucher | statements / submission | transactions / submission | WAL bytes / voucher |");
    out.line("|---|---:|---:|---:|---:|---:|---:|---:|");
    let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
    for c in costs {
        out.line(format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            c.backend,
            c.vouchers,
            c.ingest_wall_us,
            c.record_wall_us,
            c.cpu_us,
            show(c.statements),
            show(c.transactions),
            c.wal_bytes.map_or("n/a".to_owned(), |w| format!("{w:.0}"))
        ));
    }
}

/// The replica part: one server on SQLite, then `counts` replicas on one
/// fresh PostgreSQL database each (with `--postgres`).
async fn replica_rows(
    args: &Args,
    dir: &Path,
    counts: Vec<usize>,
) -> anyhow::Result<Vec<Throughput>> {
    let bin = args.served.bin()?;
    let request = Arc::new(replica_request(args, dir)?);
    let mut rows = Vec::new();
    {
        let data = dir.join("sqlite-replica");
        let pending_at = data.clone();
        rows.push(
            replicas(
                &bin,
                dir,
                vec![vec!["--data".into(), data.display().to_string()]],
                "1 server, SQLite".into(),
                move || Ok(store::stats(&pending_at).map(|s| s.pending).unwrap_or(1)),
                args,
                Arc::clone(&request),
            )
            .await?,
        );
    }
    if let Some(pg) = &args.postgres {
        for n in counts {
            let db = fresh_database(pg, &format!("r{n}"))?;
            let location = Location::parse(&db, None).map_err(|e| anyhow::anyhow!(e))?;
            let extra = vec!["--store".into(), db.clone()];
            rows.push(
                replicas(
                    &bin,
                    dir,
                    vec![extra; n],
                    format!("{n} replica{}, PostgreSQL", if n == 1 { "" } else { "s" }),
                    move || Ok(store::read_stats(&location).map(|s| s.pending).unwrap_or(1)),
                    args,
                    Arc::clone(&request),
                )
                .await?,
            );
        }
    }
    Ok(rows)
}

/// Builds the replicas' table under a new key in `dir`, writes it, and
/// makes the one submission every stream sends: one listed voucher in 64,
/// as in the store-cost part.
fn replica_request(args: &Args, dir: &Path) -> anyhow::Result<SubmitRequest> {
    let key = blindmatch_server::keyfile::write_new(&dir.join("server.key"))?;
    let entries = sha_items(args.served.entries, "store bench entry");
    let built = TableBuilder::new(rand::random()).build(&key, entries.clone())?;
    let table = ClientTable::new(built.table.clone())?;
    service::write_table(dir, &built)?;
    let table_id = built.table.id().0.to_vec();
    drop(built);
    let probes = sha_items(BATCH, "store bench probe");
    let mut rng = rand::rng();
    Ok(SubmitRequest {
        table_id,
        account_id: Vec::new(),
        vouchers: (0..BATCH)
            .map(|i| {
                let item = if i == 0 { &entries[0] } else { &probes[i] };
                Ok(table
                    .create_voucher(item, b"store bench", &mut rng)?
                    .encode())
            })
            .collect::<anyhow::Result<_>>()?,
        submission_id: Vec::new(),
    })
}

fn replica_table(out: &mut Printed, args: &Args, rows: &[Throughput]) {
    out.line("");
    out.line(format!(
        "replicas: {} streams of {BATCH}-voucher submissions for {} s, then until evaluated; table of {} entries",
        args.concurrency, args.duration, args.served.entries
    ));
    out.line("");
    out.line("| setup | vouchers | vouchers/s end to end | server CPU µs/voucher | PostgreSQL CPU µs/voucher |");
    out.line("|---|---:|---:|---:|---:|");
    for r in rows {
        out.line(format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} |",
            r.setup, r.vouchers, r.per_second, r.server_cpu_us, r.postgres_cpu_us
        ));
    }
}
