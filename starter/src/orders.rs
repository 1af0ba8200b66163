//! Placing, paying, canceling and reading orders. Every change goes through the order's
//! workflow; reads come from PostgreSQL, which the activities keep in step with it.

use std::time::Duration;

use domain::saga::PayRequest;
use domain::{Order, OrderError, OrderId, PlaceOrderRequest, UserId};
use store::{PgPool, StoreError};
use temporalio_client::errors::{
    WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, NamespacedClient, WorkflowDescribeOptions, WorkflowExecuteUpdateOptions,
    WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowUpdateWithStartOptions,
};
use temporalio_common::data_converters::{SerializationContextData, WorkflowSerializationContext};
use temporalio_common::payload_visitor::decode_payloads;
use temporalio_common::search_attributes::SearchAttributes;
use tonic_status::Code;
use workflows::{OrderInput, OrderWorkflow, search_attributes};

mod tonic_status {
    pub use temporalio_client::tonic::Code;
}

/// A failure to answer: the contract's business error, or trouble reaching Temporal or the
/// database (which callers report as `UNAVAILABLE`, with the cause logged).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("Temporal: {0}")]
    Temporal(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

impl ServiceError {
    /// The contract's error for this failure; internals stay in the log.
    pub fn to_order_error(&self) -> OrderError {
        match self {
            ServiceError::Order(e) => e.clone(),
            ServiceError::Temporal(_) | ServiceError::Db(_) => OrderError::Unavailable {
                message: "the service is temporarily unavailable; retry later".into(),
            },
        }
    }
}

#[derive(Clone)]
pub struct OrderService {
    pub client: Client,
    pub db: PgPool,
    pub task_queue: String,
    pub payment_timeout: Duration,
    /// `STEP_MODE=remote`: new orders run their database steps as ordinary activities.
    pub remote_steps: bool,
}

impl OrderService {
    pub fn new(client: Client, db: PgPool, task_queue: &str, payment_timeout: Duration) -> Self {
        Self {
            client,
            db,
            task_queue: task_queue.to_owned(),
            payment_timeout,
            remote_steps: false,
        }
    }

    /// New orders run their database steps as ordinary activities (`STEP_MODE=remote`).
    pub fn with_remote_steps(mut self, remote: bool) -> Self {
        self.remote_steps = remote;
        self
    }

    /// A fresh order id (also the workflow id).
    pub fn new_order_id() -> OrderId {
        OrderId::parse(&format!("ord-{}", uuid::Uuid::new_v4().simple()))
            .expect("ord- and 32 hex digits make an order id")
    }

    /// Starts the order's workflow and waits for the placement's answer (update-with-start).
    /// Calling again with the same id while the workflow runs attaches to the same answer.
    pub async fn place(
        &self,
        order_id: &OrderId,
        user_id: UserId,
        request: PlaceOrderRequest,
    ) -> Result<Order, ServiceError> {
        request.validate()?;
        // The Web UI's title of the workflow; set once at the start, as the seed diagrams name
        // an order (what changes afterwards is in the workflow's current details).
        let summary = start_summary(order_id, user_id, &request);
        let details = start_details(&request, self.payment_timeout);
        let input = OrderInput {
            order_id: order_id.clone(),
            user_id,
            request,
            payment_timeout_ms: u64::try_from(self.payment_timeout.as_millis()).unwrap_or(u64::MAX),
            remote_steps: self.remote_steps,
        };
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            order_id.to_owned(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        // An order id names one order for good: a closed order's workflow is never started
        // again under its id (that would record, and try to charge, the same order twice).
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary(summary)
        .static_details(details)
        // Known at the start: set with it rather than upserted by the workflow.
        .search_attributes(SearchAttributes::new([
            search_attributes::CUSTOMER_ID.value_set(user_id.get()),
            search_attributes::ORDER_STATUS.value_set(search_attributes::PLACING.to_owned()),
        ]))
        .build();
        let result = self
            .client
            .execute_update_with_start_workflow(
                OrderWorkflow::run,
                input,
                OrderWorkflow::place,
                (),
                options,
            )
            .await;
        match result {
            Ok(order) => Ok(order),
            Err(WorkflowUpdateWithStartError::Update(e)) => {
                let refused =
                    matches!(&e, WorkflowUpdateError::Failed(f) if business_error(f).is_some());
                // Its workflow closed before it answered (terminated): answered as a placement
                // under a known id is, from the order as recorded.
                if !refused && self.workflow_closed(order_id).await {
                    return self.placed_before(order_id, user_id).await;
                }
                Err(self.update_error(order_id, e).await)
            }
            Err(WorkflowUpdateWithStartError::Start(WorkflowStartError::AlreadyStarted {
                ..
            })) => self.placed_before(order_id, user_id).await,
            Err(e) => Err(ServiceError::Temporal(e.to_string())),
        }
    }

    /// Placing again under the id of an order whose workflow has closed: the same answer as
    /// the first time (the order as it stands now, or the error that rejected it).
    async fn placed_before(
        &self,
        order_id: &OrderId,
        user_id: UserId,
    ) -> Result<Order, ServiceError> {
        if let Some(order) = store::orders::load(&self.db, order_id).await? {
            if order.user_id == user_id {
                return Ok(order);
            }
            return Err(OrderError::invalid(format!("order id {order_id} is taken")).into());
        }
        let handle = self
            .client
            .get_workflow_handle::<OrderWorkflow>(order_id.as_str());
        match handle.get_result(WorkflowGetResultOptions::default()).await {
            Ok(workflows::OrderResult {
                rejected: Some(error),
                ..
            }) => Err(error.into()),
            _ => Err(OrderError::invalid(format!("order id {order_id} was already used")).into()),
        }
    }

    /// Sends the `pay` update: answers with the `COMPLETED` order or the contract's error.
    /// `update_id` names the payment (a fresh one when `None`): sending it again with the same
    /// id attaches to that payment and answers its outcome (Temporal deduplicates updates by
    /// id), where a new payment would be refused as `PAID` (in flight), or as `COMPLETED` by its
    /// own success. That is how a client whose answer was lost (a 503 after the request
    /// deadline) learns it.
    pub async fn pay(
        &self,
        order_id: &OrderId,
        update_id: Option<String>,
    ) -> Result<Order, ServiceError> {
        let handle = self
            .client
            .get_workflow_handle::<OrderWorkflow>(order_id.as_str());
        // The payment's id is the update's: the workflow keys the payment's steps by it, and a
        // repeat under the same id attaches to the same payment.
        let payment_id = update_id.unwrap_or_else(|| format!("pay-{}", uuid::Uuid::new_v4()));
        let result = handle
            .execute_update(
                OrderWorkflow::pay,
                PayRequest {
                    payment_id: payment_id.clone(),
                },
                WorkflowExecuteUpdateOptions::builder()
                    .update_id(payment_id)
                    .build(),
            )
            .await;
        match result {
            Ok(order) => Ok(order),
            Err(e) => Err(self.update_error(order_id, e).await),
        }
    }

    pub async fn cancel(&self, order_id: &OrderId) -> Result<Order, ServiceError> {
        let handle = self
            .client
            .get_workflow_handle::<OrderWorkflow>(order_id.as_str());
        let result = handle
            .execute_update(
                OrderWorkflow::cancel,
                (),
                WorkflowExecuteUpdateOptions::default(),
            )
            .await;
        match result {
            Ok(order) => Ok(order),
            Err(e) => Err(self.update_error(order_id, e).await),
        }
    }

    /// The order as recorded in PostgreSQL.
    pub async fn show(&self, order_id: &OrderId) -> Result<Order, ServiceError> {
        store::orders::load(&self.db, order_id)
            .await?
            .ok_or_else(|| {
                OrderError::OrderNotFound {
                    order_id: order_id.to_string(),
                }
                .into()
            })
    }

    /// Turns a failed update into the contract's error. An update to a workflow that has
    /// already closed (or never existed) is answered from the database.
    async fn update_error(&self, order_id: &OrderId, e: WorkflowUpdateError) -> ServiceError {
        match e {
            WorkflowUpdateError::Failed(mut failure) => {
                // Its details are payloads, encrypted like any other (CONTRACT §8).
                let codec = self.client.data_converter().codec();
                let context =
                    SerializationContextData::Workflow(WorkflowSerializationContext::new());
                if let Err(e) = decode_payloads(failure.as_mut(), codec, &context).await {
                    tracing::warn!(error = %e, "cannot decode an update's failure");
                }
                match business_error(&failure) {
                    Some(err) => err.into(),
                    // The workflow closed before the update completed (an operator terminated
                    // it): the database has the answer, and a 503 would never become one.
                    None if self.workflow_closed(order_id).await => {
                        self.closed_order(order_id).await
                    }
                    None => ServiceError::Temporal(failure.message.clone()),
                }
            }
            WorkflowUpdateError::NotFound(_) => self.closed_order(order_id).await,
            WorkflowUpdateError::Rpc(status) if status.code() == Code::NotFound => {
                self.closed_order(order_id).await
            }
            other => ServiceError::Temporal(other.to_string()),
        }
    }

    /// Whether the order's workflow (its latest run) has closed; false when that is unknown.
    async fn workflow_closed(&self, order_id: &OrderId) -> bool {
        let handle = self
            .client
            .get_workflow_handle::<OrderWorkflow>(order_id.as_str());
        handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .is_ok_and(|d| d.status() != WorkflowExecutionStatus::Running)
    }

    async fn closed_order(&self, order_id: &OrderId) -> ServiceError {
        match store::orders::load(&self.db, order_id).await {
            Ok(Some(order)) => OrderError::not_payable(order.status).into(),
            Ok(None) => OrderError::OrderNotFound {
                order_id: order_id.to_string(),
            }
            .into(),
            Err(e) => e.into(),
        }
    }
}

/// Finds the business error in a failure chain (see [`activities::error::business_error`]).
pub use activities::error::business_error;

/// "Order ord-… by user 4: 2 lines, coupon 7" (one line: the UI shows it as the title).
fn start_summary(order_id: &OrderId, user_id: UserId, request: &PlaceOrderRequest) -> String {
    let lines = match request.items.len() {
        1 => "1 line".to_owned(),
        n => format!("{n} lines"),
    };
    let coupon = request
        .coupon_id
        .map(|c| format!(", coupon {c}"))
        .unwrap_or_default();
    format!("Order {order_id} by user {user_id}: {lines}{coupon}")
}

/// The lines as asked for (Markdown; the UI renders it). No shipping data: the UI is read by
/// operators who need the order, not the customer's address.
fn start_details(request: &PlaceOrderRequest, payment_timeout: Duration) -> String {
    let mut details = String::from("Lines:\n");
    for line in &request.items {
        details.push_str(&format!(
            "- product {} × {}\n",
            line.product_id, line.quantity
        ));
    }
    if let Some(coupon) = request.coupon_id {
        details.push_str(&format!("\nCoupon {coupon}\n"));
    }
    let secs = payment_timeout.as_secs();
    let within = match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    };
    details.push_str(&format!("\nPayment expected within {within}"));
    details
}
