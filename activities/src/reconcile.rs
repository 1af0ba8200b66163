//! The scheduled reconciliation's one activity: CONTRACT §6 over the database
//! (`store::invariants::reconcile`), its two figures handed to the worker's gauges.

use std::sync::Arc;
use std::time::Duration;

use domain::reconcile::{ReconcileInput, Reconciliation};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::error::ActivityResult;
use store::PgPool;

/// Where a reconciliation's figures go: the worker's metrics (`runtime::telemetry`), or nowhere.
pub trait ReconcileGauges: Send + Sync {
    /// `orders_invariant_violations` and `orders_undelivered`, as of this run.
    fn set(&self, violations: u64, undelivered: u64);
}

/// The activity implementer of `ReconcileWorkflow`: a database pool and the gauges.
pub struct ReconcileActivities {
    pub db: PgPool,
    pub gauges: Option<Arc<dyn ReconcileGauges>>,
}

impl ReconcileActivities {
    pub fn new(db: PgPool, gauges: Option<Arc<dyn ReconcileGauges>>) -> Self {
        Self { db, gauges }
    }
}

#[activities]
impl ReconcileActivities {
    /// Runs every rule of CONTRACT §6, orders younger than the grace window left out, sets the
    /// gauges and answers what it found. Reads only, so running it again is harmless.
    #[activity]
    pub async fn reconcile(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ReconcileInput,
    ) -> Result<Reconciliation, ActivityError> {
        let found = store::invariants::reconcile(&self.db, Duration::from_secs(input.grace_secs))
            .await
            .activity()?;
        if let Some(gauges) = &self.gauges {
            gauges.set(found.violations.len() as u64, found.undelivered);
        }
        for v in &found.violations {
            tracing::warn!(rule = %v.rule, order_id = ?v.order_id, "CONTRACT §6 violated: {v}");
        }
        Ok(found)
    }
}
