//! One pass over a message that gathers every per-character fact the
//! checks, sanitize and the estimate need.
//!
//! `check_report` asks all three about the same text; decoding it once
//! instead of four times is most of the speed of the core (BENCHMARKS.md).
//! ASCII, the bulk of chat text, is classified from the byte alone.

use crate::chars::{
    is_counted_control, is_cyrillic, is_estimator_jp, is_mixed_script_cjk, is_nfc_inert,
    is_removed_invisible,
};
use crate::tokens::TokenCounts;

/// Facts about a message, from one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Code points.
    pub chars: u64,
    /// C* code points other than `\n`, `\r`, `\t` (SPEC 3 check 4).
    pub controls: u64,
    /// Holds a CJK code point of SPEC 3 check 5.
    pub cjk: bool,
    /// Holds a Cyrillic code point.
    pub cyrillic: bool,
    /// Holds a code point sanitize removes.
    pub has_removed: bool,
    /// Every code point is NFC-inert, so the text is already NFC.
    pub all_nfc_inert: bool,
    /// Byte offset of the first code point that is not NFC-inert (0 if none).
    pub first_non_inert: usize,
    /// Counts of the reference token estimator.
    pub tokens: TokenCounts,
}

impl Scan {
    /// Scans `text` once.
    pub fn of(text: &str) -> Scan {
        let mut s = Scan {
            all_nfc_inert: true,
            ..Scan::default()
        };
        let mut in_word = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            s.chars += 1;
            if b < 0x80 {
                i += 1;
                let letter = b.is_ascii_alphabetic();
                s.tokens.letters += u64::from(letter);
                s.tokens.words += u64::from(letter && !in_word);
                in_word = letter;
                s.controls +=
                    u64::from((b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F);
                continue;
            }
            in_word = false;
            let start = i;
            let (c, width) = decode(bytes, i);
            i += width;
            // The scripts of chat text, each known in full (checked against the
            // single-purpose predicates for every code point in the tests).
            match c {
                0x4E00..=0x9FFF | 0x3041..=0x3096 | 0x309B..=0x30FF => {
                    s.cjk = true;
                    s.tokens.jp += 1;
                }
                0x3000..=0x3029 | 0x3030..=0x303F => s.tokens.jp += 1,
                0xFF01..=0xFFBE | 0xAC00..=0xD7A3 | 0x80..=0x2FF if c >= 0xA0 => {
                    s.controls += u64::from(c == 0xAD);
                }
                _ => {
                    let was_inert = s.all_nfc_inert;
                    s.classify(char::from_u32(c).unwrap_or('\u{FFFD}'));
                    if was_inert && !s.all_nfc_inert {
                        s.first_non_inert = start;
                    }
                }
            }
        }
        s.tokens.other = s.chars - s.tokens.jp - s.tokens.letters;
        s
    }

    /// Every fact about one code point outside the fast ranges.
    fn classify(&mut self, c: char) {
        self.controls += u64::from(is_counted_control(c));
        self.cjk |= is_mixed_script_cjk(c);
        self.cyrillic |= is_cyrillic(c);
        self.has_removed |= is_removed_invisible(c);
        self.all_nfc_inert &= is_nfc_inert(c);
        self.tokens.jp += u64::from(is_estimator_jp(c));
    }
}

/// The scalar value and byte width of the UTF-8 sequence at `i` of valid UTF-8.
fn decode(bytes: &[u8], i: usize) -> (u32, usize) {
    let at = |k: usize| u32::from(bytes.get(i + k).copied().unwrap_or(0) & 0x3F);
    let b0 = u32::from(bytes.get(i).copied().unwrap_or(0));
    if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | at(1), 2)
    } else if b0 < 0xF0 {
        (((b0 & 0x0F) << 12) | (at(1) << 6) | at(2), 3)
    } else {
        (
            ((b0 & 0x07) << 18) | (at(1) << 12) | (at(2) << 6) | at(3),
            4,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_matches_the_single_purpose_counts() {
        for text in [
            "",
            "abc",
            "a\u{1}b\tc",
            "漫画 manga\u{200B}!",
            "Жか\u{3099}",
            "x😀y",
        ] {
            let s = Scan::of(text);
            assert_eq!(s.chars, text.chars().count() as u64, "{text:?}");
            assert_eq!(s.tokens, TokenCounts::of(text), "{text:?}");
            assert_eq!(
                s.controls,
                text.chars().filter(|c| is_counted_control(*c)).count() as u64
            );
            assert_eq!(s.has_removed, text.chars().any(is_removed_invisible));
            assert_eq!(s.all_nfc_inert, text.chars().all(is_nfc_inert));
        }
    }

    /// The fast ranges of [`Scan::of`] agree with the predicates on every code point.
    #[test]
    fn fast_ranges_agree_with_the_predicates_everywhere() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let text: &str = c.encode_utf8(&mut buf);
            let mut want = Scan {
                all_nfc_inert: true,
                chars: 1,
                ..Scan::default()
            };
            if c.is_ascii() {
                continue;
            }
            want.classify(c);
            want.first_non_inert = 0;
            want.tokens.other = 1 - want.tokens.jp;
            assert_eq!(Scan::of(text), want, "U+{:04X}", u32::from(c));
        }
    }
}
