//! Extractors whose rejections are the contract's errors: malformed JSON, wrong types, missing
//! or unknown fields and bad path or query values are 400 `INVALID_REQUEST`; a body over the
//! limit is 413 `PAYLOAD_TOO_LARGE`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::BODY_LIMIT;
use super::error::ApiError;

/// A JSON body.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        // serde's own words name the field and the problem ("items[0].quantity: invalid type:
        // string \"2\", expected i64"); nothing internal is in them.
        serde_path_to_error::deserialize(integral_numbers(value))
            .map(Self)
            .map_err(|e| invalid_body(e.to_string()))
    }
}

/// JSON has one kind of number: `2.0` is the integer 2 (as JSON Schema's `integer` says), so a
/// number with no fraction, within `i64`, is read as an integer wherever one is expected.
fn integral_numbers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            // Below 2^63 in magnitude, so the conversion is exact.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18 => {
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral_numbers).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, integral_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

fn invalid_body(message: String) -> ApiError {
    ApiError::Order(domain::OrderError::InvalidRequest {
        message,
        details: json!({ "field": "body" }),
    })
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit: BODY_LIMIT };
    }
    let message = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "the body must be JSON with Content-Type: application/json".to_owned()
        }
        // serde's own words name the field and the problem ("items[0].quantity: invalid type:
        // string \"2\", expected i64 at line 1 column 40"); nothing internal is in them.
        other => other.body_text(),
    };
    invalid_body(message)
}

/// A path parameter.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::invalid(rejection.body_text(), "path")
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::invalid(rejection.body_text(), "query")
}

/// The optional `Idempotency-Key` header: 1 to 200 printable ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 200;

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        let bad = || {
            ApiError::invalid(
                format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable characters, sent once"
                ),
                "Idempotency-Key",
            )
        };
        if values.next().is_some() {
            return Err(bad());
        }
        let key = value.to_str().map_err(|_| bad())?;
        // Printable ASCII; not starting or ending with a space, which HTTP would not carry
        // (the OpenAPI document states the same pattern).
        let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
        let padded = key.starts_with(' ') || key.ends_with(' ');
        if key.is_empty() || key.len() > MAX_KEY_LEN || !printable || padded {
            return Err(bad());
        }
        Ok(Self(Some(key.to_owned())))
    }
}
