//! `temporal activity pause | unpause | reset` on a stuck data-platform delivery (an ordinary
//! activity in every step mode): the order `COMPLETED`, the data platform down, the delivery
//! retrying. Pausing holds it (the platform back, its retry time passed, still nothing
//! delivered); unpausing resumes it; resetting restarts its retries at attempt 1, paused or
//! not. The order stays `COMPLETED` and is delivered once under its key; then `starter check`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use domain::OrderStatus;
use saga_tests::{TestApp, spawn_app_with};
use serde_json::Value;

use crate::cli;

/// The order's pending `notify_platform` activity, as `temporal workflow describe` shows it.
fn delivery(app: &TestApp, order: &str) -> Result<Option<Value>> {
    cli::pending_delivery(&app.settings, order)
}

/// Waits (at most 30 s) until the delivery is pending and has failed `attempts` times at least.
async fn failing(app: &TestApp, order: &str, attempts: i64) -> Result<Value> {
    for _ in 0..300 {
        if let Some(a) = delivery(app, order)?
            && a["attempt"].as_i64().unwrap_or(0) > attempts
        {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the delivery of {order} never failed {attempts} times")
}

fn activity(app: &TestApp, verb: &str, order: &str, id: &str, extra: &[&str]) -> Result<()> {
    let mut args = vec![
        "activity",
        verb,
        "--workflow-id",
        order,
        "--activity-id",
        id,
    ];
    args.extend(extra);
    cli::temporal(&app.settings, &args).map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_delivery_is_paused_unpaused_and_reset() -> Result<()> {
    let mut app = spawn_app_with(Duration::from_secs(300)).await;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;
    app.platform.stop().await;
    let order = app.place(user, &[(product, 1)], None).await?;
    ensure!(app.service.pay(&order.id, None).await?.status == OrderStatus::Completed);
    let stuck = failing(&app, &order.id, 1).await?;
    let id = stuck["activityId"]
        .as_str()
        .context("activityId")?
        .to_owned();

    // Paused: held, even once the platform is back and its next try is due.
    activity(
        &app,
        "pause",
        &order.id,
        &id,
        &["--reason", "test: the platform is down"],
    )?;
    let paused = delivery(&app, &order.id)?.context("no longer pending")?;
    ensure!(paused["paused"] == true, "not paused: {paused}");
    app.platform.resume().await?;
    let due = stuck["attempt"].as_i64().unwrap_or(1).min(6) as u64;
    tokio::time::sleep(Duration::from_secs(2 * due + 2)).await;
    ensure!(
        app.platform.state.delivery(&order.id).is_none(),
        "a paused delivery ran"
    );
    ensure!(app.service.show(&order.id).await?.status == OrderStatus::Completed);

    // Reset while paused (kept paused): back to attempt 1, still held.
    activity(&app, "reset", &order.id, &id, &["--keep-paused"])?;
    let reset = delivery(&app, &order.id)?.context("no longer pending")?;
    ensure!(
        reset["attempt"] == 1 && reset["paused"] == true,
        "after reset: {reset}"
    );

    // Unpaused: it runs, the order is delivered once and its workflow completes.
    activity(&app, "unpause", &order.id, &id, &[])?;
    let result = app.result(&order.id).await?;
    ensure!(result.order.map(|o| o.status) == Some(OrderStatus::Completed));
    ensure!(
        app.platform.state.deliveries().len() == 1,
        "delivered other than once"
    );
    let report = starter::check::run(&app.db, Some(&app.client)).await?;
    ensure!(report.ok, "starter check: {:#?}", report.violations);
    app.finish().await
}
