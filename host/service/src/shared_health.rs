//! Region cooldowns shared by the fleet through Redis: a cooldown one
//! replica starts is published at once (`SET … PX <cooldown>`), and every
//! replica reads the others' four times a second, so one replica's failure
//! cools the region for all instead of each learning of an outage on its
//! own. Redis failing costs only the sharing: each replica keeps its own.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::Service;
use crate::redis_store::RedisStore;

/// How often a replica reads the fleet's cooldowns.
const EVERY: Duration = Duration::from_millis(250);

/// The value under `mangaassist:region:v1:<region>`, expiring with the
/// cooldown.
#[derive(Serialize, Deserialize)]
struct Cooling {
    failures: u32,
    error: String,
}

fn key(region: &str) -> String {
    format!("mangaassist:region:v1:{region}")
}

/// Each key's remaining time (ms, negative when absent) and value.
const READ: &str = r"
local out = {}
for _, k in ipairs(KEYS) do
  out[#out + 1] = tostring(redis.call('PTTL', k))
  out[#out + 1] = redis.call('GET', k) or ''
end
return out
";

/// Publishes this replica's cooldowns and follows the others' until
/// `stopping`.
pub fn share(
    svc: Arc<Service>,
    store: Arc<RedisStore>,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), String> {
    let publisher = Arc::clone(&store);
    svc.invoker
        .health()
        .on_cooldown(Box::new(move |region, cooldown, failures, error| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let store = Arc::clone(&publisher);
            let key = key(region);
            let value = serde_json::to_string(&Cooling {
                failures,
                error: error.to_string(),
            })
            .unwrap_or_default();
            let ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX);
            runtime.spawn(async move {
                let options =
                    redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms));
                let mut connection = store.connection();
                store
                    .call(
                        "cooldown_set",
                        redis::AsyncCommands::set_options::<_, _, ()>(
                            &mut connection,
                            key,
                            value,
                            options,
                        ),
                    )
                    .await;
            });
        }))?;
    let regions: Vec<String> = svc
        .invoker
        .health()
        .snapshot()
        .into_iter()
        .map(|r| r.region)
        .collect();
    let script = redis::Script::new(READ);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            let mut invocation = script.prepare_invoke();
            for region in &regions {
                invocation.key(key(region));
            }
            let mut connection = store.connection();
            let read = invocation.invoke_async::<Vec<String>>(&mut connection);
            let Some(values) = store.call("cooldown_read", read).await else {
                continue;
            };
            for (region, pair) in regions.iter().zip(values.chunks(2)) {
                let (Some(ttl), Some(value)) = (pair.first(), pair.get(1)) else {
                    continue;
                };
                let Ok(ms) = ttl.parse::<i64>() else { continue };
                let Ok(cooling) = serde_json::from_str::<Cooling>(value) else {
                    continue;
                };
                if ms > 0 {
                    svc.invoker.health().cool_from_elsewhere(
                        region,
                        Duration::from_millis(ms.unsigned_abs()),
                        cooling.failures,
                        &cooling.error,
                    );
                }
            }
        }
    });
    Ok(())
}
