//! Placement checks (CONTRACT §2.1). Read-only: a rejected placement leaves nothing behind.
use std::collections::HashMap;

use domain::saga::{CheckPointsInput, ValidateCouponInput};
use domain::{CouponInvalidReason, LineRequest, OrderError, OrderLine, Points};
use sqlx::PgPool;

use crate::StepError;
use crate::coupons;

/// Every product exists and has at least the line's quantity in stock. Returns the lines in
/// request order, priced now. The first missing product (in request order) wins over any
/// shortage; then the first short line.
pub async fn validate_lines(
    db: &PgPool,
    lines: &[LineRequest],
) -> Result<Vec<OrderLine>, StepError> {
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
    let ids: Vec<i64> = lines.iter().map(|l| l.product_id).collect();
    let rows: Vec<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT id, name, price, stock FROM products WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(db)
            .await?;
    let products: HashMap<i64, (String, i64, i64)> = rows
        .into_iter()
        .map(|(id, name, price, stock)| (id, (name, price, stock)))
        .collect();
    if let Some(missing) = lines.iter().find(|l| !products.contains_key(&l.product_id)) {
        return Err(OrderError::ProductNotFound {
            product_id: missing.product_id,
        }
        .into());
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, price, stock) = &products[&line.product_id];
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
pub async fn validate_coupon(
    db: &PgPool,
    input: &ValidateCouponInput,
) -> Result<Points, StepError> {
    let mut conn = db.acquire().await?;
    let Some(coupon) = coupons::load_in(&mut conn, input.coupon_id).await? else {
        return Err(OrderError::CouponInvalid {
            reason: CouponInvalidReason::NotFound,
        }
        .into());
    };
    let now = coupons::db_now(&mut conn).await?;
    coupon
        .check(input.user_id, input.subtotal, now)
        .map_err(|reason| OrderError::CouponInvalid { reason })?;
    Ok(coupon.discount.amount_off(input.subtotal))
}

/// The user exists and has at least `total` points (nothing is reserved).
pub async fn check_points(db: &PgPool, input: &CheckPointsInput) -> Result<(), StepError> {
    let points: Option<i64> = sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
        .bind(input.user_id)
        .fetch_optional(db)
        .await?;
    match points {
        None => Err(OrderError::invalid(format!("unknown user {}", input.user_id)).into()),
        Some(points) if points < input.total => Err(OrderError::InsufficientPoints {
            points,
            total: input.total,
        }
        .into()),
        Some(_) => Ok(()),
    }
}
