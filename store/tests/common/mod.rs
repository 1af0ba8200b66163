//! The harness the activity test binaries share: a fresh, migrated database per test on the
//! server of `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/`), checked against
//! every invariant and dropped when the test ends; the saga's steps as the workflow drives them
//! ([`saga`]); and reads of what the database holds ([`reads`]).
#![allow(dead_code)] // each test binary uses its own part of it

pub mod reads;
pub mod saga;

use std::str::FromStr;

use chrono::{Duration, SubsecRound, Utc};
use domain::{LineRequest, ProductId};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use store::{db, invariants};

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/".to_owned())
}

/// The server's URL with its database replaced by `name` (query parameters kept).
pub fn url_for(name: &str) -> String {
    let url = server_url();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (url.clone(), String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("DATABASE_URL has a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

pub async fn drop_database(name: &str) {
    let options = PgConnectOptions::from_str(&url_for("postgres")).unwrap();
    let mut admin = options.connect().await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A fresh, migrated database, dropped again when the test ends (also when it fails).
pub struct TestDb {
    pub pool: PgPool,
    name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("orders_test_{}", uuid::Uuid::new_v4().simple());
        let url = url_for(&name);
        db::ensure_database(&url).await.unwrap();
        let pool = db::connect(&url).await.unwrap();
        db::migrate(&pool).await.unwrap();
        Self { pool, name }
    }

    /// Asserts that every invariant holds, then drops the database.
    pub async fn finish(self) {
        let report = invariants::check(&self.pool).await.unwrap();
        assert!(report.is_ok(), "invariants violated: {report:#?}");
        assert!(
            report.violations.is_empty(),
            "invariants violated: {:#?}",
            report
        );
        assert!(report.checked["rules"].as_u64().unwrap() > 10);
        self.pool.close().await;
        drop_database(&self.name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // `finish` already dropped it, or the test panicked: drop it (again) from a thread of
        // its own, since this may run inside the test's runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(drop_database(&name));
        })
        .join();
    }
}

pub fn lines(items: &[(ProductId, i64)]) -> Vec<LineRequest> {
    items
        .iter()
        .map(|&(product_id, quantity)| LineRequest {
            product_id,
            quantity,
        })
        .collect()
}

pub fn in_days(days: i64) -> chrono::DateTime<Utc> {
    (Utc::now() + Duration::days(days)).trunc_subsecs(0)
}
