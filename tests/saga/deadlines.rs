//! CONTRACT §2's deadlines and bounds: a technical failure never decides an order (defect 3),
//! the payment timer runs to `expires_at` itself and a payment after it is refused (defect 4),
//! and an order takes at most 20 payment attempts (defect 5).

use std::time::Duration;

use domain::{CancelCode, MAX_PAYMENT_ATTEMPTS, OrderError, OrderStatus};
use saga_tests::{business, spawn_app, spawn_app_with};
use testkit::shop::order_request;

use super::R;

/// The placement's table is gone for longer than any bound a placement ever had (30 s): every
/// try fails at once with a database error, and the placement keeps trying and is answered once
/// the table is back, instead of being rejected `UNAVAILABLE` for good. Under both step modes
/// (local activities time out in the worker, ordinary ones on the server).
#[tokio::test]
async fn a_placement_outlasts_a_database_outage() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    sqlx::query("ALTER TABLE products RENAME TO products_away")
        .execute(&app.db)
        .await?;
    let mut placing = Vec::new();
    for remote in [false, true] {
        let service = app.service.clone().with_remote_steps(remote);
        let id = starter::OrderService::new_order_id();
        placing.push((
            id.clone(),
            tokio::spawn(async move {
                service
                    .place(&id, user, order_request(&[(a, 2)], None))
                    .await
            }),
        ));
    }
    tokio::time::sleep(Duration::from_secs(35)).await;
    for (_, task) in &placing {
        assert!(!task.is_finished(), "answered during the outage");
    }
    sqlx::query("ALTER TABLE products_away RENAME TO products")
        .execute(&app.db)
        .await?;

    for (id, task) in placing {
        let placed = task.await??;
        assert_eq!(placed.status, OrderStatus::Pending);
        // And a repeat under the same id attaches to the same order.
        let again = app
            .service
            .place(&id, user, order_request(&[(a, 2)], None))
            .await?;
        assert_eq!(again, placed);
        app.service.pay(&id, None).await?;
    }
    app.finish().await
}

/// A payment step is out of reach (the coupon's row locked) for longer than any bound a
/// payment step ever had (60 s): the payment waits and completes, instead of being
/// compensated and answered `UNAVAILABLE`.
#[tokio::test]
async fn a_payment_outlasts_a_database_outage() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let coupon = app
        .coupon(user, domain::Discount::Fixed { amount: 100 }, None)
        .await;
    let placed = app.place(user, &[(a, 2)], Some(coupon)).await?;
    let mut outage = app.db.begin().await?;
    sqlx::query("SELECT status FROM coupons WHERE id = $1 FOR UPDATE")
        .bind(coupon.get())
        .execute(&mut *outage)
        .await?;
    let service = app.service.clone();
    let id = placed.id.clone();
    let paying = tokio::spawn(async move { service.pay(&id, None).await });
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert!(!paying.is_finished(), "answered during the outage");
    outage.rollback().await?;

    let paid = paying.await??;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 8_100);
    app.finish().await
}

/// The timer runs to `expires_at` itself, however long the placement took after recording the
/// order (its lines held up here), and a payment after `expires_at` is refused `EXPIRED`.
#[tokio::test]
async fn a_payment_after_expires_at_is_refused() -> R {
    let app = spawn_app_with(Duration::from_secs(4)).await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    // The order's row is written, then its lines wait 3 s.
    let mut slow = app.db.begin().await?;
    sqlx::query("LOCK TABLE order_lines IN EXCLUSIVE MODE")
        .execute(&mut *slow)
        .await?;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        slow.rollback().await
    });
    let placed = app.place(user, &[(a, 1)], None).await?;
    release.await??;
    assert_eq!(
        (placed.expires_at - placed.created_at).num_milliseconds(),
        4_000
    );
    // Half a second after expires_at: the order must not be payable any more.
    let wait = placed.expires_at + chrono::Duration::milliseconds(500) - chrono::Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    let refused = business(app.service.pay(&placed.id, None).await);
    assert_eq!(refused, OrderError::not_payable(OrderStatus::Expired));
    let order = app.service.show(&placed.id).await?;
    assert_eq!(order.status, OrderStatus::Expired);
    assert_eq!(order.cancel_code, Some(CancelCode::PaymentExpired));
    assert_eq!(app.points(user).await, 10_000);
    app.finish().await
}

/// Every payment refused for points adds to the workflow's history: after 20 accepted
/// payments the next is refused before it runs, with `TOO_MANY_ATTEMPTS`, even once the
/// customer could pay.
#[tokio::test]
async fn an_order_takes_at_most_twenty_payment_attempts() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(6_000, 5).await;
    let starved = app.place(user, &[(a, 1)], None).await?;
    let first = app.place(user, &[(a, 1)], None).await?;
    app.service.pay(&first.id, None).await?;
    assert_eq!(app.points(user).await, 4_000);

    for _ in 0..MAX_PAYMENT_ATTEMPTS {
        let refused = business(app.service.pay(&starved.id, None).await);
        assert_eq!(
            refused.code(),
            OrderError::INSUFFICIENT_POINTS,
            "{refused:?}"
        );
    }
    let refused = business(app.service.pay(&starved.id, None).await);
    assert_eq!(refused, OrderError::TooManyAttempts);
    assert_eq!(
        serde_json::to_value(&refused)?["details"],
        serde_json::json!({"status": "PENDING", "reason": "TOO_MANY_ATTEMPTS"})
    );
    store::db::top_up(&app.db, user, 10_000, None).await?;
    let still = business(app.service.pay(&starved.id, None).await);
    assert_eq!(still, OrderError::TooManyAttempts);
    assert_eq!(
        app.service.show(&starved.id).await?.status,
        OrderStatus::Pending
    );
    app.service.cancel(&starved.id).await?;
    assert_eq!(app.points(user).await, 14_000);
    app.finish().await
}
