//! Placement checks (CONTRACT §2.1). Read-only: a rejected placement leaves nothing behind.
use domain::saga::{CheckPointsInput, ValidateCouponInput};
use domain::{LineRequest, OrderLine, Points};
use sqlx::PgPool;

use crate::StepError;

pub async fn validate_lines(
    _db: &PgPool,
    _lines: &[LineRequest],
) -> Result<Vec<OrderLine>, StepError> {
    unimplemented!("helper")
}

pub async fn validate_coupon(
    _db: &PgPool,
    _input: &ValidateCouponInput,
) -> Result<Points, StepError> {
    unimplemented!("helper")
}

pub async fn check_points(_db: &PgPool, _input: &CheckPointsInput) -> Result<(), StepError> {
    unimplemented!("helper")
}
