//! Connecting, creating the database, migrating, and the demo seed.
use sqlx::PgPool;

pub async fn connect(_url: &str) -> Result<PgPool, sqlx::Error> {
    unimplemented!("helper")
}
