//! The matrix's "terminate + repair" event: while the worker is down at its crash point, an
//! operator terminates the order's workflow (which skips every compensation). `starter check`
//! must then name the order (an open row, or one its workflow did not finish), `starter
//! repair` must plan without changing anything, then reconcile it with `--apply`, and a second
//! `--apply` must change nothing more. The cell's end (`starter check`, CONTRACT §6) holds the
//! repaired order to the rules.

use anyhow::{Context, Result};
use serde_json::json;
use starter::repair::{self, Action};
use temporalio_client::WorkflowTerminateOptions;
use workflows::OrderWorkflow;

use crate::env::Env;

/// Terminates A's workflow and repairs A. Answers the violations it found.
pub async fn terminate_and_repair(env: &Env, order: &str) -> Result<Vec<String>> {
    let options = WorkflowTerminateOptions::builder()
        .reason("crash matrix: an operator's terminate")
        .build();
    env.client
        .get_workflow_handle::<OrderWorkflow>(order)
        .terminate(options)
        .await
        .context("the operator's terminate")?;
    let order = &domain::OrderId::parse(order).context("the order id")?;
    let mut out = Vec::new();
    let before = snapshot(env).await?;
    let row = store::orders::load(&env.db, order).await?;
    let Some(row) = row else {
        // Terminated before the order was recorded: nothing to repair, and nothing to find.
        return Ok(out);
    };
    let finished =
        row.status == domain::OrderStatus::Completed && row.platform_notified_at.is_some();
    let report = starter::check::run(&env.db, Some(&env.client)).await?;
    let named = report.violations.iter().any(|v| v.contains(order.as_str()));
    if named == finished {
        out.push(format!(
            "[check_flags] the order was {} (notified: {}) after its workflow was terminated, \
             and `starter check` {} it: {:?}",
            row.status,
            row.platform_notified_at.is_some(),
            if named { "named" } else { "did not name" },
            report.violations
        ));
    }
    let platform =
        activities::platform::PlatformClient::new(env.settings.data_platform_url.clone());
    let dry = repair::run(&env.db, &env.client, &platform, order, false).await?;
    if snapshot(env).await? != before {
        out.push(format!(
            "[repair_dry_run] the dry run changed the database: {:?}",
            dry.plan
        ));
    }
    let applied = repair::run(&env.db, &env.client, &platform, order, true).await?;
    if applied.action != dry.action {
        out.push(format!(
            "[repair_plan] the dry run planned {:?}, --apply did {:?}",
            dry.action, applied.action
        ));
    }
    let after = snapshot(env).await?;
    let again = repair::run(&env.db, &env.client, &platform, order, true).await?;
    if again.action != Action::None || snapshot(env).await? != after {
        out.push(format!(
            "[repair_idempotent] a second --apply did {:?}: {:?}",
            again.action, again.plan
        ));
    }
    Ok(out)
}

/// Every balance, ledger length and order row: what a dry run must leave as it is.
async fn snapshot(env: &Env) -> Result<serde_json::Value> {
    let rows: Vec<(String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT id, status, cancel_code, platform_notified_at IS NOT NULL FROM orders ORDER BY id",
    )
    .fetch_all(&env.db)
    .await?;
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM point_ledger), (SELECT count(*) FROM stock_ledger), \
                (SELECT count(*) FROM coupon_ledger), \
                (SELECT coalesce(sum(points), 0)::bigint FROM users)",
    )
    .fetch_one(&env.db)
    .await?;
    Ok(json!({ "orders": rows, "ledgers": [counts.0, counts.1, counts.2, counts.3] }))
}
