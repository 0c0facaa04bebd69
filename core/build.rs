//! Writes the class of Python word characters (SPEC 3: general category L*
//! or N*, or `_`) as regex class ranges, with the very function the core
//! calls at run time (src/word_char.rs). Patterns then need no `\p{..}`
//! support from regex-syntax, whose own general-category tables would cost
//! ~24 KB gzip in the browser build.

use std::fmt::Write as _;
use std::path::PathBuf;

#[path = "src/word_char.rs"]
mod word_char;
use word_char::is_python_word;

// A build script runs at compile time, outside the pure core: it may read
// OUT_DIR and write its file (core/clippy.toml bans both in the library).
#[allow(clippy::disallowed_methods)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/word_char.rs");
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..=0x10FFFF)
        .filter_map(char::from_u32)
        .filter(|&c| is_python_word(c))
    {
        let cp = u32::from(c);
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == cp => *end = cp,
            _ => ranges.push((cp, cp)),
        }
    }
    let mut class = String::new();
    for (start, end) in &ranges {
        if start == end {
            write!(class, "\\x{{{start:X}}}")?;
        } else {
            write!(class, "\\x{{{start:X}}}-\\x{{{end:X}}}")?;
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("word_class.txt");
    std::fs::write(out, class)?;
    Ok(())
}
