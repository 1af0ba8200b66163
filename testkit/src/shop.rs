//! The shop's fixtures: users, products and coupons written with `store`'s admin helpers, the
//! demo shipping address, and a placement request as the API reads it (JSON) and as the
//! workflow does (`PlaceOrderRequest`).

use anyhow::Result;
use domain::{CouponId, Discount, LineRequest, PlaceOrderRequest, ProductId, Shipping, UserId};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The contract's demo shipping address.
pub fn shipping() -> Shipping {
    Shipping {
        recipient: "Kim Minji".into(),
        address: "12 Teheran-ro, Gangnam-gu, Seoul".into(),
        phone: "010-1234-5678".into(),
    }
}

/// [`shipping`] as JSON.
pub fn shipping_json() -> Value {
    let s = shipping();
    json!({"recipient": s.recipient, "address": s.address, "phone": s.phone})
}

/// An order's body for `POST /api/v1/orders`: `(product, quantity)` lines, an optional coupon
/// and the demo shipping address.
pub fn order_body(lines: &[(ProductId, i64)], coupon: Option<CouponId>) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    let mut body = json!({"items": items, "shipping": shipping_json()});
    if let Some(c) = coupon {
        body["coupon_id"] = json!(c);
    }
    body
}

/// The same order as a placement request, for placing through `OrderService`.
pub fn order_request(lines: &[(ProductId, i64)], coupon: Option<CouponId>) -> PlaceOrderRequest {
    PlaceOrderRequest {
        items: lines
            .iter()
            .map(|&(product_id, quantity)| LineRequest {
                product_id,
                quantity,
            })
            .collect(),
        coupon_id: coupon,
        shipping: shipping(),
    }
}

pub async fn user(db: &PgPool, name: &str, points: i64) -> Result<UserId> {
    Ok(store::db::create_user(db, name, points).await?)
}

pub async fn product(db: &PgPool, name: &str, price: i64, stock: i64) -> Result<ProductId> {
    Ok(store::db::create_product(db, name, price, stock).await?)
}

/// A coupon of `user`'s that expires in 30 days.
pub async fn coupon(
    db: &PgPool,
    user: UserId,
    discount: Discount,
    min: Option<i64>,
) -> Result<CouponId> {
    let expires = chrono::Utc::now() + chrono::Duration::days(30);
    Ok(store::db::create_coupon(db, user, &discount, min, expires).await?)
}

/// A shop of customers and products.
#[derive(Debug, Clone)]
pub struct Shop {
    pub users: Vec<UserId>,
    pub products: Vec<ProductId>,
}

impl Shop {
    /// `users` customers with `points` each, and a product of each `(price, stock)`.
    pub async fn open(
        db: &PgPool,
        users: usize,
        points: i64,
        products: &[(i64, i64)],
    ) -> Result<Self> {
        let mut u = Vec::with_capacity(users);
        for i in 0..users {
            u.push(user(db, &format!("Customer {i}"), points).await?);
        }
        let mut p = Vec::with_capacity(products.len());
        for (i, (price, stock)) in products.iter().enumerate() {
            p.push(product(db, &format!("Product {i}"), *price, *stock).await?);
        }
        Ok(Self {
            users: u,
            products: p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_and_the_request_are_the_same_order() {
        let (p, c) = (ProductId::new(3), CouponId::new(7));
        let body = order_body(&[(p, 2)], Some(c));
        let request: PlaceOrderRequest = serde_json::from_value(body).expect("a request");
        assert_eq!(request, order_request(&[(p, 2)], Some(c)));
        let without = order_body(&[(p, 2)], None);
        assert!(without.get("coupon_id").is_none());
    }
}
