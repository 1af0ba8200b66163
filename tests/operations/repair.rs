//! `temporal workflow terminate`, then `starter check` and `starter repair`, run as an
//! operator runs them: the order waiting for payment, in the middle of a payment (the row
//! `PAID` by a charge held on the user's row lock until after the terminate), and past the pivot with the data platform
//! down. `starter check` names the order (exit 1); `starter repair ID` plans and changes
//! nothing; `--apply` closes it `CANCELED` (`REPAIRED`), undoing what its ledger shows done,
//! or delivers it; a second `--apply` changes nothing more; `starter check` is clean (exit 0).
//! The same at every step boundary is the crash-point matrix's "terminate + repair" column.

use std::process::Output;

use anyhow::{Context, Result, ensure};
use domain::{Discount, OrderId, OrderStatus};
use saga_tests::{TestApp, spawn_app_with};
use serde_json::Value;

use crate::cli;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// `starter ARGS…` with the test's settings.
fn starter(app: &TestApp, args: &[&str]) -> Result<Output> {
    let s = &app.settings;
    Ok(cli::starter()?
        .args(args)
        .env("DATABASE_URL", &s.database_url)
        .env("TEMPORAL_ADDRESS", &s.temporal_address)
        .env("TEMPORAL_NAMESPACE", &s.temporal_namespace)
        .env("TASK_QUEUE", &s.task_queue)
        .env("DATA_PLATFORM_URL", &s.data_platform_url)
        .output()?)
}

fn json(out: &Output) -> Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "not JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn terminate(app: &TestApp, order: &str) -> Result<()> {
    let args = [
        "workflow",
        "terminate",
        "--workflow-id",
        order,
        "--reason",
        "test",
    ];
    cli::temporal(&app.settings, &args).map(drop)
}

/// Check names it, the dry run plans `action` and changes nothing, `--apply` does it, a second
/// `--apply` does nothing, check is clean. Answers the repaired order.
async fn repair(app: &TestApp, order: &str, action: &str) -> Result<Value> {
    let id = &OrderId::parse(order)?;
    let check = starter(app, &["check"])?;
    ensure!(
        check.status.code() == Some(1),
        "check did not fail: {check:?}"
    );
    ensure!(json(&check)?["violations"].to_string().contains(order));
    let before = app.service.show(id).await?;
    let dry = json(&starter(app, &["repair", order])?)?;
    ensure!(
        dry["action"] == action && dry["applied"] == false,
        "dry run: {dry}"
    );
    ensure!(
        app.service.show(id).await? == before,
        "the dry run changed the order"
    );
    let applied = starter(app, &["repair", order, "--apply"])?;
    let applied = json(&cli::success_output("starter repair --apply", applied)?)?;
    ensure!(
        applied["action"] == action && applied["applied"] == true,
        "{applied}"
    );
    let again = json(&starter(app, &["repair", order, "--apply"])?)?;
    ensure!(
        again["action"] == "none" && again["order"] == applied["order"],
        "{again}"
    );
    let check = starter(app, &["check"])?;
    ensure!(
        check.status.success(),
        "check after the repair: {}",
        json(&check)?
    );
    Ok(applied["order"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_order_is_repaired_from_its_ledger() -> Result<()> {
    let mut app = spawn_app_with(TIMEOUT).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 100 }, None)
        .await;

    // Waiting for payment: nothing to undo.
    let waiting = app.place(user, &[(product, 1)], None).await?;
    terminate(&app, &waiting.id)?;
    let repaired = repair(&app, &waiting.id, "close_canceled").await?;
    ensure!(repaired["status"] == "CANCELED" && repaired["cancel_code"] == "REPAIRED");

    // Mid-payment: the charge held on the user's row lock, the workflow terminated, then the
    // lock let go: the charge commits (`PAID`), and no step follows it.
    let paying = app.place(user, &[(product, 2)], Some(coupon)).await?;
    let mut lock = app.db.begin().await?;
    sqlx::query("SELECT points FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.get())
        .execute(&mut *lock)
        .await?;
    let (service, id) = (app.service.clone(), paying.id.clone());
    let payer = tokio::spawn(async move { service.pay(&id, None).await });
    app.wait_for_lock_waiters(1).await?;
    terminate(&app, &paying.id)?;
    lock.rollback().await?;
    let _ = payer.await;
    for _ in 0..100 {
        if app.service.show(&paying.id).await?.status == OrderStatus::Paid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        app.points(user).await == 100_000 - 1_900,
        "the charge did not commit"
    );
    let repaired = repair(&app, &paying.id, "close_canceled").await?;
    ensure!(repaired["status"] == "CANCELED" && repaired["cancel_code"] == "REPAIRED");
    ensure!(
        app.points(user).await == 100_000,
        "the charge was not refunded"
    );
    ensure!(
        app.coupon_status(coupon).await.0 == "AVAILABLE",
        "the coupon is kept"
    );
    ensure!(app.stock(product).await == 10);

    // Past the pivot, the data platform down: terminated before the delivery.
    app.platform.stop().await;
    let done = app.place(user, &[(product, 3)], None).await?;
    ensure!(app.service.pay(&done.id, None).await?.status == OrderStatus::Completed);
    terminate(&app, &done.id)?;
    app.platform.resume().await?;
    let repaired = repair(&app, &done.id, "complete_forward").await?;
    ensure!(repaired["status"] == "COMPLETED" && !repaired["platform_notified_at"].is_null());
    ensure!(
        app.platform.state.delivery(&done.id).is_some(),
        "not delivered"
    );
    ensure!(app.points(user).await == 97_000 && app.stock(product).await == 7);
    app.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_refuses_a_running_workflow_and_an_unknown_order() -> Result<()> {
    let app = spawn_app_with(TIMEOUT).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    let order = app.place(user, &[(product, 1)], None).await?;
    let running = starter(&app, &["repair", &order.id, "--apply"])?;
    let said = String::from_utf8_lossy(&running.stderr);
    ensure!(
        !running.status.success() && said.contains("running"),
        "{said}"
    );
    ensure!(app.service.show(&order.id).await?.status == OrderStatus::Pending);
    let unknown = starter(&app, &["repair", "ord-unknown"])?;
    let said = String::from_utf8_lossy(&unknown.stderr);
    ensure!(
        unknown.status.code() == Some(1) && said.contains("ORDER_NOT_FOUND"),
        "{said}"
    );
    app.service.cancel(&order.id).await?;
    app.finish().await
}
