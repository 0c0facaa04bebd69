//! The emulator's answers: deterministic, Claude-shaped, visibly emulated.
//!
//! The reply depends only on the conversation, so tests can compare a
//! streamed, cut and continued answer with the uncut one byte for byte. A
//! conversation ending in an assistant turn is a prefill: like Claude, the
//! emulator answers with the continuation only.

use mangaassist_core::tokens::estimate_tokens_reference;
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

/// What a Claude body asks, as the emulator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Text of the last user turn.
    pub user: String,
    /// Text of a trailing assistant turn (prefill), else empty.
    pub prefill: String,
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
    let prefill = match texts.last() {
        Some((false, text)) => text.clone(),
        _ => String::new(),
    };
    let user = texts
        .iter()
        .rev()
        .find(|(user, _)| *user)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let system = body.get("system").and_then(Value::as_str).unwrap_or("");
    let input_tokens = estimate_tokens_reference(system)
        + texts
            .iter()
            .map(|(_, t)| estimate_tokens_reference(t))
            .sum::<u64>();
    Ok(Conversation {
        user,
        prefill,
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

/// The answer to `conversation`: the reply, minus a matching prefill.
pub fn answer(conversation: &Conversation) -> String {
    let full = full_reply(&conversation.user);
    match full.strip_prefix(conversation.prefill.as_str()) {
        Some(rest) if !conversation.prefill.is_empty() => rest.to_string(),
        _ => full,
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
