//! Redeem the coupon, and its compensation, release the coupon. Also coupon reads.
use chrono::{DateTime, Utc};
use domain::saga::{RedeemCouponInput, StepKey};
use domain::{
    Coupon, CouponId, CouponInvalidReason, CouponStatus, OrderError, OrderId, OrderStatus, UserId,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::StoreError;
use crate::fence::{self, Attempt, REDEEM_COUPON};

/// Marks the coupon `USED` by this order (`AVAILABLE`, the user's, unexpired), in one
/// transaction with its ledger row and the step record. Idempotent by `input.key`; after
/// `release` ran for this key it redeems nothing and answers what undid the attempt (see
/// [`fence::forward`]). A refusal (`COUPON_INVALID` with the reason) leaves nothing
/// behind but its record under the key.
pub async fn redeem(db: &PgPool, input: &RedeemCouponInput) -> Result<(), StoreError> {
    fence::forward(
        db,
        REDEEM_COUPON,
        &input.key,
        OrderStatus::Paid,
        |_| Ok(()),
        async |tx, attempt| apply_redeem(tx, input, attempt).await,
    )
    .await
}

async fn apply_redeem(
    tx: &mut PgConnection,
    input: &RedeemCouponInput,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let key = &input.key;
    let redeemed: Option<i64> = sqlx::query_scalar(
        "UPDATE coupons SET status = 'USED', used_at = now(), order_id = $3 \
         WHERE id = $1 AND user_id = $2 AND status = 'AVAILABLE' AND expires_at > now() \
         RETURNING id",
    )
    .bind(input.coupon_id.get())
    .bind(input.user_id.get())
    .bind(key.order_id.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if redeemed.is_none() {
        let reason = match load_in(tx, input.coupon_id).await? {
            None => CouponInvalidReason::NotFound,
            Some(coupon) => {
                let now = db_now(tx).await?;
                // The minimum was checked at placement and cannot change since; the other rules
                // are what can. If the coupon just came free again, it was in use a moment ago.
                coupon
                    .check(input.user_id, i64::MAX, now)
                    .err()
                    .unwrap_or(CouponInvalidReason::AlreadyUsed)
            }
        };
        return Err(OrderError::CouponInvalid { reason }.into());
    }
    sqlx::query(
        "INSERT INTO coupon_ledger (coupon_id, order_id, attempt, kind) \
         VALUES ($1, $2, $3, 'REDEEM')",
    )
    .bind(input.coupon_id.get())
    .bind(key.order_id.as_str())
    .bind(attempt.n)
    .execute(&mut *tx)
    .await?;
    fence::set_detail(
        tx,
        REDEEM_COUPON,
        attempt,
        &json!({ "coupon_id": input.coupon_id }),
    )
    .await?;
    Ok(())
}

/// Compensates `redeem`: the coupon this payment redeemed (as its ledger row says) is
/// `AVAILABLE` again, or, when the redeem never committed, it is fenced out for good; nothing
/// for a `COMPLETED` order (see [`fence::compensate`]). Never fails for a business reason;
/// running it again does nothing.
pub async fn release(db: &PgPool, key: &StepKey) -> Result<(), StoreError> {
    fence::compensate(db, REDEEM_COUPON, key, async |tx, attempt| {
        undo_redeem(tx, attempt).await
    })
    .await
}

/// Makes the coupon `attempt` redeemed `AVAILABLE` again, with its `RELEASE` ledger row. The
/// caller holds the order's lock and marks the step.
pub(crate) async fn undo_redeem(
    tx: &mut PgConnection,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let coupon_id: Option<i64> = sqlx::query_scalar(
        "SELECT coupon_id FROM coupon_ledger \
         WHERE order_id = $1 AND attempt = $2 AND kind = 'REDEEM'",
    )
    .bind(&attempt.order_id)
    .bind(attempt.n)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(coupon_id) = coupon_id else {
        return Ok(());
    };
    let released = sqlx::query(
        "UPDATE coupons SET status = 'AVAILABLE', used_at = NULL, order_id = NULL \
         WHERE id = $1 AND order_id = $2 AND status = 'USED'",
    )
    .bind(coupon_id)
    .bind(&attempt.order_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if released == 1 {
        sqlx::query(
            "INSERT INTO coupon_ledger (coupon_id, order_id, attempt, kind) \
             VALUES ($1, $2, $3, 'RELEASE')",
        )
        .bind(coupon_id)
        .bind(&attempt.order_id)
        .bind(attempt.n)
        .execute(&mut *tx)
        .await?;
    } else {
        // Not this order's any more: leave it alone; the invariant check reports it.
        tracing::error!(
            order_id = %attempt.order_id,
            coupon_id,
            "coupon redeemed by this attempt is no longer held by the order"
        );
    }
    Ok(())
}

const COUPON_COLUMNS: &str =
    "id, user_id, discount::text, min_order_amount, expires_at, status, used_at, order_id";

type CouponRow = (
    i64,
    i64,
    String,
    Option<i64>,
    DateTime<Utc>,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn from_row(row: CouponRow) -> Result<Coupon, sqlx::Error> {
    let (id, user_id, discount, min_order_amount, expires_at, status, used_at, order_id) = row;
    let discount = serde_json::from_str(&discount).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let status = match status.as_str() {
        "AVAILABLE" => CouponStatus::Available,
        "USED" => CouponStatus::Used,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown coupon status {other:?}").into(),
            ));
        }
    };
    let order_id = order_id
        .map(OrderId::try_from)
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Coupon {
        id: CouponId::new(id),
        user_id: UserId::new(user_id),
        discount,
        min_order_amount,
        expires_at,
        status,
        used_at,
        order_id,
    })
}

pub(crate) async fn load_in(
    conn: &mut PgConnection,
    coupon_id: CouponId,
) -> Result<Option<Coupon>, sqlx::Error> {
    let row: Option<CouponRow> = sqlx::query_as(&format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE id = $1"
    ))
    .bind(coupon_id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(from_row).transpose()
}

/// One coupon, whoever owns it.
pub async fn get(db: &PgPool, coupon_id: CouponId) -> Result<Option<Coupon>, StoreError> {
    let mut conn = db.acquire().await?;
    Ok(load_in(&mut conn, coupon_id).await?)
}

/// A user's coupons, oldest first.
pub async fn list_for_user(db: &PgPool, user_id: UserId) -> Result<Vec<Coupon>, StoreError> {
    let rows: Vec<CouponRow> = sqlx::query_as(&format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE user_id = $1 ORDER BY id"
    ))
    .bind(user_id.get())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(from_row).collect::<Result<_, _>>()?)
}

pub(crate) async fn db_now(conn: &mut PgConnection) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *conn)
        .await
}
