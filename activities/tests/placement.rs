//! `check_placement` against a real PostgreSQL (a fresh database per test, on the server of
//! `DATABASE_URL`, like `steps.rs`): every error of the three placement checks it merges, in
//! their order, its result, and that it answers exactly what the three answer one by one.
use activities::placement::{self, CheckPlacementInput, PlacementCheck};
use activities::{StepError, coupons, db, orders, points, stock};
use chrono::{Duration, SubsecRound, Utc};
use domain::saga::{
    ChargePointsInput, CheckPointsInput, DeductStockInput, RedeemCouponInput, StepKey,
    ValidateCouponInput,
};
use domain::{CouponInvalidReason, Discount, Order, OrderError, OrderStatus, Pricing, Shipping};
use sqlx::PgPool;

mod common;
use common::{TestDb, in_days, lines};

// ---------------------------------------------------------------- harness

fn input(user_id: i64, items: &[(i64, i64)], coupon_id: Option<i64>) -> CheckPlacementInput {
    CheckPlacementInput {
        user_id,
        lines: lines(items),
        coupon_id,
    }
}

async fn check(pool: &PgPool, input: &CheckPlacementInput) -> Result<PlacementCheck, OrderError> {
    placement::check_placement(pool, input)
        .await
        .map_err(|e| match e {
            StepError::Business(b) => b,
            other => panic!("expected a business error, got {other:?}"),
        })
}

/// What the workflow's placement did before `placement-one-check`: the three activities, one
/// after another, each stopping the placement on its error.
async fn three_checks(
    pool: &PgPool,
    input: &CheckPlacementInput,
) -> Result<PlacementCheck, StepError> {
    let items = placement::validate_lines(pool, &input.lines).await?;
    let subtotal = Pricing::subtotal(&items);
    let discount = match input.coupon_id {
        None => 0,
        Some(coupon_id) => {
            placement::validate_coupon(
                pool,
                &ValidateCouponInput {
                    user_id: input.user_id,
                    coupon_id,
                    subtotal,
                },
            )
            .await?
        }
    };
    placement::check_points(
        pool,
        &CheckPointsInput {
            user_id: input.user_id,
            total: subtotal - discount,
        },
    )
    .await?;
    Ok(PlacementCheck { items, discount })
}

async fn scalar(pool: &PgPool, sql: &str, id: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Users, products and coupons for every outcome of the checks.
struct Shop {
    /// 10 000 points.
    user: i64,
    /// 100 points.
    poor: i64,
    /// 1 000 × 10.
    pencil: i64,
    /// 2 500 × 3.
    notebook: i64,
    /// Priced so that three of them overflow a line total.
    jewel: i64,
    /// 1 500 off from 5 000.
    fixed: i64,
    /// 10 %, at most 300.
    percent: i64,
    /// The poor user's.
    theirs: i64,
    expired: i64,
    /// Used by a completed order.
    used: i64,
}

async fn shop(pool: &PgPool) -> Shop {
    let user = db::create_user(pool, "Kim", 10_000).await.unwrap();
    let poor = db::create_user(pool, "Lee", 100).await.unwrap();
    let coupon = |owner, discount, min, expires| async move {
        db::create_coupon(pool, owner, &discount, min, expires)
            .await
            .unwrap()
    };
    let fixed_1 = Discount::Fixed { amount: 1 };
    let shop = Shop {
        user,
        poor,
        pencil: db::create_product(pool, "Pencil", 1_000, 10).await.unwrap(),
        notebook: db::create_product(pool, "Notebook", 2_500, 3)
            .await
            .unwrap(),
        jewel: db::create_product(pool, "Jewel", i64::MAX / 2, 5)
            .await
            .unwrap(),
        fixed: coupon(
            user,
            Discount::Fixed { amount: 1_500 },
            Some(5_000),
            in_days(30),
        )
        .await,
        percent: coupon(
            user,
            Discount::Percent {
                percent: 10,
                max_amount: Some(300),
            },
            None,
            in_days(30),
        )
        .await,
        theirs: coupon(poor, fixed_1, None, in_days(30)).await,
        expired: coupon(user, fixed_1, None, in_days(-1)).await,
        used: coupon(user, fixed_1, None, in_days(30)).await,
    };
    use_coupon(pool, &shop).await;
    shop
}

/// Uses `shop.used` the way a completed order does, step by step.
async fn use_coupon(pool: &PgPool, s: &Shop) {
    let now = Utc::now().trunc_subsecs(6);
    let order = Order {
        id: "o-used".into(),
        user_id: s.user,
        status: OrderStatus::Pending,
        items: placement::validate_lines(pool, &lines(&[(s.pencil, 2)]))
            .await
            .unwrap(),
        subtotal: 2_000,
        discount: 1,
        total: 1_999,
        coupon_id: Some(s.used),
        shipping: Shipping {
            recipient: "Kim Minji".into(),
            address: "1 Sejong-daero, Seoul".into(),
            phone: "010-1234-5678".into(),
        },
        created_at: now,
        expires_at: now + Duration::minutes(15),
        paid_at: None,
        completed_at: None,
        canceled_at: None,
        cancel_reason: None,
        platform_notified_at: None,
    };
    orders::record(pool, &order).await.unwrap();
    let key = StepKey {
        order_id: order.id.clone(),
        attempt: 1,
    };
    points::charge(
        pool,
        &ChargePointsInput {
            key: key.clone(),
            user_id: s.user,
            amount: order.total,
        },
    )
    .await
    .unwrap();
    coupons::redeem(
        pool,
        &RedeemCouponInput {
            key: key.clone(),
            user_id: s.user,
            coupon_id: s.used,
        },
    )
    .await
    .unwrap();
    stock::deduct(
        pool,
        &DeductStockInput {
            key,
            lines: lines(&[(s.pencil, 2)]),
        },
    )
    .await
    .unwrap();
    orders::complete(pool, &order.id).await.unwrap();
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn check_placement_prices_the_lines_and_the_discount() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    // The completed order above took 1 999 points and 2 pencils.
    let points = 10_000 - 1_999;

    // Lines in request order, priced now; FIXED over its minimum.
    let got = check(
        pool,
        &input(s.user, &[(s.notebook, 2), (s.pencil, 3)], Some(s.fixed)),
    )
    .await
    .unwrap();
    assert_eq!(got.discount, 1_500);
    assert_eq!(got.items.len(), 2);
    let l = &got.items[0];
    assert_eq!(
        (
            l.product_id,
            l.name.as_str(),
            l.unit_price,
            l.quantity,
            l.line_total
        ),
        (s.notebook, "Notebook", 2_500, 2, 5_000)
    );
    let l = &got.items[1];
    assert_eq!(
        (l.product_id, l.unit_price, l.quantity, l.line_total),
        (s.pencil, 1_000, 3, 3_000)
    );

    // PERCENT, under and over its cap; no coupon is no discount.
    let under = check(pool, &input(s.user, &[(s.pencil, 2)], Some(s.percent)))
        .await
        .unwrap();
    assert_eq!(under.discount, 200);
    let capped = check(pool, &input(s.user, &[(s.pencil, 5)], Some(s.percent)))
        .await
        .unwrap();
    assert_eq!(capped.discount, 300);
    let none = check(pool, &input(s.user, &[(s.pencil, 1)], None))
        .await
        .unwrap();
    assert_eq!(none.discount, 0);
    assert_eq!(none.items[0].line_total, 1_000);

    // Exactly the points for the total after the discount is enough; all the stock is too.
    check(pool, &input(s.poor, &[(s.pencil, 1)], Some(s.theirs)))
        .await
        .expect_err("1 000 - 1 > 100 points");
    let exact = db::create_product(pool, "Eraser", 101, 1).await.unwrap();
    let got = check(pool, &input(s.poor, &[(exact, 1)], Some(s.theirs)))
        .await
        .unwrap();
    assert_eq!(
        (Pricing::subtotal(&got.items), got.discount),
        (101, 1),
        "a total of exactly 100 points passes"
    );
    check(pool, &input(s.user, &[(s.notebook, 3)], None))
        .await
        .unwrap();

    // Read-only: nothing reserved, nothing used.
    let points_sql = "SELECT points FROM users WHERE id = $1";
    let stock_sql = "SELECT stock FROM products WHERE id = $1";
    assert_eq!(scalar(pool, points_sql, s.user).await, points);
    assert_eq!(scalar(pool, points_sql, s.poor).await, 100);
    assert_eq!(scalar(pool, stock_sql, s.notebook).await, 3);
    assert_eq!(scalar(pool, stock_sql, s.pencil).await, 8);
    let (status, _) = coupons::get(pool, s.fixed)
        .await
        .unwrap()
        .map(|c| (c.status, c.order_id))
        .unwrap();
    assert_eq!(status, domain::CouponStatus::Available);
    t.finish().await;
}

#[tokio::test]
async fn check_placement_refuses_with_the_first_failing_check() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let coupon = |reason| OrderError::CouponInvalid { reason };
    let code = |r: Result<PlacementCheck, OrderError>| r.unwrap_err().code();

    // The lines: malformed, then the first missing product in request order, then the first
    // short line, then a total too large, each before the coupon and the points.
    assert_eq!(
        code(check(pool, &input(s.poor, &[], Some(s.expired))).await),
        OrderError::INVALID_REQUEST
    );
    assert_eq!(
        code(check(pool, &input(s.poor, &[(s.pencil, 0)], Some(s.expired))).await),
        OrderError::INVALID_REQUEST
    );
    assert_eq!(
        check(
            pool,
            &input(s.poor, &[(s.notebook, 99), (999, 1), (998, 1)], Some(404))
        )
        .await,
        Err(OrderError::ProductNotFound { product_id: 999 })
    );
    assert_eq!(
        check(
            pool,
            &input(s.poor, &[(s.pencil, 1), (s.notebook, 4)], Some(404))
        )
        .await,
        Err(OrderError::InsufficientStock {
            product_id: s.notebook,
            available: 3
        })
    );
    assert_eq!(
        code(check(pool, &input(s.user, &[(s.jewel, 3)], None)).await),
        OrderError::INVALID_REQUEST,
        "a line total that overflows"
    );
    assert_eq!(
        code(
            check(
                pool,
                &input(s.user, &[(s.jewel, 2), (s.jewel - 1, 1)], None)
            )
            .await
        ),
        OrderError::INVALID_REQUEST,
        "a subtotal that overflows"
    );

    // The coupon, every reason, each before the points (the poor user cannot pay 2 000).
    let two = [(s.pencil, 2)];
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(404))).await,
        Err(coupon(CouponInvalidReason::NotFound))
    );
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(s.fixed))).await,
        Err(coupon(CouponInvalidReason::NotOwned))
    );
    assert_eq!(
        check(pool, &input(s.user, &two, Some(s.used))).await,
        Err(coupon(CouponInvalidReason::AlreadyUsed))
    );
    assert_eq!(
        check(pool, &input(s.user, &two, Some(s.expired))).await,
        Err(coupon(CouponInvalidReason::Expired))
    );
    assert_eq!(
        check(pool, &input(s.user, &[(s.pencil, 4)], Some(s.fixed))).await,
        Err(coupon(CouponInvalidReason::MinOrderAmount)),
        "4 000 is under the 5 000 minimum"
    );

    // The points, for the total after the discount; an unknown user is a bad request.
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(s.theirs))).await,
        Err(OrderError::InsufficientPoints {
            points: 100,
            total: 1_999
        })
    );
    assert_eq!(
        code(check(pool, &input(777, &two, None)).await),
        OrderError::INVALID_REQUEST
    );
    t.finish().await;
}

/// The merged check answers what the three answered one after another, for every outcome:
/// a workflow that moves to it changes nothing its caller can see.
#[tokio::test]
async fn check_placement_answers_what_the_three_checks_answered() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let cases = [
        input(s.user, &[(s.notebook, 2), (s.pencil, 3)], Some(s.fixed)),
        input(s.user, &[(s.pencil, 5)], Some(s.percent)),
        input(s.user, &[(s.pencil, 1)], None),
        input(s.poor, &[], None),
        input(s.poor, &[(s.pencil, -1)], None),
        input(s.poor, &[(s.notebook, 99), (999, 1)], Some(404)),
        input(s.poor, &[(s.notebook, 4)], Some(404)),
        input(s.user, &[(s.jewel, 3)], None),
        input(s.poor, &[(s.pencil, 2)], Some(404)),
        input(s.poor, &[(s.pencil, 2)], Some(s.fixed)),
        input(s.user, &[(s.pencil, 2)], Some(s.used)),
        input(s.user, &[(s.pencil, 2)], Some(s.expired)),
        input(s.user, &[(s.pencil, 4)], Some(s.fixed)),
        input(s.poor, &[(s.pencil, 2)], Some(s.theirs)),
        input(s.poor, &[(s.pencil, 2)], None),
        input(777, &[(s.pencil, 2)], None),
        input(777, &[(s.pencil, 2)], Some(s.fixed)),
    ];
    for case in &cases {
        let merged = placement::check_placement(pool, case).await;
        let three = three_checks(pool, case).await;
        match (merged, three) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{case:?}"),
            (Err(StepError::Business(a)), Err(StepError::Business(b))) => {
                assert_eq!(a, b, "{case:?}")
            }
            (a, b) => panic!("{case:?}: check_placement {a:?}, the three checks {b:?}"),
        }
    }
    t.finish().await;
}
