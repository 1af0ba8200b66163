//! The HTTP API's `Idempotency-Key` records (table `idempotency_keys`, CONTRACT §5): one row per
//! (caller, key), holding the request's fingerprint and, once stored, its answer. A caller is a
//! [`Scope`]: a customer's keys are scoped by user id, an admin's by the token's `sub`.
//!
//! The rules of the data live here: a request claims its key with a lease that carries a token
//! of its own; a lease that ran out (its process died mid-request) may be taken over, with a new
//! token; only the current holder stores or forgets (a compare-and-set on the token), so a
//! request whose lease was taken over keeps nothing; answers are kept for [`RETENTION`]. What the
//! API does with a claim (how long the lease is, how long a repeat waits for the first answer,
//! which answers are worth keeping) is the API's.

use std::time::Duration;

use domain::UserId;
use serde_json::Value;
use sqlx::PgPool;

use crate::StoreError;

/// How long answers are kept (the contract asks for at least 24 hours).
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whose keys a key is among: a customer's (by user id) or an admin's (by the token's `sub`, a
/// string that need not name a user). Two callers' keys never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    User(UserId),
    Admin(String),
}

impl Scope {
    /// The scope as the table stores it: `user:42`, `admin:ops`.
    pub fn name(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Admin(sub) => format!("admin:{sub}"),
        }
    }

    fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User(id) => Some(*id),
            Self::Admin(_) => None,
        }
    }
}

impl From<UserId> for Scope {
    fn from(user_id: UserId) -> Self {
        Self::User(user_id)
    }
}

/// A claim on a key: the right to run its request and to store or forget its answer, for as
/// long as the key's row carries this claim's token (a claim taken over writes its own).
#[derive(Debug)]
pub struct Lease {
    scope: String,
    user_id: Option<UserId>,
    key: String,
    token: String,
}

impl Lease {
    fn new(scope: &Scope, key: &str) -> Self {
        Self {
            scope: scope.name(),
            user_id: scope.user_id(),
            key: key.to_owned(),
            token: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// What a request found when it tried to claim its key.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it, then [`store`] or [`forget`] its answer.
    Run(Lease),
    /// The key's answer, stored by an earlier request.
    Replay { status: i32, body: String },
    /// The key stands for another request (another fingerprint).
    Reused,
    /// An earlier request holds the key and its lease has not run out: it is still running.
    Held,
}

/// Tries once to claim `key` for the request of `fingerprint` by `scope`'s caller, for `lease`:
/// a new key is claimed, a stored answer replayed, and a claim whose lease ran out taken over.
pub async fn claim(
    db: &PgPool,
    scope: impl Into<Scope>,
    key: &str,
    fingerprint: &str,
    lease: Duration,
) -> Result<Claim, StoreError> {
    let scope = scope.into();
    loop {
        let claim = Lease::new(&scope, key);
        if insert(db, &claim, fingerprint, lease).await? {
            return Ok(Claim::Run(claim));
        }
        // Gone between the two statements (its holder forgot it): claim it again.
        let Some(row) = read(db, &claim.scope, key).await? else {
            continue;
        };
        if row.request_hash != fingerprint {
            return Ok(Claim::Reused);
        }
        if row.state == "DONE"
            && let (Some(status), Some(body)) = (row.status, row.body)
        {
            return Ok(Claim::Replay { status, body });
        }
        if row.lease_over && take_over(db, &claim, lease).await? {
            tracing::warn!(key, "taking over an idempotency key whose request died");
            return Ok(Claim::Run(claim));
        }
        return Ok(Claim::Held);
    }
}

/// A key's row as a claim reads it.
#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    state: String,
    status: Option<i32>,
    body: Option<String>,
    lease_over: bool,
}

/// Claims a key nobody holds; whether it did.
async fn insert(
    db: &PgPool,
    claim: &Lease,
    fingerprint: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys \
         (scope, user_id, key, request_hash, state, locked_until, lease_token) \
         VALUES ($6, $1, $2, $3, 'RUNNING', now() + make_interval(secs => $4), $5::uuid) \
         ON CONFLICT DO NOTHING",
    )
    .bind(claim.user_id.map(|u| u.get()))
    .bind(&claim.key)
    .bind(fingerprint)
    .bind(lease.as_secs_f64())
    .bind(&claim.token)
    .bind(&claim.scope)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

async fn read(db: &PgPool, scope: &str, key: &str) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_hash, state, status, body, \
             coalesce(locked_until < now(), false) AS lease_over \
         FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// Writes `claim`'s token over a running claim whose lease ran out; whether it did (another
/// request may have taken it over first).
async fn take_over(db: &PgPool, claim: &Lease, lease: Duration) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE idempotency_keys \
         SET locked_until = now() + make_interval(secs => $3), lease_token = $4::uuid \
         WHERE scope = $1 AND key = $2 AND state = 'RUNNING' AND locked_until < now()",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(lease.as_secs_f64())
    .bind(&claim.token)
    .execute(db)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Stores the answer (`status`, `body`) as the key's, if `lease` still holds the key; whether
/// it did.
pub async fn store(
    db: &PgPool,
    lease: &Lease,
    status: u16,
    body: &Value,
) -> Result<bool, StoreError> {
    let stored = sqlx::query(
        "UPDATE idempotency_keys SET state = 'DONE', status = $3, body = $4, \
         locked_until = NULL, lease_token = NULL \
         WHERE scope = $1 AND key = $2 AND state = 'RUNNING' AND lease_token = $5::uuid",
    )
    .bind(&lease.scope)
    .bind(&lease.key)
    .bind(i32::from(status))
    .bind(body.to_string())
    .bind(&lease.token)
    .execute(db)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Gives the key back, so that a repeat runs again, if `lease` still holds the key; whether it
/// did.
pub async fn forget(db: &PgPool, lease: &Lease) -> Result<bool, StoreError> {
    let forgotten = sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE scope = $1 AND key = $2 AND state = 'RUNNING' AND lease_token = $3::uuid",
    )
    .bind(&lease.scope)
    .bind(&lease.key)
    .bind(&lease.token)
    .execute(db)
    .await?
    .rows_affected();
    Ok(forgotten == 1)
}

/// Drops the keys claimed more than [`RETENTION`] ago; returns how many.
pub async fn purge(db: &PgPool) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(RETENTION.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected())
}
