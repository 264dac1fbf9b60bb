//! The thread that owns the Kafka consumer: polls it, routes each message to its
//! partition's worker, and carries out the workers' seeks and offset commits.
//!
//! A plain thread (not a task) because librdkafka runs the rebalance callbacks inside
//! `poll`, and those block until revoked workers have finished their batch.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use seatq_common::shutdown::Shutdown;

use crate::assignment::{Assignment, RebalanceContext};
use crate::batch::Incoming;
use crate::worker::Control;

pub fn run(
    consumer: BaseConsumer<RebalanceContext>,
    topic: String,
    control: Receiver<Control>,
    assignment: Arc<Assignment>,
    shutdown: Shutdown,
) {
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
            continue; // revoked meanwhile: the new owner reads it from the stored offset
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
    consumer.unsubscribe();
}

fn handle(
    consumer: &BaseConsumer<RebalanceContext>,
    topic: &str,
    assignment: &Assignment,
    request: Control,
) {
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
                Ok(()) => tracing::info!(partition, offset, "seeked to the stored offset"),
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
