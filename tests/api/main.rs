//! The HTTP API of CONTRACT §5 against the real stack (Temporal dev server, PostgreSQL, an
//! in-process worker and data-platform receiver), one module per route group: every route,
//! every error with its details, the input rules at and past their limits, idempotency keys,
//! the rate limit and auth. Every test ends with the CONTRACT §6 check.
//!
//! Here: the walk through every route, which each group's module takes a step of, and the
//! requests the modules share.

mod admin;
mod auth;
mod errors;
mod idempotency;
mod me;
mod openapi;
mod orders;
mod pages;
mod payments;
mod products;
mod quote;
mod rate_limit;

use domain::{CouponId, OrderId, ProductId};
use saga_tests::http::{ApiApp, spawn_api};
use serde_json::{Value, json};
use testkit::Reply;
use testkit::shop::order_body;

type R = anyhow::Result<()>;

async fn place(
    api: &ApiApp,
    token: &str,
    items: &[(ProductId, i64)],
    coupon: Option<CouponId>,
) -> Reply {
    api.post("/api/v1/orders", Some(token), &order_body(items, coupon))
        .await
        .expect("the API answers")
}

async fn pay(api: &ApiApp, token: &str, order_id: &str) -> Reply {
    api.post(
        "/api/v1/payments",
        Some(token),
        &json!({"order_id": order_id}),
    )
    .await
    .expect("the API answers")
}

async fn cancel(api: &ApiApp, token: &str, order_id: &str) -> Reply {
    api.post(
        &format!("/api/v1/orders/{order_id}/cancel"),
        Some(token),
        &json!({}),
    )
    .await
    .expect("the API answers")
}

fn id_of(reply: &Reply) -> OrderId {
    OrderId::parse(reply.body["id"].as_str().expect("an order id")).expect("an order id")
}

async fn show(api: &ApiApp, token: &str, order_id: &str) -> Value {
    let shown = api
        .get(&format!("/api/v1/orders/{order_id}"), Some(token))
        .await
        .expect("the API answers");
    shown.assert_ok(200).clone()
}

async fn points_of(api: &ApiApp, token: &str) -> Value {
    let me = api
        .get("/api/v1/me", Some(token))
        .await
        .expect("the API answers");
    me.assert_ok(200)["points"].clone()
}

async fn stock_of(api: &ApiApp, token: &str, product: ProductId) -> Value {
    let shown = api
        .get(&format!("/api/v1/products/{product}"), Some(token))
        .await
        .expect("the API answers");
    shown.assert_ok(200)["stock"].clone()
}

/// Every route's success, as a shop lives: the admin routes make the shop, then a customer
/// reads the products and their account, tops up, places two orders, lists and shows them,
/// pays one and cancels the other.
#[tokio::test]
async fn every_route_succeeds() -> R {
    let api = spawn_api().await;
    let health = api.get("/health", None).await?;
    assert_eq!(health.assert_ok(200), &json!({"status": "ok"}));

    let shop = admin::make_a_shop(&api).await?;
    products::read_by_customers_and_admins(&api, &shop).await?;
    me::read_coupons_and_top_up(&api, &shop).await?;
    let (paid, canceled) = orders::place_list_and_show(&api, &shop).await?;
    payments::pay_with_a_coupon(&api, &shop, &paid).await?;
    orders::cancel_and_restock(&api, &shop, &canceled).await?;
    api.finish().await
}
