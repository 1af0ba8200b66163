//! The order saga's data, in PostgreSQL: everything that reads or writes it.
//!
//! - [`db`]: connecting, creating the database, migrating (`migrations/`), the demo seed, and
//!   the shop's admin writes and reads (users, products, coupons, top-ups, restocks).
//! - [`orders`], [`points`], [`coupons`], [`stock`]: the saga's steps, each forward step beside
//!   its undo, all idempotent by a business key; [`placement`]: the checks of a placement.
//! - `fence`: the idempotency and fencing protocol they share (table `saga_steps`, `payments`).
//! - [`invariants`]: CONTRACT §6 as SQL.
//! - [`repair`]: what `starter repair` reads and writes for an order whose workflow was
//!   terminated.
//! - [`idempotency`]: the HTTP API's `Idempotency-Key` records, their leases and retention.
//!
//! Every change to a balance is a ledger row, written in the transaction that changes it.
//! Business refusals are [`StoreError::Business`] with the contract's error; anything else is
//! a database error that a retry may cure.

pub mod coupons;
pub mod db;
mod error;
mod fence;
pub mod idempotency;
pub mod invariants;
pub mod orders;
pub mod placement;
pub mod points;
pub mod repair;
pub mod stock;

pub use error::{DbFault, StoreError};
/// The pool every function here takes: callers hold it and pass it, and need no SQL of their
/// own.
pub use sqlx::PgPool;
