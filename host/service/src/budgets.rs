//! Spend budgets per identity (denial of wallet): tokens per minute and USD
//! per day, each a bucket that refills evenly over its period. A call
//! reserves the core's estimate of its most expensive outcome before it is
//! made and settles with the usage the model reported afterwards, so the
//! unused part of a reservation comes back and an overrun is charged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use mangaassist_bedrock::clock::Clock;
use mangaassist_core::spend::SpendEstimate;

use crate::errors::ApiError;
use crate::identity::Allowance;

const MINUTE: f64 = 60.0;
const DAY: f64 = 86_400.0;

/// One bucket: `level` of `capacity`, refilled at `capacity / period`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    updated: Duration,
}

impl Bucket {
    fn refill(&mut self, now: Duration, capacity: f64, period: f64) {
        let elapsed = now.saturating_sub(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * capacity / period).min(capacity);
        self.updated = now;
    }

    /// Seconds until `need` (at most the capacity) is available. A zero
    /// budget allows nothing: a whole period, every time.
    fn wait_for(&self, need: f64, capacity: f64, period: f64) -> Option<f64> {
        if capacity <= 0.0 {
            return Some(period);
        }
        let need = need.min(capacity);
        (self.level < need).then(|| (need - self.level) * period / capacity)
    }
}

#[derive(Debug, Clone, Copy)]
struct Buckets {
    tokens: Bucket,
    usd: Bucket,
    allowance: Allowance,
}

/// What a reservation took, to be settled.
#[derive(Debug, Clone)]
pub struct Reservation {
    who: Arc<str>,
    tokens: f64,
    usd: f64,
}

/// Which budget refused a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OverBudget {
    /// Tokens per minute; seconds to wait.
    Tokens(f64),
    /// USD per day; seconds to wait.
    Usd(f64),
}

impl From<OverBudget> for ApiError {
    fn from(over: OverBudget) -> Self {
        let (code, what, wait) = match over {
            OverBudget::Tokens(w) => ("token_budget_exceeded", "tokens-per-minute", w),
            OverBudget::Usd(w) => ("spend_budget_exceeded", "USD-per-day", w),
        };
        // At least a second, at most a day (a zero budget never refills).
        let secs = (wait.ceil() as u64).clamp(1, 86_400);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code,
            format!("this client has used its {what} budget; retry in {secs} s"),
        );
        e.retry_after = Some(secs);
        e
    }
}

/// Every identity's buckets.
pub struct Budgets {
    state: Mutex<HashMap<Arc<str>, Buckets>>,
    clock: Arc<dyn Clock>,
}

impl Budgets {
    /// Buckets on `clock`, created full on an identity's first call.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Budgets {
            state: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Buckets>> {
        // Each update is whole: a poisoned map is still coherent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `spend` from `who`'s budgets, or says which is short and for
    /// how long. A call larger than a whole budget is let through when that
    /// budget is full (then it runs into debt), so a small budget slows
    /// large calls instead of refusing them for ever.
    pub fn reserve(
        &self,
        who: &Arc<str>,
        allowance: Allowance,
        spend: &SpendEstimate,
    ) -> Result<Reservation, OverBudget> {
        let now = self.clock.now();
        let tpm = allowance.tokens_per_minute as f64;
        let usd = allowance.usd_per_day;
        let mut state = self.lock();
        let b = state.entry(Arc::clone(who)).or_insert(Buckets {
            tokens: Bucket {
                level: tpm,
                updated: now,
            },
            usd: Bucket {
                level: usd,
                updated: now,
            },
            allowance,
        });
        b.allowance = allowance;
        b.tokens.refill(now, tpm, MINUTE);
        b.usd.refill(now, usd, DAY);
        let tokens = spend.tokens as f64;
        if let Some(wait) = b.tokens.wait_for(tokens, tpm, MINUTE) {
            return Err(OverBudget::Tokens(wait));
        }
        if let Some(wait) = b.usd.wait_for(spend.usd, usd, DAY) {
            return Err(OverBudget::Usd(wait));
        }
        b.tokens.level -= tokens;
        b.usd.level -= spend.usd;
        Ok(Reservation {
            who: Arc::clone(who),
            tokens,
            usd: spend.usd,
        })
    }

    /// Replaces a reservation with what the call spent.
    pub fn settle(&self, reservation: Reservation, tokens: u64, usd: f64) {
        let mut state = self.lock();
        if let Some(b) = state.get_mut(&reservation.who) {
            b.tokens.level += reservation.tokens - tokens as f64;
            b.usd.level += reservation.usd - usd;
            let (tpm, day) = (
                b.allowance.tokens_per_minute as f64,
                b.allowance.usd_per_day,
            );
            b.tokens.level = b.tokens.level.min(tpm);
            b.usd.level = b.usd.level.min(day);
        }
    }

    /// Forgets identities whose budgets are full again (call periodically).
    pub fn forget_idle(&self) {
        let now = self.clock.now();
        self.lock().retain(|_, b| {
            let (tpm, usd) = (
                b.allowance.tokens_per_minute as f64,
                b.allowance.usd_per_day,
            );
            b.tokens.refill(now, tpm, MINUTE);
            b.usd.refill(now, usd, DAY);
            b.tokens.level < tpm || b.usd.level < usd
        });
    }

    /// Identities with state (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use mangaassist_bedrock::clock::ManualClock;

    fn spend(tokens: u64, usd: f64) -> SpendEstimate {
        SpendEstimate {
            input_tokens: tokens,
            max_output_tokens: 0,
            tokens,
            usd,
        }
    }

    const ALLOW: Allowance = Allowance {
        tokens_per_minute: 1_000,
        usd_per_day: 1.0,
        allow_quality: true,
    };

    #[test]
    fn reserve_then_settle_returns_what_was_not_used() {
        let clock = Arc::new(ManualClock::default());
        let b = Budgets::new(clock.clone());
        let who: Arc<str> = "key:a".into();
        let r = b.reserve(&who, ALLOW, &spend(800, 0.1)).unwrap();
        assert_eq!(
            b.reserve(&who, ALLOW, &spend(300, 0.1)).unwrap_err(),
            OverBudget::Tokens(6.0),
            "200 left; the 100 more needed come back in 6 s at 1000/min"
        );
        b.settle(r, 100, 0.01);
        assert!(b.reserve(&who, ALLOW, &spend(300, 0.1)).is_ok());
        // Another identity has its own budget.
        assert!(b.reserve(&"key:b".into(), ALLOW, &spend(1000, 0.1)).is_ok());
    }

    #[test]
    fn the_day_budget_names_itself_and_refills() {
        let clock = Arc::new(ManualClock::default());
        let b = Budgets::new(clock.clone());
        let who: Arc<str> = "user:u".into();
        let r = b.reserve(&who, ALLOW, &spend(10, 0.9)).unwrap();
        b.settle(r, 10, 0.95);
        let over = b.reserve(&who, ALLOW, &spend(10, 0.1)).unwrap_err();
        let OverBudget::Usd(wait) = over else {
            panic!("{over:?}")
        };
        assert!((wait - 0.05 * DAY).abs() < 1.0, "{wait}");
        let e = ApiError::from(over);
        assert_eq!(e.code, "spend_budget_exceeded");
        assert_eq!(e.retry_after, Some(4320));
        clock.advance(Duration::from_secs(4321));
        assert!(b.reserve(&who, ALLOW, &spend(10, 0.1)).is_ok());
    }

    #[test]
    fn a_zero_budget_allows_nothing() {
        let b = Budgets::new(Arc::new(ManualClock::default()));
        let zero = Allowance {
            usd_per_day: 0.0,
            ..ALLOW
        };
        let over = b
            .reserve(&"key:z".into(), zero, &spend(1, 0.0001))
            .unwrap_err();
        assert_eq!(over, OverBudget::Usd(DAY));
    }

    #[test]
    fn a_call_over_a_whole_budget_waits_for_a_full_bucket() {
        let clock = Arc::new(ManualClock::default());
        let b = Budgets::new(clock.clone());
        let who: Arc<str> = "addr:x".into();
        let r = b.reserve(&who, ALLOW, &spend(5_000, 0.0)).unwrap();
        b.settle(r, 5_000, 0.0);
        // 4000 in debt: a full bucket again after 5 minutes.
        let OverBudget::Tokens(wait) = b.reserve(&who, ALLOW, &spend(5_000, 0.0)).unwrap_err()
        else {
            panic!()
        };
        assert!((wait - 300.0).abs() < 1e-6, "{wait}");
        b.forget_idle();
        assert_eq!(b.tracked(), 1, "in debt: remembered");
        clock.advance(Duration::from_secs(300));
        b.forget_idle();
        assert_eq!(b.tracked(), 0, "full again: forgotten");
    }
}
