//! Scenario 3: the Temporal dev server is killed mid-run and started again on the same SQLite
//! file. Payments in flight resume and finish, unpaid orders whose payment deadline passed
//! while it was down still expire (their timers fire), the worker and the API reconnect by
//! themselves, and while it is down the API answers 503, never a 500.

use domain::{ProductId, UserId};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::Method;
use serde_json::json;
use starter::OrderService;
use testkit::shop::{Shop, order_body, order_request};
use testkit::{Answer, Api};
use tokio::task::JoinHandle;

use super::{
    Figures, Outcome, Payments, Settled, Tally, expect_status, place_all, scarce_shop, simple_plan,
    steps_done, wait_for,
};
use crate::env::{Env, Stack};

/// How big the run is.
struct Sizes {
    /// Unpaid orders whose deadline (`timeout`) passes while the server is down.
    expiring: usize,
    timeout: Duration,
    /// Payments in flight when the server dies, and orders placed after it is back.
    paying: usize,
    after: usize,
    downtime: Duration,
    /// Payments whose clients ask once and never again, of orders with `abandoned_timeout`.
    abandoned: usize,
    abandoned_timeout: Duration,
}

impl Sizes {
    /// What once lost a payment's update with the server (local steps ran inside the task
    /// that accepted it): payments whose clients ask once and never again, and the worker
    /// dying with the server, as when a host goes down. Half the payments are for a scarce
    /// product, so some are undone mid-crash.
    fn of(quick: bool) -> Self {
        let s = Duration::from_secs;
        if quick {
            Self {
                expiring: 4,
                timeout: s(4),
                paying: 10,
                after: 4,
                downtime: s(5),
                abandoned: 6,
                abandoned_timeout: s(15),
            }
        } else {
            Self {
                expiring: 10,
                timeout: s(8),
                paying: 40,
                after: 10,
                downtime: s(12),
                abandoned: 20,
                abandoned_timeout: s(30),
            }
        }
    }
}

/// `n` orders of one line each placed through `OrderService` with payment deadline `timeout`,
/// by the shop's customers in turn; `product` picks each one's product. Those placed
/// `PENDING`, with their customer; any other answer is a broken expectation of `what`.
async fn place_unpaid(
    env: &Env,
    shop: &Shop,
    n: usize,
    timeout: Duration,
    product: impl Fn(usize) -> ProductId,
    what: &str,
    broken: &mut Vec<String>,
) -> Vec<(UserId, String)> {
    let service = OrderService::new(
        env.client.clone(),
        env.db.clone(),
        &env.settings.task_queue,
        timeout,
    )
    .with_remote_steps(env.settings.remote_steps);
    let mut placed = Vec::new();
    for i in 0..n {
        let id = OrderService::new_order_id();
        let user = shop.users[i % 5];
        let req = order_request(&[(product(i), 1)], None);
        match service.place(&id, user, req).await {
            Ok(o) if o.status == domain::OrderStatus::Pending => {
                placed.push((user, id.into_string()))
            }
            other => broken.push(format!("placing an order to {what}: {other:?}")),
        }
    }
    placed
}

/// Pays each order once, from a task of its own, and never asks again.
fn pay_once(api: &Api, orders: &[(UserId, String)]) -> Vec<JoinHandle<Answer>> {
    orders
        .iter()
        .map(|(user, id)| {
            let api = api.clone();
            let token = api.customer(*user);
            let body = json!({ "order_id": id });
            tokio::spawn(async move {
                api.send(
                    Method::POST,
                    "/api/v1/payments",
                    Some(&token),
                    Some(&body),
                    None,
                )
                .await
            })
        })
        .collect()
}

/// While the server is down, until `downtime` has passed since `killed`: rounds of health,
/// a placement (needs Temporal) and a read (does not), a few of each at once. Health and the
/// placement must be 503, the read 200.
async fn while_down(
    api: &Api,
    token: &str,
    product: ProductId,
    killed: Instant,
    downtime: Duration,
    broken: &mut Vec<String>,
) -> Tally {
    let mut outage = Tally::default();
    let mut i = 0;
    while killed.elapsed() < downtime {
        let round = futures::future::join_all((i..i + 6).map(|n| async move {
            let r = match n % 3 {
                0 => api.get("/health", None).await,
                1 => {
                    let body = order_body(&[(product, 1)], None);
                    let key = format!("t-outage-{n}");
                    api.post_keyed("/api/v1/orders", token, &body, &key).await
                }
                _ => api.get("/api/v1/orders?limit=5", Some(token)).await,
            };
            (n, r)
        }))
        .await;
        for (n, r) in round {
            match (&r, n % 3) {
                (Ok(r), 2) if r.status == 200 => {}
                (Ok(r), 0 | 1) if r.status == 503 && r.contract_error(&[]).is_ok() => {}
                (Ok(r), _) => broken.push(format!(
                    "while Temporal was down, request {n} got {} {}",
                    r.status, r.text
                )),
                (Err(e), _) => broken.push(format!(
                    "while Temporal was down, request {n} had no answer: {e}"
                )),
            }
            outage.add(&r);
        }
        i += 6;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    outage
}

/// The answers of the payments asked once during the crash: whatever befell them, each an
/// answer of the contract all the same.
async fn answers_to_one_shots(
    one_shots: Vec<JoinHandle<Answer>>,
    broken: &mut Vec<String>,
) -> Result<Tally> {
    let mut answers = Tally::default();
    for t in one_shots {
        let r = t.await?;
        match &r {
            Ok(r) if r.status == 200 && r.order_status() == "COMPLETED" => {}
            Ok(r) if matches!(r.status, 409 | 503) && r.contract_error(&[]).is_ok() => {}
            Ok(r) => broken.push(format!(
                "a payment asked once during the crash got {} {}",
                r.status,
                r.short()
            )),
            Err(e) => broken.push(format!(
                "a payment asked once during the crash had no answer: {e}"
            )),
        }
        answers.add(&r);
    }
    Ok(answers)
}

/// Waits until every order of `ids` has a status of `done`'s, at most `patience`.
async fn wait_until_all(
    env: &Env,
    ids: &[String],
    patience: Duration,
    done: impl Fn(&str) -> bool,
) -> bool {
    let done = &done;
    wait_for(patience, || async move {
        let s = env.order_statuses().await.unwrap_or_default();
        ids.iter()
            .all(|id| s.get(id).is_some_and(|st| done(st.as_str())))
    })
    .await
}

/// The unpaid orders whose timers are still to fire when the server dies: the outage (longer
/// than their timeout) then passes their deadline while it is down. None is a broken
/// expectation: no timer was due.
async fn still_pending(env: &Env, to_expire: &[String], broken: &mut Vec<String>) -> Result<usize> {
    let statuses = env.order_statuses().await?;
    let pending = to_expire
        .iter()
        .filter(|id| statuses.get(*id).map(String::as_str) == Some("PENDING"))
        .count();
    if pending == 0 {
        broken.push(format!(
            "none of the {} unpaid orders was still PENDING when Temporal died: no timer was \
             due during the outage",
            to_expire.len()
        ));
    }
    Ok(pending)
}

/// Whether the unpaid orders all expired after the restart (waiting up to 90 s); those that
/// did not are broken expectations.
async fn all_expired(env: &Env, to_expire: &[String], broken: &mut Vec<String>) -> bool {
    let expired = wait_until_all(env, to_expire, Duration::from_secs(90), |s| s == "EXPIRED").await;
    if !expired {
        expect_status(env, to_expire, "EXPIRED", broken).await;
    }
    expired
}

/// How the orders whose payment nobody repeated ended: each must end one way or the other
/// (paid, undone, or expired with nothing kept), which the CONTRACT §6 check then verifies.
async fn abandoned_ends(
    env: &Env,
    ids: &[String],
    broken: &mut Vec<String>,
) -> Result<BTreeMap<String, usize>> {
    let open = |s: &str| matches!(s, "PENDING" | "PAID");
    if !wait_until_all(env, ids, Duration::from_secs(120), |s| !open(s)).await {
        broken.push("orders whose payment nobody repeated did not end".into());
    }
    let statuses = env.order_statuses().await?;
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    for id in ids {
        let s = statuses
            .get(id)
            .cloned()
            .unwrap_or_else(|| "missing".into());
        *ends.entry(s).or_default() += 1;
    }
    Ok(ends)
}

/// What the run found, for the table.
struct Found {
    in_flight: usize,
    pending_at_kill: usize,
    down: Duration,
    deadline_passed: bool,
    outage: Tally,
    settled: Settled,
    done_after: usize,
    retries_after: u32,
    expired: bool,
    deaths: usize,
    one_shots: Tally,
    abandoned_ends: BTreeMap<String, usize>,
}

impl Found {
    fn describe(self, sizes: &Sizes, figures: &mut Figures) {
        let (settled, expiring) = (&self.settled, sizes.expiring);
        figures.operations = format!(
            "{} payments in flight (half for a scarce product) and {} never repeated, {} \
             orders after the restart, {expiring} unpaid orders ({} s timeout), {} requests \
             during the outage",
            sizes.paying,
            self.one_shots.total(),
            sizes.after,
            sizes.timeout.as_secs(),
            self.outage.total()
        );
        figures.faults = format!(
            "Temporal kill -9 with the worker (a host going down), down {:.0} s, same SQLite \
             file",
            self.down.as_secs_f64()
        );
        let canceled = match settled.canceled.len() {
            0 => String::new(),
            n => format!(", {n} CANCELED (stock sold out, undone)"),
        };
        let worker = match self.deaths {
            0 => "started again".to_owned(),
            n => format!("started again, and died {n}× more (see notes)"),
        };
        let never_repeated: Vec<String> = self
            .abandoned_ends
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        figures.outcomes = format!(
            "{} COMPLETED{canceled}; never repeated: {}; {}/{expiring} unpaid EXPIRED after the \
             restart; API reconnected by itself, worker {worker}; outage answers: {}",
            settled.completed.len() + self.done_after,
            never_repeated.join(", "),
            if self.expired { expiring } else { 0 },
            self.outage.describe()
        );
        figures.details = json!({
            "in_flight_at_kill": self.in_flight, "down_s": self.down.as_secs_f64(),
            "deadline_passed_while_down": self.deadline_passed,
            "pending_at_kill": self.pending_at_kill,
            "completed": settled.completed.len() + self.done_after,
            "canceled": settled.canceled.len(), "told_canceled_on_repeat": settled.told_canceled,
            "cancel_reason_was_the_refusal": settled.circular_reasons,
            "expired": self.expired, "expiring": expiring,
            "repeats_after_503": settled.retries + self.retries_after, "outage": self.outage.0,
            "worker_deaths": self.deaths, "abandoned_payments": self.one_shots.total(),
            "abandoned_answers": self.one_shots.0,
            "abandoned_ended": self.abandoned_ends,
        });
    }
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let sizes = Sizes::of(stack.quick);
    let mut env = Env::new(stack, "3-temporal-restart", Duration::from_secs(600)).await?;
    let (shop, plan) = scarce_shop(&env, 5, sizes.paying).await?;
    let p = shop.products[0];
    let mut figures = Figures::default();
    let broken = &mut figures.broken;

    // Orders nobody pays, with a payment deadline that passes while Temporal is down.
    let to_expire: Vec<String> = place_unpaid(
        &env,
        &shop,
        sizes.expiring,
        sizes.timeout,
        |_| p,
        "expire",
        broken,
    )
    .await
    .into_iter()
    .map(|(_, id)| id)
    .collect();
    let placed_at = Instant::now();
    let products = shop.products.clone();
    let abandoned = place_unpaid(
        &env,
        &shop,
        sizes.abandoned,
        sizes.abandoned_timeout,
        |i| products[i % 2],
        "abandon",
        broken,
    )
    .await;

    let placed = place_all(&env.api, &plan, "t-before", 16, broken).await;
    let before = steps_done(&env).await;
    let payments = Payments::start(&env.api, &placed, "t-before");
    let one_shots = pay_once(&env.api, &abandoned);
    let wanted = (sizes.paying / 2).max(1);
    let in_flight = payments
        .wait_under_way(&env, wanted, before, "Temporal kill", broken)
        .await;
    let pending_at_kill = still_pending(&env, &to_expire, broken).await?;
    env.kill_worker();
    stack.temporal.kill9();
    let killed = Instant::now();
    eprintln!("chaos: [3] Temporal killed (-9) with {in_flight} payments in flight");

    let token = env.api.customer(shop.users[0]);
    let outage = while_down(&env.api, &token, p, killed, sizes.downtime, broken).await;
    let deadline_passed = placed_at.elapsed() > sizes.timeout;
    stack.temporal.start().await?;
    if !env.worker_alive() {
        env.start_worker().await?;
    }
    let down = killed.elapsed();
    eprintln!("chaos: [3] Temporal back after {:.1} s", down.as_secs_f64());

    // New orders after the restart go through the same API and worker, not restarted.
    let plan = simple_plan(&shop, p, sizes.after);
    let placed_after = place_all(&env.api, &plan, "t-after", 8, broken).await;
    let payments_after = Payments::start(&env.api, &placed_after, "t-after");
    let settled = payments.settle_checked(&env, placed.len(), broken).await;
    let (done_after, retries_after) = payments_after.expect_completed(broken).await;

    let expired = all_expired(&env, &to_expire, broken).await;
    let deaths = env.worker_deaths().len();
    let one_shots = answers_to_one_shots(one_shots, broken).await?;
    let abandoned_ids: Vec<String> = abandoned.into_iter().map(|(_, id)| id).collect();
    let abandoned_ends = abandoned_ends(&env, &abandoned_ids, broken).await?;
    let after_ids: Vec<String> = placed_after.into_iter().map(|(_, id)| id).collect();
    expect_status(&env, &after_ids, "COMPLETED", broken).await;

    let found = Found {
        in_flight,
        pending_at_kill,
        down,
        deadline_passed,
        outage,
        settled,
        done_after,
        retries_after,
        expired,
        deaths,
        one_shots,
        abandoned_ends,
    };
    found.describe(&sizes, &mut figures);
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}
