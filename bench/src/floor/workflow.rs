//! `FloorWorkflow`: an order's shape with none of its work, the baseline that `bench` measures
//! the saga against on the same server and client, and on a worker wired like the orders'.
//!
//! Like an order it is started by an update (`place`) that answers once the placement steps
//! are done, waits on a durable timer for a second update (`pay`) that answers once the payment
//! steps are done, and then runs one more activity (the notification). Every step is an
//! activity that does nothing, of the same kind (local or not) and number as the order's.

use std::pin::pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, TimerOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult, workflows::select,
};

use super::activities::FloorActivities;

/// The shape to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorShape {
    /// Steps before `place` answers.
    pub placement_steps: u32,
    /// Steps before `pay` answers (the first of them always an ordinary activity, as an
    /// order's charge is).
    pub payment_steps: u32,
    /// Steps after `pay` has answered (the data platform).
    pub after_steps: u32,
    /// Placement and payment steps as local activities (but the first payment step and the
    /// after steps).
    pub local: bool,
    pub payment_timeout_ms: u64,
}

type UpdateError = Box<dyn std::error::Error + Send + Sync>;

#[workflow]
pub struct FloorWorkflow {
    shape: FloorShape,
    placed: bool,
    pay_requested: bool,
    paid: bool,
}

#[workflow_methods]
impl FloorWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, shape: FloorShape) -> Self {
        Self {
            shape,
            placed: false,
            pay_requested: false,
            paid: false,
        }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<bool> {
        let shape = ctx.state(|s| s.shape);
        steps(ctx, shape.placement_steps, shape.local).await;
        ctx.state_mut(|s| s.placed = true);

        let timer = ctx
            .timer(TimerOptions::builder(Duration::from_millis(shape.payment_timeout_ms)).build());
        let mut timer = pin!(timer);
        let paid = select! {
            _ = timer.as_mut() => false,
            _ = ctx.wait_condition(|s: &Self| s.pay_requested) => true,
        };
        if paid {
            if shape.payment_steps > 0 {
                steps(ctx, 1, false).await;
            }
            steps(ctx, shape.payment_steps.saturating_sub(1), shape.local).await;
            ctx.state_mut(|s| s.paid = true);
            steps(ctx, shape.after_steps, false).await;
        }
        let handlers = ctx.clone();
        let _ = ctx
            .wait_condition(move |_| handlers.all_handlers_finished())
            .await;
        Ok(paid)
    }

    #[update]
    pub async fn place(ctx: &mut WorkflowContext<Self>) -> Result<bool, UpdateError> {
        ctx.wait_condition(|s: &Self| s.placed).await?;
        Ok(true)
    }

    #[update]
    pub async fn pay(ctx: &mut WorkflowContext<Self>) -> Result<bool, UpdateError> {
        ctx.state_mut(|s| s.pay_requested = true);
        ctx.wait_condition(|s: &Self| s.paid).await?;
        Ok(true)
    }
}

async fn steps(ctx: &WorkflowContext<FloorWorkflow>, n: u32, local: bool) {
    for step in 0..n {
        let timeout = Duration::from_secs(10);
        // A no-op cannot fail; an error here would be the server's, and the floor then simply
        // measures less work, which the bench's counts would show.
        let _ = if local {
            ctx.execute_local_activity(
                FloorActivities::noop,
                step,
                LocalActivityOptions::builder()
                    .start_to_close_timeout(timeout)
                    .build(),
            )
            .await
        } else {
            ctx.execute_activity(
                FloorActivities::noop,
                step,
                ActivityOptions::with_start_to_close_timeout(timeout).build(),
            )
            .await
        };
    }
}

/// The shape of an order as `OrderWorkflow` runs it for an order without a coupon (the bench's
/// orders): keep it in step with `order/`.
pub const ORDER_SHAPE: FloorShape = FloorShape {
    // place_order
    placement_steps: 1,
    // charge_points (an ordinary activity), deduct_stock_and_complete
    payment_steps: 2,
    // notify_platform
    after_steps: 1,
    // STEP_MODE=local, the default
    local: true,
    payment_timeout_ms: 15 * 60 * 1000,
};

/// The same order with `STEP_MODE=remote`: every database step an ordinary activity.
pub const ORDER_SHAPE_REMOTE: FloorShape = FloorShape {
    local: false,
    ..ORDER_SHAPE
};

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use temporalio_common::protos::temporal::api::common::v1::Payload;

    use super::*;

    /// One step of a recorded order: its activity type and whether it ran as a local activity.
    type Step = (String, bool);

    /// The steps of a recorded order before `place` answered, before `pay` answered, and after.
    fn phases(file: &str) -> [Vec<Step>; 3] {
        let path = format!("{}/../tests/histories/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let history: Value = serde_json::from_str(&text).expect("a recorded history");
        let mut phases: [Vec<Step>; 3] = Default::default();
        let mut phase = 0;
        for event in history["events"].as_array().expect("events") {
            let Some((kind, attrs)) = event["attributes"]
                .as_object()
                .and_then(|o| o.iter().next())
            else {
                continue;
            };
            match kind.as_str() {
                "WorkflowExecutionUpdateCompletedEventAttributes" => phase += 1,
                "ActivityTaskScheduledEventAttributes" => phases[phase].push((
                    attrs["activity_type"]["name"]
                        .as_str()
                        .expect("a type")
                        .to_owned(),
                    false,
                )),
                "MarkerRecordedEventAttributes"
                    if attrs["marker_name"] == "core_local_activity" =>
                {
                    let payload: Payload =
                        serde_json::from_value(attrs["details"]["data"]["payloads"][0].clone())
                            .expect("a local activity marker's data");
                    let data: Value = serde_json::from_slice(&payload.data).expect("JSON data");
                    let name = data["activity_type"].as_str().expect("a type").to_owned();
                    phases[phase].push((name, true));
                }
                _ => {}
            }
        }
        assert_eq!(phase, 2, "{file}: `place` and `pay` answered once each");
        phases
    }

    /// The floor of a recorded order with a coupon, less its coupon (the bench's orders have
    /// none): every step of the kind the shape says.
    fn shape_of(file: &str) -> FloorShape {
        let [placement, payment, after] = phases(file).map(|steps| -> Vec<Step> {
            steps
                .into_iter()
                .filter(|(name, _)| name != "OrderActivities::redeem_coupon")
                .collect()
        });
        let local = placement.first().is_some_and(|(_, local)| *local);
        assert_eq!(
            payment.first().map(|(name, local)| (name.as_str(), *local)),
            Some(("OrderActivities::charge_points", false)),
            "{file}: the charge comes first, ordinary"
        );
        for (name, is_local) in placement.iter().chain(payment.iter().skip(1)) {
            assert_eq!(*is_local, local, "{file}: {name}");
        }
        assert!(after.iter().all(|(_, local)| !local), "{file}: {after:?}");
        FloorShape {
            placement_steps: placement.len() as u32,
            payment_steps: payment.len() as u32,
            after_steps: after.len() as u32,
            local,
            payment_timeout_ms: ORDER_SHAPE.payment_timeout_ms,
        }
    }

    #[test]
    fn the_floor_has_the_shape_of_a_recorded_order() {
        assert_eq!(shape_of("happy_path_with_coupon.json"), ORDER_SHAPE);
        assert_eq!(
            shape_of("happy_path_with_coupon_remote.json"),
            ORDER_SHAPE_REMOTE
        );
    }
}
