//! Replay tests: every history under `tests/histories/`, recorded from real runs (`make
//! histories`), must replay against the current `OrderWorkflow` without nondeterminism. A
//! change that breaks this would strand every order in flight on that path. No server needed.

mod histories;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

#[tokio::test]
async fn every_recorded_history_replays() -> Result<()> {
    let files = histories::files(&histories::dir())?;
    ensure!(
        !files.is_empty(),
        "no histories in {}: run `make histories`",
        histories::dir().display()
    );
    let replayed = histories::replay(&files).await?;
    let failures = histories::failures(&replayed);
    ensure!(
        failures.is_empty(),
        "{} of {} recorded histories no longer replay against the current workflow code \
         (guard the change with ctx.patched, see docs/VERSIONING.md):\n{}",
        failures.len(),
        replayed.len(),
        failures.join("\n")
    );
    Ok(())
}

/// Every path of the workflow, as the recorder names its history (`STEP_MODE=local`, the
/// default), and the happy path again with `STEP_MODE=remote`.
const PATHS: [&str; 8] = [
    "happy_path_with_coupon",
    "rejected_placement",
    "insufficient_points_at_payment_then_paid",
    "compensation_after_stock_sold_out",
    "expiry",
    "cancel_by_user",
    "data_platform_outage_then_delivery",
    "workflow_cancelled_during_payment",
];
const REMOTE: &str = "happy_path_with_coupon_remote";

/// A missing file would make the replay test pass vacuously for its path; a file recorded by
/// other code (another step mode, a patch) would prove nothing about the path it claims to hold.
#[test]
fn every_path_has_its_history() -> Result<()> {
    for path in PATHS.into_iter().chain([REMOTE]) {
        let file = histories::dir().join(format!("{path}.json"));
        let events = histories::events(&file)?;
        let scheduled = histories::scheduled_activities(&events);
        let local = histories::local_activities(&events)?;
        let placed_with = if path == REMOTE {
            ensure!(local.is_empty(), "{}: {local:?}", file.display());
            scheduled.first()
        } else {
            // Only the first effect of an update (the charge, a customer's cancel) and the
            // data platform are left to the server.
            ensure!(
                scheduled.iter().all(|a| matches!(
                    a.as_str(),
                    "OrderActivities::notify_platform"
                        | "OrderActivities::charge_points"
                        | "OrderActivities::close_order"
                )),
                "{} runs database steps as ordinary activities: {scheduled:?}",
                file.display()
            );
            local.first()
        };
        ensure!(
            placed_with.is_some_and(|a| a == "OrderActivities::place_order"),
            "{} should place with place_order: scheduled {scheduled:?}, local {local:?}",
            file.display()
        );
        let markers = histories::patch_markers(&events)?;
        ensure!(
            markers.is_empty(),
            "{}: the 1.0 baseline has no patches yet, found {markers:?}",
            file.display()
        );
    }
    Ok(())
}

/// A scratch folder for histories made at test time, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("replay-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn write(&self, name: &str, history: &Value) -> Result<PathBuf> {
        let file = self.0.join(name);
        std::fs::write(&file, serde_json::to_vec_pretty(history)?)?;
        Ok(file)
    }

    fn copy(&self, recorded: &str) -> Result<PathBuf> {
        let file = self.0.join(recorded);
        std::fs::copy(histories::dir().join(recorded), &file)
            .with_context(|| format!("tests/histories/{recorded} is missing"))?;
        Ok(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(recorded: &str) -> Result<Value> {
    let file = histories::dir().join(recorded);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("tests/histories/{recorded} is missing"))?;
    Ok(serde_json::from_str(&text)?)
}

/// The replay report for the folder, as `every_recorded_history_replays` would print it.
async fn report(dir: &Path) -> Result<(Vec<histories::Replayed>, String)> {
    let replayed = histories::replay(&histories::files(dir)?).await?;
    let report = histories::failures(&replayed).join("\n");
    Ok((replayed, report))
}

/// Proves the guard: a history the current code cannot produce (here one whose charge was a
/// different activity, as a renamed or reordered activity would have recorded) fails the
/// replay, and the message names the file and the mismatch. A good history beside it still
/// passes, so the failure is pinned on the right file.
#[tokio::test]
async fn a_history_the_code_cannot_replay_fails_and_names_its_file() -> Result<()> {
    let scratch = Scratch::new()?;
    let good = scratch.copy("happy_path_with_coupon.json")?;

    let mut history = load("happy_path_with_coupon.json")?;
    let renamed = rename_first_activity(&mut history, "charge_points_renamed")?;
    let bad = scratch.write("renamed_first_check.json", &history)?;

    let (replayed, report) = report(&scratch.0).await?;
    eprintln!("as the replay test reports it:\n{report}");
    let outcome = |file: &Path| replayed.iter().find(|r| r.file == file);
    ensure!(
        outcome(&good).is_some_and(|r| r.failure.is_none()),
        "the untouched history should replay: {report}"
    );
    let failure = outcome(&bad)
        .and_then(|r| r.failure.clone())
        .with_context(|| format!("the altered history replayed: {replayed:?}"))?;
    ensure!(
        failure.contains("nondeterministic"),
        "not reported as nondeterminism: {failure}"
    );
    ensure!(
        failure.contains("charge_points_renamed") && failure.contains(&renamed),
        "the message should name both activity types: {failure}"
    );
    ensure!(
        report.contains("renamed_first_check.json") && !report.contains("happy_path_with_coupon"),
        "the report should name the bad file, and only it: {report}"
    );
    Ok(())
}

/// Renames the activity type of the first `ActivityTaskScheduled` event; returns the old name.
fn rename_first_activity(history: &mut Value, to: &str) -> Result<String> {
    let events = history["events"].as_array_mut().context("no events")?;
    let name = events
        .iter_mut()
        .find_map(|e| {
            e["attributes"]
                .get_mut("ActivityTaskScheduledEventAttributes")
                .map(|a| &mut a["activity_type"]["name"])
        })
        .context("no activity was scheduled")?;
    let old = name
        .as_str()
        .context("activity type is not a string")?
        .to_owned();
    *name = Value::String(to.to_owned());
    Ok(old)
}

/// The replay set holds both kinds of history: recorded before the payload codec (in clear)
/// and with it (`binary/encrypted`, the development key), so both keep replaying.
#[test]
fn histories_from_before_and_after_the_codec_are_kept() -> Result<()> {
    // "binary/encrypted", as the stored JSON writes metadata: base64.
    const ENCRYPTED: &str = "YmluYXJ5L2VuY3J5cHRlZA==";
    let mut kinds = (0, 0);
    for file in histories::files(&histories::dir())? {
        if std::fs::read_to_string(&file)?.contains(ENCRYPTED) {
            kinds.1 += 1;
        } else {
            kinds.0 += 1;
        }
    }
    ensure!(
        kinds.0 > 0 && kinds.1 > 0,
        "(in clear, encrypted) histories: {kinds:?}; record the codec's with \
         HISTORY_SUFFIX=_codec make histories"
    );
    Ok(())
}
