//! PostgreSQL for the naive designs: a throwaway database per run and the naive schema.
//!
//! The benchmark shares a PostgreSQL server with the running stack, so it never touches
//! `seatq`'s own database: each run creates `seatq_bench_<random>`, resets the tables
//! before every design (so each starts from 50,000 available seats) and drops the
//! database at the end. The schema is what a team would write on day one — one row per
//! seat with a status column — not seatq's.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::error::BenchError;
use crate::workload::Stadium;

const CREATE_DATABASE: &str = r#"CREATE DATABASE "{name}""#;
const DROP_DATABASE: &str = r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#;

const DROP_TABLES: &str = "DROP TABLE IF EXISTS seats, holds, seat_claims, promises";
const CREATE_SEATS: &str = "CREATE TABLE seats (
    seat_no int PRIMARY KEY,
    section int NOT NULL,
    row_no int NOT NULL,
    status text NOT NULL DEFAULT 'available',
    holder text
)";
const CREATE_SEATS_BY_SECTION: &str = "CREATE INDEX seats_by_section ON seats (section, seat_no)";
const CREATE_HOLDS: &str = "CREATE TABLE holds (
    hold_id bigserial PRIMARY KEY,
    holder text NOT NULL,
    seat_nos int[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)";
/// Redis-first's table of record: one row per seat, so a second claim is a conflict.
const CREATE_SEAT_CLAIMS: &str = "CREATE TABLE seat_claims (
    seat_no int PRIMARY KEY,
    holder text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
)";
const SEED_SEATS: &str = "INSERT INTO seats (seat_no, section, row_no)
    SELECT * FROM UNNEST($1::int[], $2::int[], $3::int[])";
const ANALYZE: &str = "VACUUM ANALYZE seats";

/// The database of one benchmark run.
pub struct BenchDatabase {
    admin: PgConnectOptions,
    pub name: String,
}

impl BenchDatabase {
    /// Create a fresh, uniquely named database next to `admin_url`'s.
    pub async fn create(admin_url: &str) -> Result<Self, BenchError> {
        let admin: PgConnectOptions = admin_url.parse()?;
        let admin = admin.disable_statement_logging();
        let name = format!(
            "seatq_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut conn = admin.connect().await?;
        sqlx::raw_sql(&CREATE_DATABASE.replace("{name}", &name))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(Self { admin, name })
    }

    pub async fn connect(&self) -> Result<PgConnection, BenchError> {
        Ok(self.admin.clone().database(&self.name).connect().await?)
    }

    /// `n` connections, one per client task.
    pub async fn connections(&self, n: usize) -> Result<Vec<PgConnection>, BenchError> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(self.connect().await?);
        }
        Ok(conns)
    }

    /// Drop the database (terminating any connection still open to it).
    pub async fn drop_database(self) -> Result<(), BenchError> {
        let mut conn = self.admin.connect().await?;
        sqlx::raw_sql(&DROP_DATABASE.replace("{name}", &self.name))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    /// Empty naive schema with every seat of `stadium` available.
    pub async fn reset(&self, stadium: &Stadium) -> Result<(), BenchError> {
        let mut conn = self.connect().await?;
        for statement in [
            DROP_TABLES,
            CREATE_SEATS,
            CREATE_SEATS_BY_SECTION,
            CREATE_HOLDS,
            CREATE_SEAT_CLAIMS,
        ] {
            sqlx::raw_sql(statement).execute(&mut conn).await?;
        }
        let (mut seat_nos, mut sections, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for (seat_no, section, row) in stadium.seats() {
            seat_nos.push(seat_no);
            sections.push(section);
            rows.push(row);
        }
        sqlx::query(SEED_SEATS)
            .bind(seat_nos)
            .bind(sections)
            .bind(rows)
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(ANALYZE).execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }
}
