//! How the workflow calls activities: their timeouts and retries, and how it reads a failure.

use std::time::Duration;

use domain::OrderError;
use temporalio_common::ActivityDefinition;
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_common::error::IncomingError;
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, LocalActivityOptions,
    WorkflowCancellationToken, WorkflowContext,
};
use temporalio_workflow::RetryPolicy;

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// A business outcome: not retried, explained to the caller with the contract's code.
    Business(OrderError),
    /// The workflow was cancelled (from the Web UI or a client) while the step ran.
    Cancelled,
    /// The step kept failing for technical reasons until its retries ran out.
    Technical(String),
}

impl StepFailure {
    /// What the caller is told: business errors as they are, anything else as `UNAVAILABLE`.
    pub fn to_order_error(&self) -> OrderError {
        match self {
            StepFailure::Business(e) => e.clone(),
            StepFailure::Cancelled => OrderError::Unavailable {
                message: "the order's workflow was cancelled".into(),
            },
            StepFailure::Technical(m) => OrderError::Unavailable {
                message: format!("a step could not be completed: {m}"),
            },
        }
    }
}

impl From<ActivityExecutionError> for StepFailure {
    fn from(e: ActivityExecutionError) -> Self {
        match &e {
            ActivityExecutionError::Cancelled(_) => StepFailure::Cancelled,
            ActivityExecutionError::Failed(f) => {
                // The business error is an application failure somewhere in the chain: the
                // activity's cause for an ordinary activity, the failure itself for a local
                // one. Reading the chain finds it either way.
                if let Some(err) = activities::error::business_error(f.failure()) {
                    return StepFailure::Business(err);
                }
                match f.cause() {
                    Some(IncomingError::Cancelled(_)) => StepFailure::Cancelled,
                    Some(cause) => StepFailure::Technical(cause.to_string()),
                    None => StepFailure::Technical(e.to_string()),
                }
            }
            _ => StepFailure::Technical(e.to_string()),
        }
    }
}

fn retry(initial: Duration, max: Duration) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(initial)
        .backoff_coefficient(2.0)
        .maximum_interval(max)
        .build()
}

/// How the database steps run. Workflows started before the `local-steps` patch schedule each as
/// an ordinary activity; those started after run them as local activities, in the worker that
/// runs the workflow. A step then costs one marker event instead of six events and two server
/// round trips, and a whole placement or payment fits in one workflow task. Every step is
/// idempotent and fenced by its business key, so the local retries (and the re-run of a step
/// whose marker a crashed worker never recorded) are as safe as the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Remote,
    Local,
}

/// A step's options, for the mode it runs in.
#[derive(Debug, Clone)]
pub enum StepOptions {
    Remote(ActivityOptions),
    Local(LocalActivityOptions),
}

/// Runs one database step as its mode says.
pub async fn run<W, AD>(
    ctx: &WorkflowContext<W>,
    activity: AD,
    input: AD::Input,
    options: StepOptions,
) -> Result<AD::Output, StepFailure>
where
    AD: ActivityDefinition,
    AD::Output: TemporalDeserializable,
{
    Ok(match options {
        StepOptions::Remote(o) => ctx.execute_activity(activity, input, o).await?,
        StepOptions::Local(o) => {
            let name = crashpoints::ENABLED.then(|| activity.name().to_owned());
            let out = ctx.execute_local_activity(activity, input, o).await;
            if let Some(name) = name
                && !ctx.is_replaying()
            {
                // The crash-point matrix: the workflow has the local step's result, the task
                // that will carry it to the server has not completed (see `crashpoints`).
                let step = name.rsplit("::").next().unwrap_or(&name);
                crashpoints::hit(&format!("{step}.before_completion"), ctx.workflow_id());
            }
            out?
        }
    })
}

/// The timeouts of one kind of step, whichever way it runs.
struct Limits {
    /// Per try.
    start_to_close: Duration,
    /// In all, retries included; `None`: until it succeeds.
    schedule_to_close: Option<Duration>,
    retry: RetryPolicy,
    /// Keeps running when the workflow is cancelled.
    detached: bool,
}

fn options(mode: Mode, limits: Limits, summary: String) -> StepOptions {
    let token = limits.detached.then(WorkflowCancellationToken::new);
    match mode {
        Mode::Remote => {
            let timeouts = match limits.schedule_to_close {
                Some(total) => ActivityCloseTimeouts::ScheduleAndStartToClose {
                    schedule_to_close: total,
                    start_to_close: limits.start_to_close,
                },
                None => ActivityCloseTimeouts::StartToClose(limits.start_to_close),
            };
            let mut o = ActivityOptions::with_close_timeouts(timeouts)
                .retry_policy(limits.retry)
                .summary(summary)
                .build();
            o.cancellation_token = token;
            StepOptions::Remote(o)
        }
        Mode::Local => StepOptions::Local(
            LocalActivityOptions::builder()
                .start_to_close_timeout(limits.start_to_close)
                .maybe_schedule_to_close_timeout(limits.schedule_to_close)
                .retry_policy(limits.retry)
                .maybe_cancellation_token(token)
                .summary(summary)
                .build(),
        ),
    }
}

/// Placement checks: quick reads. If the database stays away for half a minute the placement is
/// answered `UNAVAILABLE` rather than left hanging.
pub fn check(mode: Mode, summary: String) -> StepOptions {
    let limits = Limits {
        start_to_close: Duration::from_secs(5),
        schedule_to_close: Some(Duration::from_secs(30)),
        retry: retry(Duration::from_millis(200), Duration::from_secs(5)),
        detached: false,
    };
    options(mode, limits, summary)
}

/// Writes that must eventually happen once decided (recording the order, completing it,
/// closing it): retried without limit, because giving up would leave the database behind the
/// workflow, and never cancelled with the workflow.
pub fn must_finish(mode: Mode, summary: String) -> StepOptions {
    let limits = Limits {
        start_to_close: Duration::from_secs(10),
        schedule_to_close: None,
        retry: retry(Duration::from_millis(200), Duration::from_secs(30)),
        detached: true,
    };
    options(mode, limits, summary)
}

/// A forward payment step: bounded, so that a step that cannot finish is compensated and the
/// caller told, instead of a payment hanging. Its compensation fences any late retry.
pub fn forward(mode: Mode, summary: String) -> StepOptions {
    let limits = Limits {
        start_to_close: Duration::from_secs(10),
        schedule_to_close: Some(Duration::from_secs(60)),
        retry: retry(Duration::from_millis(200), Duration::from_secs(5)),
        detached: false,
    };
    options(mode, limits, summary)
}

/// A compensation: retried until it succeeds, and never cancelled with the workflow.
pub fn compensation(mode: Mode, summary: String) -> StepOptions {
    must_finish(mode, summary)
}

/// The data platform: always an ordinary activity, whose retries the server keeps for a week
/// (the contract asks for at least 24 hours) and the Web UI shows attempt by attempt; still
/// delivered when the workflow is cancelled after completion.
pub fn notify(summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(7 * 24 * 3600),
        start_to_close: Duration::from_secs(15),
    })
    .retry_policy(retry(Duration::from_secs(1), Duration::from_secs(60)))
    .cancellation_token(WorkflowCancellationToken::new())
    .summary(summary)
    .build()
}

/// Points as people read them: 12,000.
pub fn points(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_are_grouped() {
        assert_eq!(super::points(0), "0");
        assert_eq!(super::points(999), "999");
        assert_eq!(super::points(12_000), "12,000");
        assert_eq!(super::points(1_234_567), "1,234,567");
    }
}
