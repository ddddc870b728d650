//! `serve --webhook URL`: each new match record POSTed to a receiver,
//! signed as the Standard Webhooks specification says
//! (standardwebhooks.com, "Signature scheme" and "Webhook headers").
//!
//! - **What is sent.** One request per record, in commit order, the next
//!   only once the receiver answered 2xx to this one. The body is JSON:
//!   `{"type": "match.recorded", "timestamp": RFC 3339, "data": LINE}`,
//!   where `LINE` is the record as `matches --follow` prints it (its
//!   `kind`, `cursor`, `id`, the item and the associated data: the
//!   receiver learns what the operator does).
//! - **Signed.** `webhook-id` is the record's id (the same at every
//!   attempt: receivers deduplicate on it), `webhook-timestamp` the
//!   attempt's Unix time, and `webhook-signature` is `v1,` and the base64
//!   HMAC-SHA256, under the secret's bytes (`whsec_` and base64 in
//!   `--webhook-secret-file`, mode 0600), of `ID.TIMESTAMP.BODY`.
//! - **Never lost.** A failure (no connection, no answer within 30 s, any
//!   status but 2xx, a redirect included) is retried, forever: after 1 s,
//!   then twice as long each time up to `--webhook-max-backoff` (5 min),
//!   each wait between half and all of that at random so that a receiver
//!   coming back is not hit by every sender at once, and never shorter
//!   than the receiver's `Retry-After`. A receiver that is down delays
//!   delivery; the records wait in the store.
//! - **At least once.** The cursor (the last record answered 2xx) is kept
//!   in the store ([`Feed::save`]), so a restarted server resumes after it.
//!   A record whose 2xx came and whose cursor was not saved yet (the
//!   server stopped between the two) is sent again.
//! - **One deliverer.** With replicas on PostgreSQL, the replica holding
//!   the feed's lock delivers ([`Feed::lead`]); the others ask every few
//!   seconds and take over when it dies.
//! - **Out of the way.** Delivery is a task of its own with a store
//!   connection of its own, never the pipeline's writer: a slow or absent
//!   receiver does not slow `Submit`.
//! - **Logs** name record ids, statuses and errors; never a body.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use tokio::sync::watch;

use crate::metrics::{Kind, Metrics};
use crate::store::{Cursor, Feed, FeedRecord, StoreError};

/// Where the webhook's cursor is saved in the store.
pub const CURSOR_NAME: &str = "webhook";
/// The first wait after a failure; each next one doubles, up to the cap.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Default cap on the wait between attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long the receiver may take to answer (the specification suggests
/// 15 to 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the store is asked for new records while there are none.
const POLL: Duration = Duration::from_secs(1);
/// How often a replica that does not deliver asks whether it should.
const LEAD_EVERY: Duration = Duration::from_secs(2);
/// Records read from the store at a time.
const BATCH: usize = 64;
/// The `type` of every payload.
const EVENT_TYPE: &str = "match.recorded";

/// `--webhook` and its settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The receiver: an `http://` or `https://` URL (https verified
    /// against the Mozilla roots).
    pub url: http::Uri,
    /// The file holding the signing secret (`whsec_` and base64; mode 0600).
    pub secret_file: PathBuf,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl WebhookSettings {
    /// Reads `--webhook`: an absolute `http://` or `https://` URL without
    /// credentials in it.
    ///
    /// # Errors
    /// If it is not one, saying why.
    pub fn parse_url(url: &str) -> Result<http::Uri, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(format!("{url:?}: give an http:// or https:// URL"));
        }
        match uri.authority() {
            None => Err(format!("{url:?} names no host")),
            Some(a) if a.as_str().contains('@') => {
                Err("no credentials in the URL: the receiver checks the signature instead".into())
            }
            Some(_) => Ok(uri),
        }
    }
}

/// The receiver as logs show it: scheme, host and port, not the path or
/// query (which may hold a token).
pub(crate) fn shown(url: &http::Uri) -> String {
    format!(
        "{}://{}",
        url.scheme_str().unwrap_or("?"),
        url.authority().map_or("?", |a| a.as_str())
    )
}

/// The signing secret: 24 to 64 random bytes, written as `whsec_` and
/// their base64 (the specification's form, which receivers' libraries
/// read). Never printed.
pub struct Secret {
    key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads the secret from `path`, which must be of mode 0600 like every
    /// key file here.
    ///
    /// # Errors
    /// If the file cannot be read, others may read it, or it does not hold
    /// a secret.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        crate::keyfile::check_private(path, "webhook secret file")?;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("webhook secret file {}", path.display()))?,
        );
        Self::parse(&text)
            .map_err(|e| anyhow::anyhow!("webhook secret file {}: {e}", path.display()))
    }

    /// A secret as written: `whsec_` and the base64 of 24 to 64 bytes
    /// (surrounding white space ignored).
    ///
    /// # Errors
    /// If it is not one, saying what is wrong (never the secret).
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(b64) = text.trim().strip_prefix("whsec_") else {
            return Err(
                "a secret starts with whsec_ (then the base64 of 24 to 64 random bytes)".into(),
            );
        };
        let key = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "the part after whsec_ is not base64".to_owned())?,
        );
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "the secret is {} bytes: give 24 to 64 (e.g. 32 random bytes)",
                key.len()
            ));
        }
        Ok(Secret { key })
    }

    /// `webhook-signature` for the message `id` sent at `timestamp` with
    /// `body`: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        #[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    }
}

/// The wait after the `failures`-th failed attempt in a row: 1 s doubled
/// per earlier failure, at most `max`, and of that between half and all as
/// `jitter` (in [0, 1)) says.
pub(crate) fn backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(24);
    let full = FIRST_RETRY.saturating_mul(1 << doublings).min(max);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A `Retry-After` in seconds (its date form is not worth a parser here).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The body sent for `record`: the Standard Webhooks payload shape around
/// the record's line.
pub(crate) fn payload(record: &FeedRecord) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Payload<'a> {
        r#type: &'static str,
        timestamp: String,
        data: &'a FeedRecord,
    }
    let at = record
        .record
        .recorded_at_ms
        .unwrap_or(record.record.received_at_ms);
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
    serde_json::to_vec(&Payload {
        r#type: EVENT_TYPE,
        timestamp: humantime::format_rfc3339_millis(at).to_string(),
        data: record,
    })
}

/// A store call on a blocking thread: the feed's calls wait for the
/// database.
async fn call<T: Send + 'static>(
    feed: &Arc<Mutex<Box<dyn Feed>>>,
    f: impl FnOnce(&mut dyn Feed) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let feed = Arc::clone(feed);
    tokio::task::spawn_blocking(move || {
        let mut feed = feed
            .lock()
            .map_err(|_| StoreError::Failed("the feed's connection was poisoned".into()))?;
        f(&mut **feed)
    })
    .await
    .map_err(|e| StoreError::Failed(format!("the feed's task: {e}")))?
}

/// Sleeps for `wait`, or until the server stops; says whether it stops.
async fn pause(stopping: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *stopping.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => *stopping.borrow(),
        // A closed channel: the server is gone.
        changed = stopping.changed() => changed.is_err() || *stopping.borrow(),
    }
}

/// `d` times a random factor in [0.75, 1.25): replicas do not ask in step.
fn jittered(d: Duration) -> Duration {
    use rand::RngExt;
    d.mul_f64(rand::rng().random_range(0.75..1.25))
}

/// An error and its causes, for a log line (hyper's says "client error
/// (Connect)" and keeps the why in its source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since `record` was recorded (received, for older records).
fn age(record: &FeedRecord) -> i64 {
    let at = record
        .record
        .recorded_at_ms
        .unwrap_or(record.record.received_at_ms);
    (crate::store::now_ms().saturating_sub(at) / 1000).max(0)
}

/// The webhook's deliverer: started by `serve` once the store is open.
pub(crate) struct Deliverer {
    feed: Arc<Mutex<Box<dyn Feed>>>,
    settings: WebhookSettings,
    secret: Secret,
    metrics: Arc<Metrics>,
}

/// How one record's delivery ended.
enum Delivery {
    /// The receiver answered 2xx.
    Done,
    /// The server is stopping; the record is sent again after the next
    /// start.
    Stopped,
}

impl Deliverer {
    /// A deliverer of `feed` (opened writable) to the receiver in
    /// `settings`, signing with `secret`.
    pub(crate) fn new(
        feed: Box<dyn Feed>,
        settings: WebhookSettings,
        secret: Secret,
        metrics: Arc<Metrics>,
    ) -> Self {
        Deliverer {
            feed: Arc::new(Mutex::new(feed)),
            settings,
            secret,
            metrics,
        }
    }

    /// Delivers until the server stops: while this process leads the feed,
    /// each record after the saved cursor in turn.
    pub(crate) async fn run(self, mut stopping: watch::Receiver<bool>) {
        let client = crate::tlog::http_client();
        let receiver = shown(&self.settings.url);
        tracing::info!(receiver, "webhook: each new match record is posted");
        let mut leading = false;
        // Where delivery stands, while this process leads and knows it.
        let mut position: Option<Cursor> = None;
        loop {
            if *stopping.borrow() {
                return;
            }
            let leads = match call(&self.feed, |f| f.lead()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: cannot ask the store who delivers; asking again");
                    false
                }
            };
            if leads != leading {
                leading = leads;
                self.metrics.webhook_deliverer.set(i64::from(leads));
                if leads {
                    tracing::info!(receiver, "webhook: this replica delivers");
                } else {
                    position = None;
                    tracing::info!("webhook: another replica delivers");
                }
            }
            if !leads {
                if pause(&mut stopping, jittered(LEAD_EVERY)).await {
                    return;
                }
                continue;
            }
            let after = match position {
                Some(c) => c,
                None => match call(&self.feed, |f| f.saved(CURSOR_NAME)).await {
                    Ok(c) => c.unwrap_or(Cursor::START),
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook: cannot read the cursor; asking again");
                        if pause(&mut stopping, POLL).await {
                            return;
                        }
                        continue;
                    }
                },
            };
            position = Some(after);
            let records = match call(&self.feed, move |f| f.read(after, BATCH)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: cannot read the match records; asking again");
                    if pause(&mut stopping, POLL).await {
                        return;
                    }
                    continue;
                }
            };
            if let Ok(n) = call(&self.feed, move |f| f.backlog(after)).await {
                self.metrics
                    .webhook_backlog
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            if records.is_empty() {
                self.metrics.webhook_oldest_seconds.set(0);
                if pause(&mut stopping, POLL).await {
                    return;
                }
                continue;
            }
            for record in records {
                match self.deliver(&client, &record, &mut stopping).await {
                    Delivery::Done => {}
                    Delivery::Stopped => return,
                }
                let cursor = record.cursor;
                match call(&self.feed, move |f| f.save(CURSOR_NAME, cursor)).await {
                    Ok(()) => {
                        position = Some(cursor);
                        self.metrics.webhook_backlog.dec();
                    }
                    Err(e) => {
                        // Read again from the saved cursor (or by the
                        // replica that leads now): this record may go out
                        // twice, none is skipped.
                        tracing::warn!(
                            id = record.record.id,
                            error = %e,
                            "webhook: delivered, but its cursor could not be saved: it may be delivered again"
                        );
                        position = None;
                        break;
                    }
                }
            }
        }
    }

    /// Posts `record` until the receiver answers 2xx or the server stops.
    async fn deliver(
        &self,
        client: &crate::tlog::HttpClient,
        record: &FeedRecord,
        stopping: &mut watch::Receiver<bool>,
    ) -> Delivery {
        let id = record.record.id.to_string();
        let body = match payload(record) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                // Cannot happen (strings and numbers); never skip a record
                // silently all the same.
                tracing::error!(id, error = %e, "webhook: cannot encode the record; retrying");
                Default::default()
            }
        };
        let mut failures = 0u32;
        loop {
            self.metrics.webhook_oldest_seconds.set(age(record));
            let timestamp = unix_seconds();
            let request = http::Request::post(self.settings.url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(
                    http::header::USER_AGENT,
                    concat!("blindmatch-server/", env!("CARGO_PKG_VERSION")),
                )
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", self.secret.sign(&id, timestamp, &body))
                .body(http_body_util::Full::new(body.clone()));
            let answer = match request {
                Ok(request) => {
                    tokio::time::timeout(REQUEST_TIMEOUT, async {
                        let response = client.request(request).await?;
                        let status = response.status();
                        let hint = retry_after(response.headers());
                        // Read (a little of) the answer, so that the
                        // connection can carry the next request.
                        let _ = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                            response.into_body(),
                            64 << 10,
                        ))
                        .await;
                        Ok::<_, hyper_util::client::legacy::Error>((status, hint))
                    })
                    .await
                }
                Err(e) => {
                    tracing::error!(id, error = %e, "webhook: cannot make the request");
                    Ok(Ok((http::StatusCode::INTERNAL_SERVER_ERROR, None)))
                }
            };
            failures = failures.saturating_add(1);
            let jitter: f64 = {
                use rand::RngExt;
                rand::rng().random_range(0.0..1.0)
            };
            let mut wait = backoff(failures, self.settings.max_backoff, jitter);
            let kind = match answer {
                Ok(Ok((status, _))) if status.is_success() => {
                    self.metrics.webhook_delivered.inc();
                    self.metrics
                        .webhook_last_delivered
                        .set(i64::try_from(unix_seconds()).unwrap_or(i64::MAX));
                    tracing::debug!(
                        id,
                        status = status.as_u16(),
                        attempts = failures,
                        "webhook: delivered"
                    );
                    return Delivery::Done;
                }
                Ok(Ok((status, hint))) => {
                    if let Some(hint) = hint {
                        wait = wait.max(hint.min(self.settings.max_backoff));
                    }
                    tracing::warn!(
                        id,
                        status = status.as_u16(),
                        attempt = failures,
                        retry_in_seconds = wait.as_secs_f64(),
                        "webhook: the receiver refused a match record; retrying"
                    );
                    "status"
                }
                Ok(Err(e)) => {
                    tracing::warn!(
                        id,
                        error = chain(&e),
                        attempt = failures,
                        retry_in_seconds = wait.as_secs_f64(),
                        "webhook: the receiver is unreachable; retrying"
                    );
                    "unreachable"
                }
                Err(_) => {
                    tracing::warn!(
                        id,
                        attempt = failures,
                        retry_in_seconds = wait.as_secs_f64(),
                        "webhook: no answer within 30 s; retrying"
                    );
                    "timeout"
                }
            };
            self.metrics
                .webhook_failures
                .get_or_create(&Kind { kind })
                .inc();
            if pause(stopping, wait).await {
                return Delivery::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published example (the same in its reference
    /// libraries' tests): a receiver's Standard Webhooks library accepts
    /// what this signs.
    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn a_secret_is_whsec_and_24_to_64_bytes_of_base64() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert!(Secret::parse(&format!("  whsec_{}\n", b64(32))).is_ok());
        assert!(Secret::parse(&format!("whsec_{}", b64(64))).is_ok());
        for (text, why) in [
            (b64(32), "starts with whsec_"),
            (format!("whsec_{}", b64(23)), "23 bytes"),
            (format!("whsec_{}", b64(65)), "65 bytes"),
            ("whsec_not base64!".to_owned(), "not base64"),
        ] {
            let e = Secret::parse(&text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn the_backoff_doubles_from_a_second_to_its_cap_with_jitter() {
        let cap = Duration::from_secs(300);
        assert_eq!(backoff(1, cap, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(4, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(9, cap, 1.0), Duration::from_secs(256));
        assert_eq!(backoff(10, cap, 1.0), cap, "2^9 s is past the cap");
        assert_eq!(backoff(u32::MAX, cap, 0.0), cap / 2);
        for failures in 1..40 {
            let low = backoff(failures, cap, 0.0);
            let high = backoff(failures, cap, 0.999_999);
            assert!(low <= high && high <= cap && low >= Duration::from_millis(500));
            assert!(backoff(failures + 1, cap, 0.0) >= low, "it never shrinks");
        }
        assert_eq!(
            backoff(5, Duration::from_secs(1), 1.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn the_receivers_url_is_http_or_https_and_shown_without_its_path() {
        let url = WebhookSettings::parse_url("https://hooks.example:8443/in?token=s3cret").unwrap();
        assert_eq!(shown(&url), "https://hooks.example:8443");
        for (bad, why) in [
            ("ftp://hooks.example/", "http:// or https://"),
            ("/in", "http:// or https://"),
            ("https://user:pw@hooks.example/", "no credentials"),
            ("http://exa mple/", "not a URL"),
        ] {
            let e = WebhookSettings::parse_url(bad).unwrap_err();
            assert!(e.contains(why) && !e.contains("pw@"), "{bad}: {e}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
    }
}
