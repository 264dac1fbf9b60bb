//! The HTTP server loop every seatq service uses: axum on hyper, with graceful shutdown and
//! a kill switch per connection.
//!
//! The kill switch exists for long-lived streams. A browser that stops reading an SSE
//! stream leaves its response blocked in the socket; the stream's handler cannot end it,
//! because nothing polls a response that cannot be written. Each connection's requests
//! carry a [`ConnectionKill`]: cancelling it drops the connection (the socket is closed),
//! so a client that fell behind can be cut off at once and reconnect later.
//!
//! Hostile clients are bounded here too. A connection with no request in flight is closed
//! after [`IDLE_TIMEOUT`], whatever protocol it speaks or pretends to: one that connects and
//! sends nothing, an HTTP/2 preface trickled a byte at a time (hyper's protocol sniffing
//! and its HTTP/2 side have no timeout of their own), a request head that never completes
//! (slowloris; hyper's HTTP/1 header read timeout closes it at the same moment) and an idle
//! keep-alive connection. A request is in flight from its head until its response body has
//! ended, so endless streams (SSE) are never idle. A request head must also fit in
//! [`MAX_HEAD_BYTES`] (431 beyond); request bodies are bounded by each router's body limit
//! and request timeout.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::shutdown::Shutdown;

/// Cancel to drop the connection this request came on (see the module docs).
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub CancellationToken);

/// How long in-flight requests get to finish once `shutdown` is cancelled.
const DRAIN: Duration = Duration::from_secs(10);

/// How long a client has to send a request's head (line and headers), counted from when
/// the server starts waiting for it — so it is also how long an idle keep-alive
/// connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may stay open with no request in flight (see the module docs);
/// the same as the header read timeout, so both protocols get the same bound.
pub const IDLE_TIMEOUT: Duration = HEADER_READ_TIMEOUT;

/// The most a request head may take (hyper's read buffer): 431 beyond it. hyper's own
/// default is about 400 KiB per connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Per-connection socket settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Cap the kernel's send buffer per connection. Linux grows it up to 4 MiB by default,
    /// which for tens of thousands of mostly idle streams is memory the notifier does not
    /// control, and it hides a client that stopped reading for megabytes.
    pub send_buffer: Option<usize>,
}

/// Pending connections the kernel queues for a listener (Linux caps it at `somaxconn`,
/// 4096 by default). tokio's default of 128 overflows when thousands of browsers
/// reconnect at once (a notifier restart) and the kernel falls back to SYN cookies.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Bind `addr` (`host:port`) with a deep accept queue.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        let socket = if resolved.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(resolved) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{addr} resolves to nothing"),
        )
    }))
}

/// Serve `router` on `listener` until `shutdown`; then stop accepting, let in-flight
/// requests finish (streams are expected to end themselves on shutdown) for up to 10 s.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeOptions::default()).await
}

/// [`serve`] with socket options.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
    options: ServeOptions,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let mut last_warned = None;
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning,
                    // and say so once in a while rather than twenty times a second.
                    if last_warned.is_none_or(|at: std::time::Instant| at.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accept failed (repeats are not logged for 10 s)");
                        last_warned = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        if let Some(size) = options.send_buffer {
            if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(size) {
                tracing::debug!(error = %e, "cannot cap the send buffer");
            }
        }
        let kill = CancellationToken::new();
        let router = router.clone();
        let tag = ConnectionKill(kill.clone());
        let (activity, idle) = Activity::new_connection();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let in_flight = activity.start();
            request.extensions_mut().insert(tag.clone());
            // The peer address, for `axum::extract::ConnectInfo` (per-IP rate limits).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                // In flight until the body has been sent (or the connection dropped it).
                Ok::<_, Infallible>(response.map(|body| {
                    axum::body::Body::new(TrackedBody {
                        inner: body,
                        _in_flight: in_flight,
                    })
                }))
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = kill.cancelled() => tracing::debug!("connection dropped by its handler"),
                _ = idle_for(idle, IDLE_TIMEOUT) => tracing::debug!("idle connection closed"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

/// One connection's count of requests in flight, for [`idle_for`].
#[derive(Clone)]
struct Activity(watch::Sender<usize>);

impl Activity {
    /// A new connection's counter (zero) and the receiver [`idle_for`] watches.
    fn new_connection() -> (Self, watch::Receiver<usize>) {
        let (sender, receiver) = watch::channel(0);
        (Self(sender), receiver)
    }

    /// A request started: it is in flight until the returned guard is dropped.
    fn start(&self) -> InFlight {
        self.0.send_modify(|n| *n += 1);
        InFlight(self.0.clone())
    }
}

/// One request in flight, from its head until its response body ends or is dropped.
struct InFlight(watch::Sender<usize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Completes once the connection has had no request in flight for `limit` in a row.
async fn idle_for(mut in_flight: watch::Receiver<usize>, limit: Duration) {
    loop {
        if in_flight.wait_for(|n| *n == 0).await.is_err() {
            // The connection's service is gone, and with it the connection.
            return std::future::pending().await;
        }
        if tokio::time::timeout(limit, in_flight.wait_for(|n| *n > 0))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A response body that keeps its request in flight until it ends or is dropped.
struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
