//! Naive design (b): lock the rows with `SELECT ... FOR UPDATE`, check, update, record.
//!
//! The textbook transaction: read the seats under a row lock (in seat order, so two
//! multi-seat requests cannot deadlock), check they are all available, mark them held
//! and insert a hold row. Four round trips per request while holding the locks — the
//! design that shows what lock hold time does to a hot row.

use sqlx::{Connection, PgConnection, Row};

use crate::error::BenchError;
use crate::runner::{Client, Decision};
use crate::workload::{Attempt, Request};

const LOCK_SEATS: &str = "SELECT seat_no, status FROM seats
    WHERE seat_no = ANY($1) ORDER BY seat_no FOR UPDATE";
const LOCK_BEST_AVAILABLE: &str = "SELECT seat_no FROM seats
    WHERE section = $1 AND status = 'available'
    ORDER BY seat_no LIMIT $2 FOR UPDATE SKIP LOCKED";
const MARK_HELD: &str = "UPDATE seats SET status = 'held', holder = $2 WHERE seat_no = ANY($1)";
const INSERT_HOLD: &str = "INSERT INTO holds (holder, seat_nos) VALUES ($1, $2)";

pub struct ForUpdate {
    conn: PgConnection,
}

impl ForUpdate {
    pub fn new(conn: PgConnection) -> Self {
        Self { conn }
    }
}

impl Client for ForUpdate {
    async fn attempt(&mut self, attempt: &Attempt) -> Result<Decision, BenchError> {
        let wanted = attempt.request.quantity();
        let mut tx = self.conn.begin().await?;
        let seats: Vec<i32> = match &attempt.request {
            Request::Seats(seats) => {
                let rows = sqlx::query(LOCK_SEATS)
                    .bind(seats)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut free = Vec::with_capacity(rows.len());
                for row in rows {
                    if row.try_get::<&str, _>("status")? == "available" {
                        free.push(row.try_get("seat_no")?);
                    }
                }
                free
            }
            Request::BestAvailable { section, quantity } => {
                sqlx::query_scalar(LOCK_BEST_AVAILABLE)
                    .bind(section.index)
                    .bind(i64::from(*quantity))
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        if seats.len() != wanted {
            tx.rollback().await?;
            return Ok(Decision::Rejected);
        }
        let holder = attempt.holder();
        sqlx::query(MARK_HELD)
            .bind(&seats)
            .bind(&holder)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_HOLD)
            .bind(&holder)
            .bind(&seats)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Decision::Held(seats))
    }
}
