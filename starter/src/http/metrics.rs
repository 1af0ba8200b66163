//! Prometheus metrics of the HTTP API: requests counted and timed by method, route template and
//! status, each from a bounded set of values. They are served on a listener of their own (`API_METRICS_ADDR`), so the API's routes
//! and its OpenAPI document stay exactly CONTRACT §5 and `/metrics` is never public by accident.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Where `starter serve` serves `/metrics` unless `API_METRICS_ADDR` says otherwise.
pub const DEFAULT_API_METRICS_ADDR: &str = "127.0.0.1:9465";

/// Route label of a request that matched no route (404 `NOT_FOUND`): one value, so scanners
/// probing random paths cannot grow the number of series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Method label of a request whose method is not one of HTTP's own (`FOO1`, `get`, …): one
/// value, so clients inventing methods cannot grow the number of series either.
pub const OTHER_METHOD: &str = "OTHER";

/// The method as a label value: the methods HTTP defines as they are, any other as
/// [`OTHER_METHOD`].
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_METHOD,
    }
}

/// Request latency buckets, in seconds: fast reads up to the 15 s request deadline.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0,
];

/// The API's metrics, in a registry of their own (one per server, so each test reads only
/// its own requests).
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpMetrics {
    pub fn new() -> Self {
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status",
            ),
            &labels,
        )
        .expect("valid counter");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method, route template and status",
            )
            .buckets(BUCKETS.to_vec()),
            &labels,
        )
        .expect("valid histogram");
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "HTTP requests being answered now",
        )
        .expect("valid gauge");
        let registry = Registry::new();
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
        ] {
            registry.register(collector).expect("names are unique");
        }
        Self {
            registry,
            requests,
            duration,
            in_flight,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Middleware: times every request and counts its answer. Applied with `Router::layer`, so it
/// runs after routing and sees the route template (`/api/v1/orders/{id}`), never the raw path;
/// the method is one of HTTP's or `OTHER`, never what the client made up.
pub(super) async fn track(
    State(metrics): State<HttpMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let _in_flight = InFlight::enter(&metrics.in_flight);
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [method, route.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics
        .duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Counts a request in flight until dropped: a client that hangs up drops the request's future
/// half-way, and the gauge must come down then too.
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `GET /metrics` and nothing else.
fn router(metrics: HttpMetrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

async fn render(State(metrics): State<HttpMetrics>) -> Response {
    ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], metrics.render()).into_response()
}

/// Serves `/metrics` on `listener` until the task is aborted.
pub(super) async fn serve(listener: tokio::net::TcpListener, metrics: HttpMetrics) {
    if let Err(e) = axum::serve(listener, router(metrics)).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}

/// The listener for `API_METRICS_ADDR` (default [`DEFAULT_API_METRICS_ADDR`]; `off` for none).
/// A bad or taken address is logged and the API runs without metrics: answering customers
/// matters more than being scraped.
pub(super) async fn listen_from_env() -> Option<tokio::net::TcpListener> {
    let addr: SocketAddr = match runtime::telemetry::listen_addr_from_env(
        "API_METRICS_ADDR",
        DEFAULT_API_METRICS_ADDR,
    ) {
        Ok(Some(addr)) => addr,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "no metrics endpoint");
            return None;
        }
    };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "no metrics endpoint: API_METRICS_ADDR cannot be bound");
            None
        }
    }
}
