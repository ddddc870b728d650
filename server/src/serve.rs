//! Running the server: the gRPC endpoint, health and reflection, the durable
//! pipeline to the match workers, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use blindmatch_proto::v1::table_service_server::TableServiceServer;
use blindmatch_proto::v1::voucher_service_server::VoucherServiceServer;
use blindmatch_protocol::{Matcher, voucher_len};
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;

use crate::pipeline::Retention;
use crate::service::{Shared, Tables, Vouchers};
use crate::store::MatchStore;

/// Default most vouchers per submission.
pub const DEFAULT_MAX_BATCH: usize = 1024;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The table file from `build`.
    pub table: PathBuf,
    /// The key file from `keygen`.
    pub key: PathBuf,
    /// The data directory (match database).
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Most vouchers per submission.
    pub max_batch: usize,
    /// How long match records and submission ids are kept.
    pub retention: Retention,
    /// Largest the match database may grow, in bytes (`None`: the disk).
    pub max_store_bytes: Option<u64>,
}

impl ServeConfig {
    /// A configuration with the defaults for everything but the paths and
    /// the address.
    pub fn new(table: PathBuf, key: PathBuf, data: PathBuf, listen: SocketAddr) -> Self {
        ServeConfig {
            table,
            key,
            data,
            listen,
            max_batch: DEFAULT_MAX_BATCH,
            retention: Retention::default(),
            max_store_bytes: None,
        }
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    processed: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// Stops accepting requests, lets in-flight ones finish, and waits until
    /// every acknowledged voucher has been matched and recorded.
    ///
    /// # Errors
    /// If the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.serving
            .await
            .context("server task")?
            .context("gRPC server")?;
        let workers = self.workers;
        tokio::task::spawn_blocking(move || workers.into_iter().try_for_each(|w| w.join()))
            .await
            .context("match workers")?
            .map_err(|_| anyhow::anyhow!("a match worker panicked"))?;
        Ok(())
    }
}

/// Loads the key and table, opens the store, binds, and starts serving.
///
/// # Errors
/// If any file cannot be read, the key does not fit the table, or the address
/// cannot be bound.
pub async fn start(cfg: ServeConfig) -> anyhow::Result<ServerHandle> {
    let key = crate::keyfile::read(&cfg.key)?;
    let (table, index) = crate::bundle::read(&cfg.table)?;
    let matcher = Matcher::new(&key, &table, index).with_context(|| {
        format!(
            "table {} and key {}",
            cfg.table.display(),
            cfg.key.display()
        )
    })?;
    drop(key);
    let store = MatchStore::open(&cfg.data, cfg.max_store_bytes)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("--listen {}", cfg.listen))?;
    let addr = listener.local_addr()?;

    let table_id = hex::encode(table.id().0);
    let k = table.header().k;
    let processed = Arc::new(AtomicU64::new(0));
    // One worker per core, each opening whole submissions: no fork-join per
    // batch (a profile under load showed ~12% of the server's CPU in the
    // kernel's scheduler with rayon here).
    let (ingest, workers) = crate::pipeline::start(
        store,
        Arc::new(matcher),
        table_id.clone(),
        cfg.retention,
        Arc::clone(&processed),
    )?;

    let shared = Arc::new(Shared {
        table: Arc::new(table),
        max_batch: cfg.max_batch,
        ingest,
    });
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<TableServiceServer<Tables>>().await;
    reporter
        .set_serving::<VoucherServiceServer<Vouchers>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(blindmatch_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection service")?;
    // A full batch must fit in one message, with room for framing.
    let max_message = cfg.max_batch * (voucher_len(k) + 8) + 4096;
    let tables = TableServiceServer::new(Tables(Arc::clone(&shared)));
    let vouchers =
        VoucherServiceServer::new(Vouchers(shared)).max_decoding_message_size(max_message);

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection)
            .add_service(tables)
            .add_service(vouchers)
            // serve_with_incoming ignores the builder's socket options: set
            // TCP_NODELAY on each connection here, or small responses wait
            // for the peer's delayed ACK (40 ms).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = shutdown_rx.await;
                    reporter
                        .set_not_serving::<TableServiceServer<Tables>>()
                        .await;
                    reporter
                        .set_not_serving::<VoucherServiceServer<Vouchers>>()
                        .await;
                    tracing::info!("shutting down: draining in-flight requests");
                },
            )
            .await
    });
    tracing::info!(%addr, table_id, "serving");
    Ok(ServerHandle {
        addr,
        processed,
        shutdown: Some(shutdown_tx),
        serving,
        workers,
    })
}

/// `serve`: runs until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
/// As [`start`], or if the server fails while running.
pub async fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    let handle = start(cfg).await?;
    println!("blindmatch-server listening on {}", handle.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    handle.shutdown().await
}
