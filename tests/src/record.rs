//! Recording the histories the replay test replays (`make histories`): the end-to-end tests of
//! `tests/saga` that drive one path of `OrderWorkflow` each call [`TestApp::record_history`]
//! on their order. With `RECORD_HISTORIES` set it writes the order's history to
//! `tests/histories/<path><HISTORY_SUFFIX>.json`; otherwise it does nothing, so the tests are
//! at once the paths' checks and their recorders.
//!
//! A history is stored in the form of the SDK's own `WorkflowHistory::to_json` (serde of the
//! `History` proto, pretty-printed so that a diff of a re-recording can be read). It is not the
//! protobuf JSON that `temporal workflow show --output json` prints: the SDK cannot read that
//! form back, and the replayer must read exactly what the recorder wrote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHistory,
};
use workflows::OrderWorkflow;

use crate::TestApp;

/// `tests/histories/`, next to this crate's manifest.
pub fn histories_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("histories")
}

/// Whether this run records (`RECORD_HISTORIES` set and not empty).
pub fn recording() -> bool {
    std::env::var_os("RECORD_HISTORIES").is_some_and(|v| !v.is_empty())
}

impl TestApp {
    /// When recording, waits until the order's workflow has closed (in any way: a cancelled
    /// workflow is a path too) and writes its history under `path`. Otherwise does nothing.
    pub async fn record_history(&self, order_id: &str, path: &str) -> Result<()> {
        if !recording() {
            return Ok(());
        }
        let handle = self.client.get_workflow_handle::<OrderWorkflow>(order_id);
        let _ = tokio::time::timeout(
            Duration::from_secs(60),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .with_context(|| format!("workflow {order_id} did not close in 60 s"))?;
        let status = handle.describe(Default::default()).await?.status();
        ensure!(
            status != WorkflowExecutionStatus::Running,
            "workflow {order_id} is still running"
        );
        let json = handle
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await?;
        let suffix = std::env::var("HISTORY_SUFFIX").unwrap_or_default();
        std::fs::create_dir_all(histories_dir())?;
        let file = histories_dir().join(format!("{path}{suffix}.json"));
        let events = write(&file, &json)?;
        eprintln!("recorded {} ({events} events, {status:?})", file.display());
        Ok(())
    }
}

/// Writes a history as the SDK serialises it, pretty-printed, after checking that it reads
/// back. Returns its number of events.
fn write(file: &Path, history_json: &[u8]) -> Result<usize> {
    let value: Value = serde_json::from_slice(history_json)?;
    let pretty = serde_json::to_vec_pretty(&value)?;
    WorkflowHistory::from_json(&pretty)
        .with_context(|| format!("the history for {} does not read back", file.display()))?;
    std::fs::write(file, [pretty.as_slice(), b"\n"].concat())
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(value["events"].as_array().map_or(0, Vec::len))
}
