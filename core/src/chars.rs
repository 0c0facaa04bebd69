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
    if matches!(c, '\n' | '\r' | '\t') {
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

/// SPEC 3: a word character for `\b`, as Python's `re` defines it: L*, N*, or `_`.
///
/// Not `char::is_alphanumeric`: that uses the Alphabetic property, which also
/// covers many combining marks.
pub fn is_python_word(c: char) -> bool {
    c == '_'
        || matches!(
            get_general_category(c),
            Gc::UppercaseLetter
                | Gc::LowercaseLetter
                | Gc::TitlecaseLetter
                | Gc::ModifierLetter
                | Gc::OtherLetter
                | Gc::DecimalNumber
                | Gc::LetterNumber
                | Gc::OtherNumber
        )
}
