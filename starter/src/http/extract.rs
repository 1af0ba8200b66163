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
        let value = match axum::Json::<Strict>::from_request(req, state).await {
            Ok(axum::Json(Strict(v))) => v,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        // serde's own words name the field and the problem ("items[0].quantity: invalid type:
        // string \"2\", expected i64"); nothing internal is in them.
        serde_path_to_error::deserialize(integral_numbers(value))
            .map(Self)
            .map_err(|e| invalid_body(e.to_string()))
    }
}

/// A JSON value whose objects never repeat a key: `{"amount":5,"amount":9}` is refused, never
/// read as its last value (which a plain `serde_json::Value` would do, and a typed body would
/// not: its derived `Deserialize` refuses a duplicate field).
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if fields.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{key}`"
                )));
            }
            fields.insert(key, v);
        }
        Ok(serde_json::Value::Object(fields))
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
