//! What a call may spend at most, known before it is made: the budget a
//! service reserves for it (denial-of-wallet control), settled afterwards
//! with the usage the model reports.

use serde::Serialize;

use crate::body::ClaudeBody;
use crate::models::ModelSpec;
use crate::tokens::estimate_tokens_reference;

/// The most a call of one body to one model is expected to spend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpendEstimate {
    /// SPEC 5 estimate of the input: system prompt and every turn.
    pub input_tokens: u64,
    /// The body's generation limit: the most output it can cost.
    pub max_output_tokens: u64,
    /// `input_tokens + max_output_tokens`, for a tokens-per-minute budget.
    pub tokens: u64,
    /// Cost of `input_tokens` in and `max_output_tokens` out, USD.
    pub usd: f64,
}

impl SpendEstimate {
    /// Each figure the larger of the two: what to reserve for a call that
    /// may go to either body (the selected model's, or the fallback's).
    pub fn max(self, other: Self) -> Self {
        SpendEstimate {
            input_tokens: self.input_tokens.max(other.input_tokens),
            max_output_tokens: self.max_output_tokens.max(other.max_output_tokens),
            tokens: self.tokens.max(other.tokens),
            usd: self.usd.max(other.usd),
        }
    }
}

/// The spend to reserve before sending `body` to `spec`: the estimated
/// input and the whole generation limit, so a reservation is never short
/// of what the model can bill (the estimate errs high for CJK text).
pub fn estimate_spend(spec: &ModelSpec, body: &ClaudeBody) -> SpendEstimate {
    spend_with_input(spec, body, reference_input_tokens(body))
}

/// The SPEC 5 estimate of a body's input: its system prompt and every turn.
pub fn reference_input_tokens(body: &ClaudeBody) -> u64 {
    estimate_tokens_reference(&body.system)
        + body
            .messages
            .iter()
            .map(|turn| estimate_tokens_reference(&turn.content))
            .sum::<u64>()
}

/// The spend to reserve when the input is known exactly (Bedrock's
/// CountTokens): those input tokens and the whole generation limit.
pub fn spend_with_input(spec: &ModelSpec, body: &ClaudeBody, input_tokens: u64) -> SpendEstimate {
    let max_output_tokens = u64::from(body.max_tokens);
    SpendEstimate {
        input_tokens,
        max_output_tokens,
        tokens: input_tokens.saturating_add(max_output_tokens),
        usd: spec.cost(input_tokens, max_output_tokens),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::api::{BodyInput, body_report_for};
    use crate::body::Turn;
    use crate::models::{Catalog, ModelPreference};

    #[test]
    fn reserves_the_whole_generation_limit_and_every_turn() {
        let catalog = Catalog::spec_default();
        let input = BodyInput {
            message: "ワンピースの最新刊は？".into(),
            history: vec![Turn::new("user", "hello"), Turn::new("assistant", "hi")],
            system: Some("be brief".into()),
            max_tokens: Some(500),
            temperature: None,
            model_preference: ModelPreference::Auto,
            catalog: None,
        };
        let report = body_report_for(&catalog, "sonnet", &input).unwrap();
        let spec = catalog.get("sonnet").unwrap();
        let spend = estimate_spend(spec, &report.body);
        let expected_input = ["be brief", "hello", "hi", "ワンピースの最新刊は？"]
            .iter()
            .map(|t| estimate_tokens_reference(t))
            .sum::<u64>();
        assert_eq!(spend.input_tokens, expected_input);
        assert_eq!(spend.max_output_tokens, 500);
        assert_eq!(spend.tokens, expected_input + 500);
        assert_eq!(spend.usd, spec.cost(expected_input, 500));
        // The fallback's body: figure by figure, the larger one.
        let haiku = estimate_spend(catalog.get("haiku").unwrap(), &report.body);
        let most = spend.max(haiku);
        assert_eq!(most.tokens, spend.tokens.max(haiku.tokens));
        assert_eq!(most.usd, spend.usd.max(haiku.usd));
        assert_eq!(most, haiku.max(spend), "order does not matter");
    }
}
