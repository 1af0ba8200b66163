//! `OrderWorkflow`: one order's whole life (CONTRACT §2), read top to bottom in [`life`].
//!
//! The database is the source of truth for an order's outcome, and `COMPLETED` is the pivot:
//! the workflow orchestrates, and ends as the order row ends. Whatever a run does not remember
//! (a lost workflow task, a reset), the database does: placing again answers the recorded
//! order, closing undoes whatever the ledger shows done, and a run that finds the order
//! `COMPLETED` goes forward.

mod mailbox;
mod payment;
mod status;

use std::pin::{Pin, pin};

use futures::future::FusedFuture;
use std::time::Duration;

use activities::OrderActivities;
use chrono::{DateTime, Utc};
use domain::saga::{CloseOrderInput, PayRequest, PlaceOrderInput};
use domain::{CancelCode, Order, OrderError, OrderStatus, PlaceOrderRequest, UserId};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    TimerOptions, TimerResult, WaitConditionOptions, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, workflows::select,
};

use crate::steps::{self, Step, StepFailure, StepMode};
use mailbox::{Mailbox, Request};
pub use status::search_attributes;

/// What a client starts an order with. The payment timeout is input, not a constant, so that
/// tests can use seconds and a change of `PAYMENT_TIMEOUT` never breaks replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInput {
    pub order_id: String,
    pub user_id: UserId,
    pub request: PlaceOrderRequest,
    pub payment_timeout_ms: u64,
    /// Run the database steps as ordinary activities (`STEP_MODE=remote`).
    #[serde(default)]
    pub remote_steps: bool,
}

/// How the workflow ended: the order as the database has it, or the error that rejected the
/// placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order: Option<Order>,
    pub rejected: Option<OrderError>,
}

type UpdateError = Box<dyn std::error::Error + Send + Sync>;

#[workflow]
pub struct OrderWorkflow {
    input: OrderInput,
    /// The order as it stands, once placed.
    order: Option<Order>,
    mail: Mailbox,
}

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

/// The order's life: CONTRACT §2, steps 1 to 4.
async fn life(ctx: &WorkflowContext<OrderWorkflow>) -> WorkflowResult<OrderResult> {
    let input = ctx.state(|s| s.input.clone());
    let mode = StepMode::of(input.remote_steps);

    // 1. Place: check the order and record it PENDING, keyed by its id.
    let order = match place(ctx, &input, mode).await {
        Ok(order) => order,
        Err(refusal) => return Ok(rejected(ctx, refusal)),
    };
    // 2. Wait for payment, the customer's cancel or expiry; 3. pay, or close the order.
    let order = match order.status {
        OrderStatus::Pending => wait_and_pay(ctx, order, mode).await,
        // A payment this run does not know (the workflow was reset): undone from the ledger.
        OrderStatus::Paid => close(ctx, &order, Closing::unknown_payment(), mode).await,
        // Settled before this run, as the database has it.
        _ => order,
    };
    // 4. Answer whoever waits, and tell the data platform about a completed order.
    end(ctx, order).await
}

/// CONTRACT §2.1. The order as the database recorded it, or why it was rejected.
async fn place(
    ctx: &WorkflowContext<OrderWorkflow>,
    input: &OrderInput,
    mode: StepMode,
) -> Result<Order, OrderError> {
    input
        .request
        .validate()
        .and_then(|()| domain::input::validate_order_id(&input.order_id))?;
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
    let order = steps::finish(
        ctx,
        || OrderActivities::place_order,
        place,
        &Step::placement(mode, summary),
    )
    .await?;
    ctx.state_mut(|s| {
        s.order = Some(order.clone());
        s.mail.placement = Some(Ok(order.clone()));
    });
    status::show_order(ctx, &order);
    Ok(order)
}

fn rejected(ctx: &WorkflowContext<OrderWorkflow>, refusal: OrderError) -> OrderResult {
    let user_id = ctx.state_mut(|s| {
        s.mail.placement = Some(Err(refusal.clone()));
        s.input.user_id
    });
    status::show(ctx, "REJECTED", user_id, 0);
    ctx.set_current_details(format!("Rejected: {refusal} ({})", refusal.code()));
    OrderResult {
        order: None,
        rejected: Some(refusal),
    }
}

/// CONTRACT §2.2 and §2.3: waits for the customer until `expires_at`, pays when asked (again
/// after a refusal for points), and closes the order when the wait or a payment ends it.
/// Returns the order as the database then has it.
async fn wait_and_pay(ctx: &WorkflowContext<OrderWorkflow>, order: Order, mode: StepMode) -> Order {
    ctx.set_current_details(format!(
        "PENDING: waiting for payment {}",
        status::until(&order)
    ));
    let mut timer = pin!(ctx.timer(expiry(ctx, &order)));
    loop {
        let closing = match next_wake(ctx, timer.as_mut()).await {
            Wake::Expired => Closing::expired(),
            Wake::WorkflowCancelled => Closing::operator(),
            Wake::Cancel => Closing::customer(),
            Wake::Pay(request) => {
                ctx.set_current_details(format!("Paying (payment {})", request.payment_id));
                match payment::pay(ctx, &order, &request, mode).await {
                    Ok(completed) => return completed,
                    Err(StepFailure::Refused(e @ OrderError::InsufficientPoints { .. })) => {
                        // Nothing changed: the customer may top up and pay again, until the
                        // same deadline.
                        ctx.set_current_details(format!(
                            "PENDING: a payment was refused ({}); waiting {}",
                            e.code(),
                            status::until(&order)
                        ));
                        ctx.state_mut(|s| s.mail.answer_payment(Err(e)));
                        continue;
                    }
                    Err(StepFailure::Refused(e)) => {
                        let closing = Closing::refused(&e);
                        ctx.state_mut(|s| s.mail.refusal = Some(e));
                        closing
                    }
                    Err(StepFailure::Cancelled) => Closing::operator(),
                }
            }
        };
        // The customer's cancel is the first effect of an update: an ordinary activity,
        // scheduled with the update's acceptance (see `payment::steps` on the charge).
        let mode = if closing.code == CancelCode::UserCanceled {
            StepMode::Remote
        } else {
            mode
        };
        return close(ctx, &order, closing, mode).await;
    }
}

/// What woke the workflow while it waited for payment.
enum Wake {
    Expired,
    Pay(PayRequest),
    Cancel,
    WorkflowCancelled,
}

/// The payment timer, due at `expires_at` itself (CONTRACT §2).
fn expiry(ctx: &WorkflowContext<OrderWorkflow>, order: &Order) -> TimerOptions {
    let now = ctx
        .workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or(order.created_at);
    let left = (order.expires_at - now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    TimerOptions::builder(left)
        .summary(format!("Wait for payment {}", status::until(order)))
        .build()
}

async fn next_wake(
    ctx: &WorkflowContext<OrderWorkflow>,
    mut timer: Pin<&mut (impl FusedFuture<Output = TimerResult> + ?Sized)>,
) -> Wake {
    select! {
        fired = timer.as_mut() => match fired {
            TimerResult::Fired => Wake::Expired,
            TimerResult::Cancelled => Wake::WorkflowCancelled,
        },
        woke = ctx.wait_condition(|s: &OrderWorkflow| s.mail.running.is_some()) => match woke {
            Err(_) => Wake::WorkflowCancelled,
            Ok(()) => ctx.state(|s| match s.mail.running.clone() {
                Some(Request::Pay(request)) => Wake::Pay(request),
                _ => Wake::Cancel,
            }),
        },
    }
}

/// How an order that did not complete is closed: status, code and reason.
struct Closing {
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

    fn expired() -> Self {
        Self {
            status: OrderStatus::Expired,
            code: CancelCode::PaymentExpired,
            reason: "no payment before expires_at".into(),
        }
    }

    fn customer() -> Self {
        Self::canceled(CancelCode::UserCanceled, "canceled by the user")
    }

    fn operator() -> Self {
        Self::canceled(
            CancelCode::OperatorCanceled,
            "the order's workflow was cancelled",
        )
    }

    fn refused(refusal: &OrderError) -> Self {
        let reason = format!("payment failed: {refusal} ({})", refusal.code());
        Self::canceled(CancelCode::of_refusal(refusal), reason)
    }

    fn unknown_payment() -> Self {
        Self::canceled(
            CancelCode::OperatorCanceled,
            "a payment this run of the workflow does not know (it was reset)",
        )
    }
}

/// Closes the order as `closing` says; the `close_order` step undoes whatever the order's
/// ledger shows done. Returns the order as the database then has it: closed, or `COMPLETED`
/// (the pivot: the caller then goes forward).
async fn close(
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
    match steps::finish(
        ctx,
        || OrderActivities::close_order,
        input,
        &Step::undo(mode, summary),
    )
    .await
    {
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

/// The end of every order that was placed: answers whoever still waits as the order ended,
/// tells the data platform about a `COMPLETED` order, and ends the workflow as the database
/// has the order (an operator's cancellation that closed it: the workflow is cancelled too).
async fn end(ctx: &WorkflowContext<OrderWorkflow>, order: Order) -> WorkflowResult<OrderResult> {
    ctx.state_mut(|s| {
        s.order = Some(order.clone());
        s.mail.settle(&order);
    });
    status::show_order(ctx, &order);
    let order = match order.status {
        OrderStatus::Completed if order.platform_notified_at.is_none() => notify(ctx, order).await,
        OrderStatus::Completed => order,
        _ => {
            ctx.set_current_details(status::ended(&order));
            order
        }
    };
    if order.status == OrderStatus::Canceled && ctx.cancellation_token().is_cancelled() {
        return Err(WorkflowTermination::cancelled());
    }
    Ok(OrderResult {
        order: Some(order),
        rejected: None,
    })
}

/// CONTRACT §2.4: POST the completed order; retried for days, never undoes the order.
async fn notify(ctx: &WorkflowContext<OrderWorkflow>, order: Order) -> Order {
    ctx.set_current_details("COMPLETED: telling the data platform");
    let summary = format!("Send order {} to the data platform", order.id);
    let mut pause = Duration::from_secs(60);
    let stamp = loop {
        match ctx
            .execute_activity(
                OrderActivities::notify_platform,
                order.clone(),
                steps::notify(summary.clone()),
            )
            .await
        {
            Ok(stamp) => break stamp,
            Err(e) => {
                // A week of retries ran out: keep going, more slowly, rather than lose it.
                tracing::warn!(order_id = %order.id, error = %e, "data platform still failing");
                ctx.timer(
                    TimerOptions::builder(pause)
                        .cancellation_token(WorkflowCancellationToken::new())
                        .build(),
                )
                .await;
                pause = (pause * 2).min(Duration::from_secs(3600));
            }
        }
    };
    let mut notified = order;
    notified.platform_notified_at = Some(stamp.at);
    ctx.state_mut(|s| s.order = Some(notified.clone()));
    ctx.set_current_details("COMPLETED: delivered to the data platform");
    notified
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
