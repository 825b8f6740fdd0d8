//! Settings that are valid but cannot reach what they ask. `validate` prints each as a
//! warning and still exits 0; `soak` logs each at WARN when it starts.

use std::time::Duration;

use crate::soak::schedule::peak;
use crate::soak::settings::SoakSettings;

/// A spawn's length assumed when judging whether the in-flight limit can keep up:
/// JupyterHub's slow_spawn_timeout. Spawns on Kubernetes are often slower still.
const ASSUMED_SPAWN: Duration = Duration::from_secs(10);

pub fn soak(s: &SoakSettings) -> Vec<String> {
    let p = &s.population;
    let mut out = Vec::new();
    let target = if p.stages.is_empty() {
        p.target
    } else {
        peak(&p.stages)
    };
    let mean_session_min = (p.session_min + p.session_max).as_secs_f64() / 2.0 / 60.0;
    if target > 0 && mean_session_min > 0.0 {
        let needed = target as f64 / mean_session_min;
        if needed > p.spawn_rate {
            out.push(format!(
                "population.spawn_rate: {} spawns/min cannot sustain {target} servers whose sessions last {} on average: that needs {needed:.1}/min; raise spawn_rate or lengthen the sessions",
                p.spawn_rate,
                humantime::format_duration(Duration::from_secs_f64(mean_session_min * 60.0).round_secs()),
            ));
        }
    }
    if p.session_min < p.spawn_timeout {
        out.push(format!(
            "population.session_min: sessions of {} are shorter than population.spawn_timeout ({}): a slow spawn can outlast a whole session",
            humantime::format_duration(p.session_min),
            humantime::format_duration(p.spawn_timeout),
        ));
    }
    let in_flight_needed = p.spawn_rate / 60.0 * ASSUMED_SPAWN.as_secs_f64();
    if (p.max_spawns_in_flight as f64) < in_flight_needed.floor() {
        out.push(format!(
            "population.max_spawns_in_flight: {} spawns at once cannot keep {} spawns/min going if a spawn takes {}s or more (that needs {:.0}); spawns will queue and their latency grow",
            p.max_spawns_in_flight,
            p.spawn_rate,
            ASSUMED_SPAWN.as_secs(),
            in_flight_needed.ceil(),
        ));
    }
    out
}

trait RoundSecs {
    fn round_secs(self) -> Duration;
}

impl RoundSecs for Duration {
    fn round_secs(self) -> Duration {
        Duration::from_secs(self.as_secs_f64().round() as u64)
    }
}
