//! One error type for every answer that is not a success, always in the contract's body
//! `{"code","message","details"}` (CONTRACT §5). 5xx causes go to the log, never to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{ErrorBody, OrderError};
use serde_json::{Value, json};
use store::{DbFault, StoreError};

use crate::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A business error or a broken input rule, with the contract's status and code.
    #[error(transparent)]
    Order(OrderError),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this Idempotency-Key was used before with a different request")]
    KeyReused,
    /// Over `RATE_LIMIT` for this user: 429 with `Retry-After`.
    #[error("too many requests for this user: retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// No such route (the contract is silent; see docs/API.md).
    #[error("no route {0}")]
    RouteNotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Temporal or PostgreSQL cannot be reached: 503, the cause logged.
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable { cause: String, details: Value },
    /// A bug: 500, the cause logged, nothing of it shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            cause: cause.to_string(),
            details: json!({}),
        }
    }

    pub fn invalid(message: impl Into<String>, field: &str) -> Self {
        Self::Order(OrderError::InvalidRequest {
            message: message.into(),
            details: json!({ "field": field }),
        })
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Order(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::KeyReused => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (code, details) = match self {
            Self::Order(e) => return e.body(),
            Self::Unauthenticated(_) => ("UNAUTHENTICATED", json!({})),
            Self::Forbidden(_) => ("FORBIDDEN", json!({})),
            Self::KeyReused => ("IDEMPOTENCY_KEY_REUSED", json!({})),
            Self::RateLimited { retry_after } => {
                ("RATE_LIMITED", json!({ "retry_after": retry_after }))
            }
            Self::PayloadTooLarge { limit } => ("PAYLOAD_TOO_LARGE", json!({ "limit": limit })),
            Self::RouteNotFound(_) => ("NOT_FOUND", json!({})),
            Self::MethodNotAllowed => ("METHOD_NOT_ALLOWED", json!({})),
            Self::Unavailable { details, .. } => (OrderError::UNAVAILABLE, details.clone()),
            Self::Internal(_) => ("INTERNAL", json!({})),
        };
        ErrorBody {
            code: code.to_owned(),
            message: self.to_string(),
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable { cause, .. } => tracing::warn!(cause = %cause, "answering 503"),
            Self::Internal(cause) => tracing::error!(cause = %cause, "answering 500"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after = match &self {
            Self::Unavailable { .. } => Some(HeaderValue::from_static("1")),
            Self::RateLimited { retry_after } => Some(HeaderValue::from(*retry_after)),
            _ => None,
        };
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Unavailable { message } => Self::unavailable(message),
            other => Self::Order(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Order(e) => e.into(),
            ServiceError::Temporal(cause) => Self::unavailable(format!("Temporal: {cause}")),
            ServiceError::Db(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot be reached: 503. A constraint or a value the database refuses:
    /// 4xx, because only the input can have caused it. Anything else is a bug: 500.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Business(e) => e.into(),
            StoreError::TopUpKeyReused { .. } | StoreError::RestockKeyReused { .. } => {
                Self::KeyReused
            }
            StoreError::Db(e) => match DbFault::of(&e) {
                DbFault::Unavailable => Self::unavailable(format!("PostgreSQL: {e}")),
                DbFault::InvalidInput => Self::Order(OrderError::InvalidRequest {
                    message: "the request breaks a rule of the data".into(),
                    details: json!({}),
                }),
                DbFault::Bug => Self::Internal(format!("PostgreSQL: {e}")),
            },
        }
    }
}

/// A successful answer: a status and a JSON body (kept as a value so that idempotent replays
/// can store and return it byte for byte).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn ok<T: serde::Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::with(StatusCode::OK, value)
    }

    pub fn created<T: serde::Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::with(StatusCode::CREATED, value)
    }

    fn with<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_value(value).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Self { status, body })
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}
