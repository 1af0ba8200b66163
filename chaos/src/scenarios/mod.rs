//! The eight scenarios. Each makes its own [`Env`](crate::env::Env) (the crash-point matrix one
//! per cell), does its damage, checks what a client saw, and ends with the CONTRACT §6 check of
//! its database.

pub mod auth;
pub mod contention;
pub mod crash_points;
pub mod hostile;
pub mod pg_restart;
pub mod platform;
pub mod temporal_restart;
pub mod worker_crash;

use domain::{CouponId, ProductId, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Semaphore;

use testkit::shop::{self, Shop, order_body};
use testkit::{Answer, Api, Reply};

use crate::env::{Env, Verdict};

/// What a scenario reports for the table.
#[derive(Debug, Default)]
pub struct Figures {
    pub operations: String,
    pub faults: String,
    pub outcomes: String,
    /// Every number, for the JSON report.
    pub details: Value,
    /// Expectations a client had that were not met (a wrong status, a lost order, ...).
    pub broken: Vec<String>,
}

pub struct Outcome {
    pub figures: Figures,
    pub verdict: Verdict,
}

/// Counts of answers by status (and code, for errors).
#[derive(Debug, Default, Clone)]
pub struct Tally(pub BTreeMap<String, usize>);

impl Tally {
    pub fn add(&mut self, reply: &Answer) {
        let key = match reply {
            Ok(r) if r.status >= 400 => format!("{} {}", r.status, r.code()),
            Ok(r) => r.status.to_string(),
            Err(_) => "no answer".to_owned(),
        };
        *self.0.entry(key).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{v}× {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The points of every customer of a scenario's shop: rich enough for anything asked of them.
pub const RICH: i64 = 100_000_000;

/// A coupon of `amount` off for `user`.
pub async fn coupon(env: &Env, user: UserId, amount: i64) -> Result<CouponId> {
    shop::coupon(&env.db, user, domain::Discount::Fixed { amount }, None).await
}

/// How long a client keeps asking before it gives up on an answer.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// One order to place: who, which lines, which coupon.
#[derive(Debug, Clone)]
pub struct Plan {
    pub user: UserId,
    pub lines: Vec<(ProductId, i64)>,
    pub coupon: Option<CouponId>,
}

/// `n` orders of one line each of `product`, by the shop's customers in turn.
pub fn simple_plan(shop: &Shop, product: ProductId, n: usize) -> Vec<Plan> {
    (0..n)
        .map(|i| Plan {
            user: shop.users[i % shop.users.len()],
            lines: vec![(product, 1 + (i as i64 % 2))],
            coupon: None,
        })
        .collect()
}

/// A shop where payments can fail late: a plentiful product and a scarce one (stock for about
/// a quarter of what is ordered), and a coupon per customer. Half the orders want the scarce
/// product, so some of their payments find it sold out after charging the points and redeeming
/// the coupon, and must undo both; the first order of each customer uses their coupon.
pub async fn scarce_shop(env: &Env, users: usize, n: usize) -> Result<(Shop, Vec<Plan>)> {
    // At least 3: every placement (1 to 3 units) passes; payments then race for the rest.
    let scarce = (n as i64 / 4).max(3);
    let shop = Shop::open(&env.db, users, RICH, &[(1_000, 1_000_000), (2_000, scarce)]).await?;
    let mut coupons = Vec::with_capacity(users);
    for u in &shop.users {
        coupons.push(coupon(env, *u, 100).await?);
    }
    let plan = (0..n)
        .map(|i| Plan {
            user: shop.users[i % users],
            lines: vec![(shop.products[i % 2], 1 + (i as i64 % 3))],
            coupon: (i < users).then(|| coupons[i % users]),
        })
        .collect();
    Ok((shop, plan))
}

/// Places every order of `plan` through the API, `parallel` at a time, each under its own
/// Idempotency-Key and retried on 503; every placement must answer 201 (the first that does
/// not is a broken expectation, and then none is returned).
pub async fn place_all(
    api: &Api,
    plan: &[Plan],
    tag: &str,
    parallel: usize,
    broken: &mut Vec<String>,
) -> Vec<(UserId, String)> {
    try_place_all(api, plan, tag, parallel)
        .await
        .unwrap_or_else(|e| {
            broken.push(e);
            Vec::new()
        })
}

async fn try_place_all(
    api: &Api,
    plan: &[Plan],
    tag: &str,
    parallel: usize,
) -> Result<Vec<(UserId, String)>, String> {
    let gate = Arc::new(Semaphore::new(parallel));
    let tasks: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let api = api.clone();
            let gate = gate.clone();
            let body = order_body(&p.lines, p.coupon);
            let user = p.user;
            let key = format!("{tag}-place-{i}");
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("open semaphore");
                let token = api.customer(user);
                match api
                    .post_until_answered("/api/v1/orders", &token, &body, &key, PATIENCE)
                    .await
                {
                    Ok((r, _)) if r.status == 201 && r.order_status() == "PENDING" => {
                        Ok((user, r.body["id"].as_str().unwrap_or_default().to_owned()))
                    }
                    Ok((r, _)) => Err(format!("placement {key}: {} {}", r.status, r.text)),
                    Err(e) => Err(format!("placement {key}: {e:#}")),
                }
            })
        })
        .collect();
    let mut placed = Vec::new();
    for t in tasks {
        placed.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(placed)
}

/// How the payments ended, as their clients learned it.
#[derive(Debug, Default)]
pub struct Settled {
    /// 200 `COMPLETED`.
    pub completed: Vec<String>,
    /// 409 `INSUFFICIENT_STOCK`: sold out after placement, everything undone.
    pub canceled: Vec<String>,
    /// Requests asked again after a 503 or a lost answer.
    pub retries: u32,
    /// Of `canceled`: repeats answered 409 `ORDER_NOT_PAYABLE` (`CANCELED`) rather than
    /// `INSUFFICIENT_STOCK`. A payment whose run a crashed worker never fully reported runs
    /// again on the repeat and finds its steps already undone (docs/RELIABILITY.md, "Found and
    /// fixed").
    pub told_canceled: usize,
    told_canceled_ids: Vec<String>,
    /// Of those, orders whose `cancel_reason` names that refusal instead of the stock (set by
    /// `check`).
    pub circular_reasons: usize,
}

impl Settled {
    pub fn total(&self) -> usize {
        self.completed.len() + self.canceled.len()
    }

    /// The database must agree with what each client was told: `COMPLETED`, or `CANCELED`
    /// because the stock was gone.
    pub async fn check(&mut self, env: &Env, broken: &mut Vec<String>) {
        expect_status(env, &self.completed, "COMPLETED", broken).await;
        expect_status(env, &self.canceled, "CANCELED", broken).await;
        for id in &self.canceled {
            let reason: Option<String> =
                sqlx::query_scalar("SELECT cancel_reason FROM orders WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&env.db)
                    .await
                    .ok()
                    .flatten()
                    .flatten();
            let stock = reason
                .as_deref()
                .is_some_and(|r| r.contains("INSUFFICIENT_STOCK"));
            // Run again after its steps were undone, the payment may be closed for that
            // refusal; only an order its client was told the same about may say so.
            let circular = self.told_canceled_ids.contains(id)
                && reason
                    .as_deref()
                    .is_some_and(|r| r.contains("ORDER_NOT_PAYABLE"));
            if circular {
                self.circular_reasons += 1;
            } else if !stock {
                broken.push(format!(
                    "order {id} was refused for stock but says {reason:?}"
                ));
            }
        }
    }
}

/// One payment's final answer and how many times it was asked again.
type PaymentTask = tokio::task::JoinHandle<Result<(Reply, u32), String>>;

/// Payments in flight: each started task pays one order (retrying on 503 with its key) and
/// reports its final answer; `in_flight` counts those still waiting for it.
pub struct Payments {
    pub in_flight: Arc<AtomicUsize>,
    tasks: Vec<(String, PaymentTask)>,
}

impl Payments {
    pub fn start(api: &Api, orders: &[(UserId, String)], tag: &str) -> Self {
        let in_flight = Arc::new(AtomicUsize::new(orders.len()));
        let tasks = orders
            .iter()
            .enumerate()
            .map(|(i, (user, id))| {
                let api = api.clone();
                let in_flight = in_flight.clone();
                let token = api.customer(*user);
                let body = serde_json::json!({ "order_id": id });
                let key = format!("{tag}-pay-{i}");
                let task = tokio::spawn(async move {
                    let r = api
                        .post_until_answered("/api/v1/payments", &token, &body, &key, PATIENCE)
                        .await
                        .map_err(|e| format!("{e:#}"));
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    r
                });
                (id.clone(), task)
            })
            .collect();
        Self { in_flight, tasks }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Every payment's final answer: 200 `COMPLETED`, or 409 `INSUFFICIENT_STOCK` (anything
    /// else is a broken expectation).
    pub async fn settle(self, broken: &mut Vec<String>) -> Settled {
        let mut settled = Settled::default();
        for (id, task) in self.tasks {
            match task.await {
                Ok(Ok((r, n))) => {
                    settled.retries += n;
                    match (r.status, r.code(), r.order_status()) {
                        (200, _, "COMPLETED") => settled.completed.push(id),
                        (409, "INSUFFICIENT_STOCK", _) if r.contract_error(&[]).is_ok() => {
                            settled.canceled.push(id)
                        }
                        (409, "ORDER_NOT_PAYABLE", _)
                            if n > 0
                                && r.body["details"]["status"] == "CANCELED"
                                && r.contract_error(&[]).is_ok() =>
                        {
                            settled.told_canceled += 1;
                            settled.told_canceled_ids.push(id.clone());
                            settled.canceled.push(id)
                        }
                        _ => broken.push(format!(
                            "payment of {id}: expected 200 COMPLETED or 409 INSUFFICIENT_STOCK \
                             (asked {} times), got {} {}",
                            n + 1,
                            r.status,
                            r.text.chars().take(300).collect::<String>()
                        )),
                    }
                }
                Ok(Err(e)) => broken.push(format!("payment of {id}: {e}")),
                Err(e) => broken.push(format!("payment of {id}: task failed: {e}")),
            }
        }
        settled
    }

    /// Every payment's final answer ([`settle`](Self::settle)), which the database must agree
    /// with ([`Settled::check`]); each of the `placed` payments must have had one.
    pub async fn settle_checked(
        self,
        env: &Env,
        placed: usize,
        broken: &mut Vec<String>,
    ) -> Settled {
        let mut settled = self.settle(broken).await;
        settled.check(env, broken).await;
        if settled.total() != placed {
            broken.push(format!(
                "{} of {placed} payments got a final answer",
                settled.total()
            ));
        }
        settled
    }

    /// Waits until at least `min` payments still wait for their answer and a step has taken
    /// effect since `steps_before`: payments truly under way, the moment to strike. Otherwise
    /// the fault would hit nothing, which is a broken expectation of `what`.
    pub async fn wait_under_way(
        &self,
        env: &Env,
        min: usize,
        steps_before: i64,
        what: &str,
        broken: &mut Vec<String>,
    ) -> usize {
        let under_way = wait_for(Duration::from_secs(20), || async move {
            self.in_flight() >= min && steps_done(env).await > steps_before
        })
        .await;
        let in_flight = self.in_flight();
        if !under_way {
            broken.push(format!(
                "{what}: payments never got under way with {min} in flight ({in_flight} in \
                 flight, {} steps taken)",
                steps_done(env).await - steps_before
            ));
        }
        in_flight
    }

    /// Every payment's final answer; each must be 200 `COMPLETED`. Returns how many completed
    /// and how many were asked again after a 503 or a lost answer.
    pub async fn expect_completed(self, broken: &mut Vec<String>) -> (usize, u32) {
        let settled = self.settle(broken).await;
        for id in &settled.canceled {
            broken.push(format!(
                "payment of {id}: refused for stock, none was short"
            ));
        }
        (settled.completed.len(), settled.retries)
    }
}

/// Waits until `f` holds, polling every 20 ms, at most `patience`; whether it held.
pub async fn wait_for<F, Fut>(patience: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Payment steps that have taken effect so far (any order, any attempt).
pub async fn steps_done(env: &Env) -> i64 {
    env.count("SELECT count(*) FROM saga_steps")
        .await
        .unwrap_or(0)
}

/// Every order in `ids` has `status` in the database.
pub async fn expect_status(env: &Env, ids: &[String], status: &str, broken: &mut Vec<String>) {
    match env.order_statuses().await {
        Ok(statuses) => {
            for id in ids {
                let s = statuses.get(id).map_or("missing", String::as_str);
                if s != status {
                    broken.push(format!("order {id} is {s}, expected {status}"));
                }
            }
        }
        Err(e) => broken.push(format!("cannot read the orders: {e:#}")),
    }
}
