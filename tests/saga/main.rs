//! One test per path of OrderWorkflow (CONTRACT §2), each ending with the §6 invariant check.
//! They run against the real Temporal dev server and a fresh PostgreSQL database each. The
//! paths the replay test guards also record their histories under `make histories`
//! (`TestApp::record_history`).

use domain::{CouponId, OrderId, ProductId};
use std::time::Duration;

use domain::{CancelCode, CouponInvalidReason, Discount, OrderError, OrderStatus};
use saga_tests::{business, spawn_app, spawn_app_with};
use temporalio_client::WorkflowCancelOptions;
use testkit::shop::order_request;
use workflows::OrderWorkflow;

type R = anyhow::Result<()>;

mod deadlines;

#[tokio::test]
async fn happy_path_with_a_fixed_coupon() -> R {
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let a = app.product(12_000, 10).await;
    let b = app.product(3_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 5_000 }, Some(20_000))
        .await;

    let placed = app.place(user, &[(a, 2), (b, 1)], Some(coupon)).await?;
    assert_eq!(placed.status, OrderStatus::Pending);
    assert_eq!(placed.subtotal, 27_000);
    assert_eq!(placed.discount, 5_000);
    assert_eq!(placed.total, 22_000);
    assert_eq!(placed.items[0].line_total, 24_000);
    assert!(placed.expires_at > placed.created_at);
    // Placement reserves nothing.
    assert_eq!(app.points(user).await, 100_000);
    assert_eq!(app.stock(a).await, 10);

    let paid = app.service.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert!(paid.paid_at.is_some() && paid.completed_at.is_some());
    assert_eq!(app.points(user).await, 78_000);
    assert_eq!(app.stock(a).await, 8);
    assert_eq!(app.stock(b).await, 4);
    assert_eq!(
        app.coupon_status(coupon).await,
        ("USED".into(), Some(placed.id.to_string()))
    );

    let result = app.result(&placed.id).await?;
    let done = result.order.expect("final order");
    assert_eq!(done.status, OrderStatus::Completed);
    assert!(done.platform_notified_at.is_some());
    let shown = app.service.show(&placed.id).await?;
    assert_eq!(shown.status, OrderStatus::Completed);
    assert!(shown.platform_notified_at.is_some());
    let delivery = app.platform.state.delivery(&placed.id).expect("delivered");
    assert_eq!(delivery.body["total"], 22_000);
    app.record_history(&placed.id, "happy_path_with_coupon")
        .await?;
    app.finish().await
}

#[tokio::test]
async fn happy_path_with_a_percent_coupon() -> R {
    let app = spawn_app().await;
    let user = app.user(50_000).await;
    let a = app.product(9_999, 3).await;
    let coupon = app
        .coupon(
            user,
            Discount::Percent {
                percent: 15,
                max_amount: Some(4_000),
            },
            None,
        )
        .await;
    let placed = app.place(user, &[(a, 3)], Some(coupon)).await?;
    // floor(29,997 × 15%) = 4,499, capped at 4,000.
    assert_eq!(
        (placed.subtotal, placed.discount, placed.total),
        (29_997, 4_000, 25_997)
    );
    let paid = app.service.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 50_000 - 25_997);
    assert_eq!(app.stock(a).await, 0);
    app.finish().await
}

#[tokio::test]
async fn product_not_found_rejects_the_placement() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let unknown = ProductId::new(a.get() + 1000);
    let err = business(app.place(user, &[(a, 1), (unknown, 1)], None).await);
    assert_eq!(
        err,
        OrderError::ProductNotFound {
            product_id: unknown
        }
    );
    assert_eq!(
        app.order_count().await,
        0,
        "a rejected placement creates no order"
    );
    app.finish().await
}

#[tokio::test]
async fn insufficient_stock_rejects_the_placement() -> R {
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let a = app.product(1_000, 2).await;
    let err = business(app.place(user, &[(a, 3)], None).await);
    assert_eq!(
        err,
        OrderError::InsufficientStock {
            product_id: a,
            available: 2
        }
    );
    assert_eq!(app.order_count().await, 0);
    assert_eq!(app.stock(a).await, 2);
    app.finish().await
}

#[tokio::test]
async fn every_coupon_invalid_reason() -> R {
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let other = app.user(100_000).await;
    let a = app.product(10_000, 50).await;
    let fixed = Discount::Fixed { amount: 1_000 };

    let reason = |r| OrderError::CouponInvalid { reason: r };
    // NOT_FOUND
    let err = business(
        app.place(user, &[(a, 1)], Some(CouponId::new(999_999)))
            .await,
    );
    assert_eq!(err, reason(CouponInvalidReason::NotFound));
    // NOT_OWNED
    let theirs = app.coupon(other, fixed, None).await;
    let err = business(app.place(user, &[(a, 1)], Some(theirs)).await);
    assert_eq!(err, reason(CouponInvalidReason::NotOwned));
    // MIN_ORDER_AMOUNT: 10,000 < 10,001
    let min = app.coupon(user, fixed, Some(10_001)).await;
    let err = business(app.place(user, &[(a, 1)], Some(min)).await);
    assert_eq!(err, reason(CouponInvalidReason::MinOrderAmount));
    // ... and exactly at the minimum it is fine.
    let exact = app.coupon(user, fixed, Some(10_000)).await;
    let ok = app.place(user, &[(a, 1)], Some(exact)).await?;
    app.service.cancel(&ok.id).await?;
    // EXPIRED
    let expired = store::db::create_coupon(
        &app.db,
        user,
        &fixed,
        None,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await?;
    let err = business(app.place(user, &[(a, 1)], Some(expired)).await);
    assert_eq!(err, reason(CouponInvalidReason::Expired));
    // ALREADY_USED: use it once, then again.
    let once = app.coupon(user, fixed, None).await;
    let first = app.place(user, &[(a, 1)], Some(once)).await?;
    app.service.pay(&first.id, None).await?;
    let err = business(app.place(user, &[(a, 1)], Some(once)).await);
    assert_eq!(err, reason(CouponInvalidReason::AlreadyUsed));

    assert_eq!(
        app.order_count().await,
        2,
        "only the two valid placements exist"
    );
    app.finish().await
}

#[tokio::test]
async fn insufficient_points_rejects_the_placement() -> R {
    let app = spawn_app().await;
    let user = app.user(4_999).await;
    let a = app.product(5_000, 5).await;
    // Short of points by one: the last of the placement checks refuses, so every check runs.
    let id = starter::OrderService::new_order_id();
    let err = business(
        app.service
            .place(&id, user, order_request(&[(a, 1)], None))
            .await,
    );
    assert_eq!(
        err,
        OrderError::InsufficientPoints {
            points: 4_999,
            total: 5_000
        }
    );
    assert_eq!(app.order_count().await, 0);
    app.record_history(&id, "rejected_placement").await?;
    app.finish().await
}

#[tokio::test]
async fn insufficient_points_at_payment_then_top_up_and_pay_again() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(8_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let placed = app.place(user, &[(a, 1)], Some(coupon)).await?;
    assert_eq!(placed.total, 7_000);

    // The points go elsewhere between placement and payment.
    let other = app.place(user, &[(a, 1)], None).await?;
    app.service.pay(&other.id, None).await?;
    assert_eq!(app.points(user).await, 2_000);

    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(
        err,
        OrderError::InsufficientPoints {
            points: 2_000,
            total: 7_000
        }
    );
    // Nothing changed and the order waits for another try.
    assert_eq!(app.points(user).await, 2_000);
    assert_eq!(app.stock(a).await, 4);
    assert_eq!(app.coupon_status(coupon).await, ("AVAILABLE".into(), None));
    assert_eq!(
        app.service.show(&placed.id).await?.status,
        OrderStatus::Pending
    );

    store::db::top_up(&app.db, user, 5_000, Some("top-up-1")).await?;
    let paid = app.service.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 0);
    assert_eq!(app.stock(a).await, 3);
    assert_eq!(
        app.coupon_status(coupon).await,
        ("USED".into(), Some(placed.id.to_string()))
    );
    app.record_history(&placed.id, "insufficient_points_at_payment_then_paid")
        .await?;
    app.finish().await
}

#[tokio::test]
async fn stock_sold_out_between_placement_and_payment_compensates_everything() -> R {
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
    assert_eq!(placed.total, 20_700);

    let sniped = app.place(rival, &[(a, 1)], None).await?;
    app.service.pay(&sniped.id, None).await?;
    assert_eq!(app.stock(a).await, 1);

    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(
        err,
        OrderError::InsufficientStock {
            product_id: a,
            available: 1
        }
    );
    let order = app.service.show(&placed.id).await?;
    assert_eq!(order.status, OrderStatus::Canceled);
    assert_eq!(order.cancel_code, Some(CancelCode::InsufficientStock));
    assert!(order.canceled_at.is_some());
    assert!(
        order
            .cancel_reason
            .as_deref()
            .is_some_and(|r| r.contains("INSUFFICIENT_STOCK")),
        "reason explains the failure: {:?}",
        order.cancel_reason
    );
    assert_eq!(app.points(user).await, 100_000, "points refunded exactly");
    assert_eq!(app.coupon_status(coupon).await, ("AVAILABLE".into(), None));
    assert_eq!(app.stock(a).await, 1);
    assert_eq!(app.stock(b).await, 10, "no line deducted");
    // Paying again is refused: the order is over.
    let again = business(app.service.pay(&placed.id, None).await);
    assert_eq!(again, OrderError::not_payable(OrderStatus::Canceled));
    app.record_history(&placed.id, "compensation_after_stock_sold_out")
        .await?;
    app.finish().await
}

#[tokio::test]
async fn coupon_used_between_placement_and_payment_refunds_the_charge() -> R {
    // Placement reserves nothing: two orders may name the same coupon, and the one paid first
    // uses it. The other's payment is charged, then refused at the coupon: the charge is
    // refunded, nothing is deducted, and the order ends CANCELED with the reason.
    let app = spawn_app().await;
    let user = app.user(100_000).await;
    let a = app.product(10_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let first = app.place(user, &[(a, 1)], Some(coupon)).await?;
    let second = app.place(user, &[(a, 2)], Some(coupon)).await?;
    assert_eq!((first.total, second.total), (9_000, 19_000));
    app.service.pay(&first.id, None).await?;
    assert_eq!(app.points(user).await, 91_000);

    let err = business(app.service.pay(&second.id, None).await);
    assert_eq!(
        err,
        OrderError::CouponInvalid {
            reason: CouponInvalidReason::AlreadyUsed
        }
    );
    let order = app.service.show(&second.id).await?;
    assert_eq!(order.status, OrderStatus::Canceled);
    assert_eq!(order.cancel_code, Some(CancelCode::CouponInvalid));
    assert!(
        order
            .cancel_reason
            .as_deref()
            .is_some_and(|r| r.contains("COUPON_INVALID")),
        "reason explains the failure: {:?}",
        order.cancel_reason
    );
    assert_eq!(app.points(user).await, 91_000, "the second charge refunded");
    assert_eq!(
        app.stock(a).await,
        4,
        "only the first order's line deducted"
    );
    assert_eq!(
        app.coupon_status(coupon).await,
        ("USED".into(), Some(first.id.to_string())),
        "the coupon stays with the order that used it"
    );
    app.finish().await
}

#[tokio::test]
async fn an_unpaid_order_expires() -> R {
    let app = spawn_app_with(Duration::from_secs(2)).await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let placed = app.place(user, &[(a, 1)], None).await?;
    assert_eq!(
        (placed.expires_at - placed.created_at).num_milliseconds(),
        2_000
    );
    let result = app.result(&placed.id).await?;
    assert_eq!(result.order.expect("order").status, OrderStatus::Expired);
    let shown = app.service.show(&placed.id).await?;
    assert_eq!(shown.status, OrderStatus::Expired);
    assert_eq!(shown.cancel_code, Some(CancelCode::PaymentExpired));
    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(err, OrderError::not_payable(OrderStatus::Expired));
    assert_eq!(app.points(user).await, 10_000);
    app.record_history(&placed.id, "expiry").await?;
    app.finish().await
}

#[tokio::test]
async fn the_user_cancels_a_pending_order() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 100 }, None)
        .await;
    let placed = app.place(user, &[(a, 1)], Some(coupon)).await?;
    let canceled = app.service.cancel(&placed.id).await?;
    assert_eq!(canceled.status, OrderStatus::Canceled);
    assert_eq!(
        canceled.cancel_reason.as_deref(),
        Some("canceled by the user")
    );
    assert_eq!(canceled.cancel_code, Some(CancelCode::UserCanceled));
    assert_eq!(
        app.service.show(&placed.id).await?.status,
        OrderStatus::Canceled
    );
    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(err, OrderError::not_payable(OrderStatus::Canceled));
    let err = business(app.service.cancel(&placed.id).await);
    assert_eq!(err, OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(app.coupon_status(coupon).await, ("AVAILABLE".into(), None));
    app.record_history(&placed.id, "cancel_by_user").await?;
    app.finish().await
}

#[tokio::test]
async fn paying_twice_charges_once() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(4_000, 5).await;
    let placed = app.place(user, &[(a, 1)], None).await?;

    // Two payments at once: one wins, the other is refused while it runs.
    let (first, second) = tokio::join!(
        app.service.pay(&placed.id, None),
        app.service.pay(&placed.id, None)
    );
    let outcomes = [first, second];
    let wins = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one payment succeeds: {outcomes:?}");
    for r in outcomes {
        if let Err(e) = r {
            let e = business(Err(e));
            assert_eq!(e.code(), OrderError::ORDER_NOT_PAYABLE, "{e:?}");
            // A status of the contract's: the payment in flight (PAID), or done (COMPLETED).
            assert!(
                [
                    OrderError::not_payable(OrderStatus::Paid),
                    OrderError::not_payable(OrderStatus::Completed)
                ]
                .contains(&e),
                "{e:?}"
            );
        }
    }
    // And once more after completion.
    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(err.code(), OrderError::ORDER_NOT_PAYABLE);
    assert_eq!(app.points(user).await, 6_000);
    assert_eq!(app.stock(a).await, 4);
    app.finish().await
}

#[tokio::test]
async fn data_platform_outage_then_one_delivery() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    app.platform.state.fail_next(3);
    let placed = app.place(user, &[(a, 2)], None).await?;
    let paid = app.service.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);

    // While the platform fails, the order stays COMPLETED, not yet notified.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = app.service.show(&placed.id).await?;
    assert_eq!(during.status, OrderStatus::Completed);
    assert!(during.platform_notified_at.is_none());
    assert!(app.platform.state.delivery(&placed.id).is_none());

    let delivered = app
        .platform
        .state
        .wait_for(&placed.id, Duration::from_secs(30))
        .await
        .expect("delivered after the outage");
    assert_eq!(
        delivered.deliveries, 1,
        "one delivery under the order's key"
    );
    assert!(app.platform.state.failed_attempts() >= 3);
    let result = app.result(&placed.id).await?;
    let order = result.order.expect("order");
    assert_eq!(order.status, OrderStatus::Completed);
    assert!(order.platform_notified_at.is_some());
    app.record_history(&placed.id, "data_platform_outage_then_delivery")
        .await?;
    app.finish().await
}

#[tokio::test]
async fn workflow_cancelled_during_payment_still_compensates() -> R {
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
        .bind(coupon.get())
        .execute(&mut *blocker)
        .await?;

    let service = app.service.clone();
    let id = placed.id.clone();
    let payment = tokio::spawn(async move { service.pay(&id, None).await });

    // Wait until the points are charged (the order is PAID) and the coupon step is stuck.
    let mut waited = 0;
    while app.service.show(&placed.id).await?.status != OrderStatus::Paid {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(waited < 100, "payment never reached PAID");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.points(user).await, 41_000);

    // Cancel the workflow, as an operator would from the Web UI.
    app.client
        .get_workflow_handle::<OrderWorkflow>(placed.id.as_str())
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("operator test")
                .build(),
        )
        .await?;
    // Hold the lock until the workflow has taken the cancellation and its compensation
    // (release_coupon, newest first) queues up behind the stuck redemption: two sessions of
    // this database waiting on locks. With local activities the worker sees the cancellation at
    // the workflow task's next heartbeat, so this takes a few seconds.
    app.wait_for_lock_waiters(2).await?;
    blocker.rollback().await?;

    let answer = payment.await?;
    let err = business(answer);
    assert_eq!(err, OrderError::not_payable(OrderStatus::Canceled));
    assert!(
        app.result(&placed.id).await.is_err(),
        "the workflow ends cancelled"
    );

    let order = app.service.show(&placed.id).await?;
    assert_eq!(order.status, OrderStatus::Canceled);
    assert_eq!(order.cancel_code, Some(CancelCode::OperatorCanceled));
    assert_eq!(app.points(user).await, 50_000, "points refunded");
    assert_eq!(app.stock(a).await, 5, "stock restored or never deducted");
    assert_eq!(app.coupon_status(coupon).await, ("AVAILABLE".into(), None));
    app.record_history(&placed.id, "workflow_cancelled_during_payment")
        .await?;
    app.finish().await
}

#[tokio::test]
async fn workflow_cancelled_while_waiting_for_payment_closes_the_order() -> R {
    // An operator cancels a PENDING order's workflow (Web UI, `temporal workflow cancel`):
    // nothing was charged, so the order is closed CANCELED with the reason and the workflow
    // ends cancelled; a payment afterwards is refused and charges nothing.
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 100 }, None)
        .await;
    let placed = app.place(user, &[(a, 2)], Some(coupon)).await?;
    app.client
        .get_workflow_handle::<OrderWorkflow>(placed.id.as_str())
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("operator test")
                .build(),
        )
        .await?;
    assert!(
        app.result(&placed.id).await.is_err(),
        "the workflow ends cancelled"
    );

    let order = app.service.show(&placed.id).await?;
    assert_eq!(order.status, OrderStatus::Canceled);
    assert_eq!(order.cancel_code, Some(CancelCode::OperatorCanceled));
    assert!(order.canceled_at.is_some());
    assert!(
        order
            .cancel_reason
            .as_deref()
            .is_some_and(|r| r.contains("workflow was cancelled")),
        "{:?}",
        order.cancel_reason
    );
    let err = business(app.service.pay(&placed.id, None).await);
    assert_eq!(err, OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(app.points(user).await, 10_000);
    assert_eq!(app.stock(a).await, 5);
    assert_eq!(app.coupon_status(coupon).await, ("AVAILABLE".into(), None));
    app.finish().await
}

#[tokio::test]
async fn a_cancellation_during_the_last_step_lets_the_order_complete() -> R {
    let app = spawn_app().await;
    let user = app.user(50_000).await;
    let a = app.product(5_000, 5).await;
    let placed = app.place(user, &[(a, 2)], None).await?;

    // Hold the product's row so that the last step (deduct and complete) blocks.
    let mut blocker = app.db.begin().await?;
    sqlx::query("SELECT stock FROM products WHERE id = $1 FOR UPDATE")
        .bind(a.get())
        .execute(&mut *blocker)
        .await?;
    let service = app.service.clone();
    let id = placed.id.clone();
    let payment = tokio::spawn(async move { service.pay(&id, None).await });
    app.wait_for_lock_waiters(1).await?;
    app.client
        .get_workflow_handle::<OrderWorkflow>(placed.id.as_str())
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("operator test")
                .build(),
        )
        .await?;
    app.wait_until_the_worker_has_the_cancellation(&placed.id)
        .await?;
    blocker.rollback().await?;

    // The last step is the point of no return: once it runs, the order completes, and the
    // cancellation undoes nothing.
    let paid = payment.await??;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 40_000);
    assert_eq!(app.stock(a).await, 3);
    let result = app.result(&placed.id).await?;
    assert_eq!(result.order.map(|o| o.status), Some(OrderStatus::Completed));
    app.finish().await
}

#[tokio::test]
async fn placing_again_with_the_same_id_is_idempotent() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let id = starter::OrderService::new_order_id();
    let req = order_request(&[(a, 1)], None);
    let first = app.service.place(&id, user, req.clone()).await?;
    let second = app.service.place(&id, user, req).await?;
    assert_eq!(first, second);
    assert_eq!(app.order_count().await, 1);
    app.service.pay(&id, None).await?;
    app.result(&id).await?;

    // Once the workflow has closed, the id still names the same order: placing again answers
    // it as it stands and starts nothing (no second order, no second charge).
    let again = app
        .service
        .place(&id, user, order_request(&[(a, 1)], None))
        .await?;
    assert_eq!(again.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 9_000);
    // Someone else cannot take it over.
    let other = app.user(10_000).await;
    let err = business(
        app.service
            .place(&id, other, order_request(&[(a, 1)], None))
            .await,
    );
    assert_eq!(err.code(), OrderError::INVALID_REQUEST);

    // A rejected placement answers its error again under the same id.
    let rejected_id = starter::OrderService::new_order_id();
    let req = order_request(&[(a, 1_000)], None);
    let first = business(app.service.place(&rejected_id, user, req.clone()).await);
    app.result(&rejected_id).await?;
    let second = business(app.service.place(&rejected_id, user, req).await);
    assert_eq!(first, second);
    assert_eq!(first.code(), OrderError::INSUFFICIENT_STOCK);
    assert_eq!(app.order_count().await, 1);
    app.finish().await
}

#[tokio::test]
async fn unknown_orders_are_not_found() -> R {
    let app = spawn_app().await;
    for result in [
        app.service
            .pay(&OrderId::parse("ord-missing").unwrap(), None)
            .await,
        app.service
            .cancel(&OrderId::parse("ord-missing").unwrap())
            .await,
        app.service
            .show(&OrderId::parse("ord-missing").unwrap())
            .await,
    ] {
        assert_eq!(
            business(result),
            OrderError::OrderNotFound {
                order_id: "ord-missing".into()
            }
        );
    }
    app.finish().await
}

#[tokio::test]
async fn the_checker_finds_stranded_orders_and_broken_ledgers() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let waiting = app.place(user, &[(a, 1)], None).await?;
    let stranded = app.place(user, &[(a, 1)], None).await?;

    let clean = starter::check::run(&app.db, Some(&app.client)).await?;
    assert!(clean.ok, "{:?}", clean.violations);
    assert_eq!(clean.in_flight.len(), 2, "{:?}", clean.in_flight);

    // An operator terminates a workflow: its PENDING order is left behind.
    app.client
        .get_workflow_handle::<OrderWorkflow>(stranded.id.as_str())
        .terminate(
            temporalio_client::WorkflowTerminateOptions::builder()
                .reason("checker test")
                .build(),
        )
        .await?;
    // And someone edits a balance by hand.
    sqlx::query("UPDATE users SET points = points + 1 WHERE id = $1")
        .bind(user.get())
        .execute(&app.db)
        .await?;
    let found = starter::check::run(&app.db, Some(&app.client)).await?;
    assert!(!found.ok);
    let joined = found.violations.join("\n");
    assert!(
        joined.contains("[workflow_outcome]") && joined.contains(stranded.id.as_str()),
        "{joined}"
    );
    assert!(joined.contains("[points_match_ledger]"), "{joined}");
    assert_eq!(found.violations.len(), 2, "{joined}");
    // Without Temporal, every open order is reported as unverifiable.
    let blind = starter::check::run(&app.db, None).await?;
    assert!(
        blind
            .violations
            .iter()
            .any(|v| v.contains("[workflow_reachable]"))
    );

    // Repair what the test broke, the way an operator would, and end clean.
    sqlx::query("UPDATE users SET points = points - 1 WHERE id = $1")
        .bind(user.get())
        .execute(&app.db)
        .await?;
    store::orders::close(
        &app.db,
        &domain::saga::CloseOrderInput {
            order_id: stranded.id.clone(),
            status: OrderStatus::Canceled,
            code: CancelCode::Repaired,
            reason: "workflow terminated by an operator".into(),
        },
    )
    .await?;
    app.service.cancel(&waiting.id).await?;
    let repaired = starter::check::run(&app.db, Some(&app.client)).await?;
    assert!(repaired.ok, "{:?}", repaired.violations);
    app.finish().await
}

#[tokio::test]
async fn step_mode_remote_runs_every_step_as_an_ordinary_activity() -> R {
    use temporalio_common::protos::temporal::api::enums::v1::EventType;
    let app = spawn_app().await;
    let user = app.user(20_000).await;
    let a = app.product(3_000, 5).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 500 }, None)
        .await;
    let remote = app.service.clone().with_remote_steps(true);
    let id = starter::OrderService::new_order_id();
    let placed = remote
        .place(&id, user, order_request(&[(a, 2)], Some(coupon)))
        .await?;
    let paid = remote.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);
    assert_eq!(app.points(user).await, 14_500);
    app.result(&id).await?;
    app.record_history(&id, "happy_path_with_coupon_remote")
        .await?;

    let events = app
        .client
        .get_workflow_handle::<OrderWorkflow>(id.as_str())
        .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
        .into_events()
        .await?;
    let scheduled = events
        .iter()
        .filter(|e| e.event_type == EventType::ActivityTaskScheduled as i32)
        .count();
    let local = events
        .iter()
        .filter(|e| e.event_type == EventType::MarkerRecorded as i32)
        .count();
    // place, charge, redeem, deduct and complete, notify; no local activity's marker.
    assert_eq!((scheduled, local), (5, 0));
    app.finish().await
}
