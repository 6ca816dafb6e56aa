//! How `mm` reports: JSON documents on stdout with `--json`, errors as `{"error": {code, message}}` (JSON) or
//! `error[code]: message` (text, on stderr), and the exit status of the code. Text goes through [`clean`] (the
//! `say!` and `esay!` macros), so that a name a hub or a file chose cannot send escape sequences to the terminal;
//! JSON escapes them by itself.

use mm_core::ErrorPayload;
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;
use std::process::ExitCode;

/// `println!` for text that may hold what others wrote: control characters shown as `\u{..}`.
macro_rules! say {
    ($($arg:tt)*) => { println!("{}", $crate::output::clean(&format!($($arg)*))) };
}

/// `eprintln!` for text that may hold what others wrote.
macro_rules! esay {
    ($($arg:tt)*) => { eprintln!("{}", $crate::output::clean(&format!($($arg)*))) };
}

/// `text` with every control character but the newline and the tab written out as `\u{..}`: an escape
/// sequence from a hostile hub's file name or error message prints as text instead of acting on the terminal.
pub fn clean(text: &str) -> Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if control(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect())
}

/// Prints `value` as one pretty JSON document.
pub fn json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// Prints `value` as one compact JSON line (for streams of progress).
pub fn json_line<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Reports `err` and returns its exit status.
pub fn fail(err: &ErrorPayload, as_json: bool) -> ExitCode {
    if as_json {
        // One line, so that it also ends a stream of JSON-lines progress.
        json_line(&serde_json::json!({ "error": err }));
    } else {
        esay!("error[{}]: {}", err.code, err.message);
    }
    ExitCode::from(err.code.exit_status() as u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_from_others_print_as_text() {
        assert_eq!(super::clean("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(super::clean("evil\x1b]0;owned\x07.gguf"), "evil\\u{1b}]0;owned\\u{7}.gguf");
        assert_eq!(super::clean("c1\u{9b}31m"), "c1\\u{9b}31m");
    }
}
