//! `bench`: measures what a flash sale does to seat-holding designs.
//!
//! `bench naive` runs one seeded workload against the three designs a team would build
//! before seatq — a conditional UPDATE, a `SELECT ... FOR UPDATE` transaction, and
//! Redis-first with PostgreSQL written behind (crashed mid-run) — and writes
//! `results/latest.json`, a dated copy and `results/README.md`.

mod cli;
mod error;
mod machine;
mod pg;
mod redis_server;
mod report;
mod results;
mod runner;
mod scenarios;
mod verify;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command, Design, NaiveArgs};
use pg::BenchDatabase;
use report::Report;
use scenarios::seats_table::SeatsDesign;
use workload::Stadium;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Naive(args) => naive(args).await,
    }
}

async fn naive(args: NaiveArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        (0.0..1.0).contains(&args.redis_restart_at),
        "--redis-restart-at is a share of attempts in [0, 1)"
    );
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let started_at = chrono::Utc::now();
    let machine = machine::Machine::detect(&args.machine_note);
    let stadium = Stadium::new();
    let (attempts, users) = (args.attempts(), args.users());

    let generated = Instant::now();
    let workload = Arc::new(workload::generate(&stadium, attempts, users, args.seed));
    println!(
        "workload: {} seats, {attempts} attempts from {users} users (seed {}), generated in {:.1?}; concurrency {}",
        stadium.seat_count(),
        args.seed,
        generated.elapsed(),
        args.concurrency,
    );

    let db = BenchDatabase::create(&args.admin_url)
        .await
        .with_context(|| format!("creating the bench database via {}", args.admin_url))?;
    println!("database: {}", db.name);
    // On Ctrl-C stop the run but still drop the database (FORCE ends its connections).
    let outcome = tokio::select! {
        outcome = run_designs(&args, &db, &stadium, workload, machine) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let dropped = db.drop_database().await;
    let mut report = outcome?;
    dropped.context("dropping the bench database")?;

    report.git_sha = machine::git_sha(&crate_dir);
    report.git_dirty = machine::git_dirty(&crate_dir);
    report.started_at = started_at.to_rfc3339();
    report.finished_at = chrono::Utc::now().to_rfc3339();
    print!("{}", report.summary());

    let dir = args
        .results_dir
        .clone()
        .unwrap_or_else(|| crate_dir.join("results"));
    let stamp = started_at.format("%Y%m%dT%H%M%SZ").to_string();
    for path in report::save(&report, &dir, args.is_full(), &stamp)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

async fn run_designs(
    args: &NaiveArgs,
    db: &BenchDatabase,
    stadium: &Stadium,
    workload: Arc<Vec<workload::Attempt>>,
    machine: machine::Machine,
) -> anyhow::Result<Report> {
    let mut report = Report {
        git_sha: String::new(),
        git_dirty: false,
        started_at: String::new(),
        finished_at: String::new(),
        machine,
        seats: stadium.seat_count(),
        attempts: workload.len(),
        users: args.users(),
        concurrency: args.concurrency,
        seed: args.seed,
        smoke: args.smoke,
        workload: workload::DESCRIPTION.to_string(),
        naive_conditional_update: None,
        naive_for_update: None,
        redis_first: None,
        notes: vec![
            "Closed loop: each client task sends its next attempt when the previous one is answered.".to_string(),
            "No per-user seat limit in any design.".to_string(),
            "PostgreSQL, Redis and the bench client share the machine's cores.".to_string(),
        ],
    };
    for design in &args.designs {
        match design {
            Design::ConditionalUpdate => {
                let r = scenarios::seats_table::run(
                    db,
                    stadium,
                    Arc::clone(&workload),
                    args.concurrency,
                    SeatsDesign::ConditionalUpdate,
                )
                .await
                .context("naive_conditional_update")?;
                report.naive_conditional_update = Some(r);
            }
            Design::ForUpdate => {
                let r = scenarios::seats_table::run(
                    db,
                    stadium,
                    Arc::clone(&workload),
                    args.concurrency,
                    SeatsDesign::ForUpdate,
                )
                .await
                .context("naive_for_update")?;
                report.naive_for_update = Some(r);
            }
            Design::RedisFirst => {
                let restart_at = (args.redis_restart_at > 0.0).then_some(args.redis_restart_at);
                let r = scenarios::redis_first::run(
                    db,
                    stadium,
                    Arc::clone(&workload),
                    args.concurrency,
                    restart_at,
                )
                .await
                .context("redis_first")?;
                report.redis_first = Some(r);
            }
        }
    }
    Ok(report)
}
