//! Settings from the environment, each with the contract's default (CONTRACT §3).

use std::time::Duration;

pub const DEV_AUTH_SECRET: &str = "dev-secret-change-me";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub temporal_address: String,
    pub temporal_namespace: String,
    pub task_queue: String,
    pub database_url: String,
    pub http_addr: String,
    pub data_platform_url: String,
    pub payment_timeout: Duration,
    /// `STEP_MODE`: `local` (default) runs an order's database steps as local activities,
    /// `remote` as ordinary ones (slower; each step then shows on its own in the Web UI).
    pub remote_steps: bool,
    pub auth_secret: String,
    /// False when `AUTH_SECRET` was not set and the development secret is in use.
    pub auth_secret_from_env: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("PAYMENT_TIMEOUT={value:?} is not a duration such as 3s, 90s or 15m: {reason}")]
    PaymentTimeout { value: String, reason: String },
    #[error("STEP_MODE={0:?} must be local or remote")]
    StepMode(String),
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_owned());
        let payment_timeout = match get("PAYMENT_TIMEOUT") {
            None => Duration::from_secs(15 * 60),
            Some(v) => parse_duration(&v).map_err(|reason| SettingsError::PaymentTimeout {
                value: v.clone(),
                reason,
            })?,
        };
        let remote_steps = match get("STEP_MODE").as_deref() {
            None | Some("local") => false,
            Some("remote") => true,
            Some(other) => return Err(SettingsError::StepMode(other.to_owned())),
        };
        let secret = get("AUTH_SECRET");
        Ok(Self {
            temporal_address: or("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace: or("TEMPORAL_NAMESPACE", "default"),
            task_queue: or("TASK_QUEUE", "orders"),
            database_url: or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orders"),
            http_addr: or("HTTP_ADDR", "127.0.0.1:8080"),
            data_platform_url: or("DATA_PLATFORM_URL", "http://127.0.0.1:8090/events"),
            payment_timeout,
            remote_steps,
            auth_secret_from_env: secret.is_some(),
            auth_secret: secret.unwrap_or_else(|| DEV_AUTH_SECRET.to_owned()),
        })
    }

    /// `TEMPORAL_ADDRESS` as a URL the client accepts (`host:port` gets `http://`).
    pub fn temporal_url(&self) -> String {
        if self.temporal_address.contains("://") {
            self.temporal_address.clone()
        } else {
            format!("http://{}", self.temporal_address)
        }
    }
}

/// Human-readable durations: `3s`, `90s`, `15m`, `1h 30m`. Zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_contracts() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.temporal_address, "127.0.0.1:7233");
        assert_eq!(s.temporal_url(), "http://127.0.0.1:7233");
        assert_eq!(s.task_queue, "orders");
        assert_eq!(s.payment_timeout, Duration::from_secs(900));
        assert!(!s.auth_secret_from_env);
    }

    #[test]
    fn payment_timeout_is_human_readable() {
        let s = Settings::from_lookup(|k| (k == "PAYMENT_TIMEOUT").then(|| "90s".into())).unwrap();
        assert_eq!(s.payment_timeout, Duration::from_secs(90));
        assert!(
            Settings::from_lookup(|k| (k == "PAYMENT_TIMEOUT").then(|| "soon".into())).is_err()
        );
        assert!(Settings::from_lookup(|k| (k == "PAYMENT_TIMEOUT").then(|| "0s".into())).is_err());
    }

    #[test]
    fn step_mode_is_local_unless_told_remote() {
        let with = |v: &str| Settings::from_lookup(|k| (k == "STEP_MODE").then(|| v.to_owned()));
        assert!(!Settings::from_lookup(|_| None).unwrap().remote_steps);
        assert!(!with("local").unwrap().remote_steps);
        assert!(with("remote").unwrap().remote_steps);
        assert!(with("fast").is_err());
    }
}
