//! What every process of the order saga runs on: its [`settings`] (CONTRACT §3), the Temporal
//! connection, the worker's wiring (the order workflow and its activities, and the scheduled
//! reconciliation's), logging, and the
//! [`telemetry`] (metrics, spans, OpenTelemetry). Wiring only: no business rule lives here.

pub mod codec;
pub mod settings;
pub mod telemetry;

pub use settings::{Polling, Settings};

use std::time::Duration;

use activities::{OrderActivities, ReconcileActivities};
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::{OrderWorkflow, ReconcileWorkflow};

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("TEMPORAL_ADDRESS={0:?} is not a valid address")]
    Address(String),
    #[error("cannot reach Temporal at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot build the worker: {0}")]
    Worker(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the Temporal environment configuration (TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_CONFIG_FILE) is invalid: {0}"
    )]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A Temporal client for `TEMPORAL_ADDRESS` and `TEMPORAL_NAMESPACE`.
pub async fn connect_temporal(settings: &Settings) -> Result<Client, WiringError> {
    connect_temporal_with(settings, Duration::from_secs(5)).await
}

/// Like [`connect_temporal`], for callers that answer people: the connection attempt and each
/// call's retries on a transient error give up after `patience`, so a Temporal that is down is
/// reported within seconds instead of retried for long.
pub async fn connect_temporal_with(
    settings: &Settings,
    patience: Duration,
) -> Result<Client, WiringError> {
    connect(settings, patience, None).await
}

/// Like [`connect_temporal`], recording the client's RPC metrics with `meter` (the worker's,
/// see [`telemetry::WorkerMetrics::client_meter`]).
pub async fn connect_temporal_metered(
    settings: &Settings,
    meter: temporalio_common::telemetry::metrics::TemporalMeter,
) -> Result<Client, WiringError> {
    connect(settings, Duration::from_secs(5), Some(meter)).await
}

/// Like [`connect_temporal`], with another data converter than `PAYLOAD_KEYS`' (the tests use
/// it to read what the server stores, or to send it what an attacker would).
pub async fn connect_temporal_converting(
    settings: &Settings,
    converter: temporalio_common::data_converters::DataConverter,
) -> Result<Client, WiringError> {
    connect_with(settings, Duration::from_secs(5), None, converter).await
}

async fn connect(
    settings: &Settings,
    patience: Duration,
    meter: Option<temporalio_common::telemetry::metrics::TemporalMeter>,
) -> Result<Client, WiringError> {
    warn_about_payload_keys(&settings.payload_keys);
    let converter = codec::data_converter(&settings.payload_keys);
    connect_with(settings, patience, meter, converter).await
}

async fn connect_with(
    settings: &Settings,
    patience: Duration,
    meter: Option<temporalio_common::telemetry::metrics::TemporalMeter>,
    converter: temporalio_common::data_converters::DataConverter,
) -> Result<Client, WiringError> {
    // TLS, mTLS, an API key and gRPC headers come from the SDK's environment configuration
    // (the variables every Temporal SDK and the CLI read), so the same settings reach Temporal
    // Cloud or a secured cluster; the address and namespace stay CONTRACT §3's.
    let (remote, _) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
        .map_err(|e| WiringError::Config(e.to_string().into()))?;
    let tls = remote.tls_options.is_some();
    let mut url = url::Url::parse(&settings.temporal_url())
        .map_err(|_| WiringError::Address(settings.temporal_address.clone()))?;
    if tls && !settings.temporal_address.contains("://") {
        // A bare host:port means https once TLS is on, as in the SDK's own loader.
        url = url::Url::parse(&format!("https://{}", settings.temporal_address))
            .map_err(|_| WiringError::Address(settings.temporal_address.clone()))?;
    }
    let retry = temporalio_client::RetryOptions::builder()
        .max_elapsed_time(Some(patience))
        .build();
    let mut options = ConnectionOptions::new(url)
        .identity(format!("{}@order-saga", std::process::id()))
        .connect_timeout(patience)
        .retry_options(retry)
        .build();
    options.tls_options = remote.tls_options;
    options.api_key = remote.api_key;
    options.headers = remote.headers;
    options.metrics_meter = meter;
    let connect_err = |e: Box<dyn std::error::Error + Send + Sync>| WiringError::Connect {
        address: settings.temporal_address.clone(),
        source: e,
    };
    let connection = tokio::time::timeout(patience, Connection::connect(options))
        .await
        .map_err(|e| connect_err(e.into()))?
        .map_err(|e| connect_err(e.into()))?;
    Client::new(
        connection,
        ClientOptions::new(settings.temporal_namespace.clone())
            .data_converter(converter)
            .build(),
    )
    .map_err(|e| connect_err(e.into()))
}

/// Logs, once a process, that payloads are encrypted with the development key or not at all.
fn warn_about_payload_keys(keys: &codec::PayloadKeys) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Some(warning) = keys.warning() {
        WARNED.call_once(|| tracing::warn!("{warning}"));
    }
}

/// How long a worker told to stop lets its running tasks finish before it cancels them.
pub const GRACEFUL_SHUTDOWN_PERIOD: Duration = Duration::from_secs(10);

/// The options every worker is built with, before it registers its workflows and activities:
/// `task_queue`, the workflow pollers of `polling`, the SDK's default tuning otherwise (slots,
/// activity pollers, eager activities, cache) and
/// [`GRACEFUL_SHUTDOWN_PERIOD`].
pub fn base_worker_options(task_queue: &str, polling: Polling) -> WorkerOptions {
    let mut options = WorkerOptions::new(task_queue)
        .graceful_shutdown_period(GRACEFUL_SHUTDOWN_PERIOD)
        .nonsticky_to_sticky_poll_ratio(polling.nonsticky_ratio)
        .build();
    options.workflow_task_poller_behavior =
        polling.workflow_pollers.map(PollerBehavior::SimpleMaximum);
    options
}

/// The worker's options: the order workflow and its activities on `task_queue`, and the
/// scheduled reconciliation (`ReconcileWorkflow`) on the same pool, without gauges.
pub fn worker_options(
    task_queue: &str,
    polling: Polling,
    activities: OrderActivities,
) -> Result<WorkerOptions, WiringError> {
    let reconcile = ReconcileActivities::new(activities.db.clone(), None);
    worker_options_with(task_queue, polling, activities, reconcile)
}

/// [`worker_options`] with the reconciliation's activities given (with the worker's gauges).
pub fn worker_options_with(
    task_queue: &str,
    polling: Polling,
    activities: OrderActivities,
    reconcile: ReconcileActivities,
) -> Result<WorkerOptions, WiringError> {
    let mut options = base_worker_options(task_queue, polling);
    options
        .register_workflow::<OrderWorkflow>()
        .map_err(|e| WiringError::Worker(e.into()))?
        .register_workflow::<ReconcileWorkflow>()
        .map_err(|e| WiringError::Worker(e.into()))?
        .register_activities(activities)
        .register_activities(reconcile);
    Ok(options)
}

/// A worker ready to `run()`.
pub fn build_worker(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    task_queue: &str,
    polling: Polling,
    activities: OrderActivities,
) -> Result<Worker, WiringError> {
    Worker::new(
        runtime,
        client,
        worker_options(task_queue, polling, activities)?,
    )
    .map_err(|e| WiringError::Worker(e.into()))
}

/// Logs to stderr: plain by default, JSON with `LOG_FORMAT=json`; filter with `RUST_LOG`.
/// Built with the `otel` feature, spans also go to the OTLP collector at
/// `OTEL_EXPORTER_OTLP_ENDPOINT` when that is set (see [`telemetry::otel`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,temporalio_sdk_core=warn,sqlx=warn"));
    let logs = if std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json") {
        fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().with_writer(std::io::stderr).boxed()
    };
    // One filter for everything, so the OTLP export carries the spans the logs show and not
    // every span of the HTTP and gRPC stacks underneath.
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    #[cfg(feature = "otel")]
    let (otel, otel_error) = match telemetry::otel::layer() {
        Ok(layer) => (layer, None),
        Err(e) => (None, Some(e)),
    };
    #[cfg(feature = "otel")]
    let registry = registry.with(otel);
    // Already initialised (tests start several workers in one process): keep the first.
    if registry.try_init().is_err() {
        return;
    }
    #[cfg(feature = "otel")]
    if let Some(e) = otel_error {
        tracing::warn!(error = %e, "OpenTelemetry export is off");
    }
    #[cfg(not(feature = "otel"))]
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        tracing::warn!(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no OpenTelemetry export \
             (build with `--features worker/otel`)"
        );
    }
}

/// Sends the spans still buffered for OpenTelemetry (a no-op without the `otel` feature or
/// an endpoint). Call it before the process exits.
pub fn shutdown_tracing() {
    #[cfg(feature = "otel")]
    telemetry::otel::shutdown();
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: when a worker process should finish its running
/// tasks and stop.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
