//! The refund worker, through the whole stack and the sandbox provider: refunds the
//! provider refuses are retried with a growing backoff, end `failed` after their last try
//! (counted for the alert), and never hold up the refunds behind them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use seatq_common::testkit::eventually;
use seatq_common::testkit::invariants::{violations, Violations};
use seatq_system_tests::stack::*;
use serde_json::json;

/// More refused refunds than the worker ever took at once (it used to lock the oldest 50
/// pending refunds and retry them forever, so the 51st and everything after waited).
const REFUSED: usize = 51;
const MAX_ATTEMPTS: i32 = 4;
const BACKOFF_MS: u64 = 2000;
const BACKOFF_MAX_MS: u64 = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_refunds_back_off_then_fail_for_good_and_never_hold_up_the_others() {
    let stack = Arc::new(
        Stack::start(|s| {
            s.scheduler.refund_max_attempts = MAX_ATTEMPTS;
            s.scheduler.refund_backoff_ms = BACKOFF_MS;
            s.scheduler.refund_backoff_max_ms = BACKOFF_MAX_MS;
        })
        .await,
    );
    let failed_before = metric("seatq_refunds_failed_total");
    let event = stack.event(json!({})).await;

    // 51 payments that come after their hold was cancelled, whose refunds the provider
    // refuses (as for disputed charges): eight buyers, each on a seat of their own.
    let made = Arc::new(AtomicUsize::new(0));
    let mut buyers = tokio::task::JoinSet::new();
    for i in 1..=8 {
        let (stack, event, made) = (stack.clone(), event.clone(), made.clone());
        buyers.spawn(async move {
            let token = stack.token(&format!("refused{i}")).await;
            let seat = format!("A-1-{i}");
            while made.fetch_add(1, Ordering::SeqCst) < REFUSED {
                stack
                    .pay_after_release(&token, &event, &seat, json!({"refuse_refunds": true}))
                    .await;
            }
        });
    }
    while let Some(done) = buyers.join_next().await {
        done.expect("buyer");
    }
    eventually(
        "every late payment's refund decided",
        Duration::from_secs(60),
        || async {
            let refunds = stack.count("SELECT count(*) FROM refunds").await;
            (refunds == REFUSED as i64).then_some(())
        },
    )
    .await;

    // A later refund the provider accepts goes through at once, while the refused ones
    // are still being retried.
    let bob = stack.token("bob").await;
    let checkout = stack
        .pay_after_release(&bob, &event, "A-2-1", json!({}))
        .await;
    let payment = checkout["payment_id"].as_str().expect("payment").to_owned();
    eventually(
        "the later refund issued",
        Duration::from_secs(10),
        || async {
            let view = stack.provider_payment(&payment).await;
            (view["refunded_cents"] == 5000).then_some(())
        },
    )
    .await;
    let still_trying = stack
        .count("SELECT count(*) FROM refunds WHERE status = 'pending'")
        .await;
    assert!(
        still_trying > 0,
        "the refused refunds had all failed before the later one was issued; \
         the test shows nothing"
    );

    // Each refused refund is tried MAX_ATTEMPTS times, backing off 2 s, 4 s, 4 s between
    // tries, then fails for good: counted, and shown by the gauge the alert watches.
    eventually(
        "every refused refund failed",
        Duration::from_secs(90),
        || async {
            let failed = stack
                .count("SELECT count(*) FROM refunds WHERE status = 'failed'")
                .await;
            (failed == REFUSED as i64).then_some(())
        },
    )
    .await;
    let spacing: Vec<(i32, f64, bool)> = sqlx::query_as(
        "SELECT attempts, extract(epoch FROM failed_at - created_at)::float8, \
           last_error LIKE '%refund_declined%' \
         FROM refunds WHERE status = 'failed'",
    )
    .fetch_all(stack.pool())
    .await
    .expect("failed refunds");
    let waits = (BACKOFF_MS + 2 * BACKOFF_MAX_MS) as f64 / 1000.0;
    for (attempts, took, declined) in spacing {
        assert_eq!(attempts, MAX_ATTEMPTS);
        assert!(declined, "the provider's answer is kept in last_error");
        assert!(
            took >= waits && took < waits + 15.0,
            "{MAX_ATTEMPTS} tries took {took} s; the backoff between them adds up to {waits} s"
        );
    }
    assert_eq!(
        stack
            .count("SELECT count(*) FROM refunds WHERE status = 'issued'")
            .await,
        1
    );
    eventually(
        "the failed refunds counted",
        Duration::from_secs(10),
        || async {
            (metric("seatq_refunds_failed_total") - failed_before >= REFUSED as f64
                && metric("seatq_refunds_failed_unresolved") == REFUSED as f64)
                .then_some(())
        },
    )
    .await;
    // The provider paid back nothing for them; their money is still owed, in plain sight.
    assert_eq!(stack.count("SELECT count(*) FROM sandbox_refunds").await, 1);
    assert_eq!(violations(stack.pool()).await, Violations::default());
}
