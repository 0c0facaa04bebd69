//! The emulator's answers: deterministic, Claude-shaped, visibly emulated.
//!
//! The reply depends only on the conversation, so tests can compare a
//! streamed, cut and continued answer with the uncut one byte for byte. A
//! conversation ending in an assistant turn is a prefill: like Claude, the
//! emulator answers with the continuation only.

use mangaassist_core::calibration::{Calibration, ScriptCounts};
use mangaassist_core::continuation::{CONTINUE_PROMPT, MIN_SEAM_CHARS};
use serde_json::Value;
use sha2::Digest;

/// A small built-in manga catalog the emulated replies recommend from.
const CATALOG: [(&str, &str, &str); 8] = [
    ("ワンピース", "One Piece", "尾田栄一郎"),
    ("鬼滅の刃", "Demon Slayer", "吾峠呼世晴"),
    ("呪術廻戦", "Jujutsu Kaisen", "芥見下々"),
    ("葬送のフリーレン", "Frieren", "山田鐘人・アベツカサ"),
    ("スパイファミリー", "Spy x Family", "遠藤達哉"),
    ("チェンソーマン", "Chainsaw Man", "藤本タツキ"),
    ("よつばと！", "Yotsuba&!", "あずまきよひこ"),
    ("ハイキュー!!", "Haikyu!!", "古舘春一"),
];

/// How the emulated model counts input tokens: a stand-in for a real
/// tokenizer, per-script weights deliberately unlike the SPEC 5 reference
/// estimator's, so the calibrated estimator has something to learn here.
/// Real models count otherwise; nothing measured against the emulator says
/// how accurate an estimator is for them.
pub const TOKENIZER: Calibration = Calibration {
    kana: 1.1,
    kanji: 1.4,
    latin_word: 1.3,
    other: 0.6,
    per_request: 9.0,
};

/// What a Claude body asks, as the emulator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Text of the last user turn.
    pub user: String,
    /// Text of a trailing assistant turn (prefill), else empty; for a
    /// continuation request, the assistant turn before the request.
    pub prefill: String,
    /// Whether the body ends with an assistant turn (a real prefill).
    pub ends_with_assistant: bool,
    /// Whether the last user turn asks to continue a cut answer
    /// ([`CONTINUE_PROMPT`]): the answer then repeats a few words first,
    /// as a model asked to continue often does.
    pub continued: bool,
    /// Estimated input tokens (system + every turn).
    pub input_tokens: u64,
}

/// Why a body is not a Claude Messages body (a `ValidationException`).
pub fn conversation(body: &Value) -> Result<Conversation, String> {
    if body
        .get("anthropic_version")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err("anthropic_version is required".into());
    }
    if body
        .get("max_tokens")
        .and_then(Value::as_u64)
        .is_none_or(|n| n == 0)
    {
        return Err("max_tokens must be a positive integer".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages must be a non-empty array")?;
    let mut texts = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user" | "assistant")) {
            return Err(format!("messages.{i}.role must be user or assistant"));
        }
        let text = content_text(m.get("content"))
            .ok_or_else(|| format!("messages.{i}.content must be text"))?;
        texts.push((role == Some("user"), text));
    }
    if texts.first().is_some_and(|(user, _)| !user) {
        return Err("the first message must use the user role".into());
    }
    let ends_with_assistant = texts.last().is_some_and(|(user, _)| !user);
    // A continuation request: [..., user, assistant, user CONTINUE_PROMPT].
    let continued = texts.len() >= 3
        && texts
            .last()
            .is_some_and(|(user, t)| *user && t == CONTINUE_PROMPT)
        && texts.get(texts.len() - 2).is_some_and(|(user, _)| !user);
    let asked = if continued {
        &texts[..texts.len() - 1]
    } else {
        &texts[..]
    };
    let prefill = match asked.last() {
        Some((false, text)) => text.clone(),
        _ => String::new(),
    };
    let user = asked
        .iter()
        .rev()
        .find(|(user, _)| *user)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let system = body.get("system").and_then(Value::as_str).unwrap_or("");
    let mut counts = ScriptCounts::of(system);
    for (_, t) in &texts {
        counts.add(ScriptCounts::of(t));
    }
    let input_tokens = TOKENIZER.estimate_counts(counts);
    Ok(Conversation {
        user,
        prefill,
        ends_with_assistant,
        continued,
        input_tokens,
    })
}

fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.concat()),
        _ => None,
    }
}

fn is_japanese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{3040}'..='\u{30ff}' | '\u{4e00}'..='\u{9fff}'))
}

/// The whole reply to `user` (before any prefill is taken off).
pub fn full_reply(user: &str) -> String {
    let digest = sha2::Sha256::digest(user.as_bytes());
    let a = usize::from(digest[0]) % CATALOG.len();
    let b = (a + 1 + usize::from(digest[1]) % (CATALOG.len() - 1)) % CATALOG.len();
    let excerpt: String = user.chars().take(24).collect();
    let (ja_a, en_a, by_a) = CATALOG[a];
    let (ja_b, en_b, by_b) = CATALOG[b];
    if is_japanese(user) {
        format!(
            "［エミュレーター応答：Bedrock ではありません］「{excerpt}」についてですね。\
             おすすめは『{ja_a}』（{by_a}）と『{ja_b}』（{by_b}）です。\
             在庫と最新刊の発売日は店頭またはオンラインストアでご確認ください。"
        )
    } else {
        format!(
            "[Emulated reply, not Bedrock] About \"{excerpt}\": you may enjoy {en_a} by \
             {by_a} and {en_b} by {by_b}. Please check stock and release dates in the store."
        )
    }
}

/// The answer to `conversation`: the reply, minus a matching prefill; a
/// continuation request's answer first repeats the end of the text it
/// continues ([`seam_repeat`]).
pub fn answer(conversation: &Conversation) -> String {
    let full = full_reply(&conversation.user);
    let prefill = conversation.prefill.as_str();
    match full.strip_prefix(prefill) {
        Some(rest) if !prefill.is_empty() && conversation.continued => {
            format!("{}{rest}", seam_repeat(prefill))
        }
        Some(rest) if !prefill.is_empty() => rest.to_string(),
        _ => full,
    }
}

/// What a continuation repeats of the text before it: its last two words
/// (from the start of the second-to-last one), or its last five characters
/// in text without spaces (Japanese); never shorter than the seam's
/// minimum, so the repeat is one the invoker recognises.
pub fn seam_repeat(text: &str) -> &str {
    let tail_start = text.char_indices().rev().nth(39).map_or(0, |(i, _)| i);
    let tail = &text[tail_start..];
    let spaces: Vec<usize> = tail
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| i)
        .collect();
    let start = if spaces.len() >= 2 {
        tail_start + spaces[spaces.len() - 2] + 1
    } else {
        text.char_indices().rev().nth(4).map_or(0, |(i, _)| i)
    };
    let repeat = &text[start..];
    if repeat.chars().count() >= MIN_SEAM_CHARS {
        repeat
    } else {
        ""
    }
}

/// The answer cut into stream tokens of up to three characters.
pub fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(3).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use serde_json::json;

    fn body(messages: Value) -> Value {
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "messages": messages})
    }

    #[test]
    fn a_prefill_gets_only_the_continuation() {
        let user = "おすすめの漫画は？";
        let full = full_reply(user);
        let cut: String = full.chars().take(20).collect();
        let c = conversation(&body(json!([
            {"role": "user", "content": user},
            {"role": "assistant", "content": cut.clone()}
        ])))
        .unwrap();
        assert_eq!(format!("{cut}{}", answer(&c)), full);
        assert!(full.contains("エミュレーター"));
    }

    #[test]
    fn a_continuation_repeats_a_few_words_first() {
        let user = "Any fantasy manga?";
        let full = full_reply(user);
        let cut: String = full.chars().take(50).collect();
        let c = conversation(&body(json!([
            {"role": "user", "content": user},
            {"role": "assistant", "content": cut.clone()},
            {"role": "user", "content": CONTINUE_PROMPT}
        ])))
        .unwrap();
        assert!(c.continued && !c.ends_with_assistant);
        assert_eq!(c.user, user);
        let answer = answer(&c);
        let repeat = seam_repeat(&cut);
        assert!(!repeat.is_empty() && repeat.contains(' '), "{repeat:?}");
        assert_eq!(format!("{cut}{}", &answer[repeat.len()..]), full);
        assert_eq!(seam_repeat("おすすめは『ワンピース"), "ワンピース");
        assert_eq!(seam_repeat("ab"), "");
    }

    #[test]
    fn invalid_bodies_are_refused() {
        assert!(conversation(&json!({"max_tokens": 1, "messages": []})).is_err());
        assert!(conversation(&body(json!([{"role": "assistant", "content": "x"}]))).is_err());
        assert!(conversation(&body(json!([{"role": "user", "content": 3}]))).is_err());
    }

    #[test]
    fn tokens_rebuild_the_text() {
        let t = full_reply("hello there");
        assert_eq!(tokens(&t).concat(), t);
    }
}
