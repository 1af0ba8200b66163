//! Regression tests for what `chaos` found: a client that lost the answer to a keyed payment
//! (the API answered 503 after its 15 s deadline, which keeps nothing, or died mid-request) must
//! learn the payment's outcome by repeating it with its Idempotency-Key. Before the fix, the
//! repeat was a new payment and got 409 `ORDER_NOT_PAYABLE` (`PAYING` then, or `COMPLETED` by the
//! very payment it asked about), and that refusal was then kept under the key for good.
//!
//! Losing the answer is simulated by deleting the key's row, which is what the API does when
//! it answers 503.

use domain::ProductId;
use std::time::Duration;

use saga_tests::http::{ApiApp, spawn_api};
use serde_json::{Value, json};
use testkit::Reply;
use testkit::shop::order_body;

type R = anyhow::Result<()>;

async fn place(api: &ApiApp, token: &str, product: ProductId, quantity: i64) -> String {
    let placed = api
        .post(
            "/api/v1/orders",
            Some(token),
            &order_body(&[(product, quantity)], None),
        )
        .await
        .expect("an answer");
    placed.assert_ok(201)["id"]
        .as_str()
        .expect("an order id")
        .to_owned()
}

async fn forget_key(api: &ApiApp, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1")
        .bind(key)
        .execute(&api.app.db)
        .await?;
    Ok(())
}

async fn pay(api: &ApiApp, token: &str, order: &str, key: &str) -> Reply {
    api.post_keyed("/api/v1/payments", token, &json!({"order_id": order}), key)
        .await
        .expect("an answer")
}

/// A keyed payment sent from a task of its own, so that the test goes on while it waits; its
/// status and body.
fn spawn_pay(
    api: &ApiApp,
    token: &str,
    order: &str,
    key: &str,
) -> tokio::task::JoinHandle<Result<(u16, Value), reqwest::Error>> {
    let request = api
        .http
        .post(format!("{}/api/v1/payments", api.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"order_id": order}));
    tokio::spawn(async move {
        let r = request.send().await?;
        Ok((r.status().as_u16(), r.json::<Value>().await?))
    })
}

#[tokio::test]
async fn a_keyed_payment_repeated_while_it_runs_answers_its_outcome() -> R {
    let api = spawn_api().await;
    let user = api.app.user(50_000).await;
    let product = api.app.product(5_000, 5).await;
    let token = api.customer(user);
    let order = place(&api, &token, product, 2).await;

    // Hold the product's row: the payment charges, then waits in its last step.
    let mut blocker = api.app.db.begin().await?;
    sqlx::query("SELECT stock FROM products WHERE id = $1 FOR UPDATE")
        .bind(product.get())
        .execute(&mut *blocker)
        .await?;
    let first = spawn_pay(&api, &token, &order, "pay-once");
    api.app.wait_for_lock_waiters(1).await?;
    // The first request's answer is lost: its key is forgotten, as after a 503.
    forget_key(&api, "pay-once").await?;
    let repeat = spawn_pay(&api, &token, &order, "pay-once");
    // Let the repeat reach the workflow before the payment goes on: it has claimed the key
    // again (so it runs, rather than waiting for the first), then had a moment to send its
    // update.
    let mut claimed = false;
    for _ in 0..100 {
        claimed =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE key = $1)")
                .bind("pay-once")
                .fetch_one(&api.app.db)
                .await?;
        if claimed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(claimed, "the repeat never claimed its key");
    tokio::time::sleep(Duration::from_secs(1)).await;
    blocker.rollback().await?;

    let (status, body) = repeat.await??;
    assert_eq!(status, 200, "the repeat must learn the outcome: {body}");
    assert_eq!(body["status"], "COMPLETED");
    assert_eq!(body["id"], order.as_str());
    let (first_status, first) = first.await??;
    assert_eq!(first_status, 200, "the first request's own answer: {first}");
    assert_eq!(first["status"], "COMPLETED");
    assert_eq!(api.app.points(user).await, 40_000, "charged once");
    assert_eq!(api.app.stock(product).await, 3, "deducted once");
    api.finish().await
}

#[tokio::test]
async fn a_keyed_payment_repeated_after_the_order_closed_answers_its_outcome() -> R {
    let api = spawn_api().await;
    let user = api.app.user(50_000).await;
    let product = api.app.product(5_000, 5).await;
    let token = api.customer(user);
    let order = place(&api, &token, product, 1).await;

    let paid = pay(&api, &token, &order, "pay-then-lost").await;
    assert_eq!(paid.assert_ok(200)["status"], "COMPLETED");
    // The workflow has told the data platform and closed.
    api.app.result(&order).await?;
    forget_key(&api, "pay-then-lost").await?;

    let again = pay(&api, &token, &order, "pay-then-lost").await;
    assert_eq!(
        again.assert_ok(200)["status"],
        "COMPLETED",
        "the same payment, asked again, answers its outcome"
    );
    // A payment under another key is another payment: refused, nothing charged.
    let other = pay(&api, &token, &order, "another-payment").await;
    assert_eq!(
        other.assert_error(409, "ORDER_NOT_PAYABLE"),
        &json!({"status": "COMPLETED"})
    );
    assert_eq!(api.app.points(user).await, 45_000, "charged once");
    api.finish().await
}

#[tokio::test]
async fn a_keyed_payment_that_failed_repeats_its_failure() -> R {
    let api = spawn_api().await;
    let user = api.app.user(50_000).await;
    let other = api.app.user(50_000).await;
    let product = api.app.product(5_000, 1).await;
    let token = api.customer(user);
    let order = place(&api, &token, product, 1).await;
    // The last unit goes to someone else between placement and payment.
    let theirs = place(&api, &api.customer(other), product, 1).await;
    pay(&api, &api.customer(other), &theirs, "theirs")
        .await
        .assert_ok(200);

    let refused = pay(&api, &token, &order, "too-late").await;
    assert_eq!(
        refused.assert_error(409, "INSUFFICIENT_STOCK"),
        &json!({"product_id": product, "available": 0})
    );
    api.app.result(&order).await?;
    forget_key(&api, "too-late").await?;
    let again = pay(&api, &token, &order, "too-late").await;
    assert_eq!(
        again.assert_error(409, "INSUFFICIENT_STOCK"),
        &refused.body["details"]
    );
    assert_eq!(again.body, refused.body, "the same answer");
    assert_eq!(api.app.points(user).await, 50_000, "refunded");
    api.finish().await
}
