//! Command-line interface: `bench all|naive|pipeline|latency|crash|lifecycle|sse|waitroom|fair-fight|stage|render [options]`.
//!
//! Defaults describe the full flash-sale run; `--smoke` shrinks every part to a quick
//! check. Options shared by several subcommands live in flattened groups so each means
//! the same everywhere.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "seatq flash-sale benchmark")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `All` carries every part's options: parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one run: the naive designs, the seatq pipeline (flash sale, half-load
    /// latency, kill -9 of consumer and broker) and the stages; at full size (>= 500,000
    /// attempts from >= 50,000 users, not --smoke) writes every part's file in results/,
    /// and latest.json and the README rendered from them.
    All {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        naive: NaiveArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        lifecycle: LifecycleArgs,
        #[command(flatten)]
        sse: SseArgs,
        #[command(flatten)]
        waitroom: WaitroomArgs,
        #[command(flatten)]
        fair: FairArgs,
    },
    /// The fair fight: the pipeline and the naive designs (each in a front process
    /// behind the gateway's router layers) under the same HTTP client: closed loops,
    /// the burst, sustained overload; fairness and CPU per decision for each.
    FairFight {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        naive: NaiveArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        fair: FairArgs,
    },
    /// Serves one naive design behind the gateway's layers for `bench fair-fight`
    /// (started by it; stops when its stdin closes).
    #[command(hide = true)]
    Front(crate::fair::front::FrontOptions),
    /// The naive designs (conditional UPDATE, FOR UPDATE, Redis-first) directly on
    /// PostgreSQL and a private Redis.
    Naive {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        naive: NaiveArgs,
    },
    /// The seatq flash sale over HTTP against the running local stack (closed loop).
    Pipeline {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Open-loop latency run at `--rate` (default: half of the decisions/s of a
    /// closed-loop pipeline run made first).
    Latency {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// The flash sale while the consumer, then the broker, are killed (-9) and restarted.
    Crash {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// The hold lifecycle on a fresh event: holds paid through the sandbox provider,
    /// holds left to expire with users on the seats' waitlists, then offer, expiry and
    /// booking latencies and the lifecycle invariants in SQL. At full size (not
    /// --smoke, >= 3,000 seats) it also replaces its section of latest.json and the README.
    Lifecycle {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        lifecycle: LifecycleArgs,
    },
    /// SSE fan-out: thousands of event streams on one standalone notifier (started by
    /// the bench) during a storm of holds and cancels through the gateway; latency from
    /// decision and from publication to every stream, memory per stream, messages/s,
    /// drops, and every stream's seat map checked against the gateway's. At full size
    /// (not --smoke) it also replaces its section of latest.json and the README.
    Sse {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        sse: SseArgs,
    },
    /// On-sale with the virtual waiting room: a burst of users joins a fresh 50,000-seat
    /// event's waiting room before (a lottery) and after (first come, first served) it
    /// goes on sale; admitted users hold seats with their admission token while the
    /// scheduler's controller sets the admission rate. Join rate and latency, admissions
    /// per second, hold decision latency against the controller's target, queue waits,
    /// the lottery and FIFO checks and the invariants in SQL. At full size (not --smoke,
    /// >= 100,000 users) it also replaces its section of latest.json and the README.
    Waitroom {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        waitroom: WaitroomArgs,
    },
    /// Holds SSE streams for `bench sse` (started by it; requests on stdin).
    #[command(hide = true)]
    SseWorker {
        /// The notifier, `host:port`.
        #[arg(long)]
        addr: String,
        /// The stream's path, `/v1/events/{id}/stream`.
        #[arg(long)]
        path: String,
        /// The event the streams follow.
        #[arg(long)]
        event: String,
    },
    /// Re-render results/README.md (below its marker line) and results/latest.json from
    /// the part files in results/ (flash-sale.json, fair-fight.json, lifecycle.json,
    /// sse.json, waitroom.json), without running anything.
    Render {
        /// Where the results are [default: bench/results of this crate].
        #[arg(long)]
        results_dir: Option<PathBuf>,
    },
    /// The running local stack at rest: each process's CPU over `--secs` seconds with no
    /// traffic (an idle stack must be idle). Prints JSON.
    Idle {
        /// How long to watch.
        #[arg(long, default_value_t = 20)]
        secs: u64,
        /// The repository root (where `.dev/run` has the stack's pid files).
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// One stage on its own. gateway-accept and consumer-drain are measured together:
    /// the drain empties the topic the accept stage filled with the consumer stopped.
    Stage {
        which: Stage,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    GatewayAccept,
    ConsumerDrain,
    Broker,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Design {
    #[value(name = "naive_conditional_update")]
    ConditionalUpdate,
    #[value(name = "naive_for_update")]
    ForUpdate,
    #[value(name = "redis_first")]
    RedisFirst,
}

pub const ALL_DESIGNS: [Design; 3] = [
    Design::ConditionalUpdate,
    Design::ForUpdate,
    Design::RedisFirst,
];

/// The workload and where results go: the same for every part of a run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Hold attempts [default: 500000, or 20000 with --smoke].
    #[arg(long)]
    pub attempts: Option<usize>,
    /// Distinct users making them [default: 50000, or 5000 with --smoke].
    #[arg(long)]
    pub users: Option<u32>,
    /// Client tasks, each with its own connection (closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seed of the workload generator (same seed, same attempts).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Quick check: 20,000 attempts from 5,000 users and short waits; results are not
    /// written to latest.json or the README.
    #[arg(long)]
    pub smoke: bool,
    /// Where results go [default: bench/results of this crate].
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Free text recorded with the machine.
    #[arg(
        long,
        default_value = "2 cores shared with other work (PostgreSQL, Redis, the broker, the seatq services and the bench client on the same machine)"
    )]
    pub machine_note: String,
}

impl RunArgs {
    pub fn attempts(&self) -> usize {
        self.attempts
            .unwrap_or(if self.smoke { 20_000 } else { 500_000 })
    }

    pub fn users(&self) -> u32 {
        self.users
            .unwrap_or(if self.smoke { 5_000 } else { 50_000 })
    }
}

#[derive(Debug, Clone, Args)]
pub struct NaiveArgs {
    /// Designs to run (comma separated); a partial run is not written to latest.json.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = ALL_DESIGNS)]
    pub designs: Vec<Design>,
    /// Share of attempts after which the private Redis is killed and restarted empty
    /// (0 = never).
    #[arg(long, default_value_t = 0.3)]
    pub redis_restart_at: f64,
    /// PostgreSQL admin connection; the run creates and drops its own database there.
    #[arg(
        long,
        env = "SEATQ_BENCH_ADMIN_URL",
        default_value = "postgres://seatq@127.0.0.1:55432/postgres"
    )]
    pub admin_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The gateway [default: `gateway.public_url` of the stack's configuration].
    #[arg(long)]
    pub gateway: Option<String>,
    /// Give up waiting for decisions after this many seconds without progress
    /// [default: 60, or 30 with --smoke].
    #[arg(long)]
    pub stall_secs: Option<u64>,
    /// Arrival rate of the latency run [default: half the closed-loop decisions/s].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length of the latency run in seconds (its attempts are the workload's first
    /// rate x secs) [default: 60, or 10 with --smoke].
    #[arg(long)]
    pub latency_secs: Option<f64>,
    /// Crash run: share of attempts answered when the consumer is killed.
    #[arg(long, default_value_t = 0.25)]
    pub consumer_kill_at: f64,
    /// Crash run: share of attempts answered when the broker is killed.
    #[arg(long, default_value_t = 0.6)]
    pub broker_kill_at: f64,
    /// Crash run: how long a killed service stays down, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub down_ms: u64,
    /// Broker stage: commands per record [default: --concurrency, the most the gateway
    /// can have waiting together under this closed loop].
    #[arg(long)]
    pub pack: Option<usize>,
    /// Broker stage: the records' request-id headers: none, one `request_id` header per
    /// record listing its commands (what the gateway sends), or one header per command.
    #[arg(long, value_enum, default_value_t = Headers::None)]
    pub headers: Headers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Headers {
    None,
    PerRecord,
    PerCommand,
}

#[derive(Debug, Clone, Args)]
pub struct FairArgs {
    /// Designs of the fair fight (comma separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = crate::fair::ALL_FAIR_DESIGNS)]
    pub fair_designs: Vec<crate::fair::FairDesign>,
    /// Concurrent users of the closed-loop runs [default: 32,256,2048, or 32,256 with
    /// --smoke].
    #[arg(long, value_delimiter = ',')]
    pub fair_closed_users: Option<Vec<usize>>,
    /// Attempts of each closed-loop run, the workload's first [default: 100000, or 3000
    /// with --smoke].
    #[arg(long)]
    pub fair_closed_attempts: Option<usize>,
    /// Users of each burst, one hold each [default: 20000,100000, or 2000 with --smoke].
    #[arg(long, value_delimiter = ',')]
    pub fair_burst_users: Option<Vec<usize>>,
    /// The burst's arrivals are spread over this many seconds.
    #[arg(long, default_value_t = 2.0)]
    pub fair_burst_secs: f64,
    /// Length of the sustained overload [default: 60, or 5 with --smoke; 0: none].
    #[arg(long)]
    pub fair_overload_secs: Option<f64>,
    /// Overload arrival rate as a multiple of the design's best closed-loop rate.
    #[arg(long, default_value_t = 2.0)]
    pub fair_overload_factor: f64,
    /// Client connections of the open-loop runs (burst, overload).
    #[arg(long, default_value_t = 2_048)]
    pub fair_connections: usize,
    /// Connections of each naive front's pool (PostgreSQL, or its Redis).
    #[arg(long, default_value_t = 32)]
    pub fair_front_pool: usize,
}

impl FairArgs {
    /// The size whose results go to latest.json and the README.
    pub const FULL_BURST: usize = 100_000;

    pub fn closed_users(&self, smoke: bool) -> Vec<usize> {
        self.fair_closed_users.clone().unwrap_or_else(|| {
            if smoke {
                vec![32, 256]
            } else {
                vec![32, 256, 2_048]
            }
        })
    }

    pub fn closed_attempts(&self, smoke: bool) -> usize {
        self.fair_closed_attempts
            .unwrap_or(if smoke { 3_000 } else { 100_000 })
    }

    pub fn burst_users(&self, smoke: bool) -> Vec<usize> {
        self.fair_burst_users.clone().unwrap_or_else(|| {
            if smoke {
                vec![2_000]
            } else {
                vec![20_000, Self::FULL_BURST]
            }
        })
    }

    pub fn overload_secs(&self, smoke: bool) -> f64 {
        self.fair_overload_secs
            .unwrap_or(if smoke { 5.0 } else { 60.0 })
    }
}

#[derive(Debug, Clone, Args)]
pub struct LifecycleArgs {
    /// Seats of the lifecycle event, rounded up to rows of 50 [default: 3000, or 400 with
    /// --smoke].
    #[arg(long)]
    pub lifecycle_seats: Option<i32>,
    /// Hold window of the lifecycle event in seconds [default: the gateway's minimum,
    /// `gateway.min_hold_ttl_secs`, 30 on the local stack].
    #[arg(long)]
    pub hold_ttl_secs: Option<i32>,
    /// Share of the two-seat holds that are paid for; the rest expire.
    #[arg(long, default_value_t = 0.4)]
    pub pay_share: f64,
    /// Share of the expiring seats that other users wait for.
    #[arg(long, default_value_t = 0.8)]
    pub waitlist_share: f64,
    /// Eligible users per waitlist: 1 to this many.
    #[arg(long, default_value_t = 3)]
    pub max_waiters: u32,
    /// Share of the waitlists led by a buyer already at the per-user seat limit (to be
    /// passed over when the seat is released).
    #[arg(long, default_value_t = 0.2)]
    pub at_limit_share: f64,
}

impl LifecycleArgs {
    /// The size whose results go to latest.json and the README.
    pub const FULL_SEATS: i32 = 3_000;

    pub fn seats(&self, smoke: bool) -> i32 {
        self.lifecycle_seats
            .unwrap_or(if smoke { 400 } else { Self::FULL_SEATS })
    }
}

#[derive(Debug, Clone, Args)]
pub struct SseArgs {
    /// Streams open in each phase, cumulative (the same notifier, one storm per phase)
    /// [default: 1000,5000,20000, or 100,300 with --smoke]. A phase past the notifier's
    /// descriptor limit adds its streams over HTTP/2 (see --sse-http2-streams).
    #[arg(long, value_delimiter = ',')]
    pub sse_streams: Option<Vec<usize>>,
    /// Length of each phase's storm in seconds [default: 15, or 5 with --smoke].
    #[arg(long)]
    pub sse_storm_secs: Option<f64>,
    /// Seat changes per second the storm asks for (a ceiling: each actor waits for its
    /// answer before its next change).
    #[arg(long, default_value_t = 200.0)]
    pub sse_rate: f64,
    /// Users making the changes, each on its own share of the seats and source address
    /// (at least as many as keep each under the gateway's per-user hold rate limit).
    #[arg(long, default_value_t = 16)]
    pub sse_actors: usize,
    /// Seats of the scenario's event (rows of 50).
    #[arg(long, default_value_t = 2_000)]
    pub sse_seats: i32,
    /// Streams per worker process (each process has its own descriptor limit).
    #[arg(long, default_value_t = 7_000)]
    pub sse_streams_per_worker: usize,
    /// Streams each worker opens at a time. The notifier listens with tokio's default
    /// backlog of 128, so more connects in flight than that (all workers together) make
    /// the kernel fall back to SYN cookies ("Possible SYN flooding" in dmesg).
    #[arg(long, default_value_t = 32)]
    pub sse_open_concurrency: usize,
    /// The notifier binary [default: a release build of seatq-notifier, made first].
    #[arg(long)]
    pub notifier_bin: Option<PathBuf>,
    /// Open as many streams as asked even past the notifier's descriptor limit, all over
    /// HTTP/1.1 (to see how it fails).
    #[arg(long)]
    pub sse_no_fd_cap: bool,
    /// Streams per HTTP/2 connection (h2c) in phases with more streams than the
    /// notifier has descriptors for over HTTP/1.1; 0 cuts such phases to what fits.
    #[arg(long, default_value_t = 100)]
    pub sse_http2_streams: usize,
}

impl SseArgs {
    /// The largest phase at which results go to latest.json and the README.
    pub const FULL_STREAMS: usize = 10_000;

    pub fn streams(&self, smoke: bool) -> Vec<usize> {
        self.sse_streams.clone().unwrap_or_else(|| {
            if smoke {
                vec![100, 300]
            } else {
                vec![1_000, 5_000, 20_000]
            }
        })
    }

    pub fn storm_secs(&self, smoke: bool) -> f64 {
        self.sse_storm_secs
            .unwrap_or(if smoke { 5.0 } else { 15.0 })
    }
}

#[derive(Debug, Clone, Args)]
pub struct WaitroomArgs {
    /// Users who join the waiting room [default: 200000, or 3000 with --smoke].
    #[arg(long)]
    pub waitroom_users: Option<u32>,
    /// Share of the users who join in the burst before the sale opens (the lottery); the
    /// rest join in a second burst once it is open (first come, first served).
    #[arg(long, default_value_t = 0.5)]
    pub waitroom_presale_share: f64,
    /// Seconds between the first join and the sale opening [default: 60, or 5 with
    /// --smoke]. Pre-sale joiners still joining when it opens join after it.
    #[arg(long)]
    pub waitroom_presale_secs: Option<f64>,
    /// Stop admitting this many seconds after the sale opened, whoever still waits
    /// [default: 240, or 60 with --smoke].
    #[arg(long)]
    pub waitroom_secs: Option<f64>,
    /// Joins in flight at once (each user joins once; closed loop).
    #[arg(long)]
    pub waitroom_join_concurrency: Option<usize>,
    /// Users who poll their ticket like the browser app does (`GET …/queue/{ticket}`
    /// every --waitroom-poll-ms); everyone else learns of their admission as from the
    /// user stream (see the scenario's docs) [default: 1000, or 100 with --smoke].
    #[arg(long)]
    pub waitroom_pollers: Option<usize>,
    /// How often a polling user reads their ticket (the browser app: 4000).
    #[arg(long, default_value_t = 4_000)]
    pub waitroom_poll_ms: u64,
    /// An admitted buyer looks at the seat map for a random 0..this many milliseconds
    /// before asking for seats.
    #[arg(long, default_value_t = 2_000)]
    pub waitroom_think_ms: u64,
    /// Admitted buyers acting (reading their ticket, asking for seats) at once.
    #[arg(long, default_value_t = 256)]
    pub waitroom_buyers_in_flight: usize,
    /// Loopback source addresses the users are spread over (127.1.x.y), as people come
    /// from many addresses and the gateway limits requests per client IP; 0: all from
    /// the default address.
    #[arg(long, default_value_t = 1_024)]
    pub waitroom_source_ips: usize,
    /// Proof-of-work difficulties of the verify/solve micro-benchmark [default: the
    /// stack's `waiting_room.default_pow_difficulty` and 20].
    #[arg(long, value_delimiter = ',')]
    pub waitroom_pow_difficulty: Option<Vec<u32>>,
}

impl WaitroomArgs {
    /// The size whose results go to latest.json and the README.
    pub const FULL_USERS: u32 = 100_000;

    pub fn users(&self, smoke: bool) -> u32 {
        self.waitroom_users
            .unwrap_or(if smoke { 3_000 } else { 200_000 })
    }

    pub fn presale_secs(&self, smoke: bool) -> f64 {
        self.waitroom_presale_secs
            .unwrap_or(if smoke { 5.0 } else { 60.0 })
    }

    pub fn max_secs(&self, smoke: bool) -> f64 {
        self.waitroom_secs
            .unwrap_or(if smoke { 60.0 } else { 240.0 })
    }

    pub fn join_concurrency(&self, smoke: bool) -> usize {
        self.waitroom_join_concurrency
            .unwrap_or(if smoke { 64 } else { 256 })
    }

    pub fn pollers(&self, smoke: bool) -> usize {
        self.waitroom_pollers
            .unwrap_or(if smoke { 100 } else { 1_000 })
    }
}
