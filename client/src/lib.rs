//! blindmatch client library: what an app embeds to check items against a
//! blindmatch server.
//!
//! 1. [`Client::connect`] to the server, pinned to the operator's verifying
//!    key, and fetch its [`Manifest`]: refused unless the operator signed it.
//! 2. [`Client::table`] gets the blinded table: from the cache, as a delta
//!    from the version cached before, or in full (resuming an interrupted
//!    download, checking every chunk against the signed digest). It refuses
//!    a version older than one it has seen, or a second table under a
//!    version number it has seen (one table for everyone), and validates
//!    the table into a [`ClientTable`].
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
//! use blindmatch_client::{Client, TableCache, parse_operator_key};
//! use blindmatch_protocol::{Item, ItemType};
//!
//! // The operator publishes this key (`blindmatch-server keygen --signing`).
//! let operator = parse_operator_key("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")?;
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

// Compile the README's Rust examples as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

use blindmatch_client_core::{DeltaDownload, History, VerifiedManifest};
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{
    DownloadDeltaRequest, DownloadTableRequest, GetManifestRequest, SubmitRequest,
};
use blindmatch_protocol::manifest::{OperatorVerifyingKey, SignedManifest, ThresholdParams};
use blindmatch_protocol::threshold::AccountSecret;
use blindmatch_protocol::{
    BlindedTable, ClientTable, Item, TableAssembler, TableDelta, TableHeader, TableId,
};
use prost::Message;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

pub use blindmatch_client_core as core;
pub use blindmatch_client_core::{SubmissionId, Upload};
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
    /// The manifest or a table chunk is not valid.
    #[error("{what}: {source}")]
    Protocol {
        /// What was being decoded.
        what: &'static str,
        /// The protocol error.
        source: blindmatch_protocol::Error,
    },
    /// The manifest fields disagree with its signed statement.
    #[error("manifest is inconsistent: {0}")]
    BadManifest(&'static str),
    /// The server offered a version older than one this client has verified
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
    /// The server's current manifest is older than the bound set with
    /// [`Client::set_max_age`]: the list may have stopped being updated.
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
    /// The server offered a different table under a version number this
    /// client has seen: two tables signed as the same version, which is how
    /// one user would be singled out. Both manifests are evidence.
    #[error(
        "the server offers table {offered} as version {version}, which was table {seen} before: two tables under one version (equivocation); refused"
    )]
    Equivocation {
        /// The version number.
        version: u64,
        /// The table id offered now (hex).
        offered: String,
        /// The table id seen before (hex).
        seen: String,
    },
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
    /// An item or associated data could not be made into a voucher.
    #[error(transparent)]
    Voucher(#[from] blindmatch_protocol::Error),
    /// An item could not be parsed.
    #[error(transparent)]
    Item(#[from] blindmatch_protocol::ItemError),
    /// An account secret file could not be made or read.
    #[error("account file {path}: {reason}")]
    Account {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<blindmatch_client_core::Error> for ClientError {
    fn from(e: blindmatch_client_core::Error) -> Self {
        use blindmatch_client_core::Error as E;
        match e {
            E::BadSignature => ClientError::Protocol {
                what: "manifest",
                source: blindmatch_protocol::Error::BadSignature,
            },
            E::Rollback { offered, seen } => ClientError::Rollback { offered, seen },
            E::Equivocation {
                version,
                offered,
                seen,
            } => ClientError::Equivocation {
                version,
                offered,
                seen,
            },
            E::TooOld {
                version,
                age_seconds,
                max_seconds,
            } => ClientError::TooOld {
                version,
                age_seconds,
                max_seconds,
            },
            E::Invalid { what, source } => ClientError::Protocol { what, source },
            E::Malformed(what) => ClientError::BadManifest(what),
            E::History(source) => ClientError::Protocol {
                what: "manifest history",
                source,
            },
            E::Input(e) => ClientError::Voucher(e),
            // The core's enum is non-exhaustive: a new refusal is still one.
            e => ClientError::Config(e.to_string()),
        }
    }
}

fn status(call: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
    move |status| ClientError::Status { call, status }
}

/// The server's current table, as the operator's signed manifest describes
/// it (verified).
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Decoded header (k, seed, slot count, public key).
    pub header: TableHeader,
    /// Table id: what vouchers are bound to.
    pub table_id: TableId,
    /// Version number.
    pub version: u64,
    /// The signed statement and its signature, as verified.
    pub signed: SignedManifest,
    /// Most vouchers per submission (the server's setting, not signed).
    pub max_batch: u32,
    /// Threshold mode's signed parameters (t, s, placement weights), for a
    /// protocol version 2 table; `None` in version 1.
    pub threshold: Option<ThresholdParams>,
}

/// Parses an operator verifying key: 64 hex digits, or a file holding them
/// (as `blindmatch-server keygen --signing` writes it).
///
/// # Errors
/// [`ClientError::Config`] naming what is wrong.
pub fn parse_operator_key(value: &str) -> Result<OperatorVerifyingKey, ClientError> {
    let text = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        value.to_string()
    } else {
        std::fs::read_to_string(value).map_err(|e| {
            ClientError::Config(format!(
                "operator key {value}: neither 64 hex digits nor a readable file ({e})"
            ))
        })?
    };
    let bytes = hex::decode(text.trim())
        .map_err(|e| ClientError::Config(format!("operator key {value}: not hex ({e})")))?;
    OperatorVerifyingKey::from_bytes(&bytes)
        .map_err(|e| ClientError::Config(format!("operator key {value}: {e}")))
}

/// The manifest as JSON, for comparing what two clients were served
/// (`blindmatch manifest --json`, `blindmatch-server manifest --json`): two
/// clients that print the same `statement` hold the same table.
pub fn manifest_json(signed: &SignedManifest) -> serde_json::Value {
    let m = &signed.manifest;
    let mut j = serde_json::json!({
        "protocol_version": m.protocol_version(),
        "version": m.version,
        "created": m.created,
        "table_id": hex::encode(m.table_id.0),
        "digest": hex::encode(m.digest),
        "n_slots": m.header.n_slots,
        "k": m.header.k,
        "seed": hex::encode(m.header.seed),
        "public_key": hex::encode(m.header.public_key.to_bytes()),
        "chunk_slots": m.chunk_slots,
        "statement": hex::encode(m.encode()),
        "signature": hex::encode(signed.signature),
    });
    if let Some(p) = &m.threshold {
        j["threshold"] = p.threshold().into();
        j["synthetic_bound"] = p.synthetic_bound().into();
        j["placement_weights"] = p.weights().into();
    }
    j
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
    /// verifies under the pinned operator key, every other field agrees
    /// with the statement, and the batch limit is not zero.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] (with [`blindmatch_protocol::Error::BadSignature`]
    /// for a signature that does not verify), or [`ClientError::BadManifest`].
    pub fn verify(
        m: &blindmatch_proto::v1::Manifest,
        operator: &OperatorVerifyingKey,
    ) -> Result<Self, ClientError> {
        let verified = VerifiedManifest::verify(&m.statement, &m.signature, operator)?;
        let signed = *verified.signed();
        let s = &signed.manifest;
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
            header,
            table_id: s.table_id,
            version: s.version,
            signed,
            max_batch: m.max_batch,
            threshold: s.threshold,
        })
    }
}

impl Manifest {
    /// Refuses a manifest built more than `max_age` before `now`.
    ///
    /// # Errors
    /// [`ClientError::TooOld`].
    pub fn check_age(
        &self,
        max_age: Duration,
        now: std::time::SystemTime,
    ) -> Result<(), ClientError> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        VerifiedManifest::from_signed(self.signed).check_age(max_age.as_secs(), now)?;
        Ok(())
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
        }
    }

    /// Fetches the manifest and verifies the operator's signature on it.
    ///
    /// # Errors
    /// [`ClientError::Status`]; [`ClientError::Protocol`] for a signature
    /// that does not verify or a bad statement; [`ClientError::BadManifest`]
    /// if its fields disagree with the statement.
    pub async fn manifest(&mut self) -> Result<Manifest, ClientError> {
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        let m = loop {
            match self
                .tables
                .get_manifest(GetManifestRequest {})
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
        let manifest = Manifest::verify(&m, &self.operator)?;
        if let Some(max_age) = self.max_age {
            manifest.check_age(max_age, std::time::SystemTime::now())?;
        }
        Ok(manifest)
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
    /// As [`Client::fetch_table`], or [`ClientError::Protocol`] for a table
    /// with an invalid slot.
    pub async fn table(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<ClientTable, ClientError> {
        let (table, _) = self.fetch_table(manifest, cache).await?;
        ClientTable::new(table).map_err(|source| ClientError::Protocol {
            what: "table",
            source,
        })
    }

    /// The table of `manifest` (verified), and how it was obtained:
    ///
    /// 1. The cache's record of the newest manifest verified before is
    ///    checked first: an older version is refused
    ///    ([`ClientError::Rollback`]), and so is another table under a
    ///    version seen ([`ClientError::Equivocation`]).
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
    /// [`ClientError::Rollback`], [`ClientError::Equivocation`],
    /// [`ClientError::Protocol`] for a chunk or table that does not verify
    /// (a bad chunk is never written; a complete download that does not
    /// verify is removed), [`ClientError::Status`] or [`ClientError::Cache`].
    pub async fn fetch_table(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(BlindedTable, Fetched), ClientError> {
        let previous = self.check_history(manifest, cache)?;
        if let Some(table) = self.cached(manifest, cache, previous.as_ref())? {
            return Ok((table, Fetched::Cached));
        }
        let mut delta_refused = None;
        if let Some(p) = previous
            .as_ref()
            .filter(|p| p.manifest.header == manifest.header)
            && let Some(base) = cache.load(&p.manifest.table_id)?
        {
            match self.delta_table(&base, manifest).await {
                Ok((table, slots, bytes)) => {
                    cache.store(&table)?;
                    cache.remember(&self.operator, &manifest.signed, Some(p))?;
                    let fetched = Fetched::Delta {
                        from: p.manifest.version,
                        slots,
                        bytes,
                    };
                    return Ok((table, fetched));
                }
                Err(e) => delta_refused = Some(e.to_string()),
            }
        }
        self.full(manifest, cache, previous.as_ref(), delta_refused)
            .await
    }

    /// The cached copy of `manifest`'s table, if there is a valid one (and
    /// the manifest is recorded as the newest).
    fn cached(
        &self,
        manifest: &Manifest,
        cache: &TableCache,
        previous: Option<&SignedManifest>,
    ) -> Result<Option<BlindedTable>, ClientError> {
        let table = cache.load(&manifest.table_id)?;
        if table.is_some() {
            cache.remember(&self.operator, &manifest.signed, previous)?;
        }
        Ok(table)
    }

    /// Downloads the table in full (or the rest of it), and records the
    /// manifest as the newest.
    async fn full(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
        previous: Option<&SignedManifest>,
        delta_refused: Option<String>,
    ) -> Result<(BlindedTable, Fetched), ClientError> {
        let (table, bytes) = self.download(manifest, cache).await?;
        cache.remember(&self.operator, &manifest.signed, previous)?;
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
        current: &ClientTable,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(ClientTable, Fetched), ClientError> {
        let previous = self.check_history(manifest, cache)?;
        let held = current.table();
        if *held.id() == manifest.table_id {
            return Ok((current.clone(), Fetched::Cached));
        }
        let mut delta_refused = None;
        if *held.header() == manifest.header {
            match self.delta(held, manifest).await.and_then(|(delta, bytes)| {
                current
                    .updated(&delta, &manifest.signed.manifest)
                    .map(|t| (t, delta.indices.len(), bytes))
                    .map_err(|source| ClientError::Protocol {
                        what: "delta",
                        source,
                    })
            }) {
                Ok((table, slots, bytes)) => {
                    cache.store(table.table())?;
                    cache.remember(&self.operator, &manifest.signed, previous.as_ref())?;
                    let from = previous
                        .filter(|p| p.manifest.table_id == *held.id())
                        .map_or(0, |p| p.manifest.version);
                    return Ok((table, Fetched::Delta { from, slots, bytes }));
                }
                Err(e) => delta_refused = Some(e.to_string()),
            }
        }
        // No delta from the table held: the cache's copy, or a full download
        // (not another delta attempt from the cache's older copy).
        let (table, fetched) = match self.cached(manifest, cache, previous.as_ref())? {
            Some(table) => (table, Fetched::Cached),
            None => {
                self.full(manifest, cache, previous.as_ref(), delta_refused)
                    .await?
            }
        };
        let table = ClientTable::new(table).map_err(|source| ClientError::Protocol {
            what: "table",
            source,
        })?;
        Ok((table, fetched))
    }

    /// Refuses a manifest older than the newest verified before, or another
    /// table under a version seen; returns that newest manifest.
    fn check_history(
        &self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<Option<SignedManifest>, ClientError> {
        let previous = cache.newest_manifest(&self.operator)?;
        let mut history = History::new(self.operator);
        if let Some(p) = &previous {
            history.record(&VerifiedManifest::from_signed(*p));
        }
        history.check(&VerifiedManifest::from_signed(manifest.signed))?;
        Ok(previous)
    }

    /// Fetches and applies the delta from `base` to `manifest`'s table.
    async fn delta_table(
        &mut self,
        base: &BlindedTable,
        manifest: &Manifest,
    ) -> Result<(BlindedTable, usize, u64), ClientError> {
        let (delta, bytes) = self.delta(base, manifest).await?;
        let table = delta
            .apply(base, &manifest.signed.manifest)
            .map_err(|source| ClientError::Protocol {
                what: "delta",
                source,
            })?;
        Ok((table, delta.indices.len(), bytes))
    }

    /// Fetches the delta from `base` to `manifest`'s table.
    async fn delta(
        &mut self,
        base: &BlindedTable,
        manifest: &Manifest,
    ) -> Result<(TableDelta, u64), ClientError> {
        let mut stream = self
            .tables
            .download_delta(DownloadDeltaRequest {
                from_table_id: base.id().0.to_vec(),
                to_table_id: manifest.table_id.0.to_vec(),
            })
            .await
            .map_err(status("DownloadDelta"))?
            .into_inner();
        let mut delta =
            DeltaDownload::for_base(*base.id(), &VerifiedManifest::from_signed(manifest.signed));
        let mut bytes = 0u64;
        while let Some(chunk) = stream.message().await.map_err(status("DownloadDelta"))? {
            bytes += chunk.encoded_len() as u64;
            delta.push(&chunk.indices, &chunk.slots)?;
        }
        Ok((delta.into_delta(), bytes))
    }

    /// Downloads (the rest of) the table, checking each chunk's proof.
    async fn download(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<(BlindedTable, u64), ClientError> {
        let mut partial = cache.open_partial(manifest)?;
        let mut assembler = TableAssembler::new(&manifest.signed.manifest, partial.take_existing())
            .map_err(|source| ClientError::Protocol {
                what: "cached partial table",
                source,
            })?;
        let mut bytes = 0u64;
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        while assembler.offset() < manifest.header.slots_len() {
            // A transient failure, at the start or midway, resumes from the
            // last verified chunk.
            let streamed = self
                .download_from(manifest, &mut assembler, &mut partial, &mut bytes)
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
        match assembler.finish() {
            Ok(table) => {
                cache.store(&table)?;
                partial.remove()?;
                Ok((table, bytes))
            }
            Err(source) => {
                if matches!(
                    source,
                    blindmatch_protocol::Error::TableIdMismatch
                        | blindmatch_protocol::Error::DigestMismatch
                ) {
                    // Complete but wrong (a damaged resumed part): start over.
                    partial.remove()?;
                }
                Err(ClientError::Protocol {
                    what: "table download",
                    source,
                })
            }
        }
    }

    /// One `DownloadTable` call from the assembler's offset: every chunk
    /// verified before it is kept.
    async fn download_from(
        &mut self,
        manifest: &Manifest,
        assembler: &mut TableAssembler,
        partial: &mut cache::Partial,
        bytes: &mut u64,
    ) -> Result<(), ClientError> {
        let mut stream = self
            .tables
            .download_table(DownloadTableRequest {
                table_id: manifest.table_id.0.to_vec(),
                offset: assembler.offset(),
            })
            .await
            .map_err(status("DownloadTable"))?
            .into_inner();
        while let Some(chunk) = stream.message().await.map_err(status("DownloadTable"))? {
            *bytes += chunk.encoded_len() as u64;
            let proof: Vec<[u8; 32]> = chunk
                .proof
                .iter()
                .map(|h| h.as_slice().try_into())
                .collect::<Result<_, _>>()
                .map_err(|_| ClientError::BadManifest("a proof hash is not 32 bytes"))?;
            if let Err(source) = assembler.push(chunk.offset, &chunk.slots, &proof) {
                // Only verified chunks were written: a resume starts here.
                partial.sync()?;
                return Err(ClientError::Protocol {
                    what: "table chunk",
                    source,
                });
            }
            partial.append(&chunk.slots)?;
        }
        Ok(())
    }

    /// Submits encoded vouchers as one batch under a fresh random
    /// [`SubmissionId`]; returns the acknowledged count. A failure that may
    /// be transient (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED by the server's
    /// request timeout, a broken connection, RESOURCE_EXHAUSTED with the
    /// server's retry hint when its memory budget is full) is retried with
    /// the same id, as [`Client::set_retries`] allows, so the server stores
    /// the batch once however many tries reach it.
    ///
    /// # Errors
    /// [`ClientError::Status`]: InvalidArgument for a malformed voucher,
    /// ResourceExhausted for a batch over the limit or a full server store,
    /// FailedPrecondition when the server's table changed, or the last
    /// transient failure once the retries are spent.
    pub async fn submit(
        &mut self,
        table_id: &TableId,
        vouchers: Vec<Vec<u8>>,
    ) -> Result<u32, ClientError> {
        // Version 1 sends no account id.
        self.submit_for_account(table_id, &[], vouchers).await
    }

    /// Submits one batch once, under the given id. Sending the same vouchers
    /// again under the same id (within the server's dedup window, 24 h by
    /// default) is acknowledged alike and stored once; the same id with other
    /// vouchers gets ALREADY_EXISTS.
    ///
    /// # Errors
    /// As [`Client::submit`], without the retries.
    pub async fn submit_with_id(
        &mut self,
        table_id: &TableId,
        id: SubmissionId,
        vouchers: Vec<Vec<u8>>,
    ) -> Result<u32, ClientError> {
        self.submit_raw(table_id, id, &[], vouchers).await
    }

    /// [`Client::submit`] in threshold mode: version-2 vouchers made under
    /// the account `account_id` (the id they are bound to).
    ///
    /// # Errors
    /// As [`Client::submit`].
    pub async fn submit_for_account(
        &mut self,
        table_id: &TableId,
        account_id: &[u8],
        vouchers: Vec<Vec<u8>>,
    ) -> Result<u32, ClientError> {
        let id = SubmissionId::random(&mut rand::rng());
        let mut backoff = Backoff::new(self.attempts, self.retry_delay);
        loop {
            match self
                .submit_raw(table_id, id, account_id, vouchers.clone())
                .await
            {
                Err(e) => match backoff.retry(&e) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(e),
                },
                ok => return ok,
            }
        }
    }

    /// [`Client::submit_with_id`] in threshold mode: one try, under the
    /// given id, of version-2 vouchers bound to `account_id`.
    ///
    /// # Errors
    /// As [`Client::submit`], without the retries.
    pub async fn submit_with_id_for_account(
        &mut self,
        table_id: &TableId,
        id: SubmissionId,
        account_id: &[u8],
        vouchers: Vec<Vec<u8>>,
    ) -> Result<u32, ClientError> {
        self.submit_raw(table_id, id, account_id, vouchers).await
    }

    async fn submit_raw(
        &mut self,
        table_id: &TableId,
        id: SubmissionId,
        account_id: &[u8],
        vouchers: Vec<Vec<u8>>,
    ) -> Result<u32, ClientError> {
        Ok(self
            .vouchers
            .submit(SubmitRequest {
                table_id: table_id.0.to_vec(),
                vouchers,
                submission_id: id.0.to_vec(),
                account_id: account_id.to_vec(),
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
    /// [`ClientError::Voucher`] for associated data over 1 KiB, or as
    /// [`Client::submit`].
    pub async fn check(
        &mut self,
        manifest: &Manifest,
        table: &ClientTable,
        items: &[(Item, Vec<u8>)],
    ) -> Result<usize, ClientError> {
        if let Some(p) = manifest.threshold {
            return Err(ClientError::Config(format!(
                "the server's table is in threshold mode (t = {}): give an account secret (check_account; the CLI's --account FILE)",
                p.threshold()
            )));
        }
        let mut acknowledged = 0;
        for batch in items.chunks(manifest.max_batch as usize) {
            let vouchers = make_vouchers(table, batch)?;
            acknowledged += self.submit(table.table().id(), vouchers).await? as usize;
        }
        Ok(acknowledged)
    }
}

impl Client {
    /// Threshold mode's [`Client::check`]: one version-2 voucher per upload
    /// under `account`'s keys for the manifest's t and s, real or (at the
    /// account's secret rate) synthetic, submitted in batches bound to the
    /// account id. The acknowledgement is the same whatever they hold.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a version-1 manifest, [`ClientError::Voucher`]
    /// for associated data over 1 KiB, or as [`Client::submit`].
    pub async fn check_account(
        &mut self,
        manifest: &Manifest,
        table: &ClientTable,
        account: &AccountSecret,
        uploads: &[Upload],
    ) -> Result<usize, ClientError> {
        let mut acknowledged = 0;
        for batch in uploads.chunks(manifest.max_batch as usize) {
            let vouchers = make_threshold_vouchers(manifest, table, account, batch)?;
            acknowledged += self
                .submit_for_account(table.table().id(), account.account_id(), vouchers)
                .await? as usize;
        }
        Ok(acknowledged)
    }
}

/// Encoded version-2 vouchers for a batch of uploads (SPEC 14.7).
///
/// # Errors
/// [`ClientError::Config`] for a version-1 manifest, or
/// [`ClientError::Voucher`] for associated data over 1 KiB.
pub fn make_threshold_vouchers(
    manifest: &Manifest,
    table: &ClientTable,
    account: &AccountSecret,
    uploads: &[Upload],
) -> Result<Vec<Vec<u8>>, ClientError> {
    let p = manifest.threshold.ok_or_else(|| {
        ClientError::Config(
            "the server's table is not in threshold mode: make version-1 vouchers (check)".into(),
        )
    })?;
    Ok(
        blindmatch_client_core::threshold_vouchers(table, &p, account, uploads, &mut rand::rng())?
            .iter()
            .map(blindmatch_protocol::threshold::ThresholdVoucher::encode)
            .collect(),
    )
}

/// Encoded vouchers for a batch of items (thread-local CSPRNG: far cheaper
/// than a system call per scalar).
///
/// # Errors
/// [`ClientError::Voucher`] for associated data over 1 KiB.
pub fn make_vouchers(
    table: &ClientTable,
    items: &[(Item, Vec<u8>)],
) -> Result<Vec<Vec<u8>>, ClientError> {
    let mut rng = rand::rng();
    items
        .iter()
        .map(|(item, ad)| Ok(table.create_voucher(item, ad, &mut rng)?.encode()))
        .collect()
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
        let signed = Statement {
            version: 4,
            created,
            table_id: TableId([2; 32]),
            digest: [3; 32],
            chunk_slots: blindmatch_protocol::merkle::CHUNK_SLOTS,
            header,
            threshold: None,
        }
        .sign(&OperatorSigningKey::generate(&mut rand::rng()));
        Manifest {
            header,
            table_id: TableId([2; 32]),
            version: 4,
            signed,
            max_batch: 64,
            threshold: None,
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
            matches!(err, ClientError::TooOld { version: 4, age_seconds, max_seconds: 86_400 } if age_seconds >= 3 * 86_400),
            "{err}"
        );
    }
}
