//! The HTTP API's `Idempotency-Key` records against a real PostgreSQL (a fresh database per
//! test, see `common`): claims, their leases and tokens, stored answers, and the purge.
use domain::UserId;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use store::db;
use store::idempotency::{self, Claim, RETENTION};

mod common;
use common::TestDb;

/// The API's lease (`starter::http::idempotency`).
const LEASE: Duration = Duration::from_secs(25);

async fn claim(pool: &PgPool, user: UserId, key: &str, fingerprint: &str) -> Claim {
    idempotency::claim(pool, user, key, fingerprint, LEASE)
        .await
        .unwrap()
}

/// Ends `key`'s lease now, as if its request had died.
async fn expire(pool: &PgPool, user: UserId, key: &str) {
    sqlx::query(
        "UPDATE idempotency_keys SET locked_until = now() - interval '1 second' \
         WHERE user_id = $1 AND key = $2",
    )
    .bind(user.get())
    .bind(key)
    .execute(pool)
    .await
    .unwrap();
}

async fn row(
    pool: &PgPool,
    user: UserId,
    key: &str,
) -> Option<(String, Option<i32>, Option<String>)> {
    sqlx::query_as(
        "SELECT state, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user.get())
    .bind(key)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// A request whose lease on its key ran out, and was taken over by a repeat, no longer owns the
/// key: its late answer (or its 503, which gives a key back) must not touch the new claim.
#[tokio::test]
async fn a_request_that_lost_its_idempotency_lease_leaves_the_new_claim_alone() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Kim", 1_000).await.unwrap();
    let running = Some(("RUNNING".to_owned(), None, None));

    // The first request's 503 after the takeover: the key stays the second's.
    let Claim::Run(first) = claim(pool, user, "k-forget", "request-hash").await else {
        panic!("a new key is claimed")
    };
    expire(pool, user, "k-forget").await;
    let Claim::Run(second) = claim(pool, user, "k-forget", "request-hash").await else {
        panic!("a claim whose lease ran out is taken over")
    };
    assert!(
        !idempotency::forget(pool, &first).await.unwrap(),
        "the first no longer owns it"
    );
    assert_eq!(row(pool, user, "k-forget").await, running);
    assert!(idempotency::forget(pool, &second).await.unwrap());
    assert_eq!(row(pool, user, "k-forget").await, None);

    // The first request's late answer after the takeover: not stored; the second's is.
    let Claim::Run(first) = claim(pool, user, "k-store", "request-hash").await else {
        panic!("a new key is claimed")
    };
    expire(pool, user, "k-store").await;
    let Claim::Run(second) = claim(pool, user, "k-store", "request-hash").await else {
        panic!("a claim whose lease ran out is taken over")
    };
    let late = json!({"from": "first"});
    assert!(!idempotency::store(pool, &first, 200, &late).await.unwrap());
    assert_eq!(row(pool, user, "k-store").await, running);
    let answer = json!({"from": "second"});
    assert!(
        idempotency::store(pool, &second, 201, &answer)
            .await
            .unwrap()
    );
    assert!(!idempotency::store(pool, &first, 200, &late).await.unwrap());
    assert!(!idempotency::forget(pool, &first).await.unwrap());
    match claim(pool, user, "k-store", "request-hash").await {
        Claim::Replay { status, body } => {
            assert_eq!(
                (status, serde_json::from_str::<Value>(&body).unwrap()),
                (201, answer)
            );
        }
        other => panic!("the second's answer is the key's: {other:?}"),
    }
    t.finish().await;
}

/// A key stands for one request: held while it runs, its answer once stored, and another
/// request under it is refused either way. Keys are per user.
#[tokio::test]
async fn a_key_answers_its_own_request_only() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Kim", 1_000).await.unwrap();
    let other = db::create_user(pool, "Lee", 1_000).await.unwrap();

    let Claim::Run(lease) = claim(pool, user, "k", "place a").await else {
        panic!("a new key is claimed")
    };
    assert!(matches!(
        claim(pool, user, "k", "place a").await,
        Claim::Held
    ));
    assert!(matches!(
        claim(pool, user, "k", "place b").await,
        Claim::Reused
    ));
    assert!(matches!(
        claim(pool, other, "k", "place b").await,
        Claim::Run(_)
    ));

    let answer = json!({"id": "ord-1"});
    assert!(
        idempotency::store(pool, &lease, 201, &answer)
            .await
            .unwrap()
    );
    match claim(pool, user, "k", "place a").await {
        Claim::Replay { status, body } => {
            assert_eq!(status, 201);
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), answer);
        }
        other => panic!("a stored answer is replayed: {other:?}"),
    }
    assert!(matches!(
        claim(pool, user, "k", "place b").await,
        Claim::Reused
    ));
    // Stored, the answer is no longer the lease's to forget.
    assert!(!idempotency::forget(pool, &lease).await.unwrap());
    t.finish().await;
}

/// The purge drops the keys claimed longer than `RETENTION` ago, and only those.
#[tokio::test]
async fn the_purge_drops_keys_past_their_retention_only() {
    let t = TestDb::new().await;
    let pool = &t.pool;
    let user = db::create_user(pool, "Kim", 1_000).await.unwrap();
    for key in ["old", "young"] {
        let Claim::Run(lease) = claim(pool, user, key, "request-hash").await else {
            panic!("a new key is claimed")
        };
        assert!(
            idempotency::store(pool, &lease, 200, &json!({}))
                .await
                .unwrap()
        );
    }
    let age = |key: &'static str, secs: f64| {
        sqlx::query(
            "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $3) \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user.get())
        .bind(key)
        .bind(secs)
        .execute(pool)
    };
    let retention = RETENTION.as_secs_f64();
    age("old", retention + 60.0).await.unwrap();
    age("young", retention - 60.0).await.unwrap();

    assert_eq!(idempotency::purge(pool).await.unwrap(), 1);
    assert_eq!(row(pool, user, "old").await, None);
    assert!(row(pool, user, "young").await.is_some());
    assert_eq!(idempotency::purge(pool).await.unwrap(), 0);
    t.finish().await;
}
