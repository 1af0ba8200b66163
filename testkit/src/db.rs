//! A database of its own for each test or scenario, on a shared PostgreSQL server: made fresh
//! and migrated, dropped when done (or kept to be looked at).

use anyhow::{Context, Result};
use sqlx::PgPool;

/// A database made for one test or scenario.
pub struct Database {
    pub pool: PgPool,
    /// Its URL, for `DATABASE_URL`.
    pub url: String,
    pub name: String,
}

impl Database {
    /// Database `name` on the server of `server_url` (a URL naming any database there): one
    /// of that name left by an earlier run is dropped first, then it is made and migrated.
    pub async fn fresh(server_url: &str, name: &str) -> Result<Self> {
        drop_database(server_url, name).await;
        let url = with_database(server_url, name);
        store::db::ensure_database(&url)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let pool = store::db::connect(&url).await?;
        store::db::migrate(&pool).await?;
        Ok(Self {
            pool,
            url,
            name: name.to_owned(),
        })
    }

    /// Closes the pool and drops the database.
    pub async fn remove(self) {
        self.pool.close().await;
        drop_database(&self.url, &self.name).await;
    }
}

/// Drops database `name` of the server of `server_url`, if it is there.
pub async fn drop_database(server_url: &str, name: &str) {
    if let Ok(pool) = store::db::connect(&with_database(server_url, "postgres")).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/orders", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/orders?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
