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
    /// Whether the model accepts an assistant prefill (a body ending with
    /// an assistant turn). The newest Claude models refuse one with a 400,
    /// so a cut stream is continued for them by asking, not by prefill.
    /// Absent: known for the current models by their base id
    /// ([`current_models`]), else yes (see [`ModelSpec::accepts_prefill`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<bool>,
    /// Whether Bedrock's CountTokens operation counts this model's input
    /// (asked with the base model id, see [`ModelSpec::count_tokens_model_id`]).
    /// Absent: known for the current models, else no.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_tokens: Option<bool>,
    /// Context window, tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Largest `max_tokens` the model accepts, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
}

/// Leading segments of a cross-region inference profile id
/// (`us.anthropic.claude-...`): the geography the profile routes within.
pub const PROFILE_GEOGRAPHIES: [&str; 8] =
    ["global", "us", "us-gov", "eu", "apac", "jp", "au", "ca"];

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
                prefill: None,
                count_tokens: None,
                context_window: None,
                max_output_tokens: None,
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
                prefill: None,
                count_tokens: None,
                context_window: None,
                max_output_tokens: None,
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

    /// The names [`Catalog::preset`] knows, `spec` first (the default).
    pub const PRESETS: [&'static str; 5] = [
        "spec",
        "current-global",
        "current-us",
        "current-eu",
        "current-jp",
    ];

    /// A named catalog: `spec` (SPEC 8, the default) or current Claude
    /// models on Bedrock through the cross-region inference profiles of one
    /// geography (`current-global`, `-us`, `-eu`, `-jp`; see
    /// [`current_models`] for the ids, prices and what each accepts).
    pub fn preset(name: &str) -> Result<Self, Error> {
        let geography = match name {
            "spec" => return Ok(Self::spec_default()),
            "current-global" => "global",
            "current-us" => "us",
            "current-eu" => "eu",
            "current-jp" => "jp",
            other => {
                return Err(Error::invalid_catalog(format!(
                    "no catalog preset \"{other}\"; the presets are {}",
                    Self::PRESETS.join(", ")
                )));
            }
        };
        let models = current_models()
            .into_iter()
            .map(|m| {
                // A model without a profile in this geography goes through
                // the global one (Haiku 4.5 has no `jp.` profile).
                let prefix = if m.geographies.contains(&geography) {
                    geography
                } else {
                    "global"
                };
                let spec = ModelSpec {
                    model_id: format!("{prefix}.{}", m.base_id),
                    max_tokens: m.max_tokens,
                    temperature: m.temperature,
                    input_price_per_1k: m.input_price_per_1k,
                    output_price_per_1k: m.output_price_per_1k,
                    timeout_ms: m.timeout_ms,
                    prefill: Some(m.prefill),
                    count_tokens: Some(m.count_tokens),
                    context_window: Some(m.context_window),
                    max_output_tokens: Some(m.max_output_tokens),
                };
                (m.key.to_string(), spec)
            })
            .collect();
        Ok(Catalog {
            models,
            selection: Selection {
                fast: "haiku".into(),
                quality: "sonnet".into(),
                auto_fast_max_tokens: DEFAULT_AUTO_FAST_MAX_TOKENS,
            },
        })
    }

    /// Checks that the selection names models of the catalog and that each
    /// model's settings are ones Bedrock can take.
    pub fn validate(&self) -> Result<(), Error> {
        for key in [&self.selection.fast, &self.selection.quality] {
            if !self.models.contains_key(key) {
                return Err(Error::invalid_catalog(format!(
                    "selection names model {key:?}, which is not in the catalog"
                )));
            }
        }
        for (key, m) in &self.models {
            if m.model_id.is_empty() {
                return Err(Error::invalid_catalog(format!(
                    "model {key:?} has an empty modelId"
                )));
            }
            if m.max_tokens == 0 {
                return Err(Error::invalid_catalog(format!(
                    "model {key:?}: maxTokens must be at least 1"
                )));
            }
            if let Some(most) = m.max_output_tokens.filter(|most| m.max_tokens > *most) {
                return Err(Error::invalid_catalog(format!(
                    "model {key:?}: maxTokens {} is over the model's maxOutputTokens {most}",
                    m.max_tokens
                )));
            }
            if let Some(window) = m.context_window.filter(|w| u64::from(m.max_tokens) > *w) {
                return Err(Error::invalid_catalog(format!(
                    "model {key:?}: maxTokens {} is over the model's contextWindow {window}",
                    m.max_tokens
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

/// The base model id of a model id or inference profile id: the leading
/// geography segment removed (`jp.anthropic.x` → `anthropic.x`).
pub fn base_model_id(model_id: &str) -> &str {
    match model_id.split_once('.') {
        Some((geography, rest)) if PROFILE_GEOGRAPHIES.contains(&geography) => rest,
        _ => model_id,
    }
}

/// One current Claude model on Bedrock, as the presets draw on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentModel {
    /// Catalog key in the presets.
    pub key: &'static str,
    /// Bedrock base model id (what CountTokens takes).
    pub base_id: &'static str,
    /// Geographies with a cross-region inference profile for it.
    pub geographies: &'static [&'static str],
    /// Default `max_tokens` of a body.
    pub max_tokens: u32,
    /// Default temperature.
    pub temperature: f64,
    /// USD per 1,000 input tokens (Anthropic's list price).
    pub input_price_per_1k: f64,
    /// USD per 1,000 output tokens.
    pub output_price_per_1k: f64,
    /// Per-call timeout, ms.
    pub timeout_ms: u64,
    /// Accepts an assistant prefill.
    pub prefill: bool,
    /// CountTokens counts it.
    pub count_tokens: bool,
    /// Context window, tokens.
    pub context_window: u64,
    /// Largest `max_tokens`.
    pub max_output_tokens: u32,
}

/// The current Claude models the presets offer, as published in late 2026
/// (docs/models.md gives the sources): Sonnet 4.6 and Opus 4.6 refuse an
/// assistant prefill; Haiku 4.5 accepts one. Prices are Anthropic's list
/// prices; Bedrock may charge more for a geography's profile than for the
/// global one, so a deployment checks its own price sheet.
pub fn current_models() -> [CurrentModel; 3] {
    [
        CurrentModel {
            key: "sonnet",
            base_id: "anthropic.claude-sonnet-4-6",
            geographies: &["global", "us", "eu", "jp"],
            max_tokens: 4096,
            temperature: 0.3,
            input_price_per_1k: 0.003,
            output_price_per_1k: 0.015,
            timeout_ms: 25_000,
            prefill: false,
            count_tokens: true,
            context_window: 1_000_000,
            // Sources differ (64K or 128K); the smaller is safe.
            max_output_tokens: 64_000,
        },
        CurrentModel {
            key: "opus",
            base_id: "anthropic.claude-opus-4-6-v1",
            geographies: &["global", "us", "eu", "jp", "apac"],
            max_tokens: 4096,
            temperature: 0.3,
            input_price_per_1k: 0.005,
            output_price_per_1k: 0.025,
            timeout_ms: 30_000,
            prefill: false,
            count_tokens: true,
            context_window: 1_000_000,
            max_output_tokens: 128_000,
        },
        CurrentModel {
            key: "haiku",
            base_id: "anthropic.claude-haiku-4-5-20251001-v1:0",
            geographies: &["global", "us", "eu"],
            max_tokens: 2048,
            temperature: 0.2,
            input_price_per_1k: 0.001,
            output_price_per_1k: 0.005,
            timeout_ms: 10_000,
            prefill: true,
            count_tokens: true,
            context_window: 200_000,
            max_output_tokens: 64_000,
        },
    ]
}

/// The current model `model_id` names (a base id or any profile of it).
pub fn current_model(model_id: &str) -> Option<CurrentModel> {
    let base = base_model_id(model_id);
    current_models().into_iter().find(|m| m.base_id == base)
}

impl ModelSpec {
    /// Whether a cut stream may be continued with a prefill: as the catalog
    /// says, else as known for a current model, else yes (SPEC 8's models).
    pub fn accepts_prefill(&self) -> bool {
        self.prefill
            .unwrap_or_else(|| current_model(&self.model_id).is_none_or(|m| m.prefill))
    }

    /// Whether CountTokens counts this model: as the catalog says, else as
    /// known for a current model, else no.
    pub fn counts_tokens(&self) -> bool {
        self.count_tokens
            .unwrap_or_else(|| current_model(&self.model_id).is_some_and(|m| m.count_tokens))
    }

    /// The id CountTokens is asked with: the base model id, since it
    /// refuses inference profile ids (`us.anthropic.x` becomes `anthropic.x`).
    pub fn count_tokens_model_id(&self) -> &str {
        base_model_id(&self.model_id)
    }

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
    fn presets_name_profiles_of_their_geography() {
        for name in Catalog::PRESETS {
            Catalog::preset(name).unwrap().validate().unwrap();
        }
        let jp = Catalog::preset("current-jp").unwrap();
        let sonnet = jp.get("sonnet").unwrap();
        assert_eq!(sonnet.model_id, "jp.anthropic.claude-sonnet-4-6");
        assert!(!sonnet.accepts_prefill() && sonnet.counts_tokens());
        assert_eq!(
            sonnet.count_tokens_model_id(),
            "anthropic.claude-sonnet-4-6"
        );
        // No jp. profile for Haiku 4.5: the global one.
        assert_eq!(
            jp.get("haiku").unwrap().model_id,
            "global.anthropic.claude-haiku-4-5-20251001-v1:0"
        );
        assert_eq!(jp.select(ModelPreference::Auto, "こんにちは"), "haiku");
        assert_eq!(
            Catalog::preset("current-mars").unwrap_err().code(),
            "invalid_catalog"
        );
        assert_eq!(Catalog::preset("spec").unwrap(), Catalog::spec_default());
        let plain = Catalog::spec_default();
        let haiku = plain.get("haiku").unwrap();
        assert_eq!(haiku.count_tokens_model_id(), haiku.model_id);
    }

    #[test]
    fn a_hand_written_entry_for_a_current_model_knows_what_it_accepts() {
        let spec: ModelSpec = serde_json::from_str(
            r#"{"modelId":"jp.anthropic.claude-sonnet-4-6","maxTokens":1000,"temperature":0.3,
                "inputPricePer1k":0.003,"outputPricePer1k":0.015,"timeoutMs":25000}"#,
        )
        .unwrap();
        assert!(!spec.accepts_prefill() && spec.counts_tokens());
        let mut told = spec.clone();
        told.prefill = Some(true);
        told.count_tokens = Some(false);
        assert!(told.accepts_prefill() && !told.counts_tokens());
    }

    #[test]
    fn validation_refuses_settings_bedrock_cannot_take() {
        let mut c = Catalog::preset("current-us").unwrap();
        if let Some(m) = c.models.get_mut("haiku") {
            m.max_tokens = 70_000;
        }
        let e = c.validate().unwrap_err();
        assert_eq!(e.code(), "invalid_catalog");
        assert!(e.message().contains("maxOutputTokens 64000"), "{e}");
    }

    #[test]
    fn old_catalogs_still_read_and_write_alike() {
        let text = serde_json::to_string(&Catalog::spec_default()).unwrap();
        assert!(!text.contains("prefill") && !text.contains("countTokens"));
        let back: Catalog = serde_json::from_str(&text).unwrap();
        assert!(back.get("sonnet").unwrap().accepts_prefill());
        assert!(!back.get("sonnet").unwrap().counts_tokens());
        let text = serde_json::to_string(&Catalog::preset("current-us").unwrap()).unwrap();
        assert!(text.contains(r#""prefill":false"#), "{text}");
    }

    #[test]
    fn cost_follows_the_formula() {
        let c = Catalog::spec_default();
        let cost = c.cost("sonnet", 1000, 2000).unwrap();
        assert!((cost - (0.003 + 0.030)).abs() < 1e-12);
        assert_eq!(c.cost("opus", 1, 1).unwrap_err().code(), "unknown_model");
    }
}
