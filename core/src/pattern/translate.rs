//! The `\b` rewrite: Python's word boundary as a consuming class.
//!
//! regex-automata has no look-around, so `\b` is rewritten into a consuming
//! class. That is exact because we only ask *whether* a pattern matches, and
//! it is allowed only where the extra consumed character cannot disturb the
//! rest of the match: at the start or end of a pattern or of a top-level
//! alternative, next to a literal character.

use crate::chars::is_python_word;
use crate::error::Error;

/// The ranges of Python word characters (L*, N*, `_`), written by build.rs
/// from the tables [`is_python_word`] reads.
const WORD_RANGES: &str = include_str!(concat!(env!("OUT_DIR"), "/word_class.txt"));

/// The rewrite of one `\b`: a word character, or a non-word character or the
/// edge of the text. Immune to the case-insensitive flag (under `(?i)` a
/// negated class would gain code points that fold into it, such as U+0345,
/// which is a mark and not a word character).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Boundary {
    Word,
    NonWordOrEnd,
    NonWordOrStart,
}

impl Boundary {
    fn push_to(self, out: &mut String) {
        let (before, after) = match self {
            Boundary::Word => ("(?-i:[", "])"),
            Boundary::NonWordOrEnd => ("(?-i:[^", r"]|\z)"),
            Boundary::NonWordOrStart => (r"(?-i:\A|[^", "])"),
        };
        out.push_str(before);
        out.push_str(WORD_RANGES);
        out.push_str(after);
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

/// Escapes refused anywhere in a pattern. Perl classes (`\s`, `\w`, `\d`),
/// `\B` and the word-start/end assertions `\<`, `\>` (a literal `<`, `>` in
/// Python) mean different things in Python and in regex-syntax; Unicode
/// properties (`\p`, `\P`) do not exist in Python. Whether regex-syntax
/// knows them at all depends on cargo features another crate in the same
/// build may switch on (the host's jsonschema does), and the browser's lazy
/// DFA has no Unicode word assertions, so accepting them would let engines
/// disagree.
fn is_refused_escape(e: char) -> bool {
    matches!(
        e,
        's' | 'S' | 'w' | 'W' | 'd' | 'D' | 'B' | 'p' | 'P' | '<' | '>'
    )
}

fn refused_escape(pattern: &str, e: char) -> Error {
    let why = if matches!(e, 'p' | 'P') {
        "Unicode property classes are not supported (Python's `re` has none)"
    } else {
        "Python and regex-syntax disagree on its meaning"
    };
    Error::invalid_pattern(format!(
        "pattern {pattern:?}: `\\{e}` is not supported: {why}; write an explicit class \
         such as `[ \\t]` or `[0-9]`"
    ))
}

/// Splits a pattern into tokens, refusing the escapes [`is_refused_escape`]
/// names, in classes too.
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
                Some(e) if is_refused_escape(e) => return Err(refused_escape(pattern, e)),
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
                                if is_refused_escape(n) {
                                    return Err(refused_escape(pattern, n));
                                }
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
pub(super) fn translate_word_boundaries(pattern: &str) -> Result<String, Error> {
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
                    (Some(Token::Literal(c)), _) if at_end => if is_python_word(*c) {
                        Boundary::NonWordOrEnd
                    } else {
                        Boundary::Word
                    }
                    .push_to(&mut out),
                    (_, Some(Token::Literal(c))) if at_start => if is_python_word(*c) {
                        Boundary::NonWordOrStart
                    } else {
                        Boundary::Word
                    }
                    .push_to(&mut out),
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

    #[test]
    fn boundary_inside_is_refused_with_a_code() {
        for p in [
            r"a\bb",
            r"(a\b)",
            r"a+\b",
            r"\bx\d",
            r"a\s",
            r"\w",
            r"a\B",
            r"\p{L}",
            r"[\P{N}x]",
            r"[a\s]",
            r"[\d]",
            r"\<a",
            r"a\>",
            r"[\<]",
            r"[\B]",
        ] {
            let err = translate_word_boundaries(p).unwrap_err();
            assert_eq!(err.code(), "invalid_pattern", "{p}");
        }
    }

    fn rewrite(b: Boundary) -> String {
        let mut out = String::new();
        b.push_to(&mut out);
        out
    }

    #[test]
    fn boundaries_become_classes() {
        let word = rewrite(Boundary::Word);
        assert_eq!(
            translate_word_boundaries(r"a\b").unwrap(),
            format!("a{}", rewrite(Boundary::NonWordOrEnd))
        );
        assert_eq!(
            translate_word_boundaries(r"\b:").unwrap(),
            format!("{word}:")
        );
        assert_eq!(
            translate_word_boundaries(r"x|\bos").unwrap(),
            format!("x|{}os", rewrite(Boundary::NonWordOrStart))
        );
    }

    /// The generated ranges hold exactly the code points `is_python_word`
    /// accepts, checked over all of Unicode.
    #[test]
    fn word_ranges_are_the_python_word_characters() {
        let mut inside = vec![false; 0x110000];
        let mut range_start = None;
        for item in WORD_RANGES.split(r"\x{").filter(|s| !s.is_empty()) {
            let (hex, dash) = match item.strip_suffix("}-") {
                Some(hex) => (hex, true),
                None => (item.strip_suffix('}').unwrap(), false),
            };
            let cp = usize::try_from(u32::from_str_radix(hex, 16).unwrap()).unwrap();
            if dash {
                range_start = Some(cp);
            } else {
                let start = range_start.take().unwrap_or(cp);
                inside[start..=cp].iter_mut().for_each(|b| *b = true);
            }
        }
        for cp in 0..0x110000u32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(inside[cp as usize], is_python_word(c), "U+{cp:04X}");
            }
        }
    }
}
