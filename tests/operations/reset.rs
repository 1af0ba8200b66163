//! `temporal workflow reset` at every workflow task of every recorded path, with the CLI's
//! default (the updates after the reset point reapplied) and with `--reapply-exclude Update`.
//! Each path is run to its end; then its first run is reset to each point in each mode, one
//! reset at a time, and each new run must close in the order row's status without a second
//! charge, refund, deduction, restoration, redemption or release (every balance and ledger as
//! the path left them). Then `starter check` (CONTRACT §6) over everything.
//!
//! `make test` runs a fixed sample (`--type FirstWorkflowTask` and `LastWorkflowTask`);
//! `RESET_MATRIX=full` (what `make chaos` sets) resets to every `WorkflowTaskCompleted` event
//! by `--event-id`. The matrix is printed, one line a cell.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use domain::{CouponId, Discount, OrderStatus, ProductId, UserId};
use saga_tests::{TestApp, spawn_app_with};
use serde_json::{Value, json};
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use workflows::OrderWorkflow;

use crate::cli;

/// Short, so that a new run that waits for a payment the reset took away expires at once.
const TIMEOUT: Duration = Duration::from_secs(8);
/// How long a new run may take to close.
const RUN_PATIENCE: Duration = Duration::from_secs(60);

/// Where to reset to: a `--type`, or an `--event-id`.
#[derive(Debug, Clone)]
enum Point {
    Type(&'static str),
    Event(i64),
}

impl Point {
    fn args(&self) -> Vec<String> {
        match self {
            Point::Type(t) => vec!["--type".into(), (*t).into()],
            Point::Event(id) => vec!["--event-id".into(), id.to_string()],
        }
    }
}

const MODES: [(&str, &[&str]); 2] = [
    ("default", &[]),
    ("exclude Update", &["--reapply-exclude", "Update"]),
];

fn full() -> bool {
    std::env::var("RESET_MATRIX").is_ok_and(|v| v == "full")
}

/// Every balance, ledger and the order's row: what a reset must leave as it is.
async fn snapshot(app: &TestApp, order: &str) -> Result<Value> {
    let row: (String, Option<String>, bool) = sqlx::query_as(
        "SELECT status, cancel_code, platform_notified_at IS NOT NULL FROM orders WHERE id = $1",
    )
    .bind(order)
    .fetch_one(&app.db)
    .await?;
    let ledgers: (i64, i64, i64, i64, i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM point_ledger), (SELECT count(*) FROM stock_ledger), \
                (SELECT count(*) FROM coupon_ledger), \
                (SELECT coalesce(sum(points), 0)::bigint FROM users), \
                (SELECT coalesce(sum(stock), 0)::bigint FROM products), \
                (SELECT coalesce(string_agg(status, ',' ORDER BY id), '') FROM coupons)",
    )
    .fetch_one(&app.db)
    .await?;
    Ok(json!({ "row": row, "ledgers": ledgers }))
}

/// The first run's id and the points to reset it to.
async fn points(app: &TestApp, order: &str) -> Result<(String, Vec<Point>)> {
    let handle = app.client.get_workflow_handle::<OrderWorkflow>(order);
    let run = handle
        .describe(WorkflowDescribeOptions::default())
        .await?
        .run_id()
        .to_owned();
    if !full() {
        let sample = vec![
            Point::Type("FirstWorkflowTask"),
            Point::Type("LastWorkflowTask"),
        ];
        return Ok((run, sample));
    }
    let events = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await?;
    let completed = events
        .iter()
        .filter(|e| e.event_type == EventType::WorkflowTaskCompleted as i32)
        .map(|e| Point::Event(e.event_id))
        .collect();
    Ok((run, completed))
}

/// Waits for a run other than `before` to be the latest and to close; its status and result.
async fn new_run(app: &TestApp, order: &str, before: &str) -> Result<(String, Option<String>)> {
    let handle = app.client.get_workflow_handle::<OrderWorkflow>(order);
    let deadline = tokio::time::Instant::now() + RUN_PATIENCE;
    loop {
        let d = handle.describe(WorkflowDescribeOptions::default()).await?;
        if d.run_id() != before && d.status() != WorkflowExecutionStatus::Running {
            let outcome = match d.status() {
                WorkflowExecutionStatus::Completed => handle
                    .get_result(WorkflowGetResultOptions::default())
                    .await?
                    .order
                    .map(|o| o.status.as_str().to_owned()),
                other => Some(format!("{other:?}")),
            };
            return Ok((d.run_id().to_owned(), outcome));
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the reset's run of {order} did not close in {} s",
                RUN_PATIENCE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resets the path's first run to every point in both modes; the matrix's lines, and the
/// violations among them.
async fn reset_matrix(app: &TestApp, path: &str, order: &str) -> Result<Vec<String>> {
    let before = snapshot(app, order).await?;
    let status = before["row"][0].as_str().unwrap_or_default().to_owned();
    let (first, points) = points(app, order).await?;
    let mut latest = first.clone();
    let mut violations = Vec::new();
    for point in &points {
        for (mode, extra) in MODES {
            let mut args = vec![
                "workflow",
                "reset",
                "--workflow-id",
                order,
                "--run-id",
                &first,
            ];
            let point_args = point.args();
            args.extend(point_args.iter().map(String::as_str));
            args.extend(extra.iter().copied());
            args.extend(["--reason", "operations test: reset"]);
            cli::temporal(&app.settings, &args)?;
            let (run, outcome) = new_run(app, order, &latest).await?;
            latest = run;
            let after = snapshot(app, order).await?;
            let ok = outcome.as_deref() == Some(status.as_str()) && after == before;
            let line = format!(
                "{path} × {point:?} × {mode}: {} (new run ended {outcome:?}, row {status})",
                if ok { "pass" } else { "VIOLATION" }
            );
            println!("reset matrix: {line}");
            if !ok {
                violations.push(format!("{line}; before {before}, after {after}"));
            }
        }
    }
    Ok(violations)
}

/// Runs the path's matrix, then CONTRACT §6 with the workflows (`starter check`).
async fn judge(app: TestApp, path: &str, order: &str) -> Result<()> {
    let violations = reset_matrix(&app, path, order).await?;
    ensure!(violations.is_empty(), "reset violations: {violations:#?}");
    let report = starter::check::run(&app.db, Some(&app.client)).await?;
    ensure!(report.ok, "starter check: {:#?}", report.violations);
    app.finish().await
}

async fn shop(app: &TestApp, points: i64, stock: i64) -> (UserId, ProductId, CouponId) {
    let user = app.user(points).await;
    let product = app.product(1_000, stock).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 500 }, None)
        .await;
    (user, product, coupon)
}

/// Placement, waiting, the payment, after `COMPLETED` and the notification.
#[tokio::test]
async fn reset_a_completed_order() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let (user, product, coupon) = shop(&app, 100_000, 10).await;
    let order = app.place(user, &[(product, 2)], Some(coupon)).await?;
    let paid = app.service.pay(&order.id, None).await?;
    ensure!(paid.status == OrderStatus::Completed);
    app.result(&order.id).await?;
    judge(app, "S1 completed", &order.id).await
}

/// The compensations: another order buys the last unit, the payment is refused and undone.
#[tokio::test]
async fn reset_a_compensated_order() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let (user, product, coupon) = shop(&app, 100_000, 1).await;
    let a = app.place(user, &[(product, 1)], Some(coupon)).await?;
    let b = app.place(user, &[(product, 1)], None).await?;
    app.service.pay(&b.id, None).await?;
    let refused = app.service.pay(&a.id, None).await;
    ensure!(refused.is_err(), "A was paid: {refused:?}");
    app.result(&a.id).await?;
    app.result(&b.id).await?;
    judge(app, "S2 compensated", &a.id).await
}

/// The user's cancel, and expiry.
#[tokio::test]
async fn reset_a_canceled_and_an_expired_order() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let (user, product, _) = shop(&app, 100_000, 10).await;
    let canceled = app.place(user, &[(product, 1)], None).await?;
    app.service.cancel(&canceled.id).await?;
    let expired = app.place(user, &[(product, 1)], None).await?;
    let done = app.result(&expired.id).await?;
    ensure!(done.order.map(|o| o.status) == Some(OrderStatus::Expired));
    app.result(&canceled.id).await?;
    let mut violations = reset_matrix(&app, "S3 canceled", &canceled.id).await?;
    violations.extend(reset_matrix(&app, "S4 expired", &expired.id).await?);
    ensure!(violations.is_empty(), "reset violations: {violations:#?}");
    let report = starter::check::run(&app.db, Some(&app.client)).await?;
    ensure!(report.ok, "starter check: {:#?}", report.violations);
    app.finish().await
}

/// Points short at payment (the charge refused), a top-up, a second payment.
#[tokio::test]
async fn reset_an_order_paid_after_a_refusal() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let (user, product, _) = shop(&app, 1_000, 10).await;
    let order = app.place(user, &[(product, 1)], None).await?;
    let other = app.place(user, &[(product, 1)], None).await?;
    app.service.pay(&other.id, None).await?;
    let short = app.service.pay(&order.id, None).await;
    ensure!(short.is_err(), "paid without the points: {short:?}");
    store::db::top_up(&app.db, user, 1_000, None)
        .await
        .context("top-up")?;
    app.service.pay(&order.id, None).await?;
    app.result(&order.id).await?;
    app.result(&other.id).await?;
    judge(app, "S5 paid after a refusal", &order.id).await
}
