//! The order row: placed `PENDING`, then closed (completion is the payment's last step,
//! `stock::deduct_and_complete`). Also reads for the CLI and API.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::saga::{CloseOrderInput, PlaceOrderInput, Stamp};
use domain::{
    CancelCode, CouponId, Order, OrderError, OrderId, OrderLine, OrderStatus, Pricing, ProductId,
    Shipping, UserId,
};
use sqlx::{FromRow, PgConnection, PgPool};

use crate::placement::{self, CheckPlacementInput, PlacementCheck};
use crate::{StoreError, coupons, fence, points, stock};

/// Places the order (CONTRACT §2.1), keyed by its id: checks the lines, the coupon and the
/// points, and records the order `PENDING` with its lines, in one transaction. Once recorded,
/// placing it again answers the order as recorded (its status, its `created_at`), whatever has
/// changed since: a re-run (a worker died before the workflow heard the answer) never checks
/// again. An id already taken by another user's order is refused (`INVALID_REQUEST`).
///
/// `created_at` is the moment the row is written and `expires_at` that plus the payment
/// timeout; the workflow's timer runs to `expires_at` itself.
pub async fn place(db: &PgPool, input: &PlaceOrderInput) -> Result<Order, StoreError> {
    if let Some(order) = recorded(db, input).await? {
        return Ok(order);
    }
    // One snapshot for the checks; a concurrent run that records the same id first makes the
    // insert fail to serialize, and the retry finds its order.
    let mut tx = db
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await?;
    let check = CheckPlacementInput {
        user_id: input.user_id,
        lines: input.request.items.clone(),
        coupon_id: input.request.coupon_id,
    };
    let PlacementCheck { items, discount } = placement::check_in(&mut tx, &check).await?;
    let subtotal = Pricing::subtotal(&items);
    let total = subtotal - discount;
    let shipping = &input.request.shipping;
    let timeout_ms = i64::try_from(input.payment_timeout_ms).unwrap_or(i64::MAX);
    let (created_at, expires_at): (DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "WITH t AS (SELECT date_trunc('milliseconds', clock_timestamp()) AS at) \
         INSERT INTO orders (id, user_id, status, subtotal, discount, total, coupon_id, \
             recipient, address, phone, created_at, expires_at) \
         SELECT $1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, t.at, \
             t.at + $10 * interval '1 millisecond' FROM t \
         RETURNING created_at, expires_at",
    )
    .bind(input.order_id.as_str())
    .bind(input.user_id.get())
    .bind(subtotal)
    .bind(discount)
    .bind(total)
    .bind(input.request.coupon_id.map(CouponId::get))
    .bind(&shipping.recipient)
    .bind(&shipping.address)
    .bind(&shipping.phone)
    .bind(timeout_ms)
    .fetch_one(&mut *tx)
    .await?;
    insert_lines(&mut tx, &input.order_id, &items).await?;
    tx.commit().await?;
    Ok(Order {
        id: input.order_id.clone(),
        user_id: input.user_id,
        status: OrderStatus::Pending,
        items,
        subtotal,
        discount,
        total,
        coupon_id: input.request.coupon_id,
        shipping: shipping.clone(),
        created_at,
        expires_at,
        paid_at: None,
        completed_at: None,
        canceled_at: None,
        cancel_reason: None,
        cancel_code: None,
        platform_notified_at: None,
    })
}

/// The order already recorded under this placement's id, if any; another user's is refused.
async fn recorded(db: &PgPool, input: &PlaceOrderInput) -> Result<Option<Order>, StoreError> {
    match load(db, &input.order_id).await? {
        Some(order) if order.user_id != input.user_id => {
            Err(OrderError::invalid(format!("order id {} is taken", order.id)).into())
        }
        found => Ok(found),
    }
}

async fn insert_lines(
    tx: &mut PgConnection,
    order_id: &str,
    items: &[OrderLine],
) -> Result<(), sqlx::Error> {
    let positions: Vec<i32> = (0..items.len())
        .map(|p| i32::try_from(p).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "INSERT INTO order_lines \
             (order_id, product_id, position, name, unit_price, quantity, line_total) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::int[], $4::text[], $5::bigint[], \
                                  $6::bigint[], $7::bigint[])",
    )
    .bind(order_id)
    .bind(items.iter().map(|l| l.product_id.get()).collect::<Vec<_>>())
    .bind(positions)
    .bind(items.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
    .bind(items.iter().map(|l| l.unit_price).collect::<Vec<_>>())
    .bind(items.iter().map(|l| l.quantity).collect::<Vec<_>>())
    .bind(items.iter().map(|l| l.line_total).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn not_found(order_id: &str) -> StoreError {
    OrderError::OrderNotFound {
        order_id: order_id.to_owned(),
    }
    .into()
}

/// Closes an order that did not complete: `CANCELED` or `EXPIRED`, with the reason and the
/// code, after undoing every payment step its ledger shows done (CONTRACT §2: what a workflow
/// run does not remember, the database does). Answers the order as it then stands:
///
/// - `PENDING` or `PAID`: closed now. A `PAID` order is never `EXPIRED` (it was paid in time);
///   asked to expire, it is `CANCELED` with the code asked for.
/// - `COMPLETED`: left alone. The pivot: the workflow that finds it goes forward.
/// - `CANCELED` or `EXPIRED`: already closed (a repeat, or an earlier run); left as it is.
pub async fn close(db: &PgPool, input: &CloseOrderInput) -> Result<Order, StoreError> {
    if !matches!(input.status, OrderStatus::Canceled | OrderStatus::Expired) {
        return Err(OrderError::invalid(format!(
            "an order is closed as CANCELED or EXPIRED, not {}",
            input.status
        ))
        .into());
    }
    let mut tx = db.begin().await?;
    let status = match fence::lock_order(&mut tx, &input.order_id).await? {
        None => return Err(not_found(&input.order_id)),
        Some(OrderStatus::Paid) => OrderStatus::Canceled,
        Some(OrderStatus::Pending) => input.status,
        Some(_) => {
            tx.rollback().await?;
            return load(db, &input.order_id)
                .await?
                .ok_or_else(|| not_found(&input.order_id));
        }
    };
    for (step, attempt) in fence::done_steps(&mut tx, &input.order_id).await? {
        match step.as_str() {
            fence::DEDUCT_STOCK => stock::undo_deduct(&mut tx, &attempt).await?,
            fence::REDEEM_COUPON => coupons::undo_redeem(&mut tx, &attempt).await?,
            _ => points::undo_charge(&mut tx, &attempt).await?,
        }
        fence::mark_compensated(&mut tx, &step, &attempt).await?;
    }
    sqlx::query(
        "UPDATE orders SET status = $2, cancel_reason = $3, cancel_code = $4, \
             closed_at = now(), canceled_at = CASE WHEN $2 = 'CANCELED' THEN now() END \
         WHERE id = $1",
    )
    .bind(input.order_id.as_str())
    .bind(status.as_str())
    .bind(&input.reason)
    .bind(input.code.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    load(db, &input.order_id)
        .await?
        .ok_or_else(|| not_found(&input.order_id))
}

/// Records that the data platform has the order. The first time counts: a repeat keeps (and
/// answers) the first stamp.
pub async fn mark_notified(db: &PgPool, order_id: &OrderId) -> Result<Stamp, StoreError> {
    let at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "UPDATE orders SET platform_notified_at = COALESCE(platform_notified_at, now()) \
         WHERE id = $1 RETURNING platform_notified_at",
    )
    .bind(order_id.as_str())
    .fetch_optional(db)
    .await?;
    match at.flatten() {
        Some(at) => Ok(Stamp { at }),
        None => Err(not_found(order_id)),
    }
}

const ORDER_COLUMNS: &str = "id, user_id, status, subtotal, discount, total, coupon_id, \
     recipient, address, phone, created_at, expires_at, paid_at, completed_at, canceled_at, \
     cancel_reason, cancel_code, platform_notified_at";

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
    cancel_code: Option<String>,
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
        let cancel_code = self
            .cancel_code
            .map(|c| {
                CancelCode::parse(&c)
                    .ok_or_else(|| sqlx::Error::Decode(format!("unknown cancel code {c:?}").into()))
            })
            .transpose()?;
        Ok(Order {
            id: OrderId::try_from(self.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            user_id: UserId::new(self.user_id),
            status,
            items,
            subtotal: self.subtotal,
            discount: self.discount,
            total: self.total,
            coupon_id: self.coupon_id.map(CouponId::new),
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
            cancel_code,
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
            product_id: ProductId::new(l.product_id),
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
pub async fn load(db: &PgPool, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
    let row: Option<OrderRow> =
        sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(order_id.as_str())
            .fetch_optional(db)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_lines(db, vec![row]).await?.pop())
}

/// The user whose order it is, or `None`: one indexed read, for callers that need no more to
/// tell whether the order is the caller's.
pub async fn owner(db: &PgPool, order_id: &OrderId) -> Result<Option<UserId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT user_id FROM orders WHERE id = $1")
            .bind(order_id.as_str())
            .fetch_optional(db)
            .await?
            .map(UserId::new),
    )
}

/// Where an order stands, as `starter check` holds it against its workflow: the row's status
/// and cancel code as stored, and whether the data platform has it.
#[derive(Debug, Clone, FromRow)]
pub struct Standing {
    #[sqlx(try_from = "String")]
    pub id: OrderId,
    pub status: String,
    pub cancel_code: Option<String>,
    pub notified: bool,
}

const STANDING_COLUMNS: &str =
    "id, status, cancel_code, platform_notified_at IS NOT NULL AS notified";

/// Where every order stands, by id.
pub async fn standings(db: &PgPool) -> Result<Vec<Standing>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {STANDING_COLUMNS} FROM orders ORDER BY id"
    ))
    .fetch_all(db)
    .await?)
}

/// Where one order stands, or `None`.
pub async fn standing(db: &PgPool, order_id: &OrderId) -> Result<Option<Standing>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {STANDING_COLUMNS} FROM orders WHERE id = $1"
    ))
    .bind(order_id.as_str())
    .fetch_optional(db)
    .await?)
}

/// A user's orders, newest first, at most `limit`.
pub async fn list_for_user(
    db: &PgPool,
    user_id: UserId,
    limit: i64,
) -> Result<Vec<Order>, StoreError> {
    let filter = OrderFilter {
        user_id: Some(user_id),
        status: None,
    };
    Ok(list(db, &filter, None, limit).await?.orders)
}

/// Which orders a list shows: all of them, or those of one user, or of one status, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub user_id: Option<UserId>,
    pub status: Option<OrderStatus>,
}

/// Where a page of a list starts: just after the order with this `created_at` and id, in the
/// list's order (newest first, then by id, descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// A page of orders, and where the next one starts when more remain.
#[derive(Debug, Clone)]
pub struct Page {
    pub orders: Vec<Order>,
    pub next: Option<Cursor>,
}

/// The orders `filter` lets through, newest first (ties by id, descending), from just after
/// `after`, at most `limit` (at least 1) of them; `next` names the last one when more remain.
pub async fn list(
    db: &PgPool,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page, StoreError> {
    let limit = limit.max(1);
    let rows: Vec<OrderRow> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders \
         WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2) \
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text)) \
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(filter.user_id.map(|u| u.get()))
    .bind(filter.status.map(|s| s.as_str()))
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id.as_str()))
    .bind(limit.saturating_add(1))
    .fetch_all(db)
    .await?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let mut orders = with_lines(db, rows).await?;
    if more {
        orders.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let next = more.then(|| orders.last()).flatten().map(|last| Cursor {
        created_at: last.created_at,
        id: last.id.to_string(),
    });
    Ok(Page { orders, next })
}
