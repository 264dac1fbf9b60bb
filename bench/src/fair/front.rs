//! The naive designs served like seatq: behind the gateway's own router layers.
//!
//! A front is a separate process (`bench front`, started by the fair fight for each run)
//! so that its CPU and memory are its own, as the gateway's are. It builds the gateway's
//! `AppState` from the stack's configuration and serves `POST /v1/events/{id}/holds`
//! through `seatq_gateway::app::with_layers` and `serve_app`: the same middleware, the
//! same connection handling, and in its handler the same extractors (JWT, client IP,
//! problem+json rejections), the same rate limits (on or off per the stack's settings),
//! catalog lookup, sale gate, request validation and seat-limit pre-check as
//! `routes::holds::request_hold`. Where the gateway then produces a command and answers
//! `202`, a front decides at once with its design (the bench's own design code, on a
//! pool of connections to the bench database or the private Redis) and answers `200`
//! with the decision, shaped like the gateway's inline answer to `?wait_ms=`.
//!
//! Every decision goes to an in-memory ledger (arrival stamp, seats named, seats won),
//! written to a file when the front stops (its stdin closes): the fairness and oversell
//! counts are computed from it (`crate::fair::ledger`).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use seatq_common::command::HoldSeats;
use seatq_common::http::error::{AppError, AppResult};
use seatq_common::http::extract::{Json, Path, Query};
use seatq_common::ids::{EventId, HoldId};
use seatq_common::layout::VenueLayout;
use seatq_common::shutdown::Shutdown;
use seatq_gateway::auth::AuthUser;
use seatq_gateway::holds::{self, HoldRequestBody, HoldRequestView, RequestState};
use seatq_gateway::rate_limit::{self, ClientIp, Limit};
use seatq_gateway::routes::holds::HoldParams;
use seatq_gateway::state::AppState;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::BenchError;
use crate::fair::ledger::Entry;
use crate::runner::{Client, Decision};
use crate::scenarios::conditional_update::ConditionalUpdate;
use crate::scenarios::for_update::ForUpdate;
use crate::scenarios::redis_first::{client::RedisFirst, writer};
use crate::stack::Stack;
use crate::workload::{user_of, Attempt, Request, Stadium};

/// The first line a front prints: `listening http://127.0.0.1:port`.
pub const LISTENING: &str = "listening ";

/// Which naive design a front serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FrontDesign {
    ConditionalUpdate,
    ForUpdate,
    RedisFirst,
}

/// How a front is started (the hidden `bench front` subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct FrontOptions {
    #[arg(long, value_enum)]
    pub design: FrontDesign,
    /// The repository root (for the stack's configuration).
    #[arg(long)]
    pub root: PathBuf,
    /// PostgreSQL admin URL of the bench database's cluster.
    #[arg(long)]
    pub admin_url: String,
    /// The bench database (seats, holds, claims).
    #[arg(long)]
    pub database: String,
    /// The private Redis of the Redis-first design.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Connections of the design's pool (to PostgreSQL, or to Redis).
    #[arg(long)]
    pub pool: usize,
    /// Where the ledger is written when the front stops.
    #[arg(long)]
    pub ledger: PathBuf,
}

/// A fixed set of one design's clients (each with its own connection), lent out one
/// request at a time.
struct Pool<C> {
    idle: Mutex<Vec<C>>,
    permits: Semaphore,
}

impl<C: Client> Pool<C> {
    fn new(clients: Vec<C>) -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(clients.len()),
            idle: Mutex::new(clients),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<C>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decide `attempt` on one of the pool's clients, waiting for one to be free.
    async fn decide(&self, attempt: &Attempt) -> Result<Decision, BenchError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| BenchError::Stack("the front is stopping".into()))?;
        let mut client = self
            .idle()
            .pop()
            .ok_or_else(|| BenchError::Stack("the front's pool is empty".into()))?;
        let decision = client.attempt(attempt).await;
        self.idle().push(client);
        decision
    }

    /// Drop every client (the Redis-first writer stops once they are gone).
    fn close(&self) {
        self.permits.close();
        self.idle().clear();
    }
}

enum Design {
    ConditionalUpdate(Arc<Pool<ConditionalUpdate>>),
    ForUpdate(Arc<Pool<ForUpdate>>),
    RedisFirst(Arc<Pool<RedisFirst>>),
}

impl Design {
    async fn decide(&self, attempt: &Attempt) -> Result<Decision, BenchError> {
        match self {
            Design::ConditionalUpdate(p) => p.decide(attempt).await,
            Design::ForUpdate(p) => p.decide(attempt).await,
            Design::RedisFirst(p) => p.decide(attempt).await,
        }
    }

    fn close(&self) {
        match self {
            Design::ConditionalUpdate(p) => p.close(),
            Design::ForUpdate(p) => p.close(),
            Design::RedisFirst(p) => p.close(),
        }
    }
}

type Writer = JoinHandle<Result<writer::WriterStats, BenchError>>;

async fn connect(opts: &FrontOptions) -> Result<(Design, Option<Writer>), BenchError> {
    let db = PgConnectOptions::from_str(&opts.admin_url)?.database(&opts.database);
    let mut conns: Vec<PgConnection> = Vec::new();
    let pool = opts.pool.max(1);
    Ok(match opts.design {
        FrontDesign::ConditionalUpdate | FrontDesign::ForUpdate => {
            for _ in 0..pool {
                conns.push(db.connect().await?);
            }
            let design = if opts.design == FrontDesign::ForUpdate {
                Design::ForUpdate(Pool::new(conns.into_iter().map(ForUpdate::new).collect()))
            } else {
                Design::ConditionalUpdate(Pool::new(
                    conns.into_iter().map(ConditionalUpdate::new).collect(),
                ))
            };
            (design, None)
        }
        FrontDesign::RedisFirst => {
            let url = opts
                .redis_url
                .as_deref()
                .ok_or_else(|| BenchError::Stack("redis_first needs --redis-url".into()))?;
            let (promises, task) = writer::spawn(db.connect().await?);
            let resent = Arc::new(AtomicU64::new(0));
            let mut clients = Vec::with_capacity(pool);
            for _ in 0..pool {
                clients
                    .push(RedisFirst::connect(url, promises.clone(), Arc::clone(&resent)).await?);
            }
            (Design::RedisFirst(Pool::new(clients)), Some(task))
        }
    })
}

struct Front {
    design: Design,
    stadium: Stadium,
    ledger: Mutex<Vec<Entry>>,
}

impl Front {
    /// Decide `attempt` and write it to the ledger, on a task of its own: a request the
    /// client gave up on (its connection closed, the timeout layer) neither cuts a
    /// transaction short nor loses a client or a ledger entry. The seats won.
    async fn decide(
        self: &Arc<Self>,
        arrived_us: i64,
        attempt: Attempt,
    ) -> Result<Vec<i32>, BenchError> {
        let front = Arc::clone(self);
        tokio::spawn(async move {
            let won = match front.design.decide(&attempt).await? {
                Decision::Held(seats) => seats,
                Decision::Rejected | Decision::Accepted(_) => Vec::new(),
            };
            let named = match &attempt.request {
                Request::Seats(seats) => seats.clone(),
                Request::BestAvailable { .. } => Vec::new(),
            };
            front
                .ledger
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Entry {
                    arrived_us,
                    user: attempt.user,
                    named,
                    won: won.clone(),
                });
            Ok(won)
        })
        .await?
    }
}

/// The bench's request for a planned hold. The bench creates its events with the
/// stadium's sections in order, so seat numbers agree; checked per section (`None`: they
/// do not).
fn request_of(stadium: &Stadium, layout: &VenueLayout, hold: &HoldSeats) -> Option<Request> {
    match hold {
        HoldSeats::Seats { seat_nos, .. } => {
            let agree = seat_nos.iter().all(|&n| {
                layout.section_of(n).map(|s| s.code.as_str())
                    == stadium.section_of(n).map(|s| s.code()).as_deref()
            });
            agree.then(|| Request::Seats(seat_nos.clone()))
        }
        HoldSeats::BestAvailable {
            section_id,
            quantity,
            ..
        } => {
            let theirs = layout.section_by_id(*section_id)?;
            let ours = stadium.sections.iter().find(|s| s.code() == theirs.code)?;
            (ours.first_seat_no == theirs.first_seat_no).then_some(Request::BestAvailable {
                section: *ours,
                quantity: *quantity,
            })
        }
    }
}

/// `routes::holds::request_hold`, deciding instead of queueing.
#[allow(clippy::too_many_arguments)] // the gateway handler's extractors, one by one
async fn request_hold(
    State(state): State<AppState>,
    Extension(front): Extension<Arc<Front>>,
    user: AuthUser,
    client: ClientIp,
    Path(event_id): Path<EventId>,
    Query(_params): Query<HoldParams>,
    headers: HeaderMap,
    Json(body): Json<HoldRequestBody>,
) -> AppResult<Response> {
    rate_limit::check(&state, Limit::Holds, &user.user_id, &client).await?;
    let entry = state
        .catalog
        .event(event_id)
        .await?
        .ok_or_else(|| seatq_gateway::routes::events::event_not_found(event_id))?;
    seatq_gateway::admission::sale_gate(&state.admission, &entry.info, &user.user_id, &headers)?;
    let hold = holds::plan_hold(&entry, &body, state.settings.gateway.max_seats_per_request)?;
    holds::check_seat_limit(&state, &user, &entry, &hold, None).await?;
    let request = request_of(&front.stadium, &entry.layout, &hold).ok_or_else(|| {
        AppError::unprocessable("not_a_bench_venue", "the event's seats are not the bench's")
    })?;
    let user_no = user_of(user.user_id.as_str()).ok_or_else(|| {
        AppError::unprocessable("not_a_bench_user", "the bench's users are u{number}")
    })?;
    let request_id = state.request_ids.mint(&user.user_id);
    // Where the gateway stamps `issued_at`: checked, about to be queued (here: decided).
    let arrived_us = chrono::Utc::now().timestamp_micros();
    let attempt = Attempt {
        user: user_no,
        request,
    };
    let won = front
        .decide(arrived_us, attempt)
        .await
        .map_err(|e| AppError::internal("decide", e))?;
    let held = !won.is_empty();
    let seat_ids = won
        .iter()
        .filter_map(|&n| entry.layout.seat_label(n))
        .collect();
    let view = HoldRequestView {
        request_id,
        event_id: Some(event_id),
        status: if held {
            RequestState::Held
        } else {
            RequestState::Rejected
        },
        status_url: holds::status_url(request_id),
        hold_id: held.then(HoldId::new),
        seat_ids: held.then_some(seat_ids),
        section: None,
        quantity: None,
        expires_at: None,
        reason: (!held).then(|| "seats_unavailable".to_string()),
        unavailable_seats: None,
        alternatives: None,
        stranded_seats: None,
        suggestion: None,
        total_cents: None,
        decided_at: Some(chrono::Utc::now()),
        ahead: None,
        receipt: None,
    };
    Ok((StatusCode::OK, Json(view)).into_response())
}

/// Run a front until its stdin closes, then write its ledger.
pub fn main(opts: FrontOptions) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(opts))?;
    Ok(())
}

async fn serve(opts: FrontOptions) -> Result<(), BenchError> {
    let settings = Stack::settings(&opts.root)?;
    // As the gateway's main does (logs go to stderr; stdout says where it listens).
    seatq_common::telemetry::init(&settings.log);
    let shutdown = Shutdown::new();
    let state = AppState::connect(settings.clone(), shutdown.clone())
        .await
        .map_err(|e| BenchError::Stack(format!("front: {e}")))?;
    let (design, writer) = connect(&opts).await?;
    let front = Arc::new(Front {
        design,
        stadium: Stadium::new(),
        ledger: Mutex::new(Vec::new()),
    });
    let api = Router::new()
        .route(
            "/v1/events/{event_id}/holds",
            post(request_hold).layer(axum::middleware::from_fn(
                seatq_common::metrics::count_hold_requests,
            )),
        )
        .layer(Extension(Arc::clone(&front)));
    let app = seatq_gateway::app::with_layers(api, state);
    let listener = seatq_common::http::serve::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::io("front: listening", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::io("front: its address", e))?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("{LISTENING}http://{addr}\n").as_bytes())
        .await
        .and(stdout.flush().await)
        .map_err(|e| BenchError::io("front: stdout", e))?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
        stop.cancel();
    });
    seatq_gateway::app::serve_app(listener, app, &settings, shutdown)
        .await
        .map_err(|e| BenchError::io("front: serving", e))?;
    front.design.close();
    if let Some(writer) = writer {
        writer.await??;
    }
    let ledger = std::mem::take(&mut *front.ledger.lock().unwrap_or_else(PoisonError::into_inner));
    let json = serde_json::to_vec(&ledger)?;
    tokio::fs::write(&opts.ledger, json)
        .await
        .map_err(|e| BenchError::io(format!("writing {}", opts.ledger.display()), e))
}

#[cfg(test)]
mod tests {
    use seatq_common::ids::SectionId;
    use seatq_common::layout::{SectionKind, SectionLayout};

    use super::*;

    /// The stadium as the admin API creates it, first sections shifted by `shift`.
    fn layout(stadium: &Stadium, shift: i32) -> VenueLayout {
        VenueLayout::new(
            stadium
                .sections
                .iter()
                .map(|s| SectionLayout {
                    id: SectionId::new(),
                    code: s.code(),
                    name: s.code(),
                    kind: SectionKind::Reserved,
                    rows: s.rows,
                    seats_per_row: s.seats_per_row,
                    first_seat_no: s.first_seat_no + shift,
                    capacity: s.capacity(),
                    price_cents: 100,
                })
                .collect(),
        )
    }

    #[test]
    fn planned_holds_become_the_benchs_requests() {
        let stadium = Stadium::new();
        let venue = layout(&stadium, 0);
        let seats = HoldSeats::seats(vec![5, 6]);
        assert_eq!(
            request_of(&stadium, &venue, &seats),
            Some(Request::Seats(vec![5, 6]))
        );
        let second = &venue.sections()[1];
        let best = HoldSeats::best(second.id, 2);
        assert_eq!(
            request_of(&stadium, &venue, &best),
            Some(Request::BestAvailable {
                section: stadium.sections[1],
                quantity: 2
            })
        );
    }

    #[test]
    fn a_venue_numbered_otherwise_is_refused() {
        let stadium = Stadium::new();
        let venue = layout(&stadium, 1);
        let best = HoldSeats::best(venue.sections()[0].id, 1);
        assert_eq!(request_of(&stadium, &venue, &best), None);
    }
}
