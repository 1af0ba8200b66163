//! Scenario 7: attacks on authentication and authorisation. Forged tokens (`alg: none`, RS/HS
//! confusion, keys an attacker might guess, a tampered `sub` or `role`, expired and
//! not-yet-valid tokens, malformed ones) on every kind of route are 401; a customer reaching
//! another customer's order is 404 (its existence is not told) and leaves it untouched; a
//! customer on an admin route, or an admin on a customer route, is 403. Nothing of it changes
//! the database.

use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};

use testkit::shop::{Shop, order_body};
use testkit::tokens::{Algorithm, b64url, forge, sign, tamper};
use testkit::{Answer, Raw};

use super::{Figures, Outcome, RICH, Tally};
use crate::env::{Env, Stack, fingerprint, fingerprint_diff};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The text of an RSA public key: what an attacker hopes a server uses as an HMAC secret
/// when it trusts the token's `alg`.
const PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n\
4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n\
+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\n\
kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n\
0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\n\
cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\n\
mwIDAQAB\n\
-----END PUBLIC KEY-----\n";

/// A route, with its JSON body if it takes one.
type Route = (Method, String, Option<Value>);

/// The customer routes about `order` and the customer's points: read it, place another (of
/// product `p`), pay it, cancel it, top up.
fn order_routes(order: &str, p: i64) -> Vec<Route> {
    vec![
        (Method::GET, format!("/api/v1/orders/{order}"), None),
        (
            Method::POST,
            "/api/v1/orders".into(),
            Some(order_body(&[(p, 1)], None)),
        ),
        (
            Method::POST,
            "/api/v1/payments".into(),
            Some(json!({"order_id": order})),
        ),
        (Method::POST, format!("/api/v1/orders/{order}/cancel"), None),
        (
            Method::POST,
            "/api/v1/me/points/charge".into(),
            Some(json!({"amount": 1000})),
        ),
    ]
}

/// The answers to the attacks: counted by status and code, each held to what it must be.
#[derive(Default)]
struct Answers {
    tally: Tally,
    tried: usize,
    broken: Vec<String>,
}

impl Answers {
    /// `reply` to `what` must be the contract's `status` `code` error.
    fn expect(&mut self, what: &str, reply: &Answer, status: u16, code: &str) {
        self.tally.add(reply);
        self.tried += 1;
        match reply {
            Ok(r) if r.status == status && r.code() == code && r.contract_error(&[]).is_ok() => {}
            Ok(r) => self.broken.push(format!(
                "{what}: expected {status} {code}, got {} {}",
                r.status,
                r.text.chars().take(200).collect::<String>()
            )),
            Err(e) => self.broken.push(format!("{what}: no answer: {e}")),
        }
    }
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let env = Env::new(stack, "7-auth-attacks", Duration::from_secs(600)).await?;
    let shop = Shop::open(&env.db, 2, RICH, &[(1_000, 100)]).await?;
    let (alice, bob) = (shop.users[0], shop.users[1]);
    let p = shop.products[0];
    let secret = env.api.secret().to_owned();
    let mut figures = Figures::default();

    // Alice's order, PENDING: the target of Bob's attempts, and of forged tokens.
    let alice_token = env.api.customer(alice);
    let placed = env
        .api
        .send(
            Method::POST,
            "/api/v1/orders",
            Some(&alice_token),
            Some(&order_body(&[(p, 1)], None)),
            None,
        )
        .await?;
    if placed.status != 201 {
        bail!("placing Alice's order: {} {}", placed.status, placed.text);
    }
    let order = placed.body["id"].as_str().unwrap_or_default().to_owned();

    // The routes every forged token is tried on: reads, writes, admin.
    let mut routes = vec![
        (Method::GET, "/api/v1/me".to_owned(), None),
        (Method::GET, "/api/v1/products".to_owned(), None),
    ];
    routes.extend(order_routes(&order, p));
    routes.push((
        Method::POST,
        "/api/v1/admin/users".into(),
        Some(json!({"name": "Mallory", "points": 1_000_000})),
    ));

    let sub = alice.to_string();
    let good = json!({"sub": sub, "role": "customer", "exp": now() + 3600});
    let good_admin = json!({"sub": "ops", "role": "admin", "exp": now() + 3600});
    let real = sign(&good, Algorithm::HS256, secret.as_bytes());
    let mut forged: Vec<(String, String)> = Vec::new();
    let mut add = |what: &str, token: String| forged.push((what.to_owned(), token));
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "JWT"});
        let unsigned = format!(
            "{}.{}.",
            b64url(h.to_string().as_bytes()),
            b64url(good_admin.to_string().as_bytes())
        );
        add(&format!("alg {alg}, no signature, admin claims"), unsigned);
        let unsigned_customer = format!(
            "{}.{}.",
            b64url(h.to_string().as_bytes()),
            b64url(good.to_string().as_bytes())
        );
        add(&format!("alg {alg}, no signature"), unsigned_customer);
    }
    add(
        "alg none with the real token's signature",
        format!(
            "{}.{}",
            b64url(json!({"alg": "none"}).to_string().as_bytes()),
            real.split_once('.').map(|x| x.1).unwrap_or_default()
        ),
    );
    add(
        "alg RS256, HMAC-signed with the real secret",
        forge(
            &json!({"alg": "RS256", "typ": "JWT"}),
            &good,
            secret.as_bytes(),
        ),
    );
    add(
        "alg RS256, HMAC-signed with the PEM public key text",
        forge(
            &json!({"alg": "RS256", "typ": "JWT"}),
            &good_admin,
            PEM.as_bytes(),
        ),
    );
    add(
        "HS256 signed with the PEM public key text",
        sign(&good_admin, Algorithm::HS256, PEM.as_bytes()),
    );
    add(
        "HS256 signed with the PEM key text, customer",
        sign(&good, Algorithm::HS256, PEM.as_bytes()),
    );
    add(
        "alg ES256 with garbage signature",
        format!(
            "{}.{}.{}",
            b64url(json!({"alg": "ES256"}).to_string().as_bytes()),
            b64url(good.to_string().as_bytes()),
            b64url(b"not a signature")
        ),
    );
    add(
        "alg PS256, HMAC-signed with the real secret",
        forge(&json!({"alg": "PS256"}), &good, secret.as_bytes()),
    );
    add(
        "HS384 with the real secret",
        sign(&good, Algorithm::HS384, secret.as_bytes()),
    );
    add(
        "HS512 with the real secret",
        sign(&good, Algorithm::HS512, secret.as_bytes()),
    );
    for (what, key) in [
        ("the development secret", runtime::settings::DEV_AUTH_SECRET),
        ("an empty secret", ""),
        ("\"secret\"", "secret"),
        ("\"null\"", "null"),
        ("the secret with a space", &format!("{secret} ")),
    ] {
        add(
            &format!("HS256 admin signed with {what}"),
            sign(&good_admin, Algorithm::HS256, key.as_bytes()),
        );
    }
    add(
        "sub tampered to Bob, signature kept",
        tamper(
            &real,
            &json!({"sub": bob.to_string(), "role": "customer", "exp": now() + 3600}),
        ),
    );
    add(
        "role tampered to admin, signature kept",
        tamper(
            &real,
            &json!({"sub": sub, "role": "admin", "exp": now() + 3600}),
        ),
    );
    add(
        "exp extended, signature kept",
        tamper(
            &sign(
                &json!({"sub": sub, "role": "customer", "exp": now() - 10}),
                Algorithm::HS256,
                secret.as_bytes(),
            ),
            &json!({"sub": sub, "role": "customer", "exp": now() + 3600}),
        ),
    );
    add(
        "signature of another token",
        format!(
            "{}.{}",
            real.rsplit_once('.').map(|x| x.0).unwrap_or_default(),
            sign(&good_admin, Algorithm::HS256, secret.as_bytes())
                .rsplit_once('.')
                .map(|x| x.1)
                .unwrap_or_default()
        ),
    );
    let signed = |claims: Value| sign(&claims, Algorithm::HS256, secret.as_bytes());
    add(
        "expired a second ago",
        signed(json!({"sub": sub, "role": "customer", "exp": now() - 1})),
    );
    add(
        "expired at 0",
        signed(json!({"sub": sub, "role": "customer", "exp": 0})),
    );
    add(
        "not valid for an hour (nbf)",
        signed(json!({"sub": sub, "role": "customer", "exp": now() + 7200, "nbf": now() + 3600})),
    );
    add("no exp", signed(json!({"sub": sub, "role": "customer"})));
    add(
        "exp as a string",
        signed(json!({"sub": sub, "role": "customer", "exp": "9999999999"})),
    );
    add(
        "no sub",
        signed(json!({"role": "customer", "exp": now() + 3600})),
    );
    add("no role", signed(json!({"sub": sub, "exp": now() + 3600})));
    for role in ["Admin", "ADMIN", "root", "", "superuser", "customer "] {
        add(
            &format!("role {role:?}"),
            signed(json!({"sub": sub, "role": role, "exp": now() + 3600})),
        );
    }
    for s in [
        "0",
        "-1",
        &format!("0{alice}"),
        &format!(" {alice}"),
        &format!("{alice} "),
        &format!("{alice}.0"),
        "abc",
        "99999999999999999999",
        "987654321",
        &format!("{alice} OR 1=1"),
    ] {
        add(
            &format!("customer sub {s:?}"),
            signed(json!({"sub": s, "role": "customer", "exp": now() + 3600})),
        );
    }
    add(
        "sub as a number",
        signed(json!({"sub": alice, "role": "customer", "exp": now() + 3600})),
    );
    add(
        "kid pointing at /dev/null, signed with an empty key",
        forge(
            &json!({"alg": "HS256", "kid": "../../../../../../dev/null"}),
            &good_admin,
            b"",
        ),
    );
    add(
        "jku at an attacker's keys",
        forge(
            &json!({"alg": "HS256", "jku": "https://attacker.invalid/jwks.json", "kid": "1"}),
            &good_admin,
            b"attacker",
        ),
    );
    add(
        "crit header the server does not know",
        forge(
            &json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
            &good_admin,
            b"guess",
        ),
    );
    for (what, t) in [
        ("empty", String::new()),
        ("two parts", "a.b".to_owned()),
        ("four parts", format!("{real}.x")),
        ("garbage", "%%%.%%%.%%%".to_owned()),
        (
            "header not JSON",
            format!("{}.{}.x", b64url(b"{alg"), b64url(b"{}")),
        ),
        ("8 KB of base64", "A".repeat(8192)),
        ("the real token reversed", real.chars().rev().collect()),
    ] {
        add(&format!("malformed: {what}"), t);
    }
    let forged = forged;

    let before = fingerprint(&env.db).await?;
    let mut answers = Answers::default();

    // 1. Forged and broken tokens: 401 on every route.
    for (what, token) in &forged {
        for (method, path, body) in &routes {
            let header = format!("Bearer {token}");
            let raw = Raw {
                method: method.clone(),
                path: path.clone(),
                headers: vec![
                    (
                        AUTHORIZATION,
                        HeaderValue::from_str(&header)
                            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid")),
                    ),
                    (
                        reqwest::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                ],
                body: body.as_ref().map(|b| b.to_string().into_bytes()),
            };
            let r = env.api.raw(&raw).await;
            answers.expect(
                &format!("{what} on {method} {path}"),
                &r,
                401,
                "UNAUTHENTICATED",
            );
        }
    }

    // 2. Schemes and places a token does not belong in.
    type Attempt = (&'static str, Vec<(HeaderName, HeaderValue)>, String);
    let schemes: Vec<Attempt> = vec![
        ("no Authorization", vec![], "/api/v1/me".into()),
        (
            "Basic credentials",
            vec![(
                AUTHORIZATION,
                HeaderValue::from_static("Basic YWxpY2U6cGFzcw=="),
            )],
            "/api/v1/me".into(),
        ),
        (
            "Token scheme with a valid token",
            vec![(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Token {real}"))?,
            )],
            "/api/v1/me".into(),
        ),
        (
            "Bearer without a token",
            vec![(AUTHORIZATION, HeaderValue::from_static("Bearer"))],
            "/api/v1/me".into(),
        ),
        (
            "the token in the query string",
            vec![],
            format!("/api/v1/me?access_token={real}"),
        ),
        (
            "the token in a cookie",
            vec![(
                reqwest::header::COOKIE,
                HeaderValue::from_str(&format!("token={real}; access_token={real}"))?,
            )],
            "/api/v1/me".into(),
        ),
        (
            "a forged token first, the valid one second",
            vec![
                (
                    AUTHORIZATION,
                    HeaderValue::from_static("Bearer forged.token.here"),
                ),
                (
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {real}"))?,
                ),
            ],
            "/api/v1/me".into(),
        ),
    ];
    for (what, headers, path) in schemes {
        let r = env
            .api
            .raw(&Raw {
                method: Method::GET,
                path,
                headers,
                body: None,
            })
            .await;
        // The query string case: `/api/v1/me` takes no query, but without a token it is 401
        // before anything else.
        answers.expect(what, &r, 401, "UNAUTHENTICATED");
    }

    // 3. Bob, with a valid token, on Alice's order: 404 everywhere, nothing changes.
    let bob_token = env.api.customer(bob);
    let attempts: Vec<Route> = vec![
        (Method::GET, format!("/api/v1/orders/{order}"), None),
        (Method::POST, format!("/api/v1/orders/{order}/cancel"), None),
        (
            Method::POST,
            "/api/v1/payments".into(),
            Some(json!({"order_id": order})),
        ),
    ];
    for (method, path, body) in &attempts {
        let r = env
            .api
            .send(method.clone(), path, Some(&bob_token), body.as_ref(), None)
            .await;
        answers.expect(&format!("Bob: {method} {path}"), &r, 404, "ORDER_NOT_FOUND");
    }
    let listed = env.api.get("/api/v1/orders", Some(&bob_token)).await?;
    answers.tried += 1;
    if listed.status != 200 || listed.body.as_array().is_none_or(|a| !a.is_empty()) {
        figures.broken.push(format!(
            "Bob's order list shows something: {} {}",
            listed.status, listed.text
        ));
    }

    // 4. Roles: a customer on admin routes, an admin on customer routes.
    let admin = env.api.admin();
    let admin_routes = [
        (
            "/api/v1/admin/users",
            json!({"name": "Mallory", "points": 1_000_000}),
        ),
        (
            "/api/v1/admin/products",
            json!({"name": "Free stuff", "price": 1, "stock": 1_000_000}),
        ),
        (
            "/api/v1/admin/coupons",
            json!({"user_id": alice, "discount": {"type": "PERCENT", "percent": 100},
                   "expires_at": "2099-01-01T00:00:00Z"}),
        ),
    ];
    for (path, body) in &admin_routes {
        let r = env
            .api
            .send(Method::POST, path, Some(&alice_token), Some(body), None)
            .await;
        answers.expect(&format!("customer on {path}"), &r, 403, "FORBIDDEN");
    }
    let mut customer_routes = vec![
        (Method::GET, "/api/v1/me".to_owned(), None),
        (Method::GET, "/api/v1/me/coupons".to_owned(), None),
        (Method::GET, "/api/v1/orders".to_owned(), None),
    ];
    customer_routes.extend(order_routes(&order, p));
    for (method, path, body) in &customer_routes {
        let r = env
            .api
            .send(method.clone(), path, Some(&admin), body.as_ref(), None)
            .await;
        answers.expect(&format!("admin on {method} {path}"), &r, 403, "FORBIDDEN");
    }

    let after = fingerprint(&env.db).await?;
    let changed = fingerprint_diff(&before, &after);
    figures
        .broken
        .extend(changed.iter().map(|c| format!("the database changed: {c}")));

    // Bob again, with an Idempotency-Key: his key keeps his answer (404, twice), which is the
    // one row he may write; Alice's order stays hers and untouched.
    for _ in 0..2 {
        let r = env
            .api
            .send(
                Method::POST,
                "/api/v1/payments",
                Some(&bob_token),
                Some(&json!({"order_id": order})),
                Some("bob-pays-alice"),
            )
            .await;
        answers.expect(
            "Bob: keyed payment of Alice's order",
            &r,
            404,
            "ORDER_NOT_FOUND",
        );
    }

    // The right tokens still work (the attacks proved nothing by a server that refuses all).
    let mine = env
        .api
        .get(&format!("/api/v1/orders/{order}"), Some(&alice_token))
        .await?;
    let products = env.api.get("/api/v1/products", Some(&admin)).await?;
    if mine.status != 200 || mine.order_status() != "PENDING" || products.status != 200 {
        figures.broken.push(format!(
            "legitimate requests: Alice's order {} {}, admin's products {}",
            mine.status,
            mine.order_status(),
            products.status
        ));
    }
    let canceled = env
        .api
        .send(
            Method::POST,
            &format!("/api/v1/orders/{order}/cancel"),
            Some(&alice_token),
            None,
            None,
        )
        .await?;
    if canceled.order_status() != "CANCELED" {
        figures.broken.push(format!(
            "Alice could not cancel her own order: {} {}",
            canceled.status, canceled.text
        ));
    }

    figures.broken.append(&mut answers.broken);
    figures.operations = format!(
        "{} forged or broken tokens × {} routes, {} other attacks ({} requests)",
        forged.len(),
        routes.len(),
        answers.tried - forged.len() * routes.len(),
        answers.tried
    );
    figures.faults = "auth attacks".into();
    figures.outcomes = format!(
        "answers: {}; database unchanged: {}",
        answers.tally.describe(),
        if changed.is_empty() { "yes" } else { "NO" }
    );
    figures.details = json!({
        "tokens": forged.iter().map(|(w, _)| w).collect::<Vec<_>>(),
        "requests": answers.tried, "answers": answers.tally.0, "tables_changed": changed,
    });
    let verdict = env.finish(Duration::from_secs(60)).await?;
    Ok(Outcome { figures, verdict })
}
