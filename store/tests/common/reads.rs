//! Reads of what the database holds, for the tests' assertions.
use domain::{CouponId, CouponStatus, OrderId, OrderStatus, ProductId, UserId};
use sqlx::PgPool;
use store::{coupons, db, orders};

pub async fn points_of(pool: &PgPool, user: UserId) -> i64 {
    db::get_user(pool, user).await.unwrap().unwrap().points
}

pub async fn stock_of(pool: &PgPool, product: ProductId) -> i64 {
    db::get_product(pool, product).await.unwrap().unwrap().stock
}

pub async fn coupon_of(pool: &PgPool, coupon: CouponId) -> (CouponStatus, Option<String>) {
    let c = coupons::get(pool, coupon).await.unwrap().unwrap();
    (c.status, c.order_id.map(String::from))
}

pub async fn status_of(pool: &PgPool, order_id: &str) -> OrderStatus {
    orders::load(pool, &OrderId::parse(order_id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The state of one step of one attempt, as `saga_steps` records it.
pub async fn step_state(pool: &PgPool, order_id: &str, step: &str, attempt: i64) -> Option<String> {
    sqlx::query_scalar(
        "SELECT state FROM saga_steps WHERE order_id = $1 AND step = $2 AND attempt = $3",
    )
    .bind(order_id)
    .bind(step)
    .bind(attempt)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Every step record of the order, as `step attempt STATE`, in a stable order.
pub async fn steps_of(pool: &PgPool, order_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('%s %s %s', step, attempt, state) FROM saga_steps \
         WHERE order_id = $1 ORDER BY attempt, step",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The attempt the database numbered payment `payment_id` of the order, if any step of it ran.
pub async fn attempt_of(pool: &PgPool, order_id: &str, payment_id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT attempt FROM payments WHERE order_id = $1 AND payment_id = $2")
        .bind(order_id)
        .bind(payment_id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Every effect a step can have, one line per row: balances, stock, coupons, order rows and
/// every ledger row. Two equal snapshots mean that nothing took effect in between (the step
/// records in `saga_steps` and `payments` are not effects and are left out).
pub async fn effects(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('user %s: %s points', id, points) FROM users \
         UNION ALL SELECT format('product %s: stock %s', id, stock) FROM products \
         UNION ALL SELECT format('coupon %s: %s by %s at %s', id, status, order_id, used_at) \
             FROM coupons \
         UNION ALL SELECT format('order %s: %s paid %s completed %s canceled %s closed %s \
                 code %s reason %s', id, status, paid_at, completed_at, canceled_at, closed_at, \
                 cancel_code, cancel_reason) FROM orders \
         UNION ALL SELECT format('point_ledger %s: %s %s user %s order %s attempt %s', \
                 id, kind, amount, user_id, order_id, attempt) FROM point_ledger \
         UNION ALL SELECT format('stock_ledger %s: %s %s product %s order %s attempt %s', \
                 id, kind, quantity, product_id, order_id, attempt) FROM stock_ledger \
         UNION ALL SELECT format('coupon_ledger %s: %s coupon %s order %s attempt %s', \
                 id, kind, coupon_id, order_id, attempt) FROM coupon_ledger \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}
