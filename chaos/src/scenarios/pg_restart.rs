//! Scenario 4: PostgreSQL dies mid-run (immediate shutdown: every backend killed at once, as in
//! a crash) and comes back. Payments in flight finish once it is back (the activities retry),
//! and while it is down every route answers 503 `UNAVAILABLE`, never a 500. The keyed requests
//! refused during the outage are repeated afterwards and take effect exactly once.

use domain::ProductId;
use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::shop::order_body;
use testkit::{Answer, Api};

use super::{Figures, Outcome, PATIENCE, Payments, Tally, place_all, scarce_shop, steps_done};
use crate::env::{Env, Stack};
use crate::infra::Postgres;

/// Scenario 4 needs a cluster of its own to restart: without one it is skipped.
fn skipped() -> Outcome {
    let figures = Figures {
        operations: "-".into(),
        faults: "-".into(),
        outcomes: "SKIPPED: no private PostgreSQL cluster could be made (see above)".into(),
        details: json!({"skipped": true}),
        ..Figures::default()
    };
    Outcome {
        figures,
        verdict: Default::default(),
    }
}

/// What the API answered while PostgreSQL was down.
#[derive(Default)]
struct Outage {
    answers: Tally,
    /// The keyed writes refused, to be repeated.
    keyed: Vec<Write>,
    slowest: Duration,
}

/// While PostgreSQL is down, until `downtime` has passed since `killed`: rounds of every route
/// at once, twice over; each must be 503.
async fn while_down(
    api: &Api,
    token: &str,
    (product, order): (ProductId, &str),
    (killed, downtime): (Instant, Duration),
    broken: &mut Vec<String>,
) -> Outage {
    let mut outage = Outage::default();
    let mut i = 0;
    while killed.elapsed() < downtime {
        let round =
            futures::future::join_all((i..i + 14).map(|n| sample(api, token, n, product, order)))
                .await;
        for (n, (write, r, took)) in round.into_iter().enumerate() {
            outage.slowest = outage.slowest.max(took);
            match &r {
                Ok(r) if r.status == 503 && r.contract_error(&[]).is_ok() => {}
                Ok(r) => broken.push(format!(
                    "while PostgreSQL was down, request {} got {} {}",
                    i + n,
                    r.status,
                    r.text
                )),
                Err(e) => broken.push(format!(
                    "while PostgreSQL was down, request {} had no answer: {e}",
                    i + n
                )),
            }
            outage.answers.add(&r);
            outage.keyed.extend(write);
        }
        i += 14;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outage
}

/// A careful client repeats what was refused, with the same key: once each. A top-up is in
/// the ledger once; a placement is canceled again. Returns how many repeats took effect.
async fn repeat_refused(
    env: &Env,
    token: &str,
    keyed: &[Write],
    broken: &mut Vec<String>,
) -> Result<usize> {
    let mut repeated = 0;
    let mut to_cancel = Vec::new();
    for (path, body, key) in keyed {
        match env
            .api
            .post_until_answered(path, token, body, key, PATIENCE)
            .await
        {
            Ok((r, _)) if *path == "/api/v1/orders" && r.status == 201 => {
                to_cancel.push(r.body["id"].as_str().unwrap_or_default().to_owned());
                repeated += 1;
            }
            Ok((r, _)) if *path != "/api/v1/orders" && r.status == 200 => repeated += 1,
            Ok((r, _)) => broken.push(format!("repeating {path} ({key}): {} {}", r.status, r.text)),
            Err(e) => broken.push(format!("repeating {path} ({key}): {e:#}")),
        }
        if *path == "/api/v1/me/points/charge" {
            let rows: i64 =
                sqlx::query_scalar("SELECT count(*) FROM point_ledger WHERE idempotency_key = $1")
                    .bind(key)
                    .fetch_one(&env.db)
                    .await?;
            if rows != 1 {
                broken.push(format!("top-up {key} is in the ledger {rows} times"));
            }
        }
    }
    for id in &to_cancel {
        let path = format!("/api/v1/orders/{id}/cancel");
        match env
            .api
            .send(Method::POST, &path, Some(token), None, None)
            .await
        {
            Ok(r) if r.status == 200 && r.order_status() == "CANCELED" => {}
            Ok(r) => broken.push(format!("canceling {id}: {} {}", r.status, r.text)),
            Err(e) => broken.push(format!("canceling {id}: {e}")),
        }
    }
    Ok(repeated)
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    if !matches!(stack.pg, Postgres::Private(_)) {
        return Ok(skipped());
    }
    let (paying, downtime) = if stack.quick {
        (10, Duration::from_secs(3))
    } else {
        (40, Duration::from_secs(10))
    };
    let env = Env::new(stack, "4-pg-restart", Duration::from_secs(600)).await?;
    let (shop, plan) = scarce_shop(&env, 5, paying).await?;
    let mut figures = Figures::default();
    let broken = &mut figures.broken;
    let placed = place_all(&env.api, &plan, "pg", 16, broken).await;
    let before = steps_done(&env).await;
    let payments = Payments::start(&env.api, &placed, "pg");
    let wanted = (paying / 2).max(1);
    let in_flight = payments
        .wait_under_way(&env, wanted, before, "PostgreSQL stop", broken)
        .await;
    let Postgres::Private(pg) = &mut stack.pg else {
        unreachable!("checked above")
    };
    pg.stop_immediate()?;
    let killed = Instant::now();
    eprintln!("chaos: [4] PostgreSQL stopped (immediate) with {in_flight} payments in flight");

    // Every route while it is down; the keyed writes are remembered to be repeated.
    let token = env.api.customer(shop.users[0]);
    let order = placed.first().map(|(_, id)| id.clone()).unwrap_or_default();
    let target = (shop.products[0], order.as_str());
    let outage = while_down(&env.api, &token, target, (killed, downtime), broken).await;
    pg.start()?;
    let down = killed.elapsed();
    eprintln!(
        "chaos: [4] PostgreSQL back after {:.1} s",
        down.as_secs_f64()
    );

    let settled = payments.settle_checked(&env, placed.len(), broken).await;
    let repeated = repeat_refused(&env, &token, &outage.keyed, broken).await?;
    // 503 "retry later" is no use to a client that waited for it: the API waits 3 s for a
    // connection, so an answer much slower than that means a request hung on the dead server.
    let slowest = outage.slowest;
    if slowest > SLOWEST_503 {
        broken.push(format!(
            "an outage answer took {:.1} s (at most {} s expected)",
            slowest.as_secs_f64(),
            SLOWEST_503.as_secs()
        ));
    }
    let five_hundreds: usize = outage
        .answers
        .0
        .iter()
        .filter(|(k, _)| k.starts_with('5') && !k.starts_with("503"))
        .map(|(_, v)| v)
        .sum();

    let (answers, keyed) = (&outage.answers, outage.keyed.len());
    figures.operations = format!(
        "{paying} payments in flight (half for a scarce product), {} requests on 7 routes \
         during the outage, {keyed} keyed requests repeated after it",
        answers.total(),
    );
    figures.faults = format!(
        "PostgreSQL immediate stop, down {:.0} s",
        down.as_secs_f64()
    );
    figures.outcomes = format!(
        "{} COMPLETED, {} CANCELED (stock sold out, undone); outage answers: {} (slowest {:.1} \
         s, {five_hundreds} 500s); {repeated}/{keyed} repeats took effect once",
        settled.completed.len(),
        settled.canceled.len(),
        answers.describe(),
        slowest.as_secs_f64(),
    );
    figures.details = json!({
        "in_flight_at_stop": in_flight, "down_s": down.as_secs_f64(),
        "completed": settled.completed.len(), "canceled": settled.canceled.len(),
        "told_canceled_on_repeat": settled.told_canceled,
        "cancel_reason_was_the_refusal": settled.circular_reasons,
        "outage": answers.0, "slowest_outage_answer_s": slowest.as_secs_f64(),
        "repeats_after_503": settled.retries, "keyed_repeated": repeated,
    });
    let verdict = env.finish(Duration::from_secs(120)).await?;
    Ok(Outcome { figures, verdict })
}

/// How long an answer may take while PostgreSQL is down.
const SLOWEST_503: Duration = Duration::from_secs(10);

/// A keyed write refused during the outage, to be repeated: route, body, key.
type Write = (&'static str, Value, String);

/// Request `n` of the outage sample, on route `n % 7`; a keyed write also says what to repeat.
async fn sample(
    api: &Api,
    token: &str,
    n: usize,
    product: ProductId,
    order: &str,
) -> (Option<Write>, Answer, Duration) {
    let asked = Instant::now();
    let post = |path: &'static str, body: Value, key: Option<String>| async move {
        let r = api
            .send(Method::POST, path, Some(token), Some(&body), key.as_deref())
            .await;
        (key.map(|k| (path, body, k)), r)
    };
    let (write, r) = match n % 7 {
        0 => (
            None,
            api.send(Method::GET, "/health", None, None, None).await,
        ),
        1 => (None, api.get("/api/v1/me", Some(token)).await),
        2 => (None, api.get("/api/v1/products", Some(token)).await),
        3 => (None, api.get("/api/v1/orders", Some(token)).await),
        4 => {
            post(
                "/api/v1/orders",
                order_body(&[(product, 1)], None),
                Some(format!("pg-outage-place-{n}")),
            )
            .await
        }
        5 => {
            post(
                "/api/v1/me/points/charge",
                json!({"amount": 7}),
                Some(format!("pg-outage-top-up-{n}")),
            )
            .await
        }
        _ => post("/api/v1/payments", json!({"order_id": order}), None).await,
    };
    (write, r, asked.elapsed())
}
