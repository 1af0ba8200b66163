//! The end of an order against a real PostgreSQL (a fresh database per test, like `steps.rs`):
//! `COMPLETED` is the point of no return, kept by the database (a compensation finds it and
//! does nothing); `orders::close` undoes whatever the order's ledger shows done, whatever the
//! workflow run remembers, and answers the order as it then stands; after a close no late
//! forward step commits; and the data platform's receipt is recorded once.
use domain::{CancelCode, CouponStatus, Discount, Order, OrderError, OrderStatus};
use domain::{CouponId, OrderId, ProductId, UserId};
use sqlx::PgPool;
use store::{coupons, db, invariants, orders, points, stock};

mod common;
use common::reads::{count, coupon_of, effects, points_of, status_of, steps_of, stock_of};
use common::saga::{
    business, charge_input, close, compensate, deduct_input, pay, place, redeem_input, unwind,
};
use common::{TestDb, in_days};

// ---------------------------------------------------------------- harness

/// A user with 100 000 points, two products (1 000 × 10, 2 500 × 3) and a coupon, 10 % off.
struct Shop {
    user: UserId,
    cheap: ProductId,
    dear: ProductId,
    coupon: CouponId,
}

async fn shop(pool: &PgPool) -> Shop {
    let user = db::create_user(pool, "Kim", 100_000).await.unwrap();
    let percent = Discount::Percent {
        percent: 10,
        max_amount: None,
    };
    Shop {
        user,
        cheap: db::create_product(pool, "Pencil", 1_000, 10).await.unwrap(),
        dear: db::create_product(pool, "Notebook", 2_500, 3)
            .await
            .unwrap(),
        coupon: db::create_coupon(pool, user, &percent, None, in_days(3))
            .await
            .unwrap(),
    }
}

/// `o-done`: a notebook and two pencils, 10 % off (4 050 points), paid in full as `p1`.
async fn completed(pool: &PgPool, s: &Shop) -> Order {
    let order = place(
        pool,
        "o-done",
        s.user,
        &[(s.dear, 1), (s.cheap, 2)],
        Some(s.coupon),
    )
    .await
    .unwrap();
    assert_eq!(
        (order.subtotal, order.discount, order.total),
        (4_500, 450, 4_050)
    );
    pay(pool, &order, "p1").await.unwrap();
    assert_eq!(status_of(pool, "o-done").await, OrderStatus::Completed);
    order
}

async fn assert_invariants(pool: &PgPool) {
    let report = invariants::check(pool).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.violations);
}

// ---------------------------------------------------------------- the pivot

/// Once the order row is `COMPLETED`, a compensation finds it and does nothing at all: not for
/// the payment that completed it, run once or twice, and not for a payment it never ran.
#[tokio::test]
async fn compensations_after_completion_do_nothing() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = completed(pool, &s).await;
    let before = effects(pool).await;
    let steps = steps_of(pool, "o-done").await;
    assert_eq!(
        steps,
        [
            "charge_points 1 DONE",
            "deduct_stock 1 DONE",
            "redeem_coupon 1 DONE"
        ]
    );

    for payment in ["p1", "p1", "p-late"] {
        compensate(pool, &order, payment).await;
    }
    assert_eq!(effects(pool).await, before, "nothing was undone");
    assert_eq!(steps_of(pool, "o-done").await, steps, "nothing was fenced");
    assert_eq!(status_of(pool, "o-done").await, OrderStatus::Completed);
    assert_eq!(points_of(pool, s.user).await, 100_000 - 4_050);
    assert_eq!(
        coupon_of(pool, s.coupon).await,
        (CouponStatus::Used, Some("o-done".into()))
    );
    assert_eq!(
        (stock_of(pool, s.dear).await, stock_of(pool, s.cheap).await),
        (2, 8)
    );
    assert_invariants(pool).await;
    t.finish().await;
}

// ---------------------------------------------------------------- close

/// `o-close`: two pencils with the coupon (1 800 points), whose first payment (`p1`) was
/// refused for want of points and undone; the second (`p2`) charged and redeemed, and no
/// compensation of it ran (the run that did it is gone). The user has 2 800 points before `p2`.
async fn paid_on_the_second_payment(pool: &PgPool, s: &Shop) -> Order {
    let user = db::create_user(pool, "Park", 2_000).await.unwrap();
    let coupon = db::create_coupon(
        pool,
        user,
        &Discount::Fixed { amount: 200 },
        None,
        in_days(3),
    )
    .await
    .unwrap();
    let order = place(pool, "o-close", user, &[(s.cheap, 2)], Some(coupon))
        .await
        .unwrap();
    let rival = place(pool, "o-rival", user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    pay(pool, &rival, "p1").await.unwrap();
    let e = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e).code(), OrderError::INSUFFICIENT_POINTS);
    compensate(pool, &order, "p1").await;
    db::top_up(pool, user, 1_800, None).await.unwrap();
    points::charge(pool, &charge_input(&order, "p2"))
        .await
        .unwrap();
    coupons::redeem(pool, &redeem_input(&order, "p2"))
        .await
        .unwrap();
    assert_eq!(points_of(pool, user).await, 1_000);
    order
}

/// What no compensation undid, the close undoes from the ledger: the points refunded and the
/// coupon released for the attempt that took them, the steps marked `COMPENSATED`, and the
/// order closed with its reason and code. Closing again, or running a compensation after it,
/// changes nothing more.
#[tokio::test]
async fn close_undoes_what_the_ledger_shows_done() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = paid_on_the_second_payment(pool, &s).await;
    let coupon = order.coupon_id.unwrap();

    let closed = close(
        pool,
        "o-close",
        OrderStatus::Canceled,
        CancelCode::OperatorCanceled,
    )
    .await
    .unwrap();
    assert_eq!(closed.status, OrderStatus::Canceled);
    assert_eq!(closed.cancel_code, Some(CancelCode::OperatorCanceled));
    assert_eq!(
        closed.cancel_reason.as_deref(),
        Some("test closed it as CANCELED")
    );
    assert!(closed.paid_at.is_some() && closed.canceled_at.is_some());
    assert_eq!(
        orders::load(pool, &OrderId::parse("o-close").unwrap())
            .await
            .unwrap(),
        Some(closed.clone())
    );
    assert_eq!(points_of(pool, order.user_id).await, 2_800);
    assert_eq!(
        coupon_of(pool, coupon).await,
        (CouponStatus::Available, None)
    );
    assert_eq!(
        steps_of(pool, "o-close").await,
        [
            "charge_points 1 REFUSED",
            "deduct_stock 1 FENCED",
            "redeem_coupon 1 FENCED",
            "charge_points 2 COMPENSATED",
            "redeem_coupon 2 COMPENSATED",
        ]
    );
    let undone = "SELECT count(*) FROM (SELECT attempt FROM point_ledger \
             WHERE order_id = 'o-close' AND kind = 'REFUND' \
         UNION ALL SELECT attempt FROM coupon_ledger \
             WHERE order_id = 'o-close' AND kind = 'RELEASE') l WHERE attempt = 2";
    assert_eq!(
        count(pool, undone).await,
        2,
        "a refund and a release, of attempt 2"
    );

    let before = effects(pool).await;
    let again = close(
        pool,
        "o-close",
        OrderStatus::Canceled,
        CancelCode::UserCanceled,
    )
    .await
    .unwrap();
    assert_eq!(again, closed, "the same order, its first code kept");
    let expired = close(
        pool,
        "o-close",
        OrderStatus::Expired,
        CancelCode::PaymentExpired,
    )
    .await
    .unwrap();
    assert_eq!(expired, closed);
    compensate(pool, &order, "p2").await;
    assert_eq!(effects(pool).await, before, "nothing more");
    t.finish().await;
}

/// A `COMPLETED` order is past the pivot: the close answers it as it stands and undoes nothing.
#[tokio::test]
async fn close_leaves_a_completed_order_alone() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    completed(pool, &s).await;
    let stands = orders::load(pool, &OrderId::parse("o-done").unwrap())
        .await
        .unwrap()
        .unwrap();
    let before = effects(pool).await;
    let steps = steps_of(pool, "o-done").await;
    for (status, code) in [
        (OrderStatus::Canceled, CancelCode::UserCanceled),
        (OrderStatus::Expired, CancelCode::PaymentExpired),
        (OrderStatus::Canceled, CancelCode::Repaired),
    ] {
        let answer = close(pool, "o-done", status, code).await.unwrap();
        assert_eq!(answer, stands);
        assert_eq!(answer.status, OrderStatus::Completed);
        assert_eq!((answer.cancel_code, answer.canceled_at), (None, None));
    }
    assert_eq!(effects(pool).await, before);
    assert_eq!(steps_of(pool, "o-done").await, steps);
    assert_invariants(pool).await;
    t.finish().await;
}

/// A `PAID` order was paid in time and never expires: asked to, the close cancels it (with
/// the code asked for) and refunds what was charged.
#[tokio::test]
async fn close_expired_on_a_paid_order_cancels_it() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-paid", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    assert_eq!(points_of(pool, s.user).await, 99_000);

    let closed = close(
        pool,
        "o-paid",
        OrderStatus::Expired,
        CancelCode::PaymentExpired,
    )
    .await
    .unwrap();
    assert_eq!(closed.status, OrderStatus::Canceled);
    assert_eq!(closed.cancel_code, Some(CancelCode::PaymentExpired));
    assert!(closed.canceled_at.is_some());
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(
        steps_of(pool, "o-paid").await,
        ["charge_points 1 COMPENSATED"]
    );
    t.finish().await;
}

/// A deduction left on a `PAID` order (by the separate deduct step of the design before the
/// pivot, still in the ledgers of orders in flight when it changed) is restored by the close.
#[tokio::test]
async fn close_restores_a_deduction_left_on_a_paid_order() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-legacy", s.user, &[(s.dear, 2)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    for sql in [
        "UPDATE products SET stock = stock - 2 WHERE name = 'Notebook'",
        "INSERT INTO stock_ledger (product_id, order_id, attempt, kind, quantity) \
         SELECT id, 'o-legacy', 1, 'DEDUCT', 2 FROM products WHERE name = 'Notebook'",
        "INSERT INTO saga_steps (order_id, step, attempt, state) \
         VALUES ('o-legacy', 'deduct_stock', 1, 'DONE')",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    assert_invariants(pool).await;
    assert_eq!(stock_of(pool, s.dear).await, 1);

    let closed = close(
        pool,
        "o-legacy",
        OrderStatus::Canceled,
        CancelCode::Repaired,
    )
    .await
    .unwrap();
    assert_eq!(closed.status, OrderStatus::Canceled);
    assert_eq!(stock_of(pool, s.dear).await, 3);
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(
        steps_of(pool, "o-legacy").await,
        ["charge_points 1 COMPENSATED", "deduct_stock 1 COMPENSATED"]
    );
    let restored = "SELECT count(*) FROM stock_ledger \
         WHERE order_id = 'o-legacy' AND kind = 'RESTORE' AND attempt = 1 AND quantity = 2";
    assert_eq!(count(pool, restored).await, 1);
    t.finish().await;
}

/// `EXPIRED` keeps `canceled_at` empty and `CANCELED` sets it; a closed order is closed once
/// (a later close answers it as it stands); a close asks for `CANCELED` or `EXPIRED` only.
#[tokio::test]
async fn close_closes_a_pending_order_once() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    place(pool, "o-late", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let expired = close(
        pool,
        "o-late",
        OrderStatus::Expired,
        CancelCode::PaymentExpired,
    )
    .await
    .unwrap();
    assert_eq!(expired.status, OrderStatus::Expired);
    assert_eq!(expired.canceled_at, None);
    assert_eq!(expired.cancel_code, Some(CancelCode::PaymentExpired));
    assert_eq!(
        expired.cancel_reason.as_deref(),
        Some("test closed it as EXPIRED")
    );
    for status in [OrderStatus::Expired, OrderStatus::Canceled] {
        let again = close(pool, "o-late", status, CancelCode::UserCanceled).await;
        assert_eq!(again.unwrap(), expired);
    }

    place(pool, "o-gone", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let canceled = close(
        pool,
        "o-gone",
        OrderStatus::Canceled,
        CancelCode::UserCanceled,
    )
    .await
    .unwrap();
    assert!(canceled.canceled_at.is_some());
    assert_eq!(canceled.cancel_code, Some(CancelCode::UserCanceled));
    for status in [OrderStatus::Canceled, OrderStatus::Expired] {
        let again = close(pool, "o-gone", status, CancelCode::PaymentExpired).await;
        assert_eq!(again.unwrap(), canceled);
    }

    for status in [
        OrderStatus::Paid,
        OrderStatus::Pending,
        OrderStatus::Completed,
    ] {
        let e = close(pool, "o-gone", status, CancelCode::UserCanceled).await;
        assert_eq!(business(e.unwrap_err()).code(), OrderError::INVALID_REQUEST);
    }
    let e = close(
        pool,
        "o-ghost",
        OrderStatus::Canceled,
        CancelCode::UserCanceled,
    )
    .await;
    assert_eq!(business(e.unwrap_err()).code(), OrderError::ORDER_NOT_FOUND);
    t.finish().await;
}

/// The workflow's unwinding of a payment that failed after the charge: compensated, then
/// closed `CANCELED` from `PAID`.
#[tokio::test]
async fn a_failed_payment_is_compensated_and_canceled_from_paid() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let failed = place(pool, "o-failed", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&failed, "p1"))
        .await
        .unwrap();
    unwind(pool, &failed, "p1").await;
    let loaded = orders::load(pool, &OrderId::parse("o-failed").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.status, OrderStatus::Canceled);
    assert!(loaded.paid_at.is_some() && loaded.canceled_at.is_some());
    assert_eq!(points_of(pool, s.user).await, 100_000);
    t.finish().await;
}

// ---------------------------------------------------------------- after the close

/// A closed order takes no late forward step, of a new payment or of the one the close undid:
/// each is refused `ORDER_NOT_PAYABLE` with the closed status, and nothing takes effect.
#[tokio::test]
async fn a_late_forward_step_after_close_never_commits() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(
        pool,
        "o-late",
        s.user,
        &[(s.dear, 1), (s.cheap, 2)],
        Some(s.coupon),
    )
    .await
    .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    close(
        pool,
        "o-late",
        OrderStatus::Canceled,
        CancelCode::UserCanceled,
    )
    .await
    .unwrap();
    let before = effects(pool).await;

    let canceled = OrderError::not_payable(OrderStatus::Canceled);
    for payment in ["p-new", "p1"] {
        let charged = points::charge(pool, &charge_input(&order, payment)).await;
        assert_eq!(business(charged.unwrap_err()), canceled, "{payment}");
        let redeemed = coupons::redeem(pool, &redeem_input(&order, payment)).await;
        assert_eq!(business(redeemed.unwrap_err()), canceled, "{payment}");
        let deducted = stock::deduct_and_complete(pool, &deduct_input(&order, payment)).await;
        assert_eq!(business(deducted.unwrap_err()), canceled, "{payment}");
    }
    assert_eq!(effects(pool).await, before, "nothing took effect");
    assert_eq!(status_of(pool, "o-late").await, OrderStatus::Canceled);
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(
        coupon_of(pool, s.coupon).await,
        (CouponStatus::Available, None)
    );

    // An expired order likewise.
    let late = place(pool, "o-expired", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    close(
        pool,
        "o-expired",
        OrderStatus::Expired,
        CancelCode::PaymentExpired,
    )
    .await
    .unwrap();
    let e = points::charge(pool, &charge_input(&late, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Expired));
    assert_eq!(points_of(pool, s.user).await, 100_000);
    t.finish().await;
}

// ---------------------------------------------------------------- the data platform's receipt

#[tokio::test]
async fn mark_notified_records_the_first_receipt() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    completed(pool, &s).await;

    // Until the platform confirms, the order is listed as not notified.
    let pending = invariants::check_notified(pool).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].contains("o-done"), "{pending:?}");
    let first = orders::mark_notified(pool, &OrderId::parse("o-done").unwrap())
        .await
        .unwrap();
    let again = orders::mark_notified(pool, &OrderId::parse("o-done").unwrap())
        .await
        .unwrap();
    assert_eq!(first, again);
    let loaded = orders::load(pool, &OrderId::parse("o-done").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.platform_notified_at, Some(first.at));
    assert!(invariants::check_notified(pool).await.unwrap().is_empty());
    assert_eq!(
        business(
            orders::mark_notified(pool, &OrderId::parse("o-ghost").unwrap())
                .await
                .unwrap_err()
        )
        .code(),
        OrderError::ORDER_NOT_FOUND
    );
    t.finish().await;
}

/// A payment's later steps never go on once its charge was refunded: the order is still
/// `PAID` until it is closed, and a late redemption or deduction of that payment (its undo
/// never registered, say) must not complete an order whose points were given back.
#[tokio::test]
async fn no_step_goes_on_with_a_refunded_charge() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-refunded", s.user, &[(s.cheap, 2)], Some(s.coupon))
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    points::refund(pool, &common::saga::key(&order, "p1"))
        .await
        .unwrap();
    assert_eq!(status_of(pool, "o-refunded").await, OrderStatus::Paid);
    let before = effects(pool).await;
    let canceled = OrderError::not_payable(OrderStatus::Canceled);
    let e = coupons::redeem(pool, &redeem_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), canceled);
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), canceled);
    assert_eq!(effects(pool).await, before, "nothing changed");
    close(
        pool,
        "o-refunded",
        OrderStatus::Canceled,
        CancelCode::OperatorCanceled,
    )
    .await
    .unwrap();
    assert_invariants(pool).await;
    t.finish().await;
}
