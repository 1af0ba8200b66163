//! Bearer tokens (CONTRACT §5): a customer token reaches the customer routes as its own user, an
//! admin token the admin routes and the product routes. Anything else is 401 or 403. A customer
//! token's requests are counted against `RATE_LIMIT` once authenticated (429 over it).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::UserId;

use super::error::ApiError;
use super::state::AppState;
use crate::token::{self, Principal};

/// The caller, whoever it is (the product routes).
pub struct Caller;

/// A customer, whose user exists (the customer routes). An admin token here is 403.
pub struct Customer(pub UserId);

/// An admin (the admin routes), with its token's `sub` (which scopes its Idempotency-Keys). A
/// customer token here is 403.
pub struct Admin(pub String);

async fn principal(parts: &Parts, state: &AppState) -> Result<(Principal, String), ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthenticated("missing Authorization: Bearer <token>".into()))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("malformed Authorization header".into()))?;
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(ApiError::Unauthenticated(
                "the Authorization header must be Bearer <token>".into(),
            ));
        }
    };
    let (principal, sub) = token::verify_subject(state.auth_secret(), token).map_err(|e| {
        tracing::info!(reason = %e, "token refused");
        ApiError::Unauthenticated(e.to_string())
    })?;
    if let Principal::Customer(id) = principal {
        if !state.user_exists(id).await? {
            // A well-signed token for a user who does not exist speaks for nobody.
            return Err(ApiError::Unauthenticated(format!(
                "user {id} does not exist"
            )));
        }
        // Authenticated, and no body read yet (extractors of the parts run before the body's).
        // Admin tokens are not counted.
        tracing::Span::current().record("user_id", id.get());
        state.count_request(id)?;
    }
    Ok((principal, sub))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        principal(parts, state).await?;
        Ok(Self)
    }
}

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match principal(parts, state).await?.0 {
            Principal::Customer(id) => Ok(Self(id)),
            Principal::Admin => Err(ApiError::Forbidden(
                "this route is for customers; an admin token has no user".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match principal(parts, state).await? {
            (Principal::Admin, sub) => Ok(Self(sub)),
            (Principal::Customer(_), _) => {
                Err(ApiError::Forbidden("this route is for admins".into()))
            }
        }
    }
}
