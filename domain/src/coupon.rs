use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CouponId, OrderId, Points, UserId};

/// A coupon's discount, as the contract writes it on the wire:
/// `{"type":"FIXED","amount":N}` or `{"type":"PERCENT","percent":P,"max_amount":M?}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Discount {
    Fixed {
        /// 1 to 1,000,000,000,000 points.
        #[cfg_attr(
            feature = "openapi",
            schema(value_type = i64, minimum = 1, maximum = 1_000_000_000_000_i64)
        )]
        amount: Points,
    },
    Percent {
        /// 1 to 100.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
        percent: i64,
        /// The cap, 1 to 1,000,000,000,000 points.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_i64)
        )]
        max_amount: Option<Points>,
    },
}

impl Discount {
    /// The discount this coupon gives on `subtotal`; never more than the subtotal, never negative.
    pub fn amount_off(&self, subtotal: Points) -> Points {
        let subtotal = subtotal.max(0);
        let off = match *self {
            Discount::Fixed { amount } => amount.min(subtotal),
            Discount::Percent {
                percent,
                max_amount,
            } => {
                // i128 so that a huge subtotal times 100 cannot overflow.
                let raw = (i128::from(subtotal) * i128::from(percent.clamp(0, 100)) / 100) as i64;
                max_amount.map_or(raw, |cap| raw.min(cap))
            }
        };
        off.clamp(0, subtotal)
    }

    /// Whether the discount itself is well formed (amount ≥ 1, 1 ≤ percent ≤ 100, cap ≥ 1).
    pub fn validate(&self) -> Result<(), &'static str> {
        match *self {
            Discount::Fixed { amount } if amount < 1 => Err("discount.amount must be at least 1"),
            Discount::Percent { percent, .. } if !(1..=100).contains(&percent) => {
                Err("discount.percent must be between 1 and 100")
            }
            Discount::Percent {
                max_amount: Some(m),
                ..
            } if m < 1 => Err("discount.max_amount must be at least 1"),
            _ => Ok(()),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponStatus {
    Available,
    Used,
}

impl CouponStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            CouponStatus::Available => "AVAILABLE",
            CouponStatus::Used => "USED",
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: CouponId,
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub user_id: UserId,
    pub discount: Discount,
    pub min_order_amount: Option<Points>,
    pub expires_at: DateTime<Utc>,
    pub status: CouponStatus,
    pub used_at: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub order_id: Option<OrderId>,
}

/// Why a coupon cannot be used (`details.reason` of `COUPON_INVALID`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CouponInvalidReason {
    NotFound,
    NotOwned,
    AlreadyUsed,
    Expired,
    MinOrderAmount,
}

impl CouponInvalidReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::NotOwned => "NOT_OWNED",
            Self::AlreadyUsed => "ALREADY_USED",
            Self::Expired => "EXPIRED",
            Self::MinOrderAmount => "MIN_ORDER_AMOUNT",
        }
    }
}

impl Coupon {
    /// The contract's validity rule, checked in the order a user would find most useful:
    /// existence is the caller's job; then ownership, use, expiry and the minimum amount.
    pub fn check(
        &self,
        user_id: UserId,
        subtotal: Points,
        now: DateTime<Utc>,
    ) -> Result<(), CouponInvalidReason> {
        if self.user_id != user_id {
            return Err(CouponInvalidReason::NotOwned);
        }
        if self.status != CouponStatus::Available {
            return Err(CouponInvalidReason::AlreadyUsed);
        }
        if self.expires_at <= now {
            return Err(CouponInvalidReason::Expired);
        }
        if self.min_order_amount.is_some_and(|min| subtotal < min) {
            return Err(CouponInvalidReason::MinOrderAmount);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_never_exceeds_subtotal() {
        let d = Discount::Fixed { amount: 5_000 };
        assert_eq!(d.amount_off(12_000), 5_000);
        assert_eq!(d.amount_off(3_000), 3_000);
    }

    #[test]
    fn percent_floors_and_caps() {
        let d = Discount::Percent {
            percent: 15,
            max_amount: None,
        };
        assert_eq!(d.amount_off(999), 149); // floor(149.85)
        let capped = Discount::Percent {
            percent: 50,
            max_amount: Some(1_000),
        };
        assert_eq!(capped.amount_off(10_000), 1_000);
        let all = Discount::Percent {
            percent: 100,
            max_amount: None,
        };
        assert_eq!(all.amount_off(7_777), 7_777);
    }

    #[test]
    fn wire_form_matches_contract() {
        let d: Discount = serde_json::from_str(r#"{"type":"PERCENT","percent":10}"#).unwrap();
        assert_eq!(
            d,
            Discount::Percent {
                percent: 10,
                max_amount: None
            }
        );
        let f = serde_json::to_value(Discount::Fixed { amount: 3 }).unwrap();
        assert_eq!(f, serde_json::json!({"type":"FIXED","amount":3}));
    }

    #[test]
    fn coupon_rules_in_order() {
        let now = Utc::now();
        let c = Coupon {
            id: CouponId::new(1),
            user_id: UserId::new(7),
            discount: Discount::Fixed { amount: 1 },
            min_order_amount: Some(10_000),
            expires_at: now + chrono::Duration::hours(1),
            status: CouponStatus::Available,
            used_at: None,
            order_id: None,
        };
        assert_eq!(
            c.check(UserId::new(8), 20_000, now),
            Err(CouponInvalidReason::NotOwned)
        );
        assert_eq!(
            c.check(UserId::new(7), 9_999, now),
            Err(CouponInvalidReason::MinOrderAmount)
        );
        assert_eq!(c.check(UserId::new(7), 10_000, now), Ok(()));
        assert_eq!(
            c.check(UserId::new(7), 10_000, now + chrono::Duration::hours(2)),
            Err(CouponInvalidReason::Expired)
        );
        let used = Coupon {
            status: CouponStatus::Used,
            ..c
        };
        assert_eq!(
            used.check(UserId::new(7), 10_000, now),
            Err(CouponInvalidReason::AlreadyUsed)
        );
    }
}
