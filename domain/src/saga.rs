//! Inputs and outputs of the saga's activities, shared by the workflow and the activities.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CouponId, LineRequest, OrderStatus, Points, UserId};

/// One forward step of one payment attempt. The step and its compensation share this key, which
/// is what makes each idempotent and lets a compensation fence out a late retry of its step.
///
/// A new payment attempt (after `INSUFFICIENT_POINTS`) gets a new `attempt`, so a fenced first
/// attempt never blocks the user's second try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepKey {
    pub order_id: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateCouponInput {
    pub user_id: UserId,
    pub coupon_id: CouponId,
    pub subtotal: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckPointsInput {
    pub user_id: UserId,
    pub total: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargePointsInput {
    pub key: StepKey,
    pub user_id: UserId,
    pub amount: Points,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemCouponInput {
    pub key: StepKey,
    pub user_id: UserId,
    pub coupon_id: CouponId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductStockInput {
    pub key: StepKey,
    pub lines: Vec<LineRequest>,
}

/// Ends an order that did not complete: `CANCELED` (by the user, a failed payment or a
/// cancelled workflow) or `EXPIRED`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseOrderInput {
    pub order_id: String,
    pub status: OrderStatus,
    pub reason: String,
}

/// When a step took effect, as the database's clock saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub at: DateTime<Utc>,
}
