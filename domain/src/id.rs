//! The ids of the shop's things (CONTRACT §1): a user, a product and a coupon are numbered by
//! the database; an order's id is a string, which is also its workflow's id.
//!
//! Each is a type of its own, so that a user id cannot be passed where a product id is meant.
//! On the wire they are what they wrap (`#[serde(transparent)]`): a number, or a string, so the
//! JSON of the API, the workflow's payloads and the recorded histories are those of the bare
//! values. Deserializing checks nothing more than the bare value's type; text from outside
//! (a path, a body, a token, the command line) goes through `parse`, which says what is wrong.
//! Only `store` converts them to and from SQL (`get`, `new`, `as_str`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::OrderError;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Any integer is an id: one that names nothing (0 and negatives included) is
            /// answered "not found" where it is looked up (CONTRACT §5), never refused here.
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            /// The number, as the database stores it.
            pub const fn get(self) -> i64 {
                self.0
            }

            #[doc = concat!("Reads ", $what, " from text (a path segment, a token's `sub`, an ")]
            /// argument): a decimal integer, else `INVALID_REQUEST`.
            pub fn parse(s: &str) -> Result<Self, OrderError> {
                s.parse::<i64>().map(Self).map_err(|_| {
                    OrderError::InvalidRequest {
                        message: format!("{} must be an integer, got {s:?}", $what),
                        details: json!({ "field": $what }),
                    }
                })
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = OrderError;

            fn from_str(s: &str) -> Result<Self, OrderError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

numeric_id!(
    /// A user's id (`users.id`); a customer token's `sub`.
    UserId,
    "user_id"
);

numeric_id!(
    /// A product's id (`products.id`).
    ProductId,
    "product_id"
);

numeric_id!(
    /// A coupon's id (`coupons.id`).
    CouponId,
    "coupon_id"
);

/// An order's id: 1 to 64 of ASCII letters, digits, `-` and `_`. It is also the order's
/// Temporal workflow id, so it is short and URL-safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(String);

impl OrderId {
    pub const MAX_LEN: usize = 64;

    /// The id in `s`, or `INVALID_REQUEST` (field `order_id`) when `s` cannot be an order id.
    pub fn parse(s: &str) -> Result<Self, OrderError> {
        Self::try_from(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for OrderId {
    type Error = OrderError;

    fn try_from(s: String) -> Result<Self, OrderError> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(OrderError::InvalidRequest {
                message: "order_id must be 1 to 64 of letters, digits, '-' and '_'".into(),
                details: json!({ "field": "order_id" }),
            })
        }
    }
}

impl FromStr for OrderId {
    type Err = OrderError;

    fn from_str(s: &str) -> Result<Self, OrderError> {
        Self::parse(s)
    }
}

/// An order id reads as the text it is, wherever a `&str` is asked for; the other way round is
/// [`OrderId::parse`].
impl std::ops::Deref for OrderId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> Self {
        id.0
    }
}

impl PartialEq<str> for OrderId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrderId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids() {
        assert!(OrderId::parse("ord_01H-x").is_ok());
        assert!(OrderId::parse(&"a".repeat(64)).is_ok());
        assert!(OrderId::parse("").is_err());
        assert!(OrderId::parse("a/b").is_err());
        assert!(OrderId::parse("ordé").is_err());
        assert!(OrderId::parse(&"a".repeat(65)).is_err());
        let e = OrderId::parse("a b").unwrap_err();
        assert_eq!(e.code(), "INVALID_REQUEST");
    }

    #[test]
    fn numeric_ids_parse_any_integer_and_nothing_else() {
        assert_eq!(UserId::parse("42").unwrap().get(), 42);
        assert_eq!(ProductId::parse("0").unwrap(), ProductId::new(0));
        assert_eq!(CouponId::parse("-3").unwrap().get(), -3);
        for bad in ["", "x", "1.5", " 1", "99999999999999999999"] {
            let e = UserId::parse(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_REQUEST", "{bad:?}");
        }
    }

    /// The wire format is the bare value's: the API's JSON, the workflow's payloads and the
    /// recorded histories do not see the types.
    #[test]
    fn ids_are_their_bare_values_on_the_wire() {
        let ids = (UserId::new(7), ProductId::new(8), Some(CouponId::new(9)));
        assert_eq!(serde_json::to_string(&ids).unwrap(), "[7,8,9]");
        let order = OrderId::parse("ord-1").unwrap();
        assert_eq!(serde_json::to_string(&order).unwrap(), r#""ord-1""#);
        let back: (UserId, ProductId, Option<CouponId>) = serde_json::from_str("[7,8,9]").unwrap();
        assert_eq!(back, ids);
        let back: OrderId = serde_json::from_str(r#""ord-1""#).unwrap();
        assert_eq!(back, order);
        assert_eq!(format!("{} {order}", ids.0), "7 ord-1");
    }
}
