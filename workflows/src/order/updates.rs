//! The callers' side of the workflow: the `place`, `pay` and `cancel` updates (each asks the
//! [`Mailbox`] and waits for its answer), their validators, and the `order` query.

use domain::saga::PayRequest;
use domain::{Order, OrderError};
use temporalio_macros::workflow_methods;
use temporalio_sdk::{
    WaitConditionOptions, WorkflowCancellationToken, WorkflowContext, WorkflowContextView,
    WorkflowResult,
};

use super::mailbox::{Mailbox, Request};
use super::{OrderInput, OrderResult, OrderWorkflow, life};

type UpdateError = Box<dyn std::error::Error + Send + Sync>;

#[workflow_methods]
impl OrderWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: OrderInput) -> Self {
        Self {
            input,
            order: None,
            mail: Mailbox::default(),
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderResult> {
        let result = life(ctx).await;
        // Let every update answer its caller before the workflow closes.
        let handlers = ctx.clone();
        let _ = ctx
            .wait_condition_with_options(move |_| handlers.all_handlers_finished(), detached())
            .await;
        result
    }

    /// Sent with the start (update-with-start): answers with the `PENDING` order or the reason
    /// the placement was rejected. Sending it again attaches to the same answer.
    #[update]
    pub async fn place(ctx: &mut WorkflowContext<Self>) -> Result<Order, UpdateError> {
        ctx.wait_condition_with_options(|s: &Self| s.mail.placement.is_some(), detached())
            .await?;
        ctx.state(|s| s.mail.placement.clone())
            .unwrap_or_else(|| Err(OrderError::invalid("placement not decided")))
            .map_err(business)
    }

    #[update_validator(pay)]
    pub fn validate_pay(
        &self,
        ctx: &WorkflowContextView,
        _request: &PayRequest,
    ) -> Result<(), UpdateError> {
        // The validator has no clock: the expiry is judged by the handler, at acceptance.
        let _ = ctx;
        self.admits(None, true).map_err(business)
    }

    /// Pays the order: answers with the `COMPLETED` order, or the error (`INSUFFICIENT_POINTS`
    /// leaves it `PENDING`; any other refusal leaves it `CANCELED`, everything undone).
    #[update]
    pub async fn pay(
        ctx: &mut WorkflowContext<Self>,
        request: PayRequest,
    ) -> Result<Order, UpdateError> {
        let id = request.payment_id.clone();
        accept(ctx, Request::Pay(request)).await?;
        let answered = id.clone();
        ctx.wait_condition_with_options(
            move |s: &Self| s.mail.paid.contains_key(&answered),
            detached(),
        )
        .await?;
        ctx.state(|s| s.mail.paid.get(&id).cloned())
            .unwrap_or_else(|| Err(OrderError::invalid("payment not decided")))
            .map_err(business)
    }

    #[update_validator(cancel)]
    pub fn validate_cancel(
        &self,
        ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), UpdateError> {
        let _ = ctx;
        self.admits(None, false).map_err(business)
    }

    /// Cancels a `PENDING` order (nothing to undo: nothing was charged yet).
    #[update]
    pub async fn cancel(ctx: &mut WorkflowContext<Self>) -> Result<Order, UpdateError> {
        accept(ctx, Request::Cancel).await?;
        ctx.wait_condition_with_options(|s: &Self| s.mail.canceled.is_some(), detached())
            .await?;
        ctx.state(|s| s.mail.canceled.clone())
            .unwrap_or_else(|| Err(OrderError::invalid("cancel not decided")))
            .map_err(business)
    }

    /// The order as it stands now (`None` while placing, or when the placement was rejected).
    #[query]
    pub fn order(&self, _ctx: &WorkflowContextView) -> Option<Order> {
        self.order.clone()
    }
}

impl OrderWorkflow {
    /// Whether a `pay` (`pay` true) or a `cancel` may be accepted at workflow time `now` (`None`:
    /// a validator, which has no clock; the expiry is then left to the handler).
    fn admits(&self, now: Option<std::time::SystemTime>, pay: bool) -> Result<(), OrderError> {
        self.mail
            .admits(&self.input.order_id, self.order.as_ref(), now, pay)
    }
}

/// Waits for the placement if it is still running, then accepts `request` if the order admits
/// it now (asked again here, not only in the validator: two requests delivered in one workflow
/// task both pass their validators before either handler runs).
async fn accept(ctx: &WorkflowContext<OrderWorkflow>, request: Request) -> Result<(), UpdateError> {
    ctx.wait_condition_with_options(|s: &OrderWorkflow| s.mail.placement.is_some(), detached())
        .await?;
    let now = ctx.workflow_time();
    let pay = matches!(request, Request::Pay(_));
    ctx.state_mut(|s| {
        s.admits(now, pay)?;
        s.mail.accept(request);
        Ok(())
    })
    .map_err(business)
}

/// An update's business error. The SDK wraps whatever an update returns in an application
/// failure of its own; carrying ours as the *source* makes it the failure's cause, where the
/// client finds its code and details.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(#[source] temporalio_sdk::ApplicationFailure);

fn business(e: OrderError) -> UpdateError {
    Box::new(Refused(activities::error::business_failure(e)))
}

/// A wait that the workflow's own cancellation does not interrupt: callers waiting on an
/// update still get their answer after the order is closed.
fn detached() -> WaitConditionOptions {
    WaitConditionOptions::builder()
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}
