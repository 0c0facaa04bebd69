//! SPEC 4: the text that goes into the prompt.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, is_nfc_quick};

use crate::chars::{is_nfc_inert, is_removed_invisible, is_trim_whitespace};
use crate::nfc::push_nfc;
use crate::scan::Scan;

/// Removes invisible formatting code points, normalizes to NFC, trims whitespace.
///
/// Idempotent: `sanitize(&sanitize(s)) == sanitize(s)`.
pub fn sanitize(message: &str) -> String {
    sanitize_scanned(message, &Scan::of(message))
}

/// [`sanitize`] with the message's scan already made.
pub(crate) fn sanitize_scanned(message: &str, scan: &Scan) -> String {
    let visible: Cow<'_, str> = if scan.has_removed {
        Cow::Owned(
            message
                .chars()
                .filter(|c| !is_removed_invisible(*c))
                .collect(),
        )
    } else {
        Cow::Borrowed(message)
    };
    // Removing code points cannot make an all-inert text need normalizing.
    let composed = if scan.all_nfc_inert {
        visible
    } else {
        // Without removals the scan's offsets hold for `visible`: everything
        // before the character preceding the first non-inert one is final.
        let from = if scan.has_removed {
            0
        } else {
            last_char_start_before(&visible, scan.first_non_inert)
        };
        match nfc(&visible, from) {
            Cow::Borrowed(_) => visible,
            Cow::Owned(s) => Cow::Owned(s),
        }
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
/// (Normalizing one span from the first to the last such segment instead was
/// measured 3x slower on the bench corpus: see BENCHMARKS.md.)
///
/// `from` must be a character boundary with only inert code points before it.
fn nfc(text: &str, from: usize) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0; // text[..copied] is already in `out`
    let mut segment = from; // start of the current segment
    let mut segment_is_inert = true;
    let flush = |out: &mut String, copied: &mut usize, segment: usize, end: usize| {
        let part = text.get(segment..end).unwrap_or_default();
        if is_nfc_quick(part.chars()) != IsNormalized::Yes {
            out.push_str(text.get(*copied..segment).unwrap_or_default());
            push_nfc(out, part);
            *copied = end;
        }
    };
    for (i, c) in text.get(from..).unwrap_or_default().char_indices() {
        let i = i + from;
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

/// Start of the character that ends just before byte `at` (0 at the start).
fn last_char_start_before(text: &str, at: usize) -> usize {
    (0..at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
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
            assert_eq!(super::nfc(text, 0), whole, "{text:?}");
            assert_eq!(super::sanitize(text), whole.trim(), "{text:?}");
        }
    }

    #[test]
    fn keeps_inner_whitespace() {
        assert_eq!(sanitize(" a  b "), "a  b");
    }
}
