//! `ReconcileWorkflow`: CONTRACT §6 as a scheduled job. A Temporal Schedule (`starter
//! schedule`) starts one every `RECONCILE_INTERVAL`; it runs the one activity `reconcile`
//! (every rule over the database, orders younger than the grace window left out, the worker's
//! gauges set) and ends with what it found, each violation named by rule and order, so that
//! the Web UI shows every run and its result. Orchestration only.

use std::time::Duration;

use activities::ReconcileActivities;
use domain::reconcile::{ReconcileInput, Reconciliation};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};
use temporalio_workflow::RetryPolicy;

/// One try of the queries.
const START_TO_CLOSE: Duration = Duration::from_secs(60);

/// All the tries of one run: well within the schedule's interval, so that a run that cannot
/// reach the database fails (red in the Web UI) instead of holding up the next runs.
const SCHEDULE_TO_CLOSE: Duration = Duration::from_secs(4 * 60);

#[workflow]
pub struct ReconcileWorkflow {
    input: ReconcileInput,
}

#[workflow_methods]
impl ReconcileWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ReconcileInput) -> Self {
        Self { input }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Reconciliation> {
        let input = ctx.state(|s| s.input);
        let options = ActivityOptions::with_close_timeouts(
            temporalio_sdk::ActivityCloseTimeouts::ScheduleAndStartToClose {
                schedule_to_close: SCHEDULE_TO_CLOSE,
                start_to_close: START_TO_CLOSE,
            },
        )
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30))
                .build(),
        )
        .summary(format!("CONTRACT §6, grace {}s", input.grace_secs))
        .build();
        let found = ctx
            .execute_activity(ReconcileActivities::reconcile, input, options)
            .await?;
        Ok(found)
    }
}
