//! Which partitions this process applies.
//!
//! Consumer processes register in PostgreSQL with a heartbeat; each one divides the
//! commands topic's partitions among the live members with rendezvous hashing (every
//! member computes the same answer, and a member joining or leaving moves only its share).
//!
//! Why not the broker's consumer groups: Tansu 0.6.0's group coordinator expires a
//! crashed member only lazily, and a replacement can wait a long time with no partitions
//! (seen here: over 50 s with an empty assignment after a kill -9). Membership in the
//! database the consumer already depends on takes over a crashed member's partitions a
//! heartbeat TTL after its last beat, works the same on any Kafka-compatible broker, and
//! needs no trust: the offset fence in `batch` keeps a brief overlap (two members both
//! believing they own a partition) from applying anything twice. Offsets are still
//! committed to the consumer group id, so lag-based autoscaling (KEDA) keeps working.

use std::time::Duration;

use sqlx::PgPool;

const HEARTBEAT: &str =
    "INSERT INTO consumer_members (topic, member, heartbeat_at) VALUES ($1, $2, now()) \
     ON CONFLICT (topic, member) DO UPDATE SET heartbeat_at = now()";
const LIVE_MEMBERS: &str = "SELECT member FROM consumer_members \
     WHERE topic = $1 AND heartbeat_at > now() - make_interval(secs => $2) ORDER BY member";
const LEAVE: &str = "DELETE FROM consumer_members WHERE topic = $1 AND member = $2";
const FORGET_DEAD: &str = "DELETE FROM consumer_members \
     WHERE topic = $1 AND heartbeat_at < now() - interval '1 hour'";

/// A name for this process among the members (and in `consumer_offsets.owner`): the host
/// (the pod name in Kubernetes) and the process id, so a restarted process is a new member.
pub fn instance_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| role.to_owned());
    format!("{host}-{}", std::process::id())
}

pub struct Membership {
    pub pool: PgPool,
    pub topic: String,
    pub member: String,
    /// A member whose last heartbeat is older than this is gone.
    pub ttl: Duration,
}

impl Membership {
    /// Renew this member and return the live members (sorted).
    pub async fn heartbeat(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query(HEARTBEAT)
            .bind(&self.topic)
            .bind(&self.member)
            .execute(&self.pool)
            .await?;
        self.live_members().await
    }

    /// The members whose heartbeat is within the TTL (sorted), without renewing this one
    /// (`seatq-ctl` reads ownership this way).
    pub async fn live_members(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(LIVE_MEMBERS)
            .bind(&self.topic)
            .bind(self.ttl.as_secs_f64())
            .fetch_all(&self.pool)
            .await
    }

    /// Leave at once so the others take over without waiting for the TTL.
    pub async fn leave(&self) -> Result<(), sqlx::Error> {
        sqlx::query(LEAVE)
            .bind(&self.topic)
            .bind(&self.member)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn forget_dead(&self) -> Result<(), sqlx::Error> {
        sqlx::query(FORGET_DEAD)
            .bind(&self.topic)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// FNV-1a: stable across processes, versions and platforms (unlike std's hasher).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Final avalanche so near-identical inputs spread.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The partitions `me` owns among `members`: each partition goes to the member with the
/// highest hash of (member, partition).
pub fn owned_partitions(members: &[String], me: &str, partitions: i32) -> Vec<i32> {
    (0..partitions)
        .filter(|p| {
            let key = p.to_be_bytes();
            members
                .iter()
                .max_by_key(|m| (fnv1a(&[m.as_bytes(), &key]), m.as_str()))
                .is_some_and(|owner| owner == me)
        })
        .collect()
}

/// Turns each heartbeat's member list into the partitions to own now: partitions no
/// longer ours are given up at once, new ones are taken only when the member list is the
/// same as a beat ago. Every member beats at the same interval, so by then the previous
/// owner has seen the new list too, finished its batch and let go. Taking them at once
/// made two consumers apply a partition for up to a heartbeat, each batch of one fencing
/// the other's (harmless, the fence holds, but every fenced batch is a rolled-back
/// transaction holding seat locks and a re-seek, seen as dozens per join under a storm);
/// for the scheduler it made two instances fire the same timers (decided once, but each
/// a wasted command). The price: a partition moves one beat later (a joining member
/// starts a beat after it registers).
#[derive(Debug, Default)]
pub struct HandOver {
    last_members: Option<Vec<String>>,
}

impl HandOver {
    /// What `me` owns after a beat that saw `members`, owning `owned` before it.
    pub fn target(
        &mut self,
        members: Vec<String>,
        me: &str,
        partitions: i32,
        owned: &[i32],
    ) -> Vec<i32> {
        let mine = owned_partitions(&members, me, partitions);
        let settled = self.last_members.as_ref() == Some(&members);
        self.last_members = Some(members);
        if settled {
            mine
        } else {
            mine.into_iter().filter(|p| owned.contains(p)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn partitions_are_released_at_once_and_taken_a_beat_later() {
        let mut hand_over = HandOver::default();
        // Joining: nothing until the member list held for a beat.
        assert!(hand_over.target(names(1), "m0", 4, &[]).is_empty());
        let all = hand_over.target(names(1), "m0", 4, &[]);
        assert_eq!(all, vec![0, 1, 2, 3]);
        // Someone joined: what moves to them is given up now, the rest kept.
        let kept = hand_over.target(names(2), "m0", 4, &all);
        assert_eq!(kept, owned_partitions(&names(2), "m0", 4));
        assert!(kept.len() < all.len(), "m1 owns nothing: {kept:?}");
        assert_eq!(hand_over.target(names(2), "m0", 4, &kept), kept);
        // It left: keep what we have, take its share back on the next beat.
        assert_eq!(hand_over.target(names(1), "m0", 4, &kept), kept);
        assert_eq!(hand_over.target(names(1), "m0", 4, &kept), all);
    }

    #[test]
    fn every_partition_has_exactly_one_owner() {
        let members: Vec<String> = (0..4).map(|i| format!("host-{i}")).collect();
        let mut seen = vec![0; 12];
        for m in &members {
            for p in owned_partitions(&members, m, 12) {
                seen[p as usize] += 1;
            }
        }
        assert_eq!(seen, vec![1; 12]);
        assert_eq!(owned_partitions(&members[..1], "host-0", 12).len(), 12);
        assert!(owned_partitions(&members, "stranger", 12).is_empty());
    }

    #[test]
    fn a_member_leaving_moves_only_its_partitions() {
        let all: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
        let before: Vec<Vec<i32>> = all.iter().map(|m| owned_partitions(&all, m, 64)).collect();
        let rest = &all[..2];
        for (i, m) in rest.iter().enumerate() {
            let after = owned_partitions(rest, m, 64);
            assert!(
                before[i].iter().all(|p| after.contains(p)),
                "{m} lost partitions"
            );
        }
    }
}
