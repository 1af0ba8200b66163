//! Deduct the stock of every line, and its compensation, restore the stock.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::saga::{DeductStockInput, Stamp, StepKey};
use domain::{LineRequest, OrderError, ProductId};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::StepError;
use crate::fence::{self, Compensation, DEDUCT_STOCK};

/// Deducts every line's quantity at once, or nothing: the products are locked in id order (no
/// deadlock between orders naming the same products in different orders), every line is
/// checked, then all are updated with one `DEDUCT` ledger row per product. Idempotent by
/// `input.key`; after `restore` ran for this key it deducts nothing and answers what undid the
/// attempt (see [`fence::forward`]). A refusal (`PRODUCT_NOT_FOUND`,
/// `INSUFFICIENT_STOCK`) leaves nothing behind but its record under the key.
pub async fn deduct(db: &PgPool, input: &DeductStockInput) -> Result<(), StepError> {
    fence::forward(
        db,
        DEDUCT_STOCK,
        &input.key,
        |_| Ok(()),
        async |tx| apply_deduct(tx, input, false).await.map(|_| ()),
    )
    .await
}

/// `deduct`, and the order `PAID` → `COMPLETED` in the same transaction: the last step of a
/// payment, after which there is nothing left that could fail or need undoing. Idempotent by
/// `input.key` (a repeat answers the same stamp); fenced by `restore` like `deduct`. A refusal
/// (`PRODUCT_NOT_FOUND`, `INSUFFICIENT_STOCK`, an order that is not `PAID`) leaves nothing
/// behind.
pub async fn deduct_and_complete(
    db: &PgPool,
    input: &DeductStockInput,
) -> Result<Stamp, StepError> {
    fence::forward(db, DEDUCT_STOCK, &input.key, completed_at, async |tx| {
        let at = apply_deduct(tx, input, true).await?;
        at.map(|at| Stamp { at })
            .ok_or_else(|| StepError::Business(OrderError::invalid("no completion stamp")))
    })
    .await
}

fn completed_at(detail: &serde_json::Value) -> Result<Stamp, StepError> {
    let at: DateTime<Utc> = serde_json::from_value(detail["completed_at"].clone())
        .map_err(|e| StepError::Db(sqlx::Error::Decode(Box::new(e))))?;
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
    ids: &[ProductId],
) -> Result<BTreeMap<ProductId, i64>, sqlx::Error> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, stock FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Deducts every line (the products locked in id order and checked first), records the ledger
/// rows and the step's detail, and with `complete` moves the order `PAID` → `COMPLETED`, in
/// one statement after the check. Returns the completion stamp when it completed.
async fn apply_deduct(
    tx: &mut PgConnection,
    input: &DeductStockInput,
    complete: bool,
) -> Result<Option<DateTime<Utc>>, StepError> {
    let key = &input.key;
    let wanted = quantities(&input.lines)?;
    let mut ids: Vec<ProductId> = wanted.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    let stock = lock_products(tx, &ids).await?;
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
    let (ids, qtys): (Vec<i64>, Vec<i64>) = sorted.into_iter().unzip();
    // The completion stamp is the transaction's `now()`, written into the order and the step's
    // detail (so a repeat answers it) by the same statement.
    let row: (bool, DateTime<Utc>) = sqlx::query_as(
        "WITH d(id, q) AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[])), \
         p AS ( \
             UPDATE products SET stock = products.stock - d.q FROM d \
             WHERE products.id = d.id RETURNING products.id \
         ), l AS ( \
             INSERT INTO stock_ledger (product_id, order_id, attempt, kind, quantity) \
             SELECT d.id, $3, $4, 'DEDUCT', d.q FROM d RETURNING 1 \
         ), s AS ( \
             UPDATE saga_steps SET updated_at = now(), detail = $5::text::jsonb \
                 || CASE WHEN $6 THEN jsonb_build_object('completed_at', now()) \
                         ELSE '{}'::jsonb END \
             WHERE order_id = $3 AND step = 'deduct_stock' AND attempt = $4 RETURNING 1 \
         ), c AS ( \
             UPDATE orders SET status = 'COMPLETED', completed_at = now() \
             WHERE $6 AND id = $3 AND status = 'PAID' RETURNING 1 \
         ) SELECT EXISTS (SELECT 1 FROM c), now()",
    )
    .bind(&ids)
    .bind(&qtys)
    .bind(&key.order_id)
    .bind(fence::attempt(key))
    .bind(json!({ "lines": lines }).to_string())
    .bind(complete)
    .fetch_one(&mut *tx)
    .await?;
    let (completed, at) = row;
    if !complete {
        return Ok(None);
    }
    if !completed {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(&key.order_id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match status {
            Some(status) => OrderError::OrderNotPayable { status },
            None => OrderError::OrderNotFound {
                order_id: key.order_id.clone(),
            },
        }
        .into());
    }
    Ok(Some(at))
}

/// Compensates `deduct`: puts back exactly the quantities this attempt's ledger rows deducted,
/// or, when the deduction never committed, fences it out for good. Never fails for a business
/// reason; running it again does nothing.
pub async fn restore(db: &PgPool, key: &StepKey) -> Result<(), StepError> {
    let mut tx = db.begin().await?;
    if let Compensation::Undo = fence::claim_compensation(&mut tx, DEDUCT_STOCK, key).await? {
        let deducted: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT product_id, quantity FROM stock_ledger \
             WHERE order_id = $1 AND attempt = $2 AND kind = 'DEDUCT' ORDER BY product_id",
        )
        .bind(&key.order_id)
        .bind(fence::attempt(key))
        .fetch_all(&mut *tx)
        .await?;
        let (ids, qtys): (Vec<i64>, Vec<i64>) = deducted.into_iter().unzip();
        lock_products(&mut tx, &ids).await?;
        sqlx::query(
            "UPDATE products p SET stock = p.stock + d.q \
             FROM UNNEST($1::bigint[], $2::bigint[]) AS d(id, q) WHERE p.id = d.id",
        )
        .bind(&ids)
        .bind(&qtys)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO stock_ledger (product_id, order_id, attempt, kind, quantity) \
             SELECT d.id, $3, $4, 'RESTORE', d.q \
             FROM UNNEST($1::bigint[], $2::bigint[]) AS d(id, q)",
        )
        .bind(&ids)
        .bind(&qtys)
        .bind(&key.order_id)
        .bind(fence::attempt(key))
        .execute(&mut *tx)
        .await?;
        fence::mark_compensated(&mut tx, DEDUCT_STOCK, key).await?;
    }
    tx.commit().await?;
    Ok(())
}
