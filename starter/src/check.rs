//! `starter check`: CONTRACT §6 as a reconciliation job. It runs every rule against PostgreSQL
//! (`activities::invariants`). Then, for every order the saga has not finished with, it asks the
//! order's workflow: an order left `PENDING` or `PAID` by a workflow that has closed is stranded,
//! and so is a `COMPLETED` order whose delivery to the data platform no workflow is still trying.

use std::time::Duration;

use domain::Order;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowQueryOptions,
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
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// How long a workflow and the database may disagree about a status before it counts: a step's
/// write and the workflow's record of it are a moment apart.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(db: &PgPool, temporal: Option<&Client>) -> Result<CheckReport, CheckError> {
    let sql = activities::invariants::check(db).await?;
    let mut violations = sql.violations;
    let mut checked = sql.checked;
    let mut in_flight = Vec::new();

    // The orders the saga is not done with, as the database has them.
    let open: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT id, status, platform_notified_at IS NOT NULL FROM orders \
         WHERE status IN ('PENDING', 'PAID') \
            OR (status = 'COMPLETED' AND platform_notified_at IS NULL) ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    checked["open_orders"] = json!(open.len());
    let Some(client) = temporal else {
        checked["workflows"] = json!("not checked: Temporal unreachable");
        violations.extend(open.iter().map(|(id, status, _)| {
            format!("[workflow_reachable] order {id} is {status} and its workflow cannot be asked")
        }));
        return Ok(report(checked, violations, in_flight));
    };
    for (id, status, _) in &open {
        match ask(client, id).await {
            Asked::Running(wf_status) => {
                if wf_status.as_deref() != Some(status.as_str()) {
                    // Maybe mid-step: look again once things had time to settle.
                    tokio::time::sleep(SETTLE).await;
                    let now = current_status(db, id).await?;
                    let again = match ask(client, id).await {
                        Asked::Running(s) => s,
                        _ => None,
                    };
                    if now.is_some() && again.is_some() && now != again {
                        violations.push(format!(
                            "[workflow_agrees] order {id} is {} in the database but {} in its \
                             workflow",
                            now.unwrap_or_default(),
                            again.unwrap_or_default()
                        ));
                        continue;
                    }
                }
                in_flight.push(format!("order {id}: {status}, workflow running"));
            }
            Asked::Closed(wf) => {
                // Closed after the query above? The database may have moved on meanwhile.
                let now = current_status(db, id).await?;
                let notified: Option<bool> = sqlx::query_scalar(
                    "SELECT platform_notified_at IS NOT NULL FROM orders WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(db)
                .await?;
                let still_open = matches!(now.as_deref(), Some("PENDING") | Some("PAID"))
                    || (now.as_deref() == Some("COMPLETED") && notified == Some(false));
                if still_open {
                    violations.push(format!(
                        "[workflow_finishes_order] order {id} is {} (data platform notified: \
                         {}) but its workflow is {wf}",
                        now.unwrap_or_default(),
                        notified.unwrap_or(false)
                    ));
                }
            }
            Asked::Missing => violations.push(format!(
                "[workflow_exists] order {id} is {status} but has no workflow"
            )),
            Asked::Unreachable(e) => violations.push(format!(
                "[workflow_reachable] order {id} is {status} and its workflow cannot be asked: {e}"
            )),
        }
    }
    checked["workflows_asked"] = json!(open.len());
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

async fn current_status(db: &PgPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

enum Asked {
    /// Running; the order's status as the workflow has it.
    Running(Option<String>),
    Closed(String),
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
        other => Asked::Closed(format!("{other:?}")),
    }
}
