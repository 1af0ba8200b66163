//! CONTRACT §5's error table, row by row with its `details`; a body's size limit; and 503, never
//! a hang or a 500, when Temporal or PostgreSQL is down.

use domain::{CouponId, OrderId, ProductId, UserId};
use std::time::{Duration, Instant};

use domain::Discount;
use saga_tests::http::{ApiApp, serve, spawn_api, spawn_api_with_rate_limit};
use saga_tests::spawn_app;
use serde_json::json;
use starter::http::AppState;

use crate::{R, cancel, id_of, pay, place};

#[tokio::test]
async fn every_error_of_the_table_with_its_details() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let other = api.app.user(10_000).await;
    let a = api.app.product(4_000, 2).await;
    let me = api.customer(user);

    // 400 INVALID_REQUEST
    let r = api
        .post_bytes("/api/v1/orders", Some(&me), b"{\"items\": [".to_vec())
        .await?;
    r.assert_error(400, "INVALID_REQUEST");
    // 401 UNAUTHENTICATED
    api.get("/api/v1/me", None)
        .await?
        .assert_error(401, "UNAUTHENTICATED");
    // 403 FORBIDDEN
    api.post(
        "/api/v1/admin/users",
        Some(&me),
        &json!({"name": "x", "points": 1}),
    )
    .await?
    .assert_error(403, "FORBIDDEN");
    not_found(&api, &me, a).await?;
    // 409 INSUFFICIENT_STOCK
    let d = place(&api, &me, &[(a, 3)], None).await;
    assert_eq!(
        d.assert_error(409, "INSUFFICIENT_STOCK"),
        &json!({"product_id": a, "available": 2})
    );
    // 422 INSUFFICIENT_POINTS
    let d = place(&api, &api.customer(other), &[(a, 2)], None).await;
    assert_eq!(d.assert_ok(201)["total"], 8_000);
    let poor = api.app.user(7_999).await;
    let d = place(&api, &api.customer(poor), &[(a, 2)], None).await;
    assert_eq!(
        d.assert_error(422, "INSUFFICIENT_POINTS"),
        &json!({"points": 7_999, "total": 8_000})
    );
    let completed = coupon_invalid_for_every_reason(&api, user, other, a).await?;
    // 409 ORDER_NOT_PAYABLE: paying a COMPLETED order again, and canceling it
    let d = pay(&api, &me, &completed).await;
    assert_eq!(
        d.assert_error(409, "ORDER_NOT_PAYABLE"),
        &json!({"status": "COMPLETED"})
    );
    let d = cancel(&api, &me, &completed).await;
    assert_eq!(
        d.assert_error(409, "ORDER_NOT_PAYABLE"),
        &json!({"status": "COMPLETED"})
    );
    // 409 IDEMPOTENCY_KEY_REUSED
    api.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 1}), "k")
        .await?
        .assert_ok(200);
    api.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 2}), "k")
        .await?
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // 413 PAYLOAD_TOO_LARGE
    let big = format!("{{\"amount\": 1{}}}", " ".repeat(70_000));
    api.post_bytes("/api/v1/me/points/charge", Some(&me), big.into_bytes())
        .await?
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // The other user's open order: cancel it so the test ends with every workflow closed.
    let open: Vec<(String,)> = sqlx::query_as("SELECT id FROM orders WHERE status = 'PENDING'")
        .fetch_all(&api.app.db)
        .await?;
    for (id,) in open {
        api.app
            .service
            .cancel(&OrderId::parse(&id).unwrap())
            .await?;
    }
    api.finish().await
}

/// 404 `PRODUCT_NOT_FOUND`, from a line and from the product route, and `ORDER_NOT_FOUND` on
/// every order route.
async fn not_found(api: &ApiApp, me: &str, a: ProductId) -> R {
    let unknown = ProductId::new(a.get() + 999);
    let d = place(api, me, &[(a, 1), (unknown, 1)], None).await;
    assert_eq!(
        d.assert_error(404, "PRODUCT_NOT_FOUND"),
        &json!({"product_id": unknown})
    );
    let d = api
        .get(&format!("/api/v1/products/{unknown}"), Some(me))
        .await?;
    assert_eq!(
        d.assert_error(404, "PRODUCT_NOT_FOUND"),
        &json!({"product_id": unknown})
    );
    // An id that can name no product is still a product that does not exist: no input rule
    // covers ids, so 0 and negatives are 404 too, not 400.
    for id in [0, -1, i64::MIN] {
        let d = place(api, me, &[(ProductId::new(id), 1)], None).await;
        assert_eq!(
            d.assert_error(404, "PRODUCT_NOT_FOUND"),
            &json!({"product_id": id}),
            "product {id}"
        );
    }
    let d = api.get("/api/v1/orders/ord-nope", Some(me)).await?;
    assert_eq!(
        d.assert_error(404, "ORDER_NOT_FOUND"),
        &json!({"order_id": "ord-nope"})
    );
    pay(api, me, "ord-nope")
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    cancel(api, me, "ord-nope")
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    Ok(())
}

/// 422 `COUPON_INVALID` for every reason; the `COMPLETED` order that used a coupon of `user`'s.
async fn coupon_invalid_for_every_reason(
    api: &ApiApp,
    user: UserId,
    other: UserId,
    a: ProductId,
) -> anyhow::Result<OrderId> {
    let me = api.customer(user);
    let fixed = Discount::Fixed { amount: 500 };
    let theirs = api.app.coupon(other, fixed, None).await;
    let min = api.app.coupon(user, fixed, Some(4_001)).await;
    let expired = store::db::create_coupon(
        &api.app.db,
        user,
        &fixed,
        None,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    )
    .await?;
    let used = api.app.coupon(user, fixed, None).await;
    let first = place(api, &me, &[(a, 1)], Some(used)).await;
    let first_id = id_of(&first);
    pay(api, &me, &first_id).await.assert_ok(200);
    for (coupon, reason) in [
        (CouponId::new(999_999), "NOT_FOUND"),
        (CouponId::new(0), "NOT_FOUND"),
        (CouponId::new(-7), "NOT_FOUND"),
        (theirs, "NOT_OWNED"),
        (used, "ALREADY_USED"),
        (expired, "EXPIRED"),
        (min, "MIN_ORDER_AMOUNT"),
    ] {
        let d = place(api, &me, &[(a, 1)], Some(coupon)).await;
        assert_eq!(
            d.assert_error(422, "COUPON_INVALID"),
            &json!({"reason": reason}),
            "{reason}"
        );
    }
    Ok(first_id)
}

/// A key twice in one object is refused, never read as its last value (a typed body refuses a
/// duplicate field, and so does the API's reading of JSON); a number with no fraction is the
/// integer it equals, as JSON Schema's `integer` says.
#[tokio::test]
async fn a_key_twice_is_refused_and_an_integral_number_is_an_integer() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(1_000).await;
    let me = api.customer(user);
    let charge = |body: &str| {
        api.post_bytes(
            "/api/v1/me/points/charge",
            Some(&me),
            body.as_bytes().to_vec(),
        )
    };
    for twice in [
        r#"{"amount": 5, "amount": 900}"#,
        r#"{"amount": 5.0, "amount": 900}"#,
    ] {
        charge(twice).await?.assert_error(400, "INVALID_REQUEST");
    }
    assert_eq!(api.app.points(user).await, 1_000, "a refused body charged");
    for (integral, points) in [("5.0", 1_005), ("1e2", 1_105), ("-0.0", 1_105)] {
        let r = charge(&format!(r#"{{"amount": {integral}}}"#)).await?;
        if integral == "-0.0" {
            // 0 is below the amount's minimum of 1: refused as the integer 0 would be.
            r.assert_error(400, "INVALID_REQUEST");
        } else {
            assert_eq!(r.assert_ok(200)["points"], points, "{integral}");
        }
    }
    charge(r#"{"amount": 1.5}"#)
        .await?
        .assert_error(400, "INVALID_REQUEST");
    api.finish().await
}

/// Bodies: exactly 64 KiB is read, one byte more is refused.
#[tokio::test]
async fn a_body_of_64_kib_is_read_and_one_byte_more_is_refused() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    let padded = |n: usize| {
        let head = "{\"amount\": 1";
        let mut s = String::from(head);
        s.push_str(&" ".repeat(n - head.len() - 1));
        s.push('}');
        s.into_bytes()
    };
    api.post_bytes("/api/v1/me/points/charge", Some(&me), padded(64 * 1024))
        .await?
        .assert_ok(200);
    api.post_bytes("/api/v1/me/points/charge", Some(&me), padded(64 * 1024 + 1))
        .await?
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    api.finish().await
}

#[tokio::test]
async fn unavailable_dependencies_are_503_never_a_hang_or_500() -> R {
    let app = spawn_app().await;
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;

    // Temporal down (nothing listens there), the database up.
    let mut settings = app.settings.clone();
    settings.temporal_address = "127.0.0.1:9".into();
    let state = AppState::from_parts(settings.clone(), app.db.clone(), None);
    let api = serve(app, state).await;
    let me = api.customer(user);
    let started = Instant::now();
    let d = api.get("/health", None).await?;
    assert_eq!(
        d.assert_error(503, "UNAVAILABLE"),
        &json!({"database": "ok", "temporal": "down"})
    );
    place(&api, &me, &[(a, 1)], None)
        .await
        .assert_error(503, "UNAVAILABLE");
    // Reads that need only the database still work.
    api.get("/api/v1/me", Some(&me)).await?.assert_ok(200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered in {:?}",
        started.elapsed()
    );

    // The database down too: a pool that points nowhere.
    settings.database_url = "postgres://postgres@127.0.0.1:9/orders".into();
    let down = serve(spawn_app().await, AppState::new(settings.clone())?).await;
    let started = Instant::now();
    let d = down.get("/health", None).await?;
    assert_eq!(
        d.assert_error(503, "UNAVAILABLE"),
        &json!({"database": "down", "temporal": "down"})
    );
    down.get("/api/v1/me", Some(&me))
        .await?
        .assert_error(503, "UNAVAILABLE");
    down.get("/api/v1/products", Some(&me))
        .await?
        .assert_error(503, "UNAVAILABLE");
    place(&down, &me, &[(a, 1)], None)
        .await
        .assert_error(503, "UNAVAILABLE");
    down.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 5}), "k")
        .await?
        .assert_error(503, "UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered in {:?}",
        started.elapsed()
    );
    down.finish().await?;
    api.finish().await
}
