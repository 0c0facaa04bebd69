//! Region health (SPEC 9): a region that fails is skipped for
//! min(60·2^(n−1), 600) s after its n-th consecutive failure; a success
//! resets n. Shared by every request; the [`Clock`] is injectable so the
//! schedule is tested without sleeping.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::clock::Clock;

/// The cooldown after the n-th consecutive failure (n ≥ 1).
pub fn cooldown(consecutive_failures: u32) -> Duration {
    let n = consecutive_failures.clamp(1, 11);
    Duration::from_secs((60u64 << (n - 1)).min(600))
}

#[derive(Debug, Clone)]
struct RegionState {
    name: String,
    failures: u32,
    cooling_until: Option<Duration>,
    last_error: Option<String>,
}

/// What a region looks like now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionStatus {
    /// Region name.
    pub region: String,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Time left in its cooldown, if cooling down.
    pub cooling_for: Option<Duration>,
    /// The failure that started the cooldown.
    pub last_error: Option<String>,
}

/// A cooldown this process started: region, its length, the consecutive
/// failures and the error (what a fleet shares with its other replicas).
pub type CooldownHook = Box<dyn Fn(&str, Duration, u32, &str) + Send + Sync>;

/// Health of every region, in priority order.
pub struct Health {
    regions: Mutex<Vec<RegionState>>,
    clock: Arc<dyn Clock>,
    on_cooldown: OnceLock<CooldownHook>,
}

impl Health {
    /// All healthy, in the given priority order.
    pub fn new(regions: &[String], clock: Arc<dyn Clock>) -> Self {
        Health {
            regions: Mutex::new(
                regions
                    .iter()
                    .map(|name| RegionState {
                        name: name.clone(),
                        failures: 0,
                        cooling_until: None,
                        last_error: None,
                    })
                    .collect(),
            ),
            clock,
            on_cooldown: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RegionState>> {
        // Every update is a whole-field write: a poisoned lock is still coherent.
        self.regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Regions to try, by index: those not cooling down, in priority order;
    /// when all are, the one whose cooldown ends first (a probe) rather than
    /// failing without a try.
    pub fn order(&self) -> Vec<usize> {
        let now = self.clock.now();
        let regions = self.lock();
        let ready: Vec<usize> = (0..regions.len())
            .filter(|&i| regions[i].cooling_until.is_none_or(|until| until <= now))
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        (0..regions.len())
            .min_by_key(|&i| regions[i].cooling_until)
            .into_iter()
            .collect()
    }

    /// When every region is cooling down, the time until the first one
    /// may be tried again; `None` when any region is ready.
    pub fn all_cooling(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.lock()
            .iter()
            .map(|r| r.cooling_until.filter(|until| *until > now))
            .collect::<Option<Vec<Duration>>>()?
            .into_iter()
            .min()
            .map(|until| until - now)
    }

    /// The region at `index`.
    pub fn name(&self, index: usize) -> String {
        self.lock()
            .get(index)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    }

    /// A success: the region is healthy again.
    pub fn record_success(&self, index: usize) {
        if let Some(r) = self.lock().get_mut(index) {
            r.failures = 0;
            r.cooling_until = None;
            r.last_error = None;
        }
    }

    /// A failure. Failures of requests that raced an already-started
    /// cooldown do not count again, so a burst of concurrent requests moves
    /// the schedule one step, not a hundred.
    pub fn record_failure(&self, index: usize, error: &str) {
        let now = self.clock.now();
        if let Some(r) = self.lock().get_mut(index) {
            if r.cooling_until.is_some_and(|until| until > now) {
                return;
            }
            r.failures = r.failures.saturating_add(1);
            r.cooling_until = Some(now + cooldown(r.failures));
            r.last_error = Some(error.to_string());
        } else {
            return;
        }
        // Outside the lock: the hook may do I/O (spawn) of its own.
        let started = self.lock().get(index).map(|r| (r.name.clone(), r.failures));
        if let (Some((name, failures)), Some(hook)) = (started, self.on_cooldown.get()) {
            hook(&name, cooldown(failures), failures, error);
        }
    }

    /// Calls `hook` for every cooldown this process starts (set once).
    pub fn on_cooldown(&self, hook: CooldownHook) -> Result<(), String> {
        self.on_cooldown
            .set(hook)
            .map_err(|_| "a cooldown hook is already set".to_string())
    }

    /// Applies a cooldown another replica started: `region` skipped for
    /// `remaining`, unless it already cools down longer here.
    pub fn cool_from_elsewhere(
        &self,
        region: &str,
        remaining: Duration,
        failures: u32,
        error: &str,
    ) {
        let now = self.clock.now();
        let until = now + remaining;
        if let Some(r) = self.lock().iter_mut().find(|r| r.name == region)
            && r.cooling_until.is_none_or(|mine| mine < until)
        {
            r.cooling_until = Some(until);
            r.failures = r.failures.max(failures);
            r.last_error = Some(error.to_string());
        }
    }

    /// Every region's state, for metrics and tests.
    pub fn snapshot(&self) -> Vec<RegionStatus> {
        let now = self.clock.now();
        self.lock()
            .iter()
            .map(|r| RegionStatus {
                region: r.name.clone(),
                consecutive_failures: r.failures,
                cooling_for: r
                    .cooling_until
                    .filter(|until| *until > now)
                    .map(|until| until - now),
                last_error: r.last_error.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn cooldowns_from_elsewhere_apply_and_our_own_are_reported() {
        let clock = Arc::new(crate::clock::ManualClock::default());
        let health = Health::new(&["a".into(), "b".into()], clock.clone());
        health.cool_from_elsewhere("a", Duration::from_secs(30), 2, "throttled");
        assert_eq!(health.order(), [1]);
        assert_eq!(health.snapshot()[0].consecutive_failures, 2);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        health
            .on_cooldown(Box::new(move |region, d, n, _| {
                sink.lock().unwrap().push((region.to_string(), d, n));
            }))
            .unwrap();
        health.record_failure(1, "500");
        health.record_failure(1, "500 again, same cooldown");
        assert_eq!(
            *seen.lock().unwrap(),
            [("b".to_string(), Duration::from_secs(60), 1)]
        );
        assert!(health.on_cooldown(Box::new(|_, _, _, _| {})).is_err());
    }

    #[test]
    fn the_schedule_doubles_to_ten_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| cooldown(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(cooldown(u32::MAX).as_secs(), 600);
    }
}
