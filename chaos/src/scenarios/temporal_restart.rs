//! Scenario 3: the Temporal dev server is killed mid-run and started again on the same SQLite
//! file. Payments in flight resume and finish, unpaid orders whose payment deadline passed
//! while it was down still expire (their timers fire), the worker and the API reconnect by
//! themselves, and while it is down the API answers 503, never a 500.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::Method;
use serde_json::json;
use starter::OrderService;
use testkit::shop::{order_body, order_request};

use super::{
    Figures, Outcome, Payments, Tally, expect_status, place_all, scarce_shop, simple_plan,
    steps_done, wait_for,
};
use crate::env::{Env, Stack};

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let (expiring, paying, after, timeout, downtime) = if stack.quick {
        (4, 10, 4, Duration::from_secs(4), Duration::from_secs(5))
    } else {
        (10, 40, 10, Duration::from_secs(8), Duration::from_secs(12))
    };
    // What once lost a payment's update with the server (local steps ran inside the task that
    // accepted it): payments whose clients ask once and never again, and the worker dying
    // with the server, as when a host goes down. Half the payments are for a scarce product,
    // so some are undone mid-crash.
    let (abandoned_n, abandoned_timeout) = if stack.quick {
        (6, Duration::from_secs(15))
    } else {
        (20, Duration::from_secs(30))
    };
    let mut env = Env::new(stack, "3-temporal-restart", Duration::from_secs(600)).await?;
    let (shop, plan) = scarce_shop(&env, 5, paying).await?;
    let p = shop.products[0];
    let mut figures = Figures::default();

    // Orders nobody pays, with a payment deadline that passes while Temporal is down.
    let short = OrderService::new(
        env.client.clone(),
        env.db.clone(),
        &env.settings.task_queue,
        timeout,
    )
    .with_remote_steps(env.settings.remote_steps);
    let mut to_expire = Vec::new();
    for i in 0..expiring {
        let id = OrderService::new_order_id();
        let req = order_request(&[(p, 1)], None);
        match short.place(&id, shop.users[i % 5], req).await {
            Ok(o) if o.status == domain::OrderStatus::Pending => to_expire.push(id),
            other => figures
                .broken
                .push(format!("placing an order to expire: {other:?}")),
        }
    }
    let placed_at = Instant::now();
    let patient = OrderService::new(
        env.client.clone(),
        env.db.clone(),
        &env.settings.task_queue,
        abandoned_timeout,
    )
    .with_remote_steps(env.settings.remote_steps);
    let mut abandoned = Vec::new();
    for i in 0..abandoned_n {
        let id = OrderService::new_order_id();
        let user = shop.users[i % 5];
        let req = order_request(&[(shop.products[i % 2], 1)], None);
        match patient.place(&id, user, req).await {
            Ok(o) if o.status == domain::OrderStatus::Pending => abandoned.push((user, id)),
            other => figures
                .broken
                .push(format!("placing an order to abandon: {other:?}")),
        }
    }

    let placed = place_all(&env.api, &plan, "t-before", 16, &mut figures.broken).await;
    let before = steps_done(&env).await;
    let payments = Payments::start(&env.api, &placed, "t-before");
    let one_shots: Vec<_> = abandoned
        .iter()
        .map(|(user, id)| {
            let api = env.api.clone();
            let token = api.customer(*user);
            let body = serde_json::json!({ "order_id": id });
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
        .collect();
    let in_flight = payments
        .wait_under_way(
            &env,
            (paying / 2).max(1),
            before,
            "Temporal kill",
            &mut figures.broken,
        )
        .await;
    // The unpaid orders whose timers are still to fire: the outage (longer than their timeout)
    // then passes their deadline while the server is down.
    let statuses = env.order_statuses().await?;
    let pending_at_kill = to_expire
        .iter()
        .filter(|id| statuses.get(*id).map(String::as_str) == Some("PENDING"))
        .count();
    if pending_at_kill == 0 {
        figures.broken.push(format!(
            "none of the {} unpaid orders was still PENDING when Temporal died: no timer was \
             due during the outage",
            to_expire.len()
        ));
    }
    env.kill_worker();
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
                _ => api.get("/api/v1/orders?limit=5", Some(token)).await,
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
    if !env.worker_alive() {
        env.start_worker().await?;
    }
    let down = killed.elapsed();
    eprintln!("chaos: [3] Temporal back after {:.1} s", down.as_secs_f64());

    // New orders after the restart go through the same API and worker, not restarted.
    let plan = simple_plan(&shop, p, after);
    let placed_after = place_all(&env.api, &plan, "t-after", 8, &mut figures.broken).await;
    let payments_after = Payments::start(&env.api, &placed_after, "t-after");
    let settled = payments
        .settle_checked(&env, placed.len(), &mut figures.broken)
        .await;
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
    let deaths = env.worker_deaths().len();
    let mut one_shot_answers = Tally::default();
    for t in one_shots {
        let r = t.await?;
        // Asked once, whatever befell it: an answer of the contract all the same.
        match &r {
            Ok(r) if r.status == 200 && r.order_status() == "COMPLETED" => {}
            Ok(r) if matches!(r.status, 409 | 503) && r.contract_error(&[]).is_ok() => {}
            Ok(r) => figures.broken.push(format!(
                "a payment asked once during the crash got {} {}",
                r.status,
                r.text.chars().take(300).collect::<String>()
            )),
            Err(e) => figures.broken.push(format!(
                "a payment asked once during the crash had no answer: {e}"
            )),
        }
        one_shot_answers.add(&r);
    }
    // The payments nobody repeated: each order must still end one way or the other (paid,
    // undone, or expired with nothing kept), which the CONTRACT §6 check then verifies.
    let abandoned_ids: Vec<String> = abandoned.iter().map(|(_, id)| id.clone()).collect();
    let ended = wait_for(Duration::from_secs(120), || {
        let env = &env;
        let ids = &abandoned_ids;
        async move {
            let s = env.order_statuses().await.unwrap_or_default();
            ids.iter().all(|id| {
                s.get(id)
                    .is_some_and(|st| !matches!(st.as_str(), "PENDING" | "PAID"))
            })
        }
    })
    .await;
    if !ended {
        figures
            .broken
            .push("orders whose payment nobody repeated did not end".into());
    }
    let mut abandoned_ends: BTreeMap<String, usize> = BTreeMap::new();
    let statuses = env.order_statuses().await?;
    for id in &abandoned_ids {
        let s = statuses
            .get(id)
            .cloned()
            .unwrap_or_else(|| "missing".into());
        *abandoned_ends.entry(s).or_default() += 1;
    }
    let after_ids: Vec<String> = placed_after.iter().map(|(_, id)| id.clone()).collect();
    expect_status(&env, &after_ids, "COMPLETED", &mut figures.broken).await;

    figures.operations = format!(
        "{paying} payments in flight (half for a scarce product) and {} never repeated, \
         {after} orders after the restart, {expiring} unpaid orders ({} s timeout), {} \
         requests during the outage",
        abandoned.len(),
        timeout.as_secs(),
        outage.total()
    );
    figures.faults = format!(
        "Temporal kill -9 with the worker (a host going down), down {:.0} s, same SQLite file",
        down.as_secs_f64()
    );
    figures.outcomes = format!(
        "{} COMPLETED{}; never repeated: {}; {}/{expiring} unpaid EXPIRED after the restart; \
         API reconnected by itself, worker {}; outage answers: {}",
        settled.completed.len() + done_after,
        if settled.canceled.is_empty() {
            String::new()
        } else {
            format!(
                ", {} CANCELED (stock sold out, undone)",
                settled.canceled.len()
            )
        },
        abandoned_ends
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", "),
        if expired { expiring } else { 0 },
        if deaths == 0 {
            "started again".to_owned()
        } else {
            format!("started again, and died {deaths}× more (see notes)")
        },
        outage.describe()
    );
    figures.details = json!({
        "in_flight_at_kill": in_flight, "down_s": down.as_secs_f64(),
        "deadline_passed_while_down": deadline_passed, "pending_at_kill": pending_at_kill,
        "completed": settled.completed.len() + done_after, "canceled": settled.canceled.len(), "told_canceled_on_repeat": settled.told_canceled, "cancel_reason_was_the_refusal": settled.circular_reasons,
        "expired": expired, "expiring": expiring,
        "repeats_after_503": settled.retries + retries_after, "outage": outage.0,
        "worker_deaths": deaths, "abandoned_payments": abandoned.len(),
        "abandoned_answers": one_shot_answers.0,
        "abandoned_ended": abandoned_ends,
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}
