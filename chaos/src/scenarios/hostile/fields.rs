//! What the hostile cases break: the body routes, their fields and what each accepts, a valid
//! body for each, and the values (nasty but valid, or each rule's breakers) they are given.

use domain::ProductId;
use serde_json::{Value, json};

use super::Ctx;
use crate::rng::Rng;
use testkit::shop::order_body;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Route {
    Orders,
    Payments,
    TopUp,
    AdminUsers,
    AdminProducts,
    AdminCoupons,
}

pub(super) const BODY_ROUTES: [Route; 6] = [
    Route::Orders,
    Route::Payments,
    Route::TopUp,
    Route::AdminUsers,
    Route::AdminProducts,
    Route::AdminCoupons,
];

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Orders => "/api/v1/orders",
            Route::Payments => "/api/v1/payments",
            Route::TopUp => "/api/v1/me/points/charge",
            Route::AdminUsers => "/api/v1/admin/users",
            Route::AdminProducts => "/api/v1/admin/products",
            Route::AdminCoupons => "/api/v1/admin/coupons",
        }
    }

    pub fn admin(self) -> bool {
        matches!(
            self,
            Route::AdminUsers | Route::AdminProducts | Route::AdminCoupons
        )
    }

    /// Routes that read an Idempotency-Key before the body.
    pub fn keyed(self) -> bool {
        matches!(self, Route::Orders | Route::Payments | Route::TopUp)
    }
}

/// What a field accepts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
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
pub(super) struct Field {
    pub ptr: String,
    pub kind: Kind,
    pub required: bool,
}

pub(super) fn field(ptr: impl Into<String>, kind: Kind, required: bool) -> Field {
    Field {
        ptr: ptr.into(),
        kind,
        required,
    }
}

pub(super) const MAX_AMOUNT: i64 = starter::http::MAX_AMOUNT;

/// A valid body for `route`, and its fields.
pub(super) fn valid(route: Route, ctx: &Ctx, rng: &mut Rng) -> (Value, Vec<Field>) {
    match route {
        Route::Orders => {
            let n = 1 + rng.below(ctx.products.len());
            let lines: Vec<(ProductId, i64)> = ctx.products[..n]
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
pub(super) const NASTY_OK: [&str; 14] = [
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

pub(super) const PHONES_OK: [&str; 4] = [
    "+82 10-1234-5678",
    "0101234567",
    "010 1234 5678",
    "+1-555-0100",
];

/// Numbers as JSON text; `None` when the literal is not a JSON number at all.
pub(super) const NUMBERS: [&str; 16] = [
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

/// Whether a JSON number literal would be accepted as an i64 in `lo..=hi`. JSON has one kind of
/// number, so one with no fraction (`1.0`, `1e2`, `-0.0`) is the integer it equals, as the API
/// reads it (and as JSON Schema's `integer`, which the OpenAPI document states, says).
pub(super) fn int_ok(lit: &str, lo: i64, hi: i64) -> bool {
    let integral = lit.parse::<i64>().ok().or_else(|| {
        let f = lit.parse::<f64>().ok()?;
        #[allow(clippy::cast_possible_truncation)]
        (f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18).then_some(f as i64)
    });
    integral.is_some_and(|v| (lo..=hi).contains(&v))
}

/// A JSON value of another type than `kind` accepts.
pub(super) fn wrong_type(kind: Kind, rng: &mut Rng) -> String {
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
pub(super) fn bad_string(kind: Kind, rng: &mut Rng) -> Option<String> {
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

/// Puts valid-but-nasty values into string fields, each with probability `p`.
pub(super) fn nasty(body: &mut Value, fields: &[Field], rng: &mut Rng, p: f64) {
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
