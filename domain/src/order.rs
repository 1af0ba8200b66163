use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CouponId, Points, ProductId, Shipping, UserId};

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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
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
    pub id: String,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub subtotal: Points,
    pub discount: Points,
    pub total: Points,
    pub coupon_id: Option<CouponId>,
    pub shipping: Shipping,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub platform_notified_at: Option<DateTime<Utc>>,
}
