//! SPEC 4: the text that goes into the prompt.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::chars::{is_removed_invisible, is_trim_whitespace};

/// Removes invisible formatting code points, normalizes to NFC, trims whitespace.
///
/// Idempotent: `sanitize(&sanitize(s)) == sanitize(s)`.
pub fn sanitize(message: &str) -> String {
    let visible: Cow<'_, str> = if message.chars().any(is_removed_invisible) {
        Cow::Owned(
            message
                .chars()
                .filter(|c| !is_removed_invisible(*c))
                .collect(),
        )
    } else {
        Cow::Borrowed(message)
    };
    let composed: Cow<'_, str> = match is_nfc_quick(visible.chars()) {
        IsNormalized::Yes => visible,
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(visible.nfc().collect()),
    };
    composed.trim_matches(is_trim_whitespace).to_string()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn composes_dakuten_and_strips_edges() {
        assert_eq!(sanitize("\u{3000} か\u{3099}\u{200B}\u{1F} "), "が");
    }

    #[test]
    fn keeps_inner_whitespace() {
        assert_eq!(sanitize(" a  b "), "a  b");
    }
}
