//! The spend budgets of [`crate::budgets`] held in Redis, so an identity's
//! tokens per minute and USD per day are the fleet's, not each replica's:
//! the same buckets (refilled evenly, reserved before the call, settled
//! after), updated atomically by Lua scripts on the server's clock. A Redis
//! that fails or is slow hands the decision back to the replica's own
//! budgets until it answers again.

use std::sync::Arc;

use mangaassist_core::spend::SpendEstimate;

use crate::budgets::{OverBudget, Reservation};
use crate::identity::Allowance;
use crate::redis_store::RedisStore;

/// Refills, then takes the reservation or says which budget is short and
/// for how many ms. Hash fields: tokens, usd (levels), at (server seconds).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tpm, day = tonumber(ARGV[1]), tonumber(ARGV[2])
local need_tokens, need_usd = tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'usd', 'at')
local tokens = tonumber(v[1]) or tpm
local usd = tonumber(v[2]) or day
local elapsed = math.max(0, now - (tonumber(v[3]) or now))
tokens = math.min(tpm, tokens + elapsed * tpm / 60)
usd = math.min(day, usd + elapsed * day / 86400)
local function wait(level, need, cap, period)
  if cap <= 0 then return period end
  need = math.min(need, cap)
  if level < need then return (need - level) * period / cap end
  return -1
end
local function keep(a, b)
  redis.call('HSET', KEYS[1], 'tokens', tostring(a), 'usd', tostring(b), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], 172800)
end
local w = wait(tokens, need_tokens, tpm, 60)
if w >= 0 then keep(tokens, usd) return {1, math.ceil(w * 1000)} end
w = wait(usd, need_usd, day, 86400)
if w >= 0 then keep(tokens, usd) return {2, math.ceil(w * 1000)} end
keep(tokens - need_tokens, usd - need_usd)
return {0, 0}
";

/// Gives back what a reservation did not use (or charges the overrun).
const SETTLE: &str = r"
local v = redis.call('HMGET', KEYS[1], 'tokens', 'usd')
if not v[1] then return 0 end
local tokens = math.min(tonumber(ARGV[1]), tonumber(v[1]) + tonumber(ARGV[3]))
local usd = math.min(tonumber(ARGV[2]), tonumber(v[2]) + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'usd', tostring(usd))
return 1
";

/// A reservation, where it was made.
#[derive(Debug, Clone)]
pub enum Held {
    /// In this replica's budgets.
    Local(Reservation),
    /// In Redis.
    Shared {
        /// The identity's key.
        key: String,
        /// Its allowance (the caps).
        allowance: Allowance,
        /// Tokens reserved.
        tokens: u64,
        /// USD reserved.
        usd: f64,
    },
}

/// The budgets in Redis.
pub struct SharedBudgets {
    store: Arc<RedisStore>,
    reserve: redis::Script,
    settle: redis::Script,
}

fn key(who: &str) -> String {
    format!("mangaassist:budget:v1:{who}")
}

impl SharedBudgets {
    /// Budgets in the shared Redis `store`.
    pub fn new(store: Arc<RedisStore>) -> Self {
        SharedBudgets {
            store,
            reserve: redis::Script::new(RESERVE),
            settle: redis::Script::new(SETTLE),
        }
    }

    /// The fleet's reservation for `who`; `None` when Redis could not
    /// decide (the caller reserves locally).
    pub async fn reserve(
        &self,
        who: &Arc<str>,
        allowance: Allowance,
        spend: &SpendEstimate,
    ) -> Option<Result<Held, OverBudget>> {
        let mut invocation = self.reserve.key(key(who));
        invocation
            .arg(allowance.tokens_per_minute as f64)
            .arg(allowance.usd_per_day)
            .arg(spend.tokens as f64)
            .arg(spend.usd);
        let mut connection = self.store.connection();
        let (code, wait_ms) = self
            .store
            .call(
                "budget_reserve",
                invocation.invoke_async::<(u8, u64)>(&mut connection),
            )
            .await?;
        let wait = wait_ms as f64 / 1000.0;
        Some(match code {
            0 => Ok(Held::Shared {
                key: key(who),
                allowance,
                tokens: spend.tokens,
                usd: spend.usd,
            }),
            1 => Err(OverBudget::Tokens(wait)),
            _ => Err(OverBudget::Usd(wait)),
        })
    }

    /// Settles a shared reservation with what the call used (when Redis
    /// fails the reservation stays charged, which fails safe).
    pub async fn settle(&self, held: &Held, used_tokens: u64, used_usd: f64) {
        let Held::Shared {
            key,
            allowance,
            tokens,
            usd,
        } = held
        else {
            return;
        };
        let mut invocation = self.settle.key(key);
        invocation
            .arg(allowance.tokens_per_minute as f64)
            .arg(allowance.usd_per_day)
            .arg(*tokens as f64 - used_tokens as f64)
            .arg(usd - used_usd);
        let mut connection = self.store.connection();
        self.store
            .call(
                "budget_settle",
                invocation.invoke_async::<i64>(&mut connection),
            )
            .await;
    }
}
