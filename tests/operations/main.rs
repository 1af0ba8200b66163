//! An operator's actions against CONTRACT §6: `temporal workflow reset` at every workflow task
//! of every recorded path, in both of the CLI's modes ([`reset`]); `temporal workflow
//! terminate` followed by `starter repair` ([`repair`]). Each ends with `starter check`.
//!
//! The terminate matrix at every step boundary (the crash points) is the crash-point matrix's
//! "terminate + repair" column (`chaos`, docs/RELIABILITY.md).
//!
//! CONTRACT §6 on a schedule: `ReconcileWorkflow` and `starter schedule` ([`reconcile`]).

mod activity;
mod cli;
mod reconcile;
mod repair;
mod reset;
mod reset_running;
mod runbook;
