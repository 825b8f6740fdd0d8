//! The report's charts, drawn with plotters' SVG backend into inline SVG: latency
//! percentiles, servers, and requests and failures over time; completions; latency by
//! percentile (each line only up to what its sample count resolves); the CPU and memory
//! of hubsoak and of the hub; spawn latency by `--cycles` size.

use plotters::prelude::*;

use super::series::Sample;
use super::{fmt_secs, Latency, RunReport};

const SIZE: (u32, u32) = (760, 300);

/// Text made safe for HTML.
pub(super) fn esc(s: &str) -> String {
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

pub(super) fn latency_over_time(report: &RunReport) -> Option<String> {
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

pub(super) fn servers_over_time(report: &RunReport) -> Option<String> {
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

pub(super) fn requests_over_time(report: &RunReport) -> Option<String> {
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

pub(super) fn usage_charts(report: &RunReport) -> Vec<String> {
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

pub(super) fn completions_chart(report: &RunReport) -> Option<String> {
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

pub(super) fn percentile_chart(report: &RunReport) -> Option<String> {
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
pub(super) fn cycles_chart(report: &RunReport) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_stops_where_the_samples_do() {
        assert_eq!(resolvable(20), 0.95);
        assert_eq!(resolvable(1000), 0.999);
        assert_eq!(percentile_label(&qx(0.99)), "99%");
        assert_eq!(percentile_label(&qx(0.999)), "99.9%");
    }
}
