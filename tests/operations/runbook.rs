//! docs/OPERATIONS.md, run: every command of every runbook block (`<!-- runbook: NAME -->`
//! then a `sh` block), exactly as written, by `bash`, in the situation it is written for, with
//! the stack's settings in the environment and `starter` and `temporal` on the `PATH`. A
//! command must exit 0, or 1 where its comment says `exits 1`. Every block must be run.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use domain::OrderStatus;
use saga_tests::{TestApp, spawn_app_with};

use crate::cli;

/// The runbook's blocks: name and commands.
fn blocks() -> Result<Vec<(String, Vec<String>)>> {
    let text = std::fs::read_to_string(cli::root().join("docs/OPERATIONS.md"))?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("<!-- runbook: ") else {
            continue;
        };
        let name = name.trim_end_matches("-->").trim().to_owned();
        ensure!(
            lines.next() == Some("```sh"),
            "runbook {name}: no sh block after its marker"
        );
        let commands = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        out.push((name, commands));
    }
    Ok(out)
}

struct Runbook {
    blocks: Vec<(String, Vec<String>)>,
    ran: BTreeSet<String>,
    path: String,
}

impl Runbook {
    fn new() -> Result<Self> {
        let mut dirs = vec![
            cli::starter_path()?
                .parent()
                .context("bin dir")?
                .to_path_buf(),
        ];
        if let Some(dir) = cli::temporal_bin().parent().filter(|d| d.is_absolute()) {
            dirs.push(dir.to_path_buf());
        }
        let path = std::env::join_paths(dirs.into_iter().chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))?;
        Ok(Self {
            blocks: blocks()?,
            ran: BTreeSet::new(),
            path: path.to_string_lossy().into_owned(),
        })
    }

    /// Runs the block `name` for `order` (and `activity`).
    fn run(&mut self, app: &TestApp, name: &str, order: &str, activity: &str) -> Result<()> {
        let (_, commands) = self
            .blocks
            .iter()
            .find(|(n, _)| n == name)
            .with_context(|| format!("docs/OPERATIONS.md has no runbook block {name}"))?;
        let s = &app.settings;
        let address = s.temporal_address.trim_start_matches("http://");
        for command in commands {
            let out = Command::new("bash")
                .args(["-c", command])
                .current_dir(cli::root())
                .env("PATH", &self.path)
                .env("ORDER_ID", order)
                .env("ACTIVITY_ID", activity)
                .env("TEMPORAL_ADDRESS", address)
                .env("TEMPORAL_NAMESPACE", &s.temporal_namespace)
                .env("DATABASE_URL", &s.database_url)
                .env("TASK_QUEUE", &s.task_queue)
                .env("DATA_PLATFORM_URL", &s.data_platform_url)
                .env("RECONCILE_SCHEDULE_ID", schedule_id(app))
                .output()?;
            let expected = if command.contains("exits 1") { 1 } else { 0 };
            ensure!(
                out.status.code() == Some(expected),
                "runbook {name}: `{command}` exited {} (expected {expected}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.ran.insert(name.to_owned());
        Ok(())
    }

    fn all_ran(&self) -> Result<()> {
        let all: BTreeSet<String> = self.blocks.iter().map(|(n, _)| n.clone()).collect();
        ensure!(
            all == self.ran,
            "runbook blocks not run: {:?}",
            all.difference(&self.ran)
        );
        Ok(())
    }
}

/// The test's own reconciliation schedule, not the stack's.
fn schedule_id(app: &TestApp) -> String {
    format!("reconcile-{}", app.settings.task_queue)
}

/// The pending `notify_platform` activity's id, once it has failed.
async fn stuck_delivery(app: &TestApp, order: &str) -> Result<String> {
    for _ in 0..300 {
        if let Some(a) = cli::pending_delivery(&app.settings, order)?
            && a["attempt"].as_i64().unwrap_or(0) > 1
        {
            return Ok(a["activityId"].as_str().unwrap_or_default().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the delivery of {order} never failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runbook_command_runs_as_written() -> Result<()> {
    let mut app = spawn_app_with(Duration::from_secs(300)).await;
    let mut book = Runbook::new()?;
    let user = app.user(100_000).await;
    let product = app.product(1_000, 10).await;

    // The data platform down: pause the delivery; back: unpause it.
    app.platform.stop().await;
    let done = app.place(user, &[(product, 1)], None).await?;
    app.service.pay(&done.id, None).await?;
    let activity = stuck_delivery(&app, &done.id).await?;
    book.run(&app, "platform-down", &done.id, &activity)?;
    app.platform.resume().await?;
    book.run(&app, "platform-back", &done.id, &activity)?;
    app.result(&done.id).await?;
    book.run(&app, "postgres-back", &done.id, "")?;

    // A running order reset, then a stuck one looked at and cancelled.
    let waiting = app.place(user, &[(product, 1)], None).await?;
    book.run(&app, "bad-deploy", &waiting.id, "")?;
    book.run(&app, "stuck", &waiting.id, "")?;
    book.run(&app, "stuck-cancel", &waiting.id, "")?;
    ensure!(app.service.show(&waiting.id).await?.status == OrderStatus::Canceled);

    // Terminated while waiting: found, repaired.
    let terminated = app.place(user, &[(product, 1)], None).await?;
    let args = [
        "workflow",
        "terminate",
        "--workflow-id",
        &terminated.id,
        "--reason",
        "test",
    ];
    cli::temporal(&app.settings, &args)?;
    book.run(&app, "terminated", &terminated.id, "")?;
    let repaired = app.service.show(&terminated.id).await?;
    ensure!(
        repaired.cancel_code == Some(domain::CancelCode::Repaired),
        "{repaired:?}"
    );

    // The scheduled reconciliation: created, read, triggered, its runs listed.
    book.run(&app, "reconcile", "", "")?;
    let schedule = app.client.get_schedule_handle(schedule_id(&app));
    schedule.delete(Default::default()).await?;

    book.all_ran()?;
    app.finish().await
}
