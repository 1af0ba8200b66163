//! The order row: recorded `PENDING`, then completed or closed. Also reads for the CLI and API.
use domain::Order;
use domain::saga::{CloseOrderInput, Stamp};
use sqlx::PgPool;

use crate::StepError;

pub async fn record(_db: &PgPool, _order: &Order) -> Result<(), StepError> {
    unimplemented!("helper")
}

pub async fn complete(_db: &PgPool, _order_id: &str) -> Result<Stamp, StepError> {
    unimplemented!("helper")
}

pub async fn close(_db: &PgPool, _input: &CloseOrderInput) -> Result<Stamp, StepError> {
    unimplemented!("helper")
}

pub async fn mark_notified(_db: &PgPool, _order_id: &str) -> Result<Stamp, StepError> {
    unimplemented!("helper")
}

pub async fn load(_db: &PgPool, _order_id: &str) -> Result<Option<Order>, sqlx::Error> {
    unimplemented!("helper")
}
