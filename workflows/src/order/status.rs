//! What the Web UI shows of an order: its search attributes (to find it) and the workflow's
//! current details (where it stands, in words).

use domain::Order;
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_sdk::WorkflowContext;

use super::OrderWorkflow;

/// The order's search attributes (registered by the dev set-up). `CustomerId` and the first
/// `OrderStatus` (`PLACING`) are set with the start, by the client; the workflow upserts the
/// status and the total as they change.
pub mod search_attributes {
    use super::SearchAttributeKey;
    pub const ORDER_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderStatus");
    pub const CUSTOMER_ID: SearchAttributeKey<i64> = SearchAttributeKey::int("CustomerId");
    pub const ORDER_TOTAL: SearchAttributeKey<i64> = SearchAttributeKey::int("OrderTotal");
    /// `OrderStatus` while the order is being placed.
    pub const PLACING: &str = "PLACING";
}

/// Shows `status` (an order status, or `REJECTED`) for an order of `total`.
pub fn show(ctx: &WorkflowContext<OrderWorkflow>, status: &str, total: i64) {
    use search_attributes::*;
    ctx.upsert_search_attributes([
        ORDER_STATUS.value_set(status.to_owned()),
        ORDER_TOTAL.value_set(total),
    ]);
}

/// Shows the order's own status.
pub fn show_order(ctx: &WorkflowContext<OrderWorkflow>, order: &Order) {
    show(ctx, order.status.as_str(), order.total);
}

/// "until 12:34:56 UTC", the payment deadline as people read it.
pub fn until(order: &Order) -> String {
    format!("until {}", order.expires_at.format("%H:%M:%S UTC"))
}

/// How an order that did not complete ended, in words: "CANCELED (USER_CANCELED): …".
pub fn ended(order: &Order) -> String {
    let code = order
        .cancel_code
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let reason = order.cancel_reason.as_deref().unwrap_or("");
    format!("{}{code}: {reason}", order.status)
}
