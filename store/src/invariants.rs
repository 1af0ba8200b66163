//! CONTRACT §6 as SQL: what must always hold, checked after any test, load or fault.
//!
//! Each rule is one query, a file of its own in `store/sql/invariants/`, that returns one row
//! per offence: the order it names (`NULL` for a rule about a user's or a product's balance)
//! and what is wrong; a violation reads `[rule] what is wrong, naming the row`. Balances are compared with their ledgers, orders with
//! the net effect of every attempt's ledger rows, and the saga's step records with both.
//!
//! Orders in flight are allowed for: a `PAID` order may have its coupon redeemed and its stock
//! deducted or not yet. A `PENDING` order has no net effect at all (charging is what makes it
//! `PAID`, in the same transaction).
use std::time::Duration;

use domain::reconcile::{Reconciliation, Violation};
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
        let found: Vec<(Option<String>, String)> = sqlx::query_as(sql).fetch_all(pool).await?;
        violations.extend(found.into_iter().map(|(_, v)| format!("[{rule}] {v}")));
    }
    Ok(Report {
        checked: Value::Object(checked),
        violations,
    })
}

/// A rule's offences, but those naming an order created less than `$1` seconds ago.
const OLDER_THAN: &str = "SELECT r.order_id, r.detail FROM (\n{rule}\n) AS r(order_id, detail) \
     WHERE r.order_id IS NULL OR NOT EXISTS (SELECT 1 FROM orders o \
     WHERE o.id = r.order_id AND o.created_at > now() - $1::bigint * interval '1 second')";

/// The scheduled reconciliation (`ReconcileWorkflow`): every rule of [`check`] on one snapshot
/// of the database, leaving out orders created less than `grace` ago (in flight), and the
/// `COMPLETED` orders that the data platform has not confirmed although they completed more than
/// `grace` ago. Each violation names its rule and order. Reads only.
pub async fn reconcile(pool: &PgPool, grace: Duration) -> Result<Reconciliation, StoreError> {
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    // One snapshot for every query: a step that commits meanwhile is seen by all or by none.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut violations = Vec::new();
    for (rule, sql) in RULES {
        let query = OLDER_THAN.replace("{rule}", sql);
        let found: Vec<(Option<String>, String)> = sqlx::query_as(&query)
            .bind(grace_secs)
            .fetch_all(&mut *tx)
            .await?;
        violations.extend(found.into_iter().map(|(order_id, detail)| Violation {
            rule: (*rule).to_owned(),
            order_id,
            detail,
        }));
    }
    let (undelivered, undelivered_orders): (i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*), coalesce((array_agg(id ORDER BY completed_at, id))[1:$2], '{}') \
         FROM orders WHERE status = 'COMPLETED' AND platform_notified_at IS NULL \
         AND completed_at <= now() - $1::bigint * interval '1 second'",
    )
    .bind(grace_secs)
    .bind(Reconciliation::LISTED as i32)
    .fetch_one(&mut *tx)
    .await?;
    let skipped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE created_at > now() - $1::bigint * interval '1 second'",
    )
    .bind(grace_secs)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Reconciliation {
        grace_secs: grace.as_secs(),
        violations,
        undelivered: undelivered.try_into().unwrap_or_default(),
        undelivered_orders,
        skipped_in_flight: skipped.try_into().unwrap_or_default(),
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
