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
    /// A keyed restock whose key already stands in the ledger for another product or quantity.
    #[error("the restock key {key:?} was used before for another restock")]
    RestockKeyReused { key: String },
}

/// What a database error means to whoever answers for it, so that callers need not know
/// PostgreSQL's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFault {
    /// PostgreSQL cannot be reached, is out of resources or shutting down: a retry may cure it.
    Unavailable,
    /// The data refused a value (a constraint, a value out of range): only the input can have
    /// caused it.
    InvalidInput,
    /// Anything else: a bug.
    Bug,
}

impl DbFault {
    pub fn of(e: &sqlx::Error) -> Self {
        match e {
            // By SQLSTATE class: 23 integrity constraint violation, 22 data exception (out of
            // range, ...); 08 connection exception, 53 insufficient resources, 57 operator
            // intervention (shutdown, ...).
            sqlx::Error::Database(db) => match db.code().as_deref().and_then(|c| c.get(..2)) {
                Some("23" | "22") => Self::InvalidInput,
                Some("08" | "53" | "57") => Self::Unavailable,
                _ => Self::Bug,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Self::Unavailable,
            _ => Self::Bug,
        }
    }
}
