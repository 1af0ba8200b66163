//! `starter check`: CONTRACT §6 as a reconciliation job. It runs every rule against PostgreSQL
//! (`store::invariants`). Then it asks every order's workflow how it stands, because §6
//! also says the row's status is the outcome of its workflow's latest run:
//!
//! - a closed workflow's outcome must equal the row: a completed run's result has the row's
//!   status, a cancelled run left the row `CANCELED`; a terminated (or failed, timed out) run
//!   left an order that `starter repair` closed (`REPAIRED`, or `COMPLETED` forward), never an
//!   open one;
//! - no `PENDING` or `PAID` row, and no `COMPLETED` row not yet delivered to the data platform,
//!   outlives its workflow;
//! - a running workflow agrees with the row (after a moment to settle: a step's write and the
//!   workflow's record of it are a moment apart).

use std::time::Duration;

use domain::{CancelCode, Order, OrderStatus};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use store::orders::{self, Standing};
use store::{PgPool, StoreError};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowQueryOptions,
};
use workflows::OrderWorkflow;

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub checked: Value,
    pub violations: Vec<String>,
    /// Not violations: orders whose workflows are still at work (waiting for payment, paying,
    /// or retrying the data platform).
    pub in_flight: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Db(#[from] StoreError),
}

/// How long a running workflow and the database may disagree about a status before it counts.
const SETTLE: Duration = Duration::from_secs(2);

/// Workflows asked at once.
const CONCURRENCY: usize = 16;

/// The saga is not done with the order: open, or completed and not yet delivered.
fn open(row: &Standing) -> bool {
    matches!(row.status.as_str(), "PENDING" | "PAID")
        || (row.status == "COMPLETED" && !row.notified)
}

/// What one order's check found.
enum Finding {
    Fine,
    InFlight(String),
    Violation(String),
}

pub async fn run(db: &PgPool, temporal: Option<&Client>) -> Result<CheckReport, CheckError> {
    let sql = store::invariants::check(db).await?;
    let mut violations = sql.violations;
    let mut checked = sql.checked;
    let rows = orders::standings(db).await?;
    checked["open_orders"] = json!(rows.iter().filter(|r| open(r)).count());
    let Some(client) = temporal else {
        checked["workflows"] = json!("not checked: Temporal unreachable");
        violations.extend(rows.iter().filter(|r| open(r)).map(|r| {
            format!(
                "[workflow_reachable] order {} is {} and its workflow cannot be asked",
                r.id, r.status
            )
        }));
        return Ok(report(checked, violations, Vec::new()));
    };
    let findings: Vec<Result<Finding, StoreError>> = futures::stream::iter(rows.iter())
        .map(|row| check_order(db, client, row))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut in_flight = Vec::new();
    for finding in findings {
        match finding? {
            Finding::Fine => {}
            Finding::InFlight(what) => in_flight.push(what),
            Finding::Violation(what) => violations.push(what),
        }
    }
    in_flight.sort();
    checked["workflows_asked"] = json!(rows.len());
    Ok(report(checked, violations, in_flight))
}

fn report(checked: Value, violations: Vec<String>, in_flight: Vec<String>) -> CheckReport {
    CheckReport {
        ok: violations.is_empty(),
        checked,
        violations,
        in_flight,
    }
}

/// One order against its workflow.
async fn check_order(db: &PgPool, client: &Client, row: &Standing) -> Result<Finding, StoreError> {
    let id = &row.id;
    Ok(match ask(client, id).await {
        Asked::Running(status) => running(db, client, row, status).await?,
        Asked::Closed(outcome) => {
            // Closed after the rows were read? The database may have moved on meanwhile.
            let now = orders::standing(db, id)
                .await?
                .unwrap_or_else(|| row.clone());
            closed(&now, &outcome)
        }
        Asked::Missing if open(row) => Finding::Violation(format!(
            "[workflow_exists] order {id} is {} but has no workflow",
            row.status
        )),
        // A closed order whose workflow is gone: past the namespace's retention.
        Asked::Missing => Finding::Fine,
        Asked::Unreachable(e) if open(row) => Finding::Violation(format!(
            "[workflow_reachable] order {id} is {} and its workflow cannot be asked: {e}",
            row.status
        )),
        Asked::Unreachable(_) => Finding::Fine,
    })
}

/// A running workflow: in flight, unless it and the row disagree after a moment to settle.
async fn running(
    db: &PgPool,
    client: &Client,
    row: &Standing,
    status: Option<String>,
) -> Result<Finding, StoreError> {
    let id = &row.id;
    let agrees = |s: &Option<String>, r: &str| s.as_deref().is_none_or(|s| s == r);
    if !agrees(&status, &row.status) {
        tokio::time::sleep(SETTLE).await;
        let now = orders::standing(db, id).await?.map(|r| r.status);
        if let (Some(now), Asked::Running(again)) = (now, ask(client, id).await)
            && !agrees(&again, &now)
        {
            return Ok(Finding::Violation(format!(
                "[workflow_agrees] order {id} is {now} in the database but {} in its workflow",
                again.unwrap_or_default()
            )));
        }
    }
    Ok(Finding::InFlight(format!(
        "order {id}: {}, workflow running",
        row.status
    )))
}

/// How a closed workflow ended.
enum Outcome {
    /// Completed: the order status of its result (`None`: the placement was rejected).
    Completed(Option<OrderStatus>),
    Cancelled,
    /// Terminated, failed, timed out: no outcome of its own.
    Ended(String),
}

fn closed(row: &Standing, outcome: &Outcome) -> Finding {
    let id = &row.id;
    let repaired = row.status == "COMPLETED"
        || row.cancel_code.as_deref() == Some(CancelCode::Repaired.as_str());
    let wrong = match outcome {
        Outcome::Completed(Some(status)) if status.as_str() == row.status && !open(row) => None,
        Outcome::Completed(status) => Some(format!(
            "completed as {}",
            status.map_or("REJECTED", |s| s.as_str())
        )),
        Outcome::Cancelled if row.status == "CANCELED" => None,
        Outcome::Cancelled => Some("cancelled".to_owned()),
        Outcome::Ended(_) if repaired && !open(row) => None,
        Outcome::Ended(how) => Some(format!("{how} (`starter repair {id}` reconciles it)")),
    };
    match wrong {
        None => Finding::Fine,
        Some(how) => Finding::Violation(format!(
            "[workflow_outcome] order {id} is {} (data platform notified: {}) but its \
             workflow {how}",
            row.status, row.notified
        )),
    }
}

enum Asked {
    /// Running; the order's status as the workflow has it.
    Running(Option<String>),
    Closed(Outcome),
    Missing,
    Unreachable(String),
}

async fn ask(client: &Client, id: &str) -> Asked {
    let handle = client.get_workflow_handle::<OrderWorkflow>(id);
    let described = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => d,
        Err(e) => {
            let text = e.to_string();
            return if text.to_lowercase().contains("not found") {
                Asked::Missing
            } else {
                Asked::Unreachable(text)
            };
        }
    };
    match described.status() {
        WorkflowExecutionStatus::Running => {
            let order: Option<Order> = handle
                .query(OrderWorkflow::order, (), WorkflowQueryOptions::default())
                .await
                .ok()
                .flatten();
            Asked::Running(order.map(|o| o.status.as_str().to_owned()))
        }
        WorkflowExecutionStatus::Completed => {
            match handle.get_result(WorkflowGetResultOptions::default()).await {
                Ok(result) => Asked::Closed(Outcome::Completed(result.order.map(|o| o.status))),
                Err(e) => Asked::Unreachable(e.to_string()),
            }
        }
        WorkflowExecutionStatus::Canceled => Asked::Closed(Outcome::Cancelled),
        other => Asked::Closed(Outcome::Ended(format!("{other:?}").to_lowercase())),
    }
}
