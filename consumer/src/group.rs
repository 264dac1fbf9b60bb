//! Which partitions this process applies: Kafka's consumer-group protocol decides.
//!
//! Every consumer process subscribes to the commands topic under `consumer.group_id` with
//! `cooperative-sticky` assignment, so the broker's group coordinator divides the partitions
//! among the live processes, evicts one that stops heartbeating after
//! `kafka.session_timeout_ms`, and a join or a leave moves only the partitions that must
//! move. Kafka's own tools, Burrow and KEDA see real members and their lag.
//!
//! The rebalance callback runs on the poll thread (see `poller`), so it may block:
//! - **assigned**: start the partitions' workers, then assign each partition at the offset
//!   PostgreSQL says was applied (the fence), not at the group's committed offset, which
//!   is only a lag hint sent after each database commit;
//! - **revoked** (or lost): stop the workers and wait, bounded by
//!   `consumer.revoke_timeout_ms`, until each has finished or abandoned its batch, then let
//!   the partitions go, so a partition changes hands between batches.
//!
//! Correctness does not depend on any of this timing: if a rebalance ever gives one
//! partition to two processes at once (a member evicted while still running), the offset
//! fence in `batch` lets only one of them commit each batch.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::runtime::Handle;

use crate::assignment::Assignment;

/// The consumer's context: carries out rebalances on the poll thread.
pub struct GroupContext {
    pub assignment: Arc<Assignment>,
    pub runtime: Handle,
    pub pool: PgPool,
    pub topic: String,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions = partitions_of(tpl, &self.topic);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::info!(partitions = ?partitions, "partitions assigned");
                self.start_at_stored_offsets(tpl, &partitions);
                // Workers first, so no fetched message finds its partition without one.
                for p in &partitions {
                    self.assignment.start(*p);
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                tracing::info!(partitions = ?partitions, lost, "partitions revoked");
                self.assignment.stop(&partitions);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; giving up every partition");
                self.assignment.stop_all();
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not carry out the rebalance");
        }
    }
}

impl GroupContext {
    /// Set each partition's start to the offset stored in PostgreSQL. Without one (never
    /// applied) or when it cannot be read now, the group's committed offset is used; the
    /// worker reads the stored offset again and seeks if it differs.
    fn start_at_stored_offsets(&self, tpl: &mut TopicPartitionList, partitions: &[i32]) {
        for &p in partitions {
            let stored =
                self.runtime
                    .block_on(seatq_common::db::next_offset(&self.pool, &self.topic, p));
            match stored {
                Ok(Some(offset)) => {
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p, Offset::Offset(offset))
                    {
                        tracing::warn!(partition = p, error = %e, "cannot set the start offset");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(partition = p, error = %e,
                    "cannot read the stored offset; starting from the group's"),
            }
        }
    }
}

/// The partitions of `topic` in `tpl`, sorted.
pub fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> = tpl
        .elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect();
    partitions.sort_unstable();
    partitions
}

/// A group member as `seatq-ctl lag` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// Partitions of the topic assigned to it.
    pub partitions: Vec<i32>,
}

/// The members of `group` and their partitions of `topic`, as the broker's coordinator
/// has them (ListGroups/DescribeGroups). Blocking.
pub fn members(consumer: &BaseConsumer, group: &str, topic: &str) -> KafkaResult<Vec<Member>> {
    let list = consumer.fetch_group_list(Some(group), std::time::Duration::from_secs(10))?;
    let mut out = Vec::new();
    for g in list.groups().iter().filter(|g| g.name() == group) {
        for m in g.members() {
            // Kafka names a member `{client.id}-{uuid}`; a broker that leaves the client id
            // out of its description (nisshi 0.8.1) still has it there.
            let client_id = match m.client_id() {
                "" => m
                    .id()
                    .get(..m.id().len().saturating_sub(37))
                    .unwrap_or_default()
                    .to_owned(),
                id => id.to_owned(),
            };
            out.push(Member {
                member_id: m.id().to_owned(),
                client_id,
                host: m.client_host().to_owned(),
                partitions: m
                    .assignment()
                    .map(|a| assigned_partitions(a, topic))
                    .unwrap_or_default(),
            });
        }
    }
    out.sort_by(|a, b| {
        a.partitions
            .cmp(&b.partitions)
            .then(a.member_id.cmp(&b.member_id))
    });
    Ok(out)
}

/// The partitions of `topic` in a consumer-protocol assignment (version i16, then an array
/// of (topic string, array of i32 partitions), then user data). Malformed: none.
pub fn assigned_partitions(assignment: &[u8], topic: &str) -> Vec<i32> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Some(head)
    }
    fn i16_of(bytes: &mut &[u8]) -> Option<i16> {
        take(bytes, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32_of(bytes: &mut &[u8]) -> Option<i32> {
        take(bytes, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    let parse = |mut bytes: &[u8]| -> Option<Vec<i32>> {
        let _version = i16_of(&mut bytes)?;
        let topics = i32_of(&mut bytes)?;
        let mut found = Vec::new();
        for _ in 0..topics.max(0) {
            let len = i16_of(&mut bytes)?;
            let name = take(&mut bytes, len.max(0) as usize)?;
            let count = i32_of(&mut bytes)?;
            for _ in 0..count.max(0) {
                let p = i32_of(&mut bytes)?;
                if name == topic.as_bytes() {
                    found.push(p);
                }
            }
        }
        found.sort_unstable();
        Some(found)
    };
    parse(assignment).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_consumer_protocol_assignment() {
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        let assigned: [(&str, Vec<i32>); 2] = [("other", vec![9]), ("seatq.commands", vec![3, 1])];
        for (topic, parts) in assigned {
            bytes.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            bytes.extend_from_slice(topic.as_bytes());
            bytes.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for p in parts {
                bytes.extend_from_slice(&p.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(assigned_partitions(&bytes, "seatq.commands"), vec![1, 3]);
        assert_eq!(assigned_partitions(&bytes, "other"), vec![9]);
        assert!(assigned_partitions(&bytes[..9], "seatq.commands").is_empty());
        assert!(assigned_partitions(&[], "x").is_empty());
    }
}
