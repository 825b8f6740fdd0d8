//! Pass/fail thresholds on a run report, for CI gates on hub upgrades:
//! `--threshold 'spawn_p95<60s' --threshold 'failure_ratio<0.01'`. Parsed once with the
//! other settings; checked against the finished report; any miss is exit code 3.
//!
//! A threshold is `METRIC OP LIMIT`, OP one of `<`, `<=`, `>`, `>=`. METRIC is
//! - `ACTION_pNN` (any percentile, e.g. `spawn_p95`, `execute_p99.9`), `ACTION_min`,
//!   `ACTION_mean`, `ACTION_max`: latency in seconds; LIMIT a duration (`60s`, `500ms`)
//!   or a number of seconds;
//! - `ACTION_count`: latency samples;
//! - `failure_ratio` (all actions) or `ACTION_failure_ratio`: failed / (ok + failed);
//! - `failures` or `ACTION_failures`, and `ACTION_ok`: counts;
//! - `request_failure_ratio`: failed API requests / requests sent;
//! - `notebook:NAME:FIGURE`, one notebook's: `cell_pNN`, `cell_min`, `cell_mean`,
//!   `cell_max` (seconds), `cell_count`, and of its runs `failure_ratio`, `failures`, `ok`.
//!
//! A metric the report has no data for is a miss: an unverifiable gate does not pass.

use std::str::FromStr;

use super::{Latency, LatencySummary, RunReport, Tally, ThresholdResult, Unit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Stat {
    Quantile(f64),
    Min,
    Mean,
    Max,
    Count,
}

impl Stat {
    /// This figure of a latency summary; None without samples.
    fn of(&self, s: &LatencySummary) -> Option<f64> {
        if s.count == 0 {
            return None;
        }
        Some(match self {
            Stat::Count => s.count as f64,
            Stat::Min => s.min_s,
            Stat::Mean => s.mean_s,
            Stat::Max => s.max_s,
            Stat::Quantile(q) => Latency::from_summary(s)?.quantile(*q).as_secs_f64(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    Latency {
        action: String,
        stat: Stat,
    },
    FailureRatio(Option<String>),
    Failures(Option<String>),
    Ok(String),
    RequestFailureRatio,
    Notebook {
        name: String,
        figure: NotebookFigure,
    },
}

/// A figure of one notebook: its cells' latency, or its runs' outcomes.
#[derive(Debug, Clone, PartialEq)]
enum NotebookFigure {
    Cell(Stat),
    FailureRatio,
    Failures,
    Ok,
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the user wrote it.
    pub expr: String,
    metric: Metric,
    op: Op,
    limit: f64,
}

impl Metric {
    fn unit(&self) -> Unit {
        match self {
            Metric::Latency {
                stat: Stat::Count, ..
            } => Unit::Count,
            Metric::Latency { .. } => Unit::Seconds,
            Metric::FailureRatio(_) | Metric::RequestFailureRatio => Unit::Ratio,
            Metric::Failures(_) | Metric::Ok(_) => Unit::Count,
            Metric::Notebook { figure, .. } => match figure {
                NotebookFigure::Cell(Stat::Count) => Unit::Count,
                NotebookFigure::Cell(_) => Unit::Seconds,
                NotebookFigure::FailureRatio => Unit::Ratio,
                NotebookFigure::Failures | NotebookFigure::Ok => Unit::Count,
            },
        }
    }

    fn action(&self) -> Option<&str> {
        match self {
            Metric::Latency { action, .. } => Some(action),
            Metric::FailureRatio(a) | Metric::Failures(a) => a.as_deref(),
            Metric::Ok(a) => Some(a),
            Metric::RequestFailureRatio | Metric::Notebook { .. } => None,
        }
    }
}

/// The actions each command's report has, for checking threshold names when parsed.
pub mod actions {
    pub const STRESS_TEST: &[&str] = &[
        "create_user",
        "spawn",
        "spawn_queued",
        "spawn_scheduling",
        "spawn_image_pull",
        "spawn_container_start",
        "spawn_server_startup",
        "stop",
        "delete_user",
    ];
    pub const ACTIVITY: &[&str] = &["create_user", "activity", "ping", "delete_user"];
    pub const SIMULATE: &[&str] = &[
        "create_user",
        "login",
        "spawn",
        "spawn_queued",
        "spawn_scheduling",
        "spawn_image_pull",
        "spawn_container_start",
        "spawn_server_startup",
        "kernel_start",
        "execute",
        "kernel_stop",
        "stop",
        "journey",
        "delete_user",
    ];
    pub const PURGE: &[&str] = &["stop", "delete_user"];
    /// Any report's, soaks' included (`report diff`).
    pub const ANY: &[&str] = &[
        "create_user",
        "login",
        "spawn",
        "spawn_queued",
        "spawn_scheduling",
        "spawn_image_pull",
        "spawn_container_start",
        "spawn_server_startup",
        "kernel_start",
        "execute",
        "kernel_stop",
        "stop",
        "journey",
        "activity",
        "ping",
        "delete_user",
    ];
}

/// Refuses an action that `known` does not have, naming the closest one.
fn known_action(expr: &str, metric: &Metric, known: &[&str]) -> Result<(), String> {
    let Some(action) = metric.action() else {
        return Ok(());
    };
    if known.contains(&action) {
        return Ok(());
    }
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(action, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min();
    let hint = closest
        .map(|(_, k)| format!("did you mean {k:?}? "))
        .unwrap_or_default();
    Err(format!(
        "{expr:?}: no action {action:?} in this command's report; {hint}(actions: {})",
        known.join(", ")
    ))
}

fn parse_stat(s: &str) -> Option<Stat> {
    match s {
        "min" => Some(Stat::Min),
        "mean" => Some(Stat::Mean),
        "max" => Some(Stat::Max),
        "count" => Some(Stat::Count),
        _ => {
            let n: f64 = s.strip_prefix('p')?.parse().ok()?;
            (n > 0.0 && n < 100.0).then_some(Stat::Quantile(n / 100.0))
        }
    }
}

/// `notebook:NAME:FIGURE`.
fn parse_notebook(rest: &str) -> Result<Metric, String> {
    let (name, figure) = rest
        .rsplit_once(':')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| {
            format!("{rest:?}: want notebook:NAME:FIGURE, e.g. notebook:etl:cell_p95")
        })?;
    let figure = match figure {
        "failure_ratio" => NotebookFigure::FailureRatio,
        "failures" => NotebookFigure::Failures,
        "ok" => NotebookFigure::Ok,
        other => other
            .strip_prefix("cell_")
            .and_then(parse_stat)
            .map(NotebookFigure::Cell)
            .ok_or_else(|| {
                format!("unknown notebook figure {other:?}: want cell_pNN, cell_min, cell_mean, cell_max, cell_count, failure_ratio, failures or ok")
            })?,
    };
    Ok(Metric::Notebook {
        name: name.to_string(),
        figure,
    })
}

fn parse_metric(name: &str) -> Result<Metric, String> {
    if let Some(rest) = name.strip_prefix("notebook:") {
        return parse_notebook(rest);
    }
    let action = |a: &str| {
        if a.is_empty() || !a.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            Err(format!(
                "{a:?} is not an action name (like spawn or kernel_start)"
            ))
        } else {
            Ok(a.to_string())
        }
    };
    match name {
        "failure_ratio" => return Ok(Metric::FailureRatio(None)),
        "failures" => return Ok(Metric::Failures(None)),
        "request_failure_ratio" => return Ok(Metric::RequestFailureRatio),
        _ => {}
    }
    if let Some(a) = name.strip_suffix("_failure_ratio") {
        return Ok(Metric::FailureRatio(Some(action(a)?)));
    }
    if let Some(a) = name.strip_suffix("_failures") {
        return Ok(Metric::Failures(Some(action(a)?)));
    }
    if let Some(a) = name.strip_suffix("_ok") {
        return Ok(Metric::Ok(action(a)?));
    }
    let (a, stat) = name
        .rsplit_once('_')
        .ok_or_else(|| format!("unknown metric {name:?}"))?;
    let stat = parse_stat(stat).ok_or_else(|| {
        format!("unknown metric {name:?}: want ACTION_pNN, _min, _mean, _max, _count, _ok, _failures or _failure_ratio")
    })?;
    Ok(Metric::Latency {
        action: action(a)?,
        stat,
    })
}

/// A limit: a number, or for latency a duration.
fn parse_limit(raw: &str, latency: bool) -> Result<f64, String> {
    let raw = raw.trim();
    if let Ok(v) = raw.parse::<f64>() {
        if v.is_finite() {
            return Ok(v);
        }
    }
    if latency {
        if let Ok(d) = humantime::parse_duration(raw) {
            return Ok(d.as_secs_f64());
        }
        return Err(format!("{raw:?} is not a duration (like 60s) or a number"));
    }
    Err(format!("{raw:?} is not a number"))
}

/// `METRIC OP LIMIT` → its parts, the limit still raw; and whether it is a latency.
fn split(expr: &str) -> Result<(Metric, Op, &str, bool), String> {
    let at = expr
        .find(['<', '>'])
        .ok_or_else(|| format!("{expr:?}: no comparison (<, <=, > or >=)"))?;
    let (name, rest) = expr.split_at(at);
    let (op, limit) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
        (b'<', Some(b'=')) => (Op::Le, &rest[2..]),
        (b'<', _) => (Op::Lt, &rest[1..]),
        (b'>', Some(b'=')) => (Op::Ge, &rest[2..]),
        _ => (Op::Gt, &rest[1..]),
    };
    let metric = parse_metric(name.trim()).map_err(|e| format!("{expr:?}: {e}"))?;
    let latency = metric.unit() == Unit::Seconds;
    Ok((metric, op, limit, latency))
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(expr: &str) -> Result<Self, String> {
        let (metric, op, limit, latency) = split(expr)?;
        let limit = parse_limit(limit, latency).map_err(|e| format!("{expr:?}: {e}"))?;
        Ok(Threshold {
            expr: expr.trim().to_string(),
            metric,
            op,
            limit,
        })
    }
}

fn ratio(tallies: &[&Tally]) -> Option<f64> {
    let failed: u64 = tallies.iter().map(|t| t.failed()).sum();
    let all: u64 = failed + tallies.iter().map(|t| t.success).sum::<u64>();
    (all > 0).then(|| failed as f64 / all as f64)
}

impl Threshold {
    /// The metric's value in `report`, if it has one.
    pub fn value(&self, report: &RunReport) -> Option<f64> {
        match &self.metric {
            Metric::Latency { action, stat } => stat.of(report.latency.get(action)?),
            Metric::FailureRatio(None) => ratio(&report.outcomes.values().collect::<Vec<_>>()),
            Metric::FailureRatio(Some(a)) => ratio(&[report.outcomes.get(a)?]),
            Metric::Failures(None) => {
                Some(report.outcomes.values().map(Tally::failed).sum::<u64>() as f64)
            }
            Metric::Failures(Some(a)) => Some(report.outcomes.get(a)?.failed() as f64),
            Metric::Ok(a) => Some(report.outcomes.get(a)?.success as f64),
            Metric::RequestFailureRatio => {
                let sent: u64 = report.requests.values().map(|r| r.total).sum();
                let failed: u64 = report
                    .requests
                    .values()
                    .flat_map(|r| r.failures.values())
                    .sum();
                (sent > 0).then(|| failed as f64 / sent as f64)
            }
            Metric::Notebook { name, figure } => {
                let nb = report.notebooks.iter().find(|n| &n.name == name)?;
                match figure {
                    NotebookFigure::Cell(stat) => stat.of(&nb.cells),
                    NotebookFigure::FailureRatio => ratio(&[&nb.runs]),
                    NotebookFigure::Failures => Some(nb.runs.failed() as f64),
                    NotebookFigure::Ok => Some(nb.runs.success as f64),
                }
            }
        }
    }

    /// The notebook this threshold is about, if any.
    pub fn notebook(&self) -> Option<&str> {
        match &self.metric {
            Metric::Notebook { name, .. } => Some(name),
            _ => None,
        }
    }

    pub fn check(&self, report: &RunReport) -> ThresholdResult {
        let value = self.value(report);
        ThresholdResult {
            threshold: self.expr.clone(),
            value,
            passed: value.is_some_and(|v| self.op.holds(v, self.limit)),
            limit: Some(self.limit),
            unit: self.metric.unit(),
        }
    }
}

/// A threshold on the change between two reports (`report diff`): `spawn_p95<+20%`
/// (relative change, in percent) or `spawn_p95<+5s` (absolute change).
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaThreshold {
    pub expr: String,
    metric: Metric,
    op: Op,
    limit: f64,
    relative: bool,
}

impl Threshold {
    /// Parses `expr` and checks that its action is one of `known`.
    pub fn parse_for(expr: &str, known: &[&str]) -> Result<Threshold, String> {
        let t: Threshold = expr.parse()?;
        known_action(expr, &t.metric, known)?;
        Ok(t)
    }
}

impl DeltaThreshold {
    /// Parses `expr` and checks that its action is one of `known`.
    pub fn parse_for(expr: &str, known: &[&str]) -> Result<DeltaThreshold, String> {
        let t: DeltaThreshold = expr.parse()?;
        known_action(expr, &t.metric, known)?;
        Ok(t)
    }
}

impl FromStr for DeltaThreshold {
    type Err = String;

    fn from_str(expr: &str) -> Result<Self, String> {
        let (metric, op, limit, latency) = split(expr)?;
        let limit = limit.trim();
        let (limit, relative) = match limit.strip_suffix('%') {
            Some(pct) => (parse_limit(pct, false), true),
            None => (parse_limit(limit.trim_start_matches('+'), latency), false),
        };
        let limit = limit.map_err(|e| format!("{expr:?}: {e}"))?;
        Ok(DeltaThreshold {
            expr: expr.trim().to_string(),
            metric,
            op,
            limit,
            relative,
        })
    }
}

impl DeltaThreshold {
    /// The change from `base` to `new`: in percent if relative.
    pub fn value(&self, base: &RunReport, new: &RunReport) -> Option<f64> {
        let probe = |r: &RunReport| {
            Threshold {
                expr: String::new(),
                metric: self.metric.clone(),
                op: self.op,
                limit: 0.0,
            }
            .value(r)
        };
        let (b, n) = (probe(base)?, probe(new)?);
        if !self.relative {
            return Some(n - b);
        }
        if b == 0.0 {
            return (n == 0.0).then_some(0.0);
        }
        Some((n - b) / b * 100.0)
    }

    pub fn check(&self, base: &RunReport, new: &RunReport) -> ThresholdResult {
        let value = self.value(base, new);
        ThresholdResult {
            threshold: self.expr.clone(),
            value,
            passed: value.is_some_and(|v| self.op.holds(v, self.limit)),
            limit: Some(self.limit),
            unit: if self.relative {
                Unit::Percent
            } else {
                self.metric.unit()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let t: Threshold = "spawn_p95<60s".parse().unwrap();
        assert_eq!(t.limit, 60.0);
        assert_eq!(t.op, Op::Lt);
        assert!(
            matches!(t.metric, Metric::Latency { ref action, stat: Stat::Quantile(q) } if action == "spawn" && (q - 0.95).abs() < 1e-9)
        );
        let t: Threshold = "kernel_start_max <= 500ms".parse().unwrap();
        assert_eq!((t.op, t.limit), (Op::Le, 0.5));
        let t: Threshold = "failure_ratio<0.01".parse().unwrap();
        assert_eq!(t.metric, Metric::FailureRatio(None));
        let t: Threshold = "create_user_failure_ratio<=0".parse().unwrap();
        assert_eq!(t.metric, Metric::FailureRatio(Some("create_user".into())));
        let t: Threshold = "spawn_ok>=50".parse().unwrap();
        assert_eq!(
            (t.metric.clone(), t.op),
            (Metric::Ok("spawn".into()), Op::Ge)
        );
        let t: Threshold = "execute_p99.9<2".parse().unwrap();
        assert_eq!(t.limit, 2.0);
        for bad in [
            "spawn_p95",
            "spawn_p95<fast",
            "spawn_p100<1s",
            "Spawn_max<1s",
            "failure_ratio<1s",
            "x<1",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
    }

    #[test]
    fn notebook_thresholds_read_the_notebook() {
        let t: Threshold = "notebook:warm-up:cell_p95<2s".parse().unwrap();
        assert_eq!(t.notebook(), Some("warm-up"));
        assert_eq!(t.limit, 2.0);
        assert_eq!(t.metric.unit(), Unit::Seconds);
        let t: Threshold = "notebook:v1.2:failures<1".parse().unwrap();
        assert_eq!(t.metric.unit(), Unit::Count);
        for bad in [
            "notebook:etl<1",
            "notebook::cell_p95<1s",
            "notebook:etl:cell_p100<1s",
            "notebook:etl:speed<1",
            "notebook:etl:failure_ratio<1s",
        ] {
            assert!(bad.parse::<Threshold>().is_err(), "{bad}");
        }
        let mut r = crate::report::Recorder::default();
        for ms in [100, 200, 300, 400] {
            r.notebook_cell("etl", 2, None, std::time::Duration::from_millis(ms), true);
        }
        r.notebook_run("etl", None);
        r.notebook_run("etl", Some("timeout"));
        let report = r.report(
            crate::report::test_meta("simulate", ""),
            &crate::hub::RequestTally::default(),
        );
        let value = |expr: &str| expr.parse::<Threshold>().unwrap().value(&report);
        let max = value("notebook:etl:cell_max<1s").unwrap();
        assert!((max - 0.4).abs() < 0.001, "{max}");
        assert_eq!(value("notebook:etl:cell_count<1"), Some(4.0));
        assert_eq!(value("notebook:etl:failure_ratio<1"), Some(0.5));
        assert_eq!(value("notebook:etl:ok<1"), Some(1.0));
        assert_eq!(
            value("notebook:other:failures<1"),
            None,
            "no data is a miss"
        );
        // And on the change between two runs (`report diff`).
        let mut slower = crate::report::Recorder::default();
        for ms in [200, 400, 600, 800] {
            slower.notebook_cell("etl", 2, None, std::time::Duration::from_millis(ms), true);
        }
        let slower = slower.report(
            crate::report::test_meta("simulate", ""),
            &crate::hub::RequestTally::default(),
        );
        let t = DeltaThreshold::parse_for("notebook:etl:cell_mean<+20%", actions::ANY).unwrap();
        let change = t.value(&report, &slower).unwrap();
        assert!((change - 100.0).abs() < 1.0, "{change}");
        assert!(!t.check(&report, &slower).passed);
    }

    #[test]
    fn delta_thresholds_are_relative_or_absolute() {
        let t: DeltaThreshold = "spawn_p95<+20%".parse().unwrap();
        assert!(t.relative && t.limit == 20.0);
        let t: DeltaThreshold = "spawn_p95<=+5s".parse().unwrap();
        assert!(!t.relative && t.limit == 5.0);
        let t: DeltaThreshold = "failure_ratio<0.01".parse().unwrap();
        assert!(!t.relative && t.limit == 0.01);
        assert!("spawn_p95<+fast%".parse::<DeltaThreshold>().is_err());
    }
}
