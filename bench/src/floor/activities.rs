//! The orchestration floor's activities: they do nothing, so that a `FloorWorkflow` costs what
//! Temporal itself costs for the shape of an order.
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub struct FloorActivities;

#[activities]
impl FloorActivities {
    /// Nothing: the cost of scheduling, running and recording one activity.
    #[activity]
    pub async fn noop(_ctx: ActivityContext, step: u32) -> Result<u32, ActivityError> {
        Ok(step)
    }
}
