//! The receiver over real HTTP, spawned in-process on a free port.

use std::net::SocketAddr;
use std::time::Duration;

use receiver::{RunningReceiver, spawn};
use serde_json::{Value, json};

async fn start() -> RunningReceiver {
    spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind receiver")
}

async fn post(url: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.expect("send");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn base(rx: &RunningReceiver) -> String {
    rx.url.trim_end_matches("/events").to_owned()
}

#[tokio::test]
async fn a_post_is_remembered_by_key_and_a_repeat_is_a_duplicate() {
    let rx = start().await;
    assert!(rx.url.starts_with("http://127.0.0.1:") && rx.url.ends_with("/events"));

    let first = json!({"id": "order-1", "total": 1200});
    let (status, body) = post(&rx.url, Some("order-1"), &first).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"received": true, "duplicate": false}));

    let d = rx.state.delivery("order-1").expect("recorded");
    assert_eq!(d.body, first);
    assert_eq!(d.deliveries, 1);

    // A repeat keeps the first body and counts the delivery.
    let (status, body) = post(&rx.url, Some("order-1"), &json!({"id": "order-1", "x": 1})).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"received": true, "duplicate": true}));
    let d = rx.state.delivery("order-1").unwrap();
    assert_eq!(d.deliveries, 2);
    assert_eq!(d.body, first);

    let (status, body) = post(&rx.url, Some("order-2"), &json!({"id": "order-2"})).await;
    assert_eq!((status, body["duplicate"].clone()), (200, json!(false)));

    let keys: Vec<_> = rx
        .state
        .deliveries()
        .into_iter()
        .map(|d| d.idempotency_key)
        .collect();
    assert_eq!(keys, ["order-1", "order-2"]);
    assert_eq!(rx.state.attempts(), 3);
    assert!(rx.state.delivery("nope").is_none());

    // GET /events lists them with the first arrival time.
    let list: Vec<Value> = reqwest::get(&rx.url).await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["idempotency_key"], "order-1");
    assert_eq!(list[0]["deliveries"], 2);
    assert_eq!(list[0]["body"], first);
    assert!(
        list[0]["first_received_at"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );
}

#[tokio::test]
async fn fail_next_fails_exactly_n_posts_and_counts_them() {
    let rx = start().await;
    rx.state.fail_next(2);
    let body = json!({"id": "o"});
    assert_eq!(post(&rx.url, Some("o"), &body).await.0, 500);
    assert_eq!(post(&rx.url, Some("o"), &body).await.0, 500);
    assert!(
        rx.state.delivery("o").is_none(),
        "failed attempts are not deliveries"
    );
    assert_eq!(post(&rx.url, Some("o"), &body).await.0, 200);
    assert_eq!(rx.state.attempts(), 3);
    assert_eq!(rx.state.failed_attempts(), 2);
    assert_eq!(rx.state.delivery("o").unwrap().deliveries, 1);
}

#[tokio::test]
async fn fail_for_fails_until_stopped() {
    let rx = start().await;
    rx.state.fail_for(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(post(&rx.url, Some("k"), &json!({})).await.0, 500);
    }
    rx.state.stop_failing();
    assert_eq!(post(&rx.url, Some("k"), &json!({})).await.0, 200);

    rx.state.fail_for(Duration::from_millis(200));
    assert_eq!(post(&rx.url, Some("k"), &json!({})).await.0, 500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post(&rx.url, Some("k"), &json!({})).await.0, 200);
    assert_eq!(rx.state.attempts(), 6);
}

#[tokio::test]
async fn a_post_without_key_is_400_and_uses_no_failure() {
    let rx = start().await;
    rx.state.fail_next(1);
    let (status, body) = post(&rx.url, None, &json!({"id": "x"})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("Idempotency-Key"));
    assert_eq!(rx.state.attempts(), 1);
    assert!(rx.state.deliveries().is_empty());
    // The pending failure is still there for the next keyed POST.
    assert_eq!(post(&rx.url, Some("x"), &json!({})).await.0, 500);

    // A body that is not JSON is refused too.
    let res = reqwest::Client::new()
        .post(&rx.url)
        .header("Idempotency-Key", "y")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn control_route_and_health() {
    let rx = start().await;
    let client = reqwest::Client::new();
    let control = format!("{}/control/fail", base(&rx));

    let health: Value = reqwest::get(format!("{}/health", base(&rx)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let res = client
        .post(&control)
        .json(&json!({"requests": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(post(&rx.url, Some("a"), &json!({})).await.0, 500);
    assert_eq!(post(&rx.url, Some("a"), &json!({})).await.0, 200);

    let res = client
        .post(&control)
        .json(&json!({"seconds": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(post(&rx.url, Some("a"), &json!({})).await.0, 500);

    let res = client.post(&control).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(post(&rx.url, Some("a"), &json!({})).await.0, 200);

    let res = client
        .post(&control)
        .json(&json!({"seconds": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn wait_for_sees_a_later_delivery() {
    let rx = start().await;
    let url = rx.url.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(&url, Some("late"), &json!({"n": 1})).await;
    });
    let d = rx
        .state
        .wait_for("late", Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(d.deliveries, 1);
    assert!(
        rx.state
            .wait_for("never", Duration::from_millis(50))
            .await
            .is_none()
    );
}
