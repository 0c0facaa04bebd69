//! Batch jobs (the asynchronous path): the job request contract, reporting
//! every violation by JSON Pointer like the chat contract, and the prompt
//! each task builds for one catalog item. No user waits for these answers,
//! so every task uses the fast model.
//!
//! A job: `{"task": "synopsis" | "enrich", "language"?: "ja" | "en" | "zh",
//! "items": [{"id", "title", "author"?, "description"?}, ...]}`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::{BodyInput, BodyReport, body_report};
use crate::contract::{
    LANGUAGES, Report, Violation, enum_member, expect_object, expect_string, required, type_name,
    unknown_properties,
};
use crate::error::Error;
use crate::models::{Catalog, ModelPreference};
use crate::sanitize::sanitize;

/// Allowed `task` values.
pub const JOB_TASKS: [&str; 2] = ["synopsis", "enrich"];
/// Properties allowed at the top level of a job.
pub const JOB_PROPERTIES: [&str; 3] = ["task", "language", "items"];
/// Properties allowed in an item.
pub const ITEM_PROPERTIES: [&str; 4] = ["id", "title", "author", "description"];
/// Items in one job at most.
pub const MAX_JOB_ITEMS: usize = 1000;
/// Longest item id, in characters (ASCII letters, digits, `.`, `_`, `:`, `-`).
pub const ITEM_ID_MAX_CHARS: usize = 128;
/// Longest title, in characters.
pub const ITEM_TITLE_MAX_CHARS: usize = 300;
/// Longest author, in characters.
pub const ITEM_AUTHOR_MAX_CHARS: usize = 200;
/// Longest description, in characters.
pub const ITEM_DESCRIPTION_MAX_CHARS: usize = 2000;

/// What a job asks of each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobTask {
    /// A spoiler-free product-page synopsis.
    Synopsis,
    /// Catalog labels (genres, audience, keywords) as one JSON object.
    Enrich,
}

impl JobTask {
    /// The task's name on the wire (`synopsis`, `enrich`).
    pub fn name(self) -> &'static str {
        match self {
            JobTask::Synopsis => "synopsis",
            JobTask::Enrich => "enrich",
        }
    }
}

/// A job document that passed [`validate_job`], typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// What to do with each item.
    pub task: JobTask,
    /// Language of the answers (`ja` when absent).
    #[serde(default)]
    pub language: Option<String>,
    /// The items, ids unique.
    pub items: Vec<JobItem>,
}

/// One catalog item of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobItem {
    /// The caller's id (results are keyed by it).
    pub id: String,
    /// Title.
    pub title: String,
    /// Author, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Publisher's description, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The prompt of one item: what the `job_body` vectors give every engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobItemInput {
    /// The job's task.
    pub task: JobTask,
    /// The job's language (`ja` when absent).
    #[serde(default)]
    pub language: Option<String>,
    /// The item.
    pub item: JobItem,
}

/// Each task's system prompt and generation settings (our own wording).
struct TaskSpec {
    system: &'static str,
    instruction: &'static str,
    max_tokens: u32,
    temperature: f64,
}

fn spec(task: JobTask) -> TaskSpec {
    match task {
        JobTask::Synopsis => TaskSpec {
            system: "You write product-page synopses for an online manga store in Japan. \
Write about three sentences that make a reader curious, with no spoilers. Use only the \
facts given; do not mention prices, stock or release dates.",
            instruction: "Write the synopsis of this title in {language}.",
            max_tokens: 400,
            temperature: 0.3,
        },
        JobTask::Enrich => TaskSpec {
            system: "You label manga for an online store's catalog. Answer with one JSON \
object and nothing else: {\"genres\": [at most 3 strings], \"audience\": \"kids\" or \
\"teens\" or \"adults\", \"keywords\": [at most 5 strings]}. Use only the facts given.",
            instruction: "Label this title for the catalog; write genres and keywords in {language}.",
            max_tokens: 300,
            temperature: 0.0,
        },
    }
}

fn language_name(code: &str) -> &'static str {
    match code {
        "en" => "English",
        "zh" => "Chinese",
        _ => "Japanese",
    }
}

/// The user message for one item: the task's instruction, then the item's
/// fields, each sanitized (SPEC 4) as a chat message would be.
pub fn job_message(task: JobTask, language: &str, item: &JobItem) -> String {
    let mut text = spec(task)
        .instruction
        .replace("{language}", language_name(language));
    text.push_str("\n\nTitle: ");
    text.push_str(&sanitize(&item.title));
    if let Some(author) = &item.author {
        text.push_str("\nAuthor: ");
        text.push_str(&sanitize(author));
    }
    if let Some(description) = &item.description {
        text.push_str("\nDescription: ");
        text.push_str(&sanitize(description));
    }
    text
}

/// The Claude body (and its model and cache key) for one item.
pub fn job_body_report(catalog: &Catalog, input: &JobItemInput) -> Result<BodyReport, Error> {
    let language = input.language.as_deref().unwrap_or("ja");
    if !LANGUAGES.contains(&language) {
        return Err(Error::invalid_argument(format!(
            "language \"{language}\" is not one of {}",
            LANGUAGES.join(", ")
        )));
    }
    let spec = spec(input.task);
    body_report(
        catalog,
        &BodyInput {
            message: job_message(input.task, language, &input.item),
            history: Vec::new(),
            system: Some(spec.system.to_string()),
            max_tokens: Some(spec.max_tokens),
            temperature: Some(spec.temperature),
            model_preference: ModelPreference::Fast,
            catalog: None,
        },
    )
}

/// Validates a job document; an empty list means it is valid.
pub fn validate_job(doc: &Value) -> Vec<Violation> {
    validate_job_first(doc, usize::MAX).0
}

/// The first `limit` violations of a job document and how many in all.
pub fn validate_job_first(doc: &Value, limit: usize) -> (Vec<Violation>, usize) {
    let mut r = Report::new(limit);
    if let Some(top) = expect_object(&mut r, "", doc) {
        check_job(&mut r, top);
    }
    r.finish()
}

fn check_job(r: &mut Report, top: &Map<String, Value>) {
    unknown_properties(r, "", top, &JOB_PROPERTIES);
    match top.get("task") {
        Some(v) => {
            enum_member(r, "/task", v, &JOB_TASKS);
        }
        None => required(r, "/task", "task"),
    }
    if let Some(v) = top.get("language") {
        enum_member(r, "/language", v, &LANGUAGES);
    }
    let items = match top.get("items") {
        None => return required(r, "/items", "items"),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return r.add(
                "/items",
                "wrong_type",
                format!("expected an array, got {}", type_name(other)),
            );
        }
    };
    if items.is_empty() {
        r.add(
            "/items",
            "too_short",
            "items must have at least 1 item".into(),
        );
    } else if items.len() > MAX_JOB_ITEMS {
        r.add(
            "/items",
            "too_long",
            format!(
                "items has {} entries, over the limit of {MAX_JOB_ITEMS}",
                items.len()
            ),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("/items/{i}");
        let Some(fields) = expect_object(r, &path, item) else {
            continue;
        };
        unknown_properties(r, &path, fields, &ITEM_PROPERTIES);
        let id_path = format!("{path}/id");
        match fields.get("id") {
            None => required(r, &id_path, "id"),
            Some(v) => {
                if let Some(id) = text(r, &id_path, "id", v, (ITEM_ID_MAX_CHARS, false)) {
                    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
                    if !id.chars().all(allowed) {
                        r.add(
                            &id_path,
                            "pattern_mismatch",
                            "id may contain only ASCII letters, digits, '.', '_', ':' and '-'"
                                .into(),
                        );
                    } else if let Some(first) = seen.get(id) {
                        r.add(
                            &id_path,
                            "duplicate_id",
                            format!("id \"{id}\" is also the id of item {first}"),
                        );
                    } else {
                        seen.insert(id, i);
                    }
                }
            }
        }
        let fields_and_limits = [
            ("title", ITEM_TITLE_MAX_CHARS, true),
            ("author", ITEM_AUTHOR_MAX_CHARS, false),
            ("description", ITEM_DESCRIPTION_MAX_CHARS, false),
        ];
        for (name, max, needed) in fields_and_limits {
            let field_path = format!("{path}/{name}");
            match fields.get(name) {
                Some(v) => {
                    text(r, &field_path, name, v, (max, true));
                }
                None if needed => required(r, &field_path, name),
                None => {}
            }
        }
    }
}

/// A string of 1 to `max` characters; the string when it is one. Prose
/// (title, author, description) must also keep something once sanitized:
/// a title of spaces would make a prompt about nothing.
fn text<'v>(
    r: &mut Report,
    path: &str,
    name: &str,
    v: &'v Value,
    (max, prose): (usize, bool),
) -> Option<&'v str> {
    let s = expect_string(r, path, v)?;
    let chars = s.chars().count();
    if chars == 0 {
        r.add(
            path,
            "too_short",
            format!("{name} must have at least 1 character"),
        );
        return None;
    }
    if chars > max {
        r.add(
            path,
            "too_long",
            format!("{name} has {chars} characters, over the limit of {max}"),
        );
        return None;
    }
    if prose && sanitize(s).is_empty() {
        r.add(
            path,
            "too_short",
            format!("{name} is empty once invisible characters and outer whitespace are removed"),
        );
        return None;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use serde_json::json;

    fn codes(doc: &Value) -> Vec<(String, String)> {
        validate_job(doc)
            .into_iter()
            .map(|v| (v.path, v.code.into_owned()))
            .collect()
    }

    #[test]
    fn a_valid_job_has_no_violations() {
        let doc = json!({"task": "synopsis", "language": "en", "items": [
            {"id": "isbn:978-4-08-882620-2", "title": "ONE PIECE 1", "author": "尾田栄一郎"},
            {"id": "b", "title": "呪術廻戦 1", "description": "x"}
        ]});
        assert!(validate_job(&doc).is_empty());
    }

    #[test]
    fn every_item_violation_is_reported_by_pointer() {
        let doc = json!({"task": "translate", "items": [
            {"id": "a", "title": ""},
            {"id": "a", "title": "t", "price": 3},
            {"id": "a b", "title": "t"},
            "x",
            {"title": "t"}
        ]});
        assert_eq!(
            codes(&doc),
            [
                ("/task", "not_in_enum"),
                ("/items/0/title", "too_short"),
                ("/items/1/price", "unknown_property"),
                ("/items/1/id", "duplicate_id"),
                ("/items/2/id", "pattern_mismatch"),
                ("/items/3", "wrong_type"),
                ("/items/4/id", "required"),
            ]
            .map(|(p, c)| (p.to_string(), c.to_string()))
        );
    }

    #[test]
    fn item_count_is_bounded() {
        let items: Vec<Value> = (0..=MAX_JOB_ITEMS)
            .map(|i| json!({"id": i.to_string(), "title": "t"}))
            .collect();
        let doc = json!({"task": "enrich", "items": items});
        assert_eq!(
            codes(&doc),
            [("/items".to_string(), "too_long".to_string())]
        );
        let (listed, total) = validate_job_first(&json!({"task": 1, "items": {}}), 1);
        assert_eq!((listed.len(), total), (1, 2));
    }

    #[test]
    fn the_prompt_names_the_language_and_sanitizes_fields() {
        let item = JobItem {
            id: "a".into(),
            title: "  ONE\u{200b} PIECE  ".into(),
            author: None,
            description: Some("海賊".into()),
        };
        let m = job_message(JobTask::Synopsis, "en", &item);
        assert_eq!(
            m,
            "Write the synopsis of this title in English.\n\nTitle: ONE PIECE\nDescription: 海賊"
        );
        let input = JobItemInput {
            task: JobTask::Enrich,
            language: None,
            item,
        };
        let report = job_body_report(&Catalog::spec_default(), &input).unwrap();
        assert_eq!(report.model.key, "haiku");
        assert_eq!(report.body.max_tokens, 300);
        assert!(report.body.messages[0].content.contains("in Japanese"));
    }
}
