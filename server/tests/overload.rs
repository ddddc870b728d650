//! Overload: the mechanisms that keep the server bounded and fair under a
//! flood, each checked on its own (the figures under a real flood are the
//! benchmark's: `blindmatch-flood`, papers/BENCHMARKS.md).
//!
//! Raw HTTP/2 (the `h2` crate) plays the hostile client where a gRPC client
//! would not misbehave: a body announced and never sent, a body too large
//! for a cheap call, connections held open.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use blindmatch_server::{ConnectionLimits, Limits, ServeConfig};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

#[path = "support/fixture.rs"]
mod fixture;
use fixture::*;

async fn tcp_from(from: &str, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(to).await
}

/// An HTTP/2 connection from `from`.
async fn h2_from(from: &str, to: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let (client, conn) = h2::client::handshake(tcp_from(from, to).await.unwrap())
        .await
        .unwrap();
    tokio::spawn(conn);
    client.ready().await.unwrap()
}

/// What a raw call came to: the gRPC status code and message, and the
/// retry hint if any.
#[derive(Debug)]
struct Answer {
    code: tonic::Code,
    message: String,
    pushback: Option<String>,
}

/// Starts a call to `path` whose body begins with a gRPC prefix announcing
/// `announced` bytes, followed by `body`; the body is left open (more is
/// "coming") unless `finish`. Returns the pending answer and the body
/// stream, which must be kept alive for the call to stay open.
fn call(
    client: &mut h2::client::SendRequest<Bytes>,
    to: SocketAddr,
    path: &str,
    announced: u32,
    body: &[u8],
    finish: bool,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{to}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(request, false).unwrap();
    let mut data = vec![0u8];
    data.extend_from_slice(&announced.to_be_bytes());
    data.extend_from_slice(body);
    stream.send_data(data.into(), finish).unwrap();
    (response, stream)
}

async fn answer(response: h2::client::ResponseFuture) -> Answer {
    let response = response.await.unwrap();
    let h = response.headers();
    let get = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_string());
    Answer {
        code: tonic::Code::from_bytes(get("grpc-status").expect("trailers-only").as_bytes()),
        message: get("grpc-message").unwrap_or_default().replace("%20", " "),
        pushback: get("grpc-retry-pushback-ms"),
    }
}

const SUBMIT: &str = "/blindmatch.v1.VoucherService/Submit";

/// A budget of `n` of the largest submissions (batches of 64 here).
fn budget_of(n: usize) -> usize {
    // What admission charges the largest Submit message at max_batch 64:
    // twice its bytes and 16 KiB (admission.rs), the longest vouchers.
    let max_message = blindmatch_server::serve::max_message(64);
    n * (2 * max_message + (16 << 10))
}

/// A submission that does not fit the budget is refused with
/// RESOURCE_EXHAUSTED, retryable, when only its five-byte prefix has
/// arrived; a slow sender holding a reservation is cut off at the body
/// timeout, which gives its reservation back; and cheap calls are served
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refuses_before_the_body_and_slow_senders_are_cut_off() {
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| ServeConfig {
            limits: Limits {
                max_inflight_bytes: budget_of(4),
                body_timeout: Duration::from_secs(2),
                ..c.limits
            },
            ..c
        })
        .await
        .unwrap();
    let addr = server.addr();
    // Nearly the largest message the server takes (a batch of its longest
    // vouchers), whose body never comes.
    let announced = u32::try_from(blindmatch_server::serve::max_message(64) - 4096).unwrap();

    // Alone, a client may hold half the budget: two maximal submissions
    // whose bodies never come.
    let mut slow = h2_from("127.0.0.1", addr).await;
    let held: Vec<_> = (0..2)
        .map(|_| call(&mut slow, addr, SUBMIT, announced, &[], false))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (third, _open) = call(&mut slow, addr, SUBMIT, announced, &[], false);
    let refused = answer(third).await;
    assert_eq!(refused.code, tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message.contains("fair share") && refused.message.contains("retryable"),
        "{refused:?}"
    );
    assert_eq!(refused.pushback.as_deref(), Some("200"), "a retry hint");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not at the body timeout"
    );

    // Another client gets in while the first holds its share...
    let mut other = h2_from("127.0.0.2", addr).await;
    let (other_call, _other_open) = call(&mut other, addr, SUBMIT, announced, &[], false);
    // ...and cheap calls are not under the budget at all.
    let (mut client, manifest, table) = connected(&fx, &server).await;
    client.manifest().await.unwrap();
    let one = vouchers_for(&table, &with_ad(&listed()[..1], "after"));

    // The slow senders are cut off at the body timeout.
    for (response, _stream) in held {
        let cut = answer(response).await;
        assert_eq!(cut.code, tonic::Code::DeadlineExceeded, "{cut:?}");
        assert!(
            cut.message.contains("request body not received within 2s"),
            "{cut:?}"
        );
    }
    assert_eq!(answer(other_call).await.code, tonic::Code::DeadlineExceeded);
    // Their reservations are back: a real submission from the first address.
    client.set_retries(1, Duration::ZERO);
    client
        .submit(&submission(manifest.table_id(), one))
        .await
        .unwrap();
    assert!(server.wait_processed(1, Duration::from_secs(10)).await);
    let metrics = server.metrics().render();
    for kind in ["over_fair_share", "slow_body"] {
        assert!(
            metrics.contains(&format!("blindmatch_errors_total{{kind=\"{kind}\"}}")),
            "{kind} counted"
        );
    }
    assert!(
        metrics.contains("blindmatch_inflight_budget_bytes 0"),
        "all released"
    );
    server.shutdown().await.unwrap();
}

/// Calls other than Submit may not send large bodies, whatever message
/// size the services would accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheap_calls_refuse_large_bodies() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let addr = server.addr();
    let mut h2 = h2_from("127.0.0.1", addr).await;
    let big = vec![0u8; 100 << 10];
    let (response, _stream) = call(
        &mut h2,
        addr,
        "/blindmatch.v1.TableService/GetManifest",
        u32::try_from(big.len()).unwrap(),
        &big,
        true,
    );
    let a = answer(response).await;
    assert_eq!(a.code, tonic::Code::ResourceExhausted, "{a:?}");
    assert!(a.message.contains("request body over 65536 bytes"), "{a:?}");
    server.shutdown().await.unwrap();
}

/// Is the connection closed by the server within `within`?
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// One client address gets at most its connections; another address still
/// gets in; a connection that says nothing is closed after the idle
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_client_and_idle_ones_closed() {
    let fx = Fixture::new();
    let server = fx
        .start_with(|c| ServeConfig {
            limits: Limits {
                request_timeout: Duration::from_secs(1),
                connections: ConnectionLimits {
                    max_total: 100,
                    max_per_source: 2,
                    idle_timeout: Duration::from_secs(2),
                },
                ..c.limits
            },
            ..c
        })
        .await
        .unwrap();
    let addr = server.addr();
    let mut a1 = tcp_from("127.0.0.1", addr).await.unwrap();
    let mut a2 = tcp_from("127.0.0.1", addr).await.unwrap();
    let mut a3 = tcp_from("127.0.0.1", addr).await.unwrap();
    assert!(
        closed_within(&mut a3, Duration::from_millis(500)).await,
        "the third connection from one address is closed at once"
    );
    let mut b = tcp_from("127.0.0.2", addr).await.unwrap();
    assert!(
        !closed_within(&mut b, Duration::from_millis(500)).await,
        "another address gets in"
    );
    let started = Instant::now();
    assert!(
        closed_within(&mut a1, Duration::from_secs(10)).await,
        "idle: closed"
    );
    assert!(
        closed_within(&mut a2, Duration::from_secs(10)).await,
        "idle: closed"
    );
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(500),
        "not before the idle timeout ({after:?})"
    );
    // Their places are back.
    let mut again = tcp_from("127.0.0.1", addr).await.unwrap();
    assert!(!closed_within(&mut again, Duration::from_millis(500)).await);
    let metrics = server.metrics().render();
    assert!(
        metrics.contains("blindmatch_errors_total{kind=\"connection_limit_per_client\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("blindmatch_errors_total{kind=\"idle_timeout\"}"));
    // A gRPC client in use is not idle.
    let (mut client, manifest, table) = connected(&fx, &server).await;
    for _ in 0..3 {
        client.manifest().await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let one = vouchers_for(&table, &with_ad(&listed()[..1], "idle"));
    client
        .submit(&submission(manifest.table_id(), one))
        .await
        .unwrap();
    drop((a1, a2, b, again));
    server.shutdown().await.unwrap();
}
