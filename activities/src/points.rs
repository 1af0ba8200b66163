//! Charge points, and its compensation, refund points.
use domain::saga::{ChargePointsInput, Stamp, StepKey};
use sqlx::PgPool;

use crate::StepError;

pub async fn charge(_db: &PgPool, _input: &ChargePointsInput) -> Result<Stamp, StepError> {
    unimplemented!("helper")
}

pub async fn refund(_db: &PgPool, _key: &StepKey) -> Result<(), StepError> {
    unimplemented!("helper")
}
