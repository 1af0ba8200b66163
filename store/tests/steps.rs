//! The payment steps against a real PostgreSQL: every test gets its own fresh database
//! (`orders_test_<uuid>` on the server of `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/`), and every test ends with `invariants::check`
//! finding nothing wrong. Each forward step beside its compensation, keyed by payment; the
//! payments numbered by the database; the admin helpers, the invariant check itself and the
//! data platform client. The end of an order (the pivot, the close) is `closing.rs`.
use std::time::Duration;

use domain::saga::{ChargePointsInput, DeductStockInput, RedeemCouponInput, StepKey};
use domain::{
    CancelCode, CouponInvalidReason, CouponStatus, Discount, Order, OrderError, OrderStatus,
};
use domain::{CouponId, OrderId, ProductId, UserId};
use sqlx::PgPool;
use store::{DbFault, StoreError, coupons, db, invariants, orders, points, stock};

mod common;
use common::reads::{
    attempt_of, count, coupon_of, points_of, status_of, step_state, steps_of, stock_of,
};
use common::saga::{
    business, charge_input, close, compensate, deduct_input, key, pay, place, redeem_input,
    retried, unwind,
};
use common::{TestDb, drop_database, in_days, lines, url_for};

// ---------------------------------------------------------------- harness

/// A user with 100 000 points and two products (1 000 × 10, 2 500 × 3).
struct Shop {
    user: UserId,
    cheap: ProductId,
    dear: ProductId,
}

async fn shop(pool: &PgPool) -> Shop {
    Shop {
        user: db::create_user(pool, "Kim", 100_000).await.unwrap(),
        cheap: db::create_product(pool, "Pencil", 1_000, 10).await.unwrap(),
        dear: db::create_product(pool, "Notebook", 2_500, 3)
            .await
            .unwrap(),
    }
}

/// A coupon of `owner`, `amount` off, valid for a week.
async fn fixed_coupon(pool: &PgPool, owner: UserId, amount: i64) -> CouponId {
    db::create_coupon(pool, owner, &Discount::Fixed { amount }, None, in_days(7))
        .await
        .unwrap()
}

fn not_payable(status: OrderStatus) -> OrderError {
    OrderError::not_payable(status)
}

// ---------------------------------------------------------------- charge / refund

#[tokio::test]
async fn charge_twice_charges_once_and_refund_twice_refunds_once() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-charge", s.user, &[(s.dear, 2)], None)
        .await
        .unwrap();

    let first = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    let again = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat answers the same stamp");
    assert_eq!(points_of(pool, s.user).await, 95_000);
    let paid = orders::load(pool, &order.id).await.unwrap().unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.paid_at, Some(first.at));
    let charges = "SELECT count(*) FROM point_ledger WHERE kind = 'CHARGE'";
    assert_eq!(count(pool, charges).await, 1);

    points::refund(pool, &key(&order, "p1")).await.unwrap();
    points::refund(pool, &key(&order, "p1")).await.unwrap();
    assert_eq!(points_of(pool, s.user).await, 100_000);
    let refunds = "SELECT count(*) FROM point_ledger WHERE kind = 'REFUND'";
    assert_eq!(count(pool, refunds).await, 1);
    assert_eq!(
        step_state(pool, &order.id, "charge_points", 1)
            .await
            .as_deref(),
        Some("COMPENSATED")
    );

    // A late retry of the compensated charge commits nothing.
    let e = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Canceled));
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(count(pool, charges).await, 1);

    unwind(pool, &order, "p1").await;
    t.finish().await;
}

#[tokio::test]
async fn insufficient_points_leaves_nothing_and_a_new_payment_can_pay() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let user = db::create_user(pool, "Park", 3_000).await.unwrap();
    let order = place(pool, "o-poor", user, &[(s.cheap, 3)], None)
        .await
        .unwrap();
    // Spent elsewhere between placement and payment: only 3 000 - 1 000 left.
    let other = place(pool, "o-other", user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    pay(pool, &other, "p1").await.unwrap();

    let short = OrderError::InsufficientPoints {
        points: 2_000,
        total: 3_000,
    };
    let e = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), short);
    // Refused, recorded as such: running the same payment again answers the same refusal,
    // even once there would be points enough (a new payment is a new attempt).
    assert_eq!(
        step_state(pool, "o-poor", "charge_points", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    let ledger = "SELECT count(*) FROM point_ledger WHERE order_id = 'o-poor'";
    assert_eq!(count(pool, ledger).await, 0);
    assert_eq!(points_of(pool, user).await, 2_000);
    assert_eq!(status_of(pool, "o-poor").await, OrderStatus::Pending);
    compensate(pool, &order, "p1").await;

    // Top up, pay again under a new payment.
    assert_eq!(
        db::top_up(pool, user, 5_000, Some("k1")).await.unwrap(),
        7_000
    );
    let again = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(again), short);
    assert_eq!(points_of(pool, user).await, 7_000);
    pay(pool, &order, "p2").await.unwrap();
    assert_eq!(points_of(pool, user).await, 4_000);
    assert_eq!(status_of(pool, "o-poor").await, OrderStatus::Completed);
    assert_eq!(attempt_of(pool, "o-poor", "p2").await, Some(2));
    t.finish().await;
}

#[tokio::test]
async fn a_completed_order_is_not_charged_again() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-once", s.user, &[(s.cheap, 3)], None)
        .await
        .unwrap();
    pay(pool, &order, "p1").await.unwrap();
    let stamp = orders::load(pool, &OrderId::parse("o-once").unwrap())
        .await
        .unwrap()
        .unwrap()
        .paid_at;

    // The same payment again answers what it did; another payment is refused and leaves only
    // its refusal behind.
    let repeat = points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    assert_eq!(Some(repeat.at), stamp);
    let e = points::charge(pool, &charge_input(&order, "p2"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Completed));
    assert_eq!(
        step_state(pool, "o-once", "charge_points", 2)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    assert_eq!(points_of(pool, s.user).await, 97_000);
    assert_eq!(status_of(pool, "o-once").await, OrderStatus::Completed);
    t.finish().await;
}

#[tokio::test]
async fn a_charge_that_does_not_match_the_order_is_refused() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let pending = place(pool, "o-mismatch", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let mut wrong = charge_input(&pending, "p1");
    wrong.amount = 1;
    let e = points::charge(pool, &wrong).await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::INVALID_REQUEST);
    let mut theirs = charge_input(&pending, "p2");
    theirs.user_id = db::create_user(pool, "Lee", 5_000).await.unwrap();
    let e = points::charge(pool, &theirs).await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::INVALID_REQUEST);
    for attempt in [1, 2] {
        assert_eq!(
            step_state(pool, "o-mismatch", "charge_points", attempt)
                .await
                .as_deref(),
            Some("REFUSED")
        );
    }
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(status_of(pool, "o-mismatch").await, OrderStatus::Pending);

    let missing = ChargePointsInput {
        key: StepKey {
            order_id: OrderId::parse("o-missing").unwrap(),
            payment_id: "p1".into(),
        },
        user_id: s.user,
        amount: 1,
    };
    let e = points::charge(pool, &missing).await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::ORDER_NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn a_fully_discounted_order_is_paid_without_a_ledger_row() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let free = db::create_coupon(
        pool,
        s.user,
        &Discount::Percent {
            percent: 100,
            max_amount: None,
        },
        None,
        in_days(1),
    )
    .await
    .unwrap();
    let order = place(pool, "o-free", s.user, &[(s.cheap, 1)], Some(free))
        .await
        .unwrap();
    assert_eq!(order.total, 0);
    pay(pool, &order, "p1").await.unwrap();
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(status_of(pool, "o-free").await, OrderStatus::Completed);
    let ledger = "SELECT count(*) FROM point_ledger WHERE order_id = 'o-free'";
    assert_eq!(count(pool, ledger).await, 0);
    assert_eq!(
        step_state(pool, "o-free", "charge_points", 1)
            .await
            .as_deref(),
        Some("DONE")
    );
    t.finish().await;
}

// ---------------------------------------------------------------- payments and their attempts

/// The database numbers each payment of an order the first time a step of it runs: 1, 2, …
/// per order, in the order they first ran. The same payment run again finds its number, and
/// every record of the payment (step and ledger rows) carries it.
#[tokio::test]
async fn payments_are_numbered_by_the_database() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let user = db::create_user(pool, "Park", 2_500).await.unwrap();
    let coupon = fixed_coupon(pool, user, 100).await;
    let order = place(pool, "o-num", user, &[(s.cheap, 2)], Some(coupon))
        .await
        .unwrap();
    // Another order's payment under the same payment id is a payment of its own.
    let other = place(pool, "o-other", user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    pay(pool, &other, "pay-a").await.unwrap();
    assert_eq!(attempt_of(pool, "o-other", "pay-a").await, Some(1));

    // The first payment is refused (1 500 points for 1 900) and undone; the second pays.
    let e = points::charge(pool, &charge_input(&order, "pay-a"))
        .await
        .unwrap_err();
    assert_eq!(business(e).code(), OrderError::INSUFFICIENT_POINTS);
    compensate(pool, &order, "pay-a").await;
    db::top_up(pool, user, 1_000, None).await.unwrap();
    let charged = points::charge(pool, &charge_input(&order, "pay-b"))
        .await
        .unwrap();
    let again = points::charge(pool, &charge_input(&order, "pay-b"))
        .await
        .unwrap();
    assert_eq!(charged, again);
    coupons::redeem(pool, &redeem_input(&order, "pay-b"))
        .await
        .unwrap();
    stock::deduct_and_complete(pool, &deduct_input(&order, "pay-b"))
        .await
        .unwrap();

    assert_eq!(attempt_of(pool, "o-num", "pay-a").await, Some(1));
    assert_eq!(attempt_of(pool, "o-num", "pay-b").await, Some(2));
    let payments = "SELECT count(*) FROM payments WHERE order_id = 'o-num'";
    assert_eq!(count(pool, payments).await, 2);
    assert_eq!(
        steps_of(pool, "o-num").await,
        [
            "charge_points 1 REFUSED",
            "deduct_stock 1 FENCED",
            "redeem_coupon 1 FENCED",
            "charge_points 2 DONE",
            "deduct_stock 2 DONE",
            "redeem_coupon 2 DONE",
        ]
    );
    let ledgers = "SELECT count(*) FROM (SELECT attempt FROM point_ledger WHERE order_id = 'o-num' \
         UNION ALL SELECT attempt FROM stock_ledger WHERE order_id = 'o-num' \
         UNION ALL SELECT attempt FROM coupon_ledger WHERE order_id = 'o-num') l \
         WHERE attempt = 2";
    assert_eq!(
        count(pool, ledgers).await,
        3,
        "charge, deduction, redemption"
    );
    assert_eq!(points_of(pool, user).await, 2_500 - 1_000 + 1_000 - 1_900);
    t.finish().await;
}

/// A compensation that runs before its step (the step timed out, or the workflow was
/// cancelled while it was scheduled) numbers the payment and fences that attempt: the late step
/// under the same payment id never commits, while a new payment still can pay.
#[tokio::test]
async fn a_compensation_before_its_step_fences_that_payment() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-fence", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();

    for (payment, attempt) in [("pay-1", 1), ("pay-2", 2)] {
        points::refund(pool, &key(&order, payment)).await.unwrap();
        assert_eq!(attempt_of(pool, "o-fence", payment).await, Some(attempt));
        assert_eq!(
            step_state(pool, "o-fence", "charge_points", attempt)
                .await
                .as_deref(),
            Some("FENCED")
        );
        for _ in 0..2 {
            let e = points::charge(pool, &charge_input(&order, payment))
                .await
                .unwrap_err();
            assert_eq!(business(e), not_payable(OrderStatus::Canceled));
        }
        points::refund(pool, &key(&order, payment)).await.unwrap();
        assert_eq!(attempt_of(pool, "o-fence", payment).await, Some(attempt));
    }
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(status_of(pool, "o-fence").await, OrderStatus::Pending);
    let ledger = "SELECT count(*) FROM point_ledger WHERE order_id IS NOT NULL";
    assert_eq!(count(pool, ledger).await, 0);

    // The fenced payments never block a new one.
    pay(pool, &order, "pay-3").await.unwrap();
    assert_eq!(attempt_of(pool, "o-fence", "pay-3").await, Some(3));
    assert_eq!(points_of(pool, s.user).await, 99_000);
    t.finish().await;
}

/// New payments of one order whose first steps race are numbered apart (a run that loses the
/// race fails retryably and, retried, takes the next number): 1 to n, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_new_payments_are_numbered_apart() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-many", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            let k = key(&order, &format!("pay-{i}"));
            tokio::spawn(async move {
                barrier.wait().await;
                retried(|| points::refund(&pool, &k)).await
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let attempts: Vec<i64> =
        sqlx::query_scalar("SELECT attempt FROM payments WHERE order_id = 'o-many' ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(attempts, (1..=8).collect::<Vec<i64>>());
    let fenced = "SELECT count(*) FROM saga_steps WHERE order_id = 'o-many' AND state = 'FENCED'";
    assert_eq!(count(pool, fenced).await, 8);
    t.finish().await;
}

// ---------------------------------------------------------------- redeem / release

#[tokio::test]
async fn redeem_twice_redeems_once_and_release_twice_releases_once() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let c1 = fixed_coupon(pool, s.user, 500).await;
    let c2 = fixed_coupon(pool, s.user, 500).await;
    let order = place(pool, "o-coupon", s.user, &[(s.cheap, 2)], Some(c1))
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();

    for _ in 0..2 {
        coupons::redeem(pool, &redeem_input(&order, "p1"))
            .await
            .unwrap();
    }
    let c = coupons::get(pool, c1).await.unwrap().unwrap();
    assert_eq!(c.status, CouponStatus::Used);
    assert_eq!(c.order_id.as_deref(), Some("o-coupon"));
    assert!(c.used_at.is_some());
    assert_eq!(count(pool, "SELECT count(*) FROM coupon_ledger").await, 1);

    for _ in 0..2 {
        coupons::release(pool, &key(&order, "p1")).await.unwrap();
    }
    let c = coupons::get(pool, c1).await.unwrap().unwrap();
    assert_eq!(
        (c.status, c.order_id, c.used_at),
        (CouponStatus::Available, None, None)
    );
    let releases = "SELECT count(*) FROM coupon_ledger WHERE kind = 'RELEASE'";
    assert_eq!(count(pool, releases).await, 1);

    // A late retry of the released redemption commits nothing.
    let e = coupons::redeem(pool, &redeem_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Canceled));
    assert_eq!(coupon_of(pool, c1).await, (CouponStatus::Available, None));
    unwind(pool, &order, "p1").await;

    let listed = coupons::list_for_user(pool, s.user).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c1, c2]
    );
    t.finish().await;
}

#[tokio::test]
async fn release_first_fences_out_the_redeem() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let coupon = fixed_coupon(pool, s.user, 500).await;
    let order = place(pool, "o-coupon-2", s.user, &[(s.cheap, 2)], Some(coupon))
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    coupons::release(pool, &key(&order, "p1")).await.unwrap();
    assert_eq!(
        step_state(pool, "o-coupon-2", "redeem_coupon", 1)
            .await
            .as_deref(),
        Some("FENCED")
    );
    let e = coupons::redeem(pool, &redeem_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Canceled));
    assert_eq!(
        coupon_of(pool, coupon).await,
        (CouponStatus::Available, None)
    );
    assert_eq!(count(pool, "SELECT count(*) FROM coupon_ledger").await, 0);
    unwind(pool, &order, "p1").await;
    t.finish().await;
}

/// The coupon refusal of one redemption, under payment `payment_id` of `order`.
async fn redeem_refusal(
    pool: &PgPool,
    order: &Order,
    payment_id: &str,
    coupon_id: CouponId,
) -> CouponInvalidReason {
    let input = RedeemCouponInput {
        key: key(order, payment_id),
        user_id: order.user_id,
        coupon_id,
    };
    match business(coupons::redeem(pool, &input).await.unwrap_err()) {
        OrderError::CouponInvalid { reason } => reason,
        other => panic!("expected COUPON_INVALID, got {other:?}"),
    }
}

#[tokio::test]
async fn redeem_refusals_name_the_reason() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let other = db::create_user(pool, "Choi", 10_000).await.unwrap();
    let mine = fixed_coupon(pool, s.user, 100).await;
    let expiring = fixed_coupon(pool, s.user, 100).await;
    let theirs = fixed_coupon(pool, other, 100).await;

    // The first order completes with `mine`; the third's coupon expires after placement.
    let first = place(pool, "o-first", s.user, &[(s.cheap, 1)], Some(mine))
        .await
        .unwrap();
    let second = place(pool, "o-second", s.user, &[(s.cheap, 1)], Some(mine))
        .await
        .unwrap();
    pay(pool, &first, "p1").await.unwrap();
    let third = place(pool, "o-third", s.user, &[(s.cheap, 1)], Some(expiring))
        .await
        .unwrap();
    sqlx::query("UPDATE coupons SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expiring.get())
        .execute(pool)
        .await
        .unwrap();

    // Each refusal under a payment of its own: a refused payment answers its first refusal.
    points::charge(pool, &charge_input(&second, "p1"))
        .await
        .unwrap();
    let used = CouponInvalidReason::AlreadyUsed;
    assert_eq!(redeem_refusal(pool, &second, "p1", mine).await, used);
    assert_eq!(
        redeem_refusal(pool, &second, "p1", theirs).await,
        used,
        "a re-run of a refused step answers the refusal it recorded"
    );
    let not_owned = CouponInvalidReason::NotOwned;
    assert_eq!(redeem_refusal(pool, &second, "p2", theirs).await, not_owned);
    let not_found = CouponInvalidReason::NotFound;
    assert_eq!(
        redeem_refusal(pool, &second, "p3", CouponId::new(4242)).await,
        not_found
    );
    points::charge(pool, &charge_input(&third, "p1"))
        .await
        .unwrap();
    let expired = CouponInvalidReason::Expired;
    assert_eq!(redeem_refusal(pool, &third, "p1", expiring).await, expired);

    // Refusals leave no ledger row, only their record; the used coupon still belongs to
    // `first`.
    for o in ["o-second", "o-third"] {
        assert_eq!(
            step_state(pool, o, "redeem_coupon", 1).await.as_deref(),
            Some("REFUSED")
        );
    }
    assert_eq!(count(pool, "SELECT count(*) FROM coupon_ledger").await, 1);
    assert_eq!(coupon_of(pool, mine).await.1.as_deref(), Some("o-first"));
    assert_eq!(coupon_of(pool, theirs).await.0, CouponStatus::Available);

    unwind(pool, &second, "p1").await;
    unwind(pool, &third, "p1").await;
    t.finish().await;
}

// ---------------------------------------------------------------- deduct and complete / restore

#[tokio::test]
async fn deduct_and_complete_needs_a_paid_order_and_completes_it_once() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-last", s.user, &[(s.dear, 2), (s.cheap, 1)], None)
        .await
        .unwrap();

    // Not PAID yet: refused, nothing deducted, only the refusal recorded.
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Pending));
    assert_eq!(stock_of(pool, s.dear).await, 3);
    assert_eq!(
        step_state(pool, "o-last", "deduct_stock", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );

    points::charge(pool, &charge_input(&order, "p2"))
        .await
        .unwrap();
    // The refused payment stays refused, whatever has changed since.
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Pending));
    let first = stock::deduct_and_complete(pool, &deduct_input(&order, "p2"))
        .await
        .unwrap();
    let again = stock::deduct_and_complete(pool, &deduct_input(&order, "p2"))
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat answers the first stamp");
    let done = orders::load(pool, &OrderId::parse("o-last").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, OrderStatus::Completed);
    assert_eq!(done.completed_at, Some(first.at));
    assert_eq!(
        (stock_of(pool, s.dear).await, stock_of(pool, s.cheap).await),
        (1, 9)
    );
    let deductions = "SELECT count(*) FROM stock_ledger WHERE kind = 'DEDUCT'";
    assert_eq!(count(pool, deductions).await, 2);
    t.finish().await;
}

/// Refused for want of stock: the order stays PAID, nothing is deducted, the refusal is
/// recorded, and the compensation finds nothing to undo. A step of the payment run again after
/// the unwinding tells the refusal that undid it.
#[tokio::test]
async fn a_refused_deduction_is_what_its_payment_answers_after_unwinding() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let short = place(pool, "o-short", s.user, &[(s.dear, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&short, "p1"))
        .await
        .unwrap();
    let big = DeductStockInput {
        key: key(&short, "p1"),
        lines: lines(&[(s.dear, 4)]),
    };
    let refusal = OrderError::InsufficientStock {
        product_id: s.dear,
        available: 3,
    };
    let e = stock::deduct_and_complete(pool, &big).await.unwrap_err();
    assert_eq!(business(e), refusal);
    assert_eq!(status_of(pool, "o-short").await, OrderStatus::Paid);
    assert_eq!(stock_of(pool, s.dear).await, 3);
    unwind(pool, &short, "p1").await;
    assert_eq!(
        step_state(pool, "o-short", "deduct_stock", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    // The charge run again (its first answer lost with a worker) does not commit, and tells
    // the refusal that undid it rather than a refusal of its own.
    let again = points::charge(pool, &charge_input(&short, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(again), refusal);
    assert_eq!(
        step_state(pool, "o-short", "charge_points", 1)
            .await
            .as_deref(),
        Some("COMPENSATED")
    );
    assert_eq!(points_of(pool, s.user).await, 100_000);
    t.finish().await;
}

#[tokio::test]
async fn restore_first_fences_out_the_deduction() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-stock", s.user, &[(s.dear, 3)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    stock::restore(pool, &key(&order, "p1")).await.unwrap();
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), not_payable(OrderStatus::Canceled));
    assert_eq!(stock_of(pool, s.dear).await, 3);
    assert_eq!(status_of(pool, "o-stock").await, OrderStatus::Paid);
    assert_eq!(
        step_state(pool, "o-stock", "deduct_stock", 1)
            .await
            .as_deref(),
        Some("FENCED")
    );
    stock::restore(pool, &key(&order, "p1")).await.unwrap();
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM stock_ledger WHERE order_id IS NOT NULL"
        )
        .await,
        0
    );
    unwind(pool, &order, "p1").await;
    t.finish().await;
}

#[tokio::test]
async fn deduct_refusals_change_nothing() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-short", s.user, &[(s.cheap, 5), (s.dear, 3)], None)
        .await
        .unwrap();
    // Someone else buys a notebook in between.
    let rival = place(pool, "o-rival", s.user, &[(s.dear, 1)], None)
        .await
        .unwrap();
    pay(pool, &rival, "p1").await.unwrap();

    points::charge(pool, &charge_input(&order, "p1"))
        .await
        .unwrap();
    let short = OrderError::InsufficientStock {
        product_id: s.dear,
        available: 2,
    };
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), short);
    // Nothing of the order was deducted, not even the line that had enough.
    assert_eq!(
        (stock_of(pool, s.cheap).await, stock_of(pool, s.dear).await),
        (10, 2)
    );
    assert_eq!(
        step_state(pool, "o-short", "deduct_stock", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );

    let unknown = DeductStockInput {
        key: key(&order, "p2"),
        lines: lines(&[(s.cheap, 1), (ProductId::new(31337), 1)]),
    };
    let e = stock::deduct_and_complete(pool, &unknown)
        .await
        .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::ProductNotFound {
            product_id: ProductId::new(31337)
        }
    );
    assert_eq!(
        step_state(pool, "o-short", "deduct_stock", 2)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    assert_eq!(stock_of(pool, s.cheap).await, 10);
    // A re-run of a refused payment answers its own refusal, not what it would find now.
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, "p1"))
        .await
        .unwrap_err();
    assert_eq!(business(e), short);
    assert_eq!(status_of(pool, "o-short").await, OrderStatus::Paid);

    unwind(pool, &order, "p1").await;
    unwind(pool, &order, "p2").await;
    t.finish().await;
}

/// `n` orders of one product each (half naming the two products in the other order), placed
/// and charged.
async fn charged_orders(
    pool: &PgPool,
    user: UserId,
    scarce: ProductId,
    plenty: ProductId,
) -> Vec<Order> {
    let mut placed = Vec::new();
    for i in 0..20 {
        let items = if i % 2 == 0 {
            [(scarce, 1), (plenty, 1)]
        } else {
            [(plenty, 1), (scarce, 1)]
        };
        let order = place(pool, &format!("o-race-{i}"), user, &items, None)
            .await
            .unwrap();
        points::charge(pool, &charge_input(&order, "p1"))
            .await
            .unwrap();
        placed.push(order);
    }
    placed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_deducts_never_oversell() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Buyer", 10_000_000).await.unwrap();
    let scarce = db::create_product(pool, "Limited", 1_000, 5).await.unwrap();
    let plenty = db::create_product(pool, "Common", 100, 1_000)
        .await
        .unwrap();
    // Locking the products by id keeps orders naming them in either order deadlock-free.
    let placed = charged_orders(pool, user, scarce, plenty).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(placed.len()));
    let tasks: Vec<_> = placed
        .into_iter()
        .map(|order| {
            let (pool, barrier) = (pool.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let result = stock::deduct_and_complete(&pool, &deduct_input(&order, "p1")).await;
                (order, result)
            })
        })
        .collect();
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (order, Ok(_)) => won.push(order),
            (order, Err(e)) => {
                let sold_out = OrderError::InsufficientStock {
                    product_id: scarce,
                    available: 0,
                };
                assert_eq!(business(e), sold_out);
                lost.push(order);
            }
        }
    }
    assert_eq!(won.len(), 5);
    assert_eq!(stock_of(pool, scarce).await, 0);
    assert_eq!(stock_of(pool, plenty).await, 995);
    for order in &won {
        assert_eq!(status_of(pool, &order.id).await, OrderStatus::Completed);
    }
    for order in &lost {
        assert_eq!(status_of(pool, &order.id).await, OrderStatus::Paid);
        unwind(pool, order, "p1").await;
    }
    assert_eq!(stock_of(pool, plenty).await, 995);
    t.finish().await;
}

/// One payment's forward steps, as far as they go, each retried on a database error as
/// Temporal retries an activity (the first steps of one payment racing each other: one of them
/// numbers the payment, the other fails retryably and finds the number when retried). Every
/// refusal must be `ORDER_NOT_PAYABLE` (the compensation got in first, or the order is not in
/// the status the step needs).
async fn forward_steps(pool: PgPool, order: Order) {
    let charge = charge_input(&order, "p1");
    let redeem = redeem_input(&order, "p1");
    let deduct = deduct_input(&order, "p1");
    let charged = retried(|| points::charge(&pool, &charge)).await;
    let redeemed = retried(|| coupons::redeem(&pool, &redeem)).await;
    let deducted = retried(|| stock::deduct_and_complete(&pool, &deduct)).await;
    for r in [charged.map(|_| ()), redeemed, deducted.map(|_| ())] {
        if let Err(e) = r {
            assert_eq!(business(e).code(), OrderError::ORDER_NOT_PAYABLE);
        }
    }
}

/// The payment's compensations, newest first, after `delay`, each retried on a database error.
async fn compensations(pool: PgPool, order: Order, delay: std::time::Duration) {
    tokio::time::sleep(delay).await;
    let k = key(&order, "p1");
    retried(|| stock::restore(&pool, &k)).await.unwrap();
    retried(|| coupons::release(&pool, &k)).await.unwrap();
    retried(|| points::refund(&pool, &k)).await.unwrap();
}

/// Each payment's forward steps race its compensations: either the order completes before the
/// compensations, and they leave it alone (the pivot), or nothing of the payment remains once
/// they have run and the order is closed `CANCELED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_steps_and_compensations_complete_or_leave_nothing() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Kim", 100_000).await.unwrap();
    let pencil = db::create_product(pool, "Pencil", 1_000, 100)
        .await
        .unwrap();
    let mut placed = Vec::new();
    for i in 0..12 {
        let coupon = fixed_coupon(pool, user, 10).await;
        let id = format!("o-rc-{i}");
        placed.push(
            place(pool, &id, user, &[(pencil, 1)], Some(coupon))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    // The compensations start later and later, so that some win the race and some lose it.
    for (order, delay) in placed
        .iter()
        .zip((0..).map(std::time::Duration::from_millis))
    {
        tasks.push(tokio::spawn(forward_steps(pool.clone(), order.clone())));
        tasks.push(tokio::spawn(compensations(
            pool.clone(),
            order.clone(),
            delay * 15,
        )));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut completed = 0;
    for order in &placed {
        let steps = steps_of(pool, &order.id).await;
        if status_of(pool, &order.id).await == OrderStatus::Completed {
            completed += 1;
            assert!(steps.iter().all(|s| s.ends_with(" DONE")), "{steps:?}");
            continue;
        }
        assert!(steps.iter().all(|s| !s.ends_with(" DONE")), "{steps:?}");
        unwind(pool, order, "p1").await;
    }
    assert_eq!(points_of(pool, user).await, 100_000 - 990 * completed);
    assert_eq!(stock_of(pool, pencil).await, 100 - completed);
    let used = "SELECT count(*) FROM coupons WHERE status = 'USED'";
    assert_eq!(count(pool, used).await, completed);
    t.finish().await;
}

// ---------------------------------------------------------------- helpers and seed

/// The reads the API and `starter check` make besides the orders themselves.
#[tokio::test]
async fn the_lookups_answer_what_the_database_holds() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;

    db::ping(pool).await.unwrap();
    let nowhere = db::connect_lazy(&url_for("nowhere"), Duration::from_millis(500)).unwrap();
    let gone = "postgres://postgres@127.0.0.1:9/nowhere";
    let down = db::connect_lazy(gone, Duration::from_millis(500)).unwrap();
    assert!(db::ping(&down).await.is_err(), "nothing listens there");
    assert!(db::ping(&nowhere).await.is_err(), "no such database");

    let installation = db::installation_id(pool).await.unwrap();
    assert_eq!(installation.len(), 36, "a uuid: {installation}");
    assert_eq!(db::installation_id(pool).await.unwrap(), installation);

    assert!(db::user_exists(pool, s.user).await.unwrap());
    assert!(
        !db::user_exists(pool, UserId::new(s.user.get() + 1000))
            .await
            .unwrap()
    );

    place(pool, "o-b", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let a = place(pool, "o-a", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    assert_eq!(
        orders::owner(pool, &OrderId::parse("o-a").unwrap())
            .await
            .unwrap(),
        Some(s.user)
    );
    assert_eq!(
        orders::owner(pool, &OrderId::parse("o-none").unwrap())
            .await
            .unwrap(),
        None
    );

    pay(pool, &a, "p1").await.unwrap();
    let ids = |all: Vec<orders::Standing>| -> Vec<(String, String, bool)> {
        all.into_iter()
            .map(|o| (o.id.into_string(), o.status, o.notified))
            .collect()
    };
    let completed = ("o-a".to_owned(), "COMPLETED".to_owned(), false);
    let pending = ("o-b".to_owned(), "PENDING".to_owned(), false);
    assert_eq!(
        ids(orders::standings(pool).await.unwrap()),
        [completed.clone(), pending]
    );
    orders::mark_notified(pool, &OrderId::parse("o-a").unwrap())
        .await
        .unwrap();
    let a = orders::standing(pool, &OrderId::parse("o-a").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.status.as_str(), a.cancel_code, a.notified),
        ("COMPLETED", None, true)
    );
    assert!(
        orders::standing(pool, &OrderId::parse("o-none").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    close(pool, "o-b", OrderStatus::Canceled, CancelCode::UserCanceled)
        .await
        .unwrap();
    let b = orders::standing(pool, &OrderId::parse("o-b").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.status, "CANCELED");
    assert_eq!(b.cancel_code.as_deref(), Some("USER_CANCELED"));
    t.finish().await;
}

/// What a database error means, which the API answers 503, 400 or 500 by.
#[tokio::test]
async fn a_database_error_says_what_it_means() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let fault = |sql: &'static str| async move {
        DbFault::of(&sqlx::query(sql).execute(pool).await.unwrap_err())
    };
    // 22012 division by zero; 23505 a second row of the singleton.
    assert_eq!(fault("SELECT 1 / 0").await, DbFault::InvalidInput);
    let twice = "INSERT INTO installation DEFAULT VALUES";
    assert_eq!(fault(twice).await, DbFault::InvalidInput);
    // 42703 undefined column: a bug of ours, not the caller's.
    assert_eq!(fault("SELECT nonsense").await, DbFault::Bug);
    assert_eq!(DbFault::of(&sqlx::Error::RowNotFound), DbFault::Bug);

    assert_eq!(
        DbFault::of(&sqlx::Error::PoolTimedOut),
        DbFault::Unavailable
    );
    let gone = "postgres://postgres@127.0.0.1:9/nowhere";
    let down = db::connect_lazy(gone, Duration::from_millis(500)).unwrap();
    match db::ping(&down).await {
        Err(StoreError::Db(e)) => assert_eq!(DbFault::of(&e), DbFault::Unavailable, "{e}"),
        other => panic!("nothing listens there: {other:?}"),
    }
    t.finish().await;
}

#[tokio::test]
async fn seed_demo_seeds_once_and_a_demo_order_goes_through() {
    let t = TestDb::new().await;
    let pool = &t.pool;

    let (a, b) = tokio::join!(db::seed_demo(pool), db::seed_demo(pool));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one seeder seeds");
    assert!(!db::seed_demo(pool).await.unwrap());
    assert_eq!(count(pool, "SELECT count(*) FROM users").await, 3);
    assert_eq!(count(pool, "SELECT count(*) FROM products").await, 4);
    let kinds = "SELECT count(DISTINCT discount->>'type') FROM coupons";
    assert_eq!(count(pool, kinds).await, 2);
    assert_eq!(db::list_products(pool).await.unwrap().len(), 4);
    let alice = db::get_user(pool, UserId::new(1)).await.unwrap().unwrap();
    assert_eq!(alice.points, 100_000);
    let alices = coupons::list_for_user(pool, UserId::new(1)).await.unwrap();
    assert_eq!(alices.len(), 2);
    assert!(alices.iter().all(|c| c.status == CouponStatus::Available));

    // A demo order with a coupon goes through.
    let order = place(
        pool,
        "o-demo",
        UserId::new(1),
        &[(ProductId::new(2), 1), (ProductId::new(3), 2)],
        Some(alices[0].id),
    )
    .await
    .unwrap();
    assert_eq!((order.subtotal, order.discount), (44_800, 5_000));
    pay(pool, &order, "p1").await.unwrap();
    assert_eq!(status_of(pool, "o-demo").await, OrderStatus::Completed);
    orders::mark_notified(pool, &order.id).await.unwrap();
    t.finish().await;
}

#[tokio::test]
async fn top_ups_take_effect_once_per_key() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Top", 0).await.unwrap();
    let other = db::create_user(pool, "Other", 50_000).await.unwrap();

    // The same key for the same user takes effect once; another user may reuse it.
    assert_eq!(
        db::top_up(pool, user, 700, Some("key-1")).await.unwrap(),
        700
    );
    assert_eq!(
        db::top_up(pool, user, 700, Some("key-1")).await.unwrap(),
        700
    );
    assert_eq!(db::top_up(pool, user, 300, None).await.unwrap(), 1_000);
    assert_eq!(db::top_up(pool, user, 300, None).await.unwrap(), 1_300);
    assert_eq!(
        db::top_up(pool, other, 1, Some("key-1")).await.unwrap(),
        50_001
    );
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { db::top_up(&pool, user, 50, Some("key-2")).await })
        })
        .collect();
    for r in racers {
        r.await.unwrap().unwrap();
    }
    assert_eq!(points_of(pool, user).await, 1_350);
    assert_eq!(
        business(db::top_up(pool, user, 0, None).await.unwrap_err()).code(),
        OrderError::INVALID_REQUEST
    );
    assert_eq!(
        business(
            db::top_up(pool, UserId::new(999), 5, None)
                .await
                .unwrap_err()
        )
        .code(),
        OrderError::INVALID_REQUEST
    );
    t.finish().await;
}

#[tokio::test]
async fn admin_helpers_validate_and_restock() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Admin's customer", 0).await.unwrap();
    assert!(db::create_user(pool, "", 1).await.is_err());
    assert!(db::create_user(pool, "Neg", -1).await.is_err());
    assert!(db::create_product(pool, "Free", 0, 1).await.is_err());
    assert!(db::create_product(pool, "Neg", 1, -1).await.is_err());
    let fixed_1 = Discount::Fixed { amount: 1 };
    assert!(
        db::create_coupon(pool, UserId::new(999), &fixed_1, None, in_days(1))
            .await
            .is_err()
    );
    let zero = Discount::Percent {
        percent: 0,
        max_amount: None,
    };
    assert!(
        db::create_coupon(pool, user, &zero, None, in_days(1))
            .await
            .is_err()
    );
    let empty = db::create_product(pool, "Sold out", 10, 0).await.unwrap();
    assert_eq!(db::restock(pool, empty, 4).await.unwrap(), 4);
    assert_eq!(
        business(db::restock(pool, ProductId::new(999), 4).await.unwrap_err()),
        OrderError::ProductNotFound {
            product_id: ProductId::new(999)
        }
    );
    t.finish().await;
}

// ---------------------------------------------------------------- the invariant check itself

/// A completed order with a coupon (`o-good`: 2 pencils, 100 off) and a pending one
/// (`o-pending`: a notebook), over which the invariant tests corrupt the data.
struct Corruptible {
    s: Shop,
    coupon: CouponId,
    done: Order,
}

async fn corruptible(pool: &PgPool) -> Corruptible {
    let s = shop(pool).await;
    let coupon = fixed_coupon(pool, s.user, 100).await;
    let done = place(pool, "o-good", s.user, &[(s.cheap, 2)], Some(coupon))
        .await
        .unwrap();
    pay(pool, &done, "p1").await.unwrap();
    orders::mark_notified(pool, &OrderId::parse("o-good").unwrap())
        .await
        .unwrap();
    place(pool, "o-pending", s.user, &[(s.dear, 1)], None)
        .await
        .unwrap();
    let report = invariants::check(pool).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.violations);
    assert_eq!(report.checked["orders"], 2);
    Corruptible { s, coupon, done }
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// Asserts that the check reports a violation of `rule` naming `names`.
async fn expect_violation(pool: &PgPool, rule: &str, names: &str) {
    let report = invariants::check(pool).await.unwrap();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.starts_with(&format!("[{rule}]")) && v.contains(names)),
        "expected a [{rule}] violation naming {names:?}, got {:#?}",
        report.violations
    );
}

#[tokio::test]
async fn invariants_catch_a_balance_no_ledger_explains() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let c = corruptible(pool).await;
    exec(pool, "UPDATE users SET points = points + 1").await;
    expect_violation(pool, "points_match_ledger", &format!("user {}", c.s.user)).await;
    exec(pool, "UPDATE users SET points = points - 1").await;

    exec(
        pool,
        "UPDATE products SET stock = stock - 1 WHERE name = 'Notebook'",
    )
    .await;
    expect_violation(
        pool,
        "stock_matches_ledger",
        &format!("product {}", c.s.dear),
    )
    .await;
    exec(
        pool,
        "UPDATE products SET stock = stock + 1 WHERE name = 'Notebook'",
    )
    .await;
    t.finish().await;
}

#[tokio::test]
async fn invariants_catch_a_lost_refund() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let c = corruptible(pool).await;
    // The completed order is charged twice by two attempts.
    exec(
        pool,
        "INSERT INTO saga_steps (order_id, step, attempt, state) \
         VALUES ('o-good', 'charge_points', 9, 'DONE')",
    )
    .await;
    sqlx::query(
        "INSERT INTO point_ledger (user_id, order_id, attempt, kind, amount) \
         VALUES ($1, 'o-good', 9, 'CHARGE', $2)",
    )
    .bind(c.s.user.get())
    .bind(c.done.total)
    .execute(pool)
    .await
    .unwrap();
    exec(pool, "UPDATE users SET points = points - 1900").await;
    expect_violation(pool, "completed_charged_once", "order o-good").await;
    expect_violation(pool, "completed_steps_done", "order o-good").await;
    exec(pool, "DELETE FROM point_ledger WHERE attempt = 9").await;
    exec(pool, "DELETE FROM saga_steps WHERE attempt = 9").await;
    exec(pool, "UPDATE users SET points = points + 1900").await;
    t.finish().await;
}

#[tokio::test]
async fn invariants_catch_a_completed_order_never_paid() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    corruptible(pool).await;
    exec(
        pool,
        "UPDATE orders SET status = 'COMPLETED', paid_at = now(), completed_at = now() \
         WHERE id = 'o-pending'",
    )
    .await;
    expect_violation(pool, "completed_charged_once", "order o-pending").await;
    expect_violation(pool, "completed_stock_deducted_once", "order o-pending").await;
    // And the platform was never told about it.
    let unnotified = invariants::check_notified(pool).await.unwrap();
    assert!(
        unnotified.iter().any(|v| v.contains("o-pending")),
        "{unnotified:?}"
    );
    exec(
        pool,
        "UPDATE orders SET status = 'PENDING', paid_at = NULL, completed_at = NULL \
         WHERE id = 'o-pending'",
    )
    .await;
    t.finish().await;
}

#[tokio::test]
async fn invariants_catch_a_coupon_held_by_the_wrong_order() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let c = corruptible(pool).await;
    let coupon = format!("coupon {}", c.coupon);
    exec(
        pool,
        "UPDATE coupons SET status = 'AVAILABLE', used_at = NULL, order_id = NULL \
         WHERE order_id = 'o-good'",
    )
    .await;
    expect_violation(pool, "completed_coupon_used", "order o-good").await;
    expect_violation(pool, "coupon_matches_ledger", &coupon).await;
    sqlx::query(
        "UPDATE coupons SET status = 'USED', used_at = now(), order_id = 'o-pending' WHERE id = $1",
    )
    .bind(c.coupon.get())
    .execute(pool)
    .await
    .unwrap();
    expect_violation(pool, "coupon_used_by_live_order", &coupon).await;
    exec(pool, "UPDATE coupons SET order_id = 'o-good'").await;
    t.finish().await;
}

#[tokio::test]
async fn invariants_catch_a_canceled_order_never_undone() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    corruptible(pool).await;
    exec(
        pool,
        "UPDATE orders SET status = 'CANCELED', canceled_at = now(), closed_at = now(), \
         cancel_code = 'OPERATOR_CANCELED' WHERE id = 'o-good'",
    )
    .await;
    expect_violation(pool, "closed_stock_net_zero", "order o-good").await;
    expect_violation(pool, "closed_points_net_zero", "order o-good").await;
    expect_violation(pool, "step_done_on_closed_order", "order o-good").await;
    exec(
        pool,
        "UPDATE orders SET status = 'COMPLETED', canceled_at = NULL, closed_at = NULL, \
         cancel_code = NULL WHERE id = 'o-good'",
    )
    .await;
    t.finish().await;
}

#[tokio::test]
async fn invariants_catch_bookkeeping_that_disagrees() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    corruptible(pool).await;
    // A step compensated on paper but not in the ledger.
    exec(
        pool,
        "UPDATE saga_steps SET state = 'COMPENSATED' \
         WHERE order_id = 'o-good' AND step = 'deduct_stock'",
    )
    .await;
    expect_violation(pool, "ledger_matches_steps", "order o-good").await;
    exec(
        pool,
        "UPDATE saga_steps SET state = 'DONE' WHERE order_id = 'o-good'",
    )
    .await;

    // Order arithmetic.
    exec(
        pool,
        "UPDATE order_lines SET unit_price = 999, line_total = 1998 WHERE order_id = 'o-good'",
    )
    .await;
    expect_violation(pool, "order_arithmetic", "order o-good").await;
    exec(
        pool,
        "UPDATE order_lines SET unit_price = 1000, line_total = 2000 WHERE order_id = 'o-good'",
    )
    .await;
    t.finish().await;
}

/// A closed order's code is kept by the database: set exactly when the order is `CANCELED` or
/// `EXPIRED`, and one of the contract's codes.
#[tokio::test]
async fn the_database_keeps_cancel_code_with_the_status() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    corruptible(pool).await;
    let when_closed = "orders_cancel_code_when_closed";
    for (sql, constraint) in [
        (
            "UPDATE orders SET status = 'CANCELED', canceled_at = now(), closed_at = now() \
             WHERE id = 'o-pending'",
            when_closed,
        ),
        (
            "UPDATE orders SET status = 'EXPIRED', closed_at = now() WHERE id = 'o-pending'",
            when_closed,
        ),
        (
            "UPDATE orders SET cancel_code = 'USER_CANCELED' WHERE id = 'o-good'",
            when_closed,
        ),
        (
            "UPDATE orders SET cancel_code = 'USER_CANCELED' WHERE id = 'o-pending'",
            when_closed,
        ),
        (
            "UPDATE orders SET status = 'EXPIRED', closed_at = now(), cancel_code = 'BORED' \
             WHERE id = 'o-pending'",
            "orders_cancel_code_check",
        ),
    ] {
        let refused = sqlx::query(sql).execute(pool).await.unwrap_err();
        let db_error = refused.as_database_error().expect("a database error");
        assert_eq!(db_error.constraint(), Some(constraint), "{sql}: {refused}");
    }
    exec(
        pool,
        "UPDATE orders SET status = 'EXPIRED', closed_at = now(), \
         cancel_code = 'PAYMENT_EXPIRED' WHERE id = 'o-pending'",
    )
    .await;
    let expired = orders::load(pool, &OrderId::parse("o-pending").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        expired.cancel_code,
        Some(domain::CancelCode::PaymentExpired)
    );
    t.finish().await;
}

// ---------------------------------------------------------------- the database itself

#[tokio::test]
async fn ensure_database_tolerates_a_race() {
    let name = format!("orders_test_{}", uuid::Uuid::new_v4().simple());
    let url = url_for(&name);
    let results = futures::future::join_all((0..4).map(|_| db::ensure_database(&url))).await;
    for r in results {
        r.unwrap();
    }
    db::ensure_database(&url).await.unwrap();
    let pool = db::connect(&url).await.unwrap();
    let (a, b) = tokio::join!(db::migrate(&pool), db::migrate(&pool));
    a.unwrap();
    b.unwrap();
    assert!(invariants::check(&pool).await.unwrap().is_ok());
    pool.close().await;
    drop_database(&name).await;
}
