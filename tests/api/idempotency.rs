//! `Idempotency-Key` on the keyed routes (placement, payment, top-up): its length, the same
//! answer to a repeat, another body refused, and a top-up's key after its answer is purged.
//! (The leases of keys are `store`'s, tested in `store/tests/idempotency.rs`.)

use saga_tests::http::{spawn_api, spawn_api_with_rate_limit};
use serde_json::{Value, json};
use testkit::shop::{order_body, shipping_json};

use crate::{R, id_of};

/// An `Idempotency-Key` is 1 to 200 printable characters.
#[tokio::test]
async fn a_key_at_and_just_past_its_limit() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    let body = json!({"amount": 1});
    api.post_keyed("/api/v1/me/points/charge", &me, &body, &"k".repeat(200))
        .await?
        .assert_ok(200);
    api.post_keyed("/api/v1/me/points/charge", &me, &body, &"k".repeat(201))
        .await?
        .assert_error(400, "INVALID_REQUEST");
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
        .await?;
    first.assert_ok(201);
    let again = api
        .post_keyed("/api/v1/orders", &me, &body, "place-1")
        .await?;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(api.app.order_count().await, 1);
    // The same body with fields reordered is the same request.
    let reordered: Value = serde_json::from_str(&format!(
        "{{\"shipping\": {}, \"items\": [{{\"quantity\": 2, \"product_id\": {a}}}]}}",
        shipping_json()
    ))?;
    let same = api
        .post_keyed("/api/v1/orders", &me, &reordered, "place-1")
        .await?;
    assert_eq!(same.body, first.body);
    // Another body under the key: refused, nothing placed.
    api.post_keyed(
        "/api/v1/orders",
        &me,
        &order_body(&[(a, 1)], None),
        "place-1",
    )
    .await?
    .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // The same key from another user is another key.
    let other = api.app.user(20_000).await;
    let theirs = api
        .post_keyed("/api/v1/orders", &api.customer(other), &body, "place-1")
        .await?;
    theirs.assert_ok(201);
    assert_ne!(id_of(&theirs), id_of(&first));
    // A rejected placement is answered the same way again.
    let too_many = order_body(&[(a, 11)], None);
    let r1 = api
        .post_keyed("/api/v1/orders", &me, &too_many, "place-2")
        .await?;
    r1.assert_error(409, "INSUFFICIENT_STOCK");
    let r2 = api
        .post_keyed("/api/v1/orders", &me, &too_many, "place-2")
        .await?;
    assert_eq!((r2.status, &r2.body), (r1.status, &r1.body));
    assert_eq!(api.app.order_count().await, 2);

    // Payment: charged once, the same answer twice, concurrent repeats included.
    let oid = id_of(&first);
    let pay = json!({"order_id": oid});
    let (p1, p2) = tokio::join!(
        api.post_keyed("/api/v1/payments", &me, &pay, "pay-1"),
        api.post_keyed("/api/v1/payments", &me, &pay, "pay-1"),
    );
    let (p1, p2) = (p1?, p2?);
    p1.assert_ok(200);
    assert_eq!((p2.status, &p2.body), (p1.status, &p1.body));
    let p3 = api
        .post_keyed("/api/v1/payments", &me, &pay, "pay-1")
        .await?;
    assert_eq!((p3.status, &p3.body), (p1.status, &p1.body));
    assert_eq!(api.app.points(user).await, 10_000);
    // Paying again under another key: 409, nothing charged.
    api.post_keyed("/api/v1/payments", &me, &pay, "pay-2")
        .await?
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
        .await?;
    let t2 = api
        .post_keyed(
            "/api/v1/me/points/charge",
            &me,
            &json!({"amount": 700}),
            "t-1",
        )
        .await?;
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
        .await?;
    assert_eq!(first.assert_ok(200)["points"], 1_500);
    // The purge of old answers (idempotency::purge), as if 7 days had passed.
    let purged = sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1")
        .bind(user.get())
        .execute(&api.app.db)
        .await?
        .rows_affected();
    assert_eq!(purged, 1);

    for _ in 0..2 {
        api.post_keyed(charge, &me, &json!({"amount": 900}), "t-purged")
            .await?
            .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(api.app.points(user).await, 1_500);
    }
    // The refusal was not kept as the key's answer: its own amount is still the same request.
    for _ in 0..2 {
        let same = api
            .post_keyed(charge, &me, &json!({"amount": 500}), "t-purged")
            .await?;
        assert_eq!(same.assert_ok(200), &first.body);
        assert_eq!(api.app.points(user).await, 1_500);
    }
    api.post_keyed(charge, &me, &json!({"amount": 900}), "t-purged")
        .await?
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM point_ledger WHERE user_id = $1 AND idempotency_key = 't-purged'",
    )
    .bind(user.get())
    .fetch_one(&api.app.db)
    .await?;
    assert_eq!(rows, 1);
    assert_eq!(api.app.points(user).await, 1_500);
    api.finish().await
}
