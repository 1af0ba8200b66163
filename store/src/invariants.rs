//! CONTRACT §6 as SQL: what must always hold, checked after any test, load or fault.
//!
//! Each rule is one query, a file of its own in `store/sql/invariants/`, that returns one line
//! per offending row; a violation reads
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

/// Every rule: its name, and its query (one file each in `store/sql/invariants/`), which
/// returns one line per offending row. The net effects they compare come from the views of
/// `migrations/0007_ledger_views.sql`.
const RULES: &[(&str, &str)] = &[
    (
        "points_non_negative",
        include_str!("../sql/invariants/points_non_negative.sql"),
    ),
    (
        "stock_non_negative",
        include_str!("../sql/invariants/stock_non_negative.sql"),
    ),
    (
        "points_match_ledger",
        include_str!("../sql/invariants/points_match_ledger.sql"),
    ),
    (
        "stock_matches_ledger",
        include_str!("../sql/invariants/stock_matches_ledger.sql"),
    ),
    (
        "completed_charged_once",
        include_str!("../sql/invariants/completed_charged_once.sql"),
    ),
    (
        "completed_stock_deducted_once",
        include_str!("../sql/invariants/completed_stock_deducted_once.sql"),
    ),
    (
        "completed_coupon_used",
        include_str!("../sql/invariants/completed_coupon_used.sql"),
    ),
    (
        "completed_never_undone",
        include_str!("../sql/invariants/completed_never_undone.sql"),
    ),
    (
        "closed_points_net_zero",
        include_str!("../sql/invariants/closed_points_net_zero.sql"),
    ),
    (
        "closed_stock_net_zero",
        include_str!("../sql/invariants/closed_stock_net_zero.sql"),
    ),
    (
        "closed_coupon_net_zero",
        include_str!("../sql/invariants/closed_coupon_net_zero.sql"),
    ),
    (
        "coupon_used_by_live_order",
        include_str!("../sql/invariants/coupon_used_by_live_order.sql"),
    ),
    (
        "coupon_matches_ledger",
        include_str!("../sql/invariants/coupon_matches_ledger.sql"),
    ),
    (
        "completed_steps_done",
        include_str!("../sql/invariants/completed_steps_done.sql"),
    ),
    (
        "step_done_on_closed_order",
        include_str!("../sql/invariants/step_done_on_closed_order.sql"),
    ),
    (
        "ledger_matches_steps",
        include_str!("../sql/invariants/ledger_matches_steps.sql"),
    ),
    (
        "ledger_names_order",
        include_str!("../sql/invariants/ledger_names_order.sql"),
    ),
    (
        "ledger_matches_order",
        include_str!("../sql/invariants/ledger_matches_order.sql"),
    ),
    (
        "order_arithmetic",
        include_str!("../sql/invariants/order_arithmetic.sql"),
    ),
];

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
    checked.insert("rules".to_owned(), json!(RULES.len()));
    let mut violations = Vec::new();
    for (rule, sql) in RULES {
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
