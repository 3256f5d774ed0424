//! Token buckets (sustained `rate`/s, bursts of `2 × rate`) with a flood detector that asks for a
//! disconnect when a client keeps sending far beyond the limit: the Phoenix layer limits frames per
//! socket with it, the room core metadata updates per peer.
//!
//! Pure: the caller passes the current [`Instant`], so tests control time.

use std::time::{Duration, Instant};

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Process it.
    Allow,
    /// Refuse it with a `rate_limited` error reply.
    Limit,
    /// The client keeps flooding: close the socket.
    Disconnect,
}

/// Token bucket with flood detection. A `rate` of 0 disables limiting.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    window_start: Instant,
    refused_in_window: u64,
    flood_limit: u64,
}

/// Refusals within one second, as a multiple of the rate, that count as a flood.
const FLOOD_FACTOR: u64 = 10;

impl RateLimiter {
    /// A full bucket for `rate` messages per second, starting at `now`.
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate_f = f64::from(rate);
        Self {
            rate: rate_f,
            burst: 2.0 * rate_f,
            tokens: 2.0 * rate_f,
            last: now,
            window_start: now,
            refused_in_window: 0,
            flood_limit: u64::from(rate) * FLOOD_FACTOR,
        }
    }

    /// Accounts for one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Decision {
        if self.rate == 0.0 {
            return Decision::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Decision::Allow;
        }
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.refused_in_window = 0;
        }
        self.refused_in_window += 1;
        if self.refused_in_window > self.flood_limit {
            Decision::Disconnect
        } else {
            Decision::Limit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_of_twice_the_rate_then_limits() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5, t0);
        for _ in 0..10 {
            assert_eq!(r.check(t0), Decision::Allow);
        }
        assert_eq!(r.check(t0), Decision::Limit);
    }

    #[test]
    fn refills_at_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5, t0);
        for _ in 0..10 {
            r.check(t0);
        }
        assert_eq!(r.check(t0), Decision::Limit);
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(r.check(t1), Decision::Allow);
        assert_eq!(r.check(t1), Decision::Limit);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(100);
        for _ in 0..10 {
            assert_eq!(r.check(t2), Decision::Allow);
        }
        assert_eq!(r.check(t2), Decision::Limit);
    }

    #[test]
    fn disconnects_a_flood_of_ten_times_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5, t0);
        for _ in 0..10 {
            r.check(t0);
        }
        for _ in 0..50 {
            assert_eq!(r.check(t0), Decision::Limit);
        }
        assert_eq!(r.check(t0), Decision::Disconnect);
    }

    #[test]
    fn refusals_are_counted_per_second() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5, t0);
        for _ in 0..10 {
            r.check(t0);
        }
        for _ in 0..40 {
            assert_eq!(r.check(t0), Decision::Limit);
        }
        // A new window: the earlier refusals are forgotten (tokens refilled meanwhile).
        let t1 = t0 + Duration::from_millis(1100);
        for _ in 0..10 {
            r.check(t1);
        }
        for _ in 0..40 {
            assert_eq!(r.check(t1), Decision::Limit);
        }
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(0, t0);
        for _ in 0..10_000 {
            assert_eq!(r.check(t0), Decision::Allow);
        }
    }
}
