//! `seatq-ctl`: operator commands. Configuration as for every service: defaults,
//! `SEATQ_CONFIG`, `SEATQ_*` variables.
//!
//! - `lag [--threshold N] [--max-consumers M] [--json]`: the commands topic's lag per
//!   partition and the consumer count KEDA's Kafka scaler would ask for
//!   (`seatq_consumer::lag`).
//! - `dead-letters [--hours H] [--limit N] [--json]`: commands the consumer rejected
//!   instead of applying, newest first (`seatq_consumer::dead_letters`; what to do with
//!   one: docs/operations.md).
//! - `peek TOPIC [--partition P] [--last N] [--json]`: the last records of a partition
//!   (`commands`, `seat-events`, `hold-timers` or a full topic name) with their
//!   `request_id` headers (`seatq_consumer::peek`).
//! - `migrate`: apply the database migrations and exit (a deployment's migration job;
//!   every service also migrates at start).
//! - `ensure-topics`: create the topics that are missing with `kafka.partitions`
//!   partitions (the broker never auto-creates them).

use anyhow::{bail, Context};
use seatq_common::config::Settings;

const USAGE: &str = "usage: seatq-ctl lag [--threshold RECORDS] [--max-consumers N] [--json]
       seatq-ctl dead-letters [--hours H] [--limit N] [--json]
       seatq-ctl peek TOPIC [--partition P] [--last N] [--json]
       seatq-ctl migrate
       seatq-ctl ensure-topics

  --threshold      KEDA's lagThreshold: records of lag one consumer is expected to carry (default 100)
  --max-consumers  cap on the suggestion (KEDA's maxReplicaCount; the partition count caps it anyway)
  --json           one JSON document instead of the table
  --hours          dead letters recorded in the last H hours (default 24)
  --limit          at most N dead letters, newest first (default 50)
  TOPIC            commands, seat-events, hold-timers (with kafka.topic_prefix), or a full name
  --partition      the partition to read (default 0)
  --last           how many records, the newest (default 10)";

/// The options of every subcommand (each reads the ones it has).
struct Args {
    threshold: i64,
    max_consumers: Option<u32>,
    json: bool,
    hours: i64,
    limit: i64,
    partition: i32,
    last: i64,
    /// Arguments that are not options (peek's topic).
    positional: Vec<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        threshold: seatq_common::scaling::DEFAULT_LAG_THRESHOLD,
        max_consumers: None,
        json: false,
        hours: 24,
        limit: 50,
        partition: 0,
        last: 10,
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match name {
            "--threshold" => {
                parsed.threshold = value()?.parse().context("--threshold: a whole number")?;
                if parsed.threshold < 1 {
                    bail!("--threshold must be at least 1");
                }
            }
            "--max-consumers" => {
                parsed.max_consumers = Some(
                    value()?
                        .parse()
                        .context("--max-consumers: a whole number")?,
                )
            }
            "--hours" => {
                parsed.hours = value()?.parse().context("--hours: a whole number")?;
                if parsed.hours < 1 {
                    bail!("--hours must be at least 1");
                }
            }
            "--limit" => {
                parsed.limit = value()?.parse().context("--limit: a whole number")?;
                if parsed.limit < 1 {
                    bail!("--limit must be at least 1");
                }
            }
            "--partition" => {
                parsed.partition = value()?.parse().context("--partition: a whole number")?
            }
            "--last" => {
                parsed.last = value()?.parse().context("--last: a whole number")?;
                if parsed.last < 1 {
                    bail!("--last must be at least 1");
                }
            }
            "--json" => parsed.json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if !other.starts_with('-') => parsed.positional.push(other.to_owned()),
            other => bail!("unknown argument {other}\n\n{USAGE}"),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("lag") => lag(&args[1..]).await,
        Some("dead-letters") => dead_letters(&args[1..]).await,
        Some("peek") => peek(&args[1..]).await,
        Some("migrate") => migrate().await,
        Some("ensure-topics") => ensure_topics().await,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

async fn lag(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    // Logs go to stderr, so stdout stays the table or the JSON.
    let settings = settings()?;
    let pool = pool(&settings).await?;
    let report = seatq_consumer::lag::report(&settings, &pool, args.threshold, args.max_consumers)
        .await
        .context("reading the lag")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", seatq_consumer::lag::render_table(&report));
    }
    Ok(())
}

async fn dead_letters(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    let settings = settings()?;
    let pool = pool(&settings).await?;
    let since = chrono::Utc::now() - chrono::Duration::hours(args.hours);
    let letters = seatq_consumer::dead_letters::list(&pool, since, args.limit)
        .await
        .context("reading the dead letters")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else {
        print!("{}", seatq_consumer::dead_letters::render_table(&letters));
    }
    Ok(())
}

async fn peek(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    let [topic] = args.positional.as_slice() else {
        bail!("peek needs one TOPIC\n\n{USAGE}");
    };
    let settings = settings()?;
    let topics = seatq_common::topics::Topics::new(&settings.kafka.topic_prefix);
    let topic = match topic.as_str() {
        "commands" => topics.commands,
        "seat-events" => topics.seat_events,
        "hold-timers" => topics.hold_timers,
        full => full.to_owned(),
    };
    let (kafka, partition, last) = (settings.kafka.clone(), args.partition, args.last);
    let records = tokio::task::spawn_blocking(move || {
        seatq_consumer::peek::last_records(&kafka, &topic, partition, last)
    })
    .await?
    .context("reading the topic")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else {
        for r in &records {
            println!(
                "offset {}  key {}  request ids {}\n  {}",
                r.offset,
                r.key.as_deref().unwrap_or("-"),
                if r.request_ids.is_empty() {
                    "-".to_owned()
                } else {
                    r.request_ids.join(",")
                },
                r.payload
            );
        }
    }
    Ok(())
}

async fn pool(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    seatq_common::db::connect(&settings.database)
        .await
        .context("connecting to PostgreSQL")
}

fn settings() -> anyhow::Result<Settings> {
    let settings = Settings::load().context("loading configuration")?;
    seatq_common::telemetry::init(&settings.log);
    Ok(settings)
}

async fn migrate() -> anyhow::Result<()> {
    let settings = settings()?;
    let pool = pool(&settings).await?;
    seatq_common::db::migrate(&pool)
        .await
        .context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

async fn ensure_topics() -> anyhow::Result<()> {
    let settings = settings()?;
    let topics = seatq_common::topics::Topics::new(&settings.kafka.topic_prefix);
    seatq_common::kafka::ensure_topics(&settings.kafka, &topics.all(), settings.kafka.partitions)
        .await
        .context("creating topics")?;
    println!("topics {} present", topics.all().join(", "));
    Ok(())
}
