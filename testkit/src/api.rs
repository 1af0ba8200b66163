//! Talking to the API as a client would: JSON requests with a bearer token and an
//! `Idempotency-Key`, raw requests as an attacker sends them, and the repeat a careful client
//! makes (the same request with the same key after a 503 or a lost connection).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use domain::UserId;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use starter::token::{self, Role};

use crate::reply::Reply;

/// An answer, or `Err` when none came (connection refused or reset, timeout).
pub type Answer = Result<Reply, reqwest::Error>;

/// One request, as raw as a client can make it.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: Method,
    /// Path and query, already percent-encoded where needed.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

/// A client of one API: its address, an HTTP client, and the secret its tokens are signed with.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    secret: String,
}

impl Api {
    /// How long a request may take: beyond the API's own 15 s deadline, so that a request that
    /// takes longer is a hang.
    pub const TIMEOUT: Duration = Duration::from_secs(40);

    pub fn new(base: impl Into<String>, secret: &str) -> Result<Self> {
        Self::with_timeout(base, secret, Self::TIMEOUT)
    }

    pub fn with_timeout(base: impl Into<String>, secret: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            base: base.into(),
            http,
            secret: secret.to_owned(),
        })
    }

    /// The `AUTH_SECRET` the API verifies tokens with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A customer's token, valid for an hour.
    pub fn customer(&self, user_id: UserId) -> String {
        self.customer_for(user_id, Duration::from_secs(3600))
    }

    /// A customer's token, valid for `ttl`.
    pub fn customer_for(&self, user_id: UserId, ttl: Duration) -> String {
        token::mint(&self.secret, &user_id.to_string(), Role::Customer, ttl)
            .expect("HS256 signing cannot fail")
    }

    /// An admin's token, valid for an hour.
    pub fn admin(&self) -> String {
        token::mint(&self.secret, "ops", Role::Admin, Duration::from_secs(3600))
            .expect("HS256 signing cannot fail")
    }

    /// Sends a request built on [`http`](Self::http) and reads its answer.
    pub async fn reply(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            text,
        })
    }

    /// A JSON request: `body` is sent as JSON when given, `key` as the `Idempotency-Key`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.reply(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(Method::GET, path, token, None, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send(Method::POST, path, token, Some(body), None).await
    }

    pub async fn post_keyed(&self, path: &str, token: &str, body: &Value, key: &str) -> Answer {
        self.send(Method::POST, path, Some(token), Some(body), Some(key))
            .await
    }

    /// A POST of `body` as it is, with `Content-Type: application/json`.
    pub async fn post_bytes(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.reply(req).await
    }

    /// A raw request: its method, path, headers and bytes exactly.
    pub async fn raw(&self, raw: &Raw) -> Answer {
        let mut req = self
            .http
            .request(raw.method.clone(), format!("{}{}", self.base, raw.path));
        for (k, v) in &raw.headers {
            req = req.header(k.clone(), v.clone());
        }
        if let Some(b) = &raw.body {
            req = req.body(b.clone());
        }
        self.reply(req).await
    }

    /// Sends a keyed POST until it has an answer that is not a 503: what a client does to
    /// learn the outcome of a request whose answer it did not get. Returns the answer and how
    /// many times it had to ask again.
    pub async fn post_until_answered(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        key: &str,
        patience: Duration,
    ) -> Result<(Reply, u32)> {
        self.post_repeating(path, token, Some(body), Some(key), patience)
            .await
    }

    /// [`post_until_answered`](Self::post_until_answered) for any POST, keyed or not (a
    /// cancel has no key: its repeat is a second cancel, which must answer consistently too).
    pub async fn post_repeating(
        &self,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
        patience: Duration,
    ) -> Result<(Reply, u32)> {
        let deadline = Instant::now() + patience;
        let mut retries = 0;
        loop {
            let last = match self.send(Method::POST, path, Some(token), body, key).await {
                Ok(r) if r.status != 503 => return Ok((r, retries)),
                Ok(r) => format!("503 {}", r.text),
                Err(e) => format!("no answer: {e}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "POST {path} (key {}) still unanswered after {} s: {last}",
                    key.unwrap_or("none"),
                    patience.as_secs()
                );
            }
            retries += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until `GET /health` answers 200.
    pub async fn wait_healthy(&self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let last = match self.get("/health", None).await {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => format!("{} {}", r.status, r.text),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                bail!(
                    "the API is not healthy after {} s: {last}",
                    patience.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
