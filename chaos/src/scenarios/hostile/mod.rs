//! Scenario 6: hostile input over HTTP, generated from a fixed seed as a table of cases run by
//! the one driver ([`crate::cases`]). Every case starts from a valid request and breaks at
//! least one rule: malformed or truncated JSON, wrong types, missing and unknown fields, numbers
//! out of range or not integers, thousands of lines, deep nesting, bodies over 64 KiB, control
//! characters and invalid UTF-8 ([`body`]), bad paths, queries and headers ([`request`]).
//! Valid-but-nasty values (SQL metacharacters, unicode tricks) ride along in the other fields
//! ([`fields`]). Each answer must be the contract's 4xx with the code that rule calls for, never
//! a 5xx; the API must still be alive; and no table of the database may have changed.

mod body;
mod fields;
mod request;

use domain::{CouponId, ProductId};
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use domain::Discount;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};
use testkit::Api;
use testkit::shop::{self, Shop, order_body};

use self::fields::{BODY_ROUTES, Route, nasty, valid};
use super::{Figures, Outcome};
use crate::cases::{self, Answers, Case, Driver, Expect};
use crate::env::{Env, Stack, fingerprint, fingerprint_diff};
use crate::rng::Rng;

/// CONTRACT §5: a body over 64 KiB is 413 `PAYLOAD_TOO_LARGE` (the contract's figure, not the
/// API's constant, so that the API is checked against it).
const LIMIT: usize = 64 * 1024;

/// What the cases need to know about the shop they attack.
struct Ctx {
    customer: String,
    admin: String,
    /// Products with stock, usable in valid orders.
    products: Vec<ProductId>,
    /// A product with no stock.
    sold_out: ProductId,
    /// The customer's coupon, and another user's.
    coupon: CouponId,
    foreign_coupon: CouponId,
    /// The customer's order, already `COMPLETED`.
    completed_order: String,
    /// Every order id of the customer (never used where a miss is expected).
    own_orders: Vec<String>,
}

/// The JSON pointer's parent and last key.
fn split_ptr(ptr: &str) -> (&str, &str) {
    ptr.rsplit_once('/').unwrap_or(("", ptr))
}

/// Sets `ptr` in `body` to a placeholder that is later replaced by `raw` bytes.
fn set_raw(body: &mut Value, ptr: &str, raw: Vec<u8>, raws: &mut Vec<Vec<u8>>) {
    let marker = Value::String(format!("\u{1}RAW{}\u{1}", raws.len()));
    raws.push(raw);
    if ptr.is_empty() {
        *body = marker;
    } else if let Some(slot) = body.pointer_mut(ptr) {
        *slot = marker;
    } else {
        let (parent, key) = split_ptr(ptr);
        if let Some(Value::Object(m)) = body.pointer_mut(parent) {
            m.insert(key.to_owned(), marker);
        }
    }
}

fn render(body: &Value, raws: &[Vec<u8>]) -> Vec<u8> {
    let mut out = serde_json::to_vec(body).expect("a value serialises");
    for (i, raw) in raws.iter().enumerate() {
        let marker = format!("\"\\u0001RAW{i}\\u0001\"");
        if let Some(at) = find(&out, marker.as_bytes()) {
            out.splice(at..at + marker.len(), raw.iter().copied());
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every byte but unreserved ones percent-encoded, so the server decodes exactly `s`.
fn encode(s: &[u8]) -> String {
    s.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn header(name: &str, value: &[u8]) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
        HeaderValue::from_bytes(value).expect("a header value"),
    )
}

fn bearer(token: &str) -> (HeaderName, HeaderValue) {
    header(AUTHORIZATION.as_str(), format!("Bearer {token}").as_bytes())
}

/// One valid request per body route, with nasty-but-valid text in every string field: each
/// must succeed, and what is stored must be what was sent. Returns what went wrong.
async fn controls(api: &Api, ctx: &Ctx, rng: &mut Rng) -> Vec<String> {
    let mut broken = Vec::new();
    let mut order: Option<String> = None;
    for route in BODY_ROUTES {
        let (mut body, fields) = valid(route, ctx, rng);
        nasty(&mut body, &fields, rng, 1.0);
        if route == Route::Payments {
            match &order {
                Some(id) => body = json!({"order_id": id}),
                None => {
                    broken.push("control: no order to pay".into());
                    continue;
                }
            }
        }
        let token = if route.admin() {
            &ctx.admin
        } else {
            &ctx.customer
        };
        let key = route.keyed().then(|| format!("control-{route:?}"));
        let r = api
            .send(
                Method::POST,
                route.path(),
                Some(token),
                Some(&body),
                key.as_deref(),
            )
            .await;
        match r {
            Ok(r) if (200..300).contains(&r.status) => {
                if route == Route::Orders {
                    order = r.body["id"].as_str().map(str::to_owned);
                    if r.body["shipping"] != body["shipping"] {
                        broken.push(format!(
                            "control order stored {} for {}",
                            r.body["shipping"], body["shipping"]
                        ));
                    }
                }
                if matches!(route, Route::AdminUsers | Route::AdminProducts)
                    && r.body["name"] != body["name"]
                {
                    broken.push(format!(
                        "control {route:?} stored name {} for {}",
                        r.body["name"], body["name"]
                    ));
                }
            }
            Ok(r) => broken.push(format!(
                "control {route:?} with {body}: {} {}",
                r.status, r.text
            )),
            Err(e) => broken.push(format!("control {route:?}: no answer: {e}")),
        }
    }
    broken
}

/// The shop the cases attack: products with stock and one sold out, a coupon of the customer's
/// and one of another user's, and one finished order of the customer's for paths and payments
/// to aim at.
async fn shop_under_attack(env: &Env) -> Result<Ctx> {
    let products = [(1_000, 1_000), (2_000, 1_000), (3_000, 1_000)];
    let shop = Shop::open(&env.db, 2, 100_000_000, &products).await?;
    let sold_out = shop::product(&env.db, "Sold out", 1_000, 0).await?;
    let fixed = Discount::Fixed { amount: 100 };
    let coupon = shop::coupon(&env.db, shop.users[0], fixed, None).await?;
    let foreign_coupon = shop::coupon(&env.db, shop.users[1], fixed, None).await?;
    let customer = env.api.customer(shop.users[0]);
    let body = order_body(&[(shop.products[0], 1)], None);
    let placed = env
        .api
        .post("/api/v1/orders", Some(&customer), &body)
        .await?;
    let completed_order = placed.body["id"].as_str().unwrap_or_default().to_owned();
    let pay = json!({"order_id": completed_order});
    let paid = env
        .api
        .post("/api/v1/payments", Some(&customer), &pay)
        .await?;
    if paid.order_status() != "COMPLETED" {
        anyhow::bail!(
            "the setup order did not complete: {} {}",
            paid.status,
            paid.text
        );
    }
    // Its delivery to the data platform is the last write it makes.
    super::wait_for(Duration::from_secs(30), || async {
        env.count("SELECT count(*) FROM orders WHERE platform_notified_at IS NULL")
            .await
            .is_ok_and(|n| n == 0)
    })
    .await;
    Ok(Ctx {
        customer,
        admin: env.api.admin(),
        products: shop.products,
        sold_out,
        coupon,
        foreign_coupon,
        own_orders: vec![completed_order.clone()],
        completed_order,
    })
}

/// The table: `n` cases, seven in ten of them body cases, each from a fork of `rng`.
fn generate(ctx: &Ctx, rng: &mut Rng, n: usize) -> Vec<Case> {
    (0..n)
        .map(|i| {
            let mut r = rng.fork();
            if r.chance(0.7) {
                body::body_case(i, ctx, &mut r)
            } else {
                request::request_case(ctx, &mut r)
            }
        })
        .collect()
}

/// Of the cases, those that may get the router's own codes.
fn route_level(cases: &[Case]) -> usize {
    cases
        .iter()
        .filter(|c| {
            matches!(
                c.expect,
                Expect::Error {
                    route_level: true,
                    ..
                }
            )
        })
        .count()
}

/// What the cases left behind, checked once they have all been answered.
struct After {
    changed: Vec<String>,
    tables: usize,
    controls: Vec<String>,
    alive: bool,
    panics: usize,
    internal: usize,
}

impl After {
    async fn check(
        env: &mut Env,
        before: &BTreeMap<String, String>,
        ctx: &Ctx,
        rng: &mut Rng,
    ) -> Result<Self> {
        let after = fingerprint(&env.db).await?;
        // Without the controls, the cases would prove nothing: the same bodies unbroken, with
        // nasty-but-valid text in every field, are accepted and kept as sent.
        let controls = controls(&env.api, ctx, rng).await;
        let alive = env.api_alive();
        let healthy = env.api.wait_healthy(Duration::from_secs(10)).await.is_ok();
        Ok(Self {
            changed: fingerprint_diff(before, &after),
            tables: before.len(),
            controls,
            alive: alive && healthy,
            panics: env.api_log_count("panicked"),
            internal: env.api_log_count("answering 500"),
        })
    }

    /// What went wrong, for the figures.
    fn broken(&self, answers: &Answers, api_log: &std::path::Path) -> Vec<String> {
        let mut broken = self.controls.clone();
        broken.extend(answers.failures.iter().take(25).cloned());
        if answers.failures.len() > 25 {
            broken.push(format!(
                "... and {} more cases",
                answers.failures.len() - 25
            ));
        }
        broken.extend(
            self.changed
                .iter()
                .map(|c| format!("the database changed: {c}")),
        );
        if !self.alive {
            broken.push("the API is not alive and healthy after the cases".into());
        }
        if self.panics > 0 || self.internal > 0 {
            broken.push(format!(
                "the API log has {} panics and {} 500s ({})",
                self.panics,
                self.internal,
                api_log.display()
            ));
        }
        broken
    }

    fn tables_unchanged(&self) -> String {
        if self.changed.is_empty() {
            self.tables.to_string()
        } else {
            format!("{} of {}", self.tables - self.changed.len(), self.tables)
        }
    }
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let cases_n = if stack.quick { 600 } else { 5_000 };
    let mut env = Env::new(stack, "6-hostile-input", Duration::from_secs(600)).await?;
    let ctx = shop_under_attack(&env).await?;

    let before = fingerprint(&env.db).await?;
    let mut rng = Rng::new(stack.seed ^ 0x6057);
    let cases = generate(&ctx, &mut rng, cases_n);
    // The whole list, to replay or read a case by its number.
    let listing: String = cases
        .iter()
        .enumerate()
        .map(|(n, c)| format!("{n:5} {} {}\n", c.expect.describe(), c.name))
        .collect();
    let _ = std::fs::write(stack.paths.dir.join("hostile-cases.txt"), listing);
    let bytes_sent: usize = cases
        .iter()
        .map(|c| c.request.body.as_ref().map_or(0, Vec::len))
        .sum();
    let route_level = route_level(&cases);
    let driver = Driver {
        parallel: 8,
        ask_again_when_unanswered: true,
    };
    let answers = cases::run(&env.api, cases, driver).await;
    let after = After::check(&mut env, &before, &ctx, &mut rng).await?;

    let figures = Figures {
        operations: format!(
            "{cases_n} generated requests (seed {:#x}, {:.1} MB of bodies) on 6 body routes, \
             paths, queries and headers",
            stack.seed,
            bytes_sent as f64 / 1e6
        ),
        faults: "hostile input".into(),
        outcomes: format!(
            "{} answered as the rule says, {} not; {} 5xx; {} tables unchanged; API {}; \
             answers: {}",
            cases_n - answers.failures.len(),
            answers.failures.len(),
            answers.server_errors,
            after.tables_unchanged(),
            if after.alive { "alive" } else { "DOWN" },
            answers.tally.describe()
        ),
        details: json!({
            "controls_accepted": after.controls.is_empty(),
            "cases": cases_n, "seed": stack.seed, "bytes": bytes_sent,
            "failures": answers.failures.len(), "server_errors": answers.server_errors,
            "route_level_cases": route_level, "tables": after.tables,
            "tables_changed": after.changed, "answers": answers.tally.0,
            "api_alive": after.alive,
        }),
        broken: after.broken(&answers, &env.api_log),
    };
    let verdict = env.finish(Duration::from_secs(60)).await?;
    Ok(Outcome { figures, verdict })
}
