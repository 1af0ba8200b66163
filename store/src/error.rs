use domain::{OrderError, Points};

/// What a store operation can fail with: a business outcome that retrying cannot change, or
/// trouble with the database that a retry may cure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Business(#[from] OrderError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A keyed top-up whose key already stands in the ledger for another amount.
    #[error("the top-up key {key:?} was used before for {amount} points")]
    TopUpKeyReused { key: String, amount: Points },
}
