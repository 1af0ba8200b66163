//! `POST /api/v1/payments`: a payment completes the order; one refused for points leaves it
//! `PENDING`; one refused after its charge cancels it and undoes everything; an expired or
//! canceled order is neither paid nor canceled.

use std::time::Duration;

use domain::Discount;
use saga_tests::http::{ApiApp, spawn_api, spawn_api_with};
use serde_json::json;

use crate::admin::Shop;
use crate::{R, cancel, id_of, pay, place, points_of, show, stock_of};

/// The walk's step: the order with the coupon paid, its total charged.
pub async fn pay_with_a_coupon(api: &ApiApp, shop: &Shop, order: &str) -> R {
    let paid = pay(api, &shop.me, order).await;
    let paid = paid.assert_ok(200);
    assert_eq!(paid["status"], "COMPLETED");
    assert!(paid["paid_at"].is_string() && paid["completed_at"].is_string());
    assert_eq!(
        api.get("/api/v1/me", Some(&shop.me)).await?.body["points"],
        32_000
    );
    Ok(())
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
    .await?
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
    let coupons = api.get("/api/v1/me/coupons", Some(&me)).await?;
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
