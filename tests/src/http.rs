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
    /// Ends the server gracefully (its idle keep-alive connections closed too).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Serves `state` on `listener` until the returned sender is used or dropped.
fn spawn_server(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let _ = starter::http::serve(listener, state, shutdown).await;
    });
    (server, stop)
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
    let (server, stop) = spawn_server(listener, state);
    let api = Api::with_timeout(base, &app.settings.auth_secret, TIMEOUT).expect("http client");
    ApiApp {
        app,
        api,
        server,
        stop: Some(stop),
    }
}

impl ApiApp {
    /// Stops serving, its connections closed: the API's port refuses connections until
    /// [`Self::serve_again`] (the storefront's test of the API being down).
    pub async fn stop_serving(&mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        let _ = stop.send(());
        if tokio::time::timeout(Duration::from_secs(10), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }

    /// Serves `state` on the same port, in place of what it served.
    pub async fn serve_again(&mut self, state: AppState) -> Result<()> {
        self.stop_serving().await;
        let addr = self.api.base.trim_start_matches("http://").to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let (server, stop) = spawn_server(listener, state);
        self.server = server;
        self.stop = Some(stop);
        Ok(())
    }

    /// The state the API was served with at first: this test's settings, database and client.
    pub fn state(&self) -> AppState {
        AppState::from_parts(
            self.app.settings.clone(),
            self.app.db.clone(),
            Some(self.app.client.clone()),
        )
    }

    /// Stops the server, then ends the test as [`TestApp::finish`] does (every workflow closed,
    /// CONTRACT §6 checked).
    pub async fn finish(self) -> Result<()> {
        self.server.abort();
        self.app.finish().await
    }
}
