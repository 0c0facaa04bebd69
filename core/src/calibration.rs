//! A token estimator that learns: per-script coefficients fitted from the
//! input tokens a model reported, beside SPEC 5's reference estimator
//! (which stays as it is, under its name).
//!
//! A text is counted by script ([`ScriptCounts`]): kana, kanji, Latin
//! words and every other code point. An estimate is a weighted sum of
//! those counts plus, for a whole body, a constant for what a request adds
//! (role markers, the system prompt's framing). The weights are fitted by
//! least squares ([`Fit`]) from pairs of a body and the input tokens the
//! model reported for it, online in the service or offline from a file.

use serde::{Deserialize, Serialize};

use crate::body::ClaudeBody;
use crate::error::Error;

/// Code points of one text, by script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptCounts {
    /// Hiragana, katakana (full and half width).
    pub kana: u64,
    /// CJK ideographs (the unified blocks, extension A, compatibility, and
    /// the supplementary planes' ideographs).
    pub kanji: u64,
    /// Maximal runs of ASCII letters.
    pub latin_words: u64,
    /// Every other code point (spaces, digits, punctuation, other
    /// scripts); the letters of Latin words are not counted again.
    pub other: u64,
}

fn is_kana(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}')
}

fn is_kanji(c: char) -> bool {
    matches!(
        c,
        '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3134F}'
    )
}

/// The scripts, as named in metrics and reports.
pub const SCRIPTS: [&str; 4] = ["kana", "kanji", "latin", "other"];

impl ScriptCounts {
    /// Counts `text` in one pass.
    pub fn of(text: &str) -> Self {
        let mut counts = ScriptCounts::default();
        let mut in_word = false;
        for c in text.chars() {
            if c.is_ascii_alphabetic() {
                counts.latin_words += u64::from(!in_word);
                in_word = true;
                continue;
            }
            in_word = false;
            if is_kana(c) {
                counts.kana += 1;
            } else if is_kanji(c) {
                counts.kanji += 1;
            } else {
                counts.other += 1;
            }
        }
        counts
    }

    /// The counts of every text of `body`: its system prompt and turns.
    pub fn of_body(body: &ClaudeBody) -> Self {
        let mut counts = Self::of(&body.system);
        for turn in &body.messages {
            counts.add(Self::of(&turn.content));
        }
        counts
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Self) {
        self.kana += other.kana;
        self.kanji += other.kanji;
        self.latin_words += other.latin_words;
        self.other += other.other;
    }

    /// The script with the largest count (ties to the first of
    /// [`SCRIPTS`]), by which errors are reported: what a text mostly is.
    pub fn dominant(&self) -> &'static str {
        let counts = [self.kana, self.kanji, self.latin_words, self.other];
        let mut best = 0;
        for (i, n) in counts.iter().enumerate() {
            if *n > counts[best] {
                best = i;
            }
        }
        SCRIPTS[best]
    }

    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    fn features(&self) -> [f64; FEATURES] {
        [
            self.kana as f64,
            self.kanji as f64,
            self.latin_words as f64,
            self.other as f64,
            1.0,
        ]
    }
}

/// Fitted weights: tokens per code point (per word for Latin) of each
/// script, and per request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Calibration {
    /// Per kana.
    pub kana: f64,
    /// Per kanji.
    pub kanji: f64,
    /// Per Latin word.
    pub latin_word: f64,
    /// Per other code point.
    pub other: f64,
    /// Per request (a body), whatever its text.
    pub per_request: f64,
}

impl Calibration {
    /// SPEC 5's weights in this form (kana and kanji 1.5, words 0.75,
    /// other 0.5): where a fit starts, and what a script never seen keeps.
    pub const REFERENCE: Calibration = Calibration {
        kana: 1.5,
        kanji: 1.5,
        latin_word: 0.75,
        other: 0.5,
        per_request: 0.0,
    };

    /// Checks the weights: finite and not negative.
    pub fn validate(&self) -> Result<(), Error> {
        let all = [
            ("kana", self.kana),
            ("kanji", self.kanji),
            ("latinWord", self.latin_word),
            ("other", self.other),
            ("perRequest", self.per_request),
        ];
        for (name, w) in all {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::invalid_argument(format!(
                    "calibration {name} must be a finite number of at least 0, got {}",
                    crate::pyjson::python_float(w)
                )));
            }
        }
        Ok(())
    }

    /// The weighted sum of `counts`, plus `per_request` when asked.
    fn weigh(&self, counts: ScriptCounts, per_request: bool) -> f64 {
        let f = counts.features();
        let base = if per_request { self.per_request } else { 0.0 };
        // One fixed order of operations, so every engine (and the Python
        // reference) rounds alike.
        base + self.kana * f[0] + self.kanji * f[1] + self.latin_word * f[2] + self.other * f[3]
    }

    /// Estimated tokens of one text (no per-request constant), rounded half up.
    pub fn estimate_text(&self, text: &str) -> u64 {
        round(self.weigh(ScriptCounts::of(text), false))
    }

    /// Estimated input tokens of a whole body.
    pub fn estimate_body(&self, body: &ClaudeBody) -> u64 {
        self.estimate_counts(ScriptCounts::of_body(body))
    }

    /// Estimated input tokens of one request whose texts have `counts`.
    pub fn estimate_counts(&self, counts: ScriptCounts) -> u64 {
        round(self.weigh(counts, true))
    }
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a non-negative sum far below 2^53, floored"
)]
fn round(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        (x + 0.5).floor() as u64
    } else {
        0
    }
}

const FEATURES: usize = 5;

/// Least-squares fitting of a [`Calibration`], kept as running sums (a
/// 5×5 matrix and a vector), so it takes any number of samples in constant
/// memory and can be fed online.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fit {
    xtx: [[f64; FEATURES]; FEATURES],
    xty: [f64; FEATURES],
    samples: u64,
}

impl Fit {
    /// An empty fit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples taken so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Takes one sample: a body's counts and the input tokens reported for it.
    #[allow(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^53"
    )]
    pub fn add(&mut self, counts: ScriptCounts, input_tokens: u64) {
        let x = counts.features();
        let y = input_tokens as f64;
        for (i, xi) in x.iter().enumerate() {
            for (j, xj) in x.iter().enumerate() {
                self.xtx[i][j] += xi * xj;
            }
            self.xty[i] += xi * y;
        }
        self.samples += 1;
    }

    /// The weights that best explain the samples, none negative (exact
    /// non-negative least squares). A script no sample had keeps its
    /// reference weight. Samples whose best weights are all 0 are refused.
    pub fn solve(&self) -> Result<Calibration, Error> {
        if self.samples == 0 {
            return Err(Error::invalid_argument("no samples to fit"));
        }
        let reference = [
            Calibration::REFERENCE.kana,
            Calibration::REFERENCE.kanji,
            Calibration::REFERENCE.latin_word,
            Calibration::REFERENCE.other,
            Calibration::REFERENCE.per_request,
        ];
        // Exact non-negative least squares by trying every set of free
        // weights (at most 2^5 small solves): the constrained optimum is the
        // unconstrained optimum of its own free set, so the best feasible
        // one of all sets is it. A script no sample has is fixed at its
        // reference weight; the others not free are fixed at 0.
        let observed: Vec<usize> = (0..FEATURES).filter(|&i| self.xtx[i][i] != 0.0).collect();
        let mut best: Option<(f64, [f64; FEATURES])> = None;
        for mask in 1u32..(1u32 << observed.len()) {
            let mut free = [false; FEATURES];
            let mut fixed = [0.0; FEATURES];
            for i in 0..FEATURES {
                if self.xtx[i][i] == 0.0 {
                    fixed[i] = reference[i];
                }
            }
            for (bit, &i) in observed.iter().enumerate() {
                free[i] = mask & (1 << bit) != 0;
            }
            let Ok(w) = self.solve_with(&free, &fixed, &reference) else {
                continue;
            };
            if (0..FEATURES).any(|i| free[i] && w[i] < 0.0) {
                continue;
            }
            let loss = self.loss(&w);
            if best.is_none_or(|(least, _)| loss < least) {
                best = Some((loss, w));
            }
        }
        let Some((_, w)) = best else {
            return Err(Error::invalid_argument(
                "the samples cannot tell the weights apart",
            ));
        };
        if observed.iter().all(|&i| w[i] == 0.0) {
            return Err(Error::invalid_argument(
                "the samples give every weight 0 (no input tokens reported)",
            ));
        }
        let c = Calibration {
            kana: w[0],
            kanji: w[1],
            latin_word: w[2],
            other: w[3],
            per_request: w[4],
        };
        c.validate()?;
        Ok(c)
    }

    /// The squared error of weights `w` over the samples, less the constant
    /// Σy² (the same for every `w`): wᵀ(XᵀX)w − 2wᵀ(Xᵀy).
    fn loss(&self, w: &[f64; FEATURES]) -> f64 {
        let mut quadratic = 0.0;
        let mut linear = 0.0;
        for i in 0..FEATURES {
            for j in 0..FEATURES {
                quadratic += w[i] * self.xtx[i][j] * w[j];
            }
            linear += w[i] * self.xty[i];
        }
        quadratic - 2.0 * linear
    }

    /// Normal equations over the free weights, the fixed ones moved to the
    /// right-hand side; Gauss-Jordan elimination with partial pivoting.
    fn solve_with(
        &self,
        free: &[bool; FEATURES],
        fixed: &[f64; FEATURES],
        reference: &[f64; FEATURES],
    ) -> Result<[f64; FEATURES], Error> {
        let idx: Vec<usize> = (0..FEATURES).filter(|&i| free[i]).collect();
        let n = idx.len();
        let mut a = vec![vec![0.0; n + 1]; n];
        for (r, &i) in idx.iter().enumerate() {
            for (c, &j) in idx.iter().enumerate() {
                a[r][c] = self.xtx[i][j];
            }
            let moved: f64 = (0..FEATURES)
                .filter(|&j| !free[j])
                .map(|j| self.xtx[i][j] * fixed[j])
                .sum();
            a[r][n] = self.xty[i] - moved;
        }
        // A slight pull toward the reference weights (ridge, a millionth
        // of the mean diagonal): directions the samples determine are
        // unchanged, and ones they cannot tell apart (a script that always
        // comes with another) settle near the reference instead of failing.
        #[allow(clippy::cast_precision_loss, reason = "at most five")]
        let ridge = (0..n).map(|i| a[i][i]).sum::<f64>() / n.max(1) as f64 * 1e-6;
        for (r, &i) in idx.iter().enumerate() {
            a[r][r] += ridge;
            a[r][n] += ridge * reference[i];
        }
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
                .unwrap_or(col);
            a.swap(col, pivot);
            let p = a[col][col];
            if p == 0.0 || !p.is_finite() {
                return Err(Error::invalid_argument(
                    "the samples cannot tell the weights apart",
                ));
            }
            let pivot_row = a[col].clone();
            for (r, row) in a.iter_mut().enumerate() {
                if r != col {
                    let factor = row[col] / p;
                    for (x, pv) in row.iter_mut().zip(&pivot_row).skip(col) {
                        *x -= factor * pv;
                    }
                }
            }
        }
        let mut w = *fixed;
        for (r, &i) in idx.iter().enumerate() {
            w[i] = a[r][n] / a[r][r];
        }
        Ok(w)
    }
}

/// The `q` quantile (0 to 1) of `values` by the nearest-rank method; none
/// when empty. Sorts a copy.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within the slice"
    )]
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

/// The estimators whose errors are reported, in report order.
pub const ESTIMATORS: [&str; 2] = ["reference", "calibrated"];

/// One estimator's relative error on one script: how many, p50 and p90.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSummary {
    /// One of [`ESTIMATORS`].
    pub estimator: &'static str,
    /// One of [`SCRIPTS`].
    pub script: &'static str,
    /// Errors summarized.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

/// The summary of every estimator and script that has errors, in report
/// order; `errors(estimator, script)` gives their relative errors.
pub fn summarize(errors: impl Fn(&'static str, &'static str) -> Vec<f64>) -> Vec<ErrorSummary> {
    let mut out = Vec::new();
    for estimator in ESTIMATORS {
        for script in SCRIPTS {
            let values = errors(estimator, script);
            if let (Some(p50), Some(p90)) = (quantile(&values, 0.5), quantile(&values, 0.9)) {
                out.push(ErrorSummary {
                    estimator,
                    script,
                    samples: values.len(),
                    p50,
                    p90,
                });
            }
        }
    }
    out
}

/// The relative error of an estimate: |estimate − reported| / reported
/// (reported 0: the estimate itself).
#[allow(
    clippy::cast_precision_loss,
    reason = "token counts are far below 2^53"
)]
pub fn relative_error(estimate: u64, reported: u64) -> f64 {
    let diff = estimate.abs_diff(reported) as f64;
    if reported == 0 {
        diff
    } else {
        diff / reported as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no
    /// random crate and always sees the same samples.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn text(rng: &mut Rng) -> String {
        const KANA: &str = "あいうえおかきくけこアイウエオンー";
        const KANJI: &str = "漫画本屋新刊鬼滅刃葬送";
        const WORDS: [&str; 6] = ["manga", "volume", "One", "Piece", "isekai", "a"];
        const OTHER: &str = " 、。！？0123456789「」";
        let mut s = String::new();
        for _ in 0..rng.next(60) + 1 {
            match rng.next(4) {
                0 => s.push(KANA.chars().nth(rng.next(17) as usize).unwrap()),
                1 => s.push(KANJI.chars().nth(rng.next(11) as usize).unwrap()),
                2 => {
                    s.push(' ');
                    s.push_str(WORDS[rng.next(6) as usize]);
                    s.push(' ');
                }
                _ => s.push(OTHER.chars().nth(rng.next(16) as usize).unwrap()),
            }
        }
        s
    }

    #[test]
    fn counts_by_script() {
        let c = ScriptCounts::of("ワンピースの新刊 One Piece 1巻!");
        assert_eq!(
            (c.kana, c.kanji, c.latin_words, c.other),
            (6, 3, 2, 5),
            "{c:?}"
        );
        assert_eq!(c.dominant(), "kana");
        assert_eq!(ScriptCounts::of("hello world").dominant(), "latin");
        assert_eq!(ScriptCounts::of("").dominant(), "kana");
        assert_eq!(ScriptCounts::of("𠮷").kanji, 1);
    }

    #[test]
    fn a_fit_finds_known_coefficients() {
        let truth = Calibration {
            kana: 0.9,
            kanji: 1.3,
            latin_word: 1.2,
            other: 0.6,
            per_request: 7.0,
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fit = Fit::new();
        for _ in 0..2_000 {
            let counts = ScriptCounts::of(&text(&mut rng));
            // Whole tokens, as a model reports them.
            let reported = round(truth.weigh(counts, true));
            fit.add(counts, reported);
        }
        let got = fit.solve().unwrap();
        for (name, want, have) in [
            ("kana", truth.kana, got.kana),
            ("kanji", truth.kanji, got.kanji),
            ("latinWord", truth.latin_word, got.latin_word),
            ("other", truth.other, got.other),
        ] {
            assert!((want - have).abs() < 0.03, "{name}: {have} for {want}");
        }
        assert!((got.per_request - truth.per_request).abs() < 0.3, "{got:?}");
        // And its estimates are close where the reference's are not.
        let sample = "『鬼滅の刃』の最新刊はありますか？ Any news?";
        let counts = ScriptCounts::of(sample);
        let want = round(truth.weigh(counts, false));
        assert!(got.estimate_text(sample).abs_diff(want) <= 1);
    }

    #[test]
    fn unseen_scripts_keep_the_reference_and_negatives_are_held_at_zero() {
        let mut fit = Fit::new();
        // Latin only, and a per-request constant the data pushes below 0.
        for words in 1..50u64 {
            let counts = ScriptCounts {
                latin_words: words,
                other: words % 5,
                ..ScriptCounts::default()
            };
            fit.add(counts, (2 * words).saturating_sub(3).max(1));
        }
        let c = fit.solve().unwrap();
        assert_eq!((c.kana, c.kanji), (1.5, 1.5));
        assert!(c.per_request >= 0.0 && c.latin_word >= 0.0 && c.other >= 0.0);
        c.validate().unwrap();
        assert_eq!(Fit::new().solve().unwrap_err().code(), "invalid_argument");
        let mut zeros = Fit::new();
        zeros.add(ScriptCounts::of("hello"), 0);
        assert!(zeros.solve().is_err());
    }

    #[test]
    fn a_weight_held_at_zero_is_freed_when_that_fits_better() {
        // The unconstrained fit of these samples makes `other` negative at
        // first sight only with the intercept free; the exact answer keeps
        // every weight that helps.
        let truth = Calibration {
            kana: 0.0,
            kanji: 2.0,
            latin_word: 0.0,
            other: 0.3,
            per_request: 0.0,
        };
        let mut fit = Fit::new();
        for k in 0..30u64 {
            let counts = ScriptCounts {
                kana: k % 4,
                kanji: k,
                latin_words: k % 3,
                other: 30 - k,
            };
            fit.add(counts, truth.estimate_counts(counts));
        }
        let got = fit.solve().unwrap();
        assert!((got.kanji - 2.0).abs() < 0.05, "{got:?}");
        assert!((got.other - 0.3).abs() < 0.05, "{got:?}");
        assert!(got.kana < 0.05 && got.latin_word < 0.05, "{got:?}");
    }

    #[test]
    fn weights_the_samples_cannot_tell_apart_settle_near_the_reference() {
        // Every word comes with exactly two other code points.
        let mut fit = Fit::new();
        for k in 1..40u64 {
            let counts = ScriptCounts {
                latin_words: k,
                other: 2 * k,
                ..ScriptCounts::default()
            };
            fit.add(counts, 2 * k + 4);
        }
        let c = fit.solve().unwrap();
        let predicted = c.latin_word * 10.0 + c.other * 20.0 + c.per_request;
        assert!((predicted - 24.0).abs() < 0.01, "{c:?}");
    }

    #[test]
    fn summaries_cover_the_groups_that_have_errors_in_order() {
        let rows = summarize(|estimator, script| match (estimator, script) {
            ("reference", "kana") => vec![0.1, 0.3, 0.2],
            ("calibrated", "latin") => vec![0.05],
            _ => Vec::new(),
        });
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].estimator, rows[0].script, rows[0].samples),
            ("reference", "kana", 3)
        );
        assert_eq!((rows[0].p50, rows[0].p90), (0.2, 0.3));
        assert_eq!((rows[1].estimator, rows[1].p90), ("calibrated", 0.05));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&v, 0.5), Some(3.0));
        assert_eq!(quantile(&v, 0.9), Some(5.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(relative_error(110, 100), 0.1);
        assert_eq!(relative_error(3, 0), 3.0);
    }

    #[test]
    fn invalid_weights_are_refused() {
        let mut c = Calibration::REFERENCE;
        c.other = -1.0;
        assert_eq!(c.validate().unwrap_err().code(), "invalid_argument");
        c.other = f64::NAN;
        assert!(c.validate().is_err());
    }
}
