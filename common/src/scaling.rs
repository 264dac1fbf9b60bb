//! How many consumers a backlog calls for, and what counts as backlog: one rule shared by
//! `seatq-ctl lag` (the consumer crate) and the control room's live view (the gateway), so
//! an operator sees the number KEDA would act on.

/// KEDA's `lagThreshold` in the manifests (`deploy/k8s/keda-scaledobject.yaml`): records of
/// lag one consumer is expected to carry.
pub const DEFAULT_LAG_THRESHOLD: i64 = 100;

/// The records of a partition not yet applied. Without a stored position the consumer
/// starts at the log start (`auto.offset.reset = earliest`, KEDA's `offsetResetPolicy:
/// earliest`), so everything still in the log counts.
pub fn partition_lag(low: i64, high: i64, committed: Option<i64>) -> i64 {
    (high - committed.unwrap_or(low).max(low)).max(0)
}

/// KEDA's Kafka scaler rule: `ceil(total lag / lagThreshold)` consumers, capped at the
/// partition count (a consumer beyond it would sit idle: `allowIdleConsumers: false`) and
/// at `max_consumers`, and never below 1. seatq keeps one consumer even with no lag
/// (`minReplicaCount: 1`): the consumer also relays the outbox, and a cold start would add
/// its startup to the first on-sale request's latency.
pub fn desired_consumers(
    total_lag: i64,
    lag_threshold: i64,
    partitions: usize,
    max_consumers: Option<u32>,
) -> u32 {
    let threshold = lag_threshold.max(1).unsigned_abs();
    let wanted = total_lag.max(0).unsigned_abs().div_ceil(threshold);
    let cap = (partitions.max(1) as u64).min(max_consumers.map_or(u64::MAX, u64::from));
    wanted.clamp(1, cap.max(1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keda_rule() {
        // No lag: one consumer stays (minReplicaCount 1).
        assert_eq!(desired_consumers(0, 100, 12, None), 1);
        assert_eq!(desired_consumers(1, 100, 12, None), 1);
        assert_eq!(desired_consumers(100, 100, 12, None), 1);
        assert_eq!(desired_consumers(101, 100, 12, None), 2);
        assert_eq!(desired_consumers(450, 100, 12, None), 5);
        // Capped at the partition count, then at --max-consumers.
        assert_eq!(desired_consumers(1_000_000, 100, 12, None), 12);
        assert_eq!(desired_consumers(1_000_000, 100, 12, Some(4)), 4);
        assert_eq!(desired_consumers(1_000_000, 100, 12, Some(0)), 1);
        // A threshold of 0 is read as 1 rather than dividing by zero.
        assert_eq!(desired_consumers(3, 0, 12, None), 3);
    }

    #[test]
    fn lag_from_the_stored_position() {
        assert_eq!(partition_lag(0, 10, Some(4)), 6);
        assert_eq!(partition_lag(0, 10, Some(10)), 0);
        // Nothing applied yet: all that is in the log.
        assert_eq!(partition_lag(3, 10, None), 7);
        // Stored beyond the log end (broker lost records): the consumer restarts, no
        // negative lag.
        assert_eq!(partition_lag(0, 10, Some(15)), 0);
        // Stored below the log start (retention): what remains.
        assert_eq!(partition_lag(5, 10, Some(2)), 5);
    }
}
