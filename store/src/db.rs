//! Connecting, creating the database, migrating, the demo seed, and the admin helpers that
//! create users, products and coupons and top points up. Every initial amount and every later
//! change of a balance is written to its ledger, so `invariants::check` can add them up.
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{CouponId, Discount, OrderError, Points, ProductId, UserId};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgExecutor, PgPool};

use crate::StoreError;
use crate::idempotency::Scope;

/// A pool of at most 20 connections; waiting more than 5 s for one is an error.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// A pool that connects on first use, for a process that must start, and answer, while
/// PostgreSQL is down: at most 20 connections; waiting more than `acquire_timeout` for one is an
/// error.
pub fn connect_lazy(url: &str, acquire_timeout: Duration) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(acquire_timeout)
        .connect_lazy(url)
}

/// Whether the database answers a query.
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// The id that names this database for good (`migrations/0003_installation.sql`), so that
/// what is derived from it cannot collide with what another database derived.
pub async fn installation_id(pool: &PgPool) -> Result<String, StoreError> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT id::text FROM installation")
            .fetch_one(pool)
            .await?,
    )
}

/// Creates the database that `url` names, on the same server, when it does not exist yet
/// (connecting to the server's `postgres` database to do so). Safe to race: whoever creates it
/// first wins and the others carry on.
pub async fn ensure_database(url: &str) -> Result<(), sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&sql).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // 42P04 duplicate_database; 23505 when two CREATEs race on pg_database itself.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await?;
    Ok(())
}

/// Applies `migrations/` (sqlx takes an advisory lock, so concurrent callers are safe).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("../migrations").run(pool).await
}

/// A user as the API shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    #[sqlx(try_from = "i64")]
    pub id: UserId,
    pub name: String,
    pub points: Points,
}

/// A product as the API shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Product {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    #[sqlx(try_from = "i64")]
    pub id: ProductId,
    pub name: String,
    pub price: Points,
    pub stock: i64,
}

/// Seeds the demo data when the database has no users yet: three users, four products and two
/// coupons each (one `FIXED`, one `PERCENT`) for users 1 and 2, expiring in a year. Returns
/// whether it seeded. Safe to run twice, also concurrently.
pub async fn seed_demo(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One seeder at a time; the lock ends with the transaction.
    sqlx::query("SELECT pg_advisory_xact_lock(7411650031)")
        .execute(&mut *tx)
        .await?;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if users > 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    let alice = insert_user(&mut tx, "Alice Kim", 100_000).await?;
    let bob = insert_user(&mut tx, "Bob Lee", 50_000).await?;
    insert_user(&mut tx, "Carol Park", 1_000).await?;
    insert_product(&mut tx, "Mechanical Keyboard", 89_000, 20).await?;
    insert_product(&mut tx, "Wireless Mouse", 25_000, 50).await?;
    insert_product(&mut tx, "USB-C Cable", 9_900, 100).await?;
    insert_product(&mut tx, "Monitor Stand", 45_000, 5).await?;
    let in_a_year: DateTime<Utc> =
        sqlx::query_scalar("SELECT date_trunc('second', now() + interval '1 year')")
            .fetch_one(&mut *tx)
            .await?;
    let coupons = [
        (alice, Discount::Fixed { amount: 5_000 }, Some(30_000)),
        (
            alice,
            Discount::Percent {
                percent: 10,
                max_amount: Some(10_000),
            },
            None,
        ),
        (bob, Discount::Fixed { amount: 3_000 }, None),
        (
            bob,
            Discount::Percent {
                percent: 20,
                max_amount: Some(5_000),
            },
            Some(20_000),
        ),
    ];
    for (user, discount, min) in coupons {
        insert_coupon(&mut tx, UserId::new(user), &discount, min, in_a_year).await?;
    }
    tx.commit().await?;
    tracing::info!("seeded the demo data");
    Ok(true)
}

async fn insert_user(
    conn: &mut PgConnection,
    name: &str,
    points: Points,
) -> Result<i64, sqlx::Error> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO users (name, points) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(points)
            .fetch_one(&mut *conn)
            .await?;
    if points > 0 {
        sqlx::query("INSERT INTO point_ledger (user_id, kind, amount) VALUES ($1, 'INITIAL', $2)")
            .bind(id)
            .bind(points)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

async fn insert_product(
    conn: &mut PgConnection,
    name: &str,
    price: Points,
    stock: i64,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(price)
    .bind(stock)
    .fetch_one(&mut *conn)
    .await?;
    if stock > 0 {
        sqlx::query(
            "INSERT INTO stock_ledger (product_id, kind, quantity) VALUES ($1, 'INITIAL', $2)",
        )
        .bind(id)
        .bind(stock)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

async fn insert_coupon(
    conn: &mut PgConnection,
    user_id: UserId,
    discount: &Discount,
    min_order_amount: Option<Points>,
    expires_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let discount = serde_json::to_string(discount).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar(
        "INSERT INTO coupons (user_id, discount, min_order_amount, expires_at) \
         VALUES ($1, $2::text::jsonb, $3, $4) RETURNING id",
    )
    .bind(user_id.get())
    .bind(discount)
    .bind(min_order_amount)
    .bind(expires_at)
    .fetch_one(&mut *conn)
    .await
}

fn check_name(name: &str) -> Result<(), OrderError> {
    let n = name.chars().count();
    if n == 0 || n > 200 || name.chars().any(char::is_control) {
        return Err(OrderError::invalid(
            "name must be 1 to 200 printable characters",
        ));
    }
    Ok(())
}

/// Creates a user with `points` (an `INITIAL` ledger row). `points` must not be negative.
pub async fn create_user(pool: &PgPool, name: &str, points: Points) -> Result<UserId, StoreError> {
    check_name(name)?;
    if points < 0 {
        return Err(OrderError::invalid("points must not be negative").into());
    }
    let mut tx = pool.begin().await?;
    let id = insert_user(&mut tx, name, points).await?;
    tx.commit().await?;
    Ok(UserId::new(id))
}

/// Creates a product (`price` > 0, `stock` ≥ 0; an `INITIAL` ledger row).
pub async fn create_product(
    pool: &PgPool,
    name: &str,
    price: Points,
    stock: i64,
) -> Result<ProductId, StoreError> {
    check_name(name)?;
    if price < 1 {
        return Err(OrderError::invalid("price must be at least 1").into());
    }
    if stock < 0 {
        return Err(OrderError::invalid("stock must not be negative").into());
    }
    let mut tx = pool.begin().await?;
    let id = insert_product(&mut tx, name, price, stock).await?;
    tx.commit().await?;
    Ok(ProductId::new(id))
}

/// Creates an `AVAILABLE` coupon for `user_id`. The discount must be well formed, the user
/// must exist (`INVALID_REQUEST` otherwise) and the minimum must not be negative.
pub async fn create_coupon(
    pool: &PgPool,
    user_id: UserId,
    discount: &Discount,
    min_order_amount: Option<Points>,
    expires_at: DateTime<Utc>,
) -> Result<CouponId, StoreError> {
    discount.validate().map_err(OrderError::invalid)?;
    if min_order_amount.is_some_and(|m| m < 0) {
        return Err(OrderError::invalid("min_order_amount must not be negative").into());
    }
    let mut tx = pool.begin().await?;
    if !has_user(&mut *tx, user_id).await? {
        return Err(OrderError::invalid(format!("unknown user {user_id}")).into());
    }
    let id = insert_coupon(&mut tx, user_id, discount, min_order_amount, expires_at).await?;
    tx.commit().await?;
    Ok(CouponId::new(id))
}

/// Adds `amount` (≥ 1) points to the user (a `TOP_UP` ledger row) and returns the new balance.
/// With an idempotency key, the same key for the same user takes effect once: a repeat of the
/// same amount only answers the current balance, and another amount under the key is
/// [`StoreError::TopUpKeyReused`], for as long as the ledger row is there (the HTTP API's stored
/// answers are purged after a while; the ledger is not).
pub async fn top_up(
    pool: &PgPool,
    user_id: UserId,
    amount: Points,
    idempotency_key: Option<&str>,
) -> Result<Points, StoreError> {
    if amount < 1 {
        return Err(OrderError::invalid("amount must be at least 1").into());
    }
    let mut tx = pool.begin().await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT points FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id.get())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(current) = current else {
        return Err(OrderError::invalid(format!("unknown user {user_id}")).into());
    };
    let written = sqlx::query(
        "INSERT INTO point_ledger (user_id, kind, amount, idempotency_key) \
         VALUES ($1, 'TOP_UP', $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user_id.get())
    .bind(amount)
    .bind(idempotency_key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if written == 0 {
        // Only a keyed top-up can conflict: the key's row is there, locked out of change by
        // the user's row lock above.
        let earlier: Option<i64> = sqlx::query_scalar(
            "SELECT amount FROM point_ledger \
             WHERE user_id = $1 AND idempotency_key = $2 AND kind = 'TOP_UP'",
        )
        .bind(user_id.get())
        .bind(idempotency_key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        return match (earlier, idempotency_key) {
            (Some(earlier), Some(key)) if earlier != amount => Err(StoreError::TopUpKeyReused {
                key: key.to_owned(),
                amount: earlier,
            }),
            _ => Ok(current),
        };
    }
    let points: i64 =
        sqlx::query_scalar("UPDATE users SET points = points + $2 WHERE id = $1 RETURNING points")
            .bind(user_id.get())
            .bind(amount)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(points)
}

/// Adds `quantity` (≥ 1) to a product's stock (a `RESTOCK` ledger row); returns the new stock.
pub async fn restock(
    pool: &PgPool,
    product_id: ProductId,
    quantity: i64,
) -> Result<i64, StoreError> {
    restock_keyed(pool, product_id, quantity, None).await
}

/// [`restock`], keyed: with `key` (the caller's [`Scope`] and its key), the same key takes
/// effect once, for good. A repeat for the same product and quantity only answers the current
/// stock; another restock under the key is [`StoreError::RestockKeyReused`]. An unknown product
/// is `PRODUCT_NOT_FOUND`.
pub async fn restock_keyed(
    pool: &PgPool,
    product_id: ProductId,
    quantity: i64,
    key: Option<(&Scope, &str)>,
) -> Result<i64, StoreError> {
    if quantity < 1 {
        return Err(OrderError::invalid("quantity must be at least 1").into());
    }
    let (scope, key) = match key {
        Some((scope, key)) => (Some(scope.name()), Some(key)),
        None => (None, None),
    };
    let mut tx = pool.begin().await?;
    let current: Option<i64> =
        sqlx::query_scalar("SELECT stock FROM products WHERE id = $1 FOR UPDATE")
            .bind(product_id.get())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(current) = current else {
        return Err(OrderError::ProductNotFound { product_id }.into());
    };
    let written = sqlx::query(
        "INSERT INTO stock_ledger (product_id, kind, quantity, idempotency_scope, idempotency_key) \
         VALUES ($1, 'RESTOCK', $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(product_id.get())
    .bind(quantity)
    .bind(&scope)
    .bind(key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if written == 0 {
        // Only a keyed restock can conflict: the key's row names what it restocked.
        let earlier: Option<(i64, i64)> = sqlx::query_as(
            "SELECT product_id, quantity FROM stock_ledger \
             WHERE idempotency_scope = $1 AND idempotency_key = $2 AND kind = 'RESTOCK'",
        )
        .bind(&scope)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        return match (earlier, key) {
            (Some(earlier), Some(key)) if earlier != (product_id.get(), quantity) => {
                Err(StoreError::RestockKeyReused {
                    key: key.to_owned(),
                })
            }
            _ => Ok(current),
        };
    }
    let stock: i64 =
        sqlx::query_scalar("UPDATE products SET stock = stock + $2 WHERE id = $1 RETURNING stock")
            .bind(product_id.get())
            .bind(quantity)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(stock)
}

/// Whether the user exists.
pub async fn user_exists(pool: &PgPool, user_id: UserId) -> Result<bool, StoreError> {
    Ok(has_user(pool, user_id).await?)
}

async fn has_user<'c>(db: impl PgExecutor<'c>, user_id: UserId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
        .bind(user_id.get())
        .fetch_one(db)
        .await
}

pub async fn get_user(pool: &PgPool, user_id: UserId) -> Result<Option<User>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, points FROM users WHERE id = $1")
            .bind(user_id.get())
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn get_product(
    pool: &PgPool,
    product_id: ProductId,
) -> Result<Option<Product>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, price, stock FROM products WHERE id = $1")
            .bind(product_id.get())
            .fetch_optional(pool)
            .await?,
    )
}

/// Every product, by id.
pub async fn list_products(pool: &PgPool) -> Result<Vec<Product>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, price, stock FROM products ORDER BY id")
            .fetch_all(pool)
            .await?,
    )
}
