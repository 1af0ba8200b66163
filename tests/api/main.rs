//! The HTTP API of CONTRACT §5 against the real stack (Temporal dev server, PostgreSQL, an
//! in-process worker and data-platform receiver): every route, every error with its details,
//! the input rules at and past their limits, idempotency keys and auth. Every test ends with the
//! CONTRACT §6 check.

use std::time::{Duration, Instant};

use domain::Discount;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use runtime::settings::RateLimit;
use saga_tests::http::{
    ApiApp, Reply, serve, spawn_api, spawn_api_with, spawn_api_with_rate_limit,
};
use saga_tests::spawn_app;
use serde_json::{Value, json};
use starter::http::AppState;

type R = anyhow::Result<()>;

fn shipping() -> Value {
    json!({"recipient": "Kim Minji", "address": "12 Teheran-ro, Seoul", "phone": "010-1234-5678"})
}

fn order_body(items: &[(i64, i64)], coupon: Option<i64>) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    let mut body = json!({"items": items, "shipping": shipping()});
    if let Some(c) = coupon {
        body["coupon_id"] = json!(c);
    }
    body
}

async fn place(api: &ApiApp, token: &str, items: &[(i64, i64)], coupon: Option<i64>) -> Reply {
    api.post("/api/v1/orders", Some(token), &order_body(items, coupon))
        .await
}

async fn pay(api: &ApiApp, token: &str, order_id: &str) -> Reply {
    api.post(
        "/api/v1/payments",
        Some(token),
        &json!({"order_id": order_id}),
    )
    .await
}

async fn cancel(api: &ApiApp, token: &str, order_id: &str) -> Reply {
    api.post(
        &format!("/api/v1/orders/{order_id}/cancel"),
        Some(token),
        &json!({}),
    )
    .await
}

fn id_of(reply: &Reply) -> String {
    reply.body["id"].as_str().expect("an order id").to_owned()
}

#[tokio::test]
async fn every_route_succeeds() -> R {
    let api = spawn_api().await;
    let admin = api.admin();

    let health = api.get("/health", None).await;
    assert_eq!(health.assert_ok(200), &json!({"status": "ok"}));

    // Admin routes make the shop.
    let user = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            &json!({"name": "Dana", "points": 50_000}),
        )
        .await;
    let user = user.assert_ok(201).clone();
    assert_eq!(user["name"], "Dana");
    assert_eq!(user["points"], 50_000);
    let uid = user["id"].as_i64().expect("user id");
    let product = api
        .post(
            "/api/v1/admin/products",
            Some(&admin),
            &json!({"name": "Desk Lamp", "price": 12_000, "stock": 3}),
        )
        .await;
    let product = product.assert_ok(201).clone();
    assert_eq!(product["price"], 12_000);
    let pid = product["id"].as_i64().expect("product id");
    let coupon = api
        .post(
            "/api/v1/admin/coupons",
            Some(&admin),
            &json!({"user_id": uid, "discount": {"type": "PERCENT", "percent": 10, "max_amount": 1000},
                    "min_order_amount": 10_000, "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    let coupon = coupon.assert_ok(201).clone();
    assert_eq!(coupon["status"], "AVAILABLE");
    assert_eq!(
        coupon["discount"],
        json!({"type": "PERCENT", "percent": 10, "max_amount": 1000})
    );
    let cid = coupon["id"].as_i64().expect("coupon id");

    let me = api.customer(uid);
    // Products, for customers and admins.
    let list = api.get("/api/v1/products", Some(&me)).await;
    assert!(
        list.assert_ok(200)
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["id"] == pid))
    );
    let one = api
        .get(&format!("/api/v1/products/{pid}"), Some(&admin))
        .await;
    assert_eq!(one.assert_ok(200), &product);

    // Me, my coupons, a top-up.
    let got = api.get("/api/v1/me", Some(&me)).await;
    assert_eq!(
        got.assert_ok(200),
        &json!({"id": uid, "name": "Dana", "points": 50_000})
    );
    let coupons = api.get("/api/v1/me/coupons", Some(&me)).await;
    assert_eq!(coupons.assert_ok(200), &json!([coupon]));
    let topped = api
        .post(
            "/api/v1/me/points/charge",
            Some(&me),
            &json!({"amount": 5_000}),
        )
        .await;
    assert_eq!(topped.assert_ok(200)["points"], 55_000);

    // Place, list, show, pay.
    let placed = place(&api, &me, &[(pid, 2)], Some(cid)).await;
    let order = placed.assert_ok(201).clone();
    assert_eq!(order["status"], "PENDING");
    assert_eq!(
        (
            order["subtotal"].as_i64(),
            order["discount"].as_i64(),
            order["total"].as_i64()
        ),
        (Some(24_000), Some(1_000), Some(23_000))
    );
    assert_eq!(order["shipping"], shipping());
    let oid = id_of(&placed);
    let second = place(&api, &me, &[(pid, 1)], None).await;
    let second_id = id_of(&second);
    let list = api.get("/api/v1/orders", Some(&me)).await;
    let ids: Vec<&str> = list
        .assert_ok(200)
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, [second_id.as_str(), oid.as_str()], "newest first");
    let limited = api.get("/api/v1/orders?limit=1", Some(&me)).await;
    assert_eq!(limited.assert_ok(200).as_array().map(Vec::len), Some(1));
    let shown = api.get(&format!("/api/v1/orders/{oid}"), Some(&me)).await;
    assert_eq!(shown.assert_ok(200)["total"], 23_000);

    let paid = pay(&api, &me, &oid).await;
    let paid = paid.assert_ok(200);
    assert_eq!(paid["status"], "COMPLETED");
    assert!(paid["paid_at"].is_string() && paid["completed_at"].is_string());
    assert_eq!(
        api.get("/api/v1/me", Some(&me)).await.body["points"],
        32_000
    );

    // Cancel the other.
    let canceled = cancel(&api, &me, &second_id).await;
    assert_eq!(canceled.assert_ok(200)["status"], "CANCELED");
    assert_eq!(
        api.get(&format!("/api/v1/products/{pid}"), Some(&me))
            .await
            .body["stock"],
        1
    );

    api.finish().await
}

#[tokio::test]
async fn every_error_of_the_table_with_its_details() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let other = api.app.user(10_000).await;
    let a = api.app.product(4_000, 2).await;
    let me = api.customer(user);

    // 400 INVALID_REQUEST
    let r = api
        .send_raw("/api/v1/orders", Some(&me), b"{\"items\": [".to_vec())
        .await;
    r.assert_error(400, "INVALID_REQUEST");
    // 401 UNAUTHENTICATED
    api.get("/api/v1/me", None)
        .await
        .assert_error(401, "UNAUTHENTICATED");
    // 403 FORBIDDEN
    api.post(
        "/api/v1/admin/users",
        Some(&me),
        &json!({"name": "x", "points": 1}),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    // 404 PRODUCT_NOT_FOUND, from a line and from the product route
    let d = place(&api, &me, &[(a, 1), (a + 999, 1)], None).await;
    assert_eq!(
        d.assert_error(404, "PRODUCT_NOT_FOUND"),
        &json!({"product_id": a + 999})
    );
    let d = api
        .get(&format!("/api/v1/products/{}", a + 999), Some(&me))
        .await;
    assert_eq!(
        d.assert_error(404, "PRODUCT_NOT_FOUND"),
        &json!({"product_id": a + 999})
    );
    // An id that can name no product is still a product that does not exist: no input rule
    // covers ids, so 0 and negatives are 404 too, not 400.
    for id in [0, -1, i64::MIN] {
        let d = place(&api, &me, &[(id, 1)], None).await;
        assert_eq!(
            d.assert_error(404, "PRODUCT_NOT_FOUND"),
            &json!({"product_id": id}),
            "product {id}"
        );
    }
    // 404 ORDER_NOT_FOUND
    let d = api.get("/api/v1/orders/ord-nope", Some(&me)).await;
    assert_eq!(
        d.assert_error(404, "ORDER_NOT_FOUND"),
        &json!({"order_id": "ord-nope"})
    );
    pay(&api, &me, "ord-nope")
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    cancel(&api, &me, "ord-nope")
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
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
    // 422 COUPON_INVALID, every reason
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
    let first = place(&api, &me, &[(a, 1)], Some(used)).await;
    let first_id = id_of(&first);
    pay(&api, &me, &first_id).await.assert_ok(200);
    for (coupon, reason) in [
        (999_999, "NOT_FOUND"),
        (0, "NOT_FOUND"),
        (-7, "NOT_FOUND"),
        (theirs, "NOT_OWNED"),
        (used, "ALREADY_USED"),
        (expired, "EXPIRED"),
        (min, "MIN_ORDER_AMOUNT"),
    ] {
        let d = place(&api, &me, &[(a, 1)], Some(coupon)).await;
        assert_eq!(
            d.assert_error(422, "COUPON_INVALID"),
            &json!({"reason": reason}),
            "{reason}"
        );
    }
    // 409 ORDER_NOT_PAYABLE: paying a COMPLETED order again, and canceling it
    let d = pay(&api, &me, &first_id).await;
    assert_eq!(
        d.assert_error(409, "ORDER_NOT_PAYABLE"),
        &json!({"status": "COMPLETED"})
    );
    let d = cancel(&api, &me, &first_id).await;
    assert_eq!(
        d.assert_error(409, "ORDER_NOT_PAYABLE"),
        &json!({"status": "COMPLETED"})
    );
    // 409 IDEMPOTENCY_KEY_REUSED
    api.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 1}), "k")
        .await
        .assert_ok(200);
    api.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 2}), "k")
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // 413 PAYLOAD_TOO_LARGE
    let big = format!("{{\"amount\": 1{}}}", " ".repeat(70_000));
    api.send_raw("/api/v1/me/points/charge", Some(&me), big.into_bytes())
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // The other user's open order: cancel it so the test ends with every workflow closed.
    let open: Vec<(String,)> = sqlx::query_as("SELECT id FROM orders WHERE status = 'PENDING'")
        .fetch_all(&api.app.db)
        .await?;
    for (id,) in open {
        api.app.service.cancel(&id).await?;
    }
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
    let d = api.get("/health", None).await;
    assert_eq!(
        d.assert_error(503, "UNAVAILABLE"),
        &json!({"database": "ok", "temporal": "down"})
    );
    place(&api, &me, &[(a, 1)], None)
        .await
        .assert_error(503, "UNAVAILABLE");
    // Reads that need only the database still work.
    api.get("/api/v1/me", Some(&me)).await.assert_ok(200);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered in {:?}",
        started.elapsed()
    );

    // The database down too: a pool that points nowhere.
    settings.database_url = "postgres://postgres@127.0.0.1:9/orders".into();
    let down = serve(spawn_app().await, AppState::new(settings.clone())?).await;
    let started = Instant::now();
    let d = down.get("/health", None).await;
    assert_eq!(
        d.assert_error(503, "UNAVAILABLE"),
        &json!({"database": "down", "temporal": "down"})
    );
    down.get("/api/v1/me", Some(&me))
        .await
        .assert_error(503, "UNAVAILABLE");
    down.get("/api/v1/products", Some(&me))
        .await
        .assert_error(503, "UNAVAILABLE");
    place(&down, &me, &[(a, 1)], None)
        .await
        .assert_error(503, "UNAVAILABLE");
    down.post_keyed("/api/v1/me/points/charge", &me, &json!({"amount": 5}), "k")
        .await
        .assert_error(503, "UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered in {:?}",
        started.elapsed()
    );
    down.finish().await?;
    api.finish().await
}

#[tokio::test]
async fn input_rules_at_and_just_past_their_limits() -> R {
    // Some sixty requests of one user's, as fast as they are answered: RATE_LIMIT off.
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    let mut products = Vec::new();
    for _ in 0..51 {
        products.push(api.app.product(1, 5_000).await);
    }
    let p = products[0];
    let ok = |r: Reply| async move {
        r.assert_ok(201);
        id_of(&r)
    };
    let mut placed = Vec::new();

    // Lines: 1 and 50 are fine, 0 and 51 are not; no product twice.
    placed.push(ok(place(&api, &me, &[(p, 1)], None).await).await);
    let fifty: Vec<(i64, i64)> = products[..50].iter().map(|&id| (id, 1)).collect();
    placed.push(ok(place(&api, &me, &fifty, None).await).await);
    let fifty_one: Vec<(i64, i64)> = products.iter().map(|&id| (id, 1)).collect();
    place(&api, &me, &fifty_one, None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    place(&api, &me, &[], None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    place(&api, &me, &[(p, 1), (p, 2)], None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    // Quantity: 1 and 1000 are fine, 0, 1001, negative, fractional, text and huge are not.
    placed.push(ok(place(&api, &me, &[(p, 1000)], None).await).await);
    for q in [0, 1001, -1] {
        place(&api, &me, &[(p, q)], None)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    for q in [
        json!(1.5),
        json!("1"),
        json!(1e30),
        json!(null),
        json!(9_223_372_036_854_775_808u64),
    ] {
        let body = json!({"items": [{"product_id": p, "quantity": q}], "shipping": shipping()});
        api.post("/api/v1/orders", Some(&me), &body)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    // Shipping: recipient 1–100, address 1–300, phone 7–20 of digits, spaces, + and -.
    let with = |field: &str, value: String| {
        let mut body = order_body(&[(p, 1)], None);
        body["shipping"][field] = json!(value);
        body
    };
    for (field, min, max) in [("recipient", 1, 100), ("address", 1, 300)] {
        for (n, good) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
            let r = api
                .post("/api/v1/orders", Some(&me), &with(field, "가".repeat(n)))
                .await;
            if good {
                placed.push(ok(r).await)
            } else {
                r.assert_error(400, "INVALID_REQUEST");
            }
        }
    }
    for (phone, good) in [
        ("1234567", true),
        ("+82 10-1234-5678 12", true),
        ("123456", false),
        ("123456789012345678901", false),
        ("010.1234.5678", false),
        ("010-1234-567a", false),
    ] {
        let r = api
            .post("/api/v1/orders", Some(&me), &with("phone", phone.into()))
            .await;
        if good {
            placed.push(ok(r).await)
        } else {
            r.assert_error(400, "INVALID_REQUEST");
        }
    }
    // Missing and extra fields, wrong shapes.
    for body in [
        json!({"items": [{"product_id": p, "quantity": 1}]}),
        json!({"items": [{"product_id": p, "quantity": 1, "price": 0}], "shipping": shipping()}),
        json!({"items": {"product_id": p}, "shipping": shipping()}),
        json!([1, 2]),
        json!("order"),
    ] {
        api.post("/api/v1/orders", Some(&me), &body)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    // Top-up: 1 to 10,000,000.
    for (amount, good) in [
        (1, true),
        (10_000_000, true),
        (0, false),
        (10_000_001, false),
        (-5, false),
    ] {
        let r = api
            .post(
                "/api/v1/me/points/charge",
                Some(&me),
                &json!({"amount": amount}),
            )
            .await;
        if good {
            r.assert_ok(200);
        } else {
            r.assert_error(400, "INVALID_REQUEST");
        }
    }
    // Idempotency-Key: 1 to 200 printable characters.
    let body = json!({"amount": 1});
    api.post_keyed("/api/v1/me/points/charge", &me, &body, &"k".repeat(200))
        .await
        .assert_ok(200);
    api.post_keyed("/api/v1/me/points/charge", &me, &body, &"k".repeat(201))
        .await
        .assert_error(400, "INVALID_REQUEST");
    // Bodies: exactly 64 KiB is read, one byte more is refused.
    let padded = |n: usize| {
        let head = "{\"amount\": 1";
        let mut s = String::from(head);
        s.push_str(&" ".repeat(n - head.len() - 1));
        s.push('}');
        s.into_bytes()
    };
    api.send_raw("/api/v1/me/points/charge", Some(&me), padded(64 * 1024))
        .await
        .assert_ok(200);
    api.send_raw("/api/v1/me/points/charge", Some(&me), padded(64 * 1024 + 1))
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Paths and queries.
    api.get("/api/v1/products/abc", Some(&me))
        .await
        .assert_error(400, "INVALID_REQUEST");
    api.get("/api/v1/orders?limit=0", Some(&me))
        .await
        .assert_error(400, "INVALID_REQUEST");
    api.get("/api/v1/orders?limit=1001", Some(&me))
        .await
        .assert_error(400, "INVALID_REQUEST");
    api.get("/api/v1/orders?limit=1000", Some(&me))
        .await
        .assert_ok(200);
    // Admin inputs.
    let admin = api.admin();
    for body in [
        json!({"name": "", "points": 1}),
        json!({"name": "x", "points": -1}),
        json!({"name": "x", "points": 1_000_000_000_001i64}),
        json!({"name": "x"}),
    ] {
        api.post("/api/v1/admin/users", Some(&admin), &body)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    for body in [
        json!({"name": "x", "price": 0, "stock": 1}),
        json!({"name": "x", "price": 1, "stock": -1}),
    ] {
        api.post("/api/v1/admin/products", Some(&admin), &body)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    for discount in [
        json!({"type": "PERCENT", "percent": 0}),
        json!({"type": "PERCENT", "percent": 101}),
        json!({"type": "FIXED", "amount": 0}),
        json!({"type": "OTHER", "amount": 1}),
    ] {
        let body =
            json!({"user_id": user, "discount": discount, "expires_at": "2099-01-01T00:00:00Z"});
        api.post("/api/v1/admin/coupons", Some(&admin), &body)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    let body = json!({"user_id": user + 999, "discount": {"type": "FIXED", "amount": 1}, "expires_at": "2099-01-01T00:00:00Z"});
    api.post("/api/v1/admin/coupons", Some(&admin), &body)
        .await
        .assert_error(400, "INVALID_REQUEST");

    for id in placed {
        cancel(&api, &me, &id).await.assert_ok(200);
    }
    api.finish().await
}

#[tokio::test]
async fn idempotent_replays_of_placement_payment_and_top_up() -> R {
    let api = spawn_api().await;
    let user = api.app.user(20_000).await;
    let a = api.app.product(5_000, 10).await;
    let me = api.customer(user);
    let body = order_body(&[(a, 2)], None);

    // Placement: the same key and body answer the same order; one order exists.
    let first = api
        .post_keyed("/api/v1/orders", &me, &body, "place-1")
        .await;
    first.assert_ok(201);
    let again = api
        .post_keyed("/api/v1/orders", &me, &body, "place-1")
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(api.app.order_count().await, 1);
    // The same body with fields reordered is the same request.
    let reordered: Value = serde_json::from_str(&format!(
        "{{\"shipping\": {}, \"items\": [{{\"quantity\": 2, \"product_id\": {a}}}]}}",
        shipping()
    ))?;
    let same = api
        .post_keyed("/api/v1/orders", &me, &reordered, "place-1")
        .await;
    assert_eq!(same.body, first.body);
    // Another body under the key: refused, nothing placed.
    api.post_keyed(
        "/api/v1/orders",
        &me,
        &order_body(&[(a, 1)], None),
        "place-1",
    )
    .await
    .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // The same key from another user is another key.
    let other = api.app.user(20_000).await;
    let theirs = api
        .post_keyed("/api/v1/orders", &api.customer(other), &body, "place-1")
        .await;
    theirs.assert_ok(201);
    assert_ne!(id_of(&theirs), id_of(&first));
    // A rejected placement is answered the same way again.
    let too_many = order_body(&[(a, 11)], None);
    let r1 = api
        .post_keyed("/api/v1/orders", &me, &too_many, "place-2")
        .await;
    r1.assert_error(409, "INSUFFICIENT_STOCK");
    let r2 = api
        .post_keyed("/api/v1/orders", &me, &too_many, "place-2")
        .await;
    assert_eq!((r2.status, &r2.body), (r1.status, &r1.body));
    assert_eq!(api.app.order_count().await, 2);

    // Payment: charged once, the same answer twice, concurrent repeats included.
    let oid = id_of(&first);
    let pay = json!({"order_id": oid});
    let (p1, p2) = tokio::join!(
        api.post_keyed("/api/v1/payments", &me, &pay, "pay-1"),
        api.post_keyed("/api/v1/payments", &me, &pay, "pay-1"),
    );
    p1.assert_ok(200);
    assert_eq!((p2.status, &p2.body), (p1.status, &p1.body));
    let p3 = api.post_keyed("/api/v1/payments", &me, &pay, "pay-1").await;
    assert_eq!((p3.status, &p3.body), (p1.status, &p1.body));
    assert_eq!(api.app.points(user).await, 10_000);
    // Paying again under another key: 409, nothing charged.
    api.post_keyed("/api/v1/payments", &me, &pay, "pay-2")
        .await
        .assert_error(409, "ORDER_NOT_PAYABLE");
    assert_eq!(api.app.points(user).await, 10_000);

    // Top-up: once.
    let t1 = api
        .post_keyed(
            "/api/v1/me/points/charge",
            &me,
            &json!({"amount": 700}),
            "t-1",
        )
        .await;
    let t2 = api
        .post_keyed(
            "/api/v1/me/points/charge",
            &me,
            &json!({"amount": 700}),
            "t-1",
        )
        .await;
    assert_eq!(t1.assert_ok(200)["points"], 10_700);
    assert_eq!((t2.status, &t2.body), (t1.status, &t1.body));
    assert_eq!(api.app.points(user).await, 10_700);

    api.app.service.cancel(&id_of(&theirs)).await?;
    api.finish().await
}

/// A top-up's answer is kept 7 days, its ledger row for good: once the answer is purged, the key
/// with another amount is still refused (it hit the ledger's unique key and answered 200 with
/// no effect), and the key with its own amount still answers the balance without a second
/// top-up.
#[tokio::test]
async fn a_top_up_key_keeps_its_amount_after_its_answer_is_purged() -> R {
    let api = spawn_api().await;
    let user = api.app.user(1_000).await;
    let me = api.customer(user);
    let charge = "/api/v1/me/points/charge";
    let first = api
        .post_keyed(charge, &me, &json!({"amount": 500}), "t-purged")
        .await;
    assert_eq!(first.assert_ok(200)["points"], 1_500);
    // The purge of old answers (idempotency::purge), as if 7 days had passed.
    let purged = sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1")
        .bind(user)
        .execute(&api.app.db)
        .await?
        .rows_affected();
    assert_eq!(purged, 1);

    for _ in 0..2 {
        api.post_keyed(charge, &me, &json!({"amount": 900}), "t-purged")
            .await
            .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(api.app.points(user).await, 1_500);
    }
    // The refusal was not kept as the key's answer: its own amount is still the same request.
    for _ in 0..2 {
        let same = api
            .post_keyed(charge, &me, &json!({"amount": 500}), "t-purged")
            .await;
        assert_eq!(same.assert_ok(200), &first.body);
        assert_eq!(api.app.points(user).await, 1_500);
    }
    api.post_keyed(charge, &me, &json!({"amount": 900}), "t-purged")
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM point_ledger WHERE user_id = $1 AND idempotency_key = 't-purged'",
    )
    .bind(user)
    .fetch_one(&api.app.db)
    .await?;
    assert_eq!(rows, 1);
    assert_eq!(api.app.points(user).await, 1_500);
    api.finish().await
}

/// `n` requests of `token`'s at once.
async fn burst(api: &ApiApp, token: &str, path: &str, n: usize) -> Vec<Reply> {
    futures::future::join_all((0..n).map(|_| api.get(path, Some(token)))).await
}

/// Sends `token`'s requests, ten at a time, until one is refused for the rate; that refusal.
async fn until_limited(api: &ApiApp, token: &str) -> Reply {
    for _ in 0..100 {
        if let Some(r) = burst(api, token, "/api/v1/me", 10)
            .await
            .into_iter()
            .find(|r| r.status.as_u16() == 429)
        {
            return r;
        }
    }
    panic!("a thousand requests, ten at a time, and none refused for the rate")
}

/// A 429's `Retry-After`: whole seconds, at least 1, and the same as `details.retry_after`.
#[track_caller]
fn retry_after(r: &Reply) -> u64 {
    let details = r.assert_error(429, "RATE_LIMITED").clone();
    let header = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let seconds: u64 = header
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {header:?}"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    assert_eq!(details, json!({"retry_after": seconds}), "{}", r.text);
    seconds
}

/// CONTRACT §3's default `RATE_LIMIT`, 20/s per customer token with bursts of 40, through the
/// real API: counted per user after authentication, admins not counted, and a 429 never kept
/// under an Idempotency-Key.
#[tokio::test]
async fn the_default_rate_limit_is_per_customer_and_never_kept_under_a_key() -> R {
    let api = spawn_api_with_rate_limit(Some(RateLimit::DEFAULT)).await;
    let alice = api.app.user(1_000).await;
    let bob = api.app.user(1_000).await;
    let (a, b, admin) = (api.customer(alice), api.customer(bob), api.admin());

    // A burst of 40 is served (the bucket starts full and only fills up meanwhile) ...
    for r in burst(&api, &a, "/api/v1/me", 40).await {
        r.assert_ok(200);
    }
    // ... and what follows at once is refused, until the bucket fills again.
    let refused = until_limited(&api, &a).await;
    retry_after(&refused);
    // Another user has a bucket of their own.
    for r in burst(&api, &b, "/api/v1/products", 40).await {
        r.assert_ok(200);
    }
    // An admin is not limited.
    for r in burst(&api, &admin, "/api/v1/products", 200).await {
        r.assert_ok(200);
    }

    // A keyed top-up refused for the rate is not the key's answer: repeated after the wait,
    // it runs. (Its bucket may have refilled a token just before it: then it ran, and
    // another key is tried.)
    let charge = "/api/v1/me/points/charge";
    let mut points = 1_000;
    let (key, wait) = 'limited: {
        for i in 0..20 {
            until_limited(&api, &a).await;
            let key = format!("rate-{i}");
            let r = api
                .post_keyed(charge, &a, &json!({"amount": 7}), &key)
                .await;
            if r.status.as_u16() == 429 {
                break 'limited (key, retry_after(&r));
            }
            points += 7;
            assert_eq!(r.assert_ok(200)["points"], points);
        }
        panic!("no keyed top-up was refused for the rate");
    };
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(alice)
            .bind(&key)
            .fetch_one(&api.app.db)
            .await?;
    assert_eq!(kept, 0, "a 429 is not kept under its key");
    assert_eq!(api.app.points(alice).await, points);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let answered = api
        .post_keyed(charge, &a, &json!({"amount": 7}), &key)
        .await;
    points += 7;
    assert_eq!(answered.assert_ok(200)["points"], points);
    let again = api
        .post_keyed(charge, &a, &json!({"amount": 7}), &key)
        .await;
    assert_eq!(
        (again.status, &again.body),
        (answered.status, &answered.body)
    );
    assert_eq!(api.app.points(alice).await, points);

    // The document says so for every route a customer token reaches, and only for those.
    let doc = api.get("/api/v1/openapi.json", None).await;
    for (path, item) in doc.assert_ok(200)["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let customer = operation.get("security").is_some() && !path.contains("/admin/");
            let documented = operation["responses"].get("429").is_some();
            assert_eq!(documented, customer, "{method} {path}");
        }
    }
    api.finish().await
}

async fn show(api: &ApiApp, token: &str, order_id: &str) -> Value {
    api.get(&format!("/api/v1/orders/{order_id}"), Some(token))
        .await
        .assert_ok(200)
        .clone()
}

async fn points_of(api: &ApiApp, token: &str) -> Value {
    api.get("/api/v1/me", Some(token)).await.assert_ok(200)["points"].clone()
}

async fn stock_of(api: &ApiApp, token: &str, product: i64) -> Value {
    api.get(&format!("/api/v1/products/{product}"), Some(token))
        .await
        .assert_ok(200)["stock"]
        .clone()
}

#[tokio::test]
async fn insufficient_points_at_payment_leave_the_order_pending_until_a_top_up() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let a = api.app.product(6_000, 10).await;
    let me = api.customer(user);
    let first = place(&api, &me, &[(a, 1)], None).await;
    first.assert_ok(201);
    let first = id_of(&first);
    let second = place(&api, &me, &[(a, 1)], None).await;
    second.assert_ok(201);
    let second = id_of(&second);
    pay(&api, &me, &first).await.assert_ok(200);
    assert_eq!(points_of(&api, &me).await, 4_000);

    // CONTRACT §2.3: nothing changes, the caller gets INSUFFICIENT_POINTS, the order stays
    // PENDING so the user can top up and pay again.
    let d = pay(&api, &me, &second).await;
    assert_eq!(
        d.assert_error(422, "INSUFFICIENT_POINTS"),
        &json!({"points": 4_000, "total": 6_000})
    );
    assert_eq!(show(&api, &me, &second).await["status"], "PENDING");
    assert_eq!(points_of(&api, &me).await, 4_000);
    assert_eq!(stock_of(&api, &me, a).await, 9);

    api.post(
        "/api/v1/me/points/charge",
        Some(&me),
        &json!({"amount": 2_000}),
    )
    .await
    .assert_ok(200);
    let paid = pay(&api, &me, &second).await;
    assert_eq!(paid.assert_ok(200)["status"], "COMPLETED");
    assert_eq!(points_of(&api, &me).await, 0);
    assert_eq!(stock_of(&api, &me, a).await, 8);
    api.finish().await
}

#[tokio::test]
async fn a_payment_refused_after_its_charge_cancels_the_order_and_undoes_everything() -> R {
    let api = spawn_api().await;
    let user = api.app.user(100_000).await;
    let rival = api.app.user(100_000).await;
    let a = api.app.product(6_000, 10).await;
    let scarce = api.app.product(1_000, 1).await;
    let coupon = api
        .app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let me = api.customer(user);

    // The coupon is used by another order between placement and payment.
    let with_coupon = id_of(&place(&api, &me, &[(a, 1)], Some(coupon)).await);
    let also_coupon = id_of(&place(&api, &me, &[(a, 2)], Some(coupon)).await);
    pay(&api, &me, &with_coupon).await.assert_ok(200);
    assert_eq!(points_of(&api, &me).await, 95_000);
    let d = pay(&api, &me, &also_coupon).await;
    assert_eq!(
        d.assert_error(422, "COUPON_INVALID"),
        &json!({"reason": "ALREADY_USED"})
    );
    let order = show(&api, &me, &also_coupon).await;
    assert_eq!(order["status"], "CANCELED");
    assert!(order["canceled_at"].is_string(), "{order}");
    assert!(
        order["cancel_reason"]
            .as_str()
            .is_some_and(|r| r.contains("COUPON_INVALID")),
        "cancel_reason says why: {order}"
    );
    assert_eq!(points_of(&api, &me).await, 95_000, "the charge refunded");
    assert_eq!(stock_of(&api, &me, a).await, 9, "nothing deducted for it");
    let coupons = api.get("/api/v1/me/coupons", Some(&me)).await;
    let used = &coupons.assert_ok(200)[0];
    assert_eq!(
        (&used["status"], &used["order_id"]),
        (&json!("USED"), &json!(with_coupon)),
        "the coupon stays with the order that used it"
    );

    // The last unit is sold to someone else between placement and payment.
    let sold_out = id_of(&place(&api, &me, &[(scarce, 1)], None).await);
    let theirs = api.customer(rival);
    let sniped = id_of(&place(&api, &theirs, &[(scarce, 1)], None).await);
    pay(&api, &theirs, &sniped).await.assert_ok(200);
    let d = pay(&api, &me, &sold_out).await;
    assert_eq!(
        d.assert_error(409, "INSUFFICIENT_STOCK"),
        &json!({"product_id": scarce, "available": 0})
    );
    let order = show(&api, &me, &sold_out).await;
    assert_eq!(order["status"], "CANCELED");
    assert!(
        order["cancel_reason"]
            .as_str()
            .is_some_and(|r| r.contains("INSUFFICIENT_STOCK")),
        "cancel_reason says why: {order}"
    );
    assert_eq!(points_of(&api, &me).await, 95_000, "the charge refunded");

    // A CANCELED order can be neither paid nor canceled again.
    for order in [&also_coupon, &sold_out] {
        for d in [pay(&api, &me, order).await, cancel(&api, &me, order).await] {
            assert_eq!(
                d.assert_error(409, "ORDER_NOT_PAYABLE"),
                &json!({"status": "CANCELED"})
            );
        }
    }
    api.finish().await
}

#[tokio::test]
async fn an_expired_order_can_be_neither_paid_nor_canceled() -> R {
    let api = spawn_api_with(Duration::from_secs(2)).await;
    let user = api.app.user(10_000).await;
    let a = api.app.product(1_000, 5).await;
    let me = api.customer(user);
    let placed = place(&api, &me, &[(a, 1)], None).await;
    let order = placed.assert_ok(201);
    let created = chrono::DateTime::parse_from_rfc3339(order["created_at"].as_str().unwrap_or(""))?;
    let expires = chrono::DateTime::parse_from_rfc3339(order["expires_at"].as_str().unwrap_or(""))?;
    assert_eq!((expires - created).num_milliseconds(), 2_000);
    let id = id_of(&placed);

    api.app.result(&id).await?;
    assert_eq!(show(&api, &me, &id).await["status"], "EXPIRED");
    for d in [pay(&api, &me, &id).await, cancel(&api, &me, &id).await] {
        assert_eq!(
            d.assert_error(409, "ORDER_NOT_PAYABLE"),
            &json!({"status": "EXPIRED"})
        );
    }
    assert_eq!(points_of(&api, &me).await, 10_000);
    assert_eq!(stock_of(&api, &me, a).await, 5);
    api.finish().await
}

fn sign(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret))
        .expect("sign")
}

#[tokio::test]
async fn auth_rules() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let other = api.app.user(10_000).await;
    let a = api.app.product(1_000, 5).await;
    let secret = api.app.settings.auth_secret.clone();
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, role: &str| json!({"sub": sub, "role": role, "exp": now + 600});
    let b64 = |v: &Value| {
        use std::fmt::Write;
        // base64url without padding, by hand: the tests need no base64 crate.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = v.to_string().into_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                let _ = out.write_char(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    let hs256 = |claims: &Value| sign(claims, Algorithm::HS256, secret.as_bytes());
    let valid = hs256(&claims(&user.to_string(), "customer"));
    api.get("/api/v1/me", Some(&valid)).await.assert_ok(200);

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&user.to_string(), "customer"))
    );
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered_sub = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(&other.to_string(), "customer")),
        parts[2]
    );
    let refused = [
        ("no scheme", valid.clone()),
        ("garbage", "not-a-token".to_owned()),
        ("alg none", none),
        (
            "HS384",
            sign(
                &claims(&user.to_string(), "customer"),
                Algorithm::HS384,
                secret.as_bytes(),
            ),
        ),
        (
            "HS512",
            sign(
                &claims(&user.to_string(), "customer"),
                Algorithm::HS512,
                secret.as_bytes(),
            ),
        ),
        (
            "wrong secret",
            sign(
                &claims(&user.to_string(), "customer"),
                Algorithm::HS256,
                b"wrong",
            ),
        ),
        ("tampered sub", tampered_sub),
        (
            "no exp",
            hs256(&json!({"sub": user.to_string(), "role": "customer"})),
        ),
        (
            "expired",
            hs256(&json!({"sub": user.to_string(), "role": "customer", "exp": now - 5})),
        ),
        (
            "not yet valid",
            hs256(
                &json!({"sub": user.to_string(), "role": "customer", "exp": now + 600, "nbf": now + 300}),
            ),
        ),
        ("bad role", hs256(&claims(&user.to_string(), "root"))),
        (
            "no role",
            hs256(&json!({"sub": user.to_string(), "exp": now + 600})),
        ),
        ("sub not a number", hs256(&claims("alice", "customer"))),
        (
            "unknown user",
            hs256(&claims(&(user + 999).to_string(), "customer")),
        ),
    ];
    for (why, token) in &refused {
        let r = if *why == "no scheme" {
            let req = api
                .http
                .get(format!("{}/api/v1/me", api.base))
                .header("Authorization", token.as_str());
            api.reply(req).await
        } else {
            api.get("/api/v1/me", Some(token)).await
        };
        assert_eq!(r.code(), "UNAUTHENTICATED", "{why}: {}", r.text);
        r.assert_error(401, "UNAUTHENTICATED");
    }
    api.get("/api/v1/products", None)
        .await
        .assert_error(401, "UNAUTHENTICATED");

    // Another user's order is not found, whatever the route.
    let me = api.customer(user);
    let theirs = place(&api, &api.customer(other), &[(a, 1)], None).await;
    let tid = id_of(&theirs);
    api.get(&format!("/api/v1/orders/{tid}"), Some(&me))
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    pay(&api, &me, &tid)
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    cancel(&api, &me, &tid)
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    let listed = api.get("/api/v1/orders", Some(&me)).await;
    assert_eq!(listed.assert_ok(200), &json!([]));
    // Roles: a customer on admin routes is 403; an admin reads products but has no "me".
    let admin = api.admin();
    for path in [
        "/api/v1/admin/users",
        "/api/v1/admin/products",
        "/api/v1/admin/coupons",
    ] {
        api.post(path, Some(&me), &json!({}))
            .await
            .assert_error(403, "FORBIDDEN");
    }
    api.get("/api/v1/products", Some(&admin))
        .await
        .assert_ok(200);
    api.get("/api/v1/me", Some(&admin))
        .await
        .assert_error(403, "FORBIDDEN");
    api.get("/api/v1/orders", Some(&admin))
        .await
        .assert_error(403, "FORBIDDEN");

    api.app.service.cancel(&tid).await?;
    api.finish().await
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() -> R {
    let api = spawn_api().await;
    let doc = api.get("/api/v1/openapi.json", None).await;
    let doc = doc.assert_ok(200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    // CONTRACT §5, route by route, plus the document itself.
    let mut contract: Vec<(String, String)> = [
        ("GET", "/health"),
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/products/{id}"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/me/points/charge"),
        ("GET", "/api/v1/me/coupons"),
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders"),
        ("GET", "/api/v1/orders/{id}"),
        ("POST", "/api/v1/payments"),
        ("POST", "/api/v1/orders/{id}/cancel"),
        ("POST", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/products"),
        ("POST", "/api/v1/admin/coupons"),
        ("GET", "/api/v1/openapi.json"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    contract.sort();
    assert_eq!(documented, contract);
    // Every documented route is served (not the router's 404/405 fallback).
    let admin = api.admin();
    for (method, path) in &documented {
        let path = path.replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes())?;
        let r = api
            .send(method.clone(), &path, Some(&admin), None, None)
            .await;
        assert!(
            !matches!(r.code(), "NOT_FOUND" | "METHOD_NOT_ALLOWED"),
            "{method} {path} is documented but not served: {}",
            r.text
        );
    }
    // And what is not documented is not served.
    api.get("/api/v1/nope", Some(&admin))
        .await
        .assert_error(404, "NOT_FOUND");
    api.send(Method::DELETE, "/api/v1/orders", Some(&admin), None, None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    api.finish().await
}
