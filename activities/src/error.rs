use domain::OrderError;
use store::StoreError;
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// The data platform did not take the order (a network error, or an answer that is not 2xx):
/// always worth another try.
#[derive(Debug, thiserror::Error)]
#[error("data platform: {0}")]
pub struct PlatformError(pub String);

/// Business errors become non-retryable typed failures; everything else stays retryable.
/// (The SDK's blanket `From` would make every error retryable, hence this explicit step.)
fn activity_error(e: StoreError) -> ActivityError {
    match e {
        StoreError::Business(err) => ActivityError::application(business_failure(err)),
        other => ActivityError::application(ApplicationFailure::new(other)),
    }
}

/// `result.activity()`: a store call's or the data platform's result as an activity's.
pub trait ActivityResult<T> {
    fn activity(self) -> Result<T, ActivityError>;
}

impl<T> ActivityResult<T> for Result<T, StoreError> {
    fn activity(self) -> Result<T, ActivityError> {
        self.map_err(activity_error)
    }
}

impl<T> ActivityResult<T> for Result<T, PlatformError> {
    fn activity(self) -> Result<T, ActivityError> {
        self.map_err(|e| ActivityError::application(ApplicationFailure::new(e)))
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
