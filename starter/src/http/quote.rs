//! `POST /api/v1/orders/quote` (CONTRACT §5): a cart priced as a placement would price it,
//! with the user's points beside its total. Placement's pricing (`store::placement`), its
//! input rules and its errors, but never `INSUFFICIENT_POINTS`; no side effect.

use axum::extract::State;
use domain::{ErrorBody, QuoteRequest};
use store::placement::{CheckPlacementInput, Quote};

use super::auth::Customer;
use super::error::{Answer, ApiError};
use super::extract::ApiJson;
use super::state::AppState;

/// Prices a cart, with or without a coupon, as a placement would now; changes nothing. The
/// answer carries the user's points instead of refusing a total above them.
#[utoipa::path(post, path = "/api/v1/orders/quote", tag = "orders", security(("bearer" = [])),
    request_body = QuoteRequest,
    responses(
        (status = 200, description = "the priced lines, their totals and the user's points", body = Quote),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`INSUFFICIENT_STOCK`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`COUPON_INVALID`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn quote(
    State(state): State<AppState>,
    Customer(user): Customer,
    ApiJson(req): ApiJson<QuoteRequest>,
) -> Result<Answer, ApiError> {
    req.validate()?;
    let input = CheckPlacementInput {
        user_id: user,
        lines: req.items,
        coupon_id: req.coupon_id,
    };
    let quote: Quote = store::placement::quote(state.db(), &input).await?;
    Answer::ok(&quote)
}
