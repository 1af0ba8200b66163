//! Charge points, and its compensation, refund points.
use chrono::{DateTime, Utc};
use domain::saga::{ChargePointsInput, Stamp, StepKey};
use domain::{OrderError, OrderStatus};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;
use crate::fence::{self, Attempt, CHARGE_POINTS};

/// Charges the order's total to its user and marks the order `PAID`, in one transaction.
///
/// Idempotent by `input.key`: a repeat answers the same stamp without charging again; after
/// `refund` has run for this key it charges nothing and answers what undid the attempt (see
/// [`fence::forward`]). A refusal (`INSUFFICIENT_POINTS`, `ORDER_NOT_PAYABLE`,
/// `ORDER_NOT_FOUND`) leaves nothing behind but its record under the key, so the same order
/// can be paid again later under a new attempt.
pub async fn charge(db: &PgPool, input: &ChargePointsInput) -> Result<Stamp, StoreError> {
    fence::forward(
        db,
        CHARGE_POINTS,
        &input.key,
        OrderStatus::Pending,
        stamp_of,
        async |tx, attempt| apply_charge(tx, input, attempt).await,
    )
    .await
}

fn stamp_of(detail: &serde_json::Value) -> Result<Stamp, StoreError> {
    let at: DateTime<Utc> = serde_json::from_value(detail["at"].clone())
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))?;
    Ok(Stamp { at })
}

async fn apply_charge(
    tx: &mut PgConnection,
    input: &ChargePointsInput,
    attempt: &Attempt,
) -> Result<Stamp, StoreError> {
    let key = &input.key;
    // The usual case in two statements: the order goes PENDING → PAID (its row locked), then
    // the points, the ledger row and the step's record change together. Anything unusual is
    // explained by `refusal`, after which the transaction rolls back.
    let paid_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE orders SET status = 'PAID', paid_at = now() \
         WHERE id = $1 AND status = 'PENDING' AND user_id = $2 AND total = $3 \
         RETURNING paid_at",
    )
    .bind(key.order_id.as_str())
    .bind(input.user_id.get())
    .bind(input.amount)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(at) = paid_at else {
        return Err(refusal(tx, input).await);
    };
    let detail = json!({ "user_id": input.user_id, "amount": input.amount, "at": at });
    let charged: i64 = sqlx::query_scalar(
        "WITH u AS ( \
             UPDATE users SET points = points - $3 WHERE id = $2 AND points >= $3 RETURNING id \
         ), l AS ( \
             INSERT INTO point_ledger (user_id, order_id, attempt, kind, amount) \
             SELECT id, $1, $4, 'CHARGE', $3 FROM u WHERE $3 > 0 RETURNING 1 \
         ), s AS ( \
             UPDATE saga_steps SET detail = $5::text::jsonb, updated_at = now() \
             WHERE order_id = $1 AND step = 'charge_points' AND attempt = $4 \
               AND EXISTS (SELECT 1 FROM u) \
             RETURNING 1 \
         ) SELECT count(*) FROM u",
    )
    .bind(key.order_id.as_str())
    .bind(input.user_id.get())
    .bind(input.amount)
    .bind(attempt.n)
    .bind(detail.to_string())
    .fetch_one(&mut *tx)
    .await?;
    if charged == 0 {
        let points: Option<i64> = sqlx::query_scalar("SELECT points FROM users WHERE id = $1")
            .bind(input.user_id.get())
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match points {
            Some(points) => OrderError::InsufficientPoints {
                points,
                total: input.amount,
            },
            None => OrderError::invalid(format!("unknown user {}", input.user_id)),
        }
        .into());
    }
    Ok(Stamp { at })
}

/// Why an order cannot be charged as asked: it does not exist, it is not `PENDING`, or the
/// charge does not match it.
async fn refusal(tx: &mut PgConnection, input: &ChargePointsInput) -> StoreError {
    let key = &input.key;
    let order: Result<Option<(i64, String, i64)>, sqlx::Error> =
        sqlx::query_as("SELECT user_id, status, total FROM orders WHERE id = $1")
            .bind(key.order_id.as_str())
            .fetch_optional(&mut *tx)
            .await;
    match order {
        Err(e) => e.into(),
        Ok(None) => OrderError::OrderNotFound {
            order_id: key.order_id.to_string(),
        }
        .into(),
        Ok(Some((_, status, _))) if status != OrderStatus::Pending.as_str() => {
            OrderError::OrderNotPayable { status }.into()
        }
        Ok(Some((user_id, _, total))) => OrderError::invalid(format!(
            "charge of {} to user {} does not match order {} (user {user_id}, total {total})",
            input.amount, input.user_id, key.order_id
        ))
        .into(),
    }
}

/// Compensates `charge`: gives back exactly what this payment charged (as its ledger row says),
/// or, when the charge never committed, fences it out for good; nothing for a `COMPLETED`
/// order (see [`fence::compensate`]). Never fails for a business reason; running it again does
/// nothing.
pub async fn refund(db: &PgPool, key: &StepKey) -> Result<(), StoreError> {
    fence::compensate(db, CHARGE_POINTS, key, async |tx, attempt| {
        undo_charge(tx, attempt).await
    })
    .await
}

/// Refunds what `attempt` charged, with its `REFUND` ledger row (none when it charged nothing:
/// a fully discounted order). The caller holds the order's lock and marks the step.
pub(crate) async fn undo_charge(
    tx: &mut PgConnection,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let charged: Option<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, amount FROM point_ledger \
         WHERE order_id = $1 AND attempt = $2 AND kind = 'CHARGE'",
    )
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((user_id, amount)) = charged {
        sqlx::query(
            "WITH u AS (UPDATE users SET points = points + $2 WHERE id = $1 RETURNING id) \
             INSERT INTO point_ledger (user_id, order_id, attempt, kind, amount) \
             SELECT id, $3, $4, 'REFUND', $2 FROM u",
        )
        .bind(user_id)
        .bind(amount)
        .bind(&attempt.order_id)
        .bind(attempt.n)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
