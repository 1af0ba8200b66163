//! `starter serve` refuses a weak `AUTH_SECRET` at start (CONTRACT §3): a secret given must be
//! at least 32 bytes, and the development secret is accepted only on a loopback `HTTP_ADDR`.
//! The binary itself, as an operator starts it; nothing else of the stack is needed, because
//! it refuses before it connects to anything.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// `starter serve` with only `vars` in its environment (no database or Temporal is reached:
/// both connect on first use).
fn serve(vars: &[(&str, &str)]) -> Result<Child> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_starter"));
    cmd.arg("serve")
        .env_clear()
        .env("API_METRICS_ADDR", "off")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Ok(cmd.spawn()?)
}

/// Reads the child's stderr until it ends or the API says it listens. Returns what it read
/// and whether the API got as far as listening.
fn stderr_until_listening(child: &mut Child) -> Result<(String, bool)> {
    let stderr = child.stderr.take().context("piped stderr")?;
    let mut text = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        text.push_str(&line);
        text.push('\n');
        if line.contains("HTTP API listening") {
            return Ok((text, true));
        }
    }
    Ok((text, false))
}

/// Runs `starter serve` that must refuse to start: its exit status and stderr.
fn refused(vars: &[(&str, &str)]) -> Result<String> {
    let mut child = serve(vars)?;
    let (stderr, listening) = stderr_until_listening(&mut child)?;
    if listening {
        // Ours to stop: it was started above.
        child.kill()?;
        child.wait()?;
        anyhow::bail!("`starter serve` started with {vars:?}:\n{stderr}");
    }
    let status = child.wait()?;
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert_eq!(status.code(), Some(2), "an error, not a crash: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(stderr)
}

#[test]
fn a_short_secret_is_refused_at_start() -> Result<()> {
    for secret in ["short", "dev-secret-change-me", &"x".repeat(31)] {
        let stderr = refused(&[("AUTH_SECRET", secret), ("HTTP_ADDR", "127.0.0.1:0")])?;
        assert!(stderr.contains("AUTH_SECRET"), "{stderr}");
        assert!(stderr.contains("at least 32 bytes"), "{stderr}");
        assert!(
            !stderr.contains(secret),
            "the secret is not printed: {stderr}"
        );
    }
    Ok(())
}

#[test]
fn without_a_secret_only_a_loopback_address_is_served() -> Result<()> {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let stderr = refused(&[("HTTP_ADDR", addr)])?;
        assert!(stderr.contains("AUTH_SECRET"), "{stderr}");
        assert!(stderr.contains("HTTP_ADDR"), "{stderr}");
        assert!(stderr.contains("loopback"), "{stderr}");
    }
    // On loopback the development secret is accepted, with a warning.
    let mut child = serve(&[("HTTP_ADDR", "127.0.0.1:0")])?;
    let (stderr, listening) = stderr_until_listening(&mut child)?;
    child.kill()?;
    child.wait()?;
    assert!(listening, "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("development secret"),
        "{stderr}"
    );
    // A secret of 32 bytes is served anywhere.
    let mut child = serve(&[("HTTP_ADDR", "0.0.0.0:0"), ("AUTH_SECRET", &"s".repeat(32))])?;
    let (stderr, listening) = stderr_until_listening(&mut child)?;
    child.kill()?;
    child.wait()?;
    assert!(listening, "{stderr}");
    Ok(())
}
