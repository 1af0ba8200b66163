//! Body cases: a valid body for a random route with one rule broken (and nasty-but-valid values
//! elsewhere), and the answer that rule calls for.

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use testkit::Raw;

use super::fields::{
    BODY_ROUTES, Field, Kind, NASTY_OK, NUMBERS, Route, bad_string, int_ok, nasty, valid,
    wrong_type,
};
use super::{Ctx, LIMIT, bearer, header, render, set_raw, split_ptr};
use crate::cases::{Case, Expect};
use crate::rng::Rng;

/// A body case for `ctx`'s shop, number `n` of its table.
pub fn body_case(n: usize, ctx: &Ctx, rng: &mut Rng) -> Case {
    let route = *rng.pick(&BODY_ROUTES);
    let mut d = Draft::new(route, ctx, rng);
    let breaker = rng.below(100);
    // Valid-but-nasty values first; the breaker may overwrite them.
    if breaker >= 4 && rng.chance(0.6) {
        nasty(&mut d.body, &d.fields, rng, 0.5);
    }
    let what = match breaker {
        0..=3 => d.business_rule(ctx, rng),
        4..=15 => d.cut(rng),
        16..=27 => d.wrong_type(rng),
        28..=35 => d.missing(rng),
        36..=45 => d.unknown_field(rng),
        46..=57 => d.bad_number(rng),
        58..=67 => d.bad_string(rng),
        68..=73 if route == Route::Orders => d.bad_lines(ctx, rng),
        68..=79 => d.deep(rng),
        80..=85 => d.too_large(rng),
        86..=89 => d.bad_root(rng),
        90..=92 => d.duplicate_key(),
        93..=95 => d.content_type(rng),
        _ if route.keyed() => d.bad_key(rng),
        _ => d.bad_token(),
    };
    d.finish(n, what, rng)
}

/// A body case as it is being broken.
struct Draft {
    route: Route,
    body: Value,
    fields: Vec<Field>,
    /// Bytes that replace placeholders of `body` when it is rendered ([`set_raw`]).
    raws: Vec<Vec<u8>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    content_type: Option<String>,
    expect: Vec<&'static str>,
    details: Value,
    /// A business rule is broken (the input rules pass).
    semantic: bool,
    key_broken: bool,
    /// The bytes to send instead of the rendered body.
    bytes: Option<Vec<u8>>,
}

impl Draft {
    fn new(route: Route, ctx: &Ctx, rng: &mut Rng) -> Self {
        let (body, fields) = valid(route, ctx, rng);
        let token = if route.admin() {
            &ctx.admin
        } else {
            &ctx.customer
        };
        Self {
            route,
            body,
            fields,
            raws: Vec::new(),
            headers: vec![bearer(token)],
            content_type: Some("application/json".to_owned()),
            expect: vec!["INVALID_REQUEST"],
            details: json!({}),
            semantic: false,
            key_broken: false,
            bytes: None,
        }
    }

    fn set_raw(&mut self, ptr: &str, raw: Vec<u8>) {
        set_raw(&mut self.body, ptr, raw, &mut self.raws);
    }

    /// A business rule the input rules cannot see: answered by the saga or the database.
    fn business_rule(&mut self, ctx: &Ctx, rng: &mut Rng) -> String {
        self.semantic = true;
        let (expect, details, what) = match self.route {
            Route::Orders => match rng.below(4) {
                0 => {
                    self.body["items"][0]["product_id"] = json!(987_654_321);
                    let details = json!({"product_id": 987_654_321});
                    (
                        "PRODUCT_NOT_FOUND",
                        details,
                        "a product that does not exist",
                    )
                }
                1 => {
                    self.body["items"] = json!([{"product_id": ctx.sold_out, "quantity": 1}]);
                    let details = json!({"product_id": ctx.sold_out, "available": 0});
                    ("INSUFFICIENT_STOCK", details, "a sold-out product")
                }
                2 => {
                    self.body["coupon_id"] = json!(ctx.foreign_coupon);
                    let details = json!({"reason": "NOT_OWNED"});
                    ("COUPON_INVALID", details, "another user's coupon")
                }
                _ => {
                    self.body["coupon_id"] = json!(987_654_321);
                    let details = json!({"reason": "NOT_FOUND"});
                    ("COUPON_INVALID", details, "a coupon that does not exist")
                }
            },
            Route::Payments if rng.chance(0.5) => (
                "ORDER_NOT_PAYABLE",
                json!({"status": "COMPLETED"}),
                "paying a COMPLETED order again",
            ),
            Route::Payments => {
                let id = rng.pick(&NASTY_OK).to_string();
                self.body["order_id"] = json!(id);
                ("ORDER_NOT_FOUND", json!({}), "an order id that is no order")
            }
            Route::AdminCoupons => {
                self.body["user_id"] = json!(987_654_321);
                (
                    "INVALID_REQUEST",
                    json!({}),
                    "a coupon for a user who does not exist",
                )
            }
            _ => {
                // No business rule here: break the input rules instead.
                self.semantic = false;
                self.body = json!({});
                ("INVALID_REQUEST", json!({}), "an empty object")
            }
        };
        self.expect = vec![expect];
        self.details = details;
        what.to_owned()
    }

    fn cut(&mut self, rng: &mut Rng) -> String {
        let text = render(&self.body, &self.raws);
        let cut = rng.below(text.len().max(1));
        self.bytes = Some(text[..cut].to_vec());
        format!("JSON cut at byte {cut} of {}", text.len())
    }

    fn wrong_type(&mut self, rng: &mut Rng) -> String {
        let f = rng.pick(&self.fields).clone();
        let v = wrong_type(f.kind, rng);
        self.set_raw(&f.ptr, v.clone().into_bytes());
        format!("{} as {v}", f.ptr)
    }

    fn missing(&mut self, rng: &mut Rng) -> String {
        let required: Vec<&Field> = self.fields.iter().filter(|f| f.required).collect();
        let ptr = rng.pick(&required).ptr.clone();
        let (parent, key) = split_ptr(&ptr);
        match self.body.pointer_mut(parent) {
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
        format!("{ptr} missing")
    }

    fn unknown_field(&mut self, rng: &mut Rng) -> String {
        let objects: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| matches!(f.kind, Kind::Obj))
            .collect();
        let parent = if objects.is_empty() || rng.chance(0.5) {
            String::new()
        } else {
            rng.pick(&objects).ptr.clone()
        };
        let known: Vec<String> = match self.body.pointer(&parent) {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let name = UNKNOWN_NAMES
            .iter()
            .copied()
            .filter(|n| !known.iter().any(|k| k == n) && !ALL_KNOWN.contains(n))
            .nth(rng.below(8))
            .unwrap_or("unexpected");
        if let Some(Value::Object(m)) = self.body.pointer_mut(&parent) {
            m.insert(name.to_owned(), json!(rng.pick(&NASTY_OK)));
        }
        format!("unknown field {name:?} in {parent:?}")
    }

    fn bad_number(&mut self, rng: &mut Rng) -> String {
        let ints: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| matches!(f.kind, Kind::Int(..) | Kind::OptInt(..)))
            .collect();
        if ints.is_empty() {
            self.body = json!({"order_id": 5});
            return "order_id as a number".to_owned();
        }
        let f = rng.pick(&ints);
        let (lo, hi) = match f.kind {
            Kind::Int(lo, hi) | Kind::OptInt(lo, hi) => (lo, hi),
            _ => unreachable!("filtered"),
        };
        let ptr = f.ptr.clone();
        let bad: Vec<&str> = NUMBERS
            .iter()
            .copied()
            .filter(|lit| !int_ok(lit, lo, hi))
            .collect();
        let lit = rng.pick(&bad);
        self.set_raw(&ptr, lit.as_bytes().to_vec());
        format!("{ptr} = {lit}")
    }

    fn bad_string(&mut self, rng: &mut Rng) -> String {
        let strs: Vec<&Field> = self
            .fields
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    Kind::Str(..) | Kind::Phone | Kind::Date | Kind::AnyStr
                ) && !f.ptr.ends_with("/type")
            })
            .collect();
        if strs.is_empty() {
            // No string field (a top-up): its number as a string that is not UTF-8.
            let ptr = self.fields[0].ptr.clone();
            self.set_raw(&ptr, b"\"5\xff\xfe\"".to_vec());
            return format!("{ptr} as a string with invalid UTF-8");
        }
        let f = rng.pick(&strs);
        let (ptr, kind) = (f.ptr.clone(), f.kind);
        match bad_string(kind, rng) {
            Some(v) if rng.chance(0.8) => {
                let shown: String = v.chars().take(40).collect();
                self.set_raw(&ptr, v.into_bytes());
                format!("{ptr} = {shown}")
            }
            _ => {
                let raw = if rng.chance(0.5) {
                    b"\"Kim\xff\xfeMinji\"".to_vec()
                } else {
                    b"\"\\ud800 lone surrogate\"".to_vec()
                };
                self.set_raw(&ptr, raw);
                format!("{ptr} with invalid UTF-8 or a lone surrogate")
            }
        }
    }

    fn bad_lines(&mut self, ctx: &Ctx, rng: &mut Rng) -> String {
        let p = ctx.products[0];
        let lines = |n: i64| -> Value {
            let v: Vec<Value> = (1..=n)
                .map(|i| json!({"product_id": i, "quantity": 1}))
                .collect();
            Value::Array(v)
        };
        let (items, what) = match rng.below(4) {
            0 => (json!([]), "no lines"),
            1 => (lines(51), "51 lines"),
            2 => (lines(10_000), "10,000 lines"),
            _ => (
                json!([{"product_id": p, "quantity": 1}, {"product_id": p, "quantity": 2}]),
                "the same product twice",
            ),
        };
        self.body["items"] = items;
        what.to_owned()
    }

    fn deep(&mut self, rng: &mut Rng) -> String {
        let depth = *rng.pick(&[129usize, 500, 5_000, 40_000]);
        let target = if rng.chance(0.3) {
            String::new()
        } else {
            rng.pick(&self.fields).ptr.clone()
        };
        let closed = rng.chance(0.7);
        let mut raw = "[".repeat(depth).into_bytes();
        if closed {
            raw.extend("]".repeat(depth).into_bytes());
        }
        self.set_raw(&target, raw);
        format!(
            "{target:?} nested {depth} deep{}",
            if closed { "" } else { ", unclosed" }
        )
    }

    fn too_large(&mut self, rng: &mut Rng) -> String {
        let text = render(&self.body, &self.raws);
        let spread = if rng.chance(0.8) { 4096 } else { 1 << 20 };
        let size = LIMIT + 1 + rng.below(spread);
        if rng.chance(0.5) {
            let mut padded = text;
            padded.resize(size, b' ');
            self.bytes = Some(padded);
            return format!("valid JSON padded with spaces to {size} bytes");
        }
        let f = self
            .fields
            .iter()
            .find(|f| matches!(f.kind, Kind::Str(..) | Kind::AnyStr))
            .map_or("/name".to_owned(), |f| f.ptr.clone());
        let v = serde_json::to_string(&"x".repeat(size)).expect("a string");
        self.set_raw(&f, v.into_bytes());
        format!("{f} of {size} characters")
    }

    fn bad_root(&mut self, rng: &mut Rng) -> String {
        let root = rng.pick(&["[]", "null", "1", "\"order\"", "true", "{}", "", "   "]);
        self.bytes = Some(root.as_bytes().to_vec());
        format!("body {root:?}")
    }

    fn duplicate_key(&mut self) -> String {
        let text = render(&self.body, &self.raws);
        let dup = match self.route {
            Route::Orders => "\"items\":[],",
            Route::Payments => "\"order_id\":\"x\",",
            Route::TopUp => "\"amount\":5,",
            Route::AdminUsers | Route::AdminProducts => "\"name\":\"dup\",",
            Route::AdminCoupons => "\"user_id\":1,",
        };
        let mut out = b"{".to_vec();
        out.extend_from_slice(dup.as_bytes());
        out.extend_from_slice(&text[1..]);
        self.bytes = Some(out);
        format!("duplicate key {dup}")
    }

    fn content_type(&mut self, rng: &mut Rng) -> String {
        let ct = *rng.pick(&[
            "",
            "text/plain",
            "application/xml",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "json",
        ]);
        self.content_type = (!ct.is_empty()).then(|| ct.to_owned());
        format!("Content-Type {ct:?}")
    }

    fn bad_key(&mut self, rng: &mut Rng) -> String {
        self.key_broken = true;
        let (value, what): (Vec<u8>, &str) = match rng.below(5) {
            0 => (Vec::new(), "empty"),
            1 => (vec![b'k'; 201], "201 characters"),
            2 => (b"key\twith-tab".to_vec(), "a tab"),
            3 => (b"cl\xe9-\xff".to_vec(), "bytes beyond ASCII"),
            _ => (b"twice".to_vec(), "sent twice"),
        };
        if what == "sent twice" {
            self.headers.push(header("idempotency-key", b"first"));
        }
        self.headers.push(header("idempotency-key", &value));
        format!("Idempotency-Key {what}")
    }

    /// No key on this route: break the token instead.
    fn bad_token(&mut self) -> String {
        self.headers[0] = header(AUTHORIZATION.as_str(), b"Bearer not-a-jwt");
        self.expect = vec!["UNAUTHENTICATED"];
        "a token that is no JWT".to_owned()
    }

    /// The case: its bytes, headers and expected answer once `what` broke it.
    fn finish(mut self, n: usize, what: String, rng: &mut Rng) -> Case {
        // A valid key rides along on some requests; none ever reaches the point where keys
        // are recorded, except with a business rule broken, which gets no key.
        if self.route.keyed() && !self.key_broken && !self.semantic && rng.chance(0.3) {
            let key = format!("hostile-{n}");
            self.headers.push(header("idempotency-key", key.as_bytes()));
        }
        let bytes = self
            .bytes
            .take()
            .unwrap_or_else(|| render(&self.body, &self.raws));
        let json_type = self
            .content_type
            .as_deref()
            .is_some_and(|c| c == "application/json");
        if let Some(ct) = &self.content_type {
            self.headers
                .push(header(CONTENT_TYPE.as_str(), ct.as_bytes()));
        }
        if self.expect != ["UNAUTHENTICATED"] {
            if self.key_broken || !json_type {
                self.expect = vec!["INVALID_REQUEST"];
                self.details = json!({});
            } else if bytes.len() > LIMIT {
                self.expect = vec!["PAYLOAD_TOO_LARGE"];
                self.details = json!({});
            }
        }
        Case {
            name: format!("POST {}: {what}", self.route.path()),
            request: Raw {
                method: Method::POST,
                path: self.route.path().to_owned(),
                headers: self.headers,
                body: Some(bytes),
            },
            expect: Expect::Error {
                codes: self.expect,
                details: self.details,
                route_level: false,
            },
        }
    }
}

/// Field names no route knows, some of them tempting.
const UNKNOWN_NAMES: [&str; 15] = [
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

/// Every field name some route knows.
const ALL_KNOWN: [&str; 21] = [
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
