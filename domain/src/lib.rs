//! The order saga's domain: validated types, pricing and business errors (CONTRACT §1, §5).
//!
//! Everything here is pure, so the workflow (which must be deterministic) and the activities
//! (which do the I/O) share one definition of what an order is and what can go wrong.

pub mod coupon;
pub mod error;
pub mod id;
pub mod input;
pub mod order;
pub mod pricing;
pub mod reconcile;
pub mod saga;

pub use coupon::{Coupon, CouponInvalidReason, CouponStatus, Discount};
pub use error::{ErrorBody, MAX_PAYMENT_ATTEMPTS, OrderError};
pub use id::{CouponId, OrderId, ProductId, UserId};
pub use input::{LineRequest, PlaceOrderRequest, QuoteRequest, Shipping};
pub use order::{CancelCode, Order, OrderLine, OrderStatus};
pub use pricing::Pricing;

/// Money is whole points, a KRW-like integer: there are no fractions anywhere.
pub type Points = i64;
