//! A worker in this process, on a thread of its own.

use activities::{OrderActivities, PlatformClient};
use anyhow::{Context, Result};
use runtime::Settings;
use runtime::telemetry::{self, OrderTelemetry, WorkerMetrics};
use std::net::SocketAddr;

/// A worker on its own thread: its futures are not `Send`, so it gets a runtime of its own.
/// Dropping it asks the worker to stop.
pub struct WorkerThread {
    shutdown: Box<dyn Fn() + Send + Sync>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        // Ask it to stop, but do not wait: its long polls may take a while to notice, and the
        // run is over. The thread ends with the process at the latest.
        (self.shutdown)();
        drop(self.thread.take());
    }
}

impl WorkerThread {
    /// A worker like `worker`'s main: the SDK's Prometheus exporter on a free port (the
    /// client's metrics on it too), the order telemetry around every activity and the
    /// reconciliation's gauges, on `task_queue`. Returns it and its metrics address.
    pub fn instrumented(settings: Settings, task_queue: String) -> Result<(Self, SocketAddr)> {
        Self::spawn(format!("worker-{task_queue}"), move || async move {
            let metrics = WorkerMetrics::start("127.0.0.1:0".parse()?)?;
            let db = store::db::connect(&settings.database_url).await?;
            let client =
                runtime::connect_temporal_metered(&settings, metrics.client_meter()).await?;
            let runtime = telemetry::runtime(Some(&metrics))?;
            let platform = PlatformClient::new(&settings.data_platform_url);
            let worker = telemetry::build_instrumented_worker(
                &runtime,
                client,
                &task_queue,
                settings.polling,
                OrderActivities::new(db, platform),
                OrderTelemetry::new(&metrics),
            )?;
            let addr = metrics.addr();
            Ok((worker, (metrics, runtime), addr))
        })
    }

    /// The standard worker (`OrderWorkflow`, `OrderActivities`) of `settings`: its database,
    /// Temporal server, task queue and data platform.
    pub fn start(settings: Settings) -> Result<Self> {
        let name = format!("worker-{}", settings.task_queue);
        let (worker, ()) = Self::spawn(name, move || async move {
            let db = store::db::connect(&settings.database_url).await?;
            let client = runtime::connect_temporal(&settings).await?;
            let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
            let platform = PlatformClient::new(&settings.data_platform_url);
            let activities = OrderActivities::new(db, platform);
            let worker = runtime::build_worker(
                &runtime,
                client,
                &settings.task_queue,
                settings.polling,
                activities,
            )?;
            Ok((worker, runtime, ()))
        })?;
        Ok(worker)
    }

    /// Runs `build` on a new thread named `name`, on a Tokio runtime of that thread, then the
    /// worker it built until the returned `WorkerThread` is dropped. `build` returns the worker,
    /// what must live as long as it (the SDK runtime, a metrics exporter) and a value for the
    /// caller, returned once the worker is built.
    pub fn spawn<F, Fut, K, T>(name: String, build: F) -> Result<(Self, T)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(temporalio_sdk::Worker, K, T)>>,
        T: Send + 'static,
    {
        type Started<T> = Result<(Box<dyn Fn() + Send + Sync>, T)>;
        let (tx, rx) = std::sync::mpsc::channel::<Started<T>>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    match build().await {
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                        Ok((mut worker, _keep, value)) => {
                            let _ = tx.send(Ok((Box::new(worker.shutdown_handle()), value)));
                            if let Err(e) = worker.run().await {
                                tracing::error!(error = %e, worker = %name, "worker failed");
                            }
                        }
                    }
                });
                rt.shutdown_background();
            })?;
        let (shutdown, value) = rx.recv().context("worker thread died")??;
        Ok((
            Self {
                shutdown,
                thread: Some(thread),
            },
            value,
        ))
    }
}
