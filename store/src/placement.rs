//! Placement checks (CONTRACT §2.1): the lines, the coupon, the points. Read-only: a rejected
//! placement leaves nothing behind. [`crate::orders::place`] runs them in the transaction that
//! records the order.
use std::collections::HashMap;

use domain::{
    CouponId, CouponInvalidReason, LineRequest, OrderError, OrderLine, Points, Pricing, UserId,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::StoreError;
use crate::coupons;

/// What the placement checks need: whose order, its lines, and the coupon if one is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckPlacementInput {
    pub user_id: UserId,
    pub lines: Vec<LineRequest>,
    pub coupon_id: Option<CouponId>,
}

/// A placement that passed every check: its lines priced now, and the coupon's discount on
/// their subtotal (0 without a coupon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementCheck {
    pub items: Vec<OrderLine>,
    pub discount: Points,
}

/// The lines, then the coupon, then the points, each refused with its own error in that order,
/// all read from one snapshot (so the stock, the coupon and the points that pass are those of
/// one instant). Changes nothing.
pub async fn check_placement(
    db: &PgPool,
    input: &CheckPlacementInput,
) -> Result<PlacementCheck, StoreError> {
    let mut tx = db
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let checked = check_in(&mut tx, input).await?;
    // Read-only: ending it either way changes nothing; commit says it all went as planned.
    tx.commit().await?;
    Ok(checked)
}

/// [`check_placement`] on a transaction of the caller's: [`price_in`], then the points.
pub(crate) async fn check_in(
    conn: &mut PgConnection,
    input: &CheckPlacementInput,
) -> Result<PlacementCheck, StoreError> {
    let priced = price_in(conn, input).await?;
    let total = Pricing::subtotal(&priced.items) - priced.discount;
    points_in(conn, input.user_id, total).await?;
    Ok(priced)
}

/// The pricing a placement and a quote share: the lines, then the coupon, each refused with
/// its own error in that order.
async fn price_in(
    conn: &mut PgConnection,
    input: &CheckPlacementInput,
) -> Result<PlacementCheck, StoreError> {
    let items = lines_in(conn, &input.lines).await?;
    let subtotal = Pricing::subtotal(&items);
    let discount = match input.coupon_id {
        None => 0,
        Some(coupon_id) => coupon_in(conn, input.user_id, coupon_id, subtotal).await?,
    };
    Ok(PlacementCheck { items, discount })
}

/// A cart priced as a placement would price it now (`POST /api/v1/orders/quote`), and the
/// user's points beside its total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub items: Vec<OrderLine>,
    pub subtotal: Points,
    pub discount: Points,
    pub total: Points,
    /// The user's points now; a total above them would be refused `INSUFFICIENT_POINTS` at
    /// placement.
    pub points: Points,
}

/// Prices `input` with placement's checks but the points ([`price_in`]), from one snapshot, and
/// reads the user's points instead of refusing a total above them. Changes nothing.
pub async fn quote(db: &PgPool, input: &CheckPlacementInput) -> Result<Quote, StoreError> {
    let mut tx = db
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    let PlacementCheck { items, discount } = price_in(&mut tx, input).await?;
    let points: Option<i64> = sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
        .bind(input.user_id.get())
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    let points =
        points.ok_or_else(|| OrderError::invalid(format!("unknown user {}", input.user_id)))?;
    let subtotal = Pricing::subtotal(&items);
    Ok(Quote {
        items,
        subtotal,
        discount,
        total: subtotal - discount,
        points,
    })
}

/// Every product exists and has at least the line's quantity in stock. Returns the lines in
/// request order, priced now. The first missing product (in request order) wins over any
/// shortage; then the first short line.
async fn lines_in(
    conn: &mut PgConnection,
    lines: &[LineRequest],
) -> Result<Vec<OrderLine>, StoreError> {
    if lines.is_empty() {
        return Err(OrderError::invalid("an order has at least one line").into());
    }
    if let Some(bad) = lines.iter().find(|l| l.quantity < 1) {
        return Err(OrderError::invalid(format!(
            "quantity of product {} must be at least 1",
            bad.product_id
        ))
        .into());
    }
    let ids: Vec<i64> = lines.iter().map(|l| l.product_id.get()).collect();
    let rows: Vec<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT id, name, price, stock FROM products WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    let products: HashMap<i64, (String, i64, i64)> = rows
        .into_iter()
        .map(|(id, name, price, stock)| (id, (name, price, stock)))
        .collect();
    if let Some(missing) = lines
        .iter()
        .find(|l| !products.contains_key(&l.product_id.get()))
    {
        return Err(OrderError::ProductNotFound {
            product_id: missing.product_id,
        }
        .into());
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, price, stock) = &products[&line.product_id.get()];
        if *stock < line.quantity {
            return Err(OrderError::InsufficientStock {
                product_id: line.product_id,
                available: *stock,
            }
            .into());
        }
        let line_total = price.checked_mul(line.quantity).ok_or_else(|| {
            OrderError::invalid(format!(
                "the total of product {} is too large",
                line.product_id
            ))
        })?;
        out.push(OrderLine {
            product_id: line.product_id,
            name: name.clone(),
            unit_price: *price,
            quantity: line.quantity,
            line_total,
        });
    }
    // The subtotal must fit too (the workflow sums the lines).
    out.iter()
        .try_fold(0_i64, |acc, l| acc.checked_add(l.line_total))
        .ok_or_else(|| OrderError::invalid("the order's total is too large"))?;
    Ok(out)
}

/// The coupon exists, is the user's, is `AVAILABLE`, has not expired (by the database's clock)
/// and the subtotal meets its minimum. Returns the discount on `subtotal`.
async fn coupon_in(
    conn: &mut PgConnection,
    user_id: UserId,
    coupon_id: CouponId,
    subtotal: Points,
) -> Result<Points, StoreError> {
    let Some(coupon) = coupons::load_in(conn, coupon_id).await? else {
        return Err(OrderError::CouponInvalid {
            reason: CouponInvalidReason::NotFound,
        }
        .into());
    };
    let now = coupons::db_now(conn).await?;
    coupon
        .check(user_id, subtotal, now)
        .map_err(|reason| OrderError::CouponInvalid { reason })?;
    Ok(coupon.discount.amount_off(subtotal))
}

/// The user exists and has at least `total` points (nothing is reserved).
async fn points_in(
    conn: &mut PgConnection,
    user_id: UserId,
    total: Points,
) -> Result<(), StoreError> {
    let points: Option<i64> = sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
        .bind(user_id.get())
        .fetch_optional(&mut *conn)
        .await?;
    match points {
        None => Err(OrderError::invalid(format!("unknown user {user_id}")).into()),
        Some(points) if points < total => {
            Err(OrderError::InsufficientPoints { points, total }.into())
        }
        Some(_) => Ok(()),
    }
}
