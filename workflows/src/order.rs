//! `OrderWorkflow`: one order's whole life (CONTRACT §2), read top to bottom in `run`.
//!
//! 1. Place: validate lines, coupon and points, record the order `PENDING`. The `place` update
//!    (sent with the start, update-with-start) answers the caller with the order or the error.
//! 2. Wait for payment on a durable timer: `pay`, `cancel` (updates whose validators refuse them
//!    unless the order is `PENDING`), or the timer (`EXPIRED`).
//! 3. Pay: charge points → redeem coupon → deduct stock → `COMPLETED`; on failure compensate in
//!    reverse and `CANCELED`, except `INSUFFICIENT_POINTS`, which leaves the order `PENDING`.
//! 4. Tell the data platform, retrying for days; it never undoes the order.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use activities::OrderActivities;
use activities::placement::{CheckPlacementInput, PlacementCheck};
use chrono::{DateTime, SubsecRound, Utc};
use domain::saga::{
    ChargePointsInput, CheckPointsInput, CloseOrderInput, DeductStockInput, RedeemCouponInput,
    StepKey, ValidateCouponInput,
};
use domain::{Order, OrderError, OrderStatus, PlaceOrderRequest, Pricing, UserId};
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    TimerOptions, TimerResult, WaitConditionOptions, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, workflows::select,
};

use crate::saga::{Compensation, Saga};
use crate::steps::{self, Mode, StepFailure, points};

/// What a client starts an order with. The payment timeout is input, not a constant, so that
/// tests can use seconds and a change of `PAYMENT_TIMEOUT` never breaks replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInput {
    pub order_id: String,
    pub user_id: UserId,
    pub request: PlaceOrderRequest,
    pub payment_timeout_ms: u64,
    /// Run the database steps as ordinary activities even where local ones are possible
    /// (`STEP_MODE=remote`). Absent in inputs written before it existed, hence the default.
    #[serde(default)]
    pub remote_steps: bool,
}

/// How the workflow ended: the final order, or the error that rejected the placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order: Option<Order>,
    pub rejected: Option<OrderError>,
}

/// Search attributes upserted at every status change (registered by the dev set-up).
pub mod search_attributes {
    use super::SearchAttributeKey;
    pub const ORDER_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderStatus");
    pub const CUSTOMER_ID: SearchAttributeKey<i64> = SearchAttributeKey::int("CustomerId");
    pub const ORDER_TOTAL: SearchAttributeKey<i64> = SearchAttributeKey::int("OrderTotal");
}

type UpdateError = Box<dyn std::error::Error + Send + Sync>;

#[workflow]
pub struct OrderWorkflow {
    input: OrderInput,
    /// The order as it stands, once recorded.
    order: Option<Order>,
    /// The answer to `place`, once known.
    placement: Option<Result<Order, OrderError>>,
    /// Payment attempts so far; each gets its own step keys.
    pay_attempts: u32,
    /// The attempt waiting to be run by `run`, if any.
    pay_requested: Option<u32>,
    pay_results: BTreeMap<u32, Result<Order, OrderError>>,
    cancel_requested: bool,
    cancel_result: Option<Result<Order, OrderError>>,
}

/// What woke the workflow while it waited for payment.
enum Wake {
    Expired,
    Pay(u32),
    Cancel,
    WorkflowCancelled,
}

#[workflow_methods]
impl OrderWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: OrderInput) -> Self {
        Self {
            input,
            order: None,
            placement: None,
            pay_attempts: 0,
            pay_requested: None,
            pay_results: BTreeMap::new(),
            cancel_requested: false,
            cancel_result: None,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderResult> {
        let result = Self::life(ctx).await;
        // Let every update answer its caller before the workflow closes.
        let handlers = ctx.clone();
        let _ = ctx
            .wait_condition_with_options(move |_| handlers.all_handlers_finished(), detached())
            .await;
        result
    }

    async fn life(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderResult> {
        let input = ctx.state(|s| s.input.clone());
        // Decided once, before the first command, so that the whole order runs one way.
        let mode = if ctx.patched(LOCAL_STEPS) && !input.remote_steps {
            Mode::Local
        } else {
            Mode::Remote
        };

        // 1. Place.
        ctx.set_current_details("Validating the order");
        let order = match place(ctx, &input, mode).await {
            Ok(order) => order,
            Err(failure) => {
                let error = failure.to_order_error();
                ctx.state_mut(|s| s.placement = Some(Err(error.clone())));
                set_status(ctx, "REJECTED", input.user_id, 0);
                ctx.set_current_details(format!("Rejected: {} ({})", error, error.code()));
                if failure == StepFailure::Cancelled {
                    return Err(WorkflowTermination::cancelled());
                }
                return Ok(OrderResult {
                    order: None,
                    rejected: Some(error),
                });
            }
        };
        ctx.state_mut(|s| {
            s.order = Some(order.clone());
            s.placement = Some(Ok(order.clone()));
        });
        set_status(
            ctx,
            OrderStatus::Pending.as_str(),
            order.user_id,
            order.total,
        );

        // 2. Wait for payment, cancellation or the deadline. The one timer lives across
        //    payment attempts, so a failed attempt never extends the deadline.
        let timeout = Duration::from_millis(input.payment_timeout_ms);
        let until = order.expires_at.format("%H:%M:%S UTC");
        ctx.set_current_details(format!("PENDING: waiting for payment until {until}"));
        let timer = ctx.timer(
            TimerOptions::builder(timeout)
                .summary(format!("Wait for payment until {until}"))
                .build(),
        );
        let mut timer = pin!(timer);
        loop {
            let wake = select! {
                fired = timer.as_mut() => match fired {
                    TimerResult::Fired => Wake::Expired,
                    TimerResult::Cancelled => Wake::WorkflowCancelled,
                },
                woke = ctx.wait_condition(|s: &Self| s.pay_requested.is_some() || s.cancel_requested) => {
                    match woke {
                        Err(_) => Wake::WorkflowCancelled,
                        Ok(()) => ctx.state(|s| s.pay_requested.map_or(Wake::Cancel, Wake::Pay)),
                    }
                },
            };
            match wake {
                Wake::Expired => {
                    let reason = "no payment before expires_at".to_owned();
                    let order = close(ctx, &order, OrderStatus::Expired, reason, mode).await;
                    answer_waiting_callers(ctx, &order);
                    return Ok(OrderResult {
                        order: Some(order),
                        rejected: None,
                    });
                }
                Wake::Cancel => {
                    let reason = "canceled by the user".to_owned();
                    // The first effect of an update is an ordinary activity (see `pay_steps`).
                    let order =
                        close(ctx, &order, OrderStatus::Canceled, reason, Mode::Remote).await;
                    ctx.state_mut(|s| s.cancel_result = Some(Ok(order.clone())));
                    return Ok(OrderResult {
                        order: Some(order),
                        rejected: None,
                    });
                }
                Wake::WorkflowCancelled => {
                    let reason = "the workflow was cancelled while waiting for payment".to_owned();
                    let order = close(ctx, &order, OrderStatus::Canceled, reason, mode).await;
                    answer_waiting_callers(ctx, &order);
                    return Err(WorkflowTermination::cancelled());
                }
                Wake::Pay(attempt) => {
                    // 3. Pay.
                    ctx.set_current_details(format!("Paying (attempt {attempt})"));
                    match pay(ctx, &order, attempt, mode).await {
                        Ok(completed) => {
                            ctx.state_mut(|s| {
                                s.pay_results.insert(attempt, Ok(completed.clone()));
                            });
                            // 4. Tell the data platform.
                            let notified = notify(ctx, completed).await;
                            return Ok(OrderResult {
                                order: Some(notified),
                                rejected: None,
                            });
                        }
                        Err(StepFailure::Business(e @ OrderError::InsufficientPoints { .. })) => {
                            // Nothing changed: the order stays PENDING, the user may top up
                            // and pay again before the same deadline.
                            ctx.state_mut(|s| {
                                s.pay_results.insert(attempt, Err(e.clone()));
                                s.pay_requested = None;
                            });
                            ctx.set_current_details(format!(
                                "PENDING: payment attempt {attempt} refused ({}); waiting until {until}",
                                e.code()
                            ));
                        }
                        Err(failure) => {
                            let error = failure.to_order_error();
                            let reason = match &failure {
                                StepFailure::Cancelled => {
                                    "the workflow was cancelled during payment".to_owned()
                                }
                                _ => format!("payment failed: {} ({})", error, error.code()),
                            };
                            let order =
                                close(ctx, &order, OrderStatus::Canceled, reason, mode).await;
                            let answer = if failure == StepFailure::Cancelled {
                                Err(OrderError::not_payable(OrderStatus::Canceled))
                            } else {
                                Err(error)
                            };
                            ctx.state_mut(|s| {
                                s.pay_results.insert(attempt, answer);
                            });
                            if failure == StepFailure::Cancelled {
                                return Err(WorkflowTermination::cancelled());
                            }
                            return Ok(OrderResult {
                                order: Some(order),
                                rejected: None,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Sent with the start (update-with-start): answers with the `PENDING` order or the reason
    /// the placement was rejected. Sending it again attaches to the same answer.
    #[update]
    pub async fn place(ctx: &mut WorkflowContext<Self>) -> Result<Order, UpdateError> {
        ctx.wait_condition_with_options(|s: &Self| s.placement.is_some(), detached())
            .await?;
        ctx.state(|s| s.placement.clone())
            .unwrap_or_else(|| Err(OrderError::invalid("placement not decided")))
            .map_err(business)
    }

    #[update_validator(pay)]
    pub fn validate_pay(&self, _ctx: &WorkflowContextView, _input: &()) -> Result<(), UpdateError> {
        self.payable().map_err(business)
    }

    /// Pays the order: answers with the `COMPLETED` order, or the error (`INSUFFICIENT_POINTS`
    /// leaves it `PENDING`; any other failure leaves it `CANCELED`, everything undone).
    #[update]
    pub async fn pay(ctx: &mut WorkflowContext<Self>) -> Result<Order, UpdateError> {
        // Checked again here, not only in the validator: two payments delivered in the same
        // workflow task both pass their validators before either handler runs.
        let attempt = ctx
            .state_mut(|s| {
                s.payable()?;
                s.pay_attempts += 1;
                s.pay_requested = Some(s.pay_attempts);
                Ok(s.pay_attempts)
            })
            .map_err(business)?;
        ctx.wait_condition_with_options(
            |s: &Self| s.pay_results.contains_key(&attempt),
            detached(),
        )
        .await?;
        ctx.state(|s| s.pay_results.get(&attempt).cloned())
            .unwrap_or_else(|| Err(OrderError::invalid("payment not decided")))
            .map_err(business)
    }

    #[update_validator(cancel)]
    pub fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), UpdateError> {
        self.payable().map_err(business)
    }

    /// Cancels a `PENDING` order (nothing to undo: nothing was charged yet).
    #[update]
    pub async fn cancel(ctx: &mut WorkflowContext<Self>) -> Result<Order, UpdateError> {
        ctx.state_mut(|s| {
            s.payable()?;
            s.cancel_requested = true;
            Ok(())
        })
        .map_err(business)?;
        ctx.wait_condition_with_options(|s: &Self| s.cancel_result.is_some(), detached())
            .await?;
        ctx.state(|s| s.cancel_result.clone())
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
    /// Pay and cancel are accepted only for a `PENDING` order with nothing else in flight.
    fn payable(&self) -> Result<(), OrderError> {
        let Some(order) = &self.order else {
            return Err(OrderError::OrderNotFound {
                order_id: self.input.order_id.clone(),
            });
        };
        if order.status != OrderStatus::Pending {
            return Err(OrderError::not_payable(order.status));
        }
        if self.pay_requested.is_some() || self.cancel_requested {
            // A payment or cancellation is already running: report where it is heading, as
            // one of the contract's statuses (a payment in flight is `PAID`: points being
            // charged, stock and coupon being settled).
            return Err(OrderError::not_payable(if self.cancel_requested {
                OrderStatus::Canceled
            } else {
                OrderStatus::Paid
            }));
        }
        Ok(())
    }
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

/// A wait that the workflow's own cancellation does not interrupt: callers waiting on `pay`
/// or `cancel` still get their answer after the compensations finish.
fn detached() -> WaitConditionOptions {
    WaitConditionOptions::builder()
        .cancellation_token(WorkflowCancellationToken::new())
        .build()
}

fn now(ctx: &WorkflowContext<OrderWorkflow>) -> DateTime<Utc> {
    // Workflow time is deterministic; microseconds are what PostgreSQL keeps.
    ctx.workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
        .trunc_subsecs(6)
}

fn set_status(ctx: &WorkflowContext<OrderWorkflow>, status: &str, user_id: UserId, total: i64) {
    use search_attributes::*;
    ctx.upsert_search_attributes([
        ORDER_STATUS.value_set(status.to_owned()),
        CUSTOMER_ID.value_set(user_id),
        ORDER_TOTAL.value_set(total),
    ]);
}

/// Workflows started from here on check the placement with one activity, `check_placement`,
/// instead of three. Those started before have no marker for it in their history and go on
/// with the three; see README "Changing the workflow safely".
const PLACEMENT_ONE_CHECK: &str = "placement-one-check";

/// Workflows started from here on run every database step as a local activity (see
/// [`steps::Mode`]); those started before go on scheduling ordinary activities. The data
/// platform is an ordinary activity either way.
const LOCAL_STEPS: &str = "local-steps";

/// CONTRACT §2.1: lines, coupon, points, then the `PENDING` order. Read-only until the record.
async fn place(
    ctx: &WorkflowContext<OrderWorkflow>,
    input: &OrderInput,
    mode: Mode,
) -> Result<Order, StepFailure> {
    input
        .request
        .validate()
        .and_then(|()| domain::input::validate_order_id(&input.order_id))
        .map_err(StepFailure::Business)?;
    let request = &input.request;
    // `local-steps` came after `placement-one-check`: a local workflow checks with one activity
    // without asking (and so without a second marker in its history).
    let one_check = mode == Mode::Local || ctx.patched(PLACEMENT_ONE_CHECK);
    let PlacementCheck { items, discount } = if one_check {
        steps::run(
            ctx,
            OrderActivities::check_placement,
            CheckPlacementInput {
                user_id: input.user_id,
                lines: request.items.clone(),
                coupon_id: request.coupon_id,
            },
            steps::check(
                mode,
                format!(
                    "Check {} products and their stock{}, and the points of user {}",
                    request.items.len(),
                    request
                        .coupon_id
                        .map(|c| format!(", coupon {c}"))
                        .unwrap_or_default(),
                    input.user_id
                ),
            ),
        )
        .await?
    } else {
        place_checks_before_one_check(ctx, input).await?
    };
    let subtotal = Pricing::subtotal(&items);
    let total = subtotal - discount;
    let created_at = now(ctx);
    let order = Order {
        id: input.order_id.clone(),
        user_id: input.user_id,
        status: OrderStatus::Pending,
        items,
        subtotal,
        discount,
        total,
        coupon_id: request.coupon_id,
        shipping: request.shipping.clone(),
        created_at,
        expires_at: created_at
            + chrono::Duration::milliseconds(input.payment_timeout_ms.min(i64::MAX as u64) as i64),
        paid_at: None,
        completed_at: None,
        canceled_at: None,
        cancel_reason: None,
        platform_notified_at: None,
    };
    steps::run(
        ctx,
        OrderActivities::record_order,
        order.clone(),
        steps::must_finish(mode, format!("Record order {} as PENDING", order.id)),
    )
    .await?;
    Ok(order)
}

/// The placement checks as three activities, for workflows started before
/// `placement-one-check`: their histories schedule exactly these, in this order. Retire it
/// with the patch (README "Changing the workflow safely").
async fn place_checks_before_one_check(
    ctx: &WorkflowContext<OrderWorkflow>,
    input: &OrderInput,
) -> Result<PlacementCheck, StepFailure> {
    let request = &input.request;
    let items = steps::run(
        ctx,
        OrderActivities::validate_lines,
        request.items.clone(),
        steps::check(
            Mode::Remote,
            format!("Check {} products and their stock", request.items.len()),
        ),
    )
    .await?;
    let subtotal = Pricing::subtotal(&items);
    let discount = match request.coupon_id {
        None => 0,
        Some(coupon_id) => {
            steps::run(
                ctx,
                OrderActivities::validate_coupon,
                ValidateCouponInput {
                    user_id: input.user_id,
                    coupon_id,
                    subtotal,
                },
                steps::check(
                    Mode::Remote,
                    format!("Check coupon {coupon_id} for user {}", input.user_id),
                ),
            )
            .await?
        }
    };
    let total = subtotal - discount;
    steps::run(
        ctx,
        OrderActivities::check_points,
        CheckPointsInput {
            user_id: input.user_id,
            total,
        },
        steps::check(
            Mode::Remote,
            format!(
                "Check that user {} has {} points",
                input.user_id,
                points(total)
            ),
        ),
    )
    .await?;
    Ok(PlacementCheck { items, discount })
}

/// CONTRACT §2.3: charge points → redeem coupon → deduct stock → COMPLETED. Each compensation
/// is registered before its step runs; on any failure they all run, newest first.
async fn pay(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    attempt: u32,
    mode: Mode,
) -> Result<Order, StepFailure> {
    let key = StepKey {
        order_id: order.id.clone(),
        attempt,
    };
    let mut saga = Saga::new(mode);
    match pay_steps(ctx, order, &key, &mut saga, mode).await {
        Ok(completed) => Ok(completed),
        Err(failure) => {
            ctx.set_current_details(format!("Compensating payment attempt {attempt}"));
            saga.compensate(ctx).await;
            Err(failure)
        }
    }
}

async fn pay_steps(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    key: &StepKey,
    saga: &mut Saga,
    mode: Mode,
) -> Result<Order, StepFailure> {
    saga.register(Compensation::RefundPoints(key.clone()));
    let paid = steps::run(
        ctx,
        OrderActivities::charge_points,
        ChargePointsInput {
            key: key.clone(),
            user_id: order.user_id,
            amount: order.total,
        },
        // Always an ordinary activity. An update is durable only once the workflow task that
        // accepts it completes; a local activity would charge inside that very task, so a server
        // that died before the task completed would lose the `pay` update but keep the charge.
        // Scheduling the first effect in the same completion as the acceptance makes both
        // durable together. The steps after it follow from the charge's completion, which is in
        // the history, and may be local.
        steps::forward(
            Mode::Remote,
            format!(
                "Charge {} points from user {}",
                points(order.total),
                order.user_id
            ),
        ),
    )
    .await?;
    let mut order = order.clone();
    order.status = OrderStatus::Paid;
    order.paid_at = Some(paid.at);
    ctx.state_mut(|s| s.order = Some(order.clone()));
    if mode == Mode::Remote {
        // Local steps run the whole payment in one workflow task, whose commands reach the
        // server together: a PAID search attribute would be overwritten before anyone saw it.
        set_status(ctx, OrderStatus::Paid.as_str(), order.user_id, order.total);
    }

    if let Some(coupon_id) = order.coupon_id {
        saga.register(Compensation::ReleaseCoupon(key.clone()));
        steps::run(
            ctx,
            OrderActivities::redeem_coupon,
            RedeemCouponInput {
                key: key.clone(),
                user_id: order.user_id,
                coupon_id,
            },
            steps::forward(mode, format!("Redeem coupon {coupon_id}")),
        )
        .await?;
    }

    saga.register(Compensation::RestoreStock(key.clone()));
    let lines = DeductStockInput {
        key: key.clone(),
        lines: order
            .items
            .iter()
            .map(|l| domain::LineRequest {
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
    let done = match mode {
        // The last step deducts and completes in one transaction. It is retried until it
        // either commits or is refused (nothing committed), and the workflow's cancellation
        // does not interrupt it: it is the payment's point of no return.
        Mode::Local => {
            steps::run(
                ctx,
                OrderActivities::deduct_stock_and_complete,
                lines,
                steps::must_finish(mode, summary),
            )
            .await?
        }
        // Workflows started before `local-steps` deduct, then complete, as their histories say.
        Mode::Remote => {
            steps::run(
                ctx,
                OrderActivities::deduct_stock,
                lines,
                steps::forward(
                    mode,
                    format!("Deduct the stock of {} lines", order.items.len()),
                ),
            )
            .await?;
            // Every step has taken effect: from here the order can only go forward, so
            // completing it is retried for as long as it takes instead of being undone after a
            // timeout.
            steps::run(
                ctx,
                OrderActivities::complete_order,
                order.id.clone(),
                steps::must_finish(mode, format!("Complete order {}", order.id)),
            )
            .await?
        }
    };
    order.status = OrderStatus::Completed;
    order.completed_at = Some(done.at);
    ctx.state_mut(|s| s.order = Some(order.clone()));
    set_status(
        ctx,
        OrderStatus::Completed.as_str(),
        order.user_id,
        order.total,
    );
    ctx.set_current_details("COMPLETED: telling the data platform");
    Ok(order)
}

/// Ends an order that did not complete. Never cancelled with the workflow; retried until done.
async fn close(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: &Order,
    status: OrderStatus,
    reason: String,
    mode: Mode,
) -> Order {
    let input = CloseOrderInput {
        order_id: order.id.clone(),
        status,
        reason: reason.clone(),
    };
    let summary = format!("Mark order {} {status}: {reason}", order.id);
    // Retried by Temporal without limit and never cancelled (`must_finish`), so this fails
    // only on a business refusal: the order already ended another way, as the database keeps
    // it. Say so loudly rather than loop.
    let stamp = match steps::run(
        ctx,
        OrderActivities::close_order,
        input,
        steps::must_finish(mode, summary),
    )
    .await
    {
        Ok(stamp) => stamp.at,
        Err(e) => {
            tracing::error!(order_id = %order.id, error = ?e, "close_order refused");
            now(ctx)
        }
    };
    let mut closed = ctx
        .state(|s| s.order.clone())
        .unwrap_or_else(|| order.clone());
    closed.status = status;
    closed.cancel_reason = Some(reason.clone());
    if status == OrderStatus::Canceled {
        closed.canceled_at = Some(stamp);
    }
    ctx.state_mut(|s| s.order = Some(closed.clone()));
    set_status(ctx, status.as_str(), closed.user_id, closed.total);
    ctx.set_current_details(format!("{status}: {reason}"));
    closed
}

/// After the order ended without them, a `pay` or `cancel` still waiting gets its answer.
fn answer_waiting_callers(ctx: &WorkflowContext<OrderWorkflow>, order: &Order) {
    ctx.state_mut(|s| {
        if let Some(attempt) = s.pay_requested
            && !s.pay_results.contains_key(&attempt)
        {
            s.pay_results
                .insert(attempt, Err(OrderError::not_payable(order.status)));
        }
        if s.cancel_requested && s.cancel_result.is_none() {
            s.cancel_result = Some(Err(OrderError::not_payable(order.status)));
        }
    });
}

/// CONTRACT §2.4: POST the completed order; retried for days, never undoes the order.
async fn notify(ctx: &WorkflowContext<OrderWorkflow>, order: Order) -> Order {
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
                        .cancellation_token(temporalio_sdk::WorkflowCancellationToken::new())
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
