//! What `starter repair` reads and writes: an order whose workflow ended without finishing it
//! (terminated), reconciled from its ledger. Closing reuses [`orders::close`], which undoes
//! every payment step the ledger shows done; the rest is what only a repair does.
use domain::saga::CloseOrderInput;
use domain::{CancelCode, Order, OrderError, OrderId, OrderStatus};
use sqlx::PgPool;

use crate::{StoreError, orders};

/// A payment step the ledger shows done and not undone: what closing the order would undo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DoneStep {
    /// `charge_points`, `redeem_coupon` or `deduct_stock`.
    pub step: String,
    /// The payment attempt it belongs to, as the database numbered it.
    pub attempt: i64,
}

/// The steps of the order's payments that took effect and were not undone, in the order a
/// close undoes them (newest attempt first; stock, coupon, then points). Reads only.
pub async fn done_steps(db: &PgPool, order_id: &str) -> Result<Vec<DoneStep>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT step, attempt FROM saga_steps WHERE order_id = $1 AND state = 'DONE' \
         ORDER BY attempt DESC, CASE step WHEN 'deduct_stock' THEN 0 \
                                          WHEN 'redeem_coupon' THEN 1 ELSE 2 END",
    )
    .bind(order_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(step, attempt)| DoneStep { step, attempt })
        .collect())
}

/// Closes an open order `CANCELED` with the code `REPAIRED`, undoing what its ledger shows
/// done. Answers the order as it then stands: a row found `COMPLETED` is left alone (the
/// pivot), one already closed is answered as it is.
pub async fn close(db: &PgPool, order_id: &OrderId, reason: &str) -> Result<Order, StoreError> {
    let input = CloseOrderInput {
        order_id: order_id.clone(),
        status: OrderStatus::Canceled,
        code: CancelCode::Repaired,
        reason: reason.to_owned(),
    };
    orders::close(db, &input).await
}

/// Marks an order its workflow had already closed (`CANCELED` or `EXPIRED`) before it was
/// terminated as confirmed by a repair: its code becomes `REPAIRED` and its reason keeps the
/// first code. Nothing else changes; a repeat changes nothing.
pub async fn confirm_closed(db: &PgPool, order_id: &OrderId) -> Result<Order, StoreError> {
    sqlx::query(
        "UPDATE orders SET cancel_code = 'REPAIRED', \
             cancel_reason = concat_ws(' ', cancel_reason, \
                 format('(closed as %s before its workflow was terminated; confirmed by \
                         starter repair)', cancel_code)) \
         WHERE id = $1 AND status IN ('CANCELED', 'EXPIRED') \
           AND cancel_code IS DISTINCT FROM 'REPAIRED'",
    )
    .bind(order_id.as_str())
    .execute(db)
    .await?;
    orders::load(db, order_id).await?.ok_or_else(|| {
        OrderError::OrderNotFound {
            order_id: order_id.to_string(),
        }
        .into()
    })
}
