//! Metrics and traces: the SDK's Prometheus exporter with the order counters beside its own
//! metrics, and one span per activity attempt that names the order.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use activities::{LockHold, OrderActivities, ReconcileActivities, ReconcileGauges};
use domain::saga::CloseOrderInput;
use temporalio_client::Client;
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, GaugeF64, Histogram, HistogramDuration, HistogramF64,
    MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes, TemporalMeter,
    UpDownCounter,
};
use temporalio_common::telemetry::{
    METRIC_PREFIX, PrometheusExporterOptions, TaskQueueLabelStrategy, TelemetryOptions,
    start_prometheus_metric_exporter,
};
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::interceptors::{
    ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, ExecuteActivityResult,
    Next,
};
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker};
use tracing::Instrument;

use crate::WiringError;

/// Where the worker serves `/metrics` unless `WORKER_METRICS_ADDR` says otherwise.
pub const DEFAULT_WORKER_METRICS_ADDR: &str = "127.0.0.1:9464";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{var}={value:?} is not host:port (or `off`)")]
    Address { var: &'static str, value: String },
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot start the Temporal runtime: {0}")]
    Runtime(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A listen address from the environment: `default` when unset, `None` when set to `off` (or
/// empty), so a second process on one machine can run without a metrics endpoint.
pub fn listen_addr_from_env(
    var: &'static str,
    default: &str,
) -> Result<Option<SocketAddr>, TelemetryError> {
    parse_listen_addr(var, std::env::var(var).ok().as_deref().unwrap_or(default))
}

fn parse_listen_addr(var: &'static str, value: &str) -> Result<Option<SocketAddr>, TelemetryError> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    // Host names too (`localhost:9464`, a container's `0.0.0.0:9464`), not only IP literals.
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(Some)
        .ok_or_else(|| TelemetryError::Address {
            var,
            value: value.to_owned(),
        })
}

/// The SDK's Prometheus exporter: serves `GET /metrics` on its own listener, for the SDK's
/// worker metrics (`temporal_…`) and the order counters (`order_saga_…`). Stops when dropped.
pub struct WorkerMetrics {
    addr: SocketAddr,
    meter: Arc<dyn CoreMeter>,
    server: tokio::task::AbortHandle,
}

impl WorkerMetrics {
    /// Binds `addr` (port 0 picks a free one) and serves; needs a Tokio runtime.
    pub fn start(addr: SocketAddr) -> Result<Self, TelemetryError> {
        let options = PrometheusExporterOptions::builder()
            .socket_addr(addr)
            // Prometheus' own conventions: `_total` counters, durations in seconds, units in
            // the names (`temporal_activity_execution_latency_seconds`).
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .unit_suffix(true)
            .build();
        let started =
            start_prometheus_metric_exporter(options).map_err(|e| TelemetryError::Bind {
                addr,
                source: e.into(),
            })?;
        let meter: Arc<dyn CoreMeter> = started.meter;
        Ok(Self {
            addr: started.bound_addr,
            meter,
            server: started.abort_handle,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn meter(&self) -> Arc<dyn CoreMeter> {
        self.meter.clone()
    }

    /// The meter for a Temporal client's RPC metrics (`temporal_request_total`,
    /// `temporal_request_failure_total`, `temporal_long_request_latency_seconds`, ...), named and
    /// labelled like the worker's own (the SDK's runtime does the same for its workers).
    pub fn client_meter(&self) -> TemporalMeter {
        TemporalMeter::new(
            Arc::new(Prefixed(self.meter.clone())),
            NewAttributes::from([MetricKeyValue::new("service_name", "temporal-core-sdk")]),
            TaskQueueLabelStrategy::UseNormal,
        )
    }
}

/// Puts `temporal_` before the client's metric names, as the SDK's runtime does for the
/// worker's (its own wrapper for that is private).
#[derive(Debug)]
struct Prefixed(Arc<dyn CoreMeter>);

impl Prefixed {
    fn named(mut params: MetricParameters) -> MetricParameters {
        params.name = format!("{METRIC_PREFIX}{}", params.name).into();
        params
    }
}

impl CoreMeter for Prefixed {
    fn new_attributes(&self, attribs: NewAttributes) -> MetricAttributes {
        self.0.new_attributes(attribs)
    }

    fn extend_attributes(
        &self,
        existing: MetricAttributes,
        attribs: NewAttributes,
    ) -> MetricAttributes {
        self.0.extend_attributes(existing, attribs)
    }

    fn counter(&self, params: MetricParameters) -> Counter {
        self.0.counter(Self::named(params))
    }

    fn histogram(&self, params: MetricParameters) -> Histogram {
        self.0.histogram(Self::named(params))
    }

    fn histogram_f64(&self, params: MetricParameters) -> HistogramF64 {
        self.0.histogram_f64(Self::named(params))
    }

    fn histogram_duration(&self, params: MetricParameters) -> HistogramDuration {
        self.0.histogram_duration(Self::named(params))
    }

    fn gauge(&self, params: MetricParameters) -> Gauge {
        self.0.gauge(Self::named(params))
    }

    fn gauge_f64(&self, params: MetricParameters) -> GaugeF64 {
        self.0.gauge_f64(Self::named(params))
    }

    fn up_down_counter(&self, params: MetricParameters) -> UpDownCounter {
        self.0.up_down_counter(Self::named(params))
    }
}

impl Drop for WorkerMetrics {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The SDK runtime, recording its worker metrics into `metrics` when given.
pub fn runtime(metrics: Option<&WorkerMetrics>) -> Result<Runtime, TelemetryError> {
    let telemetry = TelemetryOptions::builder()
        .maybe_metrics(metrics.map(WorkerMetrics::meter))
        .build();
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| TelemetryError::Runtime(e.into()))?;
    Runtime::from_current_tokio(options).map_err(|e| TelemetryError::Runtime(e.into()))
}

/// [`crate::build_worker`] with [`OrderTelemetry`] around every activity.
pub fn build_instrumented_worker(
    runtime: &Runtime,
    client: Client,
    task_queue: &str,
    polling: crate::Polling,
    activities: OrderActivities,
    telemetry: OrderTelemetry,
) -> Result<Worker, WiringError> {
    let reconcile = ReconcileActivities::new(activities.db.clone(), telemetry.reconcile_gauges());
    let activities = activities.with_lock_hold(telemetry.lock_hold());
    let mut options = crate::worker_options_with(task_queue, polling, activities, reconcile)?;
    options.activity_inbound_interceptor(telemetry);
    Worker::new(runtime, client, options).map_err(|e| WiringError::Worker(e.into()))
}

/// An activity interceptor: runs each attempt in a span `activity{activity, order_id, attempt}`
/// (inside the SDK's `RunActivity` span), and counts what the orders did. The counters are
/// read off activities that succeeded, so they are at-least-once like the activities (a retry
/// of a step that committed counts again); the saga's truth stays in PostgreSQL.
#[derive(Clone, Default)]
pub struct OrderTelemetry {
    counters: Option<Arc<Counters>>,
}

struct Counters {
    meter: Arc<dyn CoreMeter>,
    reconcile: Arc<Gauges>,
    placed: Counter,
    closed: Counter,
    compensations: Counter,
    refusals: Counter,
    lock_hold: Arc<LockHoldHistogram>,
}

impl OrderTelemetry {
    /// Spans only, no counters (metrics off).
    pub fn spans_only() -> Self {
        Self::default()
    }

    /// Spans, and counters on the exporter's meter.
    pub fn new(metrics: &WorkerMetrics) -> Self {
        let meter = metrics.meter();
        let counter = |name: &'static str, description: &'static str| {
            meter.counter(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        };
        let counters = Counters {
            placed: counter(
                "order_saga_orders_placed",
                "Orders recorded PENDING (placement passed every check)",
            ),
            closed: counter(
                "order_saga_orders_closed",
                "Orders that reached a final status, by status (COMPLETED, CANCELED, EXPIRED)",
            ),
            compensations: counter(
                "order_saga_compensations",
                "Compensations that finished, by step (refund_points, release_coupon, restore_stock)",
            ),
            refusals: counter(
                "order_saga_business_errors",
                "Steps refused for a business reason, by activity and contract code",
            ),
            reconcile: Arc::new(Gauges::new(&meter)),
            lock_hold: Arc::new(LockHoldHistogram::new(&meter)),
            meter,
        };
        Self {
            counters: Some(Arc::new(counters)),
        }
    }

    /// The stock deduction's lock hold times on the exporter's meter (none with metrics off).
    pub fn lock_hold(&self) -> Option<Arc<dyn LockHold>> {
        self.counters
            .as_ref()
            .map(|c| c.lock_hold.clone() as Arc<dyn LockHold>)
    }

    /// The scheduled reconciliation's gauges on the exporter's meter (none with metrics off).
    pub fn reconcile_gauges(&self) -> Option<Arc<dyn ReconcileGauges>> {
        self.counters
            .as_ref()
            .map(|c| c.reconcile.clone() as Arc<dyn ReconcileGauges>)
    }
}

/// `orders_stock_lock_hold_seconds`: how long each stock deduction held its products' row
/// locks, from the lock to the commit. Its mean bounds one product's orders a second
/// (docs/SCALING.md).
struct LockHoldHistogram {
    meter: Arc<dyn CoreMeter>,
    histogram: HistogramDuration,
}

impl LockHoldHistogram {
    fn new(meter: &Arc<dyn CoreMeter>) -> Self {
        Self {
            histogram: meter.histogram_duration(
                MetricParameters::builder()
                    .name("orders_stock_lock_hold")
                    .description("How long each stock deduction held its products' row locks, from the lock to the commit")
                    .build(),
            ),
            meter: meter.clone(),
        }
    }
}

impl LockHold for LockHoldHistogram {
    fn held(&self, time: std::time::Duration) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.histogram.record(time, &none);
    }
}

/// `orders_invariant_violations` and `orders_undelivered`: what the last scheduled
/// reconciliation (`ReconcileWorkflow`) that ran on this worker found.
struct Gauges {
    meter: Arc<dyn CoreMeter>,
    violations: Gauge,
    undelivered: Gauge,
}

impl Gauges {
    fn new(meter: &Arc<dyn CoreMeter>) -> Self {
        let gauge = |name: &'static str, description: &'static str| {
            meter.gauge(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        };
        Self {
            violations: gauge(
                "orders_invariant_violations",
                "CONTRACT §6 violations the last scheduled reconciliation found (orders younger than its grace window left out)",
            ),
            undelivered: gauge(
                "orders_undelivered",
                "COMPLETED orders not yet delivered to the data platform, completed longer ago than the reconciliation's grace window",
            ),
            meter: meter.clone(),
        }
    }
}

impl ReconcileGauges for Gauges {
    fn set(&self, violations: u64, undelivered: u64) {
        let none = self.meter.new_attributes(NewAttributes::from(vec![]));
        self.violations.record(violations, &none);
        self.undelivered.record(undelivered, &none);
    }
}

impl Counters {
    fn add(&self, counter: &Counter, labels: Vec<MetricKeyValue>) {
        counter.add(1, &self.meter.new_attributes(NewAttributes::from(labels)));
    }

    fn record(&self, activity: &str, closing: Option<&str>, result: &ExecuteActivityResult) {
        match result {
            Ok(_) => match activity {
                "place_order" => self.add(&self.placed, vec![]),
                // The payment's last step completes the order with the stock.
                "deduct_stock_and_complete" => self.add(
                    &self.closed,
                    vec![MetricKeyValue::new("status", "COMPLETED")],
                ),
                // By the status asked for: a close that finds the order COMPLETED (the pivot)
                // leaves it so, and the completion was counted by its own step.
                "close_order" => {
                    if let Some(status) = closing {
                        self.add(
                            &self.closed,
                            vec![MetricKeyValue::new("status", status.to_owned())],
                        );
                    }
                }
                "refund_points" | "release_coupon" | "restore_stock" => self.add(
                    &self.compensations,
                    vec![MetricKeyValue::new("step", activity.to_owned())],
                ),
                _ => {}
            },
            Err(ActivityError::Application(failure)) if failure.is_non_retryable() => {
                let code = failure.type_name().unwrap_or("UNKNOWN").to_owned();
                self.add(
                    &self.refusals,
                    vec![
                        MetricKeyValue::new("activity", activity.to_owned()),
                        MetricKeyValue::new("code", code),
                    ],
                );
            }
            Err(_) => {}
        }
    }
}

impl ActivityInboundInterceptor for OrderTelemetry {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        let info = input.activity_info();
        // Registered as `OrderActivities::charge_points`; the method name is what people read.
        let activity = info
            .activity_type
            .rsplit("::")
            .next()
            .unwrap_or_default()
            .to_owned();
        // An order's workflow id is its order id; other workflows (the benchmark's) have none.
        let order_id = match info.workflow_type.as_deref() {
            Some("OrderWorkflow") => info.workflow_id.clone(),
            _ => None,
        };
        let span = tracing::info_span!(
            "activity",
            activity = %activity,
            order_id = tracing::field::Empty,
            attempt = info.attempt,
        );
        if let Some(id) = &order_id {
            span.record("order_id", id.as_str());
        }
        let closing = input
            .args_ref::<CloseOrderInput>()
            .map(|c| c.status.as_str().to_owned());
        Box::pin(
            async move {
                let started = Instant::now();
                let result = next.run(input).await;
                let elapsed_ms = started.elapsed().as_millis() as u64;
                match &result {
                    Ok(_) => tracing::debug!(elapsed_ms, "activity done"),
                    Err(ActivityError::Application(f)) if f.is_non_retryable() => {
                        tracing::info!(elapsed_ms, code = f.type_name(), "activity refused")
                    }
                    Err(e) => tracing::warn!(elapsed_ms, error = ?e, "activity attempt failed"),
                }
                if let Some(counters) = &self.counters {
                    counters.record(&activity, closing.as_deref(), &result);
                }
                result
            }
            .instrument(span),
        )
    }
}

/// OpenTelemetry export of the spans (cargo feature `otel`): OTLP over HTTP/protobuf to
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (e.g. `http://127.0.0.1:4318`), batched on a thread of its
/// own. The standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, ...); the service name defaults to the binary's name.
#[cfg(feature = "otel")]
pub mod otel {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
    use tracing::Subscriber;
    use tracing_opentelemetry::OpenTelemetryLayer;
    use tracing_subscriber::registry::LookupSpan;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    #[derive(Debug, thiserror::Error)]
    #[error("cannot export to OTEL_EXPORTER_OTLP_ENDPOINT: {0}")]
    pub struct OtelError(#[source] opentelemetry_otlp::ExporterBuildError);

    /// The layer that exports spans, or `None` when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset.
    pub fn layer<S>() -> Result<Option<OpenTelemetryLayer<S, SdkTracer>>, OtelError>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(OtelError)?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            let binary = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "order-saga".to_owned());
            resource = resource.with_service_name(binary);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("order-saga");
        let _ = PROVIDER.set(provider);
        Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
    }

    /// Flushes and stops the exporter, if one was started.
    pub fn shutdown() {
        if let Some(provider) = PROVIDER.get()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("OpenTelemetry: the last spans may be lost: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let parse = |v| parse_listen_addr("X", v);
        assert_eq!(
            parse("127.0.0.1:9464").unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        assert_eq!(
            parse(" 0.0.0.0:9465 ").unwrap(),
            Some(SocketAddr::from(([0, 0, 0, 0], 9465)))
        );
        assert!(
            parse("localhost:9464")
                .unwrap()
                .is_some_and(|a| a.port() == 9464)
        );
        assert_eq!(parse("off").unwrap(), None);
        assert_eq!(parse("OFF").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        for bad in ["9464", "127.0.0.1", "127.0.0.1:99999", "not an address"] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains("X="), "{err}");
        }
    }
}
