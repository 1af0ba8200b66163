//! Scenario 5: the data platform answers 500 for a while, then cannot be reached at all (its
//! listener is closed) for a while, then is back on the same port. Orders completed meanwhile
//! must all be delivered once it is back, each under its own Idempotency-Key (a repeat, if any,
//! under the same key), and every `COMPLETED` order gets `platform_notified_at`.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use testkit::shop::Shop;

use super::{
    Figures, Outcome, Payments, Plan, RICH, expect_status, place_all, simple_plan, wait_for,
};
use crate::env::{Env, Stack};

/// The orders of `plan` placed and paid, each payment expected to complete; how many did, and
/// every order's id.
async fn place_and_pay(
    env: &Env,
    plan: &[Plan],
    tag: &str,
    broken: &mut Vec<String>,
) -> (usize, Vec<String>) {
    let placed = place_all(&env.api, plan, tag, 8, broken).await;
    let (done, _) = Payments::start(&env.api, &placed, tag)
        .expect_completed(broken)
        .await;
    (done, placed.into_iter().map(|(_, id)| id).collect())
}

/// COMPLETED orders the data platform has not been told of yet.
async fn unnotified(env: &Env) -> Result<i64> {
    env.count(
        "SELECT count(*) FROM orders WHERE status = 'COMPLETED' AND platform_notified_at IS NULL",
    )
    .await
}

/// Each order of `ids` delivered under its own key, carrying itself.
fn check_delivered(env: &Env, ids: &[String], broken: &mut Vec<String>) {
    for id in ids {
        match env.receiver.state.delivery(id) {
            Some(d) if d.body["id"].as_str() == Some(id.as_str()) => {}
            Some(d) => broken.push(format!("order {id} was delivered as {}", d.body["id"])),
            None => broken.push(format!("order {id} never reached the data platform")),
        }
    }
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let (per_phase, failing, unreachable) = if stack.quick {
        (5, Duration::from_secs(3), Duration::from_secs(3))
    } else {
        (20, Duration::from_secs(10), Duration::from_secs(10))
    };
    let mut env = Env::new(stack, "5-data-platform", Duration::from_secs(600)).await?;
    let shop = Shop::open(&env.db, 5, RICH, &[(3_000, 1_000_000)]).await?;
    let mut figures = Figures::default();
    let broken = &mut figures.broken;
    let plan = simple_plan(&shop, shop.products[0], per_phase);

    // Phase 1: every delivery answered 500.
    env.receiver.state.fail_for(failing);
    let started = Instant::now();
    let (done_1, mut ids) = place_and_pay(&env, &plan, "dp-500", broken).await;
    if let Some(rest) = failing.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let failed_answers = env.receiver.state.failed_attempts();

    // Phase 2: nobody listens on the platform's port.
    env.receiver.stop().await;
    let stopped = Instant::now();
    eprintln!("chaos: [5] data platform unreachable");
    let (done_2, more) = place_and_pay(&env, &plan, "dp-down", broken).await;
    ids.extend(more);
    if let Some(rest) = unreachable.checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let unnotified_while_down = unnotified(&env).await?;
    // Both faults must have been met: deliveries refused with 500, and orders that could not
    // be delivered while nobody listened (at least those completed then).
    if failed_answers == 0 {
        broken.push("no delivery met the platform's 500s".into());
    }
    if unnotified_while_down == 0 || unnotified_while_down < done_2 as i64 {
        broken.push(format!(
            "{unnotified_while_down} COMPLETED orders undelivered while the platform was \
             unreachable, {done_2} completed meanwhile"
        ));
    }
    env.receiver.resume().await?;
    let back = Instant::now();
    eprintln!("chaos: [5] data platform back on {}", env.receiver.addr);

    // Deliveries resume on the activities' own backoff (at most a minute between tries).
    let all_notified = wait_for(Duration::from_secs(150), || async {
        unnotified(&env).await.is_ok_and(|n| n == 0)
    })
    .await;
    let caught_up = back.elapsed();
    if !all_notified {
        broken.push(format!(
            "COMPLETED orders still not notified {} s after the platform came back",
            caught_up.as_secs()
        ));
    }
    expect_status(&env, &ids, "COMPLETED", broken).await;
    check_delivered(&env, &ids, broken);
    let deliveries = env.receiver.state.deliveries();
    let repeats: u32 = deliveries.iter().map(|d| d.deliveries - 1).sum();

    let n = ids.len();
    figures.operations = format!("{n} orders completed while the data platform was away");
    figures.faults = format!(
        "platform 500 for {} s ({failed_answers} answers), then unreachable for {} s",
        failing.as_secs(),
        unreachable.as_secs()
    );
    figures.outcomes = format!(
        "{}/{n} COMPLETED; {}/{n} delivered, all notified {:.0} s after it came back; \
         {} events, {repeats} repeats (same key)",
        done_1 + done_2,
        deliveries.len().min(n),
        caught_up.as_secs_f64(),
        deliveries.len()
    );
    figures.details = json!({
        "orders": n, "failed_answers": failed_answers,
        "unnotified_while_unreachable": unnotified_while_down,
        "attempts": env.receiver.state.attempts(), "events": deliveries.len(),
        "repeats_same_key": repeats, "caught_up_s": caught_up.as_secs_f64(),
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}
