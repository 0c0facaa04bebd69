//! SPEC 5: the reference token estimator.

/// The code-point counts the reference estimator is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenCounts {
    /// Code points in U+3000–U+9FFF.
    pub jp: u64,
    /// Maximal runs of ASCII letters.
    pub words: u64,
    /// Code points inside those runs.
    pub letters: u64,
    /// All other code points.
    pub other: u64,
}

impl TokenCounts {
    /// Counts `text` in one pass.
    pub fn of(text: &str) -> Self {
        let mut counts = TokenCounts::default();
        let mut in_word = false;
        for c in text.chars() {
            if c.is_ascii_alphabetic() {
                counts.letters += 1;
                counts.words += u64::from(!in_word);
                in_word = true;
                continue;
            }
            in_word = false;
            if crate::chars::is_estimator_jp(c) {
                counts.jp += 1;
            } else {
                counts.other += 1;
            }
        }
        counts
    }

    /// floor(1.5·jp + 0.75·words + 0.5·other), computed exactly in integers
    /// (every term is a multiple of 1/4, so this equals the float formula).
    pub fn reference_estimate(self) -> u64 {
        (6 * self.jp + 3 * self.words + 2 * self.other) / 4
    }
}

/// The reference estimate of SPEC 5 (the design note's formula, under its name).
pub fn estimate_tokens_reference(text: &str) -> u64 {
    TokenCounts::of(text).reference_estimate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_scripts() {
        // jp=5 (こんにちは), words=2 (hello, world), other=3 (space, space, '!')
        let c = TokenCounts::of("hello こんにちは world!");
        assert_eq!((c.jp, c.words, c.letters, c.other), (5, 2, 10, 3));
        assert_eq!(c.reference_estimate(), (30 + 6 + 6) / 4);
    }
}
