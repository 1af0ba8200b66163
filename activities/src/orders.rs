//! The order row: recorded `PENDING`, then completed or closed. Also reads for the CLI and API.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::saga::{CloseOrderInput, Stamp};
use domain::{Order, OrderError, OrderLine, OrderStatus, Shipping, UserId};
use sqlx::{FromRow, PgPool};

use crate::StepError;

/// Records the order as `PENDING` with its lines, in one transaction. Idempotent by order id:
/// recording the same order again changes nothing. An id already taken by another user's order,
/// or by an order that has moved on from `PENDING`, is refused (`INVALID_REQUEST`).
pub async fn record(db: &PgPool, order: &Order) -> Result<(), StepError> {
    let mut tx = db.begin().await?;
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO orders (id, user_id, status, subtotal, discount, total, coupon_id, \
             recipient, address, phone, created_at, expires_at) \
         VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(&order.id)
    .bind(order.user_id)
    .bind(order.subtotal)
    .bind(order.discount)
    .bind(order.total)
    .bind(order.coupon_id)
    .bind(&order.shipping.recipient)
    .bind(&order.shipping.address)
    .bind(&order.shipping.phone)
    .bind(order.created_at)
    .bind(order.expires_at)
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        let (owner, status): (i64, String) =
            sqlx::query_as("SELECT user_id, status FROM orders WHERE id = $1")
                .bind(&order.id)
                .fetch_one(&mut *tx)
                .await?;
        tx.rollback().await?;
        // A retry of this very record finds its order still PENDING (the workflow waits for
        // this activity before anything else can happen to it). Anything else is another
        // order under the same id, which must not be mistaken for this one.
        if owner != order.user_id || status != OrderStatus::Pending.as_str() {
            return Err(OrderError::invalid(format!("order id {} is taken", order.id)).into());
        }
        return Ok(());
    }
    for (position, line) in order.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines \
                 (order_id, product_id, position, name, unit_price, quantity, line_total) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&order.id)
        .bind(line.product_id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(&line.name)
        .bind(line.unit_price)
        .bind(line.quantity)
        .bind(line.line_total)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn not_found(order_id: &str) -> StepError {
    OrderError::OrderNotFound {
        order_id: order_id.to_owned(),
    }
    .into()
}

/// `PAID` → `COMPLETED`. A repeat answers the same stamp; any other status is refused
/// (`ORDER_NOT_PAYABLE` with the status).
pub async fn complete(db: &PgPool, order_id: &str) -> Result<Stamp, StepError> {
    let done: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE orders SET status = 'COMPLETED', completed_at = now() \
         WHERE id = $1 AND status = 'PAID' RETURNING completed_at",
    )
    .bind(order_id)
    .fetch_optional(db)
    .await?;
    if let Some(at) = done {
        return Ok(Stamp { at });
    }
    let row: Option<(String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT status, completed_at FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(db)
            .await?;
    match row {
        None => Err(not_found(order_id)),
        Some((status, Some(at))) if status == OrderStatus::Completed.as_str() => Ok(Stamp { at }),
        Some((status, _)) => Err(OrderError::OrderNotPayable { status }.into()),
    }
}

/// `PENDING`/`PAID` → `CANCELED` (with `canceled_at`), or `PENDING` → `EXPIRED`
/// (`canceled_at` stays NULL), with the reason. Closing again into the same status answers the
/// first stamp; any other final status is refused (`ORDER_NOT_PAYABLE` with the status).
pub async fn close(db: &PgPool, input: &CloseOrderInput) -> Result<Stamp, StepError> {
    if !matches!(input.status, OrderStatus::Canceled | OrderStatus::Expired) {
        return Err(OrderError::invalid(format!(
            "an order is closed as CANCELED or EXPIRED, not {}",
            input.status
        ))
        .into());
    }
    let status = input.status.as_str();
    // Only an order that was never paid can expire. A PAID order is closed only as CANCELED,
    // by the workflow that charged it, after its compensations; an EXPIRED one would keep the
    // points.
    let closed: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE orders SET status = $2, cancel_reason = $3, closed_at = now(), \
             canceled_at = CASE WHEN $2 = 'CANCELED' THEN now() END \
         WHERE id = $1 \
           AND (status = 'PENDING' OR (status = 'PAID' AND $2 = 'CANCELED')) \
         RETURNING closed_at",
    )
    .bind(&input.order_id)
    .bind(status)
    .bind(&input.reason)
    .fetch_optional(db)
    .await?;
    if let Some(at) = closed {
        return Ok(Stamp { at });
    }
    let row: Option<(String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT status, closed_at FROM orders WHERE id = $1")
            .bind(&input.order_id)
            .fetch_optional(db)
            .await?;
    match row {
        None => Err(not_found(&input.order_id)),
        Some((current, Some(at))) if current == status => Ok(Stamp { at }),
        Some((current, _)) => Err(OrderError::OrderNotPayable { status: current }.into()),
    }
}

/// Records that the data platform has the order. The first time counts: a repeat keeps (and
/// answers) the first stamp.
pub async fn mark_notified(db: &PgPool, order_id: &str) -> Result<Stamp, StepError> {
    let at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "UPDATE orders SET platform_notified_at = COALESCE(platform_notified_at, now()) \
         WHERE id = $1 RETURNING platform_notified_at",
    )
    .bind(order_id)
    .fetch_optional(db)
    .await?;
    match at.flatten() {
        Some(at) => Ok(Stamp { at }),
        None => Err(not_found(order_id)),
    }
}

const ORDER_COLUMNS: &str = "id, user_id, status, subtotal, discount, total, coupon_id, \
     recipient, address, phone, created_at, expires_at, paid_at, completed_at, canceled_at, \
     cancel_reason, platform_notified_at";

#[derive(FromRow)]
struct OrderRow {
    id: String,
    user_id: i64,
    status: String,
    subtotal: i64,
    discount: i64,
    total: i64,
    coupon_id: Option<i64>,
    recipient: String,
    address: String,
    phone: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    canceled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
    platform_notified_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
struct LineRow {
    order_id: String,
    product_id: i64,
    name: String,
    unit_price: i64,
    quantity: i64,
    line_total: i64,
}

impl OrderRow {
    fn into_order(self, items: Vec<OrderLine>) -> Result<Order, sqlx::Error> {
        let status = OrderStatus::parse(&self.status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown order status {:?}", self.status).into())
        })?;
        Ok(Order {
            id: self.id,
            user_id: self.user_id,
            status,
            items,
            subtotal: self.subtotal,
            discount: self.discount,
            total: self.total,
            coupon_id: self.coupon_id,
            shipping: Shipping {
                recipient: self.recipient,
                address: self.address,
                phone: self.phone,
            },
            created_at: self.created_at,
            expires_at: self.expires_at,
            paid_at: self.paid_at,
            completed_at: self.completed_at,
            canceled_at: self.canceled_at,
            cancel_reason: self.cancel_reason,
            platform_notified_at: self.platform_notified_at,
        })
    }
}

/// Attaches each order's lines (in the order they were placed).
async fn with_lines(db: &PgPool, rows: Vec<OrderRow>) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT order_id, product_id, name, unit_price, quantity, line_total FROM order_lines \
         WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    let mut by_order: HashMap<String, Vec<OrderLine>> = HashMap::new();
    for l in lines {
        by_order.entry(l.order_id).or_default().push(OrderLine {
            product_id: l.product_id,
            name: l.name,
            unit_price: l.unit_price,
            quantity: l.quantity,
            line_total: l.line_total,
        });
    }
    rows.into_iter()
        .map(|row| {
            let items = by_order.remove(&row.id).unwrap_or_default();
            row.into_order(items)
        })
        .collect()
}

/// One order with its lines, or `None`.
pub async fn load(db: &PgPool, order_id: &str) -> Result<Option<Order>, sqlx::Error> {
    let row: Option<OrderRow> =
        sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(order_id)
            .fetch_optional(db)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_lines(db, vec![row]).await?.pop())
}

/// A user's orders, newest first, at most `limit` of them.
pub async fn list_for_user(
    db: &PgPool,
    user_id: UserId,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit.max(0))
    .fetch_all(db)
    .await?;
    with_lines(db, rows).await
}
