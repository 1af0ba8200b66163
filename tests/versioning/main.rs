//! The worked example of docs/VERSIONING.md, as a test: a change to a workflow that orders
//! already running must survive, made with `ctx.patched`, then retired, each step proven by
//! replaying real histories (recorded here, on the dev server) against the next code.
//!
//! The change: a payment gains a screening step before its charge. Five versions of a small
//! workflow of the order's shape stand for the code at each step; all run under one workflow
//! type name, as successive deploys of one workflow would:
//!
//! 1. `Before`: charge, then notify (the code orders are running on).
//! 2. `Unguarded`: screen, charge, notify (the change made naively).
//! 3. `Patched`: `if ctx.patched(SCREEN) { screen }`, charge, notify (the change made right).
//! 4. `Deprecated`: `ctx.deprecate_patch(SCREEN)`, screen, charge, notify (retirement, step 1,
//!    once no order started before the patch can still run).
//! 5. `Retired`: screen, charge, notify (retirement, step 2, once no order started under
//!    `patched` can still run).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use runtime::Settings;
use temporalio_client::{
    WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHistory, WorkflowStartOptions,
};
use temporalio_common::WorkflowDefinition;
use temporalio_common::protos::constants::PATCH_MARKER_NAME;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};
use temporalio_workflow::workflows::WorkflowImplementation;
use testkit::WorkerThread;

/// The patch's id: named after the change, never reused.
const SCREEN: &str = "screen-payments";

pub struct Steps;

#[activities]
impl Steps {
    #[activity]
    pub async fn screen(_ctx: ActivityContext, order: String) -> Result<String, ActivityError> {
        Ok(order)
    }

    #[activity]
    pub async fn charge(_ctx: ActivityContext, order: String) -> Result<String, ActivityError> {
        Ok(order)
    }

    #[activity]
    pub async fn notify(_ctx: ActivityContext, order: String) -> Result<String, ActivityError> {
        Ok(order)
    }
}

fn options() -> ActivityOptions {
    ActivityOptions::start_to_close_timeout(Duration::from_secs(10))
}

async fn screen<W>(ctx: &WorkflowContext<W>, order: &str) -> WorkflowResult<()> {
    ctx.execute_activity(Steps::screen, order.to_owned(), options())
        .await?;
    Ok(())
}

/// Charge, then notify: what every version does after its own start.
async fn charge_and_notify<W>(ctx: &WorkflowContext<W>, order: String) -> WorkflowResult<String> {
    let charged = ctx
        .execute_activity(Steps::charge, order, options())
        .await?;
    Ok(ctx
        .execute_activity(Steps::notify, charged, options())
        .await?)
}

#[workflow]
#[derive(Default)]
pub struct Before;

#[workflow_methods]
impl Before {
    #[run(name = "PatchExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        charge_and_notify(ctx, order).await
    }
}

#[workflow]
#[derive(Default)]
pub struct Unguarded;

#[workflow_methods]
impl Unguarded {
    #[run(name = "PatchExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        screen(ctx, &order).await?;
        charge_and_notify(ctx, order).await
    }
}

#[workflow]
#[derive(Default)]
pub struct Patched;

#[workflow_methods]
impl Patched {
    #[run(name = "PatchExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        // New runs record the marker and screen; runs without it in their history replay as
        // they were written, without the screening.
        if ctx.patched(SCREEN) {
            screen(ctx, &order).await?;
        }
        charge_and_notify(ctx, order).await
    }
}

#[workflow]
#[derive(Default)]
pub struct Deprecated;

#[workflow_methods]
impl Deprecated {
    #[run(name = "PatchExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        ctx.deprecate_patch(SCREEN);
        screen(ctx, &order).await?;
        charge_and_notify(ctx, order).await
    }
}

#[workflow]
#[derive(Default)]
pub struct Retired;

#[workflow_methods]
impl Retired {
    #[run(name = "PatchExample")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        screen(ctx, &order).await?;
        charge_and_notify(ctx, order).await
    }
}

/// Runs one order on version `W` (on a worker and task queue of its own) and returns its
/// history as JSON, as `make histories` records an order's.
async fn record<W>() -> Result<Vec<u8>>
where
    W: WorkflowImplementation,
    <W::Run as WorkflowDefinition>::Input: Send,
{
    let settings = Settings::from_env()?;
    let queue = format!("patch-example-{}", uuid::Uuid::new_v4().simple());
    let build_settings = settings.clone();
    let build_queue = queue.clone();
    let (_worker, ()) = WorkerThread::spawn(queue.clone(), move || async move {
        let client = runtime::connect_temporal(&build_settings).await?;
        let rt = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
        let options = temporalio_sdk::WorkerOptions::new(&build_queue)
            .register_workflow::<W>()?
            .register_activities(Steps)
            .build();
        Ok((temporalio_sdk::Worker::new(&rt, client, options)?, rt, ()))
    })?;
    let client = runtime::connect_temporal(&settings).await?;
    let id = format!("patch-example-{}", uuid::Uuid::new_v4().simple());
    let handle = client
        .start_workflow(
            Before::run,
            "ord-example".to_owned(),
            WorkflowStartOptions::new(queue, id).build(),
        )
        .await?;
    tokio::time::timeout(
        Duration::from_secs(60),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .context("the example order did not finish in 60 s")??;
    Ok(handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?)
}

/// Replays a recorded history against version `W`: `None` if it replays, else why not.
async fn replay<W>(history: &[u8]) -> Result<Option<String>>
where
    W: WorkflowImplementation,
    <W::Run as WorkflowDefinition>::Input: Send,
{
    // The histories were recorded through a client with the payload codec (CONTRACT §8): the
    // replayer decodes them with the same keys.
    let keys = Settings::from_env()?.payload_keys;
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<W>()?
        .data_converter(runtime::codec::data_converter(&keys))
        .build();
    let mut results = WorkflowReplayer::new(options)?
        .replay_workflows(vec![WorkflowHistory::from_json(history)?])
        .await?;
    let result = results.pop().context("no replay result")?;
    Ok(result.replay_failure.map(|f| f.to_string()))
}

#[tokio::test]
async fn a_change_made_with_patched_and_retired_replays_every_order() -> Result<()> {
    runtime::init_tracing();
    // The orders in flight when the change is deployed.
    let before = record::<Before>().await?;

    // The change made naively strands them: their history has no screening.
    let stranded = replay::<Unguarded>(&before).await?;
    ensure!(
        stranded
            .as_deref()
            .is_some_and(|f| f.contains("nondeterministic") || f.contains("Nondeterminism")),
        "the unguarded change should fail to replay an order started before it: {stranded:?}"
    );
    // Made with `patched`, it replays them, and new orders take the new path.
    ensure!(replay::<Patched>(&before).await?.is_none());
    let patched = record::<Patched>().await?;
    ensure!(replay::<Patched>(&patched).await?.is_none());
    ensure!(
        String::from_utf8_lossy(&patched).contains(PATCH_MARKER_NAME)
            && !String::from_utf8_lossy(&before).contains(PATCH_MARKER_NAME),
        "a new order records the patch's marker"
    );

    // Retirement, step 1: once no order started before the patch runs, `deprecate_patch`.
    // Orders started under `patched` still replay; those before it no longer do, by design.
    ensure!(replay::<Deprecated>(&patched).await?.is_none());
    ensure!(replay::<Deprecated>(&before).await?.is_some());
    let deprecated = record::<Deprecated>().await?;
    ensure!(replay::<Deprecated>(&deprecated).await?.is_none());

    // Step 2: once no order started under `patched` runs, the call goes. Deprecated markers
    // replay without it; the markers `patched` wrote do not.
    ensure!(replay::<Retired>(&deprecated).await?.is_none());
    let leftover = replay::<Retired>(&patched).await?;
    ensure!(
        leftover.is_some(),
        "an order started under `patched` should not replay once the call is gone"
    );
    Ok(())
}
