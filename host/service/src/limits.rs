//! Request rate limits (SPEC 10): one overall budget (100/s, burst 200 by
//! default) and one per client (its identity: API key, user, or address),
//! all GCRA from governor. The overall budget is fair: clients sending more
//! than one request a second draw on all of it but a reserve (20% by
//! default), which only light clients reach, so a handful of busy addresses
//! cannot starve everyone else. A refusal says how long to wait, for
//! `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// Which limit refused a request, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The service as a whole is at its rate.
    Overall(Duration),
    /// This client is at its rate.
    Client(Duration),
}

impl Limited {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(self) -> u64 {
        let (Limited::Overall(wait) | Limited::Client(wait)) = self;
        whole_secs(wait)
    }

    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Limited::Overall(_) => "rate_limited",
            Limited::Client(_) => "client_rate_limited",
        }
    }
}

/// `wait` rounded up to whole seconds, at least 1: a `Retry-After` that
/// never asks to come back too early.
pub fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

type Overall<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;
type PerClient<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The limits.
pub struct RateLimits<C: Clock = DefaultClock> {
    overall: Overall<C>,
    /// The overall budget less the reserve: what busy clients may use.
    busy_share: Overall<C>,
    per_client: PerClient<C>,
    /// Whether a client is light (at most one request a second, burst 2).
    light: PerClient<C>,
    clock: C,
}

fn quota(per_second: u32, burst: u32) -> Result<Quota, String> {
    let rate = NonZeroU32::new(per_second).ok_or("a rate limit must be at least 1 per second")?;
    let burst = NonZeroU32::new(burst).ok_or("a burst must be at least 1")?;
    Ok(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits<DefaultClock> {
    /// Limits on the real clock.
    pub fn new(
        overall: (u32, u32),
        per_client: (u32, u32),
        reserve_percent: u32,
    ) -> Result<Self, String> {
        Self::with_clock(
            overall,
            per_client,
            reserve_percent,
            DefaultClock::default(),
        )
    }
}

/// The rate and burst of a light client: at most one request a second,
/// two at once.
pub const LIGHT: (u32, u32) = (1, 2);

/// What busy clients may use of the overall `(rate, burst)`: all of it but
/// `reserve_percent`, each at least 1.
pub fn busy_share((rate, burst): (u32, u32), reserve_percent: u32) -> (u32, u32) {
    let busy = u64::from(100 - reserve_percent.min(100));
    let share = |n: u32| (u64::from(n) * busy / 100).max(1) as u32;
    (share(rate), share(burst))
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Limits on `clock` (tests use governor's fake clock).
    pub fn with_clock(
        (rate, burst): (u32, u32),
        (client_rate, client_burst): (u32, u32),
        reserve_percent: u32,
        clock: C,
    ) -> Result<Self, String> {
        let (busy_rate, busy_burst) = busy_share((rate, burst), reserve_percent);
        Ok(RateLimits {
            overall: RateLimiter::direct_with_clock(quota(rate, burst)?, clock.clone()),
            busy_share: RateLimiter::direct_with_clock(
                quota(busy_rate, busy_burst)?,
                clock.clone(),
            ),
            per_client: RateLimiter::dashmap_with_clock(
                quota(client_rate, client_burst)?,
                clock.clone(),
            ),
            light: RateLimiter::dashmap_with_clock(quota(LIGHT.0, LIGHT.1)?, clock.clone()),
            clock,
        })
    }

    /// Admits one request from `client`, or says which limit refused it.
    /// The client's own limit is checked first, so one noisy client spends
    /// its budget without draining everyone's; a busy client then needs
    /// room in the busy share as well as in the overall budget.
    pub fn admit(&self, client: &str) -> Result<(), Limited> {
        let now = self.clock.now();
        let key = client.to_string();
        self.per_client
            .check_key(&key)
            .map_err(|n| Limited::Client(n.wait_time_from(now)))?;
        if self.light.check_key(&key).is_err() {
            self.busy_share
                .check()
                .map_err(|n| Limited::Overall(n.wait_time_from(now)))?;
        }
        self.overall
            .check()
            .map_err(|n| Limited::Overall(n.wait_time_from(now)))
    }

    /// Forgets clients whose budget is full again (call periodically).
    pub fn forget_idle_clients(&self) {
        self.per_client.retain_recent();
        self.light.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn the_overall_burst_then_the_rate() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock((100, 200), (1000, 1000), 20, clock.clone()).unwrap();
        for i in 0..200 {
            assert_eq!(limits.admit(&format!("c{i}")), Ok(()), "request {i}");
        }
        let refused = limits.admit("c").unwrap_err();
        assert_eq!(refused, Limited::Overall(Duration::from_millis(10)));
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(refused.code(), "rate_limited");
        clock.advance(Duration::from_millis(10));
        assert_eq!(limits.admit("c"), Ok(()));
    }

    #[test]
    fn one_client_cannot_take_everyone_s_budget() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock((100, 200), (2, 3), 20, clock.clone()).unwrap();
        for _ in 0..3 {
            assert_eq!(limits.admit("noisy"), Ok(()));
        }
        let refused = limits.admit("noisy").unwrap_err();
        assert!(
            matches!(refused, Limited::Client(w) if w == Duration::from_millis(500)),
            "{refused:?}"
        );
        assert_eq!(refused.code(), "client_rate_limited");
        assert_eq!(limits.admit("quiet"), Ok(()));
    }

    #[test]
    fn zero_rates_are_configuration_errors() {
        assert!(RateLimits::new((0, 1), (1, 1), 20).is_err());
        assert!(RateLimits::new((1, 1), (1, 0), 20).is_err());
    }

    #[test]
    fn a_few_busy_clients_cannot_starve_the_rest() {
        let clock = FakeRelativeClock::default();
        let limits = RateLimits::with_clock((100, 100), (1000, 1000), 20, clock.clone()).unwrap();
        // Three busy clients send as fast as they can for a second.
        let mut admitted = 0;
        for step in 0..100 {
            for busy in ["b1", "b2", "b3"] {
                admitted += usize::from(limits.admit(busy).is_ok());
            }
            if step % 10 == 9 {
                clock.advance(Duration::from_millis(100));
            }
        }
        assert!(admitted <= 80 + 80 + 6, "busy clients got {admitted}");
        // Light clients still get in.
        for i in 0..15 {
            assert_eq!(limits.admit(&format!("light{i}")), Ok(()), "light {i}");
        }
    }
}
