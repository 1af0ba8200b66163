//! Scale-out: the same load (orders through the Temporal client at the highest concurrency)
//! on production workers the bench starts itself (the `worker` binary beside this one, with
//! the stack's settings) on a task queue of their own, in four setups: one worker with the
//! payload codec off, one with it on (the stack's keys), two workers, and one worker with every
//! order on one product (the hot stock row). Each setup starts fresh workers, warms up, runs the
//! load, waits for its workflows to close, reads the workers' stock-lock hold times off their
//! `/metrics`, and stops them.
//!
//! The codec-off setup runs first: workers with keys read payloads written without them (the
//! codec passes them through), not the other way round.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use runtime::codec::PayloadKeys;
use starter::OrderService;

use crate::args::Args;
use crate::procs::Procs;
use crate::prom::{metric, scrape};
use crate::runs::{self, Ctx, Kind, Run, Target};

/// One setup of the scale-out runs.
pub struct Setup {
    pub name: &'static str,
    pub workers: usize,
    /// Payloads encrypted with the stack's `PAYLOAD_KEYS` (else `off`, worker and client).
    pub codec: bool,
    /// Every order on one product, one line each.
    pub hot: bool,
}

pub const SETUPS: [Setup; 4] = [
    Setup {
        name: "1 worker, codec off",
        workers: 1,
        codec: false,
        hot: false,
    },
    Setup {
        name: "1 worker",
        workers: 1,
        codec: true,
        hot: false,
    },
    Setup {
        name: "2 workers",
        workers: 2,
        codec: true,
        hot: false,
    },
    Setup {
        name: "1 worker, hot product",
        workers: 1,
        codec: true,
        hot: true,
    },
];

/// What the log of a production worker says once it polls.
const STARTED: &str = "worker started";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Every setup, in order, at concurrency `c`.
pub async fn run_all(ctx: &Arc<Ctx>, procs: &Procs, args: &Args, c: usize) -> Result<Vec<Run>> {
    let task_queue = format!("{}-scale", ctx.settings.task_queue);
    let mut runs = Vec::new();
    for setup in &SETUPS {
        runs.push(run_setup(ctx, procs, args, c, setup, &task_queue).await?);
    }
    Ok(runs)
}

async fn run_setup(
    ctx: &Arc<Ctx>,
    procs: &Procs,
    args: &Args,
    c: usize,
    setup: &Setup,
    task_queue: &str,
) -> Result<Run> {
    let workers = Workers::start(setup, task_queue, &args.out_dir).await?;
    let mut settings = ctx.settings.clone();
    if !setup.codec {
        settings.payload_keys = PayloadKeys::off();
    }
    let client = runtime::connect_temporal(&settings).await?;
    let service = OrderService::new(
        client.clone(),
        ctx.db.clone(),
        task_queue,
        settings.payment_timeout,
    )
    .with_remote_steps(settings.remote_steps);
    let products = if setup.hot {
        ctx.shop.products[..1].to_vec()
    } else {
        ctx.shop.products.clone()
    };
    let target = Arc::new(Target { service, products });
    let procs = procs.with_pids("worker", workers.pids());
    let before = workers.lock_hold().await?;
    let mut run = runs::run(ctx, &procs, Kind::OrdersTemporal, c, args, &target).await?;
    let after = workers.lock_hold().await?;
    // Every order's workflow closes (the data platform told) before its workers stop.
    let open = testkit::check::unclosed_workflows(&client, &run.ids, Duration::from_secs(60)).await;
    workers.stop()?;
    if !open.is_empty() {
        bail!(
            "{}: {} workflow(s) still open a minute after the run",
            setup.name,
            open.len()
        );
    }
    let deducted = after.1 - before.1;
    run.setup = Some(setup.name.to_owned());
    run.workers = Some(setup.workers);
    run.lock_hold_ms = (deducted > 0.0).then(|| (after.0 - before.0) / deducted * 1000.0);
    println!(
        "{:>24} {}: stock lock held {} per deduction",
        "",
        setup.name,
        run.lock_hold_ms
            .map_or("-".to_owned(), |ms| format!("{ms:.2} ms"))
    );
    Ok(run)
}

/// Production workers started by the bench. Dropping them stops them.
struct Workers {
    children: Vec<(Child, PathBuf)>,
    metrics: Vec<SocketAddr>,
}

impl Workers {
    async fn start(setup: &Setup, task_queue: &str, out_dir: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("the bench's own executable")?;
        let worker = exe.with_file_name("worker");
        let mut workers = Self {
            children: Vec::new(),
            metrics: Vec::new(),
        };
        for i in 0..setup.workers {
            let metrics = free_port()?;
            let log = out_dir.join(format!("scale-worker-{i}.log"));
            let mut cmd = Command::new(&worker);
            cmd.env("TASK_QUEUE", task_queue)
                .env("WORKER_METRICS_ADDR", metrics.to_string())
                .env_remove("LOG_FORMAT")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?);
            if !setup.codec {
                cmd.env("PAYLOAD_KEYS", "off");
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start {}", worker.display()))?;
            workers.children.push((child, log));
            workers.metrics.push(metrics);
        }
        for (child, log) in &mut workers.children {
            wait_started(child, log).await?;
        }
        println!(
            "bench: scale-out \"{}\": {} worker(s) on task queue {task_queue}, pid {:?}",
            setup.name,
            setup.workers,
            workers.pids()
        );
        Ok(workers)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(c, _)| c.id()).collect()
    }

    /// Seconds the stock locks were held and deductions, summed over the workers so far.
    async fn lock_hold(&self) -> Result<(f64, f64)> {
        let mut total = (0.0, 0.0);
        for addr in &self.metrics {
            let text = scrape(*addr).await?;
            total.0 += metric(&text, "orders_stock_lock_hold_seconds_sum");
            total.1 += metric(&text, "orders_stock_lock_hold_seconds_count");
        }
        Ok(total)
    }

    /// SIGTERM to each (it finishes its running tasks, as `make down` stops the worker), then
    /// waits; fails unless each stopped cleanly.
    fn stop(mut self) -> Result<()> {
        for (child, log) in std::mem::take(&mut self.children) {
            let status = halt(child)?;
            if !status.success() {
                bail!(
                    "a scale-out worker ended with {status} (log: {})",
                    log.display()
                );
            }
        }
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, _) in std::mem::take(&mut self.children) {
            let _ = halt(child);
        }
    }
}

fn halt(mut child: Child) -> std::io::Result<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + runtime::GRACEFUL_SHUTDOWN_PERIOD + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_started(child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(STARTED) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "a scale-out worker exited ({status}); its log {}:\n{text}",
                log.display()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "a scale-out worker did not start in 30 s (log: {})",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free port on the loopback interface, for a worker's metrics.
fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
