//! Settings from the environment, each with the contract's default (CONTRACT §3).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::codec::{KeyError, PayloadKeys};

/// The secret tokens are signed with when `AUTH_SECRET` is not set: for development only, so
/// `starter serve` accepts it only on a loopback `HTTP_ADDR` (see [`Settings::check_auth_secret`]).
pub const DEV_AUTH_SECRET: &str = "dev-secret-change-me";
/// The shortest `AUTH_SECRET` accepted, in bytes: HS256's key is 256 bits.
pub const MIN_AUTH_SECRET_BYTES: usize = 32;

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
    /// `RATE_LIMIT`: requests per customer token, or `None` for `off`.
    pub rate_limit: Option<RateLimit>,
    /// `PUBLIC_URL`: the base of printed links (the storefront's sign-in link), without a
    /// trailing `/`. Default: `http://` + `HTTP_ADDR`, `0.0.0.0` shown as `127.0.0.1`.
    pub public_url: String,
    /// `PAYLOAD_KEYS` (CONTRACT §8): the keys of the payload codec; the development key when
    /// not set, none with `off`.
    pub payload_keys: PayloadKeys,
    /// How the worker polls for workflow tasks (`WORKFLOW_POLLERS`, `WORKFLOW_NONSTICKY_RATIO`).
    pub polling: Polling,
}

/// `WORKFLOW_POLLERS=N`: at most N workflow-task polls open at once (at least 2), of which
/// `WORKFLOW_NONSTICKY_RATIO` (0 < r ≤ 1) poll the task queue that new workflows' first tasks
/// go to; the rest poll the worker's own sticky queue, where a cached workflow's next tasks
/// go. The SDK's own defaults are 5 and 0.2: one poll on the shared queue. See BENCHMARKS.md
/// for what they do to the tail at concurrency 50.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polling {
    /// `None`: the SDK's own choice (5, or autoscaling where the server offers it).
    pub workflow_pollers: Option<usize>,
    pub nonsticky_ratio: f32,
}

impl Eq for Polling {}

impl Polling {
    /// This project's defaults, from the measurements in BENCHMARKS.md.
    pub const DEFAULT: Self = Self {
        workflow_pollers: None,
        nonsticky_ratio: 0.2,
    };

    fn parse(pollers: Option<String>, ratio: Option<String>) -> Result<Self, SettingsError> {
        let mut polling = Self::DEFAULT;
        if let Some(v) = pollers {
            polling.workflow_pollers = Some(
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (2..=1000).contains(n))
                    .ok_or(SettingsError::WorkflowPollers(v))?,
            );
        }
        if let Some(v) = ratio {
            polling.nonsticky_ratio = v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or(SettingsError::NonstickyRatio(v))?;
        }
        Ok(polling)
    }
}

/// `RATE_LIMIT=N/s`: each customer token (keyed by its user) may send N requests a second, in
/// bursts of up to 2N. Admin tokens are not limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
}

impl RateLimit {
    /// CONTRACT §3's default, `20/s`.
    pub const DEFAULT: Self = Self { per_second: 20 };
    /// The largest N of `N/s`.
    pub const MAX_PER_SECOND: u32 = 1_000_000;

    /// `N/s`, N from 1 to [`Self::MAX_PER_SECOND`].
    pub fn per_second(n: u32) -> Option<Self> {
        (1..=Self::MAX_PER_SECOND)
            .contains(&n)
            .then_some(Self { per_second: n })
    }

    /// Requests a second, in the long run.
    pub fn rate(self) -> u32 {
        self.per_second
    }

    /// Requests at once, from a full bucket: 2N.
    pub fn burst(self) -> u32 {
        2 * self.per_second
    }

    /// `N/s`, or `off` (`None`).
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let n = s
            .strip_suffix("/s")
            .ok_or_else(|| "not of the form N/s".to_owned())?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a whole number"))?;
        Self::per_second(n)
            .map(Some)
            .ok_or_else(|| format!("N must be from 1 to {}", Self::MAX_PER_SECOND))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("PAYMENT_TIMEOUT={value:?} is not a duration such as 3s, 90s or 15m: {reason}")]
    PaymentTimeout { value: String, reason: String },
    #[error("STEP_MODE={0:?} must be local or remote")]
    StepMode(String),
    /// The secret itself is never shown.
    #[error(
        "AUTH_SECRET is {len} bytes long; it must be at least {MIN_AUTH_SECRET_BYTES} bytes \
         (for example `openssl rand -hex 32`)"
    )]
    AuthSecretTooShort { len: usize },
    #[error(
        "AUTH_SECRET is not set: the development secret is accepted only while HTTP_ADDR is a \
         loopback address (127.0.0.0/8, ::1 or localhost), and HTTP_ADDR is {http_addr:?}; set \
         AUTH_SECRET to a secret of at least {MIN_AUTH_SECRET_BYTES} bytes \
         (for example `openssl rand -hex 32`)"
    )]
    DevSecretOffLoopback { http_addr: String },
    #[error(
        "RATE_LIMIT={value:?} must be N/s (requests a second per customer token, bursts of 2N; \
         N from 1 to 1000000, for example 20/s) or off: {reason}"
    )]
    RateLimit { value: String, reason: String },
    /// The keys themselves are never shown.
    #[error(
        "PAYLOAD_KEYS must be a comma-separated list of id:base64key (32-byte keys, the first \
         encrypting; for example `k1:$(openssl rand -base64 32)`) or off: {0}"
    )]
    PayloadKeys(#[source] KeyError),
    #[error("WORKFLOW_POLLERS={0:?} must be a whole number from 2 to 1000")]
    WorkflowPollers(String),
    #[error("WORKFLOW_NONSTICKY_RATIO={0:?} must be a number above 0 and at most 1, such as 0.2")]
    NonstickyRatio(String),
}

/// `http://` + `http_addr`, an address that listens everywhere shown as the loopback one.
fn default_public_url(http_addr: &str) -> String {
    let shown = if let Some(port) = http_addr.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = http_addr.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        http_addr.to_owned()
    };
    format!("http://{shown}")
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
        let rate_limit = match get("RATE_LIMIT") {
            None => Some(RateLimit::DEFAULT),
            Some(v) => RateLimit::parse(&v).map_err(|reason| SettingsError::RateLimit {
                value: v.clone(),
                reason,
            })?,
        };
        let payload_keys = match get("PAYLOAD_KEYS") {
            None => PayloadKeys::development(),
            Some(v) => PayloadKeys::parse(&v).map_err(SettingsError::PayloadKeys)?,
        };
        let polling = Polling::parse(get("WORKFLOW_POLLERS"), get("WORKFLOW_NONSTICKY_RATIO"))?;
        let secret = get("AUTH_SECRET");
        if let Some(len) = secret.as_ref().map(String::len)
            && len < MIN_AUTH_SECRET_BYTES
        {
            return Err(SettingsError::AuthSecretTooShort { len });
        }
        let http_addr = or("HTTP_ADDR", "127.0.0.1:8080");
        let public_url = match get("PUBLIC_URL") {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => default_public_url(&http_addr),
        };
        Ok(Self {
            temporal_address: or("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace: or("TEMPORAL_NAMESPACE", "default"),
            task_queue: or("TASK_QUEUE", "orders"),
            database_url: or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orders"),
            http_addr,
            data_platform_url: or("DATA_PLATFORM_URL", "http://127.0.0.1:8090/events"),
            payment_timeout,
            remote_steps,
            auth_secret_from_env: secret.is_some(),
            auth_secret: secret.unwrap_or_else(|| DEV_AUTH_SECRET.to_owned()),
            rate_limit,
            public_url,
            payload_keys,
            polling,
        })
    }

    /// Whether tokens may be checked with this secret on `HTTP_ADDR`: a secret given is (it
    /// is long enough, or the settings would not have been read); the development secret only
    /// while `HTTP_ADDR` is a loopback address. `starter serve` asks before it listens.
    pub fn check_auth_secret(&self) -> Result<(), SettingsError> {
        if self.auth_secret_from_env || is_loopback(&self.http_addr) {
            Ok(())
        } else {
            Err(SettingsError::DevSecretOffLoopback {
                http_addr: self.http_addr.clone(),
            })
        }
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

/// Whether `host:port` can be reached from this machine only: an IPv4 address in
/// 127.0.0.0/8, `::1` (also as `::ffff:127.x.y.z`), or `localhost`.
pub fn is_loopback(addr: &str) -> bool {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return socket.ip().to_canonical().is_loopback();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
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
    fn the_public_url_defaults_to_the_http_address_as_a_browser_reaches_it() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_lookup(|k| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap()
            .public_url
        };
        assert_eq!(with(&[]), "http://127.0.0.1:8080");
        assert_eq!(
            with(&[("HTTP_ADDR", "0.0.0.0:9000")]),
            "http://127.0.0.1:9000"
        );
        assert_eq!(with(&[("HTTP_ADDR", "[::]:9000")]), "http://[::1]:9000");
        assert_eq!(
            with(&[("PUBLIC_URL", "https://shop.example/")]),
            "https://shop.example"
        );
    }

    #[test]
    fn defaults_are_the_contracts() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.temporal_address, "127.0.0.1:7233");
        assert_eq!(s.temporal_url(), "http://127.0.0.1:7233");
        assert_eq!(s.task_queue, "orders");
        assert_eq!(s.payment_timeout, Duration::from_secs(900));
        assert!(!s.auth_secret_from_env);
        assert_eq!(s.rate_limit, RateLimit::per_second(20));
    }

    #[test]
    fn rate_limit_is_n_per_second_or_off() {
        let with = |v: &str| Settings::from_lookup(|k| (k == "RATE_LIMIT").then(|| v.to_owned()));
        let limit = with("20/s").unwrap().rate_limit.unwrap();
        assert_eq!((limit.rate(), limit.burst()), (20, 40));
        assert_eq!(limit, RateLimit::DEFAULT);
        assert_eq!(limit.to_string(), "20/s");
        assert_eq!(
            with(" 1/s ").unwrap().rate_limit.map(RateLimit::burst),
            Some(2)
        );
        assert_eq!(
            with("1000000/s").unwrap().rate_limit.map(RateLimit::rate),
            Some(1_000_000)
        );
        assert_eq!(with("off").unwrap().rate_limit, None);
        assert_eq!(with("OFF").unwrap().rate_limit, None);
        for bad in [
            "20",
            "20/m",
            "0/s",
            "-1/s",
            "1.5/s",
            "/s",
            "1000001/s",
            "twenty/s",
            "on",
        ] {
            let e = with(bad).unwrap_err();
            assert!(matches!(e, SettingsError::RateLimit { .. }), "{bad}: {e:?}");
            let message = e.to_string();
            assert!(
                message.contains(&format!("RATE_LIMIT={bad:?}"))
                    && message.contains("N/s")
                    && message.contains("off"),
                "{message}"
            );
        }
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
    fn a_secret_given_has_at_least_32_bytes() {
        let with = |v: String| Settings::from_lookup(|k| (k == "AUTH_SECRET").then(|| v.clone()));
        for short in [
            "tiny-secret".to_owned(),
            DEV_AUTH_SECRET.to_owned(),
            "s".repeat(31),
        ] {
            let e = with(short.clone()).unwrap_err();
            assert!(
                matches!(e, SettingsError::AuthSecretTooShort { len } if len == short.len()),
                "{e:?}"
            );
            let message = e.to_string();
            assert!(message.contains("AUTH_SECRET"), "{message}");
            assert!(message.contains("at least 32 bytes"), "{message}");
            assert!(
                !message.contains(&short),
                "the secret is not shown: {message}"
            );
        }
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert!(with("가".repeat(11)).is_ok());
        assert!(with("가".repeat(10)).is_err());
        let s = with("s".repeat(32)).unwrap();
        assert_eq!(s.auth_secret, "s".repeat(32));
        assert!(s.auth_secret_from_env);
        // A secret given is accepted on any address.
        let s = Settings::from_lookup(|k| match k {
            "AUTH_SECRET" => Some("s".repeat(32)),
            "HTTP_ADDR" => Some("0.0.0.0:8080".into()),
            _ => None,
        })
        .unwrap();
        assert!(s.check_auth_secret().is_ok());
    }

    #[test]
    fn the_development_secret_is_for_loopback_only() {
        let on = |addr: &str| {
            let addr = addr.to_owned();
            Settings::from_lookup(|k| (k == "HTTP_ADDR").then(|| addr.clone())).unwrap()
        };
        let default = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(default.auth_secret, DEV_AUTH_SECRET);
        assert!(default.check_auth_secret().is_ok());
        for addr in [
            "127.0.0.1:8080",
            "127.8.9.10:1",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
            "localhost:8080",
            "LocalHost:8080",
        ] {
            assert!(on(addr).check_auth_secret().is_ok(), "{addr}");
        }
        for addr in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "128.0.0.1:8080",
            "api.example.com:8080",
            "localhost.example.com:8080",
        ] {
            let e = on(addr).check_auth_secret().unwrap_err();
            let message = e.to_string();
            assert!(
                message.contains("AUTH_SECRET") && message.contains(addr),
                "{message}"
            );
            assert!(message.contains("loopback"), "{message}");
        }
    }

    #[test]
    fn workflow_polling_is_the_sdks_unless_set_and_refuses_what_it_cannot_use() {
        let with = |pollers: Option<&str>, ratio: Option<&str>| {
            Settings::from_lookup(|k| match k {
                "WORKFLOW_POLLERS" => pollers.map(str::to_owned),
                "WORKFLOW_NONSTICKY_RATIO" => ratio.map(str::to_owned),
                _ => None,
            })
        };
        assert_eq!(with(None, None).unwrap().polling, Polling::DEFAULT);
        assert_eq!(Polling::DEFAULT.workflow_pollers, None);
        let set = with(Some("10"), Some("0.5")).unwrap().polling;
        assert_eq!(set.workflow_pollers, Some(10));
        assert_eq!(set.nonsticky_ratio, 0.5);
        // The SDK needs at least 2 (one sticky, one not) and a ratio in (0, 1].
        for (pollers, ratio, named) in [
            (Some("1"), None, "WORKFLOW_POLLERS"),
            (Some("many"), None, "WORKFLOW_POLLERS"),
            (None, Some("0"), "WORKFLOW_NONSTICKY_RATIO"),
            (None, Some("1.5"), "WORKFLOW_NONSTICKY_RATIO"),
            (None, Some("NaN"), "WORKFLOW_NONSTICKY_RATIO"),
        ] {
            let e = with(pollers, ratio).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn payload_keys_default_to_the_development_key() {
        let with = |v: &str| Settings::from_lookup(|k| (k == "PAYLOAD_KEYS").then(|| v.to_owned()));
        let default = Settings::from_lookup(|_| None).unwrap().payload_keys;
        assert!(default.is_development());
        assert!(with("off").unwrap().payload_keys.is_off());
        let key = "k1:MDtsFZjnECM8ElpIRB0NVct13eCPGJOB3orufXo7l94=";
        assert_eq!(with(key).unwrap().payload_keys.ids(), ["k1"]);
        let e = with("k1:c2hvcnQ=").unwrap_err().to_string();
        assert!(
            e.contains("PAYLOAD_KEYS") && e.contains("must be 32") && !e.contains("c2hvcnQ="),
            "{e}"
        );
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
