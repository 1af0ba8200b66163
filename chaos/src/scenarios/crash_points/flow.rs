//! The scenarios of the matrix as a client drives them through the HTTP API, and every answer
//! a caller got, kept for the check. Each request is repeated on 503 (with its key, when it
//! has one) until a real answer, as a careful client does; a scenario stops at the first
//! answer that is not the one it needs to go on.

use domain::{CouponId, ProductId, UserId};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sqlx::PgPool;

use testkit::shop::order_body;
use testkit::{Api, Reply};

use super::table::Scenario;
use crate::env::Env;
use crate::scenarios::coupon;

/// How long a caller repeats a request before its 503s count as no answer.
pub const CALL_PATIENCE: Duration = Duration::from_secs(60);

/// Which request a caller made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Place,
    Pay,
    Cancel,
}

/// One caller's request about the order under test (A), and its final answer.
#[derive(Debug, Clone)]
pub struct Call {
    pub who: String,
    pub kind: Kind,
    /// Whether A's row existed when the request was sent (a pay or cancel before it did is
    /// rightly told `ORDER_NOT_FOUND`).
    pub row_at_send: bool,
    /// The answer, or why there was none.
    pub answer: Result<Reply, String>,
    pub repeats: u32,
}

impl Call {
    pub fn describe(&self) -> String {
        let answer = match &self.answer {
            Ok(r) if r.status < 300 => format!("{} {}", r.status, r.order_status()),
            Ok(r) => format!(
                "{} {} {}",
                r.status,
                r.code(),
                r.body["details"]
                    .as_object()
                    .map(|d| Value::Object(d.clone()).to_string())
                    .unwrap_or_default()
            ),
            Err(e) => format!("no answer: {e}"),
        };
        format!("{}: {answer} ({} repeats)", self.who, self.repeats)
    }
}

/// What the flow, the event callers and the cell's driver share.
#[derive(Debug, Default)]
pub struct State {
    pub calls: Vec<Call>,
    /// A's order id, once known (from its placement, or from the abort).
    pub order: Option<String>,
    /// When A's placement was first sent.
    pub placed_at: Option<Instant>,
    /// The flow has nothing more to ask.
    pub done: bool,
    /// Set-up steps that did not go as the scenario needs (B's order, the top-up, arming).
    pub broken: Vec<String>,
    /// Broken promises found on the way (the terminate event's check and repairs).
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The customers, product and coupon of one cell.
#[derive(Debug, Clone, Copy)]
pub struct Shop {
    pub a_user: UserId,
    pub b_user: UserId,
    pub product: ProductId,
    pub coupon: CouponId,
    /// Units of the product A orders.
    pub quantity: i64,
}

pub async fn shop(env: &Env, scenario: Scenario) -> Result<Shop> {
    // S2: one unit, which B buys first. S5: A's user can pay for one of A and B, not both.
    let (points, stock, quantity) = match scenario {
        Scenario::SoldOut => (100_000, 1, 1),
        Scenario::PointsShort => (1_000, 100, 1),
        _ => (100_000, 100, 2),
    };
    let a_user = testkit::shop::user(&env.db, "Matrix customer A", points).await?;
    let b_user = testkit::shop::user(&env.db, "Matrix customer B", 100_000).await?;
    Ok(Shop {
        a_user,
        b_user,
        product: testkit::shop::product(&env.db, "Matrix product", 1_000, stock).await?,
        coupon: coupon(env, a_user, 100).await?,
        quantity,
    })
}

/// Writes the control file of the crashpoints worker (`CRASH_FILE`): the point, and the order
/// it must hit, if known.
#[derive(Debug, Clone)]
pub struct Arm {
    pub file: PathBuf,
    pub point: &'static str,
    /// Armed before the placement (naming no order) rather than after it.
    pub in_placement: bool,
}

impl Arm {
    pub fn write(&self, order: Option<&str>) -> Result<()> {
        let text = match order {
            Some(o) => format!("{}\n{o}\n", self.point),
            None => format!("{}\n", self.point),
        };
        // Written aside, then renamed: the worker reads the file at every point it passes, and
        // must never see the point without the order line that restricts it.
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file)
            .with_context(|| format!("cannot arm {}", self.file.display()))
    }

    pub fn disarm(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A caller of the API as one customer, recording what it is told about A.
#[derive(Clone)]
pub struct Caller {
    pub api: Api,
    pub db: PgPool,
    pub state: Shared,
}

impl Caller {
    async fn row_exists(&self, order: &str) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&self.db)
            .await
            .is_ok_and(|n| n > 0)
    }

    /// Sends one request about A until it has a real answer, and records it.
    pub async fn ask(
        &self,
        who: &str,
        kind: Kind,
        user: UserId,
        (path, body, key): (&str, Option<Value>, Option<&str>),
        order: Option<&str>,
    ) -> Option<Reply> {
        let row_at_send = match order {
            Some(o) => self.row_exists(o).await,
            None => false,
        };
        let token = self.api.customer(user);
        let result = self
            .api
            .post_repeating(path, &token, body.as_ref(), key, CALL_PATIENCE)
            .await;
        let (answer, repeats) = match result {
            Ok((r, n)) => (Ok(r), n),
            Err(e) => (Err(format!("{e:#}")), 0),
        };
        let reply = answer.as_ref().ok().cloned();
        self.state.lock().calls.push(Call {
            who: who.to_owned(),
            kind,
            row_at_send,
            answer,
            repeats,
        });
        reply
    }

    pub async fn pay(&self, who: &str, user: UserId, order: &str, key: &str) -> Option<Reply> {
        let body = json!({ "order_id": order });
        let req = ("/api/v1/payments", Some(body), Some(key));
        self.ask(who, Kind::Pay, user, req, Some(order)).await
    }

    pub async fn cancel(&self, who: &str, user: UserId, order: &str) -> Option<Reply> {
        let path = format!("/api/v1/orders/{order}/cancel");
        let req = (path.as_str(), None, None);
        self.ask(who, Kind::Cancel, user, req, Some(order)).await
    }

    /// A request the scenario needs to succeed (B's order, a top-up); not a caller under test.
    async fn set_up(&self, what: &str, user: UserId, path: &str, body: Value, key: &str) -> bool {
        let token = self.api.customer(user);
        let r = self
            .api
            .post_until_answered(path, &token, &body, key, CALL_PATIENCE)
            .await;
        let ok = matches!(&r, Ok((r, _)) if r.status < 300);
        if !ok {
            let got = match r {
                Ok((r, _)) => format!("{} {}", r.status, r.text),
                Err(e) => format!("{e:#}"),
            };
            self.state
                .lock()
                .broken
                .push(format!("set-up: {what} failed: {got}"));
        }
        ok
    }
}

/// One cell's scenario, run in the background while the cell's driver waits for the abort.
pub struct Flow {
    pub caller: Caller,
    pub scenario: Scenario,
    pub shop: Shop,
    pub arm: Arm,
}

impl Flow {
    pub async fn run(self) {
        let _ = self.steps().await;
        self.caller.state.lock().done = true;
    }

    async fn steps(&self) -> Option<()> {
        let a = self.place_a().await?;
        let (user, caller) = (self.shop.a_user, &self.caller);
        match self.scenario {
            Scenario::Happy => {
                caller.pay("pay A", user, &a, "A-pay-1").await;
            }
            Scenario::SoldOut => {
                self.order_b(self.shop.b_user).await?;
                caller.pay("pay A", user, &a, "A-pay-1").await;
            }
            Scenario::UserCancel => {
                caller.cancel("cancel A", user, &a).await;
            }
            // The payment timer does the rest.
            Scenario::Expiry => {}
            Scenario::PointsShort => {
                self.order_b(user).await?;
                let first = caller
                    .pay("pay A (points short)", user, &a, "A-pay-1")
                    .await?;
                if first.code() == "INSUFFICIENT_POINTS" {
                    let top_up = json!({ "amount": 1_000 });
                    let path = "/api/v1/me/points/charge";
                    if caller
                        .set_up("top-up", user, path, top_up, "A-top-up")
                        .await
                    {
                        caller.pay("pay A again", user, &a, "A-pay-2").await;
                    }
                }
            }
        }
        Some(())
    }

    fn arm(&self, order: Option<&str>) {
        if let Err(e) = self.arm.write(order) {
            self.caller.state.lock().broken.push(format!("{e:#}"));
        }
    }

    /// Places A (with the coupon), arming the crash before or after as its point needs.
    async fn place_a(&self) -> Option<String> {
        if self.arm.in_placement {
            self.arm(None);
        }
        self.caller.state.lock().placed_at = Some(Instant::now());
        let body = order_body(
            &[(self.shop.product, self.shop.quantity)],
            Some(self.shop.coupon),
        );
        let req = ("/api/v1/orders", Some(body), Some("A-place"));
        let reply = self
            .caller
            .ask("place A", Kind::Place, self.shop.a_user, req, None)
            .await?;
        let id = reply.body["id"].as_str().filter(|_| reply.status == 201)?;
        self.caller.state.lock().order = Some(id.to_owned());
        if !self.arm.in_placement {
            self.arm(Some(id));
        }
        Some(id.to_owned())
    }

    /// Places and pays B, one unit of the product without a coupon: it must complete.
    async fn order_b(&self, user: UserId) -> Option<()> {
        let body = order_body(&[(self.shop.product, 1)], None);
        let token = self.caller.api.customer(user);
        let placed = self
            .caller
            .api
            .post_until_answered("/api/v1/orders", &token, &body, "B-place", CALL_PATIENCE)
            .await;
        let b = match &placed {
            Ok((r, _)) if r.status == 201 => r.body["id"].as_str().map(str::to_owned),
            _ => None,
        };
        let Some(b) = b else {
            let got = placed.map_or_else(|e| format!("{e:#}"), |(r, _)| r.text);
            self.caller
                .state
                .lock()
                .broken
                .push(format!("set-up: placing B failed: {got}"));
            return None;
        };
        let pay = json!({ "order_id": b });
        self.caller
            .set_up("paying B", user, "/api/v1/payments", pay, "B-pay")
            .await
            .then_some(())
    }
}
