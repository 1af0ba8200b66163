//! Orchestration only: no I/O, no clock, no randomness except through the SDK.
//!
//! [`order::OrderWorkflow`] is the whole life of one order, top to bottom. [`saga`] holds the
//! compensation stack it uses, and [`steps`] the activity options and the reading of failures.

pub mod order;
pub mod saga;
pub mod steps;

pub use order::{OrderInput, OrderResult, OrderWorkflow, search_attributes};
