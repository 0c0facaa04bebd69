//! SPEC 3's word character for `\b`, alone in a file because core/build.rs
//! includes it too (to write the same class as regex ranges).

use unicode_general_category::{GeneralCategory as Gc, get_general_category};

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
