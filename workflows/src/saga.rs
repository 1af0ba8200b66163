//! The compensation stack of one payment attempt.
//!
//! Unlike the SDK's saga sample, a compensation is registered *before* its forward step runs:
//! a step that timed out may still have committed, and only its compensation (which either
//! undoes it or fences it out) makes that safe. Compensations run in reverse order, under a
//! cancellation token of their own, and are retried until they succeed.

use std::time::Duration;

use activities::OrderActivities;
use domain::saga::StepKey;
use temporalio_sdk::{TimerOptions, WorkflowCancellationToken, WorkflowContext};

use crate::steps::{self, Mode, StepFailure};

/// The undo of one forward step, as plain data so the workflow state can show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensation {
    RefundPoints(StepKey),
    ReleaseCoupon(StepKey),
    RestoreStock(StepKey),
}

#[derive(Debug)]
pub struct Saga {
    stack: Vec<Compensation>,
    mode: Mode,
}

impl Saga {
    /// Compensations run the way the forward steps ran (see [`Mode`]).
    pub fn new(mode: Mode) -> Self {
        Self {
            stack: Vec::new(),
            mode,
        }
    }

    /// Call before running the forward step that `c` undoes.
    pub fn register(&mut self, c: Compensation) {
        self.stack.push(c);
    }

    /// Runs every registered compensation, newest first. It returns only when all have
    /// succeeded: a compensation that fails is tried again after a pause, for as long as it
    /// takes, because leaving one undone would lose a customer's points or stock.
    pub async fn compensate<W>(self, ctx: &WorkflowContext<W>) {
        for c in self.stack.into_iter().rev() {
            let mut pause = Duration::from_secs(1);
            loop {
                match run(ctx, &c, self.mode).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(compensation = ?c, error = ?e, "compensation failed; retrying");
                        let timer = TimerOptions::builder(pause)
                            .cancellation_token(WorkflowCancellationToken::new())
                            .summary(format!("Retry compensation {c:?}"))
                            .build();
                        ctx.timer(timer).await;
                        pause = (pause * 2).min(Duration::from_secs(300));
                    }
                }
            }
        }
    }
}

async fn run<W>(ctx: &WorkflowContext<W>, c: &Compensation, mode: Mode) -> Result<(), StepFailure> {
    match c {
        Compensation::RefundPoints(key) => {
            let summary = format!(
                "Refund points of order {} (attempt {})",
                key.order_id, key.attempt
            );
            steps::run(
                ctx,
                OrderActivities::refund_points,
                key.clone(),
                steps::compensation(mode, summary),
            )
            .await?
        }
        Compensation::ReleaseCoupon(key) => {
            let summary = format!("Release the coupon of order {}", key.order_id);
            steps::run(
                ctx,
                OrderActivities::release_coupon,
                key.clone(),
                steps::compensation(mode, summary),
            )
            .await?
        }
        Compensation::RestoreStock(key) => {
            let summary = format!("Restore the stock of order {}", key.order_id);
            steps::run(
                ctx,
                OrderActivities::restore_stock,
                key.clone(),
                steps::compensation(mode, summary),
            )
            .await?
        }
    }
    Ok(())
}
