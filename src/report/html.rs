//! `report html`: one run report as a self-contained page — no script, style sheet, font
//! or image from anywhere else — with the outcomes, the latency distributions (a
//! percentile curve per action, from its HDR histogram) and the timeline of completions,
//! drawn as inline SVG. A few lines of inline script only mark, on `<body>`, how many
//! charts the browser laid out (`data-charts-drawn`), for the tests and for anyone
//! checking a page in a browser.

use std::fmt::Write as _;

use super::{fmt_secs, Latency, RunReport};

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const MARGIN: (f64, f64, f64, f64) = (60.0, 20.0, 20.0, 40.0); // left, right, top, bottom

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// A line chart; `x_ticks` are (position, label) in data units.
fn chart(
    id: &str,
    title: &str,
    y_unit: &str,
    series: &[Series],
    x_ticks: &[(f64, String)],
) -> String {
    let (l, r, t, b) = MARGIN;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
    let y1 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y1 = if y1 > 0.0 { y1 * 1.05 } else { 1.0 };
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (WIDTH - l - r);
    let py = |y: f64| HEIGHT - b - y / y1 * (HEIGHT - t - b);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {}" width="{WIDTH}" height="{}" role="img" aria-label="{}">"#,
        esc(title),
        HEIGHT + 24.0 * series.len().div_ceil(4) as f64,
        HEIGHT + 24.0 * series.len().div_ceil(4) as f64,
        esc(title)
    );
    // Axes, grid and labels.
    let _ = write!(
        svg,
        r##"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="#333"/>"##,
        HEIGHT - b,
        WIDTH - r,
        HEIGHT - b,
        HEIGHT - b
    );
    for i in 0..=4 {
        let y = y1 * i as f64 / 4.0;
        let label = if y_unit == "s" {
            fmt_secs(y)
        } else {
            format!("{y:.0}")
        };
        let _ = write!(
            svg,
            r##"<line x1="{l}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end" font-size="11">{label}</text>"##,
            WIDTH - r,
            l - 6.0,
            py(y) + 4.0,
            py = py(y)
        );
    }
    for (x, label) in x_ticks {
        if *x < x0 || *x > x1 {
            continue;
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
            px(*x),
            HEIGHT - b + 16.0,
            esc(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{} points="{}"><title>{}</title></polyline>"#,
            if s.dashed {
                r#" stroke-dasharray="5,4""#
            } else {
                ""
            },
            points.join(" "),
            esc(&s.name)
        );
        let (lx, ly) = (
            l + (i % 4) as f64 * 170.0,
            HEIGHT + 14.0 + (i / 4) as f64 * 24.0,
        );
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}" font-size="12">{}</text>"#,
            ly - 4.0,
            lx + 18.0,
            ly + 1.0,
            esc(&s.name)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Percentiles drawn on the latency chart, as HDR plots do: denser toward the tail.
const QUANTILES: [f64; 14] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1.0,
];

/// x position of a quantile: -log10(1 - q), so 90 % → 1, 99 % → 2, 99.9 % → 3.
fn qx(q: f64) -> f64 {
    -(1.0 - q).max(1e-5).log10()
}

fn latency_chart(report: &RunReport) -> Option<String> {
    let series: Vec<Series> = report
        .latency
        .iter()
        .filter(|(_, s)| s.count > 0)
        .filter_map(|(action, s)| {
            let l = Latency::from_summary(s)?;
            Some(Series {
                name: format!("{action} ({})", s.count),
                points: QUANTILES
                    .iter()
                    .map(|q| (qx(*q), l.quantile(*q).as_secs_f64()))
                    .collect(),
                dashed: false,
            })
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let ticks = [
        (0.0, "0%"),
        (qx(0.9), "90%"),
        (qx(0.99), "99%"),
        (qx(0.999), "99.9%"),
        (qx(0.9999), "99.99%"),
    ]
    .map(|(x, l)| (x, l.to_string()));
    Some(chart(
        "latency-chart",
        "Latency by percentile",
        "s",
        &series,
        &ticks,
    ))
}

fn timeline_chart(report: &RunReport) -> Option<String> {
    let step = report.timeline.step_s.max(1) as f64;
    // Every series spans the whole run (a short run has a single bucket, and a line of
    // one point is invisible): zero-padded to the longest, plus the closing edge.
    let buckets_n = report
        .timeline
        .series
        .values()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        + 1;
    let mut series = Vec::new();
    for (action, buckets) in &report.timeline.series {
        for (failed, suffix) in [(false, ""), (true, " failed")] {
            let points: Vec<(f64, f64)> = (0..buckets_n)
                .map(|i| {
                    let n = buckets.get(i).map_or(0, |b| b[usize::from(failed)]);
                    (i as f64 * step, n as f64)
                })
                .collect();
            if failed && points.iter().all(|p| p.1 == 0.0) {
                continue;
            }
            series.push(Series {
                name: format!("{action}{suffix}"),
                points,
                dashed: failed,
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let end = series
        .iter()
        .flat_map(|s| s.points.last().map(|p| p.0))
        .fold(0.0f64, f64::max);
    let ticks: Vec<(f64, String)> = (0..=5)
        .map(|i| {
            let x = end * i as f64 / 5.0;
            (x, format!("{x:.0}s"))
        })
        .collect();
    Some(chart(
        "timeline-chart",
        &format!("Completions per {step:.0} s, from the start"),
        "",
        &series,
        &ticks,
    ))
}

/// `stress-test --cycles`: spawn latency against the round's size, FunkLoad's view of
/// how the hub copes as concurrency rises.
fn cycles_chart(report: &RunReport) -> Option<String> {
    if report.cycles.is_empty() {
        return None;
    }
    let mut series: Vec<Series> = [("p50", 0.5), ("p95", 0.95), ("max", 1.0)]
        .iter()
        .map(|(name, _)| Series {
            name: format!("spawn {name}"),
            points: Vec::new(),
            dashed: *name == "max",
        })
        .collect();
    let mut ticks = Vec::new();
    for round in &report.cycles {
        let users = round.parameters["count"].as_f64().unwrap_or(0.0);
        ticks.push((users, format!("{users:.0} users")));
        let Some(l) = round
            .latency
            .get("spawn")
            .filter(|s| s.count > 0)
            .and_then(Latency::from_summary)
        else {
            continue;
        };
        for (s, q) in series.iter_mut().zip([0.5, 0.95, 1.0]) {
            s.points.push((users, l.quantile(q).as_secs_f64()));
        }
    }
    if series[0].points.len() < 2 {
        return None;
    }
    Some(chart(
        "cycles-chart",
        "Spawn latency by cycle size",
        "s",
        &series,
        &ticks,
    ))
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>hubsoak {}</h1><p>against {} (JupyterHub {}), prefix {}{}<br>{} to {}</p>",
        esc(&report.command),
        esc(&report.endpoint),
        esc(report.hub_version.as_deref().unwrap_or("unknown")),
        esc(&report.prefix),
        if report.dry_run { ", dry run" } else { "" },
        report.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    let verdict = if report.thresholds.iter().any(|t| !t.passed) {
        ("bad", "THRESHOLDS MISSED")
    } else if report.failed && report.thresholds.is_empty() {
        ("bad", "FAILURES")
    } else {
        ("good", "ok")
    };
    let _ = write!(
        body,
        r#"<p class="{}">result: {}</p>"#,
        verdict.0, verdict.1
    );
    body.push_str("<h2>Outcomes</h2><table><tr><th>action</th><th>ok</th><th>failed</th><th>failures by reason</th></tr>");
    for (action, t) in &report.outcomes {
        let reasons: Vec<String> = t.failures.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(action),
            t.success,
            t.failed(),
            esc(&reasons.join(" "))
        );
    }
    body.push_str("</table>");
    if !report.latency.is_empty() {
        body.push_str("<h2>Latency</h2><table><tr><th>action</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
        for (action, l) in &report.latency {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(action),
                l.count,
                fmt_secs(l.p50_s),
                fmt_secs(l.p90_s),
                fmt_secs(l.p99_s),
                fmt_secs(l.max_s)
            );
        }
        body.push_str("</table>");
    }
    let charts: Vec<String> = [
        latency_chart(report),
        timeline_chart(report),
        cycles_chart(report),
    ]
    .into_iter()
    .flatten()
    .collect();
    for c in &charts {
        body.push_str(c);
    }
    if !report.thresholds.is_empty() {
        body.push_str("<h2>Thresholds</h2><ul>");
        for t in &report.thresholds {
            let _ = write!(body, "<li>{}</li>", esc(&t.to_string()));
        }
        body.push_str("</ul>");
    }
    if !report.phases.is_empty() {
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|p| format!("{} {}", p.name, fmt_secs(p.seconds)))
            .collect();
        let _ = write!(body, "<p>phases: {}</p>", esc(&phases.join(", ")));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hubsoak {command} report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ margin: 1.5em 0; }} figcaption {{ font-weight: bold; margin-bottom: 0.5em; }}
.good {{ color: #2ca02c; font-weight: bold; }} .bad {{ color: #d62728; font-weight: bold; }}
</style></head>
<body data-charts="{count}">
{body}
<script>
// Counts the charts the browser laid out with something drawn in them.
var drawn = 0;
document.querySelectorAll("svg.chart").forEach(function (svg) {{
  var lines = svg.querySelectorAll("polyline");
  var ok = lines.length > 0;
  lines.forEach(function (p) {{ var b = p.getBBox(); if (!(b.width > 0)) ok = false; }});
  if (ok) drawn += 1;
}});
document.body.setAttribute("data-charts-drawn", String(drawn));
</script>
</body></html>
"#,
        command = esc(&report.command),
        count = charts.len(),
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
        let report = r.report(
            test_meta("stress-test", "http://h/<hub>/api/"),
            &RequestTally::default(),
        );
        let page = render(&report);
        assert!(page.contains(r#"data-charts="2""#));
        assert!(page.contains("http://h/&lt;hub&gt;/api/"));
        for external in ["src=", "href=", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
