//! The calibrated estimator, online: every answer a single call gave adds
//! a sample (the body sent, the input tokens the model reported), the
//! weights are refitted as samples come, published at `GET /v1/estimator`
//! for the widget, and the error of both estimators is kept for
//! `/metrics`. The fitting itself is the core's ([`Fit`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use mangaassist_core::body::ClaudeBody;
use mangaassist_core::calibration::{
    Calibration, ErrorSummary, Fit, ScriptCounts, relative_error, summarize,
};
use mangaassist_core::spend::reference_input_tokens;
use serde::Serialize;

/// Errors kept per estimator and script for the quantiles: the recent
/// ones, so the figures follow a model or prompt change.
const KEPT_ERRORS: usize = 1024;

/// Samples between two refits once the fit is published.
const REFIT_EVERY: u64 = 25;

/// What `GET /v1/estimator` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The weights to estimate with; none until there are any.
    pub calibration: Option<Calibration>,
    /// `configured`, `online` (fitted here) or `none`.
    pub source: &'static str,
}

struct State {
    fit: Fit,
    published: Option<Calibration>,
    source: &'static str,
    errors: BTreeMap<(&'static str, &'static str), VecDeque<f64>>,
}

/// The online estimator of one replica.
pub struct Estimator {
    state: Mutex<State>,
    online: bool,
    min_samples: u64,
}

impl Estimator {
    /// Starts from `configured` weights (fitted offline with `mangaassist
    /// calibrate`), if any; with `online`, its own fit replaces them once it
    /// has `min_samples` samples.
    pub fn new(configured: Option<Calibration>, online: bool, min_samples: u64) -> Self {
        Estimator {
            state: Mutex::new(State {
                fit: Fit::new(),
                published: configured,
                source: if configured.is_some() {
                    "configured"
                } else {
                    "none"
                },
                errors: BTreeMap::new(),
            }),
            online,
            min_samples: min_samples.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain numbers: still whole after a panic elsewhere.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One answered call: `body` was sent and the model reported `reported`
    /// input tokens for it (0: none reported, the sample is skipped).
    pub fn observe(&self, body: &ClaudeBody, reported: u64) {
        // No count reported (a reply without usage): nothing to learn from.
        if reported == 0 {
            return;
        }
        let counts = ScriptCounts::of_body(body);
        // Errors are reported by the script of the new message: the system
        // prompt, the same in every body, would decide otherwise.
        let script = body
            .messages
            .last()
            .map_or("other", |turn| ScriptCounts::of(&turn.content).dominant());
        let reference = reference_input_tokens(body);
        let mut state = self.lock();
        // The counts above serve the calibrated estimate too: one pass.
        let calibrated = state.published.map(|c| c.estimate_counts(counts));
        let mut keep = |estimator: &'static str, estimate: u64| {
            let ring = state.errors.entry((estimator, script)).or_default();
            if ring.len() == KEPT_ERRORS {
                ring.pop_front();
            }
            ring.push_back(relative_error(estimate, reported));
        };
        keep("reference", reference);
        if let Some(estimate) = calibrated {
            keep("calibrated", estimate);
        }
        if !self.online {
            return;
        }
        state.fit.add(counts, reported);
        let n = state.fit.samples();
        if n >= self.min_samples && (n == self.min_samples || n.is_multiple_of(REFIT_EVERY)) {
            match state.fit.solve() {
                Ok(c) => {
                    state.published = Some(c);
                    state.source = "online";
                }
                Err(e) => tracing::debug!(error = %e, samples = n, "estimator: no fit yet"),
            }
        }
    }

    /// The weights to publish.
    pub fn published(&self) -> Published {
        let state = self.lock();
        Published {
            calibration: state.published,
            source: state.source,
        }
    }

    /// Samples the online fit has taken: for `/metrics` on the admin
    /// listener only (a public count would tell the traffic).
    pub fn samples(&self) -> u64 {
        self.lock().fit.samples()
    }

    /// p50 and p90 of each estimator's recent relative error, per script
    /// that has samples.
    pub fn error_summaries(&self) -> Vec<ErrorSummary> {
        let state = self.lock();
        summarize(|estimator, script| {
            state
                .errors
                .get(&(estimator, script))
                .map(|ring| ring.iter().copied().collect())
                .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use mangaassist_core::body::{BodySettings, build_body};

    fn body(message: &str) -> ClaudeBody {
        let settings = BodySettings {
            system: "s",
            max_tokens: 10,
            temperature: 0.2,
        };
        build_body(message, &[], settings).unwrap()
    }

    #[test]
    fn publishes_once_it_has_enough_samples_and_reports_errors() {
        let truth = Calibration {
            kana: 1.0,
            kanji: 1.2,
            latin_word: 1.3,
            other: 0.4,
            per_request: 5.0,
        };
        let e = Estimator::new(None, true, 40);
        assert_eq!(e.published().source, "none");
        for i in 0..60u32 {
            let message = format!(
                "{}{}{}{}",
                "あ".repeat((i % 7) as usize),
                "漫画".repeat((i % 5) as usize),
                " manga".repeat((i % 3) as usize + (i % 11) as usize),
                "!".repeat((i % 13) as usize)
            );
            let b = body(&message);
            e.observe(&b, truth.estimate_body(&b));
            if i == 38 {
                assert!(e.published().calibration.is_none());
            }
        }
        let p = e.published();
        assert_eq!((p.source, e.samples()), ("online", 60));
        let c = p.calibration.unwrap();
        assert!((c.kanji - 1.2).abs() < 0.1, "{c:?}");
        let q = e.error_summaries();
        assert!(q.iter().any(|q| q.estimator == "reference"));
        // The calibrated error is smaller than the reference's.
        let worst = |name: &str| {
            q.iter()
                .filter(|q| q.estimator == name)
                .map(|q| q.p90)
                .fold(0.0, f64::max)
        };
        assert!(worst("calibrated") < worst("reference"), "{q:?}");
    }

    #[test]
    fn configured_weights_stay_when_not_online() {
        let e = Estimator::new(Some(Calibration::REFERENCE), false, 1);
        e.observe(&body("hello"), 30);
        let p = e.published();
        assert_eq!((p.source, e.samples()), ("configured", 0));
        assert_eq!(p.calibration, Some(Calibration::REFERENCE));
    }
}
