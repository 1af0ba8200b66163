//! What a cell asserts once everything settled, beside `starter check` (CONTRACT §6, run by
//! `Env::finish`): each workflow's outcome equals its order row's status, every caller's answer
//! agrees with the state the order ended in, and no charge lacks its order.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowListOptions,
};
use workflows::{OrderResult, OrderWorkflow};

use super::flow::{Call, Kind};
use crate::env::Env;

/// How a workflow ended, as its result says.
#[derive(Debug, Clone)]
pub enum Closed {
    Completed(Box<OrderResult>),
    Canceled,
    /// Failed, terminated, timed out, or its result could not be read.
    Other(String),
    /// Still running when the cell stopped waiting.
    Running,
}

impl Closed {
    pub fn describe(&self) -> String {
        match self {
            Closed::Completed(r) => match (&r.order, &r.rejected) {
                (Some(o), _) => format!("completed with the order {}", o.status.as_str()),
                (None, Some(e)) => format!("completed, placement rejected ({})", e.code()),
                (None, None) => "completed with neither an order nor a rejection".to_owned(),
            },
            Closed::Canceled => "cancelled".to_owned(),
            Closed::Other(s) => s.clone(),
            Closed::Running => "still running".to_owned(),
        }
    }
}

/// Every workflow of the cell: those on its task queue, and those its database names.
pub async fn workflow_ids(env: &Env, known: Option<&str>) -> Result<Vec<String>> {
    let query = format!("TaskQueue = '{}'", env.settings.task_queue);
    let mut ids: Vec<String> = env
        .client
        .list_workflows(query, WorkflowListOptions::default())
        .filter_map(|w| async move { w.ok().map(|w| w.id().to_owned()) })
        .collect()
        .await;
    ids.extend(
        sqlx::query_scalar::<_, String>("SELECT id FROM orders")
            .fetch_all(&env.db)
            .await?,
    );
    ids.extend(known.map(str::to_owned));
    ids.sort();
    ids.dedup();
    Ok(ids)
}

pub async fn running(env: &Env, id: &str) -> bool {
    let handle = env.client.get_workflow_handle::<OrderWorkflow>(id);
    handle
        .describe(WorkflowDescribeOptions::default())
        .await
        .is_ok_and(|d| d.status() == WorkflowExecutionStatus::Running)
}

/// Waits until each workflow has closed (all within `patience`), and how it ended.
pub async fn outcomes(env: &Env, ids: &[String], patience: Duration) -> BTreeMap<String, Closed> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = BTreeMap::new();
    for id in ids {
        let handle = env.client.get_workflow_handle::<OrderWorkflow>(id.as_str());
        let result = tokio::time::timeout_at(
            deadline,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await;
        let closed = match result {
            Err(_) => Closed::Running,
            Ok(Ok(r)) => Closed::Completed(Box::new(r)),
            Ok(Err(WorkflowGetResultError::Cancelled { .. })) => Closed::Canceled,
            Ok(Err(e)) => Closed::Other(format!("ended: {e}")),
        };
        out.insert(id.clone(), closed);
    }
    out
}

/// The workflow's outcome equals the row's status (CONTRACT §2, §6). With `terminated` (the
/// terminate event), a terminated workflow's order must have been closed by the repair (its
/// `REPAIRED` code, or `COMPLETED` and delivered, is `starter check`'s to hold).
pub fn outcome_violations(
    outcomes: &BTreeMap<String, Closed>,
    rows: &BTreeMap<String, String>,
    patience: Duration,
    terminated: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (id, closed) in outcomes {
        let row = rows.get(id).map(String::as_str);
        let agrees = match closed {
            Closed::Completed(r) => match (&r.order, row) {
                (Some(o), Some(s)) => o.status.as_str() == s,
                // A rejected placement leaves no row.
                (None, None) => r.rejected.is_some(),
                _ => false,
            },
            // A placement is never interrupted, so a cancelled workflow has its order, which
            // it closed CANCELED.
            Closed::Canceled => row == Some("CANCELED"),
            Closed::Other(how) if terminated && how.contains("terminated") => {
                !matches!(row, Some("PENDING" | "PAID"))
            }
            Closed::Other(_) => false,
            Closed::Running => {
                out.push(format!(
                    "[not_closed] order {id}'s workflow still runs {} s after the cell settled \
                     (the order is {})",
                    patience.as_secs(),
                    row.unwrap_or("not recorded")
                ));
                continue;
            }
        };
        if !agrees {
            out.push(format!(
                "[outcome] order {id}'s workflow {} but the order is {}",
                closed.describe(),
                row.unwrap_or("not recorded")
            ));
        }
    }
    out
}

/// Every caller's answer agrees with the state A ended in (`status`: its row's final status,
/// `None` for no row).
///
/// With `terminated` (the terminate event), a caller answered between the terminate and the
/// repair is rightly told the status the row had then: `PENDING` too.
pub fn caller_violations(calls: &[Call], status: Option<&str>, terminated: bool) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| {
            judge(c, status, terminated).err().map(|why| {
                format!(
                    "[caller] {} but the order is {}: {why}",
                    c.describe(),
                    status.unwrap_or("not recorded")
                )
            })
        })
        .collect()
}

fn judge(call: &Call, status: Option<&str>, terminated: bool) -> Result<(), String> {
    let r = match &call.answer {
        Ok(r) => r,
        Err(_) => return Err("a 503 is never final".into()),
    };
    if r.status >= 400 {
        r.contract_error(&[])?;
    }
    let is = |s: &str| status == Some(s);
    let ok = match (call.kind, r.status, r.code()) {
        (Kind::Place, 201, _) => status.is_some(),
        (Kind::Place, 400..=499, _) => status.is_none(),
        (Kind::Pay, 200, _) => is("COMPLETED") && r.order_status() == "COMPLETED",
        (Kind::Cancel, 200, _) => is("CANCELED") && r.order_status() == "CANCELED",
        (_, 409, "ORDER_NOT_PAYABLE") if terminated && r.body["details"]["status"] == "PENDING" => {
            status.is_some()
        }
        (_, 409, "ORDER_NOT_PAYABLE") => went_through(r, status),
        (Kind::Pay, 409, "INSUFFICIENT_STOCK") | (Kind::Pay, 422, "COUPON_INVALID") => {
            is("CANCELED")
        }
        // Refused before anything changed: the order stayed PENDING, and may end any way.
        (Kind::Pay, 422, "INSUFFICIENT_POINTS") => status.is_some(),
        (_, 404, "ORDER_NOT_FOUND") => !call.row_at_send,
        _ => return Err("not an answer this request can get".into()),
    };
    if ok {
        Ok(())
    } else {
        Err("the answer does not agree".into())
    }
}

/// `ORDER_NOT_PAYABLE`'s `details.status` names a state the order really went through: a
/// payment in flight (`PAID`), where it ended, a deadline passed (`EXPIRED`), or `PENDING`
/// with too many attempts.
fn went_through(r: &testkit::Reply, status: Option<&str>) -> bool {
    let said = r.body["details"]["status"].as_str();
    match said {
        Some("PAID") => true,
        // The deadline passed: the timer expired the order, unless a cancel closed it first.
        Some("EXPIRED") => matches!(status, Some("EXPIRED") | Some("CANCELED")),
        Some("PENDING") => r.body["details"]["reason"] == "TOO_MANY_ATTEMPTS",
        Some(s) => status == Some(s),
        None => false,
    }
}

/// No charge without its order: every `CHARGE` ledger row names an order that exists.
pub async fn charge_violations(env: &Env) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT format('[charge_has_order] CHARGE ledger row %s (%s points from user %s) names \
                order %s, which does not exist', l.id, l.amount, l.user_id, l.order_id) \
         FROM point_ledger l WHERE l.kind = 'CHARGE' \
           AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = l.order_id)",
    )
    .fetch_all(&env.db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use testkit::Reply;

    fn call(kind: Kind, status: u16, body: Value, row_at_send: bool) -> Call {
        Call {
            who: "caller".into(),
            kind,
            row_at_send,
            answer: Ok(Reply::json(status, body)),
            repeats: 0,
        }
    }

    fn refused(code: &str, details: Value) -> Value {
        json!({"code": code, "message": "m", "details": details})
    }

    #[test]
    fn a_payer_told_canceled_of_a_completed_order_is_a_violation() {
        let told = call(
            Kind::Pay,
            409,
            refused("ORDER_NOT_PAYABLE", json!({"status": "CANCELED"})),
            true,
        );
        assert_eq!(
            caller_violations(std::slice::from_ref(&told), Some("COMPLETED"), false).len(),
            1
        );
        assert!(caller_violations(&[told], Some("CANCELED"), false).is_empty());
        let in_flight = call(
            Kind::Pay,
            409,
            refused("ORDER_NOT_PAYABLE", json!({"status": "PAID"})),
            true,
        );
        assert!(caller_violations(&[in_flight], Some("COMPLETED"), false).is_empty());
    }

    #[test]
    fn answers_must_agree_with_the_row() {
        let paid = call(Kind::Pay, 200, json!({"status": "COMPLETED"}), true);
        assert!(
            caller_violations(std::slice::from_ref(&paid), Some("COMPLETED"), false).is_empty()
        );
        assert_eq!(caller_violations(&[paid], Some("CANCELED"), false).len(), 1);
        let placed = call(Kind::Place, 201, json!({"status": "PENDING"}), false);
        assert_eq!(caller_violations(&[placed], None, false).len(), 1);
        let missing = call(
            Kind::Cancel,
            404,
            refused("ORDER_NOT_FOUND", json!({})),
            false,
        );
        assert!(
            caller_violations(std::slice::from_ref(&missing), Some("CANCELED"), false).is_empty()
        );
        let mut found = missing;
        found.row_at_send = true;
        assert_eq!(
            caller_violations(&[found], Some("CANCELED"), false).len(),
            1
        );
        let mut lost = call(Kind::Pay, 200, json!({}), true);
        lost.answer = Err("503".into());
        assert_eq!(
            caller_violations(&[lost], Some("COMPLETED"), false).len(),
            1
        );
    }
}
