//! Scenario 7: attacks on authentication and authorisation, as tables of cases. Forged tokens
//! (`alg: none`, RS/HS confusion, keys an attacker might guess, a tampered `sub` or `role`,
//! expired and not-yet-valid tokens, malformed ones) on every kind of route are 401; a customer
//! reaching another customer's order is 404 (its existence is not told) and leaves it untouched;
//! a customer on an admin route, or an admin on a customer route, is 403. Nothing of it changes
//! the database.

use domain::{ProductId, UserId};
use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use testkit::Raw;
use testkit::shop::{Shop, order_body};
use testkit::tokens::{Algorithm, b64url, forge, sign, tamper, unsigned};

use super::{Figures, Outcome};
use crate::cases::{self, Answers, Case, Driver, Expect};
use crate::env::{Env, Stack, fingerprint, fingerprint_diff};

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

/// A token an attacker made, and what it is.
type Forged = (String, String);

type Headers = Vec<(HeaderName, HeaderValue)>;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Who and what the attacks are about: Alice's `PENDING` order, Bob who wants it, the secret
/// the API signs with, and a valid token of each.
struct Target {
    alice: UserId,
    bob: UserId,
    product: ProductId,
    order: String,
    secret: String,
    alice_token: String,
    bob_token: String,
    admin: String,
}

impl Target {
    /// Alice's claims, valid for an hour.
    fn good(&self) -> Value {
        json!({"sub": self.alice.to_string(), "role": "customer", "exp": now() + 3600})
    }

    /// An admin's claims, valid for an hour.
    fn good_admin(&self) -> Value {
        json!({"sub": "ops", "role": "admin", "exp": now() + 3600})
    }

    /// Alice's real token.
    fn real(&self) -> String {
        sign(&self.good(), Algorithm::HS256, self.secret.as_bytes())
    }

    /// `claims` signed as the API signs.
    fn signed(&self, claims: Value) -> String {
        sign(&claims, Algorithm::HS256, self.secret.as_bytes())
    }

    /// The customer routes about the order and the customer's points: read it, place another,
    /// pay it, cancel it, top up.
    fn order_routes(&self) -> Vec<Route> {
        let order = &self.order;
        vec![
            (Method::GET, format!("/api/v1/orders/{order}"), None),
            (
                Method::POST,
                "/api/v1/orders".into(),
                Some(order_body(&[(self.product, 1)], None)),
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

    /// The routes every forged token is tried on: reads, writes, admin.
    fn attacked_routes(&self) -> Vec<Route> {
        let mut routes = vec![
            (Method::GET, "/api/v1/me".to_owned(), None),
            (Method::GET, "/api/v1/products".to_owned(), None),
        ];
        routes.extend(self.order_routes());
        routes.push((
            Method::POST,
            "/api/v1/admin/users".into(),
            Some(json!({"name": "Mallory", "points": 1_000_000})),
        ));
        routes
    }
}

/// Tokens without a signature, or whose `alg` lies about how they were signed.
fn unsigned_and_confused(t: &Target) -> Vec<Forged> {
    let (good, good_admin, real) = (t.good(), t.good_admin(), t.real());
    let secret = t.secret.as_bytes();
    let mut forged = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "JWT"});
        forged.push((
            format!("alg {alg}, no signature, admin claims"),
            unsigned(&h, &good_admin),
        ));
        forged.push((format!("alg {alg}, no signature"), unsigned(&h, &good)));
    }
    // The real token's claims and signature.
    let claims_and_signature = real.split_once('.').map(|x| x.1).unwrap_or_default();
    let none = b64url(json!({"alg": "none"}).to_string().as_bytes());
    let rs256 = json!({"alg": "RS256", "typ": "JWT"});
    let es256 = b64url(json!({"alg": "ES256"}).to_string().as_bytes());
    let garbage = b64url(b"not a signature");
    forged.extend([
        (
            "alg none with the real token's signature".to_owned(),
            format!("{none}.{claims_and_signature}"),
        ),
        (
            "alg RS256, HMAC-signed with the real secret".to_owned(),
            forge(&rs256, &good, secret),
        ),
        (
            "alg RS256, HMAC-signed with the PEM public key text".to_owned(),
            forge(&rs256, &good_admin, PEM.as_bytes()),
        ),
        (
            "HS256 signed with the PEM public key text".to_owned(),
            sign(&good_admin, Algorithm::HS256, PEM.as_bytes()),
        ),
        (
            "HS256 signed with the PEM key text, customer".to_owned(),
            sign(&good, Algorithm::HS256, PEM.as_bytes()),
        ),
        (
            "alg ES256 with garbage signature".to_owned(),
            format!("{es256}.{}.{garbage}", b64url(good.to_string().as_bytes())),
        ),
        (
            "alg PS256, HMAC-signed with the real secret".to_owned(),
            forge(&json!({"alg": "PS256"}), &good, secret),
        ),
        (
            "HS384 with the real secret".to_owned(),
            sign(&good, Algorithm::HS384, secret),
        ),
        (
            "HS512 with the real secret".to_owned(),
            sign(&good, Algorithm::HS512, secret),
        ),
    ]);
    forged
}

/// An admin's claims signed with keys an attacker might guess, and real signatures kept on
/// other claims.
fn guessed_and_tampered(t: &Target) -> Vec<Forged> {
    let (sub, good_admin, real) = (t.alice.to_string(), t.good_admin(), t.real());
    let mut forged = Vec::new();
    for (what, key) in [
        ("the development secret", runtime::settings::DEV_AUTH_SECRET),
        ("an empty secret", ""),
        ("\"secret\"", "secret"),
        ("\"null\"", "null"),
        ("the secret with a space", &format!("{} ", t.secret)),
    ] {
        forged.push((
            format!("HS256 admin signed with {what}"),
            sign(&good_admin, Algorithm::HS256, key.as_bytes()),
        ));
    }
    let expired = t.signed(json!({"sub": sub, "role": "customer", "exp": now() - 10}));
    let other_signature = t.signed(good_admin.clone());
    forged.extend([
        (
            "sub tampered to Bob, signature kept".to_owned(),
            tamper(
                &real,
                &json!({"sub": t.bob.to_string(), "role": "customer", "exp": now() + 3600}),
            ),
        ),
        (
            "role tampered to admin, signature kept".to_owned(),
            tamper(
                &real,
                &json!({"sub": sub, "role": "admin", "exp": now() + 3600}),
            ),
        ),
        (
            "exp extended, signature kept".to_owned(),
            tamper(
                &expired,
                &json!({"sub": sub, "role": "customer", "exp": now() + 3600}),
            ),
        ),
        (
            "signature of another token".to_owned(),
            format!(
                "{}.{}",
                real.rsplit_once('.').map(|x| x.0).unwrap_or_default(),
                other_signature
                    .rsplit_once('.')
                    .map(|x| x.1)
                    .unwrap_or_default()
            ),
        ),
    ]);
    forged
}

/// Tokens signed as the API signs, with claims it must refuse.
fn bad_claims(t: &Target) -> Vec<Forged> {
    let (alice, sub) = (t.alice, t.alice.to_string());
    let mut forged = vec![
        (
            "expired a second ago",
            json!({"sub": sub, "role": "customer", "exp": now() - 1}),
        ),
        (
            "expired at 0",
            json!({"sub": sub, "role": "customer", "exp": 0}),
        ),
        (
            "not valid for an hour (nbf)",
            json!({"sub": sub, "role": "customer", "exp": now() + 7200, "nbf": now() + 3600}),
        ),
        ("no exp", json!({"sub": sub, "role": "customer"})),
        (
            "exp as a string",
            json!({"sub": sub, "role": "customer", "exp": "9999999999"}),
        ),
        ("no sub", json!({"role": "customer", "exp": now() + 3600})),
        ("no role", json!({"sub": sub, "exp": now() + 3600})),
    ]
    .into_iter()
    .map(|(what, claims)| (what.to_owned(), t.signed(claims)))
    .collect::<Vec<Forged>>();
    for role in ["Admin", "ADMIN", "root", "", "superuser", "customer "] {
        let claims = json!({"sub": sub, "role": role, "exp": now() + 3600});
        forged.push((format!("role {role:?}"), t.signed(claims)));
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
        let claims = json!({"sub": s, "role": "customer", "exp": now() + 3600});
        forged.push((format!("customer sub {s:?}"), t.signed(claims)));
    }
    let number = json!({"sub": alice, "role": "customer", "exp": now() + 3600});
    forged.push(("sub as a number".to_owned(), t.signed(number)));
    forged
}

/// Headers that point at keys elsewhere, and tokens that are no tokens.
fn bad_headers_and_malformed(t: &Target) -> Vec<Forged> {
    let (good_admin, real) = (t.good_admin(), t.real());
    let kid = json!({"alg": "HS256", "kid": "../../../../../../dev/null"});
    let jku = json!({"alg": "HS256", "jku": "https://attacker.invalid/jwks.json", "kid": "1"});
    let crit = json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
    let mut forged = vec![
        (
            "kid pointing at /dev/null, signed with an empty key".to_owned(),
            forge(&kid, &good_admin, b""),
        ),
        (
            "jku at an attacker's keys".to_owned(),
            forge(&jku, &good_admin, b"attacker"),
        ),
        (
            "crit header the server does not know".to_owned(),
            forge(&crit, &good_admin, b"guess"),
        ),
    ];
    for (what, token) in [
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
        forged.push((format!("malformed: {what}"), token));
    }
    forged
}

/// Every forged or broken token.
fn forged_tokens(t: &Target) -> Vec<Forged> {
    let mut forged = unsigned_and_confused(t);
    forged.extend(guessed_and_tampered(t));
    forged.extend(bad_claims(t));
    forged.extend(bad_headers_and_malformed(t));
    forged
}

/// A request with these headers, and `body` as JSON if given.
fn request(method: Method, path: &str, mut headers: Headers, body: Option<&Value>) -> Raw {
    if body.is_some() {
        headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    Raw {
        method,
        path: path.to_owned(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
    }
}

fn bearer(token: &str) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
    (AUTHORIZATION, value)
}

/// `token` on `route`, which must answer `expect`.
fn case(name: String, token: &str, (method, path, body): &Route, expect: Expect) -> Case {
    let request = request(method.clone(), path, vec![bearer(token)], body.as_ref());
    Case {
        name,
        request,
        expect,
    }
}

/// 1. Forged and broken tokens: 401 on every route. (With a JSON content type always, so
///    that only the token can be what is refused.)
fn forged_table(forged: &[Forged], routes: &[Route]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, token) in forged {
        for (method, path, body) in routes {
            let mut c = case(
                format!("{what} on {method} {path}"),
                token,
                &(method.clone(), path.clone(), body.clone()),
                Expect::error("UNAUTHENTICATED"),
            );
            if body.is_none() {
                c.request
                    .headers
                    .push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
            }
            cases.push(c);
        }
    }
    cases
}

/// 2. Schemes and places a token does not belong in: 401. (The query string case:
///    `/api/v1/me` takes no query, but without a token it is 401 before anything else.)
fn schemes_table(t: &Target) -> Result<Vec<Case>> {
    let real = t.real();
    let me = "/api/v1/me".to_owned();
    let attempts: Vec<(&str, Headers, String)> = vec![
        ("no Authorization", vec![], me.clone()),
        (
            "Basic credentials",
            vec![(
                AUTHORIZATION,
                HeaderValue::from_static("Basic YWxpY2U6cGFzcw=="),
            )],
            me.clone(),
        ),
        (
            "Token scheme with a valid token",
            vec![(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Token {real}"))?,
            )],
            me.clone(),
        ),
        (
            "Bearer without a token",
            vec![(AUTHORIZATION, HeaderValue::from_static("Bearer"))],
            me.clone(),
        ),
        (
            "the token in the query string",
            vec![],
            format!("/api/v1/me?access_token={real}"),
        ),
        (
            "the token in a cookie",
            vec![(
                COOKIE,
                HeaderValue::from_str(&format!("token={real}; access_token={real}"))?,
            )],
            me.clone(),
        ),
        (
            "a forged token first, the valid one second",
            vec![
                (
                    AUTHORIZATION,
                    HeaderValue::from_static("Bearer forged.token.here"),
                ),
                bearer(&real),
            ],
            me,
        ),
    ];
    Ok(attempts
        .into_iter()
        .map(|(what, headers, path)| Case {
            name: what.to_owned(),
            request: request(Method::GET, &path, headers, None),
            expect: Expect::error("UNAUTHENTICATED"),
        })
        .collect())
}

/// 3. Bob, with a valid token, on Alice's order: 404 everywhere, and his list shows nothing.
fn bob_table(t: &Target) -> Vec<Case> {
    let order = &t.order;
    let attempts: Vec<Route> = vec![
        (Method::GET, format!("/api/v1/orders/{order}"), None),
        (Method::POST, format!("/api/v1/orders/{order}/cancel"), None),
        (
            Method::POST,
            "/api/v1/payments".into(),
            Some(json!({"order_id": order})),
        ),
    ];
    let mut cases: Vec<Case> = attempts
        .iter()
        .map(|r| {
            let name = format!("Bob: {} {}", r.0, r.1);
            case(name, &t.bob_token, r, Expect::error("ORDER_NOT_FOUND"))
        })
        .collect();
    let list = (Method::GET, "/api/v1/orders".to_owned(), None);
    let nothing = Expect::Success {
        status: 200,
        body: json!([]),
    };
    cases.push(case(
        "Bob's order list".into(),
        &t.bob_token,
        &list,
        nothing,
    ));
    cases
}

/// 4. Roles: a customer on admin routes, an admin on customer routes: 403.
fn roles_table(t: &Target) -> Vec<Case> {
    let admin_routes: Vec<Route> = [
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
            json!({"user_id": t.alice, "discount": {"type": "PERCENT", "percent": 100},
                   "expires_at": "2099-01-01T00:00:00Z"}),
        ),
    ]
    .into_iter()
    .map(|(path, body)| (Method::POST, path.to_owned(), Some(body)))
    .collect();
    let mut cases: Vec<Case> = admin_routes
        .iter()
        .map(|r| {
            let name = format!("customer on {}", r.1);
            case(name, &t.alice_token, r, Expect::error("FORBIDDEN"))
        })
        .collect();
    let mut customer_routes = vec![
        (Method::GET, "/api/v1/me".to_owned(), None),
        (Method::GET, "/api/v1/me/coupons".to_owned(), None),
        (Method::GET, "/api/v1/orders".to_owned(), None),
    ];
    customer_routes.extend(t.order_routes());
    cases.extend(customer_routes.iter().map(|r| {
        let name = format!("admin on {} {}", r.0, r.1);
        case(name, &t.admin, r, Expect::error("FORBIDDEN"))
    }));
    cases
}

/// Bob again, with an Idempotency-Key: his key keeps his answer (404, twice), which is the one
/// row he may write.
fn bob_keyed_table(t: &Target) -> Vec<Case> {
    let route = (
        Method::POST,
        "/api/v1/payments".to_owned(),
        Some(json!({"order_id": t.order})),
    );
    (0..2)
        .map(|_| {
            let mut c = case(
                "Bob: keyed payment of Alice's order".into(),
                &t.bob_token,
                &route,
                Expect::error("ORDER_NOT_FOUND"),
            );
            c.request.headers.push((
                HeaderName::from_static("idempotency-key"),
                HeaderValue::from_static("bob-pays-alice"),
            ));
            c
        })
        .collect()
}

/// The right tokens still work (the attacks proved nothing by a server that refuses all):
/// Alice reads her order, still `PENDING`, an admin reads the products, and Alice cancels her
/// order.
fn legitimate_table(t: &Target) -> Vec<Case> {
    let order = &t.order;
    let mine = (Method::GET, format!("/api/v1/orders/{order}"), None);
    let products = (Method::GET, "/api/v1/products".to_owned(), None);
    let cancel = (Method::POST, format!("/api/v1/orders/{order}/cancel"), None);
    let success = |body: Value| Expect::Success { status: 200, body };
    vec![
        case(
            "Alice reads her order".into(),
            &t.alice_token,
            &mine,
            success(json!({"status": "PENDING"})),
        ),
        case(
            "the admin reads the products".into(),
            &t.admin,
            &products,
            success(json!({})),
        ),
        case(
            "Alice cancels her own order".into(),
            &t.alice_token,
            &cancel,
            success(json!({"status": "CANCELED"})),
        ),
    ]
}

/// The shop, and Alice's `PENDING` order: the target of Bob's attempts, and of forged tokens.
async fn target(env: &Env) -> Result<Target> {
    let shop = Shop::open(&env.db, 2, 100_000_000, &[(1_000, 100)]).await?;
    let (alice, bob) = (shop.users[0], shop.users[1]);
    let alice_token = env.api.customer(alice);
    let placed = env
        .api
        .post(
            "/api/v1/orders",
            Some(&alice_token),
            &order_body(&[(shop.products[0], 1)], None),
        )
        .await?;
    if placed.status != 201 {
        bail!("placing Alice's order: {} {}", placed.status, placed.text);
    }
    Ok(Target {
        alice,
        bob,
        product: shop.products[0],
        order: placed.body["id"].as_str().unwrap_or_default().to_owned(),
        secret: env.api.secret().to_owned(),
        alice_token,
        bob_token: env.api.customer(bob),
        admin: env.api.admin(),
    })
}

pub async fn run(stack: &mut Stack) -> Result<Outcome> {
    let env = Env::new(stack, "7-auth-attacks", Duration::from_secs(600)).await?;
    let t = target(&env).await?;
    let forged = forged_tokens(&t);
    let routes = t.attacked_routes();
    let mut figures = Figures::default();

    let before = fingerprint(&env.db).await?;
    let mut answers = Answers::default();
    for table in [
        forged_table(&forged, &routes),
        schemes_table(&t)?,
        bob_table(&t),
        roles_table(&t),
    ] {
        answers.merge(cases::run(&env.api, table, Driver::IN_ORDER).await);
    }
    let after = fingerprint(&env.db).await?;
    let changed = fingerprint_diff(&before, &after);
    figures
        .broken
        .extend(changed.iter().map(|c| format!("the database changed: {c}")));
    answers.merge(cases::run(&env.api, bob_keyed_table(&t), Driver::IN_ORDER).await);
    let legitimate = cases::run(&env.api, legitimate_table(&t), Driver::IN_ORDER).await;

    figures.broken.append(&mut answers.failures);
    figures.broken.extend(legitimate.failures);
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
