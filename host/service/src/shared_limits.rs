//! The rate limits of [`crate::limits`] held in Redis, so N replicas admit
//! what one would: the same GCRA (per client, a light-client reserve, the
//! overall budget), run atomically on the server by one Lua script on the
//! server's clock. A Redis that fails or is slow hands the decision back to
//! the replica's own limits (logged once, counted) until it answers again.

use std::sync::Arc;
use std::time::Duration;

use crate::limits::{Limited, busy_share};
use crate::redis_store::RedisStore;

/// One GCRA bucket: emission interval and burst, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval_us: u64,
    tolerance_us: u64,
}

impl Gcra {
    fn new(per_second: u32, burst: u32) -> Self {
        let interval_us = 1_000_000 / u64::from(per_second.max(1));
        Gcra {
            interval_us,
            tolerance_us: interval_us * u64::from(burst.max(1)),
        }
    }
}

/// Checks, in order: the client's bucket; whether the client is light (else
/// the busy share too); the overall bucket. Each bucket's value is its
/// theoretical arrival time (µs, server clock). Returns {0, 0} when
/// admitted, {1, wait_us} for the client's limit, {2, wait_us} overall.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function take(key, interval, tolerance)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > tolerance then
    return new_tat - now - tolerance
  end
  redis.call('SET', key, new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
  return 0
end
local wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait > 0 then return {1, wait} end
if take(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4])) > 0 then
  wait = take(KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[6]))
  if wait > 0 then return {2, wait} end
end
wait = take(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[8]))
if wait > 0 then return {2, wait} end
return {0, 0}
";

/// The limits in Redis.
pub struct SharedLimits {
    store: Arc<RedisStore>,
    script: redis::Script,
    client: Gcra,
    light: Gcra,
    busy: Gcra,
    overall: Gcra,
}

impl SharedLimits {
    /// The same quotas as [`crate::limits::RateLimits::new`].
    pub fn new(
        store: Arc<RedisStore>,
        (rate, burst): (u32, u32),
        (client_rate, client_burst): (u32, u32),
        reserve_percent: u32,
    ) -> Self {
        let (busy_rate, busy_burst) = busy_share((rate, burst), reserve_percent);
        let (light_rate, light_burst) = crate::limits::LIGHT;
        SharedLimits {
            store,
            script: redis::Script::new(ADMIT),
            client: Gcra::new(client_rate, client_burst),
            light: Gcra::new(light_rate, light_burst),
            busy: Gcra::new(busy_rate, busy_burst),
            overall: Gcra::new(rate, burst),
        }
    }

    /// The fleet's decision on one request from `client`; `None` when
    /// Redis could not decide (the caller decides alone).
    pub async fn admit(&self, client: &str) -> Option<Result<(), Limited>> {
        let mut invocation = self
            .script
            .key(format!("mangaassist:rate:v1:client:{client}"));
        invocation
            .key(format!("mangaassist:rate:v1:light:{client}"))
            .key("mangaassist:rate:v1:busy")
            .key("mangaassist:rate:v1:overall");
        for g in [self.client, self.light, self.busy, self.overall] {
            invocation.arg(g.interval_us).arg(g.tolerance_us);
        }
        let mut connection = self.store.connection();
        let answer = self
            .store
            .call(
                "rate_admit",
                invocation.invoke_async::<(u8, u64)>(&mut connection),
            )
            .await?;
        let wait = Duration::from_micros(answer.1);
        Some(match answer.0 {
            0 => Ok(()),
            1 => Err(Limited::Client(wait)),
            _ => Err(Limited::Overall(wait)),
        })
    }
}
