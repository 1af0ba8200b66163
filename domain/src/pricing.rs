use serde::{Deserialize, Serialize};

use crate::{Discount, OrderLine, Points};

/// The money of one order: subtotal − discount = total, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub subtotal: Points,
    pub discount: Points,
    pub total: Points,
}

impl Pricing {
    pub fn subtotal(lines: &[OrderLine]) -> Points {
        lines.iter().map(|l| l.line_total).sum()
    }

    pub fn new(lines: &[OrderLine], discount: Option<&Discount>) -> Self {
        let subtotal = Self::subtotal(lines);
        let discount = discount.map_or(0, |d| d.amount_off(subtotal));
        Self {
            subtotal,
            discount,
            total: subtotal - discount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(price: Points, qty: i64) -> OrderLine {
        OrderLine {
            product_id: crate::ProductId::new(1),
            name: "x".into(),
            unit_price: price,
            quantity: qty,
            line_total: price * qty,
        }
    }

    #[test]
    fn total_is_subtotal_minus_discount_and_never_negative() {
        let lines = [line(1_000, 2), line(500, 1)];
        let p = Pricing::new(&lines, Some(&Discount::Fixed { amount: 10_000 }));
        assert_eq!(
            p,
            Pricing {
                subtotal: 2_500,
                discount: 2_500,
                total: 0
            }
        );
        let p = Pricing::new(
            &lines,
            Some(&Discount::Percent {
                percent: 10,
                max_amount: None,
            }),
        );
        assert_eq!(p.total, 2_250);
        assert_eq!(Pricing::new(&lines, None).total, 2_500);
    }
}
