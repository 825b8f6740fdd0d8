//! `report html`: one run report as a self-contained page — no script, style sheet, font
//! or image from anywhere else — that answers "how did the hub do, and was it the hub?"
//! at a glance: a header (command, parameters, versions, times, verdict), the thresholds
//! with their values and limits, the notebooks (runs, cell p50/p95, slowest cells), the
//! request table per API operation, the charts of charts.rs, and the errors grouped by
//! reason.

use std::fmt::Write as _;

use super::charts::{
    completions_chart, cycles_chart, esc, latency_over_time, percentile_chart, requests_over_time,
    servers_over_time, usage_charts,
};
use super::{fmt_secs, Latency, RunReport};

fn header(report: &RunReport, body: &mut String) {
    let verdict = if let Some(why) = &report.unable {
        ("bad", format!("COULD NOT WORK ({why})"))
    } else if report.thresholds.iter().any(|t| !t.passed) {
        ("bad", "THRESHOLDS MISSED".to_string())
    } else if report.failed && report.thresholds.is_empty() {
        ("bad", "FAILURES".to_string())
    } else {
        ("good", "ok".to_string())
    };
    let duration = (report.finished_at - report.started_at)
        .to_std()
        .unwrap_or_default();
    let _ = write!(
        body,
        r#"<header id="summary"><h1>hubsoak {command}</h1><p class="verdict {cls}">{verdict}</p><table class="facts">"#,
        command = esc(&report.command),
        cls = verdict.0,
        verdict = esc(&verdict.1),
    );
    let facts = [
        ("hub", esc(&report.endpoint)),
        (
            "JupyterHub",
            esc(report.hub_version.as_deref().unwrap_or("unknown")),
        ),
        ("hubsoak", esc(&report.hubsoak_version)),
        (
            "users",
            format!(
                "{}-…{}",
                esc(&report.prefix),
                if report.dry_run { " (dry run)" } else { "" }
            ),
        ),
        (
            "started",
            report
                .started_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
        (
            "ended",
            report
                .finished_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
        (
            "took",
            humantime::format_duration(std::time::Duration::from_secs(duration.as_secs()))
                .to_string(),
        ),
    ];
    for (k, v) in facts {
        let _ = write!(body, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    body.push_str("</table>");
    let params = flatten_params(&report.parameters);
    if !params.is_empty() {
        body.push_str(r#"<table class="facts" id="parameters"><caption>parameters</caption>"#);
        for (k, v) in params {
            let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&v));
        }
        body.push_str("</table>");
    }
    body.push_str("</header>");
}

/// A run's parameters as `key = value` rows (nested keys dotted, long lists cut).
fn flatten_params(v: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: String, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(key, v, out);
                }
            }
            other => {
                let text = other.to_string();
                let text = crate::hub::cut(&text, 120).into_owned();
                out.push((prefix, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(String::new(), v, &mut out);
    out.truncate(60);
    out
}

fn thresholds(report: &RunReport, body: &mut String) {
    if report.thresholds.is_empty() {
        return;
    }
    body.push_str(r#"<section id="thresholds"><h2>Thresholds</h2><table><tr><th>threshold</th><th>observed</th><th>limit</th><th>result</th></tr>"#);
    for t in &report.thresholds {
        let observed = t.value.map_or("no data".to_string(), |v| t.unit.show(v));
        let limit = t.limit.map_or("-".to_string(), |v| t.unit.show(v));
        let (cls, verdict) = if t.passed {
            ("good", "pass")
        } else {
            ("bad", "FAIL")
        };
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="{cls}">{verdict}</td></tr>"#,
            esc(&t.threshold),
            esc(&observed),
            esc(&limit),
        );
    }
    body.push_str("</table></section>");
}

fn outcomes(report: &RunReport, body: &mut String) {
    body.push_str(r#"<section id="outcomes"><h2>Actions</h2><table><tr><th>action</th><th>ok</th><th>failed</th><th>failures by reason</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>"#);
    // Actions with outcomes, and those with latency only (the spawn phases).
    let mut actions: Vec<&String> = report
        .outcomes
        .keys()
        .chain(report.latency.keys())
        .collect();
    actions.sort();
    actions.dedup();
    for action in actions {
        let tally = report.outcomes.get(action);
        let count =
            |f: fn(&super::Tally) -> u64| tally.map_or("-".to_string(), |t| f(t).to_string());
        let t = tally.cloned().unwrap_or_default();
        let reasons: Vec<String> = t.failures.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let latency = report.latency.get(action).filter(|l| l.count > 0);
        let q = |v: Option<f64>| v.map_or("-".to_string(), fmt_secs);
        let hist = latency.and_then(Latency::from_summary);
        let p95 = hist.as_ref().map(|l| l.quantile(0.95).as_secs_f64());
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(action),
            count(|t| t.success),
            count(super::Tally::failed),
            esc(&reasons.join(" ")),
            latency.map_or(0, |l| l.count),
            q(latency.map(|l| l.p50_s)),
            q(p95),
            q(latency.map(|l| l.p99_s)),
            q(latency.map(|l| l.max_s)),
        );
    }
    body.push_str("</table></section>");
}

fn notebooks(report: &RunReport, body: &mut String) {
    if report.notebooks.is_empty() {
        return;
    }
    body.push_str(r#"<section id="notebooks"><h2>Notebooks</h2><table><tr><th>notebook</th><th>runs ok</th><th>failed</th><th>failures by reason</th><th>cells run</th><th>cell p50</th><th>cell p95</th><th>slowest cells (mean, max)</th></tr>"#);
    for n in &report.notebooks {
        let ran = n.cells.count > 0;
        let q = |v: f64| if ran { fmt_secs(v) } else { "-".into() };
        let reasons: Vec<String> = n
            .runs
            .failures
            .iter()
            .map(|(r, k)| format!("{r}={k}"))
            .collect();
        let slowest: String = n
            .slowest()
            .iter()
            .map(|c| {
                format!(
                    "<li>{} {} <span class=\"n\">max {}</span></li>",
                    esc(&c.label()),
                    fmt_secs(c.mean_s()),
                    fmt_secs(c.max_s)
                )
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><ul>{slowest}</ul></td></tr>",
            esc(&n.name),
            n.runs.success,
            n.runs.failed(),
            esc(&reasons.join(" ")),
            n.cells.count,
            q(n.cells.p50_s),
            q(n.cell_p95_s),
        );
    }
    body.push_str("</table></section>");
}

fn requests(report: &RunReport, body: &mut String) {
    if report.requests.is_empty() {
        return;
    }
    body.push_str(r#"<section id="requests"><h2>API requests</h2><table><tr><th>operation</th><th>sent</th><th>retried</th><th>failed</th><th>failures by reason</th><th>throttled</th><th>p50</th><th>p95</th><th>p99</th></tr>"#);
    for (op, r) in &report.requests {
        let failed: u64 = r.failures.values().sum();
        let reasons: Vec<String> = r.failures.iter().map(|(k, n)| format!("{k}={n}")).collect();
        let q = |i: usize| r.latency_s.map_or("-".to_string(), |l| fmt_secs(l[i]));
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{failed}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(op),
            r.total,
            r.retries,
            esc(&reasons.join(" ")),
            r.failures.get("throttled").copied().unwrap_or(0),
            q(0),
            q(1),
            q(2),
        );
    }
    body.push_str("</table></section>");
}

fn errors(report: &RunReport, body: &mut String) {
    if report.errors.is_empty() {
        return;
    }
    body.push_str(r#"<section id="errors"><h2>Errors by reason</h2><table><tr><th>action</th><th>reason</th><th>count</th><th>messages</th></tr>"#);
    for g in &report.errors {
        let mut messages: String = g
            .messages
            .iter()
            .map(|(m, n)| format!("<li>{} <span class=\"n\">×{n}</span></li>", esc(m)))
            .collect();
        if g.other_messages > 0 {
            let _ = write!(messages, "<li>… {} more", g.other_messages);
        }
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><ul>{messages}</ul></td></tr>",
            esc(&g.action),
            esc(&g.reason),
            g.count,
        );
    }
    body.push_str("</table></section>");
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let mut body = String::new();
    header(report, &mut body);
    thresholds(report, &mut body);
    outcomes(report, &mut body);
    notebooks(report, &mut body);
    requests(report, &mut body);
    let charts: Vec<String> = [
        latency_over_time(report),
        servers_over_time(report),
        requests_over_time(report),
        completions_chart(report),
        percentile_chart(report),
        cycles_chart(report),
    ]
    .into_iter()
    .flatten()
    .chain(usage_charts(report))
    .collect();
    if !charts.is_empty() {
        body.push_str(r#"<section id="charts"><h2>Over the run</h2>"#);
        for c in &charts {
            body.push_str(c);
        }
        body.push_str("</section>");
    }
    errors(report, &mut body);
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {}", p.name, fmt_secs(p.seconds)))
            .collect();
        let _ = write!(
            body,
            r#"<p id="phases">phases: {}</p>"#,
            esc(&phases.join(", "))
        );
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hubsoak {command} report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1600px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; vertical-align: top; }}
td:first-child, th:first-child {{ text-align: left; }}
table.facts th {{ text-align: left; background: #f6f6f6; }} table.facts td {{ text-align: left; }}
caption {{ text-align: left; font-weight: bold; }}
ul {{ margin: 0; padding-left: 1.2em; text-align: left; }} .n {{ color: #666; }}
#charts {{ display: flex; flex-wrap: wrap; gap: 1em; }} #charts h2 {{ width: 100%; }}
figure {{ margin: 0; }} figcaption {{ font-weight: bold; margin-bottom: 0.3em; }}
.verdict {{ font-size: 1.4em; }}
.good {{ color: #2ca02c; font-weight: bold; }} .bad {{ color: #d62728; font-weight: bold; }}
</style></head>
<body>
{body}
</body></html>
"#,
        command = esc(&report.command),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RequestTally;
    use crate::report::{test_meta, Recorder};
    use std::time::Duration;

    #[test]
    fn the_page_is_self_contained_and_escapes_its_text() {
        let mut r = Recorder::default();
        for ms in 1..=50 {
            r.success("spawn", Some(Duration::from_millis(ms * 10)));
        }
        r.failure("spawn", "spawn_failed");
        r.error_message("spawn", "spawn_failed", "u-1", "u-1's server <failed>");
        let report = r.report(
            test_meta("stress-test", "http://h/<hub>/api/"),
            &RequestTally::default(),
        );
        let page = render(&report);
        assert!(page.contains("http://h/&lt;hub&gt;/api/"));
        assert!(
            page.contains("USER&#39;s server &lt;failed&gt;")
                || page.contains("USER's server &lt;failed&gt;")
        );
        assert!(page.contains(r#"id="latency-by-percentile""#));
        assert!(!page.contains("<script"));
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
