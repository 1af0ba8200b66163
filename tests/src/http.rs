//! The HTTP API on top of [`crate::spawn_app`]: [`spawn_api`] serves `starter`'s router on a
//! free port of its own, with the test app's database, task queue and Temporal client, and
//! talks to it with `testkit`'s client ([`Api`], which an [`ApiApp`] derefs to).

use std::ops::Deref;
use std::time::Duration;

use anyhow::Result;
use runtime::settings::RateLimit;
use starter::http::AppState;
use testkit::Api;

use crate::{TestApp, spawn_app, spawn_app_with};

pub struct ApiApp {
    pub app: TestApp,
    pub api: Api,
    server: tokio::task::JoinHandle<()>,
}

impl Deref for ApiApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// How long a test waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(60);

pub async fn spawn_api() -> ApiApp {
    api_for(spawn_app().await).await
}

/// [`spawn_api`] with another `RATE_LIMIT` than the environment's (`None`: `off`, for tests
/// that flood one user with requests on purpose).
pub async fn spawn_api_with_rate_limit(rate_limit: Option<RateLimit>) -> ApiApp {
    let mut app = spawn_app().await;
    app.settings.rate_limit = rate_limit;
    api_for(app).await
}

/// [`spawn_api`] with another payment timeout (for orders that must expire).
pub async fn spawn_api_with(payment_timeout: Duration) -> ApiApp {
    api_for(spawn_app_with(payment_timeout).await).await
}

async fn api_for(app: TestApp) -> ApiApp {
    let state = AppState::from_parts(
        app.settings.clone(),
        app.db.clone(),
        Some(app.client.clone()),
    );
    serve(app, state).await
}

/// Serves `state` for `app` (tests that break the database or Temporal on purpose build their
/// own state).
pub async fn serve(app: TestApp, state: AppState) -> ApiApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let server = tokio::spawn(async move {
        let _ = starter::http::serve(listener, state, std::future::pending()).await;
    });
    let api = Api::with_timeout(base, &app.settings.auth_secret, TIMEOUT).expect("http client");
    ApiApp { app, api, server }
}

impl ApiApp {
    /// Stops the server, then ends the test as [`TestApp::finish`] does (every workflow closed,
    /// CONTRACT §6 checked).
    pub async fn finish(self) -> Result<()> {
        self.server.abort();
        self.app.finish().await
    }
}
