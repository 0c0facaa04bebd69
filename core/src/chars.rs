//! Character classes named by SPEC.md, in one place.

use unicode_general_category::{GeneralCategory as Gc, get_general_category};

/// SPEC 4 step 1: zero-width and invisible formatting code points removed by sanitize.
pub fn is_removed_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{FEFF}')
}

/// SPEC 4 step 3: whitespace as Python's `str.strip()` sees it.
///
/// Rust's `char::is_whitespace` differs (it misses U+001C–U+001F), hence the list.
pub fn is_trim_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'..='\u{000D}'
            | '\u{001C}'..='\u{001F}'
            | '\u{0020}'
            | '\u{0085}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// SPEC 3 check 4: general category C* (Cc, Cf, Cs, Co, Cn), minus `\n`, `\r`, `\t`.
pub fn is_counted_control(c: char) -> bool {
    if is_surely_assigned_non_control(c) || matches!(c, '\n' | '\r' | '\t') {
        return false;
    }
    matches!(
        get_general_category(c),
        Gc::Control | Gc::Format | Gc::Surrogate | Gc::PrivateUse | Gc::Unassigned
    )
}

/// SPEC 3 check 5: the CJK ranges (unified ideographs, hiragana, katakana).
pub fn is_mixed_script_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}')
}

/// SPEC 3 check 5: the Cyrillic block.
pub fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// SPEC 5: code points counted as Japanese by the reference token estimator.
pub fn is_estimator_jp(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{9FFF}')
}

pub use crate::word_char::is_python_word;

/// Ranges where every code point is assigned and outside C*, in every
/// Unicode version since 14 (assigned code points never change to C*):
/// printable ASCII, CJK punctuation, kana, unified ideographs, Hangul
/// syllables, half- and full-width forms. Chat text is mostly these, and a
/// range test is far cheaper than the category table (see BENCHMARKS.md).
fn is_surely_assigned_non_control(c: char) -> bool {
    matches!(
        c,
        ' '..='~'
            | '\u{3000}'..='\u{303F}'
            | '\u{3041}'..='\u{3096}'
            | '\u{3099}'..='\u{30FF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{FF01}'..='\u{FFBE}'
    )
}

/// Code points that are NFC-stable on their own and never combine with a
/// neighbour (NFC_Quick_Check = Yes, canonical combining class 0). A text made
/// only of these is already NFC, so sanitize can skip the normalizer's tables.
pub fn is_nfc_inert(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{2FF}'
            | '\u{3000}'..='\u{3029}'
            | '\u{3030}'..='\u{3098}'
            | '\u{309B}'..='\u{30FF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{FF01}'..='\u{FFEE}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::char::canonical_combining_class;
    use unicode_normalization::{IsNormalized, is_nfc_quick};

    /// The fast path must agree with the category table on every code point.
    #[test]
    fn fast_control_path_agrees_with_the_table() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if is_surely_assigned_non_control(c) {
                assert!(
                    !matches!(
                        get_general_category(c),
                        Gc::Control | Gc::Format | Gc::Surrogate | Gc::PrivateUse | Gc::Unassigned
                    ),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    #[test]
    fn nfc_inert_code_points_really_are() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if is_nfc_inert(c) {
                assert_eq!(canonical_combining_class(c), 0, "U+{:04X}", u32::from(c));
                assert_eq!(
                    is_nfc_quick(std::iter::once(c)),
                    IsNormalized::Yes,
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }
}
