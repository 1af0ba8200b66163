//! Wiring only: connecting to Temporal, building the worker, and logging.

use std::time::Duration;

use activities::OrderActivities;
use domain::Settings;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::OrderWorkflow;

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
    let url = url::Url::parse(&settings.temporal_url())
        .map_err(|_| WiringError::Address(settings.temporal_address.clone()))?;
    let retry = temporalio_client::RetryOptions::builder()
        .max_elapsed_time(Some(patience))
        .build();
    let options = ConnectionOptions::new(url)
        .identity(format!("{}@order-saga", std::process::id()))
        .connect_timeout(patience)
        .retry_options(retry)
        .build();
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
        ClientOptions::new(settings.temporal_namespace.clone()).build(),
    )
    .map_err(|e| connect_err(e.into()))
}

/// The worker's options: the one workflow and its activities on `task_queue`.
pub fn worker_options(
    task_queue: &str,
    activities: OrderActivities,
) -> Result<WorkerOptions, WiringError> {
    Ok(WorkerOptions::new(task_queue)
        .register_workflow::<OrderWorkflow>()
        .map_err(|e| WiringError::Worker(e.into()))?
        .register_activities(activities)
        // The benchmark's baseline (`bench`): cheap to carry, and it must run on the very
        // worker the orders run on to be a fair floor.
        .register_workflow::<workflows::floor::FloorWorkflow>()
        .map_err(|e| WiringError::Worker(e.into()))?
        .register_activities(activities::floor::FloorActivities)
        .graceful_shutdown_period(Duration::from_secs(10))
        .build())
}

/// A worker ready to `run()`.
pub fn build_worker(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    task_queue: &str,
    activities: OrderActivities,
) -> Result<Worker, WiringError> {
    Worker::new(runtime, client, worker_options(task_queue, activities)?)
        .map_err(|e| WiringError::Worker(e.into()))
}

/// Logs to stderr: plain by default, JSON with `LOG_FORMAT=json`; filter with `RUST_LOG`.
pub fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,temporalio_sdk_core=warn,sqlx=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests start several workers in one process): keep the first.
    let _ = result;
}
