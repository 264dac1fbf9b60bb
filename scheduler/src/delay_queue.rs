//! The hold timers of one partition of `seatq.hold-timers`, as a delay queue.
//!
//! Timers arrive in the order holds were made, which is due order only while every hold has
//! the same TTL: waitlist offers and payment extensions have other windows. So the timers
//! read are kept in a min-heap by due time and fired from its top, and the partition's
//! safe offset — the one a restarted scheduler resumes from — is the offset of the oldest
//! timer not fired yet (or the next to read when all have fired). A restart therefore
//! re-reads, and may fire again, timers between that offset and what had been read; firing
//! is idempotent (the command's request id is derived from the hold and its expiry), so a
//! timer fires once in effect and none is ever lost.
//!
//! A timer the consumer re-armed (its expiry came before the hold was due by the
//! consumer's clock) is due at its `fire_at` and gets no second reminder.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{DateTime, Duration, Utc};
use seatq_common::message::{ArmedTimer, HoldTimer};

/// What is due when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Firing {
    /// Tell the holder their hold is about to expire.
    Reminder,
    /// Expire the hold.
    Expire,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    due: DateTime<Utc>,
    firing: Firing,
    offset: i64,
    timer: TimerKey,
}

/// A `HoldTimer` with an ordering (for the heap).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey {
    expires_at: DateTime<Utc>,
    hold_id: uuid::Uuid,
    event_id: uuid::Uuid,
    attempt: u32,
}

/// A firing that is due, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub firing: Firing,
    pub offset: i64,
    pub timer: HoldTimer,
    /// The timer's re-arm count (0: the hold's own timer).
    pub attempt: u32,
}

#[derive(Debug, Default)]
pub struct DelayQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    /// Offsets with expiry firings still in the heap, and how many.
    unfired: BTreeMap<i64, usize>,
    /// The next offset to read (everything before it was read).
    read_to: i64,
}

impl DelayQueue {
    /// A queue resuming at `offset`.
    pub fn starting_at(offset: i64) -> Self {
        Self {
            read_to: offset,
            ..Self::default()
        }
    }

    /// Add the timers of the record at `offset`. A reminder is scheduled `remind_before`
    /// ahead of the expiry, or halfway through a shorter remaining window.
    pub fn push<T: Into<ArmedTimer>>(
        &mut self,
        offset: i64,
        timers: impl IntoIterator<Item = T>,
        remind_before: Duration,
        now: DateTime<Utc>,
    ) {
        self.read_to = self.read_to.max(offset + 1);
        for armed in timers {
            let armed: ArmedTimer = armed.into();
            let (due, timer) = (armed.due(), &armed.timer);
            let key = TimerKey {
                expires_at: timer.expires_at,
                hold_id: timer.hold_id.0,
                event_id: timer.event_id.0,
                attempt: armed.attempt,
            };
            // `remind_before` ahead of expiry; a window shorter than that is reminded
            // halfway through what is left of it instead of not at all. A re-armed timer's
            // hold was reminded already.
            let halfway = now + (timer.expires_at - now) / 2;
            let remind_at = (timer.expires_at - remind_before).max(halfway);
            if armed.attempt == 0
                && remind_before > Duration::zero()
                && remind_at > now
                && remind_at < timer.expires_at
            {
                self.heap.push(Reverse(Entry {
                    due: remind_at,
                    firing: Firing::Reminder,
                    offset,
                    timer: key.clone(),
                }));
            }
            *self.unfired.entry(offset).or_default() += 1;
            self.heap.push(Reverse(Entry {
                due,
                firing: Firing::Expire,
                offset,
                timer: key,
            }));
        }
    }

    /// When the next firing is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse(e)| e.due)
    }

    /// Take every firing due at `now`. Call [`DelayQueue::fired`] for each expiry once it
    /// has been handed to the pipeline.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|Reverse(e)| e.due <= now) {
            if let Some(Reverse(e)) = self.heap.pop() {
                due.push(Due {
                    firing: e.firing,
                    offset: e.offset,
                    timer: HoldTimer {
                        hold_id: seatq_common::ids::HoldId(e.timer.hold_id),
                        event_id: seatq_common::ids::EventId(e.timer.event_id),
                        expires_at: e.timer.expires_at,
                    },
                    attempt: e.timer.attempt,
                });
            }
        }
        due
    }

    /// An expiry from `offset` is done: it no longer holds the safe offset back.
    pub fn fired(&mut self, offset: i64) {
        if let Some(n) = self.unfired.get_mut(&offset) {
            *n -= 1;
            if *n == 0 {
                self.unfired.remove(&offset);
            }
        }
    }

    /// Put back an expiry that could not be handed over (the broker was down), due at once.
    pub fn retry(&mut self, due: Due, at: DateTime<Utc>) {
        self.heap.push(Reverse(Entry {
            due: at,
            firing: due.firing,
            offset: due.offset,
            timer: TimerKey {
                expires_at: due.timer.expires_at,
                hold_id: due.timer.hold_id.0,
                event_id: due.timer.event_id.0,
                attempt: due.attempt,
            },
        }));
    }

    /// The offset a restart resumes from: the oldest unfired timer's, or the next to read.
    /// Where a restart resumes: the oldest offset with an expiry not fired yet, else the
    /// next to read. None before anything was read (the position is the group's as is).
    pub fn safe_offset(&self) -> Option<i64> {
        if self.read_to == 0 && self.unfired.is_empty() {
            return None;
        }
        Some(self.unfired.keys().next().copied().unwrap_or(self.read_to))
    }

    pub fn len(&self) -> usize {
        self.unfired.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.unfired.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seatq_common::ids::{EventId, HoldId};

    fn timer(expires_at: DateTime<Utc>) -> HoldTimer {
        HoldTimer {
            hold_id: HoldId::new(),
            event_id: EventId::new(),
            expires_at,
        }
    }

    #[test]
    fn fires_in_due_order_and_holds_the_safe_offset_at_the_oldest_unfired() {
        let now = Utc::now();
        let mut q = DelayQueue::starting_at(10);
        q.push(
            10,
            vec![timer(now + Duration::seconds(600))],
            Duration::zero(),
            now,
        );
        q.push(
            11,
            vec![timer(now + Duration::seconds(60))],
            Duration::zero(),
            now,
        );
        assert_eq!(q.safe_offset(), Some(10));
        assert!(q.take_due(now).is_empty());

        // The shorter timer (an offer) fires first although it was read second.
        let due = q.take_due(now + Duration::seconds(61));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].offset, 11);
        q.fired(11);
        assert_eq!(q.safe_offset(), Some(10), "offset 10 is still unfired");

        let due = q.take_due(now + Duration::seconds(601));
        assert_eq!(due[0].offset, 10);
        q.fired(10);
        assert_eq!(
            q.safe_offset(),
            Some(12),
            "all fired: resume after what was read"
        );
        assert!(q.is_empty());
    }

    #[test]
    fn nothing_read_has_no_position_of_its_own() {
        let q = DelayQueue::default();
        assert_eq!(q.safe_offset(), None);
    }

    #[test]
    fn reminders_come_before_expiry_and_do_not_hold_the_offset() {
        let now = Utc::now();
        let mut q = DelayQueue::starting_at(0);
        q.push(
            0,
            vec![timer(now + Duration::seconds(120))],
            Duration::seconds(60),
            now,
        );
        let due = q.take_due(now + Duration::seconds(61));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].firing, Firing::Reminder);
        assert_eq!(q.safe_offset(), Some(0));
        let due = q.take_due(now + Duration::seconds(121));
        assert_eq!(due[0].firing, Firing::Expire);
        q.fired(0);
        assert_eq!(q.safe_offset(), Some(1));

        // A window shorter than the reminder lead is reminded halfway through.
        q.push(
            1,
            vec![timer(now + Duration::seconds(30))],
            Duration::seconds(60),
            now,
        );
        let due = q.take_due(now + Duration::seconds(16));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].firing, Firing::Reminder);
        assert_eq!(q.take_due(now + Duration::seconds(31)).len(), 1);
        // Already expired when read: no reminder, just the expiry.
        q.push(
            2,
            vec![timer(now - Duration::seconds(1))],
            Duration::seconds(60),
            now,
        );
        let due = q.take_due(now);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].firing, Firing::Expire);
    }

    #[test]
    fn a_rearmed_timer_fires_at_its_fire_at_with_its_attempt_and_no_reminder() {
        let now = Utc::now();
        let mut q = DelayQueue::starting_at(0);
        let fire_at = now + Duration::seconds(20);
        q.push(
            0,
            vec![ArmedTimer {
                timer: timer(now + Duration::seconds(10)),
                attempt: 1,
                fire_at: Some(fire_at),
            }],
            Duration::seconds(60),
            now,
        );
        assert_eq!(q.next_due(), Some(fire_at));
        assert!(q.take_due(now + Duration::seconds(19)).is_empty());
        let due = q.take_due(fire_at);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].firing.clone(), due[0].attempt), (Firing::Expire, 1));
        q.retry(due[0].clone(), fire_at);
        assert_eq!(
            q.take_due(fire_at)[0].attempt,
            1,
            "a retry keeps the attempt"
        );
    }

    #[test]
    fn a_record_of_several_timers_is_safe_only_when_all_fired() {
        let now = Utc::now();
        let mut q = DelayQueue::starting_at(5);
        q.push(
            5,
            vec![timer(now), timer(now + Duration::seconds(5))],
            Duration::zero(),
            now,
        );
        let first = q.take_due(now);
        assert_eq!(first.len(), 1);
        q.fired(5);
        assert_eq!(q.safe_offset(), Some(5));
        let second = q.take_due(now + Duration::seconds(5));
        q.fired(second[0].offset);
        assert_eq!(q.safe_offset(), Some(6));
        assert_eq!(q.len(), 0);
    }
}
