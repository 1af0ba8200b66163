//! Authentication and authorisation on every route group: the tokens the API refuses (401),
//! another user's order (404, its existence not told), and the roles (403).

use domain::{OrderId, UserId};
use saga_tests::http::spawn_api;
use serde_json::{Value, json};
use testkit::tokens::{self, Algorithm};

use crate::{R, cancel, id_of, pay, place};

/// The tokens the API must refuse, each with why, for `user` (another user: `other`).
fn refused(secret: &str, user: UserId, other: UserId) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let claims = |sub: &str, role: &str| json!({"sub": sub, "role": role, "exp": now + 600});
    let hs256 = |claims: &Value| tokens::sign(claims, Algorithm::HS256, secret.as_bytes());
    let customer = claims(&user.to_string(), "customer");
    let valid = hs256(&customer);
    let none = tokens::unsigned(&json!({"alg": "none", "typ": "JWT"}), &customer);
    let tampered_sub = tokens::tamper(&valid, &claims(&other.to_string(), "customer"));
    vec![
        ("no scheme", valid.clone()),
        ("garbage", "not-a-token".to_owned()),
        ("alg none", none),
        (
            "HS384",
            tokens::sign(&customer, Algorithm::HS384, secret.as_bytes()),
        ),
        (
            "HS512",
            tokens::sign(&customer, Algorithm::HS512, secret.as_bytes()),
        ),
        (
            "wrong secret",
            tokens::sign(&customer, Algorithm::HS256, b"wrong"),
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
            hs256(&claims(&(user.get() + 999).to_string(), "customer")),
        ),
    ]
}

#[tokio::test]
async fn tokens_the_api_refuses_are_401() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let other = api.app.user(10_000).await;
    let secret = api.app.settings.auth_secret.clone();
    let now = chrono::Utc::now().timestamp();
    let valid = tokens::sign(
        &json!({"sub": user.to_string(), "role": "customer", "exp": now + 600}),
        Algorithm::HS256,
        secret.as_bytes(),
    );
    api.get("/api/v1/me", Some(&valid)).await?.assert_ok(200);

    for (why, token) in &refused(&secret, user, other) {
        let r = if *why == "no scheme" {
            let req = api
                .http
                .get(format!("{}/api/v1/me", api.base))
                .header("Authorization", token.as_str());
            api.reply(req).await?
        } else {
            api.get("/api/v1/me", Some(token)).await?
        };
        assert_eq!(r.code(), "UNAUTHENTICATED", "{why}: {}", r.text);
        r.assert_error(401, "UNAUTHENTICATED");
    }
    api.get("/api/v1/products", None)
        .await?
        .assert_error(401, "UNAUTHENTICATED");
    api.finish().await
}

#[tokio::test]
async fn another_users_order_is_not_found_and_roles_are_kept() -> R {
    let api = spawn_api().await;
    let user = api.app.user(10_000).await;
    let other = api.app.user(10_000).await;
    let a = api.app.product(1_000, 5).await;

    // Another user's order is not found, whatever the route.
    let me = api.customer(user);
    let theirs = place(&api, &api.customer(other), &[(a, 1)], None).await;
    let tid = id_of(&theirs);
    api.get(&format!("/api/v1/orders/{tid}"), Some(&me))
        .await?
        .assert_error(404, "ORDER_NOT_FOUND");
    pay(&api, &me, &tid)
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    cancel(&api, &me, &tid)
        .await
        .assert_error(404, "ORDER_NOT_FOUND");
    let listed = api.get("/api/v1/orders", Some(&me)).await?;
    assert_eq!(listed.assert_ok(200), &json!([]));
    // Roles: a customer on admin routes is 403; an admin reads products but has no "me".
    let admin = api.admin();
    for path in [
        "/api/v1/admin/users",
        "/api/v1/admin/products",
        "/api/v1/admin/coupons",
    ] {
        api.post(path, Some(&me), &json!({}))
            .await?
            .assert_error(403, "FORBIDDEN");
    }
    api.get("/api/v1/products", Some(&admin))
        .await?
        .assert_ok(200);
    api.get("/api/v1/me", Some(&admin))
        .await?
        .assert_error(403, "FORBIDDEN");
    api.get("/api/v1/orders", Some(&admin))
        .await?
        .assert_error(403, "FORBIDDEN");

    api.app
        .service
        .cancel(&OrderId::parse(&tid).unwrap())
        .await?;
    api.finish().await
}
