//! The order saga's side effects. Every activity is idempotent by a business key, and every
//! forward payment step sits beside its compensation (`points`, `coupons`, `stock`), sharing a
//! [`StepKey`] so that a compensation that runs first fences out a late retry of its step.
//!
//! Business failures are non-retryable application failures whose type is the contract's error
//! code and whose details are the contract's error body; database and network errors are
//! ordinary (retryable) failures.

pub mod coupons;
pub mod db;
pub mod error;
mod fence;
pub mod floor;
pub mod invariants;
pub mod orders;
pub mod placement;
pub mod platform;
pub mod points;
pub mod stock;

use std::sync::Arc;

use domain::saga::{
    ChargePointsInput, CheckPointsInput, CloseOrderInput, DeductStockInput, RedeemCouponInput,
    Stamp, StepKey, ValidateCouponInput,
};
use domain::{LineRequest, Order, OrderLine, Points};
use sqlx::PgPool;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use error::ActivityResult;
pub use error::StepError;
pub use platform::PlatformClient;

/// The activity implementer the worker registers: a database pool and the data platform.
pub struct OrderActivities {
    pub db: PgPool,
    pub platform: PlatformClient,
}

impl OrderActivities {
    pub fn new(db: PgPool, platform: PlatformClient) -> Self {
        Self { db, platform }
    }
}

#[activities]
impl OrderActivities {
    // ---- placement: read-only checks, then the PENDING order ----

    /// The three checks below in one activity and one snapshot: the lines priced now, and
    /// the coupon's discount, for a user with the points for the total. Scheduled by workflows
    /// placed since the `placement-one-check` patch.
    #[activity]
    pub async fn check_placement(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: placement::CheckPlacementInput,
    ) -> Result<placement::PlacementCheck, ActivityError> {
        guarded("check_placement", "", async {
            placement::check_placement(&self.db, &input)
                .await
                .activity()
        })
        .await
    }

    // A workflow started before `placement-one-check` that is still among these checks when a
    // new worker takes over goes on with them (its history has no marker), so they stay
    // registered until every workflow started before the patch has closed (README "Changing
    // the workflow safely").

    /// Products exist and have stock for every line; returns the lines priced now.
    #[activity]
    pub async fn validate_lines(
        self: Arc<Self>,
        _ctx: ActivityContext,
        lines: Vec<LineRequest>,
    ) -> Result<Vec<OrderLine>, ActivityError> {
        placement::validate_lines(&self.db, &lines).await.activity()
    }

    /// The coupon is the user's, available, unexpired and its minimum is met; returns the
    /// discount in points for this subtotal.
    #[activity]
    pub async fn validate_coupon(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ValidateCouponInput,
    ) -> Result<Points, ActivityError> {
        placement::validate_coupon(&self.db, &input)
            .await
            .activity()
    }

    /// The user has at least `total` points (nothing is reserved).
    #[activity]
    pub async fn check_points(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CheckPointsInput,
    ) -> Result<(), ActivityError> {
        placement::check_points(&self.db, &input).await.activity()
    }

    /// Records the order as `PENDING` (idempotent by order id).
    #[activity]
    pub async fn record_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: Order,
    ) -> Result<(), ActivityError> {
        guarded("record_order", &order.id, async {
            orders::record(&self.db, &order).await.activity()
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

    /// Compensates `charge_points`: refunds exactly what that attempt charged, or fences it.
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

    /// Deducts the stock of every line at once, or none of them (no oversell).
    #[activity]
    pub async fn deduct_stock(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DeductStockInput,
    ) -> Result<(), ActivityError> {
        guarded("deduct_stock", &input.key.order_id, async {
            stock::deduct(&self.db, &input).await.activity()
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
            stock::deduct_and_complete(&self.db, &input)
                .await
                .activity()
        })
        .await
    }

    /// Compensates `deduct_stock`: restores exactly what that attempt deducted, or fences it.
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

    /// `PAID` → `COMPLETED`.
    #[activity]
    pub async fn complete_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order_id: String,
    ) -> Result<Stamp, ActivityError> {
        guarded("complete_order", &order_id, async {
            orders::complete(&self.db, &order_id).await.activity()
        })
        .await
    }

    /// `PENDING`/`PAID` → `CANCELED`, or `PENDING` → `EXPIRED`, with the reason.
    #[activity]
    pub async fn close_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CloseOrderInput,
    ) -> Result<Stamp, ActivityError> {
        guarded("close_order", &input.order_id, async {
            orders::close(&self.db, &input).await.activity()
        })
        .await
    }

    /// POSTs the completed order to the data platform with `Idempotency-Key: <order id>`, then
    /// records `platform_notified_at`. Any non-2xx answer is retried by Temporal.
    #[activity]
    pub async fn notify_platform(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: Order,
    ) -> Result<Stamp, ActivityError> {
        guarded("notify_platform", &order.id.clone(), async {
            self.platform.send(&order).await.activity()?;
            crash_point("notify_platform", "delivered", &order.id);
            orders::mark_notified(&self.db, &order.id).await.activity()
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
