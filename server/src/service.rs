//! The gRPC services: table distribution and voucher submission.
//!
//! `Submit` validates a batch (table id, size, every voucher's encoding), has
//! it stored durably (`pipeline`), and acknowledges. The acknowledgement is
//! `SubmitResponse { accepted: n }` for n vouchers, whatever they contain, and
//! it is sent before any voucher is opened, so neither its bytes nor its
//! timing depend on whether anything matched.

use std::pin::Pin;
use std::sync::Arc;

use blindmatch_proto::v1::table_service_server::TableService;
use blindmatch_proto::v1::voucher_service_server::VoucherService;
use blindmatch_proto::v1::{
    DeltaChunk, DownloadDeltaRequest, DownloadTableRequest, GetManifestRequest, Manifest,
    SubmitRequest, SubmitResponse, TableChunk,
};
use blindmatch_protocol::table::CHUNK_LEN;
use tokio::sync::oneshot;

use crate::generation::{Generation, Generations};
use crate::pipeline::{Ingest, Refused};
use crate::store::{Receipt, StoreError};
use crate::submission::{Batch, BatchError, Submission};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::wire::DELTA_SLOTS;

/// Counts a Submit call in flight for as long as it lives, also when the
/// call is cancelled (its future dropped).
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Length of a client-chosen submission id.
const SUBMISSION_ID_LEN: usize = 16;

/// Why a request was refused. Mapped to a gRPC status in exactly one place
/// (`From<ServiceError> for Status`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("table id {got} is not the current table {current}: fetch the manifest again")]
    StaleTable { got: String, current: String },
    #[error(
        "no delta from table {from} to the current table (too old, or another table): download the full table"
    )]
    NoDelta { from: String },
    #[error("batch of {got} vouchers exceeds the maximum of {max}")]
    BatchTooLarge { got: usize, max: usize },
    #[error(transparent)]
    BadBatch(#[from] BatchError),
    #[error(
        "offset {offset} is not a multiple of the {chunk}-byte chunk within the {len}-byte table"
    )]
    BadOffset { offset: u64, len: u64, chunk: usize },
    #[error("submission_id is {0} bytes; it must be 16 random bytes, or empty")]
    BadSubmissionId(usize),
    #[error("submission id {0} was already used for a different batch; a new batch needs a new id")]
    SubmissionIdReused(String),
    #[error("the server is shutting down; retry")]
    ShuttingDown,
    #[error("the server is loading its table; retry shortly")]
    Loading,
    #[error("{0}; nothing was acknowledged, retry later with the same submission id")]
    NotStored(StoreError),
}

impl ServiceError {
    /// The metrics label of this kind of refusal.
    fn kind(&self) -> &'static str {
        match self {
            ServiceError::StaleTable { .. } => "stale_table",
            ServiceError::NoDelta { .. } => "no_delta",
            ServiceError::BatchTooLarge { .. } => "batch_too_large",
            ServiceError::BadBatch(e) => e.kind(),
            ServiceError::BadOffset { .. } => "bad_offset",
            ServiceError::BadSubmissionId(_) => "bad_submission_id",
            ServiceError::SubmissionIdReused(_) => "submission_id_reused",
            ServiceError::ShuttingDown => "shutting_down",
            ServiceError::Loading => "loading",
            ServiceError::NotStored(StoreError::Full) => "store_full",
            ServiceError::NotStored(StoreError::ReadOnly) => "store_read_only",
            ServiceError::NotStored(StoreError::Failed(_)) => "store_failed",
            ServiceError::NotStored(StoreError::Unreachable(_)) => "store_unreachable",
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::StaleTable { .. } => Status::failed_precondition(msg),
            ServiceError::NoDelta { .. } => Status::not_found(msg),
            ServiceError::BatchTooLarge { .. } => Status::resource_exhausted(msg),
            ServiceError::BadBatch(_)
            | ServiceError::BadOffset { .. }
            | ServiceError::BadSubmissionId(_) => Status::invalid_argument(msg),
            ServiceError::SubmissionIdReused(_) => Status::already_exists(msg),
            ServiceError::NotStored(StoreError::Full) => Status::resource_exhausted(msg),
            ServiceError::ShuttingDown | ServiceError::Loading | ServiceError::NotStored(_) => {
                Status::unavailable(msg)
            }
        }
    }
}

/// What the services share: the loaded table and pipeline once they are
/// ready, and the metrics from the start.
pub(crate) struct ServiceState {
    pub(crate) ready: std::sync::OnceLock<Shared>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl ServiceState {
    fn shared(&self) -> Result<&Shared, ServiceError> {
        self.ready.get().ok_or(ServiceError::Loading)
    }

    /// Counts a refusal and turns it into its status.
    fn refuse(&self, e: ServiceError) -> Status {
        self.metrics.error(e.kind());
        Status::from(e)
    }
}

/// The loaded versions and the way into the pipeline.
pub(crate) struct Shared {
    pub(crate) generations: Arc<Generations>,
    pub(crate) max_batch: usize,
    pub(crate) ingest: crossbeam_channel::Sender<Ingest>,
    /// Requests for the store (published versions), through its writer.
    pub(crate) control: crossbeam_channel::Sender<crate::pipeline::Control>,
}

fn short_hex(id: &[u8]) -> String {
    hex::encode(&id[..id.len().min(32)])
}

impl Shared {
    /// The version a client names, if it still accepts vouchers.
    fn generation(&self, id: &[u8]) -> Result<Arc<Generation>, ServiceError> {
        self.generations
            .accepting(id)
            .ok_or_else(|| ServiceError::StaleTable {
                got: short_hex(id),
                current: self.generations.current().id_hex.clone(),
            })
    }

    /// `GetManifest`'s answer for a client holding a log checkpoint of
    /// `log_size` entries (0: none).
    pub(crate) fn manifest(&self, log_size: u64) -> Manifest {
        let g = self.generations.current();
        match &g.log {
            Some(log) => {
                let consistency = log.consistency(log_size);
                crate::wire::manifest(
                    &g.manifest,
                    g.cosignatures(),
                    self.max_batch,
                    Some((&log.proof, &consistency)),
                )
            }
            None => crate::wire::manifest(&g.manifest, g.cosignatures(), self.max_batch, None),
        }
    }
}

/// `TableService`.
pub(crate) struct Tables(pub(crate) Arc<ServiceState>);

#[tonic::async_trait]
impl TableService for Tables {
    #[tracing::instrument(skip_all)]
    async fn get_manifest(
        &self,
        request: Request<GetManifestRequest>,
    ) -> Result<Response<Manifest>, Status> {
        let shared = self.0.shared().map_err(|e| self.0.refuse(e))?;
        Ok(Response::new(
            shared.manifest(request.into_inner().log_size),
        ))
    }

    type DownloadTableStream = Pin<Box<dyn Stream<Item = Result<TableChunk, Status>> + Send>>;

    #[tracing::instrument(skip_all)]
    async fn download_table(
        &self,
        request: Request<DownloadTableRequest>,
    ) -> Result<Response<Self::DownloadTableStream>, Status> {
        let req = request.into_inner();
        let refuse = |e| self.0.refuse(e);
        let shared = self.0.shared().map_err(refuse)?;
        let generation = shared.generation(&req.table_id).map_err(refuse)?;
        let len = generation.table.header().slots_len();
        if req.offset > len || !req.offset.is_multiple_of(CHUNK_LEN as u64) {
            return Err(refuse(ServiceError::BadOffset {
                offset: req.offset,
                len,
                chunk: CHUNK_LEN,
            }));
        }
        // A lazy iterator over the shared version: each chunk is copied only
        // when the transport asks for it. Chunks are the Merkle leaves, each
        // sent with its audit path.
        let start = usize::try_from(req.offset).unwrap_or(usize::MAX);
        let end = generation.table.slots().len();
        let chunks = (start..end).step_by(CHUNK_LEN).map(move |at| {
            Ok(crate::wire::table_chunk(
                generation.table.slots(),
                &generation.tree,
                at,
            ))
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    type DownloadDeltaStream = Pin<Box<dyn Stream<Item = Result<DeltaChunk, Status>> + Send>>;

    #[tracing::instrument(skip_all)]
    async fn download_delta(
        &self,
        request: Request<DownloadDeltaRequest>,
    ) -> Result<Response<Self::DownloadDeltaStream>, Status> {
        let req = request.into_inner();
        let refuse = |e| self.0.refuse(e);
        let shared = self.0.shared().map_err(refuse)?;
        let current = shared.generations.current();
        if current.table.id().0[..] != req.to_table_id[..] {
            return Err(refuse(ServiceError::StaleTable {
                got: short_hex(&req.to_table_id),
                current: current.id_hex.clone(),
            }));
        }
        let from: [u8; 32] = req.from_table_id.as_slice().try_into().map_err(|_| {
            refuse(ServiceError::NoDelta {
                from: short_hex(&req.from_table_id),
            })
        })?;
        let Some(at) = current
            .history
            .position(&blindmatch_protocol::TableId(from))
        else {
            return Err(refuse(ServiceError::NoDelta {
                from: hex::encode(from),
            }));
        };
        // Lazy, like the table download: each message is built from the
        // shared version when the transport asks for it, nothing copied first.
        let len = current.history.0[at].changed.len();
        let chunks = (0..len).step_by(DELTA_SLOTS).map(move |start| {
            let changed = &current.history.0[at].changed;
            let indices = &changed[start..(start + DELTA_SLOTS).min(len)];
            Ok(crate::wire::delta_chunk(current.table.slots(), indices))
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

/// `VoucherService`.
pub(crate) struct Vouchers(pub(crate) Arc<ServiceState>);

#[tonic::async_trait]
impl VoucherService for Vouchers {
    #[tracing::instrument(skip_all, fields(n))]
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let started = std::time::Instant::now();
        let _in_flight = InFlight::new(&self.0.metrics.in_flight);
        // The memory the admission layer reserved for this submission, before
        // its body was read: held until its results are recorded.
        let reservation = request
            .extensions()
            .get::<crate::admission::ReservationSlot>()
            .and_then(crate::admission::ReservationSlot::take);
        match self.submit_inner(request.into_inner(), reservation).await {
            Ok(accepted) => {
                self.0
                    .metrics
                    .submit_seconds
                    .observe(started.elapsed().as_secs_f64());
                Ok(Response::new(SubmitResponse { accepted }))
            }
            Err(e) => {
                self.0
                    .metrics
                    .submissions
                    .get_or_create(&crate::metrics::Kind { kind: "refused" })
                    .inc();
                Err(self.0.refuse(e))
            }
        }
    }
}

impl Vouchers {
    /// Validates, stores and returns the count to acknowledge.
    async fn submit_inner(
        &self,
        req: SubmitRequest,
        reservation: Option<crate::admission::Reservation>,
    ) -> Result<u32, ServiceError> {
        let received_at_ms = crate::store::now_ms();
        let shared = self.0.shared()?;
        let generation = shared.generation(&req.table_id)?;
        let n = req.vouchers.len();
        tracing::Span::current().record("n", n);
        if n > shared.max_batch {
            return Err(ServiceError::BatchTooLarge {
                got: n,
                max: shared.max_batch,
            });
        }
        // Decoding validates every voucher before anything is acknowledged.
        // It costs one decompression each (~3 µs, ~0.2 ms for a batch of 64),
        // done inline: a hand-off to a blocking thread cost more than that.
        let batch = Batch::decode(&generation, req.account_id, &req.vouchers)?;
        if batch.len() == 0 {
            // Nothing to store or evaluate.
            return Ok(0);
        }
        // The client's id makes a retry idempotent; without one the server
        // picks an id and a retry is a new submission.
        let (submission_id, digest) = match req.submission_id.len() {
            SUBMISSION_ID_LEN => (
                hex::encode(&req.submission_id),
                Some(batch.digest(generation.table.id())),
            ),
            0 => {
                let mut id = [0u8; SUBMISSION_ID_LEN];
                rand::Rng::fill_bytes(&mut rand::rng(), &mut id);
                (hex::encode(id), None)
            }
            len => return Err(ServiceError::BadSubmissionId(len)),
        };
        let (stored_tx, stored_rx) = oneshot::channel();
        let ingest = Ingest {
            submission: Submission {
                receipt: Receipt {
                    submission_id,
                    received_at_ms,
                    table_id: generation.id_hex.clone(),
                },
                batch,
                generation,
            },
            encoded: req.vouchers,
            digest,
            reservation,
            stored: stored_tx,
        };
        shared
            .ingest
            .send(ingest)
            .map_err(|_| ServiceError::ShuttingDown)?;
        // Acknowledge only what is durably stored.
        stored_rx
            .await
            .map_err(|_| ServiceError::ShuttingDown)?
            .map_err(|refused| match refused {
                Refused::Store(e) => ServiceError::NotStored(e),
                Refused::Conflict => {
                    ServiceError::SubmissionIdReused(hex::encode(&req.submission_id))
                }
            })?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
