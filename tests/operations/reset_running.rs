//! `temporal workflow reset` of a running workflow (the current run is terminated, a new one
//! replays up to the point and goes on): while it waits for payment, in the middle of a
//! payment (the last step held on a row lock, the row `PAID`), and while the data platform is
//! down. In both of the CLI's modes, to the first and the last workflow task. The new run must
//! end as the row ends, and CONTRACT §6 (`starter check`, every `COMPLETED` order charged
//! once, every other one with nothing kept) must hold.

use std::time::Duration;

use anyhow::{Result, ensure};
use domain::{Discount, OrderId, OrderStatus};
use saga_tests::{TestApp, spawn_app_with};
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus};
use workflows::OrderWorkflow;

use crate::cli;

const TIMEOUT: Duration = Duration::from_secs(8);

/// Resets the order's current run to `point` (`FirstWorkflowTask`, `LastWorkflowTask`), with
/// `--reapply-exclude Update` when `exclude`; answers once the new run is the current one.
async fn reset(app: &TestApp, order: &str, point: &str, exclude: bool) -> Result<()> {
    let handle = app.client.get_workflow_handle::<OrderWorkflow>(order);
    let before = handle.describe(WorkflowDescribeOptions::default()).await?;
    let mut args = vec!["workflow", "reset", "--workflow-id", order, "--type", point];
    if exclude {
        args.extend(["--reapply-exclude", "Update"]);
    }
    args.extend(["--reason", "operations test: reset of a running workflow"]);
    cli::temporal(&app.settings, &args)?;
    let after = handle.describe(WorkflowDescribeOptions::default()).await?;
    ensure!(
        after.run_id() != before.run_id(),
        "the reset started no new run"
    );
    Ok(())
}

/// The latest run's outcome equals the row; then `starter check` and the test's end.
async fn judge(app: TestApp, orders: &[OrderId]) -> Result<()> {
    for order in orders {
        let result = app.result(order).await?;
        let row = app.service.show(order).await?;
        ensure!(
            result.order.map(|o| o.status) == Some(row.status),
            "order {order}: the new run's outcome is not the row's {}",
            row.status
        );
        println!(
            "reset of a running workflow: order {order} ended {}",
            row.status
        );
    }
    let report = starter::check::run(&app.db, Some(&app.client)).await?;
    ensure!(report.ok, "starter check: {:#?}", report.violations);
    app.finish().await
}

/// Placed, reset while it waits, then paid: `COMPLETED`, charged once.
#[tokio::test]
async fn reset_while_waiting_for_payment() -> Result<()> {
    let app = spawn_app_with(Duration::from_secs(120)).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    let mut orders = Vec::new();
    for (point, exclude) in [
        ("FirstWorkflowTask", false),
        ("FirstWorkflowTask", true),
        ("LastWorkflowTask", false),
        ("LastWorkflowTask", true),
    ] {
        let order = app.place(user, &[(product, 1)], None).await?;
        reset(&app, &order.id, point, exclude).await?;
        let paid = app.service.pay(&order.id, None).await?;
        ensure!(
            paid.status == OrderStatus::Completed,
            "{point} {exclude}: {paid:?}"
        );
        orders.push(order.id);
    }
    ensure!(
        app.points(user).await == 100_000 - 4 * 1_000,
        "charged other than once each"
    );
    judge(app, &orders).await
}

/// The coupon's step held on the coupon's row lock (the order `PAID`, charged), the run
/// reset, then the lock let go. A new run that knows the payment (the last workflow task
/// recorded the charge, or the `pay` update is reapplied) finds its steps done and completes
/// it, charged once; one reset to before the payment without the update finds the row `PAID`
/// by a payment it does not know, and closes the order `CANCELED`, undoing from the ledger
/// what the old run did (CONTRACT §2), unless the old run's local steps reached `COMPLETED`
/// first (the pivot). Either way the new run ends as the row does.
#[tokio::test]
async fn reset_in_the_middle_of_a_payment() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    let mut orders = Vec::new();
    for (point, exclude) in [
        ("LastWorkflowTask", false),
        ("LastWorkflowTask", true),
        ("FirstWorkflowTask", false),
        ("FirstWorkflowTask", true),
    ] {
        let coupon = app
            .coupon(user, Discount::Fixed { amount: 100 }, None)
            .await;
        let order = app.place(user, &[(product, 1)], Some(coupon)).await?;
        let mut lock = app.db.begin().await?;
        sqlx::query("SELECT status FROM coupons WHERE id = $1 FOR UPDATE")
            .bind(coupon.get())
            .execute(&mut *lock)
            .await?;
        let service = app.service.clone();
        let id = order.id.clone();
        let payer = tokio::spawn(async move { service.pay(&id, None).await });
        app.wait_for_lock_waiters(1).await?;
        ensure!(app.service.show(&order.id).await?.status == OrderStatus::Paid);
        reset(&app, &order.id, point, exclude).await?;
        lock.rollback().await?;
        // The payer's answer is the old run's; what counts is where the order ends.
        let _ = payer.await;
        if (point, exclude) == ("FirstWorkflowTask", true) {
            // The new run does not know the payment: it closes the order `CANCELED` and undoes
            // the charge, unless the old run's local steps, let go by the lock before the
            // worker learnt of the reset, reached `COMPLETED` first; then the pivot holds and
            // the new run goes forward. Either way it ends as the row does (`judge`).
            let ended = app.result(&order.id).await?.order.map(|o| o.status);
            let row = app.service.show(&order.id).await?.status;
            ensure!(
                matches!(ended, Some(OrderStatus::Canceled | OrderStatus::Completed))
                    && ended == Some(row),
                "the unknown payment: the run ended {ended:?}, the row is {row:?}"
            );
        }
        orders.push(order.id);
    }
    judge(app, &orders).await
}

/// `COMPLETED`, the data platform down, the run reset while it retries the delivery: it is
/// delivered once it is back (under the order's key), and the order stays `COMPLETED`.
#[tokio::test]
async fn reset_during_the_notification() -> Result<()> {
    let mut app = spawn_app_with(TIMEOUT).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    app.platform.stop().await;
    let mut orders = Vec::new();
    for exclude in [false, true] {
        let order = app.place(user, &[(product, 1)], None).await?;
        app.service.pay(&order.id, None).await?;
        reset(&app, &order.id, "LastWorkflowTask", exclude).await?;
        let handle = app
            .client
            .get_workflow_handle::<OrderWorkflow>(order.id.as_str());
        let d = handle.describe(WorkflowDescribeOptions::default()).await?;
        ensure!(
            d.status() == WorkflowExecutionStatus::Running,
            "ended without delivering"
        );
        orders.push(order.id);
    }
    app.platform.resume().await?;
    ensure!(
        app.points(user).await == 100_000 - 2 * 1_000,
        "charged other than once each"
    );
    judge(app, &orders).await
}
