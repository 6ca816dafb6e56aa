//! How `mm` reports: JSON documents on stdout with `--json`, errors as `{"error": {code, message}}` (JSON) or
//! `error[code]: message` (text, on stderr), and the exit status of the code.

use mm_core::ErrorPayload;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

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
        eprintln!("error[{}]: {}", err.code, err.message);
    }
    ExitCode::from(err.code.exit_status() as u8)
}
