//! `RATE_LIMIT` (CONTRACT §3): a token bucket per customer, keyed by the user id of the
//! authenticated token. It holds up to 2N requests and refills N a second; a request that finds
//! it empty is answered 429 `RATE_LIMITED` with `Retry-After`. The bucket is taken from by the
//! customer extractors (`auth`), so a request is counted after authentication and before its
//! body is read, and a refused one never reaches the handler nor its Idempotency-Key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::UserId;
use runtime::settings::RateLimit;

/// Buckets are forgotten once full (a full bucket is what a new one is) when there are more
/// than this many; the limit then doubles with the buckets still in use.
const PRUNE_AT: usize = 10_000;

pub struct RateLimiter {
    /// Tokens a second.
    rate: f64,
    /// Tokens a bucket holds at most.
    burst: f64,
    buckets: Mutex<Buckets>,
}

struct Buckets {
    by_user: HashMap<UserId, Bucket>,
    prune_at: usize,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            rate: f64::from(limit.rate()),
            burst: f64::from(limit.burst()),
            buckets: Mutex::new(Buckets {
                by_user: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }

    /// Takes one request from `user`'s bucket, or says how long until it holds one again.
    pub fn take(&self, user: UserId) -> Result<(), Duration> {
        self.take_at(user, Instant::now())
    }

    fn take_at(&self, user: UserId, now: Instant) -> Result<(), Duration> {
        // A poisoned map is still a map of buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.by_user.len() >= buckets.prune_at {
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets
                .by_user
                .retain(|_, b| now.saturating_duration_since(b.at) < full_after);
            buckets.prune_at = PRUNE_AT.max(2 * buckets.by_user.len());
        }
        let bucket = buckets.by_user.entry(user).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(n: u32) -> RateLimiter {
        RateLimiter::new(RateLimit::per_second(n).expect("a valid limit"))
    }

    #[test]
    fn a_burst_of_2n_then_n_a_second() {
        let l = limiter(20);
        let t0 = Instant::now();
        for _ in 0..40 {
            assert_eq!(l.take_at(UserId::new(1), t0), Ok(()));
        }
        let wait = l.take_at(UserId::new(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(50));
        assert_eq!(retry_after_secs(wait), 1);
        // One token every 50 ms.
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(l.take_at(UserId::new(1), t1), Ok(()));
        assert!(l.take_at(UserId::new(1), t1).is_err());
        // A second refills 20, not more.
        let t2 = t1 + Duration::from_secs(1);
        for _ in 0..20 {
            assert_eq!(l.take_at(UserId::new(1), t2), Ok(()));
        }
        assert!(l.take_at(UserId::new(1), t2).is_err());
        // A long pause refills the burst, not more.
        let t3 = t2 + Duration::from_secs(3600);
        for _ in 0..40 {
            assert_eq!(l.take_at(UserId::new(1), t3), Ok(()));
        }
        assert!(l.take_at(UserId::new(1), t3).is_err());
    }

    #[test]
    fn every_user_has_a_bucket_of_their_own() {
        let l = limiter(1);
        let t0 = Instant::now();
        assert!(l.take_at(UserId::new(1), t0).is_ok() && l.take_at(UserId::new(1), t0).is_ok());
        assert_eq!(l.take_at(UserId::new(1), t0), Err(Duration::from_secs(1)));
        assert!(l.take_at(UserId::new(2), t0).is_ok() && l.take_at(UserId::new(2), t0).is_ok());
        assert!(l.take_at(UserId::new(2), t0).is_err());
    }

    #[test]
    fn a_clock_seen_out_of_order_takes_nothing_back() {
        let l = limiter(1);
        let t0 = Instant::now() + Duration::from_secs(10);
        assert!(l.take_at(UserId::new(1), t0).is_ok());
        // A request that read the clock earlier but took the lock later.
        assert!(
            l.take_at(UserId::new(1), t0 - Duration::from_secs(5))
                .is_ok()
        );
        assert!(l.take_at(UserId::new(1), t0).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn full_buckets_are_forgotten_when_there_are_many() {
        let l = limiter(1);
        let t0 = Instant::now();
        for user in 0..PRUNE_AT as i64 {
            l.take_at(UserId::new(user), t0).expect("a new bucket");
        }
        // Two seconds later every one of them is full again: the next new user prunes them.
        let t1 = t0 + Duration::from_secs(2);
        l.take_at(UserId::new(-1), t1).expect("a new bucket");
        let buckets = l.buckets.lock().unwrap();
        assert_eq!(buckets.by_user.len(), 1);
        assert_eq!(buckets.prune_at, PRUNE_AT);
    }
}
