//! One cell of the matrix: a stack of its own with the crashpoints worker, the scenario run up
//! to the armed point (where the worker aborts), the interfering event while it is down, the
//! restart, then every caller's final answer, the order ended if it still waits, the workflows
//! closed, and the checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use temporalio_client::WorkflowCancelOptions;
use tokio::task::JoinHandle;
use workflows::OrderWorkflow;

use super::checks;
use super::flow::{Arm, CALL_PATIENCE, Caller, Flow, Shared, Shop};
use super::table::{Cell, Event, Scenario};
use crate::env::{CRASH_MARK, Env, Stack, WorkerSpec};
use crate::scenarios::wait_for;

/// The payment timeout of a cell that is not about the timer: it never fires.
const LONG_TIMEOUT: Duration = Duration::from_secs(600);
/// A cell whose event is the payment timer: short enough to pass while the worker is down,
/// long enough for S2's and S5's second order to be paid before A's payment.
const TIMER_TIMEOUT: Duration = Duration::from_secs(6);
/// S4's payment timeout: the timer is the scenario.
const EXPIRY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the scenario may take to reach its point.
const REACH: Duration = Duration::from_secs(40);
/// Time for a request sent while the worker is down to reach Temporal before the restart.
const EVENT_SETTLE: Duration = Duration::from_secs(2);
/// How long the data platform stays away after the restart.
const PLATFORM_DOWN: Duration = Duration::from_secs(5);
/// How long the workflows may take to close once the callers have their answers.
const CLOSE_PATIENCE: Duration = Duration::from_secs(45);
/// A bound only a hang reaches.
pub const CELL_LIMIT: Duration = Duration::from_secs(300);

/// What one cell found.
#[derive(Debug)]
pub struct CellResult {
    pub n: usize,
    pub cell: Cell,
    /// The worker's abort line, when the point was reached.
    pub reached: Option<String>,
    /// Broken promises of the contract.
    pub violations: Vec<String>,
    /// The cell could not do what it set out to (the point never reached, a set-up step
    /// failed, the worker died unasked).
    pub broken: Vec<String>,
    pub notes: Vec<String>,
    pub secs: f64,
    pub details: Value,
}

impl CellResult {
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.broken.is_empty()
    }

    /// Every failure, violations first.
    pub fn failures(&self) -> impl Iterator<Item = &String> {
        self.violations.iter().chain(&self.broken)
    }
}

pub async fn run(stack: &Stack, worker: &Path, cell: Cell, n: usize) -> CellResult {
    let started = Instant::now();
    let mut out = CellResult {
        n,
        cell,
        reached: None,
        violations: Vec::new(),
        broken: Vec::new(),
        notes: Vec::new(),
        secs: 0.0,
        details: Value::Null,
    };
    match tokio::time::timeout(CELL_LIMIT, drive(stack, worker, &mut out)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => out.broken.push(format!("[harness] {e:#}")),
        Err(_) => out.broken.push(format!(
            "[harness] the cell did not finish in {} s",
            CELL_LIMIT.as_secs()
        )),
    }
    out.secs = started.elapsed().as_secs_f64();
    out
}

fn payment_timeout(cell: Cell) -> Duration {
    match (cell.scenario, cell.event) {
        (Scenario::Expiry, _) => EXPIRY_TIMEOUT,
        (_, Event::Timer) => TIMER_TIMEOUT,
        _ => LONG_TIMEOUT,
    }
}

async fn start(stack: &Stack, worker: &Path, out: &CellResult) -> Result<(Env, Arm)> {
    let name = format!("8-{:03}", out.n);
    let dir = stack.paths.dir.join("crash");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{name}.crash"));
    for stale in [file.clone(), file.with_extension("fired")] {
        let _ = std::fs::remove_file(stale);
    }
    let spec = WorkerSpec {
        bin: worker.to_path_buf(),
        env: vec![("CRASH_FILE".into(), file.display().to_string())],
    };
    let env = Env::with_worker(stack, &name, payment_timeout(out.cell), spec).await?;
    let arm = Arm {
        file,
        point: out.cell.point,
        in_placement: out.cell.in_placement(),
    };
    Ok((env, arm))
}

async fn drive(stack: &Stack, worker: &Path, out: &mut CellResult) -> Result<()> {
    let (mut env, arm) = start(stack, worker, out).await?;
    let shop = super::flow::shop(&env, out.cell.scenario).await?;
    let caller = Caller {
        api: env.api.clone(),
        db: env.db.clone(),
        state: Shared::default(),
    };
    let flow = tokio::spawn(
        Flow {
            caller: caller.clone(),
            scenario: out.cell.scenario,
            shop,
            arm: arm.clone(),
        }
        .run(),
    );
    out.reached = wait_reached(&env, &caller.state).await;
    let mut waiters = Vec::new();
    match out.reached.clone() {
        Some(line) => {
            if !abort_matches(&line, out.cell.point) {
                out.broken
                    .push(format!("[harness] armed {} but: {line}", out.cell.point));
            }
            waiters = strike(&mut env, out.cell, &line, &caller, &shop).await?;
        }
        None => {
            // Nothing must fire later, while the cell settles with nobody to restart it.
            arm.disarm();
            out.broken.push(format!(
                "[not reached] the worker never aborted at {}",
                out.cell.point
            ));
        }
    }
    settle(flow, waiters).await;
    end_if_pending(&env, out.cell, &caller, &shop).await;
    judge(env, &caller.state, out).await
}

/// Waits for the worker's abort. Gives up once the scenario is over without it (the flow done
/// and A finished or never recorded) or after [`REACH`].
async fn wait_reached(env: &Env, state: &Shared) -> Option<String> {
    let deadline = Instant::now() + REACH;
    let mut over_since: Option<Instant> = None;
    while Instant::now() < deadline {
        if let Some(line) = env.aborts().into_iter().next() {
            return Some(line);
        }
        let (done, order) = {
            let s = state.lock();
            (s.done, s.order.clone())
        };
        if done && finished(env, order.as_deref()).await {
            // A grace period for an abort the supervisor has not noticed yet.
            let since = *over_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                return None;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Whether A has nothing more to do: not recorded, or final (and delivered, if completed).
async fn finished(env: &Env, order: Option<&str>) -> bool {
    let Some(order) = order else { return true };
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT status, platform_notified_at IS NOT NULL FROM orders WHERE id = $1")
            .bind(order)
            .fetch_optional(&env.db)
            .await
            .ok()
            .flatten();
    match row {
        None => true,
        Some((s, notified)) => matches!(s.as_str(), "CANCELED" | "EXPIRED") || notified,
    }
}

/// The worker is down at the point: the event, then the restart.
async fn strike(
    env: &mut Env,
    cell: Cell,
    line: &str,
    caller: &Caller,
    shop: &Shop,
) -> Result<Vec<JoinHandle<()>>> {
    let order = order_of(env, line, &caller.state).await?;
    caller.state.lock().order.get_or_insert(order.clone());
    let waiters = inject(env, cell, &order, caller, shop).await?;
    env.start_worker().await?;
    if cell.event == Event::PlatformDown {
        tokio::time::sleep(PLATFORM_DOWN).await;
        env.receiver.resume().await?;
    }
    Ok(waiters)
}

/// A's order id: from the abort line, from its placement's answer, or (a placement point that
/// names no order) the one workflow on the cell's task queue.
async fn order_of(env: &Env, line: &str, state: &Shared) -> Result<String> {
    let named = line
        .split("(order ")
        .nth(1)
        .map(|s| s.trim_end_matches(')').trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(id) = named.or_else(|| state.lock().order.clone()) {
        return Ok(id);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = checks::workflow_ids(env, None).await?;
        if let [id] = ids.as_slice() {
            return Ok(id.clone());
        }
        if Instant::now() > deadline {
            anyhow::bail!("cannot tell the order of the abort: workflows {ids:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The interfering event, while the worker is down. Requests a client sends are answered in
/// the background (they wait for the worker); the others are done when this returns.
async fn inject(
    env: &mut Env,
    cell: Cell,
    order: &str,
    caller: &Caller,
    shop: &Shop,
) -> Result<Vec<JoinHandle<()>>> {
    let (user, mut waiters) = (shop.a_user, Vec::new());
    match cell.event {
        Event::None => {}
        Event::OperatorCancel => {
            let options = WorkflowCancelOptions::builder()
                .reason("crash matrix: an operator's cancel")
                .build();
            env.client
                .get_workflow_handle::<OrderWorkflow>(order)
                .cancel(options)
                .await
                .context("the operator's cancel")?;
        }
        Event::UserCancel | Event::SecondPay => {
            let (c, order) = (caller.clone(), order.to_owned());
            let second = cell.event == Event::SecondPay;
            waiters.push(tokio::spawn(async move {
                if second {
                    c.pay("second pay of A", user, &order, "A-pay-event").await;
                } else {
                    c.cancel("user cancel of A", user, &order).await;
                }
            }));
            tokio::time::sleep(EVENT_SETTLE).await;
        }
        Event::Timer => {
            let placed = caller.state.lock().placed_at.unwrap_or_else(Instant::now);
            let due = placed + payment_timeout(cell) + Duration::from_millis(1500);
            tokio::time::sleep_until(due.into()).await;
        }
        Event::PlatformDown => env.receiver.stop().await,
        Event::Terminate => {
            let found = super::terminate::terminate_and_repair(env, order).await?;
            caller.state.lock().violations.extend(found);
        }
    }
    Ok(waiters)
}

/// Every caller's final answer (each repeats on 503 for at most [`CALL_PATIENCE`]).
async fn settle(flow: JoinHandle<()>, waiters: Vec<JoinHandle<()>>) {
    // The flow asks up to four questions in turn.
    let bound = CALL_PATIENCE * 4 + Duration::from_secs(10);
    for task in std::iter::once(flow).chain(waiters) {
        let _ = tokio::time::timeout(bound, task).await;
    }
}

/// An order still `PENDING` once everything settled is ended as a user would, so that its
/// workflow closes (after its own timer, when that is near). That cancel is a caller too.
async fn end_if_pending(env: &Env, cell: Cell, caller: &Caller, shop: &Shop) {
    let Some(order) = caller.state.lock().order.clone() else {
        return;
    };
    let pending = || async { status_of(env, &order).await.as_deref() == Some("PENDING") };
    if payment_timeout(cell) < LONG_TIMEOUT {
        wait_for(payment_timeout(cell) + Duration::from_secs(5), || async {
            !pending().await
        })
        .await;
    }
    if pending().await && checks::running(env, &order).await {
        caller
            .cancel("cancel A (to end it)", shop.a_user, &order)
            .await;
    }
}

async fn status_of(env: &Env, order: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order)
        .fetch_optional(&env.db)
        .await
        .ok()
        .flatten()
}

/// The workflows closed, then every check; `Env::finish` adds CONTRACT §6 and the platform's.
async fn judge(env: Env, state: &Shared, out: &mut CellResult) -> Result<()> {
    let order = state.lock().order.clone();
    let ids = checks::workflow_ids(&env, order.as_deref()).await?;
    let outcomes = checks::outcomes(&env, &ids, CLOSE_PATIENCE).await;
    let rows: BTreeMap<String, String> = env.order_statuses().await?;
    let final_status = order.as_ref().and_then(|o| rows.get(o)).cloned();
    let (calls, broken, found) = {
        let s = state.lock();
        (s.calls.clone(), s.broken.clone(), s.violations.clone())
    };
    out.violations.extend(found);
    let terminated = out.cell.event == Event::Terminate;
    out.violations.extend(checks::outcome_violations(
        &outcomes,
        &rows,
        CLOSE_PATIENCE,
        terminated,
    ));
    out.violations.extend(checks::caller_violations(
        &calls,
        final_status.as_deref(),
        terminated,
    ));
    out.violations
        .extend(checks::charge_violations(&env).await?);
    out.broken.extend(broken);
    out.details = json!({
        "order": order,
        "abort": out.reached,
        "calls": calls.iter().map(|c| c.describe()).collect::<Vec<_>>(),
        "workflows": outcomes.iter().map(|(id, c)| (id.clone(), c.describe())).collect::<BTreeMap<_, _>>(),
        "rows": rows,
        "worker_log": env.worker_log.display().to_string(),
    });
    let verdict = env.finish(Duration::from_secs(5)).await?;
    out.violations.extend(verdict.violations);
    out.broken.extend(verdict.broken);
    out.notes.extend(verdict.notes);
    Ok(())
}

/// The crashpoints worker, built by scripts/chaos.sh beside the standard one.
pub fn crash_worker(bin_dir: &Path) -> Result<PathBuf> {
    let worker = bin_dir.join("worker-crashpoints");
    if !worker.exists() {
        anyhow::bail!(
            "{} is missing: build it with `cargo build -p worker --features crashpoints --bin \
             worker-crashpoints` (scripts/chaos.sh does)",
            worker.display(),
        );
    }
    Ok(worker)
}

/// The abort line's point must be the cell's.
fn abort_matches(line: &str, point: &str) -> bool {
    line.split(CRASH_MARK)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        == Some(point)
}
