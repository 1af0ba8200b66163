//! `starter serve`: the HTTP API of CONTRACT §5.
//!
//! Placement, payment and cancellation go through the order's workflow; reads come from
//! PostgreSQL. Every answer that is not a success is the contract's error body. The router and
//! the OpenAPI document are built from the same handler list, so neither can miss a route.

mod auth;
mod error;
mod extract;
pub mod idempotency;
pub mod metrics;
mod pages;
mod quote;
mod rate_limit;
mod routes;
mod state;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use routes::{MAX_AMOUNT, MAX_STOCK};
pub use state::AppState;

/// Bodies larger than this are refused with 413 `PAYLOAD_TOO_LARGE`.
pub const BODY_LIMIT: usize = 64 * 1024;
/// A request that has no answer after this long is answered 503 `UNAVAILABLE` (the workflow
/// keeps going; the order can be read, or the request repeated with its Idempotency-Key).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Order saga",
        version = "1",
        description = "Orders paid with points, run by a Temporal saga. Errors are always \
            `{\"code\",\"message\",\"details\"}` (see CONTRACT.md §5)."
    ),
    modifiers(&BearerAuth),
    components(schemas(domain::ErrorBody, domain::CouponInvalidReason)),
    tags(
        (name = "health"), (name = "products"), (name = "me"), (name = "orders"),
        (name = "payments"), (name = "admin", description = "role `admin` only"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (HS256): sub = user id, role = customer | admin, exp")
                    .build(),
            ),
        );
    }
}

/// The answer over `RATE_LIMIT` (429 `RATE_LIMITED` with `Retry-After`), in the document of
/// every route a customer token reaches: those that take a bearer token, but the admin routes.
fn document_rate_limit(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description("`RATE_LIMITED`: over `RATE_LIMIT` for this user; `details.retry_after`")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("whole seconds until the user may send again"))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let admin_only = operation
                .tags
                .as_ref()
                .is_some_and(|tags| tags.iter().any(|t| t == "admin"));
            if authenticated && !admin_only {
                operation
                    .responses
                    .responses
                    .insert("429".to_owned(), response.clone().into());
            }
        }
    }
}

/// What the derive macros cannot say: that an order's lines are unique (the API refuses a
/// product twice; JSON Schema can say only that no two lines are equal), and the OpenAPI
/// `links` from a placement to its payment, its cancellation and its reading, from a payment
/// to the order, and from a new product to its restock, for stateful testing.
fn document_rules_and_links(value: &mut serde_json::Value) {
    let items = value.pointer_mut("/components/schemas/PlaceOrderRequest/properties/items");
    if let Some(serde_json::Value::Object(items)) = items {
        items.insert("uniqueItems".into(), true.into());
    }
    // A discount refuses unknown fields like every request body (serde's `deny_unknown_fields`
    // on a tagged enum is not carried into its variants' schemas).
    let variants = value.pointer_mut("/components/schemas/Discount/oneOf");
    if let Some(serde_json::Value::Array(variants)) = variants {
        for variant in variants.iter_mut().filter_map(|v| v.as_object_mut()) {
            variant.insert("additionalProperties".into(), false.into());
        }
    }
    let order_id = serde_json::json!({ "id": "$response.body#/id" });
    let links = [
        (
            "/api/v1/orders",
            "post",
            "201",
            serde_json::json!({
                "PayTheOrder": {
                    "operationId": "pay",
                    "requestBody": { "order_id": "$response.body#/id" },
                    "description": "pay the order just placed"
                },
                "ReadTheOrder": { "operationId": "get_order", "parameters": order_id },
                "CancelTheOrder": { "operationId": "cancel_order", "parameters": order_id },
            }),
        ),
        (
            "/api/v1/payments",
            "post",
            "200",
            serde_json::json!({
                "ReadThePaidOrder": { "operationId": "get_order", "parameters": order_id },
            }),
        ),
        (
            "/api/v1/admin/products",
            "post",
            "201",
            serde_json::json!({
                "RestockTheProduct": { "operationId": "restock", "parameters": order_id },
                "ReadTheProduct": { "operationId": "get_product", "parameters": order_id },
            }),
        ),
    ];
    for (path, method, status, link) in links {
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        );
        if let Some(serde_json::Value::Object(response)) = value.pointer_mut(&pointer) {
            response.insert("links".into(), link);
        }
    }
}

/// The routes and their document, from one list.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health))
        .routes(routes!(openapi_json))
        .routes(routes!(routes::list_products))
        .routes(routes!(routes::get_product))
        .routes(routes!(routes::me))
        .routes(routes!(routes::top_up))
        .routes(routes!(routes::my_coupons))
        .routes(routes!(routes::place_order, routes::list_orders))
        .routes(routes!(quote::quote))
        .routes(routes!(routes::get_order))
        .routes(routes!(routes::cancel_order))
        .routes(routes!(routes::pay))
        .routes(routes!(routes::create_user))
        .routes(routes!(routes::create_product))
        .routes(routes!(routes::create_coupon))
        .routes(routes!(routes::restock))
        .routes(routes!(routes::admin_orders))
        .split_for_parts();
    document_rate_limit(&mut doc);
    (router, doc)
}

/// The OpenAPI 3 document of the whole API, as JSON.
pub fn openapi() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| match serde_json::to_value(routes().1) {
        Ok(mut doc) => {
            document_rules_and_links(&mut doc);
            doc
        }
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document cannot be serialized");
            serde_json::Value::Null
        }
    })
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

pub fn router(state: AppState) -> Router {
    router_with(state, HttpMetrics::new())
}

/// The API, recording its requests into `metrics`.
pub fn router_with(state: AppState, metrics: HttpMetrics) -> Router {
    let (api, _) = routes();
    // The storefront's pages and the API reference: outside the OpenAPI document.
    api.merge(pages::router())
        .fallback(|req: Request| async move {
            ApiError::RouteNotFound(format!("{} {}", req.method(), req.uri().path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(backstop_deadline))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %request_id,
                        user_id = tracing::field::Empty,
                        order_id = tracing::field::Empty,
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::Internal("a handler panicked".into()).into_response()
            },
        ))
        // Outermost, so it also times and counts what the layers above answer themselves (413,
        // 503 on the deadline, 500 on a panic).
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .with_state(state)
}

/// Handlers keep their own deadline (see `idempotency`); this one only guarantees that no
/// request hangs, whatever it waits for.
async fn backstop_deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("the request timed out").into_response(),
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the requests in
/// flight. Old idempotency answers are purged hourly meanwhile. Its metrics are served on
/// `API_METRICS_ADDR` (see [`metrics`]) when that can be bound.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics_listener = metrics::listen_from_env().await;
    serve_with_metrics(listener, metrics_listener, state, shutdown).await
}

/// [`serve`], with the metrics on `metrics_listener` (none when `None`).
pub async fn serve_with_metrics(
    listener: tokio::net::TcpListener,
    metrics_listener: Option<tokio::net::TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http_metrics = HttpMetrics::new();
    // Aborted when this future ends or is dropped (a test aborts its server task).
    let _exporter = metrics_listener.map(|l| {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "API metrics at http://{addr}/metrics");
        }
        AbortOnDrop(tokio::spawn(metrics::serve(l, http_metrics.clone())))
    });
    let purger = state.clone();
    let purge = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match store::idempotency::purge(purger.db()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "old idempotency answers purged"),
                Err(e) => tracing::warn!(error = %e, "purging idempotency answers failed"),
            }
        }
    });
    let served = axum::serve(listener, router_with(state, http_metrics))
        .with_graceful_shutdown(shutdown)
        .await;
    purge.abort();
    served
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
