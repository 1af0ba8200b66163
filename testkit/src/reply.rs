//! An answer of the API, and the contract's error body (CONTRACT §5) read from it: checked as a
//! client checks it ([`Reply::contract_error`], which says what is wrong) or as a test asserts
//! it ([`Reply::assert_error`], which panics).

use reqwest::header::HeaderMap;
use serde_json::Value;

/// An answer: its status, headers and body (`body` is `Value::Null` when `text` is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// An answer with a JSON body and no headers (to check the checks).
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            text: body.to_string(),
            body,
        }
    }

    /// The contract's error code of an error body (`""` otherwise).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The order status of a success body (`""` otherwise).
    pub fn order_status(&self) -> &str {
        self.body["status"].as_str().unwrap_or("")
    }

    /// The start of the text, for messages.
    pub fn short(&self) -> String {
        self.text.chars().take(300).collect()
    }

    /// Whether the body has the error's shape: exactly `code`, `message` and `details`, a
    /// message that says something and `details` an object.
    pub fn error_shape(&self) -> Result<(), String> {
        let Some(obj) = self.body.as_object() else {
            return Err(format!("body is not a JSON object: {}", self.short()));
        };
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        if keys != ["code", "details", "message"] {
            return Err(format!("body keys {keys:?}: {}", self.short()));
        }
        let message_ok = obj["message"].as_str().is_some_and(|m| !m.is_empty());
        if !message_ok || !obj["details"].is_object() {
            return Err(format!("message or details malformed: {}", self.short()));
        }
        Ok(())
    }

    /// Checks that this is an error in the contract's form: its shape, a code of the table (or
    /// one of `extra`, the router's own `NOT_FOUND` and `METHOD_NOT_ALLOWED`) whose status is
    /// the one answered, and the `details` the table names for that code.
    pub fn contract_error(&self, extra: &[&str]) -> Result<(), String> {
        self.error_shape()
            .map_err(|e| format!("{}: {e}", self.status))?;
        let code = self.code();
        let expected = contract_status(code).or(match code {
            "NOT_FOUND" if extra.contains(&code) => Some(404),
            "METHOD_NOT_ALLOWED" if extra.contains(&code) => Some(405),
            _ => None,
        });
        match expected {
            None => Err(format!(
                "{}: code {code:?} is not in the contract's table: {}",
                self.status,
                self.short()
            )),
            Some(s) if s != self.status => Err(format!(
                "{}: code {code} belongs with status {s}: {}",
                self.status,
                self.short()
            )),
            Some(_) => details_fit(code, &self.body["details"])
                .map_err(|e| format!("{} {code}: {e}: {}", self.status, self.short())),
        }
    }

    /// Asserts the status and the error code, and the error's shape (exactly the contract's
    /// three fields); returns its `details`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
        if let Err(e) = self.error_shape() {
            panic!("{e}");
        }
        &self.body["details"]
    }

    /// Asserts the status; returns the body.
    #[track_caller]
    pub fn assert_ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.body
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
        "RATE_LIMITED" => 429,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contract_errors_are_recognised() {
        let ok = Reply::json(
            400,
            json!({"code": "INVALID_REQUEST", "message": "m", "details": {}}),
        );
        assert!(ok.contract_error(&[]).is_ok());
        let wrong_status = Reply::json(
            500,
            json!({"code": "INVALID_REQUEST", "message": "m", "details": {}}),
        );
        assert!(wrong_status.contract_error(&[]).is_err());
        let extra_key = Reply::json(
            400,
            json!({"code": "INVALID_REQUEST", "message": "m", "details": {}, "x": 1}),
        );
        assert!(extra_key.contract_error(&[]).is_err());
        let outside = Reply::json(
            404,
            json!({"code": "NOT_FOUND", "message": "m", "details": {}}),
        );
        assert!(outside.contract_error(&[]).is_err());
        assert!(outside.contract_error(&["NOT_FOUND"]).is_ok());
        assert!(Reply::json(500, Value::Null).contract_error(&[]).is_err());
    }

    #[test]
    fn details_must_be_the_contracts() {
        let error = |code: &str, status: u16, details: Value| {
            Reply::json(
                status,
                json!({"code": code, "message": "m", "details": details}),
            )
            .contract_error(&[])
        };
        let stock = json!({"product_id": 3, "available": 0});
        assert!(error("INSUFFICIENT_STOCK", 409, stock).is_ok());
        let no_available = json!({"product_id": 3});
        assert!(error("INSUFFICIENT_STOCK", 409, no_available).is_err());
        let canceled = json!({"status": "CANCELED"});
        assert!(error("ORDER_NOT_PAYABLE", 409, canceled).is_ok());
        assert!(error("ORDER_NOT_PAYABLE", 409, json!({})).is_err());
        let owned = json!({"reason": "NOT_OWNED"});
        assert!(error("COUPON_INVALID", 422, owned).is_ok());
        let unknown = json!({"reason": "STOLEN"});
        assert!(error("COUPON_INVALID", 422, unknown).is_err());
        let points = json!({"points": 1, "total": "2"});
        assert!(error("INSUFFICIENT_POINTS", 422, points).is_err());
        let product = json!({"product_id": 9});
        assert!(error("PRODUCT_NOT_FOUND", 404, product.clone()).is_ok());
        assert!(error("PRODUCT_NOT_FOUND", 409, product).is_err());
        let rate = json!({"retry_after": 1});
        assert!(error("RATE_LIMITED", 429, rate).is_ok());
    }

    #[test]
    fn an_error_of_another_shape_fails_its_assertion() {
        let three = Reply::json(
            429,
            json!({"code": "RATE_LIMITED", "message": "m", "details": {"retry_after": 1}}),
        );
        assert_eq!(three.assert_error(429, "RATE_LIMITED")["retry_after"], 1);
        let four = Reply::json(
            400,
            json!({"code": "INVALID_REQUEST", "message": "m", "details": {}, "x": 1}),
        );
        let caught = std::panic::catch_unwind(|| {
            four.assert_error(400, "INVALID_REQUEST");
        });
        assert!(caught.is_err());
    }
}
