//! The load: one order (or floor iteration) of each kind, timed; rounds of them at a
//! concurrency, with the processes' CPU and the server's persistence requests over each round;
//! and a run's figures from its rounds.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
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

use crate::args::Args;
use crate::floor::{FloorShape, FloorWorkflow, ORDER_SHAPE, ORDER_SHAPE_REMOTE};
use crate::stats::Percentiles;
use crate::{procs, prom};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The orchestration floor, through the Temporal client.
    Floor,
    /// Orders through the Temporal client (`OrderService`, as the CLI does).
    OrdersTemporal,
    /// Orders through the HTTP API.
    OrdersApi,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::OrdersTemporal => "orders (client)",
            Kind::OrdersApi => "orders (HTTP API)",
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub(crate) kind: Kind,
    pub(crate) concurrency: usize,
    pub(crate) orders: usize,
    pub(crate) completed: usize,
    pub(crate) errors: BTreeMap<String, usize>,
    pub(crate) wall_seconds: f64,
    pub(crate) throughput: f64,
    pub(crate) placement_ms: Percentiles,
    pub(crate) payment_ms: Percentiles,
    pub(crate) end_to_end_ms: Percentiles,
    pub(crate) history_events_per_order: Option<f64>,
    pub(crate) cpu_seconds_per_order: BTreeMap<String, f64>,
    /// Unmeasured warm-up orders that failed: failures all the same.
    pub(crate) warmup_failed: usize,
    /// The scale-out setup (`None` for the runs on the stack's own worker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) setup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workers: Option<usize>,
    /// The Temporal server's persistence requests per order, by operation (its own metrics).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) persistence_requests_per_order: BTreeMap<String, f64>,
    /// The mean time a stock deduction held its products' row locks (scale-out runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lock_hold_ms: Option<f64>,
    /// The measured orders that completed (their workflows are checked after the runs).
    #[serde(skip)]
    pub(crate) ids: Vec<String>,
}

/// What one order (or floor iteration) took.
pub(crate) struct Sample {
    pub(crate) id: String,
    pub(crate) place: Duration,
    pub(crate) pay: Duration,
}

/// The bench's customers (each with a token of theirs) and products.
pub(crate) struct Shop {
    pub(crate) users: Vec<(UserId, String)>,
    pub(crate) products: Vec<ProductId>,
}

/// Where orders through the Temporal client go: the stack's worker, or a scale-out setup's.
pub(crate) struct Target {
    pub(crate) service: OrderService,
    /// The products the lines are spread over.
    pub(crate) products: Vec<ProductId>,
}

pub(crate) struct Ctx {
    pub(crate) settings: Settings,
    pub(crate) db: sqlx::PgPool,
    pub(crate) client: Client,
    /// The stack's task queue and every product.
    pub(crate) stack: Arc<Target>,
    /// Where the floor runs: a task queue of its own, which only the floor worker polls.
    pub(crate) floor_task_queue: String,
    /// The HTTP API of the running stack (`testkit`'s client, as the tests and chaos use).
    pub(crate) api: Api,
    pub(crate) shop: Shop,
    pub(crate) next: AtomicUsize,
    /// Where the Temporal server serves its metrics, if it does.
    pub(crate) server_metrics: Option<std::net::SocketAddr>,
}

/// The Temporal server's persistence requests so far, by operation (empty without metrics).
pub(crate) async fn persistence_requests(ctx: &Ctx) -> BTreeMap<String, f64> {
    let Some(addr) = ctx.server_metrics else {
        return BTreeMap::new();
    };
    match prom::scrape(addr).await {
        Ok(text) => prom::by_label(&text, "persistence_requests", "operation"),
        Err(_) => BTreeMap::new(),
    }
}

/// The n-th order: a user round robin, one to three lines over distinct `products`.
pub(crate) fn order_for(
    shop: &Shop,
    products: &[ProductId],
    n: usize,
) -> (usize, Vec<(ProductId, i64)>) {
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
pub(crate) async fn one(ctx: &Ctx, kind: Kind, target: &Target) -> Result<Sample, String> {
    let n = ctx.next.fetch_add(1, Ordering::Relaxed);
    match kind {
        Kind::Floor => floor_once(ctx).await,
        Kind::OrdersTemporal => order_via_temporal(ctx, target, n).await,
        Kind::OrdersApi => order_via_api(ctx, n).await,
    }
}

/// The floor: its placement and its payment, updates of a workflow that does no work.
pub(crate) async fn floor_once(ctx: &Ctx) -> Result<Sample, String> {
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
pub(crate) async fn order_via_temporal(
    ctx: &Ctx,
    target: &Target,
    n: usize,
) -> Result<Sample, String> {
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
pub(crate) async fn order_via_api(ctx: &Ctx, n: usize) -> Result<Sample, String> {
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
pub(crate) fn code_or(reply: &testkit::Reply, otherwise: &str) -> String {
    match reply.code() {
        "" => otherwise.to_owned(),
        code => code.to_owned(),
    }
}

/// The shape the floor mirrors: the orders' (`STEP_MODE`, as the API and this bench read it).
pub(crate) fn order_shape(settings: &Settings) -> FloorShape {
    if settings.remote_steps {
        ORDER_SHAPE_REMOTE
    } else {
        ORDER_SHAPE
    }
}

pub(crate) fn code_of_service(e: &starter::ServiceError) -> String {
    match e {
        starter::ServiceError::Order(e) => e.code().to_owned(),
        other => other.to_string(),
    }
}

/// One round of a run: its orders, timed, and the processes' CPU seconds over it.
pub(crate) struct Round {
    pub(crate) results: Vec<Result<Sample, String>>,
    pub(crate) wall: Duration,
    pub(crate) cpu: BTreeMap<String, f64>,
    /// The Temporal server's persistence requests over the round, by operation.
    pub(crate) requests: BTreeMap<String, f64>,
    pub(crate) warmup_failed: usize,
}

/// `n` orders of `kind` at concurrency `c`, after `warmup` unmeasured ones.
pub(crate) async fn round(
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
pub(crate) async fn run(
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
pub(crate) async fn interleaved(
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
pub(crate) struct Merged {
    pub(crate) samples: Vec<Sample>,
    pub(crate) errors: BTreeMap<String, usize>,
    pub(crate) cpu: BTreeMap<String, f64>,
    pub(crate) requests: BTreeMap<String, f64>,
    pub(crate) wall: Duration,
    pub(crate) orders: usize,
    pub(crate) warmup_failed: usize,
}

impl Merged {
    pub(crate) fn of(rounds: Vec<Round>) -> Self {
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
pub(crate) async fn summarize(
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
pub(crate) fn print_run(r: &Run) {
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
pub(crate) async fn history_events(ctx: &Ctx, samples: &[Sample], n: usize) -> Option<f64> {
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
