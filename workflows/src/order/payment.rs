//! CONTRACT §2.3, the payment: charge the points → redeem the coupon → deduct the stock and
//! complete the order. Each step's undo is registered before it runs; on any failure the
//! undos run, newest first.

use activities::OrderActivities;
use domain::saga::{ChargePointsInput, DeductStockInput, PayRequest, RedeemCouponInput, StepKey};
use domain::{LineRequest, Order, OrderStatus};
use temporalio_sdk::WorkflowContext;

use super::{OrderWorkflow, status};
use crate::saga::{Saga, Undo};
use crate::steps::{Step, StepFailure, StepMode, points};

/// Pays `order` as payment `request`: the `COMPLETED` order, or why not (everything the
/// payment did undone by then).
pub async fn pay(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    request: &PayRequest,
    mode: StepMode,
) -> Result<Order, StepFailure> {
    let key = StepKey {
        order_id: order.id.clone(),
        payment_id: request.payment_id.clone(),
    };
    let mut saga = Saga::new(mode);
    let paid = steps(ctx, order, &key, &mut saga, mode).await;
    if paid.is_err() {
        ctx.set_current_details(format!("Undoing payment {}", key.payment_id));
        saga.compensate(ctx).await;
    }
    paid
}

async fn steps(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    key: &StepKey,
    saga: &mut Saga,
    mode: StepMode,
) -> Result<Order, StepFailure> {
    let charge = ChargePointsInput {
        key: key.clone(),
        user_id: order.user_id,
        amount: order.total,
    };
    let summary = format!(
        "Charge {} points from user {}",
        points(order.total),
        order.user_id
    );
    // Always an ordinary activity. An update is durable only once the workflow task that
    // accepts it completes; a local activity would charge inside that very task. Scheduling the
    // first effect in the same completion as the acceptance makes both durable together; the
    // steps after it follow from the charge's completion, which is in the history.
    let charged = saga
        .step(
            ctx,
            Undo::RefundPoints(key.clone()),
            || OrderActivities::charge_points,
            charge,
            Step::forward(StepMode::Remote, summary),
        )
        .await?;
    let mut order = order.clone();
    order.status = OrderStatus::Paid;
    order.paid_at = Some(charged.at);
    ctx.state_mut(|s| s.order = Some(order.clone()));
    if mode == StepMode::Remote {
        // Local steps run the rest of the payment in one workflow task, whose commands reach
        // the server together: a PAID search attribute would be overwritten before anyone saw it.
        status::show_order(ctx, &order);
    }

    if let Some(coupon_id) = order.coupon_id {
        let redeem = RedeemCouponInput {
            key: key.clone(),
            user_id: order.user_id,
            coupon_id,
        };
        saga.step(
            ctx,
            Undo::ReleaseCoupon(key.clone()),
            || OrderActivities::redeem_coupon,
            redeem,
            Step::forward(mode, format!("Redeem coupon {coupon_id}")),
        )
        .await?;
    }

    let lines = DeductStockInput {
        key: key.clone(),
        lines: order
            .items
            .iter()
            .map(|l| LineRequest {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
    };
    let summary = format!(
        "Deduct the stock of {} lines and complete order {}",
        order.items.len(),
        order.id
    );
    // The point of no return: deducts and completes in one transaction, and is not interrupted
    // by the workflow's cancellation (an operator's cancel that arrives now lets it complete).
    let done = saga
        .step(
            ctx,
            Undo::RestoreStock(key.clone()),
            || OrderActivities::deduct_stock_and_complete,
            lines,
            Step::last(mode, summary),
        )
        .await?;
    order.status = OrderStatus::Completed;
    order.completed_at = Some(done.at);
    Ok(order)
}
