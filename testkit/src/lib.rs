//! The order saga's test kit: what the end-to-end tests (`saga-tests`), `chaos` and the
//! benchmark share, so that each is written once.
//!
//! - [`api`]: one client of the HTTP API: signed tokens, JSON requests with or without an
//!   `Idempotency-Key`, raw requests, the repeat a careful client makes after a 503, and
//!   [`Reply`], the answer with the contract's error body read and checked.
//! - [`tokens`]: tokens as an attacker writes them (unsigned, tampered, signed with any key).
//! - [`shop`]: the shop's fixtures: users, products, coupons, the demo shipping address and the
//!   placement request as JSON and as the domain's type.
//! - The in-process stack: [`db`] (a database of its own per test or scenario), [`worker`] (a
//!   worker on a thread of its own), [`receiver`] (the data platform, which can be stopped and
//!   resumed on its port), and [`check`] (the end of a run: every workflow closed, every
//!   `COMPLETED` order delivered to the data platform under its own key).
//! - [`search_attributes`]: the workflow's search attributes as `search-attributes.txt` at the
//!   repository's root declares them for the servers.
//!
//! Never a dependency of a production crate (ARCHITECTURE.md, checked by
//! `cargo test -p saga-tests --test architecture`).

pub mod api;
pub mod check;
pub mod db;
pub mod receiver;
pub mod reply;
pub mod search_attributes;
pub mod shop;
pub mod tokens;
pub mod worker;

pub use api::{Answer, Api, Raw};
pub use receiver::Receiver;
pub use reply::Reply;
pub use worker::WorkerThread;
