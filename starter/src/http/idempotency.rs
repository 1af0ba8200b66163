//! `Idempotency-Key` (CONTRACT §5): the same user sending the same key and request again gets
//! the same answer and no second effect; a different request under the key gets 409
//! `IDEMPOTENCY_KEY_REUSED`. The keys and their answers are kept in PostgreSQL for 7 days by
//! `store::idempotency`, which also keeps their rules; this is what the API does with them.
//!
//! A request claims its key with a lease before it runs. Its answer is stored unless it was a
//! 503, which is forgotten so that a retry runs again. A repeat that arrives while the first
//! request still runs waits for its answer. A lease that ran out (the process died mid-request)
//! is taken over, and only the key's current holder stores or forgets: a request whose lease
//! was taken over keeps nothing. Running again is safe because every effect behind these routes
//! is itself idempotent: placement derives its order id from the key, payment is fenced by the
//! order's workflow, and a top-up's ledger row is unique per user and key.

use std::future::Future;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::UserId;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::idempotency::{self, Claim, Lease, Scope};

use super::error::{Answer, ApiError};
use super::state::AppState;

/// Longer than a claimed request can run (its deadline, `REQUEST_TIMEOUT`, then storing the
/// answer), so a live request keeps its claim; short, because a request whose answer could not
/// be stored (the database went away) holds its key until the lease ends.
const LEASE: Duration = Duration::from_secs(25);
const _: () = assert!(LEASE.as_secs() >= super::REQUEST_TIMEOUT.as_secs() + 10);
/// How long a repeat waits for the first request's answer before it is told to retry.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// What makes two requests "the same": the route and the request as parsed (so whitespace and
/// the order of fields do not matter).
pub fn fingerprint<T: Serialize>(route: &str, request: &T) -> Result<String, ApiError> {
    let body = serde_json::to_vec(request).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update(b"\n");
    h.update(&body);
    Ok(hex::encode(h.finalize()))
}

/// A stable value derived from a user's key in this database (`salt`: its installation id),
/// e.g. the order id of a keyed placement.
pub fn derive(purpose: &str, salt: &str, user_id: UserId, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update(b"\n");
    h.update(salt.as_bytes());
    h.update(b"\n");
    h.update(user_id.to_string().as_bytes());
    h.update(b"\n");
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// Runs `run` at most once per (caller, key) and answers every repeat with its answer: a
/// customer's keys are scoped by user id, an admin's by its token's `sub`. Without a key it
/// just runs. The error is the key's own (`IDEMPOTENCY_KEY_REUSED`, or 503 when its
/// first request is still running); `run`'s errors are answers like its successes.
pub async fn once<F, Fut>(
    state: &AppState,
    scope: impl Into<Scope>,
    key: Option<String>,
    fingerprint: String,
    run: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Answer, ApiError>>,
{
    let Some(key) = key else {
        return Ok(into_response(within_deadline(run()).await));
    };
    match claim(state, &scope.into(), &key, &fingerprint).await? {
        Claimed::Replay { status, body } => Ok(stored_response(status, body)),
        Claimed::Run(lease) => {
            let result = within_deadline(run()).await;
            let (status, body) = match &result {
                Ok(answer) => (answer.status, answer.body.clone()),
                Err(e) => (
                    e.status(),
                    serde_json::to_value(e.body()).unwrap_or(Value::Null),
                ),
            };
            // A 503 or a 500 is not an answer to keep: a retry runs again. Neither is a 429
            // (the rate is counted before the handler runs, so none gets here; should one, it
            // is no answer to the request either). Nor a key that its effect's own record
            // refused (a top-up key whose stored answer was purged, used for another amount):
            // kept, it would refuse the key's own request.
            let kept = if status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::INTERNAL_SERVER_ERROR
                || status == StatusCode::TOO_MANY_REQUESTS
                || matches!(result, Err(ApiError::KeyReused))
            {
                idempotency::forget(state.db(), &lease).await
            } else {
                idempotency::store(state.db(), &lease, status.as_u16(), &body).await
            };
            match kept {
                Ok(true) => {}
                // Its lease ran out and a repeat took the key over: that one's answer is the
                // key's. This one still answers its caller; the effects are idempotent.
                Ok(false) => tracing::warn!(
                    key,
                    "this request lost its lease on the Idempotency-Key to a repeat: \
                     its answer is not kept"
                ),
                // The effect happened and the caller gets its answer; a repeat will run again,
                // which the effects themselves make harmless.
                Err(e) => tracing::warn!(error = %e, "could not record the idempotent answer"),
            }
            Ok(into_response(result))
        }
    }
}

/// The request's own deadline, inside the claim, so that a request that runs out of time
/// gives its key back (a 503 is forgotten) instead of holding it until its lease ends.
async fn within_deadline(
    run: impl Future<Output = Result<Answer, ApiError>>,
) -> Result<Answer, ApiError> {
    tokio::time::timeout(super::REQUEST_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::unavailable(format!(
                "no answer within {} s",
                super::REQUEST_TIMEOUT.as_secs()
            )))
        })
}

fn into_response(result: Result<Answer, ApiError>) -> Response {
    match result {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}

fn stored_response(status: i32, body: String) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// What a request found when it claimed its key.
enum Claimed {
    /// The request runs, holding the key's lease.
    Run(Lease),
    /// The key's answer, stored by an earlier request.
    Replay { status: i32, body: String },
}

/// Claims `key` for the request of `fingerprint` by `scope`'s caller: runs it, or answers what an earlier
/// one stored, or waits for one still running (up to [`WAIT_FOR_FIRST`]), or takes over a
/// claim whose lease ran out. `IDEMPOTENCY_KEY_REUSED` for another request under the key.
async fn claim(
    state: &AppState,
    scope: &Scope,
    key: &str,
    fingerprint: &str,
) -> Result<Claimed, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        match idempotency::claim(state.db(), scope.clone(), key, fingerprint, LEASE).await? {
            Claim::Run(lease) => return Ok(Claimed::Run(lease)),
            Claim::Replay { status, body } => return Ok(Claimed::Replay { status, body }),
            Claim::Reused => return Err(ApiError::KeyReused),
            Claim::Held if tokio::time::Instant::now() >= deadline => {
                return Err(ApiError::unavailable(
                    "a request with this Idempotency-Key is still running",
                ));
            }
            Claim::Held => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
