//! Talking to the API as a client would: JSON requests, tokens, the contract's error body, and
//! the retry a careful client makes (the same request with the same Idempotency-Key after a 503
//! or a lost connection).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use starter::token::{self, Role};

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The order status of a success body.
    pub fn order_status(&self) -> &str {
        self.body["status"].as_str().unwrap_or("")
    }

    /// Checks that this is an error in the contract's form: exactly `code`, `message` and
    /// `details`, a code of the table (or one of `extra`) whose status is the one answered.
    pub fn contract_error(&self, extra: &[&str]) -> Result<(), String> {
        let short = || self.text.chars().take(300).collect::<String>();
        let Some(obj) = self.body.as_object() else {
            return Err(format!(
                "{}: body is not a JSON object: {}",
                self.status,
                short()
            ));
        };
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["code", "details", "message"] {
            return Err(format!("{}: body keys {keys:?}: {}", self.status, short()));
        }
        let message_ok = obj["message"].as_str().is_some_and(|m| !m.is_empty());
        if !message_ok || !obj["details"].is_object() {
            return Err(format!(
                "{}: message or details malformed: {}",
                self.status,
                short()
            ));
        }
        let code = self.code();
        let expected = match contract_status(code) {
            Some(s) => Some(s),
            None => match code {
                "NOT_FOUND" if extra.contains(&code) => Some(404),
                "METHOD_NOT_ALLOWED" if extra.contains(&code) => Some(405),
                _ => None,
            },
        };
        match expected {
            None => Err(format!(
                "{}: code {code:?} is not in the contract's table: {}",
                self.status,
                short()
            )),
            Some(s) if s != self.status => Err(format!(
                "{}: code {code} belongs with status {s}: {}",
                self.status,
                short()
            )),
            Some(_) => details_fit(code, &obj["details"])
                .map_err(|e| format!("{} {code}: {e}: {}", self.status, short())),
        }
    }
}

/// CONTRACT §5's error table: the status of each code. Written out here rather than taken from
/// the API, so that the API is checked against the contract and not against itself.
fn contract_status(code: &str) -> Option<u16> {
    Some(match code {
        "INVALID_REQUEST" => 400,
        "UNAUTHENTICATED" => 401,
        "FORBIDDEN" => 403,
        "PRODUCT_NOT_FOUND" | "ORDER_NOT_FOUND" => 404,
        "INSUFFICIENT_STOCK" | "ORDER_NOT_PAYABLE" | "IDEMPOTENCY_KEY_REUSED" => 409,
        "PAYLOAD_TOO_LARGE" => 413,
        "COUPON_INVALID" | "INSUFFICIENT_POINTS" => 422,
        "UNAVAILABLE" => 503,
        _ => return None,
    })
}

/// The `details` CONTRACT §5 names for `code`: `product_id`, `available`, `status`, `reason`
/// (one of five), `points` and `total`, each present and of its type.
fn details_fit(code: &str, details: &Value) -> Result<(), String> {
    let int = |k: &str| {
        details[k]
            .as_i64()
            .map(|_| ())
            .ok_or_else(|| format!("details.{k} is not an integer"))
    };
    let one_of = |k: &str, allowed: &[&str]| match details[k].as_str() {
        Some(v) if allowed.contains(&v) => Ok(()),
        _ => Err(format!("details.{k} is not one of {allowed:?}")),
    };
    match code {
        "PRODUCT_NOT_FOUND" => int("product_id"),
        "INSUFFICIENT_STOCK" => int("product_id").and(int("available")),
        "ORDER_NOT_PAYABLE" => one_of(
            "status",
            &["PENDING", "PAID", "COMPLETED", "CANCELED", "EXPIRED"],
        ),
        "COUPON_INVALID" => one_of(
            "reason",
            &[
                "NOT_FOUND",
                "NOT_OWNED",
                "ALREADY_USED",
                "EXPIRED",
                "MIN_ORDER_AMOUNT",
            ],
        ),
        "INSUFFICIENT_POINTS" => int("points").and(int("total")),
        _ => Ok(()),
    }
}

/// One request, as raw as a client can make it.
#[derive(Debug, Clone)]
pub struct Raw {
    pub method: Method,
    /// Path and query, already percent-encoded where needed.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    secret: String,
}

impl Api {
    pub fn new(base: String, secret: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            // Beyond the API's own 15 s deadline: a request that takes longer is a hang.
            .timeout(Duration::from_secs(40))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            base,
            http,
            secret: secret.to_owned(),
        })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn customer(&self, user_id: i64) -> String {
        token::mint(
            &self.secret,
            &user_id.to_string(),
            Role::Customer,
            Duration::from_secs(3600),
        )
        .expect("HS256 signing cannot fail")
    }

    pub fn admin(&self) -> String {
        token::mint(
            &self.secret,
            "chaos",
            Role::Admin,
            Duration::from_secs(3600),
        )
        .expect("HS256 signing cannot fail")
    }

    async fn finish(response: reqwest::Response) -> Result<Reply, reqwest::Error> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body, text })
    }

    /// A JSON request; `Err` only when no answer came (connection refused or reset, timeout).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
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
        Self::finish(req.send().await?).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Reply, reqwest::Error> {
        self.send(Method::GET, path, Some(token), None, None).await
    }

    pub async fn raw(&self, raw: &Raw) -> Result<Reply, reqwest::Error> {
        let mut req = self
            .http
            .request(raw.method.clone(), format!("{}{}", self.base, raw.path));
        for (k, v) in &raw.headers {
            req = req.header(k.clone(), v.clone());
        }
        if let Some(b) = &raw.body {
            req = req.body(b.clone());
        }
        Self::finish(req.send().await?).await
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
            let last = match self.send(Method::GET, "/health", None, None, None).await {
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

/// The demo shipping address as JSON.
pub fn shipping() -> Value {
    serde_json::json!({
        "recipient": "Kim Minji",
        "address": "12 Teheran-ro, Gangnam-gu, Seoul",
        "phone": "010-1234-5678"
    })
}

/// An order body: `(product, quantity)` lines and an optional coupon.
pub fn order_body(lines: &[(i64, i64)], coupon: Option<i64>) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| serde_json::json!({"product_id": p, "quantity": q}))
        .collect();
    let mut body = serde_json::json!({"items": items, "shipping": shipping()});
    if let Some(c) = coupon {
        body["coupon_id"] = serde_json::json!(c);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply {
            status,
            text: body.to_string(),
            body,
        }
    }

    #[test]
    fn contract_errors_are_recognised() {
        let ok = reply(
            400,
            serde_json::json!({"code": "INVALID_REQUEST", "message": "m", "details": {}}),
        );
        assert!(ok.contract_error(&[]).is_ok());
        let wrong_status = reply(
            500,
            serde_json::json!({"code": "INVALID_REQUEST", "message": "m", "details": {}}),
        );
        assert!(wrong_status.contract_error(&[]).is_err());
        let extra_key = reply(
            400,
            serde_json::json!({"code": "INVALID_REQUEST", "message": "m", "details": {}, "x": 1}),
        );
        assert!(extra_key.contract_error(&[]).is_err());
        let outside = reply(
            404,
            serde_json::json!({"code": "NOT_FOUND", "message": "m", "details": {}}),
        );
        assert!(outside.contract_error(&[]).is_err());
        assert!(outside.contract_error(&["NOT_FOUND"]).is_ok());
        assert!(reply(500, Value::Null).contract_error(&[]).is_err());
    }

    #[test]
    fn details_must_be_the_contracts() {
        let error = |code: &str, status: u16, details: Value| {
            reply(
                status,
                serde_json::json!({"code": code, "message": "m", "details": details}),
            )
            .contract_error(&[])
        };
        let stock = serde_json::json!({"product_id": 3, "available": 0});
        assert!(error("INSUFFICIENT_STOCK", 409, stock).is_ok());
        let no_available = serde_json::json!({"product_id": 3});
        assert!(error("INSUFFICIENT_STOCK", 409, no_available).is_err());
        let canceled = serde_json::json!({"status": "CANCELED"});
        assert!(error("ORDER_NOT_PAYABLE", 409, canceled).is_ok());
        assert!(error("ORDER_NOT_PAYABLE", 409, serde_json::json!({})).is_err());
        let owned = serde_json::json!({"reason": "NOT_OWNED"});
        assert!(error("COUPON_INVALID", 422, owned).is_ok());
        let unknown = serde_json::json!({"reason": "STOLEN"});
        assert!(error("COUPON_INVALID", 422, unknown).is_err());
        let points = serde_json::json!({"points": 1, "total": "2"});
        assert!(error("INSUFFICIENT_POINTS", 422, points).is_err());
        let product = serde_json::json!({"product_id": 9});
        assert!(error("PRODUCT_NOT_FOUND", 404, product.clone()).is_ok());
        assert!(error("PRODUCT_NOT_FOUND", 409, product).is_err());
    }
}
