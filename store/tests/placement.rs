//! Placement against a real PostgreSQL (a fresh database per test, on the server of
//! `DATABASE_URL`, like `steps.rs`): every error of `check_placement`, in its order, and its
//! result; `orders::place`, which runs the same checks and records the order in one keyed step,
//! answers what `check_placement` answers; and once an order is recorded under an id, placing
//! that id again answers the recorded order without checking again.
use chrono::{Duration, Utc};
use domain::{
    CancelCode, CouponInvalidReason, CouponStatus, Discount, OrderError, OrderStatus, Pricing,
};
use domain::{CouponId, OrderId, ProductId, UserId};
use sqlx::PgPool;
use store::placement::{self, CheckPlacementInput, PlacementCheck};
use store::{StoreError, db, orders};

mod common;
use common::reads::{count, coupon_of, points_of, stock_of};
use common::saga::{self, business, close, pay, place, place_input, retried};
use common::{TestDb, in_days, lines};

// ---------------------------------------------------------------- harness

fn input(
    user_id: UserId,
    items: &[(ProductId, i64)],
    coupon_id: Option<CouponId>,
) -> CheckPlacementInput {
    CheckPlacementInput {
        user_id,
        lines: lines(items),
        coupon_id,
    }
}

async fn check(pool: &PgPool, input: &CheckPlacementInput) -> Result<PlacementCheck, OrderError> {
    placement::check_placement(pool, input)
        .await
        .map_err(business)
}

/// Users, products and coupons for every outcome of the checks.
struct Shop {
    /// 10 000 points, less the 1 999 of the order that used `used`.
    user: UserId,
    /// 100 points.
    poor: UserId,
    /// 1 000 × 10, less the 2 of the order that used `used`.
    pencil: ProductId,
    /// 2 500 × 3.
    notebook: ProductId,
    /// Priced so that three of them overflow a line total.
    jewel: ProductId,
    /// 1 500 off from 5 000.
    fixed: CouponId,
    /// 10 %, at most 300.
    percent: CouponId,
    /// The poor user's.
    theirs: CouponId,
    expired: CouponId,
    /// Used by a completed order.
    used: CouponId,
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
    let percent = Discount::Percent {
        percent: 10,
        max_amount: Some(300),
    };
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
        percent: coupon(user, percent, None, in_days(30)).await,
        theirs: coupon(poor, fixed_1, None, in_days(30)).await,
        expired: coupon(user, fixed_1, None, in_days(-1)).await,
        used: coupon(user, fixed_1, None, in_days(30)).await,
    };
    use_coupon(pool, &shop).await;
    shop
}

/// Uses `shop.used` the way a completed order does: placed, then paid step by step.
async fn use_coupon(pool: &PgPool, s: &Shop) {
    let order = place(pool, "o-used", s.user, &[(s.pencil, 2)], Some(s.used))
        .await
        .unwrap();
    assert_eq!(
        (order.subtotal, order.discount, order.total),
        (2_000, 1, 1_999)
    );
    pay(pool, &order, "pay-used").await.unwrap();
}

// ---------------------------------------------------------------- check_placement

#[tokio::test]
async fn check_placement_prices_the_lines_and_the_discount() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;

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
    t.finish().await;
}

#[tokio::test]
async fn check_placement_passes_exact_amounts_and_reserves_nothing() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;

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

    // Read-only: nothing reserved, nothing used (the completed order took 1 999 points and
    // 2 pencils).
    assert_eq!(points_of(pool, s.user).await, 10_000 - 1_999);
    assert_eq!(points_of(pool, s.poor).await, 100);
    assert_eq!(stock_of(pool, s.notebook).await, 3);
    assert_eq!(stock_of(pool, s.pencil).await, 8);
    assert_eq!(
        coupon_of(pool, s.fixed).await,
        (CouponStatus::Available, None)
    );
    assert_eq!(count(pool, "SELECT count(*) FROM orders").await, 1);
    t.finish().await;
}

#[tokio::test]
async fn check_placement_refuses_bad_lines_before_the_coupon_and_the_points() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let code = |r: Result<PlacementCheck, OrderError>| r.unwrap_err().code();

    // Malformed, then the first missing product in request order, then the first short line,
    // then a total too large, each before the coupon and the points.
    assert_eq!(
        code(check(pool, &input(s.poor, &[], Some(s.expired))).await),
        OrderError::INVALID_REQUEST
    );
    assert_eq!(
        code(check(pool, &input(s.poor, &[(s.pencil, 0)], Some(s.expired))).await),
        OrderError::INVALID_REQUEST
    );
    let missing = input(
        s.poor,
        &[
            (s.notebook, 99),
            (ProductId::new(999), 1),
            (ProductId::new(998), 1),
        ],
        Some(CouponId::new(404)),
    );
    assert_eq!(
        check(pool, &missing).await,
        Err(OrderError::ProductNotFound {
            product_id: ProductId::new(999)
        })
    );
    let short = input(
        s.poor,
        &[(s.pencil, 1), (s.notebook, 4)],
        Some(CouponId::new(404)),
    );
    assert_eq!(
        check(pool, &short).await,
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
    let overflow = input(
        s.user,
        &[(s.jewel, 2), (ProductId::new(s.jewel.get() - 1), 1)],
        None,
    );
    assert_eq!(
        code(check(pool, &overflow).await),
        OrderError::INVALID_REQUEST,
        "a subtotal that overflows"
    );
    t.finish().await;
}

#[tokio::test]
async fn check_placement_refuses_the_coupon_before_the_points() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let coupon = |reason| Err(OrderError::CouponInvalid { reason });

    // Every reason, each before the points (the poor user cannot pay 2 000).
    let two = [(s.pencil, 2)];
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(CouponId::new(404)))).await,
        coupon(CouponInvalidReason::NotFound)
    );
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(s.fixed))).await,
        coupon(CouponInvalidReason::NotOwned)
    );
    assert_eq!(
        check(pool, &input(s.user, &two, Some(s.used))).await,
        coupon(CouponInvalidReason::AlreadyUsed)
    );
    assert_eq!(
        check(pool, &input(s.user, &two, Some(s.expired))).await,
        coupon(CouponInvalidReason::Expired)
    );
    assert_eq!(
        check(pool, &input(s.user, &[(s.pencil, 4)], Some(s.fixed))).await,
        coupon(CouponInvalidReason::MinOrderAmount),
        "4 000 is under the 5 000 minimum"
    );

    // The points last, for the total after the discount; an unknown user is a bad request.
    assert_eq!(
        check(pool, &input(s.poor, &two, Some(s.theirs))).await,
        Err(OrderError::InsufficientPoints {
            points: 100,
            total: 1_999
        })
    );
    assert_eq!(
        check(pool, &input(UserId::new(777), &two, None))
            .await
            .unwrap_err()
            .code(),
        OrderError::INVALID_REQUEST
    );
    t.finish().await;
}

// ---------------------------------------------------------------- place

/// `place` answers what `check_placement` answers, for every outcome: the quote and the order
/// page never disagree with the placement. A refused placement records nothing; an accepted one
/// records exactly the checked lines and discount.
#[tokio::test]
async fn place_answers_what_check_placement_answers() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let cases = [
        input(s.user, &[(s.notebook, 2), (s.pencil, 3)], Some(s.fixed)),
        input(s.user, &[(s.pencil, 5)], Some(s.percent)),
        input(s.user, &[(s.pencil, 1)], None),
        input(s.poor, &[], None),
        input(s.poor, &[(s.pencil, -1)], None),
        input(
            s.poor,
            &[(s.notebook, 99), (ProductId::new(999), 1)],
            Some(CouponId::new(404)),
        ),
        input(s.poor, &[(s.notebook, 4)], Some(CouponId::new(404))),
        input(s.user, &[(s.jewel, 3)], None),
        input(s.poor, &[(s.pencil, 2)], Some(CouponId::new(404))),
        input(s.poor, &[(s.pencil, 2)], Some(s.fixed)),
        input(s.user, &[(s.pencil, 2)], Some(s.used)),
        input(s.user, &[(s.pencil, 2)], Some(s.expired)),
        input(s.user, &[(s.pencil, 4)], Some(s.fixed)),
        input(s.poor, &[(s.pencil, 2)], Some(s.theirs)),
        input(s.poor, &[(s.pencil, 2)], None),
        input(UserId::new(777), &[(s.pencil, 2)], None),
        input(UserId::new(777), &[(s.pencil, 2)], Some(s.fixed)),
    ];
    for (i, case) in cases.iter().enumerate() {
        let id = format!("o-case-{i}");
        let checked = placement::check_placement(pool, case).await;
        let items: Vec<_> = case
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity))
            .collect();
        let placed = place(pool, &id, case.user_id, &items, case.coupon_id).await;
        let recorded = orders::load(pool, &OrderId::parse(&id).unwrap())
            .await
            .unwrap();
        match (checked, placed) {
            (Ok(c), Ok(o)) => {
                assert_eq!((&c.items, c.discount), (&o.items, o.discount), "{case:?}");
                assert_eq!(recorded.as_ref(), Some(&o), "{case:?}");
                close(pool, &id, OrderStatus::Canceled, CancelCode::UserCanceled)
                    .await
                    .unwrap();
            }
            (Err(StoreError::Business(a)), Err(StoreError::Business(b))) => {
                assert_eq!(a, b, "{case:?}");
                assert_eq!(
                    recorded, None,
                    "a refused placement records nothing: {case:?}"
                );
            }
            (a, b) => panic!("{case:?}: check_placement {a:?}, place {b:?}"),
        }
    }
    t.finish().await;
}

#[tokio::test]
async fn place_records_the_order_pending_as_placed() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let mut request = place_input(
        "o-1",
        s.user,
        &[(s.notebook, 2), (s.pencil, 1)],
        Some(s.fixed),
    );
    request.payment_timeout_ms = 1_234_567;
    let before = Utc::now() - Duration::seconds(5);
    let order = orders::place(pool, &request).await.unwrap();
    let after = Utc::now() + Duration::seconds(5);

    assert_eq!(order.id, "o-1");
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(
        (order.subtotal, order.discount, order.total),
        (6_000, 1_500, 4_500)
    );
    assert_eq!(order.coupon_id, Some(s.fixed));
    assert_eq!(order.shipping, saga::shipping());
    assert!(
        before < order.created_at && order.created_at < after,
        "{order:?}"
    );
    assert_eq!(
        order.expires_at - order.created_at,
        Duration::milliseconds(1_234_567),
        "expires_at is created_at plus the payment timeout"
    );
    assert_eq!(
        (order.paid_at, order.completed_at, order.canceled_at),
        (None, None, None)
    );
    assert_eq!(
        (order.cancel_reason.as_deref(), order.cancel_code),
        (None, None)
    );

    // Read back exactly as placed; placing reserves nothing.
    assert_eq!(
        orders::load(pool, &OrderId::parse("o-1").unwrap())
            .await
            .unwrap(),
        Some(order.clone())
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM order_lines WHERE order_id = 'o-1'"
        )
        .await,
        2
    );
    assert_eq!(points_of(pool, s.user).await, 10_000 - 1_999);
    assert_eq!(stock_of(pool, s.notebook).await, 3);
    assert_eq!(
        coupon_of(pool, s.fixed).await,
        (CouponStatus::Available, None)
    );
    assert!(
        orders::load(pool, &OrderId::parse("nope").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    t.finish().await;
}

/// Two users, two products (1 000 × 5 each) and a coupon of the first user's, 500 off.
struct Keyed {
    /// 8 000 points.
    user: UserId,
    other: UserId,
    pencil: ProductId,
    eraser: ProductId,
    coupon: CouponId,
}

async fn keyed_shop(pool: &PgPool) -> Keyed {
    let user = db::create_user(pool, "Kim", 8_000).await.unwrap();
    let fixed = Discount::Fixed { amount: 500 };
    Keyed {
        user,
        other: db::create_user(pool, "Lee", 100_000).await.unwrap(),
        pencil: db::create_product(pool, "Pencil", 1_000, 5).await.unwrap(),
        eraser: db::create_product(pool, "Eraser", 1_000, 5).await.unwrap(),
        coupon: db::create_coupon(pool, user, &fixed, None, in_days(3))
            .await
            .unwrap(),
    }
}

/// Once recorded, placing the same id again answers the recorded order, whatever has changed
/// since (the checks would all fail now), and records nothing more; another user's placement
/// cannot take the id.
#[tokio::test]
async fn place_is_keyed_by_the_order_id() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let Keyed {
        user,
        other,
        pencil,
        eraser,
        coupon,
    } = keyed_shop(pool).await;
    let request = place_input("o-keyed", user, &[(pencil, 5)], Some(coupon));
    let first = orders::place(pool, &request).await.unwrap();
    assert_eq!(first.total, 4_500);

    // A rival order takes every pencil, the coupon and the points the first one needs.
    let rival = place(
        pool,
        "o-rival",
        user,
        &[(pencil, 5), (eraser, 1)],
        Some(coupon),
    )
    .await
    .unwrap();
    pay(pool, &rival, "pay-rival").await.unwrap();
    assert_eq!(stock_of(pool, pencil).await, 0);
    assert_eq!(coupon_of(pool, coupon).await.0, CouponStatus::Used);
    assert!(points_of(pool, user).await < first.total);
    let now = check(pool, &input(user, &[(pencil, 5)], Some(coupon))).await;
    assert!(now.is_err(), "the checks would refuse it now: {now:?}");

    let again = orders::place(pool, &request).await.unwrap();
    assert_eq!(
        again, first,
        "the same order, created_at and expires_at included"
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM orders WHERE id = 'o-keyed'").await,
        1
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM order_lines WHERE order_id = 'o-keyed'"
        )
        .await,
        1
    );

    // Another user's placement under the id, however valid, is refused and changes nothing.
    let stolen = place(pool, "o-keyed", other, &[(eraser, 1)], None).await;
    assert_eq!(
        business(stolen.unwrap_err()).code(),
        OrderError::INVALID_REQUEST
    );
    assert_eq!(
        orders::load(pool, &OrderId::parse("o-keyed").unwrap())
            .await
            .unwrap(),
        Some(first.clone())
    );

    // A closed order placed again answers the order as it now stands.
    let closed = close(
        pool,
        "o-keyed",
        OrderStatus::Expired,
        CancelCode::PaymentExpired,
    )
    .await
    .unwrap();
    assert_eq!(orders::place(pool, &request).await.unwrap(), closed);
    t.finish().await;
}

/// Runs of one placement racing each other record one order, and every run answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_placements_of_one_id_record_one_order() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Kim", 10_000).await.unwrap();
    let pencil = db::create_product(pool, "Pencil", 1_000, 5).await.unwrap();
    let request = place_input("o-race", user, &[(pencil, 2)], None);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (pool, request, barrier) = (pool.clone(), request.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                retried(|| orders::place(&pool, &request)).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for run in runs {
        answers.push(run.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|o| *o == answers[0]), "{answers:#?}");
    assert_eq!(count(pool, "SELECT count(*) FROM orders").await, 1);
    assert_eq!(count(pool, "SELECT count(*) FROM order_lines").await, 1);
    t.finish().await;
}

#[tokio::test]
async fn orders_are_listed_newest_first() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let s = shop(pool).await;
    let first = place(pool, "o-1", s.user, &[(s.pencil, 1)], None)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = place(pool, "o-2", s.user, &[(s.notebook, 1)], None)
        .await
        .unwrap();

    let listed = orders::list_for_user(pool, s.user, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        vec!["o-2", "o-1", "o-used"]
    );
    assert_eq!((&listed[0], &listed[1]), (&second, &first));
    assert_eq!(
        orders::list_for_user(pool, s.user, 1).await.unwrap().len(),
        1
    );
    assert!(
        orders::list_for_user(pool, s.poor, 10)
            .await
            .unwrap()
            .is_empty()
    );
    t.finish().await;
}
