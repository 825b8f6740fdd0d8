//! `report diff BASE NEW`: what changed between two runs (say, before and after a hub
//! upgrade): latency percentiles and failure ratios per action, and per API operation
//! the share of requests that failed (overall and by reason, throttling among them) and
//! that were retried, and per notebook its cells' p50/p95/max, each cell's mean and the
//! share of runs that failed — side by side, with every change past the tolerance
//! flagged as a regression. Runs of different commands are not comparable; runs with
//! different parameters are, with a warning that names each difference.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{fmt_secs, Latency, RequestCounts, RunReport, Tally};

/// Latency changes smaller than this are noise, whatever their ratio.
const LATENCY_FLOOR_S: f64 = 0.001;
/// Failure-ratio changes smaller than this are noise.
const RATIO_FLOOR: f64 = 0.001;

/// What a row compares: an action's outcome, or the requests of one API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Action,
    Request,
    Notebook,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub section: Section,
    /// The action (`spawn`), the API operation (`start_server`) or the notebook.
    pub action: String,
    /// Actions: `p50`, `p90`, `p95`, `p99`, `max` or `failure_ratio`. Requests:
    /// `failure_ratio`, `failed:REASON` (e.g. `failed:throttled`) or `retry_ratio`, each a
    /// share of the requests sent. Notebooks: `cell_p50`, `cell_p95`, `cell_max`,
    /// `cell N mean` and `failure_ratio` (of its runs).
    pub stat: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// Worse by more than the tolerance.
    pub regression: bool,
}

impl DiffRow {
    /// The relative change in percent, when both sides exist and the base is not 0.
    pub fn change_pct(&self) -> Option<f64> {
        match (self.base, self.new) {
            (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b * 100.0),
            _ => None,
        }
    }
}

/// The latency figures compared: percentiles, and the max as the 100th.
const STATS: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("max", 1.0),
];

fn failure_ratio(t: &Tally) -> Option<f64> {
    let all = t.success + t.failed();
    (all > 0).then(|| t.failed() as f64 / all as f64)
}

/// Every compared figure; `tolerance` is the relative worsening allowed (0.1 = 10 %).
pub fn diff(base: &RunReport, new: &RunReport, tolerance: f64) -> Vec<DiffRow> {
    let mut rows = Vec::new();
    let mut actions: Vec<&String> = base.latency.keys().chain(new.latency.keys()).collect();
    actions.sort();
    actions.dedup();
    for action in actions {
        let hist = |r: &RunReport| {
            r.latency
                .get(action)
                .filter(|s| s.count > 0)
                .and_then(Latency::from_summary)
        };
        let (b, n) = (hist(base), hist(new));
        for (stat, q) in STATS {
            let value = |l: &Latency| l.quantile(q).as_secs_f64();
            let values = (b.as_ref().map(value), n.as_ref().map(value));
            rows.push(latency_row(
                Section::Action,
                action,
                stat.to_string(),
                values,
                tolerance,
            ));
        }
    }
    let mut actions: Vec<&String> = base.outcomes.keys().chain(new.outcomes.keys()).collect();
    actions.sort();
    actions.dedup();
    for action in actions {
        let (bv, nv) = (
            base.outcomes.get(action).and_then(failure_ratio),
            new.outcomes.get(action).and_then(failure_ratio),
        );
        rows.push(ratio_row(
            Section::Action,
            action,
            "failure_ratio",
            (bv, nv),
            tolerance,
        ));
    }
    rows.extend(request_rows(base, new, tolerance));
    rows.extend(notebook_rows(base, new, tolerance));
    rows
}

/// A latency that is worse when it grows by more than the tolerance (and the floor).
fn latency_row(
    section: Section,
    action: &str,
    stat: String,
    (bv, nv): (Option<f64>, Option<f64>),
    tolerance: f64,
) -> DiffRow {
    let regression = match (bv, nv) {
        (Some(bv), Some(nv)) => nv > bv * (1.0 + tolerance) && nv - bv > LATENCY_FLOOR_S,
        _ => false,
    };
    DiffRow {
        section,
        action: action.to_string(),
        stat,
        base: bv,
        new: nv,
        regression,
    }
}

/// Per notebook: its cells' percentiles, each cell's mean (a cell that got slower is
/// named), and the share of its runs that failed.
fn notebook_rows(base: &RunReport, new: &RunReport, tolerance: f64) -> Vec<DiffRow> {
    let mut names: Vec<&String> = base
        .notebooks
        .iter()
        .chain(&new.notebooks)
        .map(|n| &n.name)
        .collect();
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    for name in names {
        let find = |r: &'_ RunReport| r.notebooks.iter().find(|n| &n.name == name).cloned();
        let (b, n) = (find(base), find(new));
        let hist = |nb: &Option<super::notebooks::NotebookSummary>| {
            nb.as_ref()
                .filter(|nb| nb.cells.count > 0)
                .and_then(|nb| Latency::from_summary(&nb.cells))
        };
        let (bh, nh) = (hist(&b), hist(&n));
        for (stat, q) in [("cell_p50", 0.5), ("cell_p95", 0.95), ("cell_max", 1.0)] {
            let value = |l: &Latency| l.quantile(q).as_secs_f64();
            let values = (bh.as_ref().map(value), nh.as_ref().map(value));
            rows.push(latency_row(
                Section::Notebook,
                name,
                stat.to_string(),
                values,
                tolerance,
            ));
        }
        let cells: std::collections::BTreeSet<usize> = b
            .iter()
            .chain(&n)
            .flat_map(|nb| nb.by_cell.iter().map(|c| c.cell))
            .collect();
        for cell in cells {
            let mean = |nb: &Option<super::notebooks::NotebookSummary>| {
                nb.as_ref()
                    .and_then(|nb| nb.by_cell.iter().find(|c| c.cell == cell))
                    .filter(|c| c.ok > 0)
                    .map(|c| c.mean_s())
            };
            rows.push(latency_row(
                Section::Notebook,
                name,
                format!("cell {cell} mean"),
                (mean(&b), mean(&n)),
                tolerance,
            ));
        }
        let runs = |nb: &Option<super::notebooks::NotebookSummary>| {
            nb.as_ref().and_then(|nb| failure_ratio(&nb.runs))
        };
        rows.push(ratio_row(
            Section::Notebook,
            name,
            "failure_ratio",
            (runs(&b), runs(&n)),
            tolerance,
        ));
    }
    rows
}

/// A share that is worse when it grows.
fn ratio_row(
    section: Section,
    action: &str,
    stat: &str,
    (base, new): (Option<f64>, Option<f64>),
    tolerance: f64,
) -> DiffRow {
    let regression = match (base, new) {
        (Some(b), Some(n)) => n > b * (1.0 + tolerance) && n - b > RATIO_FLOOR,
        (None, Some(n)) => n > RATIO_FLOOR,
        _ => false,
    };
    DiffRow {
        section,
        action: action.to_string(),
        stat: stat.to_string(),
        base,
        new,
        regression,
    }
}

/// Per API operation: failed, failed by each reason, and retried, as shares of the
/// requests sent (each run sends a different number, so counts would not compare).
fn request_rows(base: &RunReport, new: &RunReport, tolerance: f64) -> Vec<DiffRow> {
    let mut ops: Vec<&String> = base.requests.keys().chain(new.requests.keys()).collect();
    ops.sort();
    ops.dedup();
    let mut rows = Vec::new();
    for op in ops {
        let (b, n) = (base.requests.get(op), new.requests.get(op));
        let share = |c: Option<&RequestCounts>, part: &dyn Fn(&RequestCounts) -> u64| {
            c.filter(|c| c.total > 0)
                .map(|c| part(c) as f64 / c.total as f64)
        };
        let pair = |part: &dyn Fn(&RequestCounts) -> u64| (share(b, part), share(n, part));
        rows.push(ratio_row(
            Section::Request,
            op,
            "failure_ratio",
            pair(&|c| c.failures.values().sum()),
            tolerance,
        ));
        let mut reasons: Vec<&String> = b
            .iter()
            .chain(n.iter())
            .flat_map(|c| c.failures.keys())
            .collect();
        reasons.sort();
        reasons.dedup();
        for reason in reasons {
            rows.push(ratio_row(
                Section::Request,
                op,
                &format!("failed:{reason}"),
                pair(&|c| c.failures.get(reason).copied().unwrap_or(0)),
                tolerance,
            ));
        }
        rows.push(ratio_row(
            Section::Request,
            op,
            "retry_ratio",
            pair(&|c| c.retries),
            tolerance,
        ));
    }
    rows
}

/// Why two reports cannot be compared: they are of different commands.
pub fn incomparable(base: &RunReport, new: &RunReport) -> Option<String> {
    (base.command != new.command).then(|| {
        format!(
            "BASE is a {} report and NEW a {} report: their figures do not compare \
             (pass --force to compare them anyway)",
            base.command, new.command
        )
    })
}

/// Each parameter that differs between the runs, as `key: base -> new`.
pub fn parameter_changes(base: &RunReport, new: &RunReport) -> Vec<String> {
    let (b, n) = (flatten(&base.parameters), flatten(&new.parameters));
    let mut keys: Vec<&String> = b.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
    keys.into_iter()
        .filter(|k| b.get(*k) != n.get(*k))
        .map(|k| format!("{k}: {} -> {}", show(b.get(k)), show(n.get(k))))
        .collect()
}

/// `{"a": {"b": 1}}` as `a.b = 1`.
fn flatten(v: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}

/// The table.
pub fn render(base: &RunReport, new: &RunReport, rows: &[DiffRow], tolerance: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hubsoak report diff: {} (JupyterHub {}, {}) -> {} (JupyterHub {}, {})",
        base.command,
        base.hub_version.as_deref().unwrap_or("unknown"),
        base.started_at.format("%Y-%m-%d %H:%M"),
        new.command,
        new.hub_version.as_deref().unwrap_or("unknown"),
        new.started_at.format("%Y-%m-%d %H:%M"),
    );
    let show = |stat: &str, v: Option<f64>| match v {
        None => "-".to_string(),
        Some(v) if stat.contains("ratio") || stat.starts_with("failed:") => {
            format!("{:.2}%", v * 100.0)
        }
        Some(v) => fmt_secs(v),
    };
    for (section, title) in [
        (Section::Action, "action"),
        (Section::Request, "request"),
        (Section::Notebook, "notebook"),
    ] {
        let rows: Vec<&DiffRow> = rows.iter().filter(|r| r.section == section).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<14} {:<22} {:>10} {:>10} {:>9}",
            title, "figure", "base", "new", "change"
        );
        for r in rows {
            let change = match r.change_pct() {
                Some(c) => format!("{c:+.1}%"),
                None => "".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<14} {:<22} {:>10} {:>10} {:>9}{}",
                r.action,
                r.stat,
                show(&r.stat, r.base),
                show(&r.stat, r.new),
                change,
                if r.regression { "  REGRESSION" } else { "" }
            );
        }
    }
    let regressions = rows.iter().filter(|r| r.regression).count();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{regressions} {} beyond {:.0}% tolerance",
        if regressions == 1 {
            "regression"
        } else {
            "regressions"
        },
        tolerance * 100.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RequestTally;
    use crate::report::{test_meta, Recorder};
    use std::time::Duration;

    fn report(spawn_ms: u64, failures: u64) -> RunReport {
        let mut r = Recorder::default();
        for i in 0..100 {
            r.success("spawn", Some(Duration::from_millis(spawn_ms + i)));
        }
        for _ in 0..failures {
            r.failure("spawn", "spawn_failed");
        }
        r.report(test_meta("stress-test", ""), &RequestTally::default())
    }

    #[test]
    fn an_injected_regression_is_flagged_and_noise_is_not() {
        let base = report(2000, 0);
        let same = report(2005, 0);
        assert!(diff(&base, &same, 0.1).iter().all(|r| !r.regression));
        let slower = report(3000, 5);
        let rows = diff(&base, &slower, 0.1);
        let flagged: Vec<_> = rows
            .iter()
            .filter(|r| r.regression)
            .map(|r| (r.action.as_str(), r.stat.as_str()))
            .collect();
        assert!(flagged.contains(&("spawn", "p95")), "{flagged:?}");
        assert!(flagged.contains(&("spawn", "failure_ratio")), "{flagged:?}");
        let text = render(&base, &slower, &rows, 0.1);
        assert!(text.contains("REGRESSION"), "{text}");
    }

    /// A notebook run twice per report: cell 2 fast, cell 3 `slow_ms`.
    fn notebook_report(slow_ms: u64, failed_runs: u64) -> RunReport {
        let mut r = Recorder::default();
        for _ in 0..2 {
            r.notebook_cell("etl", 2, Some("load"), Duration::from_millis(20), true);
            r.notebook_cell("etl", 3, Some("fit"), Duration::from_millis(slow_ms), true);
            r.notebook_run("etl", None);
        }
        for _ in 0..failed_runs {
            r.notebook_run("etl", Some("kernel_error"));
        }
        r.report(test_meta("simulate", ""), &RequestTally::default())
    }

    #[test]
    fn a_notebook_cell_that_got_slower_is_named() {
        let base = notebook_report(500, 0);
        assert!(diff(&base, &notebook_report(510, 0), 0.1)
            .iter()
            .all(|r| !r.regression));
        let rows = diff(&base, &notebook_report(5000, 1), 0.1);
        let flagged: Vec<_> = rows
            .iter()
            .filter(|r| r.regression)
            .map(|r| (r.section, r.action.as_str(), r.stat.as_str()))
            .collect();
        assert_eq!(
            flagged,
            [
                (Section::Notebook, "etl", "cell_p95"),
                (Section::Notebook, "etl", "cell_max"),
                (Section::Notebook, "etl", "cell 3 mean"),
                (Section::Notebook, "etl", "failure_ratio"),
            ]
        );
        let text = render(&base, &notebook_report(5000, 1), &rows, 0.1);
        assert!(text.contains("\nnotebook "), "{text}");
    }
}
