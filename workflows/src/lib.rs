//! Orchestration only: no I/O, no clock, no randomness except through the SDK.
//!
//! [`order::OrderWorkflow`] is the whole life of one order, top to bottom. [`saga`] holds the
//! compensation stack it uses, and [`steps`] how a step runs and how its failures are read.
//! [`reconcile::ReconcileWorkflow`] is CONTRACT §6 as a scheduled job.

pub mod order;
pub mod reconcile;
pub mod saga;
pub mod steps;

pub use order::{OrderInput, OrderResult, OrderWorkflow, search_attributes};
pub use reconcile::ReconcileWorkflow;
