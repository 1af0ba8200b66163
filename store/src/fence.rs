//! The idempotency and fencing protocol of the payment steps, on `payments` and `saga_steps`.
//!
//! A payment is named by its id (the `pay` update's); the first of its steps to run numbers it
//! (`payments`: the order's next attempt), and every later step, compensation or re-run finds
//! that number again, so nothing here depends on what a workflow run remembers.
//!
//! Every step, compensation and close locks the order row first. That one lock orders them:
//! a forward step that commits sees the order as its compensation or the close left it, and
//! the other way round. On it rests the pivot (CONTRACT §2): once the row is `COMPLETED`, a
//! compensation does nothing and a close refuses.
//!
//! One `saga_steps` row per (order, step, attempt), always written inside the transaction that
//! applies the step's effect or its compensation:
//!
//! - forward: `INSERT … 'DONE' ON CONFLICT DO NOTHING`. Inserted: apply the effect in the same
//!   transaction, if the order is in the status the step needs (else it is refused). A business
//!   refusal rolls the whole transaction back, row included, and then records the key
//!   `REFUSED` with the error, so that running the step again (a worker died before the
//!   workflow recorded the refusal) answers the same refusal. Already there: `DONE` means the
//!   effect already happened (answer again, no second effect); `REFUSED` means it was refused
//!   (answer the same error); `COMPENSATED`/`FENCED` means the compensation already ran, so a
//!   late retry must not commit: it answers the refusal recorded by another step of the same
//!   attempt (what made the saga unwind), or `ORDER_NOT_PAYABLE` when none was refused.
//! - compensation: nothing at all for a `COMPLETED` order. Otherwise `INSERT … 'FENCED' ON
//!   CONFLICT DO NOTHING`. Inserted: the forward step never committed, and now never will.
//!   Already there: lock it; `DONE` means undo exactly what that attempt did and mark it
//!   `COMPENSATED`; anything else (`REFUSED` included) means there is nothing left to do.
use domain::saga::StepKey;
use domain::{OrderError, OrderStatus};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;

pub(crate) const CHARGE_POINTS: &str = "charge_points";
pub(crate) const REDEEM_COUPON: &str = "redeem_coupon";
pub(crate) const DEDUCT_STOCK: &str = "deduct_stock";

/// Where one payment step stands (`saga_steps.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum StepState {
    /// The forward step took effect.
    Done,
    /// The forward step was refused for a business reason; `detail` holds the refusal.
    Refused,
    /// It took effect, and was then undone.
    Compensated,
    /// The compensation ran first: the forward step never took effect, and never will.
    Fenced,
}

/// One payment attempt of one order, as the database numbers it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub order_id: String,
    pub n: i64,
}

/// The attempt number of the payment `key`, given now if no step of it ran before. In a
/// statement of its own (committed at once), so that a step whose transaction rolls back
/// leaves its payment numbered.
pub(crate) async fn attempt_of(db: &PgPool, key: &StepKey) -> Result<Attempt, StoreError> {
    // A payment numbered concurrently by another of its steps: the conflict waits for it, and
    // the no-op update answers its number.
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO payments (order_id, payment_id, attempt) \
         SELECT $1, $2, coalesce(max(attempt), 0) + 1 FROM payments WHERE order_id = $1 \
         ON CONFLICT (order_id, payment_id) DO UPDATE SET attempt = payments.attempt \
         RETURNING attempt",
    )
    .bind(key.order_id.as_str())
    .bind(&key.payment_id)
    .fetch_one(db)
    .await?;
    Ok(Attempt {
        order_id: key.order_id.to_string(),
        n,
    })
}

/// Locks the order row and returns its status (`None`: no such order). Every step,
/// compensation and close takes this lock first, before any other row.
pub(crate) async fn lock_order(
    tx: &mut PgConnection,
    order_id: &str,
) -> Result<Option<OrderStatus>, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1 FOR UPDATE")
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
    status
        .map(|s| {
            OrderStatus::parse(&s)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown order status {s:?}").into()))
        })
        .transpose()
}

/// Runs the forward step `step` of payment `key` in one transaction: `apply` when this call
/// claims the key and the order is `needs`, `done` on the detail the step recorded when it
/// already took effect. A refusal leaves no effect behind, only its record (see [`finish`]).
pub(crate) async fn forward<T>(
    db: &PgPool,
    step: &str,
    key: &StepKey,
    needs: OrderStatus,
    done: impl FnOnce(&Value) -> Result<T, StoreError>,
    apply: impl AsyncFnOnce(&mut PgConnection, &Attempt) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let attempt = attempt_of(db, key).await?;
    let mut tx = db.begin().await?;
    let result = match lock_order(&mut tx, &key.order_id).await? {
        None => Err(OrderError::OrderNotFound {
            order_id: key.order_id.to_string(),
        }
        .into()),
        Some(status) => match claim_forward(&mut tx, step, &attempt).await {
            Ok(Forward::Done(detail)) => done(&detail),
            Ok(Forward::Claimed) if status != needs => Err(OrderError::not_payable(status).into()),
            // The steps after the charge never go on with a payment whose charge was refunded,
            // fenced or refused (a refunded order stays PAID until it is closed).
            Ok(Forward::Claimed) if step != CHARGE_POINTS && undone(&mut tx, &attempt).await? => {
                Err(OrderError::not_payable(OrderStatus::Canceled).into())
            }
            Ok(Forward::Claimed) => apply(&mut tx, &attempt).await,
            Err(e) => Err(e),
        },
    };
    finish(db, tx, step, &attempt, result).await
}

/// Whether `attempt`'s charge is on record as anything but done.
async fn undone(tx: &mut PgConnection, attempt: &Attempt) -> Result<bool, sqlx::Error> {
    let state: Option<StepState> = sqlx::query_scalar(
        "SELECT state FROM saga_steps WHERE order_id = $1 AND step = 'charge_points' \
         AND attempt = $2",
    )
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(state.is_some_and(|s| s != StepState::Done))
}

/// Writes `step` of `attempt` as `state` if it has no row yet (true), else leaves it (false).
/// A concurrent claim of the same key waits on the primary key and then sees its row.
async fn claim(
    tx: &mut PgConnection,
    step: &str,
    attempt: &Attempt,
    state: StepState,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO saga_steps (order_id, step, attempt, state) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&attempt.order_id)
    .bind(step)
    .bind(attempt.n)
    .bind(state)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// What a forward step found when it claimed its key.
enum Forward {
    /// This transaction owns the step: apply the effect now.
    Claimed,
    /// The step already took effect; here is the detail it recorded.
    Done(Value),
}

/// Claims the forward step `step` for `attempt`. A step refused before answers that refusal
/// again; one already compensated or fenced never commits, and answers the refusal that undid
/// its attempt, or else the business error `ORDER_NOT_PAYABLE` (status `CANCELED`).
async fn claim_forward(
    tx: &mut PgConnection,
    step: &str,
    attempt: &Attempt,
) -> Result<Forward, StoreError> {
    if claim(tx, step, attempt, StepState::Done).await? {
        return Ok(Forward::Claimed);
    }
    let (state, detail) = read_state(tx, step, attempt, false).await?;
    match state {
        StepState::Done => Ok(Forward::Done(detail)),
        StepState::Refused => Err(refusal_of(detail).into()),
        // Undone: if a later step's refusal is what undid this attempt, answer that refusal,
        // so that a step run again (its first answer lost with a worker, after the unwinding)
        // tells what the first run told rather than a refusal of its own making.
        StepState::Compensated | StepState::Fenced => Err(undoing_refusal(tx, attempt)
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
    attempt: &Attempt,
) -> Result<Option<OrderError>, sqlx::Error> {
    let detail: Option<String> = sqlx::query_scalar(
        "SELECT detail::text FROM saga_steps \
         WHERE order_id = $1 AND attempt = $2 AND state = 'REFUSED' LIMIT 1",
    )
    .bind(&attempt.order_id)
    .bind(attempt.n)
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
    attempt: &Attempt,
    detail: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE saga_steps SET detail = $4::text::jsonb, updated_at = now() \
         WHERE order_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(&attempt.order_id)
    .bind(step)
    .bind(attempt.n)
    .bind(detail.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Runs the compensation of step `step` for payment `key` in one transaction: nothing for a
/// `COMPLETED` order (the pivot); otherwise fences the step if it never committed, or `undo`es
/// what it did and marks it `COMPENSATED`. Never fails for a business reason; running it again
/// does nothing.
pub(crate) async fn compensate(
    db: &PgPool,
    step: &str,
    key: &StepKey,
    undo: impl AsyncFnOnce(&mut PgConnection, &Attempt) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let attempt = attempt_of(db, key).await?;
    let mut tx = db.begin().await?;
    if lock_order(&mut tx, &key.order_id).await? != Some(OrderStatus::Completed)
        && claim_compensation(&mut tx, step, &attempt).await?
    {
        undo(&mut tx, &attempt).await?;
        mark_compensated(&mut tx, step, &attempt).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Fences `step` of `attempt` if it never ran (and answers false: nothing to undo), or locks
/// its row and answers whether it is `DONE` (true: undo it).
async fn claim_compensation(
    tx: &mut PgConnection,
    step: &str,
    attempt: &Attempt,
) -> Result<bool, sqlx::Error> {
    if claim(tx, step, attempt, StepState::Fenced).await? {
        return Ok(false);
    }
    let (state, _) = read_state(tx, step, attempt, true).await?;
    Ok(state == StepState::Done)
}

pub(crate) async fn mark_compensated(
    tx: &mut PgConnection,
    step: &str,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE saga_steps SET state = 'COMPENSATED', updated_at = now() \
         WHERE order_id = $1 AND step = $2 AND attempt = $3 AND state = 'DONE'",
    )
    .bind(&attempt.order_id)
    .bind(step)
    .bind(attempt.n)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Every step of the order that took effect and was not undone, newest attempt first and, in
/// an attempt, in reverse order of the payment (stock, coupon, points), each row locked.
pub(crate) async fn done_steps(
    tx: &mut PgConnection,
    order_id: &str,
) -> Result<Vec<(String, Attempt)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT step, attempt FROM saga_steps WHERE order_id = $1 AND state = 'DONE' \
         ORDER BY attempt DESC, CASE step WHEN 'deduct_stock' THEN 0 \
                                          WHEN 'redeem_coupon' THEN 1 ELSE 2 END \
         FOR UPDATE",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(step, n)| {
            let attempt = Attempt {
                order_id: order_id.to_owned(),
                n,
            };
            (step, attempt)
        })
        .collect())
}

async fn read_state(
    tx: &mut PgConnection,
    step: &str,
    attempt: &Attempt,
    lock: bool,
) -> Result<(StepState, Value), sqlx::Error> {
    let sql = if lock {
        "SELECT state, detail::text FROM saga_steps \
         WHERE order_id = $1 AND step = $2 AND attempt = $3 FOR UPDATE"
    } else {
        "SELECT state, detail::text FROM saga_steps \
         WHERE order_id = $1 AND step = $2 AND attempt = $3"
    };
    let (state, detail): (StepState, String) = sqlx::query_as(sql)
        .bind(&attempt.order_id)
        .bind(step)
        .bind(attempt.n)
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
    attempt: &Attempt,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await?;
            Ok(v)
        }
        Err(e) => {
            // A failed rollback is harmless: the connection drops the transaction anyway.
            let _ = tx.rollback().await;
            if let StoreError::Business(refusal) = &e {
                // Best effort: without the record a re-run answers what it then finds, which
                // is what it did before refusals were recorded.
                if let Err(db_error) = record_refusal(db, step, attempt, refusal).await {
                    tracing::warn!(
                        order_id = %attempt.order_id,
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
    attempt: &Attempt,
    refusal: &OrderError,
) -> Result<(), sqlx::Error> {
    let detail = serde_json::to_string(refusal).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // ON CONFLICT: the key already says what happened (fenced by a compensation, or a refusal
    // recorded by an earlier run); that stays.
    sqlx::query(
        "INSERT INTO saga_steps (order_id, step, attempt, state, detail) \
         VALUES ($1, $2, $3, 'REFUSED', $4::text::jsonb) ON CONFLICT DO NOTHING",
    )
    .bind(&attempt.order_id)
    .bind(step)
    .bind(attempt.n)
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}
