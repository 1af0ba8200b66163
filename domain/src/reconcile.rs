//! The scheduled reconciliation (CONTRACT §6 on a schedule): what the `ReconcileWorkflow` is
//! started with and what it answers. Shared by the workflow, its activity and the store.

use serde::{Deserialize, Serialize};

/// What each scheduled run is started with: the schedule carries it, so the Web UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileInput {
    /// Orders created less than this long ago are in flight and skipped (seconds).
    pub grace_secs: u64,
}

/// One broken rule of CONTRACT §6: the rule's name, the order it names (none for a rule about
/// a user's or a product's balance), and what is wrong, as `starter check` words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    pub order_id: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.rule, self.detail)
    }
}

/// What one reconciliation found, orders younger than the grace window left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub grace_secs: u64,
    /// Every violation, each naming its rule and order.
    pub violations: Vec<Violation>,
    /// `COMPLETED` orders older than the grace window not yet delivered to the data platform
    /// (the gauge `orders_undelivered`).
    pub undelivered: u64,
    /// The first of them (at most [`Reconciliation::LISTED`]), oldest first.
    pub undelivered_orders: Vec<String>,
    /// Orders left out because they are younger than the grace window.
    pub skipped_in_flight: u64,
}

impl Reconciliation {
    /// How many undelivered orders a result names.
    pub const LISTED: usize = 100;
}
