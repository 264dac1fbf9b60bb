//! What a batch tells the rest of the system: the seat events and hold timers the outbox
//! relay publishes after commit, packed per event into few records.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use seatq_common::message::{HoldTimer, SeatEvent, SeatEventEnvelope};
use seatq_common::record;
use seatq_common::testkit::read_topic;
use seatq_system_tests::pipeline::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_are_published_as_packed_seat_events_and_hold_timers() {
    let partitions = 2;
    let p = Pipeline::start(partitions).await;
    let (event, partition) = new_event(&p, 1, 10).await;
    let commands = command_producer(&p.env);
    // 40 requests for 10 seats: 10 held, 30 rejected.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..40 {
        let cmd = hold_command(event, &format!("u{i}"), vec![i % 10]);
        let commands = commands.clone();
        sends.spawn(async move {
            let bytes = cmd.encode().expect("encode");
            commands.send(partition, bytes).await.expect("acknowledged")
        });
    }
    sends.join_all().await;
    wait_decided(&p.env.pool, 40, Duration::from_secs(60)).await;

    let count_events = |records: &[Vec<u8>]| {
        let mut kinds: HashMap<&'static str, usize> = HashMap::new();
        for r in records {
            for e in record::decode_all::<SeatEventEnvelope>(r).expect("seat events") {
                assert_eq!(e.event_id, event);
                let kind = match e.payload {
                    SeatEvent::HoldCreated { .. } => "hold_created",
                    SeatEvent::HoldRejected { .. } => "hold_rejected",
                    SeatEvent::SeatStatusChanged { seats, .. } => {
                        *kinds.entry("seats_changed").or_default() += seats.len();
                        continue;
                    }
                    _ => "other",
                };
                *kinds.entry(kind).or_default() += 1;
            }
        }
        kinds
    };
    let events = read_topic(&p.env, &p.env.topics.seat_events, partitions, |r| {
        let k = count_events(r);
        k.get("hold_created") == Some(&10) && k.get("hold_rejected") == Some(&30)
    });
    assert_eq!(count_events(&events).get("seats_changed"), Some(&10));
    assert!(
        events.len() < 40,
        "one record per message: {} records for 40 decisions",
        events.len()
    );

    let timers = read_topic(&p.env, &p.env.topics.hold_timers, partitions, |r| {
        r.iter()
            .map(|t| record::decode_all::<HoldTimer>(t).expect("timers").len())
            .sum::<usize>()
            >= 10
    });
    let timers: Vec<HoldTimer> = timers
        .iter()
        .flat_map(|t| record::decode_all::<HoldTimer>(t).expect("timers"))
        .collect();
    assert_eq!(timers.len(), 10);
    assert!(timers
        .iter()
        .all(|t| t.event_id == event && t.expires_at > Utc::now()));
}
