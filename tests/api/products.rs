//! `GET /api/v1/products` and `GET /api/v1/products/{id}`.

use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};

use crate::R;
use crate::admin::Shop;

/// The walk's step: the products, for customers and admins.
pub async fn read_by_customers_and_admins(api: &ApiApp, shop: &Shop) -> R {
    let list = api.get("/api/v1/products", Some(&shop.me)).await?;
    assert!(
        list.assert_ok(200)
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["id"] == shop.pid.get()))
    );
    let one = api
        .get(&format!("/api/v1/products/{}", shop.pid), Some(&shop.admin))
        .await?;
    assert_eq!(one.assert_ok(200), &shop.product);
    Ok(())
}

#[tokio::test]
async fn a_product_id_that_is_no_number_is_an_invalid_request() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    api.get("/api/v1/products/abc", Some(&me))
        .await?
        .assert_error(400, "INVALID_REQUEST");
    api.finish().await
}
