//! `report diff BASE NEW`: what changed between two runs (say, before and after a hub
//! upgrade): latency percentiles and failure ratios per action, side by side, with
//! every change past the tolerance flagged as a regression.

use std::fmt::Write as _;

use super::{fmt_secs, Latency, RunReport, Tally};

/// Latency changes smaller than this are noise, whatever their ratio.
const LATENCY_FLOOR_S: f64 = 0.001;
/// Failure-ratio changes smaller than this are noise.
const RATIO_FLOOR: f64 = 0.001;

#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub action: String,
    /// `p50`, `p90`, `p95`, `p99`, `max` or `failure_ratio`.
    pub stat: &'static str,
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
            let (bv, nv) = (b.as_ref().map(value), n.as_ref().map(value));
            let regression = match (bv, nv) {
                (Some(bv), Some(nv)) => nv > bv * (1.0 + tolerance) && nv - bv > LATENCY_FLOOR_S,
                _ => false,
            };
            rows.push(DiffRow {
                action: action.clone(),
                stat,
                base: bv,
                new: nv,
                regression,
            });
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
        let regression = match (bv, nv) {
            (Some(bv), Some(nv)) => nv > bv * (1.0 + tolerance) && nv - bv > RATIO_FLOOR,
            (None, Some(nv)) => nv > RATIO_FLOOR,
            _ => false,
        };
        rows.push(DiffRow {
            action: action.clone(),
            stat: "failure_ratio",
            base: bv,
            new: nv,
            regression,
        });
    }
    rows
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
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<14} {:<14} {:>10} {:>10} {:>9}",
        "action", "figure", "base", "new", "change"
    );
    let show = |stat: &str, v: Option<f64>| match v {
        None => "-".to_string(),
        Some(v) if stat == "failure_ratio" => format!("{:.2}%", v * 100.0),
        Some(v) => fmt_secs(v),
    };
    for r in rows {
        let change = match r.change_pct() {
            Some(c) => format!("{c:+.1}%"),
            None => "".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<14} {:<14} {:>10} {:>10} {:>9}{}",
            r.action,
            r.stat,
            show(r.stat, r.base),
            show(r.stat, r.new),
            change,
            if r.regression { "  REGRESSION" } else { "" }
        );
    }
    let regressions = rows.iter().filter(|r| r.regression).count();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{regressions} regression(s) beyond {:.0}% tolerance",
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
            .map(|r| (r.action.as_str(), r.stat))
            .collect();
        assert!(flagged.contains(&("spawn", "p95")), "{flagged:?}");
        assert!(flagged.contains(&("spawn", "failure_ratio")), "{flagged:?}");
        let text = render(&base, &slower, &rows, 0.1);
        assert!(text.contains("REGRESSION"), "{text}");
    }
}
