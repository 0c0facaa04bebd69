//! `\b` in policy patterns against a brute-force reading of Python's `\b`:
//! a pattern is either refused (`invalid_pattern`) or matches exactly when
//! some span of the text matches the pattern's body (case-insensitively, as
//! the engine folds) with Python's boundary at each `\b`.

use mangaassist_core::policy::{Policy, PolicyConfig};
use proptest::prelude::*;
use regex_automata::hybrid::regex::Regex;

#[path = "../src/word_char.rs"]
#[allow(dead_code)]
mod word_char;
use word_char::is_python_word;

/// Letters, marks, digits, punctuation; U+0345 folds with U+0399, U+03B9
/// and U+1FBE; U+212A with `k`.
const LITERALS: &[char] = &[
    'x', 'k', '-', ' ', '_', '.', '\u{3B9}', '\u{399}', '\u{345}', '\u{212A}', '\u{B2}', '\u{E9}',
];
const TEXT: &[char] = &[
    'a', 'x', 'X', 'k', 'K', '\u{212A}', '-', ' ', '_', '.', '\u{3B9}', '\u{399}', '\u{345}',
    '\u{1FBE}', '\u{B2}', '\u{301}', '\u{E9}',
];
const QUANTIFIERS: &[&str] = &["", "?", "*", "+", "??", "{0,2}", "{2}", "{1,2}", "{0}"];

/// One top-level alternative: optional `\b`, literal pieces, optional `\b`.
#[derive(Debug, Clone)]
struct Branch {
    lead: bool,
    pieces: Vec<(char, &'static str)>,
    trail: bool,
}

impl Branch {
    fn body(&self) -> String {
        let mut body = String::new();
        for (c, q) in &self.pieces {
            if c.is_ascii_punctuation() && *c != '_' {
                body.push('\\');
            }
            body.push(*c);
            body.push_str(q);
        }
        body
    }

    fn source(&self) -> String {
        let b = |on: bool| if on { r"\b" } else { "" };
        format!("{}{}{}", b(self.lead), self.body(), b(self.trail))
    }

    /// Whether the translation must accept this branch: each `\b` beside a
    /// literal that is always there and does not fold across word-ness.
    fn plainly_supported(&self) -> bool {
        let plain = |c: char| !matches!(c, '\u{3B9}' | '\u{399}' | '\u{345}');
        let first = self.pieces.first();
        let last = self.pieces.last();
        let lead_ok = !self.lead
            || first.is_some_and(|(c, q)| plain(*c) && matches!(*q, "" | "+" | "{2}" | "{1,2}"));
        let trail_ok = !self.trail || last.is_some_and(|(c, q)| plain(*c) && q.is_empty());
        lead_ok && trail_ok
    }
}

fn branch() -> impl Strategy<Value = Branch> {
    let piece = (
        prop::sample::select(LITERALS),
        prop::sample::select(QUANTIFIERS),
    );
    (
        any::<bool>(),
        prop::collection::vec(piece, 1..3),
        any::<bool>(),
    )
        .prop_map(|(lead, pieces, trail)| Branch {
            lead,
            pieces,
            trail,
        })
}

/// Python's `\b` between `chars[i - 1]` and `chars[i]`.
fn boundary(chars: &[char], i: usize) -> bool {
    let word = |j: Option<usize>| {
        j.and_then(|j| chars.get(j))
            .is_some_and(|&c| is_python_word(c))
    };
    word(i.checked_sub(1)) != word(Some(i))
}

fn reference(branches: &[Branch], text: &str) -> Result<bool, String> {
    let chars: Vec<char> = text.chars().collect();
    for b in branches {
        let re = Regex::new(&format!("(?i)^(?:{})$", b.body())).map_err(|e| e.to_string())?;
        let mut cache = re.create_cache();
        for s in 0..=chars.len() {
            for e in s..=chars.len() {
                let span: String = chars[s..e].iter().collect();
                if re.is_match(&mut cache, span.as_str())
                    && (!b.lead || boundary(&chars, s))
                    && (!b.trail || boundary(&chars, e))
                {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn boundary_is_refused_or_means_what_python_means(
        branches in prop::collection::vec(branch(), 1..3),
        texts in prop::collection::vec(prop::collection::vec(prop::sample::select(TEXT), 0..7), 1..6),
    ) {
        let source: Vec<String> = branches.iter().map(Branch::source).collect();
        let source = source.join("|");
        let config = PolicyConfig {
            disallowed_patterns: vec![source.clone()],
            ..PolicyConfig::default()
        };
        let policy = match Policy::new(&config) {
            Ok(policy) => policy,
            Err(e) => {
                prop_assert_eq!(e.code(), "invalid_pattern");
                prop_assert!(
                    !branches.iter().all(Branch::plainly_supported),
                    "{:?} refused: {}", source, e
                );
                return Ok(());
            }
        };
        for text in texts {
            let text: String = text.into_iter().collect();
            let got = policy.check(&text).err().map(|r| r.code());
            let want = reference(&branches, &text)
                .map_err(TestCaseError::fail)?
                .then_some("disallowed_pattern");
            prop_assert_eq!(got, want, "{:?} on {:?}", source, text);
        }
    }
}
