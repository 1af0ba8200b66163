//! Test harness: [`spawn_app`] gives each test its own database, task queue, in-process worker
//! and data-platform receiver (the pieces of `testkit`), on the shared Temporal dev server
//! (started by `make test`). [`TestApp::finish`] waits for every order's workflow and checks
//! CONTRACT §6.

pub mod http;
pub mod record;

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use domain::{CouponId, Discount, Order, OrderError, ProductId, UserId};
use runtime::Settings;
use runtime::codec::PayloadKeys;
use sqlx::PgPool;
use starter::{OrderService, ServiceError};
use temporalio_client::{Client, WorkflowGetResultOptions};
use testkit::db::Database;
use testkit::shop::{self, order_request};
use testkit::{Receiver, WorkerThread, check};
use workflows::{OrderResult, OrderWorkflow};

pub struct TestApp {
    pub db: PgPool,
    pub settings: Settings,
    pub service: OrderService,
    pub client: Client,
    pub platform: Receiver,
    database: Database,
    worker: WorkerThread,
}

/// How long [`TestApp::finish`] waits for the workflows still running to close.
const CLOSING: Duration = Duration::from_secs(120);

/// The payment timeout tests use unless they ask for another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn spawn_app() -> TestApp {
    spawn_app_with(DEFAULT_TIMEOUT).await
}

pub async fn spawn_app_with(payment_timeout: Duration) -> TestApp {
    try_spawn_app(payment_timeout)
        .await
        .expect("cannot start the test app (is the Temporal dev server up? `make test` starts it)")
}

/// Like [`spawn_app_with`], with `PAYLOAD_KEYS` of its own for the worker and the client.
pub async fn spawn_app_with_keys(payment_timeout: Duration, keys: PayloadKeys) -> TestApp {
    try_spawn_app_keyed(payment_timeout, Some(keys))
        .await
        .expect("cannot start the test app (is the Temporal dev server up? `make test` starts it)")
}

async fn try_spawn_app(payment_timeout: Duration) -> Result<TestApp> {
    try_spawn_app_keyed(payment_timeout, None).await
}

async fn try_spawn_app_keyed(
    payment_timeout: Duration,
    keys: Option<PayloadKeys>,
) -> Result<TestApp> {
    runtime::init_tracing();
    let mut base = Settings::from_env()?;
    if let Some(keys) = keys {
        base.payload_keys = keys;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database =
        Database::fresh(&base.database_url, &format!("orders_test_{}", &id[..12])).await?;
    let platform = Receiver::start().await?;
    let settings = Settings {
        database_url: database.url.clone(),
        task_queue: format!("orders-test-{id}"),
        data_platform_url: platform.url.clone(),
        payment_timeout,
        ..base
    };
    let worker = WorkerThread::start(settings.clone())?;
    let client = runtime::connect_temporal(&settings).await?;
    let db = database.pool.clone();
    let service = OrderService::new(
        client.clone(),
        db.clone(),
        &settings.task_queue,
        payment_timeout,
    );
    Ok(TestApp {
        db,
        settings,
        service,
        client,
        platform,
        database,
        worker,
    })
}

/// The business error of a failed call, or a test failure if it succeeded or failed otherwise.
pub fn business(result: Result<Order, ServiceError>) -> OrderError {
    match result {
        Ok(order) => panic!("expected a business error, got order {order:?}"),
        Err(ServiceError::Order(e)) => e,
        Err(other) => panic!("expected a business error, got {other:?}"),
    }
}

impl TestApp {
    pub async fn user(&self, points: i64) -> UserId {
        shop::user(&self.db, "Test user", points)
            .await
            .expect("create user")
    }

    pub async fn product(&self, price: i64, stock: i64) -> ProductId {
        shop::product(&self.db, "Test product", price, stock)
            .await
            .expect("create product")
    }

    /// A coupon of `user_id`'s that expires in 30 days.
    pub async fn coupon(&self, user_id: UserId, discount: Discount, min: Option<i64>) -> CouponId {
        shop::coupon(&self.db, user_id, discount, min)
            .await
            .expect("create coupon")
    }

    pub async fn points(&self, user_id: UserId) -> i64 {
        sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
            .bind(user_id.get())
            .fetch_one(&self.db)
            .await
            .expect("points")
    }

    pub async fn stock(&self, product_id: ProductId) -> i64 {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(product_id.get())
            .fetch_one(&self.db)
            .await
            .expect("stock")
    }

    pub async fn coupon_status(&self, coupon_id: CouponId) -> (String, Option<String>) {
        sqlx::query_as("SELECT status, order_id FROM coupons WHERE id = $1")
            .bind(coupon_id.get())
            .fetch_one(&self.db)
            .await
            .expect("coupon")
    }

    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    pub async fn place(
        &self,
        user_id: UserId,
        items: &[(ProductId, i64)],
        coupon_id: Option<CouponId>,
    ) -> Result<Order, ServiceError> {
        let id = OrderService::new_order_id();
        self.service
            .place(&id, user_id, order_request(items, coupon_id))
            .await
    }

    /// Rotates `PAYLOAD_KEYS`: a new worker and client with `keys` replace the old ones (the
    /// old worker is told to stop), as a deployment of the new setting would.
    pub async fn rekey(&mut self, keys: PayloadKeys) -> Result<()> {
        self.settings.payload_keys = keys;
        let worker = WorkerThread::start(self.settings.clone())?;
        drop(std::mem::replace(&mut self.worker, worker));
        self.client = runtime::connect_temporal(&self.settings).await?;
        self.service = OrderService::new(
            self.client.clone(),
            self.db.clone(),
            &self.settings.task_queue,
            self.settings.payment_timeout,
        );
        Ok(())
    }

    /// Waits until `n` sessions of this test's database are blocked on a lock (at most 30 s).
    /// Tests that hold a row lock to freeze a step mid-payment use it to know that what they
    /// expect to queue behind the lock (a compensation, say) has started.
    pub async fn wait_for_lock_waiters(&self, n: i64) -> Result<()> {
        for _ in 0..300 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&self.db)
            .await?;
            if waiting >= n {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("fewer than {n} sessions ever waited on a lock")
    }

    /// Waits until the order's workflow has been asked to cancel and a workflow task has
    /// started since (the worker has the cancellation in hand), at most 30 s.
    pub async fn wait_until_the_worker_has_the_cancellation(&self, order_id: &str) -> Result<()> {
        use temporalio_common::protos::temporal::api::enums::v1::EventType;
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(order_id);
        for _ in 0..300 {
            let events = handle
                .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default())
                .into_events()
                .await?;
            let requested = events
                .iter()
                .position(|e| e.event_type == EventType::WorkflowExecutionCancelRequested as i32);
            if let Some(i) = requested
                && events[i..]
                    .iter()
                    .any(|e| e.event_type == EventType::WorkflowTaskStarted as i32)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the worker never took the cancellation of {order_id}")
    }

    /// The workflow's final result (waits for it).
    pub async fn result(&self, order_id: &str) -> Result<OrderResult> {
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(order_id);
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .context("workflow did not finish in 60 s")?;
        Ok(r?)
    }

    /// Ends a test: waits until every order's workflow is closed, then checks CONTRACT §6,
    /// including that every COMPLETED order reached the data platform exactly under its key.
    pub async fn finish(self) -> Result<()> {
        let ids = check::order_ids(&self.db).await?;
        let running = check::unclosed_workflows(&self.client, &ids, CLOSING).await;
        ensure!(running.is_empty(), "workflows did not finish: {running:?}");
        let report = store::invariants::check(&self.db).await?;
        ensure!(
            report.is_ok(),
            "invariant violations: {:#?}",
            report.violations
        );
        let unnotified = store::invariants::check_notified(&self.db).await?;
        ensure!(
            unnotified.is_empty(),
            "completed orders not notified: {unnotified:?}"
        );
        let (wrong, _) = check::deliveries(&self.db, self.platform.state.deliveries()).await?;
        ensure!(
            wrong.is_empty(),
            "the data platform's deliveries: {wrong:#?}"
        );
        drop(self.worker);
        self.database.remove().await;
        Ok(())
    }
}
