//! Run reports of the one-shot commands: counts of outcomes by reason, request counts,
//! latency distributions as bounded HDR histograms (serialized, so reports can be
//! merged later), phase wall times and a bounded timeline of completions; printed as a
//! table and written as versioned JSON; and how a run ended (`Outcome`, which main.rs
//! maps to an exit code). `merge`, `diff` and `html` work on the JSON.

pub mod charts;
pub mod command;
pub mod diff;
pub mod html;
pub mod merge;
pub mod notebooks;
pub mod sampler;
pub mod series;
mod table;
pub mod threshold;
pub mod timeline;

pub use timeline::{Timeline, TIMELINE_MAX_BUCKETS};

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::hub::{FailureReason, Operation, RequestTally};

/// The JSON report's schema name; bumped on any incompatible change.
pub const REPORT_SCHEMA: &str = "hubsoak.run-report/v1";

/// Latencies in microseconds from 1 µs to 1 h at 3 significant digits: a fixed
/// ~200 KiB whatever the number of samples; longer values are clamped to 1 h.
const HDR_MAX_US: u64 = 3_600_000_000;

/// How a run that got to its end went: exit code 0, 1 or 3 (in rising order of concern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Clean,
    Failures,
    /// A `--threshold` did not hold.
    ThresholdsMissed,
}

#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, HDR_MAX_US, 3).expect("static HDR bounds"),
        }
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(0, HDR_MAX_US);
        self.hist.saturating_record(us);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Forgets every sample, keeping the memory.
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.hist.value_at_quantile(q))
    }

    pub fn summary(&self) -> LatencySummary {
        let secs = |us: u64| us as f64 / 1e6;
        let mut encoded = Vec::new();
        let hdr = match V2DeflateSerializer::new().serialize(&self.hist, &mut encoded) {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(&encoded),
            Err(_) => String::new(),
        };
        let empty = self.hist.is_empty();
        LatencySummary {
            count: self.hist.len(),
            min_s: if empty { 0.0 } else { secs(self.hist.min()) },
            mean_s: if empty { 0.0 } else { self.hist.mean() / 1e6 },
            p50_s: secs(self.hist.value_at_quantile(0.50)),
            p90_s: secs(self.hist.value_at_quantile(0.90)),
            p99_s: secs(self.hist.value_at_quantile(0.99)),
            max_s: if empty { 0.0 } else { secs(self.hist.max()) },
            hdr,
        }
    }

    /// Adds every sample of `other`.
    pub fn add(&mut self, other: &Latency) {
        // Same bounds on both sides, so this cannot fail; saturate if it ever did.
        let _ = self.hist.add(&other.hist);
    }

    /// Restores a histogram from a report, for merging.
    pub fn from_summary(s: &LatencySummary) -> Option<Latency> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s.hdr)
            .ok()?;
        let hist: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).ok()?;
        Some(Latency { hist })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_s: f64,
    pub mean_s: f64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
    /// The HDR histogram (V2, deflate, base64) in microseconds.
    pub hdr: String,
}

/// Successes and failures (by a reason from a small fixed set) of one kind of action.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    pub success: u64,
    pub failures: BTreeMap<String, u64>,
}

impl Tally {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestCounts {
    pub total: u64,
    pub retries: u64,
    pub failures: BTreeMap<String, u64>,
    /// p50, p95 and p99 of the attempts, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_s: Option<[f64; 3]>,
}

/// The failures of one action for one reason, with the first distinct messages (user
/// names replaced by `USER`, so one cause reads as one message).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorGroup {
    pub action: String,
    pub reason: String,
    pub count: u64,
    /// Up to `MESSAGES_PER_GROUP` distinct messages, each with how often it came.
    pub messages: Vec<(String, u64)>,
    /// Occurrences whose message was not kept (past the cap).
    #[serde(default)]
    pub other_messages: u64,
}

/// Distinct messages kept per (action, reason).
pub const MESSAGES_PER_GROUP: usize = 5;
/// Messages are cut to this many bytes.
const MESSAGE_MAX: usize = 300;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseTime {
    pub name: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    pub schema: String,
    pub hubsoak_version: String,
    pub command: String,
    pub endpoint: String,
    pub hub_version: Option<String>,
    pub prefix: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub parameters: serde_json::Value,
    /// By action: create_user, spawn, stop, delete_user, activity, ping.
    pub outcomes: BTreeMap<String, Tally>,
    /// By API operation.
    pub requests: BTreeMap<String, RequestCounts>,
    /// By action: spawn, stop, activity, ping.
    pub latency: BTreeMap<String, LatencySummary>,
    pub phases: Vec<PhaseTime>,
    /// Completions over time, from `started_at`.
    #[serde(default)]
    pub timeline: Timeline,
    /// Whether anything failed (exit code 1 when no threshold is given).
    pub failed: bool,
    /// A soak that could not work when it ended: why (its problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unable: Option<String>,
    /// The `--threshold`s and how each fared (exit code 3 if any missed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdResult>,
    /// `stress-test --cycles`: each round's own report (this one is their merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<RunReport>,
    /// The run over time, for the report's charts (bounded).
    #[serde(default)]
    pub series: series::Series,
    /// Failures grouped by action and reason, with their messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorGroup>,
    /// Notebook journeys: per notebook, its runs and cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notebooks: Vec<notebooks::NotebookSummary>,
}

/// Collects a run's results as it goes; shared behind a mutex by concurrent tasks.
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    outcomes: BTreeMap<&'static str, Tally>,
    latency: BTreeMap<&'static str, Latency>,
    /// Latency since the last sample of the series (coarser: 2 significant digits).
    interval: BTreeMap<&'static str, Histogram<u64>>,
    series: series::Series,
    errors: BTreeMap<(&'static str, &'static str), ErrorGroup>,
    phases: Vec<PhaseTime>,
    timeline: Timeline,
    notebooks: BTreeMap<String, notebooks::NotebookStats>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            started: Instant::now(),
            outcomes: BTreeMap::new(),
            latency: BTreeMap::new(),
            interval: BTreeMap::new(),
            series: series::Series::default(),
            errors: BTreeMap::new(),
            phases: Vec::new(),
            timeline: Timeline::default(),
            notebooks: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// Makes `action` appear in the report even if nothing happens.
    pub fn expect(&mut self, action: &'static str) {
        self.outcomes.entry(action).or_default();
    }

    pub fn success(&mut self, action: &'static str, latency: Option<Duration>) {
        self.outcomes.entry(action).or_default().success += 1;
        let at = self.started.elapsed().as_secs();
        self.timeline.add(action, at, true, 1);
        if let Some(d) = latency {
            self.latency(action, d);
        }
    }

    /// The interval's percentiles per action, starting the next interval.
    pub fn take_interval(&mut self) -> BTreeMap<String, series::Percentiles> {
        let mut out = BTreeMap::new();
        for (action, h) in self.interval.iter_mut().filter(|(_, h)| !h.is_empty()) {
            let q = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
            out.insert(
                action.to_string(),
                series::Percentiles {
                    count: h.len(),
                    p50_s: q(0.50),
                    p95_s: q(0.95),
                    p99_s: q(0.99),
                },
            );
            h.reset();
        }
        out
    }

    pub fn push_sample(&mut self, sample: series::Sample) {
        self.series.push(sample);
    }

    /// Sets how often the series is sampled (before the first sample).
    pub fn series_step(&mut self, step: Duration) {
        self.series = series::Series::new(step.as_secs_f64());
    }

    /// Keeps `message` under its (action, reason), unless the group has its share.
    pub fn error_message(
        &mut self,
        action: &'static str,
        reason: &'static str,
        user: &str,
        message: &str,
    ) {
        let group = self
            .errors
            .entry((action, reason))
            .or_insert_with(|| ErrorGroup {
                action: action.to_string(),
                reason: reason.to_string(),
                ..ErrorGroup::default()
            });
        group.count += 1;
        let text = if user.is_empty() {
            message.to_string()
        } else {
            message.replace(user, "USER")
        };
        let text = crate::hub::cut(&crate::hub::redact(&text), MESSAGE_MAX).into_owned();
        if let Some(m) = group.messages.iter_mut().find(|(m, _)| *m == text) {
            m.1 += 1;
        } else if group.messages.len() < MESSAGES_PER_GROUP {
            group.messages.push((text, 1));
        } else {
            group.other_messages += 1;
        }
    }

    pub fn failure(&mut self, action: &'static str, reason: &str) {
        let at = self.started.elapsed().as_secs();
        self.timeline.add(action, at, false, 1);
        *self
            .outcomes
            .entry(action)
            .or_default()
            .failures
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// A latency of an action whether or not it succeeded (e.g. activity posts).
    pub fn latency(&mut self, action: &'static str, d: Duration) {
        self.latency.entry(action).or_default().record(d);
        let us = (d.as_micros() as u64).clamp(0, HDR_MAX_US);
        if let Some(h) = self.interval.get_mut(action) {
            h.saturating_record(us);
        } else if let Ok(mut h) = Histogram::new_with_bounds(1, HDR_MAX_US, 2) {
            h.saturating_record(us);
            self.interval.insert(action, h);
        }
    }

    /// Makes notebook `name` appear in the report even if it never runs.
    pub fn expect_notebook(&mut self, name: &str) {
        self.notebooks.entry(name.to_string()).or_default();
    }

    /// A cell of notebook `name` ran in `took` (`ok`) or failed.
    pub fn notebook_cell(
        &mut self,
        name: &str,
        position: usize,
        id: Option<&str>,
        took: Duration,
        ok: bool,
    ) {
        self.notebook(name).cell(position, id, took, ok);
    }

    /// A run of notebook `name` ended: every cell ran (None) or it failed for `reason`.
    pub fn notebook_run(&mut self, name: &str, failure: Option<&str>) {
        self.notebook(name).run(failure);
    }

    fn notebook(&mut self, name: &str) -> &mut notebooks::NotebookStats {
        self.notebooks.entry(name.to_string()).or_default()
    }

    pub fn phase(&mut self, name: &str, took: Duration) {
        self.phases.push(PhaseTime {
            name: name.to_string(),
            seconds: took.as_secs_f64(),
        });
    }

    pub fn tally(&self, action: &str) -> Tally {
        self.outcomes.get(action).cloned().unwrap_or_default()
    }

    pub fn any_failure(&self) -> bool {
        self.outcomes.values().any(|t| t.failed() > 0)
    }

    /// The report, with request counts from the client's tally.
    pub fn report(&self, meta: ReportMeta, requests: &RequestTally) -> RunReport {
        let mut by_op = BTreeMap::new();
        for op in Operation::ALL {
            let total = requests.requests(op);
            if total == 0 {
                continue;
            }
            let failures = FailureReason::ALL
                .iter()
                .filter_map(|r| {
                    let n = requests.failures(op, *r);
                    (n > 0).then(|| (r.as_str().to_string(), n))
                })
                .collect();
            by_op.insert(
                op.as_str().to_string(),
                RequestCounts {
                    total,
                    retries: requests.retries(op),
                    failures,
                    latency_s: requests.latency(op),
                },
            );
        }
        RunReport {
            schema: REPORT_SCHEMA.to_string(),
            hubsoak_version: env!("CARGO_PKG_VERSION").to_string(),
            command: meta.command,
            endpoint: meta.endpoint,
            hub_version: meta.hub_version,
            prefix: meta.prefix,
            dry_run: meta.dry_run,
            started_at: meta.started_at,
            finished_at: Utc::now(),
            parameters: meta.parameters,
            outcomes: self
                .outcomes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            requests: by_op,
            latency: self
                .latency
                .iter()
                .map(|(k, v)| (k.to_string(), v.summary()))
                .collect(),
            phases: self.phases.clone(),
            timeline: self.timeline.clone(),
            unable: None,
            failed: self.any_failure(),
            thresholds: Vec::new(),
            cycles: Vec::new(),
            series: self.series.clone(),
            errors: self.errors.values().cloned().collect(),
            notebooks: self
                .notebooks
                .iter()
                .map(|(name, stats)| stats.summary(name))
                .collect(),
        }
    }
}

/// A plain `ReportMeta` for unit tests.
/// What a threshold's value and limit measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Seconds,
    /// A share, 0 to 1.
    Ratio,
    /// A relative change in percent (`report diff`).
    Percent,
    #[default]
    Count,
}

impl Unit {
    /// `v` as people read it: `2.01s`, `1.50%`, `+12.0%`, `42`.
    pub fn show(self, v: f64) -> String {
        match self {
            Unit::Seconds => fmt_secs(v),
            Unit::Ratio => format!("{:.2}%", v * 100.0),
            Unit::Percent => format!("{v:+.1}%"),
            Unit::Count => trim(v),
        }
    }
}

/// How a threshold fared; part of the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub threshold: String,
    /// `None`: the report has no data for the metric.
    pub value: Option<f64>,
    pub passed: bool,
    /// The limit, in `unit`s.
    #[serde(default)]
    pub limit: Option<f64>,
    #[serde(default)]
    pub unit: Unit,
}

impl fmt::Display for ThresholdResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "ok" } else { "MISSED" };
        match self.value {
            Some(v) => write!(
                f,
                "{} {verdict} (value {})",
                self.threshold,
                self.unit.show(v)
            ),
            None => write!(f, "{} {verdict} (no data)", self.threshold),
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
#[test]
fn a_zero_duration_is_recorded_as_zero() {
    // A spawn phase that did not happen (no image pull) takes no time, not 1 µs.
    let mut l = Latency::default();
    l.record(Duration::ZERO);
    l.record(Duration::ZERO);
    assert_eq!(l.count(), 2);
    assert_eq!(fmt_secs(l.quantile(0.99).as_secs_f64()), "0s");
}

#[cfg(test)]
#[test]
fn latencies_print_to_the_microsecond() {
    assert_eq!(fmt_secs(0.000_85), "850µs");
    assert_eq!(fmt_secs(0.004_2), "4.2ms");
    assert_eq!(fmt_secs(0.012), "12ms");
    assert_eq!(fmt_secs(2.014), "2.01s");
    assert_eq!(fmt_secs(0.0), "0s");
}

#[cfg(test)]
pub(crate) fn test_meta(command: &str, endpoint: &str) -> ReportMeta {
    ReportMeta {
        command: command.into(),
        endpoint: endpoint.into(),
        hub_version: None,
        prefix: "hubsoak".into(),
        dry_run: false,
        started_at: Utc::now(),
        parameters: serde_json::json!({}),
    }
}

/// What a report says about the run besides its results.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub command: String,
    pub endpoint: String,
    pub hub_version: Option<String>,
    pub prefix: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub parameters: serde_json::Value,
}

/// `reason=n reason=n`.
fn by_reason(failures: &BTreeMap<String, u64>) -> String {
    failures
        .iter()
        .map(|(r, n)| format!("{r}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A latency for people, to the precision its size deserves: `850µs`, `4.2ms`, `12ms`,
/// `2.01s` (never a sub-millisecond time as `0ms`).
pub(crate) fn fmt_secs(s: f64) -> String {
    if s == 0.0 {
        "0s".to_string()
    } else if s < 0.001 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 0.01 {
        format!("{:.1}ms", s * 1000.0)
    } else if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else {
        format!("{s:.2}s")
    }
}

impl RunReport {
    /// Writes the report as JSON to `path`.
    pub fn write_json(&self, path: &std::path::Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        std::fs::write(path, json)?;
        tracing::info!(path = %path.display(), "report written");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_the_report() {
        let mut l = Latency::default();
        for ms in 1..=1000 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_s - 0.5).abs() < 0.001, "{}", s.p50_s);
        let back = Latency::from_summary(&s).unwrap();
        assert_eq!(back.count(), 1000);
        assert_eq!(back.quantile(0.99), l.quantile(0.99));
    }

    #[test]
    fn empty_histogram_summarizes_to_zero() {
        let s = Latency::default().summary();
        assert_eq!((s.count, s.max_s, s.min_s), (0, 0.0, 0.0));
    }

    #[test]
    fn the_timeline_stays_bounded_and_keeps_every_count() {
        let mut t = Timeline::default();
        for s in 0..10_000u64 {
            t.add("spawn", s, s % 10 != 0, 1);
        }
        let series = &t.series["spawn"];
        assert!(series.len() <= TIMELINE_MAX_BUCKETS, "{}", series.len());
        assert_eq!(t.step_s, 8);
        let ok: u64 = series.iter().map(|b| b[0]).sum();
        let failed: u64 = series.iter().map(|b| b[1]).sum();
        assert_eq!((ok, failed), (9_000, 1_000));
    }
}
