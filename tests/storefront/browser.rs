//! A real headless Chromium (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/setup.sh`) driven over WebDriver, on the shop's pages served by the in-process
//! API. Pages are waited on by polling their state, never by sleeping.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to reach what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// A chromedriver of this test's own, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Browser {
    pub client: Client,
    pub base: String,
    _driver: Driver,
    _profile: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_driver() -> Result<(Driver, u16)> {
    let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port()?;
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {program}: run scripts/setup.sh browser (Debian's chromium-driver)"
            )
        })?;
    let driver = Driver(child);
    let status = format!("http://127.0.0.1:{port}/status");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while http.get(&status).send().await.is_err() {
        if tokio::time::Instant::now() > deadline {
            bail!("{program} did not answer on port {port}");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok((driver, port))
}

impl Browser {
    /// A fresh headless Chromium (its own profile) on the shop at `base`, `width` pixels wide.
    pub async fn open(base: &str, width: u32) -> Result<Self> {
        let (driver, port) = start_driver().await?;
        let profile = std::env::temp_dir().join(format!("storefront-{}", uuid::Uuid::new_v4()));
        let mut options = json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-extensions", "--hide-scrollbars",
            format!("--window-size={width},1000"),
            format!("--user-data-dir={}", profile.display()),
        ]});
        let binary = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if std::path::Path::new(&binary).exists() {
            options["binary"] = json!(binary);
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("start a Chromium session")?;
        Ok(Self {
            client,
            base: base.to_owned(),
            _driver: driver,
            _profile: profile,
        })
    }

    /// Opens `path` (`/`, `/#/cart`, …) of the shop.
    pub async fn open_page(&self, path: &str) -> Result<()> {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        Ok(())
    }

    /// Follows a link of the page's, by its fragment (as a shopper clicks it).
    pub async fn go(&self, hash: &str) -> Result<()> {
        self.js(
            "location.hash = arguments[0]; return null;",
            vec![json!(hash)],
        )
        .await?;
        Ok(())
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// The text of every element `css` selects, joined by newlines ("" when none).
    pub async fn text_of(&self, css: &str) -> Result<String> {
        let script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText).join('\\n');";
        let v = self.js(script, vec![json!(css)]).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until an element `css` selects shows `wanted`; its text.
    pub async fn wait_text(&self, css: &str, wanted: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text_of(css).await?;
            if text.contains(wanted) {
                return Ok(text);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("waited for {css:?} to show {wanted:?}; it shows {text:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `script` (a JS expression) is true.
    pub async fn wait_until(&self, what: &str, script: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let script = format!("return Boolean({script});");
        while self.js(&script, vec![]).await? != json!(true) {
            if tokio::time::Instant::now() > deadline {
                bail!("waited for {what} ({script})");
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Clicks what `css` selects, once it is there and enabled.
    pub async fn click(&self, css: &str) -> Result<()> {
        let what = format!("{css} to be clickable");
        let q = serde_json::to_string(css)?;
        self.wait_until(
            &what,
            &format!("(e => e && !e.disabled)(document.querySelector({q}))"),
        )
        .await?;
        self.client.find(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    /// Types `text` into the field `css` selects, in place of what it held.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let q = serde_json::to_string(css)?;
        self.wait_until(css, &format!("document.querySelector({q})"))
            .await?;
        let field = self.client.find(Locator::Css(css)).await?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// Saves what the page shows to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}
