//! Completions over a run, by action: how many ended ok and failed in each bucket of
//! time from the start, bounded in size.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Most buckets a timeline series keeps; past that, buckets are merged in pairs.
pub const TIMELINE_MAX_BUCKETS: usize = 1800;

/// Completions by action over time: `series[action][i]` = `[ok, failed]` in the `i`-th
/// bucket of `step_s` seconds from the run's start. Bounded: the step doubles (and
/// buckets merge in pairs) whenever a series would pass `TIMELINE_MAX_BUCKETS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub step_s: u64,
    pub series: BTreeMap<String, Vec<[u64; 2]>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            step_s: 1,
            series: BTreeMap::new(),
        }
    }
}

impl Timeline {
    /// Counts one completion `at_s` seconds after the start.
    pub fn add(&mut self, action: &str, at_s: u64, ok: bool, n: u64) {
        while at_s / self.step_s >= TIMELINE_MAX_BUCKETS as u64 {
            self.coarsen();
        }
        let i = (at_s / self.step_s) as usize;
        let series = self.series.entry(action.to_string()).or_default();
        if series.len() <= i {
            series.resize(i + 1, [0, 0]);
        }
        series[i][usize::from(!ok)] += n;
    }

    /// Doubles the step, merging buckets in pairs.
    fn coarsen(&mut self) {
        self.step_s *= 2;
        for series in self.series.values_mut() {
            *series = series
                .chunks(2)
                .map(|c| {
                    let b = c.get(1).copied().unwrap_or([0, 0]);
                    [c[0][0] + b[0], c[0][1] + b[1]]
                })
                .collect();
        }
    }

    /// Adds `other`, whose start is `offset_s` seconds after this one's.
    pub fn absorb(&mut self, other: &Timeline, offset_s: u64) {
        for (action, series) in &other.series {
            for (i, [ok, failed]) in series.iter().enumerate() {
                let at = offset_s + i as u64 * other.step_s;
                if *ok > 0 {
                    self.add(action, at, true, *ok);
                }
                if *failed > 0 {
                    self.add(action, at, false, *failed);
                }
            }
        }
    }
}
