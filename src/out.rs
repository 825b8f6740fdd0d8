//! What hubsoak prints for people, apart from logs: tables, plans and addresses on stdout,
//! and the final `hubsoak: error:` / `hubsoak: warning:` lines on stderr. Every text passes
//! the redactor, and a closed pipe (`hubsoak report diff … | head -n 1`) ends the output
//! quietly instead of panicking, as `print!` would. Progress bars live here too: every
//! line printed or logged clears them first and redraws them after, so no stale copy of
//! a bar is left behind in the scrollback.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::hub::redact;

/// Every progress bar on the terminal.
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// A progress bar on a terminal; nothing otherwise (runners log plain lines instead).
pub fn progress_bar(len: u64, label: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Drawn only through the bars' group, never on its own first (a stale copy).
    let bar = BARS.add(ProgressBar::hidden());
    bar.set_length(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {elapsed_precise} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label);
    bar
}

/// A line of text under the bars (no bar drawn), e.g. counts by step.
pub fn progress_line(label: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let line = BARS.add(ProgressBar::hidden());
    if let Ok(style) = ProgressStyle::with_template("{prefix:>12} {msg}") {
        line.set_style(style);
    }
    line.set_prefix(label);
    line
}

/// Runs `write` with the bars cleared, then redraws them.
pub fn above_bars<R>(write: impl FnOnce() -> R) -> R {
    BARS.suspend(write)
}

/// `1 user`, `2 users`: a count with its noun, singular or plural.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Writes `text` to stdout as it is (no newline added).
pub fn print(text: &str) {
    above_bars(|| {
        let mut out = std::io::stdout().lock();
        // A reader that went away (EPIPE) wants no more: nothing to report.
        let _ = out.write_all(redact(text).as_bytes());
        let _ = out.flush();
    });
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
    let _ = above_bars(|| std::io::stderr().lock().write_all(redact(text).as_bytes()));
}
