//! `GET /api/v1/openapi.json`: the document lists exactly the routes the router serves.

use reqwest::Method;
use saga_tests::http::spawn_api;

use crate::R;

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() -> R {
    let api = spawn_api().await;
    let doc = api.get("/api/v1/openapi.json", None).await?;
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
        ("POST", "/api/v1/orders/quote"),
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
            .await?;
        assert!(
            !matches!(r.code(), "NOT_FOUND" | "METHOD_NOT_ALLOWED"),
            "{method} {path} is documented but not served: {}",
            r.text
        );
    }
    // And what is not documented is not served.
    api.get("/api/v1/nope", Some(&admin))
        .await?
        .assert_error(404, "NOT_FOUND");
    api.send(Method::DELETE, "/api/v1/orders", Some(&admin), None, None)
        .await?
        .assert_error(405, "METHOD_NOT_ALLOWED");
    api.finish().await
}
