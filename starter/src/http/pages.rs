//! The storefront (CONTRACT §7): the shop's pages at `/` and their assets at `/assets/…`,
//! embedded in the binary from `storefront/` (no build step, no CDN), and the API reference at
//! `/api/v1/docs` (Swagger UI, vendored). None of them is in the OpenAPI document; every other
//! path stays the API's JSON 404. The pages route by URL fragment, so the server never sees
//! which page is open, nor the sign-in link's token.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::error::ApiError;
use super::state::AppState;

#[derive(RustEmbed)]
#[folder = "../storefront/"]
struct Assets;

/// The pages' policy: scripts, styles and calls to the API from this origin only, no inline
/// script or style, no frames, no plugins.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// Swagger UI's: its scripts from this origin only (no inline script either), but it styles
/// elements inline and draws its icons from `data:` images.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// The pages, their assets and the API reference, each answer with its security headers.
pub fn router() -> Router<AppState> {
    let docs: Router<AppState> = SwaggerUi::new("/api/v1/docs")
        .config(Config::from("/api/v1/openapi.json").try_it_out_enabled(true))
        .into();
    let pages = Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .layer(middleware::from_fn(|req, next| secure(req, next, PAGE_CSP)));
    let docs = docs.layer(middleware::from_fn(|req, next| secure(req, next, DOCS_CSP)));
    pages.merge(docs)
}

async fn secure(req: Request, next: Next, csp: &'static str) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, csp);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    response
}

async fn index() -> Response {
    file("index.html")
        .unwrap_or_else(|| ApiError::Internal("index.html is not embedded".into()).into_response())
}

async fn asset(Path(path): Path<String>) -> Response {
    // Only the assets themselves: `index.html` is `/`, and nothing outside the folder exists.
    if path == "index.html" {
        return not_found(&path);
    }
    file(&path).unwrap_or_else(|| not_found(&path))
}

fn not_found(path: &str) -> Response {
    ApiError::RouteNotFound(format!("GET /assets/{path}")).into_response()
}

fn file(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = mime_of(path);
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, mime),
                // Small files, and a new binary may change them: always revalidate.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data.into_owned(),
        )
            .into_response(),
    )
}

fn mime_of(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_their_scripts_are_embedded() {
        for path in ["index.html", "app.js", "api.js", "app.css"] {
            assert!(Assets::get(path).is_some(), "{path} is embedded");
        }
        let index = Assets::get("index.html").expect("index.html");
        let index = String::from_utf8_lossy(&index.data);
        // No inline script: every <script> names its source.
        for tag in index.split("<script").skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            assert!(
                tag.contains("src="),
                "inline script in index.html: <script{tag}>"
            );
        }
    }

    #[test]
    fn assets_have_their_types() {
        assert_eq!(mime_of("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(mime_of("a/b.css"), "text/css; charset=utf-8");
        assert_eq!(mime_of("x"), "application/octet-stream");
    }
}
