//! The floor's worker: `bench floor-worker`, a process of its own that the bench starts as its
//! child for the floor runs, so that no benchmark code runs in the production worker.
//!
//! It is wired as the production worker (`worker/src/main.rs`) is: the stack's settings from the
//! environment, the same Temporal connection, SDK runtime and metrics (on a port of its own, as
//! the worker holds `WORKER_METRICS_ADDR`'s), the same activity interceptor, and
//! [`runtime::base_worker_options`] (the same polling settings and graceful shutdown). Only
//! what it registers differs: the floor's workflow and no-op activities, on the floor's task
//! queue. Its CPU is read from its pid like the production worker's (see `procs`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use runtime::Settings;
use runtime::telemetry::{self, OrderTelemetry, WorkerMetrics};
use temporalio_sdk::Worker;

use super::FloorWorkflow;
use super::activities::FloorActivities;

/// What the floor worker prints on its standard output once it is built, and nothing else.
const READY: &str = "floor worker ready";
/// How long the bench waits for that line (connecting gives up after 5 s).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The body of `bench floor-worker`: runs the floor's worker on `task_queue` until its standard
/// input closes (the bench stopped it, or ended however it ended: its end of the pipe closes
/// with it) or SIGINT/SIGTERM comes (a Ctrl-C reaches the whole process group).
pub async fn serve(task_queue: &str) -> Result<()> {
    let settings = Settings::from_env()?;
    // Metrics unless WORKER_METRICS_ADDR=off, as the worker; on any free port of the same host.
    let metrics = telemetry::listen_addr_from_env(
        "WORKER_METRICS_ADDR",
        telemetry::DEFAULT_WORKER_METRICS_ADDR,
    )?
    .map(|addr| WorkerMetrics::start(SocketAddr::new(addr.ip(), 0)))
    .transpose()?;
    let client = match &metrics {
        Some(m) => runtime::connect_temporal_metered(&settings, m.client_meter()).await?,
        None => runtime::connect_temporal(&settings).await?,
    };
    let sdk_runtime = telemetry::runtime(metrics.as_ref())?;
    let mut options = runtime::base_worker_options(task_queue, settings.polling);
    options
        .register_workflow::<FloorWorkflow>()
        .map_err(|e| anyhow!("cannot register the floor's workflow: {e}"))?
        .register_activities(FloorActivities);
    options.activity_inbound_interceptor(
        metrics
            .as_ref()
            .map_or_else(OrderTelemetry::spans_only, OrderTelemetry::new),
    );
    let mut worker = Worker::new(&sdk_runtime, client, options)
        .map_err(|e| anyhow!("cannot build the floor worker: {e}"))?;

    // The SDK's shutdown must be called on the runtime: the thread that waits for the end of
    // standard input only says so.
    let (stdin_closed, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Whatever comes is ignored; the end of it (EOF or an error) stops the worker.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = stdin_closed.send(());
    });
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        tokio::select! {
            _ = closed => tracing::info!("standard input closed: finishing running tasks, then stopping"),
            _ = runtime::wait_for_signal() => tracing::info!("signal received: finishing running tasks, then stopping"),
        }
        shutdown();
    });
    println!("{READY}");
    tracing::info!(
        task_queue,
        temporal = %settings.temporal_address,
        metrics = %metrics.as_ref().map_or("off".to_owned(), |m| format!("http://{}/metrics", m.addr())),
        "floor worker started"
    );
    worker.run().await?;
    tracing::info!("floor worker stopped");
    Ok(())
}

/// The running `bench floor-worker` child. Dropping it stops it, as [`FloorWorker::stop`] does.
pub struct FloorWorker {
    child: Child,
    /// Closed to stop the worker.
    stdin: Option<ChildStdin>,
    /// Kept open so that the child never writes to a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    log: PathBuf,
    stopped: bool,
}

impl FloorWorker {
    /// Starts this executable's `floor-worker` on `task_queue` with this process's environment
    /// (the stack's settings) and its logs in `log`, and waits until it is ready.
    pub async fn start(task_queue: &str, log: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("the bench's own executable")?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(exe)
            .args(["floor-worker", "--task-queue", task_queue])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("cannot start the floor worker")?;
        let stdout = child.stdout.take().map(BufReader::new);
        let mut worker = Self {
            stdin: child.stdin.take(),
            child,
            _stdout: None,
            log: log.to_owned(),
            stopped: false,
        };
        let read = tokio::task::spawn_blocking(move || {
            let mut stdout = stdout?;
            let mut line = String::new();
            stdout.read_line(&mut line).ok()?;
            Some((stdout, line))
        });
        match tokio::time::timeout(READY_TIMEOUT, read).await {
            Ok(Ok(Some((stdout, line)))) if line.trim_end() == READY => {
                worker._stdout = Some(stdout);
                Ok(worker)
            }
            outcome => {
                let why = if outcome.is_err() {
                    format!("not ready after {} s", READY_TIMEOUT.as_secs())
                } else {
                    "exited".to_owned()
                };
                let status = worker.halt();
                let log = std::fs::read_to_string(&worker.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                bail!(
                    "the floor worker {why} ({}); the end of {}:\n{}",
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    worker.log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops the worker and fails unless it stopped cleanly.
    pub fn stop(mut self) -> Result<()> {
        let status = self.halt()?;
        if !status.success() {
            bail!(
                "the floor worker ended with {status} (log: {})",
                self.log.display()
            );
        }
        Ok(())
    }

    /// Closes the worker's standard input, so that it finishes its running tasks and exits as
    /// the production worker does on SIGTERM, and waits for it: at most its graceful shutdown
    /// period and 5 s more (as `scripts/stack.sh down` waits), then kills it.
    fn halt(&mut self) -> std::io::Result<ExitStatus> {
        self.stopped = true;
        drop(self.stdin.take());
        let deadline = Instant::now() + runtime::GRACEFUL_SHUTDOWN_PERIOD + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FloorWorker {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.halt();
        }
    }
}
