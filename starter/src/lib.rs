//! The order saga's client side: placing, paying, canceling and reading orders through the
//! `OrderWorkflow`, and minting bearer tokens. The CLI (and later the HTTP API) are thin
//! layers over [`orders::OrderService`].

pub mod orders;
pub mod token;

pub use orders::{OrderService, ServiceError};
