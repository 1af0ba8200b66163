//! What every handler shares: settings, the database pool, and a Temporal client that is
//! connected on first use (so the API starts, and says 503, while Temporal is down).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::UserId;
use runtime::Settings;
use store::{PgPool, StoreError};
use temporalio_client::Client;

use super::error::ApiError;
use super::rate_limit::{self, RateLimiter};
use crate::OrderService;

/// How long a caller waits for a connection to Temporal or PostgreSQL before the answer is 503.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed connection attempt, callers get 503 at once for this long instead of each
/// waiting for a connection of its own.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    db: PgPool,
    temporal: tokio::sync::Mutex<Temporal>,
    /// Users known to exist (users are never deleted), so tokens are checked without a query.
    known_users: Mutex<HashSet<UserId>>,
    /// This database's `installation.id`, read once.
    installation: tokio::sync::OnceCell<String>,
    /// `RATE_LIMIT`, unless `off`.
    rate_limiter: Option<RateLimiter>,
}

#[derive(Default)]
struct Temporal {
    client: Option<Client>,
    failed_at: Option<Instant>,
}

impl AppState {
    /// Connects nothing yet: the pool and the Temporal client connect on first use.
    pub fn new(settings: Settings) -> Result<Self, StoreError> {
        let db = store::db::connect_lazy(&settings.database_url, CONNECT_TIMEOUT)?;
        Ok(Self::from_parts(settings, db, None))
    }

    /// From a pool and, optionally, a connected client (tests).
    pub fn from_parts(settings: Settings, db: PgPool, client: Option<Client>) -> Self {
        Self {
            inner: Arc::new(Inner {
                rate_limiter: settings.rate_limit.map(RateLimiter::new),
                settings,
                db,
                temporal: tokio::sync::Mutex::new(Temporal {
                    client,
                    failed_at: None,
                }),
                known_users: Mutex::new(HashSet::new()),
                installation: tokio::sync::OnceCell::new(),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    pub fn auth_secret(&self) -> &str {
        &self.inner.settings.auth_secret
    }

    /// The Temporal client, connecting it when there is none yet.
    pub async fn temporal(&self) -> Result<Client, ApiError> {
        let mut t = self.inner.temporal.lock().await;
        if let Some(client) = &t.client {
            return Ok(client.clone());
        }
        if t.failed_at.is_some_and(|at| at.elapsed() < RECONNECT_PAUSE) {
            return Err(ApiError::unavailable("Temporal: not connected (retrying)"));
        }
        match runtime::connect_temporal_with(&self.inner.settings, CONNECT_TIMEOUT).await {
            Ok(client) => {
                t.client = Some(client.clone());
                t.failed_at = None;
                Ok(client)
            }
            Err(e) => {
                t.failed_at = Some(Instant::now());
                Err(ApiError::unavailable(e))
            }
        }
    }

    /// The order service over the shared client and pool.
    pub async fn orders(&self) -> Result<OrderService, ApiError> {
        let client = self.temporal().await?;
        Ok(OrderService::new(
            client,
            self.inner.db.clone(),
            &self.inner.settings.task_queue,
            self.inner.settings.payment_timeout,
        )
        .with_remote_steps(self.inner.settings.remote_steps))
    }

    /// The id that names this database for good (see migrations/0003_installation.sql).
    pub async fn installation_id(&self) -> Result<&str, ApiError> {
        let id = self
            .inner
            .installation
            .get_or_try_init(|| store::db::installation_id(&self.inner.db))
            .await?;
        Ok(id)
    }

    /// Counts a request of `user`'s against `RATE_LIMIT`: 429 `RATE_LIMITED` over it.
    pub fn count_request(&self, user: UserId) -> Result<(), ApiError> {
        match &self.inner.rate_limiter {
            None => Ok(()),
            Some(limiter) => limiter.take(user).map_err(|wait| ApiError::RateLimited {
                retry_after: rate_limit::retry_after_secs(wait),
            }),
        }
    }

    pub async fn user_exists(&self, id: UserId) -> Result<bool, ApiError> {
        if self.known().contains(&id) {
            return Ok(true);
        }
        let exists = store::db::user_exists(&self.inner.db, id).await?;
        if exists {
            self.known().insert(id);
        }
        Ok(exists)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<UserId>> {
        // A poisoned set is still a valid set of ids.
        self.inner
            .known_users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}
