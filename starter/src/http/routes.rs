//! The routes of CONTRACT §5. Handlers stay thin: input rules, ownership, then the order's
//! workflow (placement, payment, cancellation) or a read of PostgreSQL.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::input::MAX_TOP_UP;
use domain::{
    Coupon, Discount, ErrorBody, Order, OrderError, OrderId, OrderStatus, PlaceOrderRequest,
    ProductId, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::db::{Product, User};
use store::idempotency::Scope;
use store::orders::{Cursor, OrderFilter};
use utoipa::ToSchema;

use super::auth::{Admin, Caller, Customer};
use super::error::{Answer, ApiError};
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyKey};
use super::idempotency;
use super::state::AppState;
use crate::OrderService;

/// The largest balance, price or discount an admin may set: far beyond any shop, far below
/// where sums could overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
const DEFAULT_ORDER_PAGE: i64 = 100;
const MAX_ORDER_PAGE: i64 = 1000;

type Result<T, E = ApiError> = std::result::Result<T, E>;

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("{field} must be an integer from {min} to {max}"),
            field,
        ))
    }
}

fn record_order_id(order_id: &str) {
    tracing::Span::current().record("order_id", order_id);
}

// ---- health ----

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    status: String,
}

/// Whether Temporal and the database answer.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "Temporal and the database answer", body = Health),
        (status = 503, description = "`UNAVAILABLE`; `details` says which is down", body = ErrorBody),
    ))]
pub async fn health(State(state): State<AppState>) -> Response {
    let probe = std::time::Duration::from_secs(2);
    let db = async {
        tokio::time::timeout(probe, store::db::ping(state.db()))
            .await
            .map_err(|_| "no answer in 2 s".to_owned())?
            .map_err(|e| e.to_string())
    };
    let temporal = async {
        let client = state.temporal().await.map_err(|e| e.to_string())?;
        let mut service = client.connection().workflow_service();
        let call = service.get_system_info(temporalio_client::tonic::Request::new(
            temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest::default(),
        ));
        tokio::time::timeout(probe, call)
            .await
            .map_err(|_| "no answer in 2 s".to_owned())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let (db, temporal) = tokio::join!(db, temporal);
    if db.is_ok() && temporal.is_ok() {
        return Answer {
            status: axum::http::StatusCode::OK,
            body: json!({ "status": "ok" }),
        }
        .into_response();
    }
    let word = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "down" };
    ApiError::Unavailable {
        cause: format!("health: database {db:?}, temporal {temporal:?}"),
        details: json!({ "database": word(&db), "temporal": word(&temporal) }),
    }
    .into_response()
}

// ---- products ----

/// Every product, by id.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Product>),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn list_products(State(state): State<AppState>, _caller: Caller) -> Result<Answer> {
    Answer::ok(&store::db::list_products(state.db()).await?)
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products", security(("bearer" = [])),
    params(("id" = i64, Path, description = "product id")),
    responses(
        (status = 200, body = Product),
        (status = 400, description = "`INVALID_REQUEST`: the id is not an integer", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn get_product(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<Answer> {
    match store::db::get_product(state.db(), id).await? {
        Some(p) => Answer::ok(&p),
        None => Err(OrderError::ProductNotFound { product_id: id }.into()),
    }
}

// ---- me ----

async fn me_of(state: &AppState, user: UserId) -> Result<User> {
    store::db::get_user(state.db(), user)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated(format!("user {user} does not exist")))
}

/// The caller's user.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, body = User),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn me(State(state): State<AppState>, Customer(user): Customer) -> Result<Answer> {
    Answer::ok(&me_of(&state, user).await?)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// 1 to 10,000,000 points.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub amount: i64,
}

/// Adds points to the caller's balance; idempotent with `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/me/points/charge", tag = "me", security(("bearer" = [])),
    request_body = TopUpRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 printable ASCII characters, sent once (a key with spaces at its ends reaches the API without them)", min_length = 1, max_length = 200, pattern = r"^[!-~]([ -~]{0,198}[!-~])?$")),
    responses(
        (status = 200, body = User),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn top_up(
    State(state): State<AppState>,
    Customer(user): Customer,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<TopUpRequest>,
) -> Result<Response> {
    in_range("amount", req.amount, 1, MAX_TOP_UP)?;
    let fingerprint = idempotency::fingerprint("POST /api/v1/me/points/charge", &req)?;
    let ledger_key = key.clone();
    let st = state.clone();
    idempotency::once(&state, user, key, fingerprint, move || async move {
        store::db::top_up(st.db(), user, req.amount, ledger_key.as_deref()).await?;
        Answer::ok(&me_of(&st, user).await?)
    })
    .await
}

/// The caller's coupons.
#[utoipa::path(get, path = "/api/v1/me/coupons", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Coupon>),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn my_coupons(State(state): State<AppState>, Customer(user): Customer) -> Result<Answer> {
    Answer::ok(&store::coupons::list_for_user(state.db(), user).await?)
}

// ---- orders ----

/// Places an order: validates it, records it `PENDING` and answers it; idempotent with
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 printable ASCII characters, sent once (a key with spaces at its ends reaches the API without them)", min_length = 1, max_length = 200, pattern = r"^[!-~]([ -~]{0,198}[!-~])?$")),
    responses(
        (status = 201, description = "the `PENDING` order", body = Order),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`INSUFFICIENT_STOCK` or `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`COUPON_INVALID` or `INSUFFICIENT_POINTS`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn place_order(
    State(state): State<AppState>,
    Customer(user): Customer,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<PlaceOrderRequest>,
) -> Result<Response> {
    req.validate()?;
    let fingerprint = idempotency::fingerprint("POST /api/v1/orders", &req)?;
    let st = state.clone();
    idempotency::once(&state, user, key.clone(), fingerprint, move || async move {
        // A keyed placement always means the same order, so running it again (after a 503, or
        // after the API died mid-request) attaches to the same workflow instead of placing
        // twice.
        let order_id = match &key {
            Some(k) => {
                let salt = st.installation_id().await?;
                OrderId::parse(&format!(
                    "ord-{}",
                    &idempotency::derive("place", salt, user, k)[..32]
                ))?
            }
            None => OrderService::new_order_id(),
        };
        record_order_id(&order_id);
        let order = st.orders().await?.place(&order_id, user, req).await?;
        Answer::created(&order)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListOrdersQuery {
    /// At most this many orders, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`.
    #[param(pattern = r"^[0-9]{1,18}\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// The page's size, checked.
fn page_size(limit: Option<i64>) -> Result<i64> {
    let limit = limit.unwrap_or(DEFAULT_ORDER_PAGE);
    in_range("limit", limit, 1, MAX_ORDER_PAGE)?;
    Ok(limit)
}

/// A page's `cursor`: where the last order of the page before stands (its `created_at` in
/// microseconds since the epoch, a dot, its id).
fn encode_cursor(c: &Cursor) -> String {
    format!("{}.{}", c.created_at.timestamp_micros(), c.id)
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<Cursor>> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid(
            "cursor must be the cursor of a Link: <...>; rel=\"next\" header",
            "cursor",
        )
    };
    let (micros, id) = cursor.split_once('.').ok_or_else(bad)?;
    let digits = (1..=18).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
    if !digits || OrderId::parse(id).is_err() {
        return Err(bad());
    }
    let created_at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok(Some(Cursor {
        created_at,
        id: id.to_owned(),
    }))
}

/// A page of orders as the answer: 200 with the orders, and `Link: <path?query>; rel="next"`
/// when more remain, `query` being the request's filters, the limit and the next cursor.
fn page_answer(
    page: store::orders::Page,
    path: &str,
    mut query: Vec<(&str, String)>,
) -> Result<Response> {
    let mut response = Answer::ok(&page.orders)?.into_response();
    if let Some(next) = &page.next {
        query.push(("cursor", encode_cursor(next)));
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let link = format!("<{path}?{query}>; rel=\"next\"");
        let value = axum::http::HeaderValue::from_str(&link)
            .map_err(|e| ApiError::Internal(format!("Link header {link:?}: {e}")))?;
        response
            .headers_mut()
            .insert(axum::http::header::LINK, value);
    }
    Ok(response)
}

/// The caller's orders, newest first, a page at a time: `Link: <…>; rel="next"` names the next
/// page when more remain.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(ListOrdersQuery),
    responses(
        (status = 200, body = Vec<Order>, headers(("Link" = String, description = "`<…>; rel=\"next\"`: the next page, when more remain"))),
        (status = 400, description = "`INVALID_REQUEST`: `limit` or `cursor` broken", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token (admins use `/api/v1/admin/orders`)", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    Customer(user): Customer,
    ApiQuery(q): ApiQuery<ListOrdersQuery>,
) -> Result<Response> {
    let limit = page_size(q.limit)?;
    let after = decode_cursor(q.cursor.as_deref())?;
    let filter = OrderFilter {
        user_id: Some(user),
        status: None,
    };
    let page = store::orders::list(state.db(), &filter, after.as_ref(), limit).await?;
    page_answer(page, "/api/v1/orders", vec![("limit", limit.to_string())])
}

/// `ORDER_NOT_FOUND` for `order_id`: no such order, or not the caller's (its existence is not
/// told).
fn order_not_found(order_id: &str) -> ApiError {
    OrderError::OrderNotFound {
        order_id: order_id.to_owned(),
    }
    .into()
}

/// Names the order in the request's span; an id that cannot name an order is not found.
fn order_id_of_request(order_id: &str) -> Result<OrderId> {
    record_order_id(order_id);
    OrderId::parse(order_id).map_err(|_| order_not_found(order_id))
}

/// The order, if it is the caller's; otherwise `ORDER_NOT_FOUND`.
async fn owned(state: &AppState, user: UserId, order_id: &str) -> Result<Order> {
    let id = order_id_of_request(order_id)?;
    match store::orders::load(state.db(), &id).await? {
        Some(order) if order.user_id == user => Ok(order),
        _ => Err(order_not_found(order_id)),
    }
}

/// Like [`owned`], for routes that only need to know the order is the caller's: one indexed
/// read of its owner instead of the whole order. Answers the id, parsed.
async fn check_owned(state: &AppState, user: UserId, order_id: &str) -> Result<OrderId> {
    let id = order_id_of_request(order_id)?;
    match store::orders::owner(state.db(), &id).await? {
        Some(owner) if owner == user => Ok(id),
        _ => Err(order_not_found(order_id)),
    }
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "order id")),
    responses(
        (status = 200, body = Order),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    Customer(user): Customer,
    ApiPath(id): ApiPath<String>,
) -> Result<Answer> {
    Answer::ok(&owned(&state, user, &id).await?)
}

/// Cancels one of the caller's `PENDING` orders.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path, description = "order id")),
    responses(
        (status = 200, description = "the `CANCELED` order", body = Order),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_NOT_PAYABLE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Customer(user): Customer,
    ApiPath(id): ApiPath<String>,
) -> Result<Answer> {
    let id = check_owned(&state, user, &id).await?;
    Answer::ok(&state.orders().await?.cancel(&id).await?)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub order_id: String,
}

/// Pays one of the caller's `PENDING` orders with points: charge, redeem the coupon, deduct the
/// stock, `COMPLETED`. Idempotent with `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", security(("bearer" = [])),
    request_body = PaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 printable ASCII characters, sent once (a key with spaces at its ends reaches the API without them)", min_length = 1, max_length = 200, pattern = r"^[!-~]([ -~]{0,198}[!-~])?$")),
    responses(
        (status = 200, description = "the `COMPLETED` order", body = Order),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: an admin token", body = ErrorBody),
        (status = 404, description = "`ORDER_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ORDER_NOT_PAYABLE`, `INSUFFICIENT_STOCK` or `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`INSUFFICIENT_POINTS` or `COUPON_INVALID`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn pay(
    State(state): State<AppState>,
    Customer(user): Customer,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<PaymentRequest>,
) -> Result<Response> {
    let fingerprint = idempotency::fingerprint("POST /api/v1/payments", &req)?;
    let st = state.clone();
    // A keyed payment is one payment for good: repeating it (after a 503, or after the API
    // died mid-request) attaches to it and answers its outcome instead of being refused.
    let payment = key.as_deref().map(|k| {
        format!(
            "pay-{}",
            &idempotency::derive("pay", &req.order_id, user, k)[..32]
        )
    });
    idempotency::once(&state, user, key, fingerprint, move || async move {
        let order_id = check_owned(&st, user, &req.order_id).await?;
        Answer::ok(&st.orders().await?.pay(&order_id, payment).await?)
    })
    .await
}

// ---- admin ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// 0 to 1,000,000,000,000.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub points: i64,
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a customer token", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<Answer> {
    in_range("points", req.points, 0, MAX_AMOUNT)?;
    let id = store::db::create_user(state.db(), &req.name, req.points).await?;
    let user = store::db::get_user(state.db(), id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("user {id} vanished")))?;
    Answer::created(&user)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// 1 to 1,000,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub price: i64,
    /// 0 to 1,000,000,000.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
}

/// Creates a product.
#[utoipa::path(post, path = "/api/v1/admin/products", tag = "admin", security(("bearer" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, body = Product),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a customer token", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn create_product(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(req): ApiJson<NewProduct>,
) -> Result<Answer> {
    in_range("price", req.price, 1, MAX_AMOUNT)?;
    in_range("stock", req.stock, 0, MAX_STOCK)?;
    let id = store::db::create_product(state.db(), &req.name, req.price, req.stock).await?;
    let product = store::db::get_product(state.db(), id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("product {id} vanished")))?;
    Answer::created(&product)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCoupon {
    /// The owner; must exist.
    #[schema(value_type = i64)]
    pub user_id: UserId,
    pub discount: Discount,
    /// 0 to 1,000,000,000,000.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub min_order_amount: Option<i64>,
    /// RFC 3339.
    pub expires_at: DateTime<Utc>,
}

/// Creates an `AVAILABLE` coupon for a user.
#[utoipa::path(post, path = "/api/v1/admin/coupons", tag = "admin", security(("bearer" = [])),
    request_body = NewCoupon,
    responses(
        (status = 201, body = Coupon),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a customer token", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn create_coupon(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(req): ApiJson<NewCoupon>,
) -> Result<Answer> {
    match req.discount {
        Discount::Fixed { amount } => in_range("discount.amount", amount, 1, MAX_AMOUNT)?,
        Discount::Percent {
            percent,
            max_amount,
        } => {
            in_range("discount.percent", percent, 1, 100)?;
            if let Some(m) = max_amount {
                in_range("discount.max_amount", m, 1, MAX_AMOUNT)?;
            }
        }
    }
    if let Some(min) = req.min_order_amount {
        in_range("min_order_amount", min, 0, MAX_AMOUNT)?;
    }
    let id = store::db::create_coupon(
        state.db(),
        req.user_id,
        &req.discount,
        req.min_order_amount,
        req.expires_at,
    )
    .await?;
    let coupon = store::coupons::get(state.db(), id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("coupon {id} vanished")))?;
    Answer::created(&coupon)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    /// 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
}

/// The most one restock adds (CONTRACT §5).
pub const MAX_RESTOCK: i64 = 1_000_000;

/// Adds stock to a product (a `RESTOCK` ledger row); idempotent with `Idempotency-Key`, scoped
/// by the admin token's `sub`.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/restock", tag = "admin",
    security(("bearer" = [])),
    request_body = RestockRequest,
    params(
        ("id" = i64, Path, description = "product id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 printable ASCII characters, sent once (a key with spaces at its ends reaches the API without them)", min_length = 1, max_length = 200, pattern = r"^[!-~]([ -~]{0,198}[!-~])?$"),
    ),
    responses(
        (status = 200, description = "the product, restocked", body = Product),
        (status = 400, description = "`INVALID_REQUEST`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a customer token", body = ErrorBody),
        (status = 404, description = "`PRODUCT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn restock(
    State(state): State<AppState>,
    Admin(sub): Admin,
    IdempotencyKey(key): IdempotencyKey,
    ApiPath(id): ApiPath<ProductId>,
    ApiJson(req): ApiJson<RestockRequest>,
) -> Result<Response> {
    in_range("quantity", req.quantity, 1, MAX_RESTOCK)?;
    let route = format!("POST /api/v1/admin/products/{id}/restock");
    let fingerprint = idempotency::fingerprint(&route, &req)?;
    let scope = Scope::Admin(sub);
    let st = state.clone();
    let ledger_key = key.clone();
    let ledger_scope = scope.clone();
    idempotency::once(&state, scope, key, fingerprint, move || async move {
        let keyed = ledger_key.as_deref().map(|k| (&ledger_scope, k));
        store::db::restock_keyed(st.db(), id, req.quantity, keyed).await?;
        match store::db::get_product(st.db(), id).await? {
            Some(product) => Answer::ok(&product),
            None => Err(OrderError::ProductNotFound { product_id: id }.into()),
        }
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminOrdersQuery {
    /// Only the orders of this status.
    pub status: Option<OrderStatus>,
    /// Only this user's orders.
    #[param(value_type = Option<i64>)]
    #[schema(value_type = Option<i64>)]
    pub user_id: Option<UserId>,
    /// At most this many orders, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Where the page starts: the `cursor` of the previous page's `Link: <…>; rel="next"`.
    #[param(pattern = r"^[0-9]{1,18}\.[A-Za-z0-9_-]{1,64}$")]
    pub cursor: Option<String>,
}

/// Every order, or those of a status or a user, newest first, a page at a time:
/// `Link: <…>; rel="next"` names the next page when more remain.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", security(("bearer" = [])),
    params(AdminOrdersQuery),
    responses(
        (status = 200, body = Vec<Order>, headers(("Link" = String, description = "`<…>; rel=\"next\"`: the next page, when more remain"))),
        (status = 400, description = "`INVALID_REQUEST`: an unknown `status`, or `limit`, `user_id` or `cursor` broken", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a customer token", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`", body = ErrorBody),
    ))]
pub async fn admin_orders(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<AdminOrdersQuery>,
) -> Result<Response> {
    let limit = page_size(q.limit)?;
    let after = decode_cursor(q.cursor.as_deref())?;
    let filter = OrderFilter {
        user_id: q.user_id,
        status: q.status,
    };
    let page = store::orders::list(state.db(), &filter, after.as_ref(), limit).await?;
    let mut query = Vec::new();
    if let Some(status) = q.status {
        query.push(("status", status.as_str().to_owned()));
    }
    if let Some(user) = q.user_id {
        query.push(("user_id", user.to_string()));
    }
    query.push(("limit", limit.to_string()));
    page_answer(page, "/api/v1/admin/orders", query)
}
