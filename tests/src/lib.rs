//! Test harness: [`spawn_app`] gives each test its own database, task queue, in-process worker
//! and data-platform receiver, on the shared Temporal dev server (started by `make test`).
//! [`TestApp::finish`] waits for every order's workflow and checks CONTRACT §6.

pub mod http;
pub mod record;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use activities::{OrderActivities, PlatformClient};
use anyhow::{Context, Result, bail, ensure};
use domain::{Discount, Order, OrderError, PlaceOrderRequest, Shipping};
use receiver::RunningReceiver;
use runtime::Settings;
use sqlx::PgPool;
use starter::{OrderService, ServiceError};
use temporalio_client::{Client, WorkflowGetResultOptions};
use workflows::{OrderResult, OrderWorkflow};

pub struct TestApp {
    pub db: PgPool,
    pub db_name: String,
    pub settings: Settings,
    pub service: OrderService,
    pub client: Client,
    pub platform: RunningReceiver,
    worker: WorkerThread,
}

/// A worker on its own thread: its futures are not `Send`, so it gets a runtime of its own.
/// Dropping it asks the worker to stop.
pub struct WorkerThread {
    shutdown: Box<dyn Fn() + Send + Sync>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        // Ask it to stop, but do not wait: its long polls may take a while to notice, and the
        // test is over. The thread ends with the process at the latest.
        (self.shutdown)();
        drop(self.thread.take());
    }
}

impl WorkerThread {
    /// Runs `build` on a new thread named `name`, on a Tokio runtime of that thread, then the
    /// worker it built until the returned `WorkerThread` is dropped. `build` returns the worker,
    /// what must live as long as it (the SDK runtime, a metrics exporter) and a value for the
    /// caller, returned once the worker is built.
    pub fn spawn<F, Fut, K, T>(name: String, build: F) -> Result<(Self, T)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(temporalio_sdk::Worker, K, T)>>,
        T: Send + 'static,
    {
        type Started<T> = Result<(Box<dyn Fn() + Send + Sync>, T)>;
        let (tx, rx) = std::sync::mpsc::channel::<Started<T>>();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    match build().await {
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                        Ok((mut worker, _keep, value)) => {
                            let _ = tx.send(Ok((Box::new(worker.shutdown_handle()), value)));
                            if let Err(e) = worker.run().await {
                                tracing::error!(error = %e, worker = %name, "test worker failed");
                            }
                        }
                    }
                });
                rt.shutdown_background();
            })?;
        let (shutdown, value) = rx.recv().context("worker thread died")??;
        Ok((
            Self {
                shutdown,
                thread: Some(thread),
            },
            value,
        ))
    }
}

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

async fn try_spawn_app(payment_timeout: Duration) -> Result<TestApp> {
    runtime::init_tracing();
    let base = Settings::from_env()?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("orders_test_{}", &id[..12]);
    let database_url = with_database(&base.database_url, &db_name);
    store::db::ensure_database(&database_url).await?;
    let db = store::db::connect(&database_url).await?;
    store::db::migrate(&db).await?;

    let platform = receiver::spawn(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let settings = Settings {
        database_url,
        task_queue: format!("orders-test-{id}"),
        data_platform_url: platform.url.clone(),
        payment_timeout,
        ..base
    };
    let worker = start_worker(settings.clone())?;
    let client = runtime::connect_temporal(&settings).await?;
    let service = OrderService::new(
        client.clone(),
        db.clone(),
        &settings.task_queue,
        payment_timeout,
    );
    Ok(TestApp {
        db,
        db_name,
        settings,
        service,
        client,
        platform,
        worker,
    })
}

fn start_worker(settings: Settings) -> Result<WorkerThread> {
    let name = format!("worker-{}", settings.task_queue);
    let (worker, ()) = WorkerThread::spawn(name, move || async move {
        let db = store::db::connect(&settings.database_url).await?;
        let client = runtime::connect_temporal(&settings).await?;
        let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
        let activities = OrderActivities::new(db, PlatformClient::new(&settings.data_platform_url));
        let worker = runtime::build_worker(&runtime, client, &settings.task_queue, activities)?;
        Ok((worker, runtime, ()))
    })?;
    Ok(worker)
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let server = match base.rsplit_once('/') {
        Some((s, _)) if s.contains("://") && s.len() > s.find("://").unwrap_or(0) + 3 => s,
        _ => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// The contract's demo shipping address.
pub fn shipping() -> Shipping {
    Shipping {
        recipient: "Kim Minji".into(),
        address: "12 Teheran-ro, Gangnam-gu, Seoul".into(),
        phone: "010-1234-5678".into(),
    }
}

pub fn request(items: &[(i64, i64)], coupon_id: Option<i64>) -> PlaceOrderRequest {
    PlaceOrderRequest {
        items: items
            .iter()
            .map(|&(product_id, quantity)| domain::LineRequest {
                product_id,
                quantity,
            })
            .collect(),
        coupon_id,
        shipping: shipping(),
    }
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
    pub async fn user(&self, points: i64) -> i64 {
        store::db::create_user(&self.db, "Test user", points)
            .await
            .expect("create user")
    }

    pub async fn product(&self, price: i64, stock: i64) -> i64 {
        store::db::create_product(&self.db, "Test product", price, stock)
            .await
            .expect("create product")
    }

    pub async fn coupon(&self, user_id: i64, discount: Discount, min: Option<i64>) -> i64 {
        let expires = chrono::Utc::now() + chrono::Duration::days(30);
        store::db::create_coupon(&self.db, user_id, &discount, min, expires)
            .await
            .expect("create coupon")
    }

    pub async fn points(&self, user_id: i64) -> i64 {
        sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&self.db)
            .await
            .expect("points")
    }

    pub async fn stock(&self, product_id: i64) -> i64 {
        sqlx::query_scalar("SELECT stock FROM products WHERE id = $1")
            .bind(product_id)
            .fetch_one(&self.db)
            .await
            .expect("stock")
    }

    pub async fn coupon_status(&self, coupon_id: i64) -> (String, Option<String>) {
        sqlx::query_as("SELECT status, order_id FROM coupons WHERE id = $1")
            .bind(coupon_id)
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
        user_id: i64,
        items: &[(i64, i64)],
        coupon_id: Option<i64>,
    ) -> Result<Order, ServiceError> {
        let id = OrderService::new_order_id();
        self.service
            .place(&id, user_id, request(items, coupon_id))
            .await
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
        let orders: Vec<(String,)> = sqlx::query_as("SELECT id FROM orders")
            .fetch_all(&self.db)
            .await?;
        for (id,) in &orders {
            let handle = self
                .client
                .get_workflow_handle::<OrderWorkflow>(id.as_str());
            // Closed in any way (a cancelled workflow is an Err here, and that is fine).
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                handle.get_result(WorkflowGetResultOptions::default()),
            )
            .await
            .with_context(|| format!("workflow {id} did not finish"))?;
        }
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
        let completed: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM orders WHERE status = 'COMPLETED'")
                .fetch_all(&self.db)
                .await?;
        let delivered: HashSet<String> = self
            .platform
            .state
            .deliveries()
            .into_iter()
            .map(|d| {
                assert_eq!(
                    d.body["id"].as_str(),
                    Some(d.idempotency_key.as_str()),
                    "a delivery's key is its order id"
                );
                d.idempotency_key
            })
            .collect();
        for (id,) in &completed {
            if !delivered.contains(id) {
                bail!("COMPLETED order {id} never reached the data platform");
            }
        }
        let completed: HashSet<String> = completed.into_iter().map(|(id,)| id).collect();
        for key in &delivered {
            ensure!(
                completed.contains(key),
                "order {key} reached the data platform but is not COMPLETED"
            );
        }
        drop(self.worker);
        self.db.close().await;
        drop_database(&self.settings.database_url, &self.db_name).await;
        Ok(())
    }
}

async fn drop_database(url: &str, name: &str) {
    let admin = with_database(url, "postgres");
    if let Ok(pool) = store::db::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
}
