use domain::{OrderError, Points};
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// What a step can fail with: a business outcome that retrying cannot change, or trouble with
/// the database or the network that a retry may cure.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Business(#[from] OrderError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("data platform: {0}")]
    Platform(String),
    /// A keyed top-up whose key already stands in the ledger for another amount.
    #[error("the top-up key {key:?} was used before for {amount} points")]
    TopUpKeyReused { key: String, amount: Points },
}

impl StepError {
    /// Business errors become non-retryable typed failures; everything else stays retryable.
    /// (The SDK's blanket `From` would make every error retryable, hence this explicit step.)
    pub fn into_activity_error(self) -> ActivityError {
        match self {
            StepError::Business(err) => ActivityError::application(business_failure(err)),
            other => ActivityError::application(ApplicationFailure::new(other)),
        }
    }
}

/// `result.activity()`: a step's result as an activity's result.
pub trait ActivityResult<T> {
    fn activity(self) -> Result<T, ActivityError>;
}

impl<T> ActivityResult<T> for Result<T, StepError> {
    fn activity(self) -> Result<T, ActivityError> {
        self.map_err(StepError::into_activity_error)
    }
}

/// A business error as Temporal carries it: non-retryable, typed by its code, detailed by the
/// contract's error body. The workflow and the client read it back with [`OrderError`]'s serde.
pub fn business_failure(err: OrderError) -> ApplicationFailure {
    let code = err.code();
    ApplicationFailure::builder(err.clone())
        .type_name(code.to_owned())
        .non_retryable(true)
        .details(err)
        .build()
}

/// Finds the business error in a failure chain: an application failure whose type is one of
/// the contract's codes, with the contract's error body as its details. However deep the SDK
/// nests it (an activity's failure, a local activity's, an update's), the chain holds it.
pub fn business_error(failure: &Failure) -> Option<OrderError> {
    let mut next = Some(failure);
    while let Some(f) = next {
        if let Some(FailureInfo::ApplicationFailureInfo(info)) = &f.failure_info
            && OrderError::CODES.contains(&info.r#type.as_str())
        {
            let decoded = info
                .details
                .as_ref()
                .and_then(|d| d.payloads.first())
                .and_then(|p| serde_json::from_slice::<OrderError>(&p.data).ok());
            if decoded.is_some() {
                return decoded;
            }
        }
        next = f.cause.as_deref();
    }
    None
}
