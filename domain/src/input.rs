//! What a customer sends to place an order, and the contract's input rules (CONTRACT §5).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{CouponId, OrderError, ProductId};

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 1000;
pub const MAX_TOP_UP: i64 = 10_000_000;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub product_id: ProductId,
    /// 1 to 1000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub quantity: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    /// 1 to 100 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub recipient: String,
    /// 1 to 300 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 300,
            pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
        )
    )]
    pub address: String,
    /// 7 to 20 of digits, spaces, `+` and `-`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 7, max_length = 20, pattern = "^[0-9 +-]{7,20}$")
    )]
    pub phone: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1 to 50 lines, no product twice (JSON Schema can say only that no two lines are equal).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub items: Vec<LineRequest>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub coupon_id: Option<CouponId>,
    pub shipping: Shipping,
}

fn invalid(field: &str, message: String) -> OrderError {
    OrderError::InvalidRequest {
        message,
        details: json!({ "field": field }),
    }
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), OrderError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(invalid(
            field,
            format!("{field} must be {min} to {max} characters, got {n}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

impl Shipping {
    pub fn validate(&self) -> Result<(), OrderError> {
        check_len("shipping.recipient", &self.recipient, 1, 100)?;
        check_len("shipping.address", &self.address, 1, 300)?;
        let phone = &self.phone;
        let n = phone.chars().count();
        if !(7..=20).contains(&n)
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '+' || c == '-')
        {
            return Err(invalid(
                "shipping.phone",
                "shipping.phone must be 7 to 20 of digits, spaces, '+' and '-'".into(),
            ));
        }
        Ok(())
    }
}

/// What a customer sends to price a cart (`POST /api/v1/orders/quote`): placement's lines and
/// coupon, without the shipping.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// 1 to 50 lines, no product twice.
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 50))]
    pub items: Vec<LineRequest>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub coupon_id: Option<CouponId>,
}

impl QuoteRequest {
    /// Placement's rules for the lines: 1 to 50, each quantity 1 to 1000, no product twice.
    pub fn validate(&self) -> Result<(), OrderError> {
        validate_lines(&self.items)
    }
}

/// 1 to 50 lines, each quantity 1 to 1000, no product twice: the rules a placement and a quote
/// share.
fn validate_lines(items: &[LineRequest]) -> Result<(), OrderError> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(invalid(
            "items",
            format!("an order has 1 to {MAX_LINES} lines"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, line) in items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(invalid(
                &format!("items[{i}].quantity"),
                format!("quantity must be an integer from 1 to {MAX_QUANTITY}"),
            ));
        }
        if !seen.insert(line.product_id) {
            return Err(invalid(
                &format!("items[{i}].product_id"),
                format!("product {} appears twice in one order", line.product_id),
            ));
        }
    }
    Ok(())
}

impl PlaceOrderRequest {
    /// The input rules: the lines' (see [`QuoteRequest::validate`]), and the shipping fields'
    /// lengths and alphabet.
    pub fn validate(&self) -> Result<(), OrderError> {
        validate_lines(&self.items)?;
        // No rule for the ids themselves: CONTRACT §5 answers an id that names nothing (0 or
        // negative included) with 404 `PRODUCT_NOT_FOUND` or 422 `COUPON_INVALID` `NOT_FOUND`.
        self.shipping.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(items: Vec<LineRequest>) -> PlaceOrderRequest {
        PlaceOrderRequest {
            items,
            coupon_id: None,
            shipping: Shipping {
                recipient: "Kim".into(),
                address: "Seoul".into(),
                phone: "010-1234-5678".into(),
            },
        }
    }

    fn line(product_id: i64, quantity: i64) -> LineRequest {
        LineRequest {
            product_id: ProductId::new(product_id),
            quantity,
        }
    }

    #[test]
    fn limits_at_and_past_the_edges() {
        assert!(req(vec![line(1, 1)]).validate().is_ok());
        assert!(req(vec![line(1, 1000)]).validate().is_ok());
        assert!(req(vec![line(1, 0)]).validate().is_err());
        assert!(req(vec![line(1, 1001)]).validate().is_err());
        assert!(req(vec![]).validate().is_err());
        assert!(
            req((1..=50).map(|i| line(i, 1)).collect())
                .validate()
                .is_ok()
        );
        assert!(
            req((1..=51).map(|i| line(i, 1)).collect())
                .validate()
                .is_err()
        );
        assert!(req(vec![line(1, 1), line(1, 2)]).validate().is_err());
    }

    #[test]
    fn shipping_rules() {
        let mut r = req(vec![line(1, 1)]);
        r.shipping.phone = "123456".into();
        assert!(r.validate().is_err());
        r.shipping.phone = "+82 10 1234".into();
        assert!(r.validate().is_ok());
        r.shipping.phone = "010x12345".into();
        assert!(r.validate().is_err());
        r.shipping.phone = "1234567".into();
        r.shipping.recipient = "가".repeat(100);
        assert!(r.validate().is_ok());
        r.shipping.recipient = "가".repeat(101);
        assert!(r.validate().is_err());
        r.shipping.recipient = String::new();
        assert!(r.validate().is_err());
    }
}
