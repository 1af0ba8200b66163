//! What operators see: the HTTP API's metrics on their own listener, the worker's metrics (the
//! SDK's and the order counters), and the workflow as the Web UI shows it (its title and the
//! search attributes). Against the real dev server and PostgreSQL; every test ends with the
//! CONTRACT §6 check.

use domain::{CouponId, ProductId, UserId};
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use domain::{Discount, OrderError, OrderStatus};
use saga_tests::{TestApp, business, spawn_app};
use serde_json::json;
use starter::OrderService;
use starter::http::AppState;
use starter::token::{self, Role};
use temporalio_client::{WorkflowCountOptions, WorkflowDescribeOptions};
use testkit::WorkerThread;
use testkit::shop::order_request;
use workflows::OrderWorkflow;

type R = Result<()>;

/// One sample of a Prometheus text exposition: its name and labels.
type Sample = (String, BTreeMap<String, String>);

/// Parses the text format (no escaped quotes in our label values).
fn parse(text: &str) -> Vec<(Sample, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}')?;
                    let labels = body
                        .split("\",")
                        .filter(|kv| !kv.is_empty())
                        .filter_map(|kv| {
                            let (k, v) = kv.split_once('=')?;
                            Some((k.to_owned(), v.trim_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            Some(((name, labels), value))
        })
        .collect()
}

/// The sum of every sample of `name` whose labels include `labels`.
fn sum(samples: &[(Sample, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((n, l), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<(String, Vec<(Sample, f64)>)> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    if !content_type.starts_with("text/plain") {
        bail!("{url} answered content-type {content_type:?}");
    }
    let samples = parse(&text);
    Ok((text, samples))
}

/// The API served with its metrics on a listener of their own, for the tests of its metrics.
struct Served {
    /// `http://127.0.0.1:PORT`
    api: String,
    metrics_url: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve_with_metrics(app: &TestApp) -> Result<Served> {
    let state = AppState::from_parts(
        app.settings.clone(),
        app.db.clone(),
        Some(app.client.clone()),
    );
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", api_listener.local_addr()?);
    let metrics_url = format!("http://{}/metrics", metrics_listener.local_addr()?);
    let server = tokio::spawn(starter::http::serve_with_metrics(
        api_listener,
        Some(metrics_listener),
        state,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    Ok(Served {
        api,
        metrics_url,
        http,
        server,
    })
}

#[tokio::test]
async fn api_metrics_count_and_time_requests_by_route_template_on_their_own_listener() -> R {
    let app = spawn_app().await;
    let served = serve_with_metrics(&app).await?;
    let user = app.user(100_000).await;
    let product = app.product(5_000, 10).await;
    let bearer = token::mint(
        &app.settings.auth_secret,
        &user.to_string(),
        Role::Customer,
        Duration::from_secs(600),
    )?;
    ten_requests(&served, &bearer, product).await?;
    let (text, samples) = scrape(&served.http, &served.metrics_url).await?;
    assert_each_request_counted_and_timed(&text, &samples, product);
    // The metrics listener serves only /metrics.
    let health_there = served
        .http
        .get(served.metrics_url.replace("/metrics", "/health"))
        .send()
        .await?;
    assert_eq!(health_there.status().as_u16(), 404);

    served.server.abort();
    app.finish().await
}

/// Ten requests of every kind the metrics must tell apart: two healthy, one unauthenticated,
/// a product found and one not, two unmatched routes, an order placed and paid, the document.
async fn ten_requests(served: &Served, bearer: &str, product: ProductId) -> R {
    let (http, api) = (&served.http, &served.api);
    let status = |r: reqwest::Response| r.status().as_u16();

    assert_eq!(status(http.get(format!("{api}/health")).send().await?), 200);
    assert_eq!(status(http.get(format!("{api}/health")).send().await?), 200);
    assert_eq!(
        status(http.get(format!("{api}/api/v1/me")).send().await?),
        401
    );
    let get_product = |id: ProductId| {
        http.get(format!("{api}/api/v1/products/{id}"))
            .bearer_auth(bearer)
    };
    assert_eq!(status(get_product(product).send().await?), 200);
    assert_eq!(
        status(
            get_product(ProductId::new(product.get() + 1000))
                .send()
                .await?
        ),
        404
    );
    assert_eq!(
        status(http.get(format!("{api}/no/such/route")).send().await?),
        404
    );
    let placed: serde_json::Value = http
        .post(format!("{api}/api/v1/orders"))
        .bearer_auth(bearer)
        .json(&json!({
            "items": [{"product_id": product, "quantity": 2}],
            "shipping": {"recipient": "Kim Minji", "address": "12 Teheran-ro", "phone": "010-1234-5678"},
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let order_id = placed["id"].as_str().context("an order id")?;
    let paid = http
        .post(format!("{api}/api/v1/payments"))
        .bearer_auth(bearer)
        .json(&json!({ "order_id": order_id }))
        .send()
        .await?;
    assert_eq!(status(paid), 200);
    // The API itself has no /metrics: the contract's routes stay exactly §5.
    assert_eq!(
        status(http.get(format!("{api}/metrics")).send().await?),
        404
    );
    let openapi: serde_json::Value = http
        .get(format!("{api}/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        openapi["paths"].get("/metrics").is_none(),
        "/metrics is not in the OpenAPI document"
    );
    Ok(())
}

/// The ten requests, each counted under its method, route template and status, and timed.
fn assert_each_request_counted_and_timed(
    text: &str,
    samples: &[(Sample, f64)],
    product: ProductId,
) {
    let requests = |method: &str, route: &str, status: &str| {
        sum(
            samples,
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("GET", "/health", "200"), 2.0, "{text}");
    assert_eq!(requests("GET", "/api/v1/me", "401"), 1.0, "{text}");
    assert_eq!(
        requests("GET", "/api/v1/products/{id}", "200"),
        1.0,
        "{text}"
    );
    assert_eq!(
        requests("GET", "/api/v1/products/{id}", "404"),
        1.0,
        "{text}"
    );
    assert_eq!(requests("GET", "unmatched", "404"), 2.0, "{text}");
    assert_eq!(requests("POST", "/api/v1/orders", "201"), 1.0, "{text}");
    assert_eq!(requests("POST", "/api/v1/payments", "200"), 1.0, "{text}");
    assert_eq!(
        requests("GET", "/api/v1/openapi.json", "200"),
        1.0,
        "{text}"
    );
    // The raw path never becomes a label value.
    assert!(
        !text.contains(&format!("/api/v1/products/{product}")),
        "{text}"
    );
    assert!(!text.contains("/no/such/route"), "{text}");
    // Every answered request is timed once, in the histogram of the same labels.
    let counted = sum(samples, "http_requests_total", &[]);
    assert_eq!(counted, 10.0, "{text}");
    assert_eq!(
        sum(samples, "http_request_duration_seconds_count", &[]),
        counted,
        "{text}"
    );
    assert_eq!(
        sum(
            samples,
            "http_request_duration_seconds_bucket",
            &[("route", "/api/v1/payments"), ("le", "+Inf")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        sum(
            samples,
            "http_request_duration_seconds_sum",
            &[("route", "/api/v1/payments")]
        ) > 0.0
    );
    // Nothing is in flight between requests (the scrape itself is not an API request).
    assert_eq!(sum(samples, "http_requests_in_flight", &[]), 0.0, "{text}");
}

/// Clients choose the method and the path, so neither may become a label value as sent: a
/// scanner sending `FOO1`, `FOO2`, … to every path must not grow the number of series.
#[tokio::test]
async fn api_metrics_label_only_known_methods_and_route_templates() -> R {
    let app = spawn_app().await;
    let served = serve_with_metrics(&app).await?;
    let (http, api) = (&served.http, &served.api);

    let paths = [
        "/health",
        "/api/v1/orders",
        "/api/v1/orders/ord-1",
        "/no/such/route",
    ];
    let mut custom = 0.0;
    for (i, path) in paths.iter().enumerate() {
        for n in 0..5 {
            let method = reqwest::Method::from_bytes(format!("FOO{i}{n}").as_bytes())?;
            http.request(method, format!("{api}{path}")).send().await?;
            custom += 1.0;
        }
        // Not GET: the method is case-sensitive.
        let lower = reqwest::Method::from_bytes(b"get")?;
        http.request(lower, format!("{api}{path}")).send().await?;
        custom += 1.0;
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
            reqwest::Method::HEAD,
            reqwest::Method::OPTIONS,
        ] {
            http.request(method, format!("{api}{path}")).send().await?;
        }
    }
    let doc: serde_json::Value = http
        .get(format!("{api}/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let mut routes: Vec<String> = doc["paths"]
        .as_object()
        .context("paths")?
        .keys()
        .cloned()
        .collect();
    routes.push("unmatched".to_owned());

    let (text, samples) = scrape(http, &served.metrics_url).await?;
    let known = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
    ];
    for family in ["http_requests_total", "http_request_duration_seconds_count"] {
        let series: Vec<&BTreeMap<String, String>> = samples
            .iter()
            .filter(|((name, _), _)| name == family)
            .map(|((_, labels), _)| labels)
            .collect();
        assert!(!series.is_empty(), "{family}: {text}");
        for labels in series {
            let method = labels.get("method").map(String::as_str).unwrap_or("");
            assert!(
                known.contains(&method),
                "{family}: method {method:?}: {text}"
            );
            let route = labels.get("route").cloned().unwrap_or_default();
            assert!(routes.contains(&route), "{family}: route {route:?}: {text}");
        }
    }
    assert_eq!(
        sum(&samples, "http_requests_total", &[("method", "OTHER")]),
        custom,
        "{text}"
    );
    assert!(!text.contains("FOO"), "{text}");
    assert!(!text.contains("/no/such/route"), "{text}");
    assert!(!text.contains("ord-1"), "{text}");

    served.server.abort();
    app.finish().await
}

#[tokio::test]
async fn worker_metrics_show_the_sdk_metrics_and_what_the_orders_did() -> R {
    let app = spawn_app().await;
    let task_queue = format!("{}-instrumented", app.settings.task_queue);
    let (instrumented, addr) =
        WorkerThread::instrumented(app.settings.clone(), task_queue.clone())?;
    four_orders(&app, &task_queue).await?;

    let http = reqwest::Client::new();
    let (text, samples) = scrape(&http, &format!("http://{addr}/metrics")).await?;
    assert_what_the_orders_did(&text, &samples);
    assert_the_sdk_metrics(&text, &samples, &task_queue);

    drop(instrumented);
    app.finish().await
}

/// On `task_queue`: an order completed, one compensated (stock sold out between placement and
/// payment), one rejected at placement and one expired.
async fn four_orders(app: &TestApp, task_queue: &str) -> R {
    let service = OrderService::new(
        app.client.clone(),
        app.db.clone(),
        task_queue,
        Duration::from_secs(120),
    );
    let hurried = OrderService::new(
        app.client.clone(),
        app.db.clone(),
        task_queue,
        Duration::from_secs(2),
    );
    let user = app.user(100_000).await;
    let rival = app.user(100_000).await;
    let scarce = app.product(10_000, 2).await;
    let plenty = app.product(1_000, 50).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 500 }, None)
        .await;
    let place = |service: &OrderService,
                 user: UserId,
                 items: &[(ProductId, i64)],
                 coupon: Option<CouponId>| {
        let id = OrderService::new_order_id();
        let request = order_request(items, coupon);
        let service = service.clone();
        async move { service.place(&id, user, request).await }
    };

    // Completed.
    let done = place(&service, user, &[(plenty, 1)], None).await?;
    assert_eq!(
        service.pay(&done.id, None).await?.status,
        OrderStatus::Completed
    );
    // Stock sold out between placement and payment: compensated, CANCELED.
    let doomed = place(&service, user, &[(plenty, 1), (scarce, 2)], Some(coupon)).await?;
    let sniped = place(&service, rival, &[(scarce, 1)], None).await?;
    assert_eq!(
        service.pay(&sniped.id, None).await?.status,
        OrderStatus::Completed
    );
    let refused = business(service.pay(&doomed.id, None).await);
    assert!(
        matches!(refused, OrderError::InsufficientStock { .. }),
        "{refused:?}"
    );
    // Rejected at placement: never recorded.
    let rejected = business(place(&service, user, &[(scarce, 5)], None).await);
    assert!(
        matches!(rejected, OrderError::InsufficientStock { .. }),
        "{rejected:?}"
    );
    // Expired.
    let late = place(&hurried, user, &[(plenty, 1)], None).await?;
    let expired = app.result(&late.id).await?;
    assert_eq!(expired.order.map(|o| o.status), Some(OrderStatus::Expired));
    for (id, status) in [
        (&done.id, OrderStatus::Completed),
        (&doomed.id, OrderStatus::Canceled),
        (&sniped.id, OrderStatus::Completed),
    ] {
        let ended = app.result(id).await?.order.map(|o| o.status);
        assert_eq!(ended, Some(status), "order {id}");
    }
    Ok(())
}

/// The order counters after [`four_orders`]: placed, closed by status, compensations by step,
/// business refusals by activity and code.
fn assert_what_the_orders_did(text: &str, samples: &[(Sample, f64)]) {
    let orders = |name: &str, labels: &[(&str, &str)]| sum(samples, name, labels);
    assert_eq!(orders("order_saga_orders_placed_total", &[]), 4.0, "{text}");
    assert_eq!(
        orders("order_saga_orders_closed_total", &[("status", "COMPLETED")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        orders("order_saga_orders_closed_total", &[("status", "CANCELED")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        orders("order_saga_orders_closed_total", &[("status", "EXPIRED")]),
        1.0,
        "{text}"
    );
    for step in ["refund_points", "release_coupon", "restore_stock"] {
        assert_eq!(
            orders("order_saga_compensations_total", &[("step", step)]),
            1.0,
            "{step}: {text}"
        );
    }
    // One at payment (the last step, deduct_stock_and_complete), one at placement (whichever
    // activity checks the lines).
    let refusals = |labels: &[(&str, &str)]| orders("order_saga_business_errors_total", labels);
    assert_eq!(
        refusals(&[
            ("activity", "deduct_stock_and_complete"),
            ("code", "INSUFFICIENT_STOCK")
        ]),
        1.0,
        "{text}"
    );
    assert_eq!(refusals(&[("code", "INSUFFICIENT_STOCK")]), 2.0, "{text}");
    // The stock lock's hold time, once per deduction that took effect (the two completed
    // orders; the refused one deducted nothing): docs/SCALING.md reads its mean.
    let held = orders("orders_stock_lock_hold_seconds_count", &[]);
    assert_eq!(held, 2.0, "{text}");
    let seconds = orders("orders_stock_lock_hold_seconds_sum", &[]);
    assert!(seconds > 0.0 && seconds < 10.0, "{seconds}: {text}");
}

/// The SDK's metrics of the worker and of its client on the same page.
fn assert_the_sdk_metrics(text: &str, samples: &[(Sample, f64)], task_queue: &str) {
    let orders = |name: &str, labels: &[(&str, &str)]| sum(samples, name, labels);
    // The SDK's own worker metrics, Prometheus-style (`_total`, seconds), are on the same page.
    assert!(
        orders(
            "temporal_workflow_completed_total",
            &[("workflow_type", "OrderWorkflow")]
        ) >= 1.0,
        "{text}"
    );
    // Three charges, whether the steps run as activities or as local activities.
    let charges = |name: &str| orders(name, &[("activity_type", "OrderActivities::charge_points")]);
    assert!(
        charges("temporal_activity_execution_latency_seconds_count")
            + charges("temporal_local_activity_execution_latency_seconds_count")
            >= 3.0,
        "{text}"
    );
    assert!(
        text.contains(&format!("task_queue=\"{task_queue}\"")),
        "{text}"
    );
    // The worker's client RPCs, its long polls included, on the same page.
    assert!(
        orders(
            "temporal_long_request_total",
            &[
                ("operation", "PollWorkflowTaskQueue"),
                ("task_queue", task_queue)
            ]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        orders("temporal_request_total", &[("operation", "GetSystemInfo")]) >= 1.0,
        "{text}"
    );
}

/// The Web UI's title of an order's workflow, and the search attributes the UI's filter and
/// `temporal workflow list --query` find it by.
#[tokio::test]
async fn the_workflow_carries_a_title_and_is_found_by_its_search_attributes() -> R {
    let app: TestApp = spawn_app().await;
    let user = app.user(100_000).await;
    let a = app.product(2_000, 10).await;
    let b = app.product(3_000, 10).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;
    let placed = app.place(user, &[(a, 2), (b, 1)], Some(coupon)).await?;
    let handle = app
        .client
        .get_workflow_handle::<OrderWorkflow>(placed.id.as_str());
    let described = handle.describe(WorkflowDescribeOptions::default()).await?;
    assert_eq!(
        described.static_summary(),
        Some(
            format!(
                "Order {} by user {user}: 2 lines, coupon {coupon}",
                placed.id
            )
            .as_str()
        )
    );
    let details = described.static_details().unwrap_or_default();
    assert!(details.contains(&format!("product {a} × 2")), "{details}");
    assert!(details.contains(&format!("product {b} × 1")), "{details}");
    assert!(
        details.contains("Payment expected within 2 min"),
        "{details}"
    );

    let query = |status: &str| {
        format!(
            "WorkflowId = '{}' AND OrderStatus = '{status}' AND CustomerId = {user} AND OrderTotal = {}",
            placed.id, placed.total
        )
    };
    wait_for_count(&app, &query("PENDING")).await?;
    let paid = app.service.pay(&placed.id, None).await?;
    assert_eq!(paid.status, OrderStatus::Completed);
    let ended = app.result(&placed.id).await?.order;
    assert_eq!(ended.map(|o| o.status), Some(OrderStatus::Completed));
    wait_for_count(&app, &query("COMPLETED")).await?;
    app.finish().await
}

/// Visibility is updated shortly after the workflow's own history: wait until `query` counts
/// exactly one workflow.
async fn wait_for_count(app: &TestApp, query: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let count = app
            .client
            .count_workflows(query, WorkflowCountOptions::default())
            .await?
            .count();
        if count == 1 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{query:?} counts {count} workflows, not 1");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
