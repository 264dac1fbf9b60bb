//! The thread that owns the Kafka consumer: polls it, routes each message to its
//! partition's worker, and carries out what the workers ask of it — seek, commit offsets.
//! Rebalances (`group`) run inside its polls.
//!
//! A plain thread (not a task) because giving up a partition blocks until its worker has
//! finished its batch, and every librdkafka call stays on one thread.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use seatq_common::shutdown::Shutdown;

use crate::assignment::Assignment;
use crate::group::GroupContext;
use crate::input::Incoming;
use crate::worker::Control;

/// The consumer this thread owns.
pub type GroupConsumer = BaseConsumer<GroupContext>;

pub fn run(
    consumer: GroupConsumer,
    topic: String,
    control: Receiver<Control>,
    assignment: Arc<Assignment>,
    shutdown: Shutdown,
) {
    if let Err(e) = consumer.subscribe(&[&topic]) {
        tracing::error!(error = %e, "cannot join the consumer group");
        return;
    }
    while !shutdown.is_cancelled() {
        while let Ok(request) = control.try_recv() {
            handle(&consumer, &topic, &assignment, request);
        }
        let Some(result) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let message = match result {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                continue;
            }
        };
        let partition = message.partition();
        let Some(route) = assignment.route(partition) else {
            continue; // given up meanwhile: the new owner reads it from the stored offset
        };
        let incoming = Incoming {
            offset: message.offset(),
            payload: message.payload().map(<[u8]>::to_vec),
        };
        // Blocks when the worker is behind: back-pressure instead of unbounded memory.
        if route.tx.blocking_send((route.epoch(), incoming)).is_err() {
            tracing::debug!(partition, "worker gone; message dropped");
        }
    }
    tracing::info!("consumer stopping: finishing in-flight batches");
    assignment.stop_all();
    commit_final(&consumer, &topic, &control);
}

/// After the workers stopped: send the broker the offsets of their last batches, which
/// the loop above no longer will, and wait for it, so the group offset (the lag KEDA
/// scales on) does not show the drained batches as lag after this process is gone.
fn commit_final(consumer: &GroupConsumer, topic: &str, control: &Receiver<Control>) {
    let mut last: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    while let Ok(request) = control.try_recv() {
        if let Control::Commit {
            partition,
            next_offset,
        } = request
        {
            let entry = last.entry(partition).or_insert(next_offset);
            *entry = (*entry).max(next_offset);
        }
    }
    if last.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, next_offset) in &last {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next_offset));
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => tracing::info!(partitions = last.len(), "final group offsets committed"),
        Err(e) => tracing::warn!(error = %e, "final group offset commit failed (lag hint only)"),
    }
}

fn handle(consumer: &GroupConsumer, topic: &str, assignment: &Assignment, request: Control) {
    match request {
        Control::Seek {
            partition,
            offset,
            epoch,
        } => {
            if assignment.route(partition).is_none() {
                return;
            }
            match consumer.seek(
                topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(5),
            ) {
                Ok(()) => tracing::debug!(partition, offset, "seeked"),
                Err(e) => tracing::warn!(partition, offset, error = %e, "seek failed"),
            }
            assignment.seeked(partition, epoch);
        }
        Control::Commit {
            partition,
            next_offset,
        } => {
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(topic, partition, Offset::Offset(next_offset))
                .is_ok()
            {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                    tracing::debug!(partition, error = %e, "group offset commit failed (lag hint only)");
                }
            }
        }
    }
}
