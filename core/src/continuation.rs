//! Continuing a streamed answer that a region cut mid-way, in another
//! region, so the caller sees one answer with nothing repeated and nothing
//! lost.
//!
//! Two ways to ask for the rest, chosen by the model's catalog entry:
//! - a model that accepts an assistant prefill gets the text so far as the
//!   final assistant turn and answers with exactly what follows;
//! - a model that refuses prefill (the newest Claude models answer 400)
//!   gets the text so far as an assistant turn and then a user turn asking
//!   it to continue ([`CONTINUE_PROMPT`]). Such a continuation often
//!   repeats a few words before going on, so the seam is de-duplicated
//!   ([`seam`]).

use crate::body::{ClaudeBody, Turn};

/// The user turn that asks a model refusing prefill for the rest of its cut
/// answer. The emulator recognises it by this exact text.
pub const CONTINUE_PROMPT: &str = "Your previous reply was cut off in transit. Continue it \
from exactly where it stopped, in the same language and style: do not repeat any of it, \
do not add a preamble, and do not mention the interruption.";

/// Longest repeat looked for at a seam, in code points of the text already
/// sent: a sentence or so. A longer repeat is not recognised.
pub const MAX_SEAM_CHARS: usize = 200;

/// Shortest repeat taken as one, in code points, unless it is whitespace
/// only: shorter coincidences (a continuation of `bo` that starts `ok`)
/// are far likelier than a model repeating one or two characters.
pub const MIN_SEAM_CHARS: usize = 3;

/// `body` asking for the rest of an answer of which `sent` was streamed.
///
/// With `prefill`, the text (trailing whitespace removed: Claude refuses a
/// prefill that ends in whitespace) becomes the final assistant turn.
/// Without, that turn is followed by [`CONTINUE_PROMPT`] as a user turn,
/// so the body ends with `user`. Nothing sent yet: the body unchanged.
pub fn continuation_body(body: &ClaudeBody, sent: &str, prefill: bool) -> ClaudeBody {
    let so_far = sent.trim_end();
    let mut body = body.clone();
    if so_far.is_empty() {
        return body;
    }
    body.messages.push(Turn::new("assistant", so_far));
    if !prefill {
        body.messages.push(Turn::new("user", CONTINUE_PROMPT));
    }
    body
}

/// What to do with the start of a continuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seam {
    /// Too little has arrived to tell whether it repeats the text sent:
    /// hold it back and ask again with more.
    Wait,
    /// Drop this many bytes from the continuation's start (0: nothing
    /// repeats) and pass the rest through.
    Skip(usize),
}

/// How much of `continuation` (the start of a continued answer, as much as
/// has arrived; `complete` when that is all) repeats the end of `sent`.
///
/// The repeat is the longest suffix of `sent` (at most [`MAX_SEAM_CHARS`]
/// code points) that `continuation` starts with and that is whitespace
/// only or, unless `prefill`, at least [`MIN_SEAM_CHARS`] code points long.
/// A model given a prefill continues exactly, so only the whitespace held
/// back from its prefill can repeat; text that looks repeated is its own
/// (a table row's `|---` after `|---`). While a longer suffix could still
/// match once more text arrives, the answer is [`Seam::Wait`]; so a caller
/// holds back at most about that much text.
pub fn seam(sent: &str, continuation: &str, complete: bool, prefill: bool) -> Seam {
    let starts: Vec<usize> = sent
        .char_indices()
        .rev()
        .take(MAX_SEAM_CHARS)
        .map(|(i, _)| i)
        .collect();
    // Suffixes from the longest down; the first full match is the repeat.
    for (count, &start) in starts.iter().enumerate().rev() {
        let suffix = &sent[start..];
        let chars = count + 1;
        let whitespace = suffix.chars().all(char::is_whitespace);
        let counts = whitespace || (!prefill && chars >= MIN_SEAM_CHARS);
        if !counts {
            continue;
        }
        if continuation.starts_with(suffix) {
            return Seam::Skip(suffix.len());
        }
        if !complete && suffix.starts_with(continuation) {
            return Seam::Wait;
        }
    }
    Seam::Skip(0)
}

/// Applies [`seam`] to a stream of pieces: holds pieces back while the seam
/// is undecided, then passes everything after the repeat through.
#[derive(Debug, Clone, Default)]
pub struct SeamFilter {
    sent: String,
    held: String,
    decided: bool,
    prefill: bool,
}

impl SeamFilter {
    /// A filter for the continuation of `sent`, asked for with a prefill
    /// or not (see [`seam`]); nothing sent: a pass-through.
    pub fn new(sent: &str, prefill: bool) -> Self {
        SeamFilter {
            sent: sent.to_string(),
            held: String::new(),
            decided: sent.is_empty(),
            prefill,
        }
    }

    /// The text of `piece` to pass on now (maybe with earlier held pieces),
    /// or an empty string while the seam is undecided.
    pub fn push(&mut self, piece: &str) -> String {
        if self.decided {
            return piece.to_string();
        }
        self.held.push_str(piece);
        self.decide(false)
    }

    /// At the end of the continuation: whatever is still held, less a repeat.
    pub fn finish(&mut self) -> String {
        if self.decided {
            return String::new();
        }
        self.decide(true)
    }

    fn decide(&mut self, complete: bool) -> String {
        match seam(&self.sent, &self.held, complete, self.prefill) {
            Seam::Wait => String::new(),
            Seam::Skip(n) => {
                self.decided = true;
                self.sent = String::new();
                let held = std::mem::take(&mut self.held);
                held.get(n..).unwrap_or_default().to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::body::ANTHROPIC_VERSION;

    fn body() -> ClaudeBody {
        ClaudeBody {
            anthropic_version: ANTHROPIC_VERSION.into(),
            max_tokens: 10,
            temperature: 0.2,
            system: "s".into(),
            messages: vec![Turn::new("user", "q")],
        }
    }

    #[test]
    fn a_prefill_model_gets_the_text_as_the_last_turn() {
        let b = continuation_body(&body(), "About this \n", true);
        assert_eq!(
            b.messages.last().unwrap(),
            &Turn::new("assistant", "About this")
        );
        assert_eq!(b.messages.len(), 2);
    }

    #[test]
    fn a_model_refusing_prefill_gets_a_final_user_turn() {
        let b = continuation_body(&body(), "About this ", false);
        let roles: Vec<&str> = b.messages.iter().map(|t| t.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(b.messages[1].content, "About this");
        assert_eq!(b.messages[2].content, CONTINUE_PROMPT);
        assert_eq!(continuation_body(&body(), " \n", false), body());
    }

    #[test]
    fn repeated_words_are_dropped() {
        let sent = "you may enjoy One Piece by ";
        assert_eq!(seam(sent, "Piece by Oda and", false, false), Seam::Skip(9));
        assert_eq!(seam(sent, "Oda and", false, false), Seam::Skip(0));
        // Trailing whitespace held back from a prefill, repeated.
        assert_eq!(seam(sent, " Oda", false, false), Seam::Skip(1));
        // Two letters are a coincidence, not a repeat.
        assert_eq!(seam("a bo", "ok", false, false), Seam::Skip(0));
        assert_eq!(
            seam("おすすめは『ワンピース", "ワンピース』と", false, false),
            Seam::Skip(15)
        );
    }

    #[test]
    fn after_a_prefill_only_whitespace_repeats() {
        let sent = "| Title | Vol |\n|---";
        assert_eq!(seam(sent, "|---|\n", false, true), Seam::Skip(0));
        assert_eq!(seam(sent, "|---|\n", false, false), Seam::Skip(4));
        assert_eq!(seam("you may ", " enjoy", false, true), Seam::Skip(1));
        assert_eq!(seam("you may ", "", false, true), Seam::Wait);
        assert_eq!(seam("you may", "", false, true), Seam::Skip(0));
    }

    #[test]
    fn too_little_text_waits_unless_complete() {
        let sent = "you may enjoy One Piece by ";
        assert_eq!(seam(sent, "Pie", false, false), Seam::Wait);
        assert_eq!(seam(sent, "", false, false), Seam::Wait);
        assert_eq!(seam(sent, "Pie", true, false), Seam::Skip(0));
        assert_eq!(seam(sent, "", true, false), Seam::Skip(0));
    }

    #[test]
    fn the_filter_holds_then_passes_through() {
        let mut f = SeamFilter::new("enjoy One Piece by ", false);
        assert_eq!(f.push("Pi"), "");
        assert_eq!(f.push("ece b"), "");
        assert_eq!(f.push("y Oda"), "Oda");
        assert_eq!(f.push(" and"), " and");
        assert_eq!(f.finish(), "");
        let mut f = SeamFilter::new("abc ", false);
        assert_eq!(f.push("ab"), "");
        assert_eq!(f.finish(), "ab");
        let mut none = SeamFilter::new("", true);
        assert_eq!(none.push("x"), "x");
    }
}
