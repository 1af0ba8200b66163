//! `starter`: the CLI of CONTRACT §4. JSON on stdout, errors on stderr, non-zero exit on failure.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use domain::{
    CouponId, Discount, LineRequest, OrderError, OrderId, PlaceOrderRequest, ProductId, Shipping,
    UserId,
};
use runtime::Settings;
use starter::token::{self, Role};
use starter::{OrderService, ServiceError};

#[derive(Parser)]
#[command(
    name = "starter",
    about = "Order saga client: place, pay, cancel and show orders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The HTTP API (CONTRACT §5) on HTTP_ADDR, until SIGINT/SIGTERM.
    Serve,
    /// Check every rule of CONTRACT §6 against PostgreSQL and the running workflows; prints
    /// what it checked as JSON and exits 1 naming each violation (a reconciliation job).
    Check,
    /// Reconcile an order whose workflow ended without finishing it (terminated): undo what it
    /// did and close it CANCELED (REPAIRED), or, past the pivot, deliver it. A dry run unless
    /// --apply; running it again changes nothing more.
    Repair {
        order_id: String,
        /// Do it (without: print what it would do).
        #[arg(long)]
        apply: bool,
    },
    /// Create the Temporal Schedule that runs the check of CONTRACT §6 as a workflow
    /// (`ReconcileWorkflow`) on TASK_QUEUE, or bring it up to these settings; idempotent.
    Schedule(ScheduleArgs),
    /// Orders: place, pay, cancel, show.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Print a bearer token for the HTTP API.
    Token(TokenArgs),
    /// Database chores.
    #[command(subcommand)]
    Db(DbCommand),
    /// Operator chores on the shop's data (what the admin HTTP routes do): users, products,
    /// coupons, top-ups and restocks. Each change is written to its ledger.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The codec server (CONTRACT §8) on CODEC_ADDR: decrypts payloads for the Temporal Web UI
    /// and CLI (`POST /decode`, `POST /encode`), until SIGINT/SIGTERM.
    Codec,
}

#[derive(Args)]
struct ScheduleArgs {
    /// The schedule's id.
    #[arg(long, env = "RECONCILE_SCHEDULE_ID", default_value = starter::schedule::DEFAULT_SCHEDULE_ID)]
    id: String,
    /// How often it runs (5m, 1h, ...).
    #[arg(long, env = "RECONCILE_INTERVAL", default_value = starter::schedule::DEFAULT_INTERVAL, value_parser = runtime::settings::parse_duration)]
    interval: Duration,
    /// Orders created less than this long ago (and deliveries completed less than this long
    /// ago) are in flight and left out.
    #[arg(long, env = "RECONCILE_GRACE", default_value = starter::schedule::DEFAULT_GRACE, value_parser = parse_grace)]
    grace: Duration,
}

/// A grace window may be zero (nothing left out).
fn parse_grace(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user with an initial balance; prints the user.
    User {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 0)]
        points: i64,
    },
    /// Create a product; prints the product.
    Product {
        #[arg(long)]
        name: String,
        #[arg(long)]
        price: i64,
        #[arg(long)]
        stock: i64,
    },
    /// Create a coupon for a user: `--fixed AMOUNT` or `--percent P [--max-amount M]`.
    Coupon {
        #[arg(long)]
        user: i64,
        #[arg(long, conflicts_with = "percent", required_unless_present = "percent")]
        fixed: Option<i64>,
        #[arg(long)]
        percent: Option<i64>,
        #[arg(long, requires = "percent")]
        max_amount: Option<i64>,
        #[arg(long)]
        min_order_amount: Option<i64>,
        /// How long from now it stays valid.
        #[arg(long, default_value = "30days", value_parser = runtime::settings::parse_duration)]
        valid_for: Duration,
    },
    /// Add points to a user; prints the user.
    TopUp {
        #[arg(long)]
        user: i64,
        #[arg(long)]
        amount: i64,
    },
    /// Add stock to a product; prints the product.
    Restock {
        #[arg(long)]
        product: i64,
        #[arg(long)]
        quantity: i64,
    },
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Place an order; prints the PENDING order.
    Place(PlaceArgs),
    /// Pay a PENDING order; prints the COMPLETED order.
    Pay { order_id: String },
    /// Cancel a PENDING order; prints the CANCELED order.
    Cancel { order_id: String },
    /// Print an order.
    Show { order_id: String },
}

#[derive(Args)]
struct PlaceArgs {
    #[arg(long)]
    user: i64,
    /// PRODUCT_ID:QTY, once per line.
    #[arg(long = "item", required = true, value_parser = parse_item)]
    items: Vec<LineRequest>,
    #[arg(long)]
    coupon: Option<i64>,
    #[arg(long)]
    recipient: String,
    #[arg(long)]
    address: String,
    #[arg(long)]
    phone: String,
    /// The order id (default: a new one). Placing again with the same id is idempotent.
    #[arg(long)]
    id: Option<String>,
}

#[derive(Args)]
struct TokenArgs {
    /// A customer token for this user id.
    #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
    user: Option<i64>,
    /// An admin token.
    #[arg(long)]
    admin: bool,
    /// How long the token is valid (default 24h; 1h with --link).
    #[arg(long, value_parser = runtime::settings::parse_duration)]
    ttl: Option<Duration>,
    /// Print a storefront sign-in link (`PUBLIC_URL/#token=…`) instead of the bare token.
    #[arg(long, conflicts_with = "admin")]
    link: bool,
}

impl TokenArgs {
    fn ttl(&self) -> Duration {
        let default = if self.link { 3600 } else { 24 * 3600 };
        self.ttl.unwrap_or(Duration::from_secs(default))
    }
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create the database if missing, apply migrations and seed the demo data (idempotent).
    Setup {
        /// Skip the demo data.
        #[arg(long)]
        no_seed: bool,
    },
}

fn parse_item(s: &str) -> Result<LineRequest, String> {
    let (p, q) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not PRODUCT_ID:QTY"))?;
    Ok(LineRequest {
        product_id: p
            .trim()
            .parse()
            .map_err(|_| format!("bad product id {p:?}"))?,
        quantity: q
            .trim()
            .parse()
            .map_err(|_| format!("bad quantity {q:?}"))?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    runtime::init_tracing();
    let outcome = run(Cli::parse()).await;
    // `serve` ends here too: the spans of its last requests are sent before the process goes.
    runtime::shutdown_tracing();
    match outcome {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(Failure::Order(e)) => {
            let body = serde_json::to_string_pretty(&e).unwrap_or_else(|_| e.to_string());
            eprintln!("{body}");
            ExitCode::from(1)
        }
        Err(Failure::Report(json)) => {
            println!("{json}");
            ExitCode::from(1)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

enum Failure {
    Order(OrderError),
    /// A report that found something wrong: printed like a success, exit code 1.
    Report(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Order(e) => Failure::Order(e),
            other => Failure::Other(other.into()),
        }
    }
}

async fn run(cli: Cli) -> Result<String, Failure> {
    let settings = Settings::from_env().map_err(anyhow::Error::from)?;
    match cli.command {
        Command::Token(args) => {
            if !settings.auth_secret_from_env {
                tracing::warn!("AUTH_SECRET is not set: signing with the development secret");
            }
            let (sub, role) = match args.user {
                Some(id) => (id.to_string(), Role::Customer),
                None => ("admin".to_owned(), Role::Admin),
            };
            let t = token::mint(&settings.auth_secret, &sub, role, args.ttl())
                .map_err(anyhow::Error::from)?;
            if args.link {
                // In the fragment: a browser never sends it to the server (CONTRACT §7).
                return Ok(format!("{}/#token={t}", settings.public_url));
            }
            Ok(t)
        }
        Command::Db(DbCommand::Setup { no_seed }) => {
            let url = &settings.database_url;
            store::db::ensure_database(url)
                .await
                .with_context(|| format!("cannot create the database of {url}"))?;
            let pool = store::db::connect(url)
                .await
                .with_context(|| format!("cannot reach PostgreSQL at {url}"))?;
            store::db::migrate(&pool)
                .await
                .context("migrations failed")?;
            if !no_seed {
                store::db::seed_demo(&pool)
                    .await
                    .context("seeding failed")?;
            }
            Ok(
                serde_json::json!({"database": url, "migrated": true, "seeded": !no_seed})
                    .to_string(),
            )
        }
        Command::Serve => serve(settings).await,
        Command::Codec => codec(settings).await,
        Command::Check => check(&settings).await,
        Command::Schedule(args) => schedule(&settings, args).await,
        Command::Repair { order_id, apply } => repair(&settings, &order_id, apply).await,
        Command::Admin(cmd) => admin(&settings, cmd).await,
        Command::Order(cmd) => {
            let service = connect(&settings).await?;
            let order = match cmd {
                OrderCommand::Place(a) => {
                    let request = PlaceOrderRequest {
                        items: a.items,
                        coupon_id: a.coupon.map(CouponId::new),
                        shipping: Shipping {
                            recipient: a.recipient,
                            address: a.address,
                            phone: a.phone,
                        },
                    };
                    let id = match a.id {
                        Some(id) => OrderId::parse(&id).map_err(Failure::Order)?,
                        None => OrderService::new_order_id(),
                    };
                    service.place(&id, UserId::new(a.user), request).await?
                }
                OrderCommand::Pay { order_id } => {
                    service.pay(&order_id_arg(&order_id)?, None).await?
                }
                OrderCommand::Cancel { order_id } => {
                    service.cancel(&order_id_arg(&order_id)?).await?
                }
                OrderCommand::Show { order_id } => service.show(&order_id_arg(&order_id)?).await?,
            };
            Ok(serde_json::to_string_pretty(&order).map_err(anyhow::Error::from)?)
        }
    }
}

/// An order id from the command line. One that cannot be an order id names no order (as the
/// API answers it).
fn order_id_arg(id: &str) -> Result<OrderId, Failure> {
    OrderId::parse(id).map_err(|_| {
        Failure::Order(OrderError::OrderNotFound {
            order_id: id.to_owned(),
        })
    })
}

async fn check(settings: &Settings) -> Result<String, Failure> {
    let db = store::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let temporal = match runtime::connect_temporal(settings).await {
        Ok(client) => Some(client),
        Err(e) => {
            tracing::warn!(error = %e, "Temporal unreachable: running orders cannot be checked");
            None
        }
    };
    let report = starter::check::run(&db, temporal.as_ref())
        .await
        .map_err(anyhow::Error::from)?;
    let json = serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?;
    if report.ok {
        Ok(json)
    } else {
        for v in &report.violations {
            eprintln!("violation: {v}");
        }
        Err(Failure::Report(json))
    }
}

async fn schedule(settings: &Settings, args: ScheduleArgs) -> Result<String, Failure> {
    use starter::schedule::{self, ReconcileSchedule};
    let client = runtime::connect_temporal(settings)
        .await
        .map_err(anyhow::Error::from)?;
    let wanted = ReconcileSchedule {
        schedule_id: args.id,
        task_queue: settings.task_queue.clone(),
        interval: args.interval,
        grace: args.grace,
    };
    let did = schedule::ensure(&client, &wanted)
        .await
        .with_context(|| format!("cannot create the schedule {}", wanted.schedule_id))?;
    let json = serde_json::json!({"schedule": wanted, "did": did});
    Ok(serde_json::to_string_pretty(&json).map_err(anyhow::Error::from)?)
}

async fn repair(settings: &Settings, order_id: &str, apply: bool) -> Result<String, Failure> {
    use starter::repair::{self, RepairError};
    let order_id = order_id_arg(order_id)?;
    let db = store::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let client = runtime::connect_temporal(settings)
        .await
        .map_err(anyhow::Error::from)?;
    let platform = activities::platform::PlatformClient::new(settings.data_platform_url.clone());
    match repair::run(&db, &client, &platform, &order_id, apply).await {
        Ok(report) => Ok(serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?),
        Err(RepairError::Order(e)) => Err(Failure::Order(e)),
        Err(e) => Err(Failure::Other(e.into())),
    }
}

async fn serve(settings: Settings) -> Result<String, Failure> {
    // Before anything listens: tokens signed with a secret anyone can read are no tokens.
    settings.check_auth_secret().map_err(anyhow::Error::from)?;
    if !settings.auth_secret_from_env {
        tracing::warn!(
            http_addr = %settings.http_addr,
            "AUTH_SECRET is not set: tokens are signed and checked with the development secret \
             (accepted on a loopback HTTP_ADDR only; never use it in production)"
        );
    }
    let addr = settings.http_addr.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on HTTP_ADDR={addr}"))?;
    let state = starter::http::AppState::new(settings)
        .with_context(|| "DATABASE_URL is not a valid PostgreSQL URL")?;
    tracing::info!(addr = %addr, "HTTP API listening");
    starter::http::serve(listener, state, shutdown_signal())
        .await
        .context("HTTP server error")?;
    tracing::info!("HTTP API stopped");
    Ok(serde_json::json!({ "stopped": true }).to_string())
}

async fn codec(settings: Settings) -> Result<String, Failure> {
    use starter::codec::{self, CodecSettings};
    let codec_settings = CodecSettings::from_env().map_err(anyhow::Error::from)?;
    codec_settings
        .check_auth_secret(&settings)
        .map_err(anyhow::Error::from)?;
    if let Some(warning) = settings.payload_keys.warning() {
        tracing::warn!("{warning}");
    }
    let addr = codec_settings.addr.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on CODEC_ADDR={addr}"))?;
    tracing::info!(
        addr = %addr,
        auth = if codec_settings.auth_required { "required" } else { "off" },
        keys = ?settings.payload_keys.ids(),
        "codec server listening"
    );
    codec::serve(listener, &settings, &codec_settings, shutdown_signal())
        .await
        .context("codec server error")?;
    Ok(serde_json::json!({ "stopped": true }).to_string())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("signal received: finishing requests in flight, then stopping");
}

async fn admin(settings: &Settings, cmd: AdminCommand) -> Result<String, Failure> {
    use store::db;
    let pool = db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let step = |e: store::StoreError| match e {
        store::StoreError::Business(e) => Failure::Order(e),
        other => Failure::Other(other.into()),
    };
    let value = match cmd {
        AdminCommand::User { name, points } => {
            let id = db::create_user(&pool, &name, points).await.map_err(step)?;
            serde_json::to_value(db::get_user(&pool, id).await.map_err(anyhow::Error::from)?)
        }
        AdminCommand::Product { name, price, stock } => {
            let id = db::create_product(&pool, &name, price, stock)
                .await
                .map_err(step)?;
            serde_json::to_value(
                db::get_product(&pool, id)
                    .await
                    .map_err(anyhow::Error::from)?,
            )
        }
        AdminCommand::Coupon {
            user,
            fixed,
            percent,
            max_amount,
            min_order_amount,
            valid_for,
        } => {
            let discount = match (fixed, percent) {
                (Some(amount), _) => Discount::Fixed { amount },
                (None, Some(percent)) => Discount::Percent {
                    percent,
                    max_amount,
                },
                (None, None) => unreachable!("clap requires --fixed or --percent"),
            };
            let valid_for = chrono::Duration::from_std(valid_for)
                .map_err(|_| Failure::Order(OrderError::invalid("--valid-for is too long")))?;
            let expires_at = chrono::Utc::now() + valid_for;
            let id = db::create_coupon(
                &pool,
                UserId::new(user),
                &discount,
                min_order_amount,
                expires_at,
            )
            .await
            .map_err(step)?;
            serde_json::to_value(
                store::coupons::get(&pool, id)
                    .await
                    .map_err(anyhow::Error::from)?,
            )
        }
        AdminCommand::TopUp { user, amount } => {
            db::top_up(&pool, UserId::new(user), amount, None)
                .await
                .map_err(step)?;
            serde_json::to_value(
                db::get_user(&pool, UserId::new(user))
                    .await
                    .map_err(anyhow::Error::from)?,
            )
        }
        AdminCommand::Restock { product, quantity } => {
            db::restock(&pool, ProductId::new(product), quantity)
                .await
                .map_err(step)?;
            serde_json::to_value(
                db::get_product(&pool, ProductId::new(product))
                    .await
                    .map_err(anyhow::Error::from)?,
            )
        }
    };
    Ok(
        serde_json::to_string_pretty(&value.map_err(anyhow::Error::from)?)
            .map_err(anyhow::Error::from)?,
    )
}

async fn connect(settings: &Settings) -> anyhow::Result<OrderService> {
    let db = store::db::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {}", settings.database_url))?;
    let client = runtime::connect_temporal(settings).await?;
    Ok(
        OrderService::new(client, db, &settings.task_queue, settings.payment_timeout)
            .with_remote_steps(settings.remote_steps),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn token(args: &[&str]) -> Result<super::TokenArgs, clap::Error> {
        let argv = ["starter", "token"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Token(t) => Ok(t),
            _ => panic!("not the token command"),
        }
    }

    #[test]
    fn a_token_is_for_a_user_or_an_admin_with_any_ttl() {
        let t = token(&["--user", "3", "--ttl", "1h"]).unwrap();
        assert_eq!((t.user, t.admin), (Some(3), false));
        assert_eq!(t.ttl(), std::time::Duration::from_secs(3600));
        let t = token(&["--admin", "--ttl", "90s"]).unwrap();
        assert_eq!((t.user, t.admin), (None, true));
        assert_eq!(t.ttl(), std::time::Duration::from_secs(90));
        assert_eq!(
            token(&["--user", "3"]).unwrap().ttl(),
            std::time::Duration::from_secs(24 * 3600)
        );
        // Neither, or both: refused (a bare --ttl once minted an admin token).
        assert!(token(&["--ttl", "1h"]).is_err());
        assert!(token(&[]).is_err());
        assert!(token(&["--user", "3", "--admin"]).is_err());
    }

    #[test]
    fn a_sign_in_link_is_a_customers_and_lasts_an_hour() {
        let t = token(&["--user", "3", "--link"]).unwrap();
        assert!(t.link);
        assert_eq!(t.ttl(), std::time::Duration::from_secs(3600));
        let t = token(&["--user", "3", "--link", "--ttl", "10m"]).unwrap();
        assert_eq!(t.ttl(), std::time::Duration::from_secs(600));
        assert!(token(&["--admin", "--link"]).is_err());
    }
}
