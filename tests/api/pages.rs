//! The storefront's pages beside the API (CONTRACT §7): `/`, `/assets/…` and the API reference
//! at `/api/v1/docs`, with a strict Content-Security-Policy; every other path the JSON 404.

use saga_tests::http::spawn_api;

use crate::R;

#[tokio::test]
async fn the_pages_are_served_with_a_strict_policy_and_nothing_else_is() -> R {
    let api = spawn_api().await;
    let page = api.get("/", None).await?;
    assert_eq!(page.status, 200);
    assert!(
        page.text
            .contains("<script type=\"module\" src=\"/assets/app.js\">")
    );
    let csp = page.headers["content-security-policy"].to_str()?;
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let script = api.get("/assets/app.js", None).await?;
    assert_eq!(script.status, 200);
    assert!(
        script.headers["content-type"]
            .to_str()?
            .starts_with("text/javascript")
    );
    let docs = api.get("/api/v1/docs/", None).await?;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("swagger-ui"), "the vendored Swagger UI");
    let docs_csp = docs.headers["content-security-policy"].to_str()?;
    assert!(docs_csp.contains("script-src 'self';"), "{docs_csp}");
    let init = api.get("/api/v1/docs/swagger-initializer.js", None).await?;
    assert!(init.text.contains("/api/v1/openapi.json"), "{}", init.text);
    for path in [
        "/index.html",
        "/assets/index.html",
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/orders",
        "/cart",
    ] {
        api.get(path, None).await?.assert_error(404, "NOT_FOUND");
    }
    api.finish().await
}
