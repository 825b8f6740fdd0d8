//! What hubsoak prints for people, apart from logs: tables, plans and addresses on stdout,
//! and the final `hubsoak: error:` / `hubsoak: warning:` lines on stderr. Every text passes
//! the redactor, and a closed pipe (`hubsoak report diff … | head -n 1`) ends the output
//! quietly instead of panicking, as `print!` would.

use std::fmt::Display;
use std::io::Write;

use crate::hub::redact;

/// Writes `text` to stdout as it is (no newline added).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    // A reader that went away (EPIPE) wants no more: nothing to report.
    let _ = out.write_all(redact(text).as_bytes());
    let _ = out.flush();
}

/// Writes `line` and a newline to stdout.
pub fn line(line: impl Display) {
    print(&format!("{line}\n"));
}

/// Writes `line` to stdout as it is, secrets included: only for a token hubsoak made up
/// for a simulator of its own (`mock-hub`), which its user needs to see.
pub fn unredacted_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `hubsoak: error: …` on stderr: the one place a final error is printed.
pub fn error(what: impl Display) {
    stderr(&format!("hubsoak: error: {what}\n"));
}

/// `hubsoak: warning: …` on stderr.
pub fn warning(what: impl Display) {
    stderr(&format!("hubsoak: warning: {what}\n"));
}

fn stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(redact(text).as_bytes());
}
