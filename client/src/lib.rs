//! blindmatch client library: what an app embeds to check items against a
//! blindmatch server. It is the client core ([`blindmatch_client_core`],
//! the same crate under every language binding) over tonic: the core
//! decides what to trust and what to send; this crate talks gRPC, retries,
//! and keeps a cache on disk.
//!
//! 1. [`Client::connect`] to the server, pinned to the operator's verifying
//!    key, and fetch its [`Manifest`]: refused unless the operator signed it.
//! 2. [`Client::table`] gets the blinded table: from the cache, as a delta
//!    from the version cached before, or in full (resuming an interrupted
//!    download, checking every chunk against the signed digest). It refuses
//!    a version older than one it has seen, or a second table under a
//!    version number it has seen (one table for everyone), and validates
//!    the table into a [`Table`].
//!    Later, [`Client::refresh`] brings a table the app holds up to the
//!    current version with a delta, validating only the changed slots.
//! 3. [`Client::check`] makes one voucher per item and submits them in
//!    batches. The server's answer is an acknowledgement that is the same
//!    whether anything matched or not: the client cannot learn the result.
//!
//! In threshold mode (protocol version 2, SPEC Section 14; the manifest's
//! [`Manifest::threshold`] says so) step 3 is [`Client::check_account`]:
//! each upload is made into a version-2 voucher under the account's secret
//! ([`account::create`], [`account::read`]), and the server learns nothing
//! of the account's matches until it holds t of them.
//!
//! ```no_run
//! # async fn example() -> Result<(), blindmatch_client::ClientError> {
//! use blindmatch_client::{Client, TableCache, core::operator_key_from_hex};
//! use blindmatch_protocol::{Item, ItemType};
//!
//! // The operator publishes this key (`blindmatch-server keygen --signing`).
//! let operator = operator_key_from_hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")?;
//! let mut client = Client::connect("http://127.0.0.1:50051", operator).await?;
//! let manifest = client.manifest().await?;
//! let table = client.table(&manifest, &TableCache::new("/var/cache/blindmatch")).await?;
//! let item = Item::parse(ItemType::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")?;
//! let acknowledged = client.check(&manifest, &table, &[(item, b"upload 42".to_vec())]).await?;
//! assert_eq!(acknowledged, 1);
//! # Ok(()) }
//! ```

pub mod account;
mod cache;
pub mod cli;

// Compile the README's Rust examples as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

use blindmatch_client_core::{
    Accepted, DeltaDownload, Submission, TableDownload, VerifiedManifest,
};
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{
    DownloadDeltaRequest, DownloadTableRequest, GetManifestRequest, SubmitRequest,
};
use blindmatch_protocol::audit::{OrgName, Quorum};
use blindmatch_protocol::manifest::{OperatorVerifyingKey, SignedManifest, ThresholdParams};
use blindmatch_protocol::threshold::AccountSecret;
use blindmatch_protocol::tlog::LogPolicy;
use blindmatch_protocol::{BlindedTable, Item, TableDelta, TableHeader, TableId};
use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

pub use blindmatch_client_core as core;
pub use blindmatch_client_core::{SubmissionId, Table, Upload};
pub use blindmatch_protocol as protocol;
pub use cache::TableCache;

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server address is malformed or the connection failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The address given.
        url: String,
        /// Why.
        source: tonic::transport::Error,
    },
    /// The server answered a call with an error status.
    #[error("{call}: server said {}: {}", .status.code(), .status.message())]
    Status {
        /// The RPC.
        call: &'static str,
        /// The status.
        status: tonic::Status,
    },
    /// The client core refused what the server sent or what the app asked:
    /// a manifest the operator did not sign, a rollback, an equivocation, a
    /// table or chunk that is not the signed one, a submission of the wrong
    /// mode, an item that cannot be used. The same refusal, with the same
    /// words, as in every language binding ([`core::ErrorKind`]).
    #[error(transparent)]
    Refused(#[from] blindmatch_client_core::Error),
    /// The `GetManifest` response is inconsistent: a field that repeats
    /// the signed statement differs from it, or the batch limit is zero.
    #[error("manifest is inconsistent: {0}")]
    BadManifest(&'static str),
    /// The connection settings contradict each other (TLS options for an
    /// `http://` URL).
    #[error("{0}")]
    Config(String),
    /// A cache file could not be read or written.
    #[error("table cache {path}: {source}")]
    Cache {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An account secret file could not be made or read.
    #[error("account file {path}: {reason}")]
    Account {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<blindmatch_protocol::ItemError> for ClientError {
    fn from(e: blindmatch_protocol::ItemError) -> Self {
        ClientError::Refused(e.into())
    }
}

impl ClientError {
    /// The core's refusal, if this is one.
    pub fn refusal(&self) -> Option<&blindmatch_client_core::Error> {
        match self {
            ClientError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

fn status(call: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
    move |status| ClientError::Status { call, status }
}

/// The server's current table, as the operator's signed manifest describes
/// it (verified), and the server's batch limit.
#[derive(Clone, Debug)]
pub struct Manifest {
    verified: VerifiedManifest,
    max_batch: u32,
}

/// The core's retry rule ([`blindmatch_client_core::Backoff`]) over tonic
/// statuses.
struct Backoff(blindmatch_client_core::Backoff);

impl Backoff {
    fn new(attempts: u32, first_delay: Duration) -> Self {
        Backoff(blindmatch_client_core::Backoff::new(attempts, first_delay))
    }

    fn retry(&mut self, error: &ClientError) -> Option<Duration> {
        let ClientError::Status { status, .. } = error else {
            return None;
        };
        let code = u32::try_from(i32::from(status.code())).unwrap_or(u32::MAX);
        let pushback = status
            .metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|v| v.to_str().ok());
        self.0.retry(code.into(), pushback, &mut rand::rng())
    }
}

impl Manifest {
    /// Checks a manifest as received: the signature over its statement
    /// verifies under the pinned operator key ([`VerifiedManifest::verify`]),
    /// every other field agrees with the statement, and the batch limit is
    /// not zero.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with [`core::Error::BadSignature`] for a
    /// signature that does not verify, or [`core::Error::Invalid`] for a bad
    /// statement; [`ClientError::BadManifest`] for fields that disagree.
    pub fn verify(
        m: &blindmatch_proto::v1::Manifest,
        operator: &OperatorVerifyingKey,
    ) -> Result<Self, ClientError> {
        let verified = VerifiedManifest::verify(&m.statement, &m.signature, operator)?;
        let s = verified.statement();
        let header = s.header;
        if u32::from(header.k) != m.k
            || header.n_slots != m.n_slots
            || header.seed[..] != m.seed[..]
            || header.public_key.to_bytes()[..] != m.public_key[..]
            || header.encode()[..] != m.header[..]
            || header.slots_len() != m.table_len
            || s.table_id.0[..] != m.table_id[..]
            || s.digest[..] != m.digest[..]
            || s.version != m.version
            || s.created != m.created
            || s.chunk_slots != m.chunk_slots
            || m.protocol_version != u32::from(s.protocol_version())
            || s.threshold.map_or(0, |p| u32::from(p.threshold())) != m.threshold
            || s.threshold.map_or(0, |p| u32::from(p.synthetic_bound())) != m.synthetic_bound
            || s.threshold.as_ref().map_or(&[][..], |p| p.weights()) != &m.placement_weights[..]
        {
            return Err(ClientError::BadManifest(
                "fields differ from the signed statement",
            ));
        }
        if m.max_batch == 0 {
            return Err(ClientError::BadManifest("max_batch is zero"));
        }
        Ok(Manifest {
            verified,
            max_batch: m.max_batch,
        })
    }

    /// The verified statement: what the client core works with.
    pub fn verified(&self) -> &VerifiedManifest {
        &self.verified
    }

    /// The pinned organisations whose co-signatures the quorum counted
    /// (empty for a client without one, [`Client::set_quorum`]).
    pub fn cosigners(&self) -> &[(OperatorVerifyingKey, OrgName)] {
        self.verified.cosigners()
    }

    /// The statement and signature, as verified.
    pub fn signed(&self) -> &SignedManifest {
        self.verified.signed()
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.verified.version()
    }

    /// The table id: what vouchers are bound to.
    pub fn table_id(&self) -> &TableId {
        self.verified.table_id()
    }

    /// The table's public parameters (k, seed, slot count, public key).
    pub fn header(&self) -> &TableHeader {
        self.verified.header()
    }

    /// Threshold mode's signed parameters (t, s, placement weights), for a
    /// protocol version 2 table; `None` in version 1.
    pub fn threshold(&self) -> Option<&ThresholdParams> {
        self.verified.threshold()
    }

    /// Most vouchers per submission (the server's setting, not signed).
    pub fn max_batch(&self) -> u32 {
        self.max_batch
    }

    /// Refuses a manifest built more than `max_age` before `now`.
    ///
    /// # Errors
    /// [`ClientError::Refused`] with [`core::Error::TooOld`].
    pub fn check_age(
        &self,
        max_age: Duration,
        now: std::time::SystemTime,
    ) -> Result<(), ClientError> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self.verified.check_age(max_age.as_secs(), now)?)
    }
}

/// How [`Client::fetch_table`] got a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// From the cache: nothing transferred.
    Cached,
    /// As a delta from the cached version `from`.
    Delta {
        /// The version it was applied to (0 if the cache has no record of it).
        from: u64,
        /// Changed slots received.
        slots: usize,
        /// Bytes of the delta messages (protobuf-encoded).
        bytes: u64,
    },
    /// In full (or the rest of a partial download).
    Full {
        /// Bytes of the chunk messages (protobuf-encoded), proofs included.
        bytes: u64,
        /// Why no delta was used, if one was tried.
        delta_refused: Option<String>,
    },
}

/// A connection to a blindmatch server.
#[derive(Clone)]
pub struct Client {
    tables: TableServiceClient<Channel>,
    vouchers: VoucherServiceClient<Channel>,
    operator: OperatorVerifyingKey,
    attempts: u32,
    retry_delay: Duration,
    max_age: Option<Duration>,
    quorum: Option<Quorum>,
    /// The transparency log policy every manifest must pass (SPEC 16.6).
    log: Option<LogPolicy>,
    /// The size of the newest log checkpoint this client's history holds:
    /// what `GetManifest` asks a consistency proof from. Shared by clones.
    log_size: Arc<AtomicU64>,
}

/// TLS settings for [`Client::connect_with`]. An `https://` URL always uses
/// TLS (rustls); by default it trusts the Mozilla root certificates.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Trust only this CA certificate (PEM), for a server with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Present this certificate chain and private key (PEM) to a server that
    /// requires client certificates (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Expect this name in the server's certificate instead of the URL's host.
    pub domain: Option<String>,
}

/// What the cache's history accepted of the manifest offered now.
struct Checked {
    accepted: Accepted,
    /// The newest manifest verified before this one.
    previous: Option<VerifiedManifest>,
}

impl Client {
    /// Connects to `url`: `https://host:port` over TLS with the Mozilla root
    /// certificates, or `http://127.0.0.1:50051` in plaintext (for a server
    /// run with `--plaintext`). Only manifests signed by `operator` are
    /// accepted.
    ///
    /// # Errors
    /// [`ClientError::Connect`].
    pub async fn connect(url: &str, operator: OperatorVerifyingKey) -> Result<Self, ClientError> {
        Self::connect_with(url, operator, TlsOptions::default()).await
    }

    /// Connects to `url` with the given TLS settings.
    ///
    /// # Errors
    /// [`ClientError::Connect`] (including a failed TLS handshake), or
    /// [`ClientError::Config`] for TLS settings with an `http://` URL.
    pub async fn connect_with(
        url: &str,
        operator: OperatorVerifyingKey,
        tls: TlsOptions,
    ) -> Result<Self, ClientError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let connect_err = |source| ClientError::Connect {
            url: url.to_string(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(url.to_string()).map_err(connect_err)?;
        if url.starts_with("https://") {
            let mut config = match tls.ca_pem {
                Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
                None => ClientTlsConfig::new().with_webpki_roots(),
            };
            if let Some((cert, key)) = tls.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            if let Some(domain) = tls.domain {
                config = config.domain_name(domain);
            }
            endpoint = endpoint.tls_config(config).map_err(connect_err)?;
        } else if tls.ca_pem.is_some() || tls.identity.is_some() || tls.domain.is_some() {
            return Err(ClientError::Config(format!(
                "TLS settings given for {url}: use an https:// URL"
            )));
        }
        let channel = endpoint.connect().await.map_err(connect_err)?;
        Ok(Self::from_channel(channel, operator))
    }

    /// A client over an existing channel, pinned to `operator`.
    pub fn from_channel(channel: Channel, operator: OperatorVerifyingKey) -> Self {
        // Table chunks are 64 KiB and batches of vouchers ~1.4 KB each; the
        // default 4 MiB limit covers both, the explicit one documents it.
        const MAX_MESSAGE: usize = 16 << 20;
        Client {
            tables: TableServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE),
            vouchers: VoucherServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
            operator,
            attempts: 5,
            retry_delay: Duration::from_millis(200),
            max_age: None,
            quorum: None,
            log: None,
            log_size: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Fetches the manifest and verifies the operator's signature on it.
    ///
    /// # Errors
    /// [`ClientError::Status`]; [`ClientError::Refused`] for a signature
    /// that does not verify, a bad statement or (with
    /// [`Client::set_max_age`]) one too old or (with [`Client::set_quorum`])
    /// one too few pinned organisations co-signed
    /// ([`core::Error::BelowQuorum`]); [`ClientError::BadManifest`] if its
    /// fields disagree with the statement.
    pub async fn manifest(&mut self) -> Result<Manifest, ClientError> {
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        let m = loop {
            match self
                .tables
                .get_manifest(GetManifestRequest {
                    log_size: self.log_size.load(Ordering::Relaxed),
                })
                .await
                .map_err(status("GetManifest"))
            {
                Ok(m) => break m.into_inner(),
                Err(e) => match backoff.retry(&e) {
                    // UNAVAILABLE right after a start: the table is loading.
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
            }
        };
        let mut manifest = Manifest::verify(&m, &self.operator)?;
        if let Some(max_age) = self.max_age {
            manifest.check_age(max_age, std::time::SystemTime::now())?;
        }
        if let Some(quorum) = &self.quorum {
            let cosignatures = core::cosignatures(
                m.cosignatures
                    .iter()
                    .map(|c| (&c.org_key[..], c.name.as_str(), &c.signature[..])),
            );
            manifest.verified = manifest.verified.require_quorum(quorum, &cosignatures)?;
        }
        if let Some(policy) = &self.log {
            let cosignatures = core::cosignatures(
                m.cosignatures
                    .iter()
                    .map(|c| (&c.org_key[..], c.name.as_str(), &c.signature[..])),
            );
            manifest.verified = manifest.verified.require_logged(
                policy,
                m.log_proof.as_bytes(),
                &m.log_consistency,
                &cosignatures,
            )?;
        }
        Ok(manifest)
    }

    /// Requires every manifest to be in the operator's transparency log
    /// (SPEC Section 16.6) under a checkpoint `policy` accepts (signed by
    /// its log, cosigned by its quorum of witnesses), and every checkpoint
    /// to extend the newest one accepted before, which `cache`'s history
    /// holds; `None`, the default, does not check a log (but a history that
    /// accepted a logged version keeps requiring one).
    ///
    /// # Errors
    /// [`ClientError::Refused`] if the cache's history is damaged.
    pub fn set_log_policy(
        &mut self,
        policy: Option<LogPolicy>,
        cache: &TableCache,
    ) -> Result<(), ClientError> {
        let history = cache.history(&self.operator)?;
        self.log_size.store(history.log_size(), Ordering::Relaxed);
        self.log = policy;
        Ok(())
    }

    /// Requires a quorum of co-signatures by the list organisations it pins
    /// on every manifest (SPEC Section 15.6); `None`, the default, ignores
    /// co-signatures.
    pub fn set_quorum(&mut self, quorum: Option<Quorum>) {
        self.quorum = quorum;
    }

    /// Refuses manifests built more than `max_age` ago (`None`, the
    /// default: no bound). A server can keep serving an old version (never
    /// one older than the client has seen); this bounds how old. Set it
    /// above the operator's update interval.
    pub fn set_max_age(&mut self, max_age: Option<Duration>) {
        self.max_age = max_age;
    }

    /// The table of `manifest`, validated slot by slot: see
    /// [`Client::fetch_table`].
    ///
    /// # Errors
    /// As [`Client::fetch_table`], or [`ClientError::Refused`] for a table
    /// with an invalid slot.
    pub async fn table(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<Table, ClientError> {
        let (table, _) = self.fetch_table(manifest, cache).await?;
        Ok(blindmatch_client_core::validate_table(
            table,
            &manifest.verified,
        )?)
    }

    /// The table of `manifest` (verified), and how it was obtained:
    ///
    /// 1. The cache's record of the newest manifest verified before (a
    ///    [`History`](blindmatch_client_core::History)) is checked first: an older version is refused
    ///    ([`core::Error::Rollback`]), and so is another statement under a
    ///    version seen, or a table seen under other terms
    ///    ([`core::Error::Equivocation`]).
    /// 2. A cached copy of this table is used as is.
    /// 3. Otherwise, if the cache holds the previous version with the same
    ///    header, only the changed slots are fetched and applied; the result
    ///    must hash to the manifest's digest and table id.
    /// 4. Otherwise, or if the server has no such delta or the delta is
    ///    refused, the table is downloaded in full, resuming a partial
    ///    download, each chunk checked against the digest by its Merkle
    ///    proof as it arrives.
    ///
    /// The verified table and manifest are then cached, and the previous
    /// version's table removed.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a rollback, an equivocation, or a chunk
    /// or table that does not verify (a bad chunk is never written; a
    /// complete download that does not verify is removed);
    /// [`ClientError::Status`] or [`ClientError::Cache`].
    pub async fn fetch_table(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(BlindedTable, Fetched), ClientError> {
        let checked = self.check_history(manifest, cache)?;
        if let Some(table) = cache.load(manifest.table_id())? {
            self.remember(cache, checked)?;
            return Ok((table, Fetched::Cached));
        }
        let mut delta_refused = None;
        if let Some(p) = checked
            .previous
            .as_ref()
            .filter(|p| p.header() == manifest.header())
            && let Some(base) = cache.load(p.table_id())?
        {
            let from = p.version();
            match self.delta_table(&base, manifest).await {
                Ok((table, slots, bytes)) => {
                    cache.store(&table)?;
                    self.remember(cache, checked)?;
                    return Ok((table, Fetched::Delta { from, slots, bytes }));
                }
                Err(e) => delta_refused = Some(e.to_string()),
            }
        }
        self.full(manifest, cache, checked, delta_refused).await
    }

    /// Downloads the table in full (or the rest of it), and records the
    /// manifest as the newest.
    async fn full(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
        checked: Checked,
        delta_refused: Option<String>,
    ) -> Result<(BlindedTable, Fetched), ClientError> {
        let (table, bytes) = self.download(manifest, cache).await?;
        self.remember(cache, checked)?;
        Ok((
            table,
            Fetched::Full {
                bytes,
                delta_refused,
            },
        ))
    }

    /// Brings a table the app holds up to `manifest`'s version: as
    /// [`Client::fetch_table`], but the delta is applied to `current` in
    /// memory and only the changed slots are validated (the rest were when
    /// `current` was made), instead of all of them: for a daily update of a
    /// million-entry table, milliseconds instead of seconds. Falls back to
    /// the cached copy, or a full download, when no delta applies.
    ///
    /// # Errors
    /// As [`Client::table`].
    pub async fn refresh(
        &mut self,
        current: &Table,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(Table, Fetched), ClientError> {
        let checked = self.check_history(manifest, cache)?;
        if current.id() == manifest.table_id() {
            return Ok((current.clone(), Fetched::Cached));
        }
        let mut delta_refused = None;
        if current.client_table().table().header() == manifest.header() {
            match self.delta_download(current.id(), manifest).await {
                Ok((delta, bytes)) => {
                    let slots = delta.slots();
                    match delta.finish(current) {
                        Ok(table) => {
                            let from = checked
                                .previous
                                .as_ref()
                                .filter(|p| p.table_id() == current.id())
                                .map_or(0, VerifiedManifest::version);
                            cache.store(table.client_table().table())?;
                            self.remember(cache, checked)?;
                            return Ok((table, Fetched::Delta { from, slots, bytes }));
                        }
                        Err(e) => delta_refused = Some(e.to_string()),
                    }
                }
                Err(e) => delta_refused = Some(e.to_string()),
            }
        }
        // No delta from the table held: the cache's copy, or a full download
        // (not another delta attempt from the cache's older copy).
        let (table, fetched) = match cache.load(manifest.table_id())? {
            Some(table) => {
                self.remember(cache, checked)?;
                (table, Fetched::Cached)
            }
            None => self.full(manifest, cache, checked, delta_refused).await?,
        };
        let table = blindmatch_client_core::validate_table(table, &manifest.verified)?;
        Ok((table, fetched))
    }

    /// Refuses a manifest older than the newest verified before under this
    /// operator key, or another table under a version seen (the cache's
    /// [`History`](blindmatch_client_core::History)); returns what [`Client::remember`] records once the
    /// table is in hand.
    fn check_history(
        &self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<Checked, ClientError> {
        // A manifest that did not come through `Client::manifest` with this
        // client's checks (`Manifest::verify` is public) is refused here.
        if self.log.is_some() && manifest.verified.log_checkpoint().is_none() {
            return Err(ClientError::Refused(blindmatch_client_core::Error::Log(
                blindmatch_protocol::tlog::LogError::Missing(
                    "this client checks the log; get the manifest from Client::manifest",
                ),
            )));
        }
        if self.quorum.is_some() && manifest.cosigners().is_empty() {
            return Err(ClientError::BadManifest(
                "this client requires an organisation quorum: get the manifest from Client::manifest",
            ));
        }
        let history = cache.history(&self.operator)?;
        let previous = history.newest();
        let accepted = history.check(&manifest.verified)?;
        Ok(Checked { accepted, previous })
    }

    /// Records the accepted manifest as the newest in the cache and removes
    /// the previous version's table: a client keeps one version.
    fn remember(&self, cache: &TableCache, checked: Checked) -> Result<(), ClientError> {
        let Checked { accepted, previous } = checked;
        let current = *accepted.manifest().table_id();
        // The cache's record as it is now (another process may have moved
        // it on since the check): `record` leaves it alone if so.
        let mut history = cache.history(&self.operator)?;
        history.record(accepted);
        cache.save_history(&history)?;
        self.log_size.store(history.log_size(), Ordering::Relaxed);
        if let Some(p) = previous.filter(|p| *p.table_id() != current) {
            cache.remove(p.table_id())?;
        }
        Ok(())
    }

    /// Fetches and applies the delta from `base` (the cache's unvalidated
    /// copy) to `manifest`'s table.
    async fn delta_table(
        &mut self,
        base: &BlindedTable,
        manifest: &Manifest,
    ) -> Result<(BlindedTable, usize, u64), ClientError> {
        let (delta, bytes) = self.delta_download(base.id(), manifest).await?;
        let delta: TableDelta = delta.into_delta();
        let table = delta
            .apply(base, manifest.verified.statement())
            .map_err(|source| blindmatch_client_core::Error::Invalid {
                what: "delta",
                source,
            })?;
        Ok((table, delta.indices.len(), bytes))
    }

    /// Receives the delta from the table `base` to `manifest`'s table.
    async fn delta_download(
        &mut self,
        base: &TableId,
        manifest: &Manifest,
    ) -> Result<(DeltaDownload, u64), ClientError> {
        let mut stream = self
            .tables
            .download_delta(DownloadDeltaRequest {
                from_table_id: base.0.to_vec(),
                to_table_id: manifest.table_id().0.to_vec(),
            })
            .await
            .map_err(status("DownloadDelta"))?
            .into_inner();
        let mut delta = DeltaDownload::for_base(*base, &manifest.verified);
        let mut bytes = 0u64;
        while let Some(chunk) = stream.message().await.map_err(status("DownloadDelta"))? {
            bytes += chunk.encoded_len() as u64;
            delta.push(&chunk.indices, &chunk.slots)?;
        }
        Ok((delta, bytes))
    }

    /// Downloads (the rest of) the table, checking each chunk's proof.
    async fn download(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(BlindedTable, u64), ClientError> {
        let mut partial = cache.open_partial(manifest.verified())?;
        let mut download = TableDownload::resume(&manifest.verified, partial.take_existing())?;
        let mut bytes = 0u64;
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        while !download.is_complete() {
            // A transient failure, at the start or midway, resumes from the
            // last verified chunk.
            let streamed = self
                .download_from(manifest, &mut download, &mut partial, &mut bytes)
                .await;
            match streamed {
                Ok(()) => break,
                Err(e) => match backoff.retry(&e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => {
                        partial.sync()?;
                        return Err(e);
                    }
                },
            }
        }
        partial.sync()?;
        match download.into_table() {
            Ok(table) => {
                cache.store(&table)?;
                partial.remove()?;
                Ok((table, bytes))
            }
            Err(e) => {
                if let blindmatch_client_core::Error::Invalid {
                    source:
                        blindmatch_protocol::Error::TableIdMismatch
                        | blindmatch_protocol::Error::DigestMismatch,
                    ..
                } = e
                {
                    // Complete but wrong (a damaged resumed part): start over.
                    partial.remove()?;
                }
                Err(e.into())
            }
        }
    }

    /// One `DownloadTable` call from the download's offset: every chunk
    /// verified before it is kept.
    async fn download_from(
        &mut self,
        manifest: &Manifest,
        download: &mut TableDownload,
        partial: &mut cache::Partial,
        bytes: &mut u64,
    ) -> Result<(), ClientError> {
        let mut stream = self
            .tables
            .download_table(DownloadTableRequest {
                table_id: manifest.table_id().0.to_vec(),
                offset: download.offset(),
            })
            .await
            .map_err(status("DownloadTable"))?
            .into_inner();
        while let Some(chunk) = stream.message().await.map_err(status("DownloadTable"))? {
            *bytes += chunk.encoded_len() as u64;
            if let Err(e) = download.push(chunk.offset, &chunk.slots, &chunk.proof) {
                // Only verified chunks were written: a resume starts here.
                partial.sync()?;
                return Err(e.into());
            }
            partial.append(&chunk.slots)?;
        }
        Ok(())
    }

    /// Sends `submission` (made by [`Table::submission`] or
    /// [`Table::account_submission`]); returns the acknowledged count. A
    /// failure that may be transient (UNAVAILABLE, DEADLINE_EXCEEDED,
    /// CANCELLED by the server's request timeout, a broken connection,
    /// RESOURCE_EXHAUSTED with the server's retry hint when its memory
    /// budget is full) is retried unchanged, under the submission's id, as
    /// [`Client::set_retries`] allows, so the server stores the batch once
    /// however many tries reach it.
    ///
    /// # Errors
    /// [`ClientError::Status`]: InvalidArgument for a malformed voucher,
    /// ResourceExhausted for a batch over the limit or a full server store,
    /// FailedPrecondition when the server's table changed, AlreadyExists for
    /// an id used before with other vouchers, or the last transient failure
    /// once the retries are spent.
    pub async fn submit(&mut self, submission: &Submission) -> Result<u32, ClientError> {
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        loop {
            match self.submit_once(submission).await {
                Err(e) => match backoff.retry(&e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                ok => return ok,
            }
        }
    }

    /// Sends `submission` once. Sending it again (within the server's dedup
    /// window, 24 h by default) is acknowledged alike and stored once.
    ///
    /// # Errors
    /// As [`Client::submit`], without the retries.
    pub async fn submit_once(&mut self, submission: &Submission) -> Result<u32, ClientError> {
        Ok(self
            .vouchers
            .submit(SubmitRequest {
                table_id: submission.table_id.0.to_vec(),
                vouchers: submission.vouchers.clone(),
                submission_id: submission.id.0.to_vec(),
                account_id: submission.account_id.clone(),
            })
            .await
            .map_err(status("Submit"))?
            .into_inner()
            .accepted)
    }

    /// How calls are retried ([`Client::submit`], [`Client::manifest`] and
    /// the table download): at most `attempts` tries in all (1: no retry),
    /// waiting `first_delay` before the second and twice as long before each
    /// one after (or the server's hint, if longer), plus up to a quarter at
    /// random. The default is 5 tries from 200 ms: about 3 s in all, enough
    /// for a server that has just started to load a table of a few million
    /// entries.
    pub fn set_retries(&mut self, attempts: u32, first_delay: Duration) {
        self.attempts = attempts.max(1);
        self.retry_delay = first_delay;
    }

    /// Makes a voucher for every `(item, associated data)` and submits them in
    /// batches of the server's maximum; returns how many were acknowledged.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a table in threshold mode
    /// ([`core::Error::ThresholdMode`]: use [`Client::check_account`]) or
    /// associated data over 1 KiB, or as [`Client::submit`].
    pub async fn check(
        &mut self,
        manifest: &Manifest,
        table: &Table,
        items: &[(Item, Vec<u8>)],
    ) -> Result<usize, ClientError> {
        let mut acknowledged = 0;
        for batch in items.chunks(manifest.max_batch() as usize) {
            let submission = table.submission(batch, &mut rand::rng())?;
            acknowledged += self.submit(&submission).await? as usize;
        }
        Ok(acknowledged)
    }

    /// Threshold mode's [`Client::check`]: one version-2 voucher per upload
    /// under `account`'s keys for the manifest's t and s, real or (at the
    /// account's secret rate) synthetic, submitted in batches bound to the
    /// account id. The acknowledgement is the same whatever they hold.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a version-1 table
    /// ([`core::Error::NotThresholdMode`]) or associated data over 1 KiB, or
    /// as [`Client::submit`].
    pub async fn check_account(
        &mut self,
        manifest: &Manifest,
        table: &Table,
        account: &AccountSecret,
        uploads: &[Upload],
    ) -> Result<usize, ClientError> {
        let mut acknowledged = 0;
        for batch in uploads.chunks(manifest.max_batch() as usize) {
            let submission = table.account_submission(account, batch, &mut rand::rng())?;
            acknowledged += self.submit(&submission).await? as usize;
        }
        Ok(acknowledged)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use blindmatch_protocol::manifest::{Manifest as Statement, OperatorSigningKey};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn manifest_built_at(created: u64) -> Manifest {
        let key = blindmatch_protocol::ServerKey::generate(&mut rand::rng());
        let header = TableHeader {
            k: 3,
            seed: [1; 32],
            n_slots: 100,
            public_key: *key.public_key(),
        };
        let operator = OperatorSigningKey::generate(&mut rand::rng());
        let signed = Statement {
            version: 4,
            created,
            table_id: TableId([2; 32]),
            digest: [3; 32],
            chunk_slots: blindmatch_protocol::merkle::CHUNK_SLOTS,
            header,
            threshold: None,
        }
        .sign(&operator);
        Manifest {
            verified: VerifiedManifest::verify(
                &signed.manifest.encode(),
                &signed.signature,
                &operator.verifying_key(),
            )
            .unwrap(),
            max_batch: 64,
        }
    }

    #[test]
    fn a_manifest_older_than_the_bound_is_refused() {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let day = Duration::from_secs(86_400);
        assert!(manifest_built_at(secs - 3600).check_age(day, now).is_ok());
        // A clock a little behind the builder's is not an error.
        assert!(manifest_built_at(secs + 60).check_age(day, now).is_ok());
        let err = manifest_built_at(secs - 3 * 86_400)
            .check_age(day, now)
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Refused(blindmatch_client_core::Error::TooOld { version: 4, age_seconds, max_seconds: 86_400 }) if age_seconds >= 3 * 86_400),
            "{err}"
        );
    }
}
