//! Properties that must hold for every input, not just the corpus.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use mangaassist_core::api::check_report;
use mangaassist_core::policy::Policy;
use mangaassist_core::sanitize::sanitize;
use proptest::prelude::*;
use unicode_normalization::{UnicodeNormalization, is_nfc};

/// Text biased toward the characters the checks care about.
fn chat_text() -> impl Strategy<Value = String> {
    let interesting = prop_oneof![
        Just('\u{200B}'),
        Just('\u{200D}'),
        Just('\u{FEFF}'),
        Just('\u{2028}'),
        Just('\u{3099}'),
        Just('\u{309A}'),
        Just('\u{301}'),
        Just('\u{3000}'),
        Just('\u{1C}'),
        Just('\u{85}'),
        Just('\u{A0}'),
        Just('\0'),
        Just('\u{17F}'),
        Just('\u{212A}'),
        Just('<'),
        Just('{'),
        Just('}'),
        Just('\n'),
        Just('Ж'),
        Just('漫'),
        Just('か'),
        Just('ｶ'),
        Just('ﾞ'),
        Just('s'),
        Just('_'),
    ];
    proptest::collection::vec(prop_oneof![3 => any::<char>(), 2 => interesting], 0..64)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sanitize_is_idempotent(s in chat_text()) {
        let once = sanitize(&s);
        prop_assert_eq!(sanitize(&once), once.clone());
        prop_assert!(is_nfc(&once));
    }

    /// The fast paths of sanitize equal the plain definition of SPEC 4.
    #[test]
    fn sanitize_equals_the_plain_definition(s in chat_text()) {
        let removed: String = s
            .chars()
            .filter(|c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{FEFF}'))
            .collect();
        let composed: String = removed.nfc().collect();
        let ws = |c: char| matches!(c, '\u{9}'..='\u{D}' | '\u{1C}'..='\u{20}' | '\u{85}' | '\u{A0}'
            | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}'
            | '\u{205F}' | '\u{3000}');
        prop_assert_eq!(sanitize(&s), composed.trim_matches(ws));
    }

    #[test]
    fn check_never_panics_and_is_consistent(s in chat_text()) {
        let policy = Policy::spec_default().unwrap();
        let report = check_report(&policy, &s);
        prop_assert_eq!(report.valid, report.code.is_none());
        prop_assert_eq!(report.code.is_none(), report.detail.is_none());
    }

    #[test]
    fn check_never_panics_on_any_string(s in any::<String>()) {
        let policy = Policy::spec_default().unwrap();
        let _ = check_report(&policy, &s);
    }
}

/// Text from a small alphabet, so repeats and near-repeats are common.
fn seam_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just(' '),
            Just('漫'),
            Just('\u{3000}')
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    /// However a continuation arrives in pieces, the seam filter passes on
    /// exactly what the seam rule drops nothing more or less of when it
    /// sees the whole continuation at once.
    #[test]
    fn the_seam_filter_does_not_depend_on_how_text_arrives(
        sent in seam_text(),
        continuation in seam_text(),
        cuts in prop::collection::vec(0usize..30, 0..6),
        prefill in any::<bool>(),
    ) {
        use mangaassist_core::continuation::{Seam, SeamFilter, seam};
        let whole = match seam(&sent, &continuation, true, prefill) {
            Seam::Skip(n) => continuation[n..].to_string(),
            Seam::Wait => unreachable!("a complete continuation is always decided"),
        };
        let chars: Vec<char> = continuation.chars().collect();
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(chars.len())).collect();
        bounds.sort_unstable();
        let mut filter = SeamFilter::new(&sent, prefill);
        let mut passed = String::new();
        let mut from = 0;
        for to in bounds.into_iter().chain(std::iter::once(chars.len())) {
            let piece: String = chars[from..to].iter().collect();
            passed.push_str(&filter.push(&piece));
            from = to;
        }
        passed.push_str(&filter.finish());
        prop_assert_eq!(passed, whole);
    }
}
