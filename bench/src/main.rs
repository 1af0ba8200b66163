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
    /// How orders are sent.
    #[arg(long, value_enum, default_value_t = Via::Both)]
    via: Via,
    /// Skip the floor.
    #[arg(long)]
    no_floor: bool,
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
    /// Closed workflows per run whose history length is read.
    #[arg(long, default_value_t = 5)]
    history_samples: usize,
    /// Where results.json and chart.png go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
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

struct Ctx {
    settings: Settings,
    db: sqlx::PgPool,
    client: Client,
    service: OrderService,
    /// Where the floor runs: a task queue of its own, which only the floor worker polls.
    floor_task_queue: String,
    /// The HTTP API of the running stack (`testkit`'s client, as the tests and chaos use).
    api: Api,
    shop: Shop,
    next: AtomicUsize,
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
        .map(|w| procs.with_pid("worker", w.pid()));
    println!(
        "bench: {} orders per run at concurrency {:?}; processes: {}",
        args.orders,
        args.concurrency,
        procs.describe()
    );
    let kinds = kinds(&ctx, &args).await?;
    let mut runs = Vec::new();
    for &c in &args.concurrency {
        for &kind in &kinds {
            let procs = match (kind, &floor_procs) {
                (Kind::Floor, Some(floor_procs)) => floor_procs,
                _ => &procs,
            };
            runs.push(run(&ctx, procs, kind, c, &args).await?);
        }
    }
    if let Some(w) = floor_worker {
        w.stop()?;
    }
    let (unfinished, check) = verify(&ctx, &runs).await?;
    report(&ctx, &args, &runs, &unfinished, &check)?;
    verdict(&runs, &unfinished, &check)
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
    Ok(Ctx {
        floor_task_queue: floor::task_queue(&settings),
        settings,
        db,
        client,
        service,
        api,
        shop,
        next: AtomicUsize::new(0),
    })
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
async fn verify(ctx: &Ctx, runs: &[Run]) -> Result<(Vec<String>, starter::check::CheckReport)> {
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
        "invariants": { "ok": check.ok, "violations": check.violations, "checked": check.checked },
        "unfinished_orders": unfinished,
    });
    let json_path = args.out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let png_path = args.out_dir.join("chart.png");
    if let Err(e) = chart::draw(&png_path, runs) {
        eprintln!("warning: no chart: {e:#}");
    }
    print_table(runs);
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
fn verdict(runs: &[Run], unfinished: &[String], check: &starter::check::CheckReport) -> Result<()> {
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

/// The n-th order: a user round robin, one to three lines over distinct products.
fn order_for(shop: &Shop, n: usize) -> (usize, Vec<(ProductId, i64)>) {
    let user = n % shop.users.len();
    let mut lines: Vec<(ProductId, i64)> = Vec::new();
    for i in 0..1 + n % 3 {
        let product = shop.products[(n * 7 + i * 3) % shop.products.len()];
        // Distinct products only (the input rules forbid a product twice).
        if lines.iter().all(|(p, _)| *p != product) {
            lines.push((product, 1 + (n + i) as i64 % 2));
        }
    }
    (user, lines)
}

/// One order (or floor iteration) of `kind`, timed.
async fn one(ctx: &Ctx, kind: Kind) -> Result<Sample, String> {
    let n = ctx.next.fetch_add(1, Ordering::Relaxed);
    match kind {
        Kind::Floor => floor_once(ctx).await,
        Kind::OrdersTemporal => order_via_temporal(ctx, n).await,
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
async fn order_via_temporal(ctx: &Ctx, n: usize) -> Result<Sample, String> {
    let (user, lines) = order_for(&ctx.shop, n);
    let id = OrderService::new_order_id();
    let t0 = Instant::now();
    ctx.service
        .place(&id, ctx.shop.users[user].0, order_request(&lines, None))
        .await
        .map_err(|e| code_of_service(&e))?;
    let place = t0.elapsed();
    let t1 = Instant::now();
    let order = ctx
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
    let (user, lines) = order_for(&ctx.shop, n);
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

async fn run(
    ctx: &Arc<Ctx>,
    procs: &procs::Procs,
    kind: Kind,
    c: usize,
    args: &Args,
) -> Result<Run> {
    // Warm up connections and caches without measuring.
    let warmup_failed = futures::stream::iter(0..args.warmup)
        .map(|_| {
            let ctx = ctx.clone();
            async move { one(&ctx, kind).await }
        })
        .buffer_unordered(c)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;

    let bar = ProgressBar::new(args.orders as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} c={c}", kind.label()));
    let cpu_before = procs.cpu_seconds();
    let started = Instant::now();
    let results: Vec<Result<Sample, String>> = futures::stream::iter(0..args.orders)
        .map(|_| {
            let ctx = ctx.clone();
            let bar = bar.clone();
            async move {
                let r = one(&ctx, kind).await;
                bar.inc(1);
                r
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let wall = started.elapsed();
    let cpu_after = procs.cpu_seconds();
    bar.finish_and_clear();

    let mut errors = BTreeMap::new();
    let mut samples = Vec::new();
    for r in results {
        match r {
            Ok(s) => samples.push(s),
            Err(e) => *errors.entry(e).or_insert(0) += 1,
        }
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let completed = samples.len();
    let history = history_events(ctx, &samples, args.history_samples).await;
    let cpu = cpu_after
        .iter()
        .filter_map(|(name, after)| {
            let before = cpu_before.get(name)?;
            Some((name.clone(), (after - before) / completed.max(1) as f64))
        })
        .collect();
    let result = Run {
        kind,
        concurrency: c,
        orders: args.orders,
        completed,
        errors,
        wall_seconds: wall.as_secs_f64(),
        throughput: completed as f64 / wall.as_secs_f64(),
        placement_ms: Percentiles::of(samples.iter().map(|s| ms(&s.place))),
        payment_ms: Percentiles::of(samples.iter().map(|s| ms(&s.pay))),
        end_to_end_ms: Percentiles::of(samples.iter().map(|s| ms(&(s.place + s.pay)))),
        history_events_per_order: history,
        cpu_seconds_per_order: cpu,
        warmup_failed,
        ids: samples.into_iter().map(|s| s.id).collect(),
    };
    println!(
        "{:>20} c={c:<3} {:>7.1}/s  place p50 {:>6.1} ms  pay p50 {:>6.1} ms  e2e p99 {:>7.1} ms  {} ok, {} failed",
        kind.label(),
        result.throughput,
        result.placement_ms.p50,
        result.payment_ms.p50,
        result.end_to_end_ms.p99,
        completed,
        args.orders - completed
    );
    for (e, n) in &result.errors {
        println!("{:>24} {n} × {e}", "");
    }
    if warmup_failed > 0 {
        println!("{:>24} {warmup_failed} warm-up order(s) failed", "");
    }
    Ok(result)
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
        "{:<18} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
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
            "{:<18} {:>4} {:>9.1} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
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
