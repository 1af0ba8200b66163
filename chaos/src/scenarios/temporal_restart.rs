//! Scenario 3: the Temporal dev server is killed mid-run and started again on the same SQLite
//! file. Payments in flight resume and finish, unpaid orders whose payment deadline passed
//! while it was down still expire (their timers fire), the worker and the API reconnect by
//! themselves, and while it is down the API answers 503, never a 500.

use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::Method;
use serde_json::json;
use starter::OrderService;

use super::{
    Figures, Outcome, Payments, Tally, expect_status, place_all, shop, steps_done, wait_for,
};
use crate::api::order_body;
use crate::env::{Env, Stack};

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let (expiring, paying, after, timeout, downtime) = if stack.quick {
        (4, 10, 4, Duration::from_secs(4), Duration::from_secs(5))
    } else {
        (10, 40, 10, Duration::from_secs(8), Duration::from_secs(12))
    };
    let mut env = Env::new(stack, "3-temporal-restart", Duration::from_secs(600)).await?;
    let shop = shop(&env, 5, &[(1_500, 1_000_000)]).await?;
    let p = shop.products[0];
    let mut figures = Figures::default();

    // Orders nobody pays, with a payment deadline that passes while Temporal is down.
    let short = OrderService::new(
        env.client.clone(),
        env.db.clone(),
        &env.settings.task_queue,
        timeout,
    );
    let mut to_expire = Vec::new();
    for i in 0..expiring {
        let id = OrderService::new_order_id();
        let req = crate::env::place_request(&[(p, 1)]);
        match short.place(&id, shop.users[i % 5], req).await {
            Ok(o) if o.status == domain::OrderStatus::Pending => to_expire.push(id),
            other => figures
                .broken
                .push(format!("placing an order to expire: {other:?}")),
        }
    }
    let placed_at = Instant::now();

    let plan: Vec<(i64, Vec<(i64, i64)>)> = (0..paying)
        .map(|i| (shop.users[i % 5], vec![(p, 1 + (i as i64 % 2))]))
        .collect();
    let placed = place_all(&env.api, &plan, "t-before", 16)
        .await
        .unwrap_or_else(|e| {
            figures.broken.push(e);
            Vec::new()
        });
    let payments = Payments::start(&env.api, &placed, "t-before");
    let before = steps_done(&env).await;
    let half = (paying / 2).max(1);
    wait_for(Duration::from_secs(20), || {
        let env = &env;
        let pay = &payments;
        async move { pay.in_flight() >= half && steps_done(env).await > before }
    })
    .await;
    let in_flight = payments.in_flight();
    stack.temporal.kill9();
    let killed = Instant::now();
    eprintln!("chaos: [3] Temporal killed (-9) with {in_flight} payments in flight");

    // While it is down: health, a placement (needs Temporal) and a read (does not).
    let mut outage = Tally::default();
    let user = shop.users[0];
    let token = env.api.customer(user);
    let mut i = 0;
    // Rounds of a few of each at once, until it is time to bring it back.
    while killed.elapsed() < downtime {
        let api = &env.api;
        let token = &token;
        let round = futures::future::join_all((i..i + 6).map(|n| async move {
            let r = match n % 3 {
                0 => api.send(Method::GET, "/health", None, None, None).await,
                1 => {
                    api.send(
                        Method::POST,
                        "/api/v1/orders",
                        Some(token),
                        Some(&order_body(&[(p, 1)], None)),
                        Some(&format!("t-outage-{n}")),
                    )
                    .await
                }
                _ => api.get("/api/v1/orders?limit=5", token).await,
            };
            (n, r)
        }))
        .await;
        for (n, r) in round {
            match (&r, n % 3) {
                (Ok(r), 2) if r.status == 200 => {}
                (Ok(r), 0 | 1) if r.status == 503 && r.contract_error(&[]).is_ok() => {}
                (Ok(r), _) => figures.broken.push(format!(
                    "while Temporal was down, request {n} got {} {}",
                    r.status, r.text
                )),
                (Err(e), _) => figures.broken.push(format!(
                    "while Temporal was down, request {n} had no answer: {e}"
                )),
            }
            outage.add(&r);
        }
        i += 6;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let deadline_passed = placed_at.elapsed() > timeout;
    stack.temporal.start().await?;
    let down = killed.elapsed();
    eprintln!("chaos: [3] Temporal back after {:.1} s", down.as_secs_f64());

    // New orders after the restart go through the same API and worker, not restarted.
    let plan: Vec<(i64, Vec<(i64, i64)>)> = (0..after)
        .map(|i| (shop.users[i % 5], vec![(p, 1)]))
        .collect();
    let placed_after = place_all(&env.api, &plan, "t-after", 8)
        .await
        .unwrap_or_else(|e| {
            figures.broken.push(e);
            Vec::new()
        });
    let payments_after = Payments::start(&env.api, &placed_after, "t-after");
    let (done_before, retries) = payments.expect_completed(&mut figures.broken).await;
    let (done_after, retries_after) = payments_after.expect_completed(&mut figures.broken).await;

    let expired = wait_for(Duration::from_secs(90), || {
        let env = &env;
        let ids = &to_expire;
        async move {
            let s = env.order_statuses().await.unwrap_or_default();
            ids.iter()
                .all(|id| s.get(id).map(String::as_str) == Some("EXPIRED"))
        }
    })
    .await;
    if !expired {
        expect_status(&env, &to_expire, "EXPIRED", &mut figures.broken).await;
    }
    let worker_survived = env.worker_alive();
    if !worker_survived {
        figures
            .broken
            .push("the worker exited while Temporal was down".into());
        env.start_worker().await?;
    }
    let all: Vec<String> = placed
        .iter()
        .chain(&placed_after)
        .map(|(_, id)| id.clone())
        .collect();
    expect_status(&env, &all, "COMPLETED", &mut figures.broken).await;

    figures.operations = format!(
        "{paying} payments in flight + {after} orders after the restart, {expiring} unpaid \
         orders ({} s timeout), {} requests during the outage",
        timeout.as_secs(),
        outage.total()
    );
    figures.faults = format!(
        "Temporal kill -9, down {:.0} s, same SQLite file",
        down.as_secs_f64()
    );
    figures.outcomes = format!(
        "{}/{} COMPLETED, {}/{expiring} EXPIRED after the restart; worker {}; outage answers: \
         {}",
        done_before + done_after,
        paying + after,
        if expired { expiring } else { 0 },
        if worker_survived {
            "reconnected by itself"
        } else {
            "DIED"
        },
        outage.describe()
    );
    figures.details = json!({
        "in_flight_at_kill": in_flight, "down_s": down.as_secs_f64(),
        "deadline_passed_while_down": deadline_passed,
        "completed": done_before + done_after, "expired": expired, "expiring": expiring,
        "repeats_after_503": retries + retries_after, "outage": outage.0,
        "worker_survived": worker_survived,
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}
