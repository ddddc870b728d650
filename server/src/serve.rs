//! Running the server: the gRPC endpoint, health and reflection, the admin
//! listener, the durable pipeline to the match workers, and graceful
//! shutdown.
//!
//! The listeners are bound first and the table is loaded after, so a large
//! table's loading is visible: health reports NOT_SERVING, `/ready` answers
//! 503 and RPCs get UNAVAILABLE until it is done.
//!
//! A new version of the table is picked up without a restart
//! ([`ServerHandle::reload`]: SIGHUP, or `POST /reload` on the admin
//! listener): the table and key files are read again, new clients get the
//! new manifest, and the replaced version keeps being accepted for the
//! grace period (`generation`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use blindmatch_proto::v1::table_service_server::TableServiceServer;
use blindmatch_proto::v1::voucher_service_server::VoucherServiceServer;
use blindmatch_protocol::threshold::{MAX_SYNTHETIC_BOUND, threshold_voucher_len};
use blindmatch_protocol::voucher_len;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::generation::{Generation, Generations, Swap};
use crate::metrics::{Metrics, TableLabel};
use crate::pipeline::{Control, Retention};
use crate::service::{ServiceState, Shared, Tables, Vouchers};
use crate::store::Published;

/// Default most vouchers per submission.
pub const DEFAULT_MAX_BATCH: usize = 1024;
/// Default time to drain at shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a replaced version of the table is still accepted.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// The largest k a table may have (SPEC Section 5.1): it bounds the voucher
/// length before the table is loaded.
const MAX_K: u8 = 8;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The table file from `build`.
    pub table: PathBuf,
    /// The key file from `keygen`.
    pub key: PathBuf,
    /// The store: a data directory (SQLite) or a PostgreSQL database
    /// shared by replicas.
    pub store: crate::store::Location,
    /// How long this replica's claims outlive its last heartbeat.
    pub lease: Duration,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Most vouchers per submission.
    pub max_batch: usize,
    /// How long match records and submission ids are kept.
    pub retention: Retention,
    /// Largest the match database may grow, in bytes (`None`: the disk).
    pub max_store_bytes: Option<u64>,
    /// Address of the admin listener (`/metrics`, `/live`, `/ready`), if any.
    pub admin_listen: Option<SocketAddr>,
    /// At shutdown, how long in-flight requests and the evaluation of stored
    /// vouchers may take before the server exits anyway (what is stored and
    /// not yet evaluated then is evaluated after the next start).
    pub drain_timeout: Duration,
    /// Limits on what one client can ask of the server.
    pub limits: Limits,
    /// TLS for the gRPC listener (`None`: plaintext).
    pub tls: Option<TlsFiles>,
    /// After a reload, how long vouchers made for the replaced version are
    /// still accepted (and evaluated against it, under its key).
    pub grace: Duration,
    /// The version replaced before a restart (table file, key file): loaded
    /// as if just replaced, accepted for `grace` from the start, so that its
    /// submissions still pending are evaluated under its key.
    pub previous: Option<(PathBuf, PathBuf)>,
    /// The operator's verifying key: if given, a table file whose manifest
    /// it did not sign is refused at start and at reload.
    pub operator_key: Option<blindmatch_protocol::OperatorVerifyingKey>,
    /// The transparency log (SPEC Section 16): every version served must be
    /// in it, under a checkpoint that meets the policy; `GetManifest`
    /// serves its proofs and the admin listener its files (`/log/...`).
    pub log: Option<crate::tlog::LogSettings>,
    /// Browser origins allowed to call over gRPC-Web (`*`: any); empty,
    /// the default: no gRPC-Web and no HTTP/1.1.
    pub grpc_web_origins: Vec<String>,
    /// Post each new match record to this receiver (`--webhook`), if any.
    pub webhook: Option<crate::feed::webhook::WebhookSettings>,
}

/// gRPC-Web for browsers (tonic-web), behind CORS for the given origins:
/// what a page needs to call the service with Connect's or grpc-web's
/// transport. The request body framing is gRPC's, so the memory budget
/// (admission) applies unchanged; over HTTP/1.1 the HTTP/2 stream limits
/// do not, and the connection limits and timeouts still do.
fn grpc_web_layers(
    origins: &[String],
) -> Option<(tower_http::cors::CorsLayer, tonic_web::GrpcWebLayer)> {
    use http::header::{HeaderName, HeaderValue};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated by the configuration.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let names = |names: &[&'static str]| -> Vec<HeaderName> {
        names.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([http::Method::POST])
        .allow_headers(names(&[
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
        ]))
        .expose_headers(names(&[
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "grpc-retry-pushback-ms",
        ]))
        .max_age(Duration::from_secs(24 * 3600));
    Some((cors, tonic_web::GrpcWebLayer::new()))
}

/// The files TLS needs, as PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The certificate's private key (mode 0600, like every secret here).
    pub key: PathBuf,
    /// With this CA, clients must present a certificate it issued (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The rustls configuration tonic builds from these files.
    ///
    /// # Errors
    /// If a file cannot be read, or the key file is readable by others.
    fn server_config(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).with_context(|| format!("TLS {what} {}", p.display()))
        };
        crate::keyfile::check_private(&self.key, "TLS key")?;
        let key = zeroize::Zeroizing::new(read(&self.key, "key")?);
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(&self.cert, "certificate")?, &*key));
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(config)
    }
}

/// Limits on what clients can make the server hold, each configurable
/// (`serve --help`; README, "Limits and sizing").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request not answered within this gets CANCELLED ("Timeout
    /// expired"); a submission it cut short may still be stored, and its
    /// retry under the same id is acknowledged without storing it twice.
    pub request_timeout: Duration,
    /// Concurrent calls (HTTP/2 streams) on one connection: advertised to
    /// the client as SETTINGS_MAX_CONCURRENT_STREAMS, and enforced.
    pub max_concurrent_per_connection: usize,
    /// Submissions a second accepted from one IP address (with a burst of as
    /// many); more get RESOURCE_EXHAUSTED. `None`: no limit.
    pub submissions_per_second_per_ip: Option<std::num::NonZeroU32>,
    /// Memory that submissions may hold from receipt until their results are
    /// recorded, in bytes; one source may hold at most half of it (less
    /// when more sources are active). A submission that does not fit is
    /// refused at once with RESOURCE_EXHAUSTED, before its body is read.
    pub max_inflight_bytes: usize,
    /// Open connections, and open connections from one client address (an
    /// IPv6 /64), idle timeout.
    pub connections: crate::ConnectionLimits,
    /// A request's body must have arrived within this of its headers.
    pub body_timeout: Duration,
}

/// Default in-flight budget: 128 MiB, safe on a machine of 1 GiB.
pub const DEFAULT_MAX_INFLIGHT_MIB: usize = 128;

/// HTTP/2 receive windows: what a client may send before the server reads
/// it. They bound what hyper buffers per connection (the connection window)
/// whatever the client does; 64 KiB per stream still lets a maximal batch
/// arrive in about 22 round trips.
const STREAM_WINDOW: u32 = 64 << 10;
const CONNECTION_WINDOW: u32 = 256 << 10;
/// Largest header list a client may send: gRPC's headers are a few hundred
/// bytes.
const MAX_HEADER_LIST: u32 = 16 << 10;

/// What loading produced: the match workers and the store writer, and the
/// webhook's deliverer.
#[derive(Default)]
struct Loaded {
    threads: Vec<std::thread::JoinHandle<()>>,
    webhook: Option<JoinHandle<()>>,
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    reloader: Arc<Reloader>,
    tls: bool,
    admin_addr: Option<SocketAddr>,
    processed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    serving: JoinHandle<Result<(), tonic::transport::Error>>,
    admin: Option<JoinHandle<()>>,
    loading: Option<JoinHandle<anyhow::Result<Loaded>>>,
    workers: Loaded,
    drain_timeout: Duration,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (or `https://` with TLS), for clients.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Reads the table and key files again and, if they hold a newer
    /// version, makes it current; the replaced version is accepted for the
    /// grace period. Submissions in flight are unaffected.
    ///
    /// # Errors
    /// If the server is still loading, the files cannot be read or do not
    /// belong together, or they hold an older version; the version served
    /// is unchanged then.
    pub async fn reload(&self) -> anyhow::Result<Swap> {
        self.reloader.reload().await
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Vouchers matched (or found not to match) and recorded so far.
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Acquire)
    }

    /// Waits until `n` vouchers have been processed, or `timeout` passes.
    pub async fn wait_processed(&self, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.processed() < n {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Waits until the table is loaded and the server serves.
    ///
    /// # Errors
    /// If loading failed (a file cannot be read, the key does not fit the
    /// table, the store cannot be opened); the server is stopped then.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        let Some(loading) = self.loading.take() else {
            return Ok(());
        };
        match loading.await.context("loading task")? {
            Ok(workers) => {
                self.workers = workers;
                Ok(())
            }
            Err(e) => {
                let _ = self.shutdown.send(true);
                Err(e)
            }
        }
    }

    /// Stops accepting requests (health NOT_SERVING, `/ready` 503), lets
    /// in-flight ones finish, and waits until every acknowledged voucher has
    /// been evaluated and recorded, or the drain timeout passes: what is
    /// stored and not yet evaluated then stays pending for the next start.
    ///
    /// # Errors
    /// If the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.metrics.set_ready(false);
        let _ = self.shutdown.send(true);
        let drain = async {
            let served = self.serving.await.context("server task")?;
            if let Some(loading) = self.loading.take() {
                // Stopped while loading: the pipeline, if it started, ends
                // with the services that held its sender.
                if let Ok(Ok(workers)) = loading.await {
                    self.workers = workers;
                }
            }
            let Loaded { threads, webhook } = std::mem::take(&mut self.workers);
            // The deliverer stops at the signal: a record being posted is
            // posted again after the next start.
            if let Some(webhook) = webhook {
                let _ = webhook.await;
            }
            tokio::task::spawn_blocking(move || threads.into_iter().try_for_each(|w| w.join()))
                .await
                .context("match workers")?
                .map_err(|_| anyhow::anyhow!("a match worker panicked"))?;
            served.context("gRPC server")
        };
        match tokio::time::timeout(self.drain_timeout, drain).await {
            Ok(r) => r?,
            Err(_) => tracing::warn!(
                pending = self.metrics.pending.get(),
                "drain timeout reached: exiting; submissions stored and not yet evaluated are evaluated after the next start"
            ),
        }
        if let Some(admin) = self.admin {
            admin.abort();
        }
        Ok(())
    }
}

/// Binds, starts serving, and loads the key and table; returns once the
/// server is ready.
///
/// # Errors
/// If an address cannot be bound, or loading fails.
pub async fn start(cfg: ServeConfig) -> anyhow::Result<ServerHandle> {
    let mut handle = start_loading(cfg).await?;
    handle.ready().await?;
    Ok(handle)
}

/// Binds and starts serving, and loads the key and table in the background:
/// until [`ServerHandle::ready`], health says NOT_SERVING and RPCs get
/// UNAVAILABLE.
///
/// # Errors
/// If an address cannot be bound.
pub async fn start_loading(cfg: ServeConfig) -> anyhow::Result<ServerHandle> {
    raise_file_limit(cfg.limits.connections.max_total);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("--listen {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let (shutdown, mut stopped) = watch::channel(false);
    let state = Arc::new(ServiceState {
        ready: std::sync::OnceLock::new(),
        metrics: Arc::clone(&metrics),
    });
    let reloader = Arc::new(Reloader {
        state: Arc::downgrade(&state),
        table: cfg.table.clone(),
        key: cfg.key.clone(),
        grace: cfg.grace,
        operator: cfg.operator_key,
        log: cfg.log.clone(),
        one_at_a_time: tokio::sync::Mutex::new(()),
    });
    // The admin listener outlives the gRPC one: during the drain, `/ready`
    // answers 503 and `/live` 200, so an orchestrator sees the server going,
    // not gone. It stops when `shutdown` has finished.
    let (admin_addr, admin) = match cfg.admin_listen {
        Some(a) => {
            let r = Arc::clone(&reloader);
            let reload: crate::metrics::ReloadFn = Arc::new(move || {
                let r = Arc::clone(&r);
                Box::pin(async move { r.reload().await.map(|s| s.to_string()) })
            });
            let (bound, task) = crate::metrics::serve_admin(
                a,
                Arc::clone(&metrics),
                Some(reload),
                cfg.log.as_ref().map(|l| l.dir.clone()),
                std::future::pending(),
            )
            .await?;
            (Some(bound), Some(task))
        }
        None => (None, None),
    };

    let (reporter, health) = tonic_health::server::health_reporter();
    set_serving(&reporter, false).await;
    // Reflection in both versions: grpcurl and Postman speak v1, Python's
    // grpcio-reflection, older grpcurl and Evans only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(blindmatch_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("reflection service (v1alpha)")?;
    let reflection = reflection().build_v1().context("reflection service")?;
    let max_message = max_message(cfg.max_batch);
    let tables = TableServiceServer::new(Tables(Arc::clone(&state)));
    let rate_limit = crate::limits::RateLimit::new(
        cfg.limits.submissions_per_second_per_ip,
        Arc::clone(&metrics),
    );
    let vouchers = tonic::service::interceptor::InterceptedService::new(
        VoucherServiceServer::new(Vouchers(Arc::clone(&state)))
            .max_decoding_message_size(max_message),
        rate_limit,
    );

    let shutdown_reporter = reporter.clone();
    let limits = cfg.limits;
    let admission = crate::admission::AdmissionLayer(crate::admission::Admission {
        budget: crate::admission::Budget::new(
            limits.max_inflight_bytes,
            max_submission_charge(cfg.max_batch),
            Arc::clone(&metrics),
        ),
        body_timeout: limits.body_timeout,
        metrics: Arc::clone(&metrics),
    });
    let connections = crate::connections::Limited::new(limits.connections, Arc::clone(&metrics));
    let grpc_web = grpc_web_layers(&cfg.grpc_web_origins);
    if grpc_web.is_some() {
        tracing::info!(origins = ?cfg.grpc_web_origins, "gRPC-Web and HTTP/1.1 on, for these browser origins");
    }
    let mut builder = tonic::transport::Server::builder().accept_http1(grpc_web.is_some());
    if let Some(tls) = &cfg.tls {
        builder = builder.tls_config(tls.server_config()?).with_context(|| {
            format!(
                "TLS certificate {} and key {}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    }
    let serving = tokio::spawn(async move {
        let streams = u32::try_from(limits.max_concurrent_per_connection).unwrap_or(u32::MAX);
        builder
            .timeout(limits.request_timeout)
            .concurrency_limit_per_connection(limits.max_concurrent_per_connection)
            .max_concurrent_streams(streams)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .http2_max_header_list_size(MAX_HEADER_LIST)
            .layer(tower::util::option_layer(grpc_web))
            .layer(admission)
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(tables)
            .add_service(vouchers)
            // serve_with_incoming ignores the builder's socket options: set
            // TCP_NODELAY on each connection here, or small responses wait
            // for the peer's delayed ACK (40 ms).
            .serve_with_incoming_shutdown(
                connections.incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                    set_serving(&shutdown_reporter, false).await;
                    tracing::info!("shutting down: draining in-flight requests");
                },
            )
            .await
    });

    let processed = Arc::new(AtomicU64::new(0));
    let drain_timeout = cfg.drain_timeout;
    let tls = cfg.tls.is_some();
    let loading = {
        let (metrics, processed) = (Arc::clone(&metrics), Arc::clone(&processed));
        let follower = Arc::clone(&reloader);
        let stopping = shutdown.subscribe();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (shared, threads, deliverer) =
                tokio::task::spawn_blocking(move || load(&cfg, &metrics, processed))
                    .await
                    .context("loading task")??;
            let webhook = deliverer.map(|d| {
                let mut stop = stopping.clone();
                tokio::spawn(async move {
                    // Stops at the signal, even mid-request.
                    tokio::select! {
                        () = d.run(stop.clone()) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                })
            });
            let workers = Loaded { threads, webhook };
            let current = shared.generations.current();
            let (table_id, version) = (current.id_hex.clone(), current.version());
            drop(current);
            tokio::spawn(retire(
                Arc::clone(&shared.generations),
                Arc::clone(&state.metrics),
                stopping.clone(),
            ));
            tokio::spawn(follow_store(
                Arc::clone(&follower),
                Arc::clone(&state),
                reporter.clone(),
                stopping.clone(),
            ));
            if state.ready.set(shared).is_err() {
                anyhow::bail!("the server was loaded twice");
            }
            if !*stopping.borrow() {
                set_serving(&reporter, true).await;
                state.metrics.set_ready(true);
            }
            tracing::info!(
                table_id,
                version,
                seconds = started.elapsed().as_secs_f64(),
                "table loaded: serving"
            );
            Ok(workers)
        })
    };
    tracing::info!(%addr, "listening; loading the table");
    Ok(ServerHandle {
        addr,
        reloader,
        tls,
        admin_addr,
        processed,
        metrics,
        shutdown,
        serving,
        admin,
        loading: Some(loading),
        workers: Loaded::default(),
        drain_timeout,
    })
}

/// Raises the soft limit on open files so that `--max-connections` is what
/// bounds connections, not the process's default (1024 under systemd, whose
/// hard limit is far higher); says so if the hard limit is too low.
fn raise_file_limit(max_connections: usize) {
    // The store, the table files, the listeners and a margin.
    let want = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(256);
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => tracing::warn!(
            open_files = got,
            max_connections,
            "the open-file limit is below --max-connections: connections past it are refused by the kernel (raise LimitNOFILE)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open-file limit"),
    }
}

async fn set_serving(reporter: &HealthReporter, serving: bool) {
    if serving {
        reporter.set_serving::<TableServiceServer<Tables>>().await;
        reporter
            .set_serving::<VoucherServiceServer<Vouchers>>()
            .await;
    } else {
        reporter
            .set_not_serving::<TableServiceServer<Tables>>()
            .await;
        reporter
            .set_not_serving::<VoucherServiceServer<Vouchers>>()
            .await;
    }
}

/// Reads the key and table, opens the store and starts the pipeline, and
/// makes the webhook's deliverer if there is a webhook.
#[allow(clippy::type_complexity, reason = "one caller, which names the parts")]
fn load(
    cfg: &ServeConfig,
    metrics: &Arc<Metrics>,
    processed: Arc<AtomicU64>,
) -> anyhow::Result<(
    Shared,
    Vec<std::thread::JoinHandle<()>>,
    Option<crate::feed::webhook::Deliverer>,
)> {
    // The webhook's secret first: a bad file stops the start before the
    // table is read.
    let webhook_secret = match &cfg.webhook {
        Some(w) => Some(
            crate::feed::webhook::Secret::read(&w.secret_file).context("--webhook-secret-file")?,
        ),
        None => None,
    };
    let operator = cfg.operator_key.as_ref();
    let log = cfg.log.as_ref();
    let generation = Generation::load(&cfg.table, &cfg.key, operator, log)?;
    // Chosen once per process, for this CPU (blindmatch-batchmul).
    tracing::info!(
        arithmetic = %generation.matcher.backend(),
        "vouchers are opened with this arithmetic"
    );
    // A CPU with the instructions on which the kernel gave a wrong answer
    // in its known-answer test runs the slower path: the operator must know.
    if let Err(e @ blindmatch_batchmul::Unavailable::FailedSelfTest(_)) =
        blindmatch_batchmul::Backend::Avx512Ifma8.availability()
    {
        tracing::warn!(error = %e, "the batched kernel is not used");
    }
    if let Some(l) = &generation.log {
        tracing::info!(
            log = l.checkpoint.checkpoint().origin,
            size = l.checkpoint.checkpoint().size,
            entry = l.proof.index,
            witnesses = l.checkpoint.witnesses().join(","),
            "table version logged: its inclusion proof is served"
        );
    }
    let replica = crate::store::Replica::new(cfg.lease);
    let replica_id = replica.id.clone();
    let mut store = crate::store::open(&cfg.store, replica, cfg.max_store_bytes)?;
    tracing::info!(store = %cfg.store, replica = replica_id, "store open");
    // A connection of its own (opened once the store is migrated): the
    // deliverer never waits for the pipeline's writer, nor it for the
    // deliverer.
    let deliverer = match (&cfg.webhook, webhook_secret) {
        (Some(w), Some(secret)) => Some(crate::feed::webhook::Deliverer::new(
            crate::store::open_feed(&cfg.store, true)
                .context("the webhook's connection to the store")?,
            w.clone(),
            secret,
            Arc::clone(metrics),
        )),
        _ => None,
    };
    // Serving a version publishes it: the first replica to serve it records
    // when, and every replica ends the grace period of the version it
    // replaced at that time plus the grace.
    let versions = store
        .publish(&generation.id_hex, generation.version())
        .with_context(|| format!("recording version {} in the store", generation.version()))?;
    if let Some(newest) = versions.first()
        && newest.version > generation.version()
    {
        tracing::warn!(
            serving = generation.version(),
            store = newest.version,
            "the store's current table version is newer than this replica's table file: not ready until the files hold it (then SIGHUP or POST /reload, or wait: the replica checks every few seconds)"
        );
    }
    show_table(metrics, &generation, 1);
    let grace = grace_left(&versions, &generation.id_hex, cfg.grace);
    let generations = match &cfg.previous {
        None => Generations::new(generation),
        Some((table, key)) => {
            let previous =
                Generation::load(table, key, operator, log).context("--previous-table")?;
            show_table(metrics, &previous, 2);
            show_grace(metrics, &previous, grace);
            let (from, to) = (previous.version(), generation.version());
            let g = Generations::new(previous);
            match g.install(generation, grace)? {
                Swap::Swapped { .. } => {
                    tracing::info!(
                        from,
                        to,
                        "previous version loaded: accepted for the grace period"
                    );
                }
                Swap::Unchanged { .. } | Swap::CoSigned { .. } | Swap::LogUpdated { .. } => {
                    anyhow::bail!("--previous-table holds the same table as --table")
                }
            }
            g
        }
    };
    let generations = Arc::new(generations);
    // One worker per core, each opening whole submissions: no fork-join per
    // batch (a profile under load showed ~12% of the server's CPU in the
    // kernel's scheduler with rayon here).
    let (pipeline, workers) = crate::pipeline::start(
        store,
        cfg.lease,
        Arc::clone(&generations),
        cfg.retention,
        processed,
        Arc::clone(metrics),
    )?;
    Ok((
        Shared {
            generations,
            max_batch: cfg.max_batch,
            ingest: pipeline.ingest,
            control: pipeline.control,
        },
        workers,
        deliverer,
    ))
}

/// The largest message `Submit` accepts at `max_batch`: a full batch of
/// the longest vouchers either protocol version has (k = 8, and in
/// threshold mode s = 256: tables swap, so not the current table's), with
/// room for framing. The handler checks each voucher's exact length once
/// the table is known.
pub fn max_message(max_batch: usize) -> usize {
    let longest = voucher_len(MAX_K).max(threshold_voucher_len(MAX_K, MAX_SYNTHETIC_BOUND));
    max_batch.saturating_mul(longest + 8).saturating_add(4096)
}

/// What the largest submission at `max_batch` is charged of the in-flight
/// budget.
pub(crate) fn max_submission_charge(max_batch: usize) -> usize {
    crate::admission::Budget::charge(max_message(max_batch))
}

/// Sets the `table` gauge of a version: 1 current, 2 accepted during its
/// grace period; 0 removes it (no longer accepted), so that a year of daily
/// versions does not leave a year of series behind.
fn show_table(metrics: &Metrics, g: &Generation, state: i64) {
    let label = TableLabel {
        table_id: g.id_hex.clone(),
    };
    if state == 0 {
        metrics.table.remove(&label);
        metrics.table_grace_ends.remove(&label);
        return;
    }
    metrics.table.get_or_create(&label).set(state);
    if state == 1 {
        metrics.table_slots.set(i64::from(g.table.header().n_slots));
        metrics
            .table_version
            .set(i64::try_from(g.version()).unwrap_or(i64::MAX));
    }
}

/// Sets when the grace period of a replaced version ends, `left` from now,
/// as Unix time: what an alert compares with its own clock.
fn show_grace(metrics: &Metrics, g: &Generation, left: Duration) {
    let ends = std::time::SystemTime::now()
        .checked_add(left)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    metrics
        .table_grace_ends
        .get_or_create(&TableLabel {
            table_id: g.id_hex.clone(),
        })
        .set(ends);
}

/// Reloads the table files on request (SIGHUP, `POST /reload`).
struct Reloader {
    /// Weak: the services' references are what keep the pipeline's intake
    /// open, and shutdown waits for them to go.
    state: std::sync::Weak<ServiceState>,
    table: PathBuf,
    key: PathBuf,
    grace: Duration,
    operator: Option<blindmatch_protocol::OperatorVerifyingKey>,
    log: Option<crate::tlog::LogSettings>,
    /// Two reloads at once would race to install.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Reloader {
    async fn reload(&self) -> anyhow::Result<Swap> {
        let _one = self.one_at_a_time.lock().await;
        let Some(state) = self.state.upgrade() else {
            anyhow::bail!("the server is shutting down");
        };
        let Some(shared) = state.ready.get() else {
            anyhow::bail!("the server is still loading its table");
        };
        let (table, key, operator) = (self.table.clone(), self.key.clone(), self.operator);
        let log = self.log.clone();
        let next = tokio::task::spawn_blocking(move || {
            Generation::load(&table, &key, operator.as_ref(), log.as_ref())
        })
        .await
        .context("reload task")??;
        let previous = shared.generations.current();
        let new_id = next.id_hex.clone();
        if new_id == previous.id_hex {
            let swap = shared.generations.install(next, self.grace)?;
            match swap {
                Swap::CoSigned {
                    version,
                    cosignatures,
                } => tracing::info!(version, cosignatures, "co-signatures updated"),
                Swap::LogUpdated { version, log_size } => {
                    tracing::info!(version, log_size, "log checkpoint updated");
                }
                _ => {}
            }
            return Ok(swap);
        }
        if next.version() <= previous.version() {
            anyhow::bail!(
                "the table file holds version {}, not newer than the version {} served: not swapped",
                next.version(),
                previous.version()
            );
        }
        // Recorded in the store first: the replaced version's grace period
        // ends at the same moment on every replica.
        let versions = publish(shared, &new_id, next.version()).await?;
        let grace = grace_left(&versions, &new_id, self.grace);
        let swap = shared.generations.install(next, grace)?;
        if let Swap::Swapped { from, to, rotated } = &swap {
            let metrics = &state.metrics;
            if let Some(g) = shared.generations.by_hex(&new_id) {
                show_table(metrics, &g, 1);
            }
            show_table(metrics, &previous, 2);
            show_grace(metrics, &previous, grace);
            tracing::info!(
                from,
                to,
                rotated,
                table_id = new_id,
                grace_seconds = self.grace.as_secs_f64(),
                "new table version serving; the previous one is accepted for the grace period"
            );
        }
        Ok(swap)
    }
}

/// What is left of the grace period of the version `successor` replaced:
/// `grace` from when the store recorded `successor`, so that every replica
/// ends it together.
fn grace_left(versions: &[Published], successor: &str, grace: Duration) -> Duration {
    let Some(p) = versions.iter().find(|p| p.table_id == successor) else {
        return grace;
    };
    let elapsed = crate::store::now_ms().saturating_sub(p.published_at_ms);
    grace.saturating_sub(Duration::from_millis(u64::try_from(elapsed).unwrap_or(0)))
}

/// Asks the store, through the pipeline's writer, to record a version.
async fn publish(shared: &Shared, table_id: &str, version: u64) -> anyhow::Result<Vec<Published>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .control
        .send(Control::Publish {
            table_id: table_id.to_owned(),
            version,
            reply,
        })
        .map_err(|_| anyhow::anyhow!("the store is closed (shutting down)"))?;
    answer
        .await
        .context("the store's writer stopped")?
        .with_context(|| format!("recording version {version} in the store"))
}

/// The versions the store records, newest first.
async fn store_versions(shared: &Shared) -> anyhow::Result<Vec<Published>> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    shared
        .control
        .send(Control::Versions { reply })
        .map_err(|_| anyhow::anyhow!("the store is closed (shutting down)"))?;
    Ok(answer.await.context("the store's writer stopped")??)
}

/// How often a replica reads the store's current version, on average.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Keeps this replica on the store's current version: every ~2 s (with
/// jitter, so replicas do not ask in step), reads the newest version
/// recorded; if it is newer than the one served, reloads the table files,
/// and while they do not hold it, reports not ready (health NOT_SERVING,
/// `/ready` 503), so that a load balancer sends clients to replicas that
/// serve it rather than let them see an older version (which clients
/// refuse as a rollback). With one server on SQLite this never fires.
async fn follow_store(
    reloader: Arc<Reloader>,
    state: Arc<ServiceState>,
    reporter: HealthReporter,
    mut stopping: watch::Receiver<bool>,
) {
    use rand::RngExt;
    let mut behind_logged: Option<u64> = None;
    let mut ready = true;
    loop {
        let wait = FOLLOW_EVERY.mul_f64(rand::rng().random_range(0.75..1.25));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.changed() => return,
        }
        let Some(shared) = state.ready.get() else {
            continue;
        };
        let newest = match store_versions(shared).await {
            Ok(v) => v.into_iter().next(),
            Err(e) => {
                tracing::debug!(
                    error = format!("{e:#}"),
                    "could not read the store's versions"
                );
                continue;
            }
        };
        let current = shared.generations.current();
        let behind = newest
            .as_ref()
            .filter(|n| n.version > current.version() && n.table_id != current.id_hex);
        let caught_up = match behind {
            None => true,
            Some(n) => match reloader.reload().await {
                Ok(Swap::Swapped { to, .. }) => {
                    tracing::info!(
                        version = to,
                        "following the store: new table version loaded"
                    );
                    behind_logged = None;
                    to >= n.version
                }
                Ok(Swap::Unchanged { .. } | Swap::CoSigned { .. } | Swap::LogUpdated { .. })
                | Err(_) => {
                    if behind_logged != Some(n.version) {
                        tracing::warn!(
                            serving = current.version(),
                            store = n.version,
                            "another replica serves a newer table version than this replica's files hold: not ready until they do"
                        );
                        behind_logged = Some(n.version);
                    }
                    false
                }
            },
        };
        if caught_up != ready && !*stopping.borrow() {
            ready = caught_up;
            set_serving(&reporter, ready).await;
            state.metrics.set_ready(ready);
        }
    }
}

impl std::fmt::Display for Swap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Swap::Unchanged { version } => write!(f, "unchanged: version {version} is served"),
            Swap::CoSigned {
                version,
                cosignatures,
            } => write!(
                f,
                "version {version} is served with {cosignatures} co-signature(s) now"
            ),
            Swap::LogUpdated { version, log_size } => write!(
                f,
                "version {version} is served with the log's newer checkpoint (size {log_size})"
            ),
            Swap::Swapped { from, to, rotated } => write!(
                f,
                "swapped: version {to} is served; version {from} is accepted for the grace period{}",
                if *rotated { " (key rotated)" } else { "" }
            ),
        }
    }
}

/// Drops replaced versions when their grace period ends, until shutdown.
async fn retire(
    generations: Arc<Generations>,
    metrics: Arc<Metrics>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let wait = generations
            .next_expiry()
            .map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(std::time::Instant::now())
                    .min(Duration::from_secs(1))
            });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopping.changed() => return,
        }
        for g in generations.expire() {
            show_table(&metrics, &g, 0);
            tracing::info!(
                version = g.version(),
                "grace period over: vouchers for this version are refused, and its key is dropped once those accepted are evaluated"
            );
        }
    }
}

/// `serve`: runs until SIGINT or SIGTERM, then shuts down gracefully;
/// `ready` hears once the table is loaded and the server serves (`main`
/// prints the address then).
///
/// # Errors
/// As [`start`], or if the server fails while running.
pub async fn run(cfg: ServeConfig, ready: impl FnOnce(&ServerHandle)) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Installed before loading, so an early SIGHUP does not kill the server
    // (the default action); it is acted on once loading is done.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut handle = start_loading(cfg).await?;
    if let Some(admin) = handle.admin_addr() {
        tracing::info!(%admin, "admin listener: /metrics /live /ready, POST /reload");
    }
    tokio::select! {
        r = handle.ready() => r?,
        r = tokio::signal::ctrl_c() => { r?; return handle.shutdown().await; }
        _ = term.recv() => return handle.shutdown().await,
    }
    ready(&handle);
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r?; break; }
            _ = term.recv() => break,
            _ = hup.recv() => match handle.reload().await {
                Ok(swap) => tracing::info!(%swap, "SIGHUP: reloaded"),
                Err(e) => tracing::error!(error = format!("{e:#}"), "SIGHUP: reload failed; the current version stays"),
            },
        }
    }
    tracing::info!("signal received: shutting down");
    handle.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grace period runs from when the store recorded the successor, not
    /// from when this replica swapped: replicas end it together.
    #[test]
    fn the_grace_left_counts_from_the_stores_record() {
        let hour = Duration::from_secs(3600);
        let published = |ago_ms: i64| {
            vec![Published {
                table_id: "v2".into(),
                version: 2,
                published_at_ms: crate::store::now_ms() - ago_ms,
            }]
        };
        let left = grace_left(&published(600_000), "v2", hour);
        assert!(left <= hour - Duration::from_secs(600) && left > hour - Duration::from_secs(660));
        assert_eq!(
            grace_left(&published(2 * 3_600_000), "v2", hour),
            Duration::ZERO
        );
        // Not recorded (cannot happen after a publish): the whole grace.
        assert_eq!(grace_left(&published(0), "v3", hour), hour);
    }
}
