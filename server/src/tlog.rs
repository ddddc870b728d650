//! The operator's transparency log (SPEC Section 16): a directory of static
//! files in the c2sp.org/tlog-tiles layout (`checkpoint`, `tile/<L>/<N>`,
//! `tile/entries/<N>`) that any web server can publish, and `serve` serves
//! read-only. One entry per published table version.
//!
//! - [`init`] makes the log's key and its empty checkpoint;
//! - [`append`] adds a table version (refusing a second table for a version
//!   already logged) and signs the new checkpoint;
//! - [`witness`] asks the policy's witnesses to cosign it
//!   (c2sp.org/tlog-witness) and writes their cosignatures into it;
//! - [`read`] reads a log back and checks every file against the others;
//!   `serve` keeps a [`Snapshot`] of it to prove its current version.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use blindmatch_protocol::merkle;
use blindmatch_protocol::tlog::note::NoteSignature;
use blindmatch_protocol::tlog::proof::parse_signature_lines;
use blindmatch_protocol::tlog::tiles::{self, TILE_WIDTH, TileId};
use blindmatch_protocol::tlog::{
    AddCheckpoint, Checkpoint, Hash, LogEntry, LogPolicy, LogSigningKey, LogVerifyingKey, Note,
    TlogProof, VerifiedCheckpoint,
};

use crate::{bundle, keyfile};

/// The checkpoint's file in a log directory.
const CHECKPOINT: &str = "checkpoint";

/// What [`init`] made.
#[derive(Debug)]
pub struct InitReport {
    /// The log directory.
    pub dir: PathBuf,
    /// Where the signing key was written.
    pub key: PathBuf,
    /// The verifier key clients, witnesses and monitors pin.
    pub vkey: LogVerifyingKey,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "created the empty log {} in {}",
            self.vkey.name(),
            self.dir.display()
        )?;
        writeln!(
            f,
            "wrote the log's signing key {} (mode 0600)",
            self.key.display()
        )?;
        writeln!(
            f,
            "log key (clients, witnesses and monitors pin it; also in {}): {}",
            keyfile::public_key_path(&self.key).display(),
            self.vkey
        )
    }
}

/// `log init`: a new log named `origin` in `dir` (created; it must hold no
/// log yet), its key written to `key_out`.
///
/// # Errors
/// If `dir` already holds a checkpoint, a key file exists, or on I/O
/// failure.
pub fn init(dir: &Path, origin: &str, key_out: &Path) -> anyhow::Result<InitReport> {
    if dir.join(CHECKPOINT).exists() {
        bail!(
            "{} already holds a log (its checkpoint): a log is created once",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("tile"))
        .with_context(|| format!("creating the log directory {}", dir.display()))?;
    let key = keyfile::write_new_log_key(key_out, origin)?;
    let mut note = Note::new(
        &Checkpoint {
            origin: origin.to_owned(),
            size: 0,
            root: merkle::root(&[]),
            extensions: Vec::new(),
        }
        .text(),
    )?;
    key.sign(&mut note);
    write_public(&dir.join(CHECKPOINT), note.encode().as_bytes())?;
    Ok(InitReport {
        dir: dir.to_owned(),
        key: key_out.to_owned(),
        vkey: key.verifying_key(),
    })
}

/// A log read back whole: its checkpoint (signed by the log's key), its
/// entries and their leaf hashes.
#[derive(Clone, Debug)]
pub struct LogState {
    /// The signed checkpoint, with whatever cosignatures it carries.
    pub note: Note,
    /// Its tree head.
    pub checkpoint: Checkpoint,
    /// The entries, in order.
    pub entries: Vec<LogEntry>,
    /// Their leaf hashes.
    pub leaves: Vec<Hash>,
}

impl LogState {
    /// The index of the entry logging `version`, if any.
    pub fn find(&self, version: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.version() == version)
    }
}

/// Where a log's files are read from: its directory, or the URL prefix it
/// is published under.
pub trait LogFiles {
    /// The file at `path` below the log's prefix (`checkpoint`,
    /// `tile/...`).
    ///
    /// # Errors
    /// If it cannot be read; the message names it.
    fn get(&self, path: &str) -> anyhow::Result<Vec<u8>>;

    /// Where the log is, for messages.
    fn describe(&self, path: &str) -> String;
}

impl LogFiles for Path {
    fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        std::fs::read(self.join(path)).with_context(|| self.describe(path))
    }

    fn describe(&self, path: &str) -> String {
        self.join(path).display().to_string()
    }
}

/// A log published over HTTP(S) under a URL prefix, read with blocking
/// requests (for the monitor, a command-line tool).
pub struct HttpLog {
    prefix: String,
    client: HttpClient,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
}

impl HttpLog {
    /// The log under `prefix` (`https://host/path`, no trailing slash
    /// needed).
    ///
    /// # Errors
    /// If a runtime cannot be made.
    pub fn new(prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("an HTTP runtime")?;
        let client = {
            let _in = runtime.enter();
            http_client()
        };
        Ok(HttpLog {
            prefix: prefix.trim_end_matches('/').to_owned(),
            client,
            runtime,
            timeout,
        })
    }
}

impl LogFiles for HttpLog {
    fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let url = self.describe(path);
        let request = http::Request::get(&url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .with_context(|| format!("bad URL {url}"))?;
        self.runtime.block_on(async {
            let response = tokio::time::timeout(self.timeout, self.client.request(request))
                .await
                .with_context(|| format!("{url}: no answer within {:?}", self.timeout))?
                .with_context(|| url.clone())?;
            let status = response.status();
            // A log's files are small (a bundle of 256 entries is some
            // hundred kilobytes): reading stops at 16 MiB.
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                response.into_body(),
                16 << 20,
            ))
            .await
            .map_err(|e| anyhow::anyhow!("{url}: reading the answer: {e}"))?
            .to_bytes();
            if !status.is_success() {
                bail!("{url}: {status}");
            }
            Ok(body.to_vec())
        })
    }

    fn describe(&self, path: &str) -> String {
        format!("{}/{path}", self.prefix)
    }
}

/// Reads the log in `dir`; see [`read_from`].
///
/// # Errors
/// As [`read_from`].
pub fn read(dir: &Path, key: &LogVerifyingKey) -> anyhow::Result<LogState> {
    read_from(dir, key)
}

/// Reads a log: the checkpoint must be signed by `key` and name its log,
/// the entry bundles and every tile the checkpoint's size needs must be
/// present and agree with each other, and the entries' tree must have the
/// checkpoint's root. Names the file that does not.
///
/// # Errors
/// On a missing, unreadable or inconsistent file.
pub fn read_from(
    files: &(impl LogFiles + ?Sized),
    key: &LogVerifyingKey,
) -> anyhow::Result<LogState> {
    let path = files.describe(CHECKPOINT);
    let bytes = files
        .get(CHECKPOINT)
        .with_context(|| format!("the log's checkpoint {path} (create a log with `log init`)"))?;
    let note = Note::parse(&bytes).with_context(|| path.clone())?;
    if !key.signed(&note).with_context(|| path.clone())? {
        bail!("{path}: not signed by the log key {key} (another log's directory?)");
    }
    let checkpoint = Checkpoint::parse(note.text()).with_context(|| path.clone())?;
    if checkpoint.origin != key.name() {
        bail!(
            "{path}: the checkpoint is for log {:?}, not {:?}",
            checkpoint.origin,
            key.name()
        );
    }
    let size = usize::try_from(checkpoint.size).context("the log's size")?;
    // Not sized from the checkpoint: a hostile log may claim any size, and
    // the bundles it cannot show end the read with an error naming one.
    let mut raw = Vec::new();
    for id in bundle_ids(size) {
        let file = files.describe(&id.path());
        let bytes = files
            .get(&id.path())
            .with_context(|| format!("entry bundle {file}"))?;
        raw.extend(tiles::read_bundle(&id, &bytes).with_context(|| file.clone())?);
    }
    let leaves: Vec<Hash> = raw.iter().map(|e| merkle::leaf_hash(e)).collect();
    for (id, expected) in tiles::tiles(&leaves) {
        let file = files.describe(&id.path());
        let bytes = files
            .get(&id.path())
            .with_context(|| format!("tile {file}"))?;
        if bytes != expected {
            bail!(
                "tile {file}: does not hold the hashes of the log's entries (a tampered or mixed-up log)"
            );
        }
    }
    if merkle::root(&leaves) != checkpoint.root {
        bail!("{path}: the entries' tree has another root than the checkpoint signs");
    }
    let entries = raw
        .iter()
        .enumerate()
        .map(|(i, e)| LogEntry::decode(e).with_context(|| format!("log entry {i}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LogState {
        note,
        checkpoint,
        entries,
        leaves,
    })
}

/// The entry bundles of a log of `size` entries.
fn bundle_ids(size: usize) -> impl Iterator<Item = TileId> {
    (0..size.div_ceil(TILE_WIDTH)).map(move |i| TileId {
        level: None,
        index: i as u64,
        // At most 256.
        width: u16::try_from((size - i * TILE_WIDTH).min(TILE_WIDTH)).unwrap_or(u16::MAX),
    })
}

/// What [`append`] did.
#[derive(Debug)]
pub enum Appended {
    /// The entry was added at `index`; the log now has `size` entries.
    Added {
        /// The table version.
        version: u64,
        /// Its index.
        index: u64,
        /// The log's new size.
        size: u64,
    },
    /// The same entry was logged before, at `index`: nothing changed.
    AlreadyLogged {
        /// The table version.
        version: u64,
        /// Its index.
        index: u64,
    },
}

impl fmt::Display for Appended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Appended::Added {
                version,
                index,
                size,
            } => write!(
                f,
                "logged table version {version} as entry {index}; the log has {size} {}, its checkpoint is signed by the log only: run `log witness` for the witnesses' cosignatures",
                if *size == 1 { "entry" } else { "entries" }
            ),
            Appended::AlreadyLogged { version, index } => write!(
                f,
                "table version {version} is already logged, as entry {index}, with these co-signatures: nothing to do"
            ),
        }
    }
}

/// `log append`: logs the table version in `table` (its signed manifest
/// and the co-signatures attached to it) as the next entry of the log in
/// `dir`, writes the new entry bundle and tiles, and signs the new
/// checkpoint. A version is logged once: another table, or the same table
/// with other co-signatures, for a version already logged is refused (two
/// tables for one version in a log is equivocation, in public), as is a
/// version older than the newest logged.
///
/// # Errors
/// On the refusals above, an inconsistent log directory, or I/O failure.
pub fn append(dir: &Path, key: &LogSigningKey, table: &Path) -> anyhow::Result<Appended> {
    let file = bundle::read(table, false)?;
    let _lock = lock(dir)?;
    let entry = LogEntry::new(file.manifest, file.cosignatures)
        .with_context(|| format!("table file {}", table.display()))?;
    let state = read(dir, &key.verifying_key())?;
    let version = entry.version();
    if let Some(i) = state.find(version) {
        let logged = &state.entries[i];
        if *logged == entry {
            return Ok(Appended::AlreadyLogged {
                version,
                index: i as u64,
            });
        }
        if logged.manifest.manifest.table_id != entry.manifest.manifest.table_id {
            bail!(
                "version {version} is already logged (entry {i}) with another table: a second table for one version would be equivocation, in public; build the next version instead"
            );
        }
        bail!(
            "version {version} is already logged (entry {i}) with {} co-signature(s); a version is logged once, so co-signatures must be attached before `log append` (those added since are not served to clients that check the log)",
            logged.cosignatures().len()
        );
    }
    if let Some(newest) = state.entries.iter().map(LogEntry::version).max()
        && version < newest
    {
        bail!(
            "version {version} is older than version {newest}, already logged: versions are logged in order"
        );
    }

    let old = state.entries.len();
    let mut raw: Vec<Vec<u8>> = state.entries.iter().map(LogEntry::encode).collect();
    raw.push(entry.encode());
    let size = write_unlocked(dir, key, &raw, old)?;
    Ok(Appended::Added {
        version,
        index: old as u64,
        size,
    })
}

/// Writes a log of the encoded `entries` into `dir`, with no check of what
/// they hold: the entry bundles and tiles that cover entries from `from`
/// on (those before are unchanged), then the checkpoint signed by `key`
/// (last: until it is renamed into place, readers see the old log, whose
/// partial tiles keep their own paths). Returns the new size.
///
/// [`append`] checks first; this is what it writes with, and what an
/// operator holding the log's key can do without its checks (the demo and
/// the monitor's tests force an equivocation into a log this way, to show
/// that a monitor finds it).
///
/// # Errors
/// On an entry over 65,535 bytes or I/O failure.
pub fn write_log(
    dir: &Path,
    key: &LogSigningKey,
    entries: &[Vec<u8>],
    from: usize,
) -> anyhow::Result<u64> {
    let _lock = lock(dir)?;
    write_unlocked(dir, key, entries, from)
}

/// The log directory's lock, held by every command that writes it: two at
/// once could sign two different checkpoints of one size (a fork signed by
/// the log's key), or put back a checkpoint an append replaced.
fn lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("the log's lock {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

fn write_unlocked(
    dir: &Path,
    key: &LogSigningKey,
    entries: &[Vec<u8>],
    from: usize,
) -> anyhow::Result<u64> {
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let size = leaves.len();
    for id in bundle_ids(size) {
        let (start, end) = id.span();
        let (start, end) = (
            usize::try_from(start).unwrap_or(usize::MAX),
            usize::try_from(end).unwrap_or(usize::MAX),
        );
        if end > from {
            write_public(
                &dir.join(id.path()),
                &tiles::bundle(&entries[start..end.min(size)])?,
            )?;
        }
    }
    for (id, bytes) in tiles::tiles(&leaves) {
        let (_, end) = id.span();
        if usize::try_from(end).unwrap_or(usize::MAX) > from {
            write_public(&dir.join(id.path()), &bytes)?;
        }
    }
    let mut note = Note::new(
        &Checkpoint {
            origin: key.name().to_owned(),
            size: size as u64,
            root: merkle::root(&leaves),
            extensions: Vec::new(),
        }
        .text(),
    )?;
    key.sign(&mut note);
    write_public(&dir.join(CHECKPOINT), note.encode().as_bytes())?;
    Ok(size as u64)
}

/// How one witness answered.
#[derive(Debug)]
pub struct WitnessAnswer {
    /// Its name in the policy.
    pub name: String,
    /// Where it was asked.
    pub url: String,
    /// Its cosignature's timestamp, or why there is none.
    pub outcome: Result<u64, String>,
    /// Requests made.
    pub attempts: u32,
}

/// What [`witness`] did.
#[derive(Debug)]
pub struct WitnessReport {
    /// The checkpoint's size.
    pub size: u64,
    /// Each witness with a URL, in the policy's order.
    pub answers: Vec<WitnessAnswer>,
    /// The policy's witnesses without a URL (not asked).
    pub unreachable: Vec<String>,
    /// The quorum, as the policy states it.
    pub rule: String,
    /// Whether the checkpoint written meets it.
    pub quorum_met: bool,
}

impl fmt::Display for WitnessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "checkpoint of size {}:", self.size)?;
        for a in &self.answers {
            match &a.outcome {
                Ok(t) => writeln!(
                    f,
                    "  {:<20} cosigned (timestamp {t}) at {} ({} request(s))",
                    a.name, a.url, a.attempts
                )?,
                Err(why) => writeln!(
                    f,
                    "  {:<20} did not cosign, at {} after {} request(s): {why}",
                    a.name, a.url, a.attempts
                )?,
            }
        }
        for name in &self.unreachable {
            writeln!(f, "  {name:<20} not asked: the policy gives it no URL")?;
        }
        let met = if self.quorum_met { "met" } else { "NOT met" };
        write!(f, "quorum {}: {met}", self.rule)
    }
}

/// Options of [`witness`].
#[derive(Debug, Clone, Copy)]
pub struct WitnessOptions {
    /// Requests per witness for answers that may change (no connection, a
    /// timeout, 5xx, 429), with doubling pauses from one second.
    pub attempts: u32,
    /// Each request's timeout.
    pub timeout: Duration,
}

/// `log witness`: asks every witness of `policy` that has a URL to cosign
/// the log's current checkpoint (c2sp.org/tlog-witness `add-checkpoint`,
/// with the consistency proof from the size it last cosigned), checks each
/// cosignature against the policy's key for it, and writes the checkpoint
/// back with them. The report says who answered; whether the quorum is met
/// is the caller's to act on.
///
/// # Errors
/// If the log cannot be read, or the checkpoint cannot be written.
pub async fn witness(
    dir: &Path,
    policy: &LogPolicy,
    options: WitnessOptions,
) -> anyhow::Result<WitnessReport> {
    // Held until the cosigned checkpoint is written: an append meanwhile
    // would otherwise be rolled back by it.
    let _lock = lock(dir)?;
    let state = read(dir, policy.log())?;
    let client = http_client();
    let asks = policy.witnesses().iter().filter_map(|w| {
        let url = w.url.clone()?;
        let (client, state) = (client.clone(), &state);
        Some(async move {
            let (outcome, attempts) = ask(&client, &url, state, options).await;
            // Only the lines that verify under the policy's key for this
            // witness are kept (a witness may answer with several keys').
            let outcome = outcome.and_then(|lines| {
                let mut newest: Option<(u64, NoteSignature)> = None;
                for line in lines {
                    let one = alone(&state.note, &line)?;
                    match w.key.cosigned(&one) {
                        Ok(Some(t)) if newest.as_ref().is_none_or(|(n, _)| t > *n) => {
                            newest = Some((t, line));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                newest.ok_or_else(|| {
                    "it answered without a cosignature by the key the policy gives it".to_owned()
                })
            });
            (w.name.clone(), url, outcome, attempts)
        })
    });
    let answered = futures_util::future::join_all(asks).await;
    let mut note = state.note.clone();
    let mut answers = Vec::with_capacity(answered.len());
    for (name, url, outcome, attempts) in answered {
        answers.push(WitnessAnswer {
            name,
            url,
            outcome: outcome.map(|(t, line)| {
                note.add_signature(line);
                t
            }),
            attempts,
        });
    }
    write_public(&dir.join(CHECKPOINT), note.encode().as_bytes())?;
    let quorum_met = policy.verify_checkpoint(&note).is_ok();
    Ok(WitnessReport {
        size: state.checkpoint.size,
        answers,
        unreachable: policy
            .witnesses()
            .iter()
            .filter(|w| w.url.is_none())
            .map(|w| w.name.clone())
            .collect(),
        rule: policy.rule(),
        quorum_met,
    })
}

/// `note`'s text with the single signature line `line`.
fn alone(note: &Note, line: &NoteSignature) -> Result<Note, String> {
    let mut out = Note::new(note.text()).map_err(|e| e.to_string())?;
    out.add_signature(line.clone());
    Ok(out)
}

/// The HTTP(S) client of the witnesses and the webhook: HTTP/1.1 over
/// rustls, Mozilla roots.
pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

pub(crate) fn http_client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// One witness: `add-checkpoint` from the size it says it has (a first
/// request claims 0; a `409` answers with the witness's size, and the next
/// request carries the consistency proof from it).
async fn ask(
    client: &HttpClient,
    url: &str,
    state: &LogState,
    options: WitnessOptions,
) -> (Result<Vec<NoteSignature>, String>, u32) {
    let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
    let mut old_size = 0u64;
    let mut attempts = 0;
    let mut conflicts = 0;
    let mut pause = Duration::from_secs(1);
    loop {
        attempts += 1;
        let Ok(old) = usize::try_from(old_size) else {
            return (Err(format!("it claims size {old_size}")), attempts);
        };
        let body = AddCheckpoint {
            old_size,
            proof: merkle::consistency_proof(&state.leaves, old),
            checkpoint: state.note.clone(),
        }
        .encode();
        let request = http::Request::post(&endpoint)
            .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return (Err(format!("bad URL {endpoint}: {e}")), attempts),
        };
        let answer = tokio::time::timeout(options.timeout, async {
            let response = client.request(request).await.map_err(|e| format!("{e}"))?;
            let status = response.status();
            // A witness answers with signature lines: 64 KiB is plenty.
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                response.into_body(),
                64 << 10,
            ))
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
            Ok::<_, String>((status, body))
        })
        .await;
        let retry = |why: String| why;
        let why = match answer {
            Err(_) => retry(format!("no answer within {:?}", options.timeout)),
            Ok(Err(e)) => retry(e),
            Ok(Ok((status, body))) => match status.as_u16() {
                200 => {
                    return (
                        parse_signature_lines(&body).map_err(|e| format!("its answer: {e}")),
                        attempts,
                    );
                }
                409 => {
                    let text = String::from_utf8_lossy(&body);
                    let Some(size) = text.trim_end().parse::<u64>().ok() else {
                        return (Err(format!("409 without a size: {text:?}")), attempts);
                    };
                    if size > state.checkpoint.size {
                        return (
                            Err(format!(
                                "it has cosigned size {size}, larger than this log's {}: it saw another view of this log (a fork?) or the log directory was rolled back",
                                state.checkpoint.size
                            )),
                            attempts,
                        );
                    }
                    conflicts += 1;
                    if conflicts > 2 {
                        return (Err("its size keeps changing (409)".to_owned()), attempts);
                    }
                    old_size = size;
                    continue;
                }
                404 => {
                    return (
                        Err("404: it does not know this log (its operator must add the log's origin and key)".to_owned()),
                        attempts,
                    );
                }
                403 => {
                    return (
                        Err("403: it does not accept the log's signature (its operator must add this log key)".to_owned()),
                        attempts,
                    );
                }
                422 => {
                    return (
                        Err("422: it refused the consistency proof: this checkpoint does not extend what it cosigned before".to_owned()),
                        attempts,
                    );
                }
                429 | 500..=599 => retry(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body).trim()
                )),
                _ => {
                    return (
                        Err(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&body).trim()
                        )),
                        attempts,
                    );
                }
            },
        };
        if attempts >= options.attempts {
            return (Err(why), attempts);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Where `serve` finds the log and what it checks it against: the policy
/// clients pin (`--log`, `--log-policy`).
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// The log directory.
    pub dir: PathBuf,
    /// The policy: the log's key and the quorum of witnesses.
    pub policy: LogPolicy,
}

/// Reads a policy file (c2sp.org/tlog-policy).
///
/// # Errors
/// If it cannot be read or parsed; the message names the file and line.
pub fn read_policy(path: &Path) -> anyhow::Result<LogPolicy> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("log policy {}", path.display()))?;
    LogPolicy::parse(&text).with_context(|| format!("log policy {}", path.display()))
}

/// A log as `serve` proves from it: its cosigned checkpoint (checked
/// against the policy) and its leaves, and the entry of the version served.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The checkpoint, checked against the policy.
    pub checkpoint: VerifiedCheckpoint,
    /// The tree up to its size, every perfect subtree's hash kept: each
    /// request's consistency proof costs O(log² n) hashes, whatever size a
    /// client names.
    pub tree: merkle::Tree,
    /// The served version's entry.
    pub entry: LogEntry,
    /// Its proof (c2sp.org/tlog-proof), what `GetManifest` serves.
    pub proof: TlogProof,
}

impl Snapshot {
    /// Reads the log in `dir`, checks its checkpoint against `policy` (the
    /// one clients pin: its log key and quorum of witnesses), and finds the
    /// entry of `version`.
    ///
    /// # Errors
    /// If the log is inconsistent, the quorum is not met, or `version` is
    /// not logged.
    pub fn load(dir: &Path, policy: &LogPolicy, version: u64) -> anyhow::Result<Self> {
        let state = read(dir, policy.log())?;
        let checkpoint = policy.verify_checkpoint(&state.note).with_context(|| {
            format!(
                "the log's checkpoint in {} (run `blindmatch-server log witness`)",
                dir.display()
            )
        })?;
        let index = state.find(version).with_context(|| {
            format!(
                "table version {version} is not in the log {}: run `blindmatch-server log append` and `log witness` before serving it (clients that check the log would refuse it)",
                dir.display()
            )
        })?;
        let tree = merkle::Tree::new(state.leaves);
        let proof = TlogProof {
            extra: None,
            index: index as u64,
            path: tree.inclusion_proof(index, tree.size()),
            checkpoint: checkpoint.note().clone(),
        };
        Ok(Snapshot {
            checkpoint,
            entry: state.entries[index].clone(),
            tree,
            proof,
        })
    }

    /// The consistency proof from the checkpoint of `old_size` a client
    /// holds (empty if it holds none, or this one's size or more: the
    /// client then checks what it can and refuses what it must).
    pub fn consistency(&self, old_size: u64) -> Vec<Hash> {
        match usize::try_from(old_size) {
            Ok(old) if old < self.tree.size() => self.tree.consistency_proof(old, self.tree.size()),
            _ => Vec::new(),
        }
    }
}

/// Writes a public file of the log atomically (temporary file and rename)
/// with mode 0644: everything in a log directory is meant to be published.
fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| path.display().to_string())?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| path.display().to_string())?;
    Ok(())
}
