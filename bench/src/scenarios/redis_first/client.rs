//! The Redis-first client: one atomic Lua script per request, PostgreSQL later.
//!
//! Seats are keys `seat:{n}` whose value is the holder; a key that does not exist is a
//! free seat. The script checks all requested keys and sets them all, or none — atomic
//! because Redis runs one script at a time. Best-available scans the section's seats
//! from a per-section low-water mark (`section:{s}:next`, every seat below it is taken;
//! seats are never released here, so it only moves up) and takes the lowest free ones.
//! The scripts touch `seat:{n}` keys they compute themselves, which is fine for one
//! Redis server (not for Redis Cluster).
//!
//! When Redis goes away the client drops its connection, reconnects and sends the same
//! request again, like a web tier would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client as RedisClient, RedisError, Script};
use tokio::sync::mpsc;

use crate::error::BenchError;
use crate::runner::{Client, Decision, Promise};
use crate::workload::{Attempt, Request};

/// KEYS: the seat keys. ARGV[1]: holder. Returns 1 if all were free (now held), else 0.
const HOLD_SEATS_LUA: &str = r"
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1])
end
return 1
";

/// KEYS[1]: the section's low-water mark. ARGV: holder, first seat_no, end seat_no
/// (exclusive), quantity. Returns the seats held (lowest free first), or {} if fewer
/// than `quantity` were free.
const HOLD_BEST_AVAILABLE_LUA: &str = r"
local stop = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local n = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
local found = {}
while n < stop and #found < want do
  if redis.call('EXISTS', 'seat:' .. n) == 0 then
    found[#found + 1] = n
  end
  n = n + 1
end
if #found < want then
  redis.call('SET', KEYS[1], found[1] or stop)
  return {}
end
for i = 1, #found do
  redis.call('SET', 'seat:' .. found[i], ARGV[1])
end
redis.call('SET', KEYS[1], n)
return found
";

/// How long a client keeps reconnecting before giving the attempt up as an error.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(30);
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisFirst {
    redis: RedisClient,
    conn: Option<MultiplexedConnection>,
    hold_seats: Script,
    hold_best_available: Script,
    writer: mpsc::UnboundedSender<Promise>,
    /// Scripts re-sent because Redis was unreachable (shared by all clients).
    resent: Arc<AtomicU64>,
}

impl RedisFirst {
    pub async fn connect(
        url: &str,
        writer: mpsc::UnboundedSender<Promise>,
        resent: Arc<AtomicU64>,
    ) -> Result<Self, BenchError> {
        let mut client = Self {
            redis: RedisClient::open(url)?,
            conn: None,
            hold_seats: Script::new(HOLD_SEATS_LUA),
            hold_best_available: Script::new(HOLD_BEST_AVAILABLE_LUA),
            writer,
            resent,
        };
        client.connection().await?;
        Ok(client)
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = self
            .redis
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    async fn run_script(&mut self, attempt: &Attempt) -> Result<Vec<i32>, RedisError> {
        let mut conn = self.connection().await?;
        match &attempt.request {
            Request::Seats(seats) => {
                let mut call = self.hold_seats.prepare_invoke();
                for seat in seats {
                    call.key(format!("seat:{seat}"));
                }
                let won: i32 = call.arg(attempt.holder()).invoke_async(&mut conn).await?;
                Ok(if won == 1 { seats.clone() } else { Vec::new() })
            }
            Request::BestAvailable { section, quantity } => {
                self.hold_best_available
                    .key(format!("section:{}:next", section.index))
                    .arg(attempt.holder())
                    .arg(section.first_seat_no)
                    .arg(section.end_seat_no())
                    .arg(*quantity)
                    .invoke_async(&mut conn)
                    .await
            }
        }
    }
}

fn is_connection_problem(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

impl Client for RedisFirst {
    async fn attempt(&mut self, attempt: &Attempt) -> Result<Decision, BenchError> {
        let started = Instant::now();
        let seats = loop {
            match self.run_script(attempt).await {
                Ok(seats) => break seats,
                Err(e) if is_connection_problem(&e) => {
                    self.conn = None;
                    if started.elapsed() > RECONNECT_PATIENCE {
                        return Err(BenchError::RedisUnreachable(RECONNECT_PATIENCE));
                    }
                    self.resent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if seats.len() != attempt.request.quantity() {
            return Ok(Decision::Rejected);
        }
        for &seat_no in &seats {
            // The writer outlives every client; a send can only fail if it crashed,
            // which its join handle reports.
            let _ = self.writer.send(Promise {
                seat_no,
                user: attempt.user,
            });
        }
        Ok(Decision::Held(seats))
    }
}
