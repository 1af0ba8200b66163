//! CONTRACT §6 as SQL: what must always hold, checked after any test, load or fault.
//!
//! Each rule is one query that returns one line per offending row; a violation reads
//! `[rule] what is wrong, naming the row`. Balances are compared with their ledgers, orders with
//! the net effect of every attempt's ledger rows, and the saga's step records with both.
//!
//! Orders in flight are allowed for: a `PAID` order may have its coupon redeemed and its stock
//! deducted or not yet. A `PENDING` order has no net effect at all (charging is what makes it
//! `PAID`, in the same transaction).
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::PgPool;

use crate::StoreError;

/// What the check looked at, and every violation found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Row counts of what was checked, and how many rules ran.
    pub checked: Value,
    pub violations: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Per order: net points charged (charges − refunds) and the number of net charges.
const NET_POINTS: &str = "SELECT order_id, \
        sum(CASE kind WHEN 'CHARGE' THEN amount ELSE -amount END) AS net, \
        count(*) FILTER (WHERE kind = 'CHARGE') - count(*) FILTER (WHERE kind = 'REFUND') AS n \
    FROM point_ledger WHERE order_id IS NOT NULL GROUP BY order_id";

/// Per order and product: net quantity deducted and the number of net deductions.
const NET_STOCK: &str = "SELECT order_id, product_id, \
        sum(CASE kind WHEN 'DEDUCT' THEN quantity ELSE -quantity END) AS net, \
        count(*) FILTER (WHERE kind = 'DEDUCT') - count(*) FILTER (WHERE kind = 'RESTORE') AS n \
    FROM stock_ledger WHERE order_id IS NOT NULL GROUP BY order_id, product_id";

/// Per order and coupon: net redemptions.
const NET_COUPON: &str = "SELECT order_id, coupon_id, \
        count(*) FILTER (WHERE kind = 'REDEEM') - count(*) FILTER (WHERE kind = 'RELEASE') AS n \
    FROM coupon_ledger GROUP BY order_id, coupon_id";

fn rules() -> Vec<(&'static str, String)> {
    vec![
        (
            "points_non_negative",
            "SELECT format('user %s has %s points', id, points) FROM users WHERE points < 0".into(),
        ),
        (
            "stock_non_negative",
            "SELECT format('product %s has stock %s', id, stock) FROM products WHERE stock < 0"
                .into(),
        ),
        (
            "points_match_ledger",
            "SELECT format('user %s has %s points but INITIAL + TOP_UP - CHARGE + REFUND = %s', \
                    u.id, u.points, coalesce(l.net, 0)) \
             FROM users u LEFT JOIN ( \
                SELECT user_id, sum(CASE WHEN kind = 'CHARGE' THEN -amount ELSE amount END) AS net \
                FROM point_ledger GROUP BY user_id) l ON l.user_id = u.id \
             WHERE u.points <> coalesce(l.net, 0)"
                .into(),
        ),
        (
            "stock_matches_ledger",
            "SELECT format('product %s has stock %s but INITIAL + RESTOCK - DEDUCT + RESTORE = %s', \
                    p.id, p.stock, coalesce(l.net, 0)) \
             FROM products p LEFT JOIN ( \
                SELECT product_id, \
                       sum(CASE WHEN kind = 'DEDUCT' THEN -quantity ELSE quantity END) AS net \
                FROM stock_ledger GROUP BY product_id) l ON l.product_id = p.id \
             WHERE p.stock <> coalesce(l.net, 0)"
                .into(),
        ),
        (
            "completed_charged_once",
            format!(
                "SELECT format('order %s is COMPLETED with total %s but its net charge is %s \
                        in %s net charge(s)', o.id, o.total, coalesce(n.net, 0), coalesce(n.n, 0)) \
                 FROM orders o LEFT JOIN ({NET_POINTS}) n ON n.order_id = o.id \
                 WHERE o.status = 'COMPLETED' AND (coalesce(n.net, 0) <> o.total \
                    OR coalesce(n.n, 0) <> CASE WHEN o.total > 0 THEN 1 ELSE 0 END)"
            ),
        ),
        (
            "completed_stock_deducted_once",
            format!(
                "SELECT format('order %s is COMPLETED but product %s (quantity %s) has net \
                        deduction %s in %s net deduction(s)', \
                        o.id, l.product_id, l.quantity, coalesce(n.net, 0), coalesce(n.n, 0)) \
                 FROM orders o JOIN order_lines l ON l.order_id = o.id \
                 LEFT JOIN ({NET_STOCK}) n ON n.order_id = o.id AND n.product_id = l.product_id \
                 WHERE o.status = 'COMPLETED' \
                   AND (coalesce(n.net, 0) <> l.quantity OR coalesce(n.n, 0) <> 1)"
            ),
        ),
        (
            "completed_coupon_used",
            format!(
                "SELECT format('order %s is COMPLETED with coupon %s, but the coupon is %s \
                        with order_id %s and %s net redemption(s) by this order', \
                        o.id, o.coupon_id, coalesce(c.status, 'missing'), \
                        coalesce(c.order_id, 'NULL'), coalesce(n.n, 0)) \
                 FROM orders o LEFT JOIN coupons c ON c.id = o.coupon_id \
                 LEFT JOIN ({NET_COUPON}) n ON n.order_id = o.id AND n.coupon_id = o.coupon_id \
                 WHERE o.status = 'COMPLETED' AND o.coupon_id IS NOT NULL \
                   AND (c.id IS NULL OR c.status <> 'USED' OR c.order_id IS DISTINCT FROM o.id \
                        OR coalesce(n.n, 0) <> 1)"
            ),
        ),
        (
            // The pivot (CONTRACT §2): nothing undoes a COMPLETED order, so no refund, release
            // or restoration ever names one.
            "completed_never_undone",
            "SELECT format('order %s is COMPLETED but has a %s ledger row (attempt %s)', \
                    o.id, x.kind, x.attempt) \
             FROM orders o JOIN ( \
                SELECT order_id, attempt, kind FROM point_ledger WHERE kind = 'REFUND' \
                UNION ALL SELECT order_id, attempt, kind FROM stock_ledger \
                    WHERE kind = 'RESTORE' \
                UNION ALL SELECT order_id, attempt, kind FROM coupon_ledger \
                    WHERE kind = 'RELEASE') x ON x.order_id = o.id \
             WHERE o.status = 'COMPLETED'"
                .into(),
        ),
        (
            "closed_points_net_zero",
            format!(
                "SELECT format('order %s is %s but its net charge is %s', o.id, o.status, n.net) \
                 FROM orders o JOIN ({NET_POINTS}) n ON n.order_id = o.id \
                 WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED') \
                   AND (n.net <> 0 OR n.n <> 0)"
            ),
        ),
        (
            "closed_stock_net_zero",
            format!(
                "SELECT format('order %s is %s but product %s has net deduction %s', \
                        o.id, o.status, n.product_id, n.net) \
                 FROM orders o JOIN ({NET_STOCK}) n ON n.order_id = o.id \
                 WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED') \
                   AND (n.net <> 0 OR n.n <> 0)"
            ),
        ),
        (
            "closed_coupon_net_zero",
            format!(
                "SELECT format('order %s is %s but coupon %s has %s net redemption(s) by it', \
                        o.id, o.status, n.coupon_id, n.n) \
                 FROM orders o JOIN ({NET_COUPON}) n ON n.order_id = o.id \
                 WHERE o.status IN ('PENDING', 'CANCELED', 'EXPIRED') AND n.n <> 0"
            ),
        ),
        (
            "coupon_used_by_live_order",
            "SELECT format('coupon %s is USED by order %s, which is %s', \
                    c.id, c.order_id, coalesce(o.status, 'missing')) \
             FROM coupons c LEFT JOIN orders o ON o.id = c.order_id \
             WHERE c.status = 'USED' AND (o.id IS NULL \
                OR o.status NOT IN ('PAID', 'COMPLETED') \
                OR o.coupon_id IS DISTINCT FROM c.id)"
                .into(),
        ),
        (
            "coupon_matches_ledger",
            format!(
                "SELECT format('coupon %s is %s (order %s) but its ledger nets %s redemption(s) \
                        overall and %s by that order', c.id, c.status, \
                        coalesce(c.order_id, 'NULL'), coalesce(t.n, 0), coalesce(byo.n, 0)) \
                 FROM coupons c \
                 LEFT JOIN (SELECT coupon_id, sum(n) AS n FROM ({NET_COUPON}) x \
                            GROUP BY coupon_id) t ON t.coupon_id = c.id \
                 LEFT JOIN ({NET_COUPON}) byo ON byo.coupon_id = c.id \
                                              AND byo.order_id = c.order_id \
                 WHERE coalesce(t.n, 0) <> CASE c.status WHEN 'USED' THEN 1 ELSE 0 END \
                    OR (c.status = 'USED' AND coalesce(byo.n, 0) <> 1)"
            ),
        ),
        (
            "completed_steps_done",
            "SELECT format('order %s is COMPLETED but has %s DONE %s step(s)', o.id, \
                    (SELECT count(*) FROM saga_steps s WHERE s.order_id = o.id \
                       AND s.step = w.step AND s.state = 'DONE'), w.step) \
             FROM orders o CROSS JOIN (VALUES ('charge_points'), ('redeem_coupon'), \
                                              ('deduct_stock')) AS w(step) \
             WHERE o.status = 'COMPLETED' \
               AND (w.step <> 'redeem_coupon' OR o.coupon_id IS NOT NULL) \
               AND (SELECT count(*) FROM saga_steps s WHERE s.order_id = o.id \
                      AND s.step = w.step AND s.state = 'DONE') <> 1"
                .into(),
        ),
        (
            "step_done_on_closed_order",
            "SELECT format('order %s is %s but its %s step (attempt %s) is DONE, \
                    not COMPENSATED', o.id, o.status, s.step, s.attempt) \
             FROM saga_steps s JOIN orders o ON o.id = s.order_id \
             WHERE s.state = 'DONE' AND o.status IN ('PENDING', 'CANCELED', 'EXPIRED')"
                .into(),
        ),
        (
            "ledger_matches_steps",
            "WITH rows AS ( \
                SELECT order_id, attempt, 'charge_points' AS step, kind IN ('REFUND') AS back, \
                       CASE kind WHEN 'CHARGE' THEN 1 ELSE -1 END AS sign, kind \
                FROM point_ledger WHERE order_id IS NOT NULL \
                UNION ALL \
                SELECT order_id, attempt, 'deduct_stock', kind = 'RESTORE', \
                       CASE kind WHEN 'DEDUCT' THEN 1 ELSE -1 END, kind \
                FROM stock_ledger WHERE order_id IS NOT NULL \
                UNION ALL \
                SELECT order_id, attempt, 'redeem_coupon', kind = 'RELEASE', \
                       CASE kind WHEN 'REDEEM' THEN 1 ELSE -1 END, kind \
                FROM coupon_ledger) \
             SELECT format('order %s attempt %s: %s ledger row(s) but the %s step is %s', \
                    r.order_id, r.attempt, r.kind, r.step, coalesce(s.state, 'missing')) \
             FROM (SELECT DISTINCT order_id, attempt, step, back, kind FROM rows) r \
             LEFT JOIN saga_steps s ON s.order_id = r.order_id AND s.attempt = r.attempt \
                                   AND s.step = r.step \
             WHERE s.state IS NULL OR s.state IN ('FENCED', 'REFUSED') \
                OR (r.back AND s.state <> 'COMPENSATED') \
             UNION ALL \
             SELECT format('order %s attempt %s: the %s step is COMPENSATED but its ledger \
                    rows do not cancel out', s.order_id, s.attempt, s.step) \
             FROM saga_steps s JOIN rows r ON r.order_id = s.order_id \
                                          AND r.attempt = s.attempt AND r.step = s.step \
             WHERE s.state = 'COMPENSATED' \
             GROUP BY s.order_id, s.attempt, s.step HAVING sum(r.sign) <> 0"
                .into(),
        ),
        (
            "ledger_names_order",
            "SELECT format('%s ledger row %s names order %s, which does not exist', t, id, \
                    order_id) FROM ( \
                SELECT 'point' AS t, id, order_id FROM point_ledger WHERE order_id IS NOT NULL \
                UNION ALL SELECT 'stock', id, order_id FROM stock_ledger \
                    WHERE order_id IS NOT NULL \
                UNION ALL SELECT 'coupon', id, order_id FROM coupon_ledger) x \
             WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = x.order_id)"
                .into(),
        ),
        (
            "ledger_matches_order",
            "SELECT format('point ledger row %s charges user %s for order %s of user %s', \
                    l.id, l.user_id, o.id, o.user_id) \
             FROM point_ledger l JOIN orders o ON o.id = l.order_id WHERE l.user_id <> o.user_id \
             UNION ALL \
             SELECT format('coupon ledger row %s redeems coupon %s for order %s, whose coupon \
                    is %s', l.id, l.coupon_id, o.id, coalesce(o.coupon_id::text, 'none')) \
             FROM coupon_ledger l JOIN orders o ON o.id = l.order_id \
             WHERE o.coupon_id IS DISTINCT FROM l.coupon_id"
                .into(),
        ),
        (
            "order_arithmetic",
            "SELECT format('order %s: subtotal %s, discount %s, total %s, lines sum to %s in %s \
                    line(s)', o.id, o.subtotal, o.discount, o.total, coalesce(l.sum, 0), \
                    coalesce(l.n, 0)) \
             FROM orders o LEFT JOIN (SELECT order_id, sum(line_total) AS sum, count(*) AS n \
                                      FROM order_lines GROUP BY order_id) l \
                    ON l.order_id = o.id \
             WHERE o.total <> o.subtotal - o.discount OR o.total < 0 \
                OR o.subtotal <> coalesce(l.sum, 0) OR coalesce(l.n, 0) = 0"
                .into(),
        ),
    ]
}

/// Runs every rule of CONTRACT §6 (and the saga's own bookkeeping rules) against the database.
pub async fn check(pool: &PgPool) -> Result<Report, StoreError> {
    let mut checked = Map::new();
    for table in [
        "users",
        "products",
        "coupons",
        "orders",
        "order_lines",
        "saga_steps",
        "point_ledger",
        "stock_ledger",
        "coupon_ledger",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await?;
        checked.insert(table.to_owned(), json!(n));
    }
    let rules = rules();
    checked.insert("rules".to_owned(), json!(rules.len()));
    let mut violations = Vec::new();
    for (rule, sql) in &rules {
        let found: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        violations.extend(found.into_iter().map(|v| format!("[{rule}] {v}")));
    }
    Ok(Report {
        checked: Value::Object(checked),
        violations,
    })
}

/// Every `COMPLETED` order that the data platform has not confirmed yet. Empty once all
/// completed workflows have finished (CONTRACT §6: every `COMPLETED` order reaches the data
/// platform); while a notification is still being retried its order is listed here.
pub async fn check_notified(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT format('order %s is COMPLETED (at %s) but platform_notified_at is NULL', \
                id, completed_at) \
         FROM orders WHERE status = 'COMPLETED' AND platform_notified_at IS NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(found
        .into_iter()
        .map(|v| format!("[completed_notified] {v}"))
        .collect())
}
