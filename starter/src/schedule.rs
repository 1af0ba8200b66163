//! `starter schedule`: the Temporal Schedule that runs CONTRACT §6 as a workflow
//! (`ReconcileWorkflow`) every `RECONCILE_INTERVAL`, leaving out orders younger than
//! `RECONCILE_GRACE`. Created idempotently: when the schedule exists, its interval, workflow
//! and input are set to these settings, and its runs so far are kept.

use std::time::Duration;

use domain::reconcile::ReconcileInput;
use serde::Serialize;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};
use workflows::ReconcileWorkflow;

/// The schedule's id unless `RECONCILE_SCHEDULE_ID` says otherwise.
pub const DEFAULT_SCHEDULE_ID: &str = "orders-reconcile";
/// How often it runs unless `RECONCILE_INTERVAL` says otherwise.
pub const DEFAULT_INTERVAL: &str = "5m";
/// How young an order is skipped as in flight unless `RECONCILE_GRACE` says otherwise.
pub const DEFAULT_GRACE: &str = "10m";

/// What the schedule is made of.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileSchedule {
    pub schedule_id: String,
    /// The worker's task queue (`TASK_QUEUE`).
    pub task_queue: String,
    #[serde(with = "secs")]
    pub interval: Duration,
    #[serde(with = "secs")]
    pub grace: Duration,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensured {
    Created,
    /// It existed: its interval, workflow and input are now these.
    Updated,
}

impl ReconcileSchedule {
    /// The id of each run: the server adds the time it was started for.
    pub fn workflow_id(&self) -> String {
        format!("{}-run", self.schedule_id)
    }

    fn spec(&self) -> ScheduleSpec {
        ScheduleSpec::from_interval(self.interval)
    }

    fn action(&self) -> ScheduleAction {
        let input = ReconcileInput {
            grace_secs: self.grace.as_secs(),
        };
        ScheduleAction::start_workflow(
            ReconcileWorkflow::run,
            input,
            self.task_queue.clone(),
            self.workflow_id(),
        )
    }
}

/// Creates the schedule, or brings the existing one up to these settings. Running it twice is
/// harmless. A run never overlaps the one before (`Skip`).
pub async fn ensure(
    client: &Client,
    schedule: &ReconcileSchedule,
) -> Result<Ensured, ScheduleError> {
    let options = CreateScheduleOptions::builder()
        .action(schedule.action())
        .spec(schedule.spec())
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .note("CONTRACT §6 on a schedule: see docs/OPERATIONS.md")
        .build();
    match client
        .create_schedule(schedule.schedule_id.clone(), options)
        .await
    {
        Ok(_) => Ok(Ensured::Created),
        Err(ScheduleError::Rpc(status))
            if status.code() == temporalio_client::tonic::Code::AlreadyExists =>
        {
            let (spec, action) = (schedule.spec(), schedule.action());
            client
                .get_schedule_handle(schedule.schedule_id.clone())
                .update(
                    move |u| {
                        u.set_spec(spec)
                            .set_action(action)
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip);
                    },
                    Default::default(),
                )
                .await?;
            Ok(Ensured::Updated)
        }
        Err(e) => Err(e),
    }
}
