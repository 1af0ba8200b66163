//! The recorded histories: where they live, what they hold, and how they are replayed against
//! the current workflow code. How they are written: `saga_tests::record`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use temporalio_client::WorkflowHistory;
use temporalio_common::protos::constants::{LOCAL_ACTIVITY_MARKER_NAME, PATCH_MARKER_NAME};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::OrderWorkflow;

/// `tests/histories/` (written by the saga tests when recording, see `saga_tests::record`).
pub fn dir() -> PathBuf {
    saga_tests::record::histories_dir()
}

/// Every `*.json` in `dir`, sorted so that runs and messages are stable.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The history's events, as stored.
pub fn events(file: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let history: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let events = history["events"]
        .as_array()
        .with_context(|| format!("{} has no events list", file.display()))?;
    Ok(events.clone())
}

/// An event's attributes as `(kind, attributes)`, e.g.
/// `("ActivityTaskScheduledEventAttributes", {...})`.
pub fn attributes(event: &Value) -> Option<(&str, &Value)> {
    event["attributes"]
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(kind, attrs)| (kind.as_str(), attrs))
}

/// The activity types the history scheduled, in order.
pub fn scheduled_activities(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(attributes)
        .filter(|(kind, _)| *kind == "ActivityTaskScheduledEventAttributes")
        .filter_map(|(_, a)| a["activity_type"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// The activity types the history ran as local activities, in order (from their markers).
pub fn local_activities(events: &[Value]) -> Result<Vec<String>> {
    let mut types = Vec::new();
    for (kind, attrs) in events.iter().filter_map(attributes) {
        if kind != "MarkerRecordedEventAttributes"
            || attrs["marker_name"] != LOCAL_ACTIVITY_MARKER_NAME
        {
            continue;
        }
        let payload: Payload =
            serde_json::from_value(attrs["details"]["data"]["payloads"][0].clone())
                .context("a local activity marker without its data")?;
        let data: Value = serde_json::from_slice(&payload.data)?;
        types.push(
            data["activity_type"]
                .as_str()
                .context("a local activity marker without its type")?
                .to_owned(),
        );
    }
    Ok(types)
}

/// The `ctx.patched` / `ctx.deprecate_patch` markers the history recorded, as `(id, deprecated)`.
pub fn patch_markers(events: &[Value]) -> Result<Vec<(String, bool)>> {
    let mut markers = Vec::new();
    for (kind, attrs) in events.iter().filter_map(attributes) {
        if kind != "MarkerRecordedEventAttributes" || attrs["marker_name"] != PATCH_MARKER_NAME {
            continue;
        }
        let payload: Payload =
            serde_json::from_value(attrs["details"]["patch-data"]["payloads"][0].clone())
                .context("a patch marker without its payload")?;
        let data: Value = serde_json::from_slice(&payload.data)?;
        let id = data["id"]
            .as_str()
            .context("a patch marker without its id")?;
        markers.push((id.to_owned(), data["deprecated"].as_bool().unwrap_or(false)));
    }
    Ok(markers)
}

/// The keys the histories were recorded with: the development key (`make histories` runs
/// without `PAYLOAD_KEYS`). Histories recorded before the codec decode unchanged under them.
pub fn replay_keys() -> runtime::codec::PayloadKeys {
    runtime::codec::PayloadKeys::development()
}

/// One history replayed against the current `OrderWorkflow`.
#[derive(Debug)]
pub struct Replayed {
    pub file: PathBuf,
    pub events: usize,
    /// Why the current code cannot replay it (nondeterminism, a failing workflow task, ...).
    pub failure: Option<String>,
}

/// Replays each file with the SDK's `WorkflowReplayer`; no server is involved.
pub async fn replay(files: &[PathBuf]) -> Result<Vec<Replayed>> {
    let mut histories = Vec::with_capacity(files.len());
    let mut counts = Vec::with_capacity(files.len());
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let history = WorkflowHistory::from_json(&bytes)
            .with_context(|| format!("{} is not a workflow history", file.display()))?;
        histories.push(history);
        counts.push(events(file)?.len());
    }
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<OrderWorkflow>()?
        .data_converter(runtime::codec::data_converter(&replay_keys()))
        .build();
    let replayer = WorkflowReplayer::new(options)?;
    // One replay worker for all of them: it holds one workflow at a time (its cache size is
    // one), so the results come back in the order the files went in.
    let results = replayer.replay_workflows(histories).await?;
    ensure!(
        results.len() == files.len(),
        "the replayer answered {} results for {} histories",
        results.len(),
        files.len()
    );
    Ok(files
        .iter()
        .zip(counts)
        .zip(results)
        .map(|((file, events), result)| Replayed {
            file: file.clone(),
            events,
            failure: result.replay_failure.map(|f| readable(&f.to_string())),
        })
        .collect())
}

/// Core's explanation comes wrapped in a Debug-printed `Failure`; its message is the part a
/// person needs ("Activity type of scheduled event 'a' does not match ... command 'b'").
fn readable(full: &str) -> String {
    let parts = full.split_once("message: \"").and_then(|(head, rest)| {
        let (message, _) = rest.split_once("\", source")?;
        Some((head.split(':').next().unwrap_or(head).trim(), message))
    });
    match parts {
        Some((kind, message)) => format!("{kind}: {message}"),
        None => full.to_owned(),
    }
}

/// The failures, one line per file: `<file> (<n> events): <what did not match>`. Empty when
/// all replay.
pub fn failures(replayed: &[Replayed]) -> Vec<String> {
    replayed
        .iter()
        .filter_map(|r| {
            r.failure
                .as_ref()
                .map(|f| format!("{} ({} events): {f}", r.file.display(), r.events))
        })
        .collect()
}
