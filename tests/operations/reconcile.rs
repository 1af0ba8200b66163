//! CONTRACT §6 on a schedule: `ReconcileWorkflow` run by a worker wired as `worker` is (the
//! Prometheus exporter and its gauges), against a database with violations planted by SQL, each
//! named in the workflow's result and counted by `orders_invariant_violations`, and a completed
//! order not delivered counted by `orders_undelivered`; orders younger than the grace window
//! left out; and `starter schedule`, run twice as `make up` runs it, whose trigger starts a run.
//! Each test takes the planted rows out again and ends with the §6 check.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use domain::OrderStatus;
use domain::reconcile::{ReconcileInput, Reconciliation};
use saga_tests::{TestApp, spawn_app};
use serde_json::Value;
use temporalio_client::schedules::{ScheduleOverlapPolicy, TriggerScheduleOptions};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use testkit::WorkerThread;
use workflows::ReconcileWorkflow;

use crate::cli;

/// The §6 rules in seconds; a run that takes longer is a failure, not a slow pass.
const RUN: Duration = Duration::from_secs(60);

/// Runs `ReconcileWorkflow` once on `task_queue` and answers its result.
async fn reconcile(app: &TestApp, task_queue: &str, grace_secs: u64) -> Result<Reconciliation> {
    let id = format!("reconcile-{}", uuid::Uuid::new_v4().simple());
    let handle = app
        .client
        .start_workflow(
            ReconcileWorkflow::run,
            ReconcileInput { grace_secs },
            WorkflowStartOptions::new(task_queue, id).build(),
        )
        .await?;
    let result = tokio::time::timeout(RUN, handle.get_result(WorkflowGetResultOptions::default()))
        .await
        .context("the reconciliation did not finish in 60 s")??;
    Ok(result)
}

/// The value of an unlabelled gauge on the worker's `/metrics`.
async fn gauge(addr: SocketAddr, name: &str) -> Result<f64> {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    let line = text
        .lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .with_context(|| format!("no {name} on /metrics:\n{text}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

/// An order placed, paid, delivered and its workflow closed: answers its id.
async fn completed_order(app: &TestApp) -> Result<String> {
    let user = app.user(10_000).await;
    let product = app.product(1_000, 10).await;
    let order = app.place(user, &[(product, 2)], None).await?;
    ensure!(app.service.pay(&order.id, None).await?.status == OrderStatus::Completed);
    app.result(&order.id).await?;
    Ok(order.id.to_string())
}

async fn sql(app: &TestApp, statement: &str, order_id: &str) -> Result<()> {
    sqlx::query(statement)
        .bind(order_id)
        .execute(&app.db)
        .await?;
    Ok(())
}

/// A charge of 500 points for an order that does not exist (the user's balance lowered with
/// it, so that only the order is missing), and a completed order's delivery forgotten.
const PLANT_GHOST: &str = "WITH u AS (UPDATE users SET points = points - 500 \
     WHERE id = (SELECT min(id) FROM users) RETURNING id) \
     INSERT INTO point_ledger (user_id, order_id, attempt, kind, amount) \
     SELECT id, $1, 1, 'CHARGE', 500 FROM u";
const REMOVE_GHOST: &str = "WITH l AS (DELETE FROM point_ledger WHERE order_id = $1 \
     RETURNING user_id, amount) UPDATE users SET points = points + l.amount FROM l \
     WHERE users.id = l.user_id";

#[tokio::test]
async fn planted_violations_are_named_and_set_the_gauges_a_clean_database_gives_zero() -> Result<()>
{
    let app = spawn_app().await;
    let queue = format!("{}-reconcile", app.settings.task_queue);
    let (worker, addr) = WorkerThread::instrumented(app.settings.clone(), queue.clone())?;
    let delivered = completed_order(&app).await?;

    let clean = reconcile(&app, &queue, 0).await?;
    ensure!(
        clean.violations.is_empty() && clean.undelivered == 0,
        "{clean:#?}"
    );
    ensure!(gauge(addr, "orders_invariant_violations").await? == 0.0);
    ensure!(gauge(addr, "orders_undelivered").await? == 0.0);

    let ghost = format!("ghost-{}", uuid::Uuid::new_v4().simple());
    sql(&app, PLANT_GHOST, &ghost).await?;
    let forget = "UPDATE orders SET platform_notified_at = NULL WHERE id = $1";
    sql(&app, forget, &delivered).await?;
    let found = reconcile(&app, &queue, 0).await?;
    let rules: Vec<&str> = found.violations.iter().map(|v| v.rule.as_str()).collect();
    ensure!(rules.contains(&"ledger_names_order"), "{found:#?}");
    ensure!(
        found
            .violations
            .iter()
            .all(|v| v.order_id.as_deref() == Some(&ghost)),
        "each violation names the ghost order: {found:#?}"
    );
    ensure!(
        found.undelivered == 1 && found.undelivered_orders == [delivered.clone()],
        "{found:#?}"
    );
    let n = found.violations.len() as f64;
    ensure!(gauge(addr, "orders_invariant_violations").await? == n);
    ensure!(gauge(addr, "orders_undelivered").await? == 1.0);

    sql(&app, REMOVE_GHOST, &ghost).await?;
    sql(
        &app,
        "UPDATE orders SET platform_notified_at = now() WHERE id = $1",
        &delivered,
    )
    .await?;
    let again = reconcile(&app, &queue, 0).await?;
    ensure!(
        again.violations.is_empty() && again.undelivered == 0,
        "{again:#?}"
    );
    ensure!(gauge(addr, "orders_invariant_violations").await? == 0.0);
    ensure!(gauge(addr, "orders_undelivered").await? == 0.0);
    drop(worker);
    app.finish().await
}

#[tokio::test]
async fn an_order_younger_than_the_grace_window_is_left_out() -> Result<()> {
    let app = spawn_app().await;
    let queue = app.settings.task_queue.clone();
    let order = completed_order(&app).await?;
    // Its total no longer what its lines and its charge say, and its delivery forgotten.
    let break_it = "UPDATE orders SET subtotal = subtotal + 1, total = total + 1, \
                    platform_notified_at = NULL WHERE id = $1";
    sql(&app, break_it, &order).await?;

    let in_grace = reconcile(&app, &queue, 3600).await?;
    ensure!(in_grace.violations.is_empty(), "{in_grace:#?}");
    ensure!(
        in_grace.undelivered == 0 && in_grace.skipped_in_flight == 1,
        "{in_grace:#?}"
    );

    let without = reconcile(&app, &queue, 0).await?;
    let rules: Vec<&str> = without.violations.iter().map(|v| v.rule.as_str()).collect();
    ensure!(
        rules.contains(&"order_arithmetic") && rules.contains(&"completed_charged_once"),
        "{without:#?}"
    );
    ensure!(
        without
            .violations
            .iter()
            .all(|v| v.order_id.as_deref() == Some(&order)),
        "{without:#?}"
    );
    ensure!(
        without.undelivered == 1 && without.skipped_in_flight == 0,
        "{without:#?}"
    );

    let mend = "UPDATE orders SET subtotal = subtotal - 1, total = total - 1, \
                platform_notified_at = completed_at WHERE id = $1";
    sql(&app, mend, &order).await?;
    app.finish().await
}

/// `starter schedule` with the test's settings and its own schedule id.
fn starter_schedule(app: &TestApp, id: &str) -> Result<Value> {
    let s = &app.settings;
    let out = cli::starter()?
        .args(["schedule", "--interval", "1h"])
        .env("RECONCILE_SCHEDULE_ID", id)
        .env("RECONCILE_GRACE", "0s")
        .env("DATABASE_URL", &s.database_url)
        .env("TEMPORAL_ADDRESS", &s.temporal_address)
        .env("TEMPORAL_NAMESPACE", &s.temporal_namespace)
        .env("TASK_QUEUE", &s.task_queue)
        .output()?;
    Ok(serde_json::from_str(&cli::success(
        "starter schedule",
        out,
    )?)?)
}

#[tokio::test]
async fn the_schedule_is_created_idempotently_and_its_trigger_runs_a_reconciliation() -> Result<()>
{
    let app = spawn_app().await;
    completed_order(&app).await?;
    let id = format!("reconcile-{}", app.settings.task_queue);
    let first = starter_schedule(&app, &id)?;
    let second = starter_schedule(&app, &id)?;
    ensure!(
        first["did"] == "created" && second["did"] == "updated",
        "{first} {second}"
    );

    let schedule = app.client.get_schedule_handle(id.clone());
    schedule
        .trigger(
            ScheduleOverlapPolicy::AllowAll,
            TriggerScheduleOptions::default(),
        )
        .await?;
    let run = tokio::time::timeout(RUN, async {
        loop {
            let described = schedule.describe(Default::default()).await?;
            if let Some(run) = described.recent_actions().into_iter().next() {
                return anyhow::Ok(run);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .context("the triggered run did not start in 60 s")??;
    ensure!(run.workflow_id.starts_with(&format!("{id}-run")), "{run:?}");
    let handle = app
        .client
        .get_workflow_handle::<ReconcileWorkflow>(run.workflow_id.as_str());
    let found = tokio::time::timeout(RUN, handle.get_result(WorkflowGetResultOptions::default()))
        .await
        .context("the triggered run did not finish in 60 s")??;
    ensure!(
        found.violations.is_empty() && found.grace_secs == 0,
        "{found:#?}"
    );
    schedule.delete(Default::default()).await?;
    app.finish().await
}
