//! Scenario 8: the crash-point matrix. The worker, built with its `crashpoints` feature, aborts
//! at a named point (before and after the commit of every step and compensation, and after a
//! local step before its workflow task's completion reaches the server); while it is down an
//! interfering event happens (none, an operator's cancel, a user's cancel, a second payment,
//! the payment timer, the data platform down); it is started again, every caller gets its
//! answer, the workflow closes, and the cell checks CONTRACT §6 (`starter check`), that the
//! workflow's outcome is the row's status, that every caller was told the truth, and that no
//! charge lacks its order. Each cell runs on a stack of its own, several at once.
//!
//! The points, the scenario that reaches each one and the quick sample are data
//! ([`table`]). The matrix is printed, written to `.local/chaos/crash-matrix.md` and, with
//! `--write-doc`, into docs/RELIABILITY.md.

mod cell;
mod checks;
mod flow;
mod report;
pub mod table;
mod terminate;

use std::time::Instant;

use anyhow::{Result, bail};
use futures::StreamExt;
use serde_json::json;

use self::cell::CellResult;
use super::{Figures, Outcome};
use crate::env::{Stack, Verdict};

/// The matrix's own command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cells run at once.
    pub parallel: usize,
    /// Only the cells whose label contains this.
    pub cells: Option<String>,
    /// Write the matrix into docs/RELIABILITY.md.
    pub write_doc: bool,
}

pub async fn run(stack: &Stack, opts: &Options) -> Result<Outcome> {
    let worker = cell::crash_worker(&stack.paths.bin_dir)?;
    let cells = table::cells(stack.quick, opts.cells.as_deref());
    if cells.is_empty() {
        bail!("no cell of the matrix matches {:?}", opts.cells);
    }
    let started = Instant::now();
    let total = cells.len();
    let worker = &worker;
    let mut results: Vec<CellResult> = futures::stream::iter(cells.into_iter().enumerate())
        .map(|(i, c)| async move {
            let r = cell::run(stack, worker, c, i + 1).await;
            eprintln!(
                "chaos: [8] cell {}/{total} {}: {} ({:.0} s)",
                r.n,
                c.label(),
                if r.ok() { "pass" } else { "FAIL" },
                r.secs
            );
            r
        })
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    results.sort_by_key(|r| r.n);
    let secs = started.elapsed().as_secs_f64();

    let summary = summary(&results, stack.quick, secs, opts);
    let table = report::markdown(&results, &summary);
    println!("\n{table}");
    let file = stack.paths.dir.join(if stack.quick {
        "crash-matrix-quick.md"
    } else {
        "crash-matrix.md"
    });
    std::fs::write(&file, &table)?;
    if opts.write_doc {
        report::write_doc(&stack.paths.root, &table)?;
    }
    Ok(outcome(
        &results,
        stack.quick,
        secs,
        &file.display().to_string(),
    ))
}

/// The line above the table: what ran, when, on which code, and how it went.
fn summary(results: &[CellResult], quick: bool, secs: f64, opts: &Options) -> String {
    let failed = results.iter().filter(|r| !r.ok()).count();
    let commit = commit();
    let what = match (quick, &opts.cells) {
        (true, None) => "The quick sample (`--quick`)".to_owned(),
        (false, None) => "The full matrix".to_owned(),
        (true, Some(f)) => format!("The quick sample's cells matching `{f}`"),
        (false, Some(f)) => format!("The matrix's cells matching `{f}`"),
    };
    format!(
        "{what} of commit {commit}, {}: {} cells, {} pass, {failed} fail; {:.0} s with {} \
         cells at once.",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        results.len(),
        results.len() - failed,
        secs,
        opts.parallel
    )
}

/// The commit the matrix ran on, and whether tracked files differed from it.
fn commit() -> String {
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output().ok();
    let Some(head) = git(&["rev-parse", "--short", "HEAD"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
    else {
        return "unknown".into();
    };
    let dirty = git(&["diff", "--quiet", "HEAD"]).is_some_and(|o| !o.status.success());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn outcome(results: &[CellResult], quick: bool, secs: f64, file: &str) -> Outcome {
    let failed = results.iter().filter(|r| !r.ok()).count();
    let not_reached = results.iter().filter(|r| r.reached.is_none()).count();
    let mut verdict = Verdict::default();
    for r in results {
        let label = r.cell.label();
        verdict
            .violations
            .extend(r.violations.iter().map(|v| format!("{label}: {v}")));
        verdict
            .broken
            .extend(r.broken.iter().map(|b| format!("{label}: {b}")));
        verdict
            .notes
            .extend(r.notes.iter().map(|n| format!("{label}: {n}")));
    }
    verdict.checked = json!({"cells": results.len(), "failed": failed});
    let figures = Figures {
        operations: format!(
            "{} cells{} (crash point × event), each on its own stack",
            results.len(),
            if quick { ", the quick sample" } else { "" }
        ),
        faults: "worker abort at the point; meanwhile none, operator cancel, user cancel, \
                 second pay, payment timer or data platform down; restart"
            .into(),
        outcomes: format!(
            "{} pass, {failed} fail ({not_reached} not reached) in {secs:.0} s; table: {file}",
            results.len() - failed
        ),
        details: json!({
            "seconds": secs,
            "cells": results.iter().map(|r| json!({
                "point": r.cell.point,
                "scenario": r.cell.scenario.short(),
                "event": r.cell.event.label(),
                "ok": r.ok(),
                "reached": r.reached.is_some(),
                "seconds": r.secs,
                "violations": r.violations,
                "broken": r.broken,
                "notes": r.notes,
                "details": r.details,
            })).collect::<Vec<_>>(),
        }),
        broken: Vec::new(),
    };
    Outcome { figures, verdict }
}
