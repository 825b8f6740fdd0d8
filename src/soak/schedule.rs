//! The shape of the load over time: the population target through `population.stages`
//! (linear ramps between targets, like a class arriving, holding, spiking, leaving), and
//! when each spawn is planned (`population.arrivals`: paced evenly, in batches, or as a
//! Poisson process, all at `spawn_rate` users per minute on average).

use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;

/// One stage: over `duration`, the target moves linearly from the previous stage's
/// target (0 before the first) to `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stage {
    #[serde(serialize_with = "human")]
    pub duration: Duration,
    pub target: usize,
}

fn human<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// The target `elapsed` after the start; after the last stage, its target.
pub fn target_at(stages: &[Stage], elapsed: Duration) -> usize {
    let mut from = 0usize;
    let mut start = Duration::ZERO;
    for s in stages {
        let end = start + s.duration;
        if elapsed < end {
            let done = (elapsed - start).as_secs_f64() / s.duration.as_secs_f64();
            let value = from as f64 + (s.target as f64 - from as f64) * done;
            return value.round().max(0.0) as usize;
        }
        from = s.target;
        start = end;
    }
    from
}

/// The largest target any stage reaches.
pub fn peak(stages: &[Stage]) -> usize {
    stages.iter().map(|s| s.target).max().unwrap_or(0)
}

/// How spawns arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// One every 60/spawn_rate seconds.
    Paced,
    /// `batch_size` at once, a batch every batch_size × 60/spawn_rate seconds.
    Batched,
    /// Exponentially distributed gaps of mean 60/spawn_rate seconds.
    Poisson,
}

/// Plans spawn times.
#[derive(Debug)]
pub struct Planner {
    arrivals: Arrivals,
    /// The mean gap.
    interval: Duration,
    batch_size: usize,
    next: Instant,
    left_in_batch: usize,
}

impl Planner {
    pub fn new(arrivals: Arrivals, spawn_rate: f64, batch_size: usize) -> Self {
        Planner {
            arrivals,
            interval: Duration::from_secs_f64(60.0 / spawn_rate),
            batch_size: batch_size.max(1),
            next: Instant::now(),
            left_in_batch: batch_size.max(1),
        }
    }

    /// The planned time of the next spawn asked for `now`.
    pub fn plan(&mut self, now: Instant) -> Instant {
        if self.next < now {
            // Idle for a while: no backlog of arrivals builds up.
            self.next = now;
            self.left_in_batch = self.batch_size;
        }
        let planned = self.next;
        match self.arrivals {
            Arrivals::Paced => self.next = planned + self.interval,
            Arrivals::Poisson => {
                let u: f64 = rand::thread_rng().gen_range(f64::EPSILON..1.0);
                self.next = planned + self.interval.mul_f64(-u.ln());
            }
            Arrivals::Batched => {
                self.left_in_batch -= 1;
                if self.left_in_batch == 0 {
                    self.left_in_batch = self.batch_size;
                    self.next = planned + self.interval * self.batch_size as u32;
                }
            }
        }
        planned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64, target: usize) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn stages_ramp_hold_spike_and_come_down() {
        let stages = [s(10, 100), s(10, 100), s(2, 300), s(5, 50)];
        let at = |secs: f64| target_at(&stages, Duration::from_secs_f64(secs));
        assert_eq!(at(0.0), 0);
        assert_eq!(at(5.0), 50, "half way up the ramp");
        assert_eq!(at(15.0), 100, "hold");
        assert_eq!(at(21.0), 200, "half way up the spike");
        assert_eq!(at(24.5), 175, "half way down");
        assert_eq!(at(1000.0), 50, "the last target holds");
        assert_eq!(peak(&stages), 300);
        assert_eq!(target_at(&[], Duration::from_secs(3)), 0);
    }

    fn gaps(arrivals: Arrivals, n: usize) -> Vec<f64> {
        let start = Instant::now();
        let mut p = Planner::new(arrivals, 600.0, 5);
        let times: Vec<Instant> = (0..n).map(|_| p.plan(start)).collect();
        times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect()
    }

    #[test]
    fn every_kind_of_arrival_keeps_the_rate() {
        // 600 a minute: 0.1 s apart on average, whatever the shape.
        for arrivals in [Arrivals::Paced, Arrivals::Batched, Arrivals::Poisson] {
            let g = gaps(arrivals, 20_001);
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            assert!((mean - 0.1).abs() < 0.005, "{arrivals:?}: mean gap {mean}");
        }
        let paced = gaps(Arrivals::Paced, 100);
        assert!(paced.iter().all(|g| (g - 0.1).abs() < 1e-6));
        // Batches of 5: four gaps of 0 then one of 0.5 s.
        let batched = gaps(Arrivals::Batched, 11);
        assert_eq!(batched.iter().filter(|g| **g == 0.0).count(), 8);
        assert!(batched
            .iter()
            .filter(|g| **g > 0.0)
            .all(|g| (g - 0.5).abs() < 1e-6));
        // Poisson: gaps as spread as they are long (coefficient of variation about 1).
        let g = gaps(Arrivals::Poisson, 20_001);
        let mean = g.iter().sum::<f64>() / g.len() as f64;
        let sd = (g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / g.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
    }
}
