//! The order saga's activities: thin wrappers, one per step, around the `store` (each forward
//! payment step beside its compensation, sharing a [`StepKey`] so that a compensation that runs
//! first fences out a late retry of its step) and the data platform's client.
//!
//! Business failures are non-retryable application failures whose type is the contract's error
//! code and whose details are the contract's error body; database and network errors are
//! ordinary (retryable) failures.

pub mod error;
pub mod platform;
pub mod reconcile;

use std::sync::Arc;

use domain::saga::{
    ChargePointsInput, CloseOrderInput, DeductStockInput, PlaceOrderInput, RedeemCouponInput,
    Stamp, StepKey,
};
use domain::{Order, OrderError, OrderId};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use error::ActivityResult;
pub use platform::PlatformClient;
pub use reconcile::{ReconcileActivities, ReconcileGauges};
use store::{PgPool, StoreError, coupons, orders, points, stock};

/// The activity implementer the worker registers: a database pool and the data platform.
pub struct OrderActivities {
    pub db: PgPool,
    pub platform: PlatformClient,
    /// Where the stock deduction's lock hold times go (the worker's metrics), if anywhere.
    pub lock_hold: Option<Arc<dyn LockHold>>,
}

/// Where `deduct_stock_and_complete` reports how long it held its products' row locks.
pub trait LockHold: Send + Sync {
    fn held(&self, time: std::time::Duration);
}

impl OrderActivities {
    pub fn new(db: PgPool, platform: PlatformClient) -> Self {
        Self {
            db,
            platform,
            lock_hold: None,
        }
    }

    /// These activities, reporting the stock deduction's lock hold times to `lock_hold`.
    pub fn with_lock_hold(self, lock_hold: Option<Arc<dyn LockHold>>) -> Self {
        Self { lock_hold, ..self }
    }
}

#[activities]
impl OrderActivities {
    // ---- placement ----

    /// Checks the lines, the coupon and the points, and records the order `PENDING`, keyed by
    /// order id: once recorded, running it again answers the recorded order.
    #[activity]
    pub async fn place_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PlaceOrderInput,
    ) -> Result<Order, ActivityError> {
        guarded("place_order", &input.order_id, async {
            orders::place(&self.db, &input).await.activity()
        })
        .await
    }

    // ---- payment: each forward step beside its compensation ----

    /// Charges the order's total and marks the order `PAID`, atomically.
    #[activity]
    pub async fn charge_points(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ChargePointsInput,
    ) -> Result<Stamp, ActivityError> {
        guarded("charge_points", &input.key.order_id, async {
            points::charge(&self.db, &input).await.activity()
        })
        .await
    }

    /// Compensates `charge_points`: refunds exactly what that payment charged, or fences it.
    #[activity]
    pub async fn refund_points(
        self: Arc<Self>,
        _ctx: ActivityContext,
        key: StepKey,
    ) -> Result<(), ActivityError> {
        guarded("refund_points", &key.order_id, async {
            points::refund(&self.db, &key).await.activity()
        })
        .await
    }

    /// Marks the coupon `USED` by this order.
    #[activity]
    pub async fn redeem_coupon(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RedeemCouponInput,
    ) -> Result<(), ActivityError> {
        guarded("redeem_coupon", &input.key.order_id, async {
            coupons::redeem(&self.db, &input).await.activity()
        })
        .await
    }

    /// Compensates `redeem_coupon`: the coupon is `AVAILABLE` again, or the step is fenced.
    #[activity]
    pub async fn release_coupon(
        self: Arc<Self>,
        _ctx: ActivityContext,
        key: StepKey,
    ) -> Result<(), ActivityError> {
        guarded("release_coupon", &key.order_id, async {
            coupons::release(&self.db, &key).await.activity()
        })
        .await
    }

    /// The last step of a payment: deducts every line and completes the order (`PAID` →
    /// `COMPLETED`) in one transaction. Compensated, when it never committed, by
    /// `restore_stock`, which fences it.
    #[activity]
    pub async fn deduct_stock_and_complete(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DeductStockInput,
    ) -> Result<Stamp, ActivityError> {
        guarded("deduct_stock_and_complete", &input.key.order_id, async {
            let (stamp, held) = stock::deduct_and_complete_timed(&self.db, &input)
                .await
                .activity()?;
            if let (Some(time), Some(lock_hold)) = (held, &self.lock_hold) {
                lock_hold.held(time);
            }
            Ok(stamp)
        })
        .await
    }

    /// Compensates `deduct_stock_and_complete`: restores exactly what that payment deducted, or
    /// fences it.
    #[activity]
    pub async fn restore_stock(
        self: Arc<Self>,
        _ctx: ActivityContext,
        key: StepKey,
    ) -> Result<(), ActivityError> {
        guarded("restore_stock", &key.order_id, async {
            stock::restore(&self.db, &key).await.activity()
        })
        .await
    }

    // ---- the end of an order ----

    /// Closes an order that did not complete (`CANCELED` or `EXPIRED`, with reason and code),
    /// undoing whatever its ledger shows done; answers the order as it then stands (a
    /// `COMPLETED` order is left alone: the workflow goes forward).
    #[activity]
    pub async fn close_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CloseOrderInput,
    ) -> Result<Order, ActivityError> {
        guarded("close_order", &input.order_id, async {
            orders::close(&self.db, &input).await.activity()
        })
        .await
    }

    /// POSTs the completed order, as the database has it, to the data platform with
    /// `Idempotency-Key: <order id>`, then records `platform_notified_at`. Any non-2xx answer is
    /// retried by Temporal.
    #[activity]
    pub async fn notify_platform(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order_id: OrderId,
    ) -> Result<Stamp, ActivityError> {
        guarded("notify_platform", &order_id.clone(), async {
            let order = orders::load(&self.db, &order_id)
                .await
                .activity()?
                .ok_or_else(|| {
                    StoreError::Business(OrderError::OrderNotFound {
                        order_id: order_id.to_string(),
                    })
                })
                .activity()?;
            self.platform.send(&order).await.activity()?;
            crash_point("notify_platform", "delivered", &order_id);
            orders::mark_notified(&self.db, &order_id).await.activity()
        })
        .await
    }
}

/// Runs one activity between its two crash points, `<step>.before` and `<step>.after` (see
/// the `crashpoints` crate; they do nothing unless the worker was built for the crash-point
/// matrix). Each step commits in one transaction, so "before" is "nothing of this run has
/// committed" and "after" is "it committed, and its result has not been reported".
async fn guarded<T>(step: &str, order_id: &str, run: impl Future<Output = T>) -> T {
    crash_point(step, "before", order_id);
    let out = run.await;
    crash_point(step, "after", order_id);
    out
}

fn crash_point(step: &str, when: &str, order_id: &str) {
    if crashpoints::ENABLED {
        crashpoints::hit(&format!("{step}.{when}"), order_id);
    }
}
