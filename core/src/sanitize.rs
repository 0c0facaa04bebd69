//! SPEC 4: the text that goes into the prompt.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::chars::{is_nfc_inert, is_removed_invisible, is_trim_whitespace};

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
    let composed = match nfc(&visible) {
        Cow::Borrowed(_) => visible,
        Cow::Owned(s) => Cow::Owned(s),
    };
    composed.trim_matches(is_trim_whitespace).to_string()
}

/// NFC, normalizing only the segments that need it.
///
/// Every [`is_nfc_inert`] code point starts a segment that normalizes on its
/// own (Unicode's "boundary before": a starter that no earlier character
/// combines with), so text is copied as is up to each segment holding other
/// code points, and only such segments go through the normalizer. Chat text
/// with a few decomposed kana costs a scan, not a full normalization.
fn nfc(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0; // text[..copied] is already in `out`
    let mut segment = 0; // start of the current segment
    let mut segment_is_inert = true;
    let flush = |out: &mut String, copied: &mut usize, segment: usize, end: usize| {
        let part = text.get(segment..end).unwrap_or_default();
        if is_nfc_quick(part.chars()) != IsNormalized::Yes {
            out.push_str(text.get(*copied..segment).unwrap_or_default());
            out.extend(part.nfc());
            *copied = end;
        }
    };
    for (i, c) in text.char_indices() {
        if is_nfc_inert(c) {
            if !segment_is_inert {
                flush(&mut out, &mut copied, segment, i);
            }
            segment = i;
            segment_is_inert = true;
        } else {
            segment_is_inert = false;
        }
    }
    if !segment_is_inert {
        flush(&mut out, &mut copied, segment, text.len());
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn composes_dakuten_and_strips_edges() {
        assert_eq!(sanitize("\u{3000} か\u{3099}\u{200B}\u{1F} "), "が");
    }

    #[test]
    fn segment_nfc_equals_whole_text_nfc() {
        use unicode_normalization::UnicodeNormalization;
        for text in [
            "か\u{3099}んは\u{309A}る",
            "e\u{301}\u{323}x\u{1100}\u{1161}\u{11A8}",
            "\u{301}leading mark",
            "ж\u{306}漫か\u{3099}",
            "\u{AC00}\u{11A8}",
            "\u{F900}\u{212B}A\u{30A}",
            "plain ascii",
        ] {
            let whole: String = text.nfc().collect();
            assert_eq!(super::nfc(text), whole, "{text:?}");
        }
    }

    #[test]
    fn keeps_inner_whitespace() {
        assert_eq!(sanitize(" a  b "), "a  b");
    }
}
