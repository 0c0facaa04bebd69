//! `/metrics` in the Prometheus text format: requests by status, refusals by
//! code, cache hits, Bedrock calls and failures per region, region cooldowns,
//! latency, tokens and cost. prometheus-client (the Prometheus project's own
//! Rust client) keeps it lock-free on the request path.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use mangaassist_bedrock::classify::RegionFailure;
use mangaassist_bedrock::health::RegionStatus;
use mangaassist_bedrock::invoker::{Reply, Spent};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionOutcomeLabels {
    region: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabels {
    region: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric the service keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    rejections: Family<CodeLabels, Counter>,
    cache: Family<OutcomeLabels, Counter>,
    invocations: Family<RegionOutcomeLabels, Counter>,
    latency: Latency,
    tokens: Family<DirectionLabels, Counter>,
    cost: Counter<f64, AtomicU64>,
    cooling: Family<RegionLabels, Gauge<f64, AtomicU64>>,
    consecutive: Family<RegionLabels, Gauge>,
    connections_open: Gauge,
    policy_instances_ready: Gauge,
    connections_turned_away: Family<ReasonLabels, Counter>,
    stores: crate::store_metrics::StoreMetrics,
    estimator_error: Family<EstimatorLabels, Gauge<f64, AtomicU64>>,
    estimator_samples: Gauge,
    count_tokens: Family<OutcomeLabels, Counter>,
    count_tokens_seconds: Histogram,
    /// Totals already counted, so each render adds only what is new.
    turned_away_seen: std::sync::Mutex<(u64, u64)>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EstimatorLabels {
    estimator: &'static str,
    script: &'static str,
    quantile: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The public listener's connections as of now.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionStats {
    /// Open.
    pub open: usize,
    /// Closed so far to make room for new ones (they were idle).
    pub evicted: u64,
    /// New ones dropped so far because every open one was busy.
    pub refused: u64,
    /// Policy instances ready for a call (not a connection figure, but
    /// read at the same moment).
    pub policy_ready: usize,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics at zero, registered under `mangaassist_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mangaassist");
        let m = Metrics {
            requests: Family::default(),
            rejections: Family::default(),
            cache: Family::default(),
            invocations: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            tokens: Family::default(),
            cost: Counter::default(),
            cooling: Family::default(),
            consecutive: Family::default(),
            connections_open: Gauge::default(),
            policy_instances_ready: Gauge::default(),
            connections_turned_away: Family::default(),
            stores: crate::store_metrics::StoreMetrics::default(),
            estimator_error: Family::default(),
            estimator_samples: Gauge::default(),
            count_tokens: Family::default(),
            count_tokens_seconds: latency_histogram(),
            turned_away_seen: std::sync::Mutex::new((0, 0)),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests answered, by route and HTTP status",
            m.requests.clone(),
        );
        registry.register(
            "rejections",
            "Requests refused, by error code",
            m.rejections.clone(),
        );
        registry.register(
            "cache_lookups",
            "Response cache lookups, by outcome (hit, miss)",
            m.cache.clone(),
        );
        registry.register(
            "bedrock_invocations",
            "Bedrock calls, by region and outcome (answered, failed)",
            m.invocations.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's headers to its answer (reading its body included), by route",
            m.latency.clone(),
        );
        registry.register(
            "tokens",
            "Tokens reported by the models, by direction (input, output)",
            m.tokens.clone(),
        );
        registry.register(
            "cost_usd",
            "Cost of the answered calls, USD",
            m.cost.clone(),
        );
        registry.register(
            "region_cooldown_seconds",
            "Seconds until a cooling region is tried again (0: available)",
            m.cooling.clone(),
        );
        registry.register(
            "region_consecutive_failures",
            "Consecutive failures of a region",
            m.consecutive.clone(),
        );
        registry.register(
            "connections_open",
            "Open connections on the public listener",
            m.connections_open.clone(),
        );
        registry.register(
            "policy_instances_ready",
            "Policy component instances made and warmed up, waiting for a call (bounded; a leak shows here)",
            m.policy_instances_ready.clone(),
        );
        registry.register(
            "connections_turned_away",
            "Connections closed at the cap: evicted (idle, to make room) or refused (every one busy)",
            m.connections_turned_away.clone(),
        );
        registry.register(
            "store_call_seconds",
            "Time of calls to the shared stores on the request path, by store (redis, dynamodb) and operation",
            m.stores.seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Calls to the shared stores that failed or timed out, by store and operation; each one fell back (cache bypassed, per-replica limits, answer without history)",
            m.stores.errors.clone(),
        );
        registry.register(
            "store_writes_waiting",
            "Session exchanges answered while DynamoDB was down, waiting to be written",
            m.stores.waiting.clone(),
        );
        registry.register(
            "store_writes_dropped",
            "Writes given up after waiting for a store that was down (its queue of waiting writes was full)",
            m.stores.dropped.clone(),
        );
        registry.register(
            "estimator_error_ratio",
            "Relative error |estimate - reported| / reported of the input-token estimators (reference: SPEC 5; calibrated: fitted online), over recent answers, by the body's main script and quantile",
            m.estimator_error.clone(),
        );
        registry.register(
            "estimator_samples",
            "Samples the calibrated estimator's online fit has taken",
            m.estimator_samples.clone(),
        );
        registry.register(
            "count_tokens",
            "CountTokens calls before a Bedrock call, by outcome (counted, cached, failed)",
            m.count_tokens.clone(),
        );
        registry.register(
            "count_tokens_seconds",
            "Time of the CountTokens calls made (cached counts excluded)",
            m.count_tokens_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The estimators' recent error quantiles and the fit's samples, as of now.
    pub fn estimator_errors(
        &self,
        summaries: &[mangaassist_core::calibration::ErrorSummary],
        samples: u64,
    ) {
        self.estimator_samples
            .set(i64::try_from(samples).unwrap_or(i64::MAX));
        for q in summaries {
            for (quantile, value) in [("0.5", q.p50), ("0.9", q.p90)] {
                self.estimator_error
                    .get_or_create(&EstimatorLabels {
                        estimator: q.estimator,
                        script: q.script,
                        quantile,
                    })
                    .set(value);
            }
        }
    }

    /// One CountTokens lookup: `counted` (called, `took`), `cached` or `failed`.
    pub fn count_tokens(&self, outcome: &'static str, took: Option<Duration>) {
        self.count_tokens
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if let Some(took) = took {
            self.count_tokens_seconds.observe(took.as_secs_f64());
        }
    }

    /// The shared stores' series, for the stores to record into.
    pub fn stores(&self) -> crate::store_metrics::StoreMetrics {
        self.stores.clone()
    }

    /// One answered request.
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// One refusal.
    pub fn rejection(&self, code: &str) {
        self.rejections
            .get_or_create(&CodeLabels {
                code: code.to_string(),
            })
            .inc();
    }

    /// One cache lookup.
    pub fn cache(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Region failures on the way to an answer or an error.
    pub fn region_failures(&self, failures: &[RegionFailure]) {
        for f in failures {
            self.invocations
                .get_or_create(&RegionOutcomeLabels {
                    region: f.region.clone(),
                    outcome: "failed",
                })
                .inc();
        }
    }

    /// An answer from Bedrock: its region, failures before it, tokens, cost.
    pub fn reply(&self, reply: &Reply) {
        self.region_failures(&reply.failures);
        self.invocations
            .get_or_create(&RegionOutcomeLabels {
                region: reply.region.clone(),
                outcome: "answered",
            })
            .inc();
        self.spent(Spent {
            usage: reply.usage,
            cost_usd: reply.cost_usd,
        });
    }

    /// Tokens and cost of a request's attempts, answered or not.
    pub fn spent(&self, spent: Spent) {
        self.tokens
            .get_or_create(&DirectionLabels { direction: "input" })
            .inc_by(spent.usage.input_tokens);
        self.tokens
            .get_or_create(&DirectionLabels {
                direction: "output",
            })
            .inc_by(spent.usage.output_tokens);
        self.cost.inc_by(spent.cost_usd);
    }

    /// The text exposition, with region health and connections as of now.
    pub fn render(
        &self,
        regions: &[RegionStatus],
        connections: ConnectionStats,
    ) -> Result<String, std::fmt::Error> {
        self.connections_open
            .set(i64::try_from(connections.open).unwrap_or(i64::MAX));
        self.policy_instances_ready
            .set(i64::try_from(connections.policy_ready).unwrap_or(i64::MAX));
        {
            let mut seen = self
                .turned_away_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (evicted_seen, refused_seen) = &mut *seen;
            for (reason, total, last) in [
                ("evicted", connections.evicted, evicted_seen),
                ("refused", connections.refused, refused_seen),
            ] {
                self.connections_turned_away
                    .get_or_create(&ReasonLabels { reason })
                    .inc_by(total.saturating_sub(*last));
                *last = total.max(*last);
            }
        }
        for r in regions {
            let labels = RegionLabels {
                region: r.region.clone(),
            };
            self.cooling
                .get_or_create(&labels)
                .set(r.cooling_for.map_or(0.0, |d| d.as_secs_f64()));
            self.consecutive
                .get_or_create(&labels)
                .set(i64::from(r.consecutive_failures));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
