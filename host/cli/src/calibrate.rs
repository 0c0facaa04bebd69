//! `calibrate`: fits the calibrated estimator's weights offline from a file
//! of requests and the input tokens a model reported for each, and prints
//! the weights with both estimators' errors per script. The fitting and
//! the counting are the core's; this reads the file and prints.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use mangaassist_core::calibration::{
    Calibration, ErrorSummary, Fit, ScriptCounts, relative_error, summarize,
};
use mangaassist_core::tokens::estimate_tokens_reference;
use serde::Serialize;
use serde_json::Value;

/// Problems listed before a file is refused.
const LISTED_PROBLEMS: usize = 10;

/// One request of the file: its texts by script and what was reported.
struct Sample {
    counts: ScriptCounts,
    /// The SPEC 5 estimate of its texts.
    reference: u64,
    /// The script of its last text (the new message).
    script: &'static str,
    reported: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    calibration: Calibration,
    samples: u64,
    /// In-sample errors: measured on the samples the weights were fitted to.
    errors: Vec<ErrorSummary>,
}

/// Reads `path`, fits, writes the report as one JSON line to `out` and a
/// table plus the `[calibration]` lines for a configuration to stderr.
pub fn run(path: &Path, mut out: impl Write) -> Result<(), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut samples = Vec::new();
    let mut problems = Vec::new();
    let mut skipped = 0usize;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match sample(&line) {
            Ok(Some(s)) => samples.push(s),
            Ok(None) => skipped += 1,
            Err(why) => problems.push(format!("line {}: {why}", i + 1)),
        }
    }
    if !problems.is_empty() {
        let more = problems.len().saturating_sub(LISTED_PROBLEMS);
        let mut text = format!(
            "{} has {} bad line(s); nothing was fitted:\n  {}",
            path.display(),
            problems.len(),
            problems[..problems.len().min(LISTED_PROBLEMS)].join("\n  ")
        );
        if more > 0 {
            text.push_str(&format!("\n  … and {more} more"));
        }
        return Err(text);
    }
    let mut fit = Fit::new();
    for s in &samples {
        fit.add(s.counts, s.reported);
    }
    let calibration = fit.solve().map_err(|e| {
        format!(
            "{}: {} ({} samples)",
            path.display(),
            e.message(),
            samples.len()
        )
    })?;
    let errors = error_rows(&samples, &calibration);
    let report = Report {
        calibration,
        samples: fit.samples(),
        errors,
    };
    let line = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    writeln!(out, "{line}").map_err(|e| format!("cannot write: {e}"))?;
    print_summary(&report, skipped);
    Ok(())
}

/// One line as a sample: `{"body","inputTokens"}`, `{"text","inputTokens"}`,
/// or a Bedrock model-invocation log record (`input.inputBodyJson`,
/// `input.inputTokenCount`). None: a log record to skip (no count, no
/// inline body, or not a Messages body).
fn sample(line: &str) -> Result<Option<Sample>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let (texts, reported) = if let Some(input) = v.get("input").filter(|i| i.is_object()) {
        // An account's invocation log holds every model's calls: a record
        // with no count, a body kept in S3 (`inputBodyS3Path`, large
        // bodies) or a body that is not a Messages body is skipped.
        let (Some(reported), Some(body)) =
            (input.get("inputTokenCount"), input.get("inputBodyJson"))
        else {
            return Ok(None);
        };
        let Ok(texts) = body_texts(body) else {
            return Ok(None);
        };
        (texts, count(reported, "input.inputTokenCount")?)
    } else {
        let reported = count(v.get("inputTokens").ok_or("no inputTokens")?, "inputTokens")?;
        match (v.get("body"), v.get("text")) {
            (Some(body), None) => (body_texts(body)?, reported),
            (None, Some(Value::String(text))) => (vec![text.clone()], reported),
            _ => return Err("expected exactly one of body (an object) or text (a string)".into()),
        }
    };
    let mut counts = ScriptCounts::default();
    for t in &texts {
        counts.add(ScriptCounts::of(t));
    }
    Ok(Some(Sample {
        counts,
        reference: texts.iter().map(|t| estimate_tokens_reference(t)).sum(),
        script: texts
            .last()
            .map_or("other", |t| ScriptCounts::of(t).dominant()),
        reported,
    }))
}

fn count(v: &Value, name: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{name} must be a whole number of at least 0, not {v}"))
}

/// The texts of a Claude Messages body: the system prompt, then every
/// turn's text (plain strings or text blocks; other blocks are not text).
fn body_texts(body: &Value) -> Result<Vec<String>, String> {
    let mut texts = Vec::new();
    match body.get("system") {
        None | Some(Value::Null) => {}
        Some(system) => texts.extend(block_texts(system).ok_or("system is not text")?),
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("body has no messages array")?;
    for (i, m) in messages.iter().enumerate() {
        let content = m
            .get("content")
            .and_then(block_texts)
            .ok_or_else(|| format!("messages[{i}].content is not text"))?;
        texts.push(content.concat());
    }
    Ok(texts)
}

fn block_texts(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(blocks) => Some(
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

/// p50 and p90 of both estimators' relative errors, per script present.
fn error_rows(samples: &[Sample], calibration: &Calibration) -> Vec<ErrorSummary> {
    summarize(|estimator, script| {
        samples
            .iter()
            .filter(|s| s.script == script)
            .map(|s| {
                let estimate = match estimator {
                    "reference" => s.reference,
                    _ => calibration.estimate_counts(s.counts),
                };
                relative_error(estimate, s.reported)
            })
            .collect()
    })
}

fn print_summary(report: &Report, skipped: usize) {
    let c = &report.calibration;
    eprintln!(
        "fitted on {} samples{}; errors are in-sample (|estimate − reported| / reported):",
        report.samples,
        if skipped > 0 {
            format!(
                " ({skipped} log records skipped: no token count, body in S3, or not a Messages body)"
            )
        } else {
            String::new()
        }
    );
    eprintln!(
        "  {:<11} {:<6} {:>8} {:>8} {:>8}",
        "estimator", "script", "samples", "p50", "p90"
    );
    for r in &report.errors {
        eprintln!(
            "  {:<11} {:<6} {:>8} {:>7.1}% {:>7.1}%",
            r.estimator,
            r.script,
            r.samples,
            r.p50 * 100.0,
            r.p90 * 100.0
        );
    }
    eprintln!(
        "for the service's configuration:\n[calibration]\nkana = {}\nkanji = {}\nlatinWord = {}\nother = {}\nperRequest = {}",
        c.kana, c.kanji, c.latin_word, c.other, c.per_request
    );
}
