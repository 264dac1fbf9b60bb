//! `bench`: measures what a flash sale does to seat-holding designs.
//!
//! One seeded workload goes through the designs a team would build before seatq — a
//! conditional UPDATE, a `SELECT ... FOR UPDATE` transaction, Redis-first with
//! PostgreSQL written behind (crashed mid-run) — and through seatq itself over HTTP
//! against the running local stack: the flash sale, a latency run at half its measured
//! maximum, the same storm through kill -9 of the consumer and the broker, and each
//! stage on its own; and the hold lifecycle after the sale (payments, expiry, waitlist
//! offers, bookings); and the live seat-map streams of one standalone notifier under a
//! storm (`sse`: thousands of SSE clients); and an on-sale through the virtual waiting
//! room (`waitroom`: a burst of joins, admissions paced by the scheduler's controller,
//! holds with admission tokens); and the fair fight (`fair-fight`: every design behind
//! the gateway's router layers, the same client, closed loops, the burst an on-sale is,
//! overload, fairness and CPU per decision). `bench all` does everything and writes a
//! dated copy, every part's file in `results/`, and `results/latest.json` and
//! `results/README.md` rendered from those files; the other subcommands run one part (a
//! dated `-partial` copy only, except that a full-size `bench fair-fight`, `lifecycle`,
//! `sse` or `waitroom` also replaces its own part's file and re-renders the two).
//! `bench render` re-renders them without running anything.

mod cli;
mod error;
mod fair;
mod lifecycle;
mod machine;
mod pg;
mod pipeline;
mod redis_server;
mod report;
mod results;
mod runner;
mod scenarios;
mod sources;
mod sse;
mod stack;
mod stages;
mod verify;
mod waitroom;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;

use cli::{
    Cli, Command, Design, FairArgs, LifecycleArgs, NaiveArgs, PipelineArgs, RunArgs, SseArgs,
    Stage, WaitroomArgs, ALL_DESIGNS,
};
use pg::BenchDatabase;
use pipeline::runs::{self, CrashPlan};
use pipeline::Pipeline;
use report::{PartKind, Report};
use results::Stages;
use scenarios::seats_table::SeatsDesign;
use stack::{Action, Service, Stack};
use workload::{Attempt, Stadium};

/// The gateway's allocator, so the naive designs' fronts (`bench front`, this binary) run
/// on the same one as the pipeline's: like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which parts of the benchmark one invocation runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parts {
    naive: bool,
    pipeline: bool,
    latency: bool,
    crash: bool,
    accept_drain: bool,
    broker: bool,
    lifecycle: bool,
    sse: bool,
    waitroom: bool,
    fair: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        naive: true,
        pipeline: true,
        latency: true,
        crash: true,
        accept_drain: true,
        broker: true,
        lifecycle: true,
        sse: true,
        waitroom: true,
        fair: true,
    };

    /// The parts that send the flash-sale workload through seatq.
    fn needs_pipeline(self) -> bool {
        self.pipeline || self.latency || self.crash || self.accept_drain || self.broker
    }

    /// The lifecycle has its own venue and users: the flash-sale workload is generated
    /// only for the parts that use it.
    fn needs_workload(self) -> bool {
        self.naive || self.needs_pipeline() || self.fair
    }

    fn needs_stack(self) -> bool {
        self.needs_pipeline() || self.lifecycle || self.sse || self.waitroom || self.fair
    }
}

/// The options of the parts that have their own.
#[derive(Default)]
struct PartArgs {
    naive: Option<NaiveArgs>,
    pipeline: Option<PipelineArgs>,
    lifecycle: Option<LifecycleArgs>,
    sse: Option<SseArgs>,
    waitroom: Option<WaitroomArgs>,
    fair: Option<FairArgs>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A stream-holding worker of `bench sse`: one thread, its own runtime.
    if let Command::SseWorker { addr, path, event } = cli.command {
        return sse::worker::main(addr, path, event);
    }
    // A naive design's front for `bench fair-fight`: its own process and runtime.
    if let Command::Front(opts) = cli.command {
        return fair::front::main(opts);
    }
    // Nothing to run: the README and latest.json from the part files.
    if let Command::Render { results_dir } = cli.command {
        let dir = results_dir.unwrap_or_else(default_results_dir);
        for path in report::render(&dir)? {
            println!("wrote {}", path.display());
        }
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    let none = Parts::default();
    match command {
        Command::Idle { secs, root } => {
            let cpu = waitroom::cpu::Cpu::new(&root);
            let from = cpu.snapshot();
            tokio::time::sleep(std::time::Duration::from_secs(secs.max(1))).await;
            let to = cpu.snapshot();
            let phase = waitroom::cpu::PhaseCpu::between("idle", &from, &to)
                .ok_or_else(|| anyhow::anyhow!("watched too short a time"))?;
            println!("{}", serde_json::to_string_pretty(&phase)?);
            Ok(())
        }
        Command::All {
            run,
            naive,
            pipeline,
            lifecycle,
            sse,
            waitroom,
            fair,
        } => {
            let args = PartArgs {
                naive: Some(naive),
                pipeline: Some(pipeline),
                lifecycle: Some(lifecycle),
                sse: Some(sse),
                waitroom: Some(waitroom),
                fair: Some(fair),
            };
            execute(run, args, Parts::ALL).await
        }
        Command::FairFight {
            run,
            naive,
            pipeline,
            fair,
        } => {
            let parts = Parts { fair: true, ..none };
            let args = PartArgs {
                naive: Some(naive),
                pipeline: Some(pipeline),
                fair: Some(fair),
                ..PartArgs::default()
            };
            execute(run, args, parts).await
        }
        Command::Front(_) => anyhow::bail!("front is started by `bench fair-fight`"),
        Command::Naive { run, naive } => {
            let parts = Parts {
                naive: true,
                ..none
            };
            let args = PartArgs {
                naive: Some(naive),
                ..PartArgs::default()
            };
            execute(run, args, parts).await
        }
        Command::Pipeline { run, pipeline } => {
            let parts = Parts {
                pipeline: true,
                ..none
            };
            execute(run, pipeline_only(pipeline), parts).await
        }
        Command::Latency { run, pipeline } => {
            let parts = Parts {
                pipeline: pipeline.rate.is_none(),
                latency: true,
                ..none
            };
            execute(run, pipeline_only(pipeline), parts).await
        }
        Command::Crash { run, pipeline } => {
            let parts = Parts {
                crash: true,
                ..none
            };
            execute(run, pipeline_only(pipeline), parts).await
        }
        Command::Lifecycle {
            run,
            pipeline,
            lifecycle,
        } => {
            let parts = Parts {
                lifecycle: true,
                ..none
            };
            let args = PartArgs {
                pipeline: Some(pipeline),
                lifecycle: Some(lifecycle),
                ..PartArgs::default()
            };
            execute(run, args, parts).await
        }
        Command::Sse { run, pipeline, sse } => {
            let parts = Parts { sse: true, ..none };
            let args = PartArgs {
                pipeline: Some(pipeline),
                sse: Some(sse),
                ..PartArgs::default()
            };
            execute(run, args, parts).await
        }
        Command::Waitroom {
            run,
            pipeline,
            waitroom,
        } => {
            let parts = Parts {
                waitroom: true,
                ..none
            };
            let args = PartArgs {
                pipeline: Some(pipeline),
                waitroom: Some(waitroom),
                ..PartArgs::default()
            };
            execute(run, args, parts).await
        }
        Command::SseWorker { .. } => anyhow::bail!("sse-worker is started by `bench sse`"),
        Command::Render { .. } => anyhow::bail!("render needs no runtime"),
        Command::Stage {
            which,
            run,
            pipeline,
        } => {
            let parts = Parts {
                accept_drain: matches!(
                    which,
                    Stage::GatewayAccept | Stage::ConsumerDrain | Stage::All
                ),
                broker: matches!(which, Stage::Broker | Stage::All),
                ..none
            };
            execute(run, pipeline_only(pipeline), parts).await
        }
    }
}

fn pipeline_only(pipeline: PipelineArgs) -> PartArgs {
    PartArgs {
        pipeline: Some(pipeline),
        ..PartArgs::default()
    }
}

async fn execute(run: RunArgs, args: PartArgs, parts: Parts) -> anyhow::Result<()> {
    let PartArgs {
        naive,
        pipeline,
        lifecycle,
        sse,
        waitroom,
        fair,
    } = args;
    anyhow::ensure!(run.concurrency > 0, "--concurrency must be at least 1");
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let started_at = chrono::Utc::now();
    let machine = machine::Machine::detect(&run.machine_note);
    let stadium = Stadium::new();
    let (attempts, users) = (run.attempts(), run.users());

    let workload = if parts.needs_workload() {
        let generated = Instant::now();
        let workload = workload::generate(&stadium, attempts, users, run.seed);
        println!(
            "workload: {} seats, {attempts} attempts from {users} users (seed {}), generated in {:.1?}; concurrency {}",
            stadium.seat_count(),
            run.seed,
            generated.elapsed(),
            run.concurrency,
        );
        Arc::new(workload)
    } else {
        Arc::new(Vec::new())
    };
    let mut report = Report::new(&run, machine, &stadium, workload.len());

    // Connect to the stack first: a stack that is down should fail the run at once, not
    // after the naive designs.
    let stack = match (parts.needs_stack(), &pipeline) {
        (true, Some(opts)) => {
            let root = crate_dir.parent().unwrap_or(&crate_dir);
            let stack = Stack::connect(root, opts.gateway.clone())
                .await
                .context("connecting to the local stack (is deploy/local/up running?)")?;
            Some((stack, opts))
        }
        _ => None,
    };
    if let (true, Some(naive)) = (parts.naive, &naive) {
        naive_part(naive, &run, &stadium, Arc::clone(&workload), &mut report).await?;
    }
    if let Some((stack, opts)) = stack {
        if parts.needs_pipeline() {
            let s = stack.clone();
            let w = Arc::clone(&workload);
            pipeline_part(opts, &run, parts, s, &stadium, w, &mut report).await?;
        }
        if let (true, Some(args)) = (parts.lifecycle, &lifecycle) {
            lifecycle_part(args, &run, &stack, &mut report).await?;
        }
        if let (true, Some(args), Some(opts)) = (parts.sse, &sse, &pipeline) {
            let root = crate_dir.parent().unwrap_or(&crate_dir);
            sse_part(args, opts, &run, &stack, root, &mut report).await?;
        }
        if let (true, Some(args), Some(opts)) = (parts.waitroom, &waitroom, &pipeline) {
            waitroom_part(args, opts, &run, &stack, &mut report).await?;
        }
        if let (true, Some(args), Some(opts), Some(naive)) = (parts.fair, &fair, &pipeline, &naive)
        {
            let workload = Arc::clone(&workload);
            fair_part(
                args,
                opts,
                naive,
                &run,
                &stack,
                &stadium,
                workload,
                &mut report,
            )
            .await?;
        }
    }

    report.compute_ratios();
    report.git_sha = machine::git_sha(&crate_dir);
    report.git_dirty = machine::git_dirty(&crate_dir);
    report.started_at = started_at.to_rfc3339();
    report.finished_at = chrono::Utc::now().to_rfc3339();
    print!("{}", report.summary());

    let dir = run.results_dir.clone().unwrap_or_else(default_results_dir);
    let all_designs = naive
        .as_ref()
        .is_some_and(|n| ALL_DESIGNS.iter().all(|d| n.designs.contains(d)));
    // The flash sale's part is the full-size run of everything only.
    let full_size = attempts >= 500_000 && users >= 50_000;
    let full = !run.smoke && full_size && parts == Parts::ALL && all_designs;
    // A part run on its own at full size replaces that part's results.
    let alone = |only: Parts| !run.smoke && parts == only;
    let lifecycle_full = alone(Parts {
        lifecycle: true,
        ..Parts::default()
    }) && lifecycle
        .as_ref()
        .is_some_and(|l| l.seats(false) >= LifecycleArgs::FULL_SEATS);
    let sse_full = alone(Parts {
        sse: true,
        ..Parts::default()
    }) && report
        .sse
        .as_ref()
        .is_some_and(|r| r.phases.iter().any(|p| p.streams >= SseArgs::FULL_STREAMS));
    let waitroom_full = alone(Parts {
        waitroom: true,
        ..Parts::default()
    }) && report
        .waitroom
        .as_ref()
        .is_some_and(|r| r.users >= WaitroomArgs::FULL_USERS);
    // Of every design.
    let fair_full = alone(Parts {
        fair: true,
        ..Parts::default()
    }) && fair.as_ref().is_some_and(|f| {
        f.burst_users(false).contains(&FairArgs::FULL_BURST)
            && fair::ALL_FAIR_DESIGNS
                .iter()
                .all(|d| f.fair_designs.contains(d))
    });
    let replaced: Vec<PartKind> = if full {
        PartKind::ALL.to_vec()
    } else {
        [
            (fair_full, PartKind::FairFight),
            (lifecycle_full, PartKind::Lifecycle),
            (sse_full, PartKind::Sse),
            (waitroom_full, PartKind::Waitroom),
        ]
        .into_iter()
        .filter_map(|(yes, kind)| yes.then_some(kind))
        .collect()
    };
    let stamp = started_at.format("%Y%m%dT%H%M%SZ").to_string();
    for path in report::save(&report, &dir, &stamp, full, &replaced)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `bench/results` of this crate.
fn default_results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results")
}

/// The fair fight, on fresh events and a throwaway bench database of its own.
#[allow(clippy::too_many_arguments)]
async fn fair_part(
    args: &FairArgs,
    opts: &PipelineArgs,
    naive: &NaiveArgs,
    run: &RunArgs,
    stack: &Stack,
    stadium: &Stadium,
    workload: Arc<Vec<Attempt>>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let smoke = run.smoke;
    anyhow::ensure!(
        (0.0..1.0).contains(&naive.redis_restart_at),
        "--redis-restart-at is a share of attempts in [0, 1)"
    );
    anyhow::ensure!(
        args.fair_burst_secs > 0.0 && args.fair_overload_factor > 0.0,
        "--fair-burst-secs and --fair-overload-factor must be positive"
    );
    anyhow::ensure!(
        args.fair_connections >= 1 && args.fair_front_pool >= 1,
        "--fair-connections and --fair-front-pool must be at least 1"
    );
    let options = fair::Options {
        designs: args.fair_designs.clone(),
        closed_users: args.closed_users(smoke),
        closed_attempts: args.closed_attempts(smoke),
        burst_users: args.burst_users(smoke),
        burst_window: Duration::from_secs_f64(args.fair_burst_secs),
        overload_secs: args.overload_secs(smoke).max(0.0),
        overload_factor: args.fair_overload_factor,
        connections: args.fair_connections,
        front_pool: args.fair_front_pool,
        admin_url: naive.admin_url.clone(),
        redis_restart_at: (naive.redis_restart_at > 0.0).then_some(naive.redis_restart_at),
        seed: run.seed,
        stall: Duration::from_secs(opts.stall_secs.unwrap_or(if smoke { 30 } else { 60 })),
    };
    let result = tokio::select! {
        result = fair::run(stack, stadium, workload, run.users(), &options) => result.context("fair fight")?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    report.fair_fight = Some(result);
    Ok(())
}

/// The hold lifecycle on a fresh event of its own (no service is stopped or killed).
async fn lifecycle_part(
    args: &LifecycleArgs,
    run: &RunArgs,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let share = 0.0..=1.0;
    for (name, value) in [
        ("--pay-share", args.pay_share),
        ("--waitlist-share", args.waitlist_share),
        ("--at-limit-share", args.at_limit_share),
    ] {
        anyhow::ensure!(share.contains(&value), "{name} is a share in [0, 1]");
    }
    anyhow::ensure!(args.max_waiters >= 1, "--max-waiters must be at least 1");
    let seats = args.seats(run.smoke);
    anyhow::ensure!(seats >= 2, "--lifecycle-seats must be at least 2");
    let min_ttl = stack.settings.gateway.min_hold_ttl_secs;
    let hold_ttl_secs = args.hold_ttl_secs.unwrap_or(min_ttl);
    anyhow::ensure!(
        hold_ttl_secs >= min_ttl,
        "--hold-ttl-secs {hold_ttl_secs} is below the gateway's minimum ({min_ttl}, gateway.min_hold_ttl_secs)"
    );
    let options = lifecycle::Options {
        plan: lifecycle::plan::PlanConfig {
            seats,
            pay_share: args.pay_share,
            waitlist_share: args.waitlist_share,
            max_waiters: args.max_waiters,
            at_limit_share: args.at_limit_share,
            seed: run.seed,
        },
        hold_ttl_secs,
        concurrency: run.concurrency,
    };
    let result = tokio::select! {
        result = lifecycle::run(stack, &options) => result.context("hold lifecycle")?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    report.lifecycle = Some(result);
    Ok(())
}

/// SSE fan-out on a standalone notifier of its own (the stack's services keep running).
async fn sse_part(
    args: &SseArgs,
    opts: &PipelineArgs,
    run: &RunArgs,
    stack: &Stack,
    root: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let streams = args.streams(run.smoke);
    anyhow::ensure!(
        !streams.is_empty() && streams.windows(2).all(|w| w[0] < w[1]) && streams[0] > 0,
        "--sse-streams is a list of increasing stream counts"
    );
    let storm_secs = args.storm_secs(run.smoke);
    anyhow::ensure!(storm_secs > 0.0, "--sse-storm-secs must be positive");
    anyhow::ensure!(args.sse_rate > 0.0, "--sse-rate must be positive");
    anyhow::ensure!(args.sse_actors >= 1, "--sse-actors must be at least 1");
    anyhow::ensure!(
        args.sse_seats >= 2 * args.sse_actors as i32,
        "--sse-seats must give every actor at least two seats"
    );
    anyhow::ensure!(
        args.sse_streams_per_worker >= 1 && args.sse_open_concurrency >= 1,
        "--sse-streams-per-worker and --sse-open-concurrency must be at least 1"
    );
    let options = sse::Options {
        streams,
        storm_secs,
        rate: args.sse_rate,
        actors: args.sse_actors,
        seats: args.sse_seats,
        streams_per_worker: args.sse_streams_per_worker,
        open_concurrency: args.sse_open_concurrency,
        notifier_bin: args.notifier_bin.clone(),
        no_fd_cap: args.sse_no_fd_cap,
        http2_per_connection: args.sse_http2_streams,
        seed: run.seed,
        stall: Duration::from_secs(opts.stall_secs.unwrap_or(if run.smoke { 30 } else { 60 })),
    };
    let result = tokio::select! {
        result = sse::run(stack, root, &options) => result.context("sse fan-out")?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    report.sse = Some(result);
    Ok(())
}

/// An on-sale through the waiting room, on a fresh event of its own. It handles Ctrl-C
/// itself: the line it filled must be closed before the bench exits, or the scheduler
/// would go on admitting its users.
async fn waitroom_part(
    args: &WaitroomArgs,
    opts: &PipelineArgs,
    run: &RunArgs,
    stack: &Stack,
    report: &mut Report,
) -> anyhow::Result<()> {
    let smoke = run.smoke;
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.waitroom_presale_share),
        "--waitroom-presale-share is a share in [0, 1]"
    );
    let users = args.users(smoke);
    anyhow::ensure!(users >= 1, "--waitroom-users must be at least 1");
    anyhow::ensure!(
        args.presale_secs(smoke) >= 0.0 && args.max_secs(smoke) > 0.0,
        "--waitroom-presale-secs must not be negative, --waitroom-secs must be positive"
    );
    anyhow::ensure!(
        args.join_concurrency(smoke) >= 1 && args.waitroom_buyers_in_flight >= 1,
        "--waitroom-join-concurrency and --waitroom-buyers-in-flight must be at least 1"
    );
    let options = waitroom::Options {
        users,
        presale_share: args.waitroom_presale_share,
        presale_secs: args.presale_secs(smoke),
        max_secs: args.max_secs(smoke),
        join_concurrency: args.join_concurrency(smoke),
        pollers: args.pollers(smoke),
        poll_ms: args.waitroom_poll_ms,
        think_ms: args.waitroom_think_ms,
        buyers_in_flight: args.waitroom_buyers_in_flight,
        source_ips: args.waitroom_source_ips,
        pow_difficulties: args.waitroom_pow_difficulty.clone().unwrap_or_default(),
        seed: run.seed,
        stall: Duration::from_secs(opts.stall_secs.unwrap_or(if smoke { 30 } else { 60 })),
    };
    let result = waitroom::run(stack, &options)
        .await
        .context("waiting-room on-sale")?;
    report.waitroom = Some(result);
    Ok(())
}

/// The naive designs, in a throwaway database that is dropped even on Ctrl-C.
async fn naive_part(
    args: &NaiveArgs,
    run: &RunArgs,
    stadium: &Stadium,
    workload: Arc<Vec<Attempt>>,
    report: &mut Report,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..1.0).contains(&args.redis_restart_at),
        "--redis-restart-at is a share of attempts in [0, 1)"
    );
    let db = BenchDatabase::create(&args.admin_url)
        .await
        .with_context(|| format!("creating the bench database via {}", args.admin_url))?;
    println!("database: {}", db.name);
    // On Ctrl-C stop the run but still drop the database (FORCE ends its connections).
    let outcome = tokio::select! {
        outcome = run_designs(args, run.concurrency, &db, stadium, workload, report) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let dropped = db.drop_database().await;
    outcome?;
    dropped.context("dropping the bench database")
}

async fn run_designs(
    args: &NaiveArgs,
    concurrency: usize,
    db: &BenchDatabase,
    stadium: &Stadium,
    workload: Arc<Vec<Attempt>>,
    report: &mut Report,
) -> anyhow::Result<()> {
    for design in &args.designs {
        match design {
            Design::ConditionalUpdate | Design::ForUpdate => {
                let seats_design = if *design == Design::ForUpdate {
                    SeatsDesign::ForUpdate
                } else {
                    SeatsDesign::ConditionalUpdate
                };
                let r = scenarios::seats_table::run(
                    db,
                    stadium,
                    Arc::clone(&workload),
                    concurrency,
                    seats_design,
                )
                .await
                .context(seats_design.name())?;
                match seats_design {
                    SeatsDesign::ForUpdate => report.naive_for_update = Some(r),
                    SeatsDesign::ConditionalUpdate => report.naive_conditional_update = Some(r),
                }
            }
            Design::RedisFirst => {
                let restart_at = (args.redis_restart_at > 0.0).then_some(args.redis_restart_at);
                let r = scenarios::redis_first::run(
                    db,
                    stadium,
                    Arc::clone(&workload),
                    concurrency,
                    restart_at,
                )
                .await
                .context("redis_first")?;
                report.redis_first = Some(r);
            }
        }
    }
    Ok(())
}

/// The seatq parts, against the running stack. Whatever happens (error, Ctrl-C), the
/// consumer and the broker are started again before returning.
async fn pipeline_part(
    opts: &PipelineArgs,
    run: &RunArgs,
    parts: Parts,
    stack: Stack,
    stadium: &Stadium,
    workload: Arc<Vec<Attempt>>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let stall = Duration::from_secs(opts.stall_secs.unwrap_or(if run.smoke { 30 } else { 60 }));
    let p = Pipeline::new(
        stack,
        stadium,
        workload,
        run.users(),
        run.concurrency,
        stall,
    )?;
    let outcome = tokio::select! {
        outcome = pipeline_runs(opts, run, parts, &p, stadium, report) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    for service in [Service::Broker, Service::Consumer] {
        if let Err(e) = p.stack.service(Action::Start, service).await {
            eprintln!(
                "warning: could not make sure the {} runs: {e}",
                service.name()
            );
        }
    }
    outcome
}

async fn pipeline_runs(
    opts: &PipelineArgs,
    run: &RunArgs,
    parts: Parts,
    p: &Pipeline,
    stadium: &Stadium,
    report: &mut Report,
) -> anyhow::Result<()> {
    if parts.pipeline {
        let r = runs::flash_sale(p).await.context("pipeline flash sale")?;
        report.invariants = Some(r.run.invariants);
        report.pipeline = Some(r);
    }
    if parts.latency {
        let rate = opts
            .rate
            .or_else(|| report.pipeline.as_ref().map(|r| r.decisions_per_s / 2.0))
            .filter(|r| *r > 0.0)
            .context("the latency run needs --rate or a pipeline run that decided something")?;
        let secs = opts
            .latency_secs
            .unwrap_or(if run.smoke { 10.0 } else { 60.0 });
        let r = runs::half_load(p, rate, secs)
            .await
            .context("pipeline half-load latency")?;
        report.pipeline_half_load = Some(r);
    }
    if parts.crash {
        let plan = CrashPlan {
            consumer_at: opts.consumer_kill_at,
            broker_at: opts.broker_kill_at,
            down: Duration::from_millis(opts.down_ms),
        };
        let r = runs::crash(p, plan).await.context("pipeline crash run")?;
        report.pipeline_oversold_after_crashes =
            Some(r.run.invariants.oversold + r.run.invariants.double_held);
        report.crash = Some(r);
    }
    if parts.accept_drain || parts.broker {
        let mut s = Stages::default();
        if parts.accept_drain {
            let (accept, drain) = stages::accept_drain::run(p)
                .await
                .context("gateway accept and consumer drain stages")?;
            s.gateway_accept_per_s = Some(accept.accepted_per_s);
            s.consumer_drain_per_s = Some(drain.decisions_per_s);
            s.gateway_accept = Some(accept);
            s.consumer_drain = Some(drain);
        }
        if parts.broker {
            let pack = opts.pack.unwrap_or(run.concurrency);
            let b =
                stages::broker::run(&p.stack, stadium, &p.attempts, pack, opts.headers, p.stall)
                    .await
                    .context("broker stage")?;
            s.broker_produce_per_s = Some(b.produce_commands_per_s);
            s.broker_fetch_per_s = Some(b.fetch_commands_per_s);
            s.broker = Some(b);
        }
        report.stages = Some(s);
    }
    Ok(())
}
