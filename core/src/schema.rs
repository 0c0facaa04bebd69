//! SPEC 2: the request contract as a draft-04 JSON Schema, generated from
//! the same constants as [`crate::contract::validate_request`].
//!
//! Draft-04 has no `if`/`then`, so the per-action requirements are an `anyOf`
//! over the actions. The committed copy (`core/schema/chat-request.schema.json`)
//! is checked against this function by a test.

use serde_json::{Value, json};

use crate::contract::{
    ACTIONS, DATA_PROPERTIES, LANGUAGES, MESSAGE_MAX_CHARS, MESSAGE_MIN_CHARS, MODEL_PREFERENCES,
    SESSION_ACTIONS, SESSION_ID_PATTERN,
};

/// The draft-04 JSON Schema of a chat request.
pub fn request_schema() -> Value {
    let send: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| !SESSION_ACTIONS.contains(a))
        .collect();
    // DATA_PROPERTIES fixes the property set; the match keeps the two in step.
    let data_properties: serde_json::Map<String, Value> = DATA_PROPERTIES
        .iter()
        .map(|name| {
            let schema = match *name {
                "message" => json!({
                    "type": "string",
                    "minLength": MESSAGE_MIN_CHARS,
                    "maxLength": MESSAGE_MAX_CHARS,
                    "description": "The user's chat message, in Unicode code points."
                }),
                "sessionId" => json!({
                    "type": "string",
                    "pattern": SESSION_ID_PATTERN,
                    "description": "Lowercase UUID version 4."
                }),
                "preferredLanguage" => json!({
                    "type": "string", "enum": LANGUAGES, "default": "ja"
                }),
                _ => json!({
                    "type": "string", "enum": MODEL_PREFERENCES, "default": "auto"
                }),
            };
            ((*name).to_string(), schema)
        })
        .collect();
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "MangaAssistChatRequest",
        "type": "object",
        "additionalProperties": false,
        "required": ["action", "data"],
        "properties": {
            "action": { "type": "string", "enum": ACTIONS },
            "data": {
                "type": "object",
                "additionalProperties": false,
                "properties": data_properties
            },
            "metadata": {
                "type": "object",
                "properties": {
                    "clientVersion": { "type": "string" },
                    "timestamp": { "type": "integer" }
                }
            }
        },
        "anyOf": [
            {
                "properties": {
                    "action": { "enum": send },
                    "data": { "required": ["message"] }
                }
            },
            {
                "properties": {
                    "action": { "enum": SESSION_ACTIONS },
                    "data": { "required": ["sessionId"] }
                }
            }
        ]
    })
}
