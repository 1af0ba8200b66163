//! How the workflow runs a step: where (a local or an ordinary activity), how long one try may
//! take, whether the workflow's cancellation stops it, and what it does with a failure.
//!
//! CONTRACT §2: a technical failure never decides an order. Every database step is retried
//! until it answers (no total timeout), and a failure that the retry policy does hand back (a
//! bug, say) is tried again after a pause, so the only ways a step ends are its result, a
//! business refusal, or, for a step that may be interrupted, the workflow's cancellation.

use std::time::Duration;

use domain::OrderError;
use temporalio_common::ActivityDefinition;
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_common::error::IncomingError;
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, LocalActivityOptions,
    TimerOptions, TimerResult, WorkflowCancellationToken, WorkflowContext,
};
use temporalio_workflow::RetryPolicy;

/// Why a step ended without its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// A business outcome, explained to the caller with the contract's code.
    Refused(OrderError),
    /// The workflow was cancelled (from the Web UI or a client) while the step ran.
    Cancelled,
}

/// `STEP_MODE` (CONTRACT §3): the order's database steps as local activities, in the worker
/// that runs the workflow (a step then costs one marker event instead of six and no round trip
/// to the server), or as ordinary ones (each on its own in the Web UI). Every step is
/// idempotent and fenced by its key, so local retries, and the re-run of a step whose marker a
/// crashed worker never recorded, are as safe as the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMode {
    Local,
    Remote,
}

impl StepMode {
    pub fn of(remote_steps: bool) -> Self {
        if remote_steps {
            Self::Remote
        } else {
            Self::Local
        }
    }
}

/// One step's options.
#[derive(Debug, Clone)]
pub struct Step {
    mode: StepMode,
    summary: String,
    /// Keeps running when the workflow is cancelled.
    detached: bool,
}

impl Step {
    /// Placing the order (checks and record in one keyed transaction): it must answer, so it
    /// is not interrupted; what a cancellation asks is done once the order is recorded.
    pub fn placement(mode: StepMode, summary: String) -> Self {
        Self::new(mode, summary, true)
    }

    /// A forward payment step before the last: the workflow's cancellation interrupts it, and
    /// its compensation (registered first) undoes or fences whatever it did.
    pub fn forward(mode: StepMode, summary: String) -> Self {
        Self::new(mode, summary, false)
    }

    /// The payment's last step, the point of no return: never interrupted.
    pub fn last(mode: StepMode, summary: String) -> Self {
        Self::new(mode, summary, true)
    }

    /// A compensation, or closing the order: never interrupted.
    pub fn undo(mode: StepMode, summary: String) -> Self {
        Self::new(mode, summary, true)
    }

    fn new(mode: StepMode, summary: String, detached: bool) -> Self {
        Self {
            mode,
            summary,
            detached,
        }
    }

    fn token(&self) -> Option<WorkflowCancellationToken> {
        self.detached.then(WorkflowCancellationToken::new)
    }
}

/// One step to run: the activity, its input, and how it runs.
pub struct Call<AD: ActivityDefinition> {
    /// Names the activity (the SDK's activity markers are consumed by each try, hence a
    /// function that makes one).
    pub activity: fn() -> AD,
    pub input: AD::Input,
    pub step: Step,
}

/// Every try of a database step: ten seconds, then again with backoff, without end.
const START_TO_CLOSE: Duration = Duration::from_secs(10);

fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(200))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(30))
        .build()
}

/// Runs a step until it answers (see the module's comment): its result, a business refusal,
/// or, for a step that may be interrupted (see [`Step::forward`]), the workflow's cancellation.
pub async fn run<W, AD>(ctx: &WorkflowContext<W>, call: Call<AD>) -> Result<AD::Output, StepFailure>
where
    AD: ActivityDefinition,
    AD::Input: Clone,
    AD::Output: TemporalDeserializable,
{
    let Call {
        activity,
        input,
        step,
    } = call;
    let mut pause = Duration::from_secs(1);
    loop {
        let error = match once(ctx, activity(), input.clone(), &step).await {
            Ok(out) => return Ok(out),
            // A step that must not be interrupted is tried again, whatever says otherwise
            // (nothing should: its cancellation token is its own).
            Err(Tried::Stopped(StepFailure::Cancelled)) if step.detached => {
                "cancelled, though it runs to the end".to_owned()
            }
            Err(Tried::Stopped(failure)) => return Err(failure),
            Err(Tried::Technical(error)) => error,
        };
        tracing::warn!(
            workflow_id = ctx.workflow_id(),
            step = %step.summary,
            %error,
            "step failed for a technical reason; trying it again"
        );
        let timer = TimerOptions::builder(pause)
            .maybe_cancellation_token(step.token())
            .summary(format!("Retry: {}", step.summary))
            .build();
        if ctx.timer(timer).await == TimerResult::Cancelled {
            return Err(StepFailure::Cancelled);
        }
        pause = (pause * 2).min(Duration::from_secs(300));
    }
}

/// Runs a step that is never interrupted (placement, the last step, an undo, a close) until
/// it answers: its result, or a business refusal.
pub async fn finish<W, AD>(
    ctx: &WorkflowContext<W>,
    call: Call<AD>,
) -> Result<AD::Output, OrderError>
where
    AD: ActivityDefinition,
    AD::Input: Clone,
    AD::Output: TemporalDeserializable,
{
    debug_assert!(
        call.step.detached,
        "{} can be interrupted",
        call.step.summary
    );
    match run(ctx, call).await {
        Ok(out) => Ok(out),
        Err(StepFailure::Refused(refusal)) => Err(refusal),
        Err(StepFailure::Cancelled) => unreachable!("`run` tries a detached step again instead"),
    }
}

/// How one try of a step ended, when it did not succeed.
enum Tried {
    Stopped(StepFailure),
    Technical(String),
}

async fn once<W, AD>(
    ctx: &WorkflowContext<W>,
    activity: AD,
    input: AD::Input,
    step: &Step,
) -> Result<AD::Output, Tried>
where
    AD: ActivityDefinition,
    AD::Output: TemporalDeserializable,
{
    match step.mode {
        StepMode::Remote => {
            let mut options = ActivityOptions::with_close_timeouts(
                ActivityCloseTimeouts::StartToClose(START_TO_CLOSE),
            )
            .retry_policy(retry())
            .summary(step.summary.clone())
            .build();
            options.cancellation_token = step.token();
            ctx.execute_activity(activity, input, options)
                .await
                .map_err(read)
        }
        StepMode::Local => {
            let crash_name = crashpoints::ENABLED.then(|| activity.name().to_owned());
            let options = LocalActivityOptions::builder()
                .start_to_close_timeout(START_TO_CLOSE)
                .retry_policy(retry())
                .maybe_cancellation_token(step.token())
                .summary(step.summary.clone())
                .build();
            let out = ctx.execute_local_activity(activity, input, options).await;
            if let Some(name) = crash_name
                && !ctx.is_replaying()
            {
                // The crash-point matrix: the workflow has the local step's result, the task
                // that will carry it to the server has not completed (see `crashpoints`).
                let name = name.rsplit("::").next().unwrap_or(&name);
                crashpoints::hit(&format!("{name}.before_completion"), ctx.workflow_id());
            }
            out.map_err(read)
        }
    }
}

/// Reads a failed try: the business error somewhere in the chain (an ordinary activity's
/// cause, a local one's failure itself), a cancellation, or anything else (technical).
fn read(e: ActivityExecutionError) -> Tried {
    match &e {
        ActivityExecutionError::Cancelled(_) => Tried::Stopped(StepFailure::Cancelled),
        ActivityExecutionError::Failed(f) => {
            if let Some(err) = activities::error::business_error(f.failure()) {
                return Tried::Stopped(StepFailure::Refused(err));
            }
            match f.cause() {
                Some(IncomingError::Cancelled(_)) => Tried::Stopped(StepFailure::Cancelled),
                Some(cause) => Tried::Technical(cause.to_string()),
                None => Tried::Technical(e.to_string()),
            }
        }
        _ => Tried::Technical(e.to_string()),
    }
}

/// The data platform: always an ordinary activity, whose retries the server keeps for a week
/// (the contract asks for at least 24 hours) and the Web UI shows attempt by attempt; still
/// delivered when the workflow is cancelled after completion.
pub fn notify(summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(7 * 24 * 3600),
        start_to_close: Duration::from_secs(15),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(60))
            .build(),
    )
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
