//! `bench`: N orders (placement, then payment) at concurrency C, from many users over many
//! products, through the HTTP API and straight through the Temporal client, beside the
//! orchestration floor (`FloorWorkflow`: an order's shape with none of its work), in one run on
//! the same server. It reports throughput, latency percentiles per phase, history events per
//! order and CPU seconds per order of each process. It writes JSON and a PNG chart, and it ends
//! with the CONTRACT §6 check.
//!
//! It drives the stack that `make up` runs (settings from the environment as everywhere) and
//! reads the processes' CPU from their pid files in `.local/`. The floor runs on a worker of its
//! own that the bench starts and stops (`bench floor-worker`, see [`floor::worker`]), wired as
//! the production worker is, whose CPU counts as the worker's in the floor's runs.

mod args;
mod chart;
mod floor;
mod procs;
mod prom;
mod report;
mod runs;
mod scale;
mod stats;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use runtime::Settings;
use starter::OrderService;
use testkit::Api;

use args::{Args, Command, Via};
use floor::worker::FloorWorker;
use runs::{Ctx, Kind, Run, Shop, Target};

#[tokio::main]
async fn main() -> Result<()> {
    runtime::init_tracing();
    let args = Args::parse();
    if let Some(Command::FloorWorker { task_queue }) = &args.command {
        let result = floor::worker::serve(task_queue).await;
        runtime::shutdown_tracing();
        return result;
    }
    if args.orders == 0 || args.concurrency.contains(&0) {
        bail!("--orders and every --concurrency must be at least 1");
    }
    // A Ctrl-C drops the bench where it is, and with it the floor's worker, which then stops.
    tokio::select! {
        result = bench(args) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// The whole bench, step by step: connect and stock the shop, start the floor's worker, run
/// every kind at every concurrency, then wait for the orders' workflows, check CONTRACT §6,
/// write the results and fail on any failed order or violation.
async fn bench(args: Args) -> Result<()> {
    let ctx = Arc::new(connect(&args).await?);
    let procs = procs::Procs::from_pid_dir(&args.pid_dir);
    std::fs::create_dir_all(&args.out_dir)?;
    let floor_worker = start_floor(&ctx, &args).await?;
    // In the floor's runs the worker is the floor's (its CPU per floor iteration is what the
    // orders' worker CPU compares with); in the orders' runs, the production worker.
    let floor_procs = floor_worker
        .as_ref()
        .map(|w| procs.with_pids("worker", vec![w.pid()]));
    println!(
        "bench: {} orders per run at concurrency {:?}; processes: {}",
        args.orders,
        args.concurrency,
        procs.describe()
    );
    let kinds = kinds(&ctx, &args).await?;
    let procs_of = |kind: Kind| match (kind, &floor_procs) {
        (Kind::Floor, Some(floor_procs)) => floor_procs.clone(),
        _ => procs.clone(),
    };
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        runs.extend(runs::interleaved(&ctx, procs_of, &kinds, c, &args).await?);
    }
    if let Some(w) = floor_worker {
        w.stop()?;
    }
    let scale = match args.concurrency.iter().max() {
        Some(&c) if !args.no_scale_out => scale::run_all(&ctx, &procs, &args, c).await?,
        _ => Vec::new(),
    };
    let all: Vec<&Run> = runs.iter().chain(&scale).collect();
    let (unfinished, check) = verify(&ctx, &all).await?;
    report::report(&ctx, &args, &runs, &scale, &unfinished, &check)?;
    report::verdict(&all, &unfinished, &check)
}

/// The stack's database, Temporal and API from the environment's settings, and the shop the
/// orders are placed in.
async fn connect(args: &Args) -> Result<Ctx> {
    let settings = Settings::from_env()?;
    let db = store::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("PostgreSQL at {}", settings.database_url))?;
    let client = runtime::connect_temporal(&settings).await?;
    let service = OrderService::new(
        client.clone(),
        db.clone(),
        &settings.task_queue,
        settings.payment_timeout,
    )
    .with_remote_steps(settings.remote_steps);
    let api = Api::with_timeout(
        format!("http://{}", settings.http_addr),
        &settings.auth_secret,
        Duration::from_secs(60),
    )?;
    let shop = make_shop(&db, &api, args.users, args.products).await?;
    let stack = Arc::new(Target {
        service,
        products: shop.products.clone(),
    });
    let server_metrics = server_metrics_addr(args, &settings).await;
    Ok(Ctx {
        server_metrics,
        floor_task_queue: floor::task_queue(&settings),
        settings,
        db,
        client,
        stack,
        api,
        shop,
        next: AtomicUsize::new(0),
    })
}

/// The Temporal server's metrics address (see `--server-metrics`), if it answers there.
async fn server_metrics_addr(args: &Args, settings: &Settings) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let addr = match args.server_metrics.as_deref() {
        Some("off") => return None,
        Some(addr) => addr.to_owned(),
        None => {
            let (host, port) = settings.temporal_address.rsplit_once(':')?;
            let host = host.rsplit("://").next().unwrap_or(host);
            format!("{host}:{}", port.parse::<u16>().ok()?.checked_add(2233)?)
        }
    };
    let addr = addr.to_socket_addrs().ok()?.next()?;
    match prom::scrape(addr).await {
        Ok(_) => Some(addr),
        Err(e) => {
            println!("bench: no Temporal server metrics ({e:#}): persistence requests not counted");
            None
        }
    }
}

/// The floor's worker, for the floor's runs only (`None` with `--no-floor`): stopped after
/// them, or dropped, which stops it, on an error or a Ctrl-C (and should this process die, its
/// standard input closes).
async fn start_floor(ctx: &Ctx, args: &Args) -> Result<Option<FloorWorker>> {
    if args.no_floor {
        return Ok(None);
    }
    let log = args.out_dir.join("floor-worker.log");
    let w = FloorWorker::start(&ctx.floor_task_queue, &log).await?;
    println!(
        "bench: the floor on task queue {} by its own worker, pid {} (log: {})",
        ctx.floor_task_queue,
        w.pid(),
        w.log().display()
    );
    Ok(Some(w))
}

/// The kinds of runs asked for; the API's only if it answers.
async fn kinds(ctx: &Ctx, args: &Args) -> Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    if !args.no_floor {
        kinds.push(Kind::Floor);
    }
    if matches!(args.via, Via::Temporal | Via::Both) {
        kinds.push(Kind::OrdersTemporal);
    }
    if matches!(args.via, Via::Api | Via::Both) {
        if ctx.api.wait_healthy(Duration::ZERO).await.is_err() {
            bail!(
                "the HTTP API does not answer at {} (run `make up`)",
                ctx.api.base
            );
        }
        kinds.push(Kind::OrdersApi);
    }
    Ok(kinds)
}

/// A payment answers before the data platform is told: waits for every measured order's
/// workflow to close, then checks CONTRACT §6. The orders that did not finish, and the check.
async fn verify(ctx: &Ctx, runs: &[&Run]) -> Result<(Vec<String>, starter::check::CheckReport)> {
    let ids = runs
        .iter()
        .filter(|r| r.kind != Kind::Floor)
        .flat_map(|r| r.ids.iter().cloned())
        .collect();
    let unfinished = unfinished(ctx, ids).await?;
    let check = starter::check::run(&ctx.db, Some(&ctx.client)).await?;
    Ok((unfinished, check))
}

/// The orders among `ids` whose workflow did not close (within a minute of the last run) with
/// the order COMPLETED and delivered to the data platform.
async fn unfinished(ctx: &Ctx, ids: Vec<String>) -> Result<Vec<String>> {
    let open = testkit::check::unclosed_workflows(&ctx.client, &ids, Duration::from_secs(60)).await;
    let closed: Vec<&String> = ids.iter().filter(|id| !open.contains(id)).collect();
    let done: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE id = ANY($1) \
         AND status = 'COMPLETED' AND platform_notified_at IS NOT NULL",
    )
    .bind(&closed)
    .fetch_all(&ctx.db)
    .await?
    .into_iter()
    .collect();
    Ok(ids.into_iter().filter(|id| !done.contains(id)).collect())
}

/// Customers with points that never run out and products with stock that never does, so that
/// every order of the run completes and the figures measure the saga, not refusals.
async fn make_shop(db: &sqlx::PgPool, api: &Api, users: usize, products: usize) -> Result<Shop> {
    let mut shop = Shop {
        users: Vec::new(),
        products: Vec::new(),
    };
    for i in 0..users.max(1) {
        let name = format!("bench customer {i}");
        let id = testkit::shop::user(db, &name, 1_000_000_000_000).await?;
        let token = api.customer_for(id, Duration::from_secs(86_400));
        shop.users.push((id, token));
    }
    for i in 0..products.max(1) {
        let price = 1_000 + 500 * (i as i64 % 9);
        let name = format!("bench product {i}");
        shop.products
            .push(testkit::shop::product(db, &name, price, 1_000_000_000).await?);
    }
    Ok(shop)
}
