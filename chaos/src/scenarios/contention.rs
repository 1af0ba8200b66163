//! Scenario 1: many customers racing for a few products whose stock covers only some of them,
//! placing and paying at once through the HTTP API. No unit may be sold twice: each order ends
//! `COMPLETED`, `CANCELED` (sold out between placement and payment) or rejected at placement,
//! always with `INSUFFICIENT_STOCK`, and what was sold is exactly what left the shelves.

use domain::{CouponId, ProductId, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use testkit::Api;
use testkit::shop::{Shop, order_body};
use tokio::sync::Semaphore;

use super::{Figures, Outcome, PATIENCE, RICH, Settled, coupon};
use crate::env::{Env, Stack};
use crate::rng::Rng;

enum End {
    Completed(String),
    /// Canceled at payment: the stock was gone by then.
    Canceled(String),
    /// Rejected at placement: sold out already.
    Rejected,
    Unexpected(String),
}

/// One order to race with: who, which lines, which coupon.
type Planned = (UserId, Vec<(ProductId, i64)>, Option<CouponId>);

/// `orders` orders of one or two lines of the shop's products, by its customers in turn; each
/// customer's first order uses a coupon of theirs, so that canceled payments also have a coupon
/// to give back.
async fn plan(env: &Env, shop: &Shop, orders: usize, rng: &mut Rng) -> Result<Vec<Planned>> {
    let users = shop.users.len();
    let mut coupons = Vec::new();
    for u in &shop.users {
        coupons.push(coupon(env, *u, 500).await?);
    }
    Ok((0..orders)
        .map(|i| {
            let u = i % users;
            let first = rng.below(3);
            let mut lines = vec![(shop.products[first], rng.range(1, 3))];
            if rng.chance(0.4) {
                let second = (first + 1 + rng.below(2)) % 3;
                lines.push((shop.products[second], rng.range(1, 3)));
            }
            let coupon = (i < users).then(|| coupons[u]);
            (shop.users[u], lines, coupon)
        })
        .collect())
}

/// Order `i` of the race: placed, then paid, each asked again after a 503 with its key. How it
/// ended, and how many answers were asked again.
async fn race(api: Api, i: usize, (user, lines, coupon): Planned) -> (End, u32) {
    let token = api.customer(user);
    let body = order_body(&lines, coupon);
    let key = format!("race-place-{i}");
    let (placed, r1) = match api
        .post_until_answered("/api/v1/orders", &token, &body, &key, PATIENCE)
        .await
    {
        Ok(x) => x,
        Err(e) => return (End::Unexpected(format!("{e:#}")), 0),
    };
    match (placed.status, placed.code()) {
        (201, _) => {}
        (409, "INSUFFICIENT_STOCK") if placed.contract_error(&[]).is_ok() => {
            return (End::Rejected, r1);
        }
        _ => {
            let e = format!("placement: {} {}", placed.status, placed.text);
            return (End::Unexpected(e), r1);
        }
    }
    let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
    let pay = json!({ "order_id": id });
    let key = format!("race-pay-{i}");
    let (paid, r2) = match api
        .post_until_answered("/api/v1/payments", &token, &pay, &key, PATIENCE)
        .await
    {
        Ok(x) => x,
        Err(e) => return (End::Unexpected(format!("{e:#}")), r1),
    };
    let end = match (paid.status, paid.code(), paid.order_status()) {
        (200, _, "COMPLETED") => End::Completed(id),
        (409, "INSUFFICIENT_STOCK", _) if paid.contract_error(&[]).is_ok() => End::Canceled(id),
        _ => End::Unexpected(format!("payment of {id}: {} {}", paid.status, paid.text)),
    };
    (end, r1 + r2)
}

/// How the race ended.
#[derive(Default)]
struct Ends {
    completed: Vec<String>,
    canceled: Vec<String>,
    rejected: usize,
    retries: u32,
}

/// Runs every order of `plan` at once (48 at a time: enough that they truly race, few enough
/// that the API's 20 database connections are not the whole story).
async fn run_the_race(api: &Api, plan: &[Planned], broken: &mut Vec<String>) -> Result<Ends> {
    let gate = Arc::new(Semaphore::new(48));
    let tasks: Vec<_> = plan
        .iter()
        .enumerate()
        .map(|(i, planned)| {
            let (api, gate, planned) = (api.clone(), gate.clone(), planned.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("open semaphore");
                race(api, i, planned).await
            })
        })
        .collect();
    let mut ends = Ends::default();
    for t in tasks {
        let (end, r) = t.await?;
        ends.retries += r;
        match end {
            End::Completed(id) => ends.completed.push(id),
            End::Canceled(id) => ends.canceled.push(id),
            End::Rejected => ends.rejected += 1,
            End::Unexpected(e) => broken.push(e),
        }
    }
    Ok(ends)
}

/// Sold == initial − final, product by product, and never below zero. Returns the units sold
/// of each product, and each product's `sold=initial−final`.
async fn shelves(
    env: &Env,
    shop: &Shop,
    stock: &[i64],
    broken: &mut Vec<String>,
) -> Result<(BTreeMap<i64, i64>, Vec<String>)> {
    let sold: BTreeMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT l.product_id, sum(l.quantity)::bigint FROM order_lines l \
         JOIN orders o ON o.id = l.order_id WHERE o.status = 'COMPLETED' GROUP BY 1",
    )
    .fetch_all(&env.db)
    .await?
    .into_iter()
    .collect();
    let mut shelves = Vec::new();
    for (i, p) in shop.products.iter().enumerate() {
        let now: i64 = sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(p.get())
            .fetch_one(&env.db)
            .await?;
        let s = sold.get(&p.get()).copied().unwrap_or(0);
        if now < 0 || stock[i] - now != s {
            broken.push(format!(
                "product {p}: initial {} − now {now} ≠ sold {s}",
                stock[i]
            ));
        }
        shelves.push(format!("{s}={}−{now}", stock[i]));
    }
    Ok((sold, shelves))
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let (users, orders, stock): (usize, usize, [i64; 3]) = if stack.quick {
        (20, 60, [12, 9, 6])
    } else {
        (50, 220, [40, 30, 20])
    };
    let prices = [1_000, 2_500, 4_000];
    let env = Env::new(stack, "1-contention", Duration::from_secs(600)).await?;
    let products: Vec<(i64, i64)> = prices.iter().copied().zip(stock).collect();
    let shop = Shop::open(&env.db, users, RICH, &products).await?;
    let plan = plan(&env, &shop, orders, &mut Rng::new(stack.seed ^ 0xC0)).await?;
    let mut figures = Figures::default();
    let ends = run_the_race(&env.api, &plan, &mut figures.broken).await?;

    // What the database says must be what the customers were told.
    let mut settled = Settled {
        completed: ends.completed,
        canceled: ends.canceled,
        ..Settled::default()
    };
    settled.check(&env, &mut figures.broken).await;
    let (completed, canceled, rejected) = (settled.completed, settled.canceled, ends.rejected);
    let statuses = env.order_statuses().await?;
    if statuses.len() != completed.len() + canceled.len() {
        figures.broken.push(format!(
            "{} orders in the database, but {} were placed",
            statuses.len(),
            completed.len() + canceled.len()
        ));
    }
    let (sold, shelves) = shelves(&env, &shop, &stock, &mut figures.broken).await?;

    let demanded: i64 = plan.iter().flat_map(|(_, l, _)| l).map(|(_, q)| q).sum();
    let in_stock = stock.iter().sum::<i64>();
    // More asked than there is: a race that sold something and refused someone, or none at all.
    if completed.is_empty() || canceled.len() + rejected == 0 {
        figures.broken.push(format!(
            "{demanded} units asked of {in_stock}: {} COMPLETED, {} refused",
            completed.len(),
            canceled.len() + rejected
        ));
    }
    figures.operations = format!(
        "{orders} orders by {users} users for 3 products ({demanded} units asked, {in_stock} in \
         stock)"
    );
    figures.faults = format!("contention; {} answers retried after 503", ends.retries);
    figures.outcomes = format!(
        "{} COMPLETED, {} CANCELED at payment, {rejected} rejected at placement \
         (all INSUFFICIENT_STOCK); sold=initial−final per product: {}",
        completed.len(),
        canceled.len(),
        shelves.join(", ")
    );
    figures.details = json!({
        "orders": orders, "users": users, "stock": stock, "units_asked": demanded,
        "completed": completed.len(), "canceled": canceled.len(), "rejected": rejected,
        "retries_after_503": ends.retries, "sold": sold,
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}
