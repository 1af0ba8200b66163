//! Scenario 6: hostile input over HTTP, generated from a fixed seed. Every case starts from a
//! valid request and breaks at least one rule: malformed or truncated JSON, wrong types,
//! missing and unknown fields, numbers out of range or not integers, thousands of lines, deep
//! nesting, bodies over 64 KiB, control characters and invalid UTF-8, bad paths, queries and
//! headers. Valid-but-nasty values (SQL metacharacters, unicode tricks) ride along in the other
//! fields. Each answer must be the contract's 4xx with the code that rule calls for, never a
//! 5xx; the API must still be alive; and no table of the database may have changed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use domain::Discount;
use testkit::shop::{self, Shop, order_body};
use testkit::{Api, Raw};

use super::{Figures, Outcome, RICH, Tally};
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
    products: Vec<i64>,
    /// A product with no stock.
    sold_out: i64,
    /// The customer's coupon, and another user's.
    coupon: i64,
    foreign_coupon: i64,
    /// The customer's order, already `COMPLETED`.
    completed_order: String,
    /// Every order id of the customer (never used where a miss is expected).
    own_orders: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Orders,
    Payments,
    TopUp,
    AdminUsers,
    AdminProducts,
    AdminCoupons,
}

const BODY_ROUTES: [Route; 6] = [
    Route::Orders,
    Route::Payments,
    Route::TopUp,
    Route::AdminUsers,
    Route::AdminProducts,
    Route::AdminCoupons,
];

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Orders => "/api/v1/orders",
            Route::Payments => "/api/v1/payments",
            Route::TopUp => "/api/v1/me/points/charge",
            Route::AdminUsers => "/api/v1/admin/users",
            Route::AdminProducts => "/api/v1/admin/products",
            Route::AdminCoupons => "/api/v1/admin/coupons",
        }
    }

    fn admin(self) -> bool {
        matches!(
            self,
            Route::AdminUsers | Route::AdminProducts | Route::AdminCoupons
        )
    }

    /// Routes that read an Idempotency-Key before the body.
    fn keyed(self) -> bool {
        matches!(self, Route::Orders | Route::Payments | Route::TopUp)
    }
}

/// What a field accepts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int(i64, i64),
    OptInt(i64, i64),
    Str(usize, usize),
    Phone,
    Date,
    /// Any string (an order id: a miss is a business outcome, not a parse error).
    AnyStr,
    Obj,
    Arr,
}

#[derive(Debug, Clone)]
struct Field {
    ptr: String,
    kind: Kind,
    required: bool,
}

fn field(ptr: impl Into<String>, kind: Kind, required: bool) -> Field {
    Field {
        ptr: ptr.into(),
        kind,
        required,
    }
}

const MAX_AMOUNT: i64 = starter::http::MAX_AMOUNT;

/// A valid body for `route`, and its fields.
fn valid(route: Route, ctx: &Ctx, rng: &mut Rng) -> (Value, Vec<Field>) {
    match route {
        Route::Orders => {
            let n = 1 + rng.below(ctx.products.len());
            let lines: Vec<(i64, i64)> = ctx.products[..n]
                .iter()
                .map(|p| (*p, rng.range(1, 3)))
                .collect();
            let coupon = rng.chance(0.5).then_some(ctx.coupon);
            let body = order_body(&lines, coupon);
            let mut fields = vec![
                field("/items", Kind::Arr, true),
                // Any integer id passes the input rules: one that names nothing (0 and
                // negatives included) is a business outcome, 422 COUPON_INVALID NOT_FOUND.
                field("/coupon_id", Kind::OptInt(i64::MIN, i64::MAX), false),
                field("/shipping", Kind::Obj, true),
                field("/shipping/recipient", Kind::Str(1, 100), true),
                field("/shipping/address", Kind::Str(1, 300), true),
                field("/shipping/phone", Kind::Phone, true),
            ];
            for k in 0..n {
                fields.push(field(format!("/items/{k}"), Kind::Obj, true));
                // Any integer product id passes the input rules: one that names nothing (0 and
                // negatives included) is a business outcome, 404 PRODUCT_NOT_FOUND. Its bad
                // numbers are those that are no 64-bit integer.
                fields.push(field(
                    format!("/items/{k}/product_id"),
                    Kind::Int(i64::MIN, i64::MAX),
                    true,
                ));
                fields.push(field(
                    format!("/items/{k}/quantity"),
                    Kind::Int(1, 1000),
                    true,
                ));
            }
            (body, fields)
        }
        Route::Payments => (
            json!({"order_id": ctx.completed_order}),
            vec![field("/order_id", Kind::AnyStr, true)],
        ),
        Route::TopUp => (
            json!({"amount": rng.range(1, 10_000_000)}),
            vec![field("/amount", Kind::Int(1, 10_000_000), true)],
        ),
        Route::AdminUsers => (
            json!({"name": "Eve", "points": rng.range(0, 1000)}),
            vec![
                field("/name", Kind::Str(1, 200), true),
                field("/points", Kind::Int(0, MAX_AMOUNT), true),
            ],
        ),
        Route::AdminProducts => (
            json!({"name": "Widget", "price": rng.range(1, 1000), "stock": rng.range(0, 1000)}),
            vec![
                field("/name", Kind::Str(1, 200), true),
                field("/price", Kind::Int(1, MAX_AMOUNT), true),
                field("/stock", Kind::Int(0, starter::http::MAX_STOCK), true),
            ],
        ),
        Route::AdminCoupons => {
            let mut fields = vec![
                // user_id: any integer parses; a user that does not exist is refused (400).
                field("/user_id", Kind::Int(1, i64::MAX), true),
                field("/discount", Kind::Obj, true),
                field("/discount/type", Kind::Str(5, 7), true),
                field("/min_order_amount", Kind::OptInt(0, MAX_AMOUNT), false),
                field("/expires_at", Kind::Date, true),
            ];
            let discount = if rng.chance(0.5) {
                fields.push(field("/discount/amount", Kind::Int(1, MAX_AMOUNT), true));
                json!({"type": "FIXED", "amount": rng.range(1, 5000)})
            } else {
                fields.push(field("/discount/percent", Kind::Int(1, 100), true));
                fields.push(field(
                    "/discount/max_amount",
                    Kind::OptInt(1, MAX_AMOUNT),
                    false,
                ));
                json!({"type": "PERCENT", "percent": rng.range(1, 100), "max_amount": 1000})
            };
            (
                json!({"user_id": 1, "discount": discount, "min_order_amount": 0,
                       "expires_at": "2099-01-01T00:00:00Z"}),
                fields,
            )
        }
    }
}

/// Strings no rule forbids, that have broken many a naive service.
const NASTY_OK: [&str; 14] = [
    "'; DROP TABLE users; --",
    "\" OR \"1\"=\"1",
    "Robert'); DELETE FROM orders WHERE ('1'='1",
    "<script>alert(1)</script>",
    "%s%s%n%x",
    "${jndi:ldap://example.invalid/a}",
    "../../../../etc/passwd",
    "김민지 🚀 Ünïcödé",
    "\u{202E}evil\u{202D}",
    "a\u{200B}b\u{FEFF}c",
    "e\u{301}\u{301}\u{301}",
    "null",
    "\\\\server\\share",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{10FFFF}",
];

const PHONES_OK: [&str; 4] = [
    "+82 10-1234-5678",
    "0101234567",
    "010 1234 5678",
    "+1-555-0100",
];

/// Numbers as JSON text; `None` when the literal is not a JSON number at all.
const NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e30",
    "1.5",
    "1.0",
    "1e2",
    "-0.0",
    "0.000001",
    "100000000000000000000000000000000000000000000000000",
    "1001",
    "10000001",
    "1000000000001",
];

/// Whether a JSON number literal would be accepted as an i64 in `lo..=hi`.
fn int_ok(lit: &str, lo: i64, hi: i64) -> bool {
    lit.parse::<i64>().is_ok_and(|v| (lo..=hi).contains(&v))
}

/// A JSON value of another type than `kind` accepts.
fn wrong_type(kind: Kind, rng: &mut Rng) -> String {
    let choices: &[&str] = match kind {
        Kind::Int(..) => &["\"5\"", "true", "null", "[]", "{}", "\"\"", "[1]"],
        Kind::OptInt(..) => &["\"5\"", "true", "[]", "{}", "\"\"", "[1]"],
        Kind::Str(..) | Kind::Phone | Kind::AnyStr => &["5", "true", "null", "[]", "{}", "-1.5"],
        Kind::Date => &[
            "5",
            "true",
            "null",
            "\"not a date\"",
            "\"2099-13-01T00:00:00Z\"",
            "\"2099-01-01\"",
            "\"2099-02-30T00:00:00Z\"",
            "\"tomorrow\"",
        ],
        Kind::Obj => &["[]", "\"x\"", "5", "null", "true"],
        Kind::Arr => &["{}", "\"x\"", "5", "null", "true"],
    };
    rng.pick(choices).to_string()
}

/// A string value (JSON text) that breaks `kind`'s rule, or `None` when it has no string rule.
fn bad_string(kind: Kind, rng: &mut Rng) -> Option<String> {
    let control = [
        "a\u{0}b",
        "line1\nline2",
        "tab\there",
        "\u{1b}[31mred",
        "del\u{7f}",
        "nel\u{85}",
    ];
    let s: String = match kind {
        Kind::Str(min, max) => match rng.below(4) {
            0 => "x".repeat(max + 1 + rng.below(max * 3 + 1)),
            1 if min > 0 => String::new(),
            2 => "\n".repeat(10_000),
            _ => format!("Kim{}", rng.pick(&control)),
        },
        Kind::Phone => rng
            .pick(&[
                "010-CALL-ME",
                "1'; DROP TABLE users;--",
                "０１０１２３４５６７８",
                "123456",
                "123456789012345678901",
                "",
                "010\n1234\n5678",
                "(010) 1234-5678",
            ])
            .to_string(),
        _ => return None,
    };
    Some(serde_json::to_string(&s).expect("a string serialises"))
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

/// One hostile request and the codes it may be answered with.
struct Case {
    n: usize,
    what: String,
    raw: Raw,
    expect: Vec<&'static str>,
    /// What the answer's `details` must hold where CONTRACT §5 says what they name (a business
    /// rule broken on purpose); empty where any details of the code will do.
    details: Value,
    /// Codes outside the contract's table that this case may get (an unknown route or method;
    /// docs/API.md documents them).
    route_level: bool,
}

/// Puts valid-but-nasty values into string fields, each with probability `p`.
fn nasty(body: &mut Value, fields: &[Field], rng: &mut Rng, p: f64) {
    for f in fields {
        match f.kind {
            Kind::Str(_, max) if !f.ptr.ends_with("/type") && rng.chance(p) => {
                let s = rng.pick(&NASTY_OK);
                if s.chars().count() <= max
                    && let Some(slot) = body.pointer_mut(&f.ptr)
                {
                    *slot = json!(s);
                }
            }
            Kind::Phone if rng.chance(p) => {
                if let Some(slot) = body.pointer_mut(&f.ptr) {
                    *slot = json!(rng.pick(&PHONES_OK));
                }
            }
            _ => {}
        }
    }
}

/// A body case: a valid body for a random route with one rule broken (and nasty-but-valid
/// values elsewhere).
fn body_case(n: usize, ctx: &Ctx, rng: &mut Rng) -> Case {
    let route = *rng.pick(&BODY_ROUTES);
    let (mut body, fields) = valid(route, ctx, rng);
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut headers = vec![bearer(if route.admin() {
        &ctx.admin
    } else {
        &ctx.customer
    })];
    let mut content_type = Some("application/json".to_owned());
    let mut expect: Vec<&'static str> = vec!["INVALID_REQUEST"];
    let mut details = json!({});
    let mut semantic = false;
    let mut key_broken = false;
    let mut bytes_override: Option<Vec<u8>> = None;

    let breaker = rng.below(100);
    // Valid-but-nasty values first; the breaker may overwrite them.
    if breaker >= 4 && rng.chance(0.6) {
        nasty(&mut body, &fields, rng, 0.5);
    }
    let what = match breaker {
        // A business rule the input rules cannot see: answered by the saga or the database.
        0..=3 => {
            semantic = true;
            match route {
                Route::Orders => match rng.below(4) {
                    0 => {
                        body["items"][0]["product_id"] = json!(987_654_321);
                        expect = vec!["PRODUCT_NOT_FOUND"];
                        details = json!({"product_id": 987_654_321});
                        "a product that does not exist"
                    }
                    1 => {
                        body["items"] = json!([{"product_id": ctx.sold_out, "quantity": 1}]);
                        expect = vec!["INSUFFICIENT_STOCK"];
                        details = json!({"product_id": ctx.sold_out, "available": 0});
                        "a sold-out product"
                    }
                    2 => {
                        body["coupon_id"] = json!(ctx.foreign_coupon);
                        expect = vec!["COUPON_INVALID"];
                        details = json!({"reason": "NOT_OWNED"});
                        "another user's coupon"
                    }
                    _ => {
                        body["coupon_id"] = json!(987_654_321);
                        expect = vec!["COUPON_INVALID"];
                        details = json!({"reason": "NOT_FOUND"});
                        "a coupon that does not exist"
                    }
                },
                Route::Payments => {
                    if rng.chance(0.5) {
                        expect = vec!["ORDER_NOT_PAYABLE"];
                        details = json!({"status": "COMPLETED"});
                        "paying a COMPLETED order again"
                    } else {
                        let id = rng.pick(&NASTY_OK).to_string();
                        body["order_id"] = json!(id);
                        expect = vec!["ORDER_NOT_FOUND"];
                        "an order id that is no order"
                    }
                }
                Route::AdminCoupons => {
                    body["user_id"] = json!(987_654_321);
                    "a coupon for a user who does not exist"
                }
                _ => {
                    // No business rule here: break the input rules instead.
                    semantic = false;
                    body = json!({});
                    "an empty object"
                }
            }
            .to_owned()
        }
        4..=15 => {
            let text = render(&body, &raws);
            let cut = rng.below(text.len().max(1));
            bytes_override = Some(text[..cut].to_vec());
            format!("JSON cut at byte {cut} of {}", text.len())
        }
        16..=27 => {
            let f = rng.pick(&fields).clone();
            let v = wrong_type(f.kind, rng);
            set_raw(&mut body, &f.ptr, v.clone().into_bytes(), &mut raws);
            format!("{} as {v}", f.ptr)
        }
        28..=35 => {
            let required: Vec<&Field> = fields.iter().filter(|f| f.required).collect();
            let f = rng.pick(&required);
            let (parent, key) = split_ptr(&f.ptr);
            match body.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(key);
                }
                Some(Value::Array(a)) => {
                    // An item of `items`: dropping it leaves a valid order, so break it instead.
                    if let Ok(i) = key.parse::<usize>() {
                        a[i] = json!({});
                    }
                }
                _ => {}
            }
            format!("{} missing", f.ptr)
        }
        36..=45 => {
            let objects: Vec<&Field> = fields
                .iter()
                .filter(|f| matches!(f.kind, Kind::Obj))
                .collect();
            let parent = if objects.is_empty() || rng.chance(0.5) {
                String::new()
            } else {
                rng.pick(&objects).ptr.clone()
            };
            let names = [
                "admin",
                "is_admin",
                "__proto__",
                "constructor",
                "",
                "ITEMS",
                "id",
                "role",
                "status",
                "total",
                "' OR 1=1 --",
                "ключ",
                "🔑",
                "a\u{0}b",
                "user_id ",
            ];
            let known: Vec<String> = match body.pointer(&parent) {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let all_known = [
                "items",
                "coupon_id",
                "shipping",
                "order_id",
                "amount",
                "name",
                "points",
                "price",
                "stock",
                "user_id",
                "discount",
                "min_order_amount",
                "expires_at",
                "type",
                "percent",
                "max_amount",
                "product_id",
                "quantity",
                "recipient",
                "address",
                "phone",
            ];
            let name = names
                .iter()
                .copied()
                .filter(|n| !known.iter().any(|k| k == n) && !all_known.contains(n))
                .nth(rng.below(8))
                .unwrap_or("unexpected");
            if let Some(Value::Object(m)) = body.pointer_mut(&parent) {
                m.insert(name.to_owned(), json!(rng.pick(&NASTY_OK)));
            }
            format!("unknown field {name:?} in {parent:?}")
        }
        46..=57 => {
            let ints: Vec<&Field> = fields
                .iter()
                .filter(|f| matches!(f.kind, Kind::Int(..) | Kind::OptInt(..)))
                .collect();
            if ints.is_empty() {
                body = json!({"order_id": 5});
                "order_id as a number".to_owned()
            } else {
                let f = rng.pick(&ints);
                let (lo, hi) = match f.kind {
                    Kind::Int(lo, hi) | Kind::OptInt(lo, hi) => (lo, hi),
                    _ => unreachable!("filtered"),
                };
                let bad: Vec<&str> = NUMBERS
                    .iter()
                    .copied()
                    .filter(|lit| !int_ok(lit, lo, hi))
                    .collect();
                let lit = rng.pick(&bad);
                set_raw(&mut body, &f.ptr, lit.as_bytes().to_vec(), &mut raws);
                format!("{} = {lit}", f.ptr)
            }
        }
        58..=67 => {
            let strs: Vec<&Field> = fields
                .iter()
                .filter(|f| {
                    matches!(
                        f.kind,
                        Kind::Str(..) | Kind::Phone | Kind::Date | Kind::AnyStr
                    ) && !f.ptr.ends_with("/type")
                })
                .collect();
            match strs.is_empty() {
                true => {
                    // No string field (a top-up): its number as a string that is not UTF-8.
                    let f = &fields[0];
                    set_raw(&mut body, &f.ptr, b"\"5\xff\xfe\"".to_vec(), &mut raws);
                    format!("{} as a string with invalid UTF-8", f.ptr)
                }
                false => {
                    let f = rng.pick(&strs);
                    match bad_string(f.kind, rng) {
                        Some(v) if rng.chance(0.8) => {
                            let shown: String = v.chars().take(40).collect();
                            set_raw(&mut body, &f.ptr, v.into_bytes(), &mut raws);
                            format!("{} = {shown}", f.ptr)
                        }
                        _ => {
                            let raw = if rng.chance(0.5) {
                                b"\"Kim\xff\xfeMinji\"".to_vec()
                            } else {
                                b"\"\\ud800 lone surrogate\"".to_vec()
                            };
                            set_raw(&mut body, &f.ptr, raw, &mut raws);
                            format!("{} with invalid UTF-8 or a lone surrogate", f.ptr)
                        }
                    }
                }
            }
        }
        68..=73 if route == Route::Orders => {
            let p = ctx.products[0];
            let (items, what) = match rng.below(4) {
                0 => (json!([]), "no lines".to_owned()),
                1 => {
                    let n = 51;
                    let v: Vec<Value> = (1..=n)
                        .map(|i| json!({"product_id": i, "quantity": 1}))
                        .collect();
                    (Value::Array(v), "51 lines".to_owned())
                }
                2 => {
                    let v: Vec<Value> = (1..=10_000)
                        .map(|i| json!({"product_id": i, "quantity": 1}))
                        .collect();
                    (Value::Array(v), "10,000 lines".to_owned())
                }
                _ => (
                    json!([{"product_id": p, "quantity": 1}, {"product_id": p, "quantity": 2}]),
                    "the same product twice".to_owned(),
                ),
            };
            body["items"] = items;
            what
        }
        68..=79 => {
            let depth = *rng.pick(&[129usize, 500, 5_000, 40_000]);
            let target = if rng.chance(0.3) {
                String::new()
            } else {
                rng.pick(&fields).ptr.clone()
            };
            let closed = rng.chance(0.7);
            let mut raw = "[".repeat(depth).into_bytes();
            if closed {
                raw.extend("]".repeat(depth).into_bytes());
            }
            set_raw(&mut body, &target, raw, &mut raws);
            format!(
                "{target:?} nested {depth} deep{}",
                if closed { "" } else { ", unclosed" }
            )
        }
        80..=85 => {
            let text = render(&body, &raws);
            let spread = if rng.chance(0.8) { 4096 } else { 1 << 20 };
            let size = LIMIT + 1 + rng.below(spread);
            let mut padded = text.clone();
            if rng.chance(0.5) {
                padded.resize(size, b' ');
                bytes_override = Some(padded);
                format!("valid JSON padded with spaces to {size} bytes")
            } else {
                let f = fields
                    .iter()
                    .find(|f| matches!(f.kind, Kind::Str(..) | Kind::AnyStr))
                    .map_or("/name".to_owned(), |f| f.ptr.clone());
                let v = serde_json::to_string(&"x".repeat(size)).expect("a string");
                set_raw(&mut body, &f, v.into_bytes(), &mut raws);
                format!("{f} of {size} characters")
            }
        }
        86..=89 => {
            let root = rng.pick(&["[]", "null", "1", "\"order\"", "true", "{}", "", "   "]);
            bytes_override = Some(root.as_bytes().to_vec());
            format!("body {root:?}")
        }
        90..=92 => {
            let text = render(&body, &raws);
            let dup = match route {
                Route::Orders => "\"items\":[],",
                Route::Payments => "\"order_id\":\"x\",",
                Route::TopUp => "\"amount\":5,",
                Route::AdminUsers | Route::AdminProducts => "\"name\":\"dup\",",
                Route::AdminCoupons => "\"user_id\":1,",
            };
            let mut out = b"{".to_vec();
            out.extend_from_slice(dup.as_bytes());
            out.extend_from_slice(&text[1..]);
            bytes_override = Some(out);
            format!("duplicate key {dup}")
        }
        93..=95 => {
            let ct = *rng.pick(&[
                "",
                "text/plain",
                "application/xml",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonx",
                "json",
            ]);
            content_type = (!ct.is_empty()).then(|| ct.to_owned());
            format!("Content-Type {ct:?}")
        }
        _ if route.keyed() => {
            key_broken = true;
            let (value, what): (Vec<u8>, &str) = match rng.below(5) {
                0 => (Vec::new(), "empty"),
                1 => (vec![b'k'; 201], "201 characters"),
                2 => (b"key\twith-tab".to_vec(), "a tab"),
                3 => (b"cl\xe9-\xff".to_vec(), "bytes beyond ASCII"),
                _ => (b"twice".to_vec(), "sent twice"),
            };
            if what == "sent twice" {
                headers.push(header("idempotency-key", b"first"));
            }
            headers.push(header("idempotency-key", &value));
            format!("Idempotency-Key {what}")
        }
        _ => {
            // No key on this route: break the token instead.
            headers[0] = header(AUTHORIZATION.as_str(), b"Bearer not-a-jwt");
            expect = vec!["UNAUTHENTICATED"];
            "a token that is no JWT".to_owned()
        }
    };

    // A valid key rides along on some requests; none ever reaches the point where keys are
    // recorded, except with a business rule broken, which gets no key.
    if route.keyed() && !key_broken && !semantic && rng.chance(0.3) {
        headers.push(header("idempotency-key", format!("hostile-{n}").as_bytes()));
    }
    let bytes = bytes_override.unwrap_or_else(|| render(&body, &raws));
    let json_type = content_type
        .as_deref()
        .is_some_and(|c| c == "application/json");
    if let Some(ct) = &content_type {
        headers.push(header(CONTENT_TYPE.as_str(), ct.as_bytes()));
    }
    if expect != ["UNAUTHENTICATED"] {
        if key_broken || !json_type {
            expect = vec!["INVALID_REQUEST"];
            details = json!({});
        } else if bytes.len() > LIMIT {
            expect = vec!["PAYLOAD_TOO_LARGE"];
            details = json!({});
        }
    }
    Case {
        n,
        what: format!("POST {}: {what}", route.path()),
        raw: Raw {
            method: Method::POST,
            path: route.path().to_owned(),
            headers,
            body: Some(bytes),
        },
        expect,
        details,
        route_level: false,
    }
}

/// Path segments: decoded, they are what the server sees.
const SEGMENTS: [&[u8]; 18] = [
    b"abc",
    b"-1",
    b"0",
    b"987654",
    b"+987654",
    b"99999999999999999999",
    b"1.5",
    b"1e3",
    b" 1",
    b"\x00",
    b"\xff\xfe",
    b"' OR '1'='1",
    b"ord-../../etc/passwd",
    b"<script>",
    b"%00",
    "김민지".as_bytes(),
    b"a/b",
    b"ord-\x7f",
];

/// A path, query or header case.
fn request_case(n: usize, ctx: &Ctx, rng: &mut Rng) -> Case {
    let customer = bearer(&ctx.customer);
    let mut seg: Vec<u8> = rng.pick(&SEGMENTS).to_vec();
    if rng.chance(0.1) {
        seg = vec![b'z'; 1 + rng.below(4000)];
    }
    let utf8 = std::str::from_utf8(&seg).ok().map(str::to_owned);
    let (method, path, headers, expect, details, what, route_level) = match rng.below(10) {
        0..=2 => {
            // Product ids: a number names a product that does not exist; anything else is not
            // an id at all.
            let (expect, details) = match utf8.as_deref().map(str::parse::<i64>) {
                Some(Ok(id)) => ("PRODUCT_NOT_FOUND", json!({"product_id": id})),
                _ => ("INVALID_REQUEST", json!({})),
            };
            (
                Method::GET,
                format!("/api/v1/products/{}", encode(&seg)),
                vec![customer],
                vec![expect],
                details,
                format!("GET /api/v1/products/{}", String::from_utf8_lossy(&seg)),
                false,
            )
        }
        3..=5 => {
            let cancel = rng.chance(0.5);
            let own = utf8
                .as_deref()
                .is_some_and(|s| ctx.own_orders.iter().any(|o| o == s));
            if own {
                seg = b"not-mine".to_vec();
            }
            let expect = if utf8.is_some() {
                "ORDER_NOT_FOUND"
            } else {
                "INVALID_REQUEST"
            };
            let path = if cancel {
                format!("/api/v1/orders/{}/cancel", encode(&seg))
            } else {
                format!("/api/v1/orders/{}", encode(&seg))
            };
            (
                if cancel { Method::POST } else { Method::GET },
                path.clone(),
                vec![customer],
                vec![expect],
                json!({}),
                format!("{path} (decoded {:?})", String::from_utf8_lossy(&seg)),
                false,
            )
        }
        6..=7 => {
            let q = *rng.pick(&[
                "limit=0",
                "limit=-1",
                "limit=1001",
                "limit=abc",
                "limit=1.5",
                "limit=99999999999999999999",
                "limit=%00",
                "limit=%FF",
                "foo=bar",
                "limit=1&limit=2",
                "limit=5&x=1",
                "limit=1e2",
                "limit=%27%20OR%201%3D1",
            ]);
            (
                Method::GET,
                format!("/api/v1/orders?{q}"),
                vec![customer],
                vec!["INVALID_REQUEST"],
                json!({}),
                format!("GET /api/v1/orders?{q}"),
                false,
            )
        }
        8 => {
            let mut token: Vec<u8> = match rng.below(5) {
                0 => b"Bearer ".to_vec(),
                1 => b"Bearer a.b.c".to_vec(),
                2 => {
                    let mut t = b"Bearer ".to_vec();
                    t.extend((0..rng.below(8000)).map(|_| b'A' + rng.below(26) as u8));
                    t
                }
                3 => b"Bearer \xff\xfe\xfd".to_vec(),
                _ => b"Basic YWRtaW46YWRtaW4=".to_vec(),
            };
            if rng.chance(0.2) {
                token = b"bearer".to_vec();
            }
            let path = *rng.pick(&[
                "/api/v1/me",
                "/api/v1/products",
                "/api/v1/orders",
                "/api/v1/me/coupons",
            ]);
            (
                Method::GET,
                path.to_owned(),
                vec![header(AUTHORIZATION.as_str(), &token)],
                vec!["UNAUTHENTICATED"],
                json!({}),
                format!(
                    "GET {path} with Authorization {:?}",
                    String::from_utf8_lossy(&token[..token.len().min(30)])
                ),
                false,
            )
        }
        _ => {
            if rng.chance(0.5) {
                let (m, p) = rng.pick(&[
                    (Method::PUT, "/api/v1/orders"),
                    (Method::DELETE, "/api/v1/orders"),
                    (Method::PATCH, "/api/v1/me"),
                    (Method::DELETE, "/api/v1/products/1"),
                    (Method::GET, "/api/v1/payments"),
                    (Method::PUT, "/api/v1/admin/users"),
                ]);
                let (m, p) = (m.clone(), *p);
                (
                    m.clone(),
                    p.to_owned(),
                    vec![customer],
                    vec!["METHOD_NOT_ALLOWED"],
                    json!({}),
                    format!("{m} {p}"),
                    true,
                )
            } else {
                let p = *rng.pick(&[
                    "/api/v1/orders/x/y",
                    "/api/v2/orders",
                    "/api/v1/admin",
                    "/api/v1/ORDERS",
                    "/api/v1/orders/x/cancel/now",
                    "/%2e%2e/%2e%2e/etc/passwd",
                ]);
                (
                    Method::GET,
                    p.to_owned(),
                    vec![customer],
                    vec!["NOT_FOUND"],
                    json!({}),
                    format!("GET {p}"),
                    true,
                )
            }
        }
    };
    Case {
        n,
        what,
        raw: Raw {
            method,
            path,
            headers,
            body: None,
        },
        expect,
        details,
        route_level,
    }
}

/// Where an answer's `details` differ from what the case expects of them.
fn details_differ(expected: &Value, got: &Value) -> Option<String> {
    let expected = expected.as_object()?;
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("details.{k} should be {v}"))
        .collect();
    (!wrong.is_empty()).then(|| format!("{}, got details {got}", wrong.join(", ")))
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

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let cases_n = if stack.quick { 600 } else { 5_000 };
    let mut env = Env::new(stack, "6-hostile-input", Duration::from_secs(600)).await?;
    let products = [(1_000, 1_000), (2_000, 1_000), (3_000, 1_000)];
    let shop = Shop::open(&env.db, 2, RICH, &products).await?;
    let sold_out = shop::product(&env.db, "Sold out", 1_000, 0).await?;
    let fixed = Discount::Fixed { amount: 100 };
    let coupon = shop::coupon(&env.db, shop.users[0], fixed, None).await?;
    let foreign_coupon = shop::coupon(&env.db, shop.users[1], fixed, None).await?;
    let mut figures = Figures::default();

    // One finished order of the customer's, for paths and payments to aim at.
    let customer = env.api.customer(shop.users[0]);
    let placed = env
        .api
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(&customer),
            Some(&order_body(&[(shop.products[0], 1)], None)),
            None,
        )
        .await?;
    let completed_order = placed.body["id"].as_str().unwrap_or_default().to_owned();
    let paid = env
        .api
        .send(
            Method::POST,
            "/api/v1/payments",
            Some(&customer),
            Some(&json!({"order_id": completed_order})),
            None,
        )
        .await?;
    if paid.order_status() != "COMPLETED" {
        anyhow::bail!(
            "the setup order did not complete: {} {}",
            paid.status,
            paid.text
        );
    }
    // Its delivery to the data platform is the last write it makes.
    super::wait_for(Duration::from_secs(30), || {
        let env = &env;
        async move {
            env.count("SELECT count(*) FROM orders WHERE platform_notified_at IS NULL")
                .await
                .is_ok_and(|n| n == 0)
        }
    })
    .await;
    let ctx = Arc::new(Ctx {
        customer,
        admin: env.api.admin(),
        products: shop.products.clone(),
        sold_out,
        coupon,
        foreign_coupon,
        own_orders: vec![completed_order.clone()],
        completed_order,
    });

    let before = fingerprint(&env.db).await?;
    let mut rng = Rng::new(stack.seed ^ 0x6057);
    let cases: Vec<Case> = (0..cases_n)
        .map(|n| {
            let mut r = rng.fork();
            if r.chance(0.7) {
                body_case(n, &ctx, &mut r)
            } else {
                request_case(n, &ctx, &mut r)
            }
        })
        .collect();
    // The whole list, to replay or read a case by its number.
    let listing: String = cases
        .iter()
        .map(|c| format!("{:5} {:?} {}\n", c.n, c.expect, c.what))
        .collect();
    let _ = std::fs::write(stack.paths.dir.join("hostile-cases.txt"), listing);
    let bytes_sent: usize = cases
        .iter()
        .map(|c| c.raw.body.as_ref().map_or(0, Vec::len))
        .sum();

    let gate = Arc::new(Semaphore::new(8));
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|case| {
            let api: Api = env.api.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("open semaphore");
                let mut reply = api.raw(&case.raw).await;
                // A server may close the connection on a body it will not read; the answer it
                // sent first can then be lost on the way. Ask once more on a fresh connection.
                if reply.is_err() {
                    let mut again = case.raw.clone();
                    again.headers.push(header("connection", b"close"));
                    reply = api.raw(&again).await;
                }
                (case, reply)
            })
        })
        .collect();

    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut server_errors = 0;
    let mut route_level = 0;
    for t in tasks {
        let (case, reply) = t.await?;
        tally.add(&reply);
        let problem = match &reply {
            Err(e) => Some(format!("no answer: {e}")),
            Ok(r) => {
                if r.status >= 500 {
                    server_errors += 1;
                }
                let extra: &[&str] = if case.route_level {
                    route_level += 1;
                    &["NOT_FOUND", "METHOD_NOT_ALLOWED"]
                } else {
                    &[]
                };
                match r.contract_error(extra) {
                    Err(e) => Some(e),
                    Ok(()) if !case.expect.contains(&r.code()) => Some(format!(
                        "{} {} where {:?} was expected: {}",
                        r.status,
                        r.code(),
                        case.expect,
                        r.text.chars().take(200).collect::<String>()
                    )),
                    Ok(()) => details_differ(&case.details, &r.body["details"]),
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("case {} ({}): {p}", case.n, case.what));
        }
    }

    let after = fingerprint(&env.db).await?;
    let changed = fingerprint_diff(&before, &after);
    // Without these, the cases above would prove nothing: the same bodies unbroken, with
    // nasty-but-valid text in every field, are accepted and kept as sent.
    let control_problems = controls(&env.api, &ctx, &mut rng).await;
    figures.broken.extend(control_problems.iter().cloned());
    let alive = env.api_alive();
    let healthy = env.api.wait_healthy(Duration::from_secs(10)).await.is_ok();
    let panics = env.api_log_count("panicked");
    let internal = env.api_log_count("answering 500");
    for f in failures.iter().take(25) {
        figures.broken.push(f.clone());
    }
    if failures.len() > 25 {
        figures
            .broken
            .push(format!("... and {} more cases", failures.len() - 25));
    }
    figures
        .broken
        .extend(changed.iter().map(|c| format!("the database changed: {c}")));
    if !alive || !healthy {
        figures
            .broken
            .push("the API is not alive and healthy after the cases".into());
    }
    if panics > 0 || internal > 0 {
        figures.broken.push(format!(
            "the API log has {panics} panics and {internal} 500s ({})",
            env.api_log.display()
        ));
    }

    figures.operations = format!(
        "{cases_n} generated requests (seed {:#x}, {:.1} MB of bodies) on 6 body routes, \
         paths, queries and headers",
        stack.seed,
        bytes_sent as f64 / 1e6
    );
    figures.faults = "hostile input".into();
    figures.outcomes = format!(
        "{} answered as the rule says, {} not; {server_errors} 5xx; {} tables unchanged; API \
         {}; answers: {}",
        cases_n - failures.len(),
        failures.len(),
        if changed.is_empty() {
            before.len().to_string()
        } else {
            format!("{} of {}", before.len() - changed.len(), before.len())
        },
        if alive && healthy { "alive" } else { "DOWN" },
        tally.describe()
    );
    figures.details = json!({
        "controls_accepted": control_problems.is_empty(),
        "cases": cases_n, "seed": stack.seed, "bytes": bytes_sent, "failures": failures.len(),
        "server_errors": server_errors, "route_level_cases": route_level,
        "tables": before.len(), "tables_changed": changed, "answers": tally.0,
        "api_alive": alive && healthy,
    });
    let verdict = env.finish(Duration::from_secs(60)).await?;
    Ok(Outcome { figures, verdict })
}
