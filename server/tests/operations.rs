//! Operations: health while loading and at shutdown, the admin listener's
//! metrics, and graceful shutdown under load with the real binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::net::SocketAddr;
use std::time::Duration;

use blindmatch_client::Client;
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_server::{Limits, ServeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/postgres.rs"]
mod postgres;
use fixture::*;

/// A plain HTTP/1.0 GET: (status code, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A server with an admin listener, and that listener's address.
async fn start_with_admin(fx: &Fixture) -> (blindmatch_server::ServerHandle, SocketAddr) {
    let server = fx
        .start_with(|c| ServeConfig {
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..c
        })
        .await
        .unwrap();
    let admin = server.admin_addr().unwrap();
    (server, admin)
}

async fn health(url: String) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: "blindmatch.v1.VoucherService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// While the key and table load, health is NOT_SERVING, `/ready` is 503 and
/// RPCs get UNAVAILABLE, which the client retries with backoff; then all
/// turn. The key is read from a FIFO, so the test decides when loading can
/// finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_table_loads() {
    let fx = Fixture::new();
    let fifo = fx.dir.path().join("key.fifo");
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut server = blindmatch_server::serve::start_loading(ServeConfig {
        key: fifo.clone(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..fx.config()
    })
    .await
    .unwrap();
    let admin = server.admin_addr().unwrap();

    // The key is written when `release` is used or dropped (also when an
    // assertion fails first, so the loader never stays blocked).
    let (release, released) = std::sync::mpsc::channel::<()>();
    let key = std::fs::read(&fx.key).unwrap();
    let writer = std::thread::spawn(move || {
        let _ = released.recv();
        std::fs::write(fifo, key)
    });
    assert_eq!(health(server.url()).await, ServingStatus::NotServing);
    assert_eq!(get(admin, "/ready").await.0, 503);
    assert_eq!(get(admin, "/live").await.0, 200);
    // `blindmatch-server health`, the container's health check, says so too.
    let probe =
        |endpoint| blindmatch_server::metrics::probe(admin, endpoint, Duration::from_secs(5));
    let not_ready = probe("ready").await.unwrap_err();
    assert!(
        not_ready.ends_with("/ready: 503 Service Unavailable not ready"),
        "{not_ready}"
    );
    assert_eq!(probe("live").await, Ok("live".to_owned()));
    let mut once = Client::connect(&server.url(), fx.operator).await.unwrap();
    once.set_retries(1, Duration::ZERO);
    let err = once.manifest().await.unwrap_err().to_string();
    assert!(
        err.contains("unavailable") && err.contains("loading its table"),
        "{err}"
    );
    // A client that retries (the default) rides out the loading.
    let mut patient = Client::connect(&server.url(), fx.operator).await.unwrap();
    let waiting = tokio::spawn(async move { patient.manifest().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "still retrying while loading");

    // The key arrives: loading completes.
    drop(release);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), server.ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(health(server.url()).await, ServingStatus::Serving);
    assert_eq!(get(admin, "/ready").await.0, 200);
    assert_eq!(probe("ready").await, Ok("ready".to_owned()));
    waiting
        .await
        .unwrap()
        .expect("the retried GetManifest succeeds once loaded");
    server.shutdown().await.unwrap();
}

/// `/metrics` counts what happened, in the Prometheus text format, and never
/// shows an item or associated data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_from_the_admin_listener() {
    let fx = Fixture::new();
    let (server, admin) = start_with_admin(&fx).await;
    let (mut client, manifest, table) = connected(&fx, &server).await;
    let items = [listed(), unlisted()].concat();
    let with = with_ad(&items, "secret-ad");
    client.check(&manifest, &table, &with).await.unwrap();
    // A stale table id: refused and counted.
    let mut raw = VoucherServiceClient::connect(server.url()).await.unwrap();
    let stale = raw
        .submit(SubmitRequest {
            table_id: vec![1; 32],
            vouchers: Vec::new(),
            submission_id: Vec::new(),
            account_id: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
    let n = items.len() as u64;
    assert!(server.wait_processed(n, Duration::from_secs(20)).await);

    let (status, body) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("no {name} in\n{body}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("blindmatch_vouchers_total"), n as f64);
    assert_eq!(value("blindmatch_matches_total"), listed().len() as f64);
    assert_eq!(value("blindmatch_submissions_total{kind=\"stored\"}"), 1.0);
    assert_eq!(value("blindmatch_errors_total{kind=\"stale_table\"}"), 1.0);
    assert_eq!(value("blindmatch_submit_duration_seconds_count"), 1.0);
    assert_eq!(value("blindmatch_pending_submissions"), 0.0);
    assert_eq!(value("blindmatch_store_up"), 1.0);
    assert_eq!(value("blindmatch_ready"), 1.0);
    assert_eq!(
        value("blindmatch_table_slots"),
        f64::from(manifest.header().n_slots)
    );
    let table_line = format!(
        "blindmatch_table{{table_id=\"{}\"}} 1",
        hex::encode(manifest.table_id().0)
    );
    assert!(body.contains(&table_line), "{body}");
    for (item, _) in &with {
        assert!(!body.contains(&item.to_hex()), "an item in the metrics");
    }
    assert!(
        !body.contains("secret-ad"),
        "associated data in the metrics"
    );
    assert_eq!(get(admin, "/nope").await.0, 404);
    server.shutdown().await.unwrap();
}

/// SIGTERM while clients stream submissions: the server stops taking new
/// ones, finishes and stores those in flight, evaluates everything it
/// acknowledged, and exits 0; nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_of_submissions_loses_nothing() {
    let fx = Fixture::new();
    let (mut child, url) = spawn_server(&fx);
    let mut client = Client::connect(&url, fx.operator).await.unwrap();
    let manifest = client.manifest().await.unwrap();
    let table = std::sync::Arc::new(client.table(&manifest, &fx.cache("c")).await.unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..3 {
        let (url, table, stop) = (url.clone(), table.clone(), stop.clone());
        let (table_id, operator) = (*manifest.table_id(), fx.operator);
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&url, operator).await.unwrap();
            client.set_retries(1, Duration::ZERO);
            let mut acked = Vec::new();
            let mut refused = 0;
            for b in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let items = [listed(), unlisted()].concat();
                let with = with_ad(&items, &format!("client {c} batch {b}"));
                let vouchers = vouchers_for(&table, &with);
                match client.submit(&submission(&table_id, vouchers)).await {
                    Ok(_) => acked.extend(with[..listed().len()].iter().map(|(_, ad)| ad.clone())),
                    Err(_) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap().0);
    }
    assert!(status.success(), "exit status {status}");
    let stats = blindmatch_server::store::stats(&fx.data).unwrap();
    assert_eq!(
        stats.pending, 0,
        "everything acknowledged was evaluated before exit"
    );
    let recorded: Vec<Vec<u8>> = blindmatch_server::store::read_all(&fx.data)
        .unwrap()
        .into_iter()
        .map(|r| r.associated_data)
        .collect();
    assert!(!acked.is_empty());
    for ad in &acked {
        assert!(
            recorded.contains(ad),
            "acknowledged and lost: {}",
            String::from_utf8_lossy(ad)
        );
    }
    assert_eq!(
        recorded.len(),
        acked.len(),
        "recorded what was never acknowledged"
    );
}

/// More submissions a second from one address than `--rate-limit` get
/// RESOURCE_EXHAUSTED, are counted, and store nothing; a second later the
/// address is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_refuses_a_flood_from_one_address() {
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| ServeConfig {
            limits: Limits {
                submissions_per_second_per_ip: std::num::NonZeroU32::new(3),
                ..c.limits
            },
            ..c
        })
        .await
        .unwrap();
    let (mut client, manifest, table) = connected(&fx, &server).await;
    client.set_retries(1, Duration::ZERO);
    let one = vouchers_for(&table, &with_ad(&listed()[..1], "r"));
    let (mut accepted, mut refused) = (0, 0);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        match client
            .submit(&submission(manifest.table_id(), one.clone()))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("rate limit") && msg.contains("3 submissions a second"),
                    "{msg}"
                );
                refused += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(refused > 0, "no refusal in {elapsed:.2} s");
    assert!(
        accepted as f64 <= 3.0 + 3.0 * elapsed + 1.0,
        "{accepted} accepted in {elapsed:.2} s"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .submit(&submission(manifest.table_id(), one))
        .await
        .unwrap();
    assert!(
        server
            .wait_processed(accepted + 1, Duration::from_secs(20))
            .await
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.processed(),
        accepted + 1,
        "a refused submission was stored"
    );
    assert!(
        server.metrics().render().contains(&format!(
            "blindmatch_errors_total{{kind=\"rate_limited\"}} {refused}"
        )),
        "refusals counted"
    );
    server.shutdown().await.unwrap();
}

/// A submission the store cannot take in time (the database is locked by
/// another writer here) is cancelled by the request timeout, unacknowledged;
/// it is stored once the lock goes, and its retry under the same id is
/// acknowledged without storing it again. With one request at a time per
/// connection, a second call on the same connection waits for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_timeout_cancels_and_a_retry_stores_once() {
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| ServeConfig {
            limits: Limits {
                request_timeout: Duration::from_millis(300),
                max_concurrent_per_connection: 1,
                ..c.limits
            },
            ..c
        })
        .await
        .unwrap();
    let (client, manifest, table) = connected(&fx, &server).await;
    let batch = vouchers_for(&table, &with_ad(&listed(), "t"));
    let table_id = *manifest.table_id();
    let id = blindmatch_client::SubmissionId::random(&mut rand::rng());

    // Another writer holds the database.
    let lock = rusqlite::Connection::open(fx.data.join("matches.sqlite3")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (mut a, mut b) = (client.clone(), client.clone());
    let first = tokio::spawn({
        let batch = batch.clone();
        async move {
            a.submit_once(&with_id(submission(&table_id, batch), id))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = vouchers_for(&table, &with_ad(&unlisted(), "u"));
    let second = tokio::spawn(async move { b.submit(&submission(&table_id, other)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.metrics().in_flight.get(),
        1,
        "the second call on the connection waits its turn"
    );
    let err = first.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("Timeout expired"), "{err}");
    assert_eq!(server.processed(), 0);

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    // The cancelled batch was handed to the store before the timeout: it is
    // stored now, and the retry is a duplicate.
    let mut c = client.clone();
    assert_eq!(
        c.submit_once(&with_id(submission(&table_id, batch), id))
            .await
            .unwrap(),
        u32::try_from(listed().len()).unwrap()
    );
    let _ = second.await.unwrap();
    let n = (listed().len() + unlisted().len()) as u64;
    assert!(server.wait_processed(n, Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.processed(), n, "stored twice");
    assert_eq!(recorded(&fx.data).len(), listed().len());
    server.shutdown().await.unwrap();
}

/// A CA, and certificates it issued, in PEM files under `dir`.
struct Pki {
    ca: Vec<u8>,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_ca: std::path::PathBuf,
    client: (Vec<u8>, Vec<u8>),
}

fn pki(dir: &std::path::Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    };
    let (server_ca, client_ca) = (ca("test server CA"), ca("test client CA"));
    let leaf = |names: Vec<String>, issuer: &CertifiedIssuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, issuer)
            .unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    };
    let (cert, key) = leaf(vec!["localhost".into()], &server_ca);
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    Pki {
        ca: server_ca.pem().into_bytes(),
        server_cert: write("server.crt", &cert),
        server_key: write("server.tls.key", &key),
        client_ca: write("client-ca.crt", client_ca.pem().as_bytes()),
        client: leaf(vec!["client".into()], &client_ca),
    }
}

/// Mutual TLS end to end: a client with the CA and a client certificate is
/// served and its listed item recorded; a client without a certificate, one
/// that does not trust the server's CA, and a plaintext client are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_trusted_clients_and_refuses_the_rest() {
    use blindmatch_client::{ClientError, TlsOptions};
    let fx = Fixture::new();
    let pki = pki(fx.dir.path());
    let server = fx
        .start_with(|c| ServeConfig {
            tls: Some(blindmatch_server::TlsFiles {
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                client_ca: Some(pki.client_ca.clone()),
            }),
            ..c
        })
        .await
        .unwrap();
    let url = format!("https://localhost:{}", server.addr().port());
    assert!(server.url().starts_with("https://"));

    let trusted = TlsOptions {
        ca_pem: Some(pki.ca.clone()),
        identity: Some(pki.client.clone()),
        domain: None,
    };
    let mut client = Client::connect_with(&url, fx.operator, trusted.clone())
        .await
        .unwrap();
    let manifest = client.manifest().await.unwrap();
    let table = client.table(&manifest, &fx.cache("tls")).await.unwrap();
    let items = with_ad(&listed()[..1], "over tls");
    assert_eq!(client.check(&manifest, &table, &items).await.unwrap(), 1);
    assert!(server.wait_processed(1, Duration::from_secs(20)).await);
    assert_eq!(recorded(&fx.data).len(), 1);

    // Refused: no client certificate, an untrusted server CA, plaintext.
    let refused = |r: Result<(), ClientError>, what: &str| {
        let e = r.expect_err(what);
        assert!(
            matches!(e, ClientError::Connect { .. } | ClientError::Status { .. }),
            "{what}: {e}"
        );
    };
    let no_cert = TlsOptions {
        identity: None,
        ..trusted.clone()
    };
    refused(
        manifest_via(&url, fx.operator, no_cert).await,
        "no client certificate",
    );
    let wrong_ca = TlsOptions {
        ca_pem: Some(std::fs::read(&pki.client_ca).unwrap()),
        ..trusted
    };
    refused(
        manifest_via(&url, fx.operator, wrong_ca).await,
        "untrusted server CA",
    );
    let plain = format!("http://127.0.0.1:{}", server.addr().port());
    refused(
        manifest_via(&plain, fx.operator, TlsOptions::default()).await,
        "plaintext",
    );
    let mismatch = Client::connect_with(
        &plain,
        fx.operator,
        TlsOptions {
            ca_pem: Some(pki.ca.clone()),
            ..TlsOptions::default()
        },
    )
    .await;
    assert!(matches!(mismatch, Err(ClientError::Config(_))));
    server.shutdown().await.unwrap();
}

async fn manifest_via(
    url: &str,
    operator: blindmatch_protocol::OperatorVerifyingKey,
    tls: blindmatch_client::TlsOptions,
) -> Result<(), blindmatch_client::ClientError> {
    Client::connect_with(url, operator, tls)
        .await?
        .manifest()
        .await?;
    Ok(())
}

/// `serve` refuses to run without TLS unless --plaintext says so, and refuses
/// a TLS key others can read.
#[test]
fn serve_needs_tls_or_an_explicit_plaintext() {
    let fx = Fixture::new();
    let serve = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg("--table")
            .arg(&fx.table)
            .arg("--key")
            .arg(&fx.key)
            .arg("--data")
            .arg(&fx.data)
            .args(extra)
            .env_remove("BLINDMATCH_PLAINTEXT")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = serve(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no TLS") && err.contains("--plaintext"),
        "{err}"
    );

    let pki = pki(fx.dir.path());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pki.server_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (cert, key) = (
        pki.server_cert.to_str().unwrap(),
        pki.server_key.to_str().unwrap(),
    );
    let (code, err) = serve(&["--tls-cert", cert, "--tls-key", key]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("TLS key") && err.contains("chmod 600"),
        "{err}"
    );
}

/// At shutdown `/ready` turns 503 at once while `/live` stays 200, and a
/// submission in flight (held here by a locked database) is still stored,
/// acknowledged and evaluated before the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_drops_at_shutdown_and_the_submission_in_flight_is_kept() {
    let fx = Fixture::new();
    let (server, admin) = start_with_admin(&fx).await;
    let (mut client, manifest, table) = connected(&fx, &server).await;
    client.set_retries(1, Duration::ZERO);
    let batch = vouchers_for(&table, &with_ad(&listed()[..2], "late"));

    let lock = rusqlite::Connection::open(fx.data.join("matches.sqlite3")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let submit =
        tokio::spawn(async move { client.submit(&submission(manifest.table_id(), batch)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.metrics().in_flight.get() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the submission never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(admin, "/ready").await.0, 200);

    let stopping = tokio::spawn(server.shutdown());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(admin, "/ready").await.0 != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "/ready never turned 503"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(admin, "/live").await.0, 200, "live while draining");

    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    assert_eq!(
        submit.await.unwrap().unwrap(),
        2,
        "the submission in flight was acknowledged"
    );
    stopping.await.unwrap().unwrap();
    assert_eq!(
        recorded(&fx.data).len(),
        2,
        "and evaluated before the server stopped"
    );
    assert_eq!(
        blindmatch_server::store::stats(&fx.data).unwrap().pending,
        0
    );
}

/// The value of the series `series` (name and labels) in a scrape, if any.
fn series(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// After a reload the replaced version shows when its grace period ends, as
/// Unix time (what deploy/observability's alert compares with its clock),
/// and the series goes with the version when the grace period is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_a_grace_period_is_a_metric_until_it_ends() {
    let fx = Fixture::new();
    let grace = Duration::from_secs(2);
    let server = fx
        .start_with(|c| ServeConfig {
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            grace,
            ..c
        })
        .await
        .unwrap();
    let admin = server.admin_addr().unwrap();
    let v1 = blindmatch_server::bundle::read(&fx.table, false).unwrap();
    let v1 = hex::encode(v1.table.id().0);
    let ends = format!("blindmatch_table_grace_ends_timestamp_seconds{{table_id=\"{v1}\"}}");
    assert_eq!(series(&get(admin, "/metrics").await.1, &ends), None);

    let next = fx.dir.path().join("v2.bmt");
    let list = fx.dir.path().join("v2.txt");
    std::fs::write(&list, format!("sha256 {}\n", "ab".repeat(32))).unwrap();
    blindmatch_server::build(
        &list,
        &fx.key,
        &next,
        &build_options(&fx.signing_key, Some(fx.table.clone())),
    )
    .unwrap();
    std::fs::rename(&next, &fx.table).unwrap();
    let before = unix_now();
    server.reload().await.unwrap();
    let after = unix_now();
    let body = get(admin, "/metrics").await.1;
    let at = series(&body, &ends).unwrap_or_else(|| panic!("no {ends} in\n{body}"));
    let grace_s = grace.as_secs();
    assert!(
        (before + grace_s - 1) as f64 <= at && at <= (after + grace_s) as f64,
        "{at} is not {grace_s} s after the reload ({before}..{after})"
    );
    let state = format!("blindmatch_table{{table_id=\"{v1}\"}}");
    assert_eq!(series(&body, &state), Some(2.0));

    let deadline = std::time::Instant::now() + grace + Duration::from_secs(10);
    loop {
        let body = get(admin, "/metrics").await.1;
        if series(&body, &ends).is_none() {
            assert_eq!(series(&body, &state), None, "retired: {body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grace period's end outlived it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await.unwrap();
}

/// A TCP proxy to `upstream` that can be cut (`true`: every connection
/// through it closed, new ones closed at once) and restored.
async fn cuttable_proxy(upstream: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, cut_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mut cut_rx = cut_rx.clone();
            if *cut_rx.borrow() {
                continue;
            }
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cut_rx.wait_for(|c| *c) => {}
                }
            });
        }
    });
    (addr, cut)
}

/// `blindmatch_store_up` (deploy/observability's "store unreachable"
/// alert) turns 0 when the PostgreSQL store cannot be reached, with no
/// traffic (the heartbeat finds it), and 1 again when it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_up_follows_a_database_that_goes_away_and_returns() {
    let Some(url) = postgres::fresh_database("storeup") else {
        return;
    };
    // postgres://USER@HOST:PORT/DB?...: the same through the proxy.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (host_port, path) = rest.split_once('/').unwrap();
    let upstream = tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap();
    let (proxy, cut) = cuttable_proxy(upstream).await;
    let via_proxy = format!("{scheme_user}@{proxy}/{path}");
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| ServeConfig {
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            store: blindmatch_server::store::Location::parse(&via_proxy, None).unwrap(),
            // A heartbeat every 250 ms.
            lease: Duration::from_secs(1),
            ..c
        })
        .await
        .unwrap();
    let admin = server.admin_addr().unwrap();
    let up = || async { series(&get(admin, "/metrics").await.1, "blindmatch_store_up") };
    assert_eq!(up().await, Some(1.0));
    for (cut_it, want) in [(true, 0.0), (false, 1.0)] {
        cut.send(cut_it).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while up().await != Some(want) {
            assert!(
                std::time::Instant::now() < deadline,
                "blindmatch_store_up did not turn {want} (store cut: {cut_it})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server.shutdown().await.unwrap();
}
