use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CouponId, OrderId, Points, ProductId, Shipping, UserId};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed and validated, waiting for payment until `expires_at`.
    Pending,
    /// Points charged; stock and coupon being settled.
    Paid,
    /// Paid, stock deducted, coupon used.
    Completed,
    /// Canceled by the user or by a failed payment step; everything done was undone.
    Canceled,
    /// No payment before `expires_at`.
    Expired,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Paid => "PAID",
            Self::Completed => "COMPLETED",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => Self::Pending,
            "PAID" => Self::Paid,
            "COMPLETED" => Self::Completed,
            "CANCELED" => Self::Canceled,
            "EXPIRED" => Self::Expired,
            _ => return None,
        })
    }

    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed | Self::Canceled | Self::Expired)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order was closed without completing (CONTRACT §1), for programs; `cancel_reason` is
/// the same for people.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelCode {
    /// The customer canceled the `PENDING` order.
    UserCanceled,
    /// An operator cancelled the order's workflow (the Temporal Web UI or CLI).
    OperatorCanceled,
    /// No payment before `expires_at` (the order is `EXPIRED`).
    PaymentExpired,
    /// A line's stock ran out between placement and payment.
    InsufficientStock,
    /// The coupon stopped being valid between placement and payment (used by another order,
    /// expired).
    CouponInvalid,
    /// `starter repair` closed an order whose workflow had been terminated.
    Repaired,
}

impl CancelCode {
    pub const ALL: [CancelCode; 6] = [
        Self::UserCanceled,
        Self::OperatorCanceled,
        Self::PaymentExpired,
        Self::InsufficientStock,
        Self::CouponInvalid,
        Self::Repaired,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UserCanceled => "USER_CANCELED",
            Self::OperatorCanceled => "OPERATOR_CANCELED",
            Self::PaymentExpired => "PAYMENT_EXPIRED",
            Self::InsufficientStock => "INSUFFICIENT_STOCK",
            Self::CouponInvalid => "COUPON_INVALID",
            Self::Repaired => "REPAIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The code of a payment that a step refused. Stock and coupons are what can change
    /// between placement and payment; any other refusal of a payment step means the order was
    /// no longer the saga's to pay (an operator's doing), and says so.
    pub fn of_refusal(refusal: &crate::OrderError) -> Self {
        use crate::OrderError as E;
        match refusal {
            E::InsufficientStock { .. } | E::ProductNotFound { .. } => Self::InsufficientStock,
            E::CouponInvalid { .. } => Self::CouponInvalid,
            _ => Self::OperatorCanceled,
        }
    }
}

impl std::fmt::Display for CancelCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub product_id: ProductId,
    pub name: String,
    pub unit_price: Points,
    pub quantity: i64,
    pub line_total: Points,
}

/// An order as the contract shows it (CONTRACT §1).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: OrderId,
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub subtotal: Points,
    pub discount: Points,
    pub total: Points,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub coupon_id: Option<CouponId>,
    pub shipping: Shipping,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// Null unless the order is `CANCELED` or `EXPIRED`.
    #[serde(default)]
    pub cancel_code: Option<CancelCode>,
    pub platform_notified_at: Option<DateTime<Utc>>,
}
