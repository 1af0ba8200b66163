//! CONTRACT §2.4 and the end of every placed order: the callers answered, the data platform
//! told about a completed order, the workflow ended as the database has the order.

use std::time::Duration;

use activities::OrderActivities;
use domain::{Order, OrderStatus};
use temporalio_sdk::{
    TimerOptions, WorkflowCancellationToken, WorkflowContext, WorkflowResult, WorkflowTermination,
};

use super::{OrderResult, OrderWorkflow, status};
use crate::steps;

/// The end of every order that was placed: answers whoever still waits as the order ended,
/// tells the data platform about a `COMPLETED` order, and ends the workflow as the database
/// has the order (an operator's cancellation that closed it: the workflow is cancelled too).
pub async fn end(
    ctx: &WorkflowContext<OrderWorkflow>,
    order: Order,
) -> WorkflowResult<OrderResult> {
    ctx.state_mut(|s| {
        s.order = Some(order.clone());
        s.mail.settle(&order);
    });
    status::show_order(ctx, &order);
    let order = match order.status {
        OrderStatus::Completed if order.platform_notified_at.is_none() => notify(ctx, order).await,
        OrderStatus::Completed => order,
        _ => {
            ctx.set_current_details(status::ended(&order));
            order
        }
    };
    if order.status == OrderStatus::Canceled && ctx.cancellation_token().is_cancelled() {
        return Err(WorkflowTermination::cancelled());
    }
    Ok(OrderResult {
        order: Some(order),
        rejected: None,
    })
}

/// CONTRACT §2.4: POST the completed order; retried for days, never undoes the order.
async fn notify(ctx: &WorkflowContext<OrderWorkflow>, order: Order) -> Order {
    ctx.set_current_details("COMPLETED: telling the data platform");
    let summary = format!("Send order {} to the data platform", order.id);
    let mut pause = Duration::from_secs(60);
    let stamp = loop {
        match ctx
            .execute_activity(
                OrderActivities::notify_platform,
                order.id.clone(),
                steps::notify(summary.clone()),
            )
            .await
        {
            Ok(stamp) => break stamp,
            Err(e) => {
                // A week of retries ran out: keep going, more slowly, rather than lose it.
                tracing::warn!(order_id = %order.id, error = %e, "data platform still failing");
                ctx.timer(
                    TimerOptions::builder(pause)
                        .cancellation_token(WorkflowCancellationToken::new())
                        .build(),
                )
                .await;
                pause = (pause * 2).min(Duration::from_secs(3600));
            }
        }
    };
    let mut notified = order;
    notified.platform_notified_at = Some(stamp.at);
    ctx.state_mut(|s| s.order = Some(notified.clone()));
    ctx.set_current_details("COMPLETED: delivered to the data platform");
    notified
}
