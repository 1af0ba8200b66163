//! The order saga's client side: placing, paying, canceling and reading orders through the
//! `OrderWorkflow`, and minting and verifying bearer tokens. The CLI and the HTTP API
//! ([`http`]) are thin layers over [`orders::OrderService`].

pub mod check;
pub mod codec;
pub mod http;
pub mod orders;
pub mod repair;
pub mod schedule;
pub mod token;

pub use orders::{OrderService, ServiceError};
