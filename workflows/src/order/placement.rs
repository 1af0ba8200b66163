//! CONTRACT §2.1, the placement: one keyed step that checks the order and records it
//! `PENDING`, or the refusal that rejects it.

use activities::OrderActivities;
use domain::saga::PlaceOrderInput;
use domain::{Order, OrderError, OrderId};
use temporalio_sdk::WorkflowContext;

use super::{OrderInput, OrderResult, OrderWorkflow, status};
use crate::steps::{self, Call, Step, StepMode};

/// CONTRACT §2.1, the workflow's side of a placement (the `place` update only waits for its
/// answer): the order as the database recorded it, or why it was rejected.
pub async fn run(
    ctx: &WorkflowContext<OrderWorkflow>,
    input: &OrderInput,
    mode: StepMode,
) -> Result<Order, OrderError> {
    // A payload's id is decoded unchecked (`OrderId` is transparent): checked here again.
    input
        .request
        .validate()
        .and_then(|()| OrderId::parse(&input.order_id).map(drop))?;
    ctx.set_current_details("Placing: checking the lines, the coupon and the points");
    let request = &input.request;
    let summary = format!(
        "Place order {}: {} lines{}, user {}",
        input.order_id,
        request.items.len(),
        request
            .coupon_id
            .map(|c| format!(", coupon {c}"))
            .unwrap_or_default(),
        input.user_id
    );
    let place = PlaceOrderInput {
        order_id: input.order_id.clone(),
        user_id: input.user_id,
        request: request.clone(),
        payment_timeout_ms: input.payment_timeout_ms,
    };
    let call = Call {
        activity: || OrderActivities::place_order,
        input: place,
        step: Step::placement(mode, summary),
    };
    let order = steps::finish(ctx, call).await?;
    ctx.state_mut(|s| {
        s.order = Some(order.clone());
        s.mail.placement = Some(Ok(order.clone()));
    });
    status::show_order(ctx, &order);
    Ok(order)
}

/// The placement refused: no order, and the refusal for whoever asked.
pub fn rejected(ctx: &WorkflowContext<OrderWorkflow>, refusal: OrderError) -> OrderResult {
    ctx.state_mut(|s| s.mail.placement = Some(Err(refusal.clone())));
    status::show(ctx, "REJECTED", 0);
    ctx.set_current_details(format!("Rejected: {refusal} ({})", refusal.code()));
    OrderResult {
        order: None,
        rejected: Some(refusal),
    }
}
