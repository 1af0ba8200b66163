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

mod chart;
mod floor;
mod procs;
mod prom;
mod scale;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use domain::{ProductId, UserId};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::Settings;
use serde::Serialize;
use serde_json::json;
use starter::OrderService;
use temporalio_client::{
    Client, UntypedWorkflow, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};
use testkit::Api;
use testkit::shop::{order_body, order_request};

use floor::worker::FloorWorker;
use floor::{FloorShape, FloorWorkflow, ORDER_SHAPE, ORDER_SHAPE_REMOTE};
use stats::Percentiles;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Orders beside the orchestration floor, on the running stack"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Orders per run (each run is one kind at one concurrency).
    #[arg(long, default_value_t = 200)]
    orders: usize,
    /// Concurrencies to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    concurrency: Vec<usize>,
    /// How orders are sent (`none`: the floor only).
    #[arg(long, value_enum, default_value_t = Via::Both)]
    via: Via,
    /// Skip the floor.
    #[arg(long)]
    no_floor: bool,
    /// Skip the scale-out runs (1 and 2 workers of the bench's own, the codec off and on, a
    /// hot product), which run through the Temporal client at the highest concurrency.
    #[arg(long)]
    no_scale_out: bool,
    /// Customers to spread the orders over (through the API each may send RATE_LIMIT, 20/s by
    /// default: a few customers at high concurrency are refused 429 `RATE_LIMITED`).
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Products to spread the lines over.
    #[arg(long, default_value_t = 20)]
    products: usize,
    /// Unmeasured orders before each run.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Rounds each concurrency's runs take turns in (floor, client, API, floor, ...), each
    /// with its share of `--orders`: a drift of the machine during the runs then weighs on
    /// every kind alike.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Closed workflows per run whose history length is read.
    #[arg(long, default_value_t = 5)]
    history_samples: usize,
    /// Where results.json and chart.png go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// The Temporal dev server's Prometheus metrics (host:port), whose persistence requests
    /// are counted per order; `off` for none. Default: the server's host and its port + 2233,
    /// as `scripts/temporal.sh` starts it (TEMPORAL_METRICS_PORT there).
    #[arg(long)]
    server_metrics: Option<String>,
    /// Where `make up` keeps the pid files (worker.pid, api.pid, temporal.pid).
    #[arg(long, default_value = ".local")]
    pid_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The floor's worker, which the bench starts as its child process for the floor runs.
    #[command(hide = true)]
    FloorWorker {
        #[arg(long)]
        task_queue: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Via {
    Api,
    Temporal,
    Both,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    /// The orchestration floor, through the Temporal client.
    Floor,
    /// Orders through the Temporal client (`OrderService`, as the CLI does).
    OrdersTemporal,
    /// Orders through the HTTP API.
    OrdersApi,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::OrdersTemporal => "orders (client)",
            Kind::OrdersApi => "orders (HTTP API)",
        }
    }
}

#[derive(Debug, Serialize)]
struct Run {
    kind: Kind,
    concurrency: usize,
    orders: usize,
    completed: usize,
    errors: BTreeMap<String, usize>,
    wall_seconds: f64,
    throughput: f64,
    placement_ms: Percentiles,
    payment_ms: Percentiles,
    end_to_end_ms: Percentiles,
    history_events_per_order: Option<f64>,
    cpu_seconds_per_order: BTreeMap<String, f64>,
    /// Unmeasured warm-up orders that failed: failures all the same.
    warmup_failed: usize,
    /// The scale-out setup (`None` for the runs on the stack's own worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    setup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    /// The Temporal server's persistence requests per order, by operation (its own metrics).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    persistence_requests_per_order: BTreeMap<String, f64>,
    /// The mean time a stock deduction held its products' row locks (scale-out runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    lock_hold_ms: Option<f64>,
    /// The measured orders that completed (their workflows are checked after the runs).
    #[serde(skip)]
    ids: Vec<String>,
}

/// What one order (or floor iteration) took.
struct Sample {
    id: String,
    place: Duration,
    pay: Duration,
}

/// The bench's customers (each with a token of theirs) and products.
struct Shop {
    users: Vec<(UserId, String)>,
    products: Vec<ProductId>,
}

/// Where orders through the Temporal client go: the stack's worker, or a scale-out setup's.
struct Target {
    service: OrderService,
    /// The products the lines are spread over.
    products: Vec<ProductId>,
}

struct Ctx {
    settings: Settings,
    db: sqlx::PgPool,
    client: Client,
    /// The stack's task queue and every product.
    stack: Arc<Target>,
    /// Where the floor runs: a task queue of its own, which only the floor worker polls.
    floor_task_queue: String,
    /// The HTTP API of the running stack (`testkit`'s client, as the tests and chaos use).
    api: Api,
    shop: Shop,
    next: AtomicUsize,
    /// Where the Temporal server serves its metrics, if it does.
    server_metrics: Option<std::net::SocketAddr>,
}

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
        runs.extend(interleaved(&ctx, procs_of, &kinds, c, &args).await?);
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
    report(&ctx, &args, &runs, &scale, &unfinished, &check)?;
    verdict(&all, &unfinished, &check)
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

/// The Temporal server's persistence requests so far, by operation (empty without metrics).
async fn persistence_requests(ctx: &Ctx) -> BTreeMap<String, f64> {
    let Some(addr) = ctx.server_metrics else {
        return BTreeMap::new();
    };
    match prom::scrape(addr).await {
        Ok(text) => prom::by_label(&text, "persistence_requests", "operation"),
        Err(_) => BTreeMap::new(),
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

/// Writes results.json and chart.png and prints the table.
fn report(
    ctx: &Ctx,
    args: &Args,
    runs: &[Run],
    scale: &[Run],
    unfinished: &[String],
    check: &starter::check::CheckReport,
) -> Result<()> {
    let machine = procs::machine();
    let report = json!({
        "machine": machine,
        "orders_per_run": args.orders,
        "order_shape": order_shape(&ctx.settings),
        "floor_task_queue": ctx.floor_task_queue,
        "step_mode": if ctx.settings.remote_steps { "remote" } else { "local" },
        "runs": runs,
        "scale_out": scale,
        "invariants": { "ok": check.ok, "violations": check.violations, "checked": check.checked },
        "unfinished_orders": unfinished,
    });
    let json_path = args.out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let png_path = args.out_dir.join("chart.png");
    if let Err(e) = chart::draw(&png_path, runs, scale) {
        eprintln!("warning: no chart: {e:#}");
    }
    print_table(runs);
    print_scale(scale);
    println!();
    println!(
        "results: {}  chart: {}",
        json_path.display(),
        png_path.display()
    );
    Ok(())
}

/// Fails on an invariant violation, and on any failed or unfinished order: figures of runs
/// where orders failed measure something else.
fn verdict(
    runs: &[&Run],
    unfinished: &[String],
    check: &starter::check::CheckReport,
) -> Result<()> {
    if !check.ok {
        for v in &check.violations {
            eprintln!("violation: {v}");
        }
        bail!("{} invariant violation(s)", check.violations.len());
    }
    println!(
        "invariants: ok ({} rules over {} orders)",
        check.checked["rules"], check.checked["orders"]
    );
    let failed: usize = runs
        .iter()
        .map(|r| r.orders - r.completed + r.warmup_failed)
        .sum();
    for id in unfinished {
        eprintln!(
            "unfinished: order {id} did not end COMPLETED and delivered to the data platform"
        );
    }
    if failed > 0 || !unfinished.is_empty() {
        bail!(
            "{failed} order(s) failed, {} completed order(s) never finished",
            unfinished.len()
        );
    }
    Ok(())
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

/// The n-th order: a user round robin, one to three lines over distinct `products`.
fn order_for(shop: &Shop, products: &[ProductId], n: usize) -> (usize, Vec<(ProductId, i64)>) {
    let user = n % shop.users.len();
    let mut lines: Vec<(ProductId, i64)> = Vec::new();
    for i in 0..1 + n % 3 {
        let product = products[(n * 7 + i * 3) % products.len()];
        // Distinct products only (the input rules forbid a product twice).
        if lines.iter().all(|(p, _)| *p != product) {
            lines.push((product, 1 + (n + i) as i64 % 2));
        }
    }
    (user, lines)
}

/// One order (or floor iteration) of `kind`, timed.
async fn one(ctx: &Ctx, kind: Kind, target: &Target) -> Result<Sample, String> {
    let n = ctx.next.fetch_add(1, Ordering::Relaxed);
    match kind {
        Kind::Floor => floor_once(ctx).await,
        Kind::OrdersTemporal => order_via_temporal(ctx, target, n).await,
        Kind::OrdersApi => order_via_api(ctx, n).await,
    }
}

/// The floor: its placement and its payment, updates of a workflow that does no work.
async fn floor_once(ctx: &Ctx) -> Result<Sample, String> {
    let id = format!("floor-{}", uuid::Uuid::new_v4().simple());
    let shape = FloorShape {
        payment_timeout_ms: u64::try_from(ctx.settings.payment_timeout.as_millis())
            .unwrap_or(u64::MAX),
        ..order_shape(&ctx.settings)
    };
    let options = WorkflowUpdateWithStartOptions::new(
        ctx.floor_task_queue.clone(),
        id.clone(),
        WorkflowIdConflictPolicy::UseExisting,
    )
    .build();
    let t0 = Instant::now();
    ctx.client
        .execute_update_with_start_workflow(
            FloorWorkflow::run,
            shape,
            FloorWorkflow::place,
            (),
            options,
        )
        .await
        .map_err(|e| format!("floor place: {e}"))?;
    let place = t0.elapsed();
    let t1 = Instant::now();
    ctx.client
        .get_workflow_handle::<FloorWorkflow>(id.as_str())
        .execute_update(
            FloorWorkflow::pay,
            (),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| format!("floor pay: {e}"))?;
    Ok(Sample {
        id,
        place,
        pay: t1.elapsed(),
    })
}

/// An order through the Temporal client (`OrderService`, as the CLI does).
async fn order_via_temporal(ctx: &Ctx, target: &Target, n: usize) -> Result<Sample, String> {
    let (user, lines) = order_for(&ctx.shop, &target.products, n);
    let id = OrderService::new_order_id();
    let t0 = Instant::now();
    target
        .service
        .place(&id, ctx.shop.users[user].0, order_request(&lines, None))
        .await
        .map_err(|e| code_of_service(&e))?;
    let place = t0.elapsed();
    let t1 = Instant::now();
    let order = target
        .service
        .pay(&id, None)
        .await
        .map_err(|e| code_of_service(&e))?;
    if order.status != domain::OrderStatus::Completed {
        return Err(format!("paid but {}", order.status));
    }
    Ok(Sample {
        id: id.into_string(),
        place,
        pay: t1.elapsed(),
    })
}

/// An order through the HTTP API, with `testkit`'s client.
async fn order_via_api(ctx: &Ctx, n: usize) -> Result<Sample, String> {
    let (user, lines) = order_for(&ctx.shop, &ctx.shop.products, n);
    let token = Some(ctx.shop.users[user].1.as_str());
    let t0 = Instant::now();
    let placed = ctx
        .api
        .post("/api/v1/orders", token, &order_body(&lines, None))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    if placed.status != 201 {
        return Err(code_or(&placed, "placement failed"));
    }
    let place = t0.elapsed();
    let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
    let t1 = Instant::now();
    let paid = ctx
        .api
        .post("/api/v1/payments", token, &json!({ "order_id": id }))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    if paid.status != 200 || paid.order_status() != "COMPLETED" {
        return Err(code_or(&paid, "payment failed"));
    }
    Ok(Sample {
        id,
        place,
        pay: t1.elapsed(),
    })
}

/// The contract's error code of an answer, or `otherwise` when it has none.
fn code_or(reply: &testkit::Reply, otherwise: &str) -> String {
    match reply.code() {
        "" => otherwise.to_owned(),
        code => code.to_owned(),
    }
}

/// The shape the floor mirrors: the orders' (`STEP_MODE`, as the API and this bench read it).
fn order_shape(settings: &Settings) -> FloorShape {
    if settings.remote_steps {
        ORDER_SHAPE_REMOTE
    } else {
        ORDER_SHAPE
    }
}

fn code_of_service(e: &starter::ServiceError) -> String {
    match e {
        starter::ServiceError::Order(e) => e.code().to_owned(),
        other => other.to_string(),
    }
}

/// One round of a run: its orders, timed, and the processes' CPU seconds over it.
struct Round {
    results: Vec<Result<Sample, String>>,
    wall: Duration,
    cpu: BTreeMap<String, f64>,
    /// The Temporal server's persistence requests over the round, by operation.
    requests: BTreeMap<String, f64>,
    warmup_failed: usize,
}

/// `n` orders of `kind` at concurrency `c`, after `warmup` unmeasured ones.
async fn round(
    ctx: &Arc<Ctx>,
    procs: &procs::Procs,
    (kind, c): (Kind, usize),
    (n, warmup): (usize, usize),
    target: &Arc<Target>,
) -> Round {
    let orders = |count: usize, bar: Option<ProgressBar>| {
        futures::stream::iter(0..count)
            .map(move |_| {
                let ctx = ctx.clone();
                let target = target.clone();
                let bar = bar.clone();
                async move {
                    let r = one(&ctx, kind, &target).await;
                    if let Some(bar) = bar {
                        bar.inc(1);
                    }
                    r
                }
            })
            .buffer_unordered(c)
            .collect::<Vec<_>>()
    };
    // Warm up connections and caches without measuring.
    let warmup_failed = orders(warmup, None)
        .await
        .iter()
        .filter(|r| r.is_err())
        .count();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} c={c}", kind.label()));
    let requests_before = persistence_requests(ctx).await;
    let cpu_before = procs.cpu_seconds();
    let started = Instant::now();
    let results = orders(n, Some(bar.clone())).await;
    let wall = started.elapsed();
    let cpu_after = procs.cpu_seconds();
    let requests = persistence_requests(ctx)
        .await
        .into_iter()
        .map(|(op, after)| {
            let delta = after - requests_before.get(&op).copied().unwrap_or(0.0);
            (op, delta)
        })
        .collect();
    bar.finish_and_clear();
    let cpu = cpu_after
        .iter()
        .filter_map(|(name, after)| Some((name.clone(), after - cpu_before.get(name)?)))
        .collect();
    Round {
        results,
        wall,
        cpu,
        requests,
        warmup_failed,
    }
}

/// A run in one round: `args.orders` orders of `kind` at concurrency `c` to `target`.
async fn run(
    ctx: &Arc<Ctx>,
    procs: &procs::Procs,
    kind: Kind,
    c: usize,
    args: &Args,
    target: &Arc<Target>,
) -> Result<Run> {
    let r = round(ctx, procs, (kind, c), (args.orders, args.warmup), target).await;
    summarize(ctx, kind, c, args, vec![r]).await
}

/// One run of each kind at concurrency `c`, their orders in `args.rounds` rounds that take
/// turns (floor, client, API, floor, client, API, ...), so that whatever drifts on the
/// machine over the minutes of a run weighs on every kind alike.
async fn interleaved(
    ctx: &Arc<Ctx>,
    procs_of: impl Fn(Kind) -> procs::Procs,
    kinds: &[Kind],
    c: usize,
    args: &Args,
) -> Result<Vec<Run>> {
    let rounds = args.rounds.clamp(1, args.orders);
    let mut per_kind: Vec<Vec<Round>> = kinds.iter().map(|_| Vec::new()).collect();
    for i in 0..rounds {
        // Round i's share of the orders; the first rounds take the remainder.
        let n = args.orders / rounds + usize::from(i < args.orders % rounds);
        let warmup = if i == 0 { args.warmup } else { 0 };
        for (k, &kind) in kinds.iter().enumerate() {
            let procs = procs_of(kind);
            per_kind[k].push(round(ctx, &procs, (kind, c), (n, warmup), &ctx.stack).await);
        }
    }
    let mut runs = Vec::new();
    for (k, rounds) in per_kind.into_iter().enumerate() {
        runs.push(summarize(ctx, kinds[k], c, args, rounds).await?);
    }
    Ok(runs)
}

/// A run's rounds, added up.
#[derive(Default)]
struct Merged {
    samples: Vec<Sample>,
    errors: BTreeMap<String, usize>,
    cpu: BTreeMap<String, f64>,
    requests: BTreeMap<String, f64>,
    wall: Duration,
    orders: usize,
    warmup_failed: usize,
}

impl Merged {
    fn of(rounds: Vec<Round>) -> Self {
        let mut m = Self::default();
        for r in rounds {
            m.wall += r.wall;
            m.warmup_failed += r.warmup_failed;
            m.orders += r.results.len();
            for (name, s) in r.cpu {
                *m.cpu.entry(name).or_default() += s;
            }
            for (op, n) in r.requests.into_iter().filter(|(_, n)| *n > 0.0) {
                *m.requests.entry(op).or_default() += n;
            }
            for result in r.results {
                match result {
                    Ok(s) => m.samples.push(s),
                    Err(e) => *m.errors.entry(e).or_insert(0) += 1,
                }
            }
        }
        m
    }
}

/// The figures of a run from its rounds, printed in one line.
async fn summarize(
    ctx: &Ctx,
    kind: Kind,
    c: usize,
    args: &Args,
    rounds: Vec<Round>,
) -> Result<Run> {
    let m = Merged::of(rounds);
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let completed = m.samples.len();
    let per_order = |totals: BTreeMap<String, f64>| {
        totals
            .into_iter()
            .map(|(k, v)| (k, v / completed.max(1) as f64))
            .collect::<BTreeMap<_, _>>()
    };
    let run = Run {
        kind,
        concurrency: c,
        orders: m.orders,
        completed,
        errors: m.errors,
        wall_seconds: m.wall.as_secs_f64(),
        throughput: completed as f64 / m.wall.as_secs_f64(),
        placement_ms: Percentiles::of(m.samples.iter().map(|s| ms(&s.place))),
        payment_ms: Percentiles::of(m.samples.iter().map(|s| ms(&s.pay))),
        end_to_end_ms: Percentiles::of(m.samples.iter().map(|s| ms(&(s.place + s.pay)))),
        history_events_per_order: history_events(ctx, &m.samples, args.history_samples).await,
        cpu_seconds_per_order: per_order(m.cpu),
        persistence_requests_per_order: per_order(m.requests),
        warmup_failed: m.warmup_failed,
        setup: None,
        workers: None,
        lock_hold_ms: None,
        ids: m.samples.into_iter().map(|s| s.id).collect(),
    };
    print_run(&run);
    Ok(run)
}

/// A run in one line, then its errors.
fn print_run(r: &Run) {
    println!(
        "{:>20} c={:<3} {:>7.1}/s  place p50 {:>6.1} ms  pay p50 {:>6.1} ms  e2e p99 {:>7.1} ms  {} ok, {} failed",
        r.kind.label(),
        r.concurrency,
        r.throughput,
        r.placement_ms.p50,
        r.payment_ms.p50,
        r.end_to_end_ms.p99,
        r.completed,
        r.orders - r.completed
    );
    for (e, n) in &r.errors {
        println!("{:>24} {n} × {e}", "");
    }
    if r.warmup_failed > 0 {
        println!("{:>24} {} warm-up order(s) failed", "", r.warmup_failed);
    }
}

/// The mean history length of a few closed workflows of the run.
async fn history_events(ctx: &Ctx, samples: &[Sample], n: usize) -> Option<f64> {
    let mut lengths = Vec::new();
    for s in samples.iter().take(n) {
        let id = std::slice::from_ref(&s.id);
        let patience = Duration::from_secs(30);
        if !testkit::check::unclosed_workflows(&ctx.client, id, patience)
            .await
            .is_empty()
        {
            continue;
        }
        let h = ctx
            .client
            .get_workflow_handle::<UntypedWorkflow>(s.id.as_str());
        if let Ok(d) = h.describe(WorkflowDescribeOptions::default()).await {
            lengths.push(d.history_length() as f64);
        }
    }
    (!lengths.is_empty()).then(|| lengths.iter().sum::<f64>() / lengths.len() as f64)
}

fn print_table(runs: &[Run]) {
    println!();
    println!(
        "{:<18} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "kind",
        "c",
        "orders/s",
        "vs floor",
        "place50",
        "place99",
        "pay50",
        "pay99",
        "e2e99",
        "events",
        "db ops",
        "cpu tmp",
        "cpu wrk",
        "cpu pg",
        "cpu api",
        "cpu bch"
    );
    for r in runs {
        let floor = runs
            .iter()
            .find(|f| f.kind == Kind::Floor && f.concurrency == r.concurrency);
        let ratio = floor.map_or("-".to_owned(), |f| {
            format!("{:.2}x", r.throughput / f.throughput)
        });
        let cpu = |k: &str| {
            r.cpu_seconds_per_order
                .get(k)
                .map_or("-".to_owned(), |v| format!("{:.1}ms", v * 1000.0))
        };
        println!(
            "{:<18} {:>4} {:>9.1} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.kind.label(),
            r.concurrency,
            r.throughput,
            ratio,
            r.placement_ms.p50,
            r.placement_ms.p99,
            r.payment_ms.p50,
            r.payment_ms.p99,
            r.end_to_end_ms.p99,
            r.history_events_per_order
                .map_or("-".to_owned(), |e| format!("{e:.0}")),
            match r.persistence_requests_per_order.values().sum::<f64>() {
                0.0 => "-".to_owned(),
                n => format!("{n:.1}"),
            },
            cpu("temporal"),
            cpu("worker"),
            cpu("postgres"),
            cpu("api"),
            cpu("bench"),
        );
    }
    // The targets of the performance issue, against the like-for-like floor.
    println!();
    for r in runs.iter().filter(|r| r.kind != Kind::Floor) {
        let Some(f) = runs
            .iter()
            .find(|f| f.kind == Kind::Floor && f.concurrency == r.concurrency)
        else {
            continue;
        };
        println!(
            "{:<18} c={:<3} throughput {:.2}x floor, placement p50 {:.2}x, payment p50 {:.2}x",
            r.kind.label(),
            r.concurrency,
            r.throughput / f.throughput,
            r.placement_ms.p50 / f.placement_ms.p50,
            r.payment_ms.p50 / f.payment_ms.p50,
        );
    }
}

/// The scale-out runs, one line per setup.
fn print_scale(scale: &[Run]) {
    if scale.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "scale-out (client)",
        "c",
        "orders/s",
        "place50",
        "place99",
        "pay50",
        "pay99",
        "cpu tmp",
        "cpu wrk",
        "cpu pg",
        "cpu all",
        "lock hold"
    );
    for r in scale {
        let cpu = |k: &str| r.cpu_seconds_per_order.get(k).copied().unwrap_or(0.0) * 1000.0;
        let all: f64 = r.cpu_seconds_per_order.values().sum::<f64>() * 1000.0;
        println!(
            "{:<24} {:>4} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>7.1}ms {:>9}",
            r.setup.as_deref().unwrap_or("-"),
            r.concurrency,
            r.throughput,
            r.placement_ms.p50,
            r.placement_ms.p99,
            r.payment_ms.p50,
            r.payment_ms.p99,
            cpu("temporal"),
            cpu("worker"),
            cpu("postgres"),
            all,
            r.lock_hold_ms
                .map_or("-".to_owned(), |ms| format!("{ms:.2}ms")),
        );
    }
}
