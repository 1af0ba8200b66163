//! CONTRACT §2.3, the payment: charge the points → redeem the coupon → deduct the stock and
//! complete the order. Each step's undo is registered before it runs; on any failure the undos
//! run, newest first.

use activities::OrderActivities;
use domain::saga::{
    ChargePointsInput, DeductStockInput, PayRequest, RedeemCouponInput, Stamp, StepKey,
};
use domain::{CouponId, LineRequest, Order, OrderError, OrderStatus};
use temporalio_common::ActivityDefinition;
use temporalio_sdk::WorkflowContext;

use super::closing::Closing;
use super::{OrderWorkflow, status};
use crate::saga::{Saga, Undo};
use crate::steps::{Call, Step, StepFailure, StepMode, points};

/// How one payment ended.
pub enum Attempt {
    Completed(Box<Order>),
    /// Refused for points: nothing changed, the order stays `PENDING` (its caller answered).
    Refused,
    /// Refused for stock or the coupon, or the workflow cancelled: everything undone, the order
    /// to be closed so.
    Failed(Closing),
}

/// Runs payment `request` of `order` and answers its caller where the payment alone decides
/// the answer (a refusal for points); the rest is answered once the order ends.
pub async fn attempt(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    request: &PayRequest,
    mode: StepMode,
) -> Attempt {
    ctx.set_current_details(format!("Paying (payment {})", request.payment_id));
    match run_steps(ctx, order, request, mode).await {
        Ok(completed) => Attempt::Completed(Box::new(completed)),
        Err(StepFailure::Refused(e @ OrderError::InsufficientPoints { .. })) => {
            ctx.set_current_details(format!(
                "PENDING: a payment was refused ({}); waiting {}",
                e.code(),
                status::until(order)
            ));
            ctx.state_mut(|s| s.mail.answer_payment(Err(e)));
            Attempt::Refused
        }
        Err(StepFailure::Refused(e)) => {
            let closing = Closing::refused(&e);
            ctx.state_mut(|s| s.mail.refusal = Some(e));
            Attempt::Failed(closing)
        }
        Err(StepFailure::Cancelled) => Attempt::Failed(Closing::operator()),
    }
}

/// Runs the payment's [`steps`] on one [`Saga`]: the `COMPLETED` order, or why not
/// (everything the payment did undone by then).
async fn run_steps(
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
    let paid = steps(ctx, &mut saga, order, &key, mode).await;
    if paid.is_err() {
        ctx.set_current_details(format!("Undoing payment {}", key.payment_id));
        saga.compensate(ctx).await;
    }
    paid
}

/// The payment's steps, each beside its undo.
async fn steps(
    ctx: &WorkflowContext<OrderWorkflow>,
    saga: &mut Saga,
    order: &Order,
    key: &StepKey,
    mode: StepMode,
) -> Result<Order, StepFailure> {
    let charged = saga
        .step(ctx, charge(order, key), Undo::RefundPoints(key.clone()))
        .await?;
    let order = paid(ctx, order, charged, mode);
    if let Some(coupon_id) = order.coupon_id {
        saga.step(
            ctx,
            redeem(&order, key, coupon_id, mode),
            Undo::ReleaseCoupon(key.clone()),
        )
        .await?;
    }
    let done = saga
        .step(
            ctx,
            deduct_and_complete(&order, key, mode),
            Undo::RestoreStock(key.clone()),
        )
        .await?;
    Ok(Order {
        status: OrderStatus::Completed,
        completed_at: Some(done.at),
        ..order
    })
}

/// Always an ordinary activity. An update is durable only once the workflow task that accepts
/// it completes; a local activity would charge inside that very task. Scheduling the first
/// effect in the same completion as the acceptance makes both durable together; the steps after
/// it follow from the charge's completion, which is in the history.
fn charge(
    order: &Order,
    key: &StepKey,
) -> Call<impl ActivityDefinition<Input = ChargePointsInput, Output = Stamp>> {
    let summary = format!(
        "Charge {} points from user {}",
        points(order.total),
        order.user_id
    );
    Call {
        activity: || OrderActivities::charge_points,
        input: ChargePointsInput {
            key: key.clone(),
            user_id: order.user_id,
            amount: order.total,
        },
        step: Step::forward(StepMode::Remote, summary),
    }
}

/// The order as the charge left it: `PAID`.
fn paid(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    charged: Stamp,
    mode: StepMode,
) -> Order {
    let order = Order {
        status: OrderStatus::Paid,
        paid_at: Some(charged.at),
        ..order.clone()
    };
    ctx.state_mut(|s| s.order = Some(order.clone()));
    if mode == StepMode::Remote {
        // Local steps run the rest of the payment in one workflow task, whose commands reach
        // the server together: a PAID search attribute would be overwritten before anyone saw it.
        status::show_order(ctx, &order);
    }
    order
}

fn redeem(
    order: &Order,
    key: &StepKey,
    coupon_id: CouponId,
    mode: StepMode,
) -> Call<impl ActivityDefinition<Input = RedeemCouponInput, Output = ()>> {
    Call {
        activity: || OrderActivities::redeem_coupon,
        input: RedeemCouponInput {
            key: key.clone(),
            user_id: order.user_id,
            coupon_id,
        },
        step: Step::forward(mode, format!("Redeem coupon {coupon_id}")),
    }
}

/// The point of no return: deducts and completes in one transaction, and is not interrupted
/// by the workflow's cancellation (an operator's cancel that arrives now lets it complete).
fn deduct_and_complete(
    order: &Order,
    key: &StepKey,
    mode: StepMode,
) -> Call<impl ActivityDefinition<Input = DeductStockInput, Output = Stamp>> {
    let summary = format!(
        "Deduct the stock of {} lines and complete order {}",
        order.items.len(),
        order.id
    );
    let lines = order
        .items
        .iter()
        .map(|l| LineRequest {
            product_id: l.product_id,
            quantity: l.quantity,
        })
        .collect();
    Call {
        activity: || OrderActivities::deduct_stock_and_complete,
        input: DeductStockInput {
            key: key.clone(),
            lines,
        },
        step: Step::last(mode, summary),
    }
}
