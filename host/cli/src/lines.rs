//! The JSON Lines loop shared by every line-oriented subcommand.
//!
//! One answer line per input line, whatever the input: invalid UTF-8 or an
//! overlong line gives an `{"error":...}` line and the loop goes on. Memory
//! stays flat: one reused line buffer, capped at [`MAX_LINE_BYTES`].

use std::io::{self, BufRead, BufReader, Read, Write};

use mangaassist_core::api::ErrorReport;

/// Longest input line read; longer lines are answered with `line_too_long`.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

enum LineStatus {
    Line,
    TooLong(usize),
    Eof,
}

/// Reads one line (without its `\n`) into `line`, keeping at most `max` bytes.
fn read_line<R: Read>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineStatus> {
    let mut seen = 0usize;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, seen > max) {
                (false, _) => LineStatus::Eof,
                (true, true) => LineStatus::TooLong(seen),
                (true, false) => LineStatus::Line,
            });
        }
        any = true;
        let (part, found_newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (chunk.get(..i).unwrap_or_default(), true),
            None => (chunk, false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        seen += part.len();
        let consumed = part.len() + usize::from(found_newline);
        reader.consume(consumed);
        if found_newline {
            return Ok(if seen > max {
                LineStatus::TooLong(seen)
            } else {
                LineStatus::Line
            });
        }
    }
}

/// Answers every line of `reader` on `writer` with `answer`.
///
/// Flushes whenever the input has no more buffered data, so an interactive
/// caller gets each answer at once while a bulk run stays buffered.
pub fn process<R: Read, W: Write>(
    mut reader: BufReader<R>,
    mut writer: W,
    mut answer: impl FnMut(&str) -> String,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    let result = (|| -> io::Result<()> {
        loop {
            line.clear();
            let out = match read_line(&mut reader, &mut line, MAX_LINE_BYTES)? {
                LineStatus::Eof => return Ok(()),
                LineStatus::TooLong(n) => ErrorReport::new(
                    "line_too_long",
                    &format!("input line is {n} bytes, over the limit of {MAX_LINE_BYTES}"),
                )
                .to_json(),
                LineStatus::Line => {
                    let text = line.strip_suffix(b"\r").unwrap_or(&line);
                    match std::str::from_utf8(text) {
                        Ok(s) => answer(s),
                        Err(e) => ErrorReport::new(
                            "invalid_utf8",
                            &format!("input line is not valid UTF-8 ({e})"),
                        )
                        .to_json(),
                    }
                }
            };
            writer.write_all(out.as_bytes())?;
            writer.write_all(b"\n")?;
            if reader.buffer().is_empty() {
                writer.flush()?;
            }
            if line.capacity() > 1024 * 1024 {
                line = Vec::with_capacity(4096);
            }
        }
    })();
    match result.and_then(|()| writer.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> String {
        let mut out = Vec::new();
        process(BufReader::with_capacity(8, input), &mut out, |s| {
            format!("[{s}]")
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_answer_per_line_including_a_last_line_without_newline() {
        assert_eq!(run(b"a\r\n\nbc"), "[a]\n[]\n[bc]\n");
    }

    #[test]
    fn invalid_utf8_gets_an_error_line() {
        let out = run(b"ok\n\xff\xfe\nok\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("invalid_utf8"));
    }
}
