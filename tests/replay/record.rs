//! The recorder behind `make histories`: drives one order down each path of `OrderWorkflow` on
//! the real dev server and PostgreSQL (via `spawn_app`), waits for its workflow to close, and
//! writes its history to `tests/histories/<path><HISTORY_SUFFIX>.json`.
//!
//! Ignored by `cargo test`, because it needs the server and rewrites files under version
//! control; `scripts/histories.sh` runs it with `--ignored`.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use domain::{Discount, OrderError, OrderStatus};
use saga_tests::{TestApp, business, request, spawn_app, spawn_app_with};
use starter::OrderService;
use temporalio_client::{
    WorkflowCancelOptions, WorkflowExecutionStatus, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions,
};
use workflows::OrderWorkflow;

use crate::histories;

type R = Result<()>;

/// Waits until the order's workflow is closed, then writes its history under `path`.
async fn save(app: &TestApp, order_id: &str, path: &str) -> R {
    let handle = app.client.get_workflow_handle::<OrderWorkflow>(order_id);
    // Closed in any way: a cancelled workflow is an Err here, and that is a path we record.
    let _ = tokio::time::timeout(
        Duration::from_secs(60),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .with_context(|| format!("workflow {order_id} did not close in 60 s"))?;
    let status = handle.describe(Default::default()).await?.status();
    ensure!(
        status != WorkflowExecutionStatus::Running,
        "workflow {order_id} is still running"
    );
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?;
    let suffix = std::env::var("HISTORY_SUFFIX").unwrap_or_default();
    std::fs::create_dir_all(histories::dir())?;
    let file = histories::dir().join(format!("{path}{suffix}.json"));
    let events = histories::write(&file, &json)?;
    eprintln!("recorded {} ({events} events, {status:?})", file.display());
    Ok(())
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn happy_path_with_coupon() -> R {
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let a = app.product(12_000, 10).await;
    let b = app.product(3_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 5_000 }, Some(20_000))
        .await;
    let placed = app.place(user, &[(a, 2), (b, 1)], Some(coupon)).await?;
    let paid = app.service.pay(&placed.id).await?;
    ensure!(paid.status == OrderStatus::Completed, "{paid:?}");
    save(&app, &placed.id, "happy_path_with_coupon").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn rejected_placement() -> R {
    let app = spawn_app().await;
    // Short of points by one: the last of the placement checks refuses, so every check runs.
    let user = app.user(4_999).await;
    let a = app.product(5_000, 5).await;
    let id = OrderService::new_order_id();
    let err = business(app.service.place(&id, user, request(&[(a, 1)], None)).await);
    ensure!(
        err == OrderError::InsufficientPoints {
            points: 4_999,
            total: 5_000
        },
        "{err:?}"
    );
    save(&app, &id, "rejected_placement").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn insufficient_points_at_payment_then_paid() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(8_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let placed = app.place(user, &[(a, 1)], Some(coupon)).await?;
    // The points go elsewhere between placement and payment.
    let other = app.place(user, &[(a, 1)], None).await?;
    app.service.pay(&other.id).await?;
    let err = business(app.service.pay(&placed.id).await);
    ensure!(err.code() == OrderError::INSUFFICIENT_POINTS, "{err:?}");
    activities::db::top_up(&app.db, user, 5_000, Some("top-up-1")).await?;
    let paid = app.service.pay(&placed.id).await?;
    ensure!(paid.status == OrderStatus::Completed, "{paid:?}");
    save(&app, &placed.id, "insufficient_points_at_payment_then_paid").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn compensation_after_stock_sold_out() -> R {
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let rival = app.user(100_000).await;
    let a = app.product(10_000, 2).await;
    let b = app.product(1_000, 10).await;
    let coupon = app
        .coupon(
            user,
            Discount::Percent {
                percent: 10,
                max_amount: None,
            },
            None,
        )
        .await;
    let placed = app.place(user, &[(b, 3), (a, 2)], Some(coupon)).await?;
    let sniped = app.place(rival, &[(a, 1)], None).await?;
    app.service.pay(&sniped.id).await?;
    let err = business(app.service.pay(&placed.id).await);
    ensure!(err.code() == OrderError::INSUFFICIENT_STOCK, "{err:?}");
    save(&app, &placed.id, "compensation_after_stock_sold_out").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn expiry() -> R {
    let app = spawn_app_with(Duration::from_secs(2)).await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let placed = app.place(user, &[(a, 1)], None).await?;
    let result = app.result(&placed.id).await?;
    let status = result.order.map(|o| o.status);
    ensure!(status == Some(OrderStatus::Expired), "{status:?}");
    save(&app, &placed.id, "expiry").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn cancel_by_user() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 100 }, None)
        .await;
    let placed = app.place(user, &[(a, 1)], Some(coupon)).await?;
    let canceled = app.service.cancel(&placed.id).await?;
    ensure!(canceled.status == OrderStatus::Canceled, "{canceled:?}");
    save(&app, &placed.id, "cancel_by_user").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn data_platform_outage_then_delivery() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    app.platform.state.fail_next(3);
    let placed = app.place(user, &[(a, 2)], None).await?;
    app.service.pay(&placed.id).await?;
    let delivered = app
        .platform
        .state
        .wait_for(&placed.id, Duration::from_secs(30))
        .await
        .context("never delivered after the outage")?;
    ensure!(delivered.deliveries == 1, "{delivered:?}");
    ensure!(app.platform.state.failed_attempts() >= 3);
    save(&app, &placed.id, "data_platform_outage_then_delivery").await?;
    app.finish().await
}

#[tokio::test]
#[ignore = "records tests/histories from the dev server: make histories"]
async fn workflow_cancelled_during_payment() -> R {
    let app = spawn_app().await;
    let user = app.user(50_000).await;
    let a = app.product(5_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let placed = app.place(user, &[(a, 2)], Some(coupon)).await?;

    // Hold the coupon's row so that redeem_coupon blocks mid-payment, after the charge.
    let mut blocker = app.db.begin().await?;
    sqlx::query("SELECT status FROM coupons WHERE id = $1 FOR UPDATE")
        .bind(coupon)
        .execute(&mut *blocker)
        .await?;
    let service = app.service.clone();
    let id = placed.id.clone();
    let payment = tokio::spawn(async move { service.pay(&id).await });
    let mut waited = 0;
    while app.service.show(&placed.id).await?.status != OrderStatus::Paid {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        if waited >= 100 {
            bail!("payment never reached PAID");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.client
        .get_workflow_handle::<OrderWorkflow>(placed.id.as_str())
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("recording the cancelled-during-payment path")
                .build(),
        )
        .await?;
    // The compensation queues behind the stuck deduction once the workflow has the
    // cancellation (with local steps, at its task's next heartbeat).
    app.wait_for_lock_waiters(2).await?;
    blocker.rollback().await?;
    let err = business(payment.await?);
    ensure!(
        err == OrderError::not_payable(OrderStatus::Canceled),
        "{err:?}"
    );
    save(&app, &placed.id, "workflow_cancelled_during_payment").await?;
    app.finish().await
}
