//! `POST /api/v1/admin/{users,products,coupons}`: what they make, and their input rules.

use domain::{CouponId, ProductId, UserId};
use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::{Value, json};

use crate::R;

/// What the admin routes made for the walk through every route.
pub struct Shop {
    /// The user, and a customer token of theirs.
    pub uid: UserId,
    pub me: String,
    pub admin: String,
    /// The product as it was answered.
    pub pid: ProductId,
    pub product: Value,
    /// The user's coupon as it was answered.
    pub cid: CouponId,
    pub coupon: Value,
}

/// The walk's first step: a user with 50,000 points, a product of 12,000 with 3 in stock, and a
/// coupon of 10% (at most 1,000, from 10,000), each answered as made.
pub async fn make_a_shop(api: &ApiApp) -> anyhow::Result<Shop> {
    let admin = api.admin();
    let user = api
        .post(
            "/api/v1/admin/users",
            Some(&admin),
            &json!({"name": "Dana", "points": 50_000}),
        )
        .await?;
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
        .await?;
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
        .await?;
    let coupon = coupon.assert_ok(201).clone();
    assert_eq!(coupon["status"], "AVAILABLE");
    assert_eq!(
        coupon["discount"],
        json!({"type": "PERCENT", "percent": 10, "max_amount": 1000})
    );
    let cid = coupon["id"].as_i64().expect("coupon id");
    Ok(Shop {
        uid: UserId::new(uid),
        me: api.customer(UserId::new(uid)),
        admin,
        pid: ProductId::new(pid),
        product,
        cid: CouponId::new(cid),
        coupon,
    })
}

#[tokio::test]
async fn admin_input_rules() -> R {
    // As fast as they are answered: RATE_LIMIT off.
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let admin = api.admin();
    for body in [
        json!({"name": "", "points": 1}),
        json!({"name": "x", "points": -1}),
        json!({"name": "x", "points": 1_000_000_000_001i64}),
        json!({"name": "x"}),
    ] {
        api.post("/api/v1/admin/users", Some(&admin), &body)
            .await?
            .assert_error(400, "INVALID_REQUEST");
    }
    for body in [
        json!({"name": "x", "price": 0, "stock": 1}),
        json!({"name": "x", "price": 1, "stock": -1}),
    ] {
        api.post("/api/v1/admin/products", Some(&admin), &body)
            .await?
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
            .await?
            .assert_error(400, "INVALID_REQUEST");
    }
    let body = json!({"user_id": user.get() + 999, "discount": {"type": "FIXED", "amount": 1}, "expires_at": "2099-01-01T00:00:00Z"});
    api.post("/api/v1/admin/coupons", Some(&admin), &body)
        .await?
        .assert_error(400, "INVALID_REQUEST");
    api.finish().await
}
