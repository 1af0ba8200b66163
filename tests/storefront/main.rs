//! The storefront (CONTRACT §7) in a real headless Chromium, against the real stack (the API
//! and a worker in-process, the Temporal dev server, PostgreSQL): one test per path of seed
//! 003's shopper flow, each ending with the CONTRACT §6 check. A failing test leaves a
//! screenshot of its page in `target/storefront-failures/<test>.png`.

mod browser;
mod paths;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use domain::{ProductId, UserId};
use futures::FutureExt;
use saga_tests::http::ApiApp;
use tokio::sync::Semaphore;

use browser::Browser;

type R = Result<()>;

/// Browsers at once: the machine's cores are shared with the API, the worker and Temporal.
static BROWSERS: Semaphore = Semaphore::const_new(3);

/// One path's stage: the API on the real stack, and a browser on its pages.
pub struct Shop {
    pub api: ApiApp,
    pub browser: Browser,
}

impl Shop {
    /// A user of `points` with a sign-in link's token, the customer token of the API.
    pub async fn user(&self, name: &str, points: i64) -> Result<(UserId, String)> {
        let id = testkit::shop::user(&self.api.app.db, name, points).await?;
        Ok((id, self.api.customer(id)))
    }

    pub async fn product(&self, name: &str, price: i64, stock: i64) -> Result<ProductId> {
        testkit::shop::product(&self.api.app.db, name, price, stock).await
    }

    /// Signs in as a shopper does: by opening the sign-in link, which lands on the catalogue.
    pub async fn sign_in(&self, token: &str) -> R {
        self.browser.open_page(&format!("/#token={token}")).await?;
        self.browser.wait_text("h1", "Catalogue").await?;
        Ok(())
    }
}

impl Shop {
    /// In the screenshot mode (`STOREFRONT_SCREENSHOTS=<dir>`, `scripts/screenshots.sh`):
    /// saves the page as `<dir>/<name>.png` for the README.
    pub async fn picture(&self, name: &str) -> R {
        if let Some(dir) = std::env::var_os("STOREFRONT_SCREENSHOTS") {
            let path = PathBuf::from(dir).join(format!("{name}.png"));
            self.browser.screenshot(&path).await?;
        }
        Ok(())
    }
}

fn failure_shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/storefront-failures")
        .join(format!("{name}.png"))
}

/// Runs one path: `body` on a fresh stage; a screenshot if it fails; then the §6 check.
async fn run<F>(name: &str, api: ApiApp, body: F) -> R
where
    F: for<'a> FnOnce(&'a mut Shop) -> futures::future::BoxFuture<'a, R>,
{
    let _slot = BROWSERS.acquire().await?;
    let browser = Browser::open(&api.base, 1100).await?;
    let mut shop = Shop { api, browser };
    let outcome = AssertUnwindSafe(body(&mut shop)).catch_unwind().await;
    let failed = !matches!(outcome, Ok(Ok(())));
    if failed {
        let path = failure_shot(name);
        match shop.browser.screenshot(&path).await {
            Ok(()) => eprintln!("{name}: the page as it failed: {}", path.display()),
            Err(e) => eprintln!("{name}: no screenshot: {e:#}"),
        }
    }
    let Shop { api, browser } = shop;
    browser.close().await;
    match outcome {
        Ok(Ok(())) => api.finish().await,
        Ok(Err(e)) => Err(e),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

macro_rules! path_test {
    ($name:ident, $api:expr) => {
        #[tokio::test]
        async fn $name() -> R {
            run(stringify!($name), $api, |shop| paths::$name(shop).boxed()).await
        }
    };
}

use saga_tests::http::{spawn_api, spawn_api_with};

path_test!(happy_path_with_a_coupon, spawn_api().await);
path_test!(a_sold_out_product_cannot_be_bought, spawn_api().await);
path_test!(an_unusable_coupon_says_why, spawn_api().await);
path_test!(short_of_points_top_up_and_pay_again, spawn_api().await);
path_test!(a_canceled_order_gives_the_coupon_back, spawn_api().await);
path_test!(
    an_unpaid_order_expires_on_screen,
    spawn_api_with(Duration::from_secs(4)).await
);
path_test!(sign_out_and_a_bad_token, spawn_api().await);
path_test!(the_api_down_and_back, spawn_api().await);
