//! SPEC 6: the Claude Messages body sent to Bedrock.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Bedrock's Messages API version string.
pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";
/// How many history turns go into a body.
pub const HISTORY_WINDOW: usize = 10;

/// The store's default system prompt (our own wording).
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are MangaAssist, the shop assistant of an online manga store in Japan. \
Help customers discover series and volumes, answer questions about titles, authors, \
genres, formats and orders, and suggest what to read next. Reply in the customer's \
language; in Japanese, use polite keigo. Refer only to titles, ISBNs and prices you \
have been given, and say so plainly when you do not know.";

/// One conversation turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl Turn {
    /// A turn with the given role and text.
    pub fn new(role: &str, content: &str) -> Self {
        Turn {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A Claude Messages body in Bedrock's own (snake_case) field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaudeBody {
    /// Always [`ANTHROPIC_VERSION`].
    pub anthropic_version: String,
    /// Generation limit.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f64,
    /// System prompt.
    pub system: String,
    /// Alternating turns starting with `user`, ending with the new user turn.
    pub messages: Vec<Turn>,
}

/// Generation settings of a body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodySettings<'a> {
    /// System prompt.
    pub system: &'a str,
    /// Generation limit (at least 1).
    pub max_tokens: u32,
    /// Sampling temperature, 0 to 1.
    pub temperature: f64,
}

/// Builds the body for `message` after `history` (oldest first).
///
/// Takes the last [`HISTORY_WINDOW`] turns, drops assistant turns at the
/// window's start and joins consecutive turns of one role with a blank line,
/// so Bedrock always sees `user` first and strict alternation.
pub fn build_body(
    message: &str,
    history: &[Turn],
    settings: BodySettings<'_>,
) -> Result<ClaudeBody, Error> {
    if let Some((i, t)) = history
        .iter()
        .enumerate()
        .find(|(_, t)| t.role != "user" && t.role != "assistant")
    {
        return Err(Error::invalid_history(format!(
            "history turn {i} has role \"{}\"; expected \"user\" or \"assistant\"",
            t.role
        )));
    }
    if settings.max_tokens == 0 {
        return Err(Error::invalid_argument("maxTokens must be at least 1"));
    }
    if !(0.0..=1.0).contains(&settings.temperature) {
        return Err(Error::invalid_argument(format!(
            "temperature must be between 0 and 1, got {}",
            crate::pyjson::python_float(settings.temperature)
        )));
    }
    let window = history
        .get(history.len().saturating_sub(HISTORY_WINDOW)..)
        .unwrap_or_default();
    let mut messages: Vec<Turn> = Vec::with_capacity(window.len() + 1);
    let user_turn = Turn::new("user", message);
    for turn in window.iter().chain(std::iter::once(&user_turn)) {
        match messages.last_mut() {
            None if turn.role == "assistant" => {}
            Some(last) if last.role == turn.role => {
                last.content.push_str("\n\n");
                last.content.push_str(&turn.content);
            }
            _ => messages.push(turn.clone()),
        }
    }
    Ok(ClaudeBody {
        anthropic_version: ANTHROPIC_VERSION.to_string(),
        max_tokens: settings.max_tokens,
        temperature: settings.temperature,
        system: settings.system.to_string(),
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: BodySettings<'static> = BodySettings {
        system: "s",
        max_tokens: 10,
        temperature: 0.5,
    };

    fn roles(b: &ClaudeBody) -> Vec<&str> {
        b.messages.iter().map(|t| t.role.as_str()).collect()
    }

    #[test]
    fn repairs_role_order() {
        let h = [
            Turn::new("assistant", "a0"),
            Turn::new("user", "u1"),
            Turn::new("user", "u2"),
            Turn::new("assistant", "a3"),
            Turn::new("user", "u4"),
        ];
        let b = build_body("new", &h, S).unwrap();
        assert_eq!(roles(&b), ["user", "assistant", "user"]);
        assert_eq!(b.messages[0].content, "u1\n\nu2");
        assert_eq!(b.messages[2].content, "u4\n\nnew");
    }

    #[test]
    fn keeps_the_last_ten_turns() {
        let h: Vec<Turn> = (0..13)
            .map(|i| {
                Turn::new(
                    if i % 2 == 0 { "user" } else { "assistant" },
                    &i.to_string(),
                )
            })
            .collect();
        let b = build_body("new", &h, S).unwrap();
        // Window is turns 3..=12; turn 3 (assistant) is dropped; 12 (user) joins "new".
        assert_eq!(b.messages.len(), 9);
        assert_eq!(b.messages[0].content, "4");
        assert_eq!(b.messages[8].content, "12\n\nnew");
    }

    #[test]
    fn refuses_unknown_roles() {
        let h = [Turn::new("system", "x")];
        assert_eq!(
            build_body("m", &h, S).unwrap_err().code(),
            "invalid_history"
        );
    }
}
