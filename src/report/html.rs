//! `report html`: one run report as a self-contained page — no script, style sheet, font
//! or image from anywhere else — that answers "how did the hub do, and was it the hub?"
//! at a glance: a header (command, parameters, versions, times, verdict), the thresholds
//! with their values and limits, the request table per API operation, charts drawn with
//! plotters' SVG backend (latency percentiles, servers, requests and failures over time;
//! completions; latency by percentile up to what the sample count resolves; the CPU and
//! memory of hubsoak and of the hub), and the errors grouped by reason.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::series::Sample;
use super::{fmt_secs, Latency, RunReport};

const SIZE: (u32, u32) = (760, 300);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line of a chart.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

impl Line {
    fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Line {
        Line {
            name: name.into(),
            points,
            dashed: false,
        }
    }

    fn dashed(mut self) -> Line {
        self.dashed = true;
        self
    }
}

/// How a chart's axes read.
struct Axes<'a> {
    x: &'a str,
    y: &'a str,
    x_fmt: &'a dyn Fn(&f64) -> String,
    y_fmt: &'a dyn Fn(&f64) -> String,
    /// The x range, when not the data's (e.g. a percentile axis).
    x_range: Option<(f64, f64)>,
}

fn secs_label(v: &f64) -> String {
    fmt_secs(*v)
}

fn plain_label(v: &f64) -> String {
    if v.fract() == 0.0 || *v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn time_label(v: &f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(v.max(0.0) as u64)).to_string()
}

/// A line chart as inline SVG, in a figure with `id`; `None` when there is nothing to
/// draw (no line with two points).
fn chart(id: &str, title: &str, axes: &Axes, lines: &[Line]) -> Option<String> {
    let lines: Vec<&Line> = lines.iter().filter(|l| l.points.len() >= 2).collect();
    if lines.is_empty() {
        return None;
    }
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let (x0, x1) = axes.x_range.unwrap_or_else(|| {
        all().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        })
    });
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let y1 = all().fold(0.0f64, |m, p| m.max(p.1));
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .ok()?;
        c.configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .x_label_formatter(axes.x_fmt)
            .y_label_formatter(axes.y_fmt)
            .x_labels(6)
            .y_labels(5)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .ok()?;
        for (i, line) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let style = color.stroke_width(2);
            let points = line.points.iter().copied();
            let drawn = if line.dashed {
                c.draw_series(DashedLineSeries::new(points, 6, 4, style))
            } else {
                c.draw_series(LineSeries::new(points, style))
            };
            drawn.ok()?.label(line.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .ok()?;
        root.present().ok()?;
    }
    Some(format!(
        r#"<figure class="chart" id="{id}"><figcaption>{}</figcaption>{svg}</figure>"#,
        esc(title)
    ))
}

/// The actions drawn over time: those with the most latency samples, at most four.
fn busiest_actions(samples: &[Sample]) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in samples {
        for (a, p) in &s.latency {
            *counts.entry(a).or_default() += p.count;
        }
    }
    let mut v: Vec<(&str, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(4).map(|(a, _)| a.to_string()).collect()
}

fn latency_over_time(report: &RunReport) -> Option<String> {
    let samples = &report.series.samples;
    let mut lines = Vec::new();
    for action in busiest_actions(samples) {
        let points = |q: fn(&super::series::Percentiles) -> f64| {
            samples
                .iter()
                .filter_map(|s| s.latency.get(&action).map(|p| (s.t_s, q(p))))
                .collect::<Vec<_>>()
        };
        lines.push(Line::new(format!("{action} p50"), points(|p| p.p50_s)));
        lines.push(Line::new(format!("{action} p95"), points(|p| p.p95_s)).dashed());
    }
    chart(
        "latency-over-time",
        "Latency over time (p50, and p95 dashed), per interval",
        &Axes {
            x: "since start",
            y: "latency",
            x_fmt: &time_label,
            y_fmt: &secs_label,
            x_range: None,
        },
        &lines,
    )
}

fn from_start(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    // From the start (0) so that the first interval is drawn as a segment too.
    std::iter::once((0.0, samples.first().map_or(0.0, &f)))
        .chain(samples.iter().map(|s| (s.t_s, f(s))))
        .collect()
}

fn servers_over_time(report: &RunReport) -> Option<String> {
    let s = &report.series.samples;
    if s.iter().all(|x| x.starting + x.running + x.stopping == 0) {
        return None;
    }
    chart(
        "servers-over-time",
        "Servers over time",
        &Axes {
            x: "since start",
            y: "servers",
            x_fmt: &time_label,
            y_fmt: &plain_label,
            x_range: None,
        },
        &[
            Line::new("running", from_start(s, |x| x.running as f64)),
            Line::new("starting", from_start(s, |x| x.starting as f64)),
            Line::new("stopping", from_start(s, |x| x.stopping as f64)).dashed(),
        ],
    )
}

fn requests_over_time(report: &RunReport) -> Option<String> {
    let s = &report.series.samples;
    chart(
        "requests-over-time",
        "API requests and failures per second",
        &Axes {
            x: "since start",
            y: "per second",
            x_fmt: &time_label,
            y_fmt: &plain_label,
            x_range: None,
        },
        &[
            Line::new("requests/s", from_start(s, |x| x.requests_per_s)),
            Line::new("failures/s", from_start(s, |x| x.failures_per_s)).dashed(),
        ],
    )
}

fn usage_charts(report: &RunReport) -> Vec<String> {
    let s = &report.series.samples;
    let points = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        s.iter().filter_map(|x| f(x).map(|v| (x.t_s, v))).collect()
    };
    let cpu = chart(
        "cpu-over-time",
        "CPU: hubsoak and the hub (cores busy)",
        &Axes {
            x: "since start",
            y: "cores",
            x_fmt: &time_label,
            y_fmt: &plain_label,
            x_range: None,
        },
        &[
            Line::new("hubsoak", points(&|x| x.hubsoak.map(|u| u.cpu_cores))),
            Line::new("hub", points(&|x| x.hub.map(|u| u.cpu_cores))),
        ],
    );
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let memory = chart(
        "memory-over-time",
        "Memory: hubsoak and the hub (resident MiB)",
        &Axes {
            x: "since start",
            y: "MiB",
            x_fmt: &time_label,
            y_fmt: &plain_label,
            x_range: None,
        },
        &[
            Line::new("hubsoak", points(&|x| x.hubsoak.map(|u| mib(u.rss_bytes)))),
            Line::new("hub", points(&|x| x.hub.map(|u| mib(u.rss_bytes)))),
        ],
    );
    cpu.into_iter().chain(memory).collect()
}

fn completions_chart(report: &RunReport) -> Option<String> {
    let step = report.timeline.step_s.max(1) as f64;
    // Every series spans the whole run, zero-padded to the longest, plus the closing
    // edge (a short run has a single bucket, and a line of one point is invisible).
    let buckets_n = report.timeline.series.values().map(Vec::len).max()? + 1;
    let mut lines = Vec::new();
    for (action, buckets) in &report.timeline.series {
        for failed in [false, true] {
            let points: Vec<(f64, f64)> = (0..buckets_n)
                .map(|i| {
                    let n = buckets.get(i).map_or(0, |b| b[usize::from(failed)]);
                    (i as f64 * step, n as f64)
                })
                .collect();
            if failed && points.iter().all(|p| p.1 == 0.0) {
                continue;
            }
            let line = Line::new(
                if failed {
                    format!("{action} failed")
                } else {
                    action.clone()
                },
                points,
            );
            lines.push(if failed { line.dashed() } else { line });
        }
    }
    chart(
        "completions",
        &format!("Completions per {}", time_label(&step)),
        &Axes {
            x: "since start",
            y: "completed",
            x_fmt: &time_label,
            y_fmt: &plain_label,
            x_range: None,
        },
        &lines,
    )
}

/// Percentiles drawn, as HDR plots do: denser toward the tail.
const QUANTILES: [f64; 12] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
];

/// x position of a quantile: -log10(1 - q), so 90 % → 1, 99 % → 2, 99.9 % → 3.
fn qx(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

/// The highest percentile `count` samples resolve: with 20 samples, the 95th (one sample
/// in twenty is above it); beyond that a chart would only repeat the maximum.
fn resolvable(count: u64) -> f64 {
    if count <= 1 {
        0.5
    } else {
        1.0 - 1.0 / count as f64
    }
}

fn percentile_label(x: &f64) -> String {
    let q = 1.0 - 10f64.powf(-x);
    let pct = q * 100.0;
    if pct < 99.0 {
        format!("{pct:.0}%")
    } else {
        let s = format!("{pct:.4}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

fn percentile_chart(report: &RunReport) -> Option<String> {
    let mut top = 0.0f64;
    let lines: Vec<Line> = report
        .latency
        .iter()
        .filter(|(_, s)| s.count > 1)
        .filter_map(|(action, s)| {
            let l = Latency::from_summary(s)?;
            let limit = resolvable(s.count);
            top = top.max(qx(limit));
            let points = QUANTILES
                .iter()
                .copied()
                .filter(|q| *q <= limit)
                .chain(std::iter::once(limit))
                .map(|q| (qx(q), l.quantile(q).as_secs_f64()))
                .collect();
            Some(Line::new(format!("{action} ({})", s.count), points))
        })
        .collect();
    chart(
        "latency-by-percentile",
        "Latency by percentile (each line up to the percentile its samples resolve)",
        &Axes {
            x: "percentile",
            y: "latency",
            x_fmt: &percentile_label,
            y_fmt: &secs_label,
            x_range: Some((0.0, top.max(1.0))),
        },
        &lines,
    )
}

/// `stress-test --cycles`: spawn latency against the round's size.
fn cycles_chart(report: &RunReport) -> Option<String> {
    if report.cycles.is_empty() {
        return None;
    }
    let mut lines: Vec<Line> = ["p50", "p95", "max"]
        .iter()
        .map(|n| Line::new(format!("spawn {n}"), Vec::new()))
        .collect();
    for round in &report.cycles {
        let users = round.parameters["count"].as_f64().unwrap_or(0.0);
        let Some(l) = round
            .latency
            .get("spawn")
            .filter(|s| s.count > 0)
            .and_then(Latency::from_summary)
        else {
            continue;
        };
        for (line, q) in lines.iter_mut().zip([0.5, 0.95, 1.0]) {
            line.points.push((users, l.quantile(q).as_secs_f64()));
        }
    }
    chart(
        "cycles",
        "Spawn latency by cycle size",
        &Axes {
            x: "users in the cycle",
            y: "spawn latency",
            x_fmt: &plain_label,
            y_fmt: &secs_label,
            x_range: None,
        },
        &lines,
    )
}

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
    for (action, t) in &report.outcomes {
        let reasons: Vec<String> = t.failures.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let latency = report.latency.get(action).filter(|l| l.count > 0);
        let q = |v: Option<f64>| v.map_or("-".to_string(), fmt_secs);
        let hist = latency.and_then(Latency::from_summary);
        let p95 = hist.as_ref().map(|l| l.quantile(0.95).as_secs_f64());
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(action),
            t.success,
            t.failed(),
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

    #[test]
    fn the_percentile_axis_stops_where_the_samples_do() {
        assert_eq!(resolvable(20), 0.95);
        assert_eq!(resolvable(1000), 0.999);
        assert_eq!(percentile_label(&qx(0.99)), "99%");
        assert_eq!(percentile_label(&qx(0.999)), "99.9%");
    }
}
