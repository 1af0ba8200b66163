//! The saga's steps as the workflow drives them: placement (`orders::place`), a payment keyed
//! by its payment id (charge → redeem → deduct and complete), its unwinding, and the close.
use std::future::Future;

use domain::saga::{
    ChargePointsInput, CloseOrderInput, DeductStockInput, PlaceOrderInput, RedeemCouponInput,
    StepKey,
};
use domain::{
    CancelCode, LineRequest, Order, OrderError, OrderStatus, PlaceOrderRequest, Shipping,
};
use domain::{CouponId, OrderId, ProductId, UserId};
use sqlx::PgPool;
use store::{StoreError, coupons, orders, points, stock};

use super::lines;

/// The contract's default payment timeout, 15 minutes.
pub const TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// The business error of a step that must have refused for a business reason.
pub fn business(e: StoreError) -> OrderError {
    match e {
        StoreError::Business(b) => b,
        other => panic!("expected a business error, got {other:?}"),
    }
}

pub fn shipping() -> Shipping {
    Shipping {
        recipient: "Kim Minji".into(),
        address: "1 Sejong-daero, Seoul".into(),
        phone: "010-1234-5678".into(),
    }
}

pub fn place_input(
    id: &str,
    user_id: UserId,
    items: &[(ProductId, i64)],
    coupon_id: Option<CouponId>,
) -> PlaceOrderInput {
    PlaceOrderInput {
        order_id: OrderId::parse(id).unwrap(),
        user_id,
        request: PlaceOrderRequest {
            items: lines(items),
            coupon_id,
            shipping: shipping(),
        },
        payment_timeout_ms: TIMEOUT_MS,
    }
}

/// The workflow's placement: one keyed step that checks and records the order `PENDING`.
pub async fn place(
    pool: &PgPool,
    id: &str,
    user_id: UserId,
    items: &[(ProductId, i64)],
    coupon_id: Option<CouponId>,
) -> Result<Order, StoreError> {
    orders::place(pool, &place_input(id, user_id, items, coupon_id)).await
}

/// The key of payment `payment_id` of `order`.
pub fn key(order: &Order, payment_id: &str) -> StepKey {
    StepKey {
        order_id: order.id.clone(),
        payment_id: payment_id.to_owned(),
    }
}

pub fn charge_input(order: &Order, payment_id: &str) -> ChargePointsInput {
    ChargePointsInput {
        key: key(order, payment_id),
        user_id: order.user_id,
        amount: order.total,
    }
}

pub fn redeem_input(order: &Order, payment_id: &str) -> RedeemCouponInput {
    RedeemCouponInput {
        key: key(order, payment_id),
        user_id: order.user_id,
        coupon_id: order.coupon_id.expect("order has a coupon"),
    }
}

pub fn deduct_input(order: &Order, payment_id: &str) -> DeductStockInput {
    DeductStockInput {
        key: key(order, payment_id),
        lines: order
            .items
            .iter()
            .map(|l| LineRequest {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
    }
}

/// The workflow's payment: charge, redeem (when the order has a coupon), then deduct the stock
/// and complete the order.
pub async fn pay(pool: &PgPool, order: &Order, payment_id: &str) -> Result<(), StoreError> {
    points::charge(pool, &charge_input(order, payment_id)).await?;
    if order.coupon_id.is_some() {
        coupons::redeem(pool, &redeem_input(order, payment_id)).await?;
    }
    stock::deduct_and_complete(pool, &deduct_input(order, payment_id)).await?;
    Ok(())
}

/// Every compensation of a payment, newest first, as the workflow runs them after a failure.
pub async fn compensate(pool: &PgPool, order: &Order, payment_id: &str) {
    let k = key(order, payment_id);
    stock::restore(pool, &k).await.unwrap();
    coupons::release(pool, &k).await.unwrap();
    points::refund(pool, &k).await.unwrap();
}

/// The workflow's unwinding: every compensation, then the order closed `CANCELED`.
pub async fn unwind(pool: &PgPool, order: &Order, payment_id: &str) {
    compensate(pool, order, payment_id).await;
    let closed = close(
        pool,
        &order.id,
        OrderStatus::Canceled,
        CancelCode::UserCanceled,
    )
    .await
    .unwrap();
    assert_eq!(closed.status, OrderStatus::Canceled, "{closed:?}");
}

pub fn close_input(order_id: &str, status: OrderStatus, code: CancelCode) -> CloseOrderInput {
    CloseOrderInput {
        order_id: OrderId::parse(order_id).unwrap(),
        status,
        code,
        reason: format!("test closed it as {status}"),
    }
}

pub async fn close(
    pool: &PgPool,
    order_id: &str,
    status: OrderStatus,
    code: CancelCode,
) -> Result<Order, StoreError> {
    orders::close(pool, &close_input(order_id, status, code)).await
}

/// Runs `step` until it answers something other than a database error (as Temporal retries an
/// activity), at most 20 times.
pub async fn retried<T, F: Future<Output = Result<T, StoreError>>>(
    mut step: impl FnMut() -> F,
) -> Result<T, StoreError> {
    for _ in 0..19 {
        match step().await {
            Err(StoreError::Db(_)) => tokio::task::yield_now().await,
            other => return other,
        }
    }
    step().await
}
