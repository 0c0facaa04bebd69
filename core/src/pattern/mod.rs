//! Disallowed-pattern matching with Python `re` semantics where SPEC 3 asks for them.
//!
//! Patterns use the `regex` crate's syntax (regex-syntax parses them),
//! matched case-insensitively with Unicode simple case folding. The one
//! difference SPEC 3 pins down is `\b`: a word character is L*, N* or `_`
//! (Python), not the `regex` crate's wider set; [`translate`] rewrites it,
//! and `$`, which in Python also matches before a final newline.
//! [`engine`] runs the result: the same parse and automaton in every build,
//! a faster or a smaller search engine depending on the build.

mod engine;
mod translate;

use crate::error::Error;
use engine::Engine;
use translate::translate_anchors;

/// A compiled, ordered list of disallowed patterns.
#[derive(Debug, Clone)]
pub struct PatternList {
    sources: Vec<String>,
    engine: Engine,
}

impl PatternList {
    /// Compiles `patterns` once; the order is kept for reporting.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut translated = Vec::with_capacity(patterns.len());
        for p in patterns {
            translated.push(format!("(?i){}", translate_anchors(p)?));
        }
        let engine = Engine::new(&translated).map_err(|e| {
            Error::invalid_pattern(format!("a disallowed pattern does not compile: {e}"))
        })?;
        Ok(PatternList {
            sources: patterns.to_vec(),
            engine,
        })
    }

    /// The first pattern (in list order) that matches `text`, if any.
    pub fn first_match(&self, text: &str) -> Option<&str> {
        if self.sources.is_empty() {
            return None;
        }
        let first = self.engine.first_match(text)?;
        self.sources.get(first).map(String::as_str)
    }

    /// The patterns as configured.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }
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
    fn refusals_carry_the_code() {
        for p in [r"a\bb", r"(a", r"x{2,1}", r"\p{L}", r"[\P{N}]"] {
            let err = PatternList::new(&[p.to_string()]).unwrap_err();
            assert_eq!(err.code(), "invalid_pattern", "{p}");
        }
    }

    fn refusal(p: &str) -> String {
        match PatternList::new(&[p.to_string()]) {
            Ok(_) => panic!("{p:?} should be refused"),
            Err(e) => {
                assert_eq!(e.code(), "invalid_pattern", "{p}");
                e.to_string()
            }
        }
    }

    /// Python: `re.search(r'\bx?-', 'a-', re.I)` matches (x absent, boundary
    /// between `a` and `-`); a rewrite fixed to the literal `x` cannot say so.
    #[test]
    fn boundary_beside_an_optional_literal_is_refused() {
        for p in [
            r"\bx?-",
            r"\bx*-",
            r"\bx??-",
            r"\bx{0}-",
            r"\bx{0,2}-",
            r"\bx{00,2}-",
            r"k|\bx*",
        ] {
            let msg = refusal(p);
            assert!(msg.contains("may be absent"), "{p}: {msg}");
        }
        // Always present: still translated.
        for (p, hit, miss) in [
            (r"\bx+-", "a x-", "ax-"),
            (r"\bx{1,2}-", "-xx-", "axx-"),
            (r"\bx{2}", "xx", "axx"),
        ] {
            assert!(list(p).first_match(hit).is_some(), "{p} on {hit:?}");
            assert!(list(p).first_match(miss).is_none(), "{p} on {miss:?}");
        }
    }

    /// U+0345 (Mn, not a word character) folds together with U+0399, U+03B9
    /// and U+1FBE (letters): `\bι` matches "x\u{345}" in Python.
    #[test]
    fn boundary_beside_a_literal_whose_folds_differ_in_wordness_is_refused() {
        for p in [
            "\\b\u{3B9}",
            "\u{3B9}\\b",
            "\\b\u{399}x",
            "x\u{1FBE}\\b",
            "\\b\u{345}",
            "a\u{345}\\b",
        ] {
            let msg = refusal(p);
            assert!(msg.contains("case-insensitive"), "{p}: {msg}");
        }
    }

    /// Verbose mode is refused: regex-syntax and Python ignore different
    /// whitespace, and comments could hide structure from the rewrites.
    #[test]
    fn verbose_mode_is_refused() {
        for p in [
            r"(?x)a|\b k",
            r"(?x)k \b",
            r"(?xi)k \b",
            r"(?i:x)|(?sx)k \b",
            "(?x)a\\ $",
            "(?x)a#[\n$#]",
            "(?x)(a#)\n$|b)",
            "(?x)a\u{85}$",
            "(?x:a)",
        ] {
            let msg = refusal(p);
            assert!(msg.contains("verbose"), "{p}: {msg}");
        }
        // Turning it off, or other flags, leaves `\b` alone.
        assert!(list(r"(?-x)a|\bk").first_match("k").is_some());
    }

    /// `\x2D` is `-`, not a `D`; `]` right after `[^` is a member, not the end.
    #[test]
    fn boundary_neighbours_are_read_as_regex_syntax_reads_them() {
        for p in [
            r"\x2D\b",
            r"\u002D\b",
            r"\x{2D}\b",
            r"a([^])]|\bk)",
            r"a([]|]|\bk)",
        ] {
            refusal(p);
        }
        assert!(list(r"[^](]x|\bk").first_match("-k").is_some());
        assert!(list(r"[^](]x|\bk").first_match("ak").is_none());
    }

    #[test]
    fn escapes_and_classes_survive_translation() {
        let l = list(r"os\.system|[ab]c\b");
        assert!(l.first_match("OS.SYSTEM").is_some());
        assert!(l.first_match("osXsystem").is_none());
        assert!(l.first_match("bc!").is_some());
        assert!(l.first_match("bcd").is_none());
    }

    /// Python's `$` also matches before a newline that ends the text (the
    /// differential fuzzer's first find); in multiline mode, before any.
    #[test]
    fn end_anchor_means_what_python_means() {
        for (p, hit, miss) in [
            (
                "a$",
                &["a", "a\n", "ba\n", "A\n"][..],
                &["a\n\n", "ab", "a\nb", "a\r\n"][..],
            ),
            (".$", &["x\n"], &["\n", "\n\n", ""]),
            ("x|a$", &["a\n", "xa\nq"], &["a\nq"]),
            ("(?m)a$", &["a\nb", "a", "a\n"], &["ab"]),
            ("(?im)^a$", &["b\nA\nc"], &["ba\n"]),
        ] {
            let l = list(p);
            for h in hit {
                assert!(l.first_match(h).is_some(), "{p} should match {h:?}");
            }
            for m in miss {
                assert!(l.first_match(m).is_none(), "{p} should not match {m:?}");
            }
        }
        for p in [
            "a$b", "(a$)", "a$?", r"a$\n", "x(?m)a$", "(?-m)a$", "(?m:a)b$", "a$(?m)",
        ] {
            let e = PatternList::new(&[p.to_string()]).unwrap_err();
            assert_eq!(e.code(), "invalid_pattern", "{p}");
            assert!(e.message().contains('$'), "{p}: {}", e.message());
        }
        // In a class, `$` is a character.
        assert!(list("[$]").first_match("US$").is_some());
        assert!(list(r"\$5").first_match("$5\n").is_some());
    }

    #[test]
    fn first_match_is_in_list_order_not_text_order() {
        let l =
            PatternList::new(&["zeta".to_string(), "alpha".to_string(), "a".to_string()]).unwrap();
        assert_eq!(l.first_match("alpha then zeta"), Some("zeta"));
        assert_eq!(l.first_match("alpha"), Some("alpha"));
        assert_eq!(l.first_match("b"), None);
    }

    #[test]
    fn large_unicode_repetitions_compile_and_match() {
        // Needs more than the default lazy-DFA cache in the small engine.
        let l = list(r"[\x{80}-\x{10FFFF}]{300}");
        assert!(l.first_match(&"αβγ".repeat(100)).is_some());
        assert!(l.first_match(&"αβγ".repeat(99)).is_none());
    }
}
