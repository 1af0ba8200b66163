//! `starter codec`: Temporal's remote-codec protocol (CONTRACT §8) for the Web UI and the CLI.
//! `POST /encode` and `POST /decode` take and answer `{"payloads":[…]}`, each payload in
//! protobuf JSON (`metadata` values and `data` in base64), and run the payload codec of
//! `PAYLOAD_KEYS` ([`runtime::codec::EncryptionCodec`]) over them.
//!
//! Who may call: an admin bearer token (`Authorization: Bearer <jwt>`, signed with
//! `AUTH_SECRET`) when `CODEC_AUTH=required`; nobody needs one with `CODEC_AUTH=off`, allowed
//! only on a loopback `CODEC_ADDR` (the development Web UI cannot send a token). A customer
//! token is refused 403 either way, no token 401 when one is required. The browser may call
//! from the origins of `CODEC_ORIGINS` only (CORS). Errors have the contract's body.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use runtime::Settings;
use runtime::codec::{CodecError, EncryptionCodec};
use runtime::settings::is_loopback;
use serde_json::json;
use temporalio_common::protos::temporal::api::common::v1::Payloads;

use crate::token::{self, Principal};

/// The largest request body: a page of history's payloads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// CONTRACT §3's codec settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSettings {
    /// `CODEC_ADDR`, default `127.0.0.1:8081`.
    pub addr: String,
    /// `CODEC_AUTH`: `required` (true, the default) or `off`.
    pub auth_required: bool,
    /// `CODEC_ORIGINS`: the origins the browser may call from.
    pub origins: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecSettingsError {
    #[error("CODEC_AUTH={0:?} must be required or off")]
    Auth(String),
    #[error(
        "CODEC_AUTH=off is allowed only when CODEC_ADDR is a loopback address (127.0.0.0/8, ::1 \
         or localhost), and CODEC_ADDR is {0:?}: anyone who reaches it could read every order"
    )]
    OffOffLoopback(String),
    #[error(
        "AUTH_SECRET is not set: the development secret is accepted only while CODEC_ADDR is a \
         loopback address, and CODEC_ADDR is {0:?}; set AUTH_SECRET"
    )]
    DevSecretOffLoopback(String),
    #[error("CODEC_ORIGINS entry {0:?} is not an origin such as http://127.0.0.1:8233")]
    Origin(String),
}

impl CodecSettings {
    pub fn from_env() -> Result<Self, CodecSettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CodecSettingsError> {
        let addr = get("CODEC_ADDR").unwrap_or_else(|| "127.0.0.1:8081".to_owned());
        let auth_required = match get("CODEC_AUTH").map(|v| v.trim().to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "required" => true,
            Some(v) if v == "off" => false,
            Some(v) => return Err(CodecSettingsError::Auth(v)),
        };
        if !auth_required && !is_loopback(&addr) {
            return Err(CodecSettingsError::OffOffLoopback(addr));
        }
        let origins = get("CODEC_ORIGINS")
            .unwrap_or_else(|| "http://127.0.0.1:8233,http://localhost:8233".to_owned());
        let origins = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .map(|o| {
                let ok = (o.starts_with("http://") || o.starts_with("https://"))
                    && !o["https://".len().min(o.len())..].contains('/');
                if ok {
                    Ok(o)
                } else {
                    Err(CodecSettingsError::Origin(o))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            addr,
            auth_required,
            origins,
        })
    }

    /// Whether tokens may be checked with `settings`' secret on `CODEC_ADDR`: the development
    /// secret only on a loopback address, as for `starter serve`.
    pub fn check_auth_secret(&self, settings: &Settings) -> Result<(), CodecSettingsError> {
        if settings.auth_secret_from_env || is_loopback(&self.addr) {
            Ok(())
        } else {
            Err(CodecSettingsError::DevSecretOffLoopback(self.addr.clone()))
        }
    }
}

struct Codec {
    codec: EncryptionCodec,
    auth_secret: String,
    auth_required: bool,
    origins: Vec<String>,
}

/// The codec server's routes: `POST /encode`, `POST /decode`, and `GET /health`.
pub fn router(settings: &Settings, codec_settings: &CodecSettings) -> Router {
    let state = Arc::new(Codec {
        codec: EncryptionCodec::new(&settings.payload_keys),
        auth_secret: settings.auth_secret.clone(),
        auth_required: codec_settings.auth_required,
        origins: codec_settings.origins.clone(),
    });
    Router::new()
        .route("/encode", post(encode).options(preflight))
        .route("/decode", post(decode).options(preflight))
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: &Settings,
    codec_settings: &CodecSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(settings, codec_settings))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"code": code, "message": message, "details": {}});
    (status, axum::Json(body)).into_response()
}

/// Adds the CORS headers for an allowed `Origin` to every answer (errors included, so the
/// browser can read them); a request from another origin gets none.
async fn cors(State(state): State<Arc<Codec>>, request: Request<Body>, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| state.origins.iter().any(|allowed| allowed == o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-namespace"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// A browser's preflight: answered without a token (browsers never send one with it); the CORS
/// layer says whether the origin may go on.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

type RequestBody = Result<Bytes, BytesRejection>;

async fn encode(
    State(state): State<Arc<Codec>>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    run(&state, &headers, body, |c, p| c.encode_payloads(p))
}

async fn decode(
    State(state): State<Arc<Codec>>,
    headers: HeaderMap,
    body: RequestBody,
) -> Response {
    run(&state, &headers, body, |c, p| c.decode_payloads(p))
}

type Step =
    fn(
        &EncryptionCodec,
        Vec<temporalio_common::protos::temporal::api::common::v1::Payload>,
    )
        -> Result<Vec<temporalio_common::protos::temporal::api::common::v1::Payload>, CodecError>;

fn run(state: &Codec, headers: &HeaderMap, body: RequestBody, step: Step) -> Response {
    match access(state, headers) {
        Access::Granted => {}
        Access::Forbidden => {
            let message = "the codec server is for admin tokens only";
            return error(StatusCode::FORBIDDEN, "FORBIDDEN", message);
        }
        Access::Unauthenticated(message) => {
            return error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &message);
        }
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("the body is over {MAX_BODY_BYTES} bytes");
            return error(e.status(), "PAYLOAD_TOO_LARGE", &message);
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.body_text()),
    };
    let payloads: Payloads = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            let message =
                format!("the body must be {{\"payloads\":[…]}}, payloads in protobuf JSON: {e}");
            return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &message);
        }
    };
    match step(&state.codec, payloads.payloads) {
        Ok(payloads) => {
            let body = serde_json::to_vec(&Payloads { payloads }).unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "codec request refused");
            error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", &e.to_string())
        }
    }
}

/// Who may call. An admin token passes; a customer token is 403 always; no token is 401
/// unless `CODEC_AUTH=off`; a bad token is 401.
enum Access {
    Granted,
    Forbidden,
    Unauthenticated(String),
}

fn access(state: &Codec, headers: &HeaderMap) -> Access {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return if state.auth_required {
            Access::Unauthenticated(
                "an admin bearer token is required (Authorization: Bearer <token>)".into(),
            )
        } else {
            Access::Granted
        };
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return Access::Unauthenticated("the Authorization header must be `Bearer <token>`".into());
    };
    match token::verify(&state.auth_secret, token) {
        Ok(Principal::Admin) => Access::Granted,
        Ok(Principal::Customer(_)) => Access::Forbidden,
        Err(e) => Access::Unauthenticated(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<CodecSettings, CodecSettingsError> {
        CodecSettings::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_are_the_contracts() {
        let s = with(&[]).unwrap();
        assert_eq!(s.addr, "127.0.0.1:8081");
        assert!(s.auth_required);
        assert_eq!(
            s.origins,
            ["http://127.0.0.1:8233", "http://localhost:8233"]
        );
    }

    #[test]
    fn auth_off_only_on_loopback() {
        assert!(!with(&[("CODEC_AUTH", "off")]).unwrap().auth_required);
        assert!(with(&[("CODEC_AUTH", "required"), ("CODEC_ADDR", "0.0.0.0:8081")]).is_ok());
        assert_eq!(
            with(&[("CODEC_AUTH", "off"), ("CODEC_ADDR", "0.0.0.0:8081")]).unwrap_err(),
            CodecSettingsError::OffOffLoopback("0.0.0.0:8081".into())
        );
        assert!(matches!(
            with(&[("CODEC_AUTH", "maybe")]),
            Err(CodecSettingsError::Auth(_))
        ));
    }

    #[test]
    fn origins_are_origins() {
        let s = with(&[("CODEC_ORIGINS", "https://ui.example.com/ , http://a:1")]).unwrap();
        assert_eq!(s.origins, ["https://ui.example.com", "http://a:1"]);
        for bad in ["ui.example.com", "http://a/path", "*"] {
            assert!(
                matches!(
                    with(&[("CODEC_ORIGINS", bad)]),
                    Err(CodecSettingsError::Origin(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_development_secret_only_on_loopback() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        assert!(with(&[]).unwrap().check_auth_secret(&settings).is_ok());
        let open = with(&[("CODEC_ADDR", "0.0.0.0:8081")]).unwrap();
        assert!(open.check_auth_secret(&settings).is_err());
    }
}
