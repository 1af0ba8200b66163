//! Redeem the coupon, and its compensation, release the coupon.
use domain::saga::{RedeemCouponInput, StepKey};
use sqlx::PgPool;

use crate::StepError;

pub async fn redeem(_db: &PgPool, _input: &RedeemCouponInput) -> Result<(), StepError> {
    unimplemented!("helper")
}

pub async fn release(_db: &PgPool, _key: &StepKey) -> Result<(), StepError> {
    unimplemented!("helper")
}
