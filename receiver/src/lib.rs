//! The local stand-in for the external data platform (CONTRACT §2 step 4).
//!
//! `POST /events` records an order by its `Idempotency-Key`: the first body is kept, every
//! delivery is counted, and a repeat is answered as a duplicate. The receiver can be told to fail
//! (answer 500) for the next N requests or for a while, so the saga's retries can be exercised.
//!
//! Routes:
//! - `POST /events` (JSON body, header `Idempotency-Key`): 200 `{"received":true,"duplicate":bool}`,
//!   400 without the header or with a body that is not JSON, 500 while told to fail.
//! - `GET /events`: the recorded events, in order of first arrival:
//!   `[{"idempotency_key","body","deliveries","first_received_at"}]`.
//! - `POST /control/fail` with `{"requests":N}`, `{"seconds":S}` (both may be given) or `{}`
//!   (stop failing): 200 with the failure settings now in force.
//! - `GET /health`: 200 `{"status":"ok"}`.
//!
//! Tests use it in-process with [`spawn`] and steer it through [`ReceiverState`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The header that names a delivery.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One event as the platform knows it: the first body sent under a key and how many deliveries
/// under that key were accepted (failed attempts are not deliveries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub idempotency_key: String,
    pub body: Value,
    pub deliveries: u32,
}

/// An entry of `GET /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub idempotency_key: String,
    pub body: Value,
    pub deliveries: u32,
    pub first_received_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Records in order of first arrival.
    records: Vec<EventRecord>,
    /// Key → index in `records`.
    index: HashMap<String, usize>,
    /// Every `POST /events`, including failed and rejected ones.
    attempts: u64,
    /// Failed (500) answers given.
    failed: u64,
    fail_remaining: u32,
    fail_until: Option<Instant>,
}

impl Inner {
    /// Whether this request must fail; consumes one of `fail_remaining` if so.
    fn take_failure(&mut self) -> bool {
        if let Some(until) = self.fail_until {
            if Instant::now() < until {
                return true;
            }
            self.fail_until = None;
        }
        if self.fail_remaining > 0 {
            self.fail_remaining -= 1;
            return true;
        }
        false
    }

    fn failing_for(&self) -> Duration {
        self.fail_until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }
}

/// The receiver's shared state; cheap to clone (an `Arc` inside).
#[derive(Debug, Clone, Default)]
pub struct ReceiverState {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
}

impl ReceiverState {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code panics while holding the lock, but never let a poisoned lock take the
        // receiver down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fail (500) the next `n` POSTs to `/events`, on top of any failure already in force.
    pub fn fail_next(&self, n: u32) {
        let mut g = self.lock();
        g.fail_remaining = g.fail_remaining.saturating_add(n);
    }

    /// Fail every POST to `/events` for `d` from now.
    pub fn fail_for(&self, d: Duration) {
        self.lock().fail_until = Some(Instant::now() + d);
    }

    /// Stop failing: clears both `fail_next` and `fail_for`.
    pub fn stop_failing(&self) {
        let mut g = self.lock();
        g.fail_remaining = 0;
        g.fail_until = None;
    }

    /// Forget every event and counter (failure settings are kept).
    pub fn reset(&self) {
        let mut g = self.lock();
        g.records.clear();
        g.index.clear();
        g.attempts = 0;
        g.failed = 0;
    }

    /// Every recorded event, in order of first arrival.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().records.iter().map(to_delivery).collect()
    }

    /// Every recorded event with its first arrival time, in order of first arrival.
    pub fn records(&self) -> Vec<EventRecord> {
        self.lock().records.clone()
    }

    /// The event recorded under `key`, if any.
    pub fn delivery(&self, key: &str) -> Option<Delivery> {
        let g = self.lock();
        g.index.get(key).map(|&i| to_delivery(&g.records[i]))
    }

    /// All POSTs to `/events` so far, including failed and rejected ones.
    pub fn attempts(&self) -> u64 {
        self.lock().attempts
    }

    /// POSTs to `/events` answered with a (simulated) 500.
    pub fn failed_attempts(&self) -> u64 {
        self.lock().failed
    }

    /// Wait until an event under `key` has been accepted, at most `timeout`.
    pub async fn wait_for(&self, key: &str, timeout: Duration) -> Option<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so an event between check and wait is not missed.
            notified.as_mut().enable();
            if let Some(d) = self.delivery(key) {
                return Some(d);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.delivery(key);
            }
        }
    }

    /// Record one accepted delivery; returns whether the key was seen before.
    fn record(&self, key: &str, body: Value) -> bool {
        let duplicate = {
            let mut g = self.lock();
            match g.index.get(key).copied() {
                Some(i) => {
                    let r = &mut g.records[i];
                    r.deliveries = r.deliveries.saturating_add(1);
                    if r.body != body {
                        tracing::warn!(
                            key,
                            "duplicate delivery with a different body; keeping the first"
                        );
                    }
                    true
                }
                None => {
                    let i = g.records.len();
                    g.records.push(EventRecord {
                        idempotency_key: key.to_owned(),
                        body,
                        deliveries: 1,
                        first_received_at: Utc::now(),
                    });
                    g.index.insert(key.to_owned(), i);
                    false
                }
            }
        };
        self.changed.notify_waiters();
        duplicate
    }
}

fn to_delivery(r: &EventRecord) -> Delivery {
    Delivery {
        idempotency_key: r.idempotency_key.clone(),
        body: r.body.clone(),
        deliveries: r.deliveries,
    }
}

/// The receiver's routes over `state`.
pub fn router(state: ReceiverState) -> Router {
    Router::new()
        .route("/events", post(post_event).get(list_events))
        .route("/control/fail", post(control_fail))
        .route("/health", get(health))
        .with_state(state)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, &'static str> {
    match headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => Err("missing Idempotency-Key header"),
        Some(Err(_)) => Err("Idempotency-Key must be visible ASCII"),
        Some(Ok(k)) if k.trim().is_empty() => Err("empty Idempotency-Key header"),
        Some(Ok(k)) => Ok(k.to_owned()),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn post_event(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = idempotency_key(&headers);
    let failing = {
        let mut g = state.lock();
        g.attempts += 1;
        // A request without a usable key is refused before any failure is simulated, so it
        // never uses up one of `fail_next`.
        let failing = key.is_ok() && g.take_failure();
        if failing {
            g.failed += 1;
        }
        failing
    };
    let key = match key {
        Ok(k) => k,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };

    if failing {
        tracing::info!(key, "failing delivery as told (500)");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "simulated failure");
    }

    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")),
    };
    let duplicate = state.record(&key, body);
    tracing::info!(key, duplicate, "event received");
    axum::Json(json!({ "received": true, "duplicate": duplicate })).into_response()
}

async fn list_events(State(state): State<ReceiverState>) -> axum::Json<Vec<EventRecord>> {
    axum::Json(state.records())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailRequest {
    requests: Option<u32>,
    seconds: Option<f64>,
}

async fn control_fail(State(state): State<ReceiverState>, body: Bytes) -> Response {
    let req: FailRequest = if body.iter().all(u8::is_ascii_whitespace) {
        FailRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(r#"expected {{"requests":N}}, {{"seconds":S}} or {{}}: {e}"#),
                );
            }
        }
    };
    let seconds = match req.seconds {
        Some(s) if !(0.0..=1.0e9).contains(&s) => {
            return error(StatusCode::BAD_REQUEST, "seconds must be between 0 and 1e9");
        }
        other => other,
    };

    state.stop_failing();
    if let Some(n) = req.requests {
        state.fail_next(n);
    }
    if let Some(s) = seconds {
        state.fail_for(Duration::from_secs_f64(s));
    }
    let (remaining, for_secs) = {
        let g = state.lock();
        (g.fail_remaining, g.failing_for().as_secs_f64())
    };
    tracing::info!(
        requests = remaining,
        seconds = for_secs,
        "failure settings changed"
    );
    axum::Json(json!({ "fail_requests": remaining, "fail_seconds": for_secs })).into_response()
}

async fn health() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

/// A receiver serving in a background tokio task (it lives as long as the runtime).
#[derive(Debug, Clone)]
pub struct RunningReceiver {
    /// `http://ip:port/events`, ready for `DATA_PLATFORM_URL`.
    pub url: String,
    pub state: ReceiverState,
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
}

/// Bind `addr` (port 0 picks a free port) and serve the receiver in a tokio task.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<RunningReceiver> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = ReceiverState::new();
    let app = router(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "data-platform receiver stopped");
        }
    });
    Ok(RunningReceiver {
        url: format!("http://{addr}/events"),
        state,
        addr,
    })
}

/// Serve the receiver on `listener` until `shutdown` completes, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ReceiverState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The `host:port` part of an `http://host:port/path` URL (port 80/443 when not given).
pub fn host_port_of_url(url: &str) -> Option<String> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        (r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else {
        (url, 80)
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop any `user:pass@`.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.is_empty() {
        return None;
    }
    let has_port = if authority.starts_with('[') {
        authority.contains("]:")
    } else {
        authority.contains(':')
    };
    Some(if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_is_taken_from_the_url() {
        let hp = |u| host_port_of_url(u);
        assert_eq!(
            hp("http://127.0.0.1:8090/events").as_deref(),
            Some("127.0.0.1:8090")
        );
        assert_eq!(
            hp("http://localhost/events").as_deref(),
            Some("localhost:80")
        );
        assert_eq!(
            hp("https://example.test").as_deref(),
            Some("example.test:443")
        );
        assert_eq!(hp("http://[::1]:9000/x").as_deref(), Some("[::1]:9000"));
        assert_eq!(hp("http://[::1]/x").as_deref(), Some("[::1]:80"));
        assert_eq!(hp("http://u:p@h:1/x").as_deref(), Some("h:1"));
        assert_eq!(hp("http:///x"), None);
    }

    #[test]
    fn fail_next_then_fail_for_then_stop() {
        let s = ReceiverState::new();
        s.fail_next(2);
        assert!(s.lock().take_failure());
        assert!(s.lock().take_failure());
        assert!(!s.lock().take_failure());
        s.fail_for(Duration::from_secs(60));
        assert!(s.lock().take_failure());
        assert!(s.lock().take_failure());
        s.stop_failing();
        assert!(!s.lock().take_failure());
        s.fail_for(Duration::ZERO);
        assert!(!s.lock().take_failure());
    }
}
