//! Naive design (a): a conditional `UPDATE ... WHERE status = 'available'` per request.
//!
//! The simplest correct design: the row lock taken by the UPDATE serialises contenders
//! for one seat, and the `status` predicate makes the loser update nothing. Multi-seat
//! requests need a transaction so they can be rolled back when only some seats were
//! free; best-available picks candidates with `FOR UPDATE SKIP LOCKED`.

use sqlx::{Connection, PgConnection};

use crate::error::BenchError;
use crate::runner::{Client, Decision};
use crate::workload::{Attempt, Request};

const HOLD_SEATS: &str = "UPDATE seats SET status = 'held', holder = $2
    WHERE seat_no = ANY($1) AND status = 'available'";
const HOLD_BEST_AVAILABLE: &str = "UPDATE seats SET status = 'held', holder = $3
    WHERE seat_no IN (
        SELECT seat_no FROM seats
        WHERE section = $1 AND status = 'available'
        ORDER BY seat_no LIMIT $2
        FOR UPDATE SKIP LOCKED)
    RETURNING seat_no";

pub struct ConditionalUpdate {
    conn: PgConnection,
}

impl ConditionalUpdate {
    pub fn new(conn: PgConnection) -> Self {
        Self { conn }
    }

    /// Run the hold statement on `conn`; the seats it held.
    async fn hold(conn: &mut PgConnection, attempt: &Attempt) -> Result<Vec<i32>, BenchError> {
        Ok(match &attempt.request {
            Request::Seats(seats) => {
                let done = sqlx::query(HOLD_SEATS)
                    .bind(seats)
                    .bind(attempt.holder())
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == seats.len() as u64 {
                    seats.clone()
                } else {
                    Vec::new()
                }
            }
            Request::BestAvailable { section, quantity } => {
                sqlx::query_scalar(HOLD_BEST_AVAILABLE)
                    .bind(section.index)
                    .bind(i64::from(*quantity))
                    .bind(attempt.holder())
                    .fetch_all(&mut *conn)
                    .await?
            }
        })
    }
}

impl Client for ConditionalUpdate {
    async fn attempt(&mut self, attempt: &Attempt) -> Result<Decision, BenchError> {
        let wanted = attempt.request.quantity();
        if wanted == 1 {
            // One statement, autocommit: nothing to undo if it held nothing.
            let held = Self::hold(&mut self.conn, attempt).await?;
            return Ok(if held.len() == 1 {
                Decision::Held(held)
            } else {
                Decision::Rejected
            });
        }
        let mut tx = self.conn.begin().await?;
        let held = Self::hold(&mut tx, attempt).await?;
        if held.len() == wanted {
            tx.commit().await?;
            Ok(Decision::Held(held))
        } else {
            tx.rollback().await?;
            Ok(Decision::Rejected)
        }
    }
}
