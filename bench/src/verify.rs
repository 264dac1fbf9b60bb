//! After-the-fact checks: did every seat a user was promised end up theirs in PostgreSQL?
//!
//! The runner keeps a ledger of every seat the clients were told they hold. Loading that
//! ledger into the design's database lets plain SQL answer the questions that matter to
//! a buyer — was any seat promised twice, is any promise not backed by the table of
//! record — instead of trusting the design's own counters.

use sqlx::PgConnection;

use crate::error::BenchError;
use crate::runner::Promise;
use crate::workload::holder;

const CREATE_PROMISES: &str =
    "CREATE UNLOGGED TABLE promises (seat_no int NOT NULL, holder text NOT NULL)";
const INSERT_PROMISES: &str =
    "INSERT INTO promises (seat_no, holder) SELECT * FROM UNNEST($1::int[], $2::text[])";
const INDEX_PROMISES: &str = "CREATE INDEX promises_by_seat ON promises (seat_no)";

const HELD_SEATS: &str = "SELECT count(*) FROM seats WHERE status = 'held'";
const HOLD_ROW_SEATS: &str = "SELECT coalesce(sum(cardinality(seat_nos)), 0)::bigint FROM holds";
/// Seats that are oversold in any way: promised more than once, promised to someone the
/// seats table does not name, or in more than one hold row.
const OVERSOLD_SEATS: &str = "SELECT count(*) FROM (
    SELECT seat_no FROM promises GROUP BY seat_no HAVING count(*) > 1
    UNION
    SELECT p.seat_no FROM promises p
    LEFT JOIN seats s ON s.seat_no = p.seat_no AND s.status = 'held' AND s.holder = p.holder
    WHERE s.seat_no IS NULL
    UNION
    SELECT seat_no FROM holds, unnest(seat_nos) AS seat_no GROUP BY seat_no HAVING count(*) > 1
) AS bad";
/// Held in the table but never confirmed to anyone (e.g. the client saw an error).
const HELD_UNPROMISED: &str = "SELECT count(*) FROM seats s
    WHERE s.status = 'held'
      AND NOT EXISTS (SELECT 1 FROM promises p WHERE p.seat_no = s.seat_no)";

const CLAIM_ROWS: &str = "SELECT count(*) FROM seat_claims";
/// Promises the script made for a seat PostgreSQL records as someone else's.
const PROMISES_CLAIMED_BY_OTHERS: &str = "SELECT count(*) FROM promises p
    JOIN seat_claims c ON c.seat_no = p.seat_no
    WHERE c.holder <> p.holder";
const PROMISES_WITHOUT_CLAIM: &str = "SELECT count(*) FROM promises p
    WHERE NOT EXISTS (SELECT 1 FROM seat_claims c WHERE c.seat_no = p.seat_no)";

/// Load the ledger of promises into the `promises` table.
pub async fn load_promises(
    conn: &mut PgConnection,
    promises: &[Promise],
) -> Result<(), BenchError> {
    sqlx::raw_sql(CREATE_PROMISES).execute(&mut *conn).await?;
    let seat_nos: Vec<i32> = promises.iter().map(|p| p.seat_no).collect();
    let holders: Vec<String> = promises.iter().map(|p| holder(p.user)).collect();
    sqlx::query(INSERT_PROMISES)
        .bind(seat_nos)
        .bind(holders)
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(INDEX_PROMISES).execute(&mut *conn).await?;
    Ok(())
}

async fn count(conn: &mut PgConnection, sql: &'static str) -> Result<u64, BenchError> {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
    Ok(n.max(0) as u64)
}

/// The state of a seats-table design after its run.
#[derive(Debug, Clone, Copy)]
pub struct SeatsCheck {
    pub held: u64,
    pub hold_row_seats: u64,
    pub oversold: u64,
    pub held_unpromised: u64,
}

pub async fn check_seats_table(conn: &mut PgConnection) -> Result<SeatsCheck, BenchError> {
    Ok(SeatsCheck {
        held: count(conn, HELD_SEATS).await?,
        hold_row_seats: count(conn, HOLD_ROW_SEATS).await?,
        oversold: count(conn, OVERSOLD_SEATS).await?,
        held_unpromised: count(conn, HELD_UNPROMISED).await?,
    })
}

/// The state of the Redis-first design's PostgreSQL copy after its run.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsCheck {
    pub claim_rows: u64,
    pub promised_to_another: u64,
    pub promises_without_claim: u64,
}

pub async fn check_claims_table(conn: &mut PgConnection) -> Result<ClaimsCheck, BenchError> {
    Ok(ClaimsCheck {
        claim_rows: count(conn, CLAIM_ROWS).await?,
        promised_to_another: count(conn, PROMISES_CLAIMED_BY_OTHERS).await?,
        promises_without_claim: count(conn, PROMISES_WITHOUT_CLAIM).await?,
    })
}
