use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{CouponInvalidReason, OrderStatus, Points, ProductId};

/// The most payment attempts (accepted `pay` updates) one order runs (CONTRACT §2): each one
/// that is refused for points adds to the workflow's history, which must stay bounded.
pub const MAX_PAYMENT_ATTEMPTS: u32 = 20;

/// `details.reason` of [`OrderError::TooManyAttempts`].
pub const TOO_MANY_ATTEMPTS: &str = "TOO_MANY_ATTEMPTS";

/// Every business failure of the saga, each with the contract's code (CONTRACT §5).
///
/// It travels unchanged from an activity to the workflow, from the workflow to the client and
/// from the client to the HTTP answer: on the wire it is always the contract's error body
/// `{"code", "message", "details"}`, and inside Temporal it is an application failure whose type
/// is the code and whose details are that body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(into = "ErrorBody", try_from = "ErrorBody")]
pub enum OrderError {
    #[error("{message}")]
    InvalidRequest { message: String, details: Value },
    #[error("product {product_id} does not exist")]
    ProductNotFound { product_id: ProductId },
    #[error("order {order_id} not found")]
    OrderNotFound { order_id: String },
    #[error("only {available} of product {product_id} in stock")]
    InsufficientStock {
        product_id: ProductId,
        available: i64,
    },
    #[error("the order is {status} and cannot be paid or canceled")]
    OrderNotPayable { status: String },
    /// CONTRACT §2: an order runs at most [`MAX_PAYMENT_ATTEMPTS`] payments; the next is refused
    /// before it runs (code `ORDER_NOT_PAYABLE`, the order still `PENDING`).
    #[error("the order has had {MAX_PAYMENT_ATTEMPTS} payment attempts and takes no more")]
    TooManyAttempts,
    #[error("coupon cannot be used: {}", reason.as_str())]
    CouponInvalid { reason: CouponInvalidReason },
    #[error("not enough points: {points} available, {total} needed")]
    InsufficientPoints { points: Points, total: Points },
    #[error("{message}")]
    Unavailable { message: String },
}

/// The contract's error body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
}

impl OrderError {
    pub const INVALID_REQUEST: &'static str = "INVALID_REQUEST";
    pub const PRODUCT_NOT_FOUND: &'static str = "PRODUCT_NOT_FOUND";
    pub const ORDER_NOT_FOUND: &'static str = "ORDER_NOT_FOUND";
    pub const INSUFFICIENT_STOCK: &'static str = "INSUFFICIENT_STOCK";
    pub const ORDER_NOT_PAYABLE: &'static str = "ORDER_NOT_PAYABLE";
    pub const COUPON_INVALID: &'static str = "COUPON_INVALID";
    pub const INSUFFICIENT_POINTS: &'static str = "INSUFFICIENT_POINTS";
    pub const UNAVAILABLE: &'static str = "UNAVAILABLE";

    /// Every code this type can carry; a failure whose type is one of these is a business error.
    pub const CODES: [&'static str; 8] = [
        Self::INVALID_REQUEST,
        Self::PRODUCT_NOT_FOUND,
        Self::ORDER_NOT_FOUND,
        Self::INSUFFICIENT_STOCK,
        Self::ORDER_NOT_PAYABLE,
        Self::COUPON_INVALID,
        Self::INSUFFICIENT_POINTS,
        Self::UNAVAILABLE,
    ];

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn not_payable(status: OrderStatus) -> Self {
        Self::OrderNotPayable {
            status: status.as_str().to_owned(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => Self::INVALID_REQUEST,
            Self::ProductNotFound { .. } => Self::PRODUCT_NOT_FOUND,
            Self::OrderNotFound { .. } => Self::ORDER_NOT_FOUND,
            Self::InsufficientStock { .. } => Self::INSUFFICIENT_STOCK,
            Self::OrderNotPayable { .. } | Self::TooManyAttempts => Self::ORDER_NOT_PAYABLE,
            Self::CouponInvalid { .. } => Self::COUPON_INVALID,
            Self::InsufficientPoints { .. } => Self::INSUFFICIENT_POINTS,
            Self::Unavailable { .. } => Self::UNAVAILABLE,
        }
    }

    /// The HTTP status of CONTRACT §5's error table.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest { .. } => 400,
            Self::ProductNotFound { .. } | Self::OrderNotFound { .. } => 404,
            Self::InsufficientStock { .. }
            | Self::OrderNotPayable { .. }
            | Self::TooManyAttempts => 409,
            Self::CouponInvalid { .. } | Self::InsufficientPoints { .. } => 422,
            Self::Unavailable { .. } => 503,
        }
    }

    pub fn details(&self) -> Value {
        match self {
            Self::InvalidRequest { details, .. } => details.clone(),
            Self::ProductNotFound { product_id } => json!({ "product_id": product_id }),
            Self::OrderNotFound { order_id } => json!({ "order_id": order_id }),
            Self::InsufficientStock {
                product_id,
                available,
            } => json!({ "product_id": product_id, "available": available }),
            Self::OrderNotPayable { status } => json!({ "status": status }),
            Self::TooManyAttempts => {
                json!({ "status": OrderStatus::Pending.as_str(), "reason": TOO_MANY_ATTEMPTS })
            }
            Self::CouponInvalid { reason } => json!({ "reason": reason.as_str() }),
            Self::InsufficientPoints { points, total } => {
                json!({ "points": points, "total": total })
            }
            Self::Unavailable { .. } => json!({}),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code().to_owned(),
            message: self.to_string(),
            details: self.details(),
        }
    }
}

impl From<OrderError> for ErrorBody {
    fn from(e: OrderError) -> Self {
        e.body()
    }
}

/// Decoding failed: the body names no known code, or its details do not fit the code.
#[derive(Debug, thiserror::Error)]
#[error("not an order error body: {0}")]
pub struct UnknownErrorBody(String);

impl TryFrom<ErrorBody> for OrderError {
    type Error = UnknownErrorBody;

    fn try_from(b: ErrorBody) -> Result<Self, Self::Error> {
        let d = &b.details;
        let int = |k: &str| {
            d.get(k)
                .and_then(Value::as_i64)
                .ok_or_else(|| UnknownErrorBody(format!("{}: details.{k} missing", b.code)))
        };
        let string = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| UnknownErrorBody(format!("{}: details.{k} missing", b.code)))
        };
        Ok(match b.code.as_str() {
            Self::INVALID_REQUEST => Self::InvalidRequest {
                message: b.message.clone(),
                details: b.details.clone(),
            },
            Self::PRODUCT_NOT_FOUND => Self::ProductNotFound {
                product_id: ProductId::new(int("product_id")?),
            },
            Self::ORDER_NOT_FOUND => Self::OrderNotFound {
                order_id: string("order_id")?,
            },
            Self::INSUFFICIENT_STOCK => Self::InsufficientStock {
                product_id: ProductId::new(int("product_id")?),
                available: int("available")?,
            },
            Self::ORDER_NOT_PAYABLE
                if d.get("reason").and_then(Value::as_str) == Some(TOO_MANY_ATTEMPTS) =>
            {
                Self::TooManyAttempts
            }
            Self::ORDER_NOT_PAYABLE => Self::OrderNotPayable {
                status: string("status")?,
            },
            Self::COUPON_INVALID => Self::CouponInvalid {
                reason: serde_json::from_value(d.get("reason").cloned().unwrap_or_default())
                    .map_err(|e| UnknownErrorBody(e.to_string()))?,
            },
            Self::INSUFFICIENT_POINTS => Self::InsufficientPoints {
                points: int("points")?,
                total: int("total")?,
            },
            Self::UNAVAILABLE => Self::Unavailable {
                message: b.message.clone(),
            },
            other => return Err(UnknownErrorBody(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_contract_body() {
        let all = [
            OrderError::invalid("bad"),
            OrderError::ProductNotFound {
                product_id: ProductId::new(3),
            },
            OrderError::OrderNotFound {
                order_id: "o-1".into(),
            },
            OrderError::InsufficientStock {
                product_id: ProductId::new(3),
                available: 1,
            },
            OrderError::not_payable(OrderStatus::Completed),
            OrderError::TooManyAttempts,
            OrderError::CouponInvalid {
                reason: CouponInvalidReason::MinOrderAmount,
            },
            OrderError::InsufficientPoints {
                points: 10,
                total: 20,
            },
            OrderError::Unavailable {
                message: "db down".into(),
            },
        ];
        for e in all {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["code"], e.code());
            assert!(OrderError::CODES.contains(&e.code()));
            let back: OrderError = serde_json::from_value(v).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn details_follow_the_contract() {
        let v = serde_json::to_value(OrderError::CouponInvalid {
            reason: CouponInvalidReason::NotOwned,
        })
        .unwrap();
        assert_eq!(v["details"], json!({"reason": "NOT_OWNED"}));
        assert_eq!(
            OrderError::not_payable(OrderStatus::Canceled).details(),
            json!({"status": "CANCELED"})
        );
        let too_many = serde_json::to_value(OrderError::TooManyAttempts).unwrap();
        assert_eq!(too_many["code"], "ORDER_NOT_PAYABLE");
        assert_eq!(
            too_many["details"],
            json!({"status": "PENDING", "reason": "TOO_MANY_ATTEMPTS"})
        );
    }
}
