//! Deduct the stock of every line, and its compensation, restore the stock.
use domain::saga::{DeductStockInput, StepKey};
use sqlx::PgPool;

use crate::StepError;

pub async fn deduct(_db: &PgPool, _input: &DeductStockInput) -> Result<(), StepError> {
    unimplemented!("helper")
}

pub async fn restore(_db: &PgPool, _key: &StepKey) -> Result<(), StepError> {
    unimplemented!("helper")
}
