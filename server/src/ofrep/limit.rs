//! The per-token rate limit of the OFREP endpoints: `governor`'s GCRA limiter keyed by token
//! id. It keeps one small state per token that has called, and only authenticated sdk tokens
//! reach it, so its size is bounded by the catalog's tokens.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::time::Duration;

/// A rate limiter keyed by token id.
pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Limiter {
    /// A limiter allowing `quota` to every token.
    pub fn new(quota: Quota) -> Self {
        Self {
            inner: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `token`'s allowance, or says how long until one is available.
    pub fn check(&self, token: &str) -> Result<(), Duration> {
        self.inner
            .check_key(&token.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1 (a client that
/// retries after 0 seconds would only be refused again).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn a_token_past_its_burst_waits_and_others_do_not() {
        let limiter = Limiter::new(Quota::per_minute(NonZeroU32::new(2).unwrap()));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
