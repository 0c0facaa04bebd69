//! The `\b` and `$` rewrites: Python's word boundary and end anchor.
//!
//! Python's `$` (without multiline mode) also matches before a newline that
//! ends the text; regex-syntax's only at the very end. Where nothing follows
//! the `$` it becomes `(?:\n?\z)`, exact for the same reason as below;
//! elsewhere it is refused (the differential fuzzer found this:
//! docs/reliability.md).
//!
//! regex-automata has no look-around, so `\b` is rewritten into a consuming
//! class. That is exact because we only ask *whether* a pattern matches, and
//! it is allowed only where the extra consumed character cannot disturb the
//! rest of the match: at the start or end of a pattern or of a top-level
//! alternative, next to a literal character. The rewrite picks its class
//! from that one character, so the character must always be there (no `?`,
//! `*`, `{0,n}`), must be all word or all non-word under case folding
//! (U+0345 is a mark, its folds are letters), and must be read as
//! regex-syntax reads it.
//!
//! Verbose mode (`x`) is refused outright: regex-syntax ignores all Unicode
//! whitespace and Python only ASCII, and a `#` comment can hide a `[`, `)`
//! or flag group from this tokenizer (the review of the `$` rewrite found
//! patterns that were accepted and answered differently).

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
    /// `$` outside a class.
    EndAnchor,
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

/// Code points whose simple case folds include both word and non-word
/// characters: U+0345 (Mn) folds with U+0399, U+03B9 and U+1FBE (letters).
/// A test checks the list against the case tables over all of Unicode.
const FOLDS_MIX_WORDNESS: [char; 4] = ['\u{345}', '\u{399}', '\u{3B9}', '\u{1FBE}'];

/// What a flag group such as `(?x)`, `(?im:` or `(?-m)` does, if the group
/// whose `(` was just read (`rest` follows it) is one.
struct FlagGroup {
    /// The flags it switches on.
    on: String,
    /// Whether it mentions `m` after `-` (switches multiline off).
    m_off: bool,
    /// `(?m:...)`: the flags hold inside the group only.
    scoped: bool,
}

fn group_flags(mut rest: impl Iterator<Item = char>) -> Option<FlagGroup> {
    if rest.next() != Some('?') {
        return None;
    }
    let mut group = FlagGroup {
        on: String::new(),
        m_off: false,
        scoped: false,
    };
    let mut negated = false;
    for f in rest {
        match f {
            'i' | 'm' | 's' | 'U' | 'u' | 'R' | 'x' if !negated => group.on.push(f),
            'i' | 'm' | 's' | 'U' | 'u' | 'R' | 'x' => group.m_off |= f == 'm',
            '-' => negated = true,
            ':' => {
                group.scoped = true;
                break;
            }
            _ => break,
        }
    }
    Some(group)
}

/// Where `$` means what Python's `$` means as regex-syntax reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Multiline {
    /// Never switched on: Python's `$` also matches before a final `\n`.
    Off,
    /// Switched on by a leading flag group for the whole pattern: both read
    /// `$` as "before any `\n` or at the end".
    Global,
    /// Switched on or off somewhere else: `$` is refused.
    Mixed,
}

/// What [`tokenize`] learns about a pattern's flags.
#[derive(Debug, Clone, Copy)]
struct Flags {
    /// Where multiline mode (`m`) is on.
    multiline: Multiline,
}

/// Splits a pattern into tokens, refusing the escapes [`is_refused_escape`]
/// names, in classes too. Also says which flags are switched on where.
fn tokenize(pattern: &str) -> Result<(Vec<Token>, Flags), Error> {
    let mut tokens = Vec::new();
    let mut flags = Flags {
        multiline: Multiline::Off,
    };
    let mut chars = pattern.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('b') => tokens.push(Token::WordBoundary),
                // A hex escape is one item: `\x2D` is `-`, not `\x`, `2`, `D`.
                Some(e @ ('x' | 'u' | 'U')) => {
                    let mut escape = format!("\\{e}");
                    if chars.peek() == Some(&'{') {
                        while let Some(k) = chars.next_if(|&k| k != '}') {
                            escape.push(k);
                        }
                        escape.extend(chars.next());
                    } else {
                        let digits = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        for _ in 0..digits {
                            escape.extend(chars.next_if(char::is_ascii_hexdigit));
                        }
                    }
                    tokens.push(Token::Other(escape));
                }
                Some(e) if META.contains(&e) || matches!(e, '-' | '&' | '~' | '#' | ' ') => {
                    tokens.push(Token::Literal(e))
                }
                Some(e) if is_refused_escape(e) => return Err(refused_escape(pattern, e)),
                Some(e) => tokens.push(Token::Other(format!("\\{e}"))),
                None => return Err(Error::invalid_pattern("pattern ends with a lone backslash")),
            },
            '[' => {
                // Copy a whole class verbatim; `\b` inside it is left to the regex parser.
                // As in regex-syntax, a `]` right after `[` or `[^` is a member.
                let mut class = String::from("[");
                let mut nest = 1usize;
                // 1 right after `[`, 2 right after `[^`, 0 elsewhere.
                let mut opened = 1u8;
                while let Some(k) = chars.next() {
                    class.push(k);
                    let was = std::mem::take(&mut opened);
                    match k {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                if is_refused_escape(n) {
                                    return Err(refused_escape(pattern, n));
                                }
                                class.push(n);
                            }
                        }
                        '[' => {
                            nest += 1;
                            opened = 1;
                        }
                        '^' if was == 1 => opened = 2,
                        ']' if was == 0 => {
                            nest -= 1;
                            if nest == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                tokens.push(Token::Other(class));
            }
            '(' => {
                if let Some(group) = group_flags(chars.clone()) {
                    if group.on.contains('x') {
                        return Err(Error::invalid_pattern(format!(
                            "pattern {pattern:?}: verbose mode (flag `x`) is not supported: \
                             Python and regex-syntax ignore different whitespace and read `#` \
                             comments differently"
                        )));
                    }
                    if group.m_off || group.on.contains('m') {
                        let whole = tokens.is_empty() && !group.scoped && !group.m_off;
                        flags.multiline = match (whole, flags.multiline) {
                            (true, Multiline::Off) => Multiline::Global,
                            _ => Multiline::Mixed,
                        };
                    }
                }
                depth += 1;
                tokens.push(Token::Other("(".into()));
            }
            ')' => {
                depth = depth.saturating_sub(1);
                tokens.push(Token::Other(")".into()));
            }
            '|' if depth == 0 => tokens.push(Token::TopLevelBar),
            '$' => tokens.push(Token::EndAnchor),
            c if META.contains(&c) => tokens.push(Token::Other(c.to_string())),
            c => tokens.push(Token::Literal(c)),
        }
    }
    Ok((tokens, flags))
}

fn push_literal(out: &mut String, c: char) {
    if META.contains(&c) {
        out.push('\\');
    }
    out.push(c);
}

/// Whether a literal followed by `rest` may match zero times: `?`, `*`, or
/// a `{` not starting with a positive count (`{0,2}`, `{,2}`).
fn may_be_absent(rest: &[Token]) -> bool {
    match rest.first() {
        Some(Token::Other(q)) if q == "?" || q == "*" => true,
        Some(Token::Other(q)) if q == "{" => {
            let count: String = rest
                .iter()
                .skip(1)
                .map_while(|t| match t {
                    Token::Literal(d) if d.is_ascii_digit() => Some(*d),
                    _ => None,
                })
                .collect();
            count.trim_start_matches('0').is_empty()
        }
        _ => false,
    }
}

/// Rewrites every `\b` of `pattern` into a consuming class, or explains why it cannot.
pub(super) fn translate_anchors(pattern: &str) -> Result<String, Error> {
    let (tokens, flags) = tokenize(pattern)?;
    let refuse = |why: String| Error::invalid_pattern(format!("pattern {pattern:?}: {why}"));
    let mut out = String::with_capacity(pattern.len() + 32);
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Literal(c) => push_literal(&mut out, *c),
            Token::Other(s) => out.push_str(s),
            Token::TopLevelBar => out.push('|'),
            Token::EndAnchor => match flags.multiline {
                Multiline::Global => out.push('$'),
                Multiline::Mixed => {
                    return Err(refuse(
                        "`$` is not supported where multiline mode (flag `m`) is switched on \
                         or off inside the pattern: set `(?m)` at its start, or leave it out"
                            .into(),
                    ));
                }
                // Python's `$` also matches before a final newline. Consuming
                // that newline is exact where nothing follows the `$`.
                Multiline::Off if matches!(tokens.get(i + 1), None | Some(Token::TopLevelBar)) => {
                    out.push_str(r"(?:\n?\z)");
                }
                Multiline::Off => {
                    return Err(refuse(
                        "`$` is supported only at the end of a pattern (or of a top-level \
                         alternative), where it can mean what Python's `$` means (the end, or \
                         before a final newline)"
                            .into(),
                    ));
                }
            },
            Token::WordBoundary => {
                let before = i.checked_sub(1).and_then(|j| tokens.get(j));
                let after = tokens.get(i + 1);
                let at_end = matches!(after, None | Some(Token::TopLevelBar));
                let at_start = matches!(before, None | Some(Token::TopLevelBar));
                let (c, boundary) = match (before, after) {
                    (Some(Token::Literal(c)), _) if at_end => (*c, Boundary::NonWordOrEnd),
                    (_, Some(Token::Literal(c))) if at_start => {
                        if may_be_absent(tokens.get(i + 2..).unwrap_or_default()) {
                            return Err(refuse(
                                "`\\b` is not supported next to a literal that may be absent \
                                 (`?`, `*`, `{0,n}`): the boundary would then be beside \
                                 another character"
                                    .into(),
                            ));
                        }
                        (*c, Boundary::NonWordOrStart)
                    }
                    _ => {
                        return Err(refuse(
                            "`\\b` is supported only at the start or end of a pattern \
                             (or of a top-level alternative), next to a literal character"
                                .into(),
                        ));
                    }
                };
                if FOLDS_MIX_WORDNESS.contains(&c) {
                    return Err(refuse(format!(
                        "`\\b` is not supported next to U+{:04X}: its case-insensitive forms \
                         include both word and non-word characters",
                        u32::from(c)
                    )));
                }
                if is_python_word(c) {
                    boundary
                } else {
                    Boundary::Word
                }
                .push_to(&mut out);
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
            r"(?:x|)\b",
            r"\b(?:x)?-",
            r"\b[a-]",
            r"\b.",
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
            let err = translate_anchors(p).unwrap_err();
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
            translate_anchors(r"a\b").unwrap(),
            format!("a{}", rewrite(Boundary::NonWordOrEnd))
        );
        assert_eq!(translate_anchors(r"\b:").unwrap(), format!("{word}:"));
        assert_eq!(
            translate_anchors(r"x|\bos").unwrap(),
            format!("x|{}os", rewrite(Boundary::NonWordOrStart))
        );
    }

    /// [`FOLDS_MIX_WORDNESS`] is exactly the set of code points whose case
    /// folds (as the engine's `(?i)` has them) mix word and non-word
    /// characters, over all of Unicode: the non-word ones `(?i)[word]`
    /// matches, and the word ones `(?i)[those]` matches.
    #[test]
    fn folds_mixing_wordness_are_the_listed_ones() {
        use super::super::engine::Engine;
        let any_fold_of = |class: &str| Engine::new(&[format!("(?i)^[{class}]$")]).unwrap();
        let is_in = |e: &Engine, c: char| e.first_match(c.encode_utf8(&mut [0; 4])).is_some();
        let all = || (0..=0x10FFFF).filter_map(char::from_u32);
        let word = any_fold_of(WORD_RANGES);
        let non_word: Vec<char> = all()
            .filter(|&c| !is_python_word(c) && is_in(&word, c))
            .collect();
        let class: String = non_word
            .iter()
            .map(|c| format!("\\x{{{:X}}}", u32::from(*c)))
            .collect();
        let back = any_fold_of(&class);
        let mut mixed = non_word.clone();
        mixed.extend(all().filter(|&c| is_python_word(c) && is_in(&back, c)));
        mixed.sort_unstable();
        assert_eq!(mixed, FOLDS_MIX_WORDNESS);
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
