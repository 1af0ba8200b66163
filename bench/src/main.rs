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
use domain::{LineRequest, PlaceOrderRequest, Shipping};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use runtime::Settings;
use serde::Serialize;
use serde_json::json;
use starter::OrderService;
use starter::token::{self, Role};
use temporalio_client::{
    Client, UntypedWorkflow, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowUpdateWithStartOptions,
};

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

struct Shop {
    users: Vec<(i64, String)>,
    products: Vec<i64>,
}

struct Ctx {
    settings: Settings,
    client: Client,
    service: OrderService,
    /// Where the floor runs: a task queue of its own, which only the floor worker polls.
    floor_task_queue: String,
    http: reqwest::Client,
    api: String,
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

async fn bench(args: Args) -> Result<()> {
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
    let shop = make_shop(&db, &settings, args.users, args.products).await?;
    let ctx = Arc::new(Ctx {
        floor_task_queue: floor::task_queue(&settings),
        api: format!("http://{}", settings.http_addr),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?,
        settings,
        client,
        service,
        shop,
        next: AtomicUsize::new(0),
    });
    let procs = procs::Procs::from_pid_dir(&args.pid_dir);
    std::fs::create_dir_all(&args.out_dir)?;
    // The floor's worker, for the floor's runs only: stopped after them, or dropped, which stops
    // it, on an error or a Ctrl-C (and should this process die, its standard input closes).
    let floor_worker = if args.no_floor {
        None
    } else {
        Some(
            FloorWorker::start(
                &ctx.floor_task_queue,
                &args.out_dir.join("floor-worker.log"),
            )
            .await?,
        )
    };
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
    if let Some(w) = &floor_worker {
        println!(
            "bench: the floor on task queue {} by its own worker, pid {} (log: {})",
            ctx.floor_task_queue,
            w.pid(),
            w.log().display()
        );
    }

    let mut kinds = Vec::new();
    if !args.no_floor {
        kinds.push(Kind::Floor);
    }
    if matches!(args.via, Via::Temporal | Via::Both) {
        kinds.push(Kind::OrdersTemporal);
    }
    if matches!(args.via, Via::Api | Via::Both) {
        if !api_up(&ctx).await {
            bail!(
                "the HTTP API does not answer at {} (run `make up`)",
                ctx.api
            );
        }
        kinds.push(Kind::OrdersApi);
    }

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

    // A payment answers before the data platform is told: wait for every measured order's
    // workflow to close, then check CONTRACT §6.
    let ids = runs
        .iter()
        .filter(|r| r.kind != Kind::Floor)
        .flat_map(|r| r.ids.iter().cloned())
        .collect();
    let unfinished = unfinished(&ctx, &db, ids).await?;
    let check = starter::check::run(&db, Some(&ctx.client)).await?;

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
    if let Err(e) = chart::draw(&png_path, &runs) {
        eprintln!("warning: no chart: {e:#}");
    }
    print_table(&runs);
    println!();
    println!(
        "results: {}  chart: {}",
        json_path.display(),
        png_path.display()
    );
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
    // Figures of runs where orders failed measure something else: the run fails.
    let failed: usize = runs
        .iter()
        .map(|r| r.orders - r.completed + r.warmup_failed)
        .sum();
    for id in &unfinished {
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
async fn unfinished(ctx: &Ctx, db: &sqlx::PgPool, ids: Vec<String>) -> Result<Vec<String>> {
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let completed: Vec<String> = futures::stream::iter(ids.iter().cloned())
        .map(|id| async move { (closed(ctx, &id, until).await == Some(true)).then_some(id) })
        .buffer_unordered(32)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let done: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE id = ANY($1) \
         AND status = 'COMPLETED' AND platform_notified_at IS NOT NULL",
    )
    .bind(&completed)
    .fetch_all(db)
    .await?
    .into_iter()
    .collect();
    Ok(ids.into_iter().filter(|id| !done.contains(id)).collect())
}

async fn api_up(ctx: &Ctx) -> bool {
    ctx.http
        .get(format!("{}/health", ctx.api))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Customers with points that never run out and products with stock that never does, so that
/// every order of the run completes and the figures measure the saga, not refusals.
async fn make_shop(
    db: &sqlx::PgPool,
    settings: &Settings,
    users: usize,
    products: usize,
) -> Result<Shop> {
    let mut shop = Shop {
        users: Vec::new(),
        products: Vec::new(),
    };
    for i in 0..users.max(1) {
        let id =
            store::db::create_user(db, &format!("bench customer {i}"), 1_000_000_000_000).await?;
        let t = token::mint(
            &settings.auth_secret,
            &id.to_string(),
            Role::Customer,
            Duration::from_secs(86_400),
        )?;
        shop.users.push((id, t));
    }
    for i in 0..products.max(1) {
        let price = 1_000 + 500 * (i as i64 % 9);
        shop.products.push(
            store::db::create_product(db, &format!("bench product {i}"), price, 1_000_000_000)
                .await?,
        );
    }
    Ok(shop)
}

/// The n-th order: a user round robin, one to three lines over distinct products.
fn order_for(shop: &Shop, n: usize) -> (usize, PlaceOrderRequest) {
    let user = n % shop.users.len();
    let lines = 1 + n % 3;
    let items = (0..lines)
        .map(|i| LineRequest {
            product_id: shop.products[(n * 7 + i * 3) % shop.products.len()],
            quantity: 1 + (n + i) as i64 % 2,
        })
        .collect::<Vec<_>>();
    // Distinct products only (the input rules forbid a product twice).
    let mut seen = std::collections::HashSet::new();
    let items = items
        .into_iter()
        .filter(|l| seen.insert(l.product_id))
        .collect();
    (
        user,
        PlaceOrderRequest {
            items,
            coupon_id: None,
            shipping: Shipping {
                recipient: "Bench Customer".into(),
                address: "1 Load Test-ro, Seoul".into(),
                phone: "010-0000-0000".into(),
            },
        },
    )
}

async fn one(ctx: &Ctx, kind: Kind) -> Result<Sample, String> {
    let n = ctx.next.fetch_add(1, Ordering::Relaxed);
    match kind {
        Kind::Floor => {
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
        Kind::OrdersTemporal => {
            let (user, req) = order_for(&ctx.shop, n);
            let id = OrderService::new_order_id();
            let t0 = Instant::now();
            ctx.service
                .place(&id, ctx.shop.users[user].0, req)
                .await
                .map_err(|e| code_of_service(&e))?;
            let place = t0.elapsed();
            let t1 = Instant::now();
            let order = ctx
                .service
                .pay(&id)
                .await
                .map_err(|e| code_of_service(&e))?;
            if order.status != domain::OrderStatus::Completed {
                return Err(format!("paid but {}", order.status));
            }
            Ok(Sample {
                id,
                place,
                pay: t1.elapsed(),
            })
        }
        Kind::OrdersApi => {
            let (user, req) = order_for(&ctx.shop, n);
            let token = &ctx.shop.users[user].1;
            let t0 = Instant::now();
            let placed = ctx
                .http
                .post(format!("{}/api/v1/orders", ctx.api))
                .bearer_auth(token)
                .json(&req)
                .send()
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            let status = placed.status();
            let body: serde_json::Value =
                placed.json().await.map_err(|e| format!("HTTP body: {e}"))?;
            if status.as_u16() != 201 {
                return Err(body["code"]
                    .as_str()
                    .unwrap_or("placement failed")
                    .to_owned());
            }
            let place = t0.elapsed();
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            let t1 = Instant::now();
            let paid = ctx
                .http
                .post(format!("{}/api/v1/payments", ctx.api))
                .bearer_auth(token)
                .json(&json!({ "order_id": id }))
                .send()
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            let status = paid.status();
            let body: serde_json::Value =
                paid.json().await.map_err(|e| format!("HTTP body: {e}"))?;
            if status.as_u16() != 200 || body["status"] != "COMPLETED" {
                return Err(body["code"].as_str().unwrap_or("payment failed").to_owned());
            }
            Ok(Sample {
                id,
                place,
                pay: t1.elapsed(),
            })
        }
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
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        if closed(ctx, &s.id, until).await.is_none() {
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

/// Waits until workflow `id` (an order's or the floor's) closes, at most until `until`:
/// `Some(true)` when it completed, `Some(false)` when it closed otherwise.
async fn closed(ctx: &Ctx, id: &str, until: tokio::time::Instant) -> Option<bool> {
    let handle = ctx.client.get_workflow_handle::<UntypedWorkflow>(id);
    let result = tokio::time::timeout_at(
        until,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .ok()?;
    Some(result.is_ok())
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
