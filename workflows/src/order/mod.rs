//! `OrderWorkflow`: one order's whole life (CONTRACT §2), read top to bottom in [`life`]:
//! place, wait for a payment, the customer's cancel or expiry, pay (or close), notify.
//!
//! The database is the source of truth for an order's outcome, and `COMPLETED` is the pivot:
//! the workflow orchestrates, and ends as the order row ends. Whatever a run does not remember
//! (a lost workflow task, a reset), the database does: placing again answers the recorded
//! order, closing undoes whatever the ledger shows done, and a run that finds the order
//! `COMPLETED` goes forward.
//!
//! Each phase is a module: [`placement`], [`payment`], [`closing`], [`ending`]; the callers'
//! side (the updates and the query) is [`updates`] with its [`mailbox`]; what the Web UI shows
//! is [`status`].

mod closing;
mod ending;
mod mailbox;
mod payment;
mod placement;
mod status;
mod updates;

use std::pin::{Pin, pin};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::saga::PayRequest;
use domain::{Order, OrderError, OrderId, OrderStatus, PlaceOrderRequest, UserId};
use futures::future::FusedFuture;
use serde::{Deserialize, Serialize};
use temporalio_macros::workflow;
use temporalio_sdk::{
    TimerOptions, TimerResult, WorkflowContext, WorkflowResult, workflows::select,
};

use crate::steps::StepMode;
use closing::{Closing, close};
use ending::end;
use mailbox::{Mailbox, Request};
use payment::Attempt;
use placement::rejected;
pub use status::search_attributes;

/// What a client starts an order with. The payment timeout is input, not a constant, so that
/// tests can use seconds and a change of `PAYMENT_TIMEOUT` never breaks replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInput {
    pub order_id: OrderId,
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

#[workflow]
pub struct OrderWorkflow {
    input: OrderInput,
    /// The order as it stands, once placed.
    order: Option<Order>,
    mail: Mailbox,
}

/// The order's life: CONTRACT §2, steps 1 to 4.
async fn life(ctx: &WorkflowContext<OrderWorkflow>) -> WorkflowResult<OrderResult> {
    let input = ctx.state(|s| s.input.clone());
    let mode = StepMode::of(input.remote_steps);

    // 1. Place: check the order and record it PENDING, keyed by its id.
    let order = match placement::run(ctx, &input, mode).await {
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
            Wake::Pay(request) => match payment::attempt(ctx, &order, &request, mode).await {
                Attempt::Completed(completed) => return *completed,
                // Points short, nothing changed: wait on, until the same deadline.
                Attempt::Refused => continue,
                Attempt::Failed(closing) => closing,
            },
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
