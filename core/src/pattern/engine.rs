//! The search engine under [`PatternList`](super::PatternList).
//!
//! Both builds parse with regex-syntax and compile the same Thompson NFA
//! with the `regex` crate's defaults, so they accept the same patterns and
//! answer the same; they differ only in how they search it:
//! - `fast-regex` (native, the default): the meta engine with literal
//!   prefilters, one-pass and backtracking engines, as the `regex` crate uses.
//! - otherwise (the npm .wasm and the wasmtime policy): the lazy DFA alone,
//!   about 54 KB gzip smaller in the browser (BENCHMARKS.md). It never gives
//!   up (no quit bytes, no cache-clear limit), so it needs no fallback.

#[cfg(any(not(feature = "fast-regex"), test))]
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

/// The `regex` crate's default limit on the compiled NFA (10 MiB).
const NFA_SIZE_LIMIT: usize = 10 * (1 << 20);
/// The `regex` crate's default lazy-DFA cache per search (2 MiB).
const DFA_CACHE_CAPACITY: usize = 2 * (1 << 20);

fn syntax_config() -> syntax::Config {
    syntax::Config::new().utf8(true)
}

#[cfg(any(not(feature = "fast-regex"), test))]
fn nfa_config() -> thompson::Config {
    thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT))
}

#[cfg(feature = "fast-regex")]
pub(super) use fast::Engine;
#[cfg(not(feature = "fast-regex"))]
pub(super) use small::Engine;

#[cfg(feature = "fast-regex")]
mod fast {
    use super::*;
    use regex_automata::meta::{BuildError, Config, Regex};
    use regex_automata::nfa::thompson::WhichCaptures;

    /// Two regexes over the same patterns: one leftmost-first alternation
    /// answers "any match?" (the common, negative case) with the best
    /// prefilter; one match-all set says which matched, asked only after a hit.
    #[derive(Debug, Clone)]
    pub struct Engine {
        any: Regex,
        set: Regex,
    }

    impl Engine {
        /// Compiles `patterns`, or says why one does not compile.
        pub fn new(patterns: &[String]) -> Result<Self, String> {
            let config = Config::new()
                .nfa_size_limit(Some(NFA_SIZE_LIMIT))
                .hybrid_cache_capacity(DFA_CACHE_CAPACITY)
                .utf8_empty(true);
            let alternation: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
            let any = Regex::builder()
                .configure(config.clone().match_kind(MatchKind::LeftmostFirst))
                .syntax(syntax_config())
                .build(&alternation.join("|"))
                .map_err(|e: BuildError| e.to_string())?;
            let set = Regex::builder()
                .configure(
                    config
                        .match_kind(MatchKind::All)
                        .which_captures(WhichCaptures::None),
                )
                .syntax(syntax_config())
                .build_many(patterns)
                .map_err(|e: BuildError| e.to_string())?;
            Ok(Engine { any, set })
        }

        /// Index of the first pattern (in list order) matching `text`.
        pub fn first_match(&self, text: &str) -> Option<usize> {
            if !self.any.is_match(text) {
                return None;
            }
            let mut which = PatternSet::new(self.set.pattern_len());
            self.set
                .which_overlapping_matches(&Input::new(text), &mut which);
            which.iter().next().map(|p| p.as_usize())
        }
    }
}

// Also compiled in native test builds, to be checked against the fast one.
#[cfg(any(not(feature = "fast-regex"), test))]
mod small {
    use super::*;
    use regex_automata::hybrid::BuildError;
    use regex_automata::hybrid::dfa::{Cache, DFA};
    use regex_automata::util::pool::Pool;

    type CachePool = Pool<Cache, Box<dyn Fn() -> Cache + Send + Sync>>;

    /// One match-all lazy DFA over every pattern, and a pool of its caches so
    /// repeated checks reuse the states already built.
    pub struct Engine {
        dfa: DFA,
        caches: CachePool,
    }

    fn pool_for(dfa: &DFA) -> CachePool {
        let dfa = dfa.clone();
        Pool::new(Box::new(move || dfa.create_cache()))
    }

    impl Engine {
        /// Compiles `patterns`, or says why one does not compile.
        pub fn new(patterns: &[String]) -> Result<Self, String> {
            let dfa = DFA::builder()
                .configure(
                    DFA::config()
                        .match_kind(MatchKind::All)
                        .cache_capacity(DFA_CACHE_CAPACITY)
                        // Patterns whose automaton needs more than the
                        // capacity get the minimum instead of an error, as
                        // the meta engine would fall back instead of failing.
                        .skip_cache_capacity_check(true),
                )
                .syntax(syntax_config())
                .thompson(nfa_config())
                .build_many(patterns)
                .map_err(|e: BuildError| e.to_string())?;
            let caches = pool_for(&dfa);
            Ok(Engine { dfa, caches })
        }

        /// Index of the first pattern (in list order) matching `text`.
        pub fn first_match(&self, text: &str) -> Option<usize> {
            let mut cache = self.caches.get();
            let input = Input::new(text).earliest(true);
            // The configuration can neither quit nor give up, and the input
            // is unanchored: an error is impossible, and would read as no match.
            self.dfa.try_search_fwd(&mut cache, &input).ok()??;
            let mut which = PatternSet::new(self.dfa.pattern_len());
            self.dfa
                .try_which_overlapping_matches(&mut cache, &Input::new(text), &mut which)
                .ok()?;
            which.iter().next().map(|p| p.as_usize())
        }
    }

    impl Clone for Engine {
        fn clone(&self) -> Self {
            Engine {
                dfa: self.dfa.clone(),
                caches: pool_for(&self.dfa),
            }
        }
    }

    impl std::fmt::Debug for Engine {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Engine")
                .field("patterns", &self.dfa.pattern_len())
                .finish_non_exhaustive()
        }
    }
}

/// The two engines must agree on every pattern list and text: random
/// patterns over case-folding and word-boundary edge characters.
#[cfg(all(test, feature = "fast-regex"))]
mod agreement {
    use super::{fast, small};
    use proptest::prelude::*;

    const CHARS: &[char] = &[
        'a', 'b', 'k', 'K', '\u{212A}', 's', 'S', '\u{17F}', '\u{DF}', '\u{1E9E}', '\u{3C3}',
        '\u{3C2}', '\u{3A3}', '\u{345}', '\u{3B9}', '\u{301}', '\u{E9}', '_', '1', '\u{B2}', ' ',
        '\n', '<', ':', '.', '\u{6F2B}', '\u{304B}', '\u{416}', '\u{200D}',
    ];

    fn atom() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(CHARS).prop_map(regex_syntax_escape),
            1 => Just(".".to_string()),
            1 => Just("[a-k]".to_string()),
            1 => Just("[^s\\n]".to_string()),
            1 => Just("[\u{3C3}-\u{3C9}]".to_string()),
        ]
    }

    fn regex_syntax_escape(c: char) -> String {
        match c {
            '.' => "\\.".into(),
            '\n' => "\\n".into(),
            c => c.to_string(),
        }
    }

    fn pattern() -> impl Strategy<Value = String> {
        let piece = (
            atom(),
            prop::sample::select(&["", "*", "+", "?", "{2}", "{1,3}"][..]),
        )
            .prop_map(|(a, q)| format!("{a}{q}"));
        let seq = prop::collection::vec(piece, 1..4).prop_map(|v| v.concat());
        prop::collection::vec(seq, 1..3).prop_map(|alts| {
            alts.iter()
                .map(|a| format!("(?:{a})"))
                .collect::<Vec<_>>()
                .join("|")
        })
    }

    proptest! {
        #[test]
        fn fast_and_small_engines_agree(
            raw in prop::collection::vec((pattern(), any::<bool>(), any::<bool>()), 1..4),
            text in prop::collection::vec(prop::sample::select(CHARS), 0..24),
        ) {
            let patterns: Vec<String> = raw
                .iter()
                .map(|(p, ci, anchored)| {
                    let flags = if *ci { "(?i)" } else { "" };
                    let anchor = if *anchored { "^" } else { "" };
                    format!("{flags}{anchor}{p}")
                })
                .collect();
            let text: String = text.into_iter().collect();
            let fast = fast::Engine::new(&patterns);
            let small = small::Engine::new(&patterns);
            prop_assert_eq!(fast.is_ok(), small.is_ok(), "{:?}", patterns);
            if let (Ok(fast), Ok(small)) = (fast, small) {
                prop_assert_eq!(fast.first_match(&text), small.first_match(&text), "{:?} on {:?}", patterns, text);
            }
        }
    }
}
