//! `worker`: runs the order workflow and activity worker until SIGINT/SIGTERM.

use activities::{OrderActivities, PlatformClient};
use anyhow::Context;
use domain::Settings;
use temporalio_sdk::Runtime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worker::init_tracing();
    let settings = Settings::from_env()?;
    let db = activities::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let client = worker::connect_temporal(&settings).await?;
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let activities = OrderActivities::new(db, PlatformClient::new(&settings.data_platform_url));
    let mut worker = worker::build_worker(&runtime, client, &settings.task_queue, activities)?;

    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: finishing running tasks, then stopping");
        shutdown();
    });
    tracing::info!(
        task_queue = %settings.task_queue,
        temporal = %settings.temporal_address,
        data_platform = %settings.data_platform_url,
        "worker started"
    );
    worker.run().await?;
    tracing::info!("worker stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
