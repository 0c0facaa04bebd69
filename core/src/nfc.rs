//! Canonical composition (NFC, UAX #15) of one text, over unicode-normalization's
//! per-character tables.
//!
//! Why not the crate's `.nfc()` iterator: its decomposition step chooses
//! canonical or compatibility at run time, so every build links the
//! compatibility tables too, 28 KB gzip of the browser's .wasm that no path
//! here uses (BENCHMARKS.md). The three steps below call only the canonical
//! tables (`decompose_canonical`, `canonical_combining_class`, `compose`), and
//! a test holds them equal to `.nfc()` on every code point and on random
//! text.

use unicode_normalization::char::{canonical_combining_class, compose, decompose_canonical};

/// Appends the NFC form of `text` to `out`.
pub(crate) fn push_nfc(out: &mut String, text: &str) {
    let mut chars = decomposed(text);
    order_canonically(&mut chars);
    compose_into(out, &chars);
}

/// Full canonical decomposition, each code point with its combining class.
fn decomposed(text: &str) -> Vec<(char, u8)> {
    let mut chars = Vec::with_capacity(text.len());
    for c in text.chars() {
        decompose_canonical(c, |d| chars.push((d, canonical_combining_class(d))));
    }
    chars
}

/// Canonical ordering: each run of non-starters sorted by combining class,
/// stably (equal classes keep their order).
fn order_canonically(chars: &mut [(char, u8)]) {
    let mut i = 0;
    while i < chars.len() {
        if chars.get(i).is_some_and(|&(_, class)| class == 0) {
            i += 1;
            continue;
        }
        let start = i;
        while chars.get(i).is_some_and(|&(_, class)| class != 0) {
            i += 1;
        }
        if let Some(run) = chars.get_mut(start..i) {
            run.sort_by_key(|&(_, class)| class);
        }
    }
}

/// Canonical composition: each character joins the last starter when nothing
/// between them blocks it (a starter, or a class at least its own).
fn compose_into(out: &mut String, chars: &[(char, u8)]) {
    let mut composed: Vec<char> = Vec::with_capacity(chars.len());
    let mut starter: Option<usize> = None;
    let mut last_class = 0u8;
    for &(c, class) in chars {
        if let Some(s) = starter {
            let adjacent = composed.len() == s + 1;
            let unblocked = adjacent || (last_class != 0 && last_class < class);
            if unblocked
                && let Some(joined) = composed.get(s).and_then(|&base| compose(base, c))
                && let Some(slot) = composed.get_mut(s)
            {
                *slot = joined;
                continue;
            }
        }
        if class == 0 {
            starter = Some(composed.len());
        }
        last_class = class;
        composed.push(c);
    }
    out.extend(composed);
}

#[cfg(test)]
mod tests {
    use super::push_nfc;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::canonical_combining_class;

    fn nfc(text: &str) -> String {
        let mut out = String::new();
        push_nfc(&mut out, text);
        out
    }

    /// Every code point, and every code point's canonical decomposition.
    #[test]
    fn every_code_point_and_its_decomposition_agree_with_the_crate() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let one = c.to_string();
            assert_eq!(
                nfc(&one),
                one.nfc().collect::<String>(),
                "U+{:04X}",
                u32::from(c)
            );
            let nfd: String = one.nfd().collect();
            if nfd != one {
                assert_eq!(
                    nfc(&nfd),
                    nfd.nfc().collect::<String>(),
                    "NFD of U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    /// Blocking and reordering: a base with every ordered pair of the
    /// combining diacritics block (many share class 230 or 220) and kana marks.
    #[test]
    fn base_with_two_marks_agrees_with_the_crate() {
        let bases = "aeiouyAEIOUYnNcCsSzZwWgGkKlLrRhH\u{3B1}\u{3B9}\u{3C9}\u{436}\u{43A}\u{304B}\u{30CF}\u{1100}\u{AC00}";
        let marks: Vec<char> = ('\u{300}'..='\u{36F}')
            .chain(['\u{3099}', '\u{309A}', '\u{1161}', '\u{11A8}'])
            .collect();
        for base in bases.chars() {
            for &m1 in &marks {
                for &m2 in &marks {
                    let text: String = [base, m1, m2].iter().collect();
                    assert_eq!(nfc(&text), text.nfc().collect::<String>(), "{text:?}");
                }
            }
        }
    }

    /// Characters that take part in composition: every base and mark of a
    /// canonical decomposition, Hangul jamo, and marks of many classes.
    fn composing_chars() -> Vec<char> {
        let mut set = std::collections::BTreeSet::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let nfd: Vec<char> = c.to_string().nfd().collect();
            if nfd.len() > 1 || nfd.first() != Some(&c) {
                set.extend(nfd);
                set.insert(c);
            }
            if canonical_combining_class(c) != 0 && set.len() < 4000 {
                set.insert(c);
            }
        }
        set.extend([
            '\u{1100}', '\u{1161}', '\u{11A8}', '\u{AC00}', '\u{AC01}', 'a', ' ',
        ]);
        set.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn random_composing_text_agrees_with_the_crate(
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..12)
        ) {
            thread_local! {
                static CHARS: Vec<char> = composing_chars();
            }
            let text: String = CHARS.with(|all| picks.iter().map(|i| *i.get(all)).collect());
            prop_assert_eq!(nfc(&text), text.nfc().collect::<String>(), "{:?}", text);
        }
    }
}
