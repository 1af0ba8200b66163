//! `chaos`: the order saga under contention, crashes, outages and hostile input, each scenario on
//! a stack of its own (a private Temporal dev server and PostgreSQL cluster, and per scenario a
//! fresh database, task queue, worker, API and data-platform receiver), each ending with the
//! CONTRACT §6 check. Prints a table of figures; exits non-zero on any invariant violation or
//! broken expectation.
//!
//! ```sh
//! scripts/chaos.sh            # make chaos: all eight at full size (8: the whole crash matrix)
//! scripts/chaos.sh --quick    # the short form make test runs
//! target/debug/chaos --only 2,4 --seed 7
//! target/debug/chaos --only 8 --cells record_order --parallel 3
//! ```

mod cases;
mod env;
mod infra;
mod rng;
mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

use crate::env::{Stack, Verdict};
use crate::scenarios::{Figures, Outcome};

#[derive(Debug, Parser)]
#[command(
    about = "Reliability and security scenarios against a private stack, each ending with the \
             CONTRACT §6 check"
)]
struct Args {
    /// Small counts and short outages (what `make test` runs).
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios (1 to 8), e.g. `--only 2,4`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<usize>,
    /// Seed of the generated cases and plans (the same seed, the same requests).
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
    /// The repository (where `.local/` is); defaults to the one this binary was built from.
    #[arg(long)]
    root: Option<PathBuf>,
    /// After a scenario fails, keep its Temporal server and PostgreSQL this many seconds
    /// before going on, to look at its workflows (`temporal workflow show --address ...`).
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Scenario 8: cells of the crash-point matrix run at once (each waits out Temporal's
    /// workflow task timeout after its crash, so they overlap well).
    #[arg(long, default_value_t = 6)]
    parallel: usize,
    /// Scenario 8: only the cells whose label (`point × event (S1)`) contains this.
    #[arg(long)]
    cells: Option<String>,
    /// Scenario 8: also write the matrix into docs/RELIABILITY.md (between its markers).
    #[arg(long)]
    write_doc: bool,
}

impl Args {
    fn matrix(&self) -> scenarios::crash_points::Options {
        scenarios::crash_points::Options {
            parallel: self.parallel,
            cells: self.cells.clone(),
            write_doc: self.write_doc,
        }
    }
}

const NAMES: [&str; 8] = [
    "1 contention",
    "2 worker crash",
    "3 Temporal restart",
    "4 PostgreSQL restart",
    "5 data platform down",
    "6 hostile input",
    "7 auth attacks",
    "8 crash points",
];

struct Row {
    name: &'static str,
    figures: Figures,
    verdict: Verdict,
    error: Option<String>,
    secs: f64,
}

impl Row {
    fn ok(&self) -> bool {
        self.error.is_none()
            && self.figures.broken.is_empty()
            && self.verdict.broken.is_empty()
            && self.verdict.violations.is_empty()
    }
}

async fn scenario(n: usize, stack: &mut Stack, args: &Args) -> Result<Outcome> {
    match n {
        1 => scenarios::contention::run(stack).await,
        2 => scenarios::worker_crash::run(stack).await,
        3 => scenarios::temporal_restart::run(stack).await,
        4 => scenarios::pg_restart::run(stack).await,
        5 => scenarios::platform::run(stack).await,
        6 => scenarios::hostile::run(stack).await,
        7 => scenarios::auth::run(stack).await,
        _ => scenarios::crash_points::run(stack, &args.matrix()).await,
    }
}

/// A bound only a hang reaches. The full matrix is hundreds of cells, each bounded on its own.
fn limit(n: usize, quick: bool) -> Duration {
    Duration::from_secs(match (n, quick) {
        (_, true) => 300,
        (8, false) => 4 * 3600,
        _ => 1200,
    })
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

fn print_table(rows: &[Row], quick: bool, total: Duration) {
    let widths = [22, 34, 30, 52, 10];
    let head = [
        "scenario",
        "operations",
        "faults injected",
        "outcomes",
        "violations",
    ];
    let line = |cells: [&str; 5]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(widths) {
            s.push_str(&format!(" {c:<w$} |"));
        }
        s
    };
    let rule: String = {
        let mut s = String::from("|");
        for w in widths {
            s.push_str(&format!("{}|", "-".repeat(w + 2)));
        }
        s
    };
    println!();
    println!(
        "chaos{}: {} scenarios in {:.0} s",
        if quick { " --quick" } else { "" },
        rows.len(),
        total.as_secs_f64()
    );
    println!("{}", line(head));
    println!("{rule}");
    for r in rows {
        let outcome = match &r.error {
            Some(e) => format!("ERROR: {e}"),
            None if r.verdict.notes.is_empty() => r.figures.outcomes.clone(),
            None => format!("{} (notes below)", r.figures.outcomes),
        };
        let violations = format!(
            "{}{}",
            r.verdict.violations.len(),
            if r.ok() { "" } else { " FAIL" }
        );
        let name = format!("{} ({:.0} s)", r.name, r.secs);
        let cols = [
            wrap(&name, widths[0]),
            wrap(&r.figures.operations, widths[1]),
            wrap(&r.figures.faults, widths[2]),
            wrap(&outcome, widths[3]),
            vec![violations],
        ];
        let height = cols.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            let cell = |c: usize| cols[c].get(i).map_or("", String::as_str);
            println!("{}", line([cell(0), cell(1), cell(2), cell(3), cell(4)]));
        }
    }
    println!();
    for r in rows {
        for v in &r.verdict.violations {
            println!("VIOLATION [{}] {v}", r.name);
        }
        for b in r.figures.broken.iter().chain(&r.verdict.broken) {
            println!("BROKEN [{}] {b}", r.name);
        }
        for n in &r.verdict.notes {
            println!("NOTE [{}] {n}", r.name);
        }
        if let Some(e) = &r.error {
            println!("ERROR [{}] {e}", r.name);
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let root = match args.root.clone() {
        Some(r) => r,
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
    };
    let root = root.canonicalize().context("the repository root")?;
    let paths = infra::Paths::new(root)?;
    let started = Instant::now();
    let mut stack = Stack::start(paths.clone(), args.quick, args.seed).await?;
    let chosen: Vec<usize> = if args.only.is_empty() {
        (1..=NAMES.len()).collect()
    } else {
        args.only.clone()
    };
    let mut rows = Vec::new();
    for n in chosen {
        let Some(name) = NAMES.get(n.wrapping_sub(1)) else {
            anyhow::bail!("there is no scenario {n} (1 to {})", NAMES.len());
        };
        eprintln!("chaos: ==> scenario {name}");
        let t = Instant::now();
        let limit = limit(n, args.quick);
        let (figures, verdict, error) =
            match tokio::time::timeout(limit, scenario(n, &mut stack, &args)).await {
                Ok(Ok(o)) => (o.figures, o.verdict, None),
                Ok(Err(e)) => (
                    Figures::default(),
                    Verdict::default(),
                    Some(format!("{e:#}")),
                ),
                Err(_) => (
                    Figures::default(),
                    Verdict::default(),
                    Some(format!("did not finish in {} s", limit.as_secs())),
                ),
            };
        let row = Row {
            name,
            figures,
            verdict,
            error,
            secs: t.elapsed().as_secs_f64(),
        };
        eprintln!(
            "chaos: <== scenario {name}: {} in {:.0} s",
            if row.ok() { "ok" } else { "FAILED" },
            row.secs
        );
        if !row.ok() && args.hold > 0 {
            eprintln!(
                "chaos: holding for {} s: Temporal at {}, PostgreSQL {}",
                args.hold,
                stack.temporal.address(),
                stack.pg.describe()
            );
            tokio::time::sleep(Duration::from_secs(args.hold)).await;
        }
        rows.push(row);
    }
    let total = started.elapsed();
    print_table(&rows, args.quick, total);
    let report = json!({
        "quick": args.quick,
        "seed": args.seed,
        "seconds": total.as_secs_f64(),
        "postgres": stack.pg.describe(),
        "scenarios": rows.iter().map(|r| json!({
            "scenario": r.name,
            "ok": r.ok(),
            "seconds": r.secs,
            "operations": r.figures.operations,
            "faults": r.figures.faults,
            "outcomes": r.figures.outcomes,
            "figures": r.figures.details,
            "violations": r.verdict.violations,
            "checked": r.verdict.checked,
            "broken": r.figures.broken.iter().chain(&r.verdict.broken).collect::<Vec<_>>(),
            "notes": r.verdict.notes,
            "error": r.error,
        })).collect::<Vec<_>>(),
    });
    let file = paths.dir.join(if args.quick {
        "report-quick.json"
    } else {
        "report.json"
    });
    std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
    let violations: usize = rows.iter().map(|r| r.verdict.violations.len()).sum();
    let failed = rows.iter().filter(|r| !r.ok()).count();
    println!(
        "violations found: {violations}; scenarios failed: {failed} of {}; report: {}",
        rows.len(),
        file.display()
    );
    drop(stack);
    Ok(failed == 0)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Ctrl-C or SIGTERM: leave the run, so that every guard stops what it started.
    let outcome = runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    });
    // In-flight tasks may still hold clients; do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
