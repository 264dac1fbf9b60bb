//! Prometheus metrics: one process-wide recorder, the `/metrics` route, HTTP latency
//! middleware, and the names and label vocabularies of every metric seatq exports.
//!
//! Services record through the `metrics` facade (cheap when nothing is installed: tests
//! and tools that never call [`install`] pay almost nothing). Each service calls
//! [`install`] once at start; it is idempotent, because tests embed several services in
//! one process and the recorder is global. The exporter runs without its own HTTP
//! listener: the gateway and the notifier serve [`routes`] on their own servers, the
//! consumer and the scheduler, which have no HTTP server, get a small one ([`serve`],
//! `metrics.consumer_listen` / `metrics.scheduler_listen`; empty = off).
//!
//! Labels are bounded: route templates (never raw paths), status classes, reason codes
//! (static strings), partitions. No user, request or event ids.
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `seatq_http_request_duration_seconds` | histogram | route, method, status | time to the response head, per matched route template (`unmatched` for 404s) |
//! | `seatq_hold_requests_total` | counter | result (`accepted`/`rejected`), reason | hold requests at the gateway; reason is the problem code of a rejection |
//! | `seatq_rate_limited_total` | counter | limit, scope | requests refused with `429 rate_limited` |
//! | `seatq_consumer_batch_records` | histogram | | Kafka records per applied batch |
//! | `seatq_consumer_batch_duration_seconds` | histogram | | one batch's transaction, begin to commit |
//! | `seatq_consumer_decisions_total` | counter | outcome (`held`/`rejected`/`applied`) | commands decided (committed); `rate()` is decisions/s |
//! | `seatq_consumer_dead_letters_total` | counter | partition | commands the consumer could not apply as they were (unreadable, malformed, or failing when applied): rejected, kept in `dead_letters` |
//! | `seatq_consumer_poison_isolations_total` | counter | partition | batches that failed for a reason other than a passing one and were split to find the failing commands |
//! | `seatq_consumer_lag_records` | gauge | partition | high watermark − next offset to apply, per owned partition (0 once given up) |
//! | `seatq_outbox_backlog` | gauge | partition | outbox rows written but not yet relayed, per owned partition |
//! | `seatq_scheduler_timers_pending` | gauge | partition | hold timers read and not fired yet (the delay queue) |
//! | `seatq_scheduler_timers_fired_total` | counter | kind (`expire`/`reminder`) | hold timers fired |
//! | `seatq_scheduler_sweeper_caught_total` | counter | | overdue holds the sweeper expired (timers that did not fire) |
//! | `seatq_scheduler_expiries_rearmed_total` | counter | | expiries the consumer found not due yet (the scheduler's clock ahead of its own) and re-armed |
//! | `seatq_refund_attempts_total` | counter | result (`issued`/`refused`/`unreachable`) | calls to the provider to issue a refund |
//! | `seatq_refunds_failed_total` | counter | | refunds given up after `scheduler.refund_max_attempts` tries (an operator must act) |
//! | `seatq_refunds_failed_unresolved` | gauge | | refunds in state `failed` now, sampled by the refund worker |
//! | `seatq_payment_mismatches_total` | counter | field (`amount`/`currency`) | captured payments that were not what seatq asked for (refunded, not booked) |
//! | `seatq_waiting_room_length` | gauge | partition | tickets waiting, summed over the partition's events |
//! | `seatq_waiting_room_admitted_total` | counter | partition | tickets admitted; `rate()` is the admission rate |
//! | `seatq_waiting_room_admission_rate` | gauge | partition | the controllers' current rates (admissions/s), summed over the partition's events |
//! | `seatq_notifier_clients` | gauge | | SSE and WebSocket streams connected |
//! | `seatq_notifier_frames_sent_total` | counter | | frames queued to clients |
//! | `seatq_control_room_frame_duration_seconds` | histogram | | one control-room picture of a watched event, computed once a second per event however many watch |
//! | `seatq_control_room_watchers` | gauge | | control-room streams open on this gateway |
//! | `seatq_notifier_slow_clients_dropped_total` | counter | | clients disconnected because they fell behind |
//!
//! Several consumers or schedulers each export their own partitions; sum by partition
//! across instances (a partition given up reads 0 on its old owner).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::error::ProblemCode;
use crate::shutdown::Shutdown;

/// The names of every metric, for the code and for the dashboard's test.
pub mod names {
    pub const HTTP_REQUEST_SECONDS: &str = "seatq_http_request_duration_seconds";
    pub const HOLD_REQUESTS: &str = "seatq_hold_requests_total";
    pub const RATE_LIMITED: &str = "seatq_rate_limited_total";
    pub const BATCH_RECORDS: &str = "seatq_consumer_batch_records";
    pub const BATCH_SECONDS: &str = "seatq_consumer_batch_duration_seconds";
    pub const DECISIONS: &str = "seatq_consumer_decisions_total";
    pub const DEAD_LETTERS: &str = "seatq_consumer_dead_letters_total";
    pub const POISON_ISOLATIONS: &str = "seatq_consumer_poison_isolations_total";
    pub const CONSUMER_LAG: &str = "seatq_consumer_lag_records";
    pub const OUTBOX_BACKLOG: &str = "seatq_outbox_backlog";
    pub const TIMERS_PENDING: &str = "seatq_scheduler_timers_pending";
    pub const TIMERS_FIRED: &str = "seatq_scheduler_timers_fired_total";
    pub const SWEEPER_CAUGHT: &str = "seatq_scheduler_sweeper_caught_total";
    pub const EXPIRIES_REARMED: &str = "seatq_scheduler_expiries_rearmed_total";
    pub const REFUND_ATTEMPTS: &str = "seatq_refund_attempts_total";
    pub const REFUNDS_FAILED: &str = "seatq_refunds_failed_total";
    pub const REFUNDS_FAILED_UNRESOLVED: &str = "seatq_refunds_failed_unresolved";
    pub const PAYMENT_MISMATCHES: &str = "seatq_payment_mismatches_total";
    pub const WAITING_ROOM_LENGTH: &str = "seatq_waiting_room_length";
    pub const WAITING_ROOM_ADMITTED: &str = "seatq_waiting_room_admitted_total";
    pub const WAITING_ROOM_RATE: &str = "seatq_waiting_room_admission_rate";
    pub const NOTIFIER_CLIENTS: &str = "seatq_notifier_clients";
    pub const NOTIFIER_FRAMES: &str = "seatq_notifier_frames_sent_total";
    pub const NOTIFIER_DROPPED: &str = "seatq_notifier_slow_clients_dropped_total";
    pub const CONTROL_ROOM_FRAME_SECONDS: &str = "seatq_control_room_frame_duration_seconds";
    pub const CONTROL_ROOM_WATCHERS: &str = "seatq_control_room_watchers";
}

/// Every metric: (name, help).
pub const ALL: &[(&str, &str)] = &[
    (
        names::HTTP_REQUEST_SECONDS,
        "HTTP request latency to the response head, by route template, method and status class",
    ),
    (
        names::HOLD_REQUESTS,
        "Hold requests at the gateway, accepted or rejected (by problem code)",
    ),
    (names::RATE_LIMITED, "Requests refused by a rate limit"),
    (
        names::BATCH_RECORDS,
        "Kafka records per applied consumer batch",
    ),
    (names::BATCH_SECONDS, "Consumer batch transaction time"),
    (
        names::DECISIONS,
        "Commands decided and committed by the consumer, by outcome",
    ),
    (
        names::DEAD_LETTERS,
        "Commands the consumer rejected and kept in dead_letters instead of applying, per partition",
    ),
    (
        names::POISON_ISOLATIONS,
        "Consumer batches split to isolate commands that cannot be applied, per partition",
    ),
    (
        names::CONSUMER_LAG,
        "Records of the commands topic not applied yet, per owned partition",
    ),
    (
        names::OUTBOX_BACKLOG,
        "Outbox rows not yet relayed, per owned partition",
    ),
    (
        names::TIMERS_PENDING,
        "Hold timers waiting to fire, per owned partition",
    ),
    (names::TIMERS_FIRED, "Hold timers fired, by kind"),
    (
        names::SWEEPER_CAUGHT,
        "Overdue holds expired by the sweeper",
    ),
    (
        names::EXPIRIES_REARMED,
        "Hold expiries that arrived before the hold was due by the consumer's clock, re-armed",
    ),
    (
        names::REFUND_ATTEMPTS,
        "Refund calls to the payment provider, by result",
    ),
    (
        names::REFUNDS_FAILED,
        "Refunds given up after their last try (an operator must act)",
    ),
    (
        names::REFUNDS_FAILED_UNRESOLVED,
        "Refunds in state failed now",
    ),
    (
        names::PAYMENT_MISMATCHES,
        "Captured payments whose amount or currency was not what was asked for (refunded)",
    ),
    (
        names::WAITING_ROOM_LENGTH,
        "Waiting-room tickets waiting, per partition",
    ),
    (
        names::WAITING_ROOM_ADMITTED,
        "Waiting-room tickets admitted, per partition",
    ),
    (
        names::WAITING_ROOM_RATE,
        "Admission controllers' current rate (per second), per partition",
    ),
    (
        names::NOTIFIER_CLIENTS,
        "SSE and WebSocket streams connected",
    ),
    (names::NOTIFIER_FRAMES, "Frames queued to notifier clients"),
    (
        names::NOTIFIER_DROPPED,
        "Notifier clients disconnected for falling behind",
    ),
    (
        names::CONTROL_ROOM_FRAME_SECONDS,
        "Time to compute one control-room picture of a watched event (once a second per event)",
    ),
    (
        names::CONTROL_ROOM_WATCHERS,
        "Control-room streams open on this gateway",
    ),
];

/// Latency buckets (seconds): 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch size buckets (records), up to past the default `consumer.batch_max`.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];
/// How often histograms are compacted when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the Prometheus recorder for this process (once; later calls return the same
/// handle). None if another recorder was installed first: metrics are then not exported,
/// which is logged, never fatal.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(names::BATCH_RECORDS.into()), SIZE_BUCKETS)
                })
                .and_then(PrometheusBuilder::install_recorder);
            let handle = match built {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics stays empty");
                    return None;
                }
            };
            for (name, help) in ALL {
                // The facade keeps one description per name whatever its kind.
                metrics::describe_counter!(*name, *help);
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("seatq-metrics".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms compact on scrape only");
            }
            Some(handle)
        })
        .as_ref()
}

/// The exposition text of everything recorded so far (empty without a recorder).
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

async fn metrics_handler() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        render(),
    )
        .into_response()
}

/// `GET /metrics`, to merge into a service's router (outside its latency middleware).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(metrics_handler))
}

/// Add the HTTP latency middleware to every route of `router`. Apply it after all routes
/// are merged: it sees the matched route template only for routes it wraps.
pub fn instrument<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(axum::middleware::from_fn(track_http))
}

async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = status_class(response.status().as_u16());
    metrics::histogram!(names::HTTP_REQUEST_SECONDS, "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Standard methods by name; anything else (a client can send any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Serve `/metrics` on `listen` in the background until `shutdown` (services without an
/// HTTP server of their own). Empty `listen`: off. A port that cannot be bound is logged
/// and the service runs on without it. Returns the bound address.
pub async fn serve(listen: &str, shutdown: Shutdown) -> Option<SocketAddr> {
    install();
    if listen.trim().is_empty() {
        return None;
    }
    let listener = match crate::http::serve::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%listen, error = %e, "cannot bind the metrics listener; running without it");
            return None;
        }
    };
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = crate::http::serve::serve(listener, routes(), shutdown).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    addr
}

// What each service records, one function per measurement so call sites stay one line
// and label values come from one place.

/// A hold request answered by the gateway: `Some(problem code)` for a rejection.
pub fn hold_request(rejected: Option<&'static str>) {
    match rejected {
        None => metrics::counter!(names::HOLD_REQUESTS, "result" => "accepted", "reason" => "")
            .increment(1),
        Some(code) => {
            metrics::counter!(names::HOLD_REQUESTS, "result" => "rejected", "reason" => code)
                .increment(1)
        }
    }
}

/// Middleware for the hold route: every answer counts, extractor refusals included, as
/// accepted (2xx) or rejected by its problem code.
pub async fn count_hold_requests(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status().is_success() {
        hold_request(None);
    } else {
        let code = response.extensions().get::<ProblemCode>();
        hold_request(Some(code.map_or("unknown", |c| c.0)));
    }
    response
}

pub fn rate_limited(limit: &'static str, scope: &'static str) {
    metrics::counter!(names::RATE_LIMITED, "limit" => limit, "scope" => scope).increment(1);
}

/// A committed consumer batch: its records, duration and decisions per outcome.
pub fn batch_applied(records: usize, took: Duration, held: u64, rejected: u64, applied: u64) {
    metrics::histogram!(names::BATCH_RECORDS).record(records as f64);
    metrics::histogram!(names::BATCH_SECONDS).record(took.as_secs_f64());
    for (outcome, n) in [("held", held), ("rejected", rejected), ("applied", applied)] {
        if n > 0 {
            metrics::counter!(names::DECISIONS, "outcome" => outcome).increment(n);
        }
    }
}

/// One control-room picture computed (shared by every watcher of its event).
pub fn control_room_frame(took: Duration) {
    metrics::histogram!(names::CONTROL_ROOM_FRAME_SECONDS).record(took.as_secs_f64());
}

/// A control-room stream opened (+1) or closed (-1).
pub fn control_room_watchers(delta: f64) {
    metrics::gauge!(names::CONTROL_ROOM_WATCHERS).increment(delta);
}

/// Dead letters a committed batch recorded.
pub fn dead_letters(partition: i32, count: u64) {
    if count > 0 {
        metrics::counter!(names::DEAD_LETTERS, "partition" => partition.to_string())
            .increment(count);
    }
}

/// A batch failed for a lasting reason and is being split to find the failing commands.
pub fn poison_isolation(partition: i32) {
    metrics::counter!(names::POISON_ISOLATIONS, "partition" => partition.to_string()).increment(1);
}

pub fn consumer_lag(partition: i32, lag: i64) {
    metrics::gauge!(names::CONSUMER_LAG, "partition" => partition.to_string()).set(lag as f64);
}

pub fn outbox_backlog(partition: i32, rows: i64) {
    metrics::gauge!(names::OUTBOX_BACKLOG, "partition" => partition.to_string()).set(rows as f64);
}

pub fn timers_pending(partition: i32, pending: usize) {
    metrics::gauge!(names::TIMERS_PENDING, "partition" => partition.to_string())
        .set(pending as f64);
}

/// `kind`: `expire` or `reminder`.
pub fn timer_fired(kind: &'static str) {
    metrics::counter!(names::TIMERS_FIRED, "kind" => kind).increment(1);
}

pub fn sweeper_caught(holds: usize) {
    metrics::counter!(names::SWEEPER_CAUGHT).increment(holds as u64);
}

/// Start the money counters at 0 in a service that records them (the gateway and the
/// scheduler), so that the first payment mismatch or failed refund is an increase the
/// alert rules (`increase(…)`) see rather than the first sample of a new series.
pub fn zero_money_counters() {
    for field in ["amount", "currency"] {
        metrics::counter!(names::PAYMENT_MISMATCHES, "field" => field).increment(0);
    }
    metrics::counter!(names::REFUNDS_FAILED).increment(0);
}

/// Counted by the scheduler when it reads a re-armed timer (the consumer, which decides
/// the re-arm, reports it in the decision's detail).
pub fn expiry_rearmed() {
    metrics::counter!(names::EXPIRIES_REARMED).increment(1);
}

/// One call to the provider for a refund: `issued`, `refused` (an error answer) or
/// `unreachable`.
pub fn refund_attempt(result: &'static str) {
    metrics::counter!(names::REFUND_ATTEMPTS, "result" => result).increment(1);
}

/// A refund given up after its last try.
pub fn refund_failed() {
    metrics::counter!(names::REFUNDS_FAILED).increment(1);
}

pub fn refunds_failed_unresolved(refunds: i64) {
    metrics::gauge!(names::REFUNDS_FAILED_UNRESOLVED).set(refunds as f64);
}

/// `field`: `amount` or `currency`.
pub fn payment_mismatch(field: &'static str) {
    metrics::counter!(names::PAYMENT_MISMATCHES, "field" => field).increment(1);
}

pub fn waiting_room_length(partition: i32, waiting: i64) {
    metrics::gauge!(names::WAITING_ROOM_LENGTH, "partition" => partition.to_string())
        .set(waiting as f64);
}

pub fn waiting_room_admitted(partition: i32, admitted: usize) {
    metrics::counter!(names::WAITING_ROOM_ADMITTED, "partition" => partition.to_string())
        .increment(admitted as u64);
}

pub fn waiting_room_rate(partition: i32, rate: f64) {
    metrics::gauge!(names::WAITING_ROOM_RATE, "partition" => partition.to_string()).set(rate);
}

/// Handles the notifier keeps, so its per-frame, per-client path does not look metrics
/// up by name.
#[derive(Clone)]
pub struct NotifierMetrics {
    pub clients: metrics::Gauge,
    pub frames_sent: metrics::Counter,
    pub dropped_slow: metrics::Counter,
}

impl NotifierMetrics {
    pub fn new() -> Self {
        Self {
            clients: metrics::gauge!(names::NOTIFIER_CLIENTS),
            frames_sent: metrics::counter!(names::NOTIFIER_FRAMES),
            dropped_slow: metrics::counter!(names::NOTIFIER_DROPPED),
        }
    }
}

impl Default for NotifierMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (name, help) in ALL {
            assert!(name.starts_with("seatq_"), "{name}");
            assert!(!help.is_empty());
            assert!(seen.insert(*name), "{name} twice");
        }
    }

    #[test]
    fn exported_text_has_histogram_buckets_and_labels() {
        install().expect("recorder");
        batch_applied(3, Duration::from_millis(4), 2, 1, 0);
        consumer_lag(7, 42);
        let text = render();
        assert!(
            text.contains("seatq_consumer_batch_records_bucket{le=\"5\"}"),
            "{text}"
        );
        assert!(
            text.contains("seatq_consumer_batch_duration_seconds_bucket{le=\"0.005\"}"),
            "{text}"
        );
        assert!(
            text.contains("seatq_consumer_lag_records{partition=\"7\"} 42"),
            "{text}"
        );
        assert!(
            text.contains("seatq_consumer_decisions_total{outcome=\"held\"}"),
            "{text}"
        );
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("token")),
            "other"
        );
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
    }
}
