//! The activities against a real PostgreSQL: every test gets its own fresh database
//! (`orders_test_<uuid>` on the server of `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/`), and every test ends with `invariants::check`
//! finding nothing wrong.
use activities::{StepError, coupons, db, invariants, orders, placement, points, stock};
use chrono::{Duration, SubsecRound, Utc};
use domain::saga::{
    ChargePointsInput, CheckPointsInput, CloseOrderInput, DeductStockInput, RedeemCouponInput,
    StepKey, ValidateCouponInput,
};
use domain::{
    CouponInvalidReason, CouponStatus, Discount, LineRequest, Order, OrderError, OrderStatus,
    Pricing, Shipping,
};
use sqlx::PgPool;

mod common;
use common::{TestDb, drop_database, in_days, lines, url_for};

// ---------------------------------------------------------------- harness

fn business(e: StepError) -> OrderError {
    match e {
        StepError::Business(b) => b,
        other => panic!("expected a business error, got {other:?}"),
    }
}

fn shipping() -> Shipping {
    Shipping {
        recipient: "Kim Minji".into(),
        address: "1 Sejong-daero, Seoul".into(),
        phone: "010-1234-5678".into(),
    }
}

/// The workflow's placement: validate, price, check points, record `PENDING`.
async fn place(
    pool: &PgPool,
    id: &str,
    user_id: i64,
    items: &[(i64, i64)],
    coupon_id: Option<i64>,
) -> Result<Order, StepError> {
    let items = placement::validate_lines(pool, &lines(items)).await?;
    let subtotal = Pricing::subtotal(&items);
    let discount = match coupon_id {
        Some(coupon_id) => {
            placement::validate_coupon(
                pool,
                &ValidateCouponInput {
                    user_id,
                    coupon_id,
                    subtotal,
                },
            )
            .await?
        }
        None => 0,
    };
    let total = subtotal - discount;
    placement::check_points(pool, &CheckPointsInput { user_id, total }).await?;
    let now = Utc::now().trunc_subsecs(6);
    let order = Order {
        id: id.to_owned(),
        user_id,
        status: OrderStatus::Pending,
        items,
        subtotal,
        discount,
        total,
        coupon_id,
        shipping: shipping(),
        created_at: now,
        expires_at: now + Duration::minutes(15),
        paid_at: None,
        completed_at: None,
        canceled_at: None,
        cancel_reason: None,
        platform_notified_at: None,
    };
    orders::record(pool, &order).await?;
    Ok(order)
}

fn key(order: &Order, attempt: u32) -> StepKey {
    StepKey {
        order_id: order.id.clone(),
        attempt,
    }
}

fn charge_input(order: &Order, attempt: u32) -> ChargePointsInput {
    ChargePointsInput {
        key: key(order, attempt),
        user_id: order.user_id,
        amount: order.total,
    }
}

fn redeem_input(order: &Order, attempt: u32) -> RedeemCouponInput {
    RedeemCouponInput {
        key: key(order, attempt),
        user_id: order.user_id,
        coupon_id: order.coupon_id.expect("order has a coupon"),
    }
}

fn deduct_input(order: &Order, attempt: u32) -> DeductStockInput {
    DeductStockInput {
        key: key(order, attempt),
        lines: order
            .items
            .iter()
            .map(|l| LineRequest {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
    }
}

/// The workflow's payment: charge, redeem, deduct, complete.
async fn pay(pool: &PgPool, order: &Order, attempt: u32) -> Result<(), StepError> {
    points::charge(pool, &charge_input(order, attempt)).await?;
    if order.coupon_id.is_some() {
        coupons::redeem(pool, &redeem_input(order, attempt)).await?;
    }
    stock::deduct(pool, &deduct_input(order, attempt)).await?;
    orders::complete(pool, &order.id).await?;
    Ok(())
}

/// The workflow's unwinding: every compensation in reverse order, then `CANCELED`.
async fn unwind(pool: &PgPool, order: &Order, attempt: u32) {
    let k = key(order, attempt);
    stock::restore(pool, &k).await.unwrap();
    coupons::release(pool, &k).await.unwrap();
    points::refund(pool, &k).await.unwrap();
    close(pool, order, OrderStatus::Canceled).await.unwrap();
}

async fn close(
    pool: &PgPool,
    order: &Order,
    status: OrderStatus,
) -> Result<domain::saga::Stamp, StepError> {
    orders::close(
        pool,
        &CloseOrderInput {
            order_id: order.id.clone(),
            status,
            reason: format!("test closed it as {status}"),
        },
    )
    .await
}

async fn points_of(pool: &PgPool, user: i64) -> i64 {
    db::get_user(pool, user).await.unwrap().unwrap().points
}

async fn stock_of(pool: &PgPool, product: i64) -> i64 {
    db::get_product(pool, product).await.unwrap().unwrap().stock
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn step_state(pool: &PgPool, order: &Order, step: &str, attempt: u32) -> Option<String> {
    sqlx::query_scalar(
        "SELECT state FROM saga_steps WHERE order_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(&order.id)
    .bind(step)
    .bind(i64::from(attempt))
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn status_of(pool: &PgPool, order: &Order) -> OrderStatus {
    orders::load(pool, &order.id).await.unwrap().unwrap().status
}

/// A user with 100 000 points and two products (1 000 × 10, 2 500 × 3).
struct Shop {
    user: i64,
    cheap: i64,
    dear: i64,
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

// ---------------------------------------------------------------- placement and orders

#[tokio::test]
async fn placement_checks_and_record_is_idempotent() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let poor = db::create_user(pool, "Lee", 100).await.unwrap();

    // Lines come back in request order, priced now.
    let got = placement::validate_lines(pool, &lines(&[(s.dear, 2), (s.cheap, 3)]))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (
            got[0].product_id,
            got[0].name.as_str(),
            got[0].unit_price,
            got[0].line_total
        ),
        (s.dear, "Notebook", 2_500, 5_000)
    );
    assert_eq!((got[1].product_id, got[1].line_total), (s.cheap, 3_000));

    // The first missing product in request order, before any shortage.
    let e = placement::validate_lines(pool, &lines(&[(s.dear, 99), (999, 1), (998, 1)]))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::ProductNotFound { product_id: 999 });
    let e = placement::validate_lines(pool, &lines(&[(s.cheap, 1), (s.dear, 4)]))
        .await
        .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientStock {
            product_id: s.dear,
            available: 3
        }
    );

    // Coupons at placement.
    let fixed = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 1_500 },
        Some(5_000),
        in_days(30),
    )
    .await
    .unwrap();
    let percent = db::create_coupon(
        pool,
        s.user,
        &Discount::Percent {
            percent: 10,
            max_amount: Some(300),
        },
        None,
        in_days(30),
    )
    .await
    .unwrap();
    let expired = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 1 },
        None,
        in_days(-1),
    )
    .await
    .unwrap();
    let validate = |coupon_id, user_id, subtotal| async move {
        placement::validate_coupon(
            pool,
            &ValidateCouponInput {
                user_id,
                coupon_id,
                subtotal,
            },
        )
        .await
    };
    assert_eq!(validate(fixed, s.user, 6_000).await.unwrap(), 1_500);
    assert_eq!(validate(percent, s.user, 2_000).await.unwrap(), 200);
    assert_eq!(validate(percent, s.user, 9_000).await.unwrap(), 300);
    let reason = |e: StepError| match business(e) {
        OrderError::CouponInvalid { reason } => reason,
        other => panic!("expected COUPON_INVALID, got {other:?}"),
    };
    assert_eq!(
        reason(validate(fixed, s.user, 4_999).await.unwrap_err()),
        CouponInvalidReason::MinOrderAmount
    );
    assert_eq!(
        reason(validate(fixed, poor, 6_000).await.unwrap_err()),
        CouponInvalidReason::NotOwned
    );
    assert_eq!(
        reason(validate(expired, s.user, 6_000).await.unwrap_err()),
        CouponInvalidReason::Expired
    );
    assert_eq!(
        reason(validate(12345, s.user, 6_000).await.unwrap_err()),
        CouponInvalidReason::NotFound
    );

    // Points at placement.
    let e = placement::check_points(
        pool,
        &CheckPointsInput {
            user_id: poor,
            total: 101,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientPoints {
            points: 100,
            total: 101
        }
    );
    placement::check_points(
        pool,
        &CheckPointsInput {
            user_id: poor,
            total: 100,
        },
    )
    .await
    .unwrap();
    let e = placement::check_points(
        pool,
        &CheckPointsInput {
            user_id: 777,
            total: 1,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(business(e).code(), OrderError::INVALID_REQUEST);

    // A rejected placement records nothing.
    assert!(
        place(pool, "o-rejected", poor, &[(s.cheap, 1)], None)
            .await
            .is_err()
    );
    assert!(orders::load(pool, "o-rejected").await.unwrap().is_none());

    // Recording twice is one order, read back exactly as placed.
    let e = place(
        pool,
        "o-1",
        s.user,
        &[(s.dear, 1), (s.cheap, 2)],
        Some(fixed),
    )
    .await
    .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::CouponInvalid {
            reason: CouponInvalidReason::MinOrderAmount
        }
    );
    let order = place(
        pool,
        "o-1",
        s.user,
        &[(s.dear, 2), (s.cheap, 1)],
        Some(fixed),
    )
    .await
    .unwrap();
    assert_eq!(
        (order.subtotal, order.discount, order.total),
        (6_000, 1_500, 4_500)
    );
    orders::record(pool, &order).await.unwrap();
    assert_eq!(count(pool, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(pool, "SELECT count(*) FROM order_lines").await, 2);
    let loaded = orders::load(pool, "o-1").await.unwrap().unwrap();
    assert_eq!(loaded, order);
    assert!(orders::load(pool, "nope").await.unwrap().is_none());

    // Another user cannot take the id.
    let mut stolen = order.clone();
    stolen.user_id = poor;
    assert_eq!(
        business(orders::record(pool, &stolen).await.unwrap_err()).code(),
        OrderError::INVALID_REQUEST
    );

    // Placement reserves nothing.
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(stock_of(pool, s.dear).await, 3);

    // Newest first.
    let second = place(pool, "o-2", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let listed = orders::list_for_user(pool, s.user, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        vec![second.id.as_str(), "o-1"]
    );
    assert_eq!(listed[1], order);
    assert_eq!(
        orders::list_for_user(pool, s.user, 1).await.unwrap().len(),
        1
    );
    assert!(
        orders::list_for_user(pool, poor, 10)
            .await
            .unwrap()
            .is_empty()
    );

    close(pool, &order, OrderStatus::Expired).await.unwrap();
    close(pool, &second, OrderStatus::Canceled).await.unwrap();
    t.finish().await;
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

    let first = points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    let again = points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat answers the same stamp");
    assert_eq!(points_of(pool, s.user).await, 95_000);
    let paid = orders::load(pool, &order.id).await.unwrap().unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.paid_at, Some(first.at));
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM point_ledger WHERE kind = 'CHARGE'"
        )
        .await,
        1
    );

    points::refund(pool, &key(&order, 1)).await.unwrap();
    points::refund(pool, &key(&order, 1)).await.unwrap();
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM point_ledger WHERE kind = 'REFUND'"
        )
        .await,
        1
    );
    assert_eq!(
        step_state(pool, &order, "charge_points", 1)
            .await
            .as_deref(),
        Some("COMPENSATED")
    );

    // A late retry of the compensated charge commits nothing.
    let e = points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(points_of(pool, s.user).await, 100_000);

    close(pool, &order, OrderStatus::Canceled).await.unwrap();
    t.finish().await;
}

#[tokio::test]
async fn refund_first_fences_out_the_charge() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-fence", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();

    points::refund(pool, &key(&order, 1)).await.unwrap();
    assert_eq!(
        step_state(pool, &order, "charge_points", 1)
            .await
            .as_deref(),
        Some("FENCED")
    );
    for _ in 0..2 {
        let e = points::charge(pool, &charge_input(&order, 1))
            .await
            .unwrap_err();
        assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    }
    points::refund(pool, &key(&order, 1)).await.unwrap();
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(status_of(pool, &order).await, OrderStatus::Pending);
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM point_ledger WHERE order_id IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        step_state(pool, &order, "charge_points", 1)
            .await
            .as_deref(),
        Some("FENCED")
    );

    close(pool, &order, OrderStatus::Expired).await.unwrap();
    t.finish().await;
}

#[tokio::test]
async fn insufficient_points_leaves_nothing_and_a_new_attempt_can_pay() {
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
    pay(pool, &other, 1).await.unwrap();

    let e = points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientPoints {
            points: 2_000,
            total: 3_000
        }
    );
    // Refused, recorded as such: running the same attempt again answers the same refusal,
    // even once there would be points enough (a new payment is a new attempt).
    assert_eq!(
        step_state(pool, &order, "charge_points", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM point_ledger WHERE order_id = 'o-poor'"
        )
        .await,
        0
    );
    assert_eq!(points_of(pool, user).await, 2_000);
    assert_eq!(status_of(pool, &order).await, OrderStatus::Pending);

    // Top up, pay again under a new attempt.
    assert_eq!(
        db::top_up(pool, user, 5_000, Some("k1")).await.unwrap(),
        7_000
    );
    let again = points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(
        business(again),
        OrderError::InsufficientPoints {
            points: 2_000,
            total: 3_000
        }
    );
    assert_eq!(points_of(pool, user).await, 7_000);
    pay(pool, &order, 2).await.unwrap();
    assert_eq!(points_of(pool, user).await, 4_000);
    assert_eq!(status_of(pool, &order).await, OrderStatus::Completed);

    // Paying a completed order again (any attempt) charges nothing and leaves only the refusal.
    let e = points::charge(pool, &charge_input(&order, 3))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Completed));
    assert_eq!(
        step_state(pool, &order, "charge_points", 3)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    assert_eq!(points_of(pool, user).await, 4_000);

    // A charge that does not match the order is refused and changes nothing.
    let pending = place(pool, "o-mismatch", user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let mut wrong = charge_input(&pending, 1);
    wrong.amount = 1;
    let e = points::charge(pool, &wrong).await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::INVALID_REQUEST);
    assert_eq!(
        step_state(pool, &pending, "charge_points", 1)
            .await
            .as_deref(),
        Some("REFUSED")
    );
    let missing = StepKey {
        order_id: "o-missing".into(),
        attempt: 1,
    };
    let e = points::charge(
        pool,
        &ChargePointsInput {
            key: missing,
            user_id: user,
            amount: 1,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(business(e).code(), OrderError::ORDER_NOT_FOUND);
    close(pool, &pending, OrderStatus::Expired).await.unwrap();

    // A fully discounted order is charged zero: no ledger row, but still paid exactly once.
    let free = db::create_coupon(
        pool,
        user,
        &Discount::Percent {
            percent: 100,
            max_amount: None,
        },
        None,
        in_days(1),
    )
    .await
    .unwrap();
    let order = place(pool, "o-free", user, &[(s.cheap, 1)], Some(free))
        .await
        .unwrap();
    assert_eq!(order.total, 0);
    pay(pool, &order, 1).await.unwrap();
    assert_eq!(points_of(pool, user).await, 4_000);

    t.finish().await;
}

// ---------------------------------------------------------------- redeem / release

#[tokio::test]
async fn redeem_and_release_are_idempotent_and_release_fences() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let c1 = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 500 },
        None,
        in_days(7),
    )
    .await
    .unwrap();
    let c2 = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 500 },
        None,
        in_days(7),
    )
    .await
    .unwrap();
    let order = place(pool, "o-coupon", s.user, &[(s.cheap, 2)], Some(c1))
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();

    coupons::redeem(pool, &redeem_input(&order, 1))
        .await
        .unwrap();
    coupons::redeem(pool, &redeem_input(&order, 1))
        .await
        .unwrap();
    let c = coupons::get(pool, c1).await.unwrap().unwrap();
    assert_eq!(c.status, CouponStatus::Used);
    assert_eq!(c.order_id.as_deref(), Some("o-coupon"));
    assert!(c.used_at.is_some());
    assert_eq!(count(pool, "SELECT count(*) FROM coupon_ledger").await, 1);

    coupons::release(pool, &key(&order, 1)).await.unwrap();
    coupons::release(pool, &key(&order, 1)).await.unwrap();
    let c = coupons::get(pool, c1).await.unwrap().unwrap();
    assert_eq!(
        (c.status, c.order_id, c.used_at),
        (CouponStatus::Available, None, None)
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM coupon_ledger WHERE kind = 'RELEASE'"
        )
        .await,
        1
    );
    let e = coupons::redeem(pool, &redeem_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(
        coupons::get(pool, c1).await.unwrap().unwrap().status,
        CouponStatus::Available
    );
    unwind(pool, &order, 1).await;

    // A release that runs first fences the redeem out.
    let order = place(pool, "o-coupon-2", s.user, &[(s.cheap, 2)], Some(c2))
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    coupons::release(pool, &key(&order, 1)).await.unwrap();
    assert_eq!(
        step_state(pool, &order, "redeem_coupon", 1)
            .await
            .as_deref(),
        Some("FENCED")
    );
    let e = coupons::redeem(pool, &redeem_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(
        coupons::get(pool, c2).await.unwrap().unwrap().status,
        CouponStatus::Available
    );
    unwind(pool, &order, 1).await;

    let listed = coupons::list_for_user(pool, s.user).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![c1, c2]
    );
    t.finish().await;
}

#[tokio::test]
async fn redeem_refusals_name_the_reason() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let other = db::create_user(pool, "Choi", 10_000).await.unwrap();
    let mine = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 100 },
        None,
        in_days(7),
    )
    .await
    .unwrap();
    let expiring = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 100 },
        None,
        in_days(7),
    )
    .await
    .unwrap();
    let theirs = db::create_coupon(
        pool,
        other,
        &Discount::Fixed { amount: 100 },
        None,
        in_days(7),
    )
    .await
    .unwrap();

    // The first order completes with `mine`.
    let first = place(pool, "o-first", s.user, &[(s.cheap, 1)], Some(mine))
        .await
        .unwrap();
    let second = place(pool, "o-second", s.user, &[(s.cheap, 1)], Some(mine))
        .await
        .unwrap();
    pay(pool, &first, 1).await.unwrap();
    let third = place(pool, "o-third", s.user, &[(s.cheap, 1)], Some(expiring))
        .await
        .unwrap();
    // It expires after placement.
    sqlx::query("UPDATE coupons SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expiring)
        .execute(pool)
        .await
        .unwrap();

    // Each refusal under a key of its own: a refused key answers its first refusal again.
    let attempt = |order: &Order, n: u32, coupon_id: i64| {
        let input = RedeemCouponInput {
            key: key(order, n),
            user_id: order.user_id,
            coupon_id,
        };
        async move {
            match business(coupons::redeem(pool, &input).await.unwrap_err()) {
                OrderError::CouponInvalid { reason } => reason,
                other => panic!("expected COUPON_INVALID, got {other:?}"),
            }
        }
    };
    points::charge(pool, &charge_input(&second, 1))
        .await
        .unwrap();
    assert_eq!(
        attempt(&second, 1, mine).await,
        CouponInvalidReason::AlreadyUsed
    );
    assert_eq!(
        attempt(&second, 1, theirs).await,
        CouponInvalidReason::AlreadyUsed,
        "a re-run of a refused step answers the refusal it recorded"
    );
    assert_eq!(
        attempt(&second, 2, theirs).await,
        CouponInvalidReason::NotOwned
    );
    assert_eq!(
        attempt(&second, 3, 4242).await,
        CouponInvalidReason::NotFound
    );
    points::charge(pool, &charge_input(&third, 1))
        .await
        .unwrap();
    assert_eq!(
        attempt(&third, 1, expiring).await,
        CouponInvalidReason::Expired
    );

    // Refusals leave no ledger row, only their record; the used coupon still belongs to
    // `first`.
    for o in [&second, &third] {
        assert_eq!(
            step_state(pool, o, "redeem_coupon", 1).await.as_deref(),
            Some("REFUSED")
        );
    }
    assert_eq!(count(pool, "SELECT count(*) FROM coupon_ledger").await, 1);
    let c = coupons::get(pool, mine).await.unwrap().unwrap();
    assert_eq!(c.order_id.as_deref(), Some("o-first"));
    assert_eq!(
        coupons::get(pool, theirs).await.unwrap().unwrap().status,
        CouponStatus::Available
    );

    unwind(pool, &second, 1).await;
    unwind(pool, &third, 1).await;
    t.finish().await;
}

// ---------------------------------------------------------------- deduct / restore

#[tokio::test]
async fn deduct_and_restore_are_idempotent_and_restore_fences() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-stock", s.user, &[(s.dear, 2), (s.cheap, 4)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();

    stock::deduct(pool, &deduct_input(&order, 1)).await.unwrap();
    stock::deduct(pool, &deduct_input(&order, 1)).await.unwrap();
    assert_eq!(
        (stock_of(pool, s.cheap).await, stock_of(pool, s.dear).await),
        (6, 1)
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM stock_ledger WHERE kind = 'DEDUCT'"
        )
        .await,
        2
    );

    stock::restore(pool, &key(&order, 1)).await.unwrap();
    stock::restore(pool, &key(&order, 1)).await.unwrap();
    assert_eq!(
        (stock_of(pool, s.cheap).await, stock_of(pool, s.dear).await),
        (10, 3)
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM stock_ledger WHERE kind = 'RESTORE'"
        )
        .await,
        2
    );
    let e = stock::deduct(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(
        (stock_of(pool, s.cheap).await, stock_of(pool, s.dear).await),
        (10, 3)
    );
    unwind(pool, &order, 1).await;

    // A restore that runs first fences the deduction out.
    let order = place(pool, "o-stock-2", s.user, &[(s.dear, 3)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    stock::restore(pool, &key(&order, 1)).await.unwrap();
    let e = stock::deduct(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    assert_eq!(stock_of(pool, s.dear).await, 3);
    assert_eq!(
        step_state(pool, &order, "deduct_stock", 1).await.as_deref(),
        Some("FENCED")
    );
    unwind(pool, &order, 1).await;
    t.finish().await;
}

#[tokio::test]
async fn deduct_and_complete_is_one_step_that_completes_once() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-last", s.user, &[(s.dear, 2), (s.cheap, 1)], None)
        .await
        .unwrap();

    // Not PAID yet: refused, nothing deducted, only the refusal recorded.
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Pending));
    assert_eq!(stock_of(pool, s.dear).await, 3);
    assert_eq!(
        step_state(pool, &order, "deduct_stock", 1).await.as_deref(),
        Some("REFUSED")
    );

    points::charge(pool, &charge_input(&order, 2))
        .await
        .unwrap();
    // The refused attempt stays refused, whatever has changed since.
    let e = stock::deduct_and_complete(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Pending));
    let first = stock::deduct_and_complete(pool, &deduct_input(&order, 2))
        .await
        .unwrap();
    let again = stock::deduct_and_complete(pool, &deduct_input(&order, 2))
        .await
        .unwrap();
    assert_eq!(first, again, "a repeat answers the first stamp");
    assert_eq!(status_of(pool, &order).await, OrderStatus::Completed);
    let completed_at: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT completed_at FROM orders WHERE id = $1")
            .bind(&order.id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(completed_at, Some(first.at));
    assert_eq!(
        (stock_of(pool, s.dear).await, stock_of(pool, s.cheap).await),
        (1, 9)
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM stock_ledger WHERE kind = 'DEDUCT'"
        )
        .await,
        2
    );

    // Refused for want of stock: the order stays PAID, nothing is deducted, the refusal is
    // recorded, and the compensation finds nothing to undo.
    let short = place(pool, "o-last-short", s.user, &[(s.dear, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&short, 1))
        .await
        .unwrap();
    let big = DeductStockInput {
        key: key(&short, 1),
        lines: lines(&[(s.dear, 3)]),
    };
    let e = stock::deduct_and_complete(pool, &big).await.unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientStock {
            product_id: s.dear,
            available: 1
        }
    );
    assert_eq!(status_of(pool, &short).await, OrderStatus::Paid);
    unwind(pool, &short, 1).await;
    assert_eq!(
        step_state(pool, &short, "deduct_stock", 1).await.as_deref(),
        Some("REFUSED")
    );
    // The charge run again after the unwinding (its first answer lost with a worker) does not
    // commit, and tells the refusal that undid it rather than a refusal of its own.
    let again = points::charge(pool, &charge_input(&short, 1))
        .await
        .unwrap_err();
    assert_eq!(
        business(again),
        OrderError::InsufficientStock {
            product_id: s.dear,
            available: 1
        }
    );
    assert_eq!(
        step_state(pool, &short, "charge_points", 1)
            .await
            .as_deref(),
        Some("COMPENSATED")
    );
    t.finish().await;
}

#[tokio::test]
async fn a_paid_order_never_expires() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-paid", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    // Expiring it would keep the points: refused, and the order stays PAID.
    let e = close(pool, &order, OrderStatus::Expired).await.unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Paid));
    assert_eq!(status_of(pool, &order).await, OrderStatus::Paid);
    // Compensated and canceled, as the workflow does.
    unwind(pool, &order, 1).await;
    assert_eq!(status_of(pool, &order).await, OrderStatus::Canceled);
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
    pay(pool, &rival, 1).await.unwrap();

    points::charge(pool, &charge_input(&order, 1))
        .await
        .unwrap();
    let e = stock::deduct(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientStock {
            product_id: s.dear,
            available: 2
        }
    );
    // Nothing of the order was deducted, not even the line that had enough.
    assert_eq!(
        (stock_of(pool, s.cheap).await, stock_of(pool, s.dear).await),
        (10, 2)
    );
    assert_eq!(
        step_state(pool, &order, "deduct_stock", 1).await.as_deref(),
        Some("REFUSED")
    );

    let e = stock::deduct(
        pool,
        &DeductStockInput {
            key: key(&order, 2),
            lines: lines(&[(s.cheap, 1), (31337, 1)]),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::ProductNotFound { product_id: 31337 }
    );
    assert_eq!(
        step_state(pool, &order, "deduct_stock", 2).await.as_deref(),
        Some("REFUSED")
    );
    assert_eq!(stock_of(pool, s.cheap).await, 10);
    // A re-run of a refused attempt answers its own refusal, not what it would find now.
    let e = stock::deduct(pool, &deduct_input(&order, 1))
        .await
        .unwrap_err();
    assert_eq!(
        business(e),
        OrderError::InsufficientStock {
            product_id: s.dear,
            available: 2
        }
    );

    unwind(pool, &order, 1).await;
    unwind(pool, &order, 2).await;
    t.finish().await;
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

    let mut placed = Vec::new();
    for i in 0..20 {
        // Half name the products in the other order: locking by id keeps them deadlock-free.
        let items = if i % 2 == 0 {
            [(scarce, 1), (plenty, 1)]
        } else {
            [(plenty, 1), (scarce, 1)]
        };
        let order = place(pool, &format!("o-race-{i}"), user, &items, None)
            .await
            .unwrap();
        points::charge(pool, &charge_input(&order, 1))
            .await
            .unwrap();
        placed.push(order);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(placed.len()));
    let tasks: Vec<_> = placed
        .iter()
        .cloned()
        .map(|order| {
            let pool = pool.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let result = stock::deduct(&pool, &deduct_input(&order, 1)).await;
                (order, result)
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut lost = Vec::new();
    for task in tasks {
        let (order, result) = task.await.unwrap();
        match result {
            Ok(()) => won.push(order),
            Err(e) => {
                assert_eq!(
                    business(e),
                    OrderError::InsufficientStock {
                        product_id: scarce,
                        available: 0
                    }
                );
                lost.push(order);
            }
        }
    }
    assert_eq!(won.len(), 5);
    assert_eq!(stock_of(pool, scarce).await, 0);
    assert_eq!(stock_of(pool, plenty).await, 995);
    for order in &won {
        orders::complete(pool, &order.id).await.unwrap();
    }
    for order in &lost {
        unwind(pool, order, 1).await;
    }
    assert_eq!(stock_of(pool, plenty).await, 995);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_steps_and_compensations_never_leave_an_effect() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let n = 12;
    let mut placed = Vec::new();
    for i in 0..n {
        let coupon = db::create_coupon(
            pool,
            s.user,
            &Discount::Fixed { amount: 10 },
            None,
            in_days(1),
        )
        .await
        .unwrap();
        placed.push(
            place(
                pool,
                &format!("o-rc-{i}"),
                s.user,
                &[(s.cheap, 1)],
                Some(coupon),
            )
            .await
            .unwrap(),
        );
    }
    // Each forward step races its own compensation; whoever wins, nothing may remain once the
    // compensation has run (as the workflow always runs it after a failure or cancellation).
    let mut tasks = Vec::new();
    for order in &placed {
        for forward in [true, false] {
            let pool = pool.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                if forward {
                    let charged = points::charge(&pool, &charge_input(&order, 1)).await;
                    let redeemed = coupons::redeem(&pool, &redeem_input(&order, 1)).await;
                    let deducted = stock::deduct(&pool, &deduct_input(&order, 1)).await;
                    for r in [charged.map(|_| ()), redeemed, deducted] {
                        if let Err(e) = r {
                            assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
                        }
                    }
                } else {
                    let k = key(&order, 1);
                    stock::restore(&pool, &k).await.unwrap();
                    coupons::release(&pool, &k).await.unwrap();
                    points::refund(&pool, &k).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    for order in &placed {
        for step in ["charge_points", "redeem_coupon", "deduct_stock"] {
            let state = step_state(pool, order, step, 1).await.unwrap();
            assert!(
                state == "COMPENSATED" || state == "FENCED",
                "{step}: {state}"
            );
        }
        // The order is CANCELED whether or not the charge got in first.
        close(pool, order, OrderStatus::Canceled).await.unwrap();
    }
    assert_eq!(points_of(pool, s.user).await, 100_000);
    assert_eq!(stock_of(pool, s.cheap).await, 10);
    assert_eq!(
        count(pool, "SELECT count(*) FROM coupons WHERE status = 'USED'").await,
        0
    );
    t.finish().await;
}

// ---------------------------------------------------------------- the end of an order

#[tokio::test]
async fn complete_close_and_notify() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let coupon = db::create_coupon(
        pool,
        s.user,
        &Discount::Percent {
            percent: 10,
            max_amount: None,
        },
        None,
        in_days(3),
    )
    .await
    .unwrap();
    let order = place(
        pool,
        "o-done",
        s.user,
        &[(s.dear, 1), (s.cheap, 2)],
        Some(coupon),
    )
    .await
    .unwrap();
    assert_eq!(
        (order.subtotal, order.discount, order.total),
        (4_500, 450, 4_050)
    );

    // Completing needs PAID.
    let e = orders::complete(pool, &order.id).await.unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Pending));
    let e = orders::complete(pool, "o-ghost").await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::ORDER_NOT_FOUND);

    pay(pool, &order, 1).await.unwrap();
    let done = orders::complete(pool, &order.id).await.unwrap();
    assert_eq!(orders::complete(pool, &order.id).await.unwrap(), done);
    let loaded = orders::load(pool, &order.id).await.unwrap().unwrap();
    assert_eq!(loaded.status, OrderStatus::Completed);
    assert_eq!(loaded.completed_at, Some(done.at));
    assert_eq!(points_of(pool, s.user).await, 100_000 - 4_050);

    // A completed order cannot be closed, charged or paid again.
    for status in [OrderStatus::Canceled, OrderStatus::Expired] {
        let e = close(pool, &order, status).await.unwrap_err();
        assert_eq!(business(e), OrderError::not_payable(OrderStatus::Completed));
    }
    let e = points::charge(pool, &charge_input(&order, 2))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Completed));

    // Until the platform confirms, the order is listed as not notified.
    let pending = invariants::check_notified(pool).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].contains("o-done"), "{pending:?}");
    let first = orders::mark_notified(pool, &order.id).await.unwrap();
    let again = orders::mark_notified(pool, &order.id).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(
        orders::load(pool, &order.id)
            .await
            .unwrap()
            .unwrap()
            .platform_notified_at,
        Some(first.at)
    );
    assert!(invariants::check_notified(pool).await.unwrap().is_empty());
    assert_eq!(
        business(orders::mark_notified(pool, "o-ghost").await.unwrap_err()).code(),
        OrderError::ORDER_NOT_FOUND
    );

    // EXPIRED keeps canceled_at NULL; a repeat answers the same stamp; no other close after.
    let late = place(pool, "o-late", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let expired = close(pool, &late, OrderStatus::Expired).await.unwrap();
    assert_eq!(
        close(pool, &late, OrderStatus::Expired).await.unwrap(),
        expired
    );
    let loaded = orders::load(pool, &late.id).await.unwrap().unwrap();
    assert_eq!(loaded.status, OrderStatus::Expired);
    assert_eq!(loaded.canceled_at, None);
    assert_eq!(
        loaded.cancel_reason.as_deref(),
        Some("test closed it as EXPIRED")
    );
    let e = close(pool, &late, OrderStatus::Canceled).await.unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Expired));
    let e = points::charge(pool, &charge_input(&late, 1))
        .await
        .unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Expired));

    // CANCELED sets canceled_at, once.
    let gone = place(pool, "o-gone", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    let canceled = close(pool, &gone, OrderStatus::Canceled).await.unwrap();
    assert_eq!(
        close(pool, &gone, OrderStatus::Canceled).await.unwrap(),
        canceled
    );
    let loaded = orders::load(pool, &gone.id).await.unwrap().unwrap();
    assert_eq!(loaded.canceled_at, Some(canceled.at));
    let e = close(pool, &gone, OrderStatus::Expired).await.unwrap_err();
    assert_eq!(business(e), OrderError::not_payable(OrderStatus::Canceled));
    let e = close(pool, &gone, OrderStatus::Paid).await.unwrap_err();
    assert_eq!(business(e).code(), OrderError::INVALID_REQUEST);
    let e = close(
        pool,
        &Order {
            id: "o-ghost".into(),
            ..gone.clone()
        },
        OrderStatus::Canceled,
    )
    .await
    .unwrap_err();
    assert_eq!(business(e).code(), OrderError::ORDER_NOT_FOUND);

    // A failed payment after the charge: compensate and cancel from PAID.
    let failed = place(pool, "o-failed", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    points::charge(pool, &charge_input(&failed, 1))
        .await
        .unwrap();
    unwind(pool, &failed, 1).await;
    let loaded = orders::load(pool, &failed.id).await.unwrap().unwrap();
    assert_eq!(loaded.status, OrderStatus::Canceled);
    assert!(loaded.paid_at.is_some() && loaded.canceled_at.is_some());
    assert_eq!(points_of(pool, s.user).await, 100_000 - 4_050);

    t.finish().await;
}

// ---------------------------------------------------------------- helpers and seed

#[tokio::test]
async fn top_up_seed_and_admin_helpers() {
    let t = TestDb::new().await;
    let pool = &t.pool;

    let (a, b) = tokio::join!(db::seed_demo(pool), db::seed_demo(pool));
    assert!(a.unwrap() ^ b.unwrap(), "exactly one seeder seeds");
    assert!(!db::seed_demo(pool).await.unwrap());
    assert_eq!(count(pool, "SELECT count(*) FROM users").await, 3);
    assert_eq!(count(pool, "SELECT count(*) FROM products").await, 4);
    assert_eq!(
        count(
            pool,
            "SELECT count(DISTINCT discount->>'type') FROM coupons"
        )
        .await,
        2
    );
    assert_eq!(db::list_products(pool).await.unwrap().len(), 4);
    let alice = db::get_user(pool, 1).await.unwrap().unwrap();
    assert_eq!(alice.points, 100_000);
    let alices = coupons::list_for_user(pool, 1).await.unwrap();
    assert_eq!(alices.len(), 2);
    assert!(alices.iter().all(|c| c.status == CouponStatus::Available));

    // A demo order with a coupon goes through.
    let order = place(pool, "o-demo", 1, &[(2, 1), (3, 2)], Some(alices[0].id))
        .await
        .unwrap();
    assert_eq!((order.subtotal, order.discount), (44_800, 5_000));
    pay(pool, &order, 1).await.unwrap();
    orders::mark_notified(pool, &order.id).await.unwrap();

    // Top-ups: the same key for the same user takes effect once; another user may reuse it.
    let user = db::create_user(pool, "Top", 0).await.unwrap();
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
    assert_eq!(db::top_up(pool, 2, 1, Some("key-1")).await.unwrap(), 50_001);
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
        business(db::top_up(pool, 999, 5, None).await.unwrap_err()).code(),
        OrderError::INVALID_REQUEST
    );

    // Admin-side validation.
    assert!(db::create_user(pool, "", 1).await.is_err());
    assert!(db::create_user(pool, "Neg", -1).await.is_err());
    assert!(db::create_product(pool, "Free", 0, 1).await.is_err());
    assert!(db::create_product(pool, "Neg", 1, -1).await.is_err());
    assert!(
        db::create_coupon(pool, 999, &Discount::Fixed { amount: 1 }, None, in_days(1))
            .await
            .is_err()
    );
    assert!(
        db::create_coupon(
            pool,
            user,
            &Discount::Percent {
                percent: 0,
                max_amount: None
            },
            None,
            in_days(1)
        )
        .await
        .is_err()
    );
    let empty = db::create_product(pool, "Sold out", 10, 0).await.unwrap();
    assert_eq!(db::restock(pool, empty, 4).await.unwrap(), 4);
    assert_eq!(
        business(db::restock(pool, 999, 4).await.unwrap_err()),
        OrderError::ProductNotFound { product_id: 999 }
    );
    t.finish().await;
}

// ---------------------------------------------------------------- the invariant check itself

#[tokio::test]
async fn invariants_catch_corruption() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let coupon = db::create_coupon(
        pool,
        s.user,
        &Discount::Fixed { amount: 100 },
        None,
        in_days(1),
    )
    .await
    .unwrap();
    let done = place(pool, "o-good", s.user, &[(s.cheap, 2)], Some(coupon))
        .await
        .unwrap();
    pay(pool, &done, 1).await.unwrap();
    let pending = place(pool, "o-pending", s.user, &[(s.dear, 1)], None)
        .await
        .unwrap();
    assert!(invariants::check(pool).await.unwrap().is_ok());

    let exec = |sql: &'static str| async move {
        sqlx::query(sql).execute(pool).await.unwrap();
    };
    let expect = |rule: &'static str, names: String| async move {
        let report = invariants::check(pool).await.unwrap();
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.starts_with(&format!("[{rule}]")) && v.contains(&names)),
            "expected a [{rule}] violation naming {names:?}, got {:#?}",
            report.violations
        );
    };

    // A balance that no ledger explains.
    exec("UPDATE users SET points = points + 1").await;
    expect("points_match_ledger", format!("user {}", s.user)).await;
    exec("UPDATE users SET points = points - 1").await;

    exec("UPDATE products SET stock = stock - 1 WHERE name = 'Notebook'").await;
    expect("stock_matches_ledger", format!("product {}", s.dear)).await;
    exec("UPDATE products SET stock = stock + 1 WHERE name = 'Notebook'").await;

    // A refund that was lost: the completed order is charged twice by two attempts.
    exec(
        "INSERT INTO saga_steps (order_id, step, attempt, state) \
         VALUES ('o-good', 'charge_points', 9, 'DONE')",
    )
    .await;
    sqlx::query(
        "INSERT INTO point_ledger (user_id, order_id, attempt, kind, amount) \
         VALUES ($1, 'o-good', 9, 'CHARGE', $2)",
    )
    .bind(s.user)
    .bind(done.total)
    .execute(pool)
    .await
    .unwrap();
    exec("UPDATE users SET points = points - 1900").await;
    expect("completed_charged_once", "order o-good".into()).await;
    expect("completed_steps_done", "order o-good".into()).await;
    exec("DELETE FROM point_ledger WHERE attempt = 9").await;
    exec("DELETE FROM saga_steps WHERE attempt = 9").await;
    exec("UPDATE users SET points = points + 1900").await;

    // An order marked COMPLETED that was never paid.
    exec(
        "UPDATE orders SET status = 'COMPLETED', paid_at = now(), completed_at = now() \
         WHERE id = 'o-pending'",
    )
    .await;
    expect("completed_charged_once", "order o-pending".into()).await;
    expect("completed_stock_deducted_once", "order o-pending".into()).await;
    // And the platform was never told about it.
    assert!(
        invariants::check_notified(pool)
            .await
            .unwrap()
            .iter()
            .any(|v| v.contains("o-pending"))
    );
    exec(
        "UPDATE orders SET status = 'PENDING', paid_at = NULL, completed_at = NULL \
         WHERE id = 'o-pending'",
    )
    .await;

    // A coupon used by an order that does not hold it.
    exec(
        "UPDATE coupons SET status = 'AVAILABLE', used_at = NULL, order_id = NULL \
         WHERE order_id = 'o-good'",
    )
    .await;
    expect("completed_coupon_used", "order o-good".into()).await;
    expect("coupon_matches_ledger", format!("coupon {coupon}")).await;
    sqlx::query(
        "UPDATE coupons SET status = 'USED', used_at = now(), order_id = 'o-pending' WHERE id = $1",
    )
    .bind(coupon)
    .execute(pool)
    .await
    .unwrap();
    expect("coupon_used_by_live_order", format!("coupon {coupon}")).await;
    exec("UPDATE coupons SET order_id = 'o-good'").await;

    // A canceled order whose deduction was never restored.
    exec("UPDATE orders SET status = 'CANCELED', canceled_at = now(), closed_at = now() WHERE id = 'o-good'").await;
    expect("closed_stock_net_zero", "order o-good".into()).await;
    expect("closed_points_net_zero", "order o-good".into()).await;
    expect("step_done_on_closed_order", "order o-good".into()).await;
    exec("UPDATE orders SET status = 'COMPLETED', canceled_at = NULL, closed_at = NULL WHERE id = 'o-good'").await;

    // A step compensated on paper but not in the ledger.
    exec("UPDATE saga_steps SET state = 'COMPENSATED' WHERE order_id = 'o-good' AND step = 'deduct_stock'").await;
    expect("ledger_matches_steps", "order o-good".into()).await;
    exec("UPDATE saga_steps SET state = 'DONE' WHERE order_id = 'o-good'").await;

    // Order arithmetic.
    exec("UPDATE order_lines SET unit_price = 999, line_total = 1998 WHERE order_id = 'o-good'")
        .await;
    expect("order_arithmetic", "order o-good".into()).await;
    exec("UPDATE order_lines SET unit_price = 1000, line_total = 2000 WHERE order_id = 'o-good'")
        .await;

    let report = invariants::check(pool).await.unwrap();
    assert!(report.is_ok(), "{:#?}", report.violations);
    assert_eq!(report.checked["orders"], 2);
    orders::mark_notified(pool, &done.id).await.unwrap();
    close(pool, &pending, OrderStatus::Expired).await.unwrap();
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

// ---------------------------------------------------------------- the data platform

/// A one-shot-per-connection HTTP server answering each request with the next status of
/// `statuses`; every request it saw (head and body) comes back on the channel.
async fn fake_platform(
    statuses: Vec<u16>,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in statuses {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head, body) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_owned(), body.to_owned());
                    }
                }
                assert!(n > 0, "client closed early");
            };
            tx.send((head, body)).unwrap();
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
            sock.write_all(answer.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
        }
    });
    (url, rx)
}

#[tokio::test]
async fn platform_send_posts_with_idempotency_key() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let order = place(pool, "o-notify", s.user, &[(s.cheap, 1)], None)
        .await
        .unwrap();
    pay(pool, &order, 1).await.unwrap();
    let order = orders::load(pool, &order.id).await.unwrap().unwrap();

    let (url, mut seen) = fake_platform(vec![503, 200, 201]).await;
    let client = activities::PlatformClient::new(url);
    match client.send(&order).await {
        Err(StepError::Platform(msg)) => assert!(msg.contains("503"), "{msg}"),
        other => panic!("a 503 must be a retryable platform error, got {other:?}"),
    }
    client.send(&order).await.unwrap();
    client.send(&order).await.unwrap();
    for _ in 0..3 {
        let (head, body) = seen.recv().await.unwrap();
        assert!(head.starts_with("POST /events "), "{head}");
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("idempotency-key: o-notify")),
            "{head}"
        );
        let sent: Order = serde_json::from_str(&body).unwrap();
        assert_eq!(sent, order);
    }
    orders::mark_notified(pool, &order.id).await.unwrap();

    // Nobody listening: a retryable platform error too.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/events", closed.local_addr().unwrap());
    drop(closed);
    assert!(matches!(
        activities::PlatformClient::new(dead).send(&order).await,
        Err(StepError::Platform(_))
    ));
    t.finish().await;
}
