//! `report merge`: one report from the reports of runs that ran side by side (replicas
//! of a sharded run, or benchmaster's load nodes). Counts add up; latency histograms
//! merge exactly (HDR), so percentiles are those of the combined samples; phases keep
//! the longest replica's time; timelines line up on wall-clock time.

use std::collections::BTreeMap;

use super::{Latency, RequestCounts, RunReport, Tally, Timeline, REPORT_SCHEMA};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("report {index} has schema {found:?}, not {REPORT_SCHEMA}")]
    Schema { index: usize, found: String },
    #[error(
        "report {index} is of `{found}`, the first of `{first}`: only runs of one command merge"
    )]
    Command {
        index: usize,
        found: String,
        first: String,
    },
    #[error("report {index}: the {action} histogram cannot be read")]
    Histogram { index: usize, action: String },
}

/// The distinct values, joined: one value if all agree.
fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// Merges `reports` (numbered from 1 in errors, in the order given).
pub fn merge(reports: &[RunReport]) -> Result<RunReport, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    for (i, r) in reports.iter().enumerate() {
        if r.schema != REPORT_SCHEMA {
            return Err(MergeError::Schema {
                index: i + 1,
                found: r.schema.clone(),
            });
        }
        if r.command != first.command {
            return Err(MergeError::Command {
                index: i + 1,
                found: r.command.clone(),
                first: first.command.clone(),
            });
        }
    }
    let started_at = reports
        .iter()
        .map(|r| r.started_at)
        .min()
        .unwrap_or(first.started_at);
    let finished_at = reports
        .iter()
        .map(|r| r.finished_at)
        .max()
        .unwrap_or(first.finished_at);

    let mut outcomes: BTreeMap<String, Tally> = BTreeMap::new();
    let mut requests: BTreeMap<String, RequestCounts> = BTreeMap::new();
    let mut latency: BTreeMap<String, Latency> = BTreeMap::new();
    let mut phases: Vec<super::PhaseTime> = Vec::new();
    let mut timeline = Timeline::default();
    for (i, r) in reports.iter().enumerate() {
        for (action, t) in &r.outcomes {
            let sum = outcomes.entry(action.clone()).or_default();
            sum.success += t.success;
            for (reason, n) in &t.failures {
                *sum.failures.entry(reason.clone()).or_default() += n;
            }
        }
        for (op, c) in &r.requests {
            let sum = requests.entry(op.clone()).or_default();
            sum.total += c.total;
            sum.retries += c.retries;
            for (reason, n) in &c.failures {
                *sum.failures.entry(reason.clone()).or_default() += n;
            }
        }
        for (action, s) in &r.latency {
            let hist = Latency::from_summary(s).ok_or_else(|| MergeError::Histogram {
                index: i + 1,
                action: action.clone(),
            })?;
            latency.entry(action.clone()).or_default().add(&hist);
        }
        // Replicas run their phases side by side: the phase took the longest one's time.
        for p in &r.phases {
            match phases.iter_mut().find(|q| q.name == p.name) {
                Some(q) => q.seconds = q.seconds.max(p.seconds),
                None => phases.push(p.clone()),
            }
        }
        let offset = (r.started_at - started_at).num_seconds().max(0) as u64;
        timeline.absorb(&r.timeline, offset);
    }
    let failed = outcomes.values().any(|t| t.failed() > 0);
    let parts: Vec<(f64, &super::series::Series)> = reports
        .iter()
        .map(|r| {
            let offset = (r.started_at - started_at).num_milliseconds().max(0) as f64 / 1e3;
            (offset, &r.series)
        })
        .collect();
    let series = super::series::combine(&parts);
    let mut notebooks: Vec<super::notebooks::NotebookSummary> = Vec::new();
    for (i, n) in reports
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.notebooks.iter().map(move |n| (i, n)))
    {
        match notebooks.iter_mut().find(|m| m.name == n.name) {
            None => notebooks.push(n.clone()),
            Some(m) => m.absorb(n).ok_or_else(|| MergeError::Histogram {
                index: i + 1,
                action: format!("notebook {}", n.name),
            })?,
        }
    }
    notebooks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut errors: Vec<super::ErrorGroup> = Vec::new();
    for g in reports.iter().flat_map(|r| &r.errors) {
        match errors
            .iter_mut()
            .find(|e| e.action == g.action && e.reason == g.reason)
        {
            None => errors.push(g.clone()),
            Some(e) => {
                e.count += g.count;
                e.other_messages += g.other_messages;
                for (m, n) in &g.messages {
                    if let Some(mine) = e.messages.iter_mut().find(|(x, _)| x == m) {
                        mine.1 += n;
                    } else if e.messages.len() < super::MESSAGES_PER_GROUP {
                        e.messages.push((m.clone(), *n));
                    } else {
                        e.other_messages += n;
                    }
                }
            }
        }
    }
    Ok(RunReport {
        schema: REPORT_SCHEMA.to_string(),
        hubsoak_version: joined(reports.iter().map(|r| r.hubsoak_version.as_str())),
        command: first.command.clone(),
        endpoint: joined(reports.iter().map(|r| r.endpoint.as_str())),
        hub_version: {
            let v = joined(reports.iter().filter_map(|r| r.hub_version.as_deref()));
            (!v.is_empty()).then_some(v)
        },
        prefix: joined(reports.iter().map(|r| r.prefix.as_str())),
        dry_run: reports.iter().any(|r| r.dry_run),
        started_at,
        finished_at,
        parameters: serde_json::json!({
            "merged_reports": reports.len(),
            "runs": reports.iter().map(|r| r.parameters.clone()).collect::<Vec<_>>(),
        }),
        outcomes,
        requests,
        latency: latency
            .iter()
            .map(|(k, v)| (k.clone(), v.summary()))
            .collect(),
        phases,
        timeline,
        unable: reports.iter().find_map(|r| r.unable.clone()),
        failed,
        // Thresholds were each run's own gate; check the merged one with `report diff`
        // or a new run.
        thresholds: Vec::new(),
        cycles: Vec::new(),
        series,
        errors,
        notebooks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RequestTally;
    use crate::report::{test_meta, Recorder, ReportMeta};
    use std::time::Duration;

    fn meta(command: &str) -> ReportMeta {
        test_meta(command, "http://h/hub/api/")
    }

    /// Samples 1..=n ms (times `scale`) as spawns, every 7th failing as a stop.
    fn record(r: &mut Recorder, range: std::ops::RangeInclusive<u64>, scale: u64) {
        for ms in range {
            r.success("spawn", Some(Duration::from_millis(ms * scale)));
            if ms % 7 == 0 {
                r.failure("stop", "timeout");
            }
        }
    }

    #[test]
    fn merging_two_reports_equals_the_report_of_the_combined_run() {
        let (mut a, mut b, mut both) = (
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        );
        record(&mut a, 1..=500, 1);
        record(&mut b, 1..=300, 13);
        record(&mut both, 1..=500, 1);
        record(&mut both, 1..=300, 13);
        let tally = RequestTally::default();
        let ra = a.report(meta("stress-test"), &tally);
        let rb = b.report(meta("stress-test"), &tally);
        let rall = both.report(meta("stress-test"), &tally);
        let merged = merge(&[ra, rb]).unwrap();
        assert_eq!(merged.outcomes, rall.outcomes, "counts exact");
        let (m, c) = (&merged.latency["spawn"], &rall.latency["spawn"]);
        assert_eq!(m.count, 800);
        // HDR merging is exact: the same percentiles as the combined samples.
        assert_eq!(
            (m.p50_s, m.p90_s, m.p99_s, m.max_s),
            (c.p50_s, c.p90_s, c.p99_s, c.max_s)
        );
        assert!(merged.failed);
        let spawns: u64 = merged.timeline.series["spawn"].iter().map(|b| b[0]).sum();
        assert_eq!(spawns, 800);
    }

    #[test]
    fn only_reports_of_one_command_merge() {
        let tally = RequestTally::default();
        let a = Recorder::default().report(meta("stress-test"), &tally);
        let b = Recorder::default().report(meta("simulate"), &tally);
        assert!(matches!(
            merge(&[a, b]),
            Err(MergeError::Command { index: 2, .. })
        ));
        assert_eq!(merge(&[]), Err(MergeError::Empty));
    }
}
