//! `POST /api/v1/orders/quote`: a cart priced as placement prices it, with the user's points
//! beside it; placement's errors but `INSUFFICIENT_POINTS`; no side effect; its rules in the
//! OpenAPI document.

use domain::{CouponId, Discount, ProductId};
use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::{Value, json};
use testkit::Reply;

use crate::{R, place};

async fn quote(api: &ApiApp, token: &str, body: &Value) -> Reply {
    api.post("/api/v1/orders/quote", Some(token), body)
        .await
        .expect("the API answers")
}

fn cart(items: &[(ProductId, i64)], coupon: Option<CouponId>) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    match coupon {
        Some(c) => json!({"items": items, "coupon_id": c}),
        None => json!({"items": items}),
    }
}

/// The quote's lines and totals are the placement's, with and without a coupon; a total above
/// the points is priced all the same, with the points beside it; and quoting changed nothing.
#[tokio::test]
async fn a_quote_prices_as_placement_does_and_changes_nothing() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(30_000).await;
    let me = api.customer(user);
    let lamp = api.app.product(12_000, 3).await;
    let pen = api.app.product(1_500, 10).await;
    let percent = Discount::Percent {
        percent: 10,
        max_amount: Some(1_000),
    };
    let coupon = api.app.coupon(user, percent, Some(10_000)).await;

    let plain = quote(&api, &me, &cart(&[(lamp, 1), (pen, 2)], None)).await;
    let plain = plain.assert_ok(200).clone();
    assert_eq!(
        (&plain["subtotal"], &plain["discount"], &plain["total"]),
        (&json!(15_000), &json!(0), &json!(15_000))
    );
    assert_eq!(plain["points"], 30_000);
    assert_eq!(plain["items"][1]["line_total"], 3_000);

    // Over the points: priced, never INSUFFICIENT_POINTS; the points say why placing would fail.
    let dear = quote(&api, &me, &cart(&[(lamp, 3)], Some(coupon))).await;
    let dear = dear.assert_ok(200).clone();
    assert_eq!(
        (&dear["total"], &dear["points"]),
        (&json!(35_000), &json!(30_000))
    );
    place(&api, &me, &[(lamp, 3)], Some(coupon))
        .await
        .assert_error(422, "INSUFFICIENT_POINTS");

    let quoted = quote(&api, &me, &cart(&[(lamp, 2)], Some(coupon))).await;
    let quoted = quoted.assert_ok(200).clone();
    assert_eq!(quoted["discount"], 1_000);
    assert_eq!(api.app.order_count().await, 0, "a quote places nothing");
    assert_eq!(api.app.points(user).await, 30_000);
    assert_eq!(api.app.stock(lamp).await, 3);
    assert_eq!(api.app.coupon_status(coupon).await.0, "AVAILABLE");

    let placed = place(&api, &me, &[(lamp, 2)], Some(coupon)).await;
    let order = placed.assert_ok(201);
    for field in ["items", "subtotal", "discount", "total"] {
        assert_eq!(
            order[field], quoted[field],
            "{field}: the quote is the placement's"
        );
    }
    // The coupon now belongs to a PENDING order, still AVAILABLE: quoting with it still works.
    quote(&api, &me, &cart(&[(lamp, 1)], Some(coupon)))
        .await
        .assert_ok(200);
    let oid = placed.body["id"].as_str().expect("order id").to_owned();
    crate::cancel(&api, &me, &oid).await.assert_ok(200);
    api.finish().await
}

/// Placement's errors, each with its details, and its input rules at and past their limits.
#[tokio::test]
async fn a_quote_answers_placements_errors_and_rules() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(100).await;
    let other = api.app.user(100).await;
    let me = api.customer(user);
    let lamp = api.app.product(12_000, 3).await;
    let fixed = Discount::Fixed { amount: 500 };
    let theirs = api.app.coupon(other, fixed, None).await;
    let minimum = api.app.coupon(user, fixed, Some(50_000)).await;

    let missing = quote(
        &api,
        &me,
        &cart(&[(lamp, 1), (ProductId::from(-7), 1)], None),
    )
    .await;
    assert_eq!(
        missing.assert_error(404, "PRODUCT_NOT_FOUND")["product_id"],
        -7
    );
    let short = quote(&api, &me, &cart(&[(lamp, 4)], None)).await;
    let details = short.assert_error(409, "INSUFFICIENT_STOCK");
    assert_eq!(
        (&details["product_id"], &details["available"]),
        (&json!(lamp), &json!(3))
    );
    for (coupon, reason) in [
        (theirs, "NOT_OWNED"),
        (minimum, "MIN_ORDER_AMOUNT"),
        (CouponId::from(0), "NOT_FOUND"),
    ] {
        let refused = quote(&api, &me, &cart(&[(lamp, 1)], Some(coupon))).await;
        assert_eq!(
            refused.assert_error(422, "COUPON_INVALID")["reason"],
            reason
        );
    }

    let unknown = |i: i64| (ProductId::from(1_000_000 + i), 1);
    let fifty: Vec<(ProductId, i64)> = (0..50).map(unknown).collect();
    let fifty_one: Vec<(ProductId, i64)> = (0..51).map(unknown).collect();
    // 50 lines pass the rules (and then name a product that does not exist); 51 do not.
    quote(&api, &me, &cart(&fifty, None))
        .await
        .assert_error(404, "PRODUCT_NOT_FOUND");
    for bad in [
        cart(&[], None),
        cart(&fifty_one, None),
        cart(&[(lamp, 0)], None),
        cart(&[(lamp, 1001)], None),
        cart(&[(lamp, 1), (lamp, 2)], None),
        json!({"items": [{"product_id": lamp, "quantity": 1}], "shipping": {}}),
        json!({"items": [{"product_id": lamp, "quantity": "1"}]}),
    ] {
        quote(&api, &me, &bad)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    quote(&api, &me, &cart(&[(lamp, 3)], None))
        .await
        .assert_ok(200);
    let body = cart(&[(lamp, 1)], None);
    let anonymous = api.post("/api/v1/orders/quote", None, &body).await?;
    anonymous.assert_error(401, "UNAUTHENTICATED");
    let admin = api.admin();
    let forbidden = api
        .post("/api/v1/orders/quote", Some(&admin), &body)
        .await?;
    forbidden.assert_error(403, "FORBIDDEN");
    assert_eq!(api.app.order_count().await, 0);
    api.finish().await
}

/// The document states the quote's rules as it states placement's: 1 to 50 lines, each
/// quantity 1 to 1000, and what it answers.
#[tokio::test]
async fn the_quote_states_its_rules_in_the_openapi_document() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let doc = api.get("/api/v1/openapi.json", None).await?;
    let doc = doc.assert_ok(200);
    let op = &doc["paths"]["/api/v1/orders/quote"]["post"];
    for status in [
        "200", "400", "401", "403", "404", "409", "413", "422", "429", "503",
    ] {
        assert!(
            op["responses"][status].is_object(),
            "{status} is documented"
        );
    }
    assert!(
        op["responses"]["422"]["description"]
            .as_str()
            .is_some_and(|d| !d.contains("INSUFFICIENT_POINTS"))
    );
    let schemas = &doc["components"]["schemas"];
    let items = &schemas["QuoteRequest"]["properties"]["items"];
    assert_eq!(
        (&items["minItems"], &items["maxItems"]),
        (&json!(1), &json!(50))
    );
    let quantity = &schemas["LineRequest"]["properties"]["quantity"];
    assert_eq!(
        (&quantity["minimum"], &quantity["maximum"]),
        (&json!(1), &json!(1000))
    );
    for field in ["items", "subtotal", "discount", "total", "points"] {
        assert!(
            schemas["Quote"]["properties"][field].is_object(),
            "Quote.{field}"
        );
    }
    api.finish().await
}
