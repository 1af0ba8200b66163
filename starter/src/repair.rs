//! `starter repair ORDER_ID [--apply]` (CONTRACT §4): reconciles an order whose workflow ended
//! without finishing it (terminated, or failed or timed out), from the ledgers, as the
//! workflow would have:
//!
//! - an open order (`PENDING` or `PAID`) is closed `CANCELED` with the code `REPAIRED`, every
//!   payment step its ledger shows done undone (`store::repair::close`, the close every
//!   workflow uses);
//! - an order past the pivot (`COMPLETED`) goes forward: it is delivered to the data platform
//!   (`Idempotency-Key: <order id>`) and `platform_notified_at` set;
//! - an order the workflow had closed before it was terminated keeps its status, and its code
//!   becomes `REPAIRED` (the first code stays in its reason), so that CONTRACT §6 accepts it.
//!
//! A dry run by default: it says what it would do. Running it again changes nothing more. A
//! running workflow is refused: it finishes its order itself (cancel it instead).

use domain::{CancelCode, Order, OrderError, OrderId, OrderStatus};
use serde::Serialize;
use store::repair::DoneStep;
use store::{PgPool, StoreError};
use temporalio_client::{Client, WorkflowDescribeOptions, WorkflowExecutionStatus};
use workflows::OrderWorkflow;

use activities::platform::PlatformClient;

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The contract's error (an unknown order: `ORDER_NOT_FOUND`).
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(
        "order {0}'s workflow is running: it finishes the order itself. To stop it, cancel it \
         (`temporal workflow cancel --workflow-id {0}`), which undoes what it did; never \
         terminate it"
    )]
    Running(String),
    #[error("Temporal: {0}")]
    Temporal(String),
    #[error("the data platform: {0}")]
    Platform(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

/// What a repair does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to repair.
    None,
    /// Undo what the ledger shows done; close it `CANCELED`, code `REPAIRED`.
    CloseCanceled,
    /// Past the pivot: deliver it to the data platform.
    CompleteForward,
    /// Closed by its workflow before the termination: its code becomes `REPAIRED`.
    ConfirmClosed,
}

/// How the order's workflow (its latest run) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workflow {
    Running,
    /// Completed or cancelled: it finished its order.
    Finished(String),
    /// Terminated, failed or timed out: it did not.
    Ended(String),
    /// No such workflow (never started, or past the namespace's retention).
    Missing,
}

impl Workflow {
    pub fn describe(&self) -> &str {
        match self {
            Workflow::Running => "running",
            Workflow::Finished(how) | Workflow::Ended(how) => how,
            Workflow::Missing => "not found",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RepairReport {
    pub order_id: String,
    /// The workflow's latest run: `terminated`, `completed`, `not found`, ...
    pub workflow: String,
    /// The row before the repair.
    pub status: OrderStatus,
    pub cancel_code: Option<CancelCode>,
    pub platform_notified: bool,
    /// The payment steps the ledger shows done and not undone.
    pub done_steps: Vec<DoneStep>,
    pub action: Action,
    /// What the action does, step by step, in words.
    pub plan: Vec<String>,
    /// Whether it was done (`--apply`); false for a dry run and for nothing to do.
    pub applied: bool,
    /// The order as it stands after the repair (as it is, for a dry run).
    pub order: Order,
}

/// What to do with `order`, whose workflow stands as `workflow`.
pub fn decide(workflow: &Workflow, order: &Order) -> Result<Action, RepairError> {
    let unfinished = match workflow {
        Workflow::Running => return Err(RepairError::Running(order.id.to_string())),
        Workflow::Finished(_) => false,
        Workflow::Ended(_) => true,
        Workflow::Missing => false,
    };
    let repaired = order.cancel_code == Some(CancelCode::Repaired);
    Ok(match order.status {
        OrderStatus::Pending | OrderStatus::Paid if unfinished => Action::CloseCanceled,
        // No workflow at all will never finish it either.
        OrderStatus::Pending | OrderStatus::Paid if *workflow == Workflow::Missing => {
            Action::CloseCanceled
        }
        OrderStatus::Completed
            if order.platform_notified_at.is_none()
                && !matches!(workflow, Workflow::Finished(_)) =>
        {
            Action::CompleteForward
        }
        OrderStatus::Canceled | OrderStatus::Expired if unfinished && !repaired => {
            Action::ConfirmClosed
        }
        _ => Action::None,
    })
}

/// The plan of `action`, in words.
pub fn plan(action: Action, order: &Order, done: &[DoneStep]) -> Vec<String> {
    match action {
        Action::None => vec!["nothing to repair".to_owned()],
        Action::CloseCanceled => {
            let mut out: Vec<String> = done
                .iter()
                .map(|d| {
                    let undo = match d.step.as_str() {
                        "deduct_stock" => "restore the stock deducted",
                        "redeem_coupon" => "release the coupon redeemed",
                        _ => "refund the points charged",
                    };
                    format!("{undo} by {} of payment {}", d.step, d.attempt)
                })
                .collect();
            out.push(format!(
                "close the order CANCELED with cancel_code REPAIRED (it is {})",
                order.status
            ));
            out
        }
        Action::CompleteForward => vec![
            format!(
                "deliver the order to the data platform (Idempotency-Key: {})",
                order.id
            ),
            "set platform_notified_at".to_owned(),
        ],
        Action::ConfirmClosed => vec![format!(
            "keep it {}, set cancel_code REPAIRED (it was {})",
            order.status,
            order.cancel_code.map_or("none", |c| c.as_str())
        )],
    }
}

/// Repairs `order_id`: a dry run unless `apply`.
pub async fn run(
    db: &PgPool,
    client: &Client,
    platform: &PlatformClient,
    order_id: &OrderId,
    apply: bool,
) -> Result<RepairReport, RepairError> {
    let workflow = workflow_of(client, order_id).await?;
    let order = load(db, order_id).await?;
    let action = decide(&workflow, &order)?;
    let done_steps = store::repair::done_steps(db, order_id).await?;
    let plan = plan(action, &order, &done_steps);
    let mut report = RepairReport {
        order_id: order_id.to_string(),
        workflow: workflow.describe().to_owned(),
        status: order.status,
        cancel_code: order.cancel_code,
        platform_notified: order.platform_notified_at.is_some(),
        done_steps,
        action,
        plan,
        applied: false,
        order,
    };
    if !apply || action == Action::None {
        return Ok(report);
    }
    report.order = match action {
        Action::CloseCanceled => {
            let reason = format!(
                "repaired by `starter repair` after its workflow was {}",
                workflow.describe()
            );
            let closed = store::repair::close(db, order_id, &reason).await?;
            // Found COMPLETED after all (the pivot): forward, as a workflow would go.
            if closed.status == OrderStatus::Completed && closed.platform_notified_at.is_none() {
                deliver(db, platform, &closed).await?
            } else {
                closed
            }
        }
        Action::CompleteForward => deliver(db, platform, &report.order).await?,
        Action::ConfirmClosed => store::repair::confirm_closed(db, order_id).await?,
        Action::None => report.order,
    };
    report.applied = true;
    Ok(report)
}

/// Sends the order to the data platform, then records that it has it.
async fn deliver(
    db: &PgPool,
    platform: &PlatformClient,
    order: &Order,
) -> Result<Order, RepairError> {
    platform
        .send(order)
        .await
        .map_err(|e| RepairError::Platform(e.to_string()))?;
    store::orders::mark_notified(db, &order.id).await?;
    load(db, &order.id).await
}

async fn load(db: &PgPool, order_id: &OrderId) -> Result<Order, RepairError> {
    store::orders::load(db, order_id).await?.ok_or_else(|| {
        OrderError::OrderNotFound {
            order_id: order_id.to_string(),
        }
        .into()
    })
}

/// How the order's workflow (its latest run) stands.
pub async fn workflow_of(client: &Client, order_id: &str) -> Result<Workflow, RepairError> {
    let handle = client.get_workflow_handle::<OrderWorkflow>(order_id);
    let described = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => d,
        Err(e) if e.to_string().to_lowercase().contains("not found") => {
            return Ok(Workflow::Missing);
        }
        Err(e) => return Err(RepairError::Temporal(e.to_string())),
    };
    Ok(match described.status() {
        WorkflowExecutionStatus::Running => Workflow::Running,
        WorkflowExecutionStatus::Completed => Workflow::Finished("completed".into()),
        WorkflowExecutionStatus::Canceled => Workflow::Finished("canceled".into()),
        WorkflowExecutionStatus::Terminated => Workflow::Ended("terminated".into()),
        WorkflowExecutionStatus::Failed => Workflow::Ended("failed".into()),
        WorkflowExecutionStatus::TimedOut => Workflow::Ended("timed out".into()),
        other => Workflow::Ended(format!("{other:?}").to_lowercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Shipping, UserId};

    fn order(status: OrderStatus, code: Option<CancelCode>, notified: bool) -> Order {
        let at = chrono::Utc::now();
        Order {
            id: OrderId::parse("ord-1").expect("a valid order id"),
            user_id: UserId::from(1),
            status,
            items: Vec::new(),
            subtotal: 1_000,
            discount: 0,
            total: 1_000,
            coupon_id: None,
            shipping: Shipping {
                recipient: "r".into(),
                address: "a".into(),
                phone: "0101234567".into(),
            },
            created_at: at,
            expires_at: at,
            paid_at: None,
            completed_at: None,
            canceled_at: None,
            cancel_reason: None,
            cancel_code: code,
            platform_notified_at: notified.then_some(at),
        }
    }

    #[test]
    fn a_terminated_order_is_closed_forwarded_or_confirmed_once() {
        let ended = Workflow::Ended("terminated".into());
        let decide = |o: &Order| decide(&ended, o).unwrap();
        assert_eq!(
            decide(&order(OrderStatus::Pending, None, false)),
            Action::CloseCanceled
        );
        assert_eq!(
            decide(&order(OrderStatus::Paid, None, false)),
            Action::CloseCanceled
        );
        let completed = order(OrderStatus::Completed, None, false);
        assert_eq!(decide(&completed), Action::CompleteForward);
        let delivered = order(OrderStatus::Completed, None, true);
        assert_eq!(decide(&delivered), Action::None);
        let canceled = order(OrderStatus::Canceled, Some(CancelCode::UserCanceled), false);
        assert_eq!(decide(&canceled), Action::ConfirmClosed);
        let expired = order(
            OrderStatus::Expired,
            Some(CancelCode::PaymentExpired),
            false,
        );
        assert_eq!(decide(&expired), Action::ConfirmClosed);
        // What a repair leaves is never repaired again.
        let repaired = order(OrderStatus::Canceled, Some(CancelCode::Repaired), false);
        assert_eq!(decide(&repaired), Action::None);
    }

    #[test]
    fn a_running_or_finished_workflow_is_left_to_itself() {
        let open = order(OrderStatus::Paid, None, false);
        assert!(matches!(
            decide(&Workflow::Running, &open),
            Err(RepairError::Running(_))
        ));
        let done = Workflow::Finished("completed".into());
        let canceled = order(OrderStatus::Canceled, Some(CancelCode::UserCanceled), false);
        assert_eq!(decide(&done, &canceled).unwrap(), Action::None);
        // No workflow at all: an open order is closed, a closed one left alone.
        assert_eq!(
            decide(&Workflow::Missing, &open).unwrap(),
            Action::CloseCanceled
        );
        assert_eq!(decide(&Workflow::Missing, &canceled).unwrap(), Action::None);
    }

    #[test]
    fn the_plan_names_each_undo_and_the_close() {
        let done = [
            DoneStep {
                step: "redeem_coupon".into(),
                attempt: 1,
            },
            DoneStep {
                step: "charge_points".into(),
                attempt: 1,
            },
        ];
        let paid = order(OrderStatus::Paid, None, false);
        let plan = plan(Action::CloseCanceled, &paid, &done);
        assert_eq!(plan.len(), 3);
        assert!(plan[0].contains("release the coupon"));
        assert!(plan[1].contains("refund the points"));
        assert!(plan[2].contains("REPAIRED"));
    }
}
