//! What ends every test and scenario, beside the SQL of CONTRACT §6 (`store::invariants`):
//! every order's workflow has closed, and the data platform got exactly the `COMPLETED`
//! orders, each under its own key.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use futures::StreamExt;
use receiver::Delivery;
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowGetResultOptions};
use workflows::OrderWorkflow;

/// Every order's id, in order.
pub async fn order_ids(db: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(db)
        .await?)
}

/// Waits until the workflows of `ids` have closed (in any way: a cancelled one too), at most
/// `patience` in all; the ids of those still running then.
pub async fn unclosed_workflows(
    client: &Client,
    ids: &[String],
    patience: Duration,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + patience;
    futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let handle = client.get_workflow_handle::<OrderWorkflow>(id.as_str());
            let closed = tokio::time::timeout_at(
                deadline,
                handle.get_result(WorkflowGetResultOptions::default()),
            )
            .await;
            closed.is_err().then_some(id)
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// The data platform's deliveries held against the `COMPLETED` orders of `db`: each delivery
/// carries the order its key names, only `COMPLETED` orders were delivered, and each of them
/// was. Returns what is wrong, and how many orders were delivered.
pub async fn deliveries(db: &PgPool, deliveries: Vec<Delivery>) -> Result<(Vec<String>, usize)> {
    let completed: HashSet<String> =
        sqlx::query_scalar("SELECT id FROM orders WHERE status = 'COMPLETED'")
            .fetch_all(db)
            .await?
            .into_iter()
            .collect();
    let mut wrong = Vec::new();
    let mut delivered = HashSet::new();
    for d in deliveries {
        if d.body["id"].as_str() != Some(d.idempotency_key.as_str()) {
            wrong.push(format!(
                "[platform_key] a delivery under key {} carries order {}",
                d.idempotency_key, d.body["id"]
            ));
        }
        if !completed.contains(&d.idempotency_key) {
            wrong.push(format!(
                "[platform_only_completed] order {} reached the data platform but is not \
                 COMPLETED",
                d.idempotency_key
            ));
        }
        delivered.insert(d.idempotency_key);
    }
    let mut missing: Vec<&String> = completed.difference(&delivered).collect();
    missing.sort();
    wrong.extend(missing.into_iter().map(|id| {
        format!("[platform_notified] COMPLETED order {id} never reached the data platform")
    }));
    Ok((wrong, delivered.len()))
}
