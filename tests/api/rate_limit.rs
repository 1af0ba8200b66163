//! The rate limit (CONTRACT §3's `RATE_LIMIT`) on every route a customer token reaches.

use runtime::settings::RateLimit;
use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::json;
use std::time::Duration;
use testkit::Reply;

use crate::R;

/// `n` requests of `token`'s at once.
async fn burst(api: &ApiApp, token: &str, path: &str, n: usize) -> Vec<Reply> {
    futures::future::join_all((0..n).map(|_| api.get(path, Some(token))))
        .await
        .into_iter()
        .map(|r| r.expect("the API answers"))
        .collect()
}

/// Sends `token`'s requests, ten at a time, until one is refused for the rate; that refusal.
async fn until_limited(api: &ApiApp, token: &str) -> Reply {
    for _ in 0..100 {
        if let Some(r) = burst(api, token, "/api/v1/me", 10)
            .await
            .into_iter()
            .find(|r| r.status == 429)
        {
            return r;
        }
    }
    panic!("a thousand requests, ten at a time, and none refused for the rate")
}

/// A 429's `Retry-After`: whole seconds, at least 1, and the same as `details.retry_after`.
#[track_caller]
fn retry_after(r: &Reply) -> u64 {
    let details = r.assert_error(429, "RATE_LIMITED").clone();
    let header = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let seconds: u64 = header
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {header:?}"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    assert_eq!(details, json!({"retry_after": seconds}), "{}", r.text);
    seconds
}

/// CONTRACT §3's default `RATE_LIMIT`, 20/s per customer token with bursts of 40, through the
/// real API: counted per user after authentication, admins not counted, and a 429 never kept
/// under an Idempotency-Key.
#[tokio::test]
async fn the_default_rate_limit_is_per_customer_and_never_kept_under_a_key() -> R {
    let api = spawn_api_with_rate_limit(Some(RateLimit::DEFAULT)).await;
    let alice = api.app.user(1_000).await;
    let bob = api.app.user(1_000).await;
    let (a, b, admin) = (api.customer(alice), api.customer(bob), api.admin());

    // A burst of 40 is served (the bucket starts full and only fills up meanwhile) ...
    for r in burst(&api, &a, "/api/v1/me", 40).await {
        r.assert_ok(200);
    }
    // ... and what follows at once is refused, until the bucket fills again.
    let refused = until_limited(&api, &a).await;
    retry_after(&refused);
    // Another user has a bucket of their own.
    for r in burst(&api, &b, "/api/v1/products", 40).await {
        r.assert_ok(200);
    }
    // An admin is not limited.
    for r in burst(&api, &admin, "/api/v1/products", 200).await {
        r.assert_ok(200);
    }

    // A keyed top-up refused for the rate is not the key's answer: repeated after the wait,
    // it runs. (Its bucket may have refilled a token just before it: then it ran, and
    // another key is tried.)
    let charge = "/api/v1/me/points/charge";
    let mut points = 1_000;
    let (key, wait) = 'limited: {
        for i in 0..20 {
            until_limited(&api, &a).await;
            let key = format!("rate-{i}");
            let r = api
                .post_keyed(charge, &a, &json!({"amount": 7}), &key)
                .await?;
            if r.status == 429 {
                break 'limited (key, retry_after(&r));
            }
            points += 7;
            assert_eq!(r.assert_ok(200)["points"], points);
        }
        panic!("no keyed top-up was refused for the rate");
    };
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(alice.get())
            .bind(&key)
            .fetch_one(&api.app.db)
            .await?;
    assert_eq!(kept, 0, "a 429 is not kept under its key");
    assert_eq!(api.app.points(alice).await, points);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let answered = api
        .post_keyed(charge, &a, &json!({"amount": 7}), &key)
        .await?;
    points += 7;
    assert_eq!(answered.assert_ok(200)["points"], points);
    let again = api
        .post_keyed(charge, &a, &json!({"amount": 7}), &key)
        .await?;
    assert_eq!(
        (again.status, &again.body),
        (answered.status, &answered.body)
    );
    assert_eq!(api.app.points(alice).await, points);

    // The document says so for every route a customer token reaches, and only for those.
    let doc = api.get("/api/v1/openapi.json", None).await?;
    for (path, item) in doc.assert_ok(200)["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let customer = operation.get("security").is_some() && !path.contains("/admin/");
            let documented = operation["responses"].get("429").is_some();
            assert_eq!(documented, customer, "{method} {path}");
        }
    }
    api.finish().await
}
