//! The table every run ends with on stdout: outcomes by action with failures by reason,
//! latency percentiles, notebooks (runs, cell p50/p95, slowest cells), requests by
//! operation, phases, thresholds and the result.

use std::fmt::Write as _;

use super::{by_reason, fmt_secs, RunReport};

impl RunReport {
    /// The terminal table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // One first column for all three tables, as wide as the longest name in them.
        let w = self
            .outcomes
            .keys()
            .chain(self.latency.keys())
            .chain(self.requests.keys())
            .map(String::len)
            .chain([14])
            .max()
            .unwrap_or(14);
        let _ = writeln!(
            out,
            "hubsoak {} against {} (JupyterHub {}), prefix {:?}{}",
            self.command,
            self.endpoint,
            self.hub_version.as_deref().unwrap_or("unknown"),
            self.prefix,
            if self.dry_run { ", dry run" } else { "" }
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<w$} {:>8} {:>8}  failures by reason",
            "action", "ok", "failed"
        );
        for (action, t) in &self.outcomes {
            let _ = writeln!(
                out,
                "{:<w$} {:>8} {:>8}  {}",
                action,
                t.success,
                t.failed(),
                by_reason(&t.failures)
            );
        }
        if !self.latency.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<w$} {:>8} {:>9} {:>9} {:>9} {:>9}",
                "latency", "count", "p50", "p90", "p99", "max"
            );
            for (action, l) in &self.latency {
                let _ = writeln!(
                    out,
                    "{:<w$} {:>8} {:>9} {:>9} {:>9} {:>9}",
                    action,
                    l.count,
                    fmt_secs(l.p50_s),
                    fmt_secs(l.p90_s),
                    fmt_secs(l.p99_s),
                    fmt_secs(l.max_s)
                );
            }
        }
        self.render_notebooks(&mut out, w);
        if !self.requests.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{:<w$} {:>8} {:>8}  failures by reason",
                "request", "sent", "retried"
            );
            for (op, r) in &self.requests {
                let _ = writeln!(
                    out,
                    "{:<w$} {:>8} {:>8}  {}",
                    op,
                    r.total,
                    r.retries,
                    by_reason(&r.failures)
                );
            }
        }
        if !self.phases.is_empty() {
            let _ = writeln!(out);
            let phases = self
                .phases
                .iter()
                .map(|p| format!("{} {}", p.name, fmt_secs(p.seconds)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "phases: {phases}");
        }
        for t in &self.thresholds {
            let _ = writeln!(out, "threshold: {t}");
        }
        let unable = self
            .unable
            .as_ref()
            .map(|why| format!("COULD NOT WORK ({why})"));
        let result = if let Some(unable) = &unable {
            unable.as_str()
        } else if self.thresholds.iter().any(|t| !t.passed) {
            "THRESHOLDS MISSED"
        } else if self.failed && self.thresholds.is_empty() {
            "FAILURES"
        } else if self.failed {
            "ok (thresholds met; some actions failed)"
        } else {
            "ok"
        };
        let _ = writeln!(out, "result: {result}");
        out
    }

    /// Notebooks: runs, cell percentiles, failures, and the slowest cells under each.
    fn render_notebooks(&self, out: &mut String, w: usize) {
        if self.notebooks.is_empty() {
            return;
        }
        let w = self
            .notebooks
            .iter()
            .map(|n| n.name.len())
            .chain([w])
            .max()
            .unwrap_or(w);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<w$} {:>8} {:>8} {:>8} {:>9} {:>9}  failures by reason",
            "notebook", "ok", "failed", "cells", "cell p50", "cell p95"
        );
        for n in &self.notebooks {
            let ran = n.cells.count > 0;
            let q = |v: f64| if ran { fmt_secs(v) } else { "-".into() };
            let _ = writeln!(
                out,
                "{:<w$} {:>8} {:>8} {:>8} {:>9} {:>9}  {}",
                n.name,
                n.runs.success,
                n.runs.failed(),
                n.cells.count,
                q(n.cells.p50_s),
                q(n.cell_p95_s),
                by_reason(&n.runs.failures)
            );
            let slowest: Vec<String> = n
                .slowest()
                .iter()
                .map(|c| format!("{} {}", c.label(), fmt_secs(c.mean_s())))
                .collect();
            if !slowest.is_empty() {
                let _ = writeln!(out, "  slowest (mean): {}", slowest.join(", "));
            }
        }
    }
}
