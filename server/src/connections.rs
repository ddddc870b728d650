//! Connections: how many, from whom, and for how long when idle.
//!
//! [`Limited::incoming`] wraps the listener's stream of accepted sockets. A
//! connection over the total cap (`--max-connections`) or over the cap of its
//! source (`--max-connections-per-client`; a client address, or an IPv6 /64)
//! is closed at once, before TLS or HTTP/2 spend anything on it. Each
//! accepted connection carries a guard that gives its place back when the
//! connection ends, and an idle timer: a connection on which nothing has
//! been received or sent for `--idle-timeout` is closed, which also ends a
//! connection that never completes its TLS or HTTP/2 handshake. The idle
//! timeout is longer than the request timeout, so a call in progress never
//! looks idle.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::admission::Source;
use crate::metrics::Metrics;

/// Connection caps.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections in total.
    pub max_total: usize,
    /// Open connections from one source.
    pub max_per_source: usize,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
}

/// The open connections, counted.
pub(crate) struct Limited {
    limits: ConnectionLimits,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_source: HashMap<Source, usize>,
}

impl Limited {
    pub(crate) fn new(limits: ConnectionLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Limited {
            limits,
            open: Mutex::new(Open::default()),
            metrics,
        })
    }

    /// Admits an accepted socket, or closes it (`None`) if a cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, stream: TcpStream) -> Option<LimitedConn> {
        let source = stream.peer_addr().ok().map(|a| Source::address(a.ip()));
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = source.map_or(0, |s| open.by_source.get(&s).copied().unwrap_or(0));
        let refused = if open.total >= self.limits.max_total {
            Some("connection_limit_total")
        } else if mine >= self.limits.max_per_source {
            Some("connection_limit_per_client")
        } else {
            None
        };
        if let Some(kind) = refused {
            drop(open);
            self.metrics.error(kind);
            tracing::debug!(kind, "connection refused: cap reached");
            return None;
        }
        open.total += 1;
        if let Some(s) = source {
            *open.by_source.entry(s).or_default() += 1;
        }
        self.metrics
            .connections
            .set(i64::try_from(open.total).unwrap_or(i64::MAX));
        drop(open);
        let idle = self.limits.idle_timeout;
        Some(LimitedConn {
            inner: stream,
            guard: Guard {
                limited: Arc::clone(self),
                source,
            },
            idle,
            last: Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
        })
    }

    /// The listener's sockets, each admitted or closed.
    pub(crate) fn incoming(
        self: &Arc<Self>,
        incoming: tonic::transport::server::TcpIncoming,
    ) -> impl tokio_stream::Stream<Item = io::Result<LimitedConn>> + use<> {
        let this = Arc::clone(self);
        tokio_stream::StreamExt::filter_map(incoming, move |r| match r {
            Ok(stream) => this.admit(stream).map(Ok),
            Err(e) => Some(Err(e)),
        })
    }
}

/// Gives a connection's place back.
struct Guard {
    limited: Arc<Limited>,
    source: Option<Source>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut open = self.limited.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(s) = self.source
            && let Some(n) = open.by_source.get_mut(&s)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_source.remove(&s);
            }
        }
        self.limited
            .metrics
            .connections
            .set(i64::try_from(open.total).unwrap_or(i64::MAX));
    }
}

/// An admitted connection: the socket, its place, and its idle timer.
pub(crate) struct LimitedConn {
    inner: TcpStream,
    guard: Guard,
    idle: Duration,
    /// The last time a byte went either way.
    last: Instant,
    /// Fires at `last + idle` at the earliest; re-armed lazily when it fires
    /// early (cheaper than resetting it on every read).
    timer: Pin<Box<Sleep>>,
}

impl LimitedConn {
    /// `Err` once the connection has been idle for the timeout.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle: closed",
                ));
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl AsyncRead for LimitedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                // hyper always has a read pending on a connection, so this
                // is where an idle one is noticed.
                if let Err(e) = self.check_idle(cx) {
                    self.guard.limited.metrics.error("idle_timeout");
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for LimitedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last = Instant::now();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last = Instant::now();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for LimitedConn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
