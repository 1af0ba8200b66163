//! Closing an order that did not complete: `CANCELED` or `EXPIRED`, with the code and the
//! reason, undoing whatever its ledger shows done.

use activities::OrderActivities;
use domain::saga::CloseOrderInput;
use domain::{CancelCode, Order, OrderError, OrderStatus};
use temporalio_sdk::WorkflowContext;

use super::OrderWorkflow;
use crate::steps::{self, Call, Step, StepMode};

/// How an order that did not complete is closed: status, code and reason.
pub struct Closing {
    status: OrderStatus,
    code: CancelCode,
    reason: String,
}

impl Closing {
    fn canceled(code: CancelCode, reason: impl Into<String>) -> Self {
        Self {
            status: OrderStatus::Canceled,
            code,
            reason: reason.into(),
        }
    }

    pub fn expired() -> Self {
        Self {
            status: OrderStatus::Expired,
            code: CancelCode::PaymentExpired,
            reason: "no payment before expires_at".into(),
        }
    }

    pub fn customer() -> Self {
        Self::canceled(CancelCode::UserCanceled, "canceled by the user")
    }

    pub fn operator() -> Self {
        Self::canceled(
            CancelCode::OperatorCanceled,
            "the order's workflow was cancelled",
        )
    }

    pub fn refused(refusal: &OrderError) -> Self {
        let reason = format!("payment failed: {refusal} ({})", refusal.code());
        Self::canceled(CancelCode::of_refusal(refusal), reason)
    }

    pub fn unknown_payment() -> Self {
        Self::canceled(
            CancelCode::OperatorCanceled,
            "a payment this run of the workflow does not know (it was reset)",
        )
    }
}

/// Closes the order as `closing` says; the `close_order` step undoes whatever the order's
/// ledger shows done. Returns the order as the database then has it: closed, or `COMPLETED`
/// (the pivot: the caller then goes forward).
pub async fn close(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    closing: Closing,
    mode: StepMode,
) -> Order {
    ctx.set_current_details(format!("Closing: {}", closing.reason));
    let summary = format!(
        "Close order {} as {} ({}): {}",
        order.id, closing.status, closing.code, closing.reason
    );
    let input = CloseOrderInput {
        order_id: order.id.clone(),
        status: closing.status,
        code: closing.code,
        reason: closing.reason.clone(),
    };
    let call = Call {
        activity: || OrderActivities::close_order,
        input,
        // The customer's cancel is the first effect of an update: an ordinary activity,
        // scheduled with the update's acceptance (see `payment::charge`).
        step: Step::undo(
            if closing.code == CancelCode::UserCanceled {
                StepMode::Remote
            } else {
                mode
            },
            summary,
        ),
    };
    match steps::finish(ctx, call).await {
        Ok(closed) => closed,
        Err(refusal) => {
            // Refused only when the order's row does not exist (deleted by hand): nothing is
            // left to keep in step, so the workflow ends as it meant to close it.
            tracing::error!(order_id = %order.id, %refusal, "close_order refused");
            let mut closed = order.clone();
            closed.status = closing.status;
            closed.cancel_code = Some(closing.code);
            closed.cancel_reason = Some(closing.reason);
            closed
        }
    }
}
