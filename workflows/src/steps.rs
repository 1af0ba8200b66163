//! How the workflow calls activities: their timeouts and retries, and how it reads a failure.

use std::time::Duration;

use domain::OrderError;
use temporalio_common::error::IncomingError;
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, WorkflowCancellationToken,
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
            ActivityExecutionError::Failed(f) => match f.cause() {
                Some(IncomingError::Application(app))
                    if app
                        .type_name()
                        .is_some_and(|t| OrderError::CODES.contains(&t)) =>
                {
                    match app.details::<OrderError>() {
                        Ok(Some(err)) => StepFailure::Business(err),
                        _ => StepFailure::Technical(format!("undecodable business failure: {e}")),
                    }
                }
                Some(IncomingError::Cancelled(_)) => StepFailure::Cancelled,
                Some(cause) => StepFailure::Technical(cause.to_string()),
                None => StepFailure::Technical(e.to_string()),
            },
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

/// Placement checks: quick reads. If the database stays away for half a minute the placement is
/// answered `UNAVAILABLE` rather than left hanging.
pub fn check(summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(30),
        start_to_close: Duration::from_secs(5),
    })
    .retry_policy(retry(Duration::from_millis(200), Duration::from_secs(5)))
    .summary(summary)
    .build()
}

/// Writes that must eventually happen once decided (recording the order, completing it,
/// closing it): retried without limit, because giving up would leave the database behind the
/// workflow. The detached token keeps them running when the workflow is cancelled.
pub fn must_finish(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(Duration::from_millis(200), Duration::from_secs(30)))
        .cancellation_token(WorkflowCancellationToken::new())
        .summary(summary)
        .build()
}

/// A forward payment step: bounded, so that a step that cannot finish is compensated and the
/// caller told, instead of a payment hanging. Its compensation fences any late retry.
pub fn forward(summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(60),
        start_to_close: Duration::from_secs(10),
    })
    .retry_policy(retry(Duration::from_millis(200), Duration::from_secs(5)))
    .summary(summary)
    .build()
}

/// A compensation: retried until it succeeds, and never cancelled with the workflow.
pub fn compensation(summary: String) -> ActivityOptions {
    must_finish(summary)
}

/// The data platform: retried with backoff for a week (the contract asks for at least 24 hours),
/// and still delivered when the workflow is cancelled after completion.
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
