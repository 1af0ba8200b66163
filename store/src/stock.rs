//! Deduct the stock of every line, and its compensation, restore the stock.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::saga::{DeductStockInput, Stamp, StepKey};
use domain::{LineRequest, OrderError, OrderStatus, ProductId};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;
use crate::fence::{self, Attempt, DEDUCT_STOCK};

/// The last step of a payment: deducts every line's quantity at once, or nothing, and moves
/// the order `PAID` → `COMPLETED` in the same transaction, after which there is nothing left
/// that could fail or need undoing. The products are locked in id order (no deadlock between
/// orders naming the same products in different orders), every line is checked, then all are
/// updated with one `DEDUCT` ledger row per product. Idempotent by `input.key` (a repeat answers
/// the same stamp); after `restore` ran for this key it deducts nothing and answers what undid
/// the attempt (see [`fence::forward`]). A refusal (`PRODUCT_NOT_FOUND`, `INSUFFICIENT_STOCK`,
/// an order that is not `PAID`) leaves nothing behind but its record under the key.
pub async fn deduct_and_complete(
    db: &PgPool,
    input: &DeductStockInput,
) -> Result<Stamp, StoreError> {
    Ok(deduct_and_complete_timed(db, input).await?.0)
}

/// [`deduct_and_complete`], and how long it held its products' row locks when it deducted:
/// from the lock to the commit. Every other order of the same product waits that long, so
/// one product completes at most 1 / that many orders a second (docs/SCALING.md). `None`
/// when it deducted nothing (a repeat, a refusal).
pub async fn deduct_and_complete_timed(
    db: &PgPool,
    input: &DeductStockInput,
) -> Result<(Stamp, Option<Duration>), StoreError> {
    let mut locked_at: Option<Instant> = None;
    let stamp = fence::forward(
        db,
        DEDUCT_STOCK,
        &input.key,
        OrderStatus::Paid,
        completed_at,
        async |tx, attempt| {
            let (at, locked) = apply_deduct(tx, input, attempt).await?;
            locked_at = Some(locked);
            Ok(Stamp { at })
        },
    )
    .await?;
    Ok((stamp, locked_at.map(|t| t.elapsed())))
}

fn completed_at(detail: &serde_json::Value) -> Result<Stamp, StoreError> {
    let at: DateTime<Utc> = serde_json::from_value(detail["completed_at"].clone())
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
    Ok(Stamp { at })
}

/// The quantity per product, in first-mention order (a product named twice is summed).
fn quantities(lines: &[LineRequest]) -> Result<Vec<(ProductId, i64)>, OrderError> {
    let mut out: Vec<(ProductId, i64)> = Vec::with_capacity(lines.len());
    for line in lines {
        if line.quantity < 1 {
            return Err(OrderError::invalid(format!(
                "quantity of product {} must be at least 1",
                line.product_id
            )));
        }
        match out.iter_mut().find(|(id, _)| *id == line.product_id) {
            Some((_, q)) => {
                *q = q
                    .checked_add(line.quantity)
                    .ok_or_else(|| OrderError::invalid("quantity too large"))?;
            }
            None => out.push((line.product_id, line.quantity)),
        }
    }
    Ok(out)
}

/// Locks the products in id order and returns their stock.
async fn lock_products(
    tx: &mut PgConnection,
    ids: &[i64],
) -> Result<BTreeMap<ProductId, i64>, sqlx::Error> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, stock FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, stock)| (ProductId::new(id), stock))
        .collect())
}

/// Deducts every line (the products locked in id order and checked first), records the ledger
/// rows and the step's detail, and moves the order `PAID` → `COMPLETED`, in one statement after
/// the check. Returns the completion stamp and when the products' locks were granted. The
/// caller holds the order's lock and has checked that it is `PAID`.
async fn apply_deduct(
    tx: &mut PgConnection,
    input: &DeductStockInput,
    attempt: &Attempt,
) -> Result<(DateTime<Utc>, Instant), StoreError> {
    let wanted = quantities(&input.lines)?;
    let mut ids: Vec<i64> = wanted.iter().map(|(id, _)| id.get()).collect();
    ids.sort_unstable();
    let stock = lock_products(tx, &ids).await?;
    let locked = Instant::now();
    if let Some((missing, _)) = wanted.iter().find(|(id, _)| !stock.contains_key(id)) {
        return Err(OrderError::ProductNotFound {
            product_id: *missing,
        }
        .into());
    }
    if let Some((id, _)) = wanted.iter().find(|(id, q)| stock[id] < *q) {
        return Err(OrderError::InsufficientStock {
            product_id: *id,
            available: stock[id],
        }
        .into());
    }
    let mut sorted = wanted.clone();
    sorted.sort_unstable();
    let lines: Vec<_> = wanted
        .iter()
        .map(|(id, q)| json!({ "product_id": id, "quantity": q }))
        .collect();
    let (ids, qtys): (Vec<i64>, Vec<i64>) = sorted.into_iter().map(|(id, q)| (id.get(), q)).unzip();
    // The completion stamp is the transaction's `now()`, written into the order and the step's
    // detail (so a repeat answers it) by the same statement.
    let at: DateTime<Utc> = sqlx::query_scalar(
        "WITH d(id, q) AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])), \
         p AS ( \
             UPDATE products SET stock = products.stock - d.q FROM d \
             WHERE products.id = d.id RETURNING products.id \
         ), l AS ( \
             INSERT INTO stock_ledger (product_id, order_id, attempt, kind, quantity) \
             SELECT d.id, $3, $4, 'DEDUCT', d.q FROM d RETURNING 1 \
         ), s AS ( \
             UPDATE saga_steps SET updated_at = now(), detail = $5::text::jsonb \
                 || jsonb_build_object('completed_at', now()) \
             WHERE order_id = $3 AND step = 'deduct_stock' AND attempt = $4 RETURNING 1 \
         ), c AS ( \
             UPDATE orders SET status = 'COMPLETED', completed_at = now() \
             WHERE id = $3 AND status = 'PAID' RETURNING 1 \
         ) SELECT now()",
    )
    .bind(&ids)
    .bind(&qtys)
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .bind(json!({ "lines": lines }).to_string())
    .fetch_one(&mut *tx)
    .await?;
    Ok((at, locked))
}

/// Compensates `deduct_and_complete`: puts back exactly the quantities this payment's ledger
/// rows deducted, or, when the deduction never committed, fences it out for good; nothing for
/// a `COMPLETED` order (see [`fence::compensate`]). Never fails for a business reason; running
/// it again does nothing.
pub async fn restore(db: &PgPool, key: &StepKey) -> Result<(), StoreError> {
    fence::compensate(db, DEDUCT_STOCK, key, async |tx, attempt| {
        undo_deduct(tx, attempt).await
    })
    .await
}

/// Restores what `attempt` deducted, with one `RESTORE` ledger row per product. The caller
/// holds the order's lock and marks the step.
pub(crate) async fn undo_deduct(
    tx: &mut PgConnection,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let deducted: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT product_id, quantity FROM stock_ledger \
         WHERE order_id = $1 AND attempt = $2 AND kind = 'DEDUCT' ORDER BY product_id",
    )
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .fetch_all(&mut *tx)
    .await?;
    let (ids, qtys): (Vec<i64>, Vec<i64>) = deducted.into_iter().unzip();
    lock_products(tx, &ids).await?;
    sqlx::query(
        "WITH d(id, q) AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])), \
         p AS (UPDATE products SET stock = products.stock + d.q FROM d \
               WHERE products.id = d.id RETURNING 1) \
         INSERT INTO stock_ledger (product_id, order_id, attempt, kind, quantity) \
         SELECT d.id, $3, $4, 'RESTORE', d.q FROM d",
    )
    .bind(&ids)
    .bind(&qtys)
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
