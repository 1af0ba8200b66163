//! Inputs and outputs of the saga's activities, shared by the workflow and the activities.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    CancelCode, CouponId, LineRequest, OrderId, OrderStatus, PlaceOrderRequest, Points, UserId,
};

/// Places one order: checks it and records it `PENDING`, keyed by `order_id` (a re-run answers
/// the order as recorded, whatever has changed since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrderInput {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub request: PlaceOrderRequest,
    /// `expires_at` is the moment the order is recorded plus this.
    pub payment_timeout_ms: u64,
}

/// The argument of the `pay` update: which payment this is. It is also the update's id, so a
/// client repeating a payment (the same `Idempotency-Key`) attaches to it, and a workflow reset
/// that reapplies the update runs it under the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRequest {
    pub payment_id: String,
}

/// One forward step of one payment. The step and its compensation share this key, which is what
/// makes each idempotent and lets a compensation fence out a late retry of its step.
///
/// The key names the payment, not a counter of the workflow's: the database numbers a
/// payment's attempt the first time any step of it runs (table `payments`), so a run that
/// forgot the payment (a reset, a lost task) finds the same attempt again. A new payment (after
/// `INSUFFICIENT_POINTS`) is a new attempt, so a fenced first attempt never blocks a second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepKey {
    pub order_id: OrderId,
    pub payment_id: String,
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

/// Ends an order that did not complete: `CANCELED` (by the user, an operator or a refused
/// payment step) or `EXPIRED`. Closing undoes whatever the order's ledger shows done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseOrderInput {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub code: CancelCode,
    pub reason: String,
}

/// When a step took effect, as the database's clock saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub at: DateTime<Utc>,
}
