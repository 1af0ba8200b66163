//! The idempotency and fencing protocol of the payment steps, on `saga_steps`.
//!
//! One row per (order, step, attempt), always written inside the transaction that applies the
//! step's effect or its compensation:
//!
//! - forward: `INSERT … 'DONE' ON CONFLICT DO NOTHING`. Inserted: apply the effect in the same
//!   transaction. A business refusal rolls the whole transaction back, row included, and then
//!   records the key `REFUSED` with the error, so that running the step again (a worker died
//!   before the workflow recorded the refusal) answers the same refusal. Already there: `DONE`
//!   means the effect already happened (answer again, no second effect); `REFUSED` means it was
//!   refused (answer the same error); `COMPENSATED`/`FENCED` means the compensation already ran,
//!   so a late retry must not commit: it answers the refusal recorded by another step of the
//!   same attempt (what made the saga unwind), or `ORDER_NOT_PAYABLE` when none was refused.
//! - compensation: `INSERT … 'FENCED' ON CONFLICT DO NOTHING`. Inserted: the forward step never
//!   committed, and now never will. Already there: lock it; `DONE` means undo exactly what that
//!   attempt did and mark it `COMPENSATED`; anything else (`REFUSED` included) means there is
//!   nothing left to do.
//!
//! Concurrent callers on the same key serialize on the primary key: an `INSERT` waits for the
//! transaction holding the conflicting row and then sees its outcome.
use domain::saga::StepKey;
use domain::{OrderError, OrderStatus};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::StepError;

pub(crate) const CHARGE_POINTS: &str = "charge_points";
pub(crate) const REDEEM_COUPON: &str = "redeem_coupon";
pub(crate) const DEDUCT_STOCK: &str = "deduct_stock";

pub(crate) fn attempt(key: &StepKey) -> i64 {
    i64::from(key.attempt)
}

/// Runs the forward step `step` under `key` in one transaction: `apply` when this call claims
/// the key, `done` on the detail the step recorded when it already took effect. A refusal
/// leaves no effect behind, only its record (see [`finish`]).
pub(crate) async fn forward<T>(
    db: &PgPool,
    step: &str,
    key: &StepKey,
    done: impl FnOnce(&Value) -> Result<T, StepError>,
    apply: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StepError>,
) -> Result<T, StepError> {
    let mut tx = db.begin().await?;
    let result = match claim_forward(&mut tx, step, key).await {
        Ok(Forward::Done(detail)) => done(&detail),
        Ok(Forward::Claimed) => apply(&mut tx).await,
        Err(e) => Err(e),
    };
    finish(db, tx, step, key, result).await
}

/// What a forward step found when it claimed its key.
enum Forward {
    /// This transaction owns the step: apply the effect now.
    Claimed,
    /// The step already took effect; here is the detail it recorded.
    Done(Value),
}

/// Claims the forward step `step` for `key`. A step refused before answers that refusal again;
/// one already compensated or fenced never commits, and answers the refusal that undid its
/// attempt, or else the business error `ORDER_NOT_PAYABLE` (status `CANCELED`).
async fn claim_forward(
    tx: &mut PgConnection,
    step: &str,
    key: &StepKey,
) -> Result<Forward, StepError> {
    let inserted = sqlx::query(
        "INSERT INTO saga_steps (order_id, step, attempt, state) VALUES ($1, $2, $3, 'DONE') \
         ON CONFLICT DO NOTHING",
    )
    .bind(&key.order_id)
    .bind(step)
    .bind(attempt(key))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Forward::Claimed);
    }
    let (state, detail) = read_state(tx, step, key, false).await?;
    match state.as_str() {
        "DONE" => Ok(Forward::Done(detail)),
        "REFUSED" => Err(refusal_of(detail).into()),
        // Undone: if a later step's refusal is what undid this attempt, answer that refusal,
        // so that a step run again (its first answer lost with a worker, after the unwinding)
        // tells what the first run told rather than a refusal of its own making.
        _ => Err(undoing_refusal(tx, key)
            .await?
            .unwrap_or_else(|| OrderError::not_payable(OrderStatus::Canceled))
            .into()),
    }
}

fn refusal_of(detail: Value) -> OrderError {
    serde_json::from_value(detail)
        .unwrap_or_else(|_| OrderError::not_payable(OrderStatus::Canceled))
}

/// The refusal recorded by a step of the same attempt, if one was refused.
async fn undoing_refusal(
    tx: &mut PgConnection,
    key: &StepKey,
) -> Result<Option<OrderError>, sqlx::Error> {
    let detail: Option<String> = sqlx::query_scalar(
        "SELECT detail::text FROM saga_steps \
         WHERE order_id = $1 AND attempt = $2 AND state = 'REFUSED' LIMIT 1",
    )
    .bind(&key.order_id)
    .bind(attempt(key))
    .fetch_optional(&mut *tx)
    .await?;
    Ok(detail
        .and_then(|d| serde_json::from_str(&d).ok())
        .map(refusal_of))
}

/// Records what the forward step did (read back by an idempotent repeat).
pub(crate) async fn set_detail(
    tx: &mut PgConnection,
    step: &str,
    key: &StepKey,
    detail: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE saga_steps SET detail = $4::text::jsonb, updated_at = now() \
         WHERE order_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(&key.order_id)
    .bind(step)
    .bind(attempt(key))
    .bind(detail.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What a compensation found when it claimed its key.
pub(crate) enum Compensation {
    /// The forward step never committed; the key is now fenced and it never will.
    Fenced,
    /// The forward step took effect (the row is locked): undo it, then [`mark_compensated`].
    Undo,
    /// Already compensated or fenced: nothing to do.
    Nothing,
}

pub(crate) async fn claim_compensation(
    tx: &mut PgConnection,
    step: &str,
    key: &StepKey,
) -> Result<Compensation, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO saga_steps (order_id, step, attempt, state) VALUES ($1, $2, $3, 'FENCED') \
         ON CONFLICT DO NOTHING",
    )
    .bind(&key.order_id)
    .bind(step)
    .bind(attempt(key))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Compensation::Fenced);
    }
    let (state, _) = read_state(tx, step, key, true).await?;
    Ok(match state.as_str() {
        "DONE" => Compensation::Undo,
        _ => Compensation::Nothing,
    })
}

pub(crate) async fn mark_compensated(
    tx: &mut PgConnection,
    step: &str,
    key: &StepKey,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE saga_steps SET state = 'COMPENSATED', updated_at = now() \
         WHERE order_id = $1 AND step = $2 AND attempt = $3 AND state = 'DONE'",
    )
    .bind(&key.order_id)
    .bind(step)
    .bind(attempt(key))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn read_state(
    tx: &mut PgConnection,
    step: &str,
    key: &StepKey,
    lock: bool,
) -> Result<(String, Value), sqlx::Error> {
    let sql = if lock {
        "SELECT state, detail::text FROM saga_steps \
         WHERE order_id = $1 AND step = $2 AND attempt = $3 FOR UPDATE"
    } else {
        "SELECT state, detail::text FROM saga_steps \
         WHERE order_id = $1 AND step = $2 AND attempt = $3"
    };
    let (state, detail): (String, String) = sqlx::query_as(sql)
        .bind(&key.order_id)
        .bind(step)
        .bind(attempt(key))
        .fetch_one(&mut *tx)
        .await?;
    let detail = serde_json::from_str(&detail).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok((state, detail))
}

/// Commits on success. On failure rolls back, so that a refused step leaves no effect behind;
/// a business refusal of a step this transaction claimed is then recorded as `REFUSED`, with the
/// error, for a re-run to answer.
async fn finish<T>(
    db: &PgPool,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    step: &str,
    key: &StepKey,
    result: Result<T, StepError>,
) -> Result<T, StepError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            // A failed rollback is harmless: the connection drops the transaction anyway.
            let _ = tx.rollback().await;
            if let StepError::Business(refusal) = &e {
                // Best effort: without the record a re-run answers what it then finds, which
                // is what it did before refusals were recorded.
                if let Err(db_error) = record_refusal(db, step, key, refusal).await {
                    tracing::warn!(
                        order_id = %key.order_id,
                        step,
                        error = %db_error,
                        "could not record the step's refusal"
                    );
                }
            }
            Err(e)
        }
    }
}

async fn record_refusal(
    db: &PgPool,
    step: &str,
    key: &StepKey,
    refusal: &OrderError,
) -> Result<(), sqlx::Error> {
    let detail = serde_json::to_string(refusal).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // ON CONFLICT: the key already says what happened (fenced by a compensation, or a refusal
    // recorded by an earlier run); that stays.
    sqlx::query(
        "INSERT INTO saga_steps (order_id, step, attempt, state, detail) \
         VALUES ($1, $2, $3, 'REFUSED', $4::text::jsonb) ON CONFLICT DO NOTHING",
    )
    .bind(&key.order_id)
    .bind(step)
    .bind(attempt(key))
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}
