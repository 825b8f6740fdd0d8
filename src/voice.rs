//! hubsoak's voice about failures: every failed spawn, stop, activity post, ping and
//! journey step reaches the log at WARN with its action and bounded reason. When many
//! fail, the first of each (action, reason) in a window is logged in full and the rest
//! are counted into one line when the window closes: a count, never a flood.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window in which repeats of one (action, reason) are counted, not printed.
pub const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Window {
    opened: Instant,
    repeats: u64,
}

/// Failure lines, rate-limited per (action, reason). Both are from bounded sets.
#[derive(Debug)]
pub struct FailureLog {
    window: Duration,
    open: Mutex<HashMap<(&'static str, &'static str), Window>>,
}

impl Default for FailureLog {
    fn default() -> Self {
        FailureLog::new(WINDOW)
    }
}

impl FailureLog {
    pub fn new(window: Duration) -> Self {
        FailureLog {
            window,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// One failure of `action` for `reason`; `subject` names what failed (a user), and
    /// `detail` says how (already free of secrets).
    pub fn failed(
        &self,
        action: &'static str,
        reason: &'static str,
        subject: &dyn Display,
        detail: &dyn Display,
    ) {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(&(action, reason)) {
            Some(w) if now.duration_since(w.opened) < self.window => {
                w.repeats += 1;
                return;
            }
            Some(w) => {
                repeats_line(action, reason, w, now);
                w.opened = now;
                w.repeats = 0;
            }
            None => {
                open.insert(
                    (action, reason),
                    Window {
                        opened: now,
                        repeats: 0,
                    },
                );
            }
        }
        drop(open);
        tracing::warn!(action, reason, subject = %subject, error = %detail, "{action} failed");
    }

    /// Closes the windows that are over, printing their counts. Call it now and then
    /// (and once at the end), so a count is not held back until the next failure.
    pub fn flush(&self) {
        self.flush_older_than(self.window);
    }

    /// Prints every count still held, whatever its window's age.
    pub fn flush_all(&self) {
        self.flush_older_than(Duration::ZERO);
    }

    fn flush_older_than(&self, age: Duration) {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(action, reason), w| {
            if now.duration_since(w.opened) < age {
                return true;
            }
            repeats_line(action, reason, w, now);
            false
        });
    }
}

fn repeats_line(action: &str, reason: &str, w: &Window, now: Instant) {
    if w.repeats == 0 {
        return;
    }
    let seconds = now.duration_since(w.opened).as_secs().max(1);
    tracing::warn!(
        action,
        reason,
        count = w.repeats,
        seconds,
        "{action} failed {} more time{} for the same reason",
        w.repeats,
        if w.repeats == 1 { "" } else { "s" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_within_a_window() {
        let log = FailureLog::new(Duration::from_secs(3600));
        for _ in 0..5 {
            log.failed("spawn", "server_error", &"u", &"500");
        }
        log.failed("spawn", "timeout", &"u", &"late");
        let open = log.open.lock().unwrap();
        assert_eq!(open[&("spawn", "server_error")].repeats, 4);
        assert_eq!(open[&("spawn", "timeout")].repeats, 0);
        drop(open);
        log.flush_all();
        assert!(log.open.lock().unwrap().is_empty());
    }
}
