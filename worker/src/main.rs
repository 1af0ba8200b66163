// `worker`: runs the order workflow and activity worker until SIGINT/SIGTERM. (Plain comments:
// `worker-crashpoints` is this file too, `include!`d by src/crashpoints.rs.)

use activities::{OrderActivities, PlatformClient};
use anyhow::Context;
use runtime::Settings;
use runtime::telemetry::{self, OrderTelemetry, WorkerMetrics};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::init_tracing();
    let result = run().await;
    runtime::shutdown_tracing();
    result
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let metrics_addr = telemetry::listen_addr_from_env(
        "WORKER_METRICS_ADDR",
        telemetry::DEFAULT_WORKER_METRICS_ADDR,
    )?;
    // Started before anything else so that a taken port is reported at once, not after the
    // connections; `WORKER_METRICS_ADDR=off` runs a second worker on the same machine.
    let metrics = metrics_addr
        .map(WorkerMetrics::start)
        .transpose()
        .context("set WORKER_METRICS_ADDR to a free host:port, or to `off`")?;
    let db = store::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let client = match &metrics {
        Some(m) => runtime::connect_temporal_metered(&settings, m.client_meter()).await?,
        None => runtime::connect_temporal(&settings).await?,
    };
    let runtime = telemetry::runtime(metrics.as_ref())?;
    let activities = OrderActivities::new(db, PlatformClient::new(&settings.data_platform_url));
    let order_telemetry = metrics
        .as_ref()
        .map_or_else(OrderTelemetry::spans_only, OrderTelemetry::new);
    let mut worker = telemetry::build_instrumented_worker(
        &runtime,
        client,
        &settings.task_queue,
        settings.polling,
        activities,
        order_telemetry,
    )?;

    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        runtime::wait_for_signal().await;
        tracing::info!("signal received: finishing running tasks, then stopping");
        shutdown();
    });
    tracing::info!(
        task_queue = %settings.task_queue,
        temporal = %settings.temporal_address,
        data_platform = %settings.data_platform_url,
        metrics = %metrics.as_ref().map_or("off".to_owned(), |m| format!("http://{}/metrics", m.addr())),
        "worker started"
    );
    if crashpoints::ENABLED {
        tracing::warn!(
            control_file = ?std::env::var_os("CRASH_FILE"),
            "built for the crash-point matrix: this worker aborts at the point CRASH_FILE names"
        );
    }
    worker.run().await?;
    tracing::info!("worker stopped");
    Ok(())
}
