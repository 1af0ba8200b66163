//! `POST /api/v1/admin/{users,products,coupons}`: what they make, and their input rules.
//! `POST /api/v1/admin/products/{id}/restock`: keyed by the admin's `sub`, a ledger row each.
//! `GET /api/v1/admin/orders`: its filters and its `Link` paging.

use std::time::Duration;

use reqwest::Method;

use domain::{CouponId, ProductId, UserId};
use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::{Value, json};
use starter::token::{self, Role};

use crate::orders::{every_page, ids_of, next_page};
use crate::{R, cancel, id_of, pay, place, stock_of};

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

/// An admin token of another `sub` than [`ApiApp::admin`]'s (`ops`).
fn admin_named(api: &ApiApp, sub: &str) -> String {
    token::mint(api.secret(), sub, Role::Admin, Duration::from_secs(3600)).expect("HS256")
}

async fn restock(
    api: &ApiApp,
    token: &str,
    product: i64,
    body: &Value,
    key: Option<&str>,
) -> testkit::Reply {
    let path = format!("/api/v1/admin/products/{product}/restock");
    api.send(Method::POST, &path, Some(token), Some(body), key)
        .await
        .expect("the API answers")
}

/// The `RESTOCK` rows of a product's ledger, oldest first.
async fn restock_rows(api: &ApiApp, product: i64) -> anyhow::Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT quantity FROM stock_ledger WHERE product_id = $1 AND kind = 'RESTOCK' ORDER BY id",
    )
    .bind(product)
    .fetch_all(&api.app.db)
    .await?)
}

#[tokio::test]
async fn a_restock_refills_a_sold_out_product_once_per_admin_and_key() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(1_000_000).await;
    let me = api.customer(user);
    let product = api.app.product(10_000, 0).await;
    let p = product.get();
    let (ops, other) = (api.admin(), admin_named(&api, "night-shift"));
    place(&api, &me, &[(product, 2)], None)
        .await
        .assert_error(409, "INSUFFICIENT_STOCK");

    let five = json!({"quantity": 5});
    let r = restock(&api, &ops, p, &five, Some("refill-1")).await;
    assert_eq!(
        (r.assert_ok(200)["id"].as_i64(), r.body["stock"].as_i64()),
        (Some(p), Some(5))
    );
    // The same admin, key and request: the same answer, no second effect.
    assert_eq!(
        restock(&api, &ops, p, &five, Some("refill-1"))
            .await
            .assert_ok(200)["stock"],
        5
    );
    restock(&api, &ops, p, &json!({"quantity": 6}), Some("refill-1"))
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // Keys are scoped by the token's sub: another admin's same key is its own restock.
    assert_eq!(
        restock(&api, &other, p, &five, Some("refill-1"))
            .await
            .assert_ok(200)["stock"],
        10
    );
    // Its answer purged, the key still holds in the ledger: nothing added again.
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = 'admin:ops'")
        .execute(&api.app.db)
        .await?;
    assert_eq!(
        restock(&api, &ops, p, &five, Some("refill-1"))
            .await
            .assert_ok(200)["stock"],
        10
    );
    restock(&api, &ops, p, &json!({"quantity": 7}), Some("refill-1"))
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // Unkeyed, each restock counts; an integral JSON number is an integer.
    assert_eq!(
        restock(&api, &ops, p, &json!({"quantity": 2.0}), None)
            .await
            .assert_ok(200)["stock"],
        12
    );
    assert_eq!(restock_rows(&api, p).await?, [5, 5, 2]);

    // The input rules, the unknown product, the roles.
    for bad in [
        json!({"quantity": 0}),
        json!({"quantity": 1_000_001}),
        json!({"quantity": 2.5}),
        json!({}),
    ] {
        restock(&api, &ops, p, &bad, None)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    let max = restock(&api, &ops, p, &json!({"quantity": 1_000_000}), None).await;
    assert_eq!(max.assert_ok(200)["stock"], 1_000_012);
    let unknown = restock(&api, &ops, p + 1000, &five, Some("refill-2")).await;
    assert_eq!(
        unknown.assert_error(404, "PRODUCT_NOT_FOUND")["product_id"],
        p + 1000
    );
    restock(&api, &me, p, &five, None)
        .await
        .assert_error(403, "FORBIDDEN");
    let path = format!("/api/v1/admin/products/{p}/restock");
    let anonymous = api.send(Method::POST, &path, None, Some(&five), None);
    anonymous.await?.assert_error(401, "UNAUTHENTICATED");
    // A customer's key of the same name is the customer's own.
    let topped = api
        .post_keyed(
            "/api/v1/me/points/charge",
            &me,
            &json!({"amount": 1}),
            "refill-1",
        )
        .await?;
    assert_eq!(topped.assert_ok(200)["points"], 1_000_001);

    // What was restocked sells, and CONTRACT §6 counts the restocks (finish).
    let order = place(&api, &me, &[(product, 2)], None).await;
    let paid = pay(&api, &me, &id_of(&order)).await;
    assert_eq!(paid.assert_ok(200)["status"], "COMPLETED");
    assert_eq!(stock_of(&api, &me, product).await, 1_000_010);
    api.finish().await
}

#[tokio::test]
async fn the_admins_order_list_filters_by_status_and_user_and_pages_with_link() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let admin = api.admin();
    let (a, b) = (api.app.user(1_000_000).await, api.app.user(1_000_000).await);
    let (ta, tb) = (api.customer(a), api.customer(b));
    let p = api.app.product(1_000, 100).await;
    let mut as_orders = Vec::new();
    for _ in 0..3 {
        as_orders.push(id_of(&place(&api, &ta, &[(p, 1)], None).await));
    }
    let bs_order = id_of(&place(&api, &tb, &[(p, 1)], None).await);
    cancel(&api, &ta, &as_orders[1]).await.assert_ok(200);
    let newest_first = [
        bs_order.clone(),
        as_orders[2].clone(),
        as_orders[1].clone(),
        as_orders[0].clone(),
    ];

    let list = |q: String| {
        let admin = admin.clone();
        let api = &api;
        async move {
            api.get(&format!("/api/v1/admin/orders{q}"), Some(&admin))
                .await
        }
    };
    assert_eq!(ids_of(&list(String::new()).await?), newest_first);
    assert_eq!(
        ids_of(&list("?status=CANCELED".into()).await?),
        [as_orders[1].clone()]
    );
    assert_eq!(
        ids_of(&list(format!("?user_id={a}")).await?),
        newest_first[1..]
    );
    let pending_of_a = list(format!("?user_id={a}&status=PENDING")).await?;
    assert_eq!(
        ids_of(&pending_of_a),
        [as_orders[2].clone(), as_orders[0].clone()]
    );
    assert!(ids_of(&list("?status=COMPLETED".into()).await?).is_empty());
    assert!(ids_of(&list(format!("?user_id={}", b.get() + 1000)).await?).is_empty());

    // One at a time, keeping the filters: the same orders, a page each.
    let first = list(format!("?user_id={a}&limit=1")).await?;
    let next = next_page(&first).expect("a Link to the next page");
    assert!(
        next.starts_with(&format!("/api/v1/admin/orders?user_id={a}&limit=1&cursor=")),
        "{next}"
    );
    let (paged, pages) = every_page(
        &api,
        &admin,
        &format!("/api/v1/admin/orders?user_id={a}&limit=1"),
    )
    .await?;
    assert_eq!((paged.as_slice(), pages), (&newest_first[1..], 3));
    let (paged, _) =
        every_page(&api, &admin, "/api/v1/admin/orders?status=PENDING&limit=2").await?;
    assert_eq!(
        paged,
        [bs_order.clone(), as_orders[2].clone(), as_orders[0].clone()]
    );

    for bad in [
        "?status=LOST",
        "?status=pending",
        "?limit=0",
        "?limit=1001",
        "?user_id=x",
        "?cursor=nope",
        "?colour=red",
    ] {
        list(bad.into()).await?.assert_error(400, "INVALID_REQUEST");
    }
    api.get("/api/v1/admin/orders", Some(&ta))
        .await?
        .assert_error(403, "FORBIDDEN");
    api.get("/api/v1/admin/orders", None)
        .await?
        .assert_error(401, "UNAUTHENTICATED");

    for id in [&as_orders[0], &as_orders[2]] {
        cancel(&api, &ta, id).await.assert_ok(200);
    }
    cancel(&api, &tb, &bs_order).await.assert_ok(200);
    api.finish().await
}
