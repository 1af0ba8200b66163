//! The stack a scenario runs on. [`Stack`] is the run's private Temporal dev server and
//! PostgreSQL; [`Env`] is one scenario's own database, task queue and data-platform receiver
//! (`testkit`'s), worker process and API process on top of it, and the CONTRACT §6 check that
//! ends it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use runtime::Settings;
use serde_json::{Value, json};
use sqlx::PgPool;
use temporalio_client::Client;
use testkit::db::Database;
use testkit::{Api, Receiver, check};
use tokio::task::JoinHandle;

use crate::infra::{self, Paths, PgCluster, Postgres, Proc, TemporalServer};

/// The run's private Temporal dev server and PostgreSQL.
pub struct Stack {
    pub paths: Paths,
    pub temporal: TemporalServer,
    pub pg: Postgres,
    pub secret: String,
    pub quick: bool,
    pub seed: u64,
}

impl Stack {
    pub async fn start(paths: Paths, quick: bool, seed: u64) -> Result<Self> {
        std::fs::create_dir_all(paths.logs())?;
        for killed in infra::kill_leftovers(&paths) {
            eprintln!("chaos: killed a leftover of an earlier run: {killed}");
        }
        for bin in ["worker", "starter"] {
            if !paths.bin(bin).exists() {
                bail!(
                    "{} is missing: build it first (scripts/chaos.sh does)",
                    paths.bin(bin).display()
                );
            }
        }
        let mut temporal = TemporalServer::new(&paths)?;
        temporal.start().await?;
        eprintln!(
            "chaos: private Temporal dev server at {} (SQLite {})",
            temporal.address(),
            paths.dir.join("temporal.db").display()
        );
        let pg = match PgCluster::create(&paths).and_then(|mut c| c.start().map(|()| c)) {
            Ok(c) => Postgres::Private(c),
            Err(e) => {
                let url = std::env::var("DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/orders".into());
                eprintln!(
                    "chaos: WARNING: no private PostgreSQL cluster ({e:#}).\n\
                     chaos: WARNING: falling back to the machine's PostgreSQL at DATABASE_URL \
                     with databases of its own (chaos_*); the PostgreSQL restart scenario is \
                     SKIPPED, because it would restart a server others use."
                );
                Postgres::Shared { url }
            }
        };
        eprintln!("chaos: PostgreSQL: {}", pg.describe());
        Ok(Self {
            paths,
            temporal,
            pg,
            // A secret of this run's own: tokens minted for the shared stack mean nothing here.
            secret: format!("chaos-{}", uuid::Uuid::new_v4().simple()),
            quick,
            seed,
        })
    }

    /// A client of the private Temporal server.
    pub async fn client(&self) -> Result<Client> {
        let settings = Settings {
            temporal_address: self.temporal.address(),
            ..Settings::from_lookup(|_| None)?
        };
        Ok(runtime::connect_temporal(&settings).await?)
    }
}

/// What the CONTRACT §6 check found at the end of a scenario.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    /// Expectations not met that are not CONTRACT §6 violations (the worker died, say).
    pub broken: Vec<String>,
    /// Worth knowing, not a failure.
    pub notes: Vec<String>,
    pub checked: Value,
}

/// One scenario's stack.
pub struct Env {
    pub name: String,
    pub db: PgPool,
    pub settings: Settings,
    pub client: Client,
    pub receiver: Receiver,
    pub api: Api,
    paths: Paths,
    launcher: Launcher,
    worker: Arc<Mutex<Option<Watched>>>,
    deaths: Arc<Mutex<Vec<String>>>,
    aborts: Arc<Mutex<Vec<String>>>,
    supervisor: JoinHandle<()>,
    api_proc: Option<Proc>,
    pub worker_log: PathBuf,
    pub api_log: PathBuf,
}

/// The worker as its supervisor sees it: the process, and where its log stood when it started.
struct Watched {
    proc: Proc,
    log_from: u64,
}

/// Which worker binary a scenario runs, and what it gets beyond the scenario's settings.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub bin: PathBuf,
    /// For the worker alone (the crash-point matrix's `CRASH_FILE`), not for the API.
    pub env: Vec<(String, String)>,
}

impl WorkerSpec {
    /// The worker built beside this binary, as `make up` runs it.
    fn standard(paths: &Paths) -> Self {
        Self {
            bin: paths.bin("worker"),
            env: Vec::new(),
        }
    }
}

/// What a worker logs when it aborts at a crash point on purpose (the `crashpoints` crate).
pub const CRASH_MARK: &str = "crashpoints: aborting at";

/// What starts a child process with this scenario's settings.
#[derive(Clone)]
struct Launcher {
    paths: Paths,
    child_env: Vec<(String, String)>,
    name: String,
    worker_log: PathBuf,
    worker: WorkerSpec,
}

impl Launcher {
    fn command(&self, bin: &str) -> Command {
        self.command_of(&self.paths.bin(bin))
    }

    fn command_of(&self, program: &PathBuf) -> Command {
        let mut cmd = Command::new(program);
        // Only what this run sets: nothing of the shared stack's settings (nor any TLS or API
        // key of a real cluster) leaks in.
        cmd.env_clear();
        for keep in ["PATH", "HOME", "LANG"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.envs(self.child_env.iter().map(|(k, v)| (k, v)));
        cmd.current_dir(&self.paths.root);
        cmd
    }

    fn spawn_worker(&self) -> Result<Watched> {
        let log_from = std::fs::metadata(&self.worker_log).map_or(0, |m| m.len());
        let mut cmd = self.command_of(&self.worker.bin);
        cmd.envs(self.worker.env.iter().map(|(k, v)| (k, v)));
        let proc = Proc::spawn(
            &format!("{}-worker", self.name),
            cmd,
            &self.worker_log,
            &self.paths.pids(),
        )?;
        Ok(Watched { proc, log_from })
    }
}

/// What the worker logged since `from`.
fn log_since(log: &PathBuf, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned()
}

/// Why the worker died, from what it logged since `from`: its panic, if it had one.
fn cause_of_death(log: &PathBuf, from: u64) -> String {
    let text = log_since(log, from);
    let lines: Vec<&str> = text.lines().collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(i) => format!(
            "{} {}",
            lines[i].trim(),
            lines.get(i + 1).map_or("", |l| l.trim())
        ),
        None => "no panic in its log".to_owned(),
    }
}

/// The known way the worker dies: a debug assertion inside the Temporal SDK (`dbg_panic!`)
/// that a debug build hits when the server restarts while it holds workflow tasks. Release
/// builds log it as an error and go on.
pub const SDK_DEBUG_ASSERTION: &str = "Trying to send a new WFT for a run which already has one";

/// The scenarios whose API runs with `RATE_LIMIT=off` (see [`Env::new`]).
const UNLIMITED_SCENARIOS: [&str; 4] = [
    "3-temporal-restart",
    "4-pg-restart",
    "6-hostile-input",
    "7-auth-attacks",
];

impl Env {
    /// A fresh database, task queue and receiver, then the worker and the API as child
    /// processes with CONTRACT §3's settings pointing at them.
    pub async fn new(stack: &Stack, name: &str, payment_timeout: Duration) -> Result<Self> {
        Self::with_worker(
            stack,
            name,
            payment_timeout,
            WorkerSpec::standard(&stack.paths),
        )
        .await
    }

    /// [`new`](Self::new), running `worker` instead of the standard worker binary.
    pub async fn with_worker(
        stack: &Stack,
        name: &str,
        payment_timeout: Duration,
        worker: WorkerSpec,
    ) -> Result<Self> {
        let db_name = format!("chaos_{}", name.replace('-', "_"));
        // Kept after the run, to be looked at; the next run starts it afresh.
        let Database { pool: db, url, .. } =
            Database::fresh(&stack.pg.url("postgres"), &db_name).await?;

        let receiver = Receiver::start().await?;
        let http_addr = format!("127.0.0.1:{}", infra::free_port()?);
        let child_env = child_env(stack, name, url, &receiver, &http_addr, payment_timeout)?;
        // The settings the children read, as they read them (so a setting added later gets
        // its default here too).
        let settings = Settings::from_lookup(|k| {
            child_env
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.clone())
        })?;
        let logs = stack.paths.logs();
        let client = stack.client().await?;
        let mut env = Self {
            name: name.to_owned(),
            db,
            api: Api::new(format!("http://{http_addr}"), &stack.secret)?,
            settings,
            client,
            receiver,
            paths: stack.paths.clone(),
            launcher: Launcher {
                paths: stack.paths.clone(),
                child_env,
                name: name.to_owned(),
                worker_log: logs.join(format!("{name}-worker.log")),
                worker,
            },
            worker: Arc::new(Mutex::new(None)),
            deaths: Arc::new(Mutex::new(Vec::new())),
            aborts: Arc::new(Mutex::new(Vec::new())),
            supervisor: tokio::spawn(async {}),
            api_proc: None,
            worker_log: logs.join(format!("{name}-worker.log")),
            api_log: logs.join(format!("{name}-api.log")),
        };
        for log in [&env.worker_log, &env.api_log] {
            let _ = std::fs::remove_file(log);
        }
        env.supervisor = tokio::spawn(supervise(
            env.launcher.clone(),
            env.worker.clone(),
            env.deaths.clone(),
            env.aborts.clone(),
        ));
        env.start_worker().await?;
        env.start_api().await?;
        Ok(env)
    }

    fn command(&self, bin: &str) -> Command {
        self.launcher.command(bin)
    }

    fn slot(&self) -> MutexGuard<'_, Option<Watched>> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn start_worker(&mut self) -> Result<()> {
        let watched = self.launcher.spawn_worker()?;
        *self.slot() = Some(watched);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !self.worker_alive() {
            bail!(
                "the worker exited at start (log: {})",
                self.worker_log.display()
            );
        }
        Ok(())
    }

    pub fn worker_alive(&mut self) -> bool {
        self.slot().as_mut().is_some_and(|w| w.proc.alive())
    }

    /// `kill -9` the worker (on purpose: its supervisor leaves it dead).
    pub fn kill_worker(&mut self) {
        if let Some(mut w) = self.slot().take() {
            w.proc.kill9();
        }
    }

    /// The worker's deaths that nobody asked for, each with its cause.
    pub fn worker_deaths(&self) -> Vec<String> {
        self.deaths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The worker's aborts at a crash point (the line it logged), oldest first. The supervisor
    /// leaves such a worker dead: whoever armed the point starts it again when it chooses.
    pub fn aborts(&self) -> Vec<String> {
        self.aborts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn start_api(&mut self) -> Result<()> {
        let mut cmd = self.command("starter");
        cmd.arg("serve");
        self.api_proc = Some(Proc::spawn(
            &format!("{}-api", self.name),
            cmd,
            &self.api_log,
            &self.paths.pids(),
        )?);
        self.api
            .wait_healthy(Duration::from_secs(30))
            .await
            .with_context(|| format!("API log: {}", self.api_log.display()))
    }

    pub fn api_alive(&mut self) -> bool {
        self.api_proc.as_mut().is_some_and(Proc::alive)
    }

    /// Lines of the API's log that contain `needle`.
    pub fn api_log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.api_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub async fn order_statuses(&self) -> Result<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM orders")
            .fetch_all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sql).fetch_one(&self.db).await?)
    }

    /// Waits until every order's workflow has closed, then checks CONTRACT §6: the SQL rules
    /// and the workflows (`starter check`), every `COMPLETED` order notified, and the data
    /// platform's events exactly the `COMPLETED` orders, each under its own key. Then stops the
    /// worker and the API.
    pub async fn finish(mut self, patience: Duration) -> Result<Verdict> {
        let mut violations = Vec::new();
        let ids = check::order_ids(&self.db).await?;
        let hung = check::unclosed_workflows(&self.client, &ids, patience).await;
        violations.extend(hung.iter().map(|id| {
            format!(
                "[workflow_closes] order {id}'s workflow still runs {} s after the scenario",
                patience.as_secs()
            )
        }));

        let report = starter::check::run(&self.db, Some(&self.client)).await?;
        violations.extend(report.violations);
        violations.extend(store::invariants::check_notified(&self.db).await?);
        let (wrong, delivered) =
            check::deliveries(&self.db, self.receiver.state.deliveries()).await?;
        violations.extend(wrong);

        if !self.api_alive() {
            violations.push(format!(
                "[api_alive] the API process died (log: {})",
                self.api_log.display()
            ));
        }
        let (mut broken, mut notes) = (Vec::new(), Vec::new());
        for death in self.worker_deaths() {
            // The chaos binary is built with the same profile as the worker it runs.
            if death.contains(SDK_DEBUG_ASSERTION) && cfg!(debug_assertions) {
                notes.push(format!(
                    "the worker (a debug build) died on a debug assertion of the Temporal SDK \
                     and was started again, as a supervisor would; release builds log it as an \
                     error and go on: {death}"
                ));
            } else {
                broken.push(format!("the worker died: {death}"));
            }
        }
        let mut checked = report.checked;
        checked["orders"] = json!(ids.len());
        checked["deliveries"] = json!(delivered);
        self.stop().await;
        Ok(Verdict {
            violations,
            broken,
            notes,
            checked,
        })
    }

    async fn stop(&mut self) {
        if let Some(mut p) = self.api_proc.take() {
            p.terminate_async(Duration::from_secs(5)).await;
        }
        self.supervisor.abort();
        let worker = self.slot().take();
        if let Some(mut w) = worker {
            w.proc.terminate_async(Duration::from_secs(5)).await;
        }
        self.receiver.stop().await;
        self.db.close().await;
    }
}

impl Drop for Env {
    /// An Env dropped on an error: its supervisor must not keep the worker alive (or start it
    /// again) after it; the process guards then kill the worker and the API.
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// A fingerprint of every table of the database: row counts and a hash of every row, so that
/// "nothing changed" can be checked after hostile requests.
pub async fn fingerprint(db: &PgPool) -> Result<BTreeMap<String, String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(db)
    .await?;
    let mut out = BTreeMap::new();
    for t in tables {
        let (n, hash): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))) \
             FROM \"{t}\" x"
        ))
        .fetch_one(db)
        .await?;
        out.insert(t, format!("{n} rows, {}", hash.unwrap_or_default()));
    }
    Ok(out)
}

/// What changed between two fingerprints, table by table.
pub fn fingerprint_diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut diff = Vec::new();
    for (t, b) in before {
        match after.get(t) {
            Some(a) if a == b => {}
            Some(a) => diff.push(format!("table {t} changed: {b} -> {a}")),
            None => diff.push(format!("table {t} disappeared")),
        }
    }
    for t in after.keys().filter(|t| !before.contains_key(*t)) {
        diff.push(format!("table {t} appeared"));
    }
    diff
}

/// CONTRACT §3's settings for a scenario's worker and API, pointing at its own database, task
/// queue, receiver and ports.
fn child_env(
    stack: &Stack,
    name: &str,
    database_url: String,
    receiver: &Receiver,
    http_addr: &str,
    payment_timeout: Duration,
) -> Result<Vec<(String, String)>> {
    let task_queue = format!(
        "chaos-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut child_env: Vec<(String, String)> = vec![
        ("TEMPORAL_ADDRESS".into(), stack.temporal.address()),
        ("TEMPORAL_NAMESPACE".into(), "default".into()),
        ("TASK_QUEUE".into(), task_queue),
        ("DATABASE_URL".into(), database_url),
        ("HTTP_ADDR".into(), http_addr.to_owned()),
        ("DATA_PLATFORM_URL".into(), receiver.url.clone()),
        (
            "PAYMENT_TIMEOUT".into(),
            format!("{}ms", payment_timeout.as_millis()),
        ),
        ("AUTH_SECRET".into(), stack.secret.clone()),
        (
            "WORKER_METRICS_ADDR".into(),
            format!("127.0.0.1:{}", infra::free_port()?),
        ),
        (
            "API_METRICS_ADDR".into(),
            format!("127.0.0.1:{}", infra::free_port()?),
        ),
        (
            "RUST_LOG".into(),
            std::env::var("CHAOS_CHILD_LOG")
                .unwrap_or_else(|_| "info,temporalio_sdk_core=warn,sqlx=warn".into()),
        ),
    ];
    // The scenarios that flood one user on purpose (generated and forged requests, rounds
    // of requests through an outage) run without RATE_LIMIT, as CONTRACT §3 allows; the
    // others keep its default, as a shop would.
    if UNLIMITED_SCENARIOS.contains(&name) {
        child_env.push(("RATE_LIMIT".into(), "off".into()));
    }
    // Settings worth comparing runs by pass through (STEP_MODE=remote: every database
    // step an ordinary activity).
    for pass in ["STEP_MODE"] {
        if let Ok(v) = std::env::var(pass) {
            child_env.push((pass.to_owned(), v));
        }
    }
    Ok(child_env)
}

/// Watches the worker as a process supervisor would (systemd, Docker's restart policy): when
/// it dies without being told to, its death and cause are recorded and it is started again.
async fn supervise(
    launcher: Launcher,
    worker: Arc<Mutex<Option<Watched>>>,
    deaths: Arc<Mutex<Vec<String>>>,
    aborts: Arc<Mutex<Vec<String>>>,
) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut slot = worker.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = slot.as_mut() else { continue };
        let Some(status) = w.proc.exited() else {
            continue;
        };
        // An abort at an armed crash point is the fault a scenario asked for, not a death:
        // recorded apart, and left to the scenario to start the worker again.
        let log = log_since(&launcher.worker_log, w.log_from);
        if let Some(line) = log.lines().find(|l| l.contains(CRASH_MARK)) {
            aborts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.trim().to_owned());
            *slot = None;
            continue;
        }
        let cause = cause_of_death(&launcher.worker_log, w.log_from);
        eprintln!("chaos: the worker died ({status}): {cause}; starting it again");
        deaths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{status}: {cause}"));
        *slot = match launcher.spawn_worker() {
            Ok(w) => Some(w),
            Err(e) => {
                deaths
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("could not start it again: {e:#}"));
                None
            }
        };
    }
}
