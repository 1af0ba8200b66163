//! Scenario 2: the worker is killed (`kill -9`) while payments are in flight, and started again.
//! Every order must finish exactly once: charged once, deducted once, no refund lost. A client
//! whose request timed out (503 after 15 s) repeats it with its Idempotency-Key and must learn
//! the outcome that way.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{Figures, Outcome, Payments, place_all, scarce_shop, steps_done, wait_for};
use crate::env::{Env, Stack};

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    // The last kill keeps the worker away longer than the API waits (15 s), so that clients
    // get 503 and must learn the outcome by repeating their payment with its key.
    let (n, downtimes, at_least) = if stack.quick {
        (16, vec![17], 12)
    } else {
        (80, vec![3, 20], 50)
    };
    let kills = downtimes.len();
    let mut env = Env::new(stack, "2-worker-crash", Duration::from_secs(600)).await?;
    let (_, plan) = scarce_shop(&env, n / 4, n).await?;
    let mut figures = Figures::default();
    let placed = place_all(&env.api, &plan, "crash", 16, &mut figures.broken).await;

    let payments = Payments::start(&env.api, &placed, "crash");
    let mut at_kill = Vec::new();
    let mut down_for = Vec::new();
    for (k, down) in downtimes.iter().enumerate() {
        // The first kill once payments are truly under way (a step has taken effect, most
        // still wait for their answer); a later one halfway through what is left, so that it
        // finds payments at every stage.
        let threshold = if k == 0 { at_least } else { 1 };
        let (in_flight, completed) =
            strike_when_under_way(&mut env, &payments, n, k, threshold, &mut figures.broken).await;
        let killed = Instant::now();
        eprintln!(
            "chaos: [2] worker killed (-9) with {in_flight} payments in flight, {completed} \
             orders COMPLETED"
        );
        at_kill.push(json!({"in_flight": in_flight, "completed": completed}));
        tokio::time::sleep(Duration::from_secs(*down)).await;
        env.start_worker().await?;
        down_for.push(killed.elapsed().as_secs_f64());
    }

    let settled = payments
        .settle_checked(&env, placed.len(), &mut figures.broken)
        .await;
    let charges = env
        .count("SELECT count(*) FROM point_ledger WHERE kind = 'CHARGE'")
        .await?;
    let refunds = env
        .count("SELECT count(*) FROM point_ledger WHERE kind = 'REFUND'")
        .await?;
    let released = env
        .count("SELECT count(*) FROM coupon_ledger WHERE kind = 'RELEASE'")
        .await?;
    // The charge is the first step: every payment charged once, and each one refused for stock
    // refunded once (the CONTRACT §6 check sees sums; these are the counts).
    if charges != settled.total() as i64 || refunds != settled.canceled.len() as i64 {
        figures.broken.push(format!(
            "{charges} charges and {refunds} refunds for {} payments, {} of them CANCELED",
            settled.total(),
            settled.canceled.len()
        ));
    }
    let in_flight: Vec<String> = at_kill.iter().map(|k| k["in_flight"].to_string()).collect();
    figures.operations = format!("{n} orders placed, {n} payments at once");
    figures.faults = format!(
        "worker kill -9 ×{kills} ({} payments in flight; down {} s)",
        in_flight.join(" and "),
        downtimes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let told = if settled.told_canceled > 0 {
        format!(
            " ({} of them learned it as ORDER_NOT_PAYABLE CANCELED on a repeat, {} with that \
             as cancel_reason)",
            settled.told_canceled, settled.circular_reasons
        )
    } else {
        String::new()
    };
    figures.outcomes = format!(
        "{} COMPLETED, {} CANCELED{told} (stock sold out: {refunds} refunds, {released} \
         coupons released), each once ({charges} charges); {} payments repeated with their key \
         after a 503",
        settled.completed.len(),
        settled.canceled.len(),
        settled.retries
    );
    figures.details = json!({
        "orders": n, "kills": at_kill, "worker_down_s": down_for,
        "completed": settled.completed.len(), "canceled": settled.canceled.len(), "told_canceled_on_repeat": settled.told_canceled, "cancel_reason_was_the_refusal": settled.circular_reasons,
        "charges": charges, "refunds": refunds, "coupons_released": released,
        "repeats_after_503": settled.retries,
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}

/// Kill `k` (from 0) of the worker, once at least `threshold` payments wait for their answer
/// and, for the first, a step has taken effect since now, or, for a later one, half of the
/// `n` orders not yet completed have completed; otherwise (after 30 s) the kill still comes,
/// and that it came too early is a broken expectation. Returns the payments in flight and the
/// orders completed at the kill.
async fn strike_when_under_way(
    env: &mut Env,
    payments: &Payments,
    n: usize,
    k: usize,
    threshold: usize,
    broken: &mut Vec<String>,
) -> (usize, i64) {
    let steps_before = steps_done(env).await;
    let done_before = completed_orders(env).await;
    let left = n as i64 - done_before;
    let started = {
        let env = &*env;
        wait_for(Duration::from_secs(30), || async move {
            payments.in_flight() >= threshold
                && if k == 0 {
                    steps_done(env).await > steps_before
                } else {
                    completed_orders(env).await >= done_before + left / 2
                }
        })
        .await
    };
    let in_flight = payments.in_flight();
    if !started {
        broken.push(format!(
            "kill {}: payments never got under way with {threshold} in flight \
             ({in_flight} in flight)",
            k + 1
        ));
    }
    let completed = completed_orders(env).await;
    env.kill_worker();
    (in_flight, completed)
}

async fn completed_orders(env: &Env) -> i64 {
    env.count("SELECT count(*) FROM orders WHERE status = 'COMPLETED'")
        .await
        .unwrap_or(0)
}
