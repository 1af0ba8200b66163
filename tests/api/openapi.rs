//! `GET /api/v1/openapi.json`: the document lists exactly the routes the router serves, with
//! the input rules and the answers of CONTRACT §5. (schemathesis, in `make test`, holds the
//! API to it: scripts/schemathesis.sh.)

use reqwest::Method;
use saga_tests::http::spawn_api;
use serde_json::{Value, json};

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
        ("POST", "/api/v1/admin/products/{id}/restock"),
        ("GET", "/api/v1/admin/orders"),
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

/// The operation `method path` of the document.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

/// The statuses an operation documents.
fn statuses(doc: &Value, method: &str, path: &str) -> Vec<String> {
    let responses = operation(doc, method, path)["responses"].as_object();
    responses.expect("responses").keys().cloned().collect()
}

/// A parameter of an operation, by name.
fn parameter<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
    let params = operation(doc, method, path)["parameters"].as_array();
    let found = params.into_iter().flatten().find(|p| p["name"] == name);
    found.unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

#[tokio::test]
async fn the_document_states_every_input_rule_and_answer() -> R {
    let api = spawn_api().await;
    let doc = api
        .get("/api/v1/openapi.json", None)
        .await?
        .assert_ok(200)
        .clone();
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let range = |s: &Value| (s["minimum"].as_i64(), s["maximum"].as_i64());
    // CONTRACT §5's input rules.
    let items = schema("PlaceOrderRequest")["properties"]["items"].clone();
    assert_eq!(
        (
            &items["minItems"],
            &items["maxItems"],
            &items["uniqueItems"]
        ),
        (&json!(1), &json!(50), &json!(true))
    );
    assert_eq!(
        range(&schema("LineRequest")["properties"]["quantity"]),
        (Some(1), Some(1000))
    );
    let shipping = schema("Shipping")["properties"].clone();
    for (field, max) in [("recipient", 100), ("address", 300)] {
        assert_eq!(
            (&shipping[field]["minLength"], &shipping[field]["maxLength"]),
            (&json!(1), &json!(max))
        );
    }
    assert_eq!(shipping["phone"]["pattern"], "^[0-9 +-]{7,20}$");
    assert_eq!(
        range(&schema("TopUpRequest")["properties"]["amount"]),
        (Some(1), Some(10_000_000))
    );
    assert_eq!(
        range(&schema("RestockRequest")["properties"]["quantity"]),
        (Some(1), Some(1_000_000))
    );
    for path in ["/api/v1/orders", "/api/v1/admin/orders"] {
        let limit = parameter(&doc, "get", path, "limit");
        assert_eq!(
            (&limit["in"], range(&limit["schema"])),
            (&json!("query"), (Some(1), Some(1000)))
        );
        assert_eq!(parameter(&doc, "get", path, "cursor")["in"], "query");
    }
    assert!(
        parameter(&doc, "get", "/api/v1/admin/orders", "status")["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/OrderStatus"))
    );
    let keyed = [
        "/api/v1/orders",
        "/api/v1/payments",
        "/api/v1/me/points/charge",
        "/api/v1/admin/products/{id}/restock",
    ];
    for path in keyed {
        let key = &parameter(&doc, "post", path, "Idempotency-Key")["schema"];
        assert_eq!(
            (&key["minLength"], &key["maxLength"]),
            (&json!(1), &json!(200)),
            "{path}"
        );
        assert!(key["pattern"].is_string(), "{path}");
        for status in ["400", "409", "413"] {
            assert!(
                statuses(&doc, "post", path).contains(&status.to_owned()),
                "{path} {status}"
            );
        }
    }
    every_route_documents_its_refusals(&doc);
    // Placement links to its payment, and the payment to the order.
    let links = &operation(&doc, "post", "/api/v1/orders")["responses"]["201"]["links"];
    assert_eq!(links["PayTheOrder"]["operationId"], "pay");
    assert_eq!(
        links["PayTheOrder"]["requestBody"]["order_id"],
        "$response.body#/id"
    );
    let links = &operation(&doc, "post", "/api/v1/payments")["responses"]["200"]["links"];
    assert_eq!(links["ReadThePaidOrder"]["operationId"], "get_order");
    api.finish().await
}

/// Every authenticated route answers 401, 503, and 403 to the other role's token (but the
/// product routes, open to both); every route but the admin's 429.
fn every_route_documents_its_refusals(doc: &Value) {
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let op = operation(doc, method, path);
            if op["security"].is_null() {
                continue;
            }
            let has = statuses(doc, method, path);
            let one_role = op["tags"] != json!(["products"]);
            let admin = op["tags"] == json!(["admin"]);
            for (status, wanted) in [
                ("401", true),
                ("503", true),
                ("403", one_role),
                ("429", !admin),
            ] {
                assert_eq!(
                    has.contains(&status.to_owned()),
                    wanted,
                    "{method} {path} {status}"
                );
            }
        }
    }
}
