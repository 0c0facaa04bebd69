//! Disallowed-pattern matching with Python `re` semantics where SPEC 3 asks for them.
//!
//! Patterns use the `regex` crate's syntax, matched case-insensitively with
//! Unicode simple case folding. The one difference SPEC 3 pins down is `\b`:
//! a word character is L*, N* or `_` (Python), not the `regex` crate's wider
//! set. The `regex` crate has no look-around, so `\b` is rewritten into a
//! consuming class. That is exact because we only ask *whether* a pattern
//! matches, and it is allowed only where the extra consumed character cannot
//! disturb the rest of the match: at the start or end of a pattern or of a
//! top-level alternative, next to a literal character.

use regex::{Regex, RegexSet};

use crate::chars::is_python_word;
use crate::error::Error;

/// The class of Python word characters, immune to the case-insensitive flag
/// (under `(?i)` a negated class would gain code points that fold into it,
/// such as U+0345, which is a mark and not a word character).
const WORD: &str = r"(?-i:[\p{L}\p{N}_])";
const NON_WORD_OR_END: &str = r"(?-i:[^\p{L}\p{N}_]|\z)";
const NON_WORD_OR_START: &str = r"(?-i:\A|[^\p{L}\p{N}_])";

/// A compiled, ordered list of disallowed patterns.
#[derive(Debug, Clone)]
pub struct PatternList {
    sources: Vec<String>,
    /// All patterns as one alternation: one scan with a literal prefilter
    /// answers "any match?", the common (negative) case.
    any: Regex,
    /// Which pattern matched, asked only after a hit.
    set: RegexSet,
}

impl PatternList {
    /// Compiles `patterns` once; the order is kept for reporting.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut translated = Vec::with_capacity(patterns.len());
        for p in patterns {
            translated.push(format!("(?i){}", translate_word_boundaries(p)?));
        }
        let compile_error = |e: regex::Error| {
            Error::invalid_pattern(format!("a disallowed pattern does not compile: {e}"))
        };
        let set = RegexSet::new(&translated).map_err(compile_error)?;
        let alternation: Vec<String> = translated.iter().map(|p| format!("(?:{p})")).collect();
        let any = Regex::new(&alternation.join("|")).map_err(compile_error)?;
        Ok(PatternList {
            sources: patterns.to_vec(),
            any,
            set,
        })
    }

    /// The first pattern (in list order) that matches `text`, if any.
    pub fn first_match(&self, text: &str) -> Option<&str> {
        if self.sources.is_empty() || !self.any.is_match(text) {
            return None;
        }
        let first = self.set.matches(text).iter().next()?;
        self.sources.get(first).map(String::as_str)
    }

    /// The patterns as configured.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }
}

/// One lexical item of a pattern, enough to find `\b` and its neighbours.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A character that stands for itself.
    Literal(char),
    /// `\b`.
    WordBoundary,
    /// `|` outside any group or class.
    TopLevelBar,
    /// Anything else, kept verbatim (escapes, classes, groups, quantifiers).
    Other(String),
}

const META: &[char] = &[
    '.', '^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\',
];

/// Splits a pattern into tokens. Perl classes (`\s`, `\w`, `\d`) and `\B` are
/// refused: their Unicode meaning differs between Python and the `regex`
/// crate, and whether `regex` knows them at all depends on a cargo feature.
fn tokenize(pattern: &str) -> Result<Vec<Token>, Error> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('b') => tokens.push(Token::WordBoundary),
                Some(e) if META.contains(&e) || matches!(e, '-' | '&' | '~' | '#' | ' ') => {
                    tokens.push(Token::Literal(e))
                }
                Some(e @ ('s' | 'S' | 'w' | 'W' | 'd' | 'D' | 'B')) => {
                    return Err(Error::invalid_pattern(format!(
                        "pattern {pattern:?}: `\\{e}` is not supported: Python and the regex crate \
                         disagree on its meaning; write an explicit class such as `[ \\t]` or `[0-9]`"
                    )));
                }
                Some(e) => tokens.push(Token::Other(format!("\\{e}"))),
                None => return Err(Error::invalid_pattern("pattern ends with a lone backslash")),
            },
            '[' => {
                // Copy a whole class verbatim; `\b` inside it is left to the regex parser.
                let mut class = String::from("[");
                let mut nest = 1usize;
                let mut first = true;
                while let Some(k) = chars.next() {
                    class.push(k);
                    match k {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                class.push(n);
                            }
                        }
                        '[' => nest += 1,
                        ']' if !first || class != "[]" => {
                            nest -= 1;
                            if nest == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    first = false;
                }
                tokens.push(Token::Other(class));
            }
            '(' => {
                depth += 1;
                tokens.push(Token::Other("(".into()));
            }
            ')' => {
                depth = depth.saturating_sub(1);
                tokens.push(Token::Other(")".into()));
            }
            '|' if depth == 0 => tokens.push(Token::TopLevelBar),
            c if META.contains(&c) => tokens.push(Token::Other(c.to_string())),
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok(tokens)
}

fn push_literal(out: &mut String, c: char) {
    if META.contains(&c) {
        out.push('\\');
    }
    out.push(c);
}

/// Rewrites every `\b` of `pattern` into a consuming class, or explains why it cannot.
fn translate_word_boundaries(pattern: &str) -> Result<String, Error> {
    let tokens = tokenize(pattern)?;
    let unsupported = || {
        Error::invalid_pattern(format!(
            "pattern {pattern:?}: `\\b` is supported only at the start or end of a pattern \
             (or of a top-level alternative), next to a literal character"
        ))
    };
    let mut out = String::with_capacity(pattern.len() + 32);
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Literal(c) => push_literal(&mut out, *c),
            Token::Other(s) => out.push_str(s),
            Token::TopLevelBar => out.push('|'),
            Token::WordBoundary => {
                let before = i.checked_sub(1).and_then(|j| tokens.get(j));
                let after = tokens.get(i + 1);
                let at_end = matches!(after, None | Some(Token::TopLevelBar));
                let at_start = matches!(before, None | Some(Token::TopLevelBar));
                match (before, after) {
                    (Some(Token::Literal(c)), _) if at_end => out.push_str(if is_python_word(*c) {
                        NON_WORD_OR_END
                    } else {
                        WORD
                    }),
                    (_, Some(Token::Literal(c))) if at_start => {
                        out.push_str(if is_python_word(*c) {
                            NON_WORD_OR_START
                        } else {
                            WORD
                        })
                    }
                    _ => return Err(unsupported()),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &str) -> PatternList {
        PatternList::new(&[p.to_string()]).unwrap()
    }

    #[test]
    fn trailing_boundary_follows_python_word_definition() {
        let l = list(r"<script\b");
        for hit in [
            "<script",
            "<script>",
            "<script\u{301}",
            "<script\u{203F}",
            "<script\u{200D}",
            "<script\u{345}",
        ] {
            assert!(l.first_match(hit).is_some(), "{hit:?} should match");
        }
        for miss in [
            "<script_",
            "<scripts",
            "<script\u{b2}",
            "<script\u{2160}",
            "<script\u{e4}",
            "<script1",
        ] {
            assert!(l.first_match(miss).is_none(), "{miss:?} should not match");
        }
    }

    #[test]
    fn leading_boundary_and_non_word_neighbours() {
        let l = list(r"\bos");
        assert!(l.first_match("os").is_some());
        assert!(l.first_match("x os").is_some());
        assert!(l.first_match("xos").is_none());
        let l = list(r":\b");
        assert!(l.first_match("a:b").is_some());
        assert!(l.first_match("a: b").is_none());
    }

    #[test]
    fn boundary_inside_is_refused_with_a_code() {
        for p in [r"a\bb", r"(a\b)", r"a+\b", r"\bx\d", r"a\s", r"\w", r"a\B"] {
            let err = PatternList::new(&[p.to_string()]).unwrap_err();
            assert_eq!(err.code(), "invalid_pattern", "{p}");
        }
    }

    #[test]
    fn escapes_and_classes_survive_translation() {
        let l = list(r"os\.system|[ab]c\b");
        assert!(l.first_match("OS.SYSTEM").is_some());
        assert!(l.first_match("osXsystem").is_none());
        assert!(l.first_match("bc!").is_some());
        assert!(l.first_match("bcd").is_none());
    }
}
