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

use crate::steps::{self, Call, Step, StepFailure, StepMode};

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
        step: Call<AD>,
        undo: Undo,
    ) -> Result<AD::Output, StepFailure>
    where
        AD: ActivityDefinition,
        AD::Input: Clone,
        AD::Output: TemporalDeserializable,
    {
        self.undos.push(undo);
        steps::run(ctx, step).await
    }

    /// Runs every registered undo, newest first. Returns once all have succeeded.
    pub async fn compensate<W>(self, ctx: &WorkflowContext<W>) {
        for undo in self.undos.into_iter().rev() {
            let key = match &undo {
                Undo::RefundPoints(k) | Undo::ReleaseCoupon(k) | Undo::RestoreStock(k) => k,
            };
            let step = Step::undo(self.mode, summary(&undo));
            let done = match &undo {
                Undo::RefundPoints(key) => {
                    steps::finish(ctx, call(|| OrderActivities::refund_points, key, step)).await
                }
                Undo::ReleaseCoupon(key) => {
                    steps::finish(ctx, call(|| OrderActivities::release_coupon, key, step)).await
                }
                Undo::RestoreStock(key) => {
                    steps::finish(ctx, call(|| OrderActivities::restore_stock, key, step)).await
                }
            };
            // An undo is never refused (it does nothing when there is nothing to do); anything
            // else is a bug, which the close's undo from the ledger still covers.
            if let Err(refusal) = done {
                tracing::error!(order_id = %key.order_id, ?undo, %refusal, "an undo was refused");
            }
        }
    }
}

fn call<AD: ActivityDefinition<Input = StepKey>>(
    activity: fn() -> AD,
    key: &StepKey,
    step: Step,
) -> Call<AD> {
    Call {
        activity,
        input: key.clone(),
        step,
    }
}

fn summary(undo: &Undo) -> String {
    let (what, key) = match undo {
        Undo::RefundPoints(key) => ("Refund the points", key),
        Undo::ReleaseCoupon(key) => ("Release the coupon", key),
        Undo::RestoreStock(key) => ("Restore the stock", key),
    };
    format!(
        "{what} of order {} (payment {})",
        key.order_id, key.payment_id
    )
}
