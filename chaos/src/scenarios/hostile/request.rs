//! Path, query and header cases: ids that are no ids, another user's orders, queries out of
//! range, broken `Authorization` headers, and routes or methods the router does not serve.

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};
use testkit::Raw;

use super::{Ctx, bearer, encode, header};
use crate::cases::{Case, Expect};
use crate::rng::Rng;

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

/// A path, query or header case for `ctx`'s shop.
pub fn request_case(ctx: &Ctx, rng: &mut Rng) -> Case {
    let mut seg: Vec<u8> = rng.pick(&SEGMENTS).to_vec();
    if rng.chance(0.1) {
        seg = vec![b'z'; 1 + rng.below(4000)];
    }
    let customer = bearer(&ctx.customer);
    match rng.below(10) {
        0..=2 => product_path(&seg, customer),
        3..=5 => order_path(ctx, seg, customer, rng),
        6..=7 => query(customer, rng),
        8 => authorization(rng),
        _ if rng.chance(0.5) => method_not_allowed(customer, rng),
        _ => no_route(customer, rng),
    }
}

/// A request with one expected code.
fn case(
    name: String,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    code: &'static str,
    details: Value,
    route_level: bool,
) -> Case {
    Case {
        name,
        request: Raw {
            method,
            path,
            headers,
            body: None,
        },
        expect: Expect::Error {
            codes: vec![code],
            details,
            route_level,
        },
    }
}

/// Product ids: a number names a product that does not exist; anything else is not an id at
/// all.
fn product_path(seg: &[u8], customer: (HeaderName, HeaderValue)) -> Case {
    let utf8 = std::str::from_utf8(seg).ok();
    let (expect, details) = match utf8.map(str::parse::<i64>) {
        Some(Ok(id)) => ("PRODUCT_NOT_FOUND", json!({"product_id": id})),
        _ => ("INVALID_REQUEST", json!({})),
    };
    case(
        format!("GET /api/v1/products/{}", String::from_utf8_lossy(seg)),
        Method::GET,
        format!("/api/v1/products/{}", encode(seg)),
        vec![customer],
        expect,
        details,
        false,
    )
}

/// Order ids: any text names an order that is not the customer's (their own is swapped for
/// another); what is not UTF-8 is no id.
fn order_path(
    ctx: &Ctx,
    mut seg: Vec<u8>,
    customer: (HeaderName, HeaderValue),
    rng: &mut Rng,
) -> Case {
    let utf8 = std::str::from_utf8(&seg).ok().map(str::to_owned);
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
    case(
        format!("{path} (decoded {:?})", String::from_utf8_lossy(&seg)),
        if cancel { Method::POST } else { Method::GET },
        path,
        vec![customer],
        expect,
        json!({}),
        false,
    )
}

fn query(customer: (HeaderName, HeaderValue), rng: &mut Rng) -> Case {
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
    case(
        format!("GET /api/v1/orders?{q}"),
        Method::GET,
        format!("/api/v1/orders?{q}"),
        vec![customer],
        "INVALID_REQUEST",
        json!({}),
        false,
    )
}

fn authorization(rng: &mut Rng) -> Case {
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
    case(
        format!(
            "GET {path} with Authorization {:?}",
            String::from_utf8_lossy(&token[..token.len().min(30)])
        ),
        Method::GET,
        path.to_owned(),
        vec![header(AUTHORIZATION.as_str(), &token)],
        "UNAUTHENTICATED",
        json!({}),
        false,
    )
}

fn method_not_allowed(customer: (HeaderName, HeaderValue), rng: &mut Rng) -> Case {
    let (m, p) = rng.pick(&[
        (Method::PUT, "/api/v1/orders"),
        (Method::DELETE, "/api/v1/orders"),
        (Method::PATCH, "/api/v1/me"),
        (Method::DELETE, "/api/v1/products/1"),
        (Method::GET, "/api/v1/payments"),
        (Method::PUT, "/api/v1/admin/users"),
    ]);
    let (m, p) = (m.clone(), *p);
    case(
        format!("{m} {p}"),
        m,
        p.to_owned(),
        vec![customer],
        "METHOD_NOT_ALLOWED",
        json!({}),
        true,
    )
}

fn no_route(customer: (HeaderName, HeaderValue), rng: &mut Rng) -> Case {
    let p = *rng.pick(&[
        "/api/v1/orders/x/y",
        "/api/v2/orders",
        "/api/v1/admin",
        "/api/v1/ORDERS",
        "/api/v1/orders/x/cancel/now",
        "/%2e%2e/%2e%2e/etc/passwd",
    ]);
    case(
        format!("GET {p}"),
        Method::GET,
        p.to_owned(),
        vec![customer],
        "NOT_FOUND",
        json!({}),
        true,
    )
}
