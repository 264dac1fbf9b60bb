//! The HTTP server loop every seatq service uses: axum on hyper, with graceful shutdown and
//! a kill switch per connection.
//!
//! The kill switch exists for long-lived streams. A browser that stops reading an SSE
//! stream leaves its response blocked in the socket; the stream's handler cannot end it,
//! because nothing polls a response that cannot be written. Each connection's requests
//! carry a [`ConnectionKill`]: cancelling it drops the connection (the socket is closed),
//! so a client that fell behind can be cut off at once and reconnect later.
//!
//! Each connection has a watchdog that knows what it is doing: waiting for a request head,
//! serving requests, or idle between requests.
//!
//! - **Keep-alive.** A connection is closed only after it was idle — no request in flight
//!   and no byte of a new one received — for the idle timeout ([`ServeOptions::idle_timeout`],
//!   75 s by default: longer than the 60 s of common load balancers, so the balancer, not
//!   seatq, closes a pooled connection first). The close is graceful (HTTP/2 sends GOAWAY).
//!   HTTP/1.1 responses say `Keep-Alive: timeout=N`, one second less than the server waits,
//!   so a client that honours it never sends on a connection as it is being closed. A
//!   request being read or answered is never cut off, however long the connection lived.
//! - **Hostile clients** are bounded by [`HEADER_READ_TIMEOUT`]: a request head must be
//!   complete within it of its first byte (slowloris: a head trickled a byte at a time),
//!   and a new connection must complete its first request head within it of connecting,
//!   whatever protocol it speaks or pretends to (one that connects and sends nothing, an
//!   HTTP/2 preface trickled a byte at a time or left without a request: hyper's protocol
//!   sniffing and its HTTP/2 side have no timeout of their own). Such a connection is
//!   dropped. A request is in flight from its head until its response body has ended, so
//!   endless streams (SSE) are never idle. A request head must also fit in
//!   [`MAX_HEAD_BYTES`] (431 beyond); request bodies are bounded by each router's body
//!   limit and request timeout.
//!
//! An earlier version counted requests in flight with a channel the watchdog read only
//! when woken: a request that started and ended between two of its wake-ups went unseen,
//! so a connection busy with quick requests looked idle since it opened and was dropped
//! 10 s after opening, with a request in flight (issue 17). The watchdog now works from the
//! time of the last change of phase, so nothing it sleeps through is lost.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::shutdown::Shutdown;

/// Cancel to drop the connection this request came on (see the module docs).
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub CancellationToken);

/// How long in-flight requests get to finish once `shutdown` is cancelled, and how long
/// a connection closed for idleness gets to say goodbye.
const DRAIN: Duration = Duration::from_secs(10);

/// How long a client has to send a request head (line and headers), counted from its
/// first byte — or, for a new connection, from when it connected (see the module docs).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a keep-alive connection may stay idle between requests unless configured.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// The most a request head may take (hyper's read buffer): 431 beyond it. hyper's own
/// default is about 400 KiB per connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Per-connection settings.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Cap the kernel's send buffer per connection. Linux grows it up to 4 MiB by default,
    /// which for tens of thousands of mostly idle streams is memory the notifier does not
    /// control, and it hides a client that stopped reading for megabytes.
    pub send_buffer: Option<usize>,
    /// Close a connection idle (between requests) this long; at least 1 s.
    pub idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            send_buffer: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl ServeOptions {
    /// The defaults with an idle timeout of `secs` seconds (a service's setting).
    pub fn with_idle_timeout_secs(secs: u64) -> Self {
        Self {
            idle_timeout: Duration::from_secs(secs),
            ..Self::default()
        }
    }

    fn idle_timeout(&self) -> Duration {
        self.idle_timeout.max(Duration::from_secs(1))
    }

    /// What `Keep-Alive: timeout=N` says: a second less than the server waits, so a
    /// client that takes it to the letter is done with the connection before it closes.
    fn advertised_idle_secs(&self) -> u64 {
        self.idle_timeout().as_secs().saturating_sub(1).max(1)
    }
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

/// [`serve`] with per-connection settings.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
    options: ServeOptions,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    // No header read timeout of hyper's: it runs from the end of the previous response,
    // so it would also be the idle timeout. The watchdog bounds heads (see the module docs).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let keep_alive = HeaderValue::from_str(&format!("timeout={}", options.advertised_idle_secs()))
        .map_err(std::io::Error::other)?;
    let limits = Limits {
        head: HEADER_READ_TIMEOUT,
        idle: options.idle_timeout(),
    };
    // Every connection task holds a receiver; the sender sees them all gone when drained.
    let (drained, connections) = watch::channel(());
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
        let (activity, phases) = Activity::new_connection();
        let io = WatchedIo {
            inner: stream,
            activity: activity.clone(),
        };
        let keep_alive = keep_alive.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let in_flight = activity.start(request.version());
            let advertise = advertises_keep_alive(&request);
            request.extensions_mut().insert(tag.clone());
            // The peer address, for `axum::extract::ConnectInfo` (per-IP rate limits).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let router = router.clone();
            let keep_alive = keep_alive.clone();
            async move {
                let mut response = router
                    .oneshot(request.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                if advertise && response.status() != axum::http::StatusCode::SWITCHING_PROTOCOLS {
                    response
                        .headers_mut()
                        .entry(header::HeaderName::from_static("keep-alive"))
                        .or_insert(keep_alive);
                }
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
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let shutdown = shutdown.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            let _held = held;
            let mut connection = std::pin::pin!(connection);
            let why = tokio::select! {
                biased;
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = kill.cancelled() => {
                    tracing::debug!("connection dropped by its handler");
                    return;
                }
                _ = shutdown.cancelled() => "shutting down",
                expired = watchdog(phases, limits) => match expired {
                    Expired::Head => {
                        // Slowloris or silence: nothing of value to finish.
                        tracing::debug!("no complete request head in time; connection dropped");
                        return;
                    }
                    Expired::Idle => "idle",
                },
            };
            // Let a request that arrives meanwhile finish; HTTP/2 sends GOAWAY.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection => tracing::debug!(why, "connection closed"),
                _ = kill.cancelled() => tracing::debug!("connection dropped by its handler"),
                _ = tokio::time::sleep(DRAIN) => tracing::debug!(why, "connection dropped after the drain period"),
            }
        });
    }
    drop(listener);
    drop(connections);
    if tokio::time::timeout(DRAIN, drained.closed()).await.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

/// Whether the response to `request` should say `Keep-Alive: timeout=N`: HTTP/1.1 that
/// does not ask to close (HTTP/2 forbids the header; HTTP/1.0 keep-alive is not offered).
fn advertises_keep_alive<B>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_11
        && !request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

/// The watchdog's bounds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    head: Duration,
    idle: Duration,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request head: since the connection opened, or since the first byte
    /// of a head arrived on an idle connection.
    AwaitingHead,
    /// Requests in flight.
    Busy,
    /// Between requests, nothing received.
    Idle,
}

/// A connection's phase, since when, and what its watchdog needs to tell phases apart.
#[derive(Debug, Clone, Copy)]
struct Phases {
    phase: Phase,
    since: Instant,
    in_flight: usize,
    /// HTTP/2 sends frames (PING, WINDOW_UPDATE) between requests: bytes then do not
    /// start a request head.
    http2: bool,
}

/// One connection's phase, shared by its socket, its service and its watchdog.
#[derive(Clone)]
struct Activity(Arc<watch::Sender<Phases>>);

impl Activity {
    /// A new connection: waiting for its first request head from now.
    fn new_connection() -> (Self, watch::Receiver<Phases>) {
        let (sender, receiver) = watch::channel(Phases {
            phase: Phase::AwaitingHead,
            since: Instant::now(),
            in_flight: 0,
            http2: false,
        });
        (Self(Arc::new(sender)), receiver)
    }

    /// A request's head arrived: it is in flight until the returned guard is dropped.
    fn start(&self, version: Version) -> InFlight {
        self.0.send_modify(|p| {
            p.in_flight += 1;
            p.phase = Phase::Busy;
            p.since = Instant::now();
            p.http2 |= version == Version::HTTP_2;
        });
        InFlight(self.clone())
    }

    /// Bytes arrived: on an idle HTTP/1 connection they begin a request head.
    fn received(&self) {
        self.0.send_if_modified(|p| {
            if p.phase != Phase::Idle || p.http2 {
                return false;
            }
            p.phase = Phase::AwaitingHead;
            p.since = Instant::now();
            true
        });
    }
}

/// One request in flight, from its head until its response body ends or is dropped.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0 .0.send_modify(|p| {
            p.in_flight = p.in_flight.saturating_sub(1);
            if p.in_flight == 0 {
                p.phase = Phase::Idle;
                p.since = Instant::now();
            }
        });
    }
}

/// Why the watchdog gave up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// No complete request head within the header timeout.
    Head,
    /// Idle for the idle timeout.
    Idle,
}

/// Completes when the connection has spent too long waiting for a head or idle. Deadlines
/// come from when the current phase began, and every change of phase wakes it, so a phase
/// it slept through still moves its deadline.
async fn watchdog(mut phases: watch::Receiver<Phases>, limits: Limits) -> Expired {
    loop {
        let now = *phases.borrow_and_update();
        let (deadline, expired) = match now.phase {
            Phase::Busy => {
                if phases.changed().await.is_err() {
                    // The connection's service is gone, and with it the connection.
                    return std::future::pending().await;
                }
                continue;
            }
            Phase::AwaitingHead => (now.since + limits.head, Expired::Head),
            Phase::Idle => (now.since + limits.idle, Expired::Idle),
        };
        tokio::select! {
            biased;
            changed = phases.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
            }
            () = tokio::time::sleep_until(deadline) => return expired,
        }
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
