//! The orchestration floor: an order's shape with none of its work ([`FloorWorkflow`] and its
//! no-op activities), the baseline the bench measures orders against.
//!
//! It is benchmark code, so it lives here and not in the production crates: the bench runs it
//! on a worker process of its own ([`worker`]: `bench floor-worker`, a child of the bench) on a
//! task queue of its own ([`task_queue`]), wired as the production worker is.

mod activities;
pub mod worker;
mod workflow;

use runtime::Settings;

pub use workflow::{FloorShape, FloorWorkflow, ORDER_SHAPE, ORDER_SHAPE_REMOTE};

/// The floor's task queue: `<TASK_QUEUE>-floor`, beside the orders' and never on it.
pub fn task_queue(settings: &Settings) -> String {
    format!("{}-floor", settings.task_queue)
}
