//! SPEC 8: the model catalog, model selection and cost.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::tokens::estimate_tokens_reference;

/// One model's operating parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    /// Bedrock model id or inference profile id (e.g. `us.anthropic...`).
    pub model_id: String,
    /// Default `max_tokens` of a body for this model.
    pub max_tokens: u32,
    /// Default sampling temperature.
    pub temperature: f64,
    /// US dollars per 1,000 input tokens.
    pub input_price_per_1k: f64,
    /// US dollars per 1,000 output tokens.
    pub output_price_per_1k: f64,
    /// Per-call timeout, in milliseconds.
    pub timeout_ms: u64,
}

/// `modelPreference` of a chat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModelPreference {
    /// Cheap model for short turns, quality model otherwise (see [`Selection`]).
    #[default]
    Auto,
    /// Always the fast model.
    Fast,
    /// Always the quality model.
    Quality,
}

/// How a preference maps to catalog keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selection {
    /// Catalog key used for `fast`.
    pub fast: String,
    /// Catalog key used for `quality`.
    pub quality: String,
    /// `auto` picks the fast model when the message's reference token
    /// estimate is at most this, the quality model otherwise.
    pub auto_fast_max_tokens: u64,
}

/// The model a message goes to: what every engine reports for a selection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelChoice {
    /// Catalog key, e.g. `haiku`.
    pub key: String,
    /// Bedrock model id.
    pub id: String,
}

/// Catalog plus selection rule: configuration data, SPEC 8 defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    /// Models by key (`sonnet`, `haiku`, ...).
    pub models: BTreeMap<String, ModelSpec>,
    /// The preference rule.
    pub selection: Selection,
}

/// Default threshold of `auto`: a short chat turn (a greeting, a title
/// lookup, a yes/no question) estimates well under 200 tokens.
pub const DEFAULT_AUTO_FAST_MAX_TOKENS: u64 = 200;

impl Catalog {
    /// The catalog of SPEC 8.
    pub fn spec_default() -> Self {
        let mut models = BTreeMap::new();
        models.insert(
            "sonnet".to_string(),
            ModelSpec {
                model_id: "anthropic.claude-3-sonnet-20240229-v1:0".into(),
                max_tokens: 4096,
                temperature: 0.3,
                input_price_per_1k: 0.003,
                output_price_per_1k: 0.015,
                timeout_ms: 25_000,
            },
        );
        models.insert(
            "haiku".to_string(),
            ModelSpec {
                model_id: "anthropic.claude-3-haiku-20240307-v1:0".into(),
                max_tokens: 2048,
                temperature: 0.2,
                input_price_per_1k: 0.00025,
                output_price_per_1k: 0.00125,
                timeout_ms: 10_000,
            },
        );
        Catalog {
            models,
            selection: Selection {
                fast: "haiku".into(),
                quality: "sonnet".into(),
                auto_fast_max_tokens: DEFAULT_AUTO_FAST_MAX_TOKENS,
            },
        }
    }

    /// Checks that the selection names models of the catalog.
    pub fn validate(&self) -> Result<(), Error> {
        for key in [&self.selection.fast, &self.selection.quality] {
            if !self.models.contains_key(key) {
                return Err(Error::invalid_catalog(format!(
                    "selection names model {key:?}, which is not in the catalog"
                )));
            }
        }
        Ok(())
    }

    /// The spec of a model key, or `unknown_model`.
    pub fn get(&self, key: &str) -> Result<&ModelSpec, Error> {
        self.models
            .get(key)
            .ok_or_else(|| Error::unknown_model(format!("no model {key:?} in the catalog")))
    }

    /// The catalog key chosen for `preference` and this user `message`.
    pub fn select(&self, preference: ModelPreference, message: &str) -> &str {
        let s = &self.selection;
        match preference {
            ModelPreference::Fast => &s.fast,
            ModelPreference::Quality => &s.quality,
            ModelPreference::Auto
                if estimate_tokens_reference(message) <= s.auto_fast_max_tokens =>
            {
                &s.fast
            }
            ModelPreference::Auto => &s.quality,
        }
    }

    /// The model chosen for `preference` and this user `message`, as reported
    /// to callers; `unknown_model` when the selection names a missing model.
    pub fn choice(&self, preference: ModelPreference, message: &str) -> Result<ModelChoice, Error> {
        self.choose(preference, message).map(|(choice, _)| choice)
    }

    /// [`Catalog::choice`] plus the chosen model's spec, for callers that
    /// also need its defaults.
    pub(crate) fn choose(
        &self,
        preference: ModelPreference,
        message: &str,
    ) -> Result<(ModelChoice, &ModelSpec), Error> {
        self.model(self.select(preference, message))
    }

    /// The model `key` as a [`ModelChoice`] with its spec: the one place a
    /// choice is built, so every report names models alike.
    pub(crate) fn model(&self, key: &str) -> Result<(ModelChoice, &ModelSpec), Error> {
        let spec = self.get(key)?;
        let choice = ModelChoice {
            key: key.to_string(),
            id: spec.model_id.clone(),
        };
        Ok((choice, spec))
    }

    /// Dollar cost of a call: in/1000·price_in + out/1000·price_out.
    pub fn cost(&self, key: &str, input_tokens: u64, output_tokens: u64) -> Result<f64, Error> {
        Ok(self.get(key)?.cost(input_tokens, output_tokens))
    }
}

impl ModelSpec {
    /// Dollar cost of `input_tokens` in and `output_tokens` out.
    #[allow(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^53"
    )]
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 / 1000.0) * self.input_price_per_1k
            + (output_tokens as f64 / 1000.0) * self.output_price_per_1k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_map_to_models() {
        let c = Catalog::spec_default();
        c.validate().unwrap();
        assert_eq!(c.select(ModelPreference::Fast, "x"), "haiku");
        assert_eq!(c.select(ModelPreference::Quality, "x"), "sonnet");
        assert_eq!(c.select(ModelPreference::Auto, "こんにちは"), "haiku");
        assert_eq!(
            c.select(ModelPreference::Auto, &"漫画".repeat(100)),
            "sonnet"
        );
    }

    #[test]
    fn choice_names_the_selected_model() {
        let c = Catalog::spec_default();
        assert_eq!(
            c.choice(ModelPreference::Quality, "x").unwrap(),
            ModelChoice {
                key: "sonnet".into(),
                id: "anthropic.claude-3-sonnet-20240229-v1:0".into(),
            }
        );
        assert_eq!(
            c.choice(ModelPreference::Auto, "こんにちは").unwrap().key,
            "haiku"
        );
        let mut broken = c.clone();
        broken.selection.fast = "opus".into();
        assert_eq!(
            broken
                .choice(ModelPreference::Fast, "x")
                .unwrap_err()
                .code(),
            "unknown_model"
        );
    }

    #[test]
    fn cost_follows_the_formula() {
        let c = Catalog::spec_default();
        let cost = c.cost("sonnet", 1000, 2000).unwrap();
        assert!((cost - (0.003 + 0.030)).abs() < 1e-12);
        assert_eq!(c.cost("opus", 1, 1).unwrap_err().code(), "unknown_model");
    }
}
