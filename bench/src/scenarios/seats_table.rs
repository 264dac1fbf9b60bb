//! Runs a design whose table of record is `seats` — (a) conditional update and (b)
//! `FOR UPDATE` — and checks the result.
//!
//! Both start from a freshly seeded table, get the same attempts and concurrency, and
//! are judged by the same SQL over the ledger of promises, so their numbers compare.

use std::sync::Arc;

use sqlx::Connection;

use crate::error::BenchError;
use crate::pg::BenchDatabase;
use crate::results::{SeatsTableResult, Timing};
use crate::runner::{self, RunOutcome};
use crate::scenarios::conditional_update::ConditionalUpdate;
use crate::scenarios::for_update::ForUpdate;
use crate::verify;
use crate::workload::{Attempt, Stadium};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatsDesign {
    ConditionalUpdate,
    ForUpdate,
}

impl SeatsDesign {
    pub fn name(self) -> &'static str {
        match self {
            SeatsDesign::ConditionalUpdate => "naive_conditional_update",
            SeatsDesign::ForUpdate => "naive_for_update",
        }
    }
}

pub async fn run(
    db: &BenchDatabase,
    stadium: &Stadium,
    attempts: Arc<Vec<Attempt>>,
    concurrency: usize,
    design: SeatsDesign,
) -> Result<SeatsTableResult, BenchError> {
    db.reset(stadium).await?;
    let conns = db.connections(concurrency).await?;
    let bar = runner::progress_bar(design.name(), attempts.len() as u64);
    let outcome: RunOutcome = match design {
        SeatsDesign::ConditionalUpdate => {
            let clients = conns.into_iter().map(ConditionalUpdate::new).collect();
            runner::run(clients, attempts, bar).await?
        }
        SeatsDesign::ForUpdate => {
            let clients = conns.into_iter().map(ForUpdate::new).collect();
            runner::run(clients, attempts, bar).await?
        }
    };
    let mut conn = db.connect().await?;
    verify::load_promises(&mut conn, &outcome.promises).await?;
    let check = verify::check_seats_table(&mut conn).await?;
    conn.close().await?;
    Ok(SeatsTableResult {
        timing: Timing::from(&outcome),
        held: check.held,
        oversold: check.oversold,
        held_unpromised: check.held_unpromised,
        hold_row_seats: check.hold_row_seats,
    })
}
