//! Command-line interface: `bench naive [options]`.
//!
//! Defaults describe the full flash-sale run; `--smoke` shrinks it to a quick check.
//! Further scenarios (the seatq pipeline) become further subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "seatq flash-sale benchmark")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the naive designs (conditional UPDATE, FOR UPDATE, Redis-first) directly on
    /// PostgreSQL and a private Redis, and record the results.
    Naive(NaiveArgs),
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

#[derive(Debug, Args)]
pub struct NaiveArgs {
    /// Hold attempts [default: 500000, or 20000 with --smoke].
    #[arg(long)]
    pub attempts: Option<usize>,
    /// Distinct users making them [default: 50000, or 5000 with --smoke].
    #[arg(long)]
    pub users: Option<u32>,
    /// Client tasks, each with its own connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seed of the workload generator (same seed, same attempts).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Quick check: 20,000 attempts from 5,000 users; results are not written to
    /// latest.json or the README.
    #[arg(long)]
    pub smoke: bool,
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
    /// Where results go [default: bench/results of this crate].
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Free text recorded with the machine.
    #[arg(
        long,
        default_value = "2 cores shared with other work (PostgreSQL, Redis and the bench client on the same machine)"
    )]
    pub machine_note: String,
}

impl NaiveArgs {
    pub fn attempts(&self) -> usize {
        self.attempts
            .unwrap_or(if self.smoke { 20_000 } else { 500_000 })
    }

    pub fn users(&self) -> u32 {
        self.users
            .unwrap_or(if self.smoke { 5_000 } else { 50_000 })
    }

    pub fn is_full(&self) -> bool {
        !self.smoke && ALL_DESIGNS.iter().all(|d| self.designs.contains(d))
    }
}
