//! The compensation stack of one payment.
//!
//! Unlike the SDK's saga sample, [`Saga::step`] registers a step's undo *before* the step runs:
//! a step that was interrupted or timed out may still have committed, and only its undo (which
//! either reverses it or fences it out) makes that safe. Undos run newest first, are never
//! interrupted by the workflow's cancellation, and are tried until they succeed. For an order
//! that is `COMPLETED` they do nothing: the database keeps the pivot (CONTRACT §2).

use activities::OrderActivities;
use domain::saga::StepKey;
use temporalio_common::ActivityDefinition;
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_sdk::WorkflowContext;

use crate::steps::{self, Step, StepFailure, StepMode};

/// The undo of one forward step of a payment, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    RefundPoints(StepKey),
    ReleaseCoupon(StepKey),
    RestoreStock(StepKey),
}

#[derive(Debug)]
pub struct Saga {
    undos: Vec<Undo>,
    mode: StepMode,
}

impl Saga {
    /// Undos run the way the forward steps ran (see [`StepMode`]).
    pub fn new(mode: StepMode) -> Self {
        Self {
            undos: Vec::new(),
            mode,
        }
    }

    /// Registers `undo`, then runs the forward step it undoes.
    pub async fn step<W, AD>(
        &mut self,
        ctx: &WorkflowContext<W>,
        undo: Undo,
        activity: impl Fn() -> AD,
        input: AD::Input,
        step: Step,
    ) -> Result<AD::Output, StepFailure>
    where
        AD: ActivityDefinition,
        AD::Input: Clone,
        AD::Output: TemporalDeserializable,
    {
        self.undos.push(undo);
        steps::run(ctx, activity, input, &step).await
    }

    /// Runs every registered undo, newest first. Returns once all have succeeded.
    pub async fn compensate<W>(self, ctx: &WorkflowContext<W>) {
        for undo in self.undos.into_iter().rev() {
            let (key, result) = match &undo {
                Undo::RefundPoints(key) => (
                    key,
                    steps::run(
                        ctx,
                        || OrderActivities::refund_points,
                        key.clone(),
                        &Step::undo(self.mode, format!("Refund the points of {}", payment(key))),
                    )
                    .await,
                ),
                Undo::ReleaseCoupon(key) => (
                    key,
                    steps::run(
                        ctx,
                        || OrderActivities::release_coupon,
                        key.clone(),
                        &Step::undo(self.mode, format!("Release the coupon of {}", payment(key))),
                    )
                    .await,
                ),
                Undo::RestoreStock(key) => (
                    key,
                    steps::run(
                        ctx,
                        || OrderActivities::restore_stock,
                        key.clone(),
                        &Step::undo(self.mode, format!("Restore the stock of {}", payment(key))),
                    )
                    .await,
                ),
            };
            // An undo is never refused (it does nothing when there is nothing to do) and never
            // interrupted; anything else would be a bug, which the close's undo from the ledger
            // still covers.
            if let Err(failure) = result {
                tracing::error!(order_id = %key.order_id, ?undo, ?failure, "an undo did not run");
            }
        }
    }
}

fn payment(key: &StepKey) -> String {
    format!("order {} (payment {})", key.order_id, key.payment_id)
}
