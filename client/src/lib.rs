//! blindmatch client library: what an app embeds to check items against a
//! blindmatch server.
//!
//! 1. [`Client::connect`] to the server and fetch its [`Manifest`].
//! 2. [`Client::table`] downloads the blinded table (resuming an interrupted
//!    download, verifying the digest, caching it on disk by table id) and
//!    validates it into a [`ClientTable`].
//! 3. [`Client::check`] makes one voucher per item and submits them in
//!    batches. The server's answer is an acknowledgement that is the same
//!    whether anything matched or not: the client cannot learn the result.
//!
//! ```no_run
//! # async fn example() -> Result<(), blindmatch_client::ClientError> {
//! use blindmatch_client::{Client, TableCache};
//! use blindmatch_protocol::{Item, ItemType};
//!
//! let mut client = Client::connect("http://127.0.0.1:50051").await?;
//! let manifest = client.manifest().await?;
//! let table = client.table(&manifest, &TableCache::new("/var/cache/blindmatch")).await?;
//! let item = Item::parse(ItemType::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")?;
//! let acknowledged = client.check(&manifest, &table, &[(item, b"upload 42".to_vec())]).await?;
//! assert_eq!(acknowledged, 1);
//! # Ok(()) }
//! ```

mod cache;

// Compile the README's Rust examples as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{DownloadTableRequest, GetManifestRequest, SubmitRequest};
use blindmatch_protocol::{ClientTable, Item, TableAssembler, TableHeader, TableId};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

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
    /// The manifest fields disagree with its encoded header.
    #[error("manifest is inconsistent: {0}")]
    BadManifest(&'static str),
    /// The downloaded table does not hash to the manifest's table id; the
    /// partial download was discarded.
    #[error(
        "downloaded table does not match its table id (corrupted in transit or on disk); discarded"
    )]
    CorruptTable,
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
}

fn status(call: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
    move |status| ClientError::Status { call, status }
}

/// The server's current table, as its manifest describes it.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Decoded header (k, seed, slot count, public key).
    pub header: TableHeader,
    /// Table id, the digest the download is checked against.
    pub table_id: TableId,
    /// Most vouchers per submission.
    pub max_batch: u32,
}

/// Whether a failed call may succeed if sent again unchanged.
fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unknown
            // The server's request timeout ("Timeout expired").
            | tonic::Code::Cancelled
    )
}

/// Names one batch of vouchers: 16 random bytes the client picks and sends
/// again with every retry of that batch, so the server stores it once.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubmissionId(pub [u8; 16]);

impl SubmissionId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut id);
        SubmissionId(id)
    }
}

impl std::fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for SubmissionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubmissionId({self})")
    }
}

impl TryFrom<blindmatch_proto::v1::Manifest> for Manifest {
    type Error = ClientError;

    /// Checks a manifest as received: its header decodes, every field agrees
    /// with the header, the table id is 32 bytes and the batch limit is not
    /// zero.
    fn try_from(m: blindmatch_proto::v1::Manifest) -> Result<Self, ClientError> {
        let header = TableHeader::decode(&m.header).map_err(|source| ClientError::Protocol {
            what: "manifest header",
            source,
        })?;
        if u32::from(header.k) != m.k
            || header.n_slots != m.n_slots
            || header.seed[..] != m.seed[..]
            || header.public_key.to_bytes()[..] != m.public_key[..]
            || header.slots_len() != m.table_len
            || m.protocol_version != u32::from(blindmatch_protocol::PROTOCOL_VERSION)
        {
            return Err(ClientError::BadManifest(
                "fields differ from the encoded header",
            ));
        }
        let table_id = TableId(
            m.table_id
                .as_slice()
                .try_into()
                .map_err(|_| ClientError::BadManifest("table id is not 32 bytes"))?,
        );
        if m.max_batch == 0 {
            return Err(ClientError::BadManifest("max_batch is zero"));
        }
        Ok(Manifest {
            header,
            table_id,
            max_batch: m.max_batch,
        })
    }
}

/// A connection to a blindmatch server.
#[derive(Clone)]
pub struct Client {
    tables: TableServiceClient<Channel>,
    vouchers: VoucherServiceClient<Channel>,
    attempts: u32,
    retry_delay: Duration,
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
    /// run with `--plaintext`).
    ///
    /// # Errors
    /// [`ClientError::Connect`].
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        Self::connect_with(url, TlsOptions::default()).await
    }

    /// Connects to `url` with the given TLS settings.
    ///
    /// # Errors
    /// [`ClientError::Connect`] (including a failed TLS handshake), or
    /// [`ClientError::Config`] for TLS settings with an `http://` URL.
    pub async fn connect_with(url: &str, tls: TlsOptions) -> Result<Self, ClientError> {
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
        Ok(Self::from_channel(channel))
    }

    /// A client over an existing channel.
    pub fn from_channel(channel: Channel) -> Self {
        // Table chunks are 64 KiB and batches of vouchers ~1.4 KB each; the
        // default 4 MiB limit covers both, the explicit one documents it.
        const MAX_MESSAGE: usize = 16 << 20;
        Client {
            tables: TableServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE),
            vouchers: VoucherServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
            attempts: 3,
            retry_delay: Duration::from_millis(200),
        }
    }

    /// Fetches and checks the manifest.
    ///
    /// # Errors
    /// [`ClientError::Status`], [`ClientError::Protocol`] for a bad header,
    /// [`ClientError::BadManifest`] if its fields disagree with the header.
    pub async fn manifest(&mut self) -> Result<Manifest, ClientError> {
        let m = self
            .tables
            .get_manifest(GetManifestRequest {})
            .await
            .map_err(status("GetManifest"))?
            .into_inner();
        Manifest::try_from(m)
    }

    /// The table of `manifest`: from the cache if a verified copy is there,
    /// otherwise downloaded (resuming a partial download), verified against
    /// the table id, cached, and validated slot by slot.
    ///
    /// # Errors
    /// [`ClientError::CorruptTable`] if the download does not match its id
    /// (the partial file is removed so the next attempt starts clean);
    /// [`ClientError::Status`], [`ClientError::Cache`], or
    /// [`ClientError::Protocol`] for a table with an invalid slot.
    pub async fn table(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<ClientTable, ClientError> {
        let table = match cache.load(manifest)? {
            Some(table) => table,
            None => self.download(manifest, cache).await?,
        };
        ClientTable::new(table).map_err(|source| ClientError::Protocol {
            what: "table",
            source,
        })
    }

    async fn download(
        &mut self,
        manifest: &Manifest,
        cache: &TableCache,
    ) -> Result<blindmatch_protocol::BlindedTable, ClientError> {
        let mut partial = cache.open_partial(manifest)?;
        let mut assembler =
            TableAssembler::new(manifest.header, manifest.table_id, partial.take_existing())
                .map_err(|source| ClientError::Protocol {
                    what: "cached partial table",
                    source,
                })?;
        if assembler.offset() < manifest.header.slots_len() {
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
                assembler
                    .push(chunk.offset, &chunk.slots)
                    .map_err(|source| ClientError::Protocol {
                        what: "table chunk",
                        source,
                    })?;
                partial.append(&chunk.slots)?;
            }
        }
        partial.sync()?;
        match assembler.finish() {
            Ok(table) => {
                cache.store(&table)?;
                partial.remove()?;
                Ok(table)
            }
            Err(blindmatch_protocol::Error::TableIdMismatch) => {
                partial.remove()?;
                Err(ClientError::CorruptTable)
            }
            Err(source) => Err(ClientError::Protocol {
                what: "table download",
                source,
            }),
        }
    }

    /// Submits encoded vouchers as one batch under a fresh random
    /// [`SubmissionId`]; returns the acknowledged count. A failure that may
    /// be transient (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED by the server's
    /// request timeout, a broken connection) is
    /// retried with the same id, as [`Client::set_retries`] allows, so the
    /// server stores the batch once however many tries reach it.
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
        let id = SubmissionId::random();
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            match self.submit_with_id(table_id, id, vouchers.clone()).await {
                Err(ClientError::Status { status, .. })
                    if attempt < self.attempts && transient(&status) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                r => return r,
            }
        }
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
        Ok(self
            .vouchers
            .submit(SubmitRequest {
                table_id: table_id.0.to_vec(),
                vouchers,
                submission_id: id.0.to_vec(),
            })
            .await
            .map_err(status("Submit"))?
            .into_inner()
            .accepted)
    }

    /// How [`Client::submit`] retries: at most `attempts` tries in all (1:
    /// no retry), waiting `first_delay` before the second and twice as long
    /// before each one after. The default is 3 tries from 200 ms.
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
        let mut acknowledged = 0;
        for batch in items.chunks(manifest.max_batch as usize) {
            let vouchers = make_vouchers(table, batch)?;
            acknowledged += self.submit(table.table().id(), vouchers).await? as usize;
        }
        Ok(acknowledged)
    }
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
