//! The full hold lifecycle against the running stack: holds that are paid for, holds
//! that expire, and seats that go to the next person waiting.
//!
//! The flash-sale runs only ever take seats. This scenario covers what happens after a
//! seat is taken, which is where two other services join the pipeline. The scheduler
//! turns each hold's timer into an `expire_hold` command. The payment provider's signed
//! webhook becomes a `payment_succeeded` command. The consumer then has to release a
//! seat and hand it to the first eligible waiting user in one transaction, and turn a
//! paid hold into exactly one booking. Every step takes the path a real user's request
//! takes: HTTP to the gateway, the sandbox provider's API for the payment, no shortcuts
//! into the database.
//!
//! 1. A fresh event ([`plan::venue`], a few thousand seats) with a short hold window and
//!    two seats per user.
//! 2. The users ([`users`]): every pair held; a share paid through checkout and the
//!    sandbox; the rest left to expire, most with a waitlist of other users first.
//! 3. Wait until every hold has ended and every payment has its booking
//!    ([`measure::wait_settled`]).
//! 4. Read the timings and check the invariants in SQL ([`measure`]).

pub mod measure;
pub mod plan;
pub mod users;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::error::BenchError;
use crate::pipeline::api::{EventRules, Tokens};
use crate::pipeline::{self, Event};
use crate::results::{self, LifecycleResult};
use crate::runner;
use crate::stack::Stack;

use plan::{Plan, PlanConfig, SEATS_PER_USER};
use users::{Tally, Users};

/// How one lifecycle run is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub plan: PlanConfig,
    pub hold_ttl_secs: i32,
    /// Pairs whose users act at the same time.
    pub concurrency: usize,
}

/// How late an expiry may be: the sweeper expires holds past `expires_at` plus its grace
/// and runs once per interval, so that sum is what it promises when a timer is lost.
pub fn grace_secs(settings: &seatq_common::config::Settings) -> i64 {
    let s = &settings.scheduler;
    s.sweep_grace_secs + (s.sweep_interval_ms as i64 + 999) / 1000
}

pub async fn run(stack: &Stack, options: &Options) -> Result<LifecycleResult, BenchError> {
    let started = Instant::now();
    let plan = Plan::generate(&options.plan);
    let settings = &stack.settings;
    let tokens = Arc::new(Tokens::mint(&settings.auth.jwt_secret, plan.users)?);
    let http = pipeline::http_client()?;
    let rules = EventRules {
        hold_ttl_secs: options.hold_ttl_secs,
        max_seats_per_user: SEATS_PER_USER,
    };
    let event =
        pipeline::new_event(stack, &http, &tokens, &plan.venue, "hold lifecycle", rules).await?;
    println!(
        "lifecycle: event {} ({} seats, hold TTL {} s): {} pairs, {} paid, {} left to expire, {} waitlist joins ({} at the seat limit), {} users",
        event.id,
        plan.venue.seat_count(),
        options.hold_ttl_secs,
        plan.pairs.len(),
        plan.paid(),
        plan.expiring(),
        plan.joins(),
        plan.at_limit(),
        plan.users,
    );
    let users = Users {
        http,
        sources: pipeline::user_clients()?,
        gateway: stack.gateway.clone(),
        provider: settings
            .payments
            .provider_url
            .trim_end_matches('/')
            .to_string(),
        provider_key: settings.payments.provider_api_key.clone(),
        tokens,
        venue: Arc::new(plan.venue.clone()),
        event: event.id,
        retries: AtomicU64::new(0),
    };

    let acting = Instant::now();
    let tally = act(&users, &plan, options.concurrency).await;
    let users_s = acting.elapsed();
    if let Some(reason) = &tally.first_rejection {
        eprintln!(
            "  lifecycle: {} holds refused; first: {reason}",
            tally.holds_rejected
        );
    }

    let grace = grace_secs(settings);
    let settling = Instant::now();
    let settled =
        measure::wait_settled(&stack.pool, event.id, Duration::from_secs(grace as u64)).await?;
    let settle_s = settling.elapsed();
    let mut r = result(stack, &event, &plan, options, tally, grace).await?;
    r.settled = settled;
    r.broker_retries = users.broker_retries();
    r.users_s = results::round(users_s.as_secs_f64(), 3);
    r.settle_s = results::round(settle_s.as_secs_f64(), 3);
    r.wall_s = results::round(started.elapsed().as_secs_f64(), 3);
    let violations = r.invariants.violations();
    if violations > 0 {
        eprintln!(
            "  lifecycle: {violations} invariant violations on event {}",
            event.id
        );
    }
    Ok(r)
}

/// Every pair's users, `concurrency` pairs at a time.
async fn act(users: &Users, plan: &Plan, concurrency: usize) -> Tally {
    let bar = runner::progress_bar("lifecycle users", plan.pairs.len() as u64);
    let tallies: Vec<Tally> = futures::stream::iter(&plan.pairs)
        .map(|pair| {
            let bar = &bar;
            async move {
                let tally = users.act(pair).await;
                bar.inc(1);
                tally
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    bar.finish();
    let mut total = Tally::default();
    for tally in tallies {
        total.add(tally);
    }
    total
}

/// Read back what happened and put it together with what the users did (how it went in
/// time is filled in by the caller).
async fn result(
    stack: &Stack,
    event: &Event,
    plan: &Plan,
    options: &Options,
    tally: Tally,
    grace_secs: i64,
) -> Result<LifecycleResult, BenchError> {
    let pool = &stack.pool;
    let timings = measure::timings(pool, event).await?;
    let counts = measure::counts(pool, event.id).await?;
    let invariants = measure::invariants(pool, event.id, SEATS_PER_USER, grace_secs).await?;
    Ok(LifecycleResult {
        event_id: event.id,
        seats: plan.venue.seat_count(),
        hold_ttl_secs: options.hold_ttl_secs,
        max_seats_per_user: SEATS_PER_USER,
        offer_ttl_secs: stack.settings.waitlist.offer_ttl_secs,
        users: plan.users,
        holds: tally.holds,
        holds_rejected: tally.holds_rejected,
        paid_planned: plan.paid() as u64,
        payments_completed: tally.payments_completed,
        expiring_planned: plan.expiring() as u64,
        waitlist_joins: tally.joins,
        joins_at_limit: tally.joins_at_limit,
        counts,
        expected_offered_seats: plan.offered_seats() as u64,
        expected_skipped: plan.at_limit() as u64,
        release_to_offer: timings.release_to_offer,
        due_to_offer: timings.due_to_offer,
        expiry_lateness: timings.expiry_lateness,
        payment_to_booking: timings.payment_to_booking,
        commands: timings.commands,
        users_s: 0.0,
        settle_s: 0.0,
        settled: false,
        wall_s: 0.0,
        broker_retries: 0,
        errors: tally.errors,
        first_error: tally.first_error,
        invariants,
    })
}
