//! What a run looked like over time, for the report's charts: per interval, the latency
//! percentiles of each action, servers by state, requests and failures per second, and
//! the CPU and memory of hubsoak itself and of the hub (from its `/hub/metrics`, when the
//! token may read it), so a reader tells a saturated hub from a saturated generator.
//! Bounded: past `SERIES_MAX` samples, neighbours merge and the step doubles, so a week's
//! soak takes the same room as a minute's run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most samples a report keeps.
pub const SERIES_MAX: usize = 720;

/// p50, p95 and p99 of one action in one interval, in seconds, and its sample count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_s: f64,
    pub p95_s: f64,
    pub p99_s: f64,
}

/// A process's use of the machine over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU cores busy on average (1.0: one core all the time).
    pub cpu_cores: f64,
    pub rss_bytes: f64,
}

/// One interval, ending `t_s` seconds after the run started.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency: BTreeMap<String, Percentiles>,
    /// Servers starting, running and stopping at the end of the interval.
    pub starting: u64,
    pub running: u64,
    pub stopping: u64,
    pub requests_per_s: f64,
    pub failures_per_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hubsoak: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Seconds between samples (doubles as the series is thinned).
    pub step_s: f64,
    pub samples: Vec<Sample>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            step_s: 1.0,
            samples: Vec::new(),
        }
    }
}

impl Series {
    pub fn new(step_s: f64) -> Series {
        Series {
            step_s,
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, sample: Sample) {
        self.samples.push(sample);
        if self.samples.len() > SERIES_MAX {
            self.thin();
        }
    }

    /// Merges neighbours: rates and CPU averaged, memory and p99 the larger, states as at
    /// the later one, p50 and p95 weighted by their counts (an estimate; the run's whole
    /// distribution stays exact in the report's histograms).
    fn thin(&mut self) {
        self.step_s *= 2.0;
        self.samples = self
            .samples
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => merge(a, b),
                [a] => a.clone(),
                _ => Sample::default(),
            })
            .collect();
    }
}

/// Each action's percentiles of `a` and `b` together (an estimate: p50 and p95 weighted
/// by counts, p99 the larger).
fn merge_latency(
    a: &BTreeMap<String, Percentiles>,
    b: &BTreeMap<String, Percentiles>,
) -> BTreeMap<String, Percentiles> {
    let mut latency = a.clone();
    for (action, q) in b {
        latency
            .entry(action.clone())
            .and_modify(|p| {
                let n = (p.count + q.count).max(1) as f64;
                let w = |x: f64, y: f64| (x * p.count as f64 + y * q.count as f64) / n;
                *p = Percentiles {
                    count: p.count + q.count,
                    p50_s: w(p.p50_s, q.p50_s),
                    p95_s: w(p.p95_s, q.p95_s),
                    p99_s: p.p99_s.max(q.p99_s),
                };
            })
            .or_insert(*q);
    }
    latency
}

/// The series of runs that ran side by side (replicas) or one after another (cycles),
/// each `offset_s` after the first began, on one time axis: within a step, rates,
/// servers and hubsoak's usage add up (each replica is a process of its own), the hub's
/// usage is the larger reading (it is one hub), latency merges.
pub fn combine(parts: &[(f64, &Series)]) -> Series {
    let step = parts.iter().map(|(_, s)| s.step_s).fold(1.0, f64::max);
    let mut buckets: BTreeMap<u64, Sample> = BTreeMap::new();
    for (offset, series) in parts {
        for x in &series.samples {
            let k = ((offset + x.t_s) / step).ceil() as u64;
            let into = buckets.entry(k).or_insert_with(|| Sample {
                t_s: k as f64 * step,
                ..Sample::default()
            });
            into.latency = merge_latency(&into.latency, &x.latency);
            into.starting += x.starting;
            into.running += x.running;
            into.stopping += x.stopping;
            into.requests_per_s += x.requests_per_s;
            into.failures_per_s += x.failures_per_s;
            into.hubsoak = match (into.hubsoak, x.hubsoak) {
                (Some(a), Some(b)) => Some(Usage {
                    cpu_cores: a.cpu_cores + b.cpu_cores,
                    rss_bytes: a.rss_bytes + b.rss_bytes,
                }),
                (a, b) => a.or(b),
            };
            into.hub = match (into.hub, x.hub) {
                (Some(a), Some(b)) => Some(Usage {
                    cpu_cores: a.cpu_cores.max(b.cpu_cores),
                    rss_bytes: a.rss_bytes.max(b.rss_bytes),
                }),
                (a, b) => a.or(b),
            };
        }
    }
    let mut out = Series::new(step);
    for (_, sample) in buckets {
        out.push(sample);
    }
    out
}

fn merge(a: &Sample, b: &Sample) -> Sample {
    let latency = merge_latency(&a.latency, &b.latency);
    let usage = |x: Option<Usage>, y: Option<Usage>| match (x, y) {
        (Some(x), Some(y)) => Some(Usage {
            cpu_cores: (x.cpu_cores + y.cpu_cores) / 2.0,
            rss_bytes: x.rss_bytes.max(y.rss_bytes),
        }),
        (x, y) => x.or(y),
    };
    Sample {
        t_s: b.t_s,
        latency,
        starting: b.starting,
        running: b.running,
        stopping: b.stopping,
        requests_per_s: (a.requests_per_s + b.requests_per_s) / 2.0,
        failures_per_s: (a.failures_per_s + b.failures_per_s) / 2.0,
        hubsoak: usage(a.hubsoak, b.hubsoak),
        hub: usage(a.hub, b.hub),
    }
}

/// CPU seconds and resident bytes of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessReading {
    pub cpu_s: f64,
    pub rss_bytes: f64,
}

impl ProcessReading {
    /// Usage between an earlier reading and this one, `wall_s` apart.
    pub fn since(&self, before: &ProcessReading, wall_s: f64) -> Option<Usage> {
        (wall_s > 0.0).then(|| Usage {
            cpu_cores: ((self.cpu_s - before.cpu_s) / wall_s).max(0.0),
            rss_bytes: self.rss_bytes,
        })
    }

    /// From Prometheus text (`process_cpu_seconds_total`, `process_resident_memory_bytes`),
    /// as every prometheus_client and hubsoak itself export them.
    pub fn from_metrics(text: &str) -> Option<ProcessReading> {
        let value = |name: &str| {
            text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
                let (key, v) = l.split_once(' ')?;
                (key == name)
                    .then(|| v.trim().parse::<f64>().ok())
                    .flatten()
            })
        };
        Some(ProcessReading {
            cpu_s: value("process_cpu_seconds_total")?,
            rss_bytes: value("process_resident_memory_bytes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_run_keeps_a_bounded_series() {
        let mut s = Series::new(1.0);
        for i in 0..10_000 {
            s.push(Sample {
                t_s: i as f64,
                running: 5,
                requests_per_s: 2.0,
                ..Sample::default()
            });
        }
        assert!(s.samples.len() <= SERIES_MAX);
        assert!(s.step_s >= 8.0);
        assert!(s
            .samples
            .iter()
            .all(|x| x.requests_per_s == 2.0 && x.running == 5));
        assert_eq!(s.samples.last().map(|x| x.t_s), Some(9_999.0));
    }

    #[test]
    fn process_readings_come_from_prometheus_text() {
        let text =
            "# HELP x\nprocess_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 4.2e+07\n";
        let r = ProcessReading::from_metrics(text).unwrap();
        assert_eq!(r.cpu_s, 12.5);
        assert_eq!(r.rss_bytes, 42_000_000.0);
        let before = ProcessReading {
            cpu_s: 10.5,
            rss_bytes: 0.0,
        };
        assert_eq!(r.since(&before, 4.0).unwrap().cpu_cores, 0.5);
        assert!(ProcessReading::from_metrics("up 1\n").is_none());
    }
}
