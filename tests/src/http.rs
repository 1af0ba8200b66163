//! The HTTP API on top of [`crate::spawn_app`]: [`spawn_api`] serves `starter`'s router on a
//! free port of its own, with the test app's database, task queue and Temporal client.

use std::time::Duration;

use anyhow::Result;
use reqwest::{Method, StatusCode};
use runtime::settings::RateLimit;
use serde_json::Value;
use starter::http::AppState;
use starter::token::{self, Role};

use crate::{TestApp, spawn_app, spawn_app_with};

pub struct ApiApp {
    pub app: TestApp,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

/// An answer: its status and its JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The contract's error code of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and the error code, and that the body has exactly the contract's
    /// three fields.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
        let obj = self.body.as_object().expect("an error body is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "details", "message"], "{}", self.text);
        assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(obj["details"].is_object(), "{}", self.text);
        &self.body["details"]
    }

    #[track_caller]
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.text
        );
        &self.body
    }
}

pub async fn spawn_api() -> ApiApp {
    api_for(spawn_app().await).await
}

/// [`spawn_api`] with another `RATE_LIMIT` than the environment's (`None`: `off`, for tests
/// that flood one user with requests on purpose).
pub async fn spawn_api_with_rate_limit(rate_limit: Option<RateLimit>) -> ApiApp {
    let mut app = spawn_app().await;
    app.settings.rate_limit = rate_limit;
    api_for(app).await
}

/// [`spawn_api`] with another payment timeout (for orders that must expire).
pub async fn spawn_api_with(payment_timeout: Duration) -> ApiApp {
    api_for(spawn_app_with(payment_timeout).await).await
}

async fn api_for(app: TestApp) -> ApiApp {
    let state = AppState::from_parts(
        app.settings.clone(),
        app.db.clone(),
        Some(app.client.clone()),
    );
    serve(app, state).await
}

/// Serves `state` for `app` (tests that break the database or Temporal on purpose build their
/// own state).
pub async fn serve(app: TestApp, state: AppState) -> ApiApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let server = tokio::spawn(async move {
        let _ = starter::http::serve(listener, state, std::future::pending()).await;
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    ApiApp {
        app,
        base,
        http,
        server,
    }
}

impl ApiApp {
    pub fn customer(&self, user_id: i64) -> String {
        token::mint(
            &self.app.settings.auth_secret,
            &user_id.to_string(),
            Role::Customer,
            Duration::from_secs(3600),
        )
        .expect("mint")
    }

    pub fn admin(&self) -> String {
        token::mint(
            &self.app.settings.auth_secret,
            "ops",
            Role::Admin,
            Duration::from_secs(3600),
        )
        .expect("mint")
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.reply(req).await
    }

    /// Sends a raw body with `Content-Type: application/json`.
    pub async fn send_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.reply(req).await
    }

    pub async fn reply(&self, req: reqwest::RequestBuilder) -> Reply {
        let response = req.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(Method::POST, path, token, Some(body), None).await
    }

    pub async fn post_keyed(&self, path: &str, token: &str, body: &Value, key: &str) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body), Some(key))
            .await
    }

    /// Stops the server, then ends the test as [`TestApp::finish`] does (every workflow closed,
    /// CONTRACT §6 checked).
    pub async fn finish(self) -> Result<()> {
        self.server.abort();
        self.app.finish().await
    }
}
