//! Latency and failures of the shared stores (Redis, DynamoDB), one
//! histogram and one counter labelled by store and operation: how an
//! operator sees a slow or failing store before users do.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StoreLabels {
    store: &'static str,
    operation: &'static str,
}

fn store_histogram() -> Histogram {
    // 50 µs to ~1.6 s: a loopback Redis hit is ~100 µs, a timeout 50 ms+.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The stores' metrics; clones share the same series.
#[derive(Clone)]
pub struct StoreMetrics {
    pub(crate) seconds: Family<StoreLabels, Histogram, fn() -> Histogram>,
    pub(crate) errors: Family<StoreLabels, Counter>,
    pub(crate) dropped: Family<StoreLabels, Counter>,
    /// Session exchanges waiting for DynamoDB to answer again.
    pub(crate) waiting: Gauge,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            seconds: Family::new_with_constructor(store_histogram as fn() -> Histogram),
            errors: Family::default(),
            dropped: Family::default(),
            waiting: Gauge::default(),
        }
    }
}

impl StoreMetrics {
    /// How many session exchanges wait for DynamoDB now.
    pub fn set_waiting(&self, count: usize) {
        self.waiting.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The waiting gauge as last set.
    pub fn waiting(&self) -> i64 {
        self.waiting.get()
    }

    /// One write given up after waiting for `store` too long (the queue of
    /// waiting writes was full).
    pub fn dropped(&self, store: &'static str) {
        self.dropped
            .get_or_create(&StoreLabels {
                store,
                operation: "waiting_write",
            })
            .inc();
    }

    /// Failed or timed-out calls to `store` so far, every operation.
    pub fn errors_of(&self, store: &'static str, operations: &[&'static str]) -> u64 {
        operations
            .iter()
            .map(|&operation| {
                self.errors
                    .get_or_create(&StoreLabels { store, operation })
                    .get()
            })
            .sum()
    }
}

/// One call to a store, timed from its start.
pub struct StoreCall<'a> {
    metrics: &'a StoreMetrics,
    labels: StoreLabels,
    started: Instant,
}

impl<'a> StoreCall<'a> {
    /// Starts the clock.
    pub fn start(metrics: &'a StoreMetrics, store: &'static str, operation: &'static str) -> Self {
        StoreCall {
            metrics,
            labels: StoreLabels { store, operation },
            started: Instant::now(),
        }
    }

    /// The store answered.
    pub fn ok(self) {
        self.metrics
            .seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }

    /// The store failed or was too slow (timed, and counted).
    pub fn failed(self) {
        self.metrics.errors.get_or_create(&self.labels).inc();
        self.ok();
    }
}
