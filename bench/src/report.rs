//! What a bench run reports: results.json, chart.png, the tables, and its verdict.
use anyhow::{Result, bail};
use serde_json::json;

use crate::args::Args;
use crate::runs::{Ctx, Kind, Run, order_shape};
use crate::{chart, procs};

/// Writes results.json and chart.png and prints the table.
pub(crate) fn report(
    ctx: &Ctx,
    args: &Args,
    runs: &[Run],
    scale: &[Run],
    unfinished: &[String],
    check: &starter::check::CheckReport,
) -> Result<()> {
    let machine = procs::machine();
    let report = json!({
        "machine": machine,
        "orders_per_run": args.orders,
        "order_shape": order_shape(&ctx.settings),
        "floor_task_queue": ctx.floor_task_queue,
        "step_mode": if ctx.settings.remote_steps { "remote" } else { "local" },
        "runs": runs,
        "scale_out": scale,
        "invariants": { "ok": check.ok, "violations": check.violations, "checked": check.checked },
        "unfinished_orders": unfinished,
    });
    let json_path = args.out_dir.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)?;
    let png_path = args.out_dir.join("chart.png");
    if let Err(e) = chart::draw(&png_path, runs, scale) {
        eprintln!("warning: no chart: {e:#}");
    }
    print_table(runs);
    print_scale(scale);
    println!();
    println!(
        "results: {}  chart: {}",
        json_path.display(),
        png_path.display()
    );
    Ok(())
}

/// Fails on an invariant violation, and on any failed or unfinished order: figures of runs
/// where orders failed measure something else.
pub(crate) fn verdict(
    runs: &[&Run],
    unfinished: &[String],
    check: &starter::check::CheckReport,
) -> Result<()> {
    if !check.ok {
        for v in &check.violations {
            eprintln!("violation: {v}");
        }
        bail!("{} invariant violation(s)", check.violations.len());
    }
    println!(
        "invariants: ok ({} rules over {} orders)",
        check.checked["rules"], check.checked["orders"]
    );
    let failed: usize = runs
        .iter()
        .map(|r| r.orders - r.completed + r.warmup_failed)
        .sum();
    for id in unfinished {
        eprintln!(
            "unfinished: order {id} did not end COMPLETED and delivered to the data platform"
        );
    }
    if failed > 0 || !unfinished.is_empty() {
        bail!(
            "{failed} order(s) failed, {} completed order(s) never finished",
            unfinished.len()
        );
    }
    Ok(())
}

pub(crate) fn print_table(runs: &[Run]) {
    println!();
    println!(
        "{:<18} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "kind",
        "c",
        "orders/s",
        "vs floor",
        "place50",
        "place99",
        "pay50",
        "pay99",
        "e2e99",
        "events",
        "db ops",
        "cpu tmp",
        "cpu wrk",
        "cpu pg",
        "cpu api",
        "cpu bch"
    );
    for r in runs {
        let floor = runs
            .iter()
            .find(|f| f.kind == Kind::Floor && f.concurrency == r.concurrency);
        let ratio = floor.map_or("-".to_owned(), |f| {
            format!("{:.2}x", r.throughput / f.throughput)
        });
        let cpu = |k: &str| {
            r.cpu_seconds_per_order
                .get(k)
                .map_or("-".to_owned(), |v| format!("{:.1}ms", v * 1000.0))
        };
        println!(
            "{:<18} {:>4} {:>9.1} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            r.kind.label(),
            r.concurrency,
            r.throughput,
            ratio,
            r.placement_ms.p50,
            r.placement_ms.p99,
            r.payment_ms.p50,
            r.payment_ms.p99,
            r.end_to_end_ms.p99,
            r.history_events_per_order
                .map_or("-".to_owned(), |e| format!("{e:.0}")),
            match r.persistence_requests_per_order.values().sum::<f64>() {
                0.0 => "-".to_owned(),
                n => format!("{n:.1}"),
            },
            cpu("temporal"),
            cpu("worker"),
            cpu("postgres"),
            cpu("api"),
            cpu("bench"),
        );
    }
    // The targets of the performance issue, against the like-for-like floor.
    println!();
    for r in runs.iter().filter(|r| r.kind != Kind::Floor) {
        let Some(f) = runs
            .iter()
            .find(|f| f.kind == Kind::Floor && f.concurrency == r.concurrency)
        else {
            continue;
        };
        println!(
            "{:<18} c={:<3} throughput {:.2}x floor, placement p50 {:.2}x, payment p50 {:.2}x",
            r.kind.label(),
            r.concurrency,
            r.throughput / f.throughput,
            r.placement_ms.p50 / f.placement_ms.p50,
            r.payment_ms.p50 / f.payment_ms.p50,
        );
    }
}

/// The scale-out runs, one line per setup.
pub(crate) fn print_scale(scale: &[Run]) {
    if scale.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:>4} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "scale-out (client)",
        "c",
        "orders/s",
        "place50",
        "place99",
        "pay50",
        "pay99",
        "cpu tmp",
        "cpu wrk",
        "cpu pg",
        "cpu all",
        "lock hold"
    );
    for r in scale {
        let cpu = |k: &str| r.cpu_seconds_per_order.get(k).copied().unwrap_or(0.0) * 1000.0;
        let all: f64 = r.cpu_seconds_per_order.values().sum::<f64>() * 1000.0;
        println!(
            "{:<24} {:>4} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>7.1}ms {:>9}",
            r.setup.as_deref().unwrap_or("-"),
            r.concurrency,
            r.throughput,
            r.placement_ms.p50,
            r.placement_ms.p99,
            r.payment_ms.p50,
            r.payment_ms.p99,
            cpu("temporal"),
            cpu("worker"),
            cpu("postgres"),
            all,
            r.lock_hold_ms
                .map_or("-".to_owned(), |ms| format!("{ms:.2}ms")),
        );
    }
}
